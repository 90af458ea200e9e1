//! State-machine and MTTx tests on exact timestamps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::config::{IncidentPolicy, ResponseTarget};

const BASE: i64 = 1_800_000_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

fn policy(open_after: u32, resolve_after: u32) -> IncidentPolicy {
    IncidentPolicy {
        open_after,
        resolve_after,
        burn_rate_alerts: true,
        severity: "P1".to_string(),
        notify: vec![],
    }
}

/// One input to the machine, at second `.0` after BASE.
#[derive(Debug, Clone)]
enum In {
    Run(i64, &'static str, bool),
    /// A run inside a maintenance window.
    MaintRun(i64, &'static str, bool),
    Alerts(i64, Option<&'static str>, Option<&'static str>),
    MaintAlerts(i64, Option<&'static str>, Option<&'static str>),
    AckBy(i64, &'static str),
    ResolveBy(i64, &'static str),
}

use In::{AckBy, Alerts, MaintAlerts, MaintRun, ResolveBy, Run};

fn apply(m: &mut ServiceIncidents, input: &In) -> Vec<Change> {
    let id = m.open_incident().map(|i| i.id.clone()).unwrap_or_default();
    match *input {
        Run(s, c, g) => m.on_run(t(s), c, g, "status 503 not in [200]", false),
        MaintRun(s, c, g) => m.on_run(t(s), c, g, "status 503 not in [200]", true),
        Alerts(s, p, k) => m.on_alerts(t(s), p, k, false),
        MaintAlerts(s, p, k) => m.on_alerts(t(s), p, k, true),
        AckBy(s, by) => match m.ack(t(s), &id, by, Some("looking")).unwrap() {
            Ack::Changed(c) => vec![c],
            Ack::AlreadyAcked(_) => vec![],
        },
        ResolveBy(s, by) => vec![m.resolve(t(s), &id, by).unwrap()],
    }
}

/// Run `script` on a fresh machine for service `identity`; assert that the
/// changes are exactly `expected` as (script index, kind); return them.
fn check(
    p: IncidentPolicy,
    script: &[In],
    expected: &[(usize, ChangeKind)],
) -> (ServiceIncidents, Vec<Change>) {
    let mut m = ServiceIncidents::new("identity", &p, None, 0);
    let mut got = Vec::new();
    let mut all = Vec::new();
    for (i, input) in script.iter().enumerate() {
        for c in apply(&mut m, input) {
            got.push((i, c.kind.clone()));
            all.push(c);
        }
    }
    assert_eq!(got, expected, "changes of script {script:?}");
    (m, all)
}

#[test]
fn flapping_check_opens_on_the_third_consecutive_failure_with_impact_at_streak_start() {
    let (m, changes) = check(
        policy(3, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Run(20, "login", true),
            Run(30, "login", false),
            Run(40, "login", false),
            Run(50, "login", false),
        ],
        &[(5, ChangeKind::Opened)],
    );
    let inc = &changes[0].incident;
    let id = format!("inc-identity-{}-1", BASE + 50);
    assert_eq!(inc.id, id);
    assert_eq!(inc.dedup_key, format!("sentinel/identity/{id}"));
    assert_eq!(inc.severity, "P1");
    assert_eq!(inc.title, "identity is failing");
    assert_eq!(
        inc.reason,
        "check `login` failed 3 times in a row: status 503 not in [200]"
    );
    assert_eq!(inc.trigger, Trigger::ChecksFailing);
    assert_eq!(inc.impact_started_at, t(30));
    assert_eq!(inc.opened_at, t(50));
    assert_eq!(inc.state, State::Open);
    assert_eq!(
        changes[0].event,
        Some((format!("evt-{id}-1"), EventType::Opened))
    );
    assert_eq!(m.open_incident(), Some(inc));
}

#[test]
fn auto_resolves_after_resolve_after_good_runs_with_restore_at_first_good_run() {
    let (_, changes) = check(
        policy(3, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Run(20, "login", false),
            Run(30, "login", true),
            Run(40, "login", false),
            Run(50, "login", true),
            Run(60, "login", true),
        ],
        &[(2, ChangeKind::Opened), (6, ChangeKind::Resolved)],
    );
    let inc = &changes[1].incident;
    assert_eq!(inc.state, State::Resolved);
    assert_eq!(inc.impact_started_at, t(0));
    assert_eq!(inc.restored_at, Some(t(50)));
    assert_eq!(inc.resolved_at, Some(t(60)));
    assert_eq!(inc.resolved_by, Some(ResolvedBy::Auto));
    assert_eq!(
        changes[1].event.as_ref().map(|e| e.1),
        Some(EventType::Resolved)
    );
    assert_eq!(
        changes[1].event.as_ref().map(|e| e.0.ends_with("-2")),
        Some(true)
    );
}

#[test]
fn every_failing_check_must_recover_and_restore_is_the_last_recovery() {
    let (_, changes) = check(
        policy(2, 2),
        &[
            Run(0, "login", false),
            Run(5, "dns", true),
            Run(10, "login", false),
            Run(15, "dns", false),
            Run(20, "login", true),
            Run(25, "dns", false),
            Run(30, "login", true),
            Run(35, "dns", true),
            Run(45, "dns", true),
        ],
        &[
            (2, ChangeKind::Opened),
            (3, ChangeKind::Updated),
            (5, ChangeKind::Updated),
            (8, ChangeKind::Resolved),
        ],
    );
    // Joining the incident, then reaching `open_after` itself: updates only.
    assert_eq!(
        changes[1].incident.reason,
        "check `dns` failing: status 503 not in [200]"
    );
    assert_eq!(
        changes[2].incident.reason,
        "check `dns` failed 2 times in a row: status 503 not in [200]"
    );
    assert_eq!(changes[2].event, None);
    let inc = &changes[3].incident;
    assert_eq!(inc.impact_started_at, t(0));
    assert_eq!(inc.restored_at, Some(t(35)));
    assert_eq!(inc.resolved_at, Some(t(45)));
}

#[test]
fn page_burn_alert_opens_with_impact_at_the_earliest_current_failure() {
    let (_, changes) = check(
        policy(3, 2),
        &[
            Run(0, "login", false),
            Run(10, "dns", false),
            Alerts(20, Some("burn rate 1h 15.2 > 14.4"), None),
            Alerts(30, Some("burn rate 1h 16.0 > 14.4"), None),
        ],
        &[(2, ChangeKind::Opened)],
    );
    let inc = &changes[0].incident;
    assert_eq!(
        inc.trigger,
        Trigger::BurnRate {
            level: AlertLevel::Page
        }
    );
    assert_eq!(inc.severity, "P1");
    assert_eq!(inc.reason, "burn rate 1h 15.2 > 14.4 (page)");
    assert_eq!(inc.impact_started_at, t(0));
    assert_eq!(inc.opened_at, t(20));
}

#[test]
fn ticket_alert_opens_one_step_lower_and_a_page_escalates_then_clearing_resolves() {
    let (_, changes) = check(
        policy(3, 2),
        &[
            Alerts(100, None, Some("burn rate 1d 3.5 > 3")),
            Alerts(
                200,
                Some("burn rate 6h 7.0 > 6"),
                Some("burn rate 1d 3.5 > 3"),
            ),
            Alerts(250, Some("burn rate 6h 7.0 > 6"), None),
            Alerts(300, None, None),
        ],
        &[
            (0, ChangeKind::Opened),
            (
                1,
                ChangeKind::Escalated {
                    from: "P2".into(),
                    to: "P1".into(),
                },
            ),
            (3, ChangeKind::Resolved),
        ],
    );
    assert_eq!(changes[0].incident.severity, "P2");
    assert_eq!(changes[0].incident.impact_started_at, t(100));
    assert_eq!(changes[0].incident.reason, "burn rate 1d 3.5 > 3 (ticket)");
    assert_eq!(changes[1].incident.severity, "P1");
    assert_eq!(changes[1].incident.reason, "burn rate 6h 7.0 > 6 (page)");
    let id = &changes[0].incident.id;
    assert_eq!(
        changes[1].event,
        Some((format!("evt-{id}-2"), EventType::Escalated))
    );
    let done = &changes[2].incident;
    assert_eq!(done.restored_at, Some(t(300)));
    assert_eq!(done.resolved_at, Some(t(300)));
    assert_eq!(done.severity, "P1");
}

#[test]
fn a_failing_check_streak_escalates_a_ticket_level_incident() {
    check(
        policy(2, 2),
        &[
            Alerts(0, None, Some("burn rate 3d 1.2 > 1")),
            Run(10, "login", false),
            Run(20, "login", false),
            Run(30, "login", false),
        ],
        &[
            (0, ChangeKind::Opened),
            (1, ChangeKind::Updated),
            (
                2,
                ChangeKind::Escalated {
                    from: "P2".into(),
                    to: "P1".into(),
                },
            ),
        ],
    );
}

#[test]
fn maintenance_opens_nothing_and_keeps_open_incidents_open() {
    check(
        policy(2, 2),
        &[
            MaintRun(0, "login", false),
            MaintRun(10, "login", false),
            MaintRun(20, "login", false),
            MaintAlerts(25, Some("burn rate 1h 20 > 14.4"), None),
            MaintAlerts(26, None, None),
        ],
        &[],
    );
    let (_, changes) = check(
        policy(2, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            MaintRun(20, "login", true),
            MaintRun(30, "login", true),
            MaintRun(40, "login", true),
            Run(50, "login", true),
            Run(60, "login", true),
        ],
        &[(1, ChangeKind::Opened), (6, ChangeKind::Resolved)],
    );
    assert_eq!(changes[1].incident.restored_at, Some(t(50)));
}

#[test]
fn manual_resolve_sets_restore_to_resolve_time_and_requires_a_fresh_streak() {
    let (mut m, changes) = check(
        policy(2, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            ResolveBy(15, "alice"),
            Run(20, "login", false),
            Run(30, "login", false),
        ],
        &[
            (1, ChangeKind::Opened),
            (2, ChangeKind::Resolved),
            (4, ChangeKind::Opened),
        ],
    );
    let done = &changes[1].incident;
    assert_eq!(done.resolved_by, Some(ResolvedBy::User("alice".into())));
    assert_eq!(done.restored_at, Some(t(15)));
    assert_eq!(done.resolved_at, Some(t(15)));
    assert_eq!(
        done.time_to_restore(),
        Some(jiff::SignedDuration::from_secs(15))
    );
    assert_eq!(
        changes[2].incident.id,
        format!("inc-identity-{}-2", BASE + 30)
    );
    assert_eq!(changes[2].incident.impact_started_at, t(20));
    assert_eq!(
        m.ack(t(40), &done.id, "bob", None),
        Err(IncidentError::Conflict {
            id: done.id.clone()
        })
    );
    assert_eq!(
        m.resolve(t(40), &done.id, "bob"),
        Err(IncidentError::Conflict {
            id: done.id.clone()
        })
    );
    assert_eq!(
        m.ack(t(40), "inc-nope", "bob", None),
        Err(IncidentError::NotFound {
            id: "inc-nope".into()
        })
    );
}

#[test]
fn manual_resolve_while_an_alert_fires_does_not_reopen_until_the_alert_stops() {
    check(
        policy(3, 2),
        &[
            Alerts(0, Some("burn"), None),
            ResolveBy(10, "alice"),
            Alerts(20, Some("burn"), None),
            Alerts(30, None, None),
            Alerts(40, Some("burn"), None),
        ],
        &[
            (0, ChangeKind::Opened),
            (1, ChangeKind::Resolved),
            (4, ChangeKind::Opened),
        ],
    );
}

#[test]
fn a_manual_resolve_while_a_check_keeps_failing_reopens_after_open_after_new_failures() {
    check(
        policy(3, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Run(20, "login", false),
            ResolveBy(25, "alice"),
            Run(30, "login", false),
            Run(40, "login", false),
            Run(50, "login", false),
        ],
        &[
            (2, ChangeKind::Opened),
            (3, ChangeKind::Resolved),
            (6, ChangeKind::Opened),
        ],
    );
}

#[test]
fn a_held_ticket_alert_still_lets_a_page_open_a_new_incident() {
    check(
        policy(3, 2),
        &[
            Alerts(0, None, Some("slow burn")),
            ResolveBy(10, "alice"),
            Alerts(20, None, Some("slow burn")),
            Alerts(30, Some("fast burn"), Some("slow burn")),
        ],
        &[
            (0, ChangeKind::Opened),
            (1, ChangeKind::Resolved),
            (3, ChangeKind::Opened),
        ],
    );
    // A held page is not reopened by the ticket alert that follows it.
    check(
        policy(3, 2),
        &[
            Alerts(0, Some("fast burn"), None),
            ResolveBy(10, "alice"),
            Alerts(20, None, Some("slow burn")),
            Alerts(30, Some("fast burn"), None),
        ],
        &[(0, ChangeKind::Opened), (1, ChangeKind::Resolved)],
    );
}

#[test]
fn the_alert_hold_is_reported_once_and_survives_a_restart() {
    let svc = with_slo(service(policy(3, 2), &["login"]));
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    assert_eq!(m.take_state_change(), None);
    let opened = m.on_alerts(t(0), Some("fast burn"), None, false);
    let id = opened[0].incident.id.clone();
    assert_eq!(m.take_state_change(), None, "opening holds nothing");
    m.resolve(t(10), &id, "alice").unwrap();
    let hold = AlertHold {
        level: AlertLevel::Page,
        incident: id.clone(),
        since: t(10),
    };
    let stored = m.take_state_change().unwrap();
    assert_eq!(stored.alert_hold, Some(hold.clone()));
    assert_eq!(m.take_state_change(), None, "reported once");
    let json = stored.to_json().unwrap();

    // A restart: the resolved incident is history, the hold comes back.
    let mut again = ServiceIncidents::from_config(&svc, None, 1);
    again.restore_state(ServiceState::from_json(&json).unwrap());
    assert_eq!(again.alert_hold(), Some(&hold));
    assert_eq!(again.take_state_change(), None, "restoring is no change");
    assert!(
        again
            .on_alerts(t(20), Some("fast burn"), None, false)
            .is_empty(),
        "the same episode does not reopen after a restart"
    );
    // The alert clears: the hold is released (and must be written).
    assert!(again.on_alerts(t(30), None, None, false).is_empty());
    assert_eq!(again.take_state_change(), Some(ServiceState::default()));
    assert_eq!(
        again.on_alerts(t(40), Some("fast burn"), None, false)[0].kind,
        ChangeKind::Opened
    );

    // With burn-rate alerts off, a stored hold is dropped (and the drop written).
    let mut off = policy(3, 2);
    off.burn_rate_alerts = false;
    let mut m = ServiceIncidents::from_config(&with_slo(service(off, &["login"])), None, 1);
    m.restore_state(stored);
    assert_eq!(m.alert_hold(), None);
    assert_eq!(m.take_state_change(), Some(ServiceState::default()));
}

#[test]
fn turning_burn_alerts_off_resolves_an_alert_held_incident_by_check_recovery() {
    let svc = with_slo(service(policy(3, 2), &["login", "dns"]));
    let mut off = policy(3, 2);
    off.burn_rate_alerts = false;
    let svc_off = with_slo(service(off, &["login", "dns"]));

    // No check failing: resolves at the reload.
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    assert_eq!(
        m.on_alerts(t(0), Some("fast burn"), None, false)[0].kind,
        ChangeKind::Opened
    );
    let done = m.reconfigure(t(100), &svc_off, false);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.resolved_by, Some(ResolvedBy::Auto));
    assert_eq!(done[0].incident.restored_at, Some(t(100)));

    // A check that failed during it must recover first (resolve_after runs).
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    m.on_alerts(t(0), Some("fast burn"), None, false);
    let failing = m.on_run(t(10), "login", false, "x", false);
    assert_eq!(failing[0].kind, ChangeKind::Updated, "now part of it");
    assert!(m.reconfigure(t(100), &svc_off, false).is_empty());
    assert!(m.on_run(t(110), "login", true, "", false).is_empty());
    let done = m.on_run(t(120), "login", true, "", false);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.restored_at, Some(t(110)));

    // After a restart with alerts off (or the SLO gone), nothing is assumed
    // to fire: every check shows resolve_after good runs and it resolves.
    let open = {
        let mut m = ServiceIncidents::from_config(&svc, None, 0);
        m.on_alerts(t(0), None, Some("slow burn"), false)[0]
            .incident
            .clone()
    };
    let mut no_slo = service(policy(3, 2), &["login"]);
    no_slo.slo = None;
    let mut m = ServiceIncidents::from_config(&no_slo, Some(open.clone()), 1);
    assert!(m.on_run(t(200), "login", true, "", false).is_empty());
    let done = m.on_run(t(210), "login", true, "", false);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.id, open.id);
}

#[test]
fn a_reload_never_lowers_an_open_incidents_severity() {
    // Ticket-level alert on a P1 service opens at P2.
    let svc = with_slo(service(policy(3, 2), &["login"]));
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    let opened = m.on_alerts(t(0), None, Some("slow burn"), false);
    assert_eq!(opened[0].incident.severity, "P2");
    // Reload to P3: the open incident keeps P2; a page on it is an update,
    // not an "escalation" to a lower severity.
    let mut p3 = policy(3, 2);
    p3.severity = "P3".into();
    assert!(
        m.reconfigure(t(10), &with_slo(service(p3, &["login"])), false)
            .is_empty()
    );
    let c = m.on_alerts(t(20), Some("fast burn"), Some("slow burn"), false);
    assert_eq!(c[0].kind, ChangeKind::Updated);
    assert_eq!(c[0].incident.severity, "P2");
    assert!(c[0].incident.page_level);
}

#[test]
fn a_removed_service_resolves_its_open_incident_with_the_reason() {
    let svc = service(policy(1, 1), &["login"]);
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    let opened = m.on_run(t(0), "login", false, "x", false);
    let c = m.close_removed(t(30)).unwrap();
    assert_eq!(c.kind, ChangeKind::Resolved);
    assert_eq!(c.incident.id, opened[0].incident.id);
    assert_eq!(c.incident.resolved_at, Some(t(30)));
    assert_eq!(c.incident.resolved_by, Some(ResolvedBy::Auto));
    assert!(c.incident.reason.contains("removed from the configuration"));
    assert_eq!(c.event.unwrap().1, EventType::Resolved);
    assert!(m.close_removed(t(40)).is_none());
}

#[test]
fn ack_before_restore_is_idempotent() {
    let p = policy(2, 2);
    let mut m = ServiceIncidents::new("identity", &p, None, 0);
    m.on_run(t(0), "login", false, "x", false);
    let opened = m.on_run(t(10), "login", false, "x", false);
    let id = opened[0].incident.id.clone();
    let Ack::Changed(c) = m.ack(t(70), &id, "bob", Some("on it")).unwrap() else {
        panic!("first ack must change");
    };
    assert_eq!(c.kind, ChangeKind::Acknowledged);
    assert_eq!(
        c.event,
        Some((format!("evt-{id}-2"), EventType::Acknowledged))
    );
    assert_eq!(c.incident.acknowledged_at, Some(t(70)));
    assert_eq!(c.incident.acknowledged_by.as_deref(), Some("bob"));
    assert_eq!(c.incident.ack_note.as_deref(), Some("on it"));
    assert_eq!(
        m.ack(t(80), &id, "carol", None).unwrap(),
        Ack::AlreadyAcked(c.incident.clone())
    );
    m.on_run(t(90), "login", true, "", false);
    let done = m.on_run(t(100), "login", true, "", false);
    assert_eq!(done[0].incident.acknowledged_at, Some(t(70)));
    assert_eq!(done[0].incident.restored_at, Some(t(90)));
    assert_eq!(
        done[0].incident.time_to_acknowledge(),
        Some(jiff::SignedDuration::from_secs(60))
    );
}

#[test]
fn ack_after_restore_while_an_alert_still_fires() {
    let (mut m, changes) = check(
        policy(2, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Alerts(15, Some("burn rate 1h 15 > 14.4"), None),
            Run(20, "login", true),
            Run(30, "login", true),
            AckBy(40, "bob"),
            Alerts(50, None, None),
        ],
        &[
            (1, ChangeKind::Opened),
            (4, ChangeKind::Restored),
            (5, ChangeKind::Acknowledged),
            (6, ChangeKind::Resolved),
        ],
    );
    assert_eq!(changes[1].incident.restored_at, Some(t(20)));
    let done = &changes[3].incident;
    assert_eq!(done.restored_at, Some(t(20)));
    assert_eq!(done.acknowledged_at, Some(t(40)));
    assert_eq!(done.resolved_at, Some(t(50)));
    assert!(m.open_incident().is_none());
    assert_eq!(
        m.ack(t(60), &done.id, "bob", None),
        Err(IncidentError::Conflict {
            id: done.id.clone()
        })
    );
}

#[test]
fn a_relapse_after_restore_clears_restored_at() {
    let (_, changes) = check(
        policy(2, 1),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Alerts(15, Some("burn"), None),
            Run(20, "login", true),
            Run(30, "login", false),
            Run(40, "login", true),
            Alerts(50, None, None),
        ],
        &[
            (1, ChangeKind::Opened),
            (3, ChangeKind::Restored),
            (4, ChangeKind::Updated),
            (5, ChangeKind::Restored),
            (6, ChangeKind::Resolved),
        ],
    );
    assert_eq!(changes[2].incident.restored_at, None);
    assert_eq!(changes[4].incident.restored_at, Some(t(40)));
}

#[test]
fn incidents_round_trip_through_json() {
    let (_, changes) = check(
        policy(1, 1),
        &[
            Run(0, "login", false),
            AckBy(5, "bob"),
            ResolveBy(9, "alice"),
        ],
        &[
            (0, ChangeKind::Opened),
            (1, ChangeKind::Acknowledged),
            (2, ChangeKind::Resolved),
        ],
    );
    let inc = &changes[2].incident;
    let json = serde_json::to_value(inc).unwrap();
    assert_eq!(json["state"], "resolved");
    assert_eq!(
        json["trigger"],
        serde_json::json!({"kind": "checks_failing"})
    );
    assert_eq!(json["resolved_by"], serde_json::json!({"user": "alice"}));
    assert_eq!(json["opened_at"], "2027-01-15T08:00:00Z");
    let back: Incident = serde_json::from_value(json).unwrap();
    assert_eq!(&back, inc);
    // A restarted machine picks the open incident up again.
    let open = &changes[0].incident;
    let mut m = ServiceIncidents::new("identity", &policy(1, 1), Some(open.clone()), 1);
    assert_eq!(m.open_incident(), Some(open));
    let Ack::Changed(c) = m.ack(t(5), &open.id, "bob", None).unwrap() else {
        panic!("ack after restart must change");
    };
    assert_eq!(c.event.unwrap().0, format!("evt-{}-2", open.id));
}

#[test]
fn ticket_severity_is_one_step_lower() {
    fn check(configured: &str, expected: &str) {
        assert_eq!(ticket_severity(configured), expected, "{configured}");
    }
    check("P1", "P2");
    check("P2", "P3");
    check("P3", "P4");
    check("P4", "P4");
    check("P5", "P5");
    check("critical", "critical");
}

/// Two P1 incidents of `identity`: A (impact 0, opened 20, acked 40,
/// restored 50, resolved 60) and B (impact 1000, opened 1030, never acked,
/// resolved by hand at 1300).
fn two_incidents() -> Vec<Incident> {
    let (_, a) = check(
        policy(3, 2),
        &[
            Run(0, "login", false),
            Run(10, "login", false),
            Run(20, "login", false),
            AckBy(40, "bob"),
            Run(50, "login", true),
            Run(60, "login", true),
        ],
        &[
            (2, ChangeKind::Opened),
            (3, ChangeKind::Acknowledged),
            (5, ChangeKind::Resolved),
        ],
    );
    let mut m = ServiceIncidents::new("identity", &policy(3, 2), None, 1);
    m.on_run(t(1000), "login", false, "x", false);
    m.on_run(t(1015), "login", false, "x", false);
    let opened = m.on_run(t(1030), "login", false, "x", false);
    let b = m.resolve(t(1300), &opened[0].incident.id, "alice").unwrap();
    vec![a[2].incident.clone(), b.incident]
}

fn targets() -> BTreeMap<String, ResponseTarget> {
    BTreeMap::from([(
        "P1".to_string(),
        ResponseTarget {
            acknowledge: Duration::from_secs(600),
            restore: Duration::from_secs(7200),
        },
    )])
}

#[test]
fn mttx_summaries_have_exact_sums_counts_and_quantiles() {
    let stats = MttxStats::rebuild(targets(), two_incidents());
    let s = stats.summaries();
    let key = ("identity".to_string(), "P1".to_string());
    let got = &s[&key];
    // MTTD: 20 and 30; MTTA: 20 (A only); MTTR: 50 and 300 (manual).
    assert_eq!(got.mttd.count, 2);
    assert_eq!(got.mttd.sum_seconds, 50.0);
    assert_eq!(
        got.mttd.quantiles,
        vec![(0.5, 20.0), (0.9, 30.0), (0.99, 30.0), (0.999, 30.0)]
    );
    assert_eq!(got.mtta.count, 1);
    assert_eq!(got.mtta.sum_seconds, 20.0);
    assert_eq!(
        got.mtta.quantiles,
        vec![(0.5, 20.0), (0.9, 20.0), (0.99, 20.0), (0.999, 20.0)]
    );
    assert_eq!(got.mttr.count, 2);
    assert_eq!(got.mttr.sum_seconds, 350.0);
    assert_eq!(got.mttr.mean_seconds(), Some(175.0));
    assert_eq!(
        got.mttr.quantiles,
        vec![(0.5, 50.0), (0.9, 300.0), (0.99, 300.0), (0.999, 300.0)]
    );
    assert_eq!(stats.counts(), BTreeMap::from([(key, (0, 2))]));
}

#[test]
fn sums_stay_exact_for_sub_second_values() {
    let mut inc = two_incidents().remove(0);
    inc.opened_at = inc
        .impact_started_at
        .checked_add(jiff::SignedDuration::from_millis(1250))
        .unwrap();
    let stats = MttxStats::rebuild(targets(), [inc]);
    let s = stats.summaries();
    let d = &s[&("identity".to_string(), "P1".to_string())].mttd;
    assert_eq!(d.sum_seconds, 1.25);
    assert_eq!(d.quantiles[0], (0.5, 1.0));
}

#[test]
fn response_targets_count_when_the_stage_completes_or_the_target_passes() {
    let mut stats = MttxStats::rebuild(targets(), two_incidents());
    let ack = ("identity".to_string(), "P1".to_string(), Stage::Acknowledge);
    let restore = ("identity".to_string(), "P1".to_string(), Stage::Restore);
    // Before B's ack deadline (1030 + 600): only A's ack counts.
    let at = stats.response_counts(t(1630));
    assert_eq!(at[&ack], Attainment { met: 1, missed: 0 });
    assert_eq!(at[&restore], Attainment { met: 2, missed: 0 });
    let at = stats.response_counts(t(1631));
    assert_eq!(at[&ack], Attainment { met: 1, missed: 1 });
    // An open incident misses restore only once its target passes.
    let mut m = ServiceIncidents::new("identity", &policy(1, 1), None, 5);
    let open = m
        .on_run(t(10_000), "login", false, "x", false)
        .remove(0)
        .incident;
    stats.upsert(&open);
    assert_eq!(
        stats.response_counts(t(10_000 + 7200))[&restore],
        Attainment { met: 2, missed: 0 }
    );
    assert_eq!(
        stats.response_counts(t(10_000 + 7201))[&restore],
        Attainment { met: 2, missed: 1 }
    );
    stats.prune(t(2000));
    assert_eq!(stats.incidents().count(), 1);
}

#[test]
fn pruning_keeps_open_incidents_whatever_their_age() {
    let mut m = ServiceIncidents::new("identity", &policy(1, 1), None, 0);
    let open = m
        .on_run(t(0), "login", false, "x", false)
        .remove(0)
        .incident;
    let mut stats = MttxStats::rebuild(targets(), [open.clone()]);
    stats.prune(t(100));
    assert_eq!(stats.incidents().cloned().collect::<Vec<_>>(), [open]);
    let resolved = m
        .on_run(t(200), "login", true, "", false)
        .remove(0)
        .incident;
    stats.upsert(&resolved);
    stats.prune(t(100));
    assert_eq!(stats.incidents().count(), 0);
}

fn service(p: IncidentPolicy, checks: &[&str]) -> crate::config::Service {
    use crate::config::{Check, ProbeSpec, Service, TcpSpec};
    Service {
        name: "identity".into(),
        description: None,
        owner: None,
        tier: None,
        checks: checks
            .iter()
            .map(|n| Check {
                name: n.to_string(),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                probe: ProbeSpec::Tcp(TcpSpec {
                    host: "127.0.0.1".into(),
                    port: 1,
                    tls: false,
                    tls_verify: true,
                    server_name: None,
                    send: None,
                    expect: None,
                    cert_min_days: None,
                }),
            })
            .collect(),
        slo: None,
        incident: p,
    }
}

/// `svc` with a 99.9 % / 30d SLO, so burn-rate alerts apply to it.
fn with_slo(mut svc: crate::config::Service) -> crate::config::Service {
    svc.slo = Some(crate::config::Slo {
        objective: 0.999,
        window: crate::config::SloWindow::Rolling(Duration::from_secs(30 * 86_400)),
        latency: None,
    });
    svc
}

#[test]
fn after_a_restart_every_check_must_show_recovery_before_auto_resolve() {
    let (_, opened) = check(
        policy(2, 2),
        &[Run(0, "login", false), Run(10, "login", false)],
        &[(1, ChangeKind::Opened)],
    );
    let open = opened[0].incident.clone();
    let svc = service(policy(2, 2), &["login", "dns"]);
    let mut m = ServiceIncidents::from_config(&svc, Some(open.clone()), 1);
    assert!(m.on_run(t(100), "login", true, "", false).is_empty());
    assert!(m.on_run(t(110), "login", true, "", false).is_empty());
    assert!(m.on_run(t(105), "dns", true, "", false).is_empty());
    let done = m.on_run(t(115), "dns", true, "", false);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.id, open.id);
    assert_eq!(done[0].incident.restored_at, Some(t(105)));
    assert_eq!(done[0].incident.resolved_at, Some(t(115)));
    assert_eq!(
        done[0].event,
        Some((format!("evt-{}-2", open.id), EventType::Resolved))
    );
}

#[test]
fn after_a_restart_a_burn_rate_incident_waits_for_the_alert_state() {
    let (_, opened) = check(
        policy(3, 1),
        &[Alerts(0, None, Some("burn rate 3d 1.5 > 1"))],
        &[(0, ChangeKind::Opened)],
    );
    let svc = with_slo(service(policy(3, 1), &["login"]));
    let mut m = ServiceIncidents::from_config(&svc, Some(opened[0].incident.clone()), 1);
    // The check is healthy, but the alert is assumed to fire until told.
    assert_eq!(
        m.on_run(t(50), "login", true, "", false)
            .iter()
            .map(|c| c.kind.clone())
            .collect::<Vec<_>>(),
        vec![ChangeKind::Restored]
    );
    let done = m.on_alerts(t(60), None, None, false);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.restored_at, Some(t(50)));
    assert_eq!(done[0].incident.resolved_at, Some(t(60)));
}

#[test]
fn a_reload_that_removes_the_failing_check_resolves_its_incident() {
    let svc = service(policy(1, 1), &["login", "dns"]);
    let mut m = ServiceIncidents::from_config(&svc, None, 0);
    assert_eq!(
        m.on_run(t(0), "login", false, "x", false)[0].kind,
        ChangeKind::Opened
    );
    assert!(m.on_run(t(5), "dns", true, "", false).is_empty());
    let without_login = service(policy(1, 1), &["dns"]);
    let done = m.reconfigure(t(20), &without_login, false);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].kind, ChangeKind::Resolved);
    assert_eq!(done[0].incident.restored_at, Some(t(20)));
    assert!(m.open_incident().is_none());
}

#[derive(Debug, Clone)]
enum Op {
    Run {
        check: usize,
        good: bool,
        maint: bool,
    },
    Alerts {
        page: bool,
        ticket: bool,
        maint: bool,
    },
    Ack,
    Resolve,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(check, good, maint)| Op::Run { check, good, maint }),
        2 => (prop::bool::weighted(0.2), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(page, ticket, maint)| Op::Alerts { page, ticket, maint }),
        1 => Just(Op::Ack),
        1 => Just(Op::Resolve),
    ]
}

proptest! {
    /// Against a reference model of the streaks: an incident is open right
    /// after a valid bad run that completes `open_after`; it opens at most
    /// once per resolution; timestamps are ordered; event ids are unique.
    #[test]
    fn state_machine_matches_the_reference_model(
        open_after in 1u32..4,
        resolve_after in 1u32..4,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        const CHECKS: [&str; 2] = ["a", "b"];
        let mut m = ServiceIncidents::new("svc", &policy(open_after, resolve_after), None, 0);
        let mut streak: [(u32, Option<Timestamp>); 2] = [(0, None); 2];
        let mut event_ids = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            let now = t(i as i64 * 10);
            let was_open = m.open_incident().cloned();
            let changes = match *op {
                Op::Run { check, good, maint } => {
                    if !maint {
                        let s = &mut streak[check];
                        if good { *s = (0, None) } else { *s = (s.0 + 1, s.1.or(Some(now))) }
                    }
                    let ch = m.on_run(now, CHECKS[check], good, "bad", maint);
                    if !maint && !good && streak[check].0 >= open_after {
                        prop_assert!(m.open_incident().is_some(), "streak reached but nothing open");
                    }
                    if maint {
                        prop_assert!(ch.is_empty());
                    }
                    if let Some(c) = ch.iter().find(|c| c.kind == ChangeKind::Opened) {
                        prop_assert!(!good && !maint);
                        prop_assert!(streak[check].0 >= open_after);
                        prop_assert_eq!(Some(c.incident.impact_started_at), streak[check].1);
                    }
                    ch
                }
                Op::Alerts { page, ticket, maint } => {
                    let ch = m.on_alerts(now, page.then_some("p"), ticket.then_some("t"), maint);
                    if let Some(c) = ch.iter().find(|c| c.kind == ChangeKind::Opened) {
                        prop_assert!((page || ticket) && !maint);
                        let earliest = streak.iter().filter_map(|s| s.1).min().unwrap_or(now);
                        prop_assert_eq!(c.incident.impact_started_at, earliest);
                    }
                    ch
                }
                Op::Ack => match &was_open {
                    Some(inc) => match m.ack(now, &inc.id, "x", None).unwrap() {
                        Ack::Changed(c) => vec![c],
                        Ack::AlreadyAcked(_) => {
                            prop_assert!(inc.acknowledged_at.is_some());
                            vec![]
                        }
                    },
                    None => vec![],
                },
                Op::Resolve => match &was_open {
                    Some(inc) => {
                        streak = [(0, None); 2];
                        vec![m.resolve(now, &inc.id, "x").unwrap()]
                    }
                    None => vec![],
                },
            };
            let mut open = was_open.is_some();
            for c in &changes {
                match c.kind {
                    ChangeKind::Opened => { prop_assert!(!open); open = true; }
                    ChangeKind::Resolved => { prop_assert!(open); open = false; }
                    _ => prop_assert!(open),
                }
                let inc = &c.incident;
                prop_assert!(inc.impact_started_at <= inc.opened_at);
                prop_assert!(inc.acknowledged_at.is_none_or(|a| a >= inc.opened_at));
                prop_assert!(inc.restored_at.is_none_or(|r| r >= inc.impact_started_at));
                if inc.state == State::Resolved {
                    let r = inc.resolved_at.unwrap();
                    prop_assert!(inc.restored_at.unwrap() <= r);
                    prop_assert!(inc.opened_at <= r);
                } else {
                    prop_assert!(inc.resolved_at.is_none());
                }
                if let Some((id, _)) = &c.event {
                    prop_assert!(event_ids.insert(id.clone()), "duplicate event id {}", id);
                }
            }
            prop_assert_eq!(open, m.open_incident().is_some());
        }
    }
}

proptest! {
    /// Sums and counts are exact; quantiles match a sorted brute force within
    /// HdrHistogram's 3 significant figures (of whole seconds).
    #[test]
    fn mttd_summary_matches_brute_force(detect in prop::collection::vec(0i64..200_000, 1..60)) {
        let incidents: Vec<Incident> = detect
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut m = ServiceIncidents::new("svc", &policy(1, 1), None, i as u64);
                let mut inc = m.on_run(t(0), "c", false, "x", false).remove(0).incident;
                inc.impact_started_at = t(-d);
                inc
            })
            .collect();
        let s = MttxStats::rebuild(BTreeMap::new(), incidents).summaries();
        let got = &s[&("svc".to_string(), "P1".to_string())].mttd;
        prop_assert_eq!(got.count, detect.len() as u64);
        prop_assert_eq!(got.sum_seconds, detect.iter().sum::<i64>() as f64);
        let mut sorted = detect.clone();
        sorted.sort_unstable();
        for (q, v) in &got.quantiles {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            let want = sorted[rank - 1] as f64;
            prop_assert!((v - want).abs() <= want * 0.001 + 1.0, "q{} got {} want {}", q, v, want);
        }
    }
}
