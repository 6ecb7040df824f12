//! The one error type commands return. It crosses IPC as `{ kind, message }`: a stable kind the
//! UI can branch on (an enum, exported to TypeScript with the commands) and the core's message,
//! which already says how to fix the problem.

use serde::Serialize;

/// What went wrong, as the UI branches on it. The names are a contract with `ui/`: add, do not
/// rename.
#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The config file cannot be read or would become invalid.
    Config,
    /// The keychain refused or is unavailable.
    Keychain,
    /// A command's input was refused (validated in Rust, whatever the UI checked).
    Input,
    /// The provider (or the network) refused or failed a request.
    Provider,
    /// The upload, profile or watch named does not exist (any more).
    NotFound,
    /// A path the user did not drop or pick in the window.
    NotChosen,
    Clipboard,
    /// A bug or an environment failure the user cannot fix from the window.
    Internal,
    /// A newer page took over the event stream: this one stops pulling.
    Superseded,
    /// Raised by the UI, never by Rust: the page runs outside the app. (Listed here so the
    /// exported type has every kind the UI handles.)
    NoBackend,
    /// Raised by the UI, never by Rust: Tauri refused the call (a missing permission, say).
    Ipc,
}

#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl std::fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The UI sent something a command refuses (validated in Rust, whatever the UI checked).
    pub fn input(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Input, message)
    }

    pub fn not_found(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
}

impl From<dropkey_core::Error> for AppError {
    fn from(err: dropkey_core::Error) -> Self {
        let kind = match &err {
            dropkey_core::Error::Config(_) => ErrorKind::Config,
            dropkey_core::Error::ConfigEdit(dropkey_core::config_edit::ConfigEditError::Input(
                _,
            )) => ErrorKind::Input,
            dropkey_core::Error::ConfigEdit(_) => ErrorKind::Config,
            dropkey_core::Error::Secret(
                dropkey_core::secrets::SecretError::Empty
                | dropkey_core::secrets::SecretError::Malformed,
            ) => ErrorKind::Input,
            dropkey_core::Error::Secret(_) => ErrorKind::Keychain,
            dropkey_core::Error::Engine(dropkey_core::engine::EngineError::Secret(_)) => {
                ErrorKind::Keychain
            }
            dropkey_core::Error::Engine(dropkey_core::engine::EngineError::Store(_)) => {
                ErrorKind::Internal
            }
            _ => ErrorKind::Input,
        };
        Self::new(kind, err)
    }
}

impl From<dropkey_sandbox::in_process::LocalSandboxError> for AppError {
    fn from(err: dropkey_sandbox::in_process::LocalSandboxError) -> Self {
        use dropkey_sandbox::in_process::LocalSandboxError as E;
        let kind = match &err {
            E::Secret(_) => ErrorKind::Keychain,
            E::Start(_) => ErrorKind::Internal,
            E::Impostor { .. } | E::KeychainTask(_) => ErrorKind::Input,
        };
        Self::new(kind, err)
    }
}

macro_rules! via_core_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AppError {
            fn from(err: $ty) -> Self {
                dropkey_core::Error::from(err).into()
            }
        }
    )*};
}

via_core_error!(
    dropkey_core::config::ConfigError,
    dropkey_core::config_edit::ConfigEditError,
    dropkey_core::secrets::SecretError,
    dropkey_core::engine::EngineError,
    dropkey_core::sign::SignError,
    dropkey_core::profile::ParamError
);

impl From<dropkey_core::engine::uploaded::UploadedError> for AppError {
    fn from(err: dropkey_core::engine::uploaded::UploadedError) -> Self {
        use dropkey_core::engine::uploaded::UploadedError as E;
        let kind = match &err {
            E::NoSuchUpload(_) => ErrorKind::NotFound,
            E::NotFinished { .. }
            | E::ProfileGone(_)
            | E::NoRemoteId
            | E::LinkLifetime
            | E::Sign(_) => ErrorKind::Input,
            E::Secret(_) => ErrorKind::Keychain,
            E::Provider(_) => ErrorKind::Provider,
            E::Store(_) | E::NotRecorded { .. } | E::Interrupted(_) => ErrorKind::Internal,
        };
        Self::new(kind, err)
    }
}

impl From<dropkey_core::pasted::PasteError> for AppError {
    fn from(err: dropkey_core::pasted::PasteError) -> Self {
        let kind = match &err {
            dropkey_core::pasted::PasteError::Malformed { .. } => ErrorKind::Input,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, err)
    }
}
