//! End-to-end: the real daemon under a descriptor limit too low for its
//! checks, probing a healthy target. Probes that cannot get a socket are
//! local errors: counted, logged at WARN (rate-limited), and never a bad run,
//! an incident or a webhook.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;
use crate::support::webhooks::Receiver;

/// Descriptors the daemon may hold: about 16 are its own (stdio, epoll,
/// the store's three files, the listener, signal pipes), which leaves about
/// 20 for probes, while 100 HTTP checks every 2 s, each held 400 ms by the
/// target, have 20 in flight on average: many find none. Timeouts (1.8 s)
/// stay far above the target's delay so no run is bad for being slow.
const NOFILE: u32 = 36;
const HTTP_CHECKS: usize = 100;
const TCP_CHECKS: usize = 10;

/// A healthy target that takes its time, so probes hold their sockets.
async fn slow_target() -> SocketAddr {
    let app = Router::new().route(
        "/health",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            "ok"
        }),
    );
    serve(app).await
}

fn write_config(dir: &std::path::Path, target: SocketAddr, hook: SocketAddr) -> std::path::PathBuf {
    let mut checks = String::new();
    for i in 0..HTTP_CHECKS {
        checks.push_str(&format!(
            "      - name: http{i}\n        http: {{ url: \"http://{target}/health\", expect: {{ body_contains: ok }} }}\n"
        ));
    }
    for i in 0..TCP_CHECKS {
        checks.push_str(&format!(
            "      - name: tcp{i}\n        tcp: {{ host: 127.0.0.1, port: {} }}\n",
            target.port()
        ));
    }
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
storage:
  path: {db}
defaults:
  interval: 2s
  timeout: 1800ms
notifiers:
  - name: hook
    type: webhook
    url: http://{hook}/hook
services:
  - name: portal
    slo: {{ objective: 99.9, window: 30d }}
    incident: {{ open_after: 1, resolve_after: 1, notify: [hook] }}
    checks:
{checks}"#,
        db = dir.join("state.db").display(),
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_is_a_local_error_not_an_outage() {
    let target = slow_target().await;
    let (webhooks, hook) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), target, hook);
    let nofile = format!("--nofile={NOFILE}:{NOFILE}");
    let d = Daemon::start_wrapped(&["prlimit", &nofile, "--"], &cfg, &[]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Scrapes compete with the probes for descriptors; the server retries
    // its accepts, so a scrape may wait but gets through.
    let m = wait_for(&client, &d, 30, "local errors and good runs", |m| {
        total(m, "sentinel_check_local_errors_total", &[]) >= 20.0
            && total(m, "sentinel_check_runs_total", &[r#"result="good""#]) >= 20.0
    })
    .await;
    // Let the engine evaluate a few times (every 2 s) with those runs in.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m2 = wait_for(&client, &d, 30, "a second scrape", |_| true).await;
    let stderr = d.stderr.lock().unwrap().join("\n");

    for m in [&m, &m2] {
        assert_eq!(
            total(m, "sentinel_check_runs_total", &[r#"result="bad""#]),
            0.0,
            "a local error was counted as a bad run:\n{m}\nstderr:\n{stderr}"
        );
        assert_eq!(total(m, "sentinel_check_failures_total", &[]), 0.0);
        assert_eq!(
            total(m, "sentinel_check_up", &[]),
            m.lines()
                .filter(|l| l.starts_with("sentinel_check_up{"))
                .count() as f64,
            "every check that ran is up"
        );
        assert_eq!(total(m, "sentinel_incidents_open", &[]), 0.0);
    }
    assert!(total(&m2, "sentinel_check_local_errors_total", &[]) >= 20.0);
    println!(
        "under RLIMIT_NOFILE={NOFILE}: {} good runs, {} local errors, 0 bad runs",
        total(&m2, "sentinel_check_runs_total", &[r#"result="good""#]),
        total(&m2, "sentinel_check_local_errors_total", &[])
    );

    let incidents: serde_json::Value = client
        .get(d.url("/api/v1/incidents?state=all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(incidents["incidents"], serde_json::json!([]), "{stderr}");
    let services: serde_json::Value = client
        .get(d.url("/api/v1/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let svc = &services["services"][0];
    assert_eq!(svc["status"], "up", "{svc}");
    let availability = &svc["slo"]["availability"]["sli"];
    assert_eq!(availability, &serde_json::json!(1.0), "{svc}");
    let local: u64 = svc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["local_errors"].as_u64().unwrap())
        .sum();
    assert!(local >= 20, "{svc}");

    assert_eq!(
        webhooks.count(),
        0,
        "a webhook was sent: {:?}",
        webhooks.hits()
    );
    assert!(!stderr.contains("incident changed"), "{stderr}");
    // Logged at WARN, at most once per check within a minute.
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("local error on this host"))
        .collect();
    assert!(!warned.is_empty(), "{stderr}");
    let mut checks: Vec<&str> = warned
        .iter()
        .filter_map(|l| l.split("check=").nth(1)?.split_whitespace().next())
        .collect();
    let lines = checks.len();
    checks.sort_unstable();
    checks.dedup();
    assert_eq!(
        lines,
        checks.len(),
        "a check's local errors were logged more than once a minute:\n{warned:#?}"
    );
    assert!(stderr.contains("descriptor budget"), "{stderr}");

    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
