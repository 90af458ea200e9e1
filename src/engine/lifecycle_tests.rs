//! The engine task itself ([`start`] and its loop) on a manual clock with a
//! real SQLite store in a temp dir: restarts, reloads and a failing disk,
//! each checked against what the store holds and announces.
//!
//! The invariant under test everywhere: every incident a snapshot shows is
//! stored exactly as shown, every incident event in the outbox follows an
//! `incident.opened` of the same incident, and ids never change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::*;
use std::sync::atomic::Ordering;

use crate::clock::ManualClock;
use crate::config::parse_str;
use crate::incident::{AlertLevel, ResolvedBy, Trigger};
use crate::incident::{Incident, ServiceState, State};
use crate::slo::Counts;
use crate::store::{BucketDelta, Store};

/// Services named `names`, each one check a minute on a 99 % SLO, told to
/// the `tickets` notifier; `incident` adds keys to their `incident:` block.
/// Without one, `open_after` is out of reach, so only burn-rate alerts open
/// incidents.
fn config_of(names: &[&str], incident: &str) -> String {
    let mut text = String::from(
        "notifiers:\n  - name: tickets\n    type: webhook\n    url: http://127.0.0.1:1/hooks\nservices:\n",
    );
    for n in names {
        text.push_str(&format!(
            "  - name: {n}\n    checks:\n      - name: home\n        interval: 1m\n        \
             http: {{ url: \"http://127.0.0.1:1/\" }}\n    slo: {{ objective: 99, window: 30d }}\n    \
             incident: {{ resolve_after: 2, severity: P1, notify: [tickets], {} }}\n",
            if incident.is_empty() { "open_after: 1000" } else { incident }
        ));
    }
    text
}

pub(super) const T0: i64 = 1_767_312_000; // 2026-01-02T00:00:00Z

pub(super) fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(T0 + secs).unwrap()
}

fn minute(m: i64) -> Timestamp {
    t(m * 60)
}

fn cfg(text: &str) -> Arc<Config> {
    Arc::new(parse_str(text, "test.yaml").unwrap())
}

pub(super) struct Harness {
    _dir: tempfile::TempDir,
    pub(super) path: PathBuf,
    pub(super) clock: ManualClock,
}

pub(super) struct Running {
    pub(super) handle: EngineHandle,
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
    store: Store,
}

impl Harness {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Self {
            _dir: dir,
            path,
            clock: ManualClock::new(t(0)),
        }
    }

    /// Start the engine on the store at `now`.
    pub(super) async fn start(&self, config: &str, now: Timestamp) -> Running {
        self.clock.set(now);
        let store = Store::open(&self.path).unwrap();
        let stop = CancellationToken::new();
        let opts = EngineOptions {
            flush_every: Duration::from_millis(10),
            snapshot_every: Duration::from_millis(10),
            prune_every: Duration::from_secs(3600),
            store_check_every: Duration::from_millis(10),
        };
        let (handle, task) = start(
            cfg(config),
            store.clone(),
            Arc::new(self.clock.clone()),
            opts,
            Arc::new(tokio::sync::Notify::new()),
            stop.clone(),
        )
        .await
        .unwrap();
        Running {
            handle,
            task,
            stop,
            store,
        }
    }
}

impl Running {
    pub(super) fn run(&self, at: Timestamp, good: bool) {
        self.handle.send(EngineMsg::Run(RunRecord {
            service: "web".into(),
            check: "home".into(),
            at,
            good,
            latency: Duration::from_millis(10),
            detail: if good {
                String::new()
            } else {
                "status 503".into()
            },
        }));
    }

    /// Wait until everything sent so far is handled, move the clock to
    /// `now`, and return the first snapshot published at `now`.
    pub(super) async fn settle(&self, clock: &ManualClock, now: Timestamp) -> Arc<Snapshot> {
        // A command is answered after every message queued before it.
        let barrier = IncidentCommand::Ack {
            id: "barrier".into(),
            by: "test".into(),
            note: None,
            source: crate::incident::Source::Api,
        };
        assert!(self.handle.command(barrier).await.unwrap().is_err());
        clock.set(now);
        for _ in 0..2000 {
            let snap = self.handle.snapshot();
            if snap.at == Some(now) {
                return snap;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no snapshot published at {now}");
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
        self.store.close().await.unwrap();
    }
}

/// What the store holds: incidents by id, outbox events as (incident id,
/// event type) in order, and the service states.
struct Stored {
    incidents: Vec<Incident>,
    events: Vec<(String, String)>,
    states: Vec<(String, ServiceState)>,
}

fn stored(path: &Path) -> Stored {
    let conn = rusqlite::Connection::open(path).unwrap();
    let incidents = conn
        .prepare("SELECT body FROM incidents ORDER BY opened_at, id")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|b| Incident::from_json(&b.unwrap()).unwrap())
        .collect();
    let events = conn
        .prepare("SELECT incident_id, payload FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|row| {
            let (id, payload) = row.unwrap();
            let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (id, v["type"].as_str().unwrap().to_string())
        })
        .collect();
    let states = conn
        .prepare("SELECT service, body FROM service_state ORDER BY service")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|row| {
            let (s, b) = row.unwrap();
            (s, ServiceState::from_json(&b).unwrap())
        })
        .collect();
    Stored {
        incidents,
        events,
        states,
    }
}

/// The invariant: the snapshot shows exactly the stored incidents (same
/// state, same timestamps), each open incident is its service's, and every
/// stored event of an incident comes after that incident's `opened`.
fn assert_consistent(path: &Path, snap: &Snapshot) -> Stored {
    let st = stored(path);
    let mut shown = snap.incidents.clone();
    shown.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.id.cmp(&b.id)));
    assert_eq!(shown, st.incidents, "the snapshot shows what is stored");
    for v in &snap.services {
        let open: Vec<&str> = st
            .incidents
            .iter()
            .filter(|i| i.service == v.name && i.state == State::Open)
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(v.open_incident.as_deref(), open.first().copied());
    }
    let mut opened = std::collections::HashSet::new();
    for (id, kind) in &st.events {
        if kind == "incident.opened" {
            assert!(opened.insert(id.clone()), "{id} opened twice");
        } else {
            assert!(opened.contains(id), "{kind} of {id} before its opened");
        }
    }
    st
}

fn events_of(st: &Stored, id: &str) -> Vec<String> {
    st.events
        .iter()
        .filter(|(i, _)| i == id)
        .map(|(_, k)| k.clone())
        .collect()
}

/// 30 healthy minutes, then 30 failing ones: burn(1h) and burn(5m) are far
/// over 14.4 (a page) whether the denominator is the valid runs or the 60
/// the schedule produces in an hour.
fn healthy_then_failing(e: &Running) {
    for m in 0..60 {
        e.run(minute(m), m < 30);
    }
}

#[tokio::test]
async fn a_restart_after_a_manual_resolve_while_a_page_fires_invents_nothing() {
    let h = Harness::new();
    let e = h.start(&config_of(&["web"], ""), t(0)).await;
    healthy_then_failing(&e);
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(30))
        .await;
    assert!(snap.services[0].alerts.page);
    let id = snap.services[0]
        .open_incident
        .clone()
        .expect("a page opens");
    let inc = snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(
        inc.trigger,
        Trigger::BurnRate {
            level: AlertLevel::Page
        }
    );

    let resolved_at = minute(59) + Duration::from_secs(40);
    h.clock.set(resolved_at);
    let (inc, changed) = e
        .handle
        .command(IncidentCommand::Resolve {
            id: id.clone(),
            by: "alice".into(),
            source: crate::incident::Source::Api,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(inc.state, State::Resolved);
    // The page keeps firing: the same episode does not reopen.
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(50))
        .await;
    assert!(snap.services[0].alerts.page);
    assert_eq!(snap.services[0].open_incident, None);
    let st = assert_consistent(&h.path, &snap);
    assert_eq!(st.incidents.len(), 1);
    assert_eq!(
        st.states,
        vec![(
            "web".to_string(),
            ServiceState {
                alert_hold: Some(crate::incident::AlertHold {
                    level: AlertLevel::Page,
                    incident: id.clone(),
                    since: resolved_at,
                }),
            }
        )]
    );
    e.stop().await;

    // Two restarts while the page still fires: no new incident, no new id,
    // nothing announced that was not stored.
    for (i, at) in [minute(60), minute(61)].into_iter().enumerate() {
        let e = h.start(&config_of(&["web"], ""), at).await;
        let first = e.handle.snapshot();
        assert_eq!(first.at, Some(at), "restart {i}");
        assert!(first.services[0].alerts.page, "restart {i}");
        assert_eq!(first.services[0].open_incident, None, "restart {i}");
        let st = assert_consistent(&h.path, &first);
        assert_eq!(
            st.incidents
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>(),
            [id.as_str()]
        );
        assert_eq!(
            events_of(&st, &id),
            ["incident.opened", "incident.resolved"]
        );
        let later = e.settle(&h.clock, at + Duration::from_secs(20)).await;
        assert_consistent(&h.path, &later);
        assert_eq!(later.incidents.len(), 1);
        assert_eq!(
            later.incident_counts[&ServiceSeverity::new("web", "P1")],
            IncidentCounts { open: 0, opened: 1 }
        );
        e.stop().await;
    }
}

#[tokio::test]
async fn a_reload_that_turns_burn_alerts_off_resolves_the_incident_the_alert_held_open() {
    let h = Harness::new();
    let e = h.start(&config_of(&["web"], ""), t(0)).await;
    healthy_then_failing(&e);
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(30))
        .await;
    let id = snap.services[0]
        .open_incident
        .clone()
        .expect("a page opens");
    // The check recovers (resolve_after 2); the page still fires, so the
    // incident is restored but stays open.
    e.run(minute(60), true);
    e.run(minute(61), true);
    let snap = e
        .settle(&h.clock, minute(61) + Duration::from_secs(30))
        .await;
    assert!(snap.services[0].alerts.page);
    let inc = snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(inc.state, State::Open);
    assert_eq!(inc.restored_at, Some(minute(60)));

    // Burn-rate alerts off: nothing holds it open any more; it resolves at
    // the reload, restored when the check recovered.
    let off = config_of(&["web"], "open_after: 1000, burn_rate_alerts: false");
    h.clock.set(minute(62));
    e.handle.send(EngineMsg::Reconfigure(cfg(&off)));
    let snap = e
        .settle(&h.clock, minute(62) + Duration::from_secs(1))
        .await;
    assert_eq!(snap.services[0].open_incident, None);
    let st = assert_consistent(&h.path, &snap);
    let inc = &st.incidents[0];
    assert_eq!(inc.id, id);
    assert_eq!(inc.state, State::Resolved);
    assert_eq!(inc.resolved_by, Some(ResolvedBy::Auto));
    assert_eq!(inc.resolved_at, Some(minute(62)));
    assert_eq!(inc.restored_at, Some(minute(60)));
    assert_eq!(
        events_of(&st, &id),
        ["incident.opened", "incident.resolved"]
    );
    e.stop().await;
}

#[tokio::test]
async fn a_restart_mid_incident_keeps_the_id_and_resolves_it_by_the_documented_rule() {
    let h = Harness::new();
    let e = h.start(&config_of(&["web"], ""), t(0)).await;
    healthy_then_failing(&e);
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(30))
        .await;
    let id = snap.services[0]
        .open_incident
        .clone()
        .expect("a page opens");
    e.stop().await;

    // Restarted with burn-rate alerts off: the incident continues with its
    // id; nothing assumes the alert still fires, so each check must show
    // resolve_after (2) good runs and then it resolves.
    let off = config_of(&["web"], "open_after: 1000, burn_rate_alerts: false");
    let e = h.start(&off, minute(60)).await;
    let first = e.handle.snapshot();
    assert_eq!(
        first.services[0].open_incident.as_deref(),
        Some(id.as_str())
    );
    assert_consistent(&h.path, &first);
    e.run(minute(60), false);
    let snap = e
        .settle(&h.clock, minute(60) + Duration::from_secs(30))
        .await;
    assert_eq!(snap.services[0].open_incident.as_deref(), Some(id.as_str()));
    e.run(minute(61), true);
    let snap = e
        .settle(&h.clock, minute(61) + Duration::from_secs(30))
        .await;
    assert_eq!(snap.services[0].open_incident.as_deref(), Some(id.as_str()));
    e.run(minute(62), true);
    let snap = e
        .settle(&h.clock, minute(62) + Duration::from_secs(30))
        .await;
    assert_eq!(snap.services[0].open_incident, None);
    let st = assert_consistent(&h.path, &snap);
    assert_eq!(st.incidents.len(), 1);
    assert_eq!(st.incidents[0].id, id);
    assert_eq!(st.incidents[0].restored_at, Some(minute(61)));
    assert_eq!(st.incidents[0].resolved_at, Some(minute(62)));
    assert_eq!(
        events_of(&st, &id),
        ["incident.opened", "incident.resolved"]
    );
    e.stop().await;
}

#[tokio::test]
async fn the_first_evaluation_at_start_is_stored_and_announced_before_it_is_shown() {
    let h = Harness::new();
    // Counts were flushed, then the daemon died before it evaluated alerts.
    {
        let store = Store::open(&h.path).unwrap();
        let deltas = (0..60)
            .map(|m| BucketDelta {
                service: "web".into(),
                check: "home".into(),
                at_minute: minute(m).as_second(),
                counts: Counts {
                    valid: 1,
                    good: u64::from(m < 30),
                    latency_good: u64::from(m < 30),
                },
            })
            .collect();
        store.add_counts(deltas).await.unwrap();
        store.close().await.unwrap();
    }
    let at = minute(59) + Duration::from_secs(30);
    let e = h.start(&config_of(&["web"], ""), at).await;
    let first = e.handle.snapshot();
    assert_eq!(first.at, Some(at));
    assert!(first.services[0].alerts.page);
    let id = first.services[0]
        .open_incident
        .clone()
        .expect("the first evaluation opens it");
    let st = assert_consistent(&h.path, &first);
    assert_eq!(events_of(&st, &id), ["incident.opened"]);
    assert_eq!(
        first.incident_counts[&ServiceSeverity::new("web", "P1")],
        IncidentCounts { open: 1, opened: 1 }
    );
    e.stop().await;

    // The next start finds it stored: same id, nothing new.
    let e = h
        .start(&config_of(&["web"], ""), at + Duration::from_secs(20))
        .await;
    let again = e.handle.snapshot();
    assert_eq!(
        again.services[0].open_incident.as_deref(),
        Some(id.as_str())
    );
    let st = assert_consistent(&h.path, &again);
    assert_eq!(st.incidents.len(), 1);
    assert_eq!(events_of(&st, &id), ["incident.opened"]);
    e.stop().await;
}

#[tokio::test]
async fn with_a_failing_disk_readers_see_an_incident_only_once_it_is_stored() {
    let h = Harness::new();
    let streak = config_of(&["web"], "open_after: 2");
    let e = h.start(&streak, t(0)).await;
    // Every incident write fails, as on a full disk.
    let block = rusqlite::Connection::open(&h.path).unwrap();
    block
        .execute_batch(
            "CREATE TRIGGER full BEFORE INSERT ON incidents BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .unwrap();
    e.run(minute(0), false);
    e.run(minute(1), false);
    let snap = e
        .settle(&h.clock, minute(1) + Duration::from_secs(10))
        .await;
    assert_eq!(snap.services[0].open_incident, None);
    assert!(snap.incidents.is_empty());
    assert_eq!(
        snap.incident_counts
            .get(&ServiceSeverity::new("web", "P1"))
            .copied()
            .unwrap_or_default(),
        IncidentCounts { open: 0, opened: 0 }
    );
    assert_eq!(
        e.handle
            .stats
            .incident_writes_pending
            .load(Ordering::Relaxed),
        1
    );
    assert!(e.handle.stats.store_write_errors.load(Ordering::Relaxed) >= 1);
    assert_consistent(&h.path, &snap);

    // The disk has room again: the queued write lands, then it is shown.
    block.execute_batch("DROP TRIGGER full;").unwrap();
    let mut at = minute(1) + Duration::from_secs(10);
    let snap = loop {
        at += Duration::from_secs(1);
        let snap = e.settle(&h.clock, at).await;
        if snap.services[0].open_incident.is_some() {
            break snap;
        }
        assert!(at < minute(2), "the write was never retried");
    };
    let st = assert_consistent(&h.path, &snap);
    assert_eq!(events_of(&st, &st.incidents[0].id), ["incident.opened"]);
    assert_eq!(
        e.handle
            .stats
            .incident_writes_pending
            .load(Ordering::Relaxed),
        0
    );
    e.stop().await;
}

#[tokio::test]
async fn a_service_removed_with_an_open_incident_is_resolved_and_announced() {
    let two = config_of(&["web", "other"], "");
    let h = Harness::new();
    let e = h.start(&two, t(0)).await;
    healthy_then_failing(&e);
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(30))
        .await;
    let id = snap
        .services
        .iter()
        .find(|v| v.name == "web")
        .and_then(|v| v.open_incident.clone())
        .expect("a page opens");

    // Reload without `web`: its incident is resolved with the reason, and
    // the notifiers `web` had are told.
    let only_other = config_of(&["other"], "");
    h.clock.set(minute(60));
    e.handle.send(EngineMsg::Reconfigure(cfg(&only_other)));
    let snap = e
        .settle(&h.clock, minute(60) + Duration::from_secs(1))
        .await;
    let st = assert_consistent(&h.path, &snap);
    let inc = st.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(inc.state, State::Resolved);
    assert_eq!(inc.resolved_at, Some(minute(60)));
    assert!(
        inc.reason.contains("removed from the configuration"),
        "{}",
        inc.reason
    );
    assert_eq!(
        events_of(&st, &id),
        ["incident.opened", "incident.resolved"]
    );
    e.stop().await;
}

#[tokio::test]
async fn an_open_incident_of_a_service_gone_at_start_is_resolved_and_announced() {
    let h = Harness::new();
    let e = h.start(&config_of(&["web"], ""), t(0)).await;
    healthy_then_failing(&e);
    let snap = e
        .settle(&h.clock, minute(59) + Duration::from_secs(30))
        .await;
    let id = snap.services[0]
        .open_incident
        .clone()
        .expect("a page opens");
    e.stop().await;

    // Started with `web` renamed: the old name's incident cannot stay open.
    let renamed = config_of(&["www"], "");
    let e = h.start(&renamed, minute(61)).await;
    let first = e.handle.snapshot();
    let st = assert_consistent(&h.path, &first);
    let inc = st.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(inc.state, State::Resolved);
    assert_eq!(inc.resolved_at, Some(minute(61)));
    assert_eq!(
        events_of(&st, &id),
        ["incident.opened", "incident.resolved"]
    );
    e.stop().await;
}

#[tokio::test]
async fn a_deleted_state_file_is_reported_until_it_is_back() {
    let h = Harness::new();
    let e = h.start(&config_of(&["web"], ""), t(0)).await;
    assert_eq!(e.handle.stats.store_file_problem(), None);
    let aside = h.path.with_extension("aside");
    std::fs::rename(&h.path, &aside).unwrap();
    let mut problem = None;
    for _ in 0..400 {
        problem = e.handle.stats.store_file_problem();
        if problem.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let problem = problem.expect("detected");
    assert!(problem.contains("was deleted"), "{problem}");
    assert!(problem.contains(&h.path.display().to_string()), "{problem}");

    // Another file at the path is no better.
    std::fs::write(&h.path, b"").unwrap();
    let mut replaced = None;
    for _ in 0..400 {
        replaced = e
            .handle
            .stats
            .store_file_problem()
            .filter(|p| p.contains("replaced"));
        if replaced.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(replaced.is_some());

    // The same file moved back: all well again.
    std::fs::rename(&aside, &h.path).unwrap();
    for _ in 0..400 {
        if e.handle.stats.store_file_problem().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(e.handle.stats.store_file_problem(), None);
    e.stop().await;
}
