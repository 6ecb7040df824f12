//! Profiles and their keys.

use secrecy::SecretString;
use tauri::State;

use super::blocking;
use crate::core::AppState;
use crate::error::AppError;
use crate::models::{ConnectionCheck, ProfileView, SecretSource};

/// Every profile (the built-in sandbox first) and whether its secret is set.
#[tauri::command]
#[specta::specta]
pub async fn list_profiles(state: State<'_, AppState>) -> Result<Vec<ProfileView>, AppError> {
    blocking(&state, |core| Ok(core.list_profiles())).await
}

/// Stores a profile's private key in the keychain. The key goes one way: the answer is only
/// where it now comes from.
#[tauri::command]
#[specta::specta]
pub async fn set_secret(
    state: State<'_, AppState>,
    profile: String,
    secret: String,
) -> Result<SecretSource, AppError> {
    let secret = SecretString::from(secret);
    blocking(&state, move |core| core.set_secret(&profile, secret)).await
}

/// Removes a profile's key from the keychain; whether there was one.
#[tauri::command]
#[specta::specta]
pub async fn delete_secret(state: State<'_, AppState>, profile: String) -> Result<bool, AppError> {
    blocking(&state, move |core| core.delete_secret(&profile)).await
}

/// Asks the provider whether it accepts the profile's key.
#[tauri::command]
#[specta::specta]
pub async fn test_connection(
    state: State<'_, AppState>,
    profile: String,
) -> Result<ConnectionCheck, AppError> {
    state.core().await?.test_connection(&profile).await
}
