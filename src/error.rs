//! The error every CLI command ends up with. Each module of each crate has its own typed error;
//! this one only gathers them and knows the CLI exit code each deserves. (The app classifies
//! [`dropkey_core::Error`] and the sandbox launcher's error instead; it does not link the CLI.)

use dropkey_core::config::ConfigError;
use dropkey_core::engine::EngineError;
use dropkey_core::profile::ParamError;
use dropkey_core::secrets::SecretError;
use dropkey_core::sign::SignError;
use dropkey_sandbox::in_process::LocalSandboxError;
use dropkey_sandbox::SandboxError;
use dropkey_serve::ServeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    ConfigEdit(#[from] dropkey_core::config_edit::ConfigEditError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("unknown profile `{name}`: configured profiles are {known}; add [profiles.{name}] to {config}")]
    UnknownProfile {
        name: String,
        known: String,
        config: String,
    },
    #[error("cannot read the secret from stdin: {0}; pipe the private key in, e.g. `printf %s \"$KEY\" | dropkey key set PROFILE`")]
    Stdin(std::io::Error),
    /// `profile test`: the provider refused, or could not be reached.
    #[error("profile `{profile}` did not pass the connection test: {reason}")]
    ConnectionFailed { profile: String, reason: String },
    /// Arguments that parse but do not fit together (e.g. `--token` for a Cloudinary profile).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Something else answers at the sandbox's address, or the launcher's task failed (see
    /// the `From` impl below for the rest of `LocalSandboxError`).
    #[error(transparent)]
    LocalSandbox(LocalSandboxError),
    /// Some files did not upload (or delete, or verify); each was reported on its own line.
    #[error("{failed} of {total} {what} failed; see the JSON lines on stdout for each")]
    SomeFailed {
        failed: usize,
        total: usize,
        what: &'static str,
    },
}

impl Error {
    /// The CLI contract: 2 for usage, config and input errors (all of these); 1 is reserved for
    /// "some file failed to upload".
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::SomeFailed { .. } => 1,
            _ => 2,
        }
    }
}

/// The launcher's key and start failures are the same errors as anywhere else, and say so.
impl From<LocalSandboxError> for Error {
    fn from(err: LocalSandboxError) -> Self {
        match err {
            LocalSandboxError::Secret(err) => Self::Secret(err),
            LocalSandboxError::Start(err) => Self::Sandbox(err),
            err => Self::LocalSandbox(err),
        }
    }
}
