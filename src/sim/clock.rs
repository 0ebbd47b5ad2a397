//! A node's wall clock in the simulation: the runtime's virtual time, from a fixed epoch,
//! plus a skew the simulation sets (and steps) per node.
use std::sync::atomic::{AtomicI64, Ordering};

use crate::clock::Clock;

/// 2026-03-01 00:00 (Beijing), the simulated federation's day one.
pub const EPOCH_MS: u64 = 1_772_294_400_000;

pub struct SimClock {
    start: tokio::time::Instant,
    skew_ms: AtomicI64,
}

impl SimClock {
    /// A clock reading [`EPOCH_MS`] now (in the runtime's time), plus `skew_ms`.
    pub fn new(skew_ms: i64) -> SimClock {
        SimClock {
            start: tokio::time::Instant::now(),
            skew_ms: AtomicI64::new(skew_ms),
        }
    }

    pub fn set_skew(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::SeqCst);
    }

    pub fn skew(&self) -> i64 {
        self.skew_ms.load(Ordering::SeqCst)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        let elapsed = self.start.elapsed().as_millis() as i64;
        (EPOCH_MS as i64 + elapsed + self.skew()).max(0) as u64
    }
}
