//! Global shortcuts: the tray's actions (upload the clipboard, copy the last URL, show the
//! window, pause watching) on keys that work from any application, kept in the app's
//! preferences and registered with the system through tauri-plugin-global-shortcut.
//!
//! The rules of a shortcut live in `dropkey_desktop::shortcut_rules`: it must parse, have a
//! modifier (unless it is a function key: a bare letter would be taken from every
//! application), not be another action's, and be granted by the system; and whether this session can have global shortcuts at all (they are
//! X11 key grabs on Linux: not on Wayland without an X display, where the plugin would fail
//! silently). Nothing is silent: each action carries its status, and a change that cannot
//! apply is refused with the reason and left unsaved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_global_shortcut::{GlobalShortcutExt as _, Shortcut, ShortcutState};

use crate::backend::lock;
use crate::models::{ShortcutAction, ShortcutStatus, ShortcutView, ShortcutsView};
pub use dropkey_desktop::shortcut_rules::{parse, session_problem, shared_with, ShortcutError};

fn this_session_problem() -> Option<String> {
    session_problem(|name| std::env::var(name).ok())
}

/// Adds the plugin when the session can have global shortcuts (without a display its setup
/// would fail and stop the app).
pub fn with_plugin<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    if let Some(problem) = this_session_problem() {
        tracing::info!("{problem}");
        return builder;
    }
    builder.plugin(
        tauri_plugin_global_shortcut::Builder::new()
            .with_handler(|app, shortcut, event| {
                if event.state == ShortcutState::Pressed {
                    fire(app, shortcut);
                }
            })
            .build(),
    )
}

/// What is registered now, and why the rest is not.
#[derive(Default)]
pub struct Shortcuts {
    state: Mutex<Registered>,
}

#[derive(Default)]
struct Registered {
    active: HashMap<ShortcutAction, Shortcut>,
    problems: HashMap<ShortcutAction, String>,
}

fn unavailable<R: Runtime>(app: &AppHandle<R>) -> Option<String> {
    this_session_problem().or_else(|| {
        app.try_state::<tauri_plugin_global_shortcut::GlobalShortcut<R>>()
            .is_none()
            .then(|| "global shortcuts are not available in this session".to_owned())
    })
}

/// Registers `shortcut` for `action`. Blocking: the plugin waits for the main thread, so never
/// call it from there.
fn register<R: Runtime>(
    app: &AppHandle<R>,
    accelerator: &str,
    shortcut: Shortcut,
) -> Result<(), ShortcutError> {
    app.global_shortcut().register(shortcut).map_err(|err| {
        let why = err.to_string();
        // The system's refusal (an X11 BadAccess: someone else grabbed it) comes back as
        // "already registered": this app never registers one shortcut twice.
        if why.contains("already registered") {
            ShortcutError::Taken {
                accelerator: accelerator.to_owned(),
            }
        } else {
            ShortcutError::Failed {
                accelerator: accelerator.to_owned(),
                why,
            }
        }
    })
}

/// Registers the saved shortcuts (at start), noting why any could not be. Blocking.
pub fn register_saved<R: Runtime>(app: &AppHandle<R>, saved: &BTreeMap<ShortcutAction, String>) {
    let Some(state) = app.try_state::<Shortcuts>() else {
        return;
    };
    if unavailable(app).is_some() {
        return;
    }
    let mut seen: BTreeMap<ShortcutAction, String> = BTreeMap::new();
    for (&action, text) in saved {
        let outcome = parse(text).and_then(|parsed| {
            let Some(shortcut) = parsed else {
                return Ok(None);
            };
            if let Some(other) = shared_with(&seen, action, &shortcut) {
                return Err(ShortcutError::Shared {
                    accelerator: text.trim().to_owned(),
                    other: other.label(),
                });
            }
            register(app, text.trim(), shortcut).map(|()| Some(shortcut))
        });
        seen.insert(action, text.clone());
        let mut registered = lock(&state.state);
        match outcome {
            Ok(Some(shortcut)) => {
                registered.active.insert(action, shortcut);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!("global shortcut for {}: {err}", action.label());
                registered.problems.insert(action, err.to_string());
            }
        }
    }
}

/// Gives `action` the shortcut `accelerator` (empty: none) in the system, replacing its old
/// one; on any refusal the old one stays and the error says why. The caller saves the
/// preference only on success. Blocking.
pub fn change<R: Runtime>(
    app: &AppHandle<R>,
    saved: &BTreeMap<ShortcutAction, String>,
    action: ShortcutAction,
    accelerator: &str,
) -> Result<(), ShortcutError> {
    let parsed = parse(accelerator)?;
    if let Some(shortcut) = &parsed {
        if let Some(other) = shared_with(saved, action, shortcut) {
            return Err(ShortcutError::Shared {
                accelerator: accelerator.trim().to_owned(),
                other: other.label(),
            });
        }
    }
    let state = app.try_state::<Shortcuts>();
    let current = state
        .as_ref()
        .and_then(|s| lock(&s.state).active.get(&action).copied());
    if parsed.is_some() && parsed == current {
        return Ok(());
    }
    if parsed.is_some() {
        if let Some(problem) = unavailable(app) {
            return Err(ShortcutError::Unavailable(problem));
        }
    }
    if let Some(old) = current {
        let _ = app.global_shortcut().unregister(old);
    }
    if let Some(shortcut) = parsed {
        if let Err(err) = register(app, accelerator.trim(), shortcut) {
            if let Some(old) = current {
                let _ = app.global_shortcut().register(old);
            }
            return Err(err);
        }
    }
    if let Some(state) = state {
        let mut registered = lock(&state.state);
        registered.problems.remove(&action);
        match parsed {
            Some(shortcut) => registered.active.insert(action, shortcut),
            None => registered.active.remove(&action),
        };
    }
    Ok(())
}

/// Every action's shortcut as saved, with whether it works now.
pub fn view<R: Runtime>(
    app: &AppHandle<R>,
    saved: &BTreeMap<ShortcutAction, String>,
) -> ShortcutsView {
    let unavailable = unavailable(app);
    let state = app.try_state::<Shortcuts>();
    let registered = state.as_ref().map(|s| lock(&s.state));
    let shortcuts = ShortcutAction::ALL
        .into_iter()
        .map(|action| {
            let accelerator = saved
                .get(&action)
                .map(|t| t.trim().to_owned())
                .unwrap_or_default();
            let problem = registered
                .as_ref()
                .and_then(|r| r.problems.get(&action).cloned());
            let active = registered
                .as_ref()
                .is_some_and(|r| r.active.contains_key(&action));
            let (status, problem) = if accelerator.is_empty() {
                (ShortcutStatus::Off, None)
            } else if let Some(why) = unavailable.clone().or(problem) {
                (ShortcutStatus::Problem, Some(why))
            } else if active {
                (ShortcutStatus::Active, None)
            } else {
                (
                    ShortcutStatus::Problem,
                    Some("not registered yet: Dropkey is starting".to_owned()),
                )
            };
            ShortcutView {
                action,
                label: action.label().to_owned(),
                accelerator,
                status,
                problem,
            }
        })
        .collect();
    ShortcutsView {
        unavailable,
        shortcuts,
    }
}

/// Runs the action whose shortcut was pressed: the tray's own handling of the same item.
fn fire<R: Runtime>(app: &AppHandle<R>, shortcut: &Shortcut) {
    let action = app.try_state::<Shortcuts>().and_then(|s| {
        lock(&s.state)
            .active
            .iter()
            .find(|(_, s)| *s == shortcut)
            .map(|(a, _)| *a)
    });
    match action {
        Some(ShortcutAction::ShowWindow) => crate::actions::show_window(app),
        Some(ShortcutAction::UploadClipboard) => crate::tray::run_item(app, "clipboard"),
        Some(ShortcutAction::CopyLastUrl) => crate::tray::run_item(app, "copy-last"),
        Some(ShortcutAction::PauseWatching) => crate::tray::run_item(app, "watching"),
        None => {}
    }
}
