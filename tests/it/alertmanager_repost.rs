//! The Alertmanager re-post on the real binaries: sentinel (`repost_every:
//! 1s`, so an alert's `endsAt` is 4 s ahead) and Debian's
//! `prometheus-alertmanager` (`resolve_timeout: 1s`). The incident's alert
//! stays active far longer than both, also across a `kill -9` of sentinel
//! (the restarted daemon resumes the re-post for the incident it finds open),
//! re-posts do not count as deliveries, and the resolution ends the alert
//! for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::support::daemon::{Daemon, Proc, kill9};
use crate::support::prom::{sample, scrape, start_alertmanager_with, wait_for};
use crate::support::servers::start_target;
use crate::support::{eventually, secs};
use sentinel::clock::{Clock, SystemClock};

/// Alerts Alertmanager reports as active.
async fn active(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let v: Value = client
        .get(format!(
            "{base}/api/v2/alerts?active=true&silenced=false&inhibited=false"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

/// The one active alert of service `portal`, waiting up to 20 s for it.
async fn portal_alert(client: &reqwest::Client, base: &str, am: &Proc, d: &Daemon) -> Value {
    eventually(
        secs(20),
        "the portal alert is active in Alertmanager",
        || format!("alertmanager: {:?}\nsentinel: {:?}", am.log(), d.log()),
        || async {
            let alerts = active(client, base).await;
            alerts
                .into_iter()
                .find(|a| a["labels"]["service"] == "portal")
        },
    )
    .await
}

fn ends_at(alert: &Value) -> Timestamp {
    alert["endsAt"].as_str().unwrap().parse().unwrap()
}

fn counter(m: &str, name: &str, result: &str) -> f64 {
    let result = format!("result=\"{result}\"");
    sample(m, name, &["notifier=\"am\"", &result])
        .unwrap_or_else(|| panic!("no {name}{{am,{result}}} in:\n{m}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_incident_stays_active_in_alertmanager_across_kill_9_until_it_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let am_dir = dir.path().join("am");
    std::fs::create_dir(&am_dir).unwrap();
    let (am, am_base) = start_alertmanager_with(&am_dir, "resolve_timeout: 1s");
    let client = reqwest::Client::new();
    eventually(
        secs(10),
        "alertmanager ready",
        || format!("{:?}", am.log()),
        || async {
            let r = client.get(format!("{am_base}/-/ready")).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

    let up = Arc::new(AtomicBool::new(false));
    let target = start_target(Arc::clone(&up)).await;
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
server:
  listen: 127.0.0.1:0
storage:
  path: {db}
notifiers:
  - name: am
    type: alertmanager
    url: "{am_base}"
    repost_every: 1s
services:
  - name: portal
    checks:
      - name: health
        interval: 1s
        http: {{ url: "http://{target}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P2, notify: [am] }}
"#,
            db = dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let mut d = Daemon::start(&config, &[]);
    d.ready().await;

    let first = portal_alert(&client, &am_base, &am, &d).await;
    let first_ends = ends_at(&first);
    // Past the first post's endsAt and Alertmanager's resolve_timeout: only
    // a re-post keeps the alert active.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let later = portal_alert(&client, &am_base, &am, &d).await;
    assert_eq!(later["labels"], first["labels"]);
    assert!(
        ends_at(&later) > first_ends,
        "endsAt did not move: {first} then {later}"
    );
    // The opening was delivered once and is stored as such; the re-posts
    // are counted apart.
    let m = wait_for(&client, &d, 20, "the opening delivered and stored", |m| {
        sample(m, "sentinel_notifier_queue_depth", &["notifier=\"am\""]) == Some(0.0)
    })
    .await;
    assert_eq!(
        counter(&m, "sentinel_notifier_deliveries_total", "delivered"),
        1.0
    );
    assert!(counter(&m, "sentinel_notifier_reposts_total", "delivered") >= 1.0);
    assert_eq!(
        counter(&m, "sentinel_notifier_reposts_total", "failed"),
        0.0
    );

    // kill -9: the last re-post before it ends 4 s later at the latest.
    kill9(&mut d);
    let killed = SystemClock.now();
    let d = Daemon::start(&config, &[]);
    d.ready().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after_restart = portal_alert(&client, &am_base, &am, &d).await;
    assert!(
        ends_at(&after_restart) > killed + jiff::SignedDuration::from_secs(4),
        "no re-post after the restart: {after_restart}"
    );
    // The restarted daemon had no event to deliver, only re-posts.
    let m = scrape(&client, &d).await;
    assert_eq!(
        counter(&m, "sentinel_notifier_deliveries_total", "delivered"),
        0.0
    );
    assert!(counter(&m, "sentinel_notifier_reposts_total", "delivered") >= 1.0);

    // Recovery: the resolution (endsAt = resolved_at) ends the alert.
    up.store(true, Ordering::SeqCst);
    eventually(
        secs(20),
        "the alert ended in Alertmanager",
        || format!("alertmanager: {:?}\nsentinel: {:?}", am.log(), d.log()),
        || async { active(&client, &am_base).await.is_empty().then_some(()) },
    )
    .await;
    let m = wait_for(
        &client,
        &d,
        20,
        "the resolution delivered and stored",
        |m| sample(m, "sentinel_notifier_queue_depth", &["notifier=\"am\""]) == Some(0.0),
    )
    .await;
    assert_eq!(
        counter(&m, "sentinel_notifier_deliveries_total", "delivered"),
        1.0
    );
    let reposts = counter(&m, "sentinel_notifier_reposts_total", "delivered");
    // Three periods later: no re-post revived it, none was sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(active(&client, &am_base).await, Vec::<Value>::new());
    let m = scrape(&client, &d).await;
    assert_eq!(
        counter(&m, "sentinel_notifier_reposts_total", "delivered"),
        reposts
    );
    drop(d);
    drop(am);
}
