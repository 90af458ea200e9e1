//! Inbound hooks through the whole daemon in-process, on a manual wall
//! clock: MTTA from a PagerDuty acknowledgement is exactly hook time −
//! opened, and Slack's 5-minute window is judged on the daemon's clock, to
//! the second.
//!
//! The hooks read their secret from the environment and a test may not set
//! variables, so the config names one every process has (`PATH`) and the
//! test signs with its value.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::run;
use crate::clock::ManualClock;
use crate::config::parse_str;
use crate::store::Store;

const T0: &str = "2026-01-02T03:04:05Z";

fn hex_hmac(secret: &str, parts: &[&[u8]]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        m.update(p);
    }
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An HTTP server that answers every request 503.
async fn failing_server() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtta_is_hook_time_minus_opened_and_the_slack_window_is_the_daemons_clock() {
    let secret = std::env::var("PATH").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let target = failing_server().await;
    let text = format!(
        "server:\n  listen: 127.0.0.1:0\nstorage:\n  path: {}\n\
         inbound:\n  pagerduty: {{ secret_env: PATH }}\n  slack: {{ signing_secret_env: PATH }}\n\
         services:\n  - name: web\n    checks:\n      - name: home\n        interval: 100ms\n        \
         timeout: 100ms\n        http: {{ url: \"http://{target}/\" }}\n    \
         incident: {{ open_after: 2, resolve_after: 2, severity: P1 }}\n",
        db.display()
    );
    let cfg = parse_str(&text, "test.yaml").unwrap();
    let listener = crate::http::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let t0: Timestamp = T0.parse().unwrap();
    let clock = ManualClock::new(t0);
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(
        dir.path().join("sentinel.yaml"),
        cfg,
        Store::open(&db).unwrap(),
        listener,
        Arc::new(clock.clone()),
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let incident = async || -> Option<Value> {
        let r = client
            .get(format!("{base}/api/v1/incidents"))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["incidents"].as_array()?.first().cloned()
    };
    let mut opened = None;
    for _ in 0..400 {
        opened = incident().await;
        if opened.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let opened = opened.expect("an incident opens within 10 s");
    assert_eq!(opened["opened_at"], json!(T0));
    let id = opened["id"].as_str().unwrap().to_string();

    // 7 min 23 s later on the daemon's clock.
    let now = t0 + SignedDuration::from_secs(443);
    clock.set(now);
    let hook = async |provider: &str, headers: &[(&str, String)], body: &[u8]| {
        let mut req = client
            .post(format!("{base}/api/v1/hooks/{provider}"))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let press = |at: i64| {
        let payload = json!({"type": "block_actions", "user": {"id": "U1", "username": "alice"},
            "actions": [{"type": "button", "action_id": "sentinel_ack", "value": id}]});
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let base = format!("v0:{at}:");
        let sig = format!(
            "v0={}",
            hex_hmac(&secret, &[base.as_bytes(), body.as_bytes()])
        );
        (
            vec![
                ("X-Slack-Request-Timestamp", at.to_string()),
                ("X-Slack-Signature", sig),
            ],
            body,
        )
    };
    // Signed 301 s before the daemon's now: a replay.
    let (headers, body) = press(now.as_second() - 301);
    let (status, answer) = hook("slack", &headers, body.as_bytes()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("request timestamp is 301 s away from now"),
        "{answer}"
    );
    assert_eq!(incident().await.unwrap()["acknowledged_at"], Value::Null);

    // PagerDuty acknowledges at 03:11:28.
    let body = json!({"event": {"id": "01E1", "event_type": "incident.acknowledged",
        "resource_type": "incident", "agent": {"type": "user_reference", "summary": "Alice Ops"},
        "data": {"incident_key": opened["dedup_key"]}}})
    .to_string();
    let sig = format!("v1={}", hex_hmac(&secret, &[body.as_bytes()]));
    let (status, answer) = hook(
        "pagerduty",
        &[("X-PagerDuty-Signature", sig)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!("applied")),
        "{answer}"
    );
    let acked = incident().await.unwrap();
    assert_eq!(acked["acknowledged_at"], json!("2026-01-02T03:11:28Z"));
    assert_eq!(acked["ack_source"], json!("pagerduty"));
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .to_string()
    };
    assert_eq!(
        line("sentinel_incident_mtta_seconds_sum{"),
        r#"sentinel_incident_mtta_seconds_sum{service="web",severity="P1"} 443"#
    );
    assert_eq!(
        line(
            r#"sentinel_incident_acknowledgements_total{service="web",severity="P1",source="pagerduty"}"#
        ),
        r#"sentinel_incident_acknowledgements_total{service="web",severity="P1",source="pagerduty"} 1"#
    );

    // Signed exactly 300 s before now: inside the window (a repeat, so
    // recorded and ignored).
    let (headers, body) = press(now.as_second() - 300);
    let (status, answer) = hook("slack", &headers, body.as_bytes()).await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    let again = incident().await.unwrap();
    assert_eq!(
        again["acknowledgements"],
        json!([
            {"at": "2026-01-02T03:11:28Z", "by": "Alice Ops", "source": "pagerduty"},
            {"at": "2026-01-02T03:11:28Z", "by": "alice", "source": "slack"},
        ])
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), daemon)
        .await
        .expect("run returns once the token is cancelled")
        .unwrap()
        .unwrap();
}
