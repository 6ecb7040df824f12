//! Team mode's server: `dropkey serve`, the token server the provider documents describe. (The
//! client that remote-signing profiles use to talk to it is `dropkey_core::remote_signer`, and
//! the `[serve]` table it is configured by is `dropkey_core::serve_config`: the core parses the
//! whole config file and the engine signs through the client, so both live there.)
//!
//! The server keeps the provider keys of the profiles it serves (loaded once at start, as
//! [`SecretString`]s) and hands out one-time upload credentials to callers holding a bearer
//! token: ImageKit V2 JWTs (the upload-token guide's `GET /api/media/get-upload-token` and ImageKit's Upload API V2 guide's
//! `POST /api/media/upload-token`), V1 signatures (ImageKit's V1 client-side upload guide), Cloudinary upload signatures,
//! private download links and validated deletes (the Cloudinary signed-upload demo). It is stateless apart from the
//! audit log, so several instances can run behind any load balancer.
//!
//! - [`listener`]: the accept loop: header/idle timeout and the connection cap.
//! - [`proxy`]: who the client is (`trusted_proxies` and `X-Forwarded-For`).
//! - [`tokens`]: bearer tokens, stored hashed, compared in constant time, reloaded on change.
//! - [`policy`]: what each token may do and the parameters a request ends up signing.
//! - [`routes`]: the HTTP surface (axum), errors as `{status, success: false, message}`.
//! - [`ratelimit`]: a token bucket per bearer token, and per client IP for failed auth.
//! - [`audit`]: JSON lines of who did what when, never a secret; failed auth summed up.
//! - [`openapi`]: the OpenAPI 3 description served at `/openapi.json`.
//!
//! Shutdown follows the house pattern: one [`CancellationToken`] stops the listener (requests
//! in flight finish, then their connections close) and the token-file watcher; a
//! [`TaskTracker`] awaits them; the audit writer drains and stops last.
//!
//! # Dependencies
//! This crate depends on `dropkey-core` (config, secrets, signing, the provider calls of a
//! validated delete) and on nothing else of the workspace: not the sandbox, not the CLI, not the
//! app. The core must never depend on it: the HTTP server stack (axum, hyper's server,
//! tower-http) stops here.

pub mod audit;
pub mod listener;
pub mod openapi;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use dropkey_core::config::{Config, Profile};
use dropkey_core::secrets::SecretError;
pub use dropkey_core::serve_config::{AuditTarget, CorsOrigins, ServeSettings};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}; pick another address with --listen or [serve] listen (port 0 picks a free one)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("there is no profile to serve: add an ImageKit (auth = \"v2\" or \"v1\") or Cloudinary profile to the config, and its key with `dropkey key set PROFILE` or DROPKEY_SECRET_<PROFILE> (profiles without a key are skipped; see the warnings above)")]
    NoProfiles,
    #[error("cannot serve profile `{profile}`: {source}")]
    Secret {
        profile: String,
        source: SecretError,
    },
    #[error("cannot use the token file {path}: {source}; check the data directory's permissions (--data-dir)")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {path} is damaged ({detail}): fix it, or move it away and add the tokens again with `dropkey serve token add NAME`")]
    TokenFileCorrupt { path: PathBuf, detail: String },
    #[error("a token named `{name}` exists already: remove it first with `dropkey serve token remove {name}`, or choose another name")]
    TokenExists { name: String },
    #[error("`{name}` is not a token name: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadTokenName { name: String },
    #[error("cannot open the audit log {path}: {source}; check [serve] audit_log and the directory's permissions")]
    Audit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the HTTP client for provider calls: {0}")]
    Http(String),
    #[error("cannot watch for SIGINT/SIGTERM: {0}")]
    Signal(std::io::Error),
    #[error("the async runtime failed: {0}")]
    Runtime(std::io::Error),
}

/// A profile the server signs for, with its key.
pub struct ServedProfile {
    pub profile: Profile,
    pub secret: SecretString,
}

impl std::fmt::Debug for ServedProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedProfile")
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

/// Everything [`start`] needs.
#[derive(Debug)]
pub struct ServeConfig {
    pub settings: ServeSettings,
    pub profiles: Vec<ServedProfile>,
    /// `<data dir>/serve-tokens.json`.
    pub tokens_file: PathBuf,
    pub audit: AuditTarget,
}

impl ServeConfig {
    /// The server `config` describes, with each served profile's key from `secret` (the CLI
    /// passes the keychain with its `DROPKEY_SECRET_<PROFILE>` override). Profiles named in
    /// `[serve] profiles` must have a key; when the server serves every profile by default, one
    /// without a key is skipped with a warning.
    pub fn from_config(
        config: &Config,
        data_dir: &Path,
        mut secret: impl FnMut(&Profile) -> Result<SecretString, SecretError>,
    ) -> Result<Self, ServeError> {
        let settings = config.serve.clone();
        let explicit = settings.profiles.is_some();
        let mut profiles = Vec::new();
        for profile in dropkey_core::serve_config::served_profiles(&settings, &config.profiles) {
            match secret(profile) {
                Ok(secret) => profiles.push(ServedProfile {
                    profile: profile.clone(),
                    secret,
                }),
                // Serving every profile by default: one without a key here (or with no
                // keychain to ask, on a headless server using DROPKEY_SECRET_*) is skipped.
                Err(err @ (SecretError::Missing { .. } | SecretError::NoService { .. }))
                    if !explicit =>
                {
                    tracing::warn!("not serving profile `{}`: {err}", profile.name);
                }
                Err(source) => {
                    return Err(ServeError::Secret {
                        profile: profile.name.clone(),
                        source,
                    })
                }
            }
        }
        let audit = settings
            .audit_log
            .clone()
            .unwrap_or_else(|| AuditTarget::File(data_dir.join(audit::AUDIT_FILE)));
        Ok(Self {
            settings,
            profiles,
            tokens_file: tokens::tokens_path(data_dir),
            audit,
        })
    }
}

/// How often the audit writer is reminded to write failure summaries whose minute is over.
const AUDIT_TICK: Duration = Duration::from_secs(5);

/// A running server.
#[derive(Debug)]
pub struct ServeHandle {
    addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
    connections: Arc<listener::ConnectionStats>,
}

impl ServeHandle {
    /// The address actually bound (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// The most connections open at once since the start (never above `max_connections`).
    pub fn peak_connections(&self) -> usize {
        self.connections.peak()
    }

    /// Stops accepting connections, lets requests in flight finish, and returns once every
    /// task has ended and the audit log is written.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

/// Binds the listener and starts serving.
pub async fn start(config: ServeConfig) -> Result<ServeHandle, ServeError> {
    if config.profiles.is_empty() {
        return Err(ServeError::NoProfiles);
    }
    let stored = tokens::list(&config.tokens_file)?;
    if stored.is_empty() {
        tracing::warn!(
            "no bearer tokens in {}: every request will be refused until you run `dropkey serve token add NAME`",
            config.tokens_file.display()
        );
    }
    let token_set = tokens::TokenSet::new(&stored);
    let (audit, writer) = audit::open(&config.audit)?;
    let listen = config.settings.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let app = routes::ServeState::new(&config, token_set.clone(), audit.clone())?;
    let router = routes::router(app, &config.settings.cors_origins);
    let limits = listener::Limits {
        max_connections: config.settings.max_connections,
        header_timeout: config.settings.header_timeout,
    };
    let connections = Arc::new(listener::ConnectionStats::default());

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(token_set.watch(config.tokens_file.clone(), cancel.clone()));
    let stop = cancel.clone();
    tracker.spawn(async move {
        let mut every = tokio::time::interval(AUDIT_TICK);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = every.tick() => audit.tick(),
            }
        }
    });
    let stop = cancel.clone();
    let stats = connections.clone();
    tracker.spawn(async move {
        listener::serve(listener, router, limits, stats, stop).await;
        // The router, and with it every audit sender, is gone (the ticker's too, since it
        // stops on the same token): the writer drains and ends.
        if tokio::task::spawn_blocking(move || writer.join())
            .await
            .is_err()
        {
            tracing::error!("the audit writer did not finish cleanly");
        }
    });
    tracker.close();
    Ok(ServeHandle {
        addr,
        cancel,
        tracker,
        connections,
    })
}
