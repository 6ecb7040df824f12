//! The one error type commands return. It crosses IPC as `{ kind, message }`: a stable kind the
//! UI can branch on and the core's message, which already says how to fix the problem.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// `config`, `keychain`, `input` or `internal`.
    pub kind: String,
    pub message: String,
}

impl From<dropkey::Error> for AppError {
    fn from(err: dropkey::Error) -> Self {
        let kind = match &err {
            dropkey::Error::Config(_) => "config",
            dropkey::Error::Secret(_) => "keychain",
            _ => "input",
        };
        Self {
            kind: kind.to_owned(),
            message: err.to_string(),
        }
    }
}

impl From<dropkey::config::ConfigError> for AppError {
    fn from(err: dropkey::config::ConfigError) -> Self {
        dropkey::Error::from(err).into()
    }
}

impl From<dropkey::secrets::SecretError> for AppError {
    fn from(err: dropkey::secrets::SecretError) -> Self {
        dropkey::Error::from(err).into()
    }
}

impl AppError {
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self {
            kind: "internal".to_owned(),
            message: message.to_string(),
        }
    }
}
