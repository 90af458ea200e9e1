//! [`CheckSlot`]: the telemetry of one check, written by the check's task
//! after every run and read once per scrape.

use std::borrow::Cow;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::metrics::expo::LabelSet;
use crate::probe::{Outcome, Reason};
use crate::throttle::Throttle;

/// Upper bounds (seconds) of `sentinel_check_duration_seconds`, as floats for
/// bucketing and as the exact `le` strings we render.
pub(super) const BUCKETS: [(f64, &str); 11] = [
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
    (5.0, "5"),
    (10.0, "10"),
];

/// Quantiles of the 5-minute latency gauge, ascending (one HDR pass reads them all).
pub(super) const QUANTILES: [(f64, &str); 4] =
    [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Minutes in the sliding latency window.
pub(super) const WINDOW_MINUTES: usize = 5;

/// HDR range: 1 µs .. 60 s. Longer runs are clamped to 60 s (a timeout that
/// long is already a failure worth more than its exact duration).
pub(super) const HDR_LOW_US: u64 = 1;
pub(super) const HDR_HIGH_US: u64 = 60_000_000;

/// Significant figures of the window histograms. One figure keeps the ring at
/// 5 × 368 counters (3.6 KiB); two would need 5 × 2 560 (25 KiB at `u16`), far
/// over the ~8 KiB per-check budget. One figure still puts a value in a bucket
/// 1/16 wide; we report the bucket's midpoint, so a quantile is within ±3.2 %
/// of the recorded value (a p99 of 250 ms reads as 246..254 ms).
pub(super) const HDR_SIGFIG: u8 = 1;

/// Counter width of the window histograms. A `u16` bucket saturates at 65 535
/// runs per minute in one bucket (1 092 runs/s of one check), which a synthetic
/// check never reaches, and halves the ring's memory against `u32`.
pub(super) type HdrCount = u16;

pub(super) const REASONS: usize = Reason::ALL.len();

/// Longest detail kept for the API (characters); longer ones end in `…`.
pub const DETAIL_MAX_CHARS: usize = 200;

/// Local errors of one check are logged once, then at most once per this
/// interval with the number not logged in between.
pub const LOCAL_ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// A change of a check's state that a run caused, for the INFO log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The check was up or had not run yet, and this run was bad.
    Down,
    /// The check was down and this run was good. `was` is the reason of the
    /// last bad run, `down_since` the wall time (unix seconds) of the first.
    Up { was: Reason, down_since: i64 },
}

/// The last finished run of a check (local errors excluded), for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// Wall time the run finished, unix seconds.
    pub at: i64,
    /// `None` when the run was good.
    pub reason: Option<Reason>,
    /// The probe's detail, at most [`DETAIL_MAX_CHARS`] characters.
    pub detail: String,
}

/// A detail as logs and the API show it: at most [`DETAIL_MAX_CHARS`]
/// characters, longer ones cut and ended with `…`.
pub fn short_detail(detail: &str) -> Cow<'_, str> {
    match detail.char_indices().nth(DETAIL_MAX_CHARS) {
        None => Cow::Borrowed(detail),
        Some((cut, _)) => Cow::Owned(format!("{}…", &detail[..cut])),
    }
}

/// Copies the short form of `detail` into `buf`, reusing its allocation.
pub(super) fn set_detail(buf: &mut String, detail: &str) {
    buf.clear();
    buf.push_str(&short_detail(detail));
}

pub(super) fn reason_index(reason: Reason) -> usize {
    // `Reason::ALL` is in declaration order (pinned by a test), so the
    // discriminant is the index.
    reason as usize
}

/// Locks a mutex even if a thread panicked while holding it: the state is plain
/// counters, so a half-finished update is still better than losing metrics.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `None` only if HDR rejected the constant bounds, which it does not
/// (low >= 1, high >= 2 * low, sigfig <= 5); the window is then simply absent
/// rather than a panic in the scheduler.
pub(super) fn new_hdr() -> Option<Histogram<HdrCount>> {
    Histogram::new_with_bounds(HDR_LOW_US, HDR_HIGH_US, HDR_SIGFIG).ok()
}

/// One minute of latencies.
#[derive(Debug)]
pub(super) struct Minute {
    /// Unix minute (`secs.div_euclid(60)`) the histogram holds; a slot whose
    /// minute has passed out of the window is stale and reset on reuse.
    pub(super) minute: i64,
    /// Allocated on the first run recorded into this ring position, so a check
    /// that never ran costs no histogram memory.
    pub(super) hist: Option<Histogram<HdrCount>>,
}

/// The mutable state of one check, behind the slot's mutex.
#[derive(Debug)]
pub(super) struct SlotState {
    /// `None` until the first run finishes.
    pub(super) up: Option<bool>,
    pub(super) good: u64,
    pub(super) bad: u64,
    pub(super) skipped: u64,
    pub(super) failures: [u64; REASONS],
    /// Non-cumulative counts per bucket of [`BUCKETS`]; runs above the last
    /// bound are only in `count`. Cumulated at render.
    pub(super) buckets: [u64; BUCKETS.len()],
    pub(super) sum_seconds: f64,
    pub(super) count: u64,
    pub(super) cert_not_after: Option<i64>,
    /// Ring indexed by `minute % WINDOW_MINUTES`.
    pub(super) window: [Minute; WINDOW_MINUTES],
    /// Runs that ended in a local error.
    pub(super) local_errors: u64,
    /// The local-error log line is rate-limited; the counter is not.
    pub(super) local_log: Throttle,
    /// `None` until the first run finishes.
    pub(super) last: Option<LastRun>,
    /// Wall time of the first bad run of the current down streak.
    pub(super) down_since: Option<i64>,
}

/// The telemetry of one check. Shared between the scheduler (writes) and the
/// `/metrics` handler (reads).
#[derive(Debug)]
pub struct CheckSlot {
    pub(super) service: String,
    pub(super) check: String,
    /// `service="…",check="…"` escaped once: it starts ~30 lines per scrape.
    pub(super) labels: LabelSet,
    /// Held for a few counter updates per run and for one copy per scrape, so
    /// it is effectively uncontended; a plain mutex is simpler than a dozen atomics
    /// and keeps one run's figures consistent with each other in a scrape.
    pub(super) state: Mutex<SlotState>,
}

impl CheckSlot {
    pub(super) fn new(service: &str, check: &str) -> Self {
        let window = std::array::from_fn(|_| Minute {
            minute: i64::MIN,
            hist: None,
        });
        Self {
            service: service.to_owned(),
            check: check.to_owned(),
            labels: LabelSet::new(&[("service", service), ("check", check)]),
            state: Mutex::new(SlotState {
                up: None,
                good: 0,
                bad: 0,
                skipped: 0,
                failures: [0; REASONS],
                buckets: [0; BUCKETS.len()],
                sum_seconds: 0.0,
                count: 0,
                cert_not_after: None,
                window,
                local_errors: 0,
                local_log: Throttle::new(LOCAL_ERROR_LOG_EVERY),
                last: None,
                down_since: None,
            }),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn check(&self) -> &str {
        &self.check
    }

    /// Records one finished run at wall time `now_unix_secs`; returns the
    /// up/down change it caused, if any. A local error only counts as one.
    pub fn record(&self, outcome: &Outcome, now_unix_secs: i64) -> Option<Transition> {
        let secs = outcome.latency.as_secs_f64();
        let micros = u64::try_from(outcome.latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(HDR_LOW_US, HDR_HIGH_US);
        let bucket = BUCKETS.iter().position(|(le, _)| secs <= *le);
        let minute = now_unix_secs.div_euclid(60);

        let mut s = lock(&self.state);
        if outcome.is_local() {
            s.local_errors += 1;
            return None;
        }
        let was = s.last.as_ref().and_then(|l| l.reason);
        let transition = match (s.up, outcome.reason, was, s.down_since) {
            (Some(false), None, Some(was), Some(down_since)) => {
                Some(Transition::Up { was, down_since })
            }
            (None | Some(true), Some(_), _, _) => Some(Transition::Down),
            _ => None,
        };
        s.up = Some(outcome.good());
        match outcome.reason {
            None => {
                s.good += 1;
                s.down_since = None;
            }
            Some(reason) => {
                s.bad += 1;
                if let Some(n) = s.failures.get_mut(reason_index(reason)) {
                    *n += 1;
                }
                if s.down_since.is_none() {
                    s.down_since = Some(now_unix_secs);
                }
            }
        }
        let last = s.last.get_or_insert_with(|| LastRun {
            at: now_unix_secs,
            reason: None,
            detail: String::new(),
        });
        last.at = now_unix_secs;
        last.reason = outcome.reason;
        set_detail(&mut last.detail, &outcome.detail);
        if let Some(i) = bucket {
            s.buckets[i] += 1;
        }
        s.sum_seconds += secs;
        s.count += 1;
        if let Some(t) = outcome.cert_not_after {
            s.cert_not_after = Some(t);
        }
        let slot = &mut s.window[ring_index(minute)];
        if minute < slot.minute {
            // The wall clock stepped back past this ring position's minute:
            // overwriting would drop newer data for an older run, so the run
            // counts everywhere but the latency window.
            return transition;
        }
        if slot.minute != minute {
            if let Some(h) = &mut slot.hist {
                h.reset();
            }
            slot.minute = minute;
        }
        if slot.hist.is_none() {
            slot.hist = new_hdr();
        }
        if let Some(h) = &mut slot.hist {
            h.saturating_record(micros);
        }
        transition
    }

    /// Rate limit of the local-error log line: `Some(n)` when the local error
    /// seen at `now` should be logged, `n` being how many were not logged
    /// since the last line; `None` to stay quiet.
    pub fn local_error_log_due(&self, now: Instant) -> Option<u64> {
        lock(&self.state).local_log.due_at(now)
    }

    /// Whether the last finished run was good; `None` before the first run.
    pub fn last_up(&self) -> Option<bool> {
        lock(&self.state).up
    }

    /// The last finished run (local errors excluded); `None` before the first.
    pub fn last_run(&self) -> Option<LastRun> {
        lock(&self.state).last.clone()
    }

    /// Runs that ended in a local error since the daemon started.
    pub fn local_errors(&self) -> u64 {
        lock(&self.state).local_errors
    }

    /// Counts a run that did not start because the previous one was still going.
    pub fn record_skipped(&self) {
        lock(&self.state).skipped += 1;
    }

    /// Copies the counters and merges the live minutes of the window into
    /// `scratch`, holding the lock only for that.
    pub(super) fn snapshot(
        &self,
        now_unix_secs: i64,
        scratch: &mut Option<Histogram<HdrCount>>,
    ) -> SlotReading {
        if let Some(h) = scratch {
            h.reset();
        }
        let now_minute = now_unix_secs.div_euclid(60);
        let s = lock(&self.state);
        if let Some(scratch) = scratch {
            for m in &s.window {
                if let Some(h) = &m.hist
                    && in_window(m.minute, now_minute)
                {
                    // Same bounds and type, so `add` cannot fail; saturating
                    // counters are documented at `HdrCount`.
                    let _ = scratch.add(h);
                }
            }
        }
        let snap = SlotReading {
            up: s.up,
            good: s.good,
            bad: s.bad,
            skipped: s.skipped,
            failures: s.failures,
            buckets: s.buckets,
            sum_seconds: s.sum_seconds,
            count: s.count,
            cert_not_after: s.cert_not_after,
            local_errors: s.local_errors,
            quantiles: None,
        };
        drop(s);
        let mut snap = snap;
        if let Some(scratch) = scratch
            && !scratch.is_empty()
        {
            let mut q = [0.0; QUANTILES.len()];
            for (dst, us) in q
                .iter_mut()
                .zip(scratch.value_at_quantiles(QUANTILES.iter().map(|(q, _)| *q)))
            {
                // HDR answers with the top of the bucket; its midpoint halves
                // the worst-case error (±1/32 instead of +1/16).
                *dst = scratch.median_equivalent(us) as f64 / 1e6;
            }
            snap.quantiles = Some(q);
        }
        snap
    }

    /// Bytes this slot occupies, heap included (names excluded): the figure
    /// behind the per-check memory budget.
    pub fn approx_bytes(&self) -> usize {
        let s = lock(&self.state);
        let hdr: usize = s
            .window
            .iter()
            .filter_map(|m| m.hist.as_ref())
            .map(|h| {
                std::mem::size_of::<Histogram<HdrCount>>()
                    + h.distinct_values() * std::mem::size_of::<HdrCount>()
            })
            .sum();
        std::mem::size_of::<Self>() + hdr
    }
}

pub(super) fn ring_index(minute: i64) -> usize {
    // rem_euclid of a positive modulus is in 0..WINDOW_MINUTES.
    usize::try_from(minute.rem_euclid(WINDOW_MINUTES as i64)).unwrap_or(0)
}

/// A minute is in the window when it is the current one or one of the
/// `WINDOW_MINUTES - 1` before it.
pub(super) fn in_window(minute: i64, now_minute: i64) -> bool {
    minute <= now_minute && now_minute - minute < WINDOW_MINUTES as i64
}

/// A consistent copy of one slot, taken once per scrape so rendering
/// family-by-family does not lock each slot once per family.
pub(super) struct SlotReading {
    pub(super) up: Option<bool>,
    pub(super) good: u64,
    pub(super) bad: u64,
    pub(super) skipped: u64,
    pub(super) failures: [u64; REASONS],
    pub(super) buckets: [u64; BUCKETS.len()],
    pub(super) sum_seconds: f64,
    pub(super) count: u64,
    pub(super) cert_not_after: Option<i64>,
    pub(super) local_errors: u64,
    /// Seconds at each of [`QUANTILES`]; `None` when the window is empty.
    pub(super) quantiles: Option<[f64; QUANTILES.len()]>,
}
