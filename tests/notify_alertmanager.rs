//! A real Alertmanager (Debian's `prometheus-alertmanager`, started on
//! loopback by the test) receives sentinel's alert, lists it as active with
//! the documented labels, and drops it from the active list once the resolution
//! (with `endsAt`) is posted.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure report

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use sentinel::clock::{Clock, SystemClock};
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::ServiceIncidents;
use sentinel::notify::{DeliveryResult, Event, EventContext, Secrets, build_request, send};

const BINARY: &str = "prometheus-alertmanager";

async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Alerts Alertmanager reports as active.
async fn active(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let body = client
        .get(format!(
            "{base}/api/v2/alerts?active=true&silenced=false&inhibited=false"
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn alertmanager_lists_the_alert_and_sees_it_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let port = free_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(BINARY)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {BINARY} (install Debian's prometheus-alertmanager): {e}")
        });

    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await
            && r.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "alertmanager did not become ready");

    // An incident opened a minute ago (Alertmanager wants real times).
    let now = SystemClock.now();
    let ago = |s: i64| Timestamp::from_second(now.as_second() - s).unwrap();
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P2".into(),
        notify: vec!["am".into()],
    };
    let mut m = ServiceIncidents::new("identity", &policy, None, 0);
    let opened = m
        .on_run(ago(60), "login", false, "status 503", false)
        .remove(0);
    let resolved = m.on_run(ago(1), "login", true, "", false).remove(0);
    let ctx = EventContext {
        availability_ratio: None,
        error_budget_remaining_ratio: None,
        api_base: "http://127.0.0.1:9464".into(),
    };
    let notifier = Notifier {
        name: "am".into(),
        kind: NotifierKind::Alertmanager {
            url: UrlSource::Inline(url::Url::parse(&base).unwrap()),
        },
        max_age: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    };

    let ev = Event::from_change(&opened, ago(60), &ctx).unwrap();
    let req = build_request(&notifier, &ev, &Secrets::default(), now).unwrap();
    assert_eq!(
        send(&client, &req).await,
        DeliveryResult::Delivered { status: 200 }
    );
    let alerts = active(&client, &base).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "SentinelIncident");
    assert_eq!(labels["service"], "identity");
    assert_eq!(labels["severity"], "P2");
    assert_eq!(labels["incident_id"], opened.incident.id.as_str());
    assert_eq!(
        alerts[0]["annotations"]["description"],
        "check `login` failed: status 503"
    );
    assert_eq!(alerts[0]["status"]["state"], "active");

    let ev = Event::from_change(&resolved, ago(1), &ctx).unwrap();
    let req = build_request(&notifier, &ev, &Secrets::default(), now).unwrap();
    assert_eq!(
        send(&client, &req).await,
        DeliveryResult::Delivered { status: 200 }
    );
    let alerts = active(&client, &base).await;
    assert_eq!(alerts, Vec::<Value>::new(), "resolved alert still active");

    child.kill().await.unwrap();
}
