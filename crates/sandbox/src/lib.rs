//! The embedded sandbox: a local HTTP server that speaks the parts of ImageKit's and
//! Cloudinary's APIs Dropkey uses, checking every request at least as strictly as the providers'
//! documents say they do. A fresh install uploads here (the built-in `sandbox` profile), and
//! every test does, so a sandbox that accepted what a provider refuses would hide bugs.
//!
//! It owns, on one axum router:
//! - ImageKit: `POST /api/v2/files/upload` (JWT), `POST /api/v1/files/upload` (token + expire +
//!   signature), `GET /v1/files/{id}/details`, `DELETE /v1/files/{id}`, and delivery under
//!   [`IMAGEKIT_URL_PATH`] (signed URLs for private files).
//! - Cloudinary, for the cloud [`CLOUDINARY_CLOUD`] (or the one configured):
//!   `POST /v1_1/{cloud}/{resource_type}/upload` (signed; chunked with `X-Unique-Upload-Id` +
//!   `Content-Range`), `POST .../destroy`, `GET .../download` (private download links),
//!   `GET /v1_1/{cloud}/resources/{resource_type}/{type}/{public_id}` (Admin API), and delivery
//!   under `/res/{cloud}/...`.
//! - A ledger (`<root>/ledger.jsonl`): one line per accepted upload, for tests to prove that
//!   every file landed exactly once and no token was used twice.
//! - Fault injection ([`Faults`]) for testing retries.
//! - `GET /_dropkey/identity?nonce=HEX` ([`IDENTITY_PATH`]): proof that this sandbox holds the
//!   client's sandbox key, asked before a client sends it anything. Both sides of that protocol
//!   are in `dropkey_core::sandbox_identity`, since the engine asks too.
//!
//! # Layout
//! - `imagekit`, `cloudinary`: each provider's endpoints and their checks.
//! - `form`: reading multipart bodies, streaming the file to disk (or decoding its base64).
//! - `remote`: fetching a `file` given as a URL (both providers), from loopback only.
//! - `sniff`: what a file is from its first bytes (both providers decide by content).
//! - `store`: files, metadata, the index, used tokens, chunk partials, the ledger.
//! - `faults`: which requests fail, and how.
//! - `conn`: connections a handler can reset (for the connection-reset fault).
//! - `drain`: every request body is read to its end before the answer, so keep-alive
//!   connections survive refusals, early answers and late chunked terminators.
//! - `error`: [`SandboxError`] and the provider-shaped error responses.
//! - `time`: the date formats of the providers' responses.
//! - [`in_process`]: [`in_process::ensure_for`], which starts the sandbox inside a CLI or app
//!   process that uses the built-in profile, after checking who listens at its address.
//!
//! [`start`] binds, then serves on a task; [`SandboxHandle::shutdown`] stops it the way every
//! Dropkey service stops: a `CancellationToken` tells axum to stop accepting and finish the
//! requests in flight, and a `TaskTracker` is awaited until it has.
//!
//! # Dependencies
//! This crate depends on `dropkey-core` (signing checks, the config's sandbox profile, private
//! files) and on nothing else of the workspace: not the token server, not the CLI, not the app.
//! The core must never depend on it; the core holds the identity protocol both sides share.

mod cloudinary;
mod conn;
mod drain;
mod error;
mod faults;
mod form;
mod imagekit;
pub mod in_process;
mod remote;
mod sniff;
mod store;
mod time;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::{ExposeSecret as _, SecretString};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::limit::RequestBodyLimitLayer;
use zeroize::Zeroizing;

use dropkey_core::sandbox_identity::{identity_proof, valid_identity_nonce, IDENTITY_PATH};
pub use error::SandboxError;
use error::{ApiError, Flavor};

/// Path of ImageKit delivery URLs: the built-in profile's `url_endpoint` is
/// `http://ADDR/ik/sandbox`.
pub const IMAGEKIT_URL_PATH: &str = "/ik/sandbox";
/// The cloud name the sandbox serves by default.
pub const CLOUDINARY_CLOUD: &str = "sandbox";
/// The sandbox's Cloudinary API key (public, like any API key; the secret is the profile's).
pub const CLOUDINARY_API_KEY: &str = "sandbox_key";
/// The largest file the sandbox accepts unless told otherwise: 5 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The ImageKit account the sandbox impersonates.
#[derive(Debug, Clone)]
pub struct ImageKitAccount {
    pub public_key: String,
    pub private_key: SecretString,
}

/// The Cloudinary account the sandbox impersonates.
#[derive(Debug, Clone)]
pub struct CloudinaryAccount {
    pub cloud_name: String,
    pub api_key: String,
    pub api_secret: SecretString,
}

/// Test knobs: see the `faults` module for what a fault is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability, 0 to 1, that an upload request (a chunk included) gets a fault.
    pub fail_rate: f64,
    /// Delay added before every upload response.
    pub latency_ms: u64,
    /// Makes the sequence of faults reproducible.
    pub seed: Option<u64>,
}

/// Everything [`start`] needs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Storage directory, e.g. `<data dir>/sandbox`.
    pub root: PathBuf,
    pub imagekit: ImageKitAccount,
    pub cloudinary: CloudinaryAccount,
    pub faults: Faults,
    /// Largest accepted file, in bytes.
    pub max_file_size: u64,
    /// Benchmarks only: accept uploads after every check but keep none of their bytes (stored
    /// files are empty, their sha256 is ""), so the client is what is measured.
    pub discard: bool,
}

impl SandboxConfig {
    /// A config with faults off and the default maximum file size.
    pub fn new(
        listen: SocketAddr,
        root: PathBuf,
        imagekit: ImageKitAccount,
        cloudinary: CloudinaryAccount,
    ) -> Self {
        Self {
            listen,
            root,
            imagekit,
            cloudinary,
            faults: Faults::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            discard: false,
        }
    }

    /// The built-in accounts: ImageKit public key `public_sandbox`, Cloudinary cloud
    /// [`CLOUDINARY_CLOUD`] with API key [`CLOUDINARY_API_KEY`], both secured by `secret` (the
    /// sandbox profile's secret).
    pub fn builtin(listen: SocketAddr, root: PathBuf, secret: SecretString) -> Self {
        Self::new(
            listen,
            root,
            ImageKitAccount {
                public_key: dropkey_core::config::SANDBOX_PUBLIC_KEY.to_owned(),
                private_key: secret.clone(),
            },
            CloudinaryAccount {
                cloud_name: CLOUDINARY_CLOUD.to_owned(),
                api_key: CLOUDINARY_API_KEY.to_owned(),
                api_secret: secret,
            },
        )
    }

    fn validate(&self) -> Result<(), SandboxError> {
        let invalid = |what, why: String| Err(SandboxError::InvalidConfig { what, why });
        let rate = self.faults.fail_rate;
        if !(0.0..=1.0).contains(&rate) {
            return invalid(
                "fail_rate",
                format!("{rate} is not a probability: use a number from 0 to 1"),
            );
        }
        if self.max_file_size == 0 {
            return invalid(
                "max_file_size",
                "0 bytes would refuse every file: give a positive number of bytes".into(),
            );
        }
        if self.imagekit.public_key.trim().is_empty() {
            return invalid(
                "imagekit.public_key",
                "it is empty: give the public key clients will sign with".into(),
            );
        }
        if self.imagekit.private_key.expose_secret().is_empty()
            || self.cloudinary.api_secret.expose_secret().is_empty()
        {
            return invalid(
                "secret",
                "the private key or API secret is empty: pass the sandbox profile's secret".into(),
            );
        }
        let cloud = &self.cloudinary.cloud_name;
        if cloud.is_empty()
            || !cloud
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return invalid(
                "cloudinary.cloud_name",
                format!("`{cloud}` is not a cloud name: use letters, digits, '-' and '_'"),
            );
        }
        if self.cloudinary.api_key.trim().is_empty() {
            return invalid("cloudinary.api_key", "it is empty".into());
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct SandboxState {
    pub imagekit: ImageKitAccount,
    pub cloudinary: CloudinaryAccount,
    pub store: store::Store,
    pub faults: faults::FaultInjector,
    pub max_file_size: u64,
    /// See [`SandboxConfig::discard`].
    pub discard: bool,
    /// `http://127.0.0.1:PORT`: the prefix of every URL in responses.
    pub base_url: String,
}

impl SandboxState {
    /// The largest request body: the file plus the form fields' allowance.
    fn request_limit(&self) -> u64 {
        self.max_file_size
            .saturating_add(form::MAX_FIELDS_BYTES as u64)
    }
}

/// A running sandbox. Dropping it stops the server without waiting; [`Self::shutdown`] waits.
#[derive(Debug)]
pub struct SandboxHandle {
    addr: SocketAddr,
    base_url: String,
    root: PathBuf,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl SandboxHandle {
    /// The address the server is bound to (with the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when bound to an unspecified address).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `<root>/ledger.jsonl`.
    pub fn ledger_path(&self) -> PathBuf {
        self.root.join(store::LEDGER_FILE)
    }

    /// The storage directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops accepting connections, lets the requests in flight finish, and returns when the
    /// server task has ended.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Opens the storage under `config.root`, binds `config.listen`, and serves on a spawned task.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    config.validate()?;
    let bind_error = |source| SandboxError::Bind {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    // Bound first: a second sandbox started by mistake on the same port then fails before it
    // touches the storage (opening it empties `tmp/`, which would break the first one's
    // uploads in flight).
    let root = config.root.clone();
    let store = tokio::task::spawn_blocking(move || store::Store::open(&root))
        .await
        .map_err(|err| SandboxError::Storage {
            path: config.root.clone(),
            source: std::io::Error::other(err.to_string()),
        })??;
    let base_url = format!("http://{}", reachable(addr));
    let app = Arc::new(SandboxState {
        imagekit: config.imagekit,
        cloudinary: config.cloudinary,
        store,
        faults: faults::FaultInjector::new(&config.faults),
        max_file_size: config.max_file_size,
        discard: config.discard,
        base_url: base_url.clone(),
    });
    let service = router(app).into_make_service_with_connect_info::<conn::ConnHandle>();
    let cancel = CancellationToken::new();
    let server = axum::serve(conn::KillableListener::new(listener), service)
        .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let tracker = TaskTracker::new();
    tracker.spawn(async move {
        if let Err(err) = server.await {
            tracing::error!("the sandbox server stopped: {err}");
        }
    });
    // Nothing else is ever spawned on it: closing now lets `wait` return once the server ends.
    tracker.close();
    tracing::info!("sandbox listening on {base_url}");
    Ok(SandboxHandle {
        addr,
        base_url,
        root: config.root,
        cancel,
        tracker,
    })
}

/// The address clients use: loopback when bound to "any".
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

fn router(app: Arc<SandboxState>) -> Router {
    let limit = usize::try_from(app.request_limit()).unwrap_or(usize::MAX);
    Router::new()
        .merge(imagekit::routes())
        .merge(cloudinary::routes())
        .route(IDENTITY_PATH, axum::routing::get(identity))
        .fallback(fallback)
        // axum's 2 MB default also caps multipart bodies; the sandbox enforces its own limits:
        // the file size while streaming (`form`), and the whole body here.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        // Outside the limit layer: handlers keep its typed "too large" error, and a drain past
        // the limit is bounded by `drain` itself.
        .layer(middleware::from_fn(drain::read_to_end))
        .layer(middleware::from_fn_with_state(app.clone(), refuse_oversize))
        .layer(middleware::from_fn(log_request))
        // Browsers upload straight to the providers (the upload-token guide's client flow), so like ImageKit's
        // and Cloudinary's upload endpoints the sandbox answers CORS for any origin.
        .layer(tower_http::cors::CorsLayer::permissive())
        .with_state(app)
}

/// Which provider a path belongs to, for errors outside any handler.
fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/v1_1/") || path.starts_with("/res/") {
        Flavor::Cloudinary
    } else {
        Flavor::ImageKit
    }
}

/// Refuses a body whose declared length is over the limit before reading any of it, in the
/// provider's error shape (the body-limit layer behind it would answer in plain text).
async fn refuse_oversize(
    State(app): State<Arc<SandboxState>>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > app.request_limit()) {
        let flavor = flavor_of(req.uri().path());
        return ApiError::new(
            flavor,
            StatusCode::PAYLOAD_TOO_LARGE,
            form::too_large_message(flavor, app.max_file_size),
        )
        .with_header(header::CONNECTION, HeaderValue::from_static("close"))
        .into_response();
    }
    next.run(req).await
}

/// One info line per request: method, path (never the query, which may carry signatures),
/// status and time to the response head.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        "{method} {path} -> {} ({} ms)",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// Proves this is the sandbox holding the client's key (see [`identity_proof`]).
async fn identity(State(app): State<Arc<SandboxState>>, req: Request) -> Response {
    let nonce = req.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "nonce")
            .map(|(_, value)| value.into_owned())
    });
    match nonce.filter(|n| valid_identity_nonce(n)) {
        Some(nonce) => identity_proof(&app.imagekit.private_key, &nonce).into_response(),
        None => ApiError::new(
            Flavor::ImageKit,
            StatusCode::BAD_REQUEST,
            format!("{IDENTITY_PATH} needs ?nonce= with 32 to 128 hex digits"),
        )
        .into_response(),
    }
}

async fn fallback(req: Request) -> ApiError {
    let path = req.uri().path();
    ApiError::new(
        flavor_of(path),
        StatusCode::NOT_FOUND,
        format!(
            "{} {path} is not an endpoint of the Dropkey sandbox",
            req.method()
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by both providers

/// Compares secrets-derived values without an early exit, so timing does not leak how much of
/// a signature was right.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A decimal integer as the providers write them: optional `-`, digits only.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The user and password of an HTTP Basic `Authorization` header, if there is a valid one.
/// Either may be a private key (ImageKit's user, Cloudinary's password): every copy is wiped.
pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(Zeroizing<String>, Zeroizing<String>)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    );
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((
        Zeroizing::new(user.to_owned()),
        Zeroizing::new(password.to_owned()),
    ))
}

/// `n` random ASCII letters and digits.
pub(crate) fn random_alphanumeric(n: usize) -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// `n` random lowercase letters and digits (Cloudinary's public ids).
pub(crate) fn random_lower_alphanumeric(n: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// `bytes` random bytes in lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The MIME type of a file: from its name's extension, else what the client declared, else
/// `application/octet-stream`.
pub(crate) fn guess_mime(name: &str, declared: Option<&str>) -> String {
    mime_guess::from_path(name)
        .first_raw()
        .map(str::to_owned)
        .or_else(|| declared.filter(|d| !d.is_empty()).map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// Percent-encodes a URL path as a WHATWG URL serialiser does (as `sign::imagekit` signs it),
/// keeping `/`.
pub(crate) fn encode_url_path(path: &str) -> String {
    // Stored names may contain `%`, which must not read as an escape in the URL.
    const PATH: &percent_encoding::AsciiSet = &dropkey_core::sign::imagekit::WHATWG_PATH.add(b'%');
    percent_encoding::utf8_percent_encode(path, PATH).to_string()
}

/// Streams a stored file as the response body, never reading it whole. The length is the
/// file's own, not the recorded size: they differ only for a `--discard` sandbox, which keeps
/// no bytes, and a Content-Length the body cannot fill would break the connection.
pub(crate) async fn serve_blob(
    path: &Path,
    mime: &str,
    disposition: Option<String>,
) -> std::io::Result<Response> {
    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    // 256 KiB reads: `tokio::fs::File` pays a blocking-pool hop per read (tech-notes).
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Some(value) = disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(parse_int("123"), Some(123));
        assert_eq!(parse_int("-5"), Some(-5));
        for bad in ["", "+5", "1.0", " 1", "1e3", "-"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5Og=="),
        );
        let (user, password) = basic_auth(&headers).unwrap();
        assert_eq!((user.as_str(), password.as_str()), ("key", ""));
        assert_eq!(guess_mime("a.PNG", None), "image/png");
        assert_eq!(guess_mime("a", Some("text/plain")), "text/plain");
        assert_eq!(guess_mime("a", None), "application/octet-stream");
        assert_eq!(encode_url_path("/a b/ü%.jpg"), "/a%20b/%C3%BC%25.jpg");
        assert_eq!(random_lower_alphanumeric(20).len(), 20);
        assert_eq!(random_hex(12).len(), 24);
    }

    #[test]
    fn config_validation() {
        let mut config = SandboxConfig::builtin(
            "127.0.0.1:0".parse().unwrap(),
            PathBuf::from("/tmp/x"),
            SecretString::from("s"),
        );
        assert!(config.validate().is_ok());
        config.faults.fail_rate = 1.5;
        assert!(config.validate().is_err());
        config.faults.fail_rate = f64::NAN;
        assert!(config.validate().is_err());
        config.faults.fail_rate = 0.5;
        config.cloudinary.cloud_name = "a b".into();
        assert!(config.validate().is_err());
    }
}
