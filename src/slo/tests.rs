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
    let mut s = ServiceSlo::new(&slo(0.999, window_slo, Some(0.99)));
    for (at, good) in runs {
        s.record(ts(at), *good, *good);
    }
    assert_eq!(s.counts(ts(now), window), expected, "{window:?} at {now}");
}

const M5: Window = Window::Rolling(Duration::from_secs(300));
const H1: Window = Window::Rolling(Duration::from_secs(3600));
const D1: Window = Window::Rolling(Duration::from_secs(86_400));

#[test]
fn rolling_windows_roll_over_bucket_edges() {
    let runs = [
        ("2026-03-10T11:59:59Z", false),
        ("2026-03-10T12:00:00Z", true),
        ("2026-03-10T12:04:59Z", false),
        ("2026-03-10T12:05:00Z", true),
    ];
    // 5m at 12:04:30 = minute buckets 12:00..=12:04.
    check(D30, &runs, "2026-03-10T12:04:30Z", M5, c(2, 1, 1));
    // At 12:05:00 the window is 12:01..=12:05: 12:00:00 left, 12:05:00 came in.
    check(D30, &runs, "2026-03-10T12:05:00Z", M5, c(2, 1, 1));
    // 12:09:59 still has the 12:05 bucket; 12:10:00 does not.
    check(D30, &runs, "2026-03-10T12:09:59Z", M5, c(1, 1, 1));
    check(D30, &runs, "2026-03-10T12:10:00Z", M5, c(0, 0, 0));
    // 1h at 12:30 = 11:31..=12:30 in minutes: includes 11:59:59.
    check(D30, &runs, "2026-03-10T12:30:00Z", H1, c(4, 2, 2));
    check(D30, &runs, "2026-03-10T12:59:00Z", H1, c(3, 2, 2));
    // 1d from hour buckets: at 2026-03-11T11:30 the window is hours 12:00 (Mar 10)..=11:00.
    check(D30, &runs, "2026-03-11T11:30:00Z", D1, c(3, 2, 2));
    check(D30, &runs, "2026-03-11T12:00:00Z", D1, c(0, 0, 0));
}

#[test]
fn month_window_starts_at_the_calendar_month() {
    let runs = [
        ("2026-01-31T23:59:00Z", false),
        ("2026-02-01T00:00:00Z", true),
    ];
    check(
        SloWindow::Month,
        &runs,
        "2026-02-01T00:30:00Z",
        Window::Month,
        c(1, 1, 1),
    );
    check(
        SloWindow::Month,
        &runs,
        "2026-01-31T23:59:30Z",
        Window::Month,
        c(1, 0, 0),
    );
    // A 30d rolling window at the same instant sees both.
    check(
        D30,
        &runs,
        "2026-02-01T00:30:00Z",
        Window::Rolling(Duration::from_secs(30 * 86_400)),
        c(2, 1, 1),
    );
}

#[test]
fn month_budget_seconds_use_the_months_length() {
    let mut s = ServiceSlo::new(&slo(0.99, SloWindow::Month, None));
    s.record(ts("2026-02-01T00:00:00Z"), true, true);
    let f = s.figures(ts("2026-02-10T00:00:00Z"));
    assert_eq!(f.window_label, "month");
    assert_eq!(f.window_seconds, 28.0 * 86_400.0);
    assert_eq!(f.availability.error_budget_remaining_ratio, 1.0);
    // 1.0 × (1 − 0.99) × 28 days.
    assert_eq!(
        f.availability.error_budget_remaining_seconds,
        (1.0 - 0.99) * 28.0 * 86_400.0
    );
    assert_eq!(
        window_seconds(Window::Month, ts("2026-01-15T00:00:00Z")),
        2_678_400.0
    );
}

#[test]
fn zero_traffic_has_no_sli_full_budget_and_no_burn() {
    let s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)));
    let f = s.figures(ts("2026-03-10T12:00:00Z"));
    assert_eq!(f.counts, Counts::default());
    for sf in [&f.availability, f.latency.as_ref().unwrap()] {
        assert_eq!(sf.sli, None);
        assert_eq!(sf.error_budget_remaining_ratio, 1.0);
        assert_eq!(
            sf.error_budget_remaining_seconds,
            1.0 * (1.0 - sf.objective) * 30.0 * 86_400.0
        );
        for b in &sf.burn {
            assert_eq!((b.sli, b.burn_rate), (None, 0.0), "{}", b.window);
        }
    }
    assert_eq!(burn_alerts(&f), AlertState::default());
    assert_eq!(burn_rate(Counts::default(), 0.999), 0.0);
}

#[test]
fn overspent_budget_goes_negative_and_pages() {
    // 1000 runs in the last 5 minutes, 20 bad: 2% bad against a 0.1% budget.
    let mut s = ServiceSlo::new(&slo(0.999, D30, None));
    let start = ts("2026-03-10T12:00:00Z");
    for i in 0..1000i64 {
        let at = start + jiff::SignedDuration::from_millis(i * 250);
        s.record(at, i % 50 != 0, true);
    }
    let f = s.figures(ts("2026-03-10T12:04:30Z"));
    assert_eq!(f.counts, c(1000, 980, 0));
    let a = &f.availability;
    assert_eq!(a.sli, Some(0.98));
    let burn = (20.0 / 1000.0) / (1.0 - 0.999);
    assert_eq!(a.burn_rate("5m"), Some(burn));
    assert_eq!(a.burn_rate("3d"), Some(burn));
    assert_eq!(a.error_budget_remaining_ratio, 1.0 - burn);
    assert!(a.error_budget_remaining_ratio < -18.9);
    assert_eq!(
        a.error_budget_remaining_seconds,
        (1.0 - burn) * (1.0 - 0.999) * 2_592_000.0
    );
    // burn ≈ 20 > 14.4 on 1h and 5m; > 6 on 6h/30m; tickets too.
    assert_eq!(
        burn_alerts(&f),
        AlertState {
            page: true,
            ticket: true
        }
    );
    assert_eq!(f.latency, None);
}

#[test]
fn latency_slo_counts_slow_good_runs_as_bad() {
    let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.9)));
    let t = ts("2026-03-10T12:00:00Z");
    s.record(t, true, true);
    s.record(t, true, false); // good but slow
    s.record(t, false, true); // a bad run is never latency-good
    s.record(t, true, true);
    let f = s.figures(t);
    assert_eq!(f.counts, c(4, 3, 2));
    let l = f.latency.unwrap();
    assert_eq!(l.kind, SloKind::Latency);
    assert_eq!(l.objective, 0.9);
    assert_eq!(l.sli, Some(0.5));
    let burn = 0.5 / (1.0 - 0.9);
    assert_eq!(l.burn_rate("30m"), Some(burn));
    assert_eq!(l.error_budget_remaining_ratio, 1.0 - burn);
    assert_eq!(f.availability.sli, Some(0.75));
}

#[test]
fn out_of_order_runs_count_and_runs_older_than_the_ring_are_ignored() {
    let mut s = ServiceSlo::new(&slo(
        0.999,
        SloWindow::Rolling(Duration::from_secs(7 * 86_400)),
        None,
    ));
    s.record(ts("2026-03-10T12:00:00Z"), true, true);
    s.record(ts("2026-03-10T11:58:00Z"), false, true); // late but in range
    s.record(ts("2026-03-01T00:00:00Z"), false, true); // older than the 7d hour ring
    let now = ts("2026-03-10T12:00:30Z");
    assert_eq!(s.counts(now, M5), c(2, 1, 0));
    assert_eq!(
        s.counts(now, Window::Rolling(Duration::from_secs(7 * 86_400))),
        c(2, 1, 0)
    );
    // Asking for more than the ring holds only sees the ring.
    assert_eq!(
        s.counts(now, Window::Rolling(Duration::from_secs(30 * 86_400))),
        c(2, 1, 0)
    );
}

#[test]
fn alert_factors_match_the_workbook_for_30d_and_month_and_scale_otherwise() {
    let factors = |w| burn_alert_rules(w).map(|r| r.factor);
    assert_eq!(
        factors(Window::Rolling(Duration::from_secs(30 * 86_400))),
        [14.4, 6.0, 3.0, 1.0]
    );
    assert_eq!(factors(Window::Month), [14.4, 6.0, 3.0, 1.0]);
    assert_eq!(
        factors(Window::Rolling(Duration::from_secs(7 * 86_400))),
        [
            2.0 * 604_800.0 / 360_000.0,
            5.0 * 604_800.0 / 2_160_000.0,
            10.0 * 604_800.0 / 8_640_000.0,
            10.0 * 604_800.0 / 25_920_000.0
        ]
    );
    let r = burn_alert_rules(Window::Month);
    assert_eq!(
        r.map(|r| (r.severity.label(), r.long, r.short)),
        [
            ("page", "1h", "5m"),
            ("page", "6h", "30m"),
            ("ticket", "1d", "2h"),
            ("ticket", "3d", "6h"),
        ]
    );
}

#[test]
fn alert_needs_both_windows() {
    // Bad for the whole last hour but fine in the last 5 minutes: no fast page.
    let mut s = ServiceSlo::new(&slo(0.999, D30, None));
    let base = ts("2026-03-10T11:00:00Z");
    for m in 0..60i64 {
        let at = base + jiff::SignedDuration::from_mins(m);
        s.record(at, m >= 55, true);
    }
    let f = s.figures(ts("2026-03-10T11:59:30Z"));
    assert_eq!(f.availability.burn_rate("5m"), Some(0.0));
    // 55/60 bad over 1h ≫ 14.4; over 30m 25/30 bad ≫ 6, 6h too: still pages via the slow pair.
    assert_eq!(
        burn_alerts(&f),
        AlertState {
            page: true,
            ticket: true
        }
    );
    // Only the last 5 minutes bad, after 3 days of good runs spread over hours.
    let mut s = ServiceSlo::new(&slo(0.9, D30, None));
    let base = ts("2026-03-07T12:00:00Z");
    for h in 0..72i64 {
        s.record(base + jiff::SignedDuration::from_hours(h), true, true);
    }
    let last = base + jiff::SignedDuration::from_hours(72);
    s.record(last, false, true);
    let f = s.figures(last);
    // 5m: 1/1 bad → burn 10 (< 14.4); 1h 1/1 → 10. 6h: 1/6 → 1.67 < 6. No page.
    assert_eq!(f.availability.burn_rate("5m"), Some(1.0 / (1.0 - 0.9)));
    assert!(!burn_alerts(&f).page);
}

#[test]
fn bucket_start_floors_to_minute_and_hour() {
    let t = ts("2026-03-10T12:34:56.789Z");
    assert_eq!(
        bucket_start(Resolution::Minute, t),
        ts("2026-03-10T12:34:00Z").as_second()
    );
    assert_eq!(
        bucket_start(Resolution::Hour, t),
        ts("2026-03-10T12:00:00Z").as_second()
    );
    assert_eq!(
        bucket_start(Resolution::Minute, ts("1969-12-31T23:59:59.5Z")),
        -60
    );
}

#[test]
fn add_bucket_floors_unaligned_starts_and_feeds_one_ring_only() {
    let mut s = ServiceSlo::new(&slo(0.999, D30, None));
    let t = ts("2026-03-10T12:34:00Z").as_second();
    s.add_bucket(Resolution::Minute, t + 59, c(10, 9, 0));
    s.add_bucket(Resolution::Hour, t - 34 * 60 + 1, c(100, 90, 0));
    let now = ts("2026-03-10T12:34:30Z");
    // Minute row only in windows ≤ 6h, hour row only in longer ones: no double count.
    assert_eq!(s.counts(now, M5), c(10, 9, 0));
    assert_eq!(s.counts(now, D1), c(100, 90, 0));
}

#[test]
fn sli_rows_cover_burn_windows_and_the_slo_window_once() {
    let t = ts("2026-03-10T12:00:00Z");
    let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)));
    s.record(t, true, false);
    s.record(t, false, false);
    let rows = s.figures(t).sli_rows();
    assert_eq!(rows.len(), 16);
    assert_eq!(
        rows[0],
        (SloKind::Availability, "5m".to_string(), Some(0.5))
    );
    assert_eq!(
        rows[7],
        (SloKind::Availability, "30d".to_string(), Some(0.5))
    );
    assert_eq!(rows[15], (SloKind::Latency, "30d".to_string(), Some(0.0)));
    // A 1d SLO window is already a burn window: no duplicate series.
    let s = ServiceSlo::new(&slo(
        0.999,
        SloWindow::Rolling(Duration::from_secs(86_400)),
        None,
    ));
    let rows = s.figures(t).sli_rows();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[5], (SloKind::Availability, "1d".to_string(), None));
}

#[test]
fn memory_stays_small() {
    assert_eq!(
        ServiceSlo::new(&slo(0.999, D30, None)).heap_bytes(),
        (360 + 720) * 8
    );
    assert_eq!(
        ServiceSlo::new(&slo(0.999, D30, Some(0.99))).heap_bytes(),
        (360 + 720) * 12
    );
    assert_eq!(
        ServiceSlo::new(&slo(0.999, SloWindow::Month, None)).heap_bytes(),
        (360 + 744) * 8
    );
    assert_eq!(
        ServiceSlo::new(&slo(
            0.999,
            SloWindow::Rolling(Duration::from_secs(3600)),
            None
        ))
        .heap_bytes(),
        (360 + 72) * 8
    );
}

// ---- brute-force reference ----------------------------------------------

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

fn reference_ratio(bad: u64, valid: u64, objective: f64) -> f64 {
    if valid == 0 {
        1.0
    } else {
        1.0 - (bad as f64 / valid as f64) / (1.0 - objective)
    }
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
    ) {
        let cfg = slo(objective, window, latency);
        let mut s = ServiceSlo::new(&cfg);
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
        let a = &f.availability;
        prop_assert_eq!(a.error_budget_remaining_ratio, reference_ratio(want.valid - want.good, want.valid, objective));
        prop_assert_eq!(a.sli, (want.valid > 0).then(|| want.good as f64 / want.valid as f64));
        for (b, (label, d)) in a.burn.iter().zip(BURN_WINDOWS) {
            let mut wc = reference_counts(&runs, now_s, Window::Rolling(d));
            if latency.is_none() {
                wc.latency_good = 0;
            }
            prop_assert_eq!(b.window, label);
            prop_assert_eq!(b.counts, wc, "{}", label);
            prop_assert_eq!(b.burn_rate, 1.0 - reference_ratio(wc.valid - wc.good, wc.valid, objective));
        }
        if let (Some(l), Some(lo)) = (&f.latency, latency) {
            prop_assert_eq!(l.error_budget_remaining_ratio, reference_ratio(want.valid - want.latency_good, want.valid, lo));
            for b in &l.burn {
                prop_assert_eq!(b.burn_rate, 1.0 - reference_ratio(b.counts.valid - b.counts.latency_good, b.counts.valid, lo));
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
        let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)));
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
    ) {
        let old_cfg = slo(0.999, from, latency_from.then_some(0.99));
        let new_cfg = slo(0.99, to, latency_to.then_some(0.9));
        let mut old = ServiceSlo::new(&old_cfg);
        let mut fresh = ServiceSlo::new(&new_cfg);
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
    ) {
        let cfg = slo(0.999, window, Some(0.99));
        let mut recorded = ServiceSlo::new(&cfg);
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
        let mut restored = ServiceSlo::new(&cfg);
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
