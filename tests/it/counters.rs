//! Counters are counters, end to end: the real binary, a real target going
//! down and up, the real SQLite file. Every `_sum`, `_count` and `_total` of
//! the incident families is at least as high after the incident leaves the
//! SLO window, after a clean restart and after `kill -9`; the figures
//! include an incident stored long before (outside every window, written
//! before the totals existed). The process-lifetime counters (runs,
//! deliveries, CPU, ...) restart from zero with the process, as any
//! exporter's do; the test makes every counter family in the scrape say
//! which kind it is, so a new one cannot slip through unclassified.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::SignedDuration;
use sentinel::clock::{Clock, SystemClock};
use sentinel::incident::{Incident, ResolvedBy, State, Trigger};
use sentinel::store::Store;

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;

const TOKEN: &str = "counters-token-9a1e";

/// Families restored from the store at start: they never decrease.
const CUMULATIVE: [&str; 7] = [
    "sentinel_incidents_total",
    "sentinel_incident_acknowledgements_total",
    "sentinel_incident_escalations_total",
    "sentinel_incident_mttd_seconds",
    "sentinel_incident_mtta_seconds",
    "sentinel_incident_mttr_seconds",
    "sentinel_incident_response_total",
];

/// Families counted since the process started (Prometheus handles their
/// reset to zero at a restart).
const PROCESS: &[&str] = &[
    "sentinel_check_runs_total",
    "sentinel_check_local_errors_total",
    "sentinel_check_failures_total",
    "sentinel_check_skipped_total",
    "sentinel_check_duration_seconds",
    "sentinel_scheduler_start_lag_seconds",
    "sentinel_notifier_deliveries_total",
    "sentinel_inbound_hooks_total",
    "sentinel_notifier_reposts_total",
    "sentinel_store_write_errors_total",
    "sentinel_runs_in_maintenance_total",
    "process_cpu_seconds_total",
    "sentinel_check_latency_seconds",
];

fn config(dir: &Path, target: SocketAddr) -> PathBuf {
    // A 1-hour SLO window (the shortest allowed); an incident stored as
    // opened just under an hour ago leaves it during the test.
    let text = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: COUNTERS_TOKEN
storage:
  path: {db}
response_targets:
  P1: {{ acknowledge: 10m, restore: 1h }}
services:
  - name: shop
    checks:
      - name: health
        interval: 100ms
        timeout: 80ms
        http:
          url: http://{target}/health
    slo:
      objective: 99
      window: 1h
    incident:
      open_after: 2
      resolve_after: 2
      severity: P1
      burn_rate_alerts: false
"#,
        db = dir.join("state.db").display()
    );
    let p = dir.join("sentinel.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A P1 incident of `shop` opened `ago` before now: impact, then detected
/// after 120 s, acknowledged 300 s later, restored 1800 s after impact.
fn old_incident(ago: SignedDuration) -> Incident {
    // The daemon runs on the system clock, so the test reads it too.
    let opened = SystemClock.now() - ago;
    let impact = opened - SignedDuration::from_secs(120);
    let restored = impact + SignedDuration::from_secs(1800);
    Incident {
        id: format!("inc-shop-{}-1", opened.as_second()),
        dedup_key: format!("sentinel/shop/inc-shop-{}-1", opened.as_second()),
        service: "shop".into(),
        severity: "P1".into(),
        title: "shop is failing".into(),
        reason: "check `health` failed 2 times in a row".into(),
        state: State::Resolved,
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: impact,
        opened_at: opened,
        acknowledged_at: Some(opened + SignedDuration::from_secs(300)),
        acknowledged_by: Some("alice".into()),
        ack_note: None,
        restored_at: Some(restored),
        resolved_at: Some(restored + SignedDuration::from_secs(10)),
        resolved_by: Some(ResolvedBy::Auto),
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: 3,
        updates: Vec::new(),
    }
}

/// Series → value of every sample, and family → type from `# TYPE`.
fn parse(scrape: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, v) = line.rsplit_once(' ').unwrap();
            samples.insert(series.to_string(), v.parse().unwrap());
        }
    }
    (samples, types)
}

/// The family a counter-like series belongs to (`None` for gauges and
/// quantile samples), looked up in the scrape's `# TYPE` lines.
fn counter_family(series: &str, types: &BTreeMap<String, String>) -> Option<String> {
    let name = series.split('{').next().unwrap();
    if types.get(name).map(String::as_str) == Some("counter") {
        return Some(name.to_string());
    }
    for suffix in ["_sum", "_count", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix)
            && matches!(
                types.get(base).map(String::as_str),
                Some("summary" | "histogram")
            )
        {
            return Some(base.to_string());
        }
    }
    None
}

/// The cumulative incident series of `scrape`: series → value. Fails on a
/// counter family that is neither cumulative nor a process counter.
fn cumulative(scrape: &str) -> BTreeMap<String, f64> {
    let (samples, types) = parse(scrape);
    let mut out = BTreeMap::new();
    for (series, v) in samples {
        let Some(family) = counter_family(&series, &types) else {
            continue;
        };
        if CUMULATIVE.contains(&family.as_str()) {
            out.insert(series, v);
        } else {
            assert!(
                PROCESS.contains(&family.as_str()),
                "counter family {family} is neither cumulative nor a process counter: classify it"
            );
        }
    }
    out
}

fn assert_no_drops(what: &str, before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) {
    for (series, v) in before {
        let w = after
            .get(series)
            .unwrap_or_else(|| panic!("{what}: {series} ({v}) disappeared"));
        assert!(w >= v, "{what}: {series} dropped from {v} to {w}");
    }
}

const P1: [&str; 2] = [r#"service="shop""#, r#"severity="P1""#];

/// The windowed MTTD p99 of `shop`/P1: 120 while the seeded incident near
/// the window's edge is in the window.
fn edge_mttd(m: &str) -> Option<f64> {
    sample(
        m,
        "sentinel_incident_mttd_seconds",
        &[P1[0], P1[1], r#"quantile="0.99""#],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_counters_never_drop_across_the_window_restarts_and_kill_9() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), target);

    // Incidents stored by a sentinel without totals (entered = 0): one long
    // ago (outside every window), one opened 20 s short of the 1h window's
    // edge, which leaves the window while the test runs.
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    for old in [
        old_incident(SignedDuration::from_hours(60 * 24)),
        old_incident(SignedDuration::from_secs(3600 - 20)),
    ] {
        store
            .save_incident(
                old.id.clone(),
                "shop".into(),
                "resolved".into(),
                old.opened_at.as_second(),
                old.to_json().unwrap(),
                vec![],
            )
            .await
            .unwrap();
    }
    store.close().await.unwrap();

    let envs = [("COUNTERS_TOKEN", TOKEN)];
    let client = reqwest::Client::new();
    let d = Daemon::start(&cfg, &envs);
    let first = wait_for(&client, &d, 10, "the stored incidents in the totals", |m| {
        sample(m, "sentinel_incidents_total", &P1) == Some(2.0)
    })
    .await;
    let seeded = [
        ("sentinel_incident_mttd_seconds_sum", 240.0),
        ("sentinel_incident_mtta_seconds_sum", 600.0),
        ("sentinel_incident_mttr_seconds_sum", 3600.0),
    ];
    for (name, v) in seeded {
        assert_eq!(sample(&first, name, &P1), Some(v), "{name}");
    }
    assert_eq!(
        edge_mttd(&first),
        Some(120.0),
        "the incident near the edge is in the window, the 60-day one is not"
    );

    // A live incident: down, acknowledged through the API, up again.
    up.store(false, Ordering::SeqCst);
    wait_for(&client, &d, 10, "a live incident", |m| {
        sample(m, "sentinel_incidents_total", &P1) == Some(3.0)
    })
    .await;
    let list: serde_json::Value = client
        .get(d.url("/api/v1/incidents?state=open"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["incidents"][0]["id"].as_str().unwrap().to_string();
    let ack = client
        .post(d.url(&format!("/api/v1/incidents/{id}/ack")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "bob"}))
        .send()
        .await
        .unwrap();
    assert!(ack.status().is_success(), "ack: {}", ack.status());
    up.store(true, Ordering::SeqCst);
    let resolved = wait_for(&client, &d, 10, "the live incident resolves", |m| {
        sample(m, "sentinel_incident_mttr_seconds_count", &P1) == Some(3.0)
    })
    .await;
    assert_promtool_accepts(&resolved);
    let a = cumulative(&resolved);
    for (name, v) in seeded {
        assert!(a[&format!("{name}{{service=\"shop\",severity=\"P1\"}}")] > v);
    }
    for met in ["true", "false"] {
        for stage in ["acknowledge", "restore"] {
            let series = format!(
                "sentinel_incident_response_total{{service=\"shop\",severity=\"P1\",stage=\"{stage}\",met=\"{met}\"}}"
            );
            assert_eq!(
                a[&series],
                if met == "true" { 3.0 } else { 0.0 },
                "{series}"
            );
        }
    }

    // The incident near the edge leaves the window: the quantiles follow
    // (only the live incident, detected in well under a second, is left),
    // the counters stay.
    let left = wait_for(
        &client,
        &d,
        40,
        "the edge incident to leave the window",
        |m| edge_mttd(m).is_some_and(|v| v < 100.0),
    )
    .await;
    let b = cumulative(&left);
    assert_no_drops("window", &a, &b);

    // A clean restart.
    assert!(d.terminate().success());
    let mut d = Daemon::start(&cfg, &envs);
    let restarted = wait_for(
        &client,
        &d,
        10,
        "a scrape with the incident families",
        |m| sample(m, "sentinel_incidents_total", &P1).is_some(),
    )
    .await;
    assert_promtool_accepts(&restarted);
    let c = cumulative(&restarted);
    assert_no_drops("restart", &b, &c);
    assert_eq!(c, b, "nothing happened between the two scrapes");

    // kill -9 and start again.
    kill9(&mut d);
    drop(d);
    let d = Daemon::start(&cfg, &envs);
    let again = wait_for(&client, &d, 10, "a scrape after kill -9", |m| {
        sample(m, "sentinel_incidents_total", &P1).is_some()
    })
    .await;
    let e = cumulative(&again);
    assert_no_drops("kill -9", &c, &e);
    assert_eq!(e, c);
    drop(d);
}
