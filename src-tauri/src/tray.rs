//! The tray icon: show/hide, each watched folder with its state (click opens the Watched
//! folders screen), pause/resume watching, upload the clipboard, copy the last URL, recent
//! uploads (click copies), quit. Its tooltip says idle / uploading / paused / error.
//! Every item calls the same function as the window's button for it (`actions`).

use std::sync::Mutex;

use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::actions;
use crate::backend::{lock, AppState};
use crate::models::{Activity, AppStatus, UiEvent};
use dropkey_core::watch::overview::summary_line;

const TRAY_ID: &str = "dropkey";
const RECENT: usize = 10;

/// The URLs behind the "Recent uploads" items, by position.
#[derive(Default)]
pub struct TrayState {
    recent: Mutex<Vec<String>>,
}

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<TrayIcon<R>> {
    app.manage(TrayState::default());
    let menu = build_menu(app)?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("Dropkey: idle")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu_event)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                actions::toggle_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)
}

fn build_menu<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let backend = app.state::<AppState>().ready();
    let visible = app
        .get_webview_window(actions::MAIN_WINDOW)
        .and_then(|w| w.is_visible().ok())
        .unwrap_or(true);
    let watching_paused = backend.as_ref().is_some_and(|c| c.watching_paused());
    let watches = backend
        .as_ref()
        .map(|c| c.watch_overviews())
        .unwrap_or_default();
    let has_watches = !watches.is_empty();
    let recent = backend
        .as_ref()
        .map(|c| c.recent(RECENT))
        .unwrap_or_default();
    if let Some(state) = app.try_state::<TrayState>() {
        *lock(&state.recent) = recent.iter().map(|(_, url)| url.clone()).collect();
    }

    let toggle = MenuItem::with_id(
        app,
        "toggle",
        if visible {
            "Hide Dropkey"
        } else {
            "Show Dropkey"
        },
        true,
        None::<&str>,
    )?;
    let watching = MenuItem::with_id(
        app,
        "watching",
        if watching_paused {
            "Resume watching"
        } else {
            "Pause watching"
        },
        has_watches,
        None::<&str>,
    )?;
    let clipboard = MenuItem::with_id(app, "clipboard", "Upload clipboard", true, None::<&str>)?;
    let copy_last = MenuItem::with_id(
        app,
        "copy-last",
        "Copy last URL",
        !recent.is_empty(),
        None::<&str>,
    )?;
    let recent_menu = Submenu::with_id(app, "recent", "Recent uploads", !recent.is_empty())?;
    for (index, (name, _)) in recent.iter().enumerate() {
        let label: String = name.chars().take(48).collect();
        recent_menu.append(&MenuItem::with_id(
            app,
            format!("recent:{index}"),
            label,
            true,
            None::<&str>,
        )?)?;
    }
    let quit = MenuItem::with_id(app, "quit", "Quit Dropkey", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&toggle, &PredefinedMenuItem::separator(app)?])?;
    // One line per watched folder, in the words of the Watched folders screen.
    for (index, watch) in watches.iter().enumerate() {
        menu.append(&MenuItem::with_id(
            app,
            format!("watch:{index}"),
            summary_line(watch),
            true,
            None::<&str>,
        )?)?;
    }
    menu.append_items(&[
        &watching,
        &clipboard,
        &copy_last,
        &recent_menu,
        &PredefinedMenuItem::separator(app)?,
        &quit,
    ])?;
    Ok(menu)
}

/// Rebuilds the menu (labels and recent uploads follow the state).
pub fn refresh_menu<R: Runtime>(app: &AppHandle<R>) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    match build_menu(app) {
        Ok(menu) => {
            let _ = tray.set_menu(Some(menu));
        }
        Err(err) => tracing::warn!("cannot rebuild the tray menu: {err}"),
    }
}

pub fn tooltip(status: &AppStatus) -> String {
    if let Some(offline) = &status.offline {
        return format!("Dropkey: {offline}");
    }
    match status.activity {
        Activity::Idle => "Dropkey: idle".to_owned(),
        Activity::Uploading => format!("Dropkey: uploading ({} left)", status.pending),
        Activity::Paused if status.uploads_paused => "Dropkey: uploads paused".to_owned(),
        Activity::Paused => "Dropkey: watching paused".to_owned(),
        Activity::Error => format!("Dropkey: {} upload(s) failed", status.failed),
    }
}

pub fn set_status<R: Runtime>(app: &AppHandle<R>, status: &AppStatus) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(tooltip(status)));
    }
}

fn notice<R: Runtime>(app: &AppHandle<R>, message: String, error: bool) {
    crate::events::send(app, vec![UiEvent::Notice { message, error }]);
}

fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    run_item(app, event.id().as_ref());
}

/// Does what the menu item `id` does (also for the global shortcuts of the same actions).
pub fn run_item<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let app = app.clone();
    match id {
        "toggle" => actions::toggle_window(&app),
        "quit" => actions::quit(&app),
        "watching" => {
            tauri::async_runtime::spawn(async move {
                let paused = app
                    .state::<AppState>()
                    .ready()
                    .is_some_and(|c| c.watching_paused());
                if let Err(err) = actions::set_watching_paused(&app, !paused).await {
                    notice(&app, err.message, true);
                }
            });
        }
        "clipboard" => {
            tauri::async_runtime::spawn(async move {
                match actions::upload_clipboard(&app, None, true).await {
                    Ok(result) => notice(
                        &app,
                        format!("{} file(s) from the clipboard queued", result.queued),
                        false,
                    ),
                    Err(err) => notice(&app, err.message, true),
                }
            });
        }
        "copy-last" => {
            tauri::async_runtime::spawn(async move {
                if let Err(err) = actions::copy_last_url(&app).await {
                    notice(&app, err.message, true);
                }
            });
        }
        other if other.starts_with("watch:") => {
            actions::show_window(&app);
            crate::events::send(
                &app,
                vec![UiEvent::Navigate {
                    screen: "watches".into(),
                }],
            );
        }
        other => {
            if let Some(index) = other
                .strip_prefix("recent:")
                .and_then(|i| i.parse::<usize>().ok())
            {
                let url = app
                    .try_state::<TrayState>()
                    .and_then(|s| lock(&s.recent).get(index).cloned());
                if let Some(url) = url {
                    if let Err(err) = actions::copy_text(&app, &url) {
                        notice(&app, err.message, true);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltip_names_the_state() {
        let status = |activity, uploads_paused| AppStatus {
            activity,
            pending: 3,
            uploads_paused,
            watching_paused: false,
            failed: 2,
            offline: None,
        };
        assert_eq!(tooltip(&status(Activity::Idle, false)), "Dropkey: idle");
        assert_eq!(
            tooltip(&status(Activity::Uploading, false)),
            "Dropkey: uploading (3 left)"
        );
        assert_eq!(
            tooltip(&status(Activity::Paused, true)),
            "Dropkey: uploads paused"
        );
        assert_eq!(
            tooltip(&status(Activity::Paused, false)),
            "Dropkey: watching paused"
        );
        assert_eq!(
            tooltip(&status(Activity::Error, false)),
            "Dropkey: 2 upload(s) failed"
        );
        let offline = AppStatus {
            offline: Some("offline — 3 waiting, next try in 4 s".into()),
            ..status(Activity::Uploading, false)
        };
        assert_eq!(
            tooltip(&offline),
            "Dropkey: offline — 3 waiting, next try in 4 s"
        );
    }
}
