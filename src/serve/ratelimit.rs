//! Per-token rate limiting: a token bucket per bearer token name, holding up to a minute's
//! budget and refilled continuously. It lives in one process, so with several instances behind a
//! load balancer each enforces its own share (see README, "Team mode").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one request from `key`'s budget of `per_minute`. `Err` holds how long until the next
    /// request would be allowed.
    pub fn check(&self, key: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        // A poisoned lock only means another request panicked mid-update; the map is still a
        // valid set of buckets.
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = match buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: capacity,
                last: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_refills() {
        let limiter = RateLimiter::new();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", 3, t0).is_ok());
        }
        let wait = limiter.check("a", 3, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(20) && wait > Duration::from_secs(19));
        // Other tokens have their own budget.
        assert!(limiter.check("b", 3, t0).is_ok());
        // 20 s later one request is back.
        let t1 = t0 + Duration::from_secs(20);
        assert!(limiter.check("a", 3, t1).is_ok());
        assert!(limiter.check("a", 3, t1).is_err());
    }
}
