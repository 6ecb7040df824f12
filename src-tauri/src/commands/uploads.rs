//! The upload queue: adding files (drop, picker, paste), progress, cancel, retry, pause.

use tauri::{AppHandle, State};

use super::blocking;
use crate::actions;
use crate::backend::AppState;
use crate::error::AppError;
use crate::events::UiEvents;
use crate::grants::Grants;
use crate::models::{Destination, EnqueueRequest, EnqueueResult, QueuePage, UiEvent};
use crate::native;

/// Makes this page the one that receives queue changes, progress, new uploads, watch status
/// and tray notices; answers the id it pulls them with (`next_events`).
#[tauri::command]
#[specta::specta]
pub async fn subscribe(events: State<'_, UiEvents>) -> Result<u32, AppError> {
    Ok(events.subscribe())
}

/// The events since the last pull, as soon as there are any (batched, at most five answers a
/// second), or none after 20 s; fails once another page subscribed.
#[tauri::command]
#[specta::specta]
pub async fn next_events(
    events: State<'_, UiEvents>,
    subscriber: u32,
) -> Result<Vec<UiEvent>, AppError> {
    events
        .next(subscriber, std::time::Duration::from_secs(20))
        .await
        .map_err(|err| AppError::new(crate::error::ErrorKind::Superseded, err))
}

/// One window of the queue (rows `offset..offset + limit`, oldest first) with the counts by
/// state. The window reads the rows around its scroll position, never the whole queue.
#[tauri::command]
#[specta::specta]
pub async fn queue_page(
    state: State<'_, AppState>,
    offset: u32,
    limit: u32,
) -> Result<QueuePage, AppError> {
    blocking(&state, move |backend| backend.queue_page(offset, limit)).await
}

/// Queues files and folders the user dropped or picked, for one destination. Any other path
/// is refused: the page holds the paths, but only Rust grants them (see `grants`).
#[tauri::command]
#[specta::specta]
pub async fn enqueue_files(
    state: State<'_, AppState>,
    grants: State<'_, Grants>,
    request: EnqueueRequest,
) -> Result<EnqueueResult, AppError> {
    if let Some(path) = grants.first_refused(request.paths.iter().map(String::as_str)) {
        return Err(not_chosen(path));
    }
    state.backend().await?.enqueue_files(request).await
}

/// Stops walking a drop that is still being queued and cancels the uploads it queued; how many
/// were cancelled.
#[tauri::command]
#[specta::specta]
pub async fn cancel_intake(state: State<'_, AppState>, id: u32) -> Result<u32, AppError> {
    state.backend().await?.cancel_intake(id).await
}

pub fn not_chosen(path: &str) -> AppError {
    AppError::new(
        crate::error::ErrorKind::NotChosen,
        format!("{path} was not dropped on or picked in Dropkey's window: it uploads and watches only what you choose there"),
    )
}

/// The system file picker (shown by Rust, so its answer is the user's); the chosen files, none
/// when cancelled.
#[tauri::command]
#[specta::specta]
pub async fn pick_files(
    app: AppHandle,
    grants: State<'_, Grants>,
) -> Result<Vec<String>, AppError> {
    let picked = native::pick(&app, false).await?;
    grants.grant(picked.iter().cloned());
    Ok(picked.iter().map(|p| p.display().to_string()).collect())
}

/// The system folder picker; the chosen folder, or none when cancelled.
#[tauri::command]
#[specta::specta]
pub async fn pick_folder(
    app: AppHandle,
    grants: State<'_, Grants>,
) -> Result<Option<String>, AppError> {
    let picked = native::pick(&app, true).await?;
    grants.grant(picked.iter().cloned());
    Ok(picked.first().map(|p| p.display().to_string()))
}

/// Uploads what the clipboard holds (files it names, or an image); the tray's action too.
#[tauri::command]
#[specta::specta]
pub async fn upload_clipboard(
    app: AppHandle,
    destination: Destination,
) -> Result<EnqueueResult, AppError> {
    actions::upload_clipboard(&app, Some(destination), false).await
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_job(state: State<'_, AppState>, id: u32) -> Result<(), AppError> {
    blocking(&state, move |backend| backend.cancel(id)).await
}

#[tauri::command]
#[specta::specta]
pub async fn retry_job(state: State<'_, AppState>, id: u32) -> Result<(), AppError> {
    blocking(&state, move |backend| backend.retry(id)).await
}

/// Uploads a file that was skipped as already uploaded; the new job's id.
#[tauri::command]
#[specta::specta]
pub async fn upload_anyway(state: State<'_, AppState>, id: u32) -> Result<u32, AppError> {
    blocking(&state, move |backend| backend.upload_anyway(id)).await
}

/// Pauses (true) or resumes (false) every upload.
#[tauri::command]
#[specta::specta]
pub async fn set_uploads_paused(state: State<'_, AppState>, paused: bool) -> Result<(), AppError> {
    blocking(&state, move |backend| {
        backend.set_uploads_paused(paused);
        Ok(())
    })
    .await
}

/// Drops finished jobs from the queue view (they stay in the history); how many.
#[tauri::command]
#[specta::specta]
pub async fn clear_finished(state: State<'_, AppState>) -> Result<u32, AppError> {
    blocking(&state, |backend| backend.clear_finished()).await
}

/// Retries every failed or stuck upload of the queue; how many.
#[tauri::command]
#[specta::specta]
pub async fn retry_failed(state: State<'_, AppState>) -> Result<u32, AppError> {
    blocking(&state, |backend| backend.retry_failed()).await
}
