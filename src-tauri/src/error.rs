//! The one error type commands return. It crosses IPC as `{ kind, message }`: a stable kind the
//! UI can branch on and the core's message, which already says how to fix the problem.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// `config`, `keychain`, `input`, `provider`, `not_found`, `starting` or `internal`.
    pub kind: String,
    pub message: String,
}

impl AppError {
    pub(crate) fn new(kind: &str, message: impl std::fmt::Display) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.to_string(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new("internal", message)
    }

    /// The UI sent something a command refuses (validated in Rust, whatever the UI checked).
    pub fn input(message: impl std::fmt::Display) -> Self {
        Self::new("input", message)
    }

    pub fn not_found(message: impl std::fmt::Display) -> Self {
        Self::new("not_found", message)
    }

    /// The provider (or the network) refused or failed a request.
    pub fn provider(message: impl std::fmt::Display) -> Self {
        Self::new("provider", message)
    }
}

impl From<dropkey::Error> for AppError {
    fn from(err: dropkey::Error) -> Self {
        let kind = match &err {
            dropkey::Error::Config(_) => "config",
            dropkey::Error::ConfigEdit(dropkey::config_edit::ConfigEditError::Input(_)) => "input",
            dropkey::Error::ConfigEdit(_) => "config",
            dropkey::Error::Secret(_) => "keychain",
            dropkey::Error::Engine(dropkey::engine::EngineError::Secret(_)) => "keychain",
            dropkey::Error::Engine(dropkey::engine::EngineError::Store(_)) => "internal",
            dropkey::Error::Sandbox(_) => "internal",
            _ => "input",
        };
        Self::new(kind, err)
    }
}

macro_rules! via_core_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AppError {
            fn from(err: $ty) -> Self {
                dropkey::Error::from(err).into()
            }
        }
    )*};
}

via_core_error!(
    dropkey::config::ConfigError,
    dropkey::config_edit::ConfigEditError,
    dropkey::secrets::SecretError,
    dropkey::engine::EngineError,
    dropkey::sign::SignError,
    dropkey::profile::ParamError
);

impl From<tauri::Error> for AppError {
    fn from(err: tauri::Error) -> Self {
        Self::internal(err)
    }
}
