//! The monthly report and the history cache.

use super::*;
use crate::config::ResponseTarget;
use crate::status::History;
use crate::status::report::{self, Month, ReportInput, ReportServiceInput};
use crate::store::{BucketDelta, ReadOnlyStore, Store};
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn the_monthly_report_has_exact_budget_response_and_attainment() {
    let month = Month::parse("2026-02").unwrap();
    let (start, end) = month.bounds();
    assert_eq!((start, end), (1_769_904_000, 1_772_323_200));
    assert_eq!(month.label(), "February 2026");
    assert_eq!(month.prev().key(), "2026-01");
    assert_eq!(month.next().key(), "2026-03");
    assert_eq!(Month::parse("2025-12").unwrap().next().key(), "2026-01");
    for bad in [
        "2026-13",
        "2026-00",
        "26-02",
        "2026-2",
        "x",
        "1969-12",
        "2026-02-01",
    ] {
        assert_eq!(Month::parse(bad), None, "{bad}");
    }
    assert_eq!(Month::of(ts(start + 5)).key(), "2026-02");

    // web: 28 days × 2880 runs expected; 80 640 seen, 40 bad.
    // Budget: 1 − 40 / (0.001 × 80 640) = 1 − 40/80.64.
    // Incidents: a P1 acked after 5 min (target 10m, met) and restored
    // after 30 min (target 2h, met); a P2 acked after 50 min (target 30m,
    // missed), restored after 9h (target 8h, missed).
    let mut p1 = incident("web", 1, start + DAY, Some(start + DAY + 1800));
    p1.acknowledged_at = Some(p1.opened_at + jiff::SignedDuration::from_secs(300));
    let mut p2 = incident("web", 2, start + 3 * DAY, Some(start + 3 * DAY + 9 * 3600));
    p2.severity = "P2".into();
    p2.acknowledged_at = Some(p2.opened_at + jiff::SignedDuration::from_secs(3000));
    let incidents = vec![p1, p2];
    let targets = BTreeMap::from([
        (
            "P1".to_string(),
            ResponseTarget {
                acknowledge: Duration::from_secs(600),
                restore: Duration::from_secs(7200),
                escalate: Vec::new(),
            },
        ),
        (
            "P2".to_string(),
            ResponseTarget {
                acknowledge: Duration::from_secs(1800),
                restore: Duration::from_secs(8 * 3600),
                escalate: Vec::new(),
            },
        ),
    ]);
    let r = report::build(&ReportInput {
        title: "IT".into(),
        month,
        now: ts(NOW),
        services: vec![
            ReportServiceInput {
                name: "web".into(),
                description: None,
                objective: Some(0.999),
                counts: counts(80_640, 80_600),
                expected: 80_640.0,
            },
            ReportServiceInput {
                name: "young".into(),
                description: None,
                objective: Some(0.99),
                // Started late in the month: 1000 runs seen of 10 000 scheduled.
                counts: counts(1000, 990),
                expected: 10_000.0,
            },
            ReportServiceInput {
                name: "plain".into(),
                description: None,
                objective: None,
                counts: counts(0, 0),
                expected: 0.0,
            },
        ],
        incidents: &incidents,
        targets: &targets,
    });
    assert!(r.complete);
    let web = &r.rows[0];
    assert_eq!(web.availability, Some(80_600.0 / 80_640.0));
    assert_eq!(web.meets_objective, Some(true), "99.950% ≥ 99.9%");
    assert_eq!(
        web.budget_remaining,
        Some(1.0 - 40.0 / ((1.0 - 0.999) * 80_640.0))
    );
    assert_eq!(
        web.incidents,
        BTreeMap::from([("P1".to_string(), 1), ("P2".to_string(), 1)])
    );
    assert_eq!(web.mtta_mean_seconds, Some((300.0 + 3000.0) / 2.0));
    assert_eq!(web.mttr_mean_seconds, Some((1800.0 + 9.0 * 3600.0) / 2.0));
    assert_eq!((web.acknowledge.met, web.acknowledge.missed), (1, 1));
    assert_eq!((web.restore.met, web.restore.missed), (1, 1));
    // The young service: 10 bad of an allowance of 1 % of 10 000 scheduled runs.
    assert_eq!(
        r.rows[1].budget_remaining,
        Some(1.0 - 10.0 / ((1.0 - 0.99) * 10_000.0))
    );
    assert_eq!(r.rows[1].meets_objective, Some(true));
    assert_eq!(r.rows[2].availability, None);
    assert_eq!(r.rows[2].budget_remaining, None);
    assert_eq!(
        r.meeting(),
        (2, 2),
        "services without an objective are not judged"
    );
    assert_eq!(r.incidents(), 2);
    let sev: Vec<(&str, u64, Option<f64>)> = r
        .severities
        .iter()
        .map(|s| (s.severity.as_str(), s.incidents, s.mtta_mean_seconds))
        .collect();
    assert_eq!(sev, [("P1", 1, Some(300.0)), ("P2", 1, Some(3000.0))]);

    let out = report::html(&r);
    assert!(out.contains("IT: monthly operations report"));
    assert!(out.contains("February 2026 · generated"));
    assert!(out.contains("<b>2 of 2</b><span>services met their availability objective"));
    assert!(out.contains("<b>50%</b><span>acknowledged within target (1 of 2)"));
    assert!(out.contains("@page{size:A4 landscape"));
    assert!(
        out.contains("href=\"report?month=2026-01\"")
            && out.contains("href=\"report?month=2026-03\"")
    );
    // 1 − 40/80.64 = 50.396…% left.
    assert!(out.contains("50.396%"), "{out}");
}

#[tokio::test]
async fn history_refreshes_reread_only_yesterday_and_today_within_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let delta = |at: i64, valid: u64, good: u64| BucketDelta {
        service: "web".into(),
        check: "home".into(),
        at_minute: at,
        counts: counts(valid, good),
    };
    store
        .add_counts(vec![
            delta(TODAY - 30 * DAY + 60, 100, 99),
            delta(TODAY - DAY + 23 * 3600 + 3540, 10, 10),
            delta(TODAY + 600, 5, 4),
        ])
        .await
        .unwrap();
    let ro = ReadOnlyStore::open(&path).unwrap();
    let h = History::default().refreshed(&ro, ts(NOW)).unwrap();
    assert_eq!(h.day("web", TODAY - 30 * DAY), Some(counts(100, 99)));
    assert_eq!(h.day("web", TODAY - DAY), Some(counts(10, 10)));
    assert_eq!(h.day("web", TODAY), Some(counts(5, 4)));
    assert_eq!(h.today, TODAY);
    assert!(!h.stale(ts(NOW + 59)));
    assert!(h.stale(ts(NOW + 60)), "a minute old");
    let mut h2 = h.clone();
    h2.loaded_at = Some(ts(NOW - 10));
    assert!(h2.stale(ts(NOW)), "an hour closed at 15:00 since 14:59:50");

    // Same day: a late flush into yesterday's last minute and more runs
    // today are picked up; a (hypothetical) change to an old day is not
    // re-read until the date changes.
    store
        .add_counts(vec![
            delta(TODAY - DAY + 23 * 3600 + 3540, 2, 1),
            delta(TODAY + 900, 5, 5),
            delta(TODAY - 30 * DAY + 60, 100, 0),
        ])
        .await
        .unwrap();
    let h3 = h.refreshed(&ro, ts(NOW + 60)).unwrap();
    assert_eq!(h3.day("web", TODAY - DAY), Some(counts(12, 11)));
    assert_eq!(h3.day("web", TODAY), Some(counts(10, 9)));
    assert_eq!(h3.day("web", TODAY - 30 * DAY), Some(counts(100, 99)));
    // Next day: everything is re-read.
    let h4 = h3.refreshed(&ro, ts(NOW + DAY)).unwrap();
    assert_eq!(h4.day("web", TODAY - 30 * DAY), Some(counts(200, 99)));
    assert_eq!(h4.today, TODAY + DAY);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_stale_history_is_served_while_one_background_read_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let delta = |at: i64, valid: u64| BucketDelta {
        service: "web".into(),
        check: "home".into(),
        at_minute: at,
        counts: counts(valid, valid),
    };
    store.add_counts(vec![delta(TODAY + 60, 7)]).await.unwrap();
    let cache = crate::status::HistoryCache::new(crate::status::history::Reader::default());
    // Cold: the request waits for the read.
    let first = cache.get(&path, ts(NOW)).await;
    assert_eq!(first.day("web", TODAY), Some(counts(7, 7)));
    // Fresh for a minute: the same history, no read.
    store.add_counts(vec![delta(TODAY + 120, 3)]).await.unwrap();
    let again = cache.get(&path, ts(NOW + 59)).await;
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    // Stale: answered at once with the old history; the new one follows.
    let stale = cache.get(&path, ts(NOW + 60)).await;
    assert_eq!(stale.day("web", TODAY), Some(counts(7, 7)));
    let mut fresh = stale;
    for _ in 0..200 {
        fresh = cache.get(&path, ts(NOW + 61)).await;
        if fresh.loaded_at == Some(ts(NOW + 60)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fresh.loaded_at, Some(ts(NOW + 60)));
    assert_eq!(fresh.day("web", TODAY), Some(counts(10, 10)));
    store.close().await.unwrap();
}
