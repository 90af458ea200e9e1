//! The worker over the real SQLite store: incident changes and their events
//! written in one transaction, delivered in order through a flaky receiver,
//! and pending events delivered after the store is closed and reopened (a
//! restart).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::support::webhooks::Receiver;
use sentinel::clock::ManualClock;
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::{Ack, Change, Incident, ServiceIncidents};
use sentinel::notify::worker::Worker;
use sentinel::notify::{EventContext, Secrets, outbox_inserts};
use sentinel::store::Store;

const BASE: i64 = 1_800_000_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

fn notifiers(addr: SocketAddr) -> Vec<Notifier> {
    ["a", "b"]
        .iter()
        .map(|name| Notifier {
            name: name.to_string(),
            kind: NotifierKind::Webhook {
                url: UrlSource::Inline(
                    url::Url::parse(&format!("http://{addr}/hooks/{name}")).unwrap(),
                ),
                secret_env: None,
            },
            max_age: Duration::from_secs(86_400),
            timeout: Duration::from_secs(5),
        })
        .collect()
}

async fn save(store: &Store, c: &Change, at: Timestamp) {
    let ctx = EventContext {
        availability_ratio: None,
        error_budget_remaining_ratio: None,
        api_base: "http://127.0.0.1:9464".into(),
    };
    let inc = &c.incident;
    let events = outbox_inserts(c, &["a".into(), "b".into()], &ctx, at).unwrap();
    store
        .save_incident(
            inc.id.clone(),
            inc.service.clone(),
            inc.state.as_str().to_string(),
            inc.opened_at.as_second(),
            inc.to_json().unwrap(),
            events,
        )
        .await
        .unwrap();
}

/// Opened, acknowledged and resolved, each saved with its events.
async fn lifecycle(store: &Store) -> Vec<String> {
    let policy = IncidentPolicy {
        open_after: 2,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P1".into(),
        notify: vec!["a".into(), "b".into()],
    };
    let mut m = ServiceIncidents::new("identity", &policy, None, 0);
    m.on_run(t(0), "login", false, "down", false);
    let opened = m.on_run(t(10), "login", false, "down", false).remove(0);
    save(store, &opened, t(10)).await;
    let Ack::Changed(acked) = m.ack(t(20), &opened.incident.id, "bob", None).unwrap() else {
        panic!("ack must change");
    };
    save(store, &acked, t(20)).await;
    let resolved = m.on_run(t(30), "login", true, "", false).remove(0);
    save(store, &resolved, t(30)).await;
    [opened, acked, resolved]
        .iter()
        .map(|c| c.event.as_ref().unwrap().0.clone())
        .collect()
}

/// Per notifier: attempts follow the event order (an event is never sent
/// before its predecessor got a 200), and each event got exactly one 200.
fn assert_in_order(log: &[(String, String, u16)], ids: &[String], notifier: &str) {
    let mut next = 0;
    for (n, id, status) in log.iter().filter(|(n, _, _)| n == notifier) {
        assert_eq!(id, &ids[next], "{n}: out of order in {log:?}");
        if *status == 200 {
            next += 1;
        }
    }
    assert_eq!(next, ids.len(), "{notifier}: every event delivered");
}

#[tokio::test]
async fn events_survive_a_restart_and_arrive_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    let (rx, addr) = Receiver::scripted(vec![500, 500, 503]).await;
    let clock = ManualClock::new(t(40));

    let store = Store::open(&path).unwrap();
    let ids = lifecycle(&store).await;
    let body = store.load_incidents(0).await.unwrap();
    assert_eq!(body.len(), 1);
    let inc = Incident::from_json(&body[0].1).unwrap();
    assert_eq!(inc.resolved_at, Some(t(30)));
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        vec![("a".into(), 3), ("b".into(), 3)]
    );

    // One pass against a failing receiver, then "crash".
    let w = Worker::new(
        store.clone(),
        &notifiers(addr),
        Secrets::default(),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    w.run_once().await.unwrap();
    drop(w);
    store.close().await.unwrap();
    let pending_before = {
        let s = Store::open(&path).unwrap();
        let d = s.outbox_depth().await.unwrap();
        s.close().await.unwrap();
        d
    };
    assert!(pending_before.iter().map(|(_, n)| n).sum::<u64>() > 0);

    // Restart: a new store handle and worker deliver the rest.
    let store = Store::open(&path).unwrap();
    let w = Worker::new(
        store.clone(),
        &notifiers(addr),
        Secrets::default(),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    for _ in 0..50 {
        if store.outbox_depth().await.unwrap().is_empty() {
            break;
        }
        clock.advance(Duration::from_secs(301));
        w.run_once().await.unwrap();
    }
    assert_eq!(store.outbox_depth().await.unwrap(), vec![]);
    // (notifier, event id, status) of every request, in arrival order.
    let log: Vec<(String, String, u16)> = rx
        .hits()
        .into_iter()
        .map(|h| {
            (
                h.path.trim_start_matches("/hooks/").to_string(),
                h.id,
                h.status,
            )
        })
        .collect();
    assert_eq!(log.iter().filter(|(_, _, s)| *s != 200).count(), 3);
    assert_eq!(log.len(), 6 + 3);
    assert_in_order(&log, &ids, "a");
    assert_in_order(&log, &ids, "b");
}

/// What the Alertmanager re-post sends: per incident still open, the last
/// event the notifier finished (delivered, dropped, or finished but not yet
/// recorded); a resolved incident, an incident with nothing finished, and
/// other notifiers' rows give none.
#[tokio::test]
async fn open_heads_are_the_last_finished_event_of_each_open_incident() {
    use sentinel::store::{OutboxMark, OutboxOutcome};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sentinel.db")).unwrap();
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P1".into(),
        notify: vec!["a".into(), "b".into()],
    };
    // identity: opened and acknowledged, still open.
    let mut identity = ServiceIncidents::new("identity", &policy, None, 0);
    let opened = identity
        .on_run(t(0), "login", false, "down", false)
        .remove(0);
    save(&store, &opened, t(0)).await;
    let Ack::Changed(acked) = identity
        .ack(t(20), &opened.incident.id, "bob", None)
        .unwrap()
    else {
        panic!("ack must change");
    };
    save(&store, &acked, t(20)).await;
    // portal: opened and resolved.
    let mut portal = ServiceIncidents::new("portal", &policy, None, 0);
    let p_opened = portal.on_run(t(5), "home", false, "down", false).remove(0);
    save(&store, &p_opened, t(5)).await;
    let p_resolved = portal.on_run(t(30), "home", true, "", false).remove(0);
    save(&store, &p_resolved, t(30)).await;
    // billing: opened, nothing finished for it yet.
    let mut billing = ServiceIncidents::new("billing", &policy, None, 0);
    let b_opened = billing.on_run(t(7), "pay", false, "down", false).remove(0);
    save(&store, &b_opened, t(7)).await;

    let ev = |c: &Change| c.event.as_ref().unwrap().0.clone();
    let mark = |seq, outcome| OutboxMark { seq, outcome };
    // First events of each queue, then what follows them.
    let first = [
        mark(
            seq(&store, "a", &ev(&opened)).await,
            OutboxOutcome::Delivered { at: BASE },
        ),
        mark(
            seq(&store, "b", &ev(&opened)).await,
            OutboxOutcome::Dropped { at: BASE },
        ),
        mark(
            seq(&store, "a", &ev(&p_opened)).await,
            OutboxOutcome::Delivered { at: BASE },
        ),
        mark(
            seq(&store, "a", &ev(&b_opened)).await,
            OutboxOutcome::Retry {
                attempts: 1,
                next_attempt_at: BASE + 60,
            },
        ),
    ];
    store.outbox_settle(first.to_vec()).await.unwrap();
    let then = mark(
        seq(&store, "a", &ev(&p_resolved)).await,
        OutboxOutcome::Delivered { at: BASE },
    );
    store.outbox_settle(vec![then]).await.unwrap();
    let acked_seq = seq(&store, "a", &ev(&acked)).await;

    let heads = |rows: Vec<sentinel::store::OutboxRow>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|r| (r.incident_id, r.event_id))
            .collect()
    };
    // a: identity's acknowledgement is pending, so its opening is the head.
    assert_eq!(
        heads(store.outbox_open_heads("a".into(), vec![]).await.unwrap()),
        vec![(opened.incident.id.clone(), ev(&opened))]
    );
    // Finished but not recorded yet: the acknowledgement is the head.
    assert_eq!(
        heads(
            store
                .outbox_open_heads("a".into(), vec![acked_seq])
                .await
                .unwrap()
        ),
        vec![(opened.incident.id.clone(), ev(&acked))]
    );
    // A dropped event was finished too.
    assert_eq!(
        heads(store.outbox_open_heads("b".into(), vec![]).await.unwrap()),
        vec![(opened.incident.id.clone(), ev(&opened))]
    );
    assert_eq!(
        heads(store.outbox_open_heads("c".into(), vec![]).await.unwrap()),
        vec![]
    );
    store.close().await.unwrap();
}

/// The `seq` of the due row of `notifier` for event `event`.
async fn seq(store: &Store, notifier: &str, event: &str) -> i64 {
    let rows = store.outbox_due(i64::MAX, 100).await.unwrap();
    rows.iter()
        .find(|r| r.notifier == notifier && r.event_id == event)
        .unwrap_or_else(|| panic!("no due row {notifier} {event} in {rows:?}"))
        .seq
}
