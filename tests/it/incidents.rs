//! End-to-end incidents: a real daemon, a real target going down, a real
//! webhook receiver on 127.0.0.1 whose signatures are verified by the
//! harness's own Standard Webhooks implementation (`support::webhooks`), the API for
//! ack/resolve, and delivery that survives a failing receiver and SIGKILL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;
use crate::support::webhooks::{Hit, Receiver};
use crate::support::{eventually, secs};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "e2e-token-4f1d9c";

fn config(dir: &std::path::Path, target: SocketAddr, receiver: SocketAddr) -> std::path::PathBuf {
    let text = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: E2E_TOKEN
storage:
  path: {db}
notifiers:
  - name: tickets
    type: webhook
    url: http://{receiver}/hooks
    secret_env: TICKETS_SECRET
response_targets:
  P1: {{ acknowledge: 10m, restore: 2h }}
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
    incident:
      open_after: 2
      resolve_after: 2
      severity: P1
      notify: [tickets]
"#,
        db = dir.join("state.db").display()
    );
    let p = dir.join("sentinel.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The first `n` events the receiver accepted (2xx), with their JSON.
async fn events(r: &Receiver, n: usize, secs: u64) -> Vec<(Hit, Value)> {
    let got = eventually(
        Duration::from_secs(secs),
        &format!("{n} events"),
        || {
            format!(
                "got {:?}",
                r.delivered().iter().map(Hit::body_text).collect::<Vec<_>>()
            )
        },
        || async {
            let got = r.delivered();
            (got.len() >= n).then_some(got)
        },
    )
    .await;
    got.into_iter()
        .map(|g| {
            let v = g.json();
            (g, v)
        })
        .collect()
}

fn envs() -> [(&'static str, &'static str); 2] {
    [("E2E_TOKEN", TOKEN), ("TICKETS_SECRET", SECRET)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_opens_ack_and_recovery_resolve_with_signed_webhooks() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let (recv, raddr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&config(dir.path(), target, raddr), &envs());
    let http = reqwest::Client::new();

    // Healthy first, then the outage.
    wait_for(&http, &d, 10, "a good run", |m| {
        sample(m, "sentinel_check_up", &[r#"check="health""#]) == Some(1.0)
    })
    .await;
    up.store(false, Ordering::SeqCst);
    let ev = events(&recv, 1, 10).await;
    let (raw, opened) = &ev[0];
    assert!(raw.verifies(SECRET), "signature does not verify: {raw:?}");
    assert!(
        !raw.verifies("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "a wrong key must not verify"
    );
    assert_eq!(opened["type"], "incident.opened");
    assert_eq!(opened["id"], raw.id.as_str());
    assert_eq!(opened["incident"]["service"], "portal");
    assert_eq!(opened["incident"]["severity"], "P1");
    let ts: i64 = raw.timestamp.parse().unwrap();
    // The daemon runs on the real clock, so the test compares with it.
    let now = sentinel::clock::Clock::now(&sentinel::clock::SystemClock);
    assert!(
        (now.as_second() - ts).abs() < 60,
        "timestamp is unix seconds, now-ish"
    );
    let id = opened["incident"]["id"].as_str().unwrap().to_string();
    assert!(
        opened["incident"]["links"]["ack"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/incidents/{id}/ack"))
    );

    // The API lists it as open (snapshots are published within a second).
    eventually(
        secs(5),
        "the incident listed as open",
        String::new,
        || async {
            let list: Value = http
                .get(d.url("/api/v1/incidents?state=open"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (list["incidents"][0]["id"] == id.as_str()).then_some(())
        },
    )
    .await;
    let svc: Value = http
        .get(d.url("/api/v1/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(svc["services"][0]["status"], "incident");
    assert_eq!(svc["services"][0]["open_incident"], id.as_str());

    // Auth: none, wrong, right; a second ack is idempotent.
    let ack = d.url(&format!("/api/v1/incidents/{id}/ack"));
    let r = http.post(&ack).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.post(&ack).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body = serde_json::json!({"by": "alice", "note": "looking"});
    let r = http
        .post(&ack)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["changed"], true);
    assert_eq!(a["incident"]["acknowledged_by"], "alice");
    let r = http
        .post(&ack)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["changed"], false);
    assert_eq!(
        again["incident"]["acknowledged_at"],
        a["incident"]["acknowledged_at"]
    );

    // Bad requests get JSON errors with the right status.
    let r = http
        .post(&ack)
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let r = http
        .post(&ack)
        .bearer_auth(TOKEN)
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = http
        .post(d.url("/api/v1/incidents/inc-nope/ack"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(d.url("/api/v1/incidents?state=bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Recovery resolves it.
    up.store(true, Ordering::SeqCst);
    let ev = events(&recv, 3, 10).await;
    let types: Vec<&str> = ev
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "incident.opened",
            "incident.acknowledged",
            "incident.resolved"
        ]
    );
    for (raw, _) in &ev {
        assert!(raw.verifies(SECRET));
    }
    let ids: std::collections::HashSet<&str> = ev.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each event has its own id");
    let resolved = &ev[2].1["incident"];

    // Resolved incidents conflict; the summaries match the incident's own timestamps.
    let r = http.post(&ack).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let ts = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let mtta = (ts(&resolved["acknowledged_at"]) - ts(&resolved["opened_at"]))
        .total(jiff::Unit::Second)
        .unwrap();
    let mttr = (ts(&resolved["restored_at"]) - ts(&resolved["impact_started_at"]))
        .total(jiff::Unit::Second)
        .unwrap();
    let p1 = [r#"service="portal""#, r#"severity="P1""#];
    let m = wait_for(&http, &d, 10, "MTTR recorded", |m| {
        sample(m, "sentinel_incident_mttr_seconds_count", &p1) == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&m, "sentinel_incident_mtta_seconds_count", &p1),
        Some(1.0)
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    assert!(
        close(
            sample(&m, "sentinel_incident_mtta_seconds_sum", &p1).unwrap(),
            mtta
        ),
        "mtta sum vs {mtta}"
    );
    assert!(
        close(
            sample(&m, "sentinel_incident_mttr_seconds_sum", &p1).unwrap(),
            mttr
        ),
        "mttr sum vs {mttr}"
    );
    assert_eq!(sample(&m, "sentinel_incidents_total", &p1), Some(1.0));
    assert_eq!(sample(&m, "sentinel_incidents_open", &p1), Some(0.0));
    assert_eq!(
        sample(
            &m,
            "sentinel_incident_response_total",
            &[r#"stage="acknowledge""#, r#"met="true""#]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "sentinel_notifier_deliveries_total",
            &[r#"result="delivered""#]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &m,
            "sentinel_notifier_queue_depth",
            &[r#"notifier="tickets""#]
        ),
        Some(0.0)
    );

    let logs = d.stderr.lock().unwrap().join("\n");
    assert!(!logs.contains(TOKEN), "the API token leaked into the logs");
    assert!(
        !logs.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "the webhook secret leaked into the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_failing_receiver_and_sigkill() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let (recv, raddr) = Receiver::start().await;
    recv.set_default_status(500);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), target, raddr);
    let mut d = Daemon::start(&cfg, &envs());
    let http = reqwest::Client::new();

    up.store(false, Ordering::SeqCst);
    // The incident opens; the receiver answers 500, so the event stays queued.
    wait_for(&http, &d, 10, "a queued event", |m| {
        sample(
            m,
            "sentinel_notifier_queue_depth",
            &[r#"notifier="tickets""#],
        ) == Some(1.0)
            && sample(
                m,
                "sentinel_notifier_deliveries_total",
                &[r#"result="retry""#],
            )
            .unwrap_or(0.0)
                >= 1.0
    })
    .await;
    assert!(recv.count() >= 1);
    kill9(&mut d);

    // Restart on the same store with the receiver back: the event arrives.
    recv.set_default_status(200);
    let d = Daemon::start(&cfg, &envs());
    let ev = events(&recv, 1, 20).await;
    assert_eq!(ev[0].1["type"], "incident.opened");
    let incident = ev[0].1["incident"]["id"].as_str().unwrap().to_string();

    // The target recovers: the same incident (restored from the store) resolves.
    up.store(true, Ordering::SeqCst);
    let ev = events(&recv, 2, 20).await;
    assert_eq!(ev[1].1["type"], "incident.resolved");
    assert_eq!(ev[1].1["incident"]["id"], incident.as_str());
    // Every retry of an event carried the same id: exactly two distinct ids arrived, in order.
    let ids: Vec<&str> = ev.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    let m = wait_for(&http, &d, 10, "empty queue", |m| {
        sample(
            m,
            "sentinel_notifier_queue_depth",
            &[r#"notifier="tickets""#],
        ) == Some(0.0)
    })
    .await;
    assert_eq!(
        sample(&m, "sentinel_incidents_total", &[r#"service="portal""#]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_endpoints_are_disabled_without_a_token() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let (_recv, raddr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // E2E_TOKEN is not set in the daemon's environment.
    let d = Daemon::start(
        &config(dir.path(), target, raddr),
        &[("TICKETS_SECRET", SECRET)],
    );
    let http = reqwest::Client::new();
    for path in [
        "/api/v1/incidents/x/ack",
        "/api/v1/incidents/x/resolve",
        "/-/reload",
    ] {
        let r = http
            .post(d.url(path))
            .bearer_auth("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("disabled"),
            "{path}: {v}"
        );
    }
    let r = http.get(d.url("/no/such/path")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // Wrong method and a query that does not parse are JSON errors too.
    let r = http
        .get(d.url("/api/v1/incidents/x/ack"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = http
        .get(d.url("/api/v1/incidents?state=open&state=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

/// A service that only a burn-rate page opens incidents for: `open_after`
/// is out of reach, and with a 99.99 % objective a few seconds of failures
/// at 200 ms push burn(1h) and burn(5m) over 14.4.
fn burn_config(
    dir: &std::path::Path,
    target: SocketAddr,
    receiver: SocketAddr,
) -> std::path::PathBuf {
    let text = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: E2E_TOKEN
storage:
  path: {db}
notifiers:
  - name: tickets
    type: webhook
    url: http://{receiver}/hooks
    secret_env: TICKETS_SECRET
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
    slo:
      objective: 99.99
      window: 30d
    incident:
      open_after: 1000
      resolve_after: 2
      severity: P1
      notify: [tickets]
"#,
        db = dir.join("state.db").display()
    );
    let p = dir.join("sentinel.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `(id, state)` of every incident row in the store, by id.
fn stored_incidents(db: &std::path::Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT id, state FROM incidents ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `(id, state)` of every incident `/api/v1/incidents?state=all` lists, by id.
async fn listed_incidents(http: &reqwest::Client, d: &Daemon) -> Vec<(String, String)> {
    let list: Value = http
        .get(d.url("/api/v1/incidents?state=all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: Vec<(String, String)> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every event the receiver got is about an incident it was told was opened
/// (before it, in arrival order).
fn assert_announced(r: &Receiver) {
    let mut opened = std::collections::HashSet::new();
    for g in r.delivered() {
        let v = g.json();
        let id = v["incident"]["id"].as_str().unwrap().to_string();
        if v["type"] == "incident.opened" {
            opened.insert(id);
        } else {
            assert!(
                opened.contains(&id),
                "{} for {id}, which was never announced as opened",
                v["type"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_resolve_while_failing_survives_restarts_without_inventing_incidents() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let (recv, raddr) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = burn_config(dir.path(), target, raddr);
    let db = dir.path().join("state.db");
    let http = reqwest::Client::new();
    let mut d = Daemon::start(&cfg, &envs());
    wait_for(&http, &d, 10, "a good run", |m| {
        sample(m, "sentinel_check_up", &[r#"check="health""#]) == Some(1.0)
    })
    .await;

    // The target goes down: the page opens an incident; resolved by hand
    // while the target stays down and the page keeps firing.
    up.store(false, Ordering::SeqCst);
    let ev = events(&recv, 1, 30).await;
    assert_eq!(ev[0].1["type"], "incident.opened");
    let id = ev[0].1["incident"]["id"].as_str().unwrap().to_string();
    let r = http
        .post(d.url(&format!("/api/v1/incidents/{id}/resolve")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = events(&recv, 2, 10).await;
    assert_eq!(ev[1].1["type"], "incident.resolved");
    let expected = vec![(id.clone(), "resolved".to_string())];

    // Restart twice (clean, then kill -9) with the target still down.
    for how in ["TERM", "KILL"] {
        if how == "TERM" {
            d.signal("-TERM");
            assert!(d.wait_exit().success());
        } else {
            kill9(&mut d);
        }
        d = Daemon::start(&cfg, &envs());
        // Runs keep failing and the burn alert is evaluated several times.
        let m = wait_for(&http, &d, 10, "failing runs after the restart", |m| {
            sample(
                m,
                "sentinel_check_runs_total",
                &[r#"check="health""#, r#"result="bad""#],
            )
            .unwrap_or(0.0)
                >= 10.0
        })
        .await;
        let listed = listed_incidents(&http, &d).await;
        assert_eq!(listed, stored_incidents(&db), "after {how}: API vs store");
        assert_eq!(listed, expected, "after {how}: nothing new, same id");
        assert_eq!(
            sample(&m, "sentinel_incidents_open", &[r#"service="portal""#]),
            Some(0.0),
            "after {how}"
        );
        // An operator acknowledges whatever the API shows as open.
        let open: Value = http
            .get(d.url("/api/v1/incidents?state=open"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for inc in open["incidents"].as_array().unwrap() {
            let ack = d.url(&format!(
                "/api/v1/incidents/{}/ack",
                inc["id"].as_str().unwrap()
            ));
            http.post(ack).bearer_auth(TOKEN).send().await.unwrap();
        }
    }
    // Give the outbox worker time to deliver anything that was queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_announced(&recv);
    assert_eq!(recv.delivered().len(), 2, "opened and resolved only");
}
