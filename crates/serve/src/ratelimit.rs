//! Token buckets: one per bearer token name (its request budget), and one per client IP for
//! requests without a valid token. Each holds up to a minute's budget and refills continuously.
//! They live in one process, so with several instances behind a load balancer each enforces its
//! own share (see README, "Team mode").

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full ones (keys quiet for a minute) are dropped: anyone can make up
/// client IPs, so the map must not grow with them.
const PRUNE_AT: usize = 4096;

#[derive(Debug)]
pub struct RateLimiter<K = String> {
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    buckets: HashMap<K, Bucket>,
    /// The size at which the next prune runs; doubles when pruning frees little, so a prune
    /// costs amortised O(1) per new key.
    prune_at: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    per_second: f64,
    capacity: f64,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
    }
}

impl<K: Hash + Eq> Default for RateLimiter<K> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                buckets: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one request from `key`'s budget of `per_minute`. `Err` holds how long until the next
    /// request would be allowed.
    pub fn check<Q>(&self, key: &Q, per_minute: u32, now: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        // A poisoned lock only means another request panicked mid-update; the map is still a
        // valid set of buckets.
        let mut state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !state.buckets.contains_key(key) && state.buckets.len() >= state.prune_at {
            state.buckets.retain(|_, bucket| {
                bucket.refill(now);
                bucket.tokens < bucket.capacity
            });
            state.prune_at = (state.buckets.len() * 2).max(PRUNE_AT);
        }
        let bucket = match state.buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => state.buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: capacity,
                last: now,
                per_second,
                capacity,
            }),
        };
        bucket.per_second = per_second;
        bucket.capacity = capacity;
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map(|s| s.buckets.len()).unwrap_or(0)
    }
}

/// A [`Duration`] as the whole seconds of a `Retry-After` header (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_budget_then_refills() {
        let limiter = RateLimiter::<String>::new();
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

    #[test]
    fn made_up_keys_do_not_grow_the_map_without_bound() {
        let limiter = RateLimiter::<u32>::new();
        let t0 = Instant::now();
        // One request per key, a minute apart in bursts: each burst's buckets are full again
        // by the next one and get dropped.
        for burst in 0..4u32 {
            let now = t0 + Duration::from_secs(61 * u64::from(burst));
            for key in 0..(PRUNE_AT as u32) {
                limiter.check(&(burst * 1_000_000 + key), 30, now).unwrap();
            }
        }
        assert!(limiter.len() <= 2 * PRUNE_AT, "{}", limiter.len());
        // A key still short of its budget survives a prune.
        let later = t0 + Duration::from_secs(61 * 4);
        for _ in 0..30 {
            limiter.check(&7, 30, later).unwrap();
        }
        assert!(limiter.check(&7, 30, later).is_err());
        for key in 0..(2 * PRUNE_AT as u32) {
            let _ = limiter.check(&(9_000_000 + key), 30, later);
        }
        assert!(limiter.check(&7, 30, later).is_err());
    }
}
