//! Watched folders: one watcher per `[[watch]]` entry, so Settings can pause, add or remove
//! one without touching the others.

use std::path::PathBuf;

use dropkey_core::config::Watch;
use dropkey_core::config_edit::{self, WatchSpec};
use dropkey_core::engine::Engine;
use dropkey_core::watch::{watch_key, Watcher};

use super::{lock, Backend};
use crate::error::AppError;
use crate::models::{watch_view, WatchInput, WatchView};

/// One watched folder of the config file, with its own watcher so that it can be stopped
/// alone when Settings removes it.
pub(super) struct WatchSlot {
    key: String,
    pub(super) watcher: Watcher,
}

impl Backend {
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
}

pub(super) fn start_watch(engine: &Engine, watch: &Watch) -> WatchSlot {
    WatchSlot {
        key: watch_key(watch),
        watcher: Watcher::start(engine.clone(), vec![watch.clone()]),
    }
}
