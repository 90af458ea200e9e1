use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
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
    let mut s = ServiceSlo::new(&slo(0.99, SloWindow::Month, None), Schedule::default());
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
    let s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)), Schedule::default());
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
    assert_eq!(burn_rate(Counts::default(), 0.0, 0.999), 0.0);
}

#[test]
fn overspent_budget_goes_negative_and_pages() {
    // 1000 runs in the last 5 minutes, 20 bad: 2% bad against a 0.1% budget.
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), Schedule::default());
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
    let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.9)), Schedule::default());
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
    let mut s = ServiceSlo::new(
        &slo(
            0.999,
            SloWindow::Rolling(Duration::from_secs(7 * 86_400)),
            None,
        ),
        Schedule::default(),
    );
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
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), Schedule::default());
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
    let mut s = ServiceSlo::new(&slo(0.9, D30, None), Schedule::default());
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
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), Schedule::default());
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
    // One check a minute; two runs so far (both at 12:00:00).
    let mut s = ServiceSlo::new(&slo(0.999, D30, Some(0.99)), every(&[60], &[]));
    s.record(t, true, false);
    s.record(t, false, false);
    let rows = s.figures(t).sli_rows();
    assert_eq!(rows.len(), 16);
    let row = |kind, window: &str, sli, coverage| SliRow {
        kind,
        window: window.to_string(),
        sli,
        coverage,
    };
    // 5m at 12:00:00 spans 11:56:00–12:00:00: 240 s, 4 runs expected, 2 seen.
    assert_eq!(rows[0], row(SloKind::Availability, "5m", Some(0.5), 0.5));
    // 30d spans 719 hours: 43 140 runs expected.
    assert_eq!(
        rows[7],
        row(SloKind::Availability, "30d", Some(0.5), 2.0 / 43_140.0)
    );
    assert_eq!(
        rows[15],
        row(SloKind::Latency, "30d", Some(0.0), 2.0 / 43_140.0)
    );
    // A 1d SLO window is already a burn window: no duplicate series.
    let s = ServiceSlo::new(
        &slo(0.999, SloWindow::Rolling(Duration::from_secs(86_400)), None),
        every(&[60], &[]),
    );
    let rows = s.figures(t).sli_rows();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[5], row(SloKind::Availability, "1d", None, 0.0));
}

#[test]
fn memory_stays_small() {
    assert_eq!(
        ServiceSlo::new(&slo(0.999, D30, None), Schedule::default()).heap_bytes(),
        (360 + 720) * 8
    );
    assert_eq!(
        ServiceSlo::new(&slo(0.999, D30, Some(0.99)), Schedule::default()).heap_bytes(),
        (360 + 720) * 12
    );
    assert_eq!(
        ServiceSlo::new(&slo(0.999, SloWindow::Month, None), Schedule::default()).heap_bytes(),
        (360 + 744) * 8
    );
    assert_eq!(
        ServiceSlo::new(
            &slo(0.999, SloWindow::Rolling(Duration::from_secs(3600)), None),
            Schedule::default()
        )
        .heap_bytes(),
        (360 + 72) * 8
    );
}

// ---- young data: budgets and burn rates divide by max(valid, expected) ----

/// Records `runs` of (check interval, first run, last run, bad from, bad until)
/// on the fixed grid: run k of a check at `first + k × interval`, bad when in
/// `[bad_from, bad_until)`.
fn grid(s: &mut ServiceSlo, interval: i64, first: &str, last: &str, bad: (&str, &str)) {
    let (first, last) = (ts(first).as_second(), ts(last).as_second());
    let (bad_from, bad_until) = (ts(bad.0).as_second(), ts(bad.1).as_second());
    let mut t = first;
    while t <= last {
        let good = !(bad_from..bad_until).contains(&t);
        s.record(Timestamp::from_second(t).unwrap(), good, good);
        t += interval;
    }
}

/// Expected runs, coverage and burn rate of each burn window, in order.
fn burn_table(f: &SloFigures) -> Vec<(&'static str, f64, f64, f64)> {
    f.burn
        .iter()
        .map(|b| (b.window, b.expected, b.coverage, b.burn_rate))
        .collect()
}

#[test]
fn one_bad_run_on_a_fresh_store_does_not_page() {
    // The report: 12 s of history, the first failed run opened a P1
    // ("burn rate 1h 111.11 and 5m 111.11 over 14.4"). Three checks every 5 s
    // (0.6 runs/s), first runs at 12:00:00; the last run of one check fails.
    let cfg = slo(0.999, D30, None);
    let schedule = every(&[5, 5, 5], &[]);
    let mut s = ServiceSlo::new(&cfg, schedule);
    for check in 0..3 {
        let bad = if check == 0 {
            "2026-03-10T12:00:10Z"
        } else {
            "2026-03-10T12:00:11Z"
        };
        grid(
            &mut s,
            5,
            "2026-03-10T12:00:00Z",
            "2026-03-10T12:00:10Z",
            (bad, "2026-03-10T12:00:11Z"),
        );
    }
    let now = ts("2026-03-10T12:00:10Z");
    let f = s.figures(now);
    assert_eq!(f.counts, c(9, 8, 0));
    assert_eq!(f.expected_runs_per_second, 0.6);
    let a = &f.availability;
    assert_eq!(
        a.sli,
        Some(8.0 / 9.0),
        "the SLI stays good / valid observed"
    );
    // Each window spans from its first bucket's start to now; 0.6 runs/s over it.
    let burn = |expected: f64| (1.0 / expected) / (1.0 - 0.999);
    let want = [
        ("5m", 150.0),     // 11:56:00–12:00:10, 250 s
        ("30m", 1050.0),   // 11:31:00–, 1 750 s
        ("1h", 2130.0),    // 11:01:00–, 3 550 s
        ("2h", 4290.0),    // 10:01:00–, 7 150 s
        ("6h", 12_930.0),  // 06:01:00–, 21 550 s
        ("1d", 49_686.0),  // 13:00 yesterday–, 82 810 s
        ("3d", 153_366.0), // 13:00 three days ago–, 255 610 s
    ]
    .map(|(w, e)| (w, e, 9.0 / e, burn(e)));
    assert_eq!(burn_table(a), want);
    assert_eq!(a.burn_rate("5m"), Some(6.666666666666661));
    assert_eq!(
        burn_alerts(&f),
        AlertState::default(),
        "one bad run never pages"
    );
    // The 30d budget: 719 h + 10 s of schedule = 1 553 046 runs, 1 553.046 bad allowed.
    assert_eq!(f.expected, 1_553_046.0);
    assert_eq!(f.coverage, 9.0 / 1_553_046.0);
    assert_eq!(a.error_budget_remaining_ratio, 1.0 - burn(1_553_046.0));
    assert_eq!(a.error_budget_remaining_ratio, 0.999356104069036);
    assert_eq!(
        a.error_budget_remaining_seconds,
        0.999356104069036 * (1.0 - 0.999) * 2_592_000.0
    );

    // What dividing by the runs seen alone (nothing expected) made of the same
    // history: burn 111.11 on every window, a page, budget −110.
    let mut seen_only = ServiceSlo::new(&cfg, Schedule::default());
    for check in 0..3 {
        let bad = if check == 0 {
            "2026-03-10T12:00:10Z"
        } else {
            "2026-03-10T12:00:11Z"
        };
        grid(
            &mut seen_only,
            5,
            "2026-03-10T12:00:00Z",
            "2026-03-10T12:00:10Z",
            (bad, "2026-03-10T12:00:11Z"),
        );
    }
    let old = seen_only.figures(now);
    assert_eq!(
        old.availability.burn_rate("1h"),
        Some((1.0 / 9.0) / (1.0 - 0.999))
    );
    assert_eq!(
        burn_alerts(&old),
        AlertState {
            page: true,
            ticket: true
        }
    );
    assert!(old.availability.error_budget_remaining_ratio < -110.0);
}

#[test]
fn a_one_minute_outage_on_a_fresh_30d_store_spends_one_allowance() {
    // One check a minute, watched since 11:00; it failed once, at 11:30.
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), every(&[60], &[]));
    grid(
        &mut s,
        60,
        "2026-03-10T11:00:00Z",
        "2026-03-10T12:00:00Z",
        ("2026-03-10T11:30:00Z", "2026-03-10T11:31:00Z"),
    );
    let f = s.figures(ts("2026-03-10T12:00:00Z"));
    assert_eq!(f.counts, c(61, 60, 0));
    // At 12:00:00 the 30d window is 719 whole hours (plus the hour just
    // begun): 43 140 runs expected, so 43.14 bad runs allowed, and one spent.
    assert_eq!(f.expected, 43_140.0);
    let spent = (1.0 / 43_140.0) / (1.0 - 0.999);
    assert_eq!(f.availability.error_budget_remaining_ratio, 1.0 - spent);
    assert!((spent - 1.0 / 43.14).abs() < 1e-12, "{spent}");
    assert_eq!(f.coverage, 61.0 / 43_140.0);
    // Over the last hour it is what a long healthy history gives: 1 bad of
    // 60 runs (11:01–12:00), so the 1h burn is 16.7 but the 5m one is 0.
    assert_eq!(
        f.availability.burn_rate("1h"),
        Some((1.0 / 60.0) / (1.0 - 0.999))
    );
    assert_eq!(f.availability.burn_rate("5m"), Some(0.0));
    assert_eq!(burn_alerts(&f), AlertState::default());
}

#[test]
fn a_60s_outage_after_6_minutes_of_history_pages_like_a_long_history_but_no_ticket() {
    // The report: a 60 s outage on 6 minutes of history showed a budget of
    // −169 and the ticket alert held the incident for hours. Checks every
    // 15 s, 30 s and 30 s (8 runs a minute) since 12:00:00; all bad 12:05:00–12:05:59.
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), every(&[15, 30, 30], &[]));
    let outage = ("2026-03-10T12:05:00Z", "2026-03-10T12:06:00Z");
    grid(
        &mut s,
        15,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:45Z",
        outage,
    );
    grid(
        &mut s,
        30,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:30Z",
        outage,
    );
    grid(
        &mut s,
        30,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:30Z",
        outage,
    );
    let f = s.figures(ts("2026-03-10T12:06:00Z"));
    assert_eq!(f.counts, c(48, 40, 0));
    // 30d: 719 h + 6 min at 8 runs a minute.
    assert_eq!(f.expected, 345_168.0);
    let a = &f.availability;
    assert_eq!(
        a.error_budget_remaining_ratio,
        1.0 - (8.0 / 345_168.0) / (1.0 - 0.999)
    );
    assert_eq!(a.error_budget_remaining_ratio, 0.9768228804524174);
    // A full outage of a minute is 1.7 % of an hour's 472 runs: that pages on
    // any history (1h 16.95 and 5m 250 over 14.4) ...
    assert_eq!(a.burn_rate("1h"), Some((8.0 / 472.0) / (1.0 - 0.999)));
    assert_eq!(a.burn_rate("5m"), Some((8.0 / 32.0) / (1.0 - 0.999)));
    // ... but over a day it is 8 of 11 088 runs (burn 0.72): no ticket, so
    // nothing holds the incident once the 5m window has moved past the outage.
    assert_eq!(a.burn_rate("1d"), Some((8.0 / 11_088.0) / (1.0 - 0.999)));
    assert_eq!(
        burn_alerts(&f),
        AlertState {
            page: true,
            ticket: false
        }
    );
    let later = s.figures(ts("2026-03-10T12:11:00Z"));
    assert_eq!(later.availability.burn_rate("5m"), Some(0.0));
    assert_eq!(burn_alerts(&later), AlertState::default());

    // Dividing by the runs seen alone: budget −165.7, page and ticket.
    let mut seen_only = ServiceSlo::new(&slo(0.999, D30, None), Schedule::default());
    grid(
        &mut seen_only,
        15,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:45Z",
        outage,
    );
    grid(
        &mut seen_only,
        30,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:30Z",
        outage,
    );
    grid(
        &mut seen_only,
        30,
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:05:30Z",
        outage,
    );
    let old = seen_only.figures(ts("2026-03-10T12:06:00Z"));
    assert_eq!(
        old.availability.error_budget_remaining_ratio,
        1.0 - (8.0 / 48.0) / (1.0 - 0.999)
    );
    assert_eq!(
        burn_alerts(&old),
        AlertState {
            page: true,
            ticket: true
        }
    );
}

#[test]
fn maintenance_is_not_expected() {
    // One check a minute; maintenance 10:00–11:00 and 11:30–12:30 (half of it still to come).
    let schedule = every(
        &[60],
        &[
            ("2026-03-10T10:00:00Z", "2026-03-10T11:00:00Z"),
            ("2026-03-10T11:30:00Z", "2026-03-10T12:30:00Z"),
        ],
    );
    let mut s = ServiceSlo::new(&slo(0.999, D30, None), schedule);
    s.record(ts("2026-03-10T09:00:00Z"), false, false);
    let now = ts("2026-03-10T12:00:00Z");
    let d1 = Window::Rolling(Duration::from_secs(86_400));
    // 1d at 12:00 spans 13:00 yesterday to now, 23 h, of which 1 h 30 min in maintenance.
    assert_eq!(s.expected(now, d1), (23.0 * 60.0) - 90.0);
    // 1h spans 11:01–12:00, the last 30 minutes in maintenance.
    assert_eq!(s.expected(now, H1), 59.0 - 30.0);
    let f = s.figures(now);
    assert_eq!(f.expected, 43_140.0 - 90.0);
    assert_eq!(
        f.availability.error_budget_remaining_ratio,
        1.0 - (1.0 / 43_050.0) / (1.0 - 0.999)
    );
    // A window entirely inside maintenance expects nothing: coverage 1, burn 0.
    let quiet = ts("2026-03-10T12:20:00Z");
    let m5 = s.figures(quiet).availability.burn[0];
    assert_eq!((m5.expected, m5.coverage, m5.burn_rate), (0.0, 1.0, 0.0));
}

#[test]
fn month_budget_is_the_whole_months_allowance() {
    // February 2026: 28 days of one check a minute is 40 320 runs; a day of
    // maintenance still to come (Feb 20) takes 1 440 of them off.
    let schedule = every(&[60], &[("2026-02-20T00:00:00Z", "2026-02-21T00:00:00Z")]);
    let mut s = ServiceSlo::new(&slo(0.999, SloWindow::Month, None), schedule);
    grid(
        &mut s,
        60,
        "2026-02-10T00:00:00Z",
        "2026-02-10T01:00:00Z",
        ("2026-02-10T00:30:00Z", "2026-02-10T00:31:00Z"),
    );
    let f = s.figures(ts("2026-02-10T01:00:00Z"));
    assert_eq!(f.window_label, "month");
    assert_eq!(f.counts, c(61, 60, 0));
    assert_eq!(f.expected, 38_880.0);
    assert_eq!(f.coverage, 61.0 / 38_880.0);
    let remaining = 1.0 - (1.0 / 38_880.0) / (1.0 - 0.999);
    assert_eq!(f.availability.error_budget_remaining_ratio, remaining);
    assert_eq!(
        f.availability.error_budget_remaining_seconds,
        remaining * (1.0 - 0.999) * 28.0 * 86_400.0
    );
    // The allowance is fixed for the month: days later, with no new runs, the same.
    let f = s.figures(ts("2026-02-27T00:00:00Z"));
    assert_eq!(f.availability.error_budget_remaining_ratio, remaining);
    // March is a new month: a new, 31-day allowance and nothing spent yet.
    let f = s.figures(ts("2026-03-01T00:00:00Z"));
    assert_eq!(f.expected, 44_640.0);
    assert_eq!(f.availability.error_budget_remaining_ratio, 1.0);
}

#[test]
fn extra_runs_never_inflate_a_budget() {
    // The schedule says one run a minute, but 10 ran in the last minute (a
    // reload made the checks slower): the runs seen are the denominator.
    let mut s = ServiceSlo::new(&slo(0.9, D30, None), every(&[60], &[]));
    for i in 0..10 {
        s.record(
            ts("2026-03-10T12:00:00Z") + jiff::SignedDuration::from_secs(i),
            i != 0,
            true,
        );
    }
    let f = s.figures(ts("2026-03-10T12:00:30Z"));
    let m5 = f.availability.burn[0];
    // 5m spans 11:56:00–12:00:30: 4.5 runs expected, 10 seen.
    assert_eq!((m5.expected, m5.coverage), (4.5, 1.0));
    assert_eq!(m5.burn_rate, (1.0 / 10.0) / (1.0 - 0.9));
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
