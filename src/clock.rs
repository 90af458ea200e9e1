//! The only place that reads wall-clock time.
//!
//! Pure modules (`slo`, `incident`) take `now` as an argument; the daemon passes
//! [`SystemClock`], tests pass a [`ManualClock`] they move by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one sanctioned read of the wall clock (clippy.toml bans it elsewhere).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(start.as_microsecond())),
        }
    }

    pub fn set(&self, t: Timestamp) {
        self.micros.store(t.as_microsecond(), Ordering::SeqCst);
    }

    pub fn advance(&self, d: std::time::Duration) {
        let d = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(d, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let us = self.micros.load(Ordering::SeqCst);
        Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}
