//! SLO math: availability and latency SLIs, error budgets, burn rates and
//! multiwindow multi-burn-rate alert decisions, from exact run counts.
//!
//! PURE: no IO, never reads the clock; `now` is always an argument.
//!
//! # Buckets and which of them a window includes
//!
//! A [`ServiceSlo`] pools every check of one service into two rings of counts
//! (valid, good, latency-good runs):
//! - a **minute** ring covering 6 h (360 buckets), which answers windows ≤ 6 h
//!   (`5m`, `30m`, `1h`, `2h`, `6h`, and rolling SLO windows ≤ 6 h);
//! - an **hour** ring covering `max(SLO window, 3d)` (31 days for `month`), which
//!   answers longer windows (`1d`, `3d`, the SLO window).
//!
//! Bucket `i` at resolution `r` (60 s or 3600 s) holds the runs with
//! `floor(at / r) = i`. A rolling window `w` evaluated at `now` includes the
//! bucket containing `now` and the `k − 1` buckets before it, where
//! `k = ceil(w / r)` (at least 1). So `5m` at 12:04:30 covers 12:00:00–12:04:59,
//! and `1d` at 12:30 covers 13:00 yesterday up to 12:59 today: a window spans
//! `(k − 1) × r` plus the part of the current bucket up to `now` — between
//! `w − r` and `w` when `w` is a whole number of buckets, as every burn window
//! is — and a bucket is either fully in or fully out. The **`month`** window includes the hour buckets from the start of
//! the current calendar month (UTC) up to the bucket containing `now`.
//!
//! Rings only move forward: a run newer than anything held advances the ring
//! and zeroes the buckets it passes; a run older than the ring reaches is
//! ignored; an out-of-order run still inside the ring counts. `now` is expected
//! to be at or after the newest run recorded (the daemon's clock); a window
//! longer than its ring (e.g. asking for `30d` of a `7d` SLO) only sees what the
//! ring holds.
//!
//! # What budgets and burn rates divide by
//!
//! A window's bad runs are divided by `max(valid, expected)`, where `expected`
//! is the number of valid runs the service's [`Schedule`] produces over the
//! **whole** window: each check contributes `span / interval`, time inside
//! the service's maintenance windows contributes nothing. The span is exactly
//! what the window's buckets cover: from the start of its first bucket up to
//! `now` for a rolling window (so `5m` at 12:04:30 spans 270 s), the whole
//! calendar month — the days still to come included — for `month`, whose
//! budget is the month's allowance.
//! - error budget remaining = `1 − (bad / max(valid, expected)) / (1 − objective)`,
//!   i.e. `1 − bad / allowance` with the allowance `(1 − objective) × expected`
//!   bad runs: fixed by the schedule, not by how much history happens to exist.
//!   Time before sentinel watched a check counts as neither good nor bad but
//!   still dilutes, so one bad run on a fresh install spends one allowance's
//!   worth, not the whole budget.
//! - burn rate over a window = `(bad / max(valid, expected)) / (1 − objective)`,
//!   so burn alerts on a fresh store behave as on a long healthy history.
//! - Once a window is fully observed, `valid ≈ expected` and both are the
//!   classic `bad / valid` formulas. `max` keeps extra runs (a schedule made
//!   slower by a reload, runs beyond the expectation) from inflating a budget:
//!   the denominator is never below the runs actually seen.
//! - coverage = `min(1, valid / expected)` (1 when nothing is expected): how
//!   much of the window is real data. The SLI itself stays `good / valid`.
//!
//! # Memory
//!
//! `u32` counts in parallel columns; the latency column exists only when the SLO
//! has a latency objective. A 30d availability-only SLO is (360 + 720) × 8 bytes
//! ≈ 8.4 KiB; with a latency SLO ≈ 12.7 KiB.
//!
//! # Burn-rate alert scaling
//!
//! The factors (14.4, 6, 3, 1) are the SRE Workbook's for a 30-day window;
//! they come from `budget_fraction × window / long_window` with (2%, 1h), (5%, 6h),
//! (10%, 1d), (10%, 3d). For other windows we apply the same formula with the
//! configured length. A `month` window counts as **30 days**: the thresholds then
//! stay the same all year (so do the generated Prometheus rules), and they equal
//! the Workbook's numbers. (Budget *seconds* do use the real month length.)

mod ring;
mod schedule;
mod window;

use std::time::Duration;

use jiff::Timestamp;

use crate::config::{Slo, SloWindow};
use ring::Ring;
pub use schedule::Schedule;
pub use window::{Window, window_seconds};
use window::{month_of, unix_floor};

/// The burn-rate windows, shortest first. Labels are metric label values.
pub const BURN_WINDOWS: [(&str, Duration); 7] = [
    ("5m", Duration::from_secs(5 * 60)),
    ("30m", Duration::from_secs(30 * 60)),
    ("1h", Duration::from_secs(3600)),
    ("2h", Duration::from_secs(2 * 3600)),
    ("6h", Duration::from_secs(6 * 3600)),
    ("1d", Duration::from_secs(86_400)),
    ("3d", Duration::from_secs(3 * 86_400)),
];

/// Windows up to this long are answered from minute buckets; longer ones from hour buckets.
pub const MINUTE_RING_SPAN: Duration = Duration::from_secs(6 * 3600);

/// The longest burn window (`3d`): the hour ring always reaches this far
/// back, and so does every load of hour buckets.
pub const LONGEST_BURN_WINDOW: Duration = Duration::from_secs(3 * 86_400);

/// Hour buckets needed for a calendar month: the longest month.
const MONTH_HOURS: usize = (Window::LONGEST_MONTH.as_secs() / 3600) as usize;

/// Thirty days: what a `month` window counts as when scaling alert thresholds.
const ALERT_MONTH: Duration = Duration::from_secs(30 * 86_400);

/// Run counts over some span. `bad = valid − good`; `latency_good ≤ good`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub valid: u64,
    pub good: u64,
    /// Good runs that were also under the latency threshold. Only tracked when
    /// the service has a latency SLO; reads 0 otherwise.
    pub latency_good: u64,
}

impl Counts {
    /// Runs that count against the availability SLO.
    pub fn bad(&self) -> u64 {
        self.valid.saturating_sub(self.good)
    }

    fn good_for(&self, kind: SloKind) -> u64 {
        match kind {
            SloKind::Availability => self.good,
            SloKind::Latency => self.latency_good,
        }
    }
}

/// The two bucket sizes; each is persisted separately by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Minute,
    Hour,
}

impl Resolution {
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }
}

/// Start (unix seconds) of the bucket at `res` that contains `at`.
pub fn bucket_start(res: Resolution, at: Timestamp) -> i64 {
    let r = res.seconds();
    unix_floor(at).div_euclid(r) * r
}

/// Number of `res_secs` buckets a rolling window spans: `ceil(d / res)`, at least 1.
fn buckets_for(d: Duration, res_secs: i64) -> i64 {
    let res_ms = u128::from(res_secs.unsigned_abs()) * 1000;
    let k = d.as_millis().div_ceil(res_ms).max(1);
    i64::try_from(k).unwrap_or(i64::MAX)
}

/// Which SLO a figure is about; `label()` is the `slo` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SloKind {
    Availability,
    Latency,
}

impl SloKind {
    pub fn label(self) -> &'static str {
        match self {
            SloKind::Availability => "availability",
            SloKind::Latency => "latency",
        }
    }
}

/// Bucket counts of the (minute, hour) rings for `slo`: 6 h of minutes; hours
/// for the SLO window but at least 3 days (the longest burn window), 31 days for `month`.
fn ring_lens(slo: &Slo) -> (usize, usize) {
    let minute_len = usize::try_from(buckets_for(MINUTE_RING_SPAN, 60)).unwrap_or(360);
    let hour_len = match slo.window {
        SloWindow::Month => MONTH_HOURS,
        SloWindow::Rolling(d) => {
            usize::try_from(buckets_for(d.max(LONGEST_BURN_WINDOW), 3600)).unwrap_or(MONTH_HOURS)
        }
    };
    (minute_len, hour_len)
}

/// Bucketed history of ONE service, all its checks pooled.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSlo {
    slo: Slo,
    /// What the service's checks promise: the runs a window should hold.
    schedule: Schedule,
    minutes: Ring,
    hours: Ring,
}

impl ServiceSlo {
    /// An empty history for `slo`, budgeted against `schedule` (the service's
    /// checks and maintenance windows: [`Schedule::of`]).
    pub fn new(slo: &Slo, schedule: Schedule) -> Self {
        let (minute_len, hour_len) = ring_lens(slo);
        let track_latency = slo.latency.is_some();
        ServiceSlo {
            slo: slo.clone(),
            schedule,
            minutes: Ring::new(60, minute_len, track_latency),
            hours: Ring::new(3600, hour_len, track_latency),
        }
    }

    /// Budget against a changed schedule (config reload: checks, intervals or
    /// maintenance changed). The history stays; expected runs follow the new
    /// schedule over the whole window, past included.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.schedule = schedule;
    }

    /// The schedule expected runs are computed from.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The same history under a changed SLO (config reload), when the buckets
    /// held are enough: `None` when the new SLO reaches further back than this
    /// history does, or adds a latency objective whose counts were not kept —
    /// then rebuild from the store with [`ServiceSlo::add_bucket`].
    pub fn reconfigured(&self, slo: &Slo) -> Option<ServiceSlo> {
        let (minute_len, hour_len) = ring_lens(slo);
        let track_latency = slo.latency.is_some();
        Some(ServiceSlo {
            slo: slo.clone(),
            schedule: self.schedule.clone(),
            minutes: self.minutes.carried(minute_len, track_latency)?,
            hours: self.hours.carried(hour_len, track_latency)?,
        })
    }

    /// The SLO this history was built for.
    pub fn slo(&self) -> &Slo {
        &self.slo
    }

    /// Heap bytes held by the buckets (for the memory budget and the benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.minutes.heap_bytes() + self.hours.heap_bytes()
    }

    /// One valid run (the caller has already dropped runs inside maintenance windows).
    /// `latency_good` is ignored unless `good` (a failed run is never fast enough).
    pub fn record(&mut self, at: Timestamp, good: bool, latency_good: bool) {
        let c = Counts {
            valid: 1,
            good: u64::from(good),
            latency_good: u64::from(good && latency_good),
        };
        let t = unix_floor(at);
        self.minutes.add(t.div_euclid(60), c);
        self.hours.add(t.div_euclid(3600), c);
    }

    /// Restore persisted counts at start. Each resolution is persisted separately
    /// from the same runs, so Minute rows only feed the minute ring and Hour rows
    /// only the hour ring — no double counting. A start that is not aligned is
    /// floored to its bucket.
    pub fn add_bucket(&mut self, res: Resolution, bucket_start_unix: i64, counts: Counts) {
        let ring = match res {
            Resolution::Minute => &mut self.minutes,
            Resolution::Hour => &mut self.hours,
        };
        let idx = bucket_start_unix.div_euclid(ring.res_secs());
        ring.add(idx, counts);
    }

    /// Exact counts over `window` at `now`, with the alignment of the module doc.
    pub fn counts(&self, now: Timestamp, window: Window) -> Counts {
        let (ring, from, to) = self.reach(now, window);
        ring.sum(from, to)
    }

    /// The ring answering `window` at `now` and the first and last bucket it includes.
    fn reach(&self, now: Timestamp, window: Window) -> (&Ring, i64, i64) {
        let t = unix_floor(now);
        match window {
            Window::Rolling(d) => {
                let ring = if d <= MINUTE_RING_SPAN {
                    &self.minutes
                } else {
                    &self.hours
                };
                let n = t.div_euclid(ring.res_secs());
                let k = buckets_for(d, ring.res_secs());
                (ring, n.saturating_sub(k - 1), n)
            }
            Window::Month => {
                let (start, _) = month_of(now);
                (&self.hours, start.div_euclid(3600), t.div_euclid(3600))
            }
        }
    }

    /// Valid runs the schedule produces over the whole of `window` at `now`
    /// (maintenance excluded): for a rolling window, from the start of its
    /// first bucket to `now` — exactly the time its buckets hold runs of; for
    /// `month`, the whole calendar month, the part still to come included.
    pub fn expected(&self, now: Timestamp, window: Window) -> f64 {
        let (ring, from, _) = self.reach(now, window);
        let start = from.saturating_mul(ring.res_secs());
        let Ok(start_ts) = Timestamp::from_second(start) else {
            return 0.0;
        };
        let end = match window {
            Window::Rolling(_) => now,
            Window::Month => {
                let (_, days) = month_of(now);
                match Timestamp::from_second(start.saturating_add(days * 86_400)) {
                    Ok(t) => t,
                    Err(_) => return 0.0,
                }
            }
        };
        self.schedule.expected(start_ts, end)
    }

    /// Counts and expected runs over `window` at `now`.
    fn observed(&self, now: Timestamp, window: Window) -> Observed {
        let counts = self.counts(now, window);
        let expected = self.expected(now, window);
        Observed { counts, expected }
    }

    /// Everything the `sentinel_slo_*` metrics need, at `now`.
    pub fn figures(&self, now: Timestamp) -> Figures {
        let window = Window::from(self.slo.window);
        let whole = self.observed(now, window);
        let burn_obs: [Observed; 7] =
            BURN_WINDOWS.map(|(_, d)| self.observed(now, Window::Rolling(d)));
        let window_secs = window_seconds(window, now);
        let availability = SloFigures::new(
            SloKind::Availability,
            self.slo.objective,
            whole,
            &burn_obs,
            window_secs,
        );
        let latency = self
            .slo
            .latency
            .map(|l| SloFigures::new(SloKind::Latency, l.objective, whole, &burn_obs, window_secs));
        Figures {
            window,
            window_label: self.slo.window.label(),
            window_seconds: window_secs,
            counts: whole.counts,
            expected: whole.expected,
            coverage: whole.coverage(),
            expected_runs_per_second: self.schedule.runs_per_second(),
            availability,
            latency,
        }
    }
}

/// Run counts over a window and the valid runs the schedule produces over it.
#[derive(Debug, Clone, Copy)]
struct Observed {
    counts: Counts,
    expected: f64,
}

impl Observed {
    fn coverage(&self) -> f64 {
        coverage(self.counts.valid, self.expected)
    }
}

/// How much of a window is real data: `min(1, valid / expected)`; 1 when the
/// schedule expects nothing (the whole window is maintenance).
pub fn coverage(valid: u64, expected: f64) -> f64 {
    if expected > 0.0 {
        (valid as f64 / expected).min(1.0)
    } else {
        1.0
    }
}

/// The denominator of budgets and burn rates: `max(valid, expected)`. Never
/// below the runs seen (extra runs do not inflate the budget), never below
/// what the schedule produces over the whole window (time without data
/// dilutes instead of magnifying the bad runs seen).
pub fn denominator(valid: u64, expected: f64) -> f64 {
    (valid as f64).max(expected)
}

/// The figures of one service at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub window: Window,
    /// `config::SloWindow::label()`: `30d`, `month`, ...
    pub window_label: String,
    /// Length of the SLO window in seconds (the current month's for `month`).
    pub window_seconds: f64,
    /// Counts over the SLO window.
    pub counts: Counts,
    /// Valid runs the schedule produces over the whole SLO window, maintenance
    /// excluded (see [`ServiceSlo::expected`]).
    pub expected: f64,
    /// [`coverage`] of the SLO window: `min(1, valid / expected)`.
    pub coverage: f64,
    /// Runs per second of all the service's checks ([`Schedule::runs_per_second`]).
    pub expected_runs_per_second: f64,
    pub availability: SloFigures,
    /// Present when the SLO has a latency objective.
    pub latency: Option<SloFigures>,
}

impl Figures {
    /// The SLOs present: availability, then latency when configured.
    pub fn slos(&self) -> impl Iterator<Item = &SloFigures> {
        std::iter::once(&self.availability).chain(self.latency.as_ref())
    }

    /// Rows of `sentinel_slo_sli_ratio{slo, window}` and
    /// `sentinel_slo_window_coverage_ratio{slo, window}`: each SLO over the
    /// seven burn windows, then over the SLO window — unless its label is
    /// already one of the burn windows (`window: 1d`), which would be a
    /// duplicate series (and is the same number).
    pub fn sli_rows(&self) -> Vec<SliRow> {
        let mut rows = Vec::with_capacity(16);
        for s in self.slos() {
            for b in &s.burn {
                rows.push(SliRow {
                    kind: s.kind,
                    window: b.window.to_string(),
                    sli: b.sli,
                    coverage: b.coverage,
                });
            }
            if !BURN_WINDOWS.iter().any(|(l, _)| *l == self.window_label) {
                rows.push(SliRow {
                    kind: s.kind,
                    window: self.window_label.clone(),
                    sli: s.sli,
                    coverage: self.coverage,
                });
            }
        }
        rows
    }
}

/// One SLO over one window, as exported per `window` label.
#[derive(Debug, Clone, PartialEq)]
pub struct SliRow {
    pub kind: SloKind,
    pub window: String,
    /// good / valid; `None` with no valid runs in the window.
    pub sli: Option<f64>,
    /// [`coverage`] of the window.
    pub coverage: f64,
}

/// The figures of one SLO (availability or latency) of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct SloFigures {
    pub kind: SloKind,
    /// Ratio in (0, 1).
    pub objective: f64,
    /// good / valid over the SLO window (`latency_good` for latency); `None` with no valid runs.
    pub sli: Option<f64>,
    /// `1 − (bad / max(valid, expected)) / (1 − objective)`: the share of the
    /// window's allowance of bad runs still unspent; 1.0 with nothing valid
    /// and nothing expected; negative when overspent.
    pub error_budget_remaining_ratio: f64,
    /// `remaining ratio × (1 − objective) × window length`: downtime still allowed.
    pub error_budget_remaining_seconds: f64,
    /// One entry per [`BURN_WINDOWS`], same order.
    pub burn: [BurnFigures; 7],
}

/// SLI and burn rate over one burn window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnFigures {
    /// `5m`, `30m`, ... (the `window` metric label).
    pub window: &'static str,
    pub counts: Counts,
    /// Valid runs the schedule produces over the window (maintenance excluded).
    pub expected: f64,
    /// [`coverage`] of the window.
    pub coverage: f64,
    pub sli: Option<f64>,
    /// `(bad / max(valid, expected)) / (1 − objective)`.
    pub burn_rate: f64,
}

fn sli_of(kind: SloKind, c: Counts) -> Option<f64> {
    (c.valid > 0).then(|| c.good_for(kind) as f64 / c.valid as f64)
}

fn burn_rate_of(kind: SloKind, c: Counts, expected: f64, objective: f64) -> f64 {
    let denominator = denominator(c.valid, expected);
    if denominator <= 0.0 {
        return 0.0;
    }
    let bad = c.valid.saturating_sub(c.good_for(kind));
    (bad as f64 / denominator) / (1.0 - objective)
}

impl SloFigures {
    fn new(
        kind: SloKind,
        objective: f64,
        whole: Observed,
        burn_obs: &[Observed; 7],
        window_secs: f64,
    ) -> Self {
        let remaining = 1.0 - burn_rate_of(kind, whole.counts, whole.expected, objective);
        let mut i = 0;
        let burn = burn_obs.map(|o| {
            let label = BURN_WINDOWS[i].0;
            i += 1;
            BurnFigures {
                window: label,
                counts: o.counts,
                expected: o.expected,
                coverage: o.coverage(),
                sli: sli_of(kind, o.counts),
                burn_rate: burn_rate_of(kind, o.counts, o.expected, objective),
            }
        });
        SloFigures {
            kind,
            objective,
            sli: sli_of(kind, whole.counts),
            error_budget_remaining_ratio: remaining,
            error_budget_remaining_seconds: remaining * (1.0 - objective) * window_secs,
            burn,
        }
    }

    /// Burn rate over the burn window labelled `label` (`5m` … `3d`).
    pub fn burn_rate(&self, label: &str) -> Option<f64> {
        self.burn
            .iter()
            .find(|b| b.window == label)
            .map(|b| b.burn_rate)
    }
}

/// `(bad / max(valid, expected)) / (1 − objective)` of the availability SLO;
/// 0 with nothing valid and nothing expected.
pub fn burn_rate(c: Counts, expected: f64, objective: f64) -> f64 {
    burn_rate_of(SloKind::Availability, c, expected, objective)
}

/// Whether a multiwindow burn-rate alert fires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertState {
    pub page: bool,
    pub ticket: bool,
}

/// `page` or `ticket`, as in the alert's `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertSeverity {
    Page,
    Ticket,
}

impl AlertSeverity {
    pub fn label(self) -> &'static str {
        match self {
            AlertSeverity::Page => "page",
            AlertSeverity::Ticket => "ticket",
        }
    }
}

/// One multiwindow condition: fires when the burn rate over both `long` and
/// `short` exceeds `factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlertRule {
    pub severity: AlertSeverity,
    /// Label from [`BURN_WINDOWS`].
    pub long: &'static str,
    pub short: &'static str,
    /// Percent of the whole budget that burning for `long` at this rate spends.
    pub budget_percent: u32,
    /// Burn-rate threshold: `budget_percent/100 × window / long`.
    pub factor: f64,
}

/// The four multiwindow conditions (page: 1h/5m, 6h/30m; ticket: 1d/2h, 3d/6h), with factors scaled for `window` (`month` = 30d).
pub fn burn_alert_rules(window: Window) -> [BurnAlertRule; 4] {
    let w = match window {
        Window::Rolling(d) => d,
        Window::Month => ALERT_MONTH,
    };
    let rule = |severity, budget_percent: u32, long: (&'static str, u64), short| {
        // Divide last, once: 2 × 2_592_000 / 360_000 is exactly the double nearest 14.4.
        let factor = (f64::from(budget_percent) * w.as_secs_f64()) / (100.0 * (long.1 as f64));
        BurnAlertRule {
            severity,
            long: long.0,
            short,
            budget_percent,
            factor,
        }
    };
    [
        rule(AlertSeverity::Page, 2, ("1h", 3600), "5m"),
        rule(AlertSeverity::Page, 5, ("6h", 6 * 3600), "30m"),
        rule(AlertSeverity::Ticket, 10, ("1d", 86_400), "2h"),
        rule(AlertSeverity::Ticket, 10, ("3d", 3 * 86_400), "6h"),
    ]
}

/// Multiwindow multi-burn-rate alerts over one SLO's figures.
pub fn slo_burn_alerts(s: &SloFigures, window: Window) -> AlertState {
    let mut state = AlertState::default();
    for r in burn_alert_rules(window) {
        let over = |label| s.burn_rate(label).is_some_and(|b| b > r.factor);
        if over(r.long) && over(r.short) {
            match r.severity {
                AlertSeverity::Page => state.page = true,
                AlertSeverity::Ticket => state.ticket = true,
            }
        }
    }
    state
}

/// Burn-rate alerts on the availability SLO (what `sentinel rules` generates too).
pub fn burn_alerts(f: &Figures) -> AlertState {
    slo_burn_alerts(&f.availability, f.window)
}

#[cfg(test)]
mod tests;
