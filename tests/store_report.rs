//! `sentinel report` on real state files with known counts: exact figures.

// Helpers outside #[test] fns are not exempt from the unwrap lint; panicking
// on a broken fixture is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sentinel::config::*;
use sentinel::report::{self, ReportError};
use sentinel::slo::Counts;
use sentinel::store::{BucketDelta, OutboxInsert, Store, StoreError};

const DAY: u64 = 86_400;

fn check_spec(name: &str) -> Check {
    Check {
        name: name.into(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        probe: ProbeSpec::Tcp(TcpSpec {
            host: "127.0.0.1".into(),
            port: 1,
            tls: false,
            tls_verify: true,
            server_name: None,
            send: None,
            expect: None,
            cert_min_days: None,
        }),
    }
}

fn service(name: &str, checks: &[&str], slo: Option<Slo>) -> Service {
    Service {
        name: name.into(),
        description: None,
        owner: None,
        tier: None,
        checks: checks.iter().map(|c| check_spec(c)).collect(),
        slo,
        incident: IncidentPolicy {
            open_after: 3,
            resolve_after: 2,
            burn_rate_alerts: true,
            severity: "P2".into(),
            notify: vec![],
        },
    }
}

fn config(path: &Path) -> Config {
    Config {
        server: Server {
            listen: "127.0.0.1:0".parse().unwrap(),
            api_token_env: None,
            max_concurrency: 16,
        },
        storage: Storage {
            path: path.to_path_buf(),
            minute_retention: Duration::from_secs(3 * DAY),
            retention: Duration::from_secs(400 * DAY),
        },
        defaults: Defaults {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        },
        notifiers: vec![],
        response_targets: BTreeMap::new(),
        maintenance: vec![],
        services: vec![
            service(
                "identity",
                &["login", "dns"],
                Some(Slo {
                    objective: 0.999,
                    window: SloWindow::Rolling(Duration::from_secs(30 * DAY)),
                    latency: None,
                }),
            ),
            service("intranet", &["home"], None),
        ],
    }
}

fn now() -> Timestamp {
    "2026-11-23T10:30:00Z".parse().unwrap()
}

fn delta(service: &str, check: &str, at: &str, valid: u64, good: u64) -> BucketDelta {
    let at: Timestamp = at.parse().unwrap();
    BucketDelta {
        service: service.into(),
        check: check.into(),
        at_minute: at.as_second(),
        counts: Counts {
            valid,
            good,
            latency_good: good,
        },
    }
}

/// 1000 valid identity runs, 3 bad: 500 (3 bad) of `login` 10 minutes ago and
/// 500 good `dns` runs two days ago; runs older than 30d, intranet runs, and
/// one open incident.
async fn fixture(dir: &Path) -> PathBuf {
    let path = dir.join("state/sentinel.db");
    let store = Store::open(&path).unwrap();
    store
        .add_counts(vec![
            delta("identity", "login", "2026-11-23T10:20:00Z", 500, 497),
            delta("identity", "dns", "2026-11-21T10:00:00Z", 300, 300),
            delta("identity", "dns", "2026-11-21T10:01:00Z", 200, 200),
            delta("intranet", "home", "2026-11-23T09:00:00Z", 10, 9),
            // Older than 30d: outside every window.
            delta("identity", "login", "2026-10-01T00:00:00Z", 50, 0),
        ])
        .await
        .unwrap();
    store
        .save_incident(
            "inc-1".into(),
            "identity".into(),
            "open".into(),
            "2026-11-23T10:21:00Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_second(),
            "{}".into(),
            vec![OutboxInsert {
                event_id: "e1".into(),
                notifier: "tickets".into(),
                incident_id: "inc-1".into(),
                payload: "{}".into(),
                created_at: 0,
            }],
        )
        .await
        .unwrap();
    store.close().await.unwrap();
    path
}

#[tokio::test]
async fn json_report_has_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let out = report::run(&config(&path), &path, None, true, now()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let expected = serde_json::json!({
        "service": "identity",
        "window": "30d",
        "window_seconds": 2592000.0,
        "availability": {
            "objective": 0.999,
            "sli": 0.997,
            "error_budget_remaining_ratio": -2.0,
            "error_budget_remaining_seconds": -5184.0,
            "error_budget_remaining_minutes": -86.4,
            "burn_rates": [
                { "window": "5m", "burn_rate": 0.0, "sli": null, "valid": 0 },
                { "window": "30m", "burn_rate": 6.0, "sli": 0.994, "valid": 500 },
                { "window": "1h", "burn_rate": 6.0, "sli": 0.994, "valid": 500 },
                { "window": "2h", "burn_rate": 6.0, "sli": 0.994, "valid": 500 },
                { "window": "6h", "burn_rate": 6.0, "sli": 0.994, "valid": 500 },
                { "window": "1d", "burn_rate": 6.0, "sli": 0.994, "valid": 500 },
                { "window": "3d", "burn_rate": 3.0, "sli": 0.997, "valid": 1000 }
            ]
        },
        "latency": null,
        "runs": { "valid": 1000, "good": 997, "bad": 3 },
        "checks": [
            { "check": "login", "in_config": true, "runs": { "valid": 500, "good": 497, "bad": 3 } },
            { "check": "dns", "in_config": true, "runs": { "valid": 500, "good": 500, "bad": 0 } }
        ],
        "incidents": { "opened_in_window": 1, "open": 1 }
    });
    assert_eq!(doc["services"][0], expected);
    assert_eq!(doc["generated_at"], "2026-11-23T10:30:00Z");
    let intranet = &doc["services"][1];
    assert_eq!(intranet["availability"], serde_json::Value::Null);
    assert_eq!(
        intranet["runs"],
        serde_json::json!({ "valid": 10, "good": 9, "bad": 1 })
    );
}

#[tokio::test]
async fn text_report_has_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let out = report::run(&config(&path), &path, None, false, now()).unwrap();
    let expected = format!(
        "sentinel report at 2026-11-23T10:30:00Z from {}

identity (window 30d)
  availability  objective 99.900%  SLI 99.700%  budget left -2.000 (-86.4 min)
  burn rate     5m 0.00  30m 6.00  1h 6.00  2h 6.00  6h 6.00  1d 6.00  3d 3.00
  runs          valid 1000  good 997  bad 3
    login         valid 500  good 497  bad 3
    dns           valid 500  good 500  bad 0
  incidents     opened in window 1  open now 1

intranet (window 30d)
  no SLO configured
  runs          valid 10  good 9  bad 1
    home          valid 10  good 9  bad 1
  incidents     opened in window 0  open now 0
",
        path.display()
    );
    assert_eq!(out, expected);
}

/// `--window` replaces the configured window.
#[tokio::test]
async fn window_override_changes_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let cfg = config(&path);
    // (window, SLI, budget ratio, budget seconds)
    let check = |window: &str, sli: f64, ratio: f64, seconds: f64| {
        let w = report::parse_window(window).unwrap();
        let out = report::run(&cfg, &path, Some(w), true, now()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let a = &doc["services"][0]["availability"];
        assert_eq!(doc["services"][0]["window"], window, "{window}");
        assert_eq!(a["sli"], sli, "{window}");
        assert_eq!(a["error_budget_remaining_ratio"], ratio, "{window}");
        assert_eq!(a["error_budget_remaining_seconds"], seconds, "{window}");
    };
    // Only login's 500 runs (3 bad) are within a day.
    check("1d", 0.994, -5.0, -432.0);
    check("3d", 0.997, -2.0, -518.4);
    // November 2026 has 30 days.
    check("month", 0.997, -2.0, -5184.0);
}

#[test]
fn missing_store_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let err = report::run(&config(&path), &path, None, false, now()).unwrap_err();
    assert!(matches!(
        err,
        ReportError::Store(StoreError::Missing { .. })
    ));
    assert_eq!(
        err.to_string(),
        format!("no state at {} — has the daemon run?", path.display())
    );
    assert!(!path.exists());
}

#[test]
fn bad_windows_are_refused() {
    for w in ["", "0s", "soon", "5"] {
        assert!(report::parse_window(w).is_err(), "{w:?}");
    }
    assert_eq!(report::parse_window("month"), Ok(SloWindow::Month));
    assert_eq!(
        report::parse_window("30d"),
        Ok(SloWindow::Rolling(Duration::from_secs(30 * DAY)))
    );
}

/// WAL lets `sentinel report` read while the daemon's writer is open, and it
/// sees every committed write.
#[tokio::test]
async fn report_reads_while_the_daemon_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    let cfg = config(&path);
    let store = Store::open(&path).unwrap();
    let runs = || {
        let out = report::run(&cfg, &path, None, true, now()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["services"][0]["runs"].clone()
    };
    store
        .add_counts(vec![delta(
            "identity",
            "login",
            "2026-11-23T10:20:00Z",
            4,
            3,
        )])
        .await
        .unwrap();
    assert_eq!(
        runs(),
        serde_json::json!({ "valid": 4, "good": 3, "bad": 1 })
    );
    store
        .add_counts(vec![delta("identity", "dns", "2026-11-23T10:21:00Z", 6, 6)])
        .await
        .unwrap();
    assert_eq!(
        runs(),
        serde_json::json!({ "valid": 10, "good": 9, "bad": 1 })
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn latency_slo_is_reported_from_latency_good_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    let mut cfg = config(&path);
    if let Some(slo) = cfg.services[0].slo.as_mut() {
        slo.latency = Some(LatencySlo {
            threshold: Duration::from_millis(300),
            objective: 0.99,
        });
    }
    let store = Store::open(&path).unwrap();
    let mut slow = delta("identity", "login", "2026-11-23T10:20:00Z", 100, 100);
    slow.counts.latency_good = 97;
    store.add_counts(vec![slow]).await.unwrap();
    store.close().await.unwrap();

    let out = report::run(&cfg, &path, None, true, now()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &doc["services"][0];
    assert_eq!(s["availability"]["sli"], 1.0);
    assert_eq!(s["availability"]["error_budget_remaining_ratio"], 1.0);
    let l = &s["latency"];
    assert_eq!(l["objective"], 0.99);
    assert_eq!(l["sli"], 0.97);
    assert_eq!(l["error_budget_remaining_ratio"], -2.0);
    // −2 × 1% of 30 days = −51 840 s = −864 min.
    assert_eq!(l["error_budget_remaining_seconds"], -51840.0);
    assert_eq!(l["error_budget_remaining_minutes"], -864.0);
    assert_eq!(
        l["burn_rates"][1],
        serde_json::json!({ "window": "30m", "burn_rate": 3.0, "sli": 0.97, "valid": 100 })
    );

    let text = report::run(&cfg, &path, None, false, now()).unwrap();
    assert!(
        text.contains(
            "  latency       objective 99.000%  SLI 97.000%  budget left -2.000 (-864.0 min)\n"
        ),
        "{text}"
    );
}
