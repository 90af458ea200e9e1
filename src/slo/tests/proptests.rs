//! Every figure against a brute-force reference over lists of runs.

use super::*;
use jiff::tz::TimeZone;

// The brute-force reference.

#[derive(Debug, Clone, Copy)]
struct Run {
    at: i64,
    good: bool,
    latency_good: bool,
}

/// Keeps every run and filters by the alignment in the module doc.
fn reference_counts(runs: &[Run], now: i64, window: Window) -> Counts {
    let keep = |at: i64| match window {
        Window::Rolling(d) => {
            let res = if d <= MINUTE_RING_SPAN { 60 } else { 3600 };
            let k = (d.as_secs() as i64 + res - 1) / res;
            let k = k.max(1);
            let n = now.div_euclid(res);
            let b = at.div_euclid(res);
            b > n - k && b <= n
        }
        Window::Month => {
            let (start, _) = month_of(Timestamp::from_second(now).unwrap());
            at.div_euclid(3600) >= start.div_euclid(3600)
                && at.div_euclid(3600) <= now.div_euclid(3600)
        }
    };
    let mut c = Counts::default();
    for r in runs.iter().filter(|r| keep(r.at)) {
        c.valid += 1;
        c.good += u64::from(r.good);
        c.latency_good += u64::from(r.good && r.latency_good);
    }
    c
}

/// A schedule kept as plain lists (intervals in seconds, maintenance as
/// unmerged, possibly overlapping `[start, end)` unix seconds): the reference
/// recomputes everything from these.
#[derive(Debug, Clone)]
struct RefSchedule {
    intervals: Vec<u64>,
    maintenance: Vec<(i64, i64)>,
}

impl RefSchedule {
    fn schedule(&self) -> Schedule {
        Schedule::new(
            self.intervals.iter().map(|&i| Duration::from_secs(i)),
            self.maintenance.iter().map(|&(a, b)| {
                (
                    Timestamp::from_second(a).unwrap(),
                    Timestamp::from_second(b).unwrap(),
                )
            }),
        )
    }

    /// Seconds of `[from, to)` inside no maintenance window: cut the span at
    /// every boundary and keep the pieces no window contains.
    fn valid_secs(&self, from: i64, to: i64) -> i64 {
        let mut cuts = vec![from, to];
        for &(a, b) in &self.maintenance {
            cuts.push(a.clamp(from, to));
            cuts.push(b.clamp(from, to));
        }
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2)
            .filter(|p| !self.maintenance.iter().any(|&(a, b)| a <= p[0] && p[0] < b))
            .map(|p| p[1] - p[0])
            .sum()
    }

    /// Runs the schedule produces over the whole of `window` at `now`.
    fn expected(&self, now: i64, window: Window) -> f64 {
        let (from, to) = reference_span(now, window);
        let secs = self.valid_secs(from, to.max(from));
        self.intervals.iter().map(|&i| secs as f64 / i as f64).sum()
    }
}

/// The span a window budgets over, per the module doc: from its first bucket's
/// start to `now` when rolling; the whole calendar month (via civil dates) for `month`.
fn reference_span(now: i64, window: Window) -> (i64, i64) {
    match window {
        Window::Rolling(d) => {
            let res = if d <= MINUTE_RING_SPAN { 60 } else { 3600 };
            let k = ((d.as_secs() as i64 + res - 1) / res).max(1);
            ((now.div_euclid(res) - k + 1) * res, now)
        }
        Window::Month => {
            let date = TimeZone::UTC
                .to_datetime(Timestamp::from_second(now).unwrap())
                .date();
            let unix =
                |d: jiff::civil::Date| d.to_zoned(TimeZone::UTC).unwrap().timestamp().as_second();
            let first = date.first_of_month();
            (
                unix(first),
                unix(first.checked_add(jiff::Span::new().months(1)).unwrap()),
            )
        }
    }
}

/// `(bad / max(valid, expected)) / (1 − objective)`, 0 over nothing.
fn reference_burn(bad: u64, valid: u64, expected: f64, objective: f64) -> f64 {
    let d = (valid as f64).max(expected);
    if d > 0.0 {
        (bad as f64 / d) / (1.0 - objective)
    } else {
        0.0
    }
}

fn reference_coverage(valid: u64, expected: f64) -> f64 {
    if expected > 0.0 {
        (valid as f64 / expected).min(1.0)
    } else {
        1.0
    }
}

/// Equal up to float rounding: the reference sums per check, in another order.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn schedules() -> impl Strategy<Value = RefSchedule> {
    // From a run a second to one a week, so that both the runs seen and the
    // runs expected end up as the denominator; maintenance may overlap.
    let interval = prop_oneof![
        Just(1u64),
        Just(15),
        Just(60),
        Just(3600),
        Just(86_400),
        Just(7 * 86_400)
    ];
    let maintenance = (-5 * 86_400i64..45 * 86_400, 1i64..3 * 86_400)
        .prop_map(|(start, len)| (BASE + start, BASE + start + len));
    (
        prop::collection::vec(interval, 1..4),
        prop::collection::vec(maintenance, 0..4),
    )
        .prop_map(|(intervals, maintenance)| RefSchedule {
            intervals,
            maintenance,
        })
}

fn windows() -> impl Strategy<Value = SloWindow> {
    prop_oneof![
        Just(D30),
        Just(SloWindow::Month),
        Just(SloWindow::Rolling(Duration::from_secs(7 * 86_400))),
        Just(SloWindow::Rolling(Duration::from_secs(2 * 3600))),
        Just(SloWindow::Rolling(Duration::from_secs(90 * 60 + 30))),
        Just(SloWindow::Rolling(Duration::from_secs(36 * 3600 + 1))),
    ]
}

/// 2026-01-20T00:00:00Z: offsets of up to 40 days cross the Feb and Mar month starts.
const BASE: i64 = 1_768_867_200;

fn runs_strategy() -> impl Strategy<Value = Vec<Run>> {
    // Mix of spread-out runs (days) and dense ones (the last few hours), in random order.
    let spread = (0i64..40 * 86_400, any::<bool>(), any::<bool>());
    let dense = (39 * 86_400i64..40 * 86_400, any::<bool>(), any::<bool>());
    prop::collection::vec(prop_oneof![spread, dense], 0..300).prop_map(|v| {
        v.into_iter()
            .map(|(o, good, latency_good)| Run {
                at: BASE + o,
                good,
                latency_good,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn figures_equal_brute_force(
        runs in runs_strategy(),
        window in windows(),
        latency in prop::option::of(prop_oneof![Just(0.99), Just(0.5)]),
        objective in prop_oneof![Just(0.999), Just(0.99), Just(0.9)],
        after in 0i64..3 * 86_400,
        sched in schedules(),
    ) {
        let cfg = slo(objective, window, latency);
        let mut s = ServiceSlo::new(&cfg, sched.schedule());
        for r in &runs {
            s.record(Timestamp::from_second(r.at).unwrap(), r.good, r.latency_good);
        }
        let last = runs.iter().map(|r| r.at).max().unwrap_or(BASE);
        let now_s = last + after;
        let now = Timestamp::from_second(now_s).unwrap();
        let f = s.figures(now);

        let mut want = reference_counts(&runs, now_s, Window::from(window));
        if latency.is_none() {
            want.latency_good = 0;
        }
        prop_assert_eq!(f.counts, want);
        let (from, to) = reference_span(now_s, Window::from(window));
        let expected = sched.expected(now_s, Window::from(window));
        prop_assert!(close(f.expected, expected), "{} vs {}", f.expected, expected);
        prop_assert!(close(f.coverage, reference_coverage(want.valid, expected)));
        prop_assert!(close(
            f.expected_runs_per_second,
            sched.intervals.iter().map(|&i| 1.0 / i as f64).sum::<f64>()
        ));
        let a = &f.availability;
        let remaining = 1.0 - reference_burn(want.valid - want.good, want.valid, expected, objective);
        prop_assert!(close(a.error_budget_remaining_ratio, remaining), "{} vs {}", a.error_budget_remaining_ratio, remaining);
        prop_assert!(close(
            a.error_budget_remaining_seconds,
            remaining * (1.0 - objective) * f.window_seconds
        ));
        match window {
            // A rolling window budgets over its buckets, at most one bucket
            // away from its nominal length...
            SloWindow::Rolling(d) => {
                prop_assert_eq!(f.window_seconds, d.as_secs_f64());
                prop_assert!(((to - from) as f64 - f.window_seconds).abs() <= 3600.0);
            }
            // ... a month over exactly its real length.
            SloWindow::Month => prop_assert_eq!(f.window_seconds, (to - from) as f64),
        }
        prop_assert_eq!(a.sli, (want.valid > 0).then(|| want.good as f64 / want.valid as f64));
        let mut burn_expected = [0.0; 7];
        for (i, (b, (label, d))) in a.burn.iter().zip(BURN_WINDOWS).enumerate() {
            let mut wc = reference_counts(&runs, now_s, Window::Rolling(d));
            if latency.is_none() {
                wc.latency_good = 0;
            }
            let e = sched.expected(now_s, Window::Rolling(d));
            burn_expected[i] = e;
            prop_assert_eq!(b.window, label);
            prop_assert_eq!(b.counts, wc, "{}", label);
            prop_assert!(close(b.expected, e), "{}: {} vs {}", label, b.expected, e);
            prop_assert!(close(b.coverage, reference_coverage(wc.valid, e)), "{}", label);
            prop_assert_eq!(b.sli, (wc.valid > 0).then(|| wc.good as f64 / wc.valid as f64));
            prop_assert!(close(b.burn_rate, reference_burn(wc.valid - wc.good, wc.valid, e, objective)), "{}", label);
        }
        for row in f.sli_rows() {
            let i = BURN_WINDOWS.iter().position(|(l, _)| *l == row.window);
            let (valid, e) = match i {
                Some(i) => (a.burn[i].counts.valid, burn_expected[i]),
                None => (want.valid, expected),
            };
            prop_assert!(close(row.coverage, reference_coverage(valid, e)), "{}", row.window);
        }
        if let (Some(l), Some(lo)) = (&f.latency, latency) {
            let remaining = 1.0 - reference_burn(want.valid - want.latency_good, want.valid, expected, lo);
            prop_assert!(close(l.error_budget_remaining_ratio, remaining));
            prop_assert_eq!(l.sli, (want.valid > 0).then(|| want.latency_good as f64 / want.valid as f64));
            for (b, e) in l.burn.iter().zip(burn_expected) {
                prop_assert!(close(b.burn_rate, reference_burn(b.counts.valid - b.counts.latency_good, b.counts.valid, e, lo)));
                prop_assert!(close(b.coverage, reference_coverage(b.counts.valid, e)));
            }
        }
    }

    #[test]
    fn any_rolling_window_equals_brute_force(
        runs in runs_strategy(),
        window_secs in 1u64..=3 * 86_400,
        after in 0i64..86_400,
    ) {
        // 30d SLO: the hour ring reaches back 30 days, the minute ring 6 h.
        let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)), Schedule::default());
        for r in &runs {
            s.record(Timestamp::from_second(r.at).unwrap(), r.good, r.latency_good);
        }
        let now_s = runs.iter().map(|r| r.at).max().unwrap_or(BASE) + after;
        let w = Window::Rolling(Duration::from_secs(window_secs));
        prop_assert_eq!(
            s.counts(Timestamp::from_second(now_s).unwrap(), w),
            reference_counts(&runs, now_s, w)
        );
    }

    #[test]
    fn reconfigured_equals_a_fresh_history_or_asks_for_a_rebuild(
        runs in runs_strategy(),
        from in windows(),
        to in windows(),
        latency_from in any::<bool>(),
        latency_to in any::<bool>(),
        after in 0i64..86_400,
        sched in schedules(),
    ) {
        let old_cfg = slo(0.999, from, latency_from.then_some(0.99));
        let new_cfg = slo(0.99, to, latency_to.then_some(0.9));
        let mut old = ServiceSlo::new(&old_cfg, sched.schedule());
        let mut fresh = ServiceSlo::new(&new_cfg, sched.schedule());
        for r in &runs {
            let at = Timestamp::from_second(r.at).unwrap();
            old.record(at, r.good, r.latency_good);
            fresh.record(at, r.good, r.latency_good);
        }
        let now = Timestamp::from_second(runs.iter().map(|r| r.at).max().unwrap_or(BASE) + after).unwrap();
        let hours = |w: SloWindow| ring_lens(&slo(0.9, w, None)).1;
        match old.reconfigured(&new_cfg) {
            Some(carried) => {
                prop_assert!(hours(to) <= hours(from) && (latency_from || !latency_to));
                prop_assert_eq!(carried.figures(now), fresh.figures(now));
            }
            None => prop_assert!(hours(to) > hours(from) || (latency_to && !latency_from)),
        }
    }

    #[test]
    fn add_bucket_restore_equals_recording(
        runs in runs_strategy(),
        window in windows(),
        after in 0i64..86_400,
        sched in schedules(),
    ) {
        let cfg = slo(0.999, window, Some(0.99));
        let mut recorded = ServiceSlo::new(&cfg, sched.schedule());
        let mut minutes = std::collections::BTreeMap::<i64, Counts>::new();
        let mut hours = std::collections::BTreeMap::<i64, Counts>::new();
        for r in &runs {
            let at = Timestamp::from_second(r.at).unwrap();
            recorded.record(at, r.good, r.latency_good);
            for (res, map) in [(Resolution::Minute, &mut minutes), (Resolution::Hour, &mut hours)] {
                let e = map.entry(bucket_start(res, at)).or_default();
                e.valid += 1;
                e.good += u64::from(r.good);
                e.latency_good += u64::from(r.good && r.latency_good);
            }
        }
        let mut restored = ServiceSlo::new(&cfg, sched.schedule());
        // The store returns rows in time order; the ring must not care about the order anyway.
        for (start, c) in minutes.iter().rev() {
            restored.add_bucket(Resolution::Minute, *start, *c);
        }
        for (start, c) in &hours {
            restored.add_bucket(Resolution::Hour, *start, *c);
        }
        let now = Timestamp::from_second(runs.iter().map(|r| r.at).max().unwrap_or(BASE) + after).unwrap();
        prop_assert_eq!(recorded.figures(now), restored.figures(now));
    }
}
