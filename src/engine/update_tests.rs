//! Human updates through [`EngineState`] on fixed timestamps: stored on the
//! incident, announced as `incident.updated` to the notifiers whose format
//! carries it, and allowed on a resolved incident for a week.

use super::*;

use jiff::Timestamp;

use crate::config::parse_str;
use crate::incident::update::{MAX_UPDATES, UPDATES_AFTER_RESOLVE};
use crate::incident::{Change, EventType, IncidentError, State, Update, UpdateStatus};
use crate::notify::Event;

const CFG: &str = r#"
notifiers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:1/hook" }
  - { name: chat, type: slack, url: "http://127.0.0.1:1/slack" }
  - { name: pd, type: pagerduty, url: "http://127.0.0.1:1/pd", routing_key_env: UPDATE_TESTS_PD_KEY }
  - { name: am, type: alertmanager, url: "http://127.0.0.1:1" }
  - { name: genie, type: opsgenie, url: "http://127.0.0.1:1", api_key_env: UPDATE_TESTS_GENIE_KEY }
services:
  - name: web
    checks:
      - name: home
        interval: 1m
        http: { url: "http://127.0.0.1:1/" }
    incident:
      open_after: 1
      resolve_after: 1
      severity: P2
      burn_rate_alerts: false
      notify: [hook, chat, pd, am, genie]
"#;

fn state() -> EngineState {
    EngineState::new(Arc::new(parse_str(CFG, "test.yaml").unwrap()))
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn run(t: &str, good: bool) -> RunRecord {
    RunRecord {
        service: "web".into(),
        check: "home".into(),
        at: at(t),
        good,
        latency: std::time::Duration::from_millis(10),
        detail: if good {
            String::new()
        } else {
            "status 503".into()
        },
    }
}

fn update(t: &str, status: UpdateStatus, message: &str) -> Update {
    Update {
        at: at(t),
        status,
        message: message.into(),
        by: "alice".into(),
    }
}

/// Writes for `changes`, all stored.
fn commit(s: &mut EngineState, changes: Vec<Change>, now: &str) -> Vec<IncidentWrite> {
    let writes = s.writes(changes, at(now));
    for w in &writes {
        s.stored(w);
    }
    writes
}

/// An incident of `web` opened at 10:00, stored; its id.
fn opened(s: &mut EngineState) -> String {
    let (_, changes) = s.on_run(&run("2026-01-02T10:00:00Z", false));
    let id = changes[0].incident.id.clone();
    commit(s, changes, "2026-01-02T10:00:00Z");
    id
}

#[test]
fn an_update_on_an_open_incident_is_stored_and_sent_to_the_notifiers_that_carry_it() {
    let mut s = state();
    let id = opened(&mut s);
    let c = s
        .post_update(
            at("2026-01-02T10:05:00Z"),
            &id,
            update("2026-01-02T10:05:00Z", UpdateStatus::Identified, "DNS <b>"),
            None,
        )
        .unwrap();
    assert_eq!(
        c.event,
        Some((format!("evt-{id}-2"), EventType::UpdatePosted))
    );
    assert_eq!(c.incident.state, State::Open);
    assert_eq!(c.incident.acknowledged_at, None, "an update is not an ack");
    assert_eq!(
        c.incident.updates,
        [update(
            "2026-01-02T10:05:00Z",
            UpdateStatus::Identified,
            "DNS <b>"
        )]
    );
    let w = commit(&mut s, vec![c], "2026-01-02T10:05:00Z");
    let notifiers: Vec<&str> = w[0].events.iter().map(|e| e.notifier.as_str()).collect();
    assert_eq!(
        notifiers,
        ["hook", "chat", "genie"],
        "not PagerDuty, not Alertmanager"
    );
    let ev = Event::from_payload(&w[0].events[0].payload).unwrap();
    assert_eq!(ev.kind, EventType::UpdatePosted);
    assert_eq!(ev.id, format!("evt-{id}-2"));
    assert_eq!(
        ev.update.as_ref().map(|u| u.message.as_str()),
        Some("DNS <b>")
    );
    assert_eq!(
        ev.to_payload()
            .unwrap()
            .matches("\"type\":\"incident.updated\"")
            .count(),
        1
    );
    // The state machine holds the update: the resolve carries it on.
    let (_, changes) = s.on_run(&run("2026-01-02T10:10:00Z", true));
    assert_eq!(
        changes[0].event,
        Some((format!("evt-{id}-3"), EventType::Resolved))
    );
    assert_eq!(changes[0].incident.updates.len(), 1);
    // Every other event still goes to every notifier.
    let w = commit(&mut s, changes, "2026-01-02T10:10:00Z");
    assert_eq!(w[0].events.len(), 5);
}

#[test]
fn a_resolved_status_update_does_not_resolve_the_incident() {
    let mut s = state();
    let id = opened(&mut s);
    let c = s
        .post_update(
            at("2026-01-02T10:05:00Z"),
            &id,
            update("2026-01-02T10:05:00Z", UpdateStatus::Resolved, "Fixed."),
            None,
        )
        .unwrap();
    assert_eq!(c.incident.state, State::Open);
    assert_eq!(c.incident.resolved_at, None);
    commit(&mut s, vec![c], "2026-01-02T10:05:00Z");
    let (snap, _) = s.evaluate(at("2026-01-02T10:06:00Z"));
    assert_eq!(snap.services[0].open_incident.as_deref(), Some(id.as_str()));
}

#[test]
fn a_resolved_incident_takes_updates_for_seven_days_then_409() {
    let mut s = state();
    let id = opened(&mut s);
    let (_, changes) = s.on_run(&run("2026-01-02T10:10:00Z", true));
    commit(&mut s, changes, "2026-01-02T10:10:00Z");
    assert_eq!(UPDATES_AFTER_RESOLVE.as_secs(), 7 * 86_400);
    // Exactly seven days after the resolution: still taken.
    let last = "2026-01-09T10:10:00Z";
    let c = s
        .post_update(
            at(last),
            &id,
            update(
                last,
                UpdateStatus::Resolved,
                "Post-mortem: expired certificate.",
            ),
            None,
        )
        .unwrap();
    assert_eq!(c.incident.state, State::Resolved);
    assert_eq!(
        c.event,
        Some((format!("evt-{id}-3"), EventType::UpdatePosted))
    );
    commit(&mut s, vec![c], last);
    // One second later: closed.
    let late = "2026-01-09T10:10:01Z";
    let err = s
        .post_update(
            at(late),
            &id,
            update(late, UpdateStatus::Resolved, "x"),
            None,
        )
        .unwrap_err();
    assert_eq!(
        err,
        IncidentError::UpdatesClosed {
            id: id.clone(),
            why: "it was resolved more than 7 days ago".into()
        }
    );
    // The one taken is on the stored incident the snapshot shows.
    let (snap, _) = s.evaluate(at(late));
    let inc = snap.incidents.iter().find(|i| i.id == id).unwrap();
    assert_eq!(inc.updates.len(), 1);
    assert_eq!(inc.events_emitted, 3);
}

#[test]
fn an_unknown_incident_is_not_found() {
    let mut s = state();
    opened(&mut s);
    let err = s
        .post_update(
            at("2026-01-02T10:05:00Z"),
            "inc-nope-1-1",
            update("2026-01-02T10:05:00Z", UpdateStatus::Identified, "x"),
            None,
        )
        .unwrap_err();
    assert_eq!(
        err,
        IncidentError::NotFound {
            id: "inc-nope-1-1".into()
        }
    );
}

#[test]
fn an_update_builds_on_a_queued_write_the_store_has_not_taken() {
    let mut s = state();
    let id = opened(&mut s);
    // The resolve is written but not stored (a full disk): the snapshot
    // still holds the open incident.
    let (_, changes) = s.on_run(&run("2026-01-02T10:10:00Z", true));
    let queued = s.writes(changes, at("2026-01-02T10:10:00Z"));
    let latest = queued[0].incident.clone();
    let c = s
        .post_update(
            at("2026-01-02T10:11:00Z"),
            &id,
            update("2026-01-02T10:11:00Z", UpdateStatus::Resolved, "All good."),
            latest,
        )
        .unwrap();
    assert_eq!(c.incident.state, State::Resolved, "not the stale open copy");
    assert_eq!(
        c.event,
        Some((format!("evt-{id}-3"), EventType::UpdatePosted))
    );
}

#[test]
fn an_incident_keeps_at_most_max_updates() {
    let mut s = state();
    let id = opened(&mut s);
    for n in 0..MAX_UPDATES {
        let c = s
            .post_update(
                at("2026-01-02T10:05:00Z"),
                &id,
                update(
                    "2026-01-02T10:05:00Z",
                    UpdateStatus::Monitoring,
                    &n.to_string(),
                ),
                None,
            )
            .unwrap();
        commit(&mut s, vec![c], "2026-01-02T10:05:00Z");
    }
    let err = s
        .post_update(
            at("2026-01-02T10:06:00Z"),
            &id,
            update("2026-01-02T10:06:00Z", UpdateStatus::Monitoring, "one more"),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(&err, IncidentError::UpdatesClosed { why, .. } if why == "it has 100 updates, the most one incident keeps"),
        "{err:?}"
    );
}
