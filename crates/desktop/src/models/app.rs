//! The app around the queue: watched folders, the status the tray and header show, settings,
//! and every event pushed to the window.

use serde::{Deserialize, Serialize};

use dropkey_core::config::Watch;
use dropkey_core::watch::overview::{WatchOverview, WatchState as CoreWatchState};

use super::{IntakeView, JobView, ProgressView, QueueCountsView};

/// A folder to watch, as Settings adds it.
#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct WatchInput {
    pub path: String,
    pub profile: String,
    /// Remote folder; none: the profile's.
    pub folder: Option<String>,
    /// Tags; none: the profile's.
    pub tags: Option<Vec<String>>,
    pub recursive: bool,
}

/// What a watched folder is doing (`dropkey_core::watch::overview::WatchState`).
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    Starting,
    Watching,
    Paused,
    /// Its provider cannot be reached: uploads wait and go on by themselves.
    Offline,
    Missing,
    Error,
}

/// One of a watched folder's newest uploads.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct WatchUploadView {
    pub id: u32,
    pub name: String,
    pub url: String,
    /// Unix seconds.
    #[specta(type = u32)]
    pub finished_at: f64,
}

/// One watched folder, as the Watched folders screen shows it.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct WatchView {
    pub key: String,
    pub path: String,
    /// The folder's own name.
    pub name: String,
    pub profile: String,
    pub state: WatchState,
    /// Why it is offline, missing or failing.
    pub detail: Option<String>,
    /// The remote folder, tags and subfolder choice it was configured with (for Edit).
    pub folder: Option<String>,
    pub tags: Option<Vec<String>>,
    pub recursive: bool,
    #[specta(type = u32)]
    pub uploaded_today: f64,
    #[specta(type = u32)]
    pub waiting: f64,
    #[specta(type = u32)]
    pub failed: f64,
    /// Newest first.
    pub recent: Vec<WatchUploadView>,
}

pub fn watch_view(overview: WatchOverview, watch: Option<&Watch>) -> WatchView {
    WatchView {
        key: overview.key,
        path: overview.path.display().to_string(),
        name: overview.name,
        profile: overview.profile,
        state: match overview.state {
            CoreWatchState::Starting => WatchState::Starting,
            CoreWatchState::Watching => WatchState::Watching,
            CoreWatchState::Paused => WatchState::Paused,
            CoreWatchState::Offline => WatchState::Offline,
            CoreWatchState::Missing => WatchState::Missing,
            CoreWatchState::Error => WatchState::Error,
        },
        detail: overview.detail,
        folder: watch.and_then(|w| w.folder.clone()),
        tags: watch.and_then(|w| w.tags.clone()),
        recursive: watch.is_none_or(|w| w.recursive),
        uploaded_today: overview.uploaded_today as f64,
        waiting: overview.waiting as f64,
        failed: overview.failed as f64,
        recent: overview
            .recent
            .into_iter()
            .map(|r| WatchUploadView {
                id: super::job_id(r.job),
                name: r.file_name,
                url: r.url,
                finished_at: r.finished_at as f64,
            })
            .collect(),
    }
}

/// What the tray icon and the window header show.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Idle,
    Uploading,
    Paused,
    Error,
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct AppStatus {
    pub activity: Activity,
    /// Queued, running or paused files.
    pub pending: u32,
    pub uploads_paused: bool,
    pub watching_paused: bool,
    /// Failures in the current batch (cleared when a new batch starts).
    pub failed: u32,
    /// "offline — N waiting, next try in S s (cannot reach ...)" while an upload host is
    /// unreachable; the uploads wait and go on by themselves.
    pub offline: Option<String>,
}

/// The window's hints for a drag of files over it (Tauri's native drag and drop).
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DragState {
    Enter,
    Leave,
    Drop,
}

/// Everything the backend tells the window, pulled with `next_events`, in batches queued at
/// most every 200 ms (and at once for drags, notices and deletions).
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// Changed jobs (latest state wins); rows the window does not show are ignored there.
    Jobs {
        jobs: Vec<JobView>,
    },
    /// The queue's counts changed; `reload`: rows changed too that `Jobs` did not carry (new
    /// jobs, or a bulk change), so the window reads its rows again.
    Queue {
        counts: QueueCountsView,
        reload: bool,
    },
    /// Drops being walked in the background; each finished one is sent once more, finished.
    Intakes {
        intakes: Vec<IntakeView>,
    },
    Progress {
        updates: Vec<ProgressView>,
    },
    /// Uploads that just finished, newest last: the History screen makes room for them and
    /// reads their rows (ids only: the rows would cost WebKit memory for every upload).
    Uploaded {
        ids: Vec<u32>,
    },
    /// Uploads deleted at the provider.
    Deleted {
        ids: Vec<u32>,
    },
    Watches {
        watches: Vec<WatchView>,
    },
    Status {
        status: AppStatus,
    },
    Drag {
        state: DragState,
        paths: Vec<String>,
    },
    /// Something done outside the window (tray, second launch) that the user should see.
    Notice {
        message: String,
        error: bool,
    },
    /// The tray asked for a screen.
    Navigate {
        screen: String,
    },
    /// Events were dropped while the window did not pull them: it reads its queue, status,
    /// watches and history again.
    Resync,
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct SettingsView {
    pub notifications: bool,
    pub close_to_tray: bool,
    /// Uploads at once; a change applies at once to the running engine.
    pub concurrency: u32,
    pub launch_at_login: bool,
    pub copy_template: String,
    pub config_file: String,
    pub data_dir: String,
}

#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct SettingsUpdate {
    pub notifications: bool,
    pub close_to_tray: bool,
    pub concurrency: u32,
    pub copy_template: String,
}
