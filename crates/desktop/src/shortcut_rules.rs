//! The rules of a global shortcut, pure: it parses, has a modifier unless it is a function key,
//! is not another action's; and whether this session can have global shortcuts at all.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use global_hotkey::hotkey::HotKey as Shortcut;

use crate::models::ShortcutAction;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortcutError {
    #[error("“{accelerator}” is not a shortcut ({why}): write the modifiers, then one key, e.g. Ctrl+Alt+U")]
    Invalid { accelerator: String, why: String },
    #[error("“{accelerator}” has no modifier, so it would take that key from every application: add Ctrl, Alt, Shift or Super (or use F1 to F24)")]
    NoModifier { accelerator: String },
    #[error("“{accelerator}” is already the shortcut for “{other}”: choose another key, or clear that one first")]
    Shared {
        accelerator: String,
        other: &'static str,
    },
    #[error("“{accelerator}” is taken by another application or the desktop: choose another key")]
    Taken { accelerator: String },
    #[error("“{accelerator}” could not be registered: {why}")]
    Failed { accelerator: String, why: String },
    #[error("{0}")]
    Unavailable(String),
}

/// The shortcut `accelerator` names; `None` for an empty one (no shortcut).
pub fn parse(accelerator: &str) -> Result<Option<Shortcut>, ShortcutError> {
    let text = accelerator.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let shortcut = Shortcut::from_str(text).map_err(|err| ShortcutError::Invalid {
        accelerator: text.to_owned(),
        why: err.to_string(),
    })?;
    let key = shortcut.key.to_string();
    let function_key = key
        .strip_prefix('F')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if shortcut.mods.is_empty() && !function_key {
        return Err(ShortcutError::NoModifier {
            accelerator: text.to_owned(),
        });
    }
    Ok(Some(shortcut))
}

/// The other action of `saved` whose shortcut is `shortcut` (written in any order or case).
pub fn shared_with(
    saved: &BTreeMap<ShortcutAction, String>,
    action: ShortcutAction,
    shortcut: &Shortcut,
) -> Option<ShortcutAction> {
    saved
        .iter()
        .filter(|(other, _)| **other != action)
        .find(|(_, text)| matches!(parse(text), Ok(Some(s)) if s == *shortcut))
        .map(|(other, _)| *other)
}

/// Why this session cannot have global shortcuts, or `None` when it can. `var` reads the
/// environment. On Linux they are X11 key grabs: a Wayland session works only through
/// XWayland's `DISPLAY`.
pub fn session_problem(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return None;
    }
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if set("DISPLAY").is_some() {
        return None;
    }
    let wayland = set("WAYLAND_DISPLAY").is_some()
        || var("XDG_SESSION_TYPE").is_some_and(|t| t.eq_ignore_ascii_case("wayland"));
    Some(if wayland {
        "global shortcuts are not available in this session: Wayland without X11 (DISPLAY is not set) lets no application take keys from the others; bind a key in your desktop's keyboard settings instead".to_owned()
    } else {
        "global shortcuts are not available in this session: there is no X display (DISPLAY is not set)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators_parse_with_a_modifier_or_as_a_function_key() {
        let ctrl_alt_u = parse("Ctrl+Alt+U").unwrap().unwrap();
        // Written in another order, case or name, it is the same shortcut.
        assert_eq!(parse(" alt+control+u ").unwrap(), Some(ctrl_alt_u));
        assert_eq!(
            parse("CmdOrCtrl+Shift+KeyV").unwrap(),
            parse("ctrl+shift+v").unwrap()
        );
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("   ").unwrap(), None);
        assert!(parse("F9").unwrap().is_some());
        assert!(parse("Shift+F12").unwrap().is_some());
        for bad in ["Ctrl+", "Ctrl+Alt", "Ctrl+Banana", "Ctrl+U+V", "+"] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, ShortcutError::Invalid { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("e.g. Ctrl+Alt+U"), "{err}");
        }
        let err = parse("U").unwrap_err();
        assert!(matches!(err, ShortcutError::NoModifier { .. }), "{err:?}");
        assert!(err.to_string().contains("add Ctrl, Alt, Shift or Super"));
        assert!(matches!(
            parse("Fn").unwrap_err(),
            ShortcutError::Invalid { .. } | ShortcutError::NoModifier { .. }
        ));
    }

    #[test]
    fn two_actions_may_not_share_a_shortcut_however_it_is_written() {
        let saved: BTreeMap<ShortcutAction, String> = [
            (ShortcutAction::CopyLastUrl, "Ctrl+Alt+L".to_owned()),
            (ShortcutAction::ShowWindow, "".to_owned()),
            (ShortcutAction::PauseWatching, "not a key".to_owned()),
        ]
        .into();
        let same = parse("alt+ctrl+l").unwrap().unwrap();
        assert_eq!(
            shared_with(&saved, ShortcutAction::UploadClipboard, &same),
            Some(ShortcutAction::CopyLastUrl)
        );
        // Its own shortcut again is no conflict, nor is another key.
        assert_eq!(
            shared_with(&saved, ShortcutAction::CopyLastUrl, &same),
            None
        );
        let other = parse("Ctrl+Alt+K").unwrap().unwrap();
        assert_eq!(
            shared_with(&saved, ShortcutAction::UploadClipboard, &other),
            None
        );
        let err = ShortcutError::Shared {
            accelerator: "alt+ctrl+l".into(),
            other: ShortcutAction::CopyLastUrl.label(),
        };
        assert_eq!(
            err.to_string(),
            "“alt+ctrl+l” is already the shortcut for “Copy the last URL”: choose another key, or clear that one first"
        );
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn wayland_without_x11_has_no_global_shortcuts() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(session_problem(env(&[("DISPLAY", ":0")])), None);
        // XWayland: the X display takes the grabs.
        assert_eq!(
            session_problem(env(&[
                ("DISPLAY", ":1"),
                ("WAYLAND_DISPLAY", "wayland-0"),
                ("XDG_SESSION_TYPE", "wayland")
            ])),
            None
        );
        for wayland in [
            env(&[("WAYLAND_DISPLAY", "wayland-0")]),
            env(&[("XDG_SESSION_TYPE", "wayland"), ("DISPLAY", "")]),
        ] {
            let problem = session_problem(wayland).unwrap();
            assert!(
                problem.starts_with("global shortcuts are not available in this session: Wayland"),
                "{problem}"
            );
        }
        let problem = session_problem(env(&[])).unwrap();
        assert!(problem.contains("no X display"), "{problem}");
    }
}
