//! The fresh-install promise: any Dropkey process that uses the built-in `sandbox` profile starts
//! the sandbox in-process when nothing listens at its address, so uploads work offline with
//! nothing else running.
//!
//! When something does listen there, it must prove it is Dropkey's sandbox before it gets a file
//! or a token (see [`dropkey_core::sandbox_identity`]); [`ensure_for`] refuses an impostor with
//! [`LocalSandboxError::Impostor`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dropkey_core::config::{Config, SANDBOX_PROFILE};
use dropkey_core::sandbox_identity::check_identity;
use dropkey_core::secrets::{SecretError, Secrets};

use crate::{SandboxConfig, SandboxError, SandboxHandle};

/// Why the sandbox could not be made available in this process.
#[derive(Debug, thiserror::Error)]
pub enum LocalSandboxError {
    #[error("something other than your Dropkey sandbox is listening at {addr}, the sandbox's address ({reason}), so nothing was sent to it: stop the process that listens there, or give the sandbox another address with [sandbox] listen = \"127.0.0.1:PORT\" in {config}")]
    Impostor {
        addr: SocketAddr,
        reason: String,
        config: String,
    },
    /// The sandbox profile's key could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The blocking task that reads the key did not finish.
    #[error("the keychain lookup failed: {0}")]
    KeychainTask(String),
    /// The sandbox could not start (its address, its data directory).
    #[error(transparent)]
    Start(#[from] SandboxError),
}

/// Starts the sandbox in this process if one of `profiles` is the built-in sandbox profile and
/// nothing answers at the configured address; when something answers, checks that it is this
/// user's sandbox (see the module doc) and fails otherwise. Keep the handle alive while
/// uploading.
pub async fn ensure_for<'a>(
    config: &Config,
    secrets: &Secrets,
    data_dir: &Path,
    mut profiles: impl Iterator<Item = &'a str>,
) -> Result<Option<SandboxHandle>, LocalSandboxError> {
    let Some(profile) = config.profile(SANDBOX_PROFILE).filter(|p| p.builtin) else {
        return Ok(None);
    };
    if !profiles.any(|p| p == SANDBOX_PROFILE) {
        return Ok(None);
    }
    let secrets = secrets.clone();
    let profile = profile.clone();
    let (secret, _) = tokio::task::spawn_blocking(move || secrets.get(&profile))
        .await
        .map_err(|err| LocalSandboxError::KeychainTask(err.to_string()))??;
    let listen = config.sandbox.listen;
    let probe = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(listen),
    )
    .await;
    if matches!(probe, Ok(Ok(_))) {
        if let Err(reason) = check_identity(listen, &secret).await {
            return Err(LocalSandboxError::Impostor {
                addr: listen,
                reason: reason.to_string(),
                config: config.source.as_ref().map_or_else(
                    || "your config file (see `dropkey doctor`)".to_owned(),
                    |p| p.display().to_string(),
                ),
            });
        }
        return Ok(None);
    }
    let handle = crate::start(SandboxConfig::builtin(
        listen,
        data_dir.join("sandbox"),
        secret,
    ))
    .await?;
    tracing::info!("started the local sandbox at {}", handle.base_url());
    Ok(Some(handle))
}
