//! The acknowledge-target escalation through the engine: which writes it
//! makes (pure [`EngineState`] on fixed timestamps), and exactly once
//! through restarts with the real task and SQLite store on a manual clock.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::lifecycle_tests::{Harness, t};
use super::*;
use crate::config::parse_str;
use crate::incident::totals::{EntryKind, Figure};
use crate::incident::{Change, ChangeKind, State};

/// `web` (one check a minute, open after 2 bad runs) tells `team`; a P1
/// unacknowledged for `ack` is escalated to `escalate`.
fn config(ack: &str, escalate: &str) -> String {
    format!(
        "notifiers:
  - {{ name: team, type: webhook, url: http://127.0.0.1:1/team }}
  - {{ name: manager, type: webhook, url: http://127.0.0.1:1/manager }}
  - {{ name: director, type: webhook, url: http://127.0.0.1:1/director }}
response_targets:
  P1: {{ acknowledge: {ack}, restore: 2h, escalate: [{escalate}] }}
services:
  - name: web
    checks:
      - name: home
        interval: 1m
        http: {{ url: \"http://127.0.0.1:1/\" }}
    incident: {{ open_after: 2, resolve_after: 1, severity: P1, notify: [team] }}
"
    )
}

fn state(text: &str) -> EngineState {
    EngineState::new(Arc::new(parse_str(text, "test.yaml").unwrap()))
}

fn run(at: Timestamp, good: bool) -> RunRecord {
    RunRecord {
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
    }
}

/// The writes of `changes` at `now`, marked stored (what the task does when
/// the store takes them).
fn commit(s: &mut EngineState, changes: Vec<Change>, now: Timestamp) -> Vec<IncidentWrite> {
    let writes = s.writes(changes, now);
    for w in &writes {
        s.stored(w);
    }
    writes
}

/// A P1 incident opened at t(60) (bad runs at 0 and 60); returns its id.
fn open(s: &mut EngineState) -> String {
    s.on_run(&run(t(0), false));
    let (_, changes) = s.on_run(&run(t(60), false));
    assert_eq!(changes[0].kind, ChangeKind::Opened);
    let id = changes[0].incident.id.clone();
    commit(s, changes, t(60));
    id
}

/// (notifier, event type, escalation cause) of each outbox row of `writes`.
fn rows(writes: &[IncidentWrite]) -> Vec<(String, String, Option<String>)> {
    writes
        .iter()
        .flat_map(|w| &w.events)
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            (
                e.notifier.clone(),
                v["type"].as_str().unwrap().to_string(),
                v["escalation"]["cause"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn row(notifier: &str, kind: &str, cause: Option<&str>) -> (String, String, Option<String>) {
    (
        notifier.to_string(),
        kind.to_string(),
        cause.map(str::to_string),
    )
}

#[test]
fn the_target_passing_unacknowledged_writes_one_escalation_to_the_team_and_the_escalation_contacts()
{
    let mut s = state(&config("10m", "manager"));
    let id = open(&mut s);
    // Opened at 60, target 10m: missed from 661 on.
    let (_, changes) = s.evaluate(t(660));
    assert_eq!(changes, vec![]);
    let (_, changes) = s.evaluate(t(661));
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(
        c.kind,
        ChangeKind::Unacknowledged {
            target: Duration::from_secs(600)
        }
    );
    // The verdict and the escalation are entered with the change itself.
    let kinds: Vec<(EntryKind, Figure)> = c.entries.iter().map(|e| (e.kind, e.figure)).collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::AcknowledgeTarget, Figure::AcknowledgeMissed),
            (EntryKind::Escalation, Figure::Escalation),
        ]
    );
    let writes = commit(&mut s, changes, t(661));
    assert_eq!(writes.len(), 1, "one transaction");
    let w = &writes[0];
    assert_eq!(w.incident.as_ref().unwrap().ack_escalated_at, Some(t(661)));
    assert_eq!(
        rows(&writes),
        vec![
            row("team", "incident.escalated", Some("acknowledge_target")),
            row("manager", "incident.escalated", Some("acknowledge_target")),
        ]
    );
    let payload: serde_json::Value = serde_json::from_str(&w.events[1].payload).unwrap();
    assert_eq!(payload["id"], format!("evt-{id}-2"));
    assert_eq!(
        payload["escalation"],
        serde_json::json!({
            "cause": "acknowledge_target",
            "reason": "not acknowledged within 10m, the acknowledge target of P1",
            "target_seconds": 600,
            "notifiers": ["manager"],
        })
    );
    assert_eq!(payload["incident"]["severity"], "P1");
    assert_eq!(
        w.events[0].payload, w.events[1].payload,
        "one event, two notifiers"
    );

    // Never again, whatever the clock says.
    for secs in [663, 3600, 86_400] {
        let (snap, changes) = s.evaluate(t(secs));
        assert_eq!(changes, vec![], "at {secs}");
        let c = snap.totals[&ServiceSeverity::new("web", "P1")];
        assert_eq!(c.escalations, 1);
        assert_eq!(c.acknowledge.missed, 1);
    }
    // Whoever was paged hears the acknowledgement and the resolution.
    let (_, ack) = s.ack(t(4000), &id, "bob", None).unwrap();
    let writes = commit(&mut s, ack.into_iter().collect(), t(4000));
    assert_eq!(
        rows(&writes),
        vec![
            row("team", "incident.acknowledged", None),
            row("manager", "incident.acknowledged", None),
        ]
    );
    let (_, changes) = s.on_run(&run(t(4020), true));
    let writes = commit(&mut s, changes, t(4020));
    assert_eq!(
        rows(&writes),
        vec![
            row("team", "incident.resolved", None),
            row("manager", "incident.resolved", None),
        ]
    );
}

#[test]
fn acknowledged_in_time_or_nobody_to_escalate_to_makes_no_escalation() {
    // Acked at 600 (target passes at 661): nothing, ever.
    let mut s = state(&config("10m", "manager"));
    let id = open(&mut s);
    let (_, ack) = s.ack(t(600), &id, "bob", None).unwrap();
    commit(&mut s, ack.into_iter().collect(), t(600));
    for secs in [661, 7200] {
        assert_eq!(s.evaluate(t(secs)).1, vec![], "acked, at {secs}");
    }
    // No `escalate` list: the target is missed, and that is all.
    let mut s = state(&config("10m", ""));
    open(&mut s);
    let (_, changes) = s.evaluate(t(7200));
    assert_eq!(changes, vec![]);
    // The verdict is a write of its own (made by time alone).
    for w in s.take_entry_writes() {
        assert!(w.events.is_empty());
        s.stored(&w);
    }
    let (snap, changes) = s.evaluate(t(7202));
    assert_eq!(changes, vec![]);
    let c = snap.totals[&ServiceSeverity::new("web", "P1")];
    assert_eq!((c.escalations, c.acknowledge.missed), (0, 1));
}

#[test]
fn a_reload_applies_the_new_targets_to_open_incidents_and_never_repeats_an_escalation() {
    // Lengthened before it passed: the new deadline counts (60 + 1h).
    let mut s = state(&config("10m", "manager"));
    open(&mut s);
    let (_, writes) = s.reconfigure(
        t(300),
        Arc::new(parse_str(&config("1h", "manager"), "t").unwrap()),
    );
    assert!(writes.is_empty());
    assert_eq!(s.evaluate(t(661)).1, vec![]);
    assert_eq!(s.evaluate(t(3660)).1, vec![]);
    let (_, changes) = s.evaluate(t(3661));
    assert_eq!(
        changes[0].kind,
        ChangeKind::Unacknowledged {
            target: Duration::from_secs(3600)
        }
    );
    commit(&mut s, changes, t(3661));

    // Escalated already: a reload naming other contacts sends nothing new;
    // later events follow the incident's own contacts while they are
    // configured (`director` joins nobody; `manager` removed hears nothing).
    let text = config("10m", "director").replace(
        "  - { name: manager, type: webhook, url: http://127.0.0.1:1/manager }\n",
        "",
    );
    let (_, writes) = s.reconfigure(t(4000), Arc::new(parse_str(&text, "t").unwrap()));
    assert!(writes.is_empty());
    assert_eq!(s.evaluate(t(4002)).1, vec![]);
    let (_, changes) = s.on_run(&run(t(4020), true));
    assert_eq!(changes[0].incident.state, State::Resolved);
    assert_eq!(changes[0].incident.escalated_to, ["manager"]);
    let writes = commit(&mut s, changes, t(4020));
    assert_eq!(rows(&writes), vec![row("team", "incident.resolved", None)]);

    // Added after the deadline passed unacknowledged: escalates at the next
    // evaluation.
    let mut s = state(&config("10m", ""));
    open(&mut s);
    assert_eq!(s.evaluate(t(1000)).1, vec![]);
    s.reconfigure(
        t(1001),
        Arc::new(parse_str(&config("10m", "manager"), "t").unwrap()),
    );
    let (_, changes) = s.evaluate(t(1002));
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].incident.ack_escalated_at, Some(t(1002)));
}

/// (incident, notifier, event type) of every outbox row, in order.
fn outbox(path: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.prepare("SELECT incident_id, notifier, payload FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap()
        .map(|row| {
            let (i, n, p) = row.unwrap();
            let v: serde_json::Value = serde_json::from_str(&p).unwrap();
            (i, n, v["type"].as_str().unwrap().to_string())
        })
        .collect()
}

fn escalated(rows: &[(String, String, String)]) -> Vec<&str> {
    rows.iter()
        .filter(|(_, _, k)| k == "incident.escalated")
        .map(|(_, n, _)| n.as_str())
        .collect()
}

#[tokio::test]
async fn escalated_while_running_is_not_sent_again_after_a_restart() {
    let h = Harness::new();
    let text = config("10m", "manager");
    let e = h.start(&text, t(0)).await;
    e.run(t(0), false);
    e.run(t(60), false);
    let snap = e.settle(&h.clock, t(61)).await;
    let id = snap.services[0].open_incident.clone().expect("opened");
    // Opened at 60 (the second bad run), target 10m.
    let snap = e.settle(&h.clock, t(660)).await;
    assert_eq!(snap.incidents[0].ack_escalated_at, None, "on the deadline");
    let snap = e.settle(&h.clock, t(661)).await;
    assert_eq!(snap.incidents[0].ack_escalated_at, Some(t(661)));
    let c = snap.totals[&ServiceSeverity::new("web", "P1")];
    assert_eq!(c.escalations, 1);
    e.settle(&h.clock, t(700)).await;
    e.stop().await;
    assert_eq!(escalated(&outbox(&h.path)), ["team", "manager"]);

    let e = h.start(&text, t(5000)).await;
    let snap = e.settle(&h.clock, t(5002)).await;
    assert_eq!(snap.incidents[0].id, id);
    assert_eq!(snap.incidents[0].state, State::Open);
    assert_eq!(snap.incidents[0].ack_escalated_at, Some(t(661)));
    let c = snap.totals[&ServiceSeverity::new("web", "P1")];
    assert_eq!(c.escalations, 1, "restored, not counted again");
    e.settle(&h.clock, t(5010)).await;
    e.stop().await;
    assert_eq!(escalated(&outbox(&h.path)), ["team", "manager"]);
}

#[tokio::test]
async fn a_target_that_passed_while_stopped_escalates_once_at_the_start() {
    let h = Harness::new();
    let text = config("10m", "manager");
    let e = h.start(&text, t(0)).await;
    e.run(t(0), false);
    e.run(t(60), false);
    e.settle(&h.clock, t(61)).await;
    e.stop().await;
    assert_eq!(escalated(&outbox(&h.path)), Vec::<&str>::new());

    // Started an hour later: the first evaluation, before anything is
    // published, escalates.
    let e = h.start(&text, t(3600)).await;
    let first = e.handle.snapshot();
    assert_eq!(first.incidents[0].ack_escalated_at, Some(t(3600)));
    e.settle(&h.clock, t(3610)).await;
    e.stop().await;
    let rows = outbox(&h.path);
    assert_eq!(escalated(&rows), ["team", "manager"]);

    // And once more stopped and started: nothing new.
    let e = h.start(&text, t(7200)).await;
    e.settle(&h.clock, t(7202)).await;
    e.stop().await;
    assert_eq!(outbox(&h.path), rows);
}
