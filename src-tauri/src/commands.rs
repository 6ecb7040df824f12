//! The commands the UI may call (each must also be granted in `capabilities/`). Each one
//! validates its input, calls the core, and maps the result to IPC types. No command takes or
//! returns a secret.

use serde::Serialize;

use crate::error::AppError;
use dropkey::config::{Config, Paths};
use dropkey::profile::ProfileStatus;
use dropkey::secrets::{SecretSource as CoreSecretSource, Secrets};

#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Imagekit,
    Cloudinary,
}

/// Where a profile's private key comes from; the key itself never crosses IPC.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Keychain,
    Env,
    File,
    Missing,
    /// The keychain could not be asked (no Secret Service, locked): see `secret_problem`.
    Unavailable,
}

impl From<CoreSecretSource> for SecretSource {
    fn from(source: CoreSecretSource) -> Self {
        match source {
            CoreSecretSource::Keychain => Self::Keychain,
            CoreSecretSource::Env => Self::Env,
            CoreSecretSource::File => Self::File,
            CoreSecretSource::Missing => Self::Missing,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct ProfileView {
    pub name: String,
    pub provider: Provider,
    pub auth: Option<String>,
    pub destination: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub secret: SecretSource,
    /// Why the secret's source is unknown, with the fix, when `secret` is `unavailable`.
    pub secret_problem: Option<String>,
    pub is_default: bool,
}

impl From<ProfileStatus> for ProfileView {
    fn from(status: ProfileStatus) -> Self {
        Self {
            provider: if status.provider == "cloudinary" {
                Provider::Cloudinary
            } else {
                Provider::Imagekit
            },
            name: status.name,
            auth: status.auth.map(str::to_owned),
            destination: status.destination,
            folder: status.folder,
            tags: status.tags,
            secret: status.secret.into(),
            secret_problem: None,
            is_default: status.is_default,
        }
    }
}

/// Every profile (the built-in sandbox first) and whether its secret is set.
#[tauri::command]
#[specta::specta]
pub async fn list_profiles() -> Result<Vec<ProfileView>, AppError> {
    // Keychain look-ups are blocking D-Bus calls: keep them off the UI thread.
    tauri::async_runtime::spawn_blocking(list_profiles_blocking)
        .await
        .map_err(AppError::internal)?
}

fn list_profiles_blocking() -> Result<Vec<ProfileView>, AppError> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths)?;
    let secrets = Secrets::new(&paths.data_dir);
    let mut views = Vec::with_capacity(config.profiles.len());
    for profile in config.profiles.values() {
        // One unreadable keychain entry must not hide the other profiles: show it per profile.
        let view = match secrets.status(profile) {
            Ok(source) => ProfileStatus::new(profile, source).into(),
            Err(err) => ProfileView {
                secret: SecretSource::Unavailable,
                secret_problem: Some(err.to_string()),
                ..ProfileStatus::new(profile, CoreSecretSource::Missing).into()
            },
        };
        views.push(view);
    }
    views.sort_by_key(|v: &ProfileView| (!v.is_default, v.name.clone()));
    Ok(views)
}
