//! Watched folders: one watcher per `[[watch]]` entry, so the Watched folders screen can pause,
//! add, edit or remove one without touching the others. What a watch's state and counts are is
//! the core's (`dropkey_core::watch::overview`); this file looks them up for the shell.

use std::path::PathBuf;

use dropkey_core::config::Watch;
use dropkey_core::config_edit::{self, WatchSpec};
use dropkey_core::engine::Engine;
use dropkey_core::watch::overview::{self, WatchOverview};
use dropkey_core::watch::{watch_key, WatchInfo, WatchStatus, Watcher};

use super::{lock, Backend};
use crate::error::AppError;
use crate::models::{watch_view, WatchInput, WatchView};

/// One watched folder of the config file, with its own watcher so that it can be stopped
/// alone when it is removed or edited.
pub(super) struct WatchSlot {
    key: String,
    pub(super) watcher: Watcher,
}

impl Backend {
    /// The watchers' own reports: cheap (no store), for the status and the tray's toggle.
    pub fn watch_infos(&self) -> Vec<WatchInfo> {
        lock(&self.watches)
            .iter()
            .flat_map(|slot| slot.watcher.infos())
            .collect()
    }

    /// Every watch with its state, counts and newest uploads. Blocking (a few indexed counts
    /// per watch).
    pub fn watch_overviews(&self) -> Vec<WatchOverview> {
        let infos = self.watch_infos();
        if infos.is_empty() {
            return Vec::new();
        }
        let config = self.config();
        let offline = self.engine.offline();
        let day_start = overview::local_day_start(dropkey_core::unix_now());
        infos
            .iter()
            .filter_map(|info| {
                overview::overview(&self.engine, &config, info, offline.as_ref(), day_start)
                    .map_err(|err| tracing::warn!("watch {}: {err}", info.path.display()))
                    .ok()
            })
            .collect()
    }

    pub fn watches(&self) -> Vec<WatchView> {
        let config = self.config();
        self.watch_overviews()
            .into_iter()
            .map(|o| {
                let watch = config.watches.iter().find(|w| watch_key(w) == o.key);
                watch_view(o, watch)
            })
            .collect()
    }

    fn watch_info(&self, key: &str) -> Result<WatchInfo, AppError> {
        self.watch_infos()
            .into_iter()
            .find(|w| w.key == key)
            .ok_or_else(|| AppError::not_found(format!("no watched folder `{key}`")))
    }

    /// Pauses or resumes one watch (`key`) or every watch.
    pub fn set_watch_paused(&self, key: Option<&str>, paused: bool) -> Result<(), AppError> {
        if let Some(key) = key {
            self.watch_info(key)?;
        }
        for slot in lock(&self.watches).iter() {
            slot.watcher.set_paused(key, paused);
        }
        Ok(())
    }

    pub fn watching_paused(&self) -> bool {
        let watches = self.watch_infos();
        !watches.is_empty() && watches.iter().all(|w| w.status == WatchStatus::Paused)
    }

    /// The folder of the watch `key` (to open it in the file manager).
    pub fn watch_folder(&self, key: &str) -> Result<PathBuf, AppError> {
        Ok(self.watch_info(key)?.path)
    }

    /// Queues the failed uploads of the watch `key` again. Returns how many. Blocking.
    pub fn retry_watch_failed(&self, key: &str) -> Result<usize, AppError> {
        let info = self.watch_info(key)?;
        Ok(overview::retry_failed(&self.engine, &info.path)?)
    }

    /// Adds a `[[watch]]` to the config file and starts watching it. Blocking (file I/O).
    pub fn add_watch(&self, input: WatchInput) -> Result<(), AppError> {
        let spec = self.watch_spec(input)?;
        let _edit = lock(&self.config_edits);
        let config = config_edit::add_watch(&self.paths, &spec)?;
        self.start_new_watches(&config.watches, &config);
        self.set_config(config);
        Ok(())
    }

    /// Changes the profile, remote folder, tags or subfolder choice of the watch `key` in the
    /// config file, then watches it again with them (paused if it was).
    pub async fn edit_watch(&self, key: &str, input: WatchInput) -> Result<(), AppError> {
        let was_paused = self.watch_info(key)?.status == WatchStatus::Paused;
        let spec = self.watch_spec(input)?;
        // As in `remove_watch`: a small file, and the lock is released before the await.
        let config = {
            let _edit = lock(&self.config_edits);
            config_edit::edit_watch(&self.paths, key, &spec)?
        };
        if let Some(slot) = self.take_slot(key) {
            slot.watcher.shutdown().await;
        }
        let started = self.start_new_watches(&config.watches, &config);
        if was_paused {
            for key in &started {
                self.set_watch_paused(Some(key), true)?;
            }
        }
        self.set_config(config);
        Ok(())
    }

    /// Removes a watched folder from the config file and stops watching it.
    pub async fn remove_watch(&self, key: &str) -> Result<(), AppError> {
        self.watch_info(key)?;
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
        if let Some(slot) = self.take_slot(key) {
            slot.watcher.shutdown().await;
        }
        Ok(())
    }

    fn watch_spec(&self, input: WatchInput) -> Result<WatchSpec, AppError> {
        let profile = self.profile(&input.profile)?;
        Ok(WatchSpec {
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
        })
    }

    fn take_slot(&self, key: &str) -> Option<WatchSlot> {
        let mut slots = lock(&self.watches);
        let index = slots.iter().position(|s| s.key == key)?;
        Some(slots.remove(index))
    }

    /// Starts a watcher for each of `watches` that has none yet. Returns their keys.
    fn start_new_watches(
        &self,
        watches: &[Watch],
        config: &dropkey_core::config::Config,
    ) -> Vec<String> {
        let mut slots = lock(&self.watches);
        let fresh: Vec<Watch> = watches
            .iter()
            .filter(|w| !slots.iter().any(|s| s.key == watch_key(w)))
            .filter(|w| config.profile(&w.profile).is_some())
            .cloned()
            .collect();
        fresh
            .iter()
            .map(|watch| {
                let slot = start_watch(&self.engine, watch);
                let key = slot.key.clone();
                slots.push(slot);
                key
            })
            .collect()
    }
}

pub(super) fn start_watch(engine: &Engine, watch: &Watch) -> WatchSlot {
    WatchSlot {
        key: watch_key(watch),
        watcher: Watcher::start(engine.clone(), vec![watch.clone()]),
    }
}
