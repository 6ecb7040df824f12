//! The app's own preferences (not the shared TOML config, which the CLI reads too): kept as
//! JSON in `<data dir>/app.json`, written atomically. Holds no secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::models::ShortcutAction;

const FILE: &str = "app.json";
pub const MAX_TEMPLATE_LEN: usize = 2_000;
/// The same range as the config file's `[upload] concurrency`.
pub const MAX_CONCURRENCY: u32 = dropkey_core::config::MAX_CONCURRENCY as u32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// A notification when a batch finishes or fails.
    pub notifications: bool,
    /// Closing the window keeps Dropkey running in the tray.
    pub close_to_tray: bool,
    /// Uploads in flight; `None` keeps the config's `[upload] concurrency`. Applied at start
    /// and whenever Settings changes it.
    pub concurrency: Option<u32>,
    /// The "copy as template" format: `{url}`, `{name}`, `{size}`.
    pub copy_template: String,
    /// The destination last used in the window, for files handed over by a second launch.
    pub last_profile: Option<String>,
    /// Global shortcuts by action, as typed (`Ctrl+Alt+U`); an action that is absent has none.
    /// None by default: a global shortcut takes its keys from every other application.
    pub shortcuts: BTreeMap<ShortcutAction, String>,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            notifications: true,
            close_to_tray: true,
            concurrency: None,
            copy_template: "[{name}]({url})".to_owned(),
            last_profile: None,
            shortcuts: BTreeMap::new(),
        }
    }
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl Prefs {
    /// The saved preferences; defaults when there are none or they cannot be read (a broken
    /// file is logged and replaced on the next save, never a reason not to start).
    pub fn load(data_dir: &Path) -> Self {
        match std::fs::read(file(data_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                tracing::warn!("{}: {err}; using the default preferences", FILE);
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        dropkey_core::private_fs::create_dir_all(data_dir)?;
        let tmp = data_dir.join(format!("{FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        dropkey_core::private_fs::create(&tmp)?.write_all(&text)?;
        std::fs::rename(tmp, file(data_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Prefs::load(dir.path()), Prefs::default());
        let prefs = Prefs {
            notifications: false,
            concurrency: Some(3),
            shortcuts: [(ShortcutAction::CopyLastUrl, "Ctrl+Alt+L".to_owned())].into(),
            ..Prefs::default()
        };
        prefs.save(dir.path()).unwrap();
        assert_eq!(Prefs::load(dir.path()), prefs);
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        assert_eq!(Prefs::load(dir.path()), Prefs::default());
    }
}
