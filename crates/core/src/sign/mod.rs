//! Pure signing functions for every scheme Dropkey speaks. Nothing here reads a clock, the
//! keychain or the network: callers pass the secret, the time and the parameters, so each
//! function is byte-for-byte reproducible and checked against vectors made with the providers'
//! official SDKs (`tests/vectors/`).

pub mod cloudinary;
pub mod imagekit;

use std::collections::BTreeMap;

/// Upload parameters as the provider receives them: form field name to its string value.
/// Sorted, because both JWT payloads and Cloudinary's string-to-sign want a stable order.
pub type Params = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("the token would be valid for {lifetime} s, but {scheme} allows at most {max} s: use a shorter --expire-in or an earlier --expire")]
    ExpireTooFar {
        scheme: &'static str,
        lifetime: i64,
        max: i64,
    },
    #[error("the expiry {expire} is not after the issue time {now}: pass a positive --expire-in or a later --expire")]
    ExpireNotAfterNow { expire: i64, now: i64 },
    #[error("parameter `{name}` cannot be signed: {why}")]
    ReservedParam { name: String, why: &'static str },
    #[error("the token must not be empty: omit --token to get a fresh UUID")]
    EmptyToken,
    #[error("invalid {what} `{value}`: {why}")]
    InvalidInput {
        what: &'static str,
        value: String,
        why: &'static str,
    },
}

// `new_from_slice` only fails for fixed-length-key MACs; HMAC takes keys of any length, so the
// `unreachable!`s below are provable invariants, not input checks.

/// Lowercase hex HMAC-SHA1 of `message` keyed with `key`.
pub fn hmac_sha1_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Raw HMAC-SHA256 of `message` keyed with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}
