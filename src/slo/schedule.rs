//! How many valid runs a service's schedule produces over a span of time.
//!
//! Checks run at a fixed rate, so a check with interval `i` produces `span / i`
//! runs over `span` (in expectation over its phase; the real count is that
//! figure rounded up or down). A service's schedule pools its checks; time
//! inside one of the service's maintenance windows produces no valid runs.
//! This is what error budgets and burn rates divide by when the window holds
//! fewer runs than that (see the parent module).

use std::time::Duration;

use jiff::Timestamp;

use crate::config::{Maintenance, Service};

/// The check intervals and maintenance windows of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// (interval in nanoseconds, number of checks with that interval), sorted by
    /// interval, intervals > 0: a fixed summation order keeps figures reproducible.
    intervals: Vec<(u128, u64)>,
    /// The service's maintenance windows as `[start, end)` in unix nanoseconds,
    /// sorted, overlapping and touching ones merged (so overlaps count once).
    maintenance: Vec<(i128, i128)>,
}

fn nanos(t: Timestamp) -> i128 {
    t.as_nanosecond()
}

impl Schedule {
    /// A schedule of checks with `intervals` (zero intervals are ignored: a
    /// validated config has none) and the maintenance windows `[start, end)`.
    pub fn new(
        intervals: impl IntoIterator<Item = Duration>,
        maintenance: impl IntoIterator<Item = (Timestamp, Timestamp)>,
    ) -> Self {
        let mut by_interval = std::collections::BTreeMap::<u128, u64>::new();
        for i in intervals {
            let ns = i.as_nanos();
            if ns > 0 {
                *by_interval.entry(ns).or_default() += 1;
            }
        }
        let mut spans: Vec<(i128, i128)> = maintenance
            .into_iter()
            .map(|(s, e)| (nanos(s), nanos(e)))
            .filter(|(s, e)| s < e)
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(i128, i128)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Schedule {
            intervals: by_interval.into_iter().collect(),
            maintenance: merged,
        }
    }

    /// The schedule of `service`: its checks' intervals and the maintenance
    /// windows that name it.
    pub fn of(service: &Service, maintenance: &[Maintenance]) -> Self {
        Schedule::new(
            service.checks.iter().map(|c| c.interval),
            maintenance
                .iter()
                .filter(|m| m.services.contains(&service.name))
                .map(|m| (m.start, m.end)),
        )
    }

    /// Runs per second of all checks together (maintenance not subtracted):
    /// the `sentinel_slo_expected_runs_per_second` gauge.
    pub fn runs_per_second(&self) -> f64 {
        self.intervals
            .iter()
            .map(|&(ns, n)| n as f64 * 1e9 / ns as f64)
            .sum()
    }

    /// Nanoseconds of `[from, to)` outside every maintenance window.
    fn valid_nanos(&self, from: i128, to: i128) -> i128 {
        if to <= from {
            return 0;
        }
        let inside: i128 = self
            .maintenance
            .iter()
            .map(|&(s, e)| (e.min(to) - s.max(from)).max(0))
            .sum();
        to - from - inside
    }

    /// Valid runs the schedule produces over `[from, to)`: for each check,
    /// the time outside maintenance divided by its interval. Fractional: it is
    /// an expectation, not a count. 0 when `to ≤ from`.
    pub fn expected(&self, from: Timestamp, to: Timestamp) -> f64 {
        let span = self.valid_nanos(nanos(from), nanos(to));
        if span <= 0 {
            return 0.0;
        }
        self.intervals
            .iter()
            .map(|&(ns, n)| n as f64 * span as f64 / ns as f64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn expected_runs_are_span_over_interval_minus_merged_maintenance() {
        let s = Schedule::new(
            [
                Duration::from_secs(60),
                Duration::from_secs(15),
                Duration::from_secs(60),
            ],
            [
                // Overlapping and touching windows count once: 10:00–10:45.
                (ts("2026-03-10T10:00:00Z"), ts("2026-03-10T10:30:00Z")),
                (ts("2026-03-10T10:15:00Z"), ts("2026-03-10T10:40:00Z")),
                (ts("2026-03-10T10:40:00Z"), ts("2026-03-10T10:45:00Z")),
                // Empty: ignored.
                (ts("2026-03-10T12:00:00Z"), ts("2026-03-10T12:00:00Z")),
            ],
        );
        // 2 checks at 60 s + 1 at 15 s = 6 runs a minute.
        assert_eq!(s.runs_per_second(), 2.0 / 60.0 + 1.0 / 15.0);
        // 09:00–11:00 is 120 minutes, 45 of them in maintenance: 75 × 6 = 450.
        assert_eq!(
            s.expected(ts("2026-03-10T09:00:00Z"), ts("2026-03-10T11:00:00Z")),
            450.0
        );
        // Half a minute outside maintenance: 3 runs.
        assert_eq!(
            s.expected(ts("2026-03-10T10:44:30Z"), ts("2026-03-10T10:45:30Z")),
            3.0
        );
        // Entirely inside maintenance, or an empty / reversed span: nothing.
        assert_eq!(
            s.expected(ts("2026-03-10T10:05:00Z"), ts("2026-03-10T10:35:00Z")),
            0.0
        );
        assert_eq!(
            s.expected(ts("2026-03-10T11:00:00Z"), ts("2026-03-10T09:00:00Z")),
            0.0
        );
    }
}
