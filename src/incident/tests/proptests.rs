//! The state machine and MTTx summaries against reference models.

use super::*;

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
