//! Which failures are worth another try, and how long to wait before it.
//!
//! Unreachable: the connection could not be made at all (refused, no route, DNS, connect
//! timeout); the job parks at the host's gate ([`super::reach`]) instead of retrying blindly.
//! Transient: resets, timeouts, 408, 429, 5xx and Cloudinary's 420. Every other 4xx is permanent
//! and stops the job at once with the provider's message. Waits use exponential backoff with
//! full jitter, unless the provider said when to come back (`Retry-After`, ImageKit's
//! `X-RateLimit-Reset` in milliseconds, Cloudinary's "Try again on ..."), which wins.
//!
//! A job gives up on transient failures only when its time budget is spent, never after a count
//! of attempts: a count turns a minute offline, or a bad patch of 5xx, into lost uploads.

use std::time::Duration;

use rand::Rng as _;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// The default budget of jobs nobody watches (watched folders, the app's queue, `resume`).
pub const UNATTENDED_BUDGET: Duration = Duration::from_secs(24 * 60 * 60);
/// The default budget of `dropkey upload`, whose caller waits at a prompt or in a script.
pub const ATTENDED_BUDGET: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long a job keeps trying through transient failures and outages, from its first
    /// attempt in this process. Then it needs attention.
    pub give_up_after: Duration,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            give_up_after: UNATTENDED_BUDGET,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: uniform in `[0, min(max, base * 2^(attempt-1))]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX),
        );
        let cap = exp.min(self.max_delay);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }
}

/// Why an attempt failed, and whether another may succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// No connection could be made to `origin` (`scheme://host:port`).
    Unreachable {
        reason: String,
        origin: String,
    },
    Permanent {
        reason: String,
    },
}

impl Failure {
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }

    pub fn transient(reason: impl Into<String>) -> Self {
        Self::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Transient { reason, .. }
            | Self::Unreachable { reason, .. }
            | Self::Permanent { reason } => reason,
        }
    }
}

/// Classifies an HTTP error response. `message` is the provider's own text.
pub fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    now_unix: i64,
) -> Failure {
    let reason = format!(
        "{} {}: {message}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let transient = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.as_u16() == 420
        || status.is_server_error();
    if !transient {
        return Failure::Permanent { reason };
    }
    Failure::Transient {
        reason,
        retry_after: retry_after(headers, message, now_unix),
    }
}

/// When the provider asked us to come back, if it did.
pub fn retry_after(headers: &HeaderMap, message: &str, now_unix: i64) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = header("retry-after") {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(until(at, now_unix));
        }
    }
    if let Some(ms) = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_millis(ms));
    }
    // Cloudinary: "Rate Limit Exceeded. Try again on 2024-05-01 10:00:00 UTC" (or an HTTP date).
    let tail = message.split("Try again on ").nth(1)?;
    let tail = tail.trim().trim_end_matches('.');
    if let Ok(at) = httpdate::parse_http_date(tail) {
        return Some(until(at, now_unix));
    }
    parse_utc_datetime(tail)
        .map(|at| Duration::from_secs(at.saturating_sub(now_unix).max(0) as u64))
}

fn until(at: std::time::SystemTime, now_unix: i64) -> Duration {
    let at = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Duration::from_secs(at.saturating_sub(now_unix).max(0) as u64)
}

/// `YYYY-MM-DD HH:MM:SS` (optionally followed by ` UTC`) as Unix seconds.
fn parse_utc_datetime(text: &str) -> Option<i64> {
    let text = text.trim_end_matches(" UTC").trim();
    let (date, time) = text.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + s)
}

/// Classifies a transport error (no HTTP response).
pub fn classify_transport(err: &reqwest::Error) -> Failure {
    // Our own body stream fails with the file's I/O error: that is not the network's fault.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
            ) {
                return Failure::permanent(format!("reading the file failed: {io}"));
            }
        }
        source = e.source();
    }
    if err.is_connect() {
        if let Some(origin) = err.url().and_then(super::reach::origin) {
            return Failure::Unreachable {
                reason: format!("could not connect: {}", error_chain(err)),
                origin,
            };
        }
    }
    let what = if err.is_timeout() {
        "the request timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    Failure::transient(format!("{what}: {}", error_chain(err)))
}

pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_split_into_transient_and_permanent() {
        let h = HeaderMap::new();
        for code in [408u16, 420, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(
                    classify_status(status, &h, "x", 0),
                    Failure::Transient { .. }
                ),
                "{code}"
            );
        }
        for code in [400u16, 401, 403, 404, 409, 413, 422] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(
                matches!(
                    classify_status(status, &h, "x", 0),
                    Failure::Permanent { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn provider_hints_set_the_wait() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, "", 0), Some(Duration::from_secs(7)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h, "", 0), Some(Duration::from_millis(1500)));
        let now = parse_utc_datetime("2024-05-01 10:00:00").unwrap();
        assert_eq!(now, 1_714_557_600);
        let msg = "Rate Limit Exceeded. Try again on 2024-05-01 10:00:05 UTC";
        assert_eq!(
            retry_after(&HeaderMap::new(), msg, now),
            Some(Duration::from_secs(5))
        );
        let msg = "Rate Limit Exceeded. Try again on Wed, 01 May 2024 10:00:03 GMT";
        assert_eq!(
            retry_after(&HeaderMap::new(), msg, now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(&HeaderMap::new(), "nothing", now), None);
    }

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let policy = RetryPolicy::default();
        for attempt in 1..40 {
            let d = policy.backoff(attempt);
            assert!(d <= policy.max_delay);
            assert!(d <= policy.base * 2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        }
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_with_its_origin() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let err = reqwest::Client::new()
            .get(format!("http://{addr}/api/v2/files/upload"))
            .send()
            .await
            .unwrap_err();
        match classify_transport(&err) {
            Failure::Unreachable { origin, reason } => {
                assert_eq!(origin, format!("http://{addr}"));
                assert!(reason.starts_with("could not connect"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
