//! The config as users live it, through the real binary: `validate` and its
//! warnings and `--strict`, `run` refusing a check without its secret header,
//! a reload with an out-of-range value refused while the old config keeps
//! running, and `headers_env` reaching a real server without the value ever
//! showing in logs, the API or metrics.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;

/// Runs `sentinel validate` with exactly `envs` as the `_env` variables.
fn validate(config: &std::path::Path, strict: bool, envs: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("validate").arg("-c").arg(config);
    if strict {
        cmd.arg("--strict");
    }
    for v in ["SENTINEL_API_TOKEN", "IDP_TOKEN", "HOOK_SECRET"] {
        cmd.env_remove(v);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

fn write(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("sentinel.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

const WARNED: &str = r#"server: { api_token_env: SENTINEL_API_TOKEN }
response_targets: { P2: { acknowledge: 30m, restore: 8h } }
notifiers:
  - name: tickets
    type: webhook
    url: http://127.0.0.1:8080/hooks
    secret_env: HOOK_SECRET
services:
  - name: a
    checks:
      - name: x
        tcp: { host: 127.0.0.1, port: 1 }
"#;

#[test]
fn validate_prints_warnings_and_strict_fails_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), WARNED);
    let f = cfg.display().to_string();
    let (code, text) = validate(&cfg, false, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.replace(&f, "F"),
        "F: ok (1 services, 1 checks, 1 notifiers, 2 warning(s))\n\
         warning: F:1:26: server.api_token_env: environment variable SENTINEL_API_TOKEN is not set: the write API (acknowledge, resolve, reload over HTTP) is disabled and answers 403 — export SENTINEL_API_TOKEN in the daemon's environment\n\
         warning: F:7:17: notifiers[0].secret_env: environment variable HOOK_SECRET is not set: deliveries to notifier `tickets` fail until it is set — export HOOK_SECRET in the daemon's environment\n"
    );
    let (code, text) = validate(&cfg, true, &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.ends_with("2 warning(s), and --strict makes warnings fail validation\n"),
        "{text}"
    );
    // Everything set: no warning, so --strict passes.
    let env = [("SENTINEL_API_TOKEN", "t"), ("HOOK_SECRET", "whsec_abc")];
    let (code, text) = validate(&cfg, true, &env);
    assert_eq!(
        (code, text.replace(&f, "F")),
        (0, "F: ok (1 services, 1 checks, 1 notifiers)\n".to_string())
    );
    // A real problem is exit 2 with or without --strict.
    let bad = write(dir.path(), &WARNED.replace("port: 1 }", "port: 0 }"));
    let (code, text) = validate(&bad, false, &env);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("tcp.port: port 0 is out of range 1..=65535"),
        "{text}"
    );
}

#[test]
fn run_refuses_a_headers_env_variable_that_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        &format!(
            "storage: {{ path: {} }}\nservices:\n  - name: a\n    checks:\n      - name: x\n        http:\n          url: http://127.0.0.1:1/\n          headers_env: {{ Authorization: IDP_TOKEN }}\n",
            dir.path().join("s.db").display()
        ),
    );
    let (code, text) = validate(&cfg, false, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("warning: "), "{text}");
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&cfg)
        .env_remove("IDP_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(":8:41: services[0].checks[0].http.headers_env.Authorization: environment variable IDP_TOKEN is not set"),
        "{stderr}"
    );
    assert!(!dir.path().join("s.db").exists(), "nothing started");
}

/// A server that records the `Authorization` header of every request.
async fn recording_target() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let app = Router::new().route(
        "/health",
        get(move |headers: HeaderMap| {
            let s = Arc::clone(&s);
            async move {
                let auth = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                s.lock().unwrap().push(auth);
                "ok"
            }
        }),
    );
    let addr = serve(app).await;
    (addr, seen)
}

fn daemon_config(dir: &std::path::Path, target: SocketAddr) -> String {
    format!(
        r#"server:
  listen: 127.0.0.1:0
  api_token_env: E2E_TOKEN
storage:
  path: {db}
response_targets: {{ P2: {{ acknowledge: 30m, restore: 8h }} }}
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
          headers_env: {{ Authorization: IDP_TOKEN }}
    slo: {{ objective: 99.9, window: 30d }}
"#,
        db = dir.join("state.db").display()
    )
}

const SECRET: &str = "Bearer idp-5ecret-value";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_env_reaches_the_server_and_never_shows() {
    let (target, seen) = recording_target().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), &daemon_config(dir.path(), target));
    let d = Daemon::start(
        &cfg,
        &[
            ("E2E_TOKEN", "tok"),
            ("IDP_TOKEN", SECRET),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = reqwest::Client::new();
    let m = wait_for(&client, &d, 10, "good runs", |m| {
        sample(m, "sentinel_check_runs_total", &[r#"result="good""#]).unwrap_or(0.0) >= 2.0
    })
    .await;
    assert!(seen.lock().unwrap().iter().all(|a| a == SECRET));
    assert!(!seen.lock().unwrap().is_empty());
    let api = client
        .get(d.url("/api/v1/services"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status = d.terminate();
    assert!(status.success());
    for (what, text) in [("metrics", m), ("api", api)] {
        assert!(!text.contains("5ecret"), "{what} shows the secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_env_value_is_not_in_debug_logs() {
    let (target, _seen) = recording_target().await;
    let dir = tempfile::tempdir().unwrap();
    // Without response targets: a warning to log at start and at reload.
    let text = daemon_config(dir.path(), target).replace(
        "response_targets: { P2: { acknowledge: 30m, restore: 8h } }\n",
        "",
    );
    let cfg = write(dir.path(), &text);
    // `RUST_LOG=trace` includes hyper/reqwest internals: the header is marked
    // sensitive, so not even they print it.
    let d = Daemon::start(
        &cfg,
        &[
            ("E2E_TOKEN", "tok"),
            ("IDP_TOKEN", SECRET),
            ("RUST_LOG", "trace"),
        ],
    );
    let client = reqwest::Client::new();
    wait_for(&client, &d, 10, "good runs", |m| {
        sample(m, "sentinel_check_runs_total", &[r#"result="good""#]).unwrap_or(0.0) >= 2.0
    })
    .await;
    // A reload logs the config's warnings and diff; still nothing secret.
    let r = client
        .post(d.url("/-/reload"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logs = d.stderr.lock().unwrap().join("\n");
    drop(d);
    assert!(logs.contains("config reloaded"), "{logs}");
    let warned = logs
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && l.contains("severity `P2` (1 service) has no `response_targets` entry")
        })
        .count();
    assert_eq!(warned, 2, "one at start, one at reload: {logs}");
    assert!(!logs.contains("5ecret"), "logs show the secret");
}

/// Issue: a reload with `window: 18446744073709551615ms` answered 200 and then
/// killed the daemon. Now it answers 400 and the old config keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_an_out_of_range_value_is_refused_and_the_old_config_runs_on() {
    let (target, _seen) = recording_target().await;
    let dir = tempfile::tempdir().unwrap();
    let good = daemon_config(dir.path(), target);
    let cfg = write(dir.path(), &good);
    let d = Daemon::start(&cfg, &[("E2E_TOKEN", "tok"), ("IDP_TOKEN", SECRET)]);
    let client = reqwest::Client::new();
    let runs =
        |m: &str| sample(m, "sentinel_check_runs_total", &[r#"result="good""#]).unwrap_or(0.0);
    wait_for(&client, &d, 10, "a good run", |m| runs(m) >= 1.0).await;

    for (bad, error) in [
        (
            good.replace("window: 30d", "window: 18446744073709551615ms"),
            "16:37: services[0].slo.window: window 18446744073709551615ms is out of range 1h..=400d",
        ),
        (
            good.replace(
                "          headers_env:",
                "          max_body_bytes: 9223372036854775807\n          headers_env:",
            ),
            "services[0].checks[0].http.max_body_bytes: max_body_bytes 9223372036854775807 is out of range 1..=67108864",
        ),
    ] {
        std::fs::write(&cfg, &bad).unwrap();
        let r = client
            .post(d.url("/-/reload"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(error), "{body}");
        let m = scrape(&client, &d).await;
        assert_eq!(
            sample(&m, "sentinel_config_last_reload_successful", &[]),
            Some(0.0)
        );
        // Still alive and still probing with the old config.
        let before = runs(&m);
        wait_for(&client, &d, 10, "more runs after the refused reload", |m| {
            runs(m) > before
        })
        .await;
    }
    assert!(d.terminate().success());
}
