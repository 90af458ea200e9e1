use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::config::{LatencySlo, Slo, SloWindow};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn slo(objective: f64, window: SloWindow, latency: Option<f64>) -> Slo {
    Slo {
        objective,
        window,
        latency: latency.map(|objective| LatencySlo {
            threshold: Duration::from_millis(300),
            objective,
        }),
    }
}

const D30: SloWindow = SloWindow::Rolling(Duration::from_secs(30 * 86_400));

fn c(valid: u64, good: u64, latency_good: u64) -> Counts {
    Counts {
        valid,
        good,
        latency_good,
    }
}

/// Table-driven window checks: record `runs` (time, good), then ask `window` at `now`.
fn check(
    window_slo: SloWindow,
    runs: &[(&str, bool)],
    now: &str,
    window: Window,
    expected: Counts,
) {
    let mut s = ServiceSlo::new(&slo(0.999, window_slo, Some(0.99)), Schedule::default());
    for (at, good) in runs {
        s.record(ts(at), *good, *good);
    }
    assert_eq!(s.counts(ts(now), window), expected, "{window:?} at {now}");
}

/// A schedule of checks with these intervals (seconds) and maintenance windows.
fn every(intervals: &[u64], maintenance: &[(&str, &str)]) -> Schedule {
    Schedule::new(
        intervals.iter().map(|&i| Duration::from_secs(i)),
        maintenance.iter().map(|(a, b)| (ts(a), ts(b))),
    )
}

const M5: Window = Window::Rolling(Duration::from_secs(300));
const H1: Window = Window::Rolling(Duration::from_secs(3600));
const D1: Window = Window::Rolling(Duration::from_secs(86_400));

mod figures;
mod proptests;
mod young_data;
