//! Escalation for want of an acknowledgement: once per incident, strictly
//! after `opened_at + acknowledge`, never in maintenance, the targets in
//! force at the time, and across restarts.

use super::*;

/// `P1`: acknowledge within 600 s, else tell `escalate`; `P2`: 1800 s, tell `lead`.
fn targets(escalate: &[&str]) -> BTreeMap<String, ResponseTarget> {
    let t = |ack: u64, escalate: Vec<String>| ResponseTarget {
        acknowledge: Duration::from_secs(ack),
        restore: Duration::from_secs(7200),
        escalate,
    };
    BTreeMap::from([
        (
            "P1".to_string(),
            t(600, escalate.iter().map(|s| s.to_string()).collect()),
        ),
        ("P2".to_string(), t(1800, vec!["lead".to_string()])),
    ])
}

/// A P1 incident opened at t(10) (two failed runs, at 0 and 10).
fn opened() -> ServiceIncidents {
    let mut m = ServiceIncidents::new("identity", &policy(2, 2), None, 0);
    m.on_run(t(0), "login", false, "x", false);
    let c = m.on_run(t(10), "login", false, "x", false);
    assert_eq!(c[0].kind, ChangeKind::Opened);
    m
}

/// What `escalate_unacknowledged` says at each (second, in maintenance):
/// `Some(second)` where it escalated.
fn escalations(
    m: &mut ServiceIncidents,
    targets: &BTreeMap<String, ResponseTarget>,
    at: &[(i64, bool)],
) -> Vec<i64> {
    at.iter()
        .filter_map(|&(s, maint)| m.escalate_unacknowledged(t(s), targets, maint).map(|_| s))
        .collect()
}

#[test]
fn the_acknowledge_target_passing_unacknowledged_escalates_exactly_once() {
    let mut m = opened();
    let tg = targets(&["manager"]);
    // The deadline is 10 + 600 = 610: on it is still in time (an ack at 610
    // meets the target), one second later it has passed.
    assert_eq!(m.escalate_unacknowledged(t(609), &tg, false), None);
    assert_eq!(m.escalate_unacknowledged(t(610), &tg, false), None);
    let c = m.escalate_unacknowledged(t(611), &tg, false).unwrap();
    let id = c.incident.id.clone();
    assert_eq!(
        c.kind,
        ChangeKind::Unacknowledged {
            target: Duration::from_secs(600)
        }
    );
    assert_eq!(c.event, Some((format!("evt-{id}-2"), EventType::Escalated)));
    assert_eq!(c.incident.ack_escalated_at, Some(t(611)));
    assert_eq!(c.incident.escalated_to, vec!["manager".to_string()]);
    assert_eq!(c.incident.severity, "P1", "the severity stays");
    assert_eq!(c.incident.acknowledged_at, None);
    // Once: every later evaluation says nothing.
    assert_eq!(
        escalations(&mut m, &tg, &[(612, false), (9999, false)]),
        Vec::<i64>::new()
    );
    // The machine's incident carries the mark, and a later ack keeps it.
    let Ack::Changed(a) = m.ack(t(700), &id, "bob", None).unwrap() else {
        panic!("first ack changes");
    };
    assert_eq!(a.incident.ack_escalated_at, Some(t(611)));
    assert_eq!(a.incident.escalated_to, vec!["manager".to_string()]);
    assert_eq!(
        a.event,
        Some((format!("evt-{id}-3"), EventType::Acknowledged))
    );
}

#[test]
fn no_escalation_when_acked_in_time_resolved_first_or_nobody_to_tell() {
    fn check(
        name: &str,
        prepare: impl Fn(&mut ServiceIncidents),
        tg: BTreeMap<String, ResponseTarget>,
    ) {
        let mut m = opened();
        prepare(&mut m);
        let got = escalations(&mut m, &tg, &[(611, false), (700, false), (100_000, false)]);
        assert_eq!(got, Vec::<i64>::new(), "{name}");
    }
    let ack_at = |s: i64| {
        move |m: &mut ServiceIncidents| {
            let id = m.open_incident().unwrap().id.clone();
            m.ack(t(s), &id, "bob", None).unwrap();
        }
    };
    check("acked well in time", ack_at(300), targets(&["manager"]));
    check("acked on the deadline", ack_at(610), targets(&["manager"]));
    check(
        "resolved by hand before the deadline",
        |m| {
            let id = m.open_incident().unwrap().id.clone();
            m.resolve(t(500), &id, "bob").unwrap();
        },
        targets(&["manager"]),
    );
    check(
        "recovered before the deadline",
        |m| {
            m.on_run(t(20), "login", true, "", false);
            let c = m.on_run(t(30), "login", true, "", false);
            assert_eq!(c[0].kind, ChangeKind::Resolved);
        },
        targets(&["manager"]),
    );
    check(
        "the target names no escalate notifiers",
        |_| {},
        targets(&[]),
    );
    check("no target for the severity", |_| {}, BTreeMap::new());
}

#[test]
fn maintenance_defers_the_escalation_until_it_ends() {
    let mut m = opened();
    let tg = targets(&["manager"]);
    let got = escalations(
        &mut m,
        &tg,
        &[(611, true), (900, true), (901, false), (902, false)],
    );
    assert_eq!(got, [901]);
    assert_eq!(m.open_incident().unwrap().ack_escalated_at, Some(t(901)));
}

#[test]
fn the_targets_in_force_apply_also_to_incidents_already_open() {
    // A reload that adds `escalate` after the deadline passed escalates at
    // the next evaluation (the incident is still open and unacknowledged).
    let mut m = opened();
    assert_eq!(
        escalations(&mut m, &targets(&[]), &[(700, false)]),
        Vec::<i64>::new()
    );
    assert_eq!(
        escalations(&mut m, &targets(&["manager", "cto"]), &[(701, false)]),
        [701]
    );
    assert_eq!(
        m.open_incident().unwrap().escalated_to,
        vec!["manager".to_string(), "cto".to_string()]
    );
    // A reload that lengthens the target before it passed moves the deadline.
    let mut m = opened();
    let mut long = targets(&["manager"]);
    long.get_mut("P1").unwrap().acknowledge = Duration::from_secs(3600);
    assert_eq!(
        escalations(&mut m, &long, &[(611, false), (3610, false), (3611, false)]),
        [3611]
    );
}

#[test]
fn a_severity_escalation_brings_the_higher_severitys_target() {
    // A ticket-level alert opens P2 at 0 (P2: 1800 s, tell `lead`); a page
    // at 100 raises it to P1, whose 600 s target (from opening) then applies.
    let mut m = ServiceIncidents::new("identity", &policy(3, 2), None, 0);
    let tg = targets(&["manager"]);
    m.on_alerts(t(0), None, Some("burn"), false);
    assert_eq!(m.open_incident().unwrap().severity, "P2");
    assert_eq!(escalations(&mut m, &tg, &[(599, false)]), Vec::<i64>::new());
    m.on_alerts(t(100), Some("burn"), None, false);
    assert_eq!(m.open_incident().unwrap().severity, "P1");
    assert_eq!(
        escalations(&mut m, &tg, &[(600, false), (601, false)]),
        [601]
    );
    assert_eq!(m.open_incident().unwrap().escalated_to, ["manager"]);
}

#[test]
fn after_a_restart_a_sent_escalation_is_not_sent_again_and_a_missed_one_once() {
    let tg = targets(&["manager"]);
    // Escalated before the stop: the stored incident says so.
    let mut before = opened();
    let stored = before
        .escalate_unacknowledged(t(611), &tg, false)
        .unwrap()
        .incident;
    let json = stored.to_json().unwrap();
    let back = Incident::from_json(&json).unwrap();
    assert_eq!(back, stored);
    let mut m = ServiceIncidents::new("identity", &policy(2, 2), Some(back), 1);
    assert_eq!(
        escalations(&mut m, &tg, &[(5000, false)]),
        Vec::<i64>::new()
    );

    // Opened before the stop, the deadline passed while stopped: the first
    // evaluation after the start escalates, once.
    let unescalated = opened().open_incident().unwrap().clone();
    let mut m = ServiceIncidents::new("identity", &policy(2, 2), Some(unescalated), 1);
    assert_eq!(
        escalations(&mut m, &tg, &[(5000, false), (5002, false)]),
        [5000]
    );
}

#[test]
fn incidents_stored_before_escalation_existed_read_back_unescalated() {
    let mut v: serde_json::Value =
        serde_json::from_str(&opened().open_incident().unwrap().to_json().unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("ack_escalated_at");
    o.remove("escalated_to");
    let inc = Incident::from_json(&v.to_string()).unwrap();
    assert_eq!(inc.ack_escalated_at, None);
    assert_eq!(inc.escalated_to, Vec::<String>::new());
}
