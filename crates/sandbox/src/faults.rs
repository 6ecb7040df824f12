//! Fault injection, the sandbox's test knobs: with probability `fail_rate` an upload request
//! (either provider, each chunk included) fails in one of the ways real services and networks
//! fail, and every upload response can be delayed by `latency_ms`.
//!
//! A fault is drawn when the request arrives, and always lands before the upload is accepted:
//! a faulted request never stores a file or writes the ledger, so a retried upload lands
//! exactly once. The answered faults (500, 503, 429/420) are applied after the credentials were
//! checked, so an ImageKit token is spent by them, as at the real service. The other two strike
//! earlier, while the body is being read. Delivery, details, delete and download never fault.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::conn::ConnHandle;
use super::error::{ApiError, Flavor};
use super::form::DRAIN_LIMIT;
use super::Faults;

/// How long the slow-body fault stalls before it reads anything.
pub(crate) const SLOW_BODY_DELAY: Duration = Duration::from_millis(1500);
/// How much of the body the connection-reset fault reads before it breaks the connection.
const RESET_AFTER_BYTES: usize = 16 * 1024;

/// One way an upload can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// (a) 500 with a JSON error.
    ServerError,
    /// (b) 503 with `Retry-After: 1`.
    UnavailableRetryAfter,
    /// (c) 503 without `Retry-After`.
    Unavailable,
    /// (d) ImageKit 429 with `X-RateLimit-Reset: 1000` (ms); Cloudinary 420 "Rate Limit Exceeded".
    RateLimited,
    /// (e) Part of the body is read, then the connection is reset with no response.
    ConnectionReset,
    /// (f) Nothing is read for [`SLOW_BODY_DELAY`]; then 408, as a server that timed out.
    SlowBody,
}

const ALL: [Fault; 6] = [
    Fault::ServerError,
    Fault::UnavailableRetryAfter,
    Fault::Unavailable,
    Fault::RateLimited,
    Fault::ConnectionReset,
    Fault::SlowBody,
];

/// Decides which requests fail. Seeded, the sequence of decisions is reproducible.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    rate: f64,
    latency: Duration,
    rng: Mutex<StdRng>,
}

impl FaultInjector {
    pub fn new(faults: &Faults) -> Self {
        let rng = match faults.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            rate: faults.fail_rate,
            latency: Duration::from_millis(faults.latency_ms),
            rng: Mutex::new(rng),
        }
    }

    /// Draws the fault for one upload request, if any.
    pub fn draw(&self) -> Option<Fault> {
        if self.rate <= 0.0 {
            return None;
        }
        // A panic while holding this lock cannot leave the RNG half-updated in a way that
        // matters, so a poisoned lock is simply used.
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if rng.gen::<f64>() >= self.rate {
            return None;
        }
        Some(ALL[rng.gen_range(0..ALL.len())])
    }

    /// The configured extra latency, before every upload response.
    pub async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

/// The response of an answered fault, (a) to (d).
pub(crate) fn answer(fault: Fault, flavor: Flavor) -> Response {
    let note = "(sandbox fault injection)";
    let error = match (fault, flavor) {
        (Fault::ServerError, Flavor::ImageKit) => ApiError::ik(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal server error {note}: retry the upload with a fresh token"),
        ),
        (Fault::ServerError, Flavor::Cloudinary) => ApiError::cl(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("General Error {note}"),
        ),
        (Fault::UnavailableRetryAfter, _) => ApiError::new(
            flavor,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Service temporarily unavailable {note}: retry after the Retry-After delay"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
        (Fault::Unavailable, _) => ApiError::new(
            flavor,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Service temporarily unavailable {note}"),
        ),
        (Fault::RateLimited, Flavor::ImageKit) => ApiError::ik(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many requests {note}: retry after X-RateLimit-Reset milliseconds"),
        )
        .with_header(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from_static("10"),
        )
        .with_header(
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderValue::from_static("1000"),
        )
        .with_header(
            HeaderName::from_static("x-ratelimit-interval"),
            HeaderValue::from_static("1000"),
        ),
        (Fault::RateLimited, Flavor::Cloudinary) => {
            let retry_at = SystemTime::now() + Duration::from_secs(1);
            ApiError::cl(
                // Cloudinary's own "Enhance Your Calm" status for rate limits.
                StatusCode::from_u16(420).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                format!(
                    "Rate Limit Exceeded. Try again on {}",
                    httpdate::fmt_http_date(retry_at)
                ),
            )
        }
        (Fault::ConnectionReset | Fault::SlowBody, _) => ApiError::new(
            flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal server error {note}"),
        ),
    };
    error.into_response()
}

/// (e): reads up to [`RESET_AFTER_BYTES`] of the body, then breaks the connection. The
/// returned response is never written.
pub(crate) async fn reset(conn: &ConnHandle, body: Body) -> Response {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while read < RESET_AFTER_BYTES {
        match stream.next().await {
            Some(Ok(bytes)) => read += bytes.len(),
            Some(Err(_)) | None => break,
        }
    }
    tracing::info!(peer = %conn.peer, "fault injection: resetting the connection");
    conn.kill();
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// (f): stalls, then reads and discards the body (so the answer is not lost to a reset) and
/// answers 408.
pub(crate) async fn slow_body(flavor: Flavor, body: Body) -> Response {
    tokio::time::sleep(SLOW_BODY_DELAY).await;
    let mut stream = body.into_data_stream();
    let mut read = 0u64;
    while read <= DRAIN_LIMIT {
        match stream.next().await {
            Some(Ok(bytes)) => read += bytes.len() as u64,
            Some(Err(_)) | None => break,
        }
    }
    ApiError::new(
        flavor,
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "Request timeout (sandbox fault injection: the server stalled {} ms before reading the body): retry the upload",
            SLOW_BODY_DELAY.as_millis()
        ),
    )
    .with_header(header::CONNECTION, HeaderValue::from_static("close"))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(rate: f64, seed: u64) -> FaultInjector {
        FaultInjector::new(&Faults {
            fail_rate: rate,
            latency_ms: 0,
            seed: Some(seed),
        })
    }

    #[test]
    fn seeded_draws_repeat_and_rates_hold() {
        let a: Vec<_> = (0..50).map(|_| injector(0.5, 7).draw()).collect();
        let one = injector(0.5, 7);
        let b: Vec<_> = (0..50).map(|_| one.draw()).collect();
        let again = injector(0.5, 7);
        let c: Vec<_> = (0..50).map(|_| again.draw()).collect();
        assert_eq!(b, c);
        assert!(a.iter().all(|d| *d == a[0]));
        let always = injector(1.0, 1);
        let draws: Vec<_> = (0..200).map(|_| always.draw()).collect();
        assert!(draws.iter().all(Option::is_some));
        for fault in ALL {
            assert!(draws.contains(&Some(fault)), "{fault:?} never drawn");
        }
        let never = injector(0.0, 1);
        assert!((0..100).all(|_| never.draw().is_none()));
    }
}
