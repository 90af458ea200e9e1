//! Manual resolves, held alerts, reloads and removed services.

use super::*;

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
