//! Global shortcuts in Settings: what each action's is and whether it works, and changing one
//! (checked and registered first, saved only once it works).

use tauri::{AppHandle, State};

use crate::backend::{lock, AppState};
use crate::error::AppError;
use crate::models::{ShortcutAction, ShortcutsView};
use crate::shortcuts;

#[tauri::command]
#[specta::specta]
pub async fn get_shortcuts(
    app: AppHandle,
    state: State<'_, AppState>,
) -> Result<ShortcutsView, AppError> {
    let backend = state.backend().await?;
    let saved = lock(&backend.prefs).shortcuts.clone();
    Ok(shortcuts::view(&app, &saved))
}

/// Gives `action` the shortcut `accelerator` (empty: none). Refused, and not saved, when it does
/// not parse, is another action's, is taken by another application, or this session has no
/// global shortcuts; the message says which.
#[tauri::command]
#[specta::specta]
pub async fn set_shortcut(
    app: AppHandle,
    state: State<'_, AppState>,
    action: ShortcutAction,
    accelerator: String,
) -> Result<ShortcutsView, AppError> {
    let backend = state.backend().await?;
    // Blocking: registering waits for the main thread.
    tauri::async_runtime::spawn_blocking(move || {
        let saved = lock(&backend.prefs).shortcuts.clone();
        shortcuts::change(&app, &saved, action, &accelerator).map_err(AppError::input)?;
        let mut prefs = lock(&backend.prefs);
        let text = accelerator.trim();
        if text.is_empty() {
            prefs.shortcuts.remove(&action);
        } else {
            prefs.shortcuts.insert(action, text.to_owned());
        }
        prefs
            .save(&backend.paths.data_dir)
            .map_err(|err| AppError::internal(format!("cannot save the preferences: {err}")))?;
        let saved = prefs.shortcuts.clone();
        drop(prefs);
        Ok(shortcuts::view(&app, &saved))
    })
    .await
    .map_err(AppError::internal)?
}
