//! The provider's idea of "now". Signatures are only valid near the provider's time (ImageKit:
//! expire less than an hour ahead; Cloudinary: "Stale request" past an hour), so every response's
//! `Date` header updates an offset, and tokens are signed with the corrected time.

use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::header::HeaderMap;

/// Offsets under this are ordinary network and rounding noise (`Date` has 1 s resolution).
const SKEW_WORTH_REPORTING: i64 = 30;

#[derive(Debug, Default)]
pub struct SkewClock {
    offset: AtomicI64,
}

impl SkewClock {
    /// The corrected Unix time.
    pub fn now(&self) -> i64 {
        crate::unix_now() + self.offset.load(Ordering::Relaxed)
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Learns the offset from a response's `Date` header.
    pub fn observe(&self, headers: &HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            return;
        };
        let Ok(server) = date.duration_since(std::time::UNIX_EPOCH) else {
            return;
        };
        let offset = server.as_secs() as i64 - crate::unix_now();
        // One second either way is the header's resolution, not skew.
        let offset = if offset.abs() <= 1 { 0 } else { offset };
        if offset.abs() >= SKEW_WORTH_REPORTING && self.offset.load(Ordering::Relaxed) == 0 {
            tracing::warn!("{}", describe_skew(offset));
        }
        self.offset.store(offset, Ordering::Relaxed);
    }
}

/// Plain words for a skewed clock.
pub fn describe_skew(offset: i64) -> String {
    let (dir, secs) = if offset > 0 {
        ("behind", offset)
    } else {
        ("ahead of", -offset)
    };
    format!(
        "this computer's clock is {secs} s {dir} the provider's; Dropkey signs with the provider's time, but fix the system clock (enable NTP, e.g. `timedatectl set-ntp true`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn learns_the_offset_from_date_headers() {
        let clock = SkewClock::default();
        let ahead = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::DATE,
            HeaderValue::from_str(&httpdate::fmt_http_date(ahead)).unwrap(),
        );
        clock.observe(&h);
        assert!((599..=601).contains(&clock.offset()));
        assert!((clock.now() - crate::unix_now() - 600).abs() <= 1);
        assert!(describe_skew(600).contains("600 s behind"));
    }
}
