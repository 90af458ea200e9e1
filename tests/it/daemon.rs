//! End-to-end: the real `sentinel` binary on a config in a temp dir, probing a
//! real HTTP target on 127.0.0.1 that goes down and comes back; `/metrics`
//! read over HTTP and checked with the real `promtool`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;
use crate::support::{eventually, secs};

fn write_config(dir: &std::path::Path, target: SocketAddr) -> std::path::PathBuf {
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: E2E_TOKEN
storage:
  path: {db}
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
          expect:
            status: [200]
            body_contains: ok
      - name: port
        interval: 200ms
        timeout: 150ms
        tcp: {{ host: 127.0.0.1, port: {port} }}
"#,
        db = dir.join("state.db").display(),
        port = target.port(),
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_goes_down_and_up_and_metrics_follow() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), target);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::new();

    // The listen address is logged before checks are scheduled, so readiness
    // may take a moment to flip.
    eventually(
        secs(5),
        "/readyz to answer 200",
        || format!("{:?}", d.log()),
        || async {
            let ready = client.get(d.url("/readyz")).send().await.unwrap().status();
            (ready == 200).then_some(())
        },
    )
    .await;
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let good = r#"result="good""#;
    wait_for(&client, &d, 10, "two good runs", |m| {
        sample(m, "sentinel_check_runs_total", &[r#"check="health""#, good]).unwrap_or(0.0) >= 2.0
            && sample(m, "sentinel_check_up", &[r#"check="health""#]) == Some(1.0)
    })
    .await;

    up.store(false, Ordering::SeqCst);
    let m = wait_for(&client, &d, 10, "health down with reason status", |m| {
        sample(m, "sentinel_check_up", &[r#"check="health""#]) == Some(0.0)
            && sample(
                m,
                "sentinel_check_failures_total",
                &[r#"check="health""#, r#"reason="status""#],
            )
            .unwrap_or(0.0)
                >= 1.0
    })
    .await;
    // The TCP port stays open while HTTP answers 503: only the HTTP check is down.
    assert_eq!(
        sample(&m, "sentinel_check_up", &[r#"check="port""#]),
        Some(1.0)
    );

    up.store(true, Ordering::SeqCst);
    let m = wait_for(&client, &d, 10, "health back up", |m| {
        sample(m, "sentinel_check_up", &[r#"check="health""#]) == Some(1.0)
    })
    .await;
    let bad = sample(
        &m,
        "sentinel_check_runs_total",
        &[r#"check="health""#, r#"result="bad""#],
    )
    .unwrap();
    assert!(bad >= 1.0);
    assert_eq!(sample(&m, "sentinel_build_info", &[]), Some(1.0));
    assert!(
        sample(
            &m,
            "sentinel_check_duration_seconds_count",
            &[r#"check="health""#]
        )
        .unwrap()
            >= 3.0
    );

    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_a_live_scrape() {
    let up = Arc::new(AtomicBool::new(false));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), target);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::new();
    // Wait for failures so the failure and latency families have samples too.
    let m = wait_for(&client, &d, 10, "a failure", |m| {
        sample(m, "sentinel_check_failures_total", &[r#"check="health""#]).unwrap_or(0.0) >= 1.0
    })
    .await;
    assert_promtool_accepts(&m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_endpoint_requires_a_token_and_refuses_a_bad_file() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), target);
    let d = Daemon::start(&cfg, &[("E2E_TOKEN", "s3cret-token")]);
    let client = reqwest::Client::new();

    let r = client.post(d.url("/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Authorization"));
    let r = client
        .post(d.url("/-/reload"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A broken file is refused with its errors; the daemon keeps running.
    let good_text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good_text.replace("interval: 200ms", "intervl: 200ms")).unwrap();
    let r = client
        .post(d.url("/-/reload"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("intervl"),
        "{body}"
    );
    let m = scrape(&client, &d).await;
    assert_eq!(
        sample(&m, "sentinel_config_last_reload_successful", &[]),
        Some(0.0)
    );

    // A good file with one more check: the old checks keep their counters.
    let before = wait_for(&client, &d, 10, "runs", |m| {
        sample(
            m,
            "sentinel_check_runs_total",
            &[r#"check="health""#, r#"result="good""#],
        )
        .unwrap_or(0.0)
            >= 3.0
    })
    .await;
    let runs_before = sample(
        &before,
        "sentinel_check_runs_total",
        &[r#"check="health""#, r#"result="good""#],
    )
    .unwrap();
    let extra = format!(
        "{good_text}      - name: health2\n        interval: 200ms\n        timeout: 150ms\n        http: {{ url: \"http://{target}/health\" }}\n"
    );
    std::fs::write(&cfg, extra).unwrap();
    let r = client
        .post(d.url("/-/reload"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = wait_for(&client, &d, 10, "the new check runs", |m| {
        sample(
            m,
            "sentinel_check_runs_total",
            &[r#"check="health2""#, r#"result="good""#],
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    let runs_after = sample(
        &m,
        "sentinel_check_runs_total",
        &[r#"check="health""#, r#"result="good""#],
    )
    .unwrap();
    assert!(
        runs_after >= runs_before,
        "counters of an unchanged check were reset: {runs_before} -> {runs_after}"
    );
    assert_eq!(
        sample(&m, "sentinel_config_last_reload_successful", &[]),
        Some(1.0)
    );

    // The token never shows up in the logs.
    let logs = d.stderr.lock().unwrap().join("\n");
    assert!(!logs.contains("s3cret-token"));
}

#[test]
fn a_bad_config_exits_2_and_binds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "server:\n  listen: 127.0.0.1:0\nservices:\n  - name: a\n    checks:\n      - name: x\n        intervl: 5s\n        tcp: { host: 127.0.0.1, port: 1 }\n").unwrap();
    for verb in ["run", "validate"] {
        let out = Command::new(BIN)
            .args([verb, "-c"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("intervl") && err.contains(":7:"),
            "{verb}: {err}"
        );
        assert!(!err.contains("listening"), "{verb} must not bind: {err}");
    }
}

#[test]
fn the_shipped_config_validates() {
    let out = Command::new(BIN)
        .args(["validate", "-c", "config/sentinel.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_arguments_exit_2() {
    let out = Command::new(BIN)
        .args(["run", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A missing config file is a bad argument too.
    for verb in ["validate", "run"] {
        let out = Command::new(BIN)
            .args([verb, "-c", "/nonexistent/sentinel.yaml"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), target);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::new();
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}      - name: via-hup\n        interval: 200ms\n        timeout: 150ms\n        tcp: {{ host: 127.0.0.1, port: {} }}\n", target.port()),
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    let m = wait_for(&client, &d, 10, "the check added by SIGHUP runs", |m| {
        sample(
            m,
            "sentinel_check_runs_total",
            &[r#"check="via-hup""#, r#"result="good""#],
        )
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert_eq!(
        sample(&m, "sentinel_config_last_reload_successful", &[]),
        Some(1.0)
    );
}
