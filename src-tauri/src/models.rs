//! The types that cross IPC, and how core values map to them. None has a field that could hold
//! a secret. specta refuses 64-bit integers (JavaScript numbers are doubles), so: ids and counts
//! are `u32` (checked conversions), byte sizes, speeds and times are `f64` (exact up to 2^53),
//! declared to specta as a plain number (`#[specta(type = u32)]`: specta would add `| null`
//! for a NaN these values never hold).

use serde::{Deserialize, Serialize};

use dropkey::config::{Profile, Provider as CoreProvider};
use dropkey::config_edit::ProfileSpec;
use dropkey::engine::intake::IntakeProgress;
use dropkey::engine::store::{HistoryKind as CoreHistoryKind, JobRecord, UploadKind};
use dropkey::engine::{JobId, JobState, QueueCounts};
use dropkey::profile::ProfileStatus;
use dropkey::secrets::SecretSource as CoreSecretSource;
use dropkey::watch::{WatchInfo, WatchStatus};

use crate::error::AppError;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Imagekit,
    Cloudinary,
}

impl From<&CoreProvider> for Provider {
    fn from(provider: &CoreProvider) -> Self {
        match provider {
            CoreProvider::ImageKit(_) => Self::Imagekit,
            CoreProvider::Cloudinary(_) => Self::Cloudinary,
        }
    }
}

/// Where a profile's private key comes from; the key itself never crosses IPC.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Keychain,
    Env,
    File,
    Missing,
    /// The keychain could not be asked (no Secret Service, locked): see `secret_problem`.
    Unavailable,
}

impl From<CoreSecretSource> for SecretSource {
    fn from(source: CoreSecretSource) -> Self {
        match source {
            CoreSecretSource::Keychain => Self::Keychain,
            CoreSecretSource::Env => Self::Env,
            CoreSecretSource::File => Self::File,
            CoreSecretSource::Missing => Self::Missing,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct ProfileView {
    pub name: String,
    pub provider: Provider,
    pub auth: Option<String>,
    pub destination: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub secret: SecretSource,
    /// Why the secret's source is unknown, with the fix, when `secret` is `unavailable`.
    pub secret_problem: Option<String>,
    pub is_default: bool,
}

impl From<ProfileStatus> for ProfileView {
    fn from(status: ProfileStatus) -> Self {
        Self {
            provider: if status.provider == "cloudinary" {
                Provider::Cloudinary
            } else {
                Provider::Imagekit
            },
            name: status.name,
            auth: status.auth.map(str::to_owned),
            destination: status.destination,
            folder: status.folder,
            tags: status.tags,
            secret: status.secret.into(),
            secret_problem: None,
            is_default: status.is_default,
        }
    }
}

/// A profile's settings as the edit form shows and sends them. Public settings only: the
/// private key has its own one-way command (`set_secret`).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
pub struct ProfileInput {
    pub name: String,
    pub provider: Provider,
    /// ImageKit: `v2`, `v1` or `remote`.
    pub auth: Option<String>,
    pub public_key: Option<String>,
    pub url_endpoint: Option<String>,
    pub upload_url: Option<String>,
    pub api_url: Option<String>,
    pub token_url: Option<String>,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub cloud_name: Option<String>,
    pub api_key: Option<String>,
    pub private: bool,
}

impl From<ProfileSpec> for ProfileInput {
    fn from(spec: ProfileSpec) -> Self {
        Self {
            provider: if spec.provider == "cloudinary" {
                Provider::Cloudinary
            } else {
                Provider::Imagekit
            },
            name: spec.name,
            auth: spec.auth,
            public_key: spec.public_key,
            url_endpoint: spec.url_endpoint,
            upload_url: spec.upload_url,
            api_url: spec.api_url,
            token_url: spec.token_url,
            folder: spec.folder,
            tags: spec.tags,
            cloud_name: spec.cloud_name,
            api_key: spec.api_key,
            private: spec.private,
        }
    }
}

impl From<ProfileInput> for ProfileSpec {
    fn from(input: ProfileInput) -> Self {
        Self {
            name: input.name,
            provider: match input.provider {
                Provider::Imagekit => "imagekit",
                Provider::Cloudinary => "cloudinary",
            }
            .to_owned(),
            auth: input.auth,
            public_key: input.public_key,
            url_endpoint: input.url_endpoint,
            upload_url: input.upload_url,
            api_url: input.api_url,
            token_url: input.token_url,
            folder: input.folder,
            tags: input.tags,
            cloud_name: input.cloud_name,
            api_key: input.api_key,
            private: input.private,
        }
    }
}

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

/// A job's state as the queue shows it.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobStateView {
    Queued,
    Running,
    Paused,
    Done,
    Failed,
    NeedsAttention,
    Cancelled,
    Deleted,
}

impl From<JobState> for JobStateView {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => Self::Queued,
            JobState::Running => Self::Running,
            JobState::Paused => Self::Paused,
            JobState::Done => Self::Done,
            JobState::Failed => Self::Failed,
            JobState::NeedsAttention => Self::NeedsAttention,
            JobState::Cancelled => Self::Cancelled,
            JobState::Deleted => Self::Deleted,
        }
    }
}

/// One file in the upload queue.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct JobView {
    pub id: u32,
    pub name: String,
    pub path: String,
    pub profile: String,
    pub folder: Option<String>,
    #[specta(type = u32)]
    pub size: f64,
    pub state: JobStateView,
    pub attempts: u32,
    pub error: Option<String>,
    pub url: Option<String>,
    /// Bytes acknowledged so far (progress events carry the live figure).
    #[specta(type = u32)]
    pub bytes_sent: f64,
}

pub fn job_id(id: JobId) -> u32 {
    // Row ids start at 1 and grow by one per file: 4 billion uploads are out of reach.
    u32::try_from(id.0).unwrap_or(u32::MAX)
}

pub fn core_job_id(id: u32) -> Result<JobId, AppError> {
    if id == 0 {
        return Err(AppError::input("job id 0 does not exist"));
    }
    Ok(JobId(i64::from(id)))
}

impl From<&JobRecord> for JobView {
    fn from(record: &JobRecord) -> Self {
        let done = matches!(record.state, JobState::Done | JobState::Deleted);
        Self {
            id: job_id(record.id),
            name: record.file_name.clone(),
            path: record.path.display().to_string(),
            profile: record.profile.clone(),
            folder: record.params.get("folder").cloned(),
            size: record.size as f64,
            state: record.state.into(),
            attempts: record.attempts,
            error: record.error.clone(),
            url: record.url.clone(),
            bytes_sent: if done {
                record.size as f64
            } else {
                record.bytes_acked as f64
            },
        }
    }
}

/// Live progress of one running job (at most ~10 a second per job).
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct ProgressView {
    pub id: u32,
    #[specta(type = u32)]
    pub bytes_sent: f64,
    #[specta(type = u32)]
    pub total: f64,
    /// Bytes per second, smoothed.
    #[specta(type = u32)]
    pub speed: f64,
    #[specta(type = Option<u32>)]
    pub eta_secs: Option<f64>,
}

/// A finished upload, as the History screen shows it.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct HistoryEntry {
    pub id: u32,
    pub name: String,
    pub path: String,
    pub profile: String,
    pub provider: Option<Provider>,
    #[specta(type = u32)]
    pub size: f64,
    /// Unix seconds.
    #[specta(type = u32)]
    pub finished_at: f64,
    pub url: String,
    pub remote_id: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub is_image: bool,
    /// Needs a signed link to be opened (ImageKit private file, Cloudinary private type).
    pub private: bool,
    /// ImageKit's URL endpoint, where a `tr:` segment goes; none for Cloudinary.
    pub url_endpoint: Option<String>,
    pub source: String,
}

/// What the History screen shows: all uploads, images, other files, or private ones.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HistoryKind {
    #[default]
    All,
    Images,
    Other,
    Private,
}

impl From<HistoryKind> for CoreHistoryKind {
    fn from(kind: HistoryKind) -> Self {
        match kind {
            HistoryKind::All => Self::All,
            HistoryKind::Images => Self::Images,
            HistoryKind::Other => Self::Other,
            HistoryKind::Private => Self::Private,
        }
    }
}

/// A History search: every word of `text` (each a word prefix, any order), the profile (none:
/// all) and the kind; `limit` uploads after skipping the `offset` newest matches.
#[derive(Debug, Clone, Deserialize, specta::Type, PartialEq, Eq)]
pub struct HistoryQuery {
    pub text: String,
    pub profile: Option<String>,
    pub kind: HistoryKind,
    pub offset: u32,
    pub limit: u32,
}

/// One page of a History search, and how many uploads match in all.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub offset: u32,
    pub total: u32,
}

pub fn history_entry(record: &JobRecord, profile: Option<&Profile>) -> HistoryEntry {
    // The same derivation the store keeps for the history's kind filter.
    let UploadKind { is_image, private } =
        UploadKind::of(&record.file_name, &record.params, record.response.as_ref());
    let url_endpoint = profile.and_then(|p| match &p.provider {
        CoreProvider::ImageKit(ik) => {
            Some(ik.url_endpoint.as_str().trim_end_matches('/').to_owned())
        }
        CoreProvider::Cloudinary(_) => None,
    });
    HistoryEntry {
        id: job_id(record.id),
        name: record.file_name.clone(),
        path: record.path.display().to_string(),
        profile: record.profile.clone(),
        provider: profile.map(|p| Provider::from(&p.provider)),
        size: record.size as f64,
        finished_at: record.finished_at.unwrap_or(record.created_at) as f64,
        url: record.url.clone().unwrap_or_default(),
        remote_id: record.remote_id.clone().unwrap_or_default(),
        folder: record.params.get("folder").cloned(),
        tags: record
            .params
            .get("tags")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        is_image,
        private,
        url_endpoint,
        source: record.source.clone(),
    }
}

#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    Starting,
    Watching,
    Paused,
    Missing,
    Error,
}

/// One watched folder.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct WatchView {
    pub key: String,
    pub path: String,
    pub profile: String,
    pub state: WatchState,
    /// Why it is missing or failing.
    pub detail: Option<String>,
    pub last_upload: Option<String>,
    #[specta(type = u32)]
    pub uploads: f64,
}

pub fn watch_view(info: WatchInfo) -> WatchView {
    let (state, detail) = match info.status {
        WatchStatus::Starting => (WatchState::Starting, None),
        WatchStatus::Watching => (WatchState::Watching, None),
        WatchStatus::Paused => (WatchState::Paused, None),
        WatchStatus::Missing(why) => (WatchState::Missing, Some(why)),
        WatchStatus::Error(why) => (WatchState::Error, Some(why)),
    };
    WatchView {
        key: info.key,
        path: info.path.display().to_string(),
        profile: info.profile,
        state,
        detail,
        last_upload: info.last_upload,
        uploads: info.uploads as f64,
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

/// Everything the backend pushes to the window, through the `subscribe` channel, in batches
/// sent at most every 200 ms.
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
}

/// What `enqueue_files` and `upload_clipboard` send.
#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct Destination {
    pub profile: String,
    /// Remote folder for this batch; empty = the provider's root; absent = the profile's.
    pub folder: Option<String>,
    /// Tags for this batch; empty = none; absent = the profile's.
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, specta::Type)]
pub struct EnqueueRequest {
    /// Absolute paths of files and folders (folders are walked).
    pub paths: Vec<String>,
    pub destination: Destination,
    /// A dropped folder's files go under `<folder>/<dropped folder>/<sub folders>`.
    pub keep_structure: bool,
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, specta::Type, PartialEq, Eq)]
pub struct EnqueueResult {
    /// Files queued so far (all of them unless `running`).
    pub queued: u32,
    /// The first rejections, with their reasons.
    pub rejected: Vec<Rejected>,
    /// Every rejection, counted.
    pub rejected_total: u32,
    /// The intake still walking the drop in the background (see `UiEvent::Intakes`).
    pub running: Option<u32>,
    /// Why queueing stopped early (the queue database could not be written).
    pub error: Option<String>,
}

fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn rejections(progress: &IntakeProgress) -> Vec<Rejected> {
    progress
        .rejections
        .iter()
        .map(|r| Rejected {
            path: r.path.clone(),
            reason: r.reason.clone(),
        })
        .collect()
}

impl EnqueueResult {
    pub fn from_progress(progress: &IntakeProgress, running: Option<u32>) -> Self {
        Self {
            queued: count(progress.queued),
            rejected: rejections(progress),
            rejected_total: count(progress.rejected),
            running,
            error: progress.error.clone(),
        }
    }
}

/// A drop being walked and queued in the background.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct IntakeView {
    pub id: u32,
    /// What was dropped: "Photos", "a.jpg and 3 more".
    pub label: String,
    pub found: u32,
    pub queued: u32,
    pub rejected: Vec<Rejected>,
    pub rejected_total: u32,
    /// Walked to the end (or cancelled, or stopped by `error`); reported once, then gone.
    pub finished: bool,
    pub cancelled: bool,
    pub error: Option<String>,
}

impl IntakeView {
    pub fn new(id: u32, label: &str, progress: &IntakeProgress) -> Self {
        Self {
            id,
            label: label.to_owned(),
            found: count(progress.found),
            queued: count(progress.queued),
            rejected: rejections(progress),
            rejected_total: count(progress.rejected),
            finished: progress.finished,
            cancelled: progress.cancelled,
            error: progress.error.clone(),
        }
    }
}

/// The queue by state: the summary line and the scroll bar's length, without the jobs.
#[derive(Debug, Clone, Copy, Default, Serialize, specta::Type, PartialEq)]
pub struct QueueCountsView {
    pub total: u32,
    pub queued: u32,
    pub running: u32,
    pub paused: u32,
    pub done: u32,
    /// Failed and needing attention (what "Retry failed" retries).
    pub failed: u32,
    pub cancelled: u32,
    /// Finished in any way (what "Clear finished" clears).
    pub finished: u32,
    #[specta(type = u32)]
    pub bytes_total: f64,
    #[specta(type = u32)]
    pub bytes_done: f64,
}

impl From<&QueueCounts> for QueueCountsView {
    fn from(c: &QueueCounts) -> Self {
        Self {
            total: count(c.total()),
            queued: count(c.queued),
            running: count(c.running),
            paused: count(c.paused),
            done: count(c.done + c.deleted),
            failed: count(c.failed + c.needs_attention),
            cancelled: count(c.cancelled),
            finished: count(c.finished()),
            bytes_total: c.bytes_total as f64,
            bytes_done: c.bytes_done as f64,
        }
    }
}

/// Rows `offset..offset + jobs.len()` of the queue, oldest first, and the counts they were
/// read with.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct QueuePage {
    pub counts: QueueCountsView,
    pub offset: u32,
    pub jobs: Vec<JobView>,
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
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
