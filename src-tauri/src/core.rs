//! What the app holds while it runs: the config, the secrets, the engine, the watchers and the
//! local sandbox, plus the operations commands and the tray share. Nothing here knows about
//! windows or IPC (see `commands/`, `tray.rs`, `events.rs`), so tests drive it directly.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use secrecy::SecretString;

use dropkey::config::{Config, Paths, Profile, Provider as CoreProvider, Watch, SANDBOX_PROFILE};
use dropkey::config_edit::{self, ProfileSpec, WatchSpec};
use dropkey::engine::intake::{self, Intake, IntakeRequest};
use dropkey::engine::provider::{self, RemoteFile};
use dropkey::engine::store::{HistoryQuery as CoreHistoryQuery, JobRecord};
use dropkey::engine::{Engine, EngineSettings, JobState};
use dropkey::profile::ProfileStatus;
use dropkey::sandbox::SandboxHandle;
use dropkey::secrets::{SecretSource as CoreSecretSource, Secrets};
use dropkey::watch::{watch_key, Watcher};

use crate::error::AppError;
use crate::models::{
    core_job_id, history_entry, watch_view, Activity, AppStatus, ConnectionCheck, EnqueueRequest,
    EnqueueResult, HistoryPage, HistoryQuery, IntakeView, JobView, ProfileInput, ProfileView,
    QueueCountsView, QueuePage, SecretSource, WatchInput, WatchView,
};
use crate::prefs::Prefs;

/// How long `enqueue_files` waits for a drop to be walked before it answers and lets the walk
/// go on in the background.
const INTAKE_WAIT: std::time::Duration = std::time::Duration::from_millis(300);
/// How long cancelling a drop waits for its walk to notice.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Rows of the queue view one call returns at most.
const MAX_QUEUE_PAGE: u32 = 1_000;
/// The most History rows one call returns (the screen asks for windows of a few hundred).
pub const MAX_HISTORY_PAGE: u32 = 1_000;
const MAX_SEARCH_LEN: usize = 1_024;
const CONNECTION_PROBE_ID: &str = "dropkey-connection-test";

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One watched folder of the config file, with its own watcher so that it can be stopped
/// alone when Settings removes it.
struct WatchSlot {
    key: String,
    watcher: Watcher,
}

/// The running core. One per process, in Tauri's managed state behind [`crate::AppState`].
pub struct Core {
    pub paths: Paths,
    /// Replaced whole when Settings edits the config file.
    config: std::sync::RwLock<Arc<Config>>,
    pub secrets: Secrets,
    pub engine: Engine,
    pub prefs: Mutex<Prefs>,
    watches: Mutex<Vec<WatchSlot>>,
    /// Kept alive while the app runs: the built-in profile uploads to it.
    sandbox: Mutex<Option<SandboxHandle>>,
    http: reqwest::Client,
    /// Drops still being walked, by the id the window knows them by.
    intakes: Mutex<Intakes>,
    /// Failures since the queue last went idle.
    pub batch: Mutex<Batch>,
    /// Serialises edits of the config file: each is a read-modify-write of the whole file.
    config_edits: Mutex<()>,
}

#[derive(Default)]
struct Intakes {
    next_id: u32,
    running: Vec<(u32, Intake)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub done: u32,
    pub failed: u32,
    /// Failures of the last finished batch, shown until the next batch starts.
    pub last_failed: u32,
}

impl Core {
    /// Loads the config, starts the local sandbox (for the built-in profile), the engine (which
    /// resumes interrupted jobs) and the configured watches.
    pub async fn start(paths: Paths) -> Result<Self, AppError> {
        let config = {
            let paths = paths.clone();
            tauri::async_runtime::spawn_blocking(move || Config::load(&paths))
                .await
                .map_err(AppError::internal)??
        };
        let secrets = Secrets::new(&paths.data_dir);
        dropkey::private_fs::secure_paths(&paths).map_err(|err| {
            AppError::internal(format!(
                "cannot create the data directory {} (mode 0700): {err}",
                paths.data_dir.display()
            ))
        })?;
        let sandbox = dropkey::local_sandbox::ensure_for(
            &config,
            &secrets,
            &paths.data_dir,
            std::iter::once(SANDBOX_PROFILE),
        )
        .await?;
        let prefs = Prefs::load(&paths.data_dir);
        let mut settings = EngineSettings::new(&paths.data_dir, &config.upload);
        if let Some(n) = prefs.concurrency {
            settings.concurrency = n.clamp(1, crate::prefs::MAX_CONCURRENCY) as usize;
        }
        let engine = Engine::start(config.clone(), secrets.clone(), settings)?;
        // The queue shows what is left to do and what happens from now on; uploads finished
        // in earlier runs are in the history.
        engine.dismiss_finished()?;
        let slots = config
            .watches
            .iter()
            .filter(|w| config.profile(&w.profile).is_some())
            .map(|w| start_watch(&engine, w))
            .collect();
        let http = reqwest::Client::builder()
            .user_agent(concat!("dropkey-app/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(15))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(AppError::internal)?;
        Ok(Self {
            paths,
            config: std::sync::RwLock::new(Arc::new(config)),
            secrets,
            engine,
            prefs: Mutex::new(prefs),
            watches: Mutex::new(slots),
            sandbox: Mutex::new(sandbox),
            http,
            intakes: Mutex::new(Intakes::default()),
            batch: Mutex::new(Batch::default()),
            config_edits: Mutex::new(()),
        })
    }

    /// Stops watching, sends in-flight uploads back to the queue and stops the sandbox.
    pub async fn shutdown(&self) {
        let slots: Vec<WatchSlot> = lock(&self.watches).drain(..).collect();
        for slot in slots {
            slot.watcher.shutdown().await;
        }
        self.engine.shutdown().await;
        let sandbox = lock(&self.sandbox).take();
        if let Some(sandbox) = sandbox {
            sandbox.shutdown().await;
        }
    }

    /// The config as it is now.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn profile(&self, name: &str) -> Result<Profile, AppError> {
        let config = self.config();
        config.profile(name).cloned().ok_or_else(|| {
            AppError::input(format!(
                "unknown profile `{name}`: configured profiles are {}",
                config
                    .profiles
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The profile files go to when nothing says otherwise (a second launch, the tray).
    pub fn default_profile(&self) -> Result<Profile, AppError> {
        let last = lock(&self.prefs).last_profile.clone();
        let config = self.config();
        last.and_then(|name| config.profile(&name))
            .or_else(|| config.profiles.values().find(|p| p.builtin))
            .or_else(|| config.profiles.values().next())
            .cloned()
            .ok_or_else(|| AppError::input("no profile is configured"))
    }

    // -----------------------------------------------------------------------------------------
    // Profiles and secrets (blocking: keychain calls go over D-Bus)

    pub fn list_profiles(&self) -> Vec<ProfileView> {
        let config = self.config();
        let mut views: Vec<ProfileView> = config
            .profiles
            .values()
            .map(|profile| match self.secrets.status(profile) {
                Ok(source) => ProfileStatus::new(profile, source).into(),
                // One unreadable keychain entry must not hide the other profiles.
                Err(err) => ProfileView {
                    secret: SecretSource::Unavailable,
                    secret_problem: Some(err.to_string()),
                    ..ProfileStatus::new(profile, CoreSecretSource::Missing).into()
                },
            })
            .collect();
        views.sort_by_key(|v| (!v.is_default, v.name.clone()));
        views
    }

    /// Stores `secret` for `profile` in the keychain and says where the key now comes from.
    pub fn set_secret(
        &self,
        profile: &str,
        secret: SecretString,
    ) -> Result<SecretSource, AppError> {
        let profile = self.profile(profile)?;
        if profile.builtin {
            return Err(AppError::input(
                "the sandbox profile's key is generated by Dropkey and guards only the local sandbox; it cannot be replaced",
            ));
        }
        {
            use secrecy::ExposeSecret as _;
            let text = secret.expose_secret();
            if text.trim().is_empty() {
                return Err(AppError::input("the key is empty: paste the private key"));
            }
            if text.len() > 4_096 || text.chars().any(char::is_control) {
                return Err(AppError::input(
                    "that does not look like a private key (over 4096 characters, or with line breaks or control characters)",
                ));
            }
        }
        self.secrets.set(&profile, &secret)?;
        self.engine.forget_secret(&profile.name);
        Ok(self.secrets.status(&profile)?.into())
    }

    pub fn delete_secret(&self, profile: &str) -> Result<bool, AppError> {
        let profile = self.profile(profile)?;
        if profile.builtin {
            return Err(AppError::input(
                "the sandbox profile's key is managed by Dropkey; there is nothing to remove",
            ));
        }
        let deleted = self.secrets.delete(&profile)?;
        self.engine.forget_secret(&profile.name);
        Ok(deleted)
    }

    /// A configured profile's settings, for the edit form.
    pub fn profile_settings(&self, name: &str) -> Result<ProfileInput, AppError> {
        let profile = self.profile(name)?;
        if profile.builtin {
            return Err(AppError::input(
                "the sandbox profile is built in and has no settings to edit",
            ));
        }
        Ok(ProfileSpec::from_profile(&profile).into())
    }

    /// Adds or changes a profile in the config file; uploads that start from now on use it.
    /// Blocking (file I/O).
    pub fn save_profile(&self, input: ProfileInput) -> Result<Vec<ProfileView>, AppError> {
        let spec: ProfileSpec = input.into();
        let _edit = lock(&self.config_edits);
        let config = config_edit::upsert_profile(&self.paths, &spec)?;
        self.set_config(config);
        Ok(self.list_profiles())
    }

    /// The addresses in `input` that would receive this profile's key, tokens or files and
    /// that the user has not confirmed yet: not the provider's own hosts, not those the saved
    /// profile already uses.
    pub fn endpoint_hosts_to_confirm(&self, input: &ProfileInput) -> Vec<String> {
        let known: Vec<String> = self
            .config()
            .profile(&input.name)
            .map(|p| match &p.provider {
                CoreProvider::ImageKit(ik) => [
                    Some(&ik.upload_url),
                    Some(&ik.api_url),
                    ik.token_url.as_ref(),
                ]
                .into_iter()
                .flatten()
                .map(|u| u.origin().ascii_serialization())
                .collect(),
                CoreProvider::Cloudinary(cl) => vec![cl.api_url.origin().ascii_serialization()],
            })
            .unwrap_or_default();
        new_endpoint_hosts(input, &known)
    }

    /// Removes a profile from the config file, and its key from the keychain with `with_key`.
    /// Blocking (file I/O, keychain).
    pub fn remove_profile(&self, name: &str, with_key: bool) -> Result<Vec<ProfileView>, AppError> {
        let profile = self.profile(name)?;
        let _edit = lock(&self.config_edits);
        let config = config_edit::remove_profile(&self.paths, &profile.name)?;
        self.set_config(config);
        self.engine.forget_secret(&profile.name);
        if with_key {
            self.secrets.delete(&profile).map_err(|err| {
                AppError::new(
                    crate::error::ErrorKind::Keychain,
                    format!(
                        "profile `{}` was removed from the config, but its key is still in the keychain: {err}",
                        profile.name
                    ),
                )
            })?;
        }
        Ok(self.list_profiles())
    }

    fn set_config(&self, config: Config) {
        self.engine.set_config(config.clone());
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Asks the provider for a file that does not exist: a "not found" proves the address and
    /// the key; a refusal says what is wrong.
    pub async fn test_connection(&self, name: &str) -> Result<ConnectionCheck, AppError> {
        let profile = self.profile(name)?;
        if let CoreProvider::ImageKit(ik) = &profile.provider {
            if ik.auth == dropkey::config::ImageKitAuth::Remote {
                return Ok(ConnectionCheck {
                    ok: false,
                    message:
                        "this profile gets its tokens from a token server; upload a file to test it"
                            .into(),
                });
            }
        }
        let secrets = self.secrets.clone();
        let lookup = profile.clone();
        let secret = tauri::async_runtime::spawn_blocking(move || secrets.get(&lookup))
            .await
            .map_err(AppError::internal)?;
        let (secret, _) = match secret {
            Ok(found) => found,
            Err(err) => {
                return Ok(ConnectionCheck {
                    ok: false,
                    message: err.to_string(),
                })
            }
        };
        let checked = provider::details(
            &self.http,
            &profile,
            &secret,
            CONNECTION_PROBE_ID,
            "image",
            "upload",
        )
        .await;
        Ok(match checked {
            Ok(RemoteFile::Missing | RemoteFile::Present { .. }) => ConnectionCheck {
                ok: true,
                message: format!("Connected: {} accepted the key", profile.provider_name()),
            },
            Err(failure) => ConnectionCheck {
                ok: false,
                message: failure.reason().to_string(),
            },
        })
    }

    // -----------------------------------------------------------------------------------------
    // Uploads

    /// Queues files and folders: folders are walked in the background (an intake), so a drop
    /// of any size answers within [`INTAKE_WAIT`]. A small drop has finished by then and its
    /// result is complete; a large one goes on, reported by [`Core::intake_views`] and
    /// cancelled with [`Core::cancel_intake`].
    pub async fn enqueue_files(
        &self,
        request: EnqueueRequest,
        source: &str,
    ) -> Result<EnqueueResult, AppError> {
        let profile = self.profile(&request.destination.profile)?;
        let intake = self.engine.start_intake(IntakeRequest {
            profile: profile.clone(),
            paths: request.paths.iter().map(PathBuf::from).collect(),
            destination: intake::Destination {
                folder: request.destination.folder,
                tags: request.destination.tags,
                keep_structure: request.keep_structure,
            },
            source: source.to_owned(),
        })?;
        if source == "app" {
            let mut prefs = lock(&self.prefs);
            if prefs.last_profile.as_deref() != Some(profile.name.as_str()) {
                prefs.last_profile = Some(profile.name.clone());
                if let Err(err) = prefs.save(&self.paths.data_dir) {
                    tracing::warn!("cannot save the app preferences: {err}");
                }
            }
        }
        let progress = intake.wait(INTAKE_WAIT).await;
        let running = if progress.finished {
            None
        } else {
            let mut intakes = lock(&self.intakes);
            intakes.next_id = intakes.next_id.wrapping_add(1).max(1);
            let id = intakes.next_id;
            intakes.running.push((id, intake));
            Some(id)
        };
        Ok(EnqueueResult::from_progress(&progress, running))
    }

    /// The intakes still walking, and those that ended since the last call (each reported
    /// once as finished, then forgotten).
    pub fn intake_views(&self) -> Vec<IntakeView> {
        let mut intakes = lock(&self.intakes);
        let views = intakes
            .running
            .iter()
            .map(|(id, intake)| IntakeView::new(*id, &intake.label, &intake.progress()))
            .collect::<Vec<_>>();
        // The same progress the views were made from: one reported finished is the one dropped.
        intakes
            .running
            .retain(|(id, _)| !views.iter().any(|v| v.id == *id && v.finished));
        views
    }

    /// Stops a drop that is still being walked and cancels the uploads it queued.
    pub async fn cancel_intake(&self, id: u32) -> Result<u32, AppError> {
        let intake = {
            let intakes = lock(&self.intakes);
            intakes
                .running
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, intake)| intake.clone())
        };
        let intake = intake.ok_or_else(|| {
            AppError::not_found("that drop has finished queueing (cancel its uploads one by one)")
        })?;
        intake.stop();
        // The walk may queue one more batch before it sees the stop: wait for it to end, so
        // that batch is cancelled too.
        intake.wait(CANCEL_WAIT).await;
        let engine = self.engine.clone();
        let n = tauri::async_runtime::spawn_blocking(move || engine.cancel_intake(intake.id))
            .await
            .map_err(AppError::internal)??;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// One window of the queue view with its counts: the window asks for the rows around its
    /// scroll position, never for the whole queue.
    pub fn queue_page(&self, offset: u32, limit: u32) -> Result<QueuePage, AppError> {
        let limit = limit.clamp(1, MAX_QUEUE_PAGE) as usize;
        let counts = self.engine.queue_counts()?;
        let jobs = self
            .engine
            .queue_page(u64::from(offset), limit)?
            .iter()
            .map(JobView::from)
            .collect();
        Ok(QueuePage {
            counts: QueueCountsView::from(&counts),
            offset,
            jobs,
        })
    }

    /// The queue view's counts.
    pub fn queue_counts(&self) -> Result<QueueCountsView, AppError> {
        Ok(QueueCountsView::from(&self.engine.queue_counts()?))
    }

    /// Takes finished jobs out of the queue view (their history stays), however many.
    pub fn clear_finished(&self) -> Result<u32, AppError> {
        let n = self.engine.dismiss_finished()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Puts every failed or stuck upload of the queue back in the queue, however many.
    pub fn retry_failed(&self) -> Result<u32, AppError> {
        let n = self.engine.retry_failed()?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub fn job_record(&self, id: u32) -> Result<JobRecord, AppError> {
        let id = core_job_id(id)?;
        self.engine
            .job(id)
            .map_err(|_| AppError::not_found(format!("there is no upload {id}")))
    }

    pub fn cancel(&self, id: u32) -> Result<(), AppError> {
        let record = self.job_record(id)?;
        Ok(self.engine.cancel(record.id)?)
    }

    /// Puts a failed, stuck, cancelled or paused upload back in the queue (the engine refuses
    /// the others).
    pub fn retry(&self, id: u32) -> Result<(), AppError> {
        let record = self.job_record(id)?;
        Ok(self.engine.retry(record.id)?)
    }

    pub fn set_uploads_paused(&self, paused: bool) {
        if paused {
            self.engine.pause_all();
        } else {
            self.engine.resume_all();
        }
    }

    // -----------------------------------------------------------------------------------------
    // History

    /// One page of the finished uploads matching `query`, newest first (the store's search
    /// index answers: the page never holds more than `MAX_HISTORY_PAGE` entries).
    pub fn history(&self, query: HistoryQuery) -> Result<HistoryPage, AppError> {
        if query.text.len() > MAX_SEARCH_LEN {
            return Err(AppError::input("that search is too long; use fewer words"));
        }
        let page = self.engine.history_search(&CoreHistoryQuery {
            text: query.text,
            profile: query.profile.filter(|p| !p.is_empty()),
            kind: query.kind.into(),
            limit: query.limit.clamp(1, MAX_HISTORY_PAGE) as usize,
            offset: query.offset as usize,
        })?;
        let config = self.config();
        Ok(HistoryPage {
            entries: page
                .records
                .iter()
                .map(|r| history_entry(r, config.profile(&r.profile)))
                .collect(),
            offset: query.offset,
            total: u32::try_from(page.total).unwrap_or(u32::MAX),
        })
    }

    /// A link to a finished upload that works for `expire_in` seconds, even for a private file.
    pub async fn signed_link(&self, id: u32, expire_in: u32) -> Result<String, AppError> {
        Ok(self.engine.signed_link(core_job_id(id)?, expire_in).await?)
    }

    /// Deletes a finished upload at the provider and marks it deleted in the history. Returns
    /// whether the provider still had it.
    pub async fn delete_upload(&self, id: u32) -> Result<bool, AppError> {
        Ok(self.engine.delete_upload(core_job_id(id)?).await?)
    }

    pub fn last_url(&self) -> Result<Option<String>, AppError> {
        Ok(self
            .engine
            .history(1, None)?
            .into_iter()
            .find_map(|r| r.url))
    }

    /// The newest uploads for the tray's submenu: (name, url).
    pub fn recent(&self, n: usize) -> Vec<(String, String)> {
        self.engine
            .history(n, None)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.url.map(|u| (r.file_name, u)))
            .collect()
    }

    // -----------------------------------------------------------------------------------------
    // Watched folders

    pub fn watches(&self) -> Vec<WatchView> {
        lock(&self.watches)
            .iter()
            .flat_map(|slot| slot.watcher.infos().into_iter().map(watch_view))
            .collect()
    }

    /// Pauses or resumes one watch (`key`) or every watch.
    pub fn set_watch_paused(&self, key: Option<&str>, paused: bool) -> Result<(), AppError> {
        let slots = lock(&self.watches);
        if let Some(key) = key {
            if !slots.iter().any(|s| s.key == key) {
                return Err(AppError::not_found(format!("no watched folder `{key}`")));
            }
        }
        for slot in slots.iter() {
            slot.watcher.set_paused(key, paused);
        }
        Ok(())
    }

    pub fn watching_paused(&self) -> bool {
        let watches = self.watches();
        !watches.is_empty()
            && watches
                .iter()
                .all(|w| w.state == crate::models::WatchState::Paused)
    }

    /// Adds a `[[watch]]` to the config file and starts watching it. Blocking (file I/O).
    pub fn add_watch(&self, input: WatchInput) -> Result<(), AppError> {
        let profile = self.profile(&input.profile)?;
        let spec = WatchSpec {
            path: PathBuf::from(input.path.trim()),
            profile: profile.name.clone(),
            folder: input.folder,
            tags: input.tags.map(|tags| {
                tags.into_iter()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            }),
            recursive: input.recursive,
        };
        let _edit = lock(&self.config_edits);
        let config = config_edit::add_watch(&self.paths, &spec)?;
        let mut slots = lock(&self.watches);
        let fresh: Vec<Watch> = config
            .watches
            .iter()
            .filter(|w| !slots.iter().any(|s| s.key == watch_key(w)))
            .filter(|w| config.profile(&w.profile).is_some())
            .cloned()
            .collect();
        for watch in &fresh {
            slots.push(start_watch(&self.engine, watch));
        }
        drop(slots);
        self.set_config(config);
        Ok(())
    }

    /// Removes a watched folder from the config file and stops watching it.
    pub async fn remove_watch(&self, key: &str) -> Result<(), AppError> {
        if !lock(&self.watches).iter().any(|s| s.key == key) {
            return Err(AppError::not_found(format!("no watched folder `{key}`")));
        }
        // A read and an atomic write of a small file: short enough to do here, and the lock
        // is released before the await below.
        let edited = {
            let _edit = lock(&self.config_edits);
            config_edit::remove_watch(&self.paths, key)
        };
        match edited {
            Ok(config) => self.set_config(config),
            // Already gone from the file (edited by hand): only the running watcher is left.
            Err(config_edit::ConfigEditError::Input(_)) => {}
            Err(err) => return Err(err.into()),
        }
        let slot = {
            let mut slots = lock(&self.watches);
            slots
                .iter()
                .position(|s| s.key == key)
                .map(|index| slots.remove(index))
        };
        if let Some(slot) = slot {
            slot.watcher.shutdown().await;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Status

    pub fn status(&self) -> AppStatus {
        let pending = self.engine.count_unfinished().unwrap_or(0);
        let uploads_paused = self.engine.is_paused();
        let watching_paused = self.watching_paused();
        let batch = *lock(&self.batch);
        let failed = batch.failed.max(batch.last_failed);
        let watch_error = self.watches().iter().any(|w| {
            matches!(
                w.state,
                crate::models::WatchState::Error | crate::models::WatchState::Missing
            )
        });
        let activity = if uploads_paused || watching_paused {
            Activity::Paused
        } else if pending > 0 {
            Activity::Uploading
        } else if failed > 0 || watch_error {
            Activity::Error
        } else {
            Activity::Idle
        };
        AppStatus {
            activity,
            pending: u32::try_from(pending).unwrap_or(u32::MAX),
            uploads_paused,
            watching_paused,
            failed,
            offline: self.engine.offline().map(|o| o.line()),
        }
    }

    /// Counts finished jobs into the current batch. Returns the batch when it just ended
    /// (nothing left to do), for one notification per batch.
    pub fn batch_finished(&self, states: &[JobState]) -> Option<Batch> {
        if states.is_empty() {
            return None;
        }
        let mut batch = lock(&self.batch);
        for state in states {
            match state {
                JobState::Done => batch.done += 1,
                JobState::Failed | JobState::NeedsAttention => batch.failed += 1,
                _ => {}
            }
        }
        drop(batch);
        let idle = self.engine.has_unfinished().is_ok_and(|busy| !busy);
        if !idle {
            return None;
        }
        let mut batch = lock(&self.batch);
        let ended = *batch;
        if ended.done == 0 && ended.failed == 0 {
            return None;
        }
        *batch = Batch {
            last_failed: ended.failed,
            ..Batch::default()
        };
        Some(ended)
    }

    /// Saves a clipboard image as a PNG under the data dir and returns its path.
    pub fn save_image(&self, rgba: &[u8], width: u32, height: u32) -> Result<PathBuf, AppError> {
        Ok(dropkey::pasted::save_png(
            &self.paths.data_dir,
            rgba,
            width,
            height,
        )?)
    }
}

fn start_watch(engine: &Engine, watch: &Watch) -> WatchSlot {
    WatchSlot {
        key: watch_key(watch),
        watcher: Watcher::start(engine.clone(), vec![watch.clone()]),
    }
}

/// Shared handle on the core, which starts in the background: commands wait for it.
#[derive(Default)]
pub struct AppState {
    cell: tokio::sync::OnceCell<Result<Arc<Core>, AppError>>,
}

impl AppState {
    /// The core, started on first use (normally by `setup`).
    pub async fn core(&self) -> Result<Arc<Core>, AppError> {
        self.cell
            .get_or_init(|| async {
                let paths = Paths::from_env()?;
                Core::start(paths).await.map(Arc::new)
            })
            .await
            .clone()
    }

    /// The core if it has started, without waiting (for the tray and window events).
    pub fn ready(&self) -> Option<Arc<Core>> {
        self.cell.get().and_then(|r| r.as_ref().ok()).cloned()
    }
}

/// The provider's own hosts: a profile may always send its key there.
const PROVIDER_HOSTS: &[&str] = &[
    "https://upload.imagekit.io",
    "https://api.imagekit.io",
    "https://api.cloudinary.com",
];

/// The origins of `input`'s key-, token- and file-bearing URLs that are neither the provider's
/// nor in `known`; sorted, once each. Unparsable URLs are left to the config's own check.
fn new_endpoint_hosts(input: &ProfileInput, known: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = [&input.upload_url, &input.api_url, &input.token_url]
        .into_iter()
        .flatten()
        .filter_map(|u| url::Url::parse(u.trim()).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| !PROVIDER_HOSTS.contains(&o.as_str()) && !known.contains(o))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;
    use crate::models::Provider;

    fn input(upload: Option<&str>, api: Option<&str>) -> ProfileInput {
        ProfileInput {
            name: "p".into(),
            provider: Provider::Imagekit,
            auth: None,
            public_key: Some("public_k".into()),
            url_endpoint: Some("https://ik.imagekit.io/x".into()),
            upload_url: upload.map(Into::into),
            api_url: api.map(Into::into),
            token_url: None,
            folder: None,
            tags: Vec::new(),
            cloud_name: None,
            api_key: None,
            private: false,
        }
    }

    #[test]
    fn only_new_non_provider_hosts_need_the_users_word() {
        assert!(new_endpoint_hosts(&input(None, None), &[]).is_empty());
        assert!(new_endpoint_hosts(
            &input(
                Some("https://upload.imagekit.io/api/v2/files/upload"),
                Some("https://api.imagekit.io")
            ),
            &[]
        )
        .is_empty());
        assert_eq!(
            new_endpoint_hosts(
                &input(
                    Some("https://media.example.com/up"),
                    Some("https://media.example.com")
                ),
                &[]
            ),
            ["https://media.example.com"]
        );
        // Already the saved profile's: no new question.
        let known = vec!["https://media.example.com".to_owned()];
        assert!(
            new_endpoint_hosts(&input(Some("https://media.example.com/up"), None), &known)
                .is_empty()
        );
        // Another port is another address.
        assert_eq!(
            new_endpoint_hosts(&input(None, Some("https://media.example.com:8443")), &known),
            ["https://media.example.com:8443"]
        );
    }
}
