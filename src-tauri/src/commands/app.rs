//! The app itself: status, settings, launch at login, the first-paint signal.

use std::sync::OnceLock;
use std::time::Instant;

use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt as _;

use super::blocking;
use crate::backend::{lock, AppState};
use crate::error::AppError;
use crate::models::{AppStatus, SettingsUpdate, SettingsView};
use crate::prefs::{MAX_CONCURRENCY, MAX_TEMPLATE_LEN};

/// When `main` started, for the first-paint figure.
pub static STARTED: OnceLock<Instant> = OnceLock::new();

#[tauri::command]
#[specta::specta]
pub async fn app_status(state: State<'_, AppState>) -> Result<AppStatus, AppError> {
    blocking(&state, |backend| Ok(backend.status())).await
}

fn launch_at_login(app: &AppHandle) -> bool {
    app.autolaunch().is_enabled().unwrap_or(false)
}

#[tauri::command]
#[specta::specta]
pub async fn get_settings(
    app: AppHandle,
    state: State<'_, AppState>,
) -> Result<SettingsView, AppError> {
    let login = launch_at_login(&app);
    blocking(&state, move |backend| {
        let prefs = lock(&backend.prefs).clone();
        Ok(SettingsView {
            notifications: prefs.notifications,
            close_to_tray: prefs.close_to_tray,
            concurrency: u32::try_from(backend.engine.concurrency()).unwrap_or(MAX_CONCURRENCY),
            launch_at_login: login,
            copy_template: prefs.copy_template,
            config_file: backend.paths.config_file.display().to_string(),
            data_dir: backend.paths.data_dir.display().to_string(),
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn set_settings(
    state: State<'_, AppState>,
    update: SettingsUpdate,
) -> Result<(), AppError> {
    if !(1..=MAX_CONCURRENCY).contains(&update.concurrency) {
        return Err(AppError::input(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    if update.copy_template.len() > MAX_TEMPLATE_LEN
        || update
            .copy_template
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(AppError::input(format!(
            "the copy template is over {MAX_TEMPLATE_LEN} characters or has control characters"
        )));
    }
    blocking(&state, move |backend| {
        let mut prefs = lock(&backend.prefs);
        prefs.notifications = update.notifications;
        prefs.close_to_tray = update.close_to_tray;
        prefs.concurrency = Some(update.concurrency);
        prefs.copy_template = update.copy_template;
        prefs
            .save(&backend.paths.data_dir)
            .map_err(|err| AppError::internal(format!("cannot save the preferences: {err}")))?;
        backend.engine.set_concurrency(update.concurrency as usize);
        Ok(())
    })
    .await
}

/// Turns launching Dropkey at login on or off; answers what is now in effect.
#[tauri::command]
#[specta::specta]
pub async fn set_launch_at_login(app: AppHandle, enabled: bool) -> Result<bool, AppError> {
    let launcher = app.autolaunch();
    let done = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    done.map_err(|err| AppError::internal(format!("cannot change launch at login: {err}")))?;
    Ok(launch_at_login(&app))
}

/// The window painted its first screen: logged once, for `bench/app.sh` (which reads stderr,
/// whatever the log level).
#[tauri::command]
#[specta::specta]
#[allow(clippy::print_stderr)]
pub async fn app_ready() -> Result<(), AppError> {
    static ONCE: OnceLock<()> = OnceLock::new();
    if ONCE.set(()).is_ok() {
        let ms = STARTED.get().map(|t| t.elapsed().as_millis()).unwrap_or(0);
        eprintln!("dropkey-app: first-paint {ms} ms after start");
    }
    Ok(())
}
