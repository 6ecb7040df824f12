//! The app's backend: what the app holds while it runs (the config, the secrets, the engine,
//! the watchers and the local sandbox) and the operations the commands and the tray share, each
//! validating its input and calling the `dropkey` core for the rules. Nothing here knows about
//! windows or IPC (see the app crate's `commands/` and `tray.rs`, and [`crate::events`]), so
//! tests drive it directly.
//!
//! By concern: `profiles.rs` (profiles, keys, the connection test), `uploads.rs` (drops, the
//! queue view, job controls, pasted images), `history.rs` (pages, links, deletion), `watches.rs`
//! (watched folders) and `status.rs` (the activity the tray and header show, per-batch counts).

mod history;
mod profiles;
mod status;
mod uploads;
mod watches;

use std::sync::{Arc, Mutex, MutexGuard};

use dropkey_core::config::{Config, Paths, Profile, SANDBOX_PROFILE};
use dropkey_core::engine::{Engine, EngineSettings};
use dropkey_core::secrets::Secrets;
use dropkey_sandbox::SandboxHandle;

use crate::error::AppError;
use crate::prefs::Prefs;

pub use status::Batch;
use uploads::Intakes;
use watches::{start_watch, WatchSlot};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running backend. One per process, in Tauri's managed state behind [`AppState`].
pub struct Backend {
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

impl Backend {
    /// Loads the config, starts the local sandbox (for the built-in profile), the engine (which
    /// resumes interrupted jobs) and the configured watches.
    pub async fn start(paths: Paths) -> Result<Self, AppError> {
        let config = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || Config::load(&paths))
                .await
                .map_err(AppError::internal)??
        };
        let secrets = Secrets::new(&paths.data_dir);
        dropkey_core::private_fs::secure_paths(&paths).map_err(|err| {
            AppError::internal(format!(
                "cannot create the data directory {} (mode 0700): {err}",
                paths.data_dir.display()
            ))
        })?;
        let sandbox = dropkey_sandbox::in_process::ensure_for(
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

    fn set_config(&self, config: Config) {
        self.engine.set_config(config.clone());
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }
}

/// Shared handle on the backend, which starts in the background: commands wait for it.
#[derive(Default)]
pub struct AppState {
    cell: tokio::sync::OnceCell<Result<Arc<Backend>, AppError>>,
}

impl AppState {
    /// The backend, started on first use (normally by `setup`).
    pub async fn backend(&self) -> Result<Arc<Backend>, AppError> {
        self.cell
            .get_or_init(|| async {
                let paths = Paths::from_env()?;
                Backend::start(paths).await.map(Arc::new)
            })
            .await
            .clone()
    }

    /// The backend if it has started, without waiting (for the tray and window events).
    pub fn ready(&self) -> Option<Arc<Backend>> {
        self.cell.get().and_then(|r| r.as_ref().ok()).cloned()
    }
}
