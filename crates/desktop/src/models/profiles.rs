//! Profiles as Settings lists and edits them, and where their keys come from.

use serde::{Deserialize, Serialize};

use dropkey_core::config::{
    ImageKitAuth, MetadataPolicy, OnDuplicate as CoreOnDuplicate, Provider as CoreProvider,
    ProviderKind, Resize,
};
use dropkey_core::config_edit::ProfileSpec;
use dropkey_core::profile::ProfileStatus;
use dropkey_core::secrets::SecretSource as CoreSecretSource;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Imagekit,
    Cloudinary,
}

impl From<ProviderKind> for Provider {
    fn from(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::ImageKit => Self::Imagekit,
            ProviderKind::Cloudinary => Self::Cloudinary,
        }
    }
}

impl From<Provider> for ProviderKind {
    fn from(provider: Provider) -> Self {
        match provider {
            Provider::Imagekit => Self::ImageKit,
            Provider::Cloudinary => Self::Cloudinary,
        }
    }
}

impl From<&CoreProvider> for Provider {
    fn from(provider: &CoreProvider) -> Self {
        provider.kind().into()
    }
}

/// How an ImageKit profile authenticates uploads.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// Upload API V2: a JWT per upload.
    V2,
    /// Upload API V1: token + expire + signature.
    V1,
    /// Tokens from a team token server (`dropkey serve`).
    Remote,
}

impl From<ImageKitAuth> for Auth {
    fn from(auth: ImageKitAuth) -> Self {
        match auth {
            ImageKitAuth::V2 => Self::V2,
            ImageKitAuth::V1 => Self::V1,
            ImageKitAuth::Remote => Self::Remote,
        }
    }
}

impl From<Auth> for ImageKitAuth {
    fn from(auth: Auth) -> Self {
        match auth {
            Auth::V2 => Self::V2,
            Auth::V1 => Self::V1,
            Auth::Remote => Self::Remote,
        }
    }
}

/// What is removed from files' metadata before upload (`dropkey_core::metadata`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Metadata {
    Keep,
    StripLocation,
    StripPrivate,
    StripAll,
}

impl From<MetadataPolicy> for Metadata {
    fn from(policy: MetadataPolicy) -> Self {
        match policy {
            MetadataPolicy::Keep => Self::Keep,
            MetadataPolicy::StripLocation => Self::StripLocation,
            MetadataPolicy::StripPrivate => Self::StripPrivate,
            MetadataPolicy::StripAll => Self::StripAll,
        }
    }
}

impl From<Metadata> for MetadataPolicy {
    fn from(policy: Metadata) -> Self {
        match policy {
            Metadata::Keep => Self::Keep,
            Metadata::StripLocation => Self::StripLocation,
            Metadata::StripPrivate => Self::StripPrivate,
            Metadata::StripAll => Self::StripAll,
        }
    }
}

/// What happens to a file already uploaded with the same settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    Skip,
    Upload,
    Ask,
}

impl From<CoreOnDuplicate> for OnDuplicate {
    fn from(action: CoreOnDuplicate) -> Self {
        match action {
            CoreOnDuplicate::Skip => Self::Skip,
            CoreOnDuplicate::Upload => Self::Upload,
            CoreOnDuplicate::Ask => Self::Ask,
        }
    }
}

impl From<OnDuplicate> for CoreOnDuplicate {
    fn from(action: OnDuplicate) -> Self {
        match action {
            OnDuplicate::Skip => Self::Skip,
            OnDuplicate::Upload => Self::Upload,
            OnDuplicate::Ask => Self::Ask,
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
    pub auth: Option<Auth>,
    pub destination: String,
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Metadata,
    pub on_duplicate: OnDuplicate,
    pub secret: SecretSource,
    /// Why the secret's source is unknown, with the fix, when `secret` is `unavailable`.
    pub secret_problem: Option<String>,
    pub is_default: bool,
}

impl From<ProfileStatus> for ProfileView {
    fn from(status: ProfileStatus) -> Self {
        Self {
            provider: status.provider.into(),
            name: status.name,
            auth: status.auth.map(Auth::from),
            destination: status.destination,
            folder: status.folder,
            tags: status.tags,
            metadata: status.metadata.into(),
            on_duplicate: status.on_duplicate.into(),
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
    /// ImageKit's scheme; none for Cloudinary (and the default, V2, for ImageKit).
    pub auth: Option<Auth>,
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
    pub metadata: Metadata,
    pub on_duplicate: OnDuplicate,
    /// Images larger than this on their long side are scaled down; none: sent at their size.
    pub max_dimension: Option<u32>,
    /// JPEG quality of resized images (1 to 100).
    pub quality: Option<u8>,
}

impl From<ProfileSpec> for ProfileInput {
    fn from(spec: ProfileSpec) -> Self {
        Self {
            provider: spec.provider.into(),
            name: spec.name,
            auth: spec.auth.map(Auth::from),
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
            metadata: spec.metadata.into(),
            on_duplicate: spec.on_duplicate.into(),
            max_dimension: spec.resize.map(|r| r.max_dimension),
            quality: spec.resize.map(|r| r.quality),
        }
    }
}

impl From<ProfileInput> for ProfileSpec {
    fn from(input: ProfileInput) -> Self {
        Self {
            name: input.name,
            provider: input.provider.into(),
            auth: input.auth.map(ImageKitAuth::from),
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
            metadata: input.metadata.into(),
            on_duplicate: input.on_duplicate.into(),
            resize: input.max_dimension.map(|max_dimension| Resize {
                max_dimension,
                quality: input.quality.unwrap_or(Resize::DEFAULT_QUALITY),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, specta::Type, PartialEq, Eq)]
pub struct ConnectionCheck {
    pub ok: bool,
    pub message: String,
}

impl From<dropkey_core::engine::connection::ConnectionCheck> for ConnectionCheck {
    fn from(check: dropkey_core::engine::connection::ConnectionCheck) -> Self {
        Self {
            ok: check.ok,
            message: check.message,
        }
    }
}
