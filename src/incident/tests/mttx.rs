//! MTTx summaries, response targets and pruning.

use super::*;

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
            escalate: Vec::new(),
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
