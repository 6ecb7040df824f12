//! The sandbox's two kinds of failure: [`SandboxError`], why it could not start (the caller's
//! problem, with the fix), and [`ApiError`], an HTTP error response shaped like the provider's
//! own (ImageKit `{"message", "help"}`, Cloudinary `{"error": {"message"}}`) so that clients
//! parse sandbox errors exactly as they parse real ones.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}; stop the program using that port, or choose another address with --listen (127.0.0.1:0 picks a free port) or [sandbox] listen in the config")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use the sandbox storage at {path}: {source}; check that the directory is writable, or choose another with --root")]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sandbox file {path} is damaged ({detail}): delete it, or start the sandbox with an empty --root")]
    Corrupt { path: PathBuf, detail: String },
    #[error("invalid sandbox setting {what}: {why}")]
    InvalidConfig { what: &'static str, why: String },
    #[error("cannot start the async runtime for the sandbox: {0}; the system may be out of threads or memory")]
    Runtime(std::io::Error),
    #[error(
        "cannot wait for the stop signal: {0}; stop the sandbox by closing its terminal instead"
    )]
    Signal(std::io::Error),
}

/// Which provider's error shape a response takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    ImageKit,
    Cloudinary,
}

/// The `help` line every ImageKit error body carries.
const IMAGEKIT_HELP: &str = "For support kindly contact us at support@imagekit.io .";

/// An error response in the provider's shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub flavor: Flavor,
    pub status: StatusCode,
    pub message: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(flavor: Flavor, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            flavor,
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn ik(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(Flavor::ImageKit, status, message)
    }

    pub fn cl(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(Flavor::Cloudinary, status, message)
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A failure of the sandbox itself (its disk), not of the request: logged, and answered
    /// with a 500 that says what the sandbox was doing.
    pub fn internal(flavor: Flavor, doing: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!("sandbox failed while {doing}: {err}");
        Self::new(
            flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The sandbox failed while {doing} ({err}); check the disk under the sandbox root and its permissions"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::ImageKit => json!({ "message": self.message, "help": IMAGEKIT_HELP }),
            Flavor::Cloudinary => json!({ "error": { "message": self.message } }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.flavor == Flavor::Cloudinary {
            // Cloudinary repeats the message in `X-Cld-Error`; header values must be visible
            // ASCII, so anything else is left out rather than failing the response.
            if let Ok(value) = HeaderValue::from_str(&self.message) {
                headers.insert(HeaderName::from_static("x-cld-error"), value);
            }
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}
