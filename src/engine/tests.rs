use super::*;
use std::time::Duration;

use jiff::Timestamp;

use crate::config::parse_str;
use crate::incident::{Attainment, Change, ChangeKind, IncidentError, Source, Stage, State};
use crate::slo::{AlertState, Counts};

const CFG: &str = r#"
maintenance:
  - services: [web]
    start: 2026-01-01T10:00:00Z
    end: 2026-01-01T11:00:00Z
response_targets:
  P1: { acknowledge: 10m, restore: 1h }
services:
  - name: web
    checks:
      - name: home
        interval: 1m
        http: { url: "http://127.0.0.1:1/" }
    slo: { objective: 99, window: 30d, latency: { threshold: 200ms, objective: 90 } }
    # Burn-rate alerts off: these tests pin the check-streak path; the
    # alert path is covered in incident::tests.
    incident: { open_after: 2, resolve_after: 1, severity: P1, burn_rate_alerts: false }
"#;

fn state() -> EngineState {
    EngineState::new(Arc::new(parse_str(CFG, "test.yaml").unwrap()))
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// What the engine task does with changes when the store takes them:
/// build the writes and mark them stored. Returns the writes.
fn commit(s: &mut EngineState, changes: Vec<Change>, now: &str) -> Vec<IncidentWrite> {
    let writes = s.writes(changes, at(now));
    for w in &writes {
        s.stored(w);
    }
    writes
}

fn run(t: &str, good: bool, latency_ms: u64) -> RunRecord {
    RunRecord {
        service: "web".into(),
        check: "home".into(),
        at: at(t),
        good,
        latency: Duration::from_millis(latency_ms),
        detail: if good {
            String::new()
        } else {
            "status 503 not in [200]".into()
        },
    }
}

#[test]
fn runs_in_maintenance_count_toward_nothing() {
    let mut s = state();
    assert!(s.on_run(&run("2026-01-01T09:59:00Z", true, 10)).0);
    // Two bad runs inside the window: not valid, no incident.
    for t in ["2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z"] {
        let (valid, changes) = s.on_run(&run(t, false, 10));
        assert!(!valid);
        assert!(changes.is_empty());
    }
    let (snap, changes) = s.evaluate(at("2026-01-01T10:59:00Z"));
    assert!(changes.is_empty());
    let f = snap.services[0].figures.as_ref().unwrap();
    assert_eq!(
        f.counts,
        Counts {
            valid: 1,
            good: 1,
            latency_good: 1
        }
    );
    assert!(snap.services[0].in_maintenance);
    let pending = s.take_pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].counts.valid, 1);
}

#[test]
fn latency_good_needs_good_and_under_threshold() {
    let mut s = state();
    s.on_run(&run("2026-01-02T00:00:00Z", true, 150));
    s.on_run(&run("2026-01-02T00:01:00Z", true, 250));
    s.on_run(&run("2026-01-02T00:02:00Z", false, 50));
    let (snap, _) = s.evaluate(at("2026-01-02T00:03:00Z"));
    let f = snap.services[0].figures.as_ref().unwrap();
    assert_eq!(
        f.counts,
        Counts {
            valid: 3,
            good: 2,
            latency_good: 1
        }
    );
}

#[test]
fn an_outage_opens_an_incident_that_the_snapshot_and_mttx_see() {
    let mut s = state();
    assert!(
        s.on_run(&run("2026-01-02T00:00:00Z", false, 10))
            .1
            .is_empty()
    );
    let (_, changes) = s.on_run(&run("2026-01-02T00:01:00Z", false, 10));
    assert_eq!(changes.len(), 1);
    let inc = changes[0].incident.clone();
    assert_eq!(inc.impact_started_at, at("2026-01-02T00:00:00Z"));
    assert_eq!(inc.opened_at, at("2026-01-02T00:01:00Z"));
    let w = s.write_for(&changes[0], at("2026-01-02T00:01:00Z"));
    assert!(w.events.is_empty(), "no notifiers configured");
    // Not stored yet: readers do not see it.
    let (snap, _) = s.evaluate(at("2026-01-02T00:01:10Z"));
    assert_eq!(snap.services[0].open_incident, None);
    assert!(snap.incidents.is_empty());
    commit(&mut s, changes, "2026-01-02T00:01:00Z");

    let (snap, _) = s.evaluate(at("2026-01-02T00:01:30Z"));
    assert_eq!(
        snap.services[0].open_incident.as_deref(),
        Some(inc.id.as_str())
    );
    assert_eq!(snap.incidents.len(), 1);
    assert_eq!(
        snap.incident_counts[&ServiceSeverity::new("web", "P1")],
        IncidentCounts { open: 1, opened: 1 }
    );

    // Ack after 5 minutes: MTTA exactly 300 s; a second ack (from another
    // source) changes nothing but is recorded, without an event.
    let (acked, change) = s
        .ack(at("2026-01-02T00:06:00Z"), &inc.id, "alice", None)
        .unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(acked.ack_source, Some(Source::Api));
    commit(&mut s, change.into_iter().collect(), "2026-01-02T00:06:00Z");
    let again = s
        .acknowledge(
            at("2026-01-02T00:07:00Z"),
            &inc.id,
            "bob",
            None,
            Source::PagerDuty,
        )
        .unwrap();
    assert!(!again.first);
    let recorded = again.change.expect("the repeat is recorded");
    assert_eq!(recorded.kind, ChangeKind::Updated);
    assert_eq!(recorded.event, None);
    assert!(recorded.entries.is_empty());
    let inc_now = &recorded.incident;
    assert_eq!(inc_now.acknowledged_at, Some(at("2026-01-02T00:06:00Z")));
    assert_eq!(inc_now.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(inc_now.ack_source, Some(Source::Api));
    assert_eq!(
        inc_now
            .acknowledgements
            .iter()
            .map(|a| (a.by.as_str(), a.source))
            .collect::<Vec<_>>(),
        [("alice", Source::Api), ("bob", Source::PagerDuty)]
    );
    commit(&mut s, vec![recorded], "2026-01-02T00:07:00Z");

    // Recovery after one good run; MTTR = restored - impact start = 8 min.
    let (_, changes) = s.on_run(&run("2026-01-02T00:08:00Z", true, 10));
    assert!(changes.iter().any(|c| c.incident.state == State::Resolved));
    commit(&mut s, changes, "2026-01-02T00:08:00Z");
    let (snap, _) = s.evaluate(at("2026-01-02T00:10:00Z"));
    let sum = &snap.mttx[&ServiceSeverity::new("web", "P1")];
    assert_eq!(sum.mtta.count, 1);
    assert_eq!(sum.mtta.sum_seconds, 300.0);
    assert_eq!(sum.mttr.sum_seconds, 480.0);
    assert_eq!(sum.mttd.sum_seconds, 60.0);
    assert_eq!(
        snap.response[&(ServiceSeverity::new("web", "P1"), Stage::Acknowledge)],
        Attainment { met: 1, missed: 0 }
    );
    // Resolved: acknowledging again is a conflict; an unknown id is not found.
    assert!(matches!(
        s.ack(at("2026-01-02T00:11:00Z"), &inc.id, "x", None),
        Err(IncidentError::Conflict { .. })
    ));
    assert!(matches!(
        s.resolve(at("2026-01-02T00:11:00Z"), "inc-nope", "x"),
        Err(IncidentError::NotFound { .. })
    ));
}

#[test]
fn mttx_counts_only_incidents_in_the_services_own_slo_window() {
    let cfg = CFG.replace("window: 30d", "window: 7d");
    let mut s = EngineState::new(Arc::new(parse_str(&cfg, "test.yaml").unwrap()));
    for (t, good) in [
        ("2026-01-02T00:00:00Z", false),
        ("2026-01-02T00:01:00Z", false),
        ("2026-01-02T00:02:00Z", true),
    ] {
        let (_, changes) = s.on_run(&run(t, good, 10));
        commit(&mut s, changes, t);
    }
    let key = ServiceSeverity::new("web", "P1");
    let (snap, _) = s.evaluate(at("2026-01-08T23:00:00Z"));
    assert_eq!(snap.mttx[&key].mttd.count, 1, "6 days old: inside 7d");
    let (snap, _) = s.evaluate(at("2026-01-09T00:02:00Z"));
    assert!(
        !snap.mttx.contains_key(&key),
        "7 days and 1 minute old: outside 7d"
    );
    assert_eq!(snap.incidents.len(), 1, "the API still lists it");
    assert_eq!(
        snap.incident_counts[&key],
        IncidentCounts { open: 0, opened: 1 },
        "incidents_total is a counter: it never drops"
    );
}

#[test]
fn requeued_deltas_add_up_exactly() {
    let mut s = state();
    s.on_run(&run("2026-01-02T00:00:10Z", true, 10));
    s.on_run(&run("2026-01-02T00:00:20Z", false, 10));
    let first = s.take_pending();
    s.on_run(&run("2026-01-02T00:00:30Z", true, 10));
    s.requeue(first);
    let again = s.take_pending();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].counts,
        Counts {
            valid: 3,
            good: 2,
            latency_good: 2
        }
    );
    assert_eq!(again[0].at_minute, at("2026-01-02T00:00:00Z").as_second());
}

/// A fresh install: one check every 10 s since 00:00:00, down for a
/// minute at 00:06. Divided by the runs seen alone, that minute burnt the
/// 2h and 1d windows far above 3 and the ticket alert held the incident
/// open for hours after recovery; against the schedule's runs it is a
/// page-level minute, which clears with the 5m window.
#[test]
fn a_young_outage_resolves_once_the_5m_window_passes() {
    let cfg = r#"
services:
  - name: web
    checks:
      - name: home
        interval: 10s
        http: { url: "http://127.0.0.1:1/" }
    slo: { objective: 99.9, window: 30d }
    incident: { open_after: 3, resolve_after: 2, severity: P1 }
"#;
    let mut s = EngineState::new(Arc::new(parse_str(cfg, "test.yaml").unwrap()));
    let start = at("2026-01-02T00:00:00Z");
    let mut changes = Vec::new();
    let mut alerts_at_recovery = None;
    // A run every 10 s for 20 minutes, each followed by an evaluation.
    for k in 0..120i64 {
        let t = start + jiff::SignedDuration::from_secs(10 * k);
        let bad = (36..42).contains(&k); // 00:06:00–00:06:50
        let mut r = run(&t.to_string(), !bad, 10);
        r.detail = if bad { "refused".into() } else { String::new() };
        changes.extend(s.on_run(&r).1);
        let (snap, c) = s.evaluate(t);
        changes.extend(c);
        if t == at("2026-01-02T00:07:10Z") {
            alerts_at_recovery = Some(snap.services[0].alerts);
        }
    }
    // Recovered at 00:07:10 (two good runs), but the minute was 6 of the
    // hour's 355 expected runs (burn 16.9) and 6 of the 5m window's 30:
    // a page, as on any history. No ticket: 6 of a day's runs is burn 0.7.
    assert_eq!(
        alerts_at_recovery,
        Some(AlertState {
            page: true,
            ticket: false
        })
    );
    let opened = changes
        .iter()
        .find(|c| c.kind == crate::incident::ChangeKind::Opened)
        .map(|c| c.incident.clone())
        .unwrap();
    assert_eq!(opened.impact_started_at, at("2026-01-02T00:06:00Z"));
    assert_eq!(opened.opened_at, at("2026-01-02T00:06:20Z"));
    let resolved = changes
        .iter()
        .find(|c| c.incident.state == State::Resolved)
        .map(|c| c.incident.clone())
        .expect("resolved within 20 minutes, not held open by the ticket alert");
    assert_eq!(resolved.id, opened.id);
    assert_eq!(resolved.restored_at, Some(at("2026-01-02T00:07:00Z")));
    // 00:11:00 is the first instant whose 5m window (00:07–00:11) no
    // longer holds the bad minute.
    assert_eq!(resolved.resolved_at, Some(at("2026-01-02T00:11:00Z")));
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.kind == crate::incident::ChangeKind::Opened)
            .count(),
        1
    );
    let (snap, _) = s.evaluate(at("2026-01-02T00:20:00Z"));
    assert_eq!(snap.services[0].open_incident, None);
    let f = snap.services[0].figures.as_ref().unwrap();
    // 6 bad runs of the 30d window's 719 h 20 min of schedule (258 960 runs).
    assert_eq!(f.expected, 258_960.0);
    assert_eq!(
        f.availability.error_budget_remaining_ratio,
        1.0 - (6.0 / 258_960.0) / (1.0 - 0.999)
    );
}

#[test]
fn expected_runs_follow_maintenance_and_a_reload() {
    // CFG: `web` checks once a minute; maintenance 2026-01-01 10:00–11:00.
    let mut s = state();
    s.on_run(&run("2026-01-01T11:59:00Z", true, 10));
    let burn = |s: &mut EngineState, label: &str| {
        let (snap, _) = s.evaluate(at("2026-01-01T12:00:00Z"));
        let f = snap.services[0].figures.clone().unwrap();
        let b = f
            .availability
            .burn
            .iter()
            .find(|b| b.window == label)
            .copied();
        (f.expected_runs_per_second, b.unwrap().expected)
    };
    // 1d at 12:00 spans 13:00 the day before to now: 23 h, minus the hour of maintenance.
    assert_eq!(burn(&mut s, "1d"), (1.0 / 60.0, 22.0 * 60.0));
    // Reload: the check now runs every 15 s, and a second check every 30 s
    // joins; the maintenance window moves a month back. The history stays; expected
    // runs follow the new schedule over the whole window.
    let cfg = CFG
        .replace("        interval: 1m\n", "        interval: 15s\n")
        .replace(
            "        http: { url: \"http://127.0.0.1:1/\" }\n",
            "        http: { url: \"http://127.0.0.1:1/\" }\n      - name: api\n        interval: 30s\n        http: { url: \"http://127.0.0.1:1/api\" }\n",
        )
        .replace("2026-01-01T1", "2025-12-01T1");
    let (rebuild, _) = s.reconfigure(
        at("2026-01-01T12:00:00Z"),
        Arc::new(parse_str(&cfg, "test.yaml").unwrap()),
    );
    assert!(rebuild.is_empty(), "same SLO: the history is kept");
    assert_eq!(burn(&mut s, "1d"), (6.0 / 60.0, 23.0 * 60.0 * 6.0));
    let (snap, _) = s.evaluate(at("2026-01-01T12:00:00Z"));
    assert_eq!(snap.services[0].figures.as_ref().unwrap().counts.valid, 1);
}

#[test]
fn a_changed_slo_keeps_its_history_unless_it_reaches_further_back() {
    let mut s = state();
    s.on_run(&run("2026-01-02T00:00:00Z", true, 10));
    s.on_run(&run("2026-01-02T00:01:00Z", false, 10));
    let now = at("2026-01-02T00:02:00Z");
    // A stricter objective over the same 30d: carried, no store read.
    let stricter = CFG.replace("objective: 99, window: 30d", "objective: 99.5, window: 30d");
    let (rebuild, _) = s.reconfigure(now, Arc::new(parse_str(&stricter, "test.yaml").unwrap()));
    assert!(rebuild.is_empty(), "{rebuild:?}");
    let (snap, _) = s.evaluate(now);
    let f = snap.services[0].figures.as_ref().unwrap();
    assert_eq!(
        f.counts,
        Counts {
            valid: 2,
            good: 1,
            latency_good: 1
        }
    );
    assert_eq!(f.availability.objective, 0.995);
    // 90d reaches further back than the 30d ring holds: re-read from the store.
    let longer = CFG.replace("objective: 99, window: 30d", "objective: 99, window: 90d");
    let (rebuild, _) = s.reconfigure(now, Arc::new(parse_str(&longer, "test.yaml").unwrap()));
    assert_eq!(rebuild, ["web"]);
}
