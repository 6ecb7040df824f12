//! Dropkey's core: everything that signs, stores secrets, reads config and (in later modules)
//! uploads, with no Tauri dependency. The `dropkey` CLI and the desktop app (`src-tauri`) are
//! both thin front ends over this crate, so they behave the same.
//!
//! # Layout
//! - [`config`]: the TOML config (parse, validate with file:line errors, resolve defaults,
//!   including the built-in `sandbox` profile) and the config/data directory rules.
//! - [`secrets`]: the provider private keys. The OS keychain (service `dropkey`, account = the
//!   profile name), the `DROPKEY_SECRET_<PROFILE>` override, and the local sandbox's own key.
//!   Secrets only ever travel as [`secrecy::SecretString`].
//! - [`sign`]: pure signing functions with the clock passed in: ImageKit Upload API V2 JWTs,
//!   V1 token/expire/signature, ImageKit signed delivery URLs, Cloudinary request signatures and
//!   private download URLs.
//! - [`profile`]: what a profile contributes to an upload (folder, tags, ...) and the
//!   status view of a profile that front ends show (never the secret).
//! - [`engine`]: the upload engine: durable queue and history (SQLite), streaming uploads,
//!   retries, progress events, pause/cancel.
//! - [`sandbox`]: the embedded local ImageKit/Cloudinary-compatible server that a fresh install
//!   uploads to and every test targets, at least as strict as the providers, with a ledger of
//!   accepted uploads and fault injection.
//! - [`serve`]: team mode: `dropkey serve`, the token server that signs uploads for callers
//!   holding a bearer token (docs 000/001/003/004), and the client `auth = "remote"` profiles
//!   use to get their tokens from it.
//! - [`watch`]: watched folders: finished files uploaded exactly once (journal in the
//!   engine's store), catch-up scans, after-upload actions.
//! - [`pasted`]: clipboard images saved as PNG files under the data dir, to be uploaded.
//! - [`doctor`]: environment checks (keychain service, config, secrets, clock).
//! - [`cli`]: the `dropkey` command line: argument parsing and dispatch, JSON on stdout.
//! - [`error`]: the top-level error, which knows its exit code.

pub mod cli;
pub mod config;
pub mod config_edit;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod inputs;
pub mod local_sandbox;
pub mod pasted;
pub mod private_fs;
pub mod profile;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod sign;
pub mod watch;

pub use error::Error;

/// The current Unix time in seconds. Signing functions never call this themselves: the clock is
/// passed in so that every signature is reproducible in tests.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        // A clock before 1970 is reported by `dropkey doctor`; signing with 0 then fails loudly
        // at the provider instead of panicking here.
        .unwrap_or(0)
}
