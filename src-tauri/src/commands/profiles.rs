//! Profiles and their keys.

use secrecy::SecretString;
use tauri::{AppHandle, State};

use super::blocking;
use crate::backend::AppState;
use crate::error::AppError;
use crate::models::{ConnectionCheck, ProfileInput, ProfileView, SecretSource};
use crate::native;

/// Every profile (the built-in sandbox first) and whether its secret is set.
#[tauri::command]
#[specta::specta]
pub async fn list_profiles(state: State<'_, AppState>) -> Result<Vec<ProfileView>, AppError> {
    blocking(&state, |backend| Ok(backend.list_profiles())).await
}

/// A profile's settings for the edit form (public settings only: never the key).
#[tauri::command]
#[specta::specta]
pub async fn profile_settings(
    state: State<'_, AppState>,
    name: String,
) -> Result<ProfileInput, AppError> {
    blocking(&state, move |backend| backend.profile_settings(&name)).await
}

/// Adds or changes a profile in the config file; answers the profiles as they now are. A new
/// address for the key, tokens or files (not the provider's own, not the profile's before) is
/// saved only after the user confirms it in a native dialog: the page alone cannot redirect a
/// key.
#[tauri::command]
#[specta::specta]
pub async fn save_profile(
    app: AppHandle,
    state: State<'_, AppState>,
    profile: ProfileInput,
) -> Result<Vec<ProfileView>, AppError> {
    let new_hosts = state.backend().await?.endpoint_hosts_to_confirm(&profile);
    if !new_hosts.is_empty() {
        let message = format!(
            "Profile \u{201c}{}\u{201d} will send its private key, upload tokens or files to:\n\n{}\n\nContinue only if you typed this address yourself and trust it.",
            profile.name,
            new_hosts.join("\n")
        );
        if !native::confirm(
            &app,
            "Send the key to a new address?",
            message,
            "Use this address",
        )
        .await?
        {
            return Err(AppError::input(format!(
                "not saved: the new address {} was not confirmed",
                new_hosts.join(", ")
            )));
        }
    }
    blocking(&state, move |backend| backend.save_profile(profile)).await
}

/// Removes a profile from the config file (and its key from the keychain with `with_key`).
#[tauri::command]
#[specta::specta]
pub async fn remove_profile(
    state: State<'_, AppState>,
    name: String,
    with_key: bool,
) -> Result<Vec<ProfileView>, AppError> {
    blocking(&state, move |backend| {
        backend.remove_profile(&name, with_key)
    })
    .await
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
    blocking(&state, move |backend| backend.set_secret(&profile, secret)).await
}

/// Removes a profile's key from the keychain; whether there was one.
#[tauri::command]
#[specta::specta]
pub async fn delete_secret(state: State<'_, AppState>, profile: String) -> Result<bool, AppError> {
    blocking(&state, move |backend| backend.delete_secret(&profile)).await
}

/// Asks the provider whether it accepts the profile's key.
#[tauri::command]
#[specta::specta]
pub async fn test_connection(
    state: State<'_, AppState>,
    profile: String,
) -> Result<ConnectionCheck, AppError> {
    state.backend().await?.test_connection(&profile).await
}
