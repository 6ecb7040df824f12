//! The error every front end ends up with. Each module has its own typed error; this one only
//! gathers them and knows the CLI exit code each deserves.

use crate::config::ConfigError;
use crate::engine::EngineError;
use crate::profile::ParamError;
use crate::sandbox::SandboxError;
use crate::secrets::SecretError;
use crate::serve::ServeError;
use crate::sign::SignError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    ConfigEdit(#[from] crate::config_edit::ConfigEditError),
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
    /// Arguments that parse but do not fit together (e.g. `--token` for a Cloudinary profile).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    LocalSandbox(#[from] crate::local_sandbox::LocalSandboxError),
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
