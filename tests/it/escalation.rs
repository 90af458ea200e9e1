//! The acknowledge-target escalation on the real binary. Two P1 incidents
//! are in the store, both opened two minutes ago with a one-minute
//! acknowledge target: `portal`'s unacknowledged, `shop`'s acknowledged
//! after 30 s (in time). `portal`'s escalation reaches the team and the
//! `escalate` notifier exactly once, also when sentinel is killed (`kill -9`)
//! while the escalation contact is down, and after the restart nothing
//! escalates again; `shop` never escalates. The cumulative counter keeps its
//! count across the restart, and the contact hears the later
//! acknowledgement too.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use sentinel::clock::{Clock, SystemClock};
use sentinel::incident::{Incident, State, Trigger};
use sentinel::store::Store;

use crate::support::daemon::{Daemon, kill9};
use crate::support::prom::{sample, scrape, wait_for};
use crate::support::servers::start_target;
use crate::support::webhooks::{Hit, Receiver};
use crate::support::{eventually, secs};

const TOKEN: &str = "escalation-e2e-token-51f0";

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// An open P1 incident of `service` opened at `opened`.
fn incident(service: &str, opened: i64, acked: Option<i64>) -> Incident {
    let id = format!("inc-{service}-{opened}-1");
    Incident {
        dedup_key: format!("sentinel/{service}/{id}"),
        id,
        service: service.into(),
        severity: "P1".into(),
        title: format!("{service} is failing"),
        reason: "check `health` failed 2 times in a row: status 503".into(),
        state: State::Open,
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(opened - 2),
        opened_at: ts(opened),
        acknowledged_at: acked.map(ts),
        acknowledged_by: acked.map(|_| "alice".to_string()),
        ack_note: None,
        restored_at: None,
        resolved_at: None,
        resolved_by: None,
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: if acked.is_some() { 2 } else { 1 },
        updates: Vec::new(),
    }
}

/// `incident.escalated` requests on `path` (`/team`, `/manager`).
fn escalations(rx: &Receiver, path: &str) -> Vec<Hit> {
    rx.hits()
        .into_iter()
        .filter(|h| h.path == path && h.kind == "incident.escalated")
        .collect()
}

fn escalations_total(m: &str, service: &str) -> Option<f64> {
    let service = format!("service=\"{service}\"");
    sample(
        m,
        "sentinel_incident_escalations_total",
        &[&service, "severity=\"P1\""],
    )
}

async fn incidents(d: &Daemon) -> Vec<Value> {
    let v: Value = reqwest::get(d.url("/api/v1/incidents?state=all"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_incident_escalates_exactly_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let now = SystemClock.now().as_second();
    let late = incident("portal", now - 120, None);
    let in_time = incident("shop", now - 120, Some(now - 90));
    let store = Store::open(&db).unwrap();
    for inc in [&late, &in_time] {
        store
            .save_incident(
                inc.id.clone(),
                inc.service.clone(),
                inc.state.as_str().into(),
                inc.opened_at.as_second(),
                inc.to_json().unwrap(),
                vec![],
            )
            .await
            .unwrap();
    }
    store.close().await.unwrap();

    // Both services stay down, so both incidents stay open.
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let (rx, hooks) = Receiver::start().await;
    // The escalation contact is down at first.
    rx.set_status("/manager", 503);
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
server:
  listen: 127.0.0.1:0
  api_token_env: ESCALATION_TOKEN
storage:
  path: {db}
notifiers:
  - {{ name: team, type: webhook, url: "http://{hooks}/team" }}
  - {{ name: manager, type: webhook, url: "http://{hooks}/manager" }}
response_targets:
  P1: {{ acknowledge: 1m, restore: 2h, escalate: [manager] }}
services:
  - name: portal
    checks:
      - name: health
        interval: 1s
        http: {{ url: "http://{target}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P1, notify: [team] }}
  - name: shop
    checks:
      - name: health
        interval: 1s
        http: {{ url: "http://{target}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P1, notify: [team] }}
"#,
            db = db.display()
        ),
    )
    .unwrap();
    let env = [("ESCALATION_TOKEN", TOKEN)];
    let mut d = Daemon::start(&config, &env);
    d.ready().await;

    // The team hears it; the contact is tried and refuses.
    let context = || format!("hits: {:?}\nsentinel: {:?}", rx.hits(), d.log());
    let event = eventually(
        secs(20),
        "the escalation at the team and tried at the manager",
        context,
        || async {
            let team = escalations(&rx, "/team");
            let manager = escalations(&rx, "/manager");
            (team.iter().any(Hit::delivered) && !manager.is_empty()).then(|| team[0].json())
        },
    )
    .await;
    assert_eq!(event["incident"]["id"], late.id.as_str());
    assert_eq!(event["id"], format!("evt-{}-2", late.id));
    assert_eq!(event["escalation"]["cause"], "acknowledge_target");
    assert_eq!(event["escalation"]["target_seconds"], 60);
    assert_eq!(
        event["escalation"]["notifiers"],
        serde_json::json!(["manager"])
    );
    assert_eq!(event["incident"]["severity"], "P1");
    assert!(escalations(&rx, "/manager").iter().all(|h| h.status == 503));
    let client = reqwest::Client::new();
    let m = scrape(&client, &d).await;
    assert_eq!(escalations_total(&m, "portal"), Some(1.0));
    assert_eq!(escalations_total(&m, "shop"), Some(0.0));

    // Killed while the escalation waits for the manager.
    kill9(&mut d);
    rx.set_status("/manager", 200);
    let d = Daemon::start(&config, &env);
    d.ready().await;
    eventually(
        secs(20),
        "the escalation delivered to the manager after the restart",
        || format!("hits: {:?}\nsentinel: {:?}", rx.hits(), d.log()),
        || async {
            escalations(&rx, "/manager")
                .iter()
                .any(Hit::delivered)
                .then_some(())
        },
    )
    .await;
    // Everything stored, then several evaluations later: still one
    // escalation, the same event everywhere, and none for `shop`.
    wait_for(&client, &d, 20, "both queues empty", |m| {
        sample(m, "sentinel_notifier_queue_depth", &["notifier=\"team\""]) == Some(0.0)
            && sample(
                m,
                "sentinel_notifier_queue_depth",
                &["notifier=\"manager\""],
            ) == Some(0.0)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<Hit> = rx
        .hits()
        .into_iter()
        .filter(|h| h.kind == "incident.escalated")
        .collect();
    let mut ids: Vec<&str> = all.iter().map(|h| h.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids, [format!("evt-{}-2", late.id)], "{all:?}");
    for path in ["/team", "/manager"] {
        let delivered: Vec<Hit> = escalations(&rx, path)
            .into_iter()
            .filter(Hit::delivered)
            .collect();
        assert_eq!(delivered.len(), 1, "{path}: {delivered:?}");
    }
    assert!(
        rx.hits()
            .iter()
            .all(|h| h.json()["incident"]["id"] == late.id.as_str()),
        "shop was announced: {:?}",
        rx.hits()
    );
    let m = scrape(&client, &d).await;
    assert_eq!(escalations_total(&m, "portal"), Some(1.0));
    assert_eq!(escalations_total(&m, "shop"), Some(0.0));
    let list = incidents(&d).await;
    let find = |id: &str| list.iter().find(|i| i["id"] == id).unwrap().clone();
    let portal = find(&late.id);
    assert!(portal["ack_escalated_at"].is_string(), "{portal}");
    assert_eq!(portal["escalated_to"], serde_json::json!(["manager"]));
    let shop = find(&in_time.id);
    assert_eq!(shop["ack_escalated_at"], Value::Null);
    assert_eq!(shop["escalated_to"], serde_json::json!([]));

    // The contact the escalation brought in hears the acknowledgement.
    let r = client
        .post(d.url(&format!("/api/v1/incidents/{}/ack", late.id)))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "manager-on-call"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually(
        secs(20),
        "the acknowledgement at the manager",
        || format!("hits: {:?}\nsentinel: {:?}", rx.hits(), d.log()),
        || async {
            rx.delivered()
                .iter()
                .any(|h| h.path == "/manager" && h.kind == "incident.acknowledged")
                .then_some(())
        },
    )
    .await;
    // `sentinel report` reads the same cumulative ledger, beside the
    // running daemon: one escalation for portal, none for shop.
    let out = std::process::Command::new(crate::support::daemon::BIN)
        .args(["report", "--json", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let escalated = |service: &str| -> u64 {
        let s = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == service)
            .unwrap_or_else(|| panic!("{service} not in the report: {doc}"));
        s["incidents"]["cumulative"]["by_severity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sev| sev["escalated"].as_u64().unwrap())
            .sum()
    };
    assert_eq!((escalated("portal"), escalated("shop")), (1, 0), "{doc}");
    drop(d);
}
