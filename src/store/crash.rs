//! Test-only fault injection for the crash-safety test (`tests/crash_store.rs`).
//!
//! When `IMIPD_TEST_CRASH_POINTS` names a point (comma-separated), [`point`] aborts the
//! process there with probability `IMIPD_TEST_CRASH_PROBABILITY` (default 0.05), after one
//! line on stderr (`imipd: test crash at <point>`). `std::process::abort` skips destructors
//! and sled's final flush, like SIGKILL. Unset (the normal case), [`point`] is one relaxed
//! load of a cached "off".
//!
//! The points: `before_commit` (a message decided, nothing written), `before_flush` (the
//! transaction applied in memory, not flushed), `after_commit` (flushed, the IMAP mark not
//! yet set), `after_smtp_accept` (the server accepted a reply, the outbox still holds it:
//! the documented duplicate window).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Plan {
    points: Vec<String>,
    /// Probability scaled to u64::MAX.
    threshold: u64,
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static RNG: AtomicU64 = AtomicU64::new(0);

fn plan() -> Option<&'static Plan> {
    PLAN.get_or_init(|| {
        let points = std::env::var("IMIPD_TEST_CRASH_POINTS").ok()?;
        let probability = std::env::var("IMIPD_TEST_CRASH_PROBABILITY")
            .ok()
            .and_then(|p| p.parse::<f64>().ok())
            .unwrap_or(0.05)
            .clamp(0.0, 1.0);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32)
            | 1;
        RNG.store(seed, Ordering::Relaxed);
        Some(Plan {
            points: points.split(',').map(|p| p.trim().to_string()).collect(),
            threshold: (probability * u64::MAX as f64) as u64,
        })
    })
    .as_ref()
}

fn next_random() -> u64 {
    // xorshift64: quality is irrelevant, it only spreads the crashes.
    let mut x = RNG.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    RNG.store(x, Ordering::Relaxed);
    x
}

/// A place where the crash test may kill the process.
pub fn point(name: &str) {
    if let Some(plan) = plan()
        && plan.points.iter().any(|p| p == name)
        && next_random() < plan.threshold
    {
        eprintln!("imipd: test crash at {name}");
        std::process::abort();
    }
}
