//! Acknowledgement, relapse after restore, JSON round trip, ticket severity.

use super::*;

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

#[test]
fn the_first_acknowledgement_from_any_source_wins_and_repeats_are_only_recorded() {
    let p = policy(1, 1);
    let mut m = ServiceIncidents::new("identity", &p, None, 0);
    let id = m.on_run(t(0), "login", false, "x", false)[0]
        .incident
        .id
        .clone();
    let Ack::Changed(first) = m
        .ack_from(t(30), &id, "Alice Ops", None, Source::PagerDuty)
        .unwrap()
    else {
        panic!("first ack must change");
    };
    let inc = &first.incident;
    assert_eq!(inc.acknowledged_at, Some(t(30)));
    assert_eq!(inc.acknowledged_by.as_deref(), Some("Alice Ops"));
    assert_eq!(inc.ack_source, Some(Source::PagerDuty));
    // A later ack from Slack: nothing changes, and only `record_ack` keeps it.
    let Ack::AlreadyAcked(same) = m.ack_from(t(40), &id, "bob", None, Source::Slack).unwrap()
    else {
        panic!("a repeat must not change the incident");
    };
    assert_eq!(&same, inc);
    let rec = m.record_ack(t(40), &id, "bob", Source::Slack).unwrap();
    assert_eq!(rec.kind, ChangeKind::Updated);
    assert_eq!(rec.event, None, "a recorded repeat notifies nobody");
    assert_eq!(rec.incident.acknowledged_at, Some(t(30)));
    assert_eq!(rec.incident.ack_source, Some(Source::PagerDuty));
    assert_eq!(
        rec.incident.acknowledgements,
        [
            AckRecord {
                at: t(30),
                by: "Alice Ops".into(),
                source: Source::PagerDuty
            },
            AckRecord {
                at: t(40),
                by: "bob".into(),
                source: Source::Slack
            },
        ]
    );
    // The list is bounded.
    for i in 0..100 {
        m.record_ack(t(50 + i), &id, "carol", Source::Api);
    }
    assert_eq!(
        m.open_incident().unwrap().acknowledgements.len(),
        MAX_ACK_RECORDS
    );
    assert_eq!(m.record_ack(t(200), &id, "carol", Source::Api), None);
    // Resolved from Jira by a person; the source is kept.
    let done = m.resolve_from(t(300), &id, "Dana", Source::Jira).unwrap();
    assert_eq!(
        done.incident.resolved_by,
        Some(ResolvedBy::User("Dana".into()))
    );
    assert_eq!(done.incident.resolve_source, Some(Source::Jira));
    // Nothing is recorded on a resolved incident.
    assert_eq!(m.record_ack(t(301), &id, "erin", Source::Opsgenie), None);
}

#[test]
fn recovery_resolves_with_source_auto_and_the_api_is_the_default_source() {
    let p = policy(1, 1);
    let mut m = ServiceIncidents::new("identity", &p, None, 0);
    let id = m.on_run(t(0), "login", false, "x", false)[0]
        .incident
        .id
        .clone();
    let Ack::Changed(c) = m.ack(t(5), &id, "bob", None).unwrap() else {
        panic!("first ack must change");
    };
    assert_eq!(c.incident.ack_source, Some(Source::Api));
    let done = m.on_run(t(10), "login", true, "", false);
    assert_eq!(done[0].incident.resolve_source, Some(Source::Auto));
    let json = serde_json::to_value(&done[0].incident).unwrap();
    assert_eq!(json["ack_source"], "api");
    assert_eq!(json["resolve_source"], "auto");
    assert_eq!(json["acknowledgements"][0]["source"], "api");
    // An incident stored before these fields existed reads back without them.
    let mut old = json.clone();
    for k in ["ack_source", "resolve_source", "acknowledgements"] {
        old.as_object_mut().unwrap().remove(k);
    }
    let back: Incident = serde_json::from_value(old).unwrap();
    assert_eq!(back.ack_source, None);
    assert!(back.acknowledgements.is_empty());
}
