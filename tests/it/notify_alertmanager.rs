//! A real Alertmanager (Debian's `prometheus-alertmanager`, started on
//! loopback by the test) receives sentinel's alert, lists it as active with
//! the documented labels, and drops it from the active list once the resolution
//! (with `endsAt`) is posted.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::support::eventually;
use crate::support::prom::start_alertmanager;
use sentinel::clock::{Clock, SystemClock};
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::ServiceIncidents;
use sentinel::notify::{DeliveryResult, Event, EventContext, Secrets, build_request, send};

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
    let (alertmanager, base) = start_alertmanager(dir.path());

    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(10),
        "alertmanager ready",
        || format!("{:?}", alertmanager.log()),
        || async {
            let r = client.get(format!("{base}/-/ready")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

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
            repost_every: Duration::from_secs(300),
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

    drop(alertmanager);
}
