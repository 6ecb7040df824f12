//! Watched folders: status, pause/resume, add and remove (both edit the config file).

use tauri::{AppHandle, State};

use super::blocking;
use crate::actions;
use crate::backend::AppState;
use crate::error::AppError;
use crate::grants::Grants;
use crate::models::{WatchInput, WatchView};

#[tauri::command]
#[specta::specta]
pub async fn list_watches(state: State<'_, AppState>) -> Result<Vec<WatchView>, AppError> {
    blocking(&state, |backend| Ok(backend.watches())).await
}

/// Pauses or resumes one watched folder.
#[tauri::command]
#[specta::specta]
pub async fn set_watch_paused(
    state: State<'_, AppState>,
    key: String,
    paused: bool,
) -> Result<(), AppError> {
    blocking(&state, move |backend| {
        backend.set_watch_paused(Some(&key), paused)
    })
    .await
}

/// Pauses or resumes every watched folder (the tray's "Pause watching").
#[tauri::command]
#[specta::specta]
pub async fn set_watching_paused(app: AppHandle, paused: bool) -> Result<(), AppError> {
    actions::set_watching_paused(&app, paused).await
}

/// Adds a `[[watch]]` to the config file and starts watching the folder, which the user must
/// have picked (`pick_folder`) or dropped.
#[tauri::command]
#[specta::specta]
pub async fn add_watch(
    state: State<'_, AppState>,
    grants: State<'_, Grants>,
    watch: WatchInput,
) -> Result<(), AppError> {
    if !grants.allows(std::path::Path::new(&watch.path)) {
        return Err(super::uploads::not_chosen(&watch.path));
    }
    blocking(&state, move |backend| backend.add_watch(watch)).await
}

/// Stops watching a folder and removes it from the config file.
#[tauri::command]
#[specta::specta]
pub async fn remove_watch(state: State<'_, AppState>, key: String) -> Result<(), AppError> {
    state.backend().await?.remove_watch(&key).await
}
