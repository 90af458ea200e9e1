use super::slot::*;
use super::*;
use crate::probe::{Outcome, Reason};
use std::time::Duration;
use tokio::time::Instant;

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
        text.contains("sentinel_check_runs_total{service=\"a\",check=\"x\",result=\"good\"} 1\n")
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
    assert!(
        text.contains(
            "sentinel_check_runs_total{service=\"s\",check=\"c\",result=\"good\"} 4000\n"
        )
    );
    assert!(
        text.contains("sentinel_check_duration_seconds_count{service=\"s\",check=\"c\"} 4000\n")
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
