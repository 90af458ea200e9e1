//! Window counts, budgets, burn-rate alerts and buckets on exact timestamps.

use super::*;

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
