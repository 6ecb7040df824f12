//! Watched folders: their overviews, pause/resume, retry failed, open in the file manager, add,
//! edit and remove (the last three edit the config file).

use tauri::{AppHandle, State};
use tauri_plugin_opener::OpenerExt as _;

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

/// Changes a watched folder's profile, remote folder, tags or subfolder choice (its folder
/// stays; `watch.path` is ignored).
#[tauri::command]
#[specta::specta]
pub async fn edit_watch(
    state: State<'_, AppState>,
    key: String,
    watch: WatchInput,
) -> Result<(), AppError> {
    state.backend().await?.edit_watch(&key, watch).await
}

/// Queues a watched folder's failed uploads again. Returns how many.
#[tauri::command]
#[specta::specta]
pub async fn retry_watch_failed(state: State<'_, AppState>, key: String) -> Result<u32, AppError> {
    blocking(&state, move |backend| {
        let n = backend.retry_watch_failed(&key)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    })
    .await
}

/// Opens a watched folder in the file manager. The page names the watch, never a path: only
/// folders in the config can be opened, from Rust (the opener's page-side path commands stay
/// ungranted).
#[tauri::command]
#[specta::specta]
pub async fn open_watch_folder(
    app: AppHandle,
    state: State<'_, AppState>,
    key: String,
) -> Result<(), AppError> {
    let folder = state.backend().await?.watch_folder(&key)?;
    if !folder.is_dir() {
        return Err(AppError::not_found(format!(
            "{} does not exist (deleted or unmounted?): nothing to open",
            folder.display()
        )));
    }
    app.opener()
        .open_path(folder.to_string_lossy(), None::<&str>)
        .map_err(|err| {
            AppError::internal(format!(
                "cannot open {} in the file manager: {err}; is a file manager installed (xdg-open)?",
                folder.display()
            ))
        })
}
