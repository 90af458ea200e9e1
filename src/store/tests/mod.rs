use std::path::Path;

use super::*;
use crate::incident::totals::{EntryKind, Figure};

fn delta(
    service: &str,
    check: &str,
    at_minute: i64,
    valid: u64,
    good: u64,
    lg: u64,
) -> BucketDelta {
    BucketDelta {
        service: service.into(),
        check: check.into(),
        at_minute,
        counts: Counts {
            valid,
            good,
            latency_good: lg,
        },
    }
}

fn row(
    check: &str,
    resolution: Resolution,
    start: i64,
    valid: u64,
    good: u64,
    lg: u64,
) -> BucketRow {
    BucketRow {
        service: "identity".into(),
        check: check.into(),
        resolution,
        start,
        counts: Counts {
            valid,
            good,
            latency_good: lg,
        },
    }
}

fn event(event_id: &str, notifier: &str, incident_id: &str, created_at: i64) -> OutboxInsert {
    OutboxInsert {
        event_id: event_id.into(),
        notifier: notifier.into(),
        incident_id: incident_id.into(),
        payload: format!("{{\"id\":\"{event_id}\"}}"),
        created_at,
    }
}

fn raw_version(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

// 2026-11-23T10:00:00Z, an hour boundary.
const T0: i64 = 1_795_428_000;

fn entry(kind: EntryKind, severity: &str, figure: Figure, micros: u64) -> Entry {
    Entry {
        kind,
        service: "identity".into(),
        severity: severity.into(),
        figure,
        micros,
    }
}

fn incident_save(id: &str, state: &str, opened_at: i64, entries: Vec<Entry>) -> IncidentSave {
    IncidentSave {
        id: id.into(),
        service: "identity".into(),
        state: state.into(),
        opened_at,
        body_json: format!("{{\"id\":\"{id}\"}}"),
        events: vec![],
        entries,
    }
}

fn totals_row(severity: &str, figure: &str, count: u64, sum_micros: u64) -> TotalsRow {
    TotalsRow {
        service: "identity".into(),
        severity: severity.into(),
        figure: figure.into(),
        count,
        sum_micros,
    }
}

mod buckets;
mod incidents;
mod open;
mod state;
mod totals;
