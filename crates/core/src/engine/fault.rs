//! Named crash points, compiled in only with the `fault-points` feature (the test build).
//!
//! `DROPKEY_FAULT_POINT=<name>[:<n>]` aborts the process (no unwinding, no cleanup: as close to
//! `kill -9` as a process can do to itself) the n-th time (default: first) it passes `<name>`.
//! Tests use it to stop an upload at every state transition and prove that a restart loses
//! nothing and repeats only what was in flight.

/// The transitions a test can stop at.
pub const POINTS: &[&str] = &[
    "enqueued",
    "claimed",
    "acknowledged",
    "done",
    "chunk-acknowledged",
];

// Only in builds with `fault-points` (the crash tests), whose tests read this line on stderr.
#[cfg(feature = "fault-points")]
#[allow(clippy::print_stderr)]
pub fn point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var("DROPKEY_FAULT_POINT") else {
        return;
    };
    let (wanted, nth) = match spec.split_once(':') {
        Some((point, n)) => (point.to_owned(), n.parse::<u64>().unwrap_or(1)),
        None => (spec, 1),
    };
    if wanted == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("fault point `{name}` reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
