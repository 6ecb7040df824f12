//! How a client tells this user's sandbox from any other process on its address, and both sides
//! of that protocol: the sandbox (`dropkey-sandbox`) answers [`IDENTITY_PATH`] with
//! [`identity_proof`]; the engine and the in-process launcher ask with [`check_identity`].
//!
//! Any local process can bind 127.0.0.1:7371 first, so a listener there must prove it is
//! Dropkey's sandbox before it gets a file or a token. The client sends a fresh random nonce to
//! [`IDENTITY_PATH`] and compares the answer, in constant time, with [`identity_proof`] under the
//! sandbox profile's key, which only this user's Dropkey holds (keychain or the 0600
//! `sandbox.key`). An impostor learns the nonce and nothing else.
//!
//! This lives in the core, not with the sandbox, because the engine checks before every request
//! to the built-in profile and the core must not depend on the sandbox's server.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{Profile, Provider};

/// `GET IDENTITY_PATH?nonce=HEX` answers [`identity_proof`]: how a client tells its sandbox from
/// another process on the same address before sending it a file or a token.
pub const IDENTITY_PATH: &str = "/_dropkey/identity";

/// Lowercase hex HMAC-SHA256, keyed by the sandbox's private key, of a label and `nonce`. The
/// label keeps the answer from ever being a signature the sandbox's APIs accept (an ImageKit
/// JWT signs `header.payload`, which cannot start with it).
pub fn identity_proof(private_key: &SecretString, nonce: &str) -> String {
    let message = format!("dropkey-sandbox-identity:{nonce}");
    hex::encode(crate::sign::hmac_sha256(
        private_key.expose_secret().as_bytes(),
        message.as_bytes(),
    ))
}

/// A nonce the identity route accepts: 32 to 128 hex digits (16 to 64 random bytes).
pub fn valid_identity_nonce(nonce: &str) -> bool {
    (32..=128).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

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

/// Asks the listener at `addr` to prove it holds `secret`. `Err` says, in a few words, why it
/// did not.
pub async fn check_identity(addr: SocketAddr, secret: &SecretString) -> Result<(), IdentityError> {
    use subtle::ConstantTimeEq as _;
    use IdentityError::{Refused, Unreachable};
    let nonce = {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let url = format!("http://{addr}{IDENTITY_PATH}?nonce={nonce}");
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
    let expected = identity_proof(secret, &nonce);
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
