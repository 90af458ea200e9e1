//! Per-check telemetry: the `sentinel_check_*` families.
//!
//! One [`CheckSlot`] per configured check. The scheduler holds an
//! `Arc<CheckSlot>` and records into it directly, so the hot path is one
//! uncontended mutex and no map lookup. [`CheckMetrics`] owns the map from
//! (service, check) to slot, keeps it in step with the config on reload, and
//! renders every slot in a stable (service, check) order.
//!
//! Choices a user can see:
//! - `sentinel_check_up` and `sentinel_check_tls_cert_expiry_timestamp_seconds`
//!   appear only once known (after the first run / first certificate seen), so
//!   a freshly added check does not read as down.
//! - `sentinel_check_failures_total{reason}` renders only reasons that occurred
//!   at least once. Rendering all ten for every check would more than double
//!   the scrape for 10 000 checks; alert on `runs_total{result="bad"}`, which is
//!   always present (zero included).
//! - `sentinel_check_latency_seconds{quantile}` covers the current minute and
//!   the four before it (so 4–5 minutes of data), and is absent when that
//!   window holds no run. It is exposed with `# TYPE summary` (quantile
//!   samples only): the series are the ones the contract names, but `promtool
//!   check metrics` rejects a `quantile` label on a gauge.
//! - A run that ended in a local error ([`Reason::Local`]: this host ran out
//!   of descriptors, memory, ...) is not a run of the target: it only counts
//!   in `sentinel_check_local_errors_total` and leaves `up`, the run counters,
//!   the histograms and the last run shown by the API untouched.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::metrics::expo::{Expo, LabelSet, MetricType};
use crate::probe::{Outcome, Reason};

/// Upper bounds (seconds) of `sentinel_check_duration_seconds`, as floats for
/// bucketing and as the exact `le` strings we render.
const BUCKETS: [(f64, &str); 11] = [
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
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// Minutes in the sliding latency window.
const WINDOW_MINUTES: usize = 5;

/// HDR range: 1 µs .. 60 s. Longer runs are clamped to 60 s (a timeout that
/// long is already a failure worth more than its exact duration).
const HDR_LOW_US: u64 = 1;
const HDR_HIGH_US: u64 = 60_000_000;

/// Significant figures of the window histograms. One figure keeps the ring at
/// 5 × 368 counters (3.6 KiB); two would need 5 × 2 560 (25 KiB at `u16`), far
/// over the ~8 KiB per-check budget. One figure still puts a value in a bucket
/// 1/16 wide; we report the bucket's midpoint, so a quantile is within ±3.2 %
/// of the recorded value (a p99 of 250 ms reads as 246..254 ms).
const HDR_SIGFIG: u8 = 1;

/// Counter width of the window histograms. A `u16` bucket saturates at 65 535
/// runs per minute in one bucket (1 092 runs/s of one check), which a synthetic
/// check never reaches, and halves the ring's memory against `u32`.
type HdrCount = u16;

const REASONS: usize = Reason::ALL.len();

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
fn set_detail(buf: &mut String, detail: &str) {
    buf.clear();
    buf.push_str(&short_detail(detail));
}

fn reason_index(reason: Reason) -> usize {
    // `Reason::ALL` is in declaration order (pinned by a test), so the
    // discriminant is the index.
    reason as usize
}

/// Locks a mutex even if a thread panicked while holding it: the state is plain
/// counters, so a half-finished update is still better than losing metrics.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `None` only if HDR rejected the constant bounds, which it does not
/// (low >= 1, high >= 2 * low, sigfig <= 5); the window is then simply absent
/// rather than a panic in the scheduler.
fn new_hdr() -> Option<Histogram<HdrCount>> {
    Histogram::new_with_bounds(HDR_LOW_US, HDR_HIGH_US, HDR_SIGFIG).ok()
}

/// One minute of latencies.
#[derive(Debug)]
struct Minute {
    /// Unix minute (`secs.div_euclid(60)`) the histogram holds; a slot whose
    /// minute has passed out of the window is stale and reset on reuse.
    minute: i64,
    /// Allocated on the first run recorded into this ring position, so a check
    /// that never ran costs no histogram memory.
    hist: Option<Histogram<HdrCount>>,
}

/// The mutable state of one check, behind the slot's mutex.
#[derive(Debug)]
struct SlotState {
    /// `None` until the first run finishes.
    up: Option<bool>,
    good: u64,
    bad: u64,
    skipped: u64,
    failures: [u64; REASONS],
    /// Non-cumulative counts per bucket of [`BUCKETS`]; runs above the last
    /// bound are only in `count`. Cumulated at render.
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
    cert_not_after: Option<i64>,
    /// Ring indexed by `minute % WINDOW_MINUTES`.
    window: [Minute; WINDOW_MINUTES],
    /// Runs that ended in a local error.
    local_errors: u64,
    /// When a local error of this check was last logged, and how many were
    /// not logged since: the log is rate-limited, the counter is not.
    local_logged_at: Option<Instant>,
    local_unlogged: u64,
    /// `None` until the first run finishes.
    last: Option<LastRun>,
    /// Wall time of the first bad run of the current down streak.
    down_since: Option<i64>,
}

/// The telemetry of one check. Shared between the scheduler (writes) and the
/// `/metrics` handler (reads).
#[derive(Debug)]
pub struct CheckSlot {
    service: String,
    check: String,
    /// `service="…",check="…"` escaped once: it starts ~30 lines per scrape.
    labels: LabelSet,
    /// Held for a few counter updates per run and for one copy per scrape, so
    /// it is effectively uncontended; a plain mutex is simpler than a dozen atomics
    /// and keeps one run's figures consistent with each other in a scrape.
    state: Mutex<SlotState>,
}

impl CheckSlot {
    fn new(service: &str, check: &str) -> Self {
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
                local_logged_at: None,
                local_unlogged: 0,
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
        let mut s = lock(&self.state);
        match s.local_logged_at {
            Some(at) if now.saturating_duration_since(at) < LOCAL_ERROR_LOG_EVERY => {
                s.local_unlogged += 1;
                None
            }
            _ => {
                s.local_logged_at = Some(now);
                Some(std::mem::take(&mut s.local_unlogged))
            }
        }
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
    fn snapshot(&self, now_unix_secs: i64, scratch: &mut Option<Histogram<HdrCount>>) -> Snapshot {
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
        let snap = Snapshot {
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

fn ring_index(minute: i64) -> usize {
    // rem_euclid of a positive modulus is in 0..WINDOW_MINUTES.
    usize::try_from(minute.rem_euclid(WINDOW_MINUTES as i64)).unwrap_or(0)
}

/// A minute is in the window when it is the current one or one of the
/// `WINDOW_MINUTES - 1` before it.
fn in_window(minute: i64, now_minute: i64) -> bool {
    minute <= now_minute && now_minute - minute < WINDOW_MINUTES as i64
}

/// A consistent copy of one slot, taken once per scrape so rendering
/// family-by-family does not lock each slot once per family.
struct Snapshot {
    up: Option<bool>,
    good: u64,
    bad: u64,
    skipped: u64,
    failures: [u64; REASONS],
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
    cert_not_after: Option<i64>,
    local_errors: u64,
    /// Seconds at each of [`QUANTILES`]; `None` when the window is empty.
    quantiles: Option<[f64; QUANTILES.len()]>,
}

/// What [`CheckMetrics::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    pub kept: usize,
    pub added: usize,
    pub removed: usize,
}

/// The registry of check slots: service → check → slot, sorted so the scrape
/// is stable.
#[derive(Debug, Default)]
pub struct CheckMetrics {
    /// Written only on (re)load; read per scrape and by `slot()` when the
    /// scheduler (re)builds its tasks.
    slots: RwLock<BTreeMap<String, BTreeMap<String, Arc<CheckSlot>>>>,
    /// `metrics.check_histograms: false` clears this: the duration histogram
    /// then keeps only `+Inf`, `_sum` and `_count` (3 series per check instead
    /// of 14). Inverted so the `Default` is "on".
    no_histogram_buckets: AtomicBool,
}

impl CheckMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the registry hold exactly `checks`, given as (service, check)
    /// pairs. Slots of checks that still exist are kept — a config reload must
    /// not reset their counters (Prometheus would read a reset as a restart) —,
    /// new checks get fresh slots, removed checks are dropped (the scheduler's
    /// `Arc` may outlive the map entry; its records then go nowhere).
    pub fn sync<S: AsRef<str>, C: AsRef<str>>(&self, checks: &[(S, C)]) -> SyncStats {
        // One write lock for the whole swap: a scheduler looking up a kept
        // check mid-reload must never see it missing.
        let mut map = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let mut old = std::mem::take(&mut *map);
        let mut next: BTreeMap<String, BTreeMap<String, Arc<CheckSlot>>> = BTreeMap::new();
        let mut stats = SyncStats::default();
        for (service, check) in checks {
            let (service, check) = (service.as_ref(), check.as_ref());
            let entry = next.entry(service.to_owned()).or_default();
            if entry.contains_key(check) {
                // Duplicates are rejected by config validation; be idempotent anyway.
                continue;
            }
            let slot = match old.get_mut(service).and_then(|m| m.remove(check)) {
                Some(slot) => {
                    stats.kept += 1;
                    slot
                }
                None => {
                    stats.added += 1;
                    Arc::new(CheckSlot::new(service, check))
                }
            };
            entry.insert(check.to_owned(), slot);
        }
        stats.removed = old.values().map(BTreeMap::len).sum();
        *map = next;
        stats
    }

    /// The (service, check) pairs of a config, in config order: the argument
    /// for [`CheckMetrics::sync`].
    pub fn checks_of(config: &crate::config::Config) -> Vec<(String, String)> {
        config
            .services
            .iter()
            .flat_map(|s| s.checks.iter().map(|c| (s.name.clone(), c.name.clone())))
            .collect()
    }

    /// Export the `le` buckets of `sentinel_check_duration_seconds` (on by
    /// default). Counting is unchanged either way, so turning them back on
    /// shows the full history.
    pub fn set_histograms(&self, on: bool) {
        self.no_histogram_buckets.store(!on, Ordering::Relaxed);
    }

    /// The slot of one check, for the scheduler to hold.
    pub fn slot(&self, service: &str, check: &str) -> Option<Arc<CheckSlot>> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)?
            .get(check)
            .cloned()
    }

    /// Number of checks held.
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(BTreeMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Renders every `sentinel_check_*` family, checks sorted by (service, check).
    pub fn render(&self, out: &mut Expo, now_unix_secs: i64) {
        // Snapshot first (each slot locked once, briefly), render after, so
        // neither the map lock nor any slot lock is held while formatting.
        let slots: Vec<Arc<CheckSlot>> = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        let mut scratch = new_hdr();
        let snaps: Vec<(&CheckSlot, Snapshot)> = slots
            .iter()
            .map(|slot| (slot.as_ref(), slot.snapshot(now_unix_secs, &mut scratch)))
            .collect();
        let buckets = !self.no_histogram_buckets.load(Ordering::Relaxed);
        render_snapshots(out, &snaps, buckets);
    }
}

fn render_snapshots(out: &mut Expo, snaps: &[(&CheckSlot, Snapshot)], buckets: bool) {
    out.family(
        "sentinel_check_up",
        "1 if the last run of the check was good, 0 if it was bad.",
        MetricType::Gauge,
    );
    for (slot, s) in snaps {
        if let Some(up) = s.up {
            out.sample_set_u64("sentinel_check_up", &slot.labels, &[], u64::from(up));
        }
    }

    out.family(
        "sentinel_check_runs_total",
        "Finished runs of the check by result.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        for (result, n) in [("good", s.good), ("bad", s.bad)] {
            out.sample_set_u64(
                "sentinel_check_runs_total",
                &slot.labels,
                &[("result", result)],
                n,
            );
        }
    }

    out.family(
        "sentinel_check_failures_total",
        "Bad runs of the check by reason; reasons that never occurred are omitted.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        for (reason, n) in Reason::ALL.iter().zip(s.failures) {
            if n > 0 {
                out.sample_set_u64(
                    "sentinel_check_failures_total",
                    &slot.labels,
                    &[("reason", reason.as_str())],
                    n,
                );
            }
        }
    }

    out.family(
        "sentinel_check_skipped_total",
        "Runs not started because the previous run of the check was still going.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        out.sample_set_u64("sentinel_check_skipped_total", &slot.labels, &[], s.skipped);
    }

    out.family(
        "sentinel_check_local_errors_total",
        "Runs that could not probe the target because of an error of this host (out of descriptors, memory, socket buffers or local ports); not counted as runs.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        out.sample_set_u64(
            "sentinel_check_local_errors_total",
            &slot.labels,
            &[],
            s.local_errors,
        );
    }

    out.family(
        "sentinel_check_duration_seconds",
        "Duration of finished runs of the check.",
        MetricType::Histogram,
    );
    for (slot, s) in snaps {
        let mut cumulative = 0;
        for ((_, le), n) in BUCKETS.iter().zip(s.buckets) {
            cumulative += n;
            if buckets {
                out.sample_set_u64(
                    "sentinel_check_duration_seconds_bucket",
                    &slot.labels,
                    &[("le", le)],
                    cumulative,
                );
            }
        }
        out.sample_set_u64(
            "sentinel_check_duration_seconds_bucket",
            &slot.labels,
            &[("le", "+Inf")],
            s.count,
        );
        out.sample_set(
            "sentinel_check_duration_seconds_sum",
            &slot.labels,
            &[],
            s.sum_seconds,
        );
        out.sample_set_u64(
            "sentinel_check_duration_seconds_count",
            &slot.labels,
            &[],
            s.count,
        );
    }

    // Typed `summary` (quantiles only, no `_sum`/`_count`) although the metric
    // is documented as a gauge: `promtool check metrics` rejects a `quantile` label
    // on any other type, and the series Prometheus stores are identical.
    out.family(
        "sentinel_check_latency_seconds",
        "Run duration quantiles over the last 5 minutes (HdrHistogram, within 3.2%).",
        MetricType::Summary,
    );
    for (slot, s) in snaps {
        if let Some(q) = s.quantiles {
            for ((_, label), v) in QUANTILES.iter().zip(q) {
                out.sample_set(
                    "sentinel_check_latency_seconds",
                    &slot.labels,
                    &[("quantile", label)],
                    v,
                );
            }
        }
    }

    out.family(
        "sentinel_check_tls_cert_expiry_timestamp_seconds",
        "notAfter of the last certificate the check saw, in unix seconds.",
        MetricType::Gauge,
    );
    for (slot, s) in snaps {
        if let Some(t) = s.cert_not_after {
            out.sample_set_i64(
                "sentinel_check_tls_cert_expiry_timestamp_seconds",
                &slot.labels,
                &[],
                t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(reason: Option<Reason>, latency: Duration, cert: Option<i64>) -> Outcome {
        Outcome {
            reason,
            latency,
            cert_not_after: cert,
            detail: String::new(),
        }
    }

    fn good(ms: u64) -> Outcome {
        outcome(None, Duration::from_millis(ms), None)
    }

    fn rendered(m: &CheckMetrics, now: i64) -> String {
        let mut out = Expo::new();
        m.render(&mut out, now);
        out.into_string()
    }

    /// The `sentinel_check_latency_seconds` lines of a scrape.
    fn latency_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with("sentinel_check_latency_seconds{"))
            .collect()
    }

    /// Records one run of `latency` and returns the smallest `le` whose
    /// cumulative count became 1.
    fn bucket_of(latency: Duration) -> &'static str {
        let slot = CheckSlot::new("s", "c");
        slot.record(&outcome(None, latency, None), 0);
        let s = lock(&slot.state);
        BUCKETS
            .iter()
            .zip(s.buckets)
            .find(|(_, n)| *n == 1)
            .map_or("+Inf", |((_, le), _)| le)
    }

    #[test]
    fn duration_buckets_are_upper_inclusive() {
        fn check(latency: Duration, expected_le: &str) {
            assert_eq!(bucket_of(latency), expected_le, "{latency:?}");
        }
        check(Duration::ZERO, "0.005");
        check(Duration::from_millis(5), "0.005");
        check(Duration::from_micros(5_001), "0.01");
        check(Duration::from_millis(250), "0.25");
        check(Duration::from_millis(1_000), "1");
        check(Duration::from_secs(10), "10");
        check(Duration::from_micros(10_000_001), "+Inf");
        check(Duration::from_secs(3_600), "+Inf");
    }

    fn failed(reason: Reason, detail: &str) -> Outcome {
        Outcome {
            reason: Some(reason),
            latency: Duration::from_millis(10),
            cert_not_after: None,
            detail: detail.to_string(),
        }
    }

    fn passed(detail: &str) -> Outcome {
        Outcome {
            detail: detail.to_string(),
            ..good(10)
        }
    }

    #[test]
    fn transitions_are_reported_once_per_change_not_per_run() {
        let slot = CheckSlot::new("s", "c");
        // (run, wall time, expected transition)
        let runs: Vec<(Outcome, i64, Option<Transition>)> = vec![
            (passed("status 200"), 100, None),
            (passed("status 200"), 110, None),
            (
                failed(Reason::Status, "status 503 not in [200]"),
                120,
                Some(Transition::Down),
            ),
            (failed(Reason::Timeout, "no verdict within 3s"), 130, None),
            // A local error is no verdict: neither up nor a new down.
            (failed(Reason::Local, "local error on this host"), 135, None),
            (
                passed("status 200"),
                140,
                Some(Transition::Up {
                    was: Reason::Timeout,
                    down_since: 120,
                }),
            ),
            (passed("status 200"), 150, None),
            (
                failed(Reason::Refused, "connection refused"),
                160,
                Some(Transition::Down),
            ),
        ];
        for (i, (outcome, at, expected)) in runs.into_iter().enumerate() {
            assert_eq!(slot.record(&outcome, at), expected, "run {i} at {at}");
        }
        assert_eq!(
            slot.last_run(),
            Some(LastRun {
                at: 160,
                reason: Some(Reason::Refused),
                detail: "connection refused".to_string(),
            })
        );
        assert_eq!(slot.local_errors(), 1);
    }

    #[test]
    fn a_check_whose_first_run_fails_is_reported_down() {
        let slot = CheckSlot::new("s", "c");
        assert_eq!(
            slot.record(&failed(Reason::Dns, "cannot resolve host x"), 5),
            Some(Transition::Down)
        );
    }

    #[test]
    fn a_local_error_leaves_the_last_run_and_up_alone() {
        let slot = CheckSlot::new("s", "c");
        assert_eq!(slot.record(&failed(Reason::Local, "local error"), 5), None);
        assert_eq!(slot.last_up(), None);
        assert_eq!(slot.last_run(), None);
        slot.record(&passed("status 200"), 10);
        slot.record(&failed(Reason::Local, "local error"), 20);
        assert_eq!(slot.last_up(), Some(true));
        assert_eq!(
            slot.last_run(),
            Some(LastRun {
                at: 10,
                reason: None,
                detail: "status 200".to_string()
            })
        );
        let snap = slot.snapshot(20, &mut None);
        assert_eq!(
            (snap.good, snap.bad, snap.count, snap.local_errors),
            (1, 0, 1, 2)
        );
        assert_eq!(snap.failures, [0; REASONS]);
    }

    #[test]
    fn details_are_cut_at_the_api_length() {
        fn check(detail: &str, expected: &str) {
            assert_eq!(short_detail(detail), expected, "{detail:?}");
        }
        let exact = "é".repeat(DETAIL_MAX_CHARS);
        check(&exact, &exact);
        check(&format!("{exact}x"), &format!("{exact}…"));
        check("", "");
        let slot = CheckSlot::new("s", "c");
        slot.record(&passed(&"a".repeat(1000)), 1);
        let detail = slot.last_run().unwrap().detail;
        assert_eq!(detail.chars().count(), DETAIL_MAX_CHARS + 1);
        assert!(detail.ends_with('…'));
    }

    #[tokio::test(start_paused = true)]
    async fn local_errors_are_logged_once_then_once_a_minute_with_the_count() {
        let slot = CheckSlot::new("s", "c");
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        // (seconds after the first error, expected)
        let table = [
            (0, Some(0)),
            (1, None),
            (30, None),
            (59, None),
            (60, Some(3)),
            (61, None),
            (200, Some(1)),
            (260, Some(0)),
        ];
        for (secs, expected) in table {
            assert_eq!(slot.local_error_log_due(at(secs)), expected, "t+{secs}s");
        }
    }

    #[test]
    fn reason_index_follows_reason_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(reason_index(*r), i, "{r:?}");
        }
    }

    #[test]
    fn golden_scrape_of_one_check() {
        let m = CheckMetrics::new();
        m.sync(&[("api", "login")]);
        let slot = m.slot("api", "login").unwrap();
        // Latencies exact in binary, so the _sum is exact.
        slot.record(&outcome(None, Duration::from_nanos(3_906_250), None), 600);
        slot.record(
            &outcome(Some(Reason::Timeout), Duration::from_secs(2), None),
            610,
        );
        slot.record(
            &outcome(
                Some(Reason::Status),
                Duration::from_millis(125),
                Some(1_800_000_000),
            ),
            620,
        );
        slot.record_skipped();
        // A local error: counted on its own, in nothing else.
        slot.record(
            &outcome(Some(Reason::Local), Duration::from_secs(7), None),
            630,
        );
        let l = r#"service="api",check="login""#;
        let expected = format!(
            r#"# HELP sentinel_check_up 1 if the last run of the check was good, 0 if it was bad.
# TYPE sentinel_check_up gauge
sentinel_check_up{{{l}}} 0
# HELP sentinel_check_runs_total Finished runs of the check by result.
# TYPE sentinel_check_runs_total counter
sentinel_check_runs_total{{{l},result="good"}} 1
sentinel_check_runs_total{{{l},result="bad"}} 2
# HELP sentinel_check_failures_total Bad runs of the check by reason; reasons that never occurred are omitted.
# TYPE sentinel_check_failures_total counter
sentinel_check_failures_total{{{l},reason="timeout"}} 1
sentinel_check_failures_total{{{l},reason="status"}} 1
# HELP sentinel_check_skipped_total Runs not started because the previous run of the check was still going.
# TYPE sentinel_check_skipped_total counter
sentinel_check_skipped_total{{{l}}} 1
# HELP sentinel_check_local_errors_total Runs that could not probe the target because of an error of this host (out of descriptors, memory, socket buffers or local ports); not counted as runs.
# TYPE sentinel_check_local_errors_total counter
sentinel_check_local_errors_total{{{l}}} 1
# HELP sentinel_check_duration_seconds Duration of finished runs of the check.
# TYPE sentinel_check_duration_seconds histogram
sentinel_check_duration_seconds_bucket{{{l},le="0.005"}} 1
sentinel_check_duration_seconds_bucket{{{l},le="0.01"}} 1
sentinel_check_duration_seconds_bucket{{{l},le="0.025"}} 1
sentinel_check_duration_seconds_bucket{{{l},le="0.05"}} 1
sentinel_check_duration_seconds_bucket{{{l},le="0.1"}} 1
sentinel_check_duration_seconds_bucket{{{l},le="0.25"}} 2
sentinel_check_duration_seconds_bucket{{{l},le="0.5"}} 2
sentinel_check_duration_seconds_bucket{{{l},le="1"}} 2
sentinel_check_duration_seconds_bucket{{{l},le="2.5"}} 3
sentinel_check_duration_seconds_bucket{{{l},le="5"}} 3
sentinel_check_duration_seconds_bucket{{{l},le="10"}} 3
sentinel_check_duration_seconds_bucket{{{l},le="+Inf"}} 3
sentinel_check_duration_seconds_sum{{{l}}} 2.12890625
sentinel_check_duration_seconds_count{{{l}}} 3
# HELP sentinel_check_latency_seconds Run duration quantiles over the last 5 minutes (HdrHistogram, within 3.2%).
# TYPE sentinel_check_latency_seconds summary
sentinel_check_latency_seconds{{{l},quantile="0.5"}} 0.124928
sentinel_check_latency_seconds{{{l},quantile="0.9"}} 1.998848
sentinel_check_latency_seconds{{{l},quantile="0.99"}} 1.998848
sentinel_check_latency_seconds{{{l},quantile="0.999"}} 1.998848
# HELP sentinel_check_tls_cert_expiry_timestamp_seconds notAfter of the last certificate the check saw, in unix seconds.
# TYPE sentinel_check_tls_cert_expiry_timestamp_seconds gauge
sentinel_check_tls_cert_expiry_timestamp_seconds{{{l}}} 1800000000
"#
        );
        assert_eq!(rendered(&m, 620), expected);
    }

    #[test]
    fn a_new_check_renders_zero_counters_and_no_up_or_latency() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let text = rendered(&m, 0);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let l = r#"service="s",check="c""#;
        let mut expected = vec![
            format!(r#"sentinel_check_runs_total{{{l},result="good"}} 0"#),
            format!(r#"sentinel_check_runs_total{{{l},result="bad"}} 0"#),
            format!("sentinel_check_skipped_total{{{l}}} 0"),
            format!("sentinel_check_local_errors_total{{{l}}} 0"),
        ];
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
        ] {
            expected.push(format!(
                r#"sentinel_check_duration_seconds_bucket{{{l},le="{le}"}} 0"#
            ));
        }
        expected.push(format!("sentinel_check_duration_seconds_sum{{{l}}} 0"));
        expected.push(format!("sentinel_check_duration_seconds_count{{{l}}} 0"));
        assert_eq!(samples, expected);
    }

    #[test]
    fn check_histograms_off_keeps_only_inf_sum_and_count_and_on_again_shows_all() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        slot.record(&good(3), 60);
        slot.record(&good(300), 61);
        let duration = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("sentinel_check_duration_seconds"))
                .map(str::to_string)
                .collect()
        };
        let l = r#"service="s",check="c""#;
        m.set_histograms(false);
        assert_eq!(
            duration(&rendered(&m, 62)),
            [
                format!(r#"sentinel_check_duration_seconds_bucket{{{l},le="+Inf"}} 2"#),
                format!("sentinel_check_duration_seconds_sum{{{l}}} 0.303"),
                format!("sentinel_check_duration_seconds_count{{{l}}} 2"),
            ]
        );
        // Counting went on while the buckets were hidden.
        m.set_histograms(true);
        let all = duration(&rendered(&m, 62));
        assert_eq!(all.len(), 14);
        assert_eq!(
            all[0],
            format!(r#"sentinel_check_duration_seconds_bucket{{{l},le="0.005"}} 1"#)
        );
        assert_eq!(
            all[6],
            format!(r#"sentinel_check_duration_seconds_bucket{{{l},le="0.5"}} 2"#)
        );
    }

    #[test]
    fn window_drops_minutes_older_than_five() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        // Minute 10 (t = 600..659).
        slot.record(&good(10), 659);
        // Minute 14 is the last one whose window still holds minute 10.
        assert_eq!(latency_lines(&rendered(&m, 899)).len(), 4);
        assert_eq!(latency_lines(&rendered(&m, 900)), Vec::<&str>::new());

        // Minute 15 reuses minute 10's ring position: the old data must not
        // leak into it.
        slot.record(&good(20), 900);
        let text = rendered(&m, 900);
        let p50 = latency_lines(&text)[0];
        // 20 ms: bucket [19456, 20480) µs, midpoint 19968.
        assert_eq!(
            p50,
            r#"sentinel_check_latency_seconds{service="s",check="c",quantile="0.5"} 0.019968"#
        );
        let q = slot.snapshot(900, &mut new_hdr()).quantiles.unwrap();
        assert_eq!(q, [0.019968; 4]);
        // A render far in the future sees an empty window even though the
        // ring still holds the (stale) histogram.
        assert!(slot.snapshot(10_000, &mut new_hdr()).quantiles.is_none());
    }

    #[test]
    fn window_merges_the_last_five_minutes() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        // One run per minute, minutes 10..=16, latency = minute number in ms.
        for minute in 10..=16_i64 {
            slot.record(&good(minute as u64), minute * 60 + 30);
        }
        // At minute 16 the window is minutes 12..=16 → 12,13,14,15,16 ms.
        let q = slot
            .snapshot(16 * 60 + 59, &mut new_hdr())
            .quantiles
            .unwrap();
        // p50 is the 3rd of 5 = 14 ms: bucket [13824, 14336), midpoint 14080;
        // p90.. = 16 ms: bucket [15872, 16384), midpoint 16128.
        assert_eq!(q, [0.01408, 0.016128, 0.016128, 0.016128]);
    }

    #[test]
    fn a_run_stamped_before_its_ring_minute_does_not_clobber_newer_data() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        slot.record(&good(20), 900); // minute 15, ring position 0
        slot.record(&good(500), 600); // minute 10, same position: clock went back
        let q = slot.snapshot(900, &mut new_hdr()).quantiles.unwrap();
        assert_eq!(q, [0.019968; 4]);
        // Counters still count it.
        assert!(
            rendered(&m, 900)
                .contains("sentinel_check_duration_seconds_count{service=\"s\",check=\"c\"} 2\n")
        );
    }

    proptest::proptest! {
        /// The ring answers exactly what one HDR of the in-window runs would:
        /// roll-over and staleness never keep old runs nor lose new ones.
        #[test]
        fn window_equals_a_histogram_of_the_last_five_minutes(
            runs in proptest::collection::vec((0_i64..1_200, 1_u64..5_000_000), 1..200),
            render_after in 0_i64..400,
        ) {
            let mut runs = runs;
            // Runs are recorded in time order, as the scheduler does, and a
            // scrape never looks at the past.
            runs.sort_by_key(|(t, _)| *t);
            let render_at = runs.last().map_or(0, |(t, _)| *t) + render_after;
            let m = CheckMetrics::new();
            m.sync(&[("s", "c")]);
            let slot = m.slot("s", "c").unwrap();
            let mut reference = new_hdr().unwrap();
            let now_minute = render_at.div_euclid(60);
            for (t, us) in &runs {
                slot.record(&outcome(None, Duration::from_micros(*us), None), *t);
                if in_window(t.div_euclid(60), now_minute) {
                    reference.record(*us).unwrap();
                }
            }
            let got = slot.snapshot(render_at, &mut new_hdr()).quantiles;
            let expected = (!reference.is_empty()).then(|| {
                let mut q = [0.0; QUANTILES.len()];
                for (i, (quantile, _)) in QUANTILES.iter().enumerate() {
                    let v = reference.value_at_quantile(*quantile);
                    q[i] = reference.median_equivalent(v) as f64 / 1e6;
                }
                q
            });
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn quantiles_of_known_latencies_are_within_hdr_precision() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        for ms in 1..=1000 {
            slot.record(&good(ms), 60);
        }
        let q = slot.snapshot(60, &mut new_hdr()).quantiles.unwrap();
        assert_eq!(q, [0.499712, 0.90112, 0.999424, 0.999424]);
        for (got, exact) in q.iter().zip([0.5, 0.9, 0.99, 0.999]) {
            let err = (got - exact).abs() / exact;
            assert!(err <= 1.0 / 32.0, "{got} vs {exact}: {err}");
        }
    }

    #[test]
    fn sync_keeps_counters_of_unchanged_checks() {
        let m = CheckMetrics::new();
        let stats = m.sync(&[("a", "x"), ("a", "y")]);
        assert_eq!(
            stats,
            SyncStats {
                kept: 0,
                added: 2,
                removed: 0
            }
        );
        let x = m.slot("a", "x").unwrap();
        x.record(&good(5), 60);
        x.record_skipped();

        let stats = m.sync(&[
            ("a".to_owned(), "x".to_owned()),
            ("b".to_owned(), "z".to_owned()),
        ]);
        assert_eq!(
            stats,
            SyncStats {
                kept: 1,
                added: 1,
                removed: 1
            }
        );
        assert!(Arc::ptr_eq(&x, &m.slot("a", "x").unwrap()));
        assert!(m.slot("a", "y").is_none());
        assert_eq!(m.len(), 2);
        let text = rendered(&m, 60);
        assert!(
            text.contains(
                "sentinel_check_runs_total{service=\"a\",check=\"x\",result=\"good\"} 1\n"
            )
        );
        assert!(text.contains("sentinel_check_skipped_total{service=\"a\",check=\"x\"} 1\n"));
        assert!(text.contains("sentinel_check_skipped_total{service=\"b\",check=\"z\"} 0\n"));
        assert!(!text.contains("check=\"y\""));
    }

    #[test]
    fn concurrent_records_during_renders_and_reloads_are_all_counted() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let slot = Arc::clone(&slot);
                scope.spawn(move || {
                    for i in 0..1_000 {
                        slot.record(&good(1 + i % 50), 60);
                    }
                });
            }
            scope.spawn(|| {
                for i in 0..50 {
                    let _ = rendered(&m, 60);
                    // A reload that keeps the check must not lose its slot.
                    m.sync(&[("s", "c"), ("s", if i % 2 == 0 { "d" } else { "e" })]);
                    assert!(m.slot("s", "c").is_some());
                }
            });
        });
        let text = rendered(&m, 60);
        assert!(text.contains(
            "sentinel_check_runs_total{service=\"s\",check=\"c\",result=\"good\"} 4000\n"
        ));
        assert!(
            text.contains(
                "sentinel_check_duration_seconds_count{service=\"s\",check=\"c\"} 4000\n"
            )
        );
    }

    #[test]
    fn render_is_sorted_by_service_then_check() {
        let m = CheckMetrics::new();
        m.sync(&[("b", "x"), ("a", "z"), ("a", "b")]);
        let text = rendered(&m, 0);
        let order: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("sentinel_check_skipped_total{"))
            .collect();
        assert_eq!(
            order,
            [
                r#"sentinel_check_skipped_total{service="a",check="b"} 0"#,
                r#"sentinel_check_skipped_total{service="a",check="z"} 0"#,
                r#"sentinel_check_skipped_total{service="b",check="x"} 0"#,
            ]
        );
    }

    #[test]
    fn a_check_with_a_full_window_fits_the_memory_budget() {
        let m = CheckMetrics::new();
        m.sync(&[("s", "c")]);
        let slot = m.slot("s", "c").unwrap();
        for minute in 0..5_i64 {
            slot.record(&good(100), minute * 60);
        }
        let bytes = slot.approx_bytes();
        println!("bytes per check slot: {bytes}");
        // 5 × (368 u16 counters + the Histogram struct) + the slot itself.
        assert_eq!(new_hdr().unwrap().distinct_values(), 368);
        assert!(bytes <= 8 * 1024, "{bytes} bytes");
    }
}
