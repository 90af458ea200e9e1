//! Opening and auto-resolving: streaks, burn-rate alerts, escalation,
//! maintenance.

use super::*;

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
