//! Dropkey's core: everything that signs, stores secrets, reads config and uploads. The `dropkey`
//! CLI and the desktop app (`src-tauri`) are both thin front ends over this crate, so they behave
//! the same; the sandbox (`dropkey-sandbox`) and the token server (`dropkey-serve`) build on it.
//!
//! # What this crate must not depend on
//! No HTTP server code (axum, hyper's server, tower-http), no Tauri, and none of the workspace's
//! other crates: it is the bottom of the graph. Every other crate depends on it, so a server or
//! UI dependency here would be linked into everything. It speaks HTTP only as a client
//! (reqwest): to the providers, to a team's token server ([`remote_signer`]) and to the local
//! sandbox's identity check ([`sandbox_identity`]).
//!
//! # Layout
//! - [`config`]: the TOML config (parse, validate with file:line errors, resolve defaults,
//!   including the built-in `sandbox` profile) and the config/data directory rules.
//! - [`serve_config`]: the `[serve]` table of that config, for `dropkey serve`.
//! - [`config_edit`]: edits of the config file that keep its comments and layout.
//! - [`secrets`]: the provider private keys. The OS keychain (service `dropkey`, account = the
//!   profile name), the `DROPKEY_SECRET_<PROFILE>` override, and the local sandbox's own key.
//!   Secrets only ever travel as [`secrecy::SecretString`].
//! - [`sign`]: pure signing functions with the clock passed in: ImageKit Upload API V2 JWTs,
//!   V1 token/expire/signature, ImageKit signed delivery URLs, Cloudinary request signatures and
//!   private download URLs.
//! - [`profile`]: what a profile contributes to an upload (folder, tags, ...) and the
//!   status view of a profile that front ends show (never the secret).
//! - [`delivery_url`]: which Cloudinary asset a delivery URL names, resolved strictly.
//! - [`engine`]: the upload engine: durable queue and history (SQLite), streaming uploads,
//!   retries, progress events, pause/cancel.
//! - [`remote_signer`]: the client `auth = "remote"` profiles use to get their upload tokens
//!   from a team's token server.
//! - [`sandbox_identity`]: how a client tells this user's local sandbox from another process on
//!   its address (both sides of that check; the sandbox itself is `dropkey-sandbox`).
//! - [`watch`]: watched folders: finished files uploaded exactly once (journal in the
//!   engine's store), catch-up scans, after-upload actions.
//! - [`inputs`]: what the paths a user gives expand to (folders, globs).
//! - [`pasted`]: clipboard images saved as PNG files under the data dir, to be uploaded.
//! - [`private_fs`]: files and directories only this user can read.
//! - [`doctor`]: environment checks (keychain service, config, secrets, clock).
//! - [`Error`]: the core's errors in one type, for front ends that classify them.

pub mod config;
pub mod config_edit;
pub mod delivery_url;
pub mod doctor;
pub mod engine;
pub mod inputs;
pub mod metadata;
pub mod pasted;
pub mod private_fs;
pub mod profile;
pub mod remote_signer;
pub mod sandbox_identity;
pub mod secrets;
pub mod serve_config;
pub mod sign;
pub mod watch;

/// The error of any core operation, for a front end that handles them in one place (the app
/// maps it to what its UI shows; the CLI has its own, with exit codes). Each module keeps its
/// own typed error; this only gathers them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    ConfigEdit(#[from] config_edit::ConfigEditError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error(transparent)]
    Param(#[from] profile::ParamError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

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
