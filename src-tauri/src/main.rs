//! The Dropkey desktop app: a thin Tauri shell. Every capability lives in `dropkey-desktop`
//! (the app's state and operations, IPC types, event batching, preferences) over the `dropkey`
//! core; this crate adapts them to the window and the desktop.
//!
//! # Layout
//! - [`commands`]: the `#[tauri::command]` functions, by concern, over
//!   `dropkey_desktop::backend`; [`ipc`] lists them and generates the UI's TypeScript types
//!   from `dropkey_desktop::models`.
//! - [`events`]: sends to the window's event queue, and runs the desktop crate's forwarding loop
//!   with this app's clipboard, tray and notifications.
//! - [`tray`] and [`actions`]: the tray menu and the actions it shares with the window;
//!   [`shortcuts`]: the same actions on global shortcuts; [`native`]: native dialogs.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod actions;
mod commands;
mod events;
mod ipc;
mod native;
mod shortcuts;
mod tray;

// The desktop core's modules, under the names the adapters use (`crate::backend::Backend`...).
use dropkey_desktop::{backend, error, grants, models, prefs};

use tauri::{DragDropEvent, Manager, RunEvent, WindowEvent};

use crate::backend::{lock, AppState};
use crate::events::UiEvents;
use crate::models::{DragState, UiEvent};

// Without a window there is no other place to say why the app did not start.
#[allow(clippy::print_stderr)]
fn main() {
    // First, before any thread starts: WebKit's processes, xdg-open and every other child would
    // inherit DROPKEY_SECRET_* keys.
    dropkey_core::secrets::capture_env();
    let _ = commands::app::STARTED.set(std::time::Instant::now());
    software_rendering_by_default();
    init_logging();
    let ipc = ipc::builder();
    let builder = tauri::Builder::default()
        // First: a second launch hands its files to this one and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            actions::show_window(app);
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                actions::open_files(&app, argv, cwd.into()).await;
            });
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ));
    let app = shortcuts::with_plugin(builder)
        .manage(AppState::default())
        .manage(shortcuts::Shortcuts::default())
        .manage(UiEvents::default())
        .manage(grants::Grants::default())
        .invoke_handler(ipc.invoke_handler())
        .setup(move |app| {
            ipc.mount_events(app);
            setup(app.handle());
            Ok(())
        })
        .on_window_event(on_window_event)
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: Dropkey could not start its window: {err}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            // In-flight uploads go back to the queue; the next start resumes them.
            if let Some(backend) = app.state::<AppState>().ready() {
                tauri::async_runtime::block_on(async {
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_secs(3), backend.shutdown())
                            .await;
                });
            }
        }
    });
}

/// Wiring only: start the backend in the background, then the event forwarder and the tray.
fn setup(app: &tauri::AppHandle) {
    if let Err(err) = tray::create(app) {
        // No tray (e.g. no StatusNotifier host): the window still works.
        tracing::warn!("no tray icon: {err}");
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        match app.state::<AppState>().backend().await {
            Ok(backend) => {
                tray::refresh_menu(&app);
                let saved = lock(&backend.prefs).shortcuts.clone();
                let handle = app.clone();
                // Off the main thread: registering waits for it.
                let _ = tauri::async_runtime::spawn_blocking(move || {
                    shortcuts::register_saved(&handle, &saved)
                })
                .await;
                let args: Vec<String> = std::env::args().collect();
                let cwd = std::env::current_dir().unwrap_or_default();
                actions::open_files(&app, args, cwd).await;
                events::forward(app, backend).await;
            }
            Err(err) => tracing::error!("Dropkey could not start: {}", err.message),
        }
    });
}

fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    let app = window.app_handle();
    match event {
        WindowEvent::CloseRequested { api, .. } => {
            let to_tray = app
                .state::<AppState>()
                .ready()
                .is_none_or(|backend| lock(&backend.prefs).close_to_tray);
            if to_tray && app.tray_by_id("dropkey").is_some() {
                api.prevent_close();
                let _ = window.hide();
                tray::refresh_menu(app);
            }
        }
        WindowEvent::DragDrop(drag) => {
            let (state, paths) = match drag {
                DragDropEvent::Enter { paths, .. } => (DragState::Enter, paths.clone()),
                DragDropEvent::Drop { paths, .. } => {
                    // GTK gave these to Rust: the user dropped them, the page did not make them up.
                    app.state::<grants::Grants>().grant(paths.iter().cloned());
                    (DragState::Drop, paths.clone())
                }
                DragDropEvent::Leave => (DragState::Leave, Vec::new()),
                _ => return,
            };
            let paths = paths.iter().map(|p| p.display().to_string()).collect();
            events::send(app, vec![UiEvent::Drag { state, paths }]);
        }
        _ => {}
    }
}

/// Dropkey's window is flat 2D (lists, text, progress bars): WebKitGTK's GPU compositing buys
/// it nothing and, measured with `bench/app.sh`, costs about 90 MiB of idle memory, 0.1 s of
/// start-up and, where GL is software (llvmpipe), most frames while a queue moves. A user who
/// wants it back sets `WEBKIT_DISABLE_COMPOSITING_MODE=0`.
fn software_rendering_by_default() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        // Before any thread starts: WebKit's processes inherit the variable.
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DROPKEY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
