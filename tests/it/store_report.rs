//! `sentinel report` on real state files with known counts: exact figures.

// Helpers outside #[test] fns are not exempt from the unwrap lint; panicking
// on a broken fixture is what a test should do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use sentinel::config::*;
use sentinel::incident::{Incident, ResolvedBy, State, Totals, Trigger};
use sentinel::report::{self, ReportError};
use sentinel::slo::Counts;
use sentinel::store::{BucketDelta, IncidentSave, OutboxInsert, Store, StoreError};

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
            max_connections: None,
            worker_threads: None,
            read_timeout: std::time::Duration::from_secs(10),
            external_url: "http://127.0.0.1:0".into(),
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
        response_targets: BTreeMap::from([
            (
                "P1".to_string(),
                ResponseTarget {
                    acknowledge: Duration::from_secs(600),
                    restore: Duration::from_secs(7200),
                    escalate: Vec::new(),
                },
            ),
            (
                "P2".to_string(),
                ResponseTarget {
                    acknowledge: Duration::from_secs(1800),
                    restore: Duration::from_secs(8 * 3600),
                    escalate: Vec::new(),
                },
            ),
        ]),
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
        metrics: Default::default(),
        status_page: StatusPage::default(),
        inbound: Default::default(),
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

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// An incident with the given timestamps; resolved exactly when `resolved` is set.
#[allow(clippy::too_many_arguments)]
fn incident(
    id: &str,
    service: &str,
    severity: &str,
    impact: &str,
    opened: &str,
    acked: Option<&str>,
    restored: Option<&str>,
    resolved: Option<&str>,
) -> Incident {
    Incident {
        id: id.into(),
        dedup_key: format!("sentinel/{service}/{id}"),
        service: service.into(),
        severity: severity.into(),
        title: format!("{service} is failing"),
        reason: "check `login` failed 3 times in a row".into(),
        state: if resolved.is_some() {
            State::Resolved
        } else {
            State::Open
        },
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(impact),
        opened_at: ts(opened),
        acknowledged_at: acked.map(ts),
        acknowledged_by: acked.map(|_| "alice".into()),
        ack_note: None,
        restored_at: restored.map(ts),
        resolved_at: resolved.map(ts),
        resolved_by: resolved.map(|_| ResolvedBy::Auto),
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: 1,
        updates: Vec::new(),
    }
}

/// Incidents with known timestamps (now = 2026-11-23T10:30Z, 30d window).
/// identity, P1 (targets: ack 10m, restore 2h):
///   a: MTTD 60s, MTTA 300s (met), MTTR 3600s (met)
///   b: MTTD 180s, MTTA 1200s (missed), MTTR 5400s (met)
///   c: MTTD 60s, open for 9 min: neither target has passed, so it counts nowhere
/// identity, P2 (targets: ack 30m, restore 8h):
///   d: MTTD 120s, never acknowledged (missed), resolved by hand: MTTR 3600s (met)
///   f: opened before the window and still open: "open now" only
///   e: P1, opened and resolved before the window: nowhere
/// intranet, P3 (no target): g, MTTD 30s, MTTA 300s, open
fn incidents() -> Vec<Incident> {
    vec![
        incident(
            "a",
            "identity",
            "P1",
            "2026-11-20T08:00:00Z",
            "2026-11-20T08:01:00Z",
            Some("2026-11-20T08:06:00Z"),
            Some("2026-11-20T09:00:00Z"),
            Some("2026-11-20T09:02:00Z"),
        ),
        incident(
            "b",
            "identity",
            "P1",
            "2026-11-21T12:00:00Z",
            "2026-11-21T12:03:00Z",
            Some("2026-11-21T12:23:00Z"),
            Some("2026-11-21T13:30:00Z"),
            Some("2026-11-21T13:31:00Z"),
        ),
        incident(
            "c",
            "identity",
            "P1",
            "2026-11-23T10:20:00Z",
            "2026-11-23T10:21:00Z",
            None,
            None,
            None,
        ),
        incident(
            "d",
            "identity",
            "P2",
            "2026-11-22T00:00:00Z",
            "2026-11-22T00:02:00Z",
            None,
            Some("2026-11-22T01:00:00Z"),
            Some("2026-11-22T01:00:00Z"),
        ),
        incident(
            "e",
            "identity",
            "P1",
            "2026-10-01T00:00:00Z",
            "2026-10-01T00:05:00Z",
            Some("2026-10-01T00:06:00Z"),
            Some("2026-10-01T01:00:00Z"),
            Some("2026-10-01T01:00:00Z"),
        ),
        incident(
            "f",
            "identity",
            "P2",
            "2026-10-10T00:00:00Z",
            "2026-10-10T00:01:00Z",
            None,
            None,
            None,
        ),
        incident(
            "g",
            "intranet",
            "P3",
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:00:30Z",
            Some("2026-11-23T09:05:30Z"),
            None,
            None,
        ),
    ]
}

/// 1000 valid identity runs, 3 bad: 500 (3 bad) of `login` 10 minutes ago and
/// 500 good `dns` runs two days ago; runs older than 30d, intranet runs, the
/// [`incidents`], and one incident whose body this version cannot read.
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
    // Written as the daemon writes them: with the cumulative entries each
    // incident has made by `now` (the same code decides them).
    let targets = config(&path).response_targets;
    let mut totals = Totals::default();
    for inc in incidents() {
        store
            .write_incident(IncidentSave {
                id: inc.id.clone(),
                service: inc.service.clone(),
                state: inc.state.as_str().into(),
                opened_at: inc.opened_at.as_second(),
                body_json: inc.to_json().unwrap(),
                events: vec![],
                entries: totals.account(&inc, &targets, now()),
            })
            .await
            .unwrap();
    }
    store
        .save_incident(
            "inc-garbled".into(),
            "identity".into(),
            "open".into(),
            ts("2026-11-23T10:21:00Z").as_second(),
            "{}".into(),
            vec![OutboxInsert {
                event_id: "e1".into(),
                notifier: "tickets".into(),
                incident_id: "inc-garbled".into(),
                payload: "{}".into(),
                created_at: 0,
            }],
        )
        .await
        .unwrap();
    store.close().await.unwrap();
    path
}

/// The identity incidents section for the 30d window (see [`incidents`]).
/// Quantiles are HdrHistogram values at 3 significant figures, as on
/// `/metrics`: exact below 2048 s, the top of a 2 s (3600 → 3601) or 4 s
/// (5400 → 5403) bucket above.
fn identity_incidents() -> serde_json::Value {
    serde_json::json!({
        "opened_in_window": 4,
        "open": 2,
        "by_severity": [
            {
                "severity": "P1", "opened": 3, "open": 1,
                "mttd": { "count": 3, "mean_seconds": 100.0, "p50_seconds": 60.0, "p90_seconds": 180.0 },
                "mtta": { "count": 2, "mean_seconds": 750.0, "p50_seconds": 300.0, "p90_seconds": 1200.0 },
                "mttr": { "count": 2, "mean_seconds": 4500.0, "p50_seconds": 3601.0, "p90_seconds": 5403.0 },
                "acknowledge": { "target_seconds": 600.0, "met": 1, "missed": 1, "attainment": 0.5 },
                "restore": { "target_seconds": 7200.0, "met": 2, "missed": 0, "attainment": 1.0 }
            },
            {
                "severity": "P2", "opened": 1, "open": 1,
                "mttd": { "count": 1, "mean_seconds": 120.0, "p50_seconds": 120.0, "p90_seconds": 120.0 },
                "mtta": { "count": 0, "mean_seconds": null, "p50_seconds": null, "p90_seconds": null },
                "mttr": { "count": 1, "mean_seconds": 3600.0, "p50_seconds": 3601.0, "p90_seconds": 3601.0 },
                "acknowledge": { "target_seconds": 1800.0, "met": 0, "missed": 1, "attainment": 0.0 },
                "restore": { "target_seconds": 28800.0, "met": 1, "missed": 0, "attainment": 1.0 }
            }
        ],
        // Every incident, also `e` and `f` from before the window: P1 is
        // a, b, c, e (c's targets have not passed); P2 is d, f (f missed
        // both targets while still open).
        "cumulative": {
            "opened": 6,
            "by_severity": [
                {
                    "severity": "P1", "opened": 4,
                    "mttd": { "count": 4, "sum_seconds": 600.0, "mean_seconds": 150.0 },
                    "mtta": { "count": 3, "sum_seconds": 1560.0, "mean_seconds": 520.0 },
                    "mttr": { "count": 3, "sum_seconds": 12600.0, "mean_seconds": 4200.0 },
                    "acknowledge": { "met": 2, "missed": 1, "attainment": 0.666666667 },
                    "restore": { "met": 3, "missed": 0, "attainment": 1.0 },
                    "escalated": 0
                },
                {
                    "severity": "P2", "opened": 2,
                    "mttd": { "count": 2, "sum_seconds": 180.0, "mean_seconds": 90.0 },
                    "mtta": { "count": 0, "sum_seconds": 0.0, "mean_seconds": null },
                    "mttr": { "count": 1, "sum_seconds": 3600.0, "mean_seconds": 3600.0 },
                    "acknowledge": { "met": 0, "missed": 2, "attainment": 0.0 },
                    "restore": { "met": 1, "missed": 1, "attainment": 0.5 },
                    "escalated": 0
                }
            ]
        }
    })
}

/// Rounded as the report rounds (to 1e-9), so figures can be written as formulas.
fn r9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// `(bad / max(valid, expected)) / (1 − objective)`.
fn burn(bad: f64, valid: f64, expected: f64, objective: f64) -> f64 {
    (bad / valid.max(expected)) / (1.0 - objective)
}

/// Expected identity runs at [`now`] (10:30): two checks every 30 s, 4 a
/// minute, over each window's span — from its first bucket's start to now.
const EXP_5M: f64 = 16.0; // 10:26–10:30
const EXP_30M: f64 = 116.0; // 10:01–, 29 min
const EXP_1H: f64 = 236.0;
const EXP_2H: f64 = 476.0;
const EXP_6H: f64 = 1436.0; // 359 min
const EXP_1D: f64 = 5640.0; // 11:00 yesterday–, 23 h 30 min
const EXP_3D: f64 = 17_160.0; // 71 h 30 min
const EXP_30D: f64 = 172_680.0; // 719 h 30 min

#[tokio::test]
async fn json_report_has_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let out = report::run(&config(&path), &path, None, true, now()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b = |bad, valid, expected| burn(bad, valid, expected, 0.999);
    let remaining = 1.0 - b(3.0, 1000.0, EXP_30D);
    assert_eq!(r9(remaining), 0.982626824);
    assert_eq!(r9(b(3.0, 500.0, EXP_30M)), 6.0);
    let expected = serde_json::json!({
        "service": "identity",
        "window": "30d",
        "window_seconds": 2592000.0,
        // 3 bad runs against the whole 30d window's allowance of 172.68,
        // not against the 1000 runs stored (which would be −2.0).
        "availability": {
            "objective": 0.999,
            "sli": 0.997,
            "coverage": r9(1000.0 / EXP_30D),
            "expected_runs": EXP_30D,
            "error_budget_remaining_ratio": r9(remaining),
            "error_budget_remaining_seconds": r9(remaining * (1.0 - 0.999) * 2_592_000.0),
            "error_budget_remaining_minutes": r9(remaining * (1.0 - 0.999) * 43_200.0),
            // Where more runs were stored than the schedule produces (500 in
            // one minute), the runs seen are the denominator.
            "burn_rates": [
                { "window": "5m", "burn_rate": 0.0, "sli": null, "coverage": 0.0, "valid": 0, "expected_runs": EXP_5M },
                { "window": "30m", "burn_rate": r9(b(3.0, 500.0, EXP_30M)), "sli": 0.994, "coverage": 1.0, "valid": 500, "expected_runs": EXP_30M },
                { "window": "1h", "burn_rate": r9(b(3.0, 500.0, EXP_1H)), "sli": 0.994, "coverage": 1.0, "valid": 500, "expected_runs": EXP_1H },
                { "window": "2h", "burn_rate": r9(b(3.0, 500.0, EXP_2H)), "sli": 0.994, "coverage": 1.0, "valid": 500, "expected_runs": EXP_2H },
                { "window": "6h", "burn_rate": r9(b(3.0, 500.0, EXP_6H)), "sli": 0.994, "coverage": r9(500.0 / EXP_6H), "valid": 500, "expected_runs": EXP_6H },
                { "window": "1d", "burn_rate": r9(b(3.0, 500.0, EXP_1D)), "sli": 0.994, "coverage": r9(500.0 / EXP_1D), "valid": 500, "expected_runs": EXP_1D },
                { "window": "3d", "burn_rate": r9(b(3.0, 1000.0, EXP_3D)), "sli": 0.997, "coverage": r9(1000.0 / EXP_3D), "valid": 1000, "expected_runs": EXP_3D }
            ]
        },
        "latency": null,
        "runs": { "valid": 1000, "good": 997, "bad": 3 },
        "checks": [
            { "check": "login", "in_config": true, "runs": { "valid": 500, "good": 497, "bad": 3 } },
            { "check": "dns", "in_config": true, "runs": { "valid": 500, "good": 500, "bad": 0 } }
        ],
        "incidents": identity_incidents()
    });
    assert_eq!(doc["services"][0], expected);
    assert_eq!(doc["generated_at"], "2026-11-23T10:30:00Z");
    assert_eq!(doc["unreadable_incidents"], 1);
    let intranet = &doc["services"][1];
    // A severity without a response target: MTTx, but no attainment.
    assert_eq!(
        intranet["incidents"],
        serde_json::json!({
            "opened_in_window": 1,
            "open": 1,
            "by_severity": [{
                "severity": "P3", "opened": 1, "open": 1,
                "mttd": { "count": 1, "mean_seconds": 30.0, "p50_seconds": 30.0, "p90_seconds": 30.0 },
                "mtta": { "count": 1, "mean_seconds": 300.0, "p50_seconds": 300.0, "p90_seconds": 300.0 },
                "mttr": { "count": 0, "mean_seconds": null, "p50_seconds": null, "p90_seconds": null },
                "acknowledge": null,
                "restore": null
            }],
            // No target for P3: nothing met or missed.
            "cumulative": {
                "opened": 1,
                "by_severity": [{
                    "severity": "P3", "opened": 1,
                    "mttd": { "count": 1, "sum_seconds": 30.0, "mean_seconds": 30.0 },
                    "mtta": { "count": 1, "sum_seconds": 300.0, "mean_seconds": 300.0 },
                    "mttr": { "count": 0, "sum_seconds": 0.0, "mean_seconds": null },
                    "acknowledge": { "met": 0, "missed": 0, "attainment": null },
                    "restore": { "met": 0, "missed": 0, "attainment": null },
                    "escalated": 0
                }]
            }
        })
    );
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
  availability  objective 99.900%  SLI 99.700% (coverage 0.6%)  budget left 0.983 (42.4 min)
  burn rate     5m 0.00  30m 6.00  1h 6.00  2h 6.00  6h 2.09  1d 0.53  3d 0.17
  coverage      5m 0.0%  30m 100.0%  1h 100.0%  2h 100.0%  6h 34.8%  1d 8.9%  3d 5.8%
  runs          valid 1000  good 997  bad 3
    login         valid 500  good 497  bad 3
    dns           valid 500  good 500  bad 0
  incidents     opened in window 4  open now 2
    P1            opened 3  open 1
      MTTD         n 3  mean 1m40s  p50 1m00s  p90 3m00s
      MTTA         n 2  mean 12m30s  p50 5m00s  p90 20m00s
      MTTR         n 2  mean 1h15m00s  p50 1h00m01s  p90 1h30m03s
      acknowledge  target 10m00s  met 1  missed 1  attainment 50.000%
      restore      target 2h00m00s  met 2  missed 0  attainment 100.000%
    P2            opened 1  open 1
      MTTD         n 1  mean 2m00s  p50 2m00s  p90 2m00s
      MTTA         n 0  mean n/a  p50 n/a  p90 n/a
      MTTR         n 1  mean 1h00m00s  p50 1h00m01s  p90 1h00m01s
      acknowledge  target 30m00s  met 0  missed 1  attainment 0.000%
      restore      target 8h00m00s  met 1  missed 0  attainment 100.000%
  all time      opened 6  (cumulative: the /metrics _total, _sum and _count)
    P1            opened 4
      MTTD         n 4  mean 2m30s
      MTTA         n 3  mean 8m40s
      MTTR         n 3  mean 1h10m00s
      acknowledge  met 2  missed 1  attainment 66.667%
      restore      met 3  missed 0  attainment 100.000%
      escalated    0
    P2            opened 2
      MTTD         n 2  mean 1m30s
      MTTA         n 0  mean n/a
      MTTR         n 1  mean 1h00m00s
      acknowledge  met 0  missed 2  attainment 0.000%
      restore      met 1  missed 1  attainment 50.000%
      escalated    0

intranet (window 30d)
  no SLO configured
  runs          valid 10  good 9  bad 1
    home          valid 10  good 9  bad 1
  incidents     opened in window 1  open now 1
    P3            opened 1  open 1
      MTTD         n 1  mean 30s  p50 30s  p90 30s
      MTTA         n 1  mean 5m00s  p50 5m00s  p90 5m00s
      MTTR         n 0  mean n/a  p50 n/a  p90 n/a
      acknowledge  no target
      restore      no target
  all time      opened 1  (cumulative: the /metrics _total, _sum and _count)
    P3            opened 1
      MTTD         n 1  mean 30s
      MTTA         n 1  mean 5m00s
      MTTR         n 0  mean n/a
      acknowledge  met 0  missed 0  attainment n/a
      restore      met 0  missed 0  attainment n/a
      escalated    0

warning: 1 stored incident(s) could not be read and are left out
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
    let left = |bad, valid, expected| 1.0 - burn(bad, valid, expected, 0.999);
    // Only login's 500 runs (3 bad) are within a day, whose 23 h 30 min of
    // buckets expect 5 640 runs.
    let d1 = left(3.0, 500.0, EXP_1D);
    check("1d", 0.994, r9(d1), r9(d1 * 0.001 * 86_400.0));
    let d3 = left(3.0, 1000.0, EXP_3D);
    check("3d", 0.997, r9(d3), r9(d3 * 0.001 * 259_200.0));
    // November 2026 has 30 days: the month's allowance is 0.1% of all its
    // 172 800 runs, the days still to come included.
    let month = left(3.0, 1000.0, 172_800.0);
    check("month", 0.997, r9(month), r9(month * 0.001 * 2_592_000.0));
}

/// `--window` narrows the incidents section too; "open now" does not shrink.
#[tokio::test]
async fn window_override_narrows_the_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path()).await;
    let cfg = config(&path);
    let incidents = |window: &str| {
        let w = report::parse_window(window).unwrap();
        let out = report::run(&cfg, &path, Some(w), true, now()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["services"][0]["incidents"].clone()
    };
    // Since 2026-11-22T10:30Z only `c` opened; `f` is still open.
    let day = incidents("1d");
    assert_eq!(day["opened_in_window"], 1);
    assert_eq!(day["open"], 2);
    let sev = &day["by_severity"];
    assert_eq!(
        (&sev[0]["severity"], &sev[0]["opened"], &sev[0]["open"]),
        (&"P1".into(), &1.into(), &1.into())
    );
    assert_eq!(sev[0]["mttd"]["mean_seconds"], 60.0);
    // `c` is 9 minutes old: its 10-minute ack target has not passed yet.
    assert_eq!(
        sev[0]["acknowledge"],
        serde_json::json!({ "target_seconds": 600.0, "met": 0, "missed": 0, "attainment": null })
    );
    assert_eq!(
        (&sev[1]["severity"], &sev[1]["opened"], &sev[1]["open"]),
        (&"P2".into(), &0.into(), &1.into())
    );
    assert_eq!(sev[1]["mttd"]["count"], 0);
    // November started after `e` and `f` opened: the same as the 30d window.
    assert_eq!(incidents("month"), identity_incidents());
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
    for w in [
        "",
        "0s",
        "soon",
        "5",
        "59m",
        "401d",
        "100000000w",
        "18446744073709551615ms",
    ] {
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
    // 3 slow runs against 1% of the 172 680 runs the 30d window expects.
    let remaining = 1.0 - burn(3.0, 100.0, EXP_30D, 0.99);
    assert_eq!(l["error_budget_remaining_ratio"], r9(remaining));
    assert_eq!(
        l["error_budget_remaining_seconds"],
        r9(remaining * 0.01 * 2_592_000.0)
    );
    assert_eq!(
        l["error_budget_remaining_minutes"],
        r9(remaining * 0.01 * 43_200.0)
    );
    // 100 runs where the schedule expects 116: the expected runs divide.
    assert_eq!(
        l["burn_rates"][1],
        serde_json::json!({
            "window": "30m", "burn_rate": r9(burn(3.0, 100.0, EXP_30M, 0.99)), "sli": 0.97,
            "coverage": r9(100.0 / EXP_30M), "valid": 100, "expected_runs": EXP_30M
        })
    );
    assert_eq!(l["coverage"], s["availability"]["coverage"]);

    let text = report::run(&cfg, &path, None, false, now()).unwrap();
    assert!(
        text.contains(
            "  latency       objective 99.000%  SLI 97.000% (coverage 0.1%)  budget left 0.998 (431.2 min)\n"
        ),
        "{text}"
    );
}
