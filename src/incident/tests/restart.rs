//! Restarts and reloads: state rebuilt from the configuration.

use super::*;

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
