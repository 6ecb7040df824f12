//! The commands the UI may call, by concern. Each must also be listed in `ipc.rs`, declared in
//! `build.rs` and granted in `capabilities/default.json`. Each validates its input (in `Backend`,
//! whatever the UI checked), calls the backend, and maps the result to IPC types (`models`).
//! Blocking work (keychain over D-Bus, SQLite, file metadata) runs on the blocking pool. No
//! command returns a secret: `set_secret` takes one and answers only where the key now lives.

pub mod app;
pub mod history;
pub mod profiles;
pub mod shortcuts;
pub mod uploads;
pub mod watches;

use std::sync::Arc;

use tauri::State;

use crate::backend::{AppState, Backend};
use crate::error::AppError;

/// Runs `f` with the backend on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &State<'_, AppState>,
    f: impl FnOnce(&Backend) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let backend: Arc<Backend> = state.backend().await?;
    tauri::async_runtime::spawn_blocking(move || f(&backend))
        .await
        .map_err(AppError::internal)?
}
