//! The Alertmanager re-post in the delivery worker, against a recording
//! receiver on loopback and a manual clock (so every `endsAt` is exact):
//! open incidents' alerts are sent again, batched, with the event's own
//! alert; a resolved incident drops out and nothing follows its resolution;
//! re-posts are counted apart from deliveries.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::support::eventually;
use crate::support::webhooks::{Hit, Receiver};
use sentinel::clock::{Clock, ManualClock};
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::ServiceIncidents;
use sentinel::notify::worker::{Attempt, MemoryOutbox, Repost, Worker};
use sentinel::notify::{Event, EventContext};

const BASE: i64 = 1_800_000_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

/// Opened at `s0`, resolved at `s0 + 10`.
fn lifecycle(service: &str, s0: i64) -> Vec<Event> {
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P2".into(),
        notify: vec!["am".into()],
    };
    let ctx = EventContext {
        availability_ratio: None,
        error_budget_remaining_ratio: None,
        api_base: "http://127.0.0.1:9464".into(),
    };
    let mut m = ServiceIncidents::new(service, &policy, None, 0);
    let mut changes = m.on_run(t(s0), "c", false, "down", false);
    changes.extend(m.on_run(t(s0 + 10), "c", true, "", false));
    changes
        .iter()
        .map(|c| Event::from_change(c, t(s0), &ctx).unwrap())
        .collect()
}

fn push(store: &MemoryOutbox, e: &Event, at: Timestamp) {
    store.push(&e.id, "am", &e.incident.id, &e.to_payload().unwrap(), at);
}

/// `(incident_id, endsAt)` of every alert of a request.
fn alerts(h: &Hit) -> Vec<(String, String)> {
    h.json()
        .as_array()
        .unwrap_or_else(|| panic!("not an alert array: {}", h.body_text()))
        .iter()
        .map(|a| {
            (
                a["labels"]["incident_id"].as_str().unwrap().to_string(),
                a["endsAt"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn until(what: &str, rx: &Receiver, cond: impl Fn(&[Hit]) -> bool) {
    eventually(
        Duration::from_secs(10),
        what,
        || format!("{:?}", rx.hits().iter().map(alerts).collect::<Vec<_>>()),
        || async { cond(&rx.hits()).then_some(()) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_alerts_are_reposted_batched_until_their_incident_resolves() {
    let (rx, addr) = Receiver::start().await;
    let clock = ManualClock::new(t(100));
    let am = Notifier {
        name: "am".into(),
        kind: NotifierKind::Alertmanager {
            url: UrlSource::Inline(url::Url::parse(&format!("http://{addr}")).unwrap()),
            repost_every: Duration::from_secs(1),
        },
        max_age: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    };
    let w = Worker::new(
        MemoryOutbox::default(),
        &[am],
        sentinel::notify::Secrets::default(),
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

    let identity = lifecycle("identity", 0);
    let portal = lifecycle("portal", 5);
    push(w.store(), &identity[0], clock.now());
    push(w.store(), &portal[0], clock.now());
    wake.notify_one();
    let (a, b) = (
        identity[0].incident.id.clone(),
        portal[0].incident.id.clone(),
    );
    // Sent at t(100) on the manual clock: endsAt is 4 × 1s later, always.
    let ahead = "2027-01-15T08:01:44Z".to_string();
    let both = vec![(a.clone(), ahead.clone()), (b.clone(), ahead.clone())];
    until("a re-post of both alerts in one request", &rx, |hits| {
        hits.iter().any(|h| alerts(h) == both)
    })
    .await;

    // identity resolves: its resolution goes out, then only portal's alert.
    push(w.store(), &identity[1], clock.now());
    wake.notify_one();
    let portal_only = vec![(b.clone(), ahead.clone())];
    let resolved_at = vec![(a.clone(), "2027-01-15T08:00:10Z".to_string())];
    until(
        "the resolution, then two re-posts of portal alone",
        &rx,
        |hits| {
            let sent: Vec<_> = hits.iter().map(alerts).collect();
            sent.iter()
                .position(|s| *s == resolved_at)
                .is_some_and(|end| {
                    sent[end + 1..]
                        .iter()
                        .filter(|s| **s == portal_only)
                        .count()
                        >= 2
                })
        },
    )
    .await;
    let hits = rx.hits();
    let sent: Vec<Vec<(String, String)>> = hits.iter().map(alerts).collect();
    let end = sent.iter().position(|s| *s == resolved_at).unwrap();
    // Before it: the openings and re-posts (the same alert: the manual
    // clock stands still), all firing.
    for s in &sent[..end] {
        assert!(
            s.iter().all(|(_, ends)| *ends == ahead),
            "only firing alerts before the resolution: {sent:?}"
        );
    }
    // After it: identity never again.
    for s in &sent[end + 1..] {
        assert_eq!(*s, portal_only, "{sent:?}");
    }
    assert!(hits.iter().all(|h| h.path == "/api/v2/alerts"));

    shutdown.cancel();
    task.await.unwrap();
    // Three events delivered; every other request was a re-post, counted
    // per alert when Alertmanager answers (a re-post the shutdown cut off
    // after the receiver logged it is not counted).
    let stats = w.stats();
    assert_eq!(
        stats
            .snapshot()
            .get(&("am".to_string(), Attempt::Delivered)),
        Some(&3)
    );
    let sent: Vec<Vec<(String, String)>> = rx.hits().iter().map(alerts).collect();
    let reposted = (sent.iter().map(Vec::len).sum::<usize>() - 3) as u64;
    let last = sent.last().map_or(0, Vec::len) as u64;
    let counted = stats
        .reposts()
        .get(&("am".to_string(), Repost::Delivered))
        .copied()
        .unwrap_or(0);
    assert!(
        counted == reposted || counted == reposted - last,
        "{counted} counted, {reposted} re-posted: {sent:?}"
    );
    assert_eq!(
        stats.reposts().get(&("am".to_string(), Repost::Failed)),
        None
    );
}

/// An Alertmanager that accepts the re-post and never answers does not hold
/// up shutdown (its timeout here is the 5-minute maximum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_alertmanager_does_not_hold_up_shutdown() {
    use sentinel::notify::worker::{OutboxStore, Outcome};
    let (accepted, addr) = crate::support::servers::hanging().await;
    let clock = ManualClock::new(t(100));
    let am = Notifier {
        name: "am".into(),
        kind: NotifierKind::Alertmanager {
            url: UrlSource::Inline(url::Url::parse(&format!("http://{addr}")).unwrap()),
            repost_every: Duration::from_secs(1),
        },
        max_age: Duration::from_secs(3600),
        timeout: Duration::from_secs(300),
    };
    let w = Worker::new(
        MemoryOutbox::default(),
        &[am],
        sentinel::notify::Secrets::default(),
        reqwest::Client::new(),
        Arc::new(clock.clone()),
    );
    // The opening was delivered before (by an earlier process).
    let opened = &lifecycle("identity", 0)[0];
    push(w.store(), opened, clock.now());
    w.store()
        .outbox_settle(&[(1, Outcome::Delivered { at: t(100) })])
        .await
        .unwrap();
    assert_eq!(w.store().pending(), 0);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(w.clone().run(
        shutdown.clone(),
        Arc::new(tokio::sync::Notify::new()),
        Duration::from_secs(3600),
    ));
    eventually(
        Duration::from_secs(10),
        "the re-post at the hanging Alertmanager",
        String::new,
        || async { (accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1).then_some(()) },
    )
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the worker stops while a re-post hangs")
        .unwrap();
    assert_eq!(w.stats().reposts(), Default::default());
}

/// A reload that changes `repost_every` takes effect at once: the re-posts
/// that follow carry `endsAt` four of the *new* periods ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_repost_every_applies_to_the_next_reposts() {
    let (rx, addr) = Receiver::start().await;
    let clock = ManualClock::new(t(100));
    let am = |every: u64| Notifier {
        name: "am".into(),
        kind: NotifierKind::Alertmanager {
            url: UrlSource::Inline(url::Url::parse(&format!("http://{addr}")).unwrap()),
            repost_every: Duration::from_secs(every),
        },
        max_age: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
    };
    let w = Worker::new(
        MemoryOutbox::default(),
        &[am(300)],
        sentinel::notify::Secrets::default(),
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
    let identity = lifecycle("identity", 0);
    let id = identity[0].incident.id.clone();
    push(w.store(), &identity[0], clock.now());
    wake.notify_one();
    // Four 5-minute periods after t(100), then four 1-second ones.
    let slow = vec![(id.clone(), "2027-01-15T08:21:40Z".to_string())];
    let fast = vec![(id.clone(), "2027-01-15T08:01:44Z".to_string())];
    until("the opening with endsAt 20 minutes ahead", &rx, |hits| {
        hits.iter().any(|h| alerts(h) == slow)
    })
    .await;
    assert!(
        rx.hits().iter().all(|h| alerts(h) == slow),
        "before the reload every alert is 4 × 5 min ahead: {:?}",
        rx.hits().iter().map(alerts).collect::<Vec<_>>()
    );

    w.set_notifiers(&[am(1)], sentinel::notify::Secrets::default());
    until("re-posts at the new period", &rx, |hits| {
        hits.iter().filter(|h| alerts(h) == fast).count() >= 2
    })
    .await;
    let sent: Vec<_> = rx.hits().iter().map(alerts).collect();
    let first_fast = sent.iter().position(|s| *s == fast).unwrap();
    assert!(
        sent[first_fast..].iter().all(|s| *s == fast),
        "after the reload only the new period: {sent:?}"
    );
    shutdown.cancel();
    task.await.unwrap();
}
