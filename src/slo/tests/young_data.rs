//! Young data: budgets and burn rates divide by max(valid, expected), so a
//! fresh store or a short history never pages on one bad run.

use super::*;

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
