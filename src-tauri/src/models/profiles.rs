//! Profiles as Settings lists and edits them, and where their keys come from.

use serde::{Deserialize, Serialize};

use dropkey_core::config::Provider as CoreProvider;
use dropkey_core::config_edit::ProfileSpec;
use dropkey_core::profile::ProfileStatus;
use dropkey_core::secrets::SecretSource as CoreSecretSource;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Imagekit,
    Cloudinary,
}

impl From<&CoreProvider> for Provider {
    fn from(provider: &CoreProvider) -> Self {
        match provider {
            CoreProvider::ImageKit(_) => Self::Imagekit,
            CoreProvider::Cloudinary(_) => Self::Cloudinary,
        }
    }
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

/// A profile's settings as the edit form shows and sends them. Public settings only: the
/// private key has its own one-way command (`set_secret`).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
pub struct ProfileInput {
    pub name: String,
    pub provider: Provider,
    /// ImageKit: `v2`, `v1` or `remote`.
    pub auth: Option<String>,
    pub public_key: Option<String>,
    pub url_endpoint: Option<String>,
    pub upload_url: Option<String>,
    pub api_url: Option<String>,
    pub token_url: Option<String>,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub cloud_name: Option<String>,
    pub api_key: Option<String>,
    pub private: bool,
}

impl From<ProfileSpec> for ProfileInput {
    fn from(spec: ProfileSpec) -> Self {
        Self {
            provider: if spec.provider == "cloudinary" {
                Provider::Cloudinary
            } else {
                Provider::Imagekit
            },
            name: spec.name,
            auth: spec.auth,
            public_key: spec.public_key,
            url_endpoint: spec.url_endpoint,
            upload_url: spec.upload_url,
            api_url: spec.api_url,
            token_url: spec.token_url,
            folder: spec.folder,
            tags: spec.tags,
            cloud_name: spec.cloud_name,
            api_key: spec.api_key,
            private: spec.private,
        }
    }
}

impl From<ProfileInput> for ProfileSpec {
    fn from(input: ProfileInput) -> Self {
        Self {
            name: input.name,
            provider: match input.provider {
                Provider::Imagekit => "imagekit",
                Provider::Cloudinary => "cloudinary",
            }
            .to_owned(),
            auth: input.auth,
            public_key: input.public_key,
            url_endpoint: input.url_endpoint,
            upload_url: input.upload_url,
            api_url: input.api_url,
            token_url: input.token_url,
            folder: input.folder,
            tags: input.tags,
            cloud_name: input.cloud_name,
            api_key: input.api_key,
            private: input.private,
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
}
