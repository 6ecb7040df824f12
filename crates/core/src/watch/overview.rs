//! A watched folder as its screen and the tray show it: one state out of the watcher's status
//! and the engine's reachability (watching, paused, offline, missing, error), its counts from
//! the job store (uploaded today, waiting, failed), its newest uploads with their links, and
//! "Retry failed" for its jobs alone. The rules live here so that every front end agrees;
//! front ends only carry the result.

use std::path::Path;

use serde::Serialize;

use super::{WatchInfo, WatchStatus};
use crate::config::{Config, ImageKitAuth, Profile, Provider};
use crate::engine::{Engine, EngineError, JobId, JobSource, Offline};

/// What a watched folder is doing, as people read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    /// Started, not watching yet (the first moments after a start).
    Starting,
    Watching,
    Paused,
    /// Watching, but its provider cannot be reached: its uploads wait and go on by themselves.
    Offline,
    /// The folder does not exist or is unmounted; watching resumes when it is back.
    Missing,
    /// The file watcher failed on the folder.
    Error,
}

impl WatchState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Watching => "watching",
            Self::Paused => "paused",
            Self::Offline => "offline",
            Self::Missing => "missing",
            Self::Error => "error",
        }
    }
}

/// One of a watch's newest uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentUpload {
    pub job: JobId,
    pub file_name: String,
    pub url: String,
    pub finished_at: i64,
}

/// A watched folder with its state, counts and newest uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchOverview {
    pub key: String,
    pub path: std::path::PathBuf,
    /// The folder's own name, to tell watches apart in short lines (the tray).
    pub name: String,
    pub profile: String,
    pub state: WatchState,
    /// Why it is offline, missing or failing, and what happens next.
    pub detail: Option<String>,
    pub uploaded_today: u64,
    pub waiting: u64,
    pub failed: u64,
    /// Newest first, at most [`RECENT`].
    pub recent: Vec<RecentUpload>,
}

/// Newest uploads an overview carries.
pub const RECENT: usize = 5;

/// The state of a watch whose watcher reports `status`, when `unreachable` names the host of
/// its provider that cannot be reached (if any). A watch that is not watching says why
/// (paused, missing, error) before offline: those need the user, offline does not.
pub fn state_of(status: &WatchStatus, unreachable: Option<&str>) -> (WatchState, Option<String>) {
    match (status, unreachable) {
        (WatchStatus::Error(why), _) => (WatchState::Error, Some(why.clone())),
        (WatchStatus::Missing(why), _) => (WatchState::Missing, Some(why.clone())),
        (WatchStatus::Paused, _) => (WatchState::Paused, None),
        (WatchStatus::Starting | WatchStatus::Watching, Some(origin)) => (
            WatchState::Offline,
            Some(format!(
                "cannot reach {origin}: new files wait and upload by themselves when it answers"
            )),
        ),
        (WatchStatus::Starting, None) => (WatchState::Starting, None),
        (WatchStatus::Watching, None) => (WatchState::Watching, None),
    }
}

/// The origins (`scheme://host:port`, as the engine's reachability names them) `profile`'s
/// uploads go to: the upload host, and a remote profile's token server.
pub fn profile_origins(profile: &Profile) -> Vec<String> {
    let urls = match &profile.provider {
        Provider::ImageKit(ik) if ik.auth == ImageKitAuth::Remote => {
            vec![ik.token_url.clone(), Some(ik.upload_url.clone())]
        }
        Provider::ImageKit(ik) => vec![Some(ik.upload_url.clone())],
        Provider::Cloudinary(cl) => vec![Some(cl.api_url.clone())],
    };
    urls.iter()
        .flatten()
        .filter_map(crate::engine::reach::origin)
        .collect()
}

/// The first of `profile`'s origins that `offline` lists as unreachable.
pub fn unreachable_origin(profile: Option<&Profile>, offline: Option<&Offline>) -> Option<String> {
    let (profile, offline) = (profile?, offline?);
    profile_origins(profile)
        .into_iter()
        .find(|o| offline.hosts.iter().any(|h| &h.origin == o))
}

/// The last component of `path` (the whole path when it has none, as for `/`).
pub fn folder_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Local midnight at the start of the day that contains `now` (Unix seconds): where "uploaded
/// today" starts. On a day that starts inside a DST gap, the first valid local time.
pub fn local_day_start(now: i64) -> i64 {
    use chrono::{Local, TimeZone as _};
    let Some(at) = Local.timestamp_opt(now, 0).earliest() else {
        return now - now.rem_euclid(86_400);
    };
    let midnight = at.date_naive().and_time(chrono::NaiveTime::MIN);
    match Local.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.timestamp(),
        // No local midnight that day (a DST change at 00:00): the day's first hour.
        chrono::LocalResult::None => Local
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map_or(now - now.rem_euclid(86_400), |t| t.timestamp()),
    }
}

/// The overview of the watch `info`: its state given the engine's `offline` hosts and the
/// `config`'s profile, and its counts since `day_start` from the store (each an indexed count
/// of what it counts: see `Store::source_counts`).
pub fn overview(
    engine: &Engine,
    config: &Config,
    info: &WatchInfo,
    offline: Option<&Offline>,
    day_start: i64,
) -> Result<WatchOverview, EngineError> {
    let source = JobSource::Watch(info.path.clone());
    let (counts, recent) = engine.with_store(|s| {
        Ok((
            s.source_counts(&source, day_start)?,
            s.source_recent(&source, RECENT)?,
        ))
    })?;
    let unreachable = unreachable_origin(config.profile(&info.profile), offline);
    let (state, detail) = state_of(&info.status, unreachable.as_deref());
    Ok(WatchOverview {
        key: info.key.clone(),
        path: info.path.clone(),
        name: folder_name(&info.path),
        profile: info.profile.clone(),
        state,
        detail,
        uploaded_today: counts.uploaded_since,
        waiting: counts.waiting,
        failed: counts.failed,
        recent: recent
            .into_iter()
            .filter_map(|r| {
                Some(RecentUpload {
                    job: r.id,
                    url: r.url?,
                    file_name: r.file_name,
                    finished_at: r.finished_at.unwrap_or(r.created_at),
                })
            })
            .collect(),
    })
}

/// Puts the failed and stuck uploads of the watch at `folder` back in the queue. Returns how
/// many.
pub fn retry_failed(engine: &Engine, folder: &Path) -> Result<usize, EngineError> {
    engine.retry_failed_of(&JobSource::Watch(folder.to_path_buf()))
}

/// One line for a short menu: `Photos — watching · 3 waiting · 1 failed` (counts that are zero
/// left out).
pub fn summary_line(watch: &WatchOverview) -> String {
    let mut line = format!("{} — {}", watch.name, watch.state.label());
    for (n, what) in [(watch.waiting, "waiting"), (watch.failed, "failed")] {
        if n > 0 {
            line.push_str(&format!(" · {n} {what}"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::OfflineHost;

    fn offline(origin: &str) -> Offline {
        Offline {
            hosts: vec![OfflineHost {
                origin: origin.into(),
                parked: 1,
                offline_secs: 3,
                next_probe_secs: 1,
                reason: "refused".into(),
            }],
            waiting: 1,
            next_probe_secs: 1,
        }
    }

    #[test]
    fn a_watch_says_first_what_needs_the_user_then_offline() {
        let far = Some("http://127.0.0.1:9:9");
        assert_eq!(
            state_of(&WatchStatus::Watching, None),
            (WatchState::Watching, None)
        );
        assert_eq!(
            state_of(&WatchStatus::Starting, None),
            (WatchState::Starting, None)
        );
        let (state, detail) = state_of(&WatchStatus::Watching, far);
        assert_eq!(state, WatchState::Offline);
        assert!(detail
            .unwrap()
            .contains("cannot reach http://127.0.0.1:9:9"));
        assert_eq!(state_of(&WatchStatus::Starting, far).0, WatchState::Offline);
        assert_eq!(
            state_of(&WatchStatus::Paused, far),
            (WatchState::Paused, None)
        );
        assert_eq!(
            state_of(&WatchStatus::Missing("gone".into()), far),
            (WatchState::Missing, Some("gone".into()))
        );
        assert_eq!(
            state_of(&WatchStatus::Error("inotify".into()), far),
            (WatchState::Error, Some("inotify".into()))
        );
    }

    #[test]
    fn offline_means_this_watchs_provider_is_unreachable() {
        let config = Config::from_toml(
            r#"
[profiles.ik]
provider = "imagekit"
auth = "v2"
public_key = "public_x"
url_endpoint = "https://ik.imagekit.io/x"
upload_url = "http://127.0.0.1:9/api/v2/files/upload"

[profiles.cl]
provider = "cloudinary"
cloud_name = "demo"
api_key = "1234"
"#,
            Path::new("/nowhere/config.toml"),
        )
        .unwrap();
        let ik = config.profile("ik");
        let cl = config.profile("cl");
        assert_eq!(profile_origins(ik.unwrap()), vec!["http://127.0.0.1:9"]);
        let down = offline("http://127.0.0.1:9");
        assert_eq!(
            unreachable_origin(ik, Some(&down)).as_deref(),
            Some("http://127.0.0.1:9")
        );
        // Another provider's outage, no outage, or a profile gone from the config: not offline.
        assert_eq!(unreachable_origin(cl, Some(&down)), None);
        assert_eq!(unreachable_origin(ik, None), None);
        assert_eq!(unreachable_origin(None, Some(&down)), None);
        assert_eq!(
            profile_origins(cl.unwrap()),
            vec!["https://api.cloudinary.com:443"]
        );
    }

    #[tokio::test]
    async fn an_overview_counts_the_watchs_jobs_and_retries_only_its_failed() {
        use crate::engine::{EngineSettings, JobState};
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml("", &dir.path().join("config.toml")).unwrap();
        let profile = config
            .profile(crate::config::SANDBOX_PROFILE)
            .unwrap()
            .clone();
        let mut settings = EngineSettings::new(dir.path(), &config.upload);
        settings.start_paused = true;
        let engine = Engine::start(
            config.clone(),
            crate::secrets::Secrets::new(dir.path()),
            settings,
        )
        .unwrap();
        let watched = dir.path().join("Photos");
        std::fs::create_dir(&watched).unwrap();
        let mut ids = Vec::new();
        for (name, source) in [
            ("a.jpg", JobSource::Watch(watched.clone())),
            ("b.jpg", JobSource::Watch(watched.clone())),
            ("c.jpg", JobSource::Watch(watched.clone())),
            ("d.jpg", JobSource::Watch(watched.clone())),
            ("e.jpg", JobSource::App),
        ] {
            let file = watched.join(name);
            std::fs::write(&file, name).unwrap();
            let job = engine
                .prepare(&profile, &file, &crate::sign::Params::default(), source)
                .unwrap();
            ids.push(engine.enqueue(&[job]).unwrap()[0]);
        }
        let now = crate::unix_now();
        engine
            .with_store(|s| {
                s.mark_done(
                    ids[0],
                    "r",
                    "https://x/a.jpg",
                    &serde_json::json!({}),
                    None,
                    now,
                )?;
                s.mark_done(
                    ids[4],
                    "r",
                    "https://x/e.jpg",
                    &serde_json::json!({}),
                    None,
                    now,
                )?;
                s.set_state(ids[1], JobState::Failed, Some("refused"), now)
            })
            .unwrap();
        let info = WatchInfo {
            key: "sandbox:Photos".into(),
            path: watched.clone(),
            profile: profile.name.clone(),
            status: WatchStatus::Watching,
            last_upload: None,
            uploads: 0,
        };
        let day = local_day_start(now);
        let seen = overview(&engine, &config, &info, None, day).unwrap();
        assert_eq!(
            (seen.state, seen.name.as_str()),
            (WatchState::Watching, "Photos")
        );
        assert_eq!((seen.uploaded_today, seen.waiting, seen.failed), (1, 2, 1));
        assert_eq!(seen.recent.len(), 1);
        assert_eq!(
            (
                seen.recent[0].file_name.as_str(),
                seen.recent[0].url.as_str()
            ),
            ("a.jpg", "https://x/a.jpg")
        );
        // Uploaded yesterday is not today.
        let tomorrow = overview(&engine, &config, &info, None, now + 1).unwrap();
        assert_eq!(tomorrow.uploaded_today, 0);

        assert_eq!(retry_failed(&engine, &watched).unwrap(), 1);
        let seen = overview(&engine, &config, &info, None, day).unwrap();
        assert_eq!((seen.waiting, seen.failed), (3, 0));
        assert_eq!(
            retry_failed(&engine, &dir.path().join("elsewhere")).unwrap(),
            0
        );
        engine.shutdown().await;
    }

    #[test]
    fn the_day_starts_at_local_midnight() {
        let now = crate::unix_now();
        let start = local_day_start(now);
        assert!(start <= now && now - start < 25 * 3600, "{start} vs {now}");
        // Every moment of the same day has the same start, and the next day starts later.
        assert_eq!(local_day_start(start), start);
        assert_eq!(local_day_start(start + 3600), start);
        assert!(local_day_start(start + 26 * 3600) > start);
        assert!(local_day_start(start - 1) < start);
    }

    #[test]
    fn the_summary_names_the_folder_its_state_and_what_is_not_zero() {
        let mut watch = WatchOverview {
            key: "sandbox:/home/me/Photos".into(),
            path: "/home/me/Photos".into(),
            name: folder_name(Path::new("/home/me/Photos")),
            profile: "sandbox".into(),
            state: WatchState::Watching,
            detail: None,
            uploaded_today: 7,
            waiting: 0,
            failed: 0,
            recent: Vec::new(),
        };
        assert_eq!(summary_line(&watch), "Photos — watching");
        watch.waiting = 3;
        assert_eq!(summary_line(&watch), "Photos — watching · 3 waiting");
        watch.failed = 1;
        watch.state = WatchState::Offline;
        assert_eq!(
            summary_line(&watch),
            "Photos — offline · 3 waiting · 1 failed"
        );
        assert_eq!(folder_name(Path::new("/")), "/");
    }
}
