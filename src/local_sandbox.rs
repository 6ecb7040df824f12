//! The fresh-install promise: any Dropkey process that uses the built-in `sandbox` profile
//! starts the sandbox in-process when nothing listens at its address, so uploads work offline
//! with nothing else running.

use std::time::Duration;

use crate::config::{Config, SANDBOX_PROFILE};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::secrets::Secrets;
use crate::Error;

/// Starts the sandbox in this process if one of `profiles` is the built-in sandbox profile and
/// nothing answers at the configured address. Keep the handle alive while uploading.
pub async fn ensure_for<'a>(
    config: &Config,
    secrets: &Secrets,
    data_dir: &std::path::Path,
    mut profiles: impl Iterator<Item = &'a str>,
) -> Result<Option<SandboxHandle>, Error> {
    let Some(profile) = config.profile(SANDBOX_PROFILE).filter(|p| p.builtin) else {
        return Ok(None);
    };
    if !profiles.any(|p| p == SANDBOX_PROFILE) {
        return Ok(None);
    }
    let listen = config.sandbox.listen;
    let probe = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(listen),
    )
    .await;
    if matches!(probe, Ok(Ok(_))) {
        return Ok(None);
    }
    let secrets = secrets.clone();
    let profile = profile.clone();
    let (secret, _) = tokio::task::spawn_blocking(move || secrets.get(&profile))
        .await
        .map_err(|err| Error::Usage(format!("the keychain lookup failed: {err}")))??;
    let handle = sandbox::start(SandboxConfig::builtin(
        listen,
        data_dir.join("sandbox"),
        secret,
    ))
    .await?;
    tracing::info!("started the local sandbox at {}", handle.base_url());
    Ok(Some(handle))
}
