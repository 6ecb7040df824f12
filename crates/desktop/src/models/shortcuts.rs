//! Global shortcuts as Settings shows and edits them.

use serde::{Deserialize, Serialize};

/// What a global shortcut does: the tray's actions (`actions.rs`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, specta::Type,
)]
#[serde(rename_all = "snake_case")]
pub enum ShortcutAction {
    UploadClipboard,
    CopyLastUrl,
    ShowWindow,
    PauseWatching,
}

impl ShortcutAction {
    pub const ALL: [Self; 4] = [
        Self::UploadClipboard,
        Self::CopyLastUrl,
        Self::ShowWindow,
        Self::PauseWatching,
    ];

    /// As Settings names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::UploadClipboard => "Upload the clipboard",
            Self::CopyLastUrl => "Copy the last URL",
            Self::ShowWindow => "Show the window",
            Self::PauseWatching => "Pause or resume watching",
        }
    }
}

/// Whether a shortcut works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ShortcutStatus {
    /// None set.
    Off,
    /// Registered with the system: it fires from any application.
    Active,
    /// Set, but not registered: `problem` says why (taken, shared, not parsable, unavailable).
    Problem,
}

/// One action's shortcut.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct ShortcutView {
    pub action: ShortcutAction,
    pub label: String,
    /// As saved, e.g. `Ctrl+Alt+U`; empty when none.
    pub accelerator: String,
    pub status: ShortcutStatus,
    pub problem: Option<String>,
}

/// Every action's shortcut, and whether this session can have global shortcuts at all.
#[derive(Debug, Clone, Serialize, specta::Type, PartialEq)]
pub struct ShortcutsView {
    /// Why global shortcuts cannot work in this session (e.g. Wayland without X11), if so.
    pub unavailable: Option<String>,
    pub shortcuts: Vec<ShortcutView>,
}
