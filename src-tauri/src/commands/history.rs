//! Finished uploads: list, signed links, remote delete, the last URL.

use tauri::{AppHandle, State};

use super::blocking;
use crate::actions;
use crate::backend::AppState;
use crate::error::AppError;
use crate::models::{HistoryPage, HistoryQuery, UiEvent};

/// One page of the finished uploads matching `query`, newest first, and the number of
/// matches (at most 1,000 entries a call: the screen pages as it scrolls).
#[tauri::command]
#[specta::specta]
pub async fn history(
    state: State<'_, AppState>,
    query: HistoryQuery,
) -> Result<HistoryPage, AppError> {
    blocking(&state, move |backend| backend.history(query)).await
}

/// A link that opens the upload for `expire_in` seconds (60 s to 7 days), private files too.
#[tauri::command]
#[specta::specta]
pub async fn signed_link(
    state: State<'_, AppState>,
    id: u32,
    expire_in: u32,
) -> Result<String, AppError> {
    state.backend().await?.signed_link(id, expire_in).await
}

/// Deletes the upload at the provider; false when it was already gone there.
#[tauri::command]
#[specta::specta]
pub async fn delete_upload(
    app: AppHandle,
    state: State<'_, AppState>,
    id: u32,
) -> Result<bool, AppError> {
    let existed = state.backend().await?.delete_upload(id).await?;
    crate::events::send(&app, vec![UiEvent::Deleted { ids: vec![id] }]);
    crate::tray::refresh_menu(&app);
    Ok(existed)
}

/// Copies the newest upload's URL to the clipboard (the tray's "Copy last URL") and returns
/// it; none when nothing was uploaded yet.
#[tauri::command]
#[specta::specta]
pub async fn copy_last_url(app: AppHandle) -> Result<Option<String>, AppError> {
    actions::copy_last_url(&app).await
}

/// Puts text on the clipboard (History's Copy). Never a file path: the clipboard's paths are
/// the user's (`upload_clipboard` trusts them), so the page may not put one there.
#[tauri::command]
#[specta::specta]
pub async fn copy_text(app: AppHandle, text: String) -> Result<(), AppError> {
    use tauri_plugin_clipboard_manager::ClipboardExt as _;
    if text.len() > MAX_COPY {
        return Err(AppError::input("that is too much text to copy"));
    }
    if !actions::paths_in_text(&text).is_empty() {
        return Err(AppError::input(
            "the text holds a file path; Dropkey copies links, not paths",
        ));
    }
    app.clipboard().write_text(text).map_err(|err| {
        AppError::new(
            crate::error::ErrorKind::Clipboard,
            format!("cannot write the clipboard: {err}"),
        )
    })
}

const MAX_COPY: usize = 64 * 1024;
