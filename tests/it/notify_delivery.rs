//! Delivery through the outbox worker to a real HTTP receiver on loopback:
//! retries, ordering per incident, dedup ids, drops on 4xx and on max_age.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::support::eventually;
use crate::support::servers::{hanging, refused_tcp};
use crate::support::webhooks::{Hit, Receiver};
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

/// A receiver answering the statuses of `script` in turn, then 200.
async fn receiver(script: Vec<u16>) -> (Arc<Receiver>, SocketAddr) {
    Receiver::scripted(script).await
}

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(b"delivery-test-key"))
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
    let got = rx.hits();
    assert_eq!(got.len(), 6 + 5, "6 events, 5 failed attempts");
    for r in &got {
        assert!(r.verifies(&secret()), "bad signature on {}", r.id);
        let ev: Event = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(ev.id, r.id, "webhook-id is the event id");
    }
    for events in [&a, &b] {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let attempts: Vec<&Hit> = got
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
    let got: Vec<(String, u16)> = rx.hits().iter().map(|r| (r.id.clone(), r.status)).collect();
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
    assert_eq!(rx.count(), 2);
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
    // One more for another incident, backing off until t(100): a removed
    // notifier's queue is dropped whatever its schedule.
    let later = lifecycle("mail", 50);
    store.push(
        &later[0].id,
        "gone",
        &later[0].incident.id,
        &later[0].to_payload().unwrap(),
        t(100),
    );
    let (_rx, addr) = receiver(vec![]).await;
    let w = worker(store, tickets(addr, Duration::from_secs(60)), &clock);
    assert_eq!(w.run_once().await.unwrap().dropped, 2);
    assert_eq!(w.store().pending(), 0);
    assert_eq!(
        w.stats()
            .snapshot()
            .get(&("gone".to_string(), Attempt::Expired)),
        Some(&2)
    );
}

#[tokio::test]
async fn send_classifies_network_errors_and_statuses() {
    // A port nobody listens on (held, so nobody else gets it meanwhile).
    let refused = refused_tcp();
    let closed = refused.addr;
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
    until("the event delivered", || w.store().pending() == 0).await;
    shutdown.cancel();
    task.await.unwrap();
    let got: Vec<String> = rx.hits().iter().map(|r| r.id.clone()).collect();
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
    let got = rx.hits();
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
    let got: Vec<(String, u16)> = rx.hits().iter().map(|r| (r.id.clone(), r.status)).collect();
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

/// A [`MemoryOutbox`] whose writes fail while `full` is set, like a full
/// disk: reads still work, outcomes cannot be stored.
#[derive(Default)]
struct FullDisk {
    inner: MemoryOutbox,
    full: std::sync::atomic::AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("database or disk is full")]
struct DiskFull;

impl OutboxStore for FullDisk {
    type Error = DiskFull;

    async fn outbox_notifiers(&self) -> Result<Vec<String>, Self::Error> {
        Ok(self.inner.outbox_notifiers().await.unwrap())
    }
    async fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        Ok(self
            .inner
            .outbox_due(notifier, now, limit, settled)
            .await
            .unwrap())
    }
    async fn outbox_settle(&self, marks: &[(i64, Outcome)]) -> Result<(), Self::Error> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DiskFull);
        }
        self.inner.outbox_settle(marks).await.unwrap();
        Ok(())
    }
}

#[tokio::test]
async fn a_store_that_cannot_write_never_gets_a_delivered_event_sent_twice() {
    // The first request (identity's `opened`) fails; every later one is 200.
    let (rx, addr) = receiver(vec![500]).await;
    let clock = ManualClock::new(t(0));
    let a = lifecycle("identity", 0);
    let b = lifecycle("mail", 100);
    let disk = FullDisk::default();
    push(&disk.inner, &a[..2], t(0));
    push(&disk.inner, &b[..1], t(0));
    disk.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let w = Worker::new(
        disk,
        &[tickets(addr, Duration::from_secs(86_400))],
        Secrets::from_pairs([("HOOK_SECRET", secret())]),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    let tickets = |a: Attempt| {
        w.stats()
            .snapshot()
            .get(&("tickets".to_string(), a))
            .copied()
            .unwrap_or(0)
    };
    // identity/opened fails (retry held in memory), mail/opened is delivered
    // and counted although its mark cannot be stored.
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.delivered, pass.retried), (2, 1, 1));
    assert_eq!(
        (tickets(Attempt::Delivered), tickets(Attempt::Retry)),
        (1, 1)
    );
    assert_eq!(w.stats().unstored().get("tickets"), Some(&2));
    // Passes before the backoff step send nothing: not the delivered event,
    // not the failed one ahead of its schedule.
    for _ in 0..5 {
        clock.advance(Duration::from_millis(90));
        let p = w.run_once().await.unwrap();
        assert_eq!((p.delivered, p.retried, p.dropped), (0, 0, 0));
    }
    assert_eq!(rx.count(), 2);
    // After the backoff step identity/opened goes out, then the event
    // queued behind it, although neither outcome reaches the store.
    clock.advance(Duration::from_secs(1));
    assert_eq!(w.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.run_once().await.unwrap().due, 0);
    assert_eq!(tickets(Attempt::Delivered), 3);
    assert_eq!(w.store().inner.pending(), 3, "nothing could be stored");
    assert_eq!(w.stats().unstored().get("tickets"), Some(&3));

    // The disk recovers: the outcomes are stored, nothing is sent again.
    w.store()
        .full
        .store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(600));
    assert_eq!(w.run_once().await.unwrap().due, 0);
    assert_eq!(w.store().inner.pending(), 0);
    assert_eq!(w.stats().unstored().get("tickets"), Some(&0));
    let rows = w.store().inner.rows();
    assert!(rows.iter().all(|r| r.delivered_at.is_some()), "{rows:?}");
    let got: Vec<(String, u16)> = rx.hits().iter().map(|r| (r.id.clone(), r.status)).collect();
    assert_eq!(
        got,
        vec![
            (a[0].id.clone(), 500),
            (b[0].id.clone(), 200),
            (a[0].id.clone(), 200),
            (a[1].id.clone(), 200),
        ]
    );
}

/// A receiver that answers `status` with a `Location` on `/hooks` until
/// told otherwise (`set_status("/hooks", 200)`).
async fn moved_receiver(status: u16, location: &str) -> (Arc<Receiver>, SocketAddr) {
    let (r, addr) = Receiver::start().await;
    r.set_status("/hooks", status);
    r.set_location(location);
    (r, addr)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_redirect_keeps_the_event_queued_with_backoff_until_the_receiver_answers() {
    let (rx, addr) = moved_receiver(301, "https://hooks.example.com/hooks").await;
    let client = no_redirects();
    let req = PreparedRequest {
        url: url::Url::parse(&format!("http://{addr}/hooks")).unwrap(),
        headers: vec![("webhook-id".into(), "x".into())],
        body: b"{}".to_vec(),
        timeout: Duration::from_secs(5),
    };
    assert_eq!(
        send(&client, &req).await,
        DeliveryResult::Redirect {
            status: 301,
            location: Some("https://hooks.example.com/hooks".into())
        }
    );
    rx.clear();

    let clock = ManualClock::new(t(0));
    let events = lifecycle("identity", 0);
    let store = MemoryOutbox::default();
    push(&store, &events[..2], t(0));
    let w = Worker::new(
        store,
        &[tickets(addr, Duration::from_secs(86_400))],
        Secrets::from_pairs([("HOOK_SECRET", secret())]),
        client,
        Arc::new(clock.clone()),
    );
    let count = |a: Attempt| {
        w.stats()
            .snapshot()
            .get(&("tickets".to_string(), a))
            .copied()
            .unwrap_or(0)
    };
    let pass = w.run_once().await.unwrap();
    assert_eq!((pass.due, pass.retried, pass.dropped), (1, 1, 0));
    assert_eq!(count(Attempt::Redirected), 1);
    let row = w.store().rows()[0].clone();
    assert_eq!(row.row.attempts, 1);
    assert!(row.dropped_at.is_none() && row.row.next_attempt_at > t(0));
    // Second step: still moved, backs off further; the next event waits.
    clock.advance(Duration::from_secs(1));
    assert_eq!(w.run_once().await.unwrap().retried, 1);
    assert_eq!(count(Attempt::Redirected), 2);
    assert_eq!(w.store().rows()[0].row.attempts, 2);
    // The receiver answers again: both events arrive, in order.
    rx.set_status("/hooks", 200);
    clock.advance(Duration::from_secs(2));
    assert_eq!(w.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.run_once().await.unwrap().delivered, 1);
    let got: Vec<(String, u16)> = rx.hits().iter().map(|r| (r.id.clone(), r.status)).collect();
    assert_eq!(
        got,
        vec![
            (events[0].id.clone(), 301),
            (events[0].id.clone(), 301),
            (events[0].id.clone(), 200),
            (events[1].id.clone(), 200),
        ]
    );
    assert_eq!(
        (count(Attempt::Delivered), count(Attempt::Rejected)),
        (2, 0)
    );
}

#[tokio::test]
async fn a_redirect_past_max_age_expires_the_event() {
    let (_rx, addr) = moved_receiver(308, "/elsewhere").await;
    let clock = ManualClock::new(t(0));
    let store = MemoryOutbox::default();
    push(&store, &lifecycle("identity", 0)[..1], t(0));
    let w = Worker::new(
        store,
        &[tickets(addr, Duration::from_secs(60))],
        Secrets::from_pairs([("HOOK_SECRET", secret())]),
        no_redirects(),
        Arc::new(clock.clone()),
    );
    assert_eq!(w.run_once().await.unwrap().retried, 1);
    clock.advance(Duration::from_secs(60));
    assert_eq!(w.run_once().await.unwrap().dropped, 1);
    let stats = w.stats().snapshot();
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Redirected)),
        Some(&1)
    );
    assert_eq!(
        stats.get(&("tickets".to_string(), Attempt::Expired)),
        Some(&1)
    );
    assert_eq!(w.store().pending(), 0);
}

fn named(name: &str, addr: SocketAddr, timeout: Duration) -> Notifier {
    Notifier {
        name: name.into(),
        kind: NotifierKind::Webhook {
            url: UrlSource::Inline(url::Url::parse(&format!("http://{addr}/hooks")).unwrap()),
            secret_env: None,
        },
        max_age: Duration::from_secs(86_400),
        timeout,
    }
}

fn push_for(store: &MemoryOutbox, notifiers: &[&str], e: &Event, at: Timestamp) {
    for n in notifiers {
        store.push(&e.id, n, &e.incident.id, &e.to_payload().unwrap(), at);
    }
}

/// Polls `cond` for up to 10 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    eventually(Duration::from_secs(10), what, String::new, || async {
        cond().then_some(())
    })
    .await
}

fn ids(r: &Receiver) -> Vec<String> {
    r.ids()
}

#[tokio::test]
async fn a_hanging_receiver_delays_only_its_own_queue() {
    let (hang_accepted, hang) = hanging().await;
    let (ok, ok_addr) = receiver(vec![]).await;
    let clock = ManualClock::new(t(0));
    let w = Worker::new(
        MemoryOutbox::default(),
        &[
            named("hang", hang, Duration::from_secs(30)),
            named("ok", ok_addr, Duration::from_secs(30)),
        ],
        Secrets::default(),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    let shutdown = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(w.clone().run(
        shutdown.clone(),
        Arc::clone(&wake),
        Duration::from_secs(3600),
    ));
    let a = lifecycle("identity", 0);
    let b = lifecycle("mail", 100);
    // Each change is written for both notifiers, then the worker is woken,
    // as the engine does.
    for e in [&a[0], &b[0], &a[1], &a[2], &b[1]] {
        push_for(w.store(), &["hang", "ok"], e, clock.now());
        wake.notify_one();
        let want = e.id.clone();
        until("the healthy receiver", || ids(&ok).contains(&want)).await;
    }
    // Every event reached the healthy receiver, in order per incident, while
    // the hanging receiver still holds its first attempts.
    let got = ids(&ok);
    assert_eq!(
        got,
        [&a[0], &b[0], &a[1], &a[2], &b[1]].map(|e| e.id.clone())
    );
    assert!(hang_accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let stats = w.stats().snapshot();
    assert_eq!(stats.get(&("ok".to_string(), Attempt::Delivered)), Some(&5));
    assert_eq!(stats.get(&("hang".to_string(), Attempt::Retry)), None);
    // Shutdown does not wait for the hanging attempts; their events stay queued.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let pending: Vec<String> = w
        .store()
        .rows()
        .iter()
        .filter(|r| r.delivered_at.is_none() && r.dropped_at.is_none())
        .map(|r| r.row.notifier.clone())
        .collect();
    assert_eq!(pending, vec!["hang".to_string(); 5]);
}

#[tokio::test]
async fn a_reload_retries_a_changed_notifier_at_once_and_drops_a_removed_ones_events() {
    let (old, old_addr) = moved_receiver(301, "/new").await;
    let (new, new_addr) = receiver(vec![]).await;
    let (other, other_addr) = receiver(vec![]).await;
    // The wall clock stands still: a backed-off event is never due by time.
    let clock = ManualClock::new(t(0));
    let w = Worker::new(
        MemoryOutbox::default(),
        &[
            named("tickets", old_addr, Duration::from_secs(5)),
            named("chat", other_addr, Duration::from_secs(5)),
        ],
        Secrets::default(),
        no_redirects(),
        Arc::new(clock.clone()),
    );
    let shutdown = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(w.clone().run(
        shutdown.clone(),
        Arc::clone(&wake),
        Duration::from_millis(20),
    ));
    let a = lifecycle("identity", 0);
    push_for(w.store(), &["tickets"], &a[0], clock.now());
    wake.notify_one();
    let count = |n: &str, a: Attempt| {
        w.stats()
            .snapshot()
            .get(&(n.to_string(), a))
            .copied()
            .unwrap_or(0)
    };
    until("a redirect", || count("tickets", Attempt::Redirected) == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ids(&old).len(), 1, "backing off: no second attempt");

    // The operator points `tickets` at the new URL and reloads: the queued
    // event goes out at once, not after its backoff.
    w.set_notifiers(
        &[
            named("tickets", new_addr, Duration::from_secs(5)),
            named("chat", other_addr, Duration::from_secs(5)),
        ],
        Secrets::default(),
    );
    until("delivery at the new URL", || {
        ids(&new) == vec![a[0].id.clone()]
    })
    .await;

    // `chat` is removed while an event waits for it; a notifier added by the
    // same reload gets its events.
    push_for(w.store(), &["chat"], &a[1], clock.now());
    let (added, added_addr) = receiver(vec![]).await;
    w.set_notifiers(
        &[
            named("tickets", new_addr, Duration::from_secs(5)),
            named("pager", added_addr, Duration::from_secs(5)),
        ],
        Secrets::default(),
    );
    until("the removed notifier's event dropped", || {
        count("chat", Attempt::Expired) == 1
    })
    .await;
    push_for(w.store(), &["tickets", "pager"], &a[2], clock.now());
    wake.notify_one();
    until("the added notifier's event", || {
        ids(&added) == vec![a[2].id.clone()]
    })
    .await;
    until("tickets' second event", || ids(&new).len() == 2).await;
    assert!(ids(&other).is_empty(), "the removed notifier got nothing");
    until("an empty outbox", || w.store().pending() == 0).await;
    shutdown.cancel();
    task.await.unwrap();
}

/// A store whose first `outbox_due` for `tickets` panics (a bug in a
/// delivery task).
#[derive(Default)]
struct PanicsOnce {
    inner: MemoryOutbox,
    panicked: std::sync::atomic::AtomicBool,
}

impl OutboxStore for PanicsOnce {
    type Error = MemoryOutboxError;

    async fn outbox_notifiers(&self) -> Result<Vec<String>, Self::Error> {
        self.inner.outbox_notifiers().await
    }
    async fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        if notifier == "tickets"
            && !self
                .panicked
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("injected bug in the tickets queue");
        }
        self.inner.outbox_due(notifier, now, limit, settled).await
    }
    async fn outbox_settle(&self, marks: &[(i64, Outcome)]) -> Result<(), Self::Error> {
        self.inner.outbox_settle(marks).await
    }
}

#[tokio::test]
async fn a_panicking_delivery_task_is_counted_and_restarted_from_the_outbox() {
    let (rx, addr) = receiver(vec![]).await;
    let (chat, chat_addr) = receiver(vec![]).await;
    let clock = ManualClock::new(t(0));
    let store = PanicsOnce::default();
    let a = lifecycle("identity", 0);
    push_for(&store.inner, &["tickets", "chat"], &a[0], t(0));
    let w = Worker::new(
        store,
        &[
            named("tickets", addr, Duration::from_secs(5)),
            named("chat", chat_addr, Duration::from_secs(5)),
        ],
        Secrets::default(),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(w.clone().run(
        shutdown.clone(),
        Arc::new(tokio::sync::Notify::new()),
        Duration::from_secs(3600),
    ));
    // `chat` is served at once; `tickets` after its restart.
    until("chat", || ids(&chat).len() == 1).await;
    until("tickets after the restart", || {
        ids(&rx) == vec![a[0].id.clone()]
    })
    .await;
    assert_eq!(w.stats().restarts().get("tickets"), Some(&1));
    assert_eq!(w.stats().restarts().get("chat"), None);
    shutdown.cancel();
    task.await.unwrap();
}
