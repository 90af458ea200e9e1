//! The scrape we render is accepted by Prometheus' own linter.

use std::time::Duration;

use crate::support::prom::assert_promtool_accepts;
use sentinel::metrics::{CheckMetrics, Expo, render_process};
use sentinel::probe::{Outcome, Reason};

fn outcome(reason: Option<Reason>, ms: u64, cert: Option<i64>) -> Outcome {
    Outcome {
        reason,
        latency: Duration::from_millis(ms),
        cert_not_after: cert,
        detail: "free text never becomes a label".to_owned(),
    }
}

/// A scrape with several checks, every failure reason, a skipped run, a
/// certificate, quantiles, label values that need escaping, and the process
/// families.
fn scrape() -> String {
    scrape_with(true)
}

fn scrape_with(histograms: bool) -> String {
    let m = CheckMetrics::new();
    m.set_histograms(histograms);
    let checks = [
        ("identity", "login"),
        ("identity", "tls"),
        ("payments", "api"),
        ("weird \"svc\"", "back\\slash"),
    ];
    m.sync(&checks);
    let now = 1_700_000_000;
    for (i, (service, check)) in checks.iter().enumerate() {
        let slot = m
            .slot(service, check)
            .unwrap_or_else(|| panic!("{service}/{check} was just synced"));
        slot.record(
            &outcome(None, 3 + i as u64 * 40, Some(1_800_000_000)),
            now - 30,
        );
        for (j, reason) in Reason::ALL.iter().enumerate() {
            slot.record(&outcome(Some(*reason), 10 * j as u64 + 1, None), now);
        }
        slot.record(&outcome(None, 12_000, None), now);
        slot.record_skipped();
    }
    let mut out = Expo::new();
    m.render(&mut out, now);
    render_process(&mut out, env!("CARGO_PKG_VERSION"), true);
    out.into_string()
}

/// An empty registry: every family header, no samples (a config with no
/// checks yet, or the first scrape after start).
fn empty_scrape() -> String {
    let mut out = Expo::new();
    CheckMetrics::new().render(&mut out, 0);
    render_process(&mut out, "0.0.0-dev", false);
    out.into_string()
}

/// `promtool check metrics` accepts `text` without a word.
fn check(text: &str) {
    assert_promtool_accepts(text);
}

#[test]
fn promtool_check_metrics_reports_nothing() {
    let text = scrape();
    // Every reason is in the scrape, so promtool sees the whole label set.
    for reason in Reason::ALL {
        assert!(
            text.contains(&format!("reason=\"{}\"", reason.as_str())),
            "{reason:?} missing"
        );
    }
    check(&text);
}

#[test]
fn promtool_accepts_a_scrape_without_checks() {
    let text = empty_scrape();
    assert!(text.contains("# TYPE sentinel_check_up gauge\n"));
    assert!(!text.contains("sentinel_check_up{"));
    check(&text);
}

/// `metrics.check_histograms: false`: the duration histogram keeps only its
/// `+Inf` bucket, `_sum` and `_count`, still a valid histogram.
#[test]
fn promtool_accepts_histograms_without_buckets() {
    let text = scrape_with(false);
    assert!(text.contains(
        "sentinel_check_duration_seconds_bucket{service=\"identity\",check=\"login\",le=\"+Inf\"}"
    ));
    assert!(!text.contains("le=\"0.005\""));
    check(&text);
}
