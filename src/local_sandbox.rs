//! The fresh-install promise: any Dropkey process that uses the built-in `sandbox` profile starts
//! the sandbox in-process when nothing listens at its address, so uploads work offline with
//! nothing else running.
//!
//! When something does listen there, it must prove it is Dropkey's sandbox before it gets a file
//! or a token: any local process can bind 127.0.0.1:7371 first. The client sends a fresh random
//! nonce to [`sandbox::IDENTITY_PATH`] and compares the answer, in constant time, with
//! [`sandbox::identity_proof`] under the sandbox profile's key, which only this user's Dropkey
//! holds (keychain or the 0600 `sandbox.key`). An impostor learns the nonce and nothing else.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::{Config, Profile, Provider, SANDBOX_PROFILE};
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::secrets::Secrets;
use crate::Error;

/// How long the identity check may take: a loopback round trip, with room for a loaded machine.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(5);
/// The proof is 64 hex digits; anything much longer is not the sandbox.
const MAX_PROOF_BYTES: usize = 256;

/// Why a listener did not prove it is the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Nothing (or nothing speaking HTTP) answered: the sandbox may be down or restarting.
    #[error("it did not answer the identity check: {0}")]
    Unreachable(String),
    /// Something answered, and it is not this user's sandbox.
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LocalSandboxError {
    #[error("something other than your Dropkey sandbox is listening at {addr}, the sandbox's address ({reason}), so nothing was sent to it: stop the process that listens there, or give the sandbox another address with [sandbox] listen = \"127.0.0.1:PORT\" in {config}")]
    Impostor {
        addr: SocketAddr,
        reason: String,
        config: String,
    },
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
) -> Result<Option<SandboxHandle>, Error> {
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
        .map_err(|err| Error::Usage(format!("the keychain lookup failed: {err}")))??;
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
            }
            .into());
        }
        return Ok(None);
    }
    let handle = sandbox::start(SandboxConfig::builtin(
        listen,
        data_dir.join("sandbox"),
        secret,
    ))
    .await?;
    tracing::info!("started the local sandbox at {}", handle.base_url());
    Ok(Some(handle))
}

/// Asks the listener at `addr` to prove it holds `secret`. `Err` says, in a few words, why it
/// did not.
pub async fn check_identity(addr: SocketAddr, secret: &SecretString) -> Result<(), IdentityError> {
    use subtle::ConstantTimeEq as _;
    use IdentityError::{Refused, Unreachable};
    let nonce = sandbox::random_hex(32);
    let url = format!("http://{addr}{}?nonce={nonce}", sandbox::IDENTITY_PATH);
    // No proxy (the question is who listens on this machine) and no redirects (the answer must
    // come from this address).
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(IDENTITY_TIMEOUT)
        .build()
        .map_err(|err| Unreachable(format!("cannot make an HTTP client: {err}")))?;
    let mut response = client.get(&url).send().await.map_err(|err| {
        if err.is_connect() {
            Unreachable(err.to_string())
        } else {
            Refused(format!(
                "it did not answer the identity check over HTTP: {err}"
            ))
        }
    })?;
    if !response.status().is_success() {
        return Err(Refused(format!(
            "it answered the identity check with HTTP {}",
            response.status().as_u16()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| Refused(format!("its answer to the identity check broke off: {err}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_PROOF_BYTES {
            return Err(Refused(
                "its answer to the identity check is too long".to_owned(),
            ));
        }
    }
    let expected = sandbox::identity_proof(secret, &nonce);
    let answer = body.trim_ascii();
    if bool::from(answer.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Refused(
            "it does not hold this Dropkey's sandbox key".to_owned(),
        ))
    }
}

/// Where the built-in sandbox profile sends its requests, when `profile` is that profile: the
/// engine asks [`check_identity`] there before every request that carries a file or the key,
/// since in a long-running process (the app, `watch`) an external sandbox checked at start may
/// have stopped and something else taken its port.
pub fn builtin_target(profile: &Profile) -> Option<SocketAddr> {
    if !profile.builtin {
        return None;
    }
    let url = match &profile.provider {
        Provider::ImageKit(ik) => &ik.upload_url,
        Provider::Cloudinary(cl) => &cl.api_url,
    };
    url.socket_addrs(|| None).ok()?.into_iter().next()
}
