//! Delivery through the outbox worker to a real HTTP receiver on loopback:
//! retries, ordering per incident, dedup ids, drops on 4xx and on max_age.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure report

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use sentinel::clock::{Clock, ManualClock};
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::{Ack, ServiceIncidents};
use sentinel::notify::worker::{
    Attempt, MemoryOutbox, MemoryOutboxError, OutboxRow, OutboxStore, Outcome, Worker,
};
use sentinel::notify::{
    DeliveryResult, Event, EventContext, PreparedRequest, RetryReason, Secrets, send,
};

const BASE: i64 = 1_800_000_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    status: u16,
}

/// Answers each request with the next status of `script`, then 200 forever.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<u16>>>,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = {
        let mut s = r.script.lock().unwrap();
        if s.is_empty() { 200 } else { s.remove(0) }
    };
    let h = |n: &str| {
        headers
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    r.got.lock().unwrap().push(Received {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

async fn receiver(script: Vec<u16>) -> (Receiver, SocketAddr) {
    let r = Receiver {
        script: Arc::new(Mutex::new(script)),
        got: Arc::default(),
    };
    let app = Router::new()
        .route("/hooks", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, addr)
}

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(b"delivery-test-key"))
}

/// Standard Webhooks verification from the spec text (independent of sentinel).
fn verify(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

fn tickets(addr: SocketAddr, max_age: Duration) -> Notifier {
    Notifier {
        name: "tickets".into(),
        kind: NotifierKind::Webhook {
            url: UrlSource::Inline(url::Url::parse(&format!("http://{addr}/hooks")).unwrap()),
            secret_env: Some("HOOK_SECRET".into()),
        },
        max_age,
        timeout: Duration::from_secs(5),
    }
}

/// The events of a full incident lifecycle of `service` starting at `s0`:
/// opened, acknowledged, resolved.
fn lifecycle(service: &str, s0: i64) -> Vec<Event> {
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P2".into(),
        notify: vec!["tickets".into()],
    };
    let ctx = EventContext {
        availability_ratio: Some(0.99),
        error_budget_remaining_ratio: Some(0.5),
        api_base: "http://127.0.0.1:9464".into(),
    };
    let mut m = ServiceIncidents::new(service, &policy, None, 0);
    let mut changes = m.on_run(t(s0), "c", false, "down", false);
    let id = changes[0].incident.id.clone();
    let Ack::Changed(c) = m.ack(t(s0 + 5), &id, "bob", None).unwrap() else {
        panic!("ack must change");
    };
    changes.push(c);
    changes.extend(m.on_run(t(s0 + 10), "c", true, "", false));
    changes
        .iter()
        .map(|c| Event::from_change(c, c.incident.opened_at, &ctx).unwrap())
        .collect()
}

fn push(store: &MemoryOutbox, events: &[Event], created_at: Timestamp) {
    for e in events {
        store.push(
            &e.id,
            "tickets",
            &e.incident.id,
            &e.to_payload().unwrap(),
            created_at,
        );
    }
}

fn worker(store: MemoryOutbox, n: Notifier, clock: &ManualClock) -> Worker<MemoryOutbox> {
    Worker::new(
        store,
        &[n],
        Secrets::from_pairs([("HOOK_SECRET", secret())]),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    )
}

#[tokio::test]
async fn failing_receiver_gets_every_event_in_order_with_stable_ids() {
    let (rx, addr) = receiver(vec![500, 503, 429, 500, 500]).await;
    let clock = ManualClock::new(t(0));
    let a = lifecycle("identity", 0);
    let b = lifecycle("mail", 100);
    let store = MemoryOutbox::default();
    push(&store, &a, t(0));
    push(&store, &b, t(0));
    let w = worker(store, tickets(addr, Duration::from_secs(86_400)), &clock);
    let mut passes = 0;
    while w.store().pending() > 0 {
        w.run_once().await.unwrap();
        // Past the longest backoff step: every retry is due next pass.
        clock.advance(Duration::from_secs(301));
        passes += 1;
        assert!(passes < 50, "outbox did not drain");
    }
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 6 + 5, "6 events, 5 failed attempts");
    for r in &got {
        assert!(verify(&secret(), r), "bad signature on {}", r.id);
        let ev: Event = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(ev.id, r.id, "webhook-id is the event id");
    }
    for events in [&a, &b] {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let attempts: Vec<&Received> = got
            .iter()
            .filter(|r| ids.contains(&r.id.as_str()))
            .collect();
        // In order: an event is never sent before its predecessor succeeded.
        let mut next = 0;
        for r in &attempts {
            assert_eq!(
                r.id,
                ids[next],
                "out of order: {:?}",
                attempts.iter().map(|r| &r.id).collect::<Vec<_>>()
            );
            if r.status == 200 {
                next += 1;
            }
        }
        assert_eq!(
            next,
            ids.len(),
            "every event delivered exactly once with 200"
        );
        // Duplicates carry the same id and the same body.
        for r in &attempts {
            let first = attempts.iter().find(|x| x.id == r.id).unwrap();
            assert_eq!(first.body, r.body);
        }
    }
    let rows = w.store().rows();
    assert!(
        rows.iter()
            .all(|r| r.delivered_at.is_some() && r.dropped_at.is_none())
    );
    assert_eq!(rows.iter().map(|r| r.row.attempts).sum::<u32>(), 5);
    let stats = w.stats().snapshot();
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Delivered)),
        Some(&6)
    );
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Retry)),
        Some(&5)
    );
}

#[tokio::test]
async fn a_4xx_drops_the_event_without_retry_and_the_next_one_goes_out() {
    let (rx, addr) = receiver(vec![400]).await;
    let clock = ManualClock::new(t(0));
    let events = lifecycle("identity", 0);
    let store = MemoryOutbox::default();
    push(&store, &events[..2], t(0));
    let w = worker(store, tickets(addr, Duration::from_secs(86_400)), &clock);
    let pass = w.run_once().await.unwrap();
    assert_eq!(
        (pass.due, pass.delivered, pass.dropped, pass.retried),
        (1, 0, 1, 0)
    );
    clock.advance(Duration::from_secs(1));
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.delivered), (1, 1));
    clock.advance(Duration::from_secs(600));
    assert_eq!(w.run_once().await.unwrap().due, 0);
    let got: Vec<(String, u16)> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.id.clone(), r.status))
        .collect();
    assert_eq!(
        got,
        vec![(events[0].id.clone(), 400), (events[1].id.clone(), 200)]
    );
    let rows = w.store().rows();
    assert_eq!(rows[0].dropped_at, Some(t(0)));
    assert_eq!(rows[0].row.attempts, 0);
    assert_eq!(rows[1].delivered_at, Some(t(1)));
    assert_eq!(
        w.stats()
            .snapshot()
            .get(&("tickets".to_string(), Attempt::Rejected)),
        Some(&1)
    );
}

#[tokio::test]
async fn events_older_than_max_age_are_dropped_after_the_last_failure() {
    let (rx, addr) = receiver(vec![503; 100]).await;
    let clock = ManualClock::new(t(0));
    let events = lifecycle("identity", 0);
    let store = MemoryOutbox::default();
    push(&store, &events[..1], t(0));
    let w = worker(store, tickets(addr, Duration::from_secs(10)), &clock);
    let pass = w.run_once().await.unwrap();
    assert_eq!(pass.retried, 1);
    let next = w.store().rows()[0].row.next_attempt_at;
    // First retry after 1s jittered into [0.5s, 1s].
    assert!(
        next >= t(0) + Duration::from_millis(500) && next <= t(1),
        "{next}"
    );
    clock.advance(Duration::from_secs(10));
    let pass = w.run_once().await.unwrap();
    assert_eq!(pass.dropped, 1);
    assert_eq!(w.store().rows()[0].dropped_at, Some(t(10)));
    assert_eq!(w.store().pending(), 0);
    assert_eq!(rx.got.lock().unwrap().len(), 2);
    let stats = w.stats().snapshot();
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Retry)),
        Some(&1)
    );
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Expired)),
        Some(&1)
    );
}

#[tokio::test]
async fn events_of_a_removed_notifier_are_dropped() {
    let clock = ManualClock::new(t(0));
    let events = lifecycle("identity", 0);
    let store = MemoryOutbox::default();
    for e in &events[..1] {
        store.push(
            &e.id,
            "gone",
            &e.incident.id,
            &e.to_payload().unwrap(),
            t(0),
        );
    }
    let (_rx, addr) = receiver(vec![]).await;
    let w = worker(store, tickets(addr, Duration::from_secs(60)), &clock);
    assert_eq!(w.run_once().await.unwrap().dropped, 1);
    assert_eq!(
        w.stats()
            .snapshot()
            .get(&("gone".to_string(), Attempt::Expired)),
        Some(&1)
    );
}

#[tokio::test]
async fn send_classifies_network_errors_and_statuses() {
    // A port nobody listens on: bind, note it, close it.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let req = |addr: SocketAddr| PreparedRequest {
        url: url::Url::parse(&format!("http://{addr}/hooks")).unwrap(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{}".to_vec(),
        timeout: Duration::from_secs(5),
    };
    let client = reqwest::Client::new();
    assert_eq!(
        send(&client, &req(closed)).await,
        DeliveryResult::Retry(RetryReason::Connect)
    );
    let (_rx, addr) = receiver(vec![429, 502, 404, 204]).await;
    assert_eq!(
        send(&client, &req(addr)).await,
        DeliveryResult::Retry(RetryReason::Status(429))
    );
    assert_eq!(
        send(&client, &req(addr)).await,
        DeliveryResult::Retry(RetryReason::Status(502))
    );
    assert_eq!(
        send(&client, &req(addr)).await,
        DeliveryResult::Reject { status: 404 }
    );
    assert_eq!(
        send(&client, &req(addr)).await,
        DeliveryResult::Delivered { status: 204 }
    );
}

#[tokio::test]
async fn the_run_loop_delivers_when_woken_and_stops_on_shutdown() {
    let (rx, addr) = receiver(vec![]).await;
    let clock = ManualClock::new(t(0));
    let w = worker(
        MemoryOutbox::default(),
        tickets(addr, Duration::from_secs(60)),
        &clock,
    );
    let shutdown = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(w.clone().run(
        shutdown.clone(),
        Arc::clone(&wake),
        Duration::from_secs(3600),
    ));
    let events = lifecycle("identity", 0);
    push(w.store(), &events[..1], clock.now());
    wake.notify_one();
    for _ in 0..500 {
        if w.store().pending() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    let got: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(got, vec![events[0].id.clone()]);
}

#[tokio::test]
async fn an_incident_storm_of_1000_services_drains_completely() {
    let (rx, addr) = receiver(vec![500; 50]).await;
    let clock = ManualClock::new(t(0));
    let store = MemoryOutbox::default();
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P1".into(),
        notify: vec!["tickets".into()],
    };
    let ctx = EventContext {
        availability_ratio: None,
        error_budget_remaining_ratio: None,
        api_base: "http://127.0.0.1:9464".into(),
    };
    let mut expected = Vec::new();
    for i in 0..1000 {
        let mut m = ServiceIncidents::new(&format!("svc{i}"), &policy, None, 0);
        let c = m.on_run(t(0), "c", false, "down", false).remove(0);
        let e = Event::from_change(&c, t(0), &ctx).unwrap();
        expected.push(e.id.clone());
        push(&store, &[e], t(0));
    }
    let w = worker(store, tickets(addr, Duration::from_secs(86_400)), &clock);
    for _ in 0..20 {
        if w.store().pending() == 0 {
            break;
        }
        w.run_once().await.unwrap();
        clock.advance(Duration::from_secs(301));
    }
    assert_eq!(w.store().pending(), 0);
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1000 + 50);
    let mut delivered: Vec<String> = got
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.id.clone())
        .collect();
    delivered.sort();
    expected.sort();
    assert_eq!(delivered, expected);
}

/// A store that offers every due row, not only the head of each queue: the
/// worker itself must keep a later event behind one that is backing off.
struct AllDue(MemoryOutbox);

impl OutboxStore for AllDue {
    type Error = MemoryOutboxError;

    async fn outbox_notifiers(&self) -> Result<Vec<String>, Self::Error> {
        self.0.outbox_notifiers().await
    }
    async fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        Ok(self
            .0
            .rows()
            .into_iter()
            .filter(|r| {
                r.delivered_at.is_none()
                    && r.dropped_at.is_none()
                    && r.row.notifier == notifier
                    && !settled.contains(&r.row.seq)
                    && r.row.next_attempt_at <= now
            })
            .map(|r| r.row)
            .take(limit)
            .collect())
    }
    async fn outbox_settle(&self, marks: &[(i64, Outcome)]) -> Result<(), Self::Error> {
        self.0.outbox_settle(marks).await
    }
}

#[tokio::test]
async fn the_worker_keeps_order_even_when_the_store_offers_later_events() {
    let (rx, addr) = receiver(vec![500]).await;
    let clock = ManualClock::new(t(0));
    let events = lifecycle("identity", 0);
    let store = MemoryOutbox::default();
    push(&store, &events, t(0));
    let w = Worker::new(
        AllDue(store),
        &[tickets(addr, Duration::from_secs(86_400))],
        Secrets::from_pairs([("HOOK_SECRET", secret())]),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.retried, pass.delivered), (3, 1, 0));
    // The first event backs off (>= 0.5s); the later two are due but wait.
    clock.advance(Duration::from_millis(200));
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.retried, pass.delivered), (2, 0, 0));
    clock.advance(Duration::from_secs(301));
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.delivered), (3, 3));
    let got: Vec<(String, u16)> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.id.clone(), r.status))
        .collect();
    assert_eq!(
        got,
        vec![
            (events[0].id.clone(), 500),
            (events[0].id.clone(), 200),
            (events[1].id.clone(), 200),
            (events[2].id.clone(), 200),
        ]
    );
}
