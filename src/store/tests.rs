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

#[tokio::test]
async fn open_creates_directory_and_migrations_are_idempotent_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/sentinel.db");
    let store = Store::open(&path).unwrap();
    store.set_meta("k", "v1").await.unwrap();
    store.close().await.unwrap();
    assert_eq!(raw_version(&path), SUPPORTED_VERSION);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.get_meta("k").await.unwrap().as_deref(), Some("v1"));
    assert_eq!(store.get_meta("missing").await.unwrap(), None);
    store.close().await.unwrap();
    assert_eq!(raw_version(&path), SUPPORTED_VERSION);

    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn garbage_file_is_corrupt_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);

    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[tokio::test]
async fn damaged_page_in_a_real_database_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    let store = Store::open(&path).unwrap();
    let deltas = (0..2000)
        .map(|i| delta("identity", &format!("check-{i}"), T0, 1, 1, 1))
        .collect();
    store.add_counts(deltas).await.unwrap();
    store.close().await.unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{}", bytes.len());
    // Keep the header and the schema page; trash a data page in the middle.
    let mid = bytes.len() / 2 / 4096 * 4096;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn full_disk_is_a_write_error_that_commits_nothing_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store
        .add_counts(vec![delta("identity", "login", T0, 1, 1, 1)])
        .await
        .unwrap();
    let set_max_pages = |pages: i64| {
        store.call(move |c| {
            c.pragma_update(None, "max_page_count", pages)
                .map_err(|source| StoreError::Write { op: "test", source })
        })
    };
    // SQLite reports SQLITE_FULL once the file may not grow: a full disk.
    let pages: i64 = store
        .call(|c| {
            c.pragma_query_value(None, "page_count", |r| r.get(0))
                .map_err(|source| StoreError::Read { op: "test", source })
        })
        .await
        .unwrap();
    set_max_pages(pages).await.unwrap();
    let big: Vec<BucketDelta> = (0..5000)
        .map(|i| delta("identity", &format!("check-{i}"), T0, 1, 1, 1))
        .collect();
    let err = store.add_counts(big.clone()).await.unwrap_err();
    match &err {
        StoreError::Write { op, source } => {
            assert_eq!(*op, "add_counts");
            assert_eq!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
            );
        }
        other => panic!("expected Write, got {other:?}"),
    }
    assert_eq!(
        store.load_buckets(i64::MIN, i64::MIN).await.unwrap().len(),
        2
    );

    set_max_pages(1_000_000).await.unwrap();
    store.add_counts(big).await.unwrap();
    assert_eq!(
        store.load_buckets(i64::MIN, i64::MIN).await.unwrap().len(),
        2 + 2 * 5000
    );
}

#[tokio::test]
async fn newer_schema_is_refused_and_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x INTEGER); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match Store::open(&path).unwrap_err() {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((found, supported), (99, SUPPORTED_VERSION)),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    match Store::open_read_only(&path).unwrap_err() {
        StoreError::NewerSchema { found, .. } => assert_eq!(found, 99),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn directory_that_is_a_regular_file_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("sentinel.db")).unwrap_err();
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err:?}");
    assert!(err.to_string().contains("not writable"), "{err}");
}

#[test]
fn read_only_open_of_a_missing_file_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let err = Store::open_read_only(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no state at {} — has the daemon run?", path.display())
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn service_buckets_sum_the_checks_of_each_service() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store
        .add_counts(vec![
            delta("identity", "login", T0 + 60, 4, 3, 2),
            delta("identity", "dns", T0 + 60, 1, 1, 1),
            delta("mail", "smtp", T0 + 60, 2, 1, 1),
            delta("identity", "login", T0 + 3600, 1, 0, 0),
        ])
        .await
        .unwrap();
    let got: Vec<(String, Resolution, i64, u64, u64, u64)> = store
        .load_service_buckets(i64::MIN, i64::MIN)
        .await
        .unwrap()
        .into_iter()
        .map(|b| {
            (
                b.service.to_string(),
                b.resolution,
                b.start,
                b.counts.valid,
                b.counts.good,
                b.counts.latency_good,
            )
        })
        .collect();
    let s = |n: &str| n.to_string();
    assert_eq!(
        got,
        vec![
            (s("identity"), Resolution::Minute, T0 + 60, 5, 4, 3),
            (s("mail"), Resolution::Minute, T0 + 60, 2, 1, 1),
            (s("identity"), Resolution::Minute, T0 + 3600, 1, 0, 0),
            (s("identity"), Resolution::Hour, T0, 5, 4, 3),
            (s("mail"), Resolution::Hour, T0, 2, 1, 1),
            (s("identity"), Resolution::Hour, T0 + 3600, 1, 0, 0),
        ]
    );
    // The bounds apply per resolution, as for load_buckets.
    let n = store
        .load_service_buckets(T0 + 3600, T0 + 3600)
        .await
        .unwrap()
        .len();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn add_counts_accumulates_exactly_into_minute_and_hour_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store
        .add_counts(vec![
            delta("identity", "login", T0 + 60, 4, 3, 2),
            delta("identity", "dns", T0 + 60, 1, 1, 1),
        ])
        .await
        .unwrap();
    store
        .add_counts(vec![
            delta("identity", "login", T0 + 60, 2, 2, 2),
            // same hour, another minute; not aligned: floored to T0 + 120
            delta("identity", "login", T0 + 150, 5, 0, 0),
            // next hour
            delta("identity", "login", T0 + 3600, 1, 1, 0),
        ])
        .await
        .unwrap();
    let rows = store.load_buckets(i64::MIN, i64::MIN).await.unwrap();
    assert_eq!(
        rows,
        vec![
            row("dns", Resolution::Minute, T0 + 60, 1, 1, 1),
            row("login", Resolution::Minute, T0 + 60, 6, 5, 4),
            row("login", Resolution::Minute, T0 + 120, 5, 0, 0),
            row("login", Resolution::Minute, T0 + 3600, 1, 1, 0),
            row("dns", Resolution::Hour, T0, 1, 1, 1),
            row("login", Resolution::Hour, T0, 11, 5, 4),
            row("login", Resolution::Hour, T0 + 3600, 1, 1, 0),
        ]
    );
    // The `since` bounds apply per resolution.
    let rows = store.load_buckets(T0 + 120, T0 + 3600).await.unwrap();
    assert_eq!(
        rows,
        vec![
            row("login", Resolution::Minute, T0 + 120, 5, 0, 0),
            row("login", Resolution::Minute, T0 + 3600, 1, 1, 0),
            row("login", Resolution::Hour, T0 + 3600, 1, 1, 0),
        ]
    );
}

#[tokio::test]
async fn prune_deletes_only_older_buckets_per_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store
        .add_counts(vec![
            delta("identity", "login", T0, 1, 1, 1),
            delta("identity", "login", T0 + 3600, 1, 1, 1),
        ])
        .await
        .unwrap();
    // Drops minute T0 and hour T0; keeps minute T0+3600 and hour T0+3600.
    assert_eq!(store.prune(T0 + 60, T0 + 1).await.unwrap(), 2);
    let rows = store.load_buckets(i64::MIN, i64::MIN).await.unwrap();
    assert_eq!(
        rows,
        vec![
            row("login", Resolution::Minute, T0 + 3600, 1, 1, 1),
            row("login", Resolution::Hour, T0 + 3600, 1, 1, 1),
        ]
    );
}

#[tokio::test]
async fn restart_gives_identical_buckets_incidents_and_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let deltas: Vec<BucketDelta> = (0..180)
        .map(|i| {
            delta(
                "identity",
                if i % 2 == 0 { "a" } else { "b" },
                T0 + i * 60,
                3,
                2,
                1,
            )
        })
        .collect();
    store.add_counts(deltas).await.unwrap();
    store
        .save_incident(
            "inc-1".into(),
            "identity".into(),
            "open".into(),
            T0,
            "{\"id\":\"inc-1\"}".into(),
            vec![event("e1", "tickets", "inc-1", T0)],
        )
        .await
        .unwrap();
    let buckets = store.load_buckets(i64::MIN, i64::MIN).await.unwrap();
    let incidents = store.load_incidents(0).await.unwrap();
    let due = store.outbox_due(T0, 10).await.unwrap();
    assert_eq!(buckets.len(), 180 + 6);
    store.close().await.unwrap();
    assert!(matches!(
        store.load_incidents(0).await.unwrap_err(),
        StoreError::Closed
    ));

    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.load_buckets(i64::MIN, i64::MIN).await.unwrap(),
        buckets
    );
    assert_eq!(store.load_incidents(0).await.unwrap(), incidents);
    assert_eq!(store.outbox_due(T0, 10).await.unwrap(), due);

    // A reader sees the same while the writer is open.
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.load_buckets(i64::MIN, i64::MIN).unwrap(), buckets);
    assert_eq!(reader.load_incidents(0).unwrap(), incidents);
    assert_eq!(
        reader.outbox_depth().unwrap(),
        vec![("tickets".to_string(), 1)]
    );
}

#[tokio::test]
async fn incident_and_its_outbox_events_commit_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    // Make the second event fail inside the transaction.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.notifier = 'broken'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let err = store
        .save_incident(
            "inc-1".into(),
            "identity".into(),
            "open".into(),
            T0,
            "{}".into(),
            vec![
                event("e1", "tickets", "inc-1", T0),
                event("e1", "broken", "inc-1", T0),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Write {
                op: "save_incident",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.load_incidents(0).await.unwrap(), vec![]);
    assert_eq!(store.outbox_due(T0, 10).await.unwrap(), vec![]);
    assert_eq!(store.outbox_depth().await.unwrap(), vec![]);

    store
        .save_incident(
            "inc-1".into(),
            "identity".into(),
            "open".into(),
            T0,
            "{\"v\":1}".into(),
            vec![
                event("e1", "tickets", "inc-1", T0),
                event("e1", "chat", "inc-1", T0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.load_incidents(0).await.unwrap(),
        vec![("inc-1".to_string(), "{\"v\":1}".to_string())]
    );
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        vec![("chat".to_string(), 1), ("tickets".to_string(), 1)]
    );
    // Saving the same change again updates the body but enqueues nothing twice.
    store
        .save_incident(
            "inc-1".into(),
            "identity".into(),
            "resolved".into(),
            T0,
            "{\"v\":2}".into(),
            vec![event("e1", "tickets", "inc-1", T0)],
        )
        .await
        .unwrap();
    assert_eq!(
        store.load_incidents(0).await.unwrap(),
        vec![("inc-1".to_string(), "{\"v\":2}".to_string())]
    );
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        vec![("chat".to_string(), 1), ("tickets".to_string(), 1)]
    );
}

#[tokio::test]
async fn outbox_keeps_per_incident_order_through_retries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let save = |id: &str, events: Vec<OutboxInsert>| {
        store.save_incident(
            id.into(),
            "identity".into(),
            "open".into(),
            T0,
            "{}".into(),
            events,
        )
    };
    save("A", vec![event("a-open", "tickets", "A", T0)])
        .await
        .unwrap();
    save("B", vec![event("b-open", "tickets", "B", T0 + 1)])
        .await
        .unwrap();
    save("A", vec![event("a-ack", "tickets", "A", T0 + 2)])
        .await
        .unwrap();

    let ids = |rows: Vec<OutboxRow>| rows.into_iter().map(|r| r.event_id).collect::<Vec<_>>();
    // Only each queue's head is offered: a-ack waits behind a-open.
    let due = store.outbox_due(T0 + 10, 10).await.unwrap();
    assert_eq!(ids(due.clone()), ["a-open", "b-open"]);
    assert_eq!(
        (due[0].seq, due[0].attempts, due[0].next_attempt_at),
        (1, 0, T0)
    );

    // a-open backs off: neither it nor a-ack is due until then.
    store.outbox_retry(due[0].seq, 1, T0 + 100).await.unwrap();
    store.outbox_delivered(due[1].seq, T0 + 10).await.unwrap();
    assert_eq!(
        ids(store.outbox_due(T0 + 50, 10).await.unwrap()),
        Vec::<String>::new()
    );
    let due = store.outbox_due(T0 + 100, 10).await.unwrap();
    assert_eq!(ids(due.clone()), ["a-open"]);
    assert_eq!(due[0].attempts, 1);

    store.outbox_drop(due[0].seq, T0 + 100).await.unwrap();
    assert_eq!(
        ids(store.outbox_due(T0 + 100, 10).await.unwrap()),
        ["a-ack"]
    );
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        vec![("tickets".to_string(), 1)]
    );
    // `limit` caps the batch.
    save("C", vec![event("c-open", "tickets", "C", T0)])
        .await
        .unwrap();
    assert_eq!(ids(store.outbox_due(T0 + 100, 1).await.unwrap()), ["a-ack"]);
}

#[tokio::test]
async fn prune_incidents_keeps_open_incidents_and_pending_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    for (id, state) in [("old-resolved", "resolved"), ("old-open", "open")] {
        store
            .save_incident(
                id.into(),
                "identity".into(),
                state.into(),
                T0,
                "{}".into(),
                vec![event(&format!("{id}-e"), "tickets", id, T0)],
            )
            .await
            .unwrap();
    }
    store.outbox_delivered(1, T0 + 5).await.unwrap();
    // One resolved incident and one delivered event go.
    assert_eq!(store.prune_incidents(T0 + 10).await.unwrap(), 2);
    assert_eq!(
        store.load_incidents(0).await.unwrap(),
        vec![("old-open".to_string(), "{}".to_string())]
    );
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        vec![("tickets".to_string(), 1)]
    );
    // Open incidents are returned however old they are.
    assert_eq!(store.load_incidents(T0 + 1000).await.unwrap().len(), 1);
}

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

#[tokio::test]
async fn totals_add_each_entry_once_and_survive_pruning_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let detect = entry(EntryKind::Detect, "P1", Figure::Detect, 60_000_000);
    store
        .write_incident(incident_save("inc-1", "open", T0, vec![detect.clone()]))
        .await
        .unwrap();
    // The same write again (a retry) and a later change carrying an entry
    // the row already made: each entry still counts once.
    store
        .write_incident(incident_save("inc-1", "open", T0, vec![detect.clone()]))
        .await
        .unwrap();
    let restore = entry(EntryKind::Restore, "P1", Figure::Restore, 480_500_000);
    store
        .write_incident(incident_save(
            "inc-1",
            "resolved",
            T0,
            vec![detect.clone(), restore],
        ))
        .await
        .unwrap();
    store
        .write_incident(incident_save(
            "inc-2",
            "resolved",
            T0 + 86_400,
            vec![entry(EntryKind::Detect, "P1", Figure::Detect, 1_000_000)],
        ))
        .await
        .unwrap();
    let want = vec![
        totals_row("P1", "detect", 2, 61_000_000),
        totals_row("P1", "restore", 1, 480_500_000),
    ];
    assert_eq!(store.load_incident_totals().await.unwrap(), want);
    assert_eq!(
        store.load_entered(0).await.unwrap(),
        vec![
            (
                "inc-1".to_string(),
                EntryKind::Detect.bit() | EntryKind::Restore.bit()
            ),
            ("inc-2".to_string(), EntryKind::Detect.bit()),
        ]
    );
    // Pruning deletes the incidents, never the totals.
    assert_eq!(store.prune_incidents(T0 + 2 * 86_400).await.unwrap(), 2);
    assert_eq!(store.load_incidents(i64::MIN).await.unwrap(), vec![]);
    assert_eq!(store.load_incident_totals().await.unwrap(), want);
    store.close().await.unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(store.load_incident_totals().await.unwrap(), want);
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.load_incident_totals().unwrap(), want);
}

/// A state file of schema v1 (before the totals existed): it migrates in
/// place, keeps its incidents, and offers them as not entered yet.
#[tokio::test]
async fn a_v1_file_migrates_and_its_incidents_are_offered_for_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute(
            "INSERT INTO incidents (id, service, state, opened_at, body)
             VALUES ('old', 'identity', 'resolved', ?1, '{\"id\":\"old\"}')",
            [T0],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(raw_version(&path), SUPPORTED_VERSION);
    assert_eq!(
        store.load_unentered().await.unwrap(),
        vec![("old".to_string(), "{\"id\":\"old\"}".to_string())]
    );
    assert_eq!(store.load_incident_totals().await.unwrap(), vec![]);
    store
        .write_incident(incident_save(
            "old",
            "resolved",
            T0,
            vec![entry(EntryKind::Detect, "P2", Figure::Detect, 5_000_000)],
        ))
        .await
        .unwrap();
    assert_eq!(store.load_unentered().await.unwrap(), vec![]);
    assert_eq!(
        store.load_incident_totals().await.unwrap(),
        vec![totals_row("P2", "detect", 1, 5_000_000)]
    );
}

#[tokio::test]
async fn a_failed_incident_write_adds_nothing_to_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.notifier = 'broken'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let mut w = incident_save(
        "inc-1",
        "open",
        T0,
        vec![entry(EntryKind::Detect, "P1", Figure::Detect, 60_000_000)],
    );
    w.events = vec![event("e1", "broken", "inc-1", T0)];
    assert!(store.write_incident(w.clone()).await.is_err());
    assert_eq!(store.load_incident_totals().await.unwrap(), vec![]);
    assert_eq!(store.load_entered(i64::MIN).await.unwrap(), vec![]);
    // The retry, once the disk works again, counts it exactly once.
    w.events = vec![event("e1", "tickets", "inc-1", T0)];
    store.write_incident(w.clone()).await.unwrap();
    store.write_incident(w).await.unwrap();
    assert_eq!(
        store.load_incident_totals().await.unwrap(),
        vec![totals_row("P1", "detect", 1, 60_000_000)]
    );
}

#[tokio::test]
async fn a_service_state_commits_with_its_incident_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let write = |state: &str, body: Option<&str>| StateWrite {
        incident: Some(IncidentRow {
            id: "inc-1".into(),
            service: "identity".into(),
            state: state.into(),
            opened_at: T0,
            body_json: format!("{{\"state\":\"{state}\"}}"),
        }),
        events: vec![event(&format!("e-{state}"), "tickets", "inc-1", T0)],
        entries: Vec::new(),
        entries_only: false,
        service_state: Some(ServiceStateRow {
            service: "identity".into(),
            body_json: body.map(str::to_string),
        }),
    };
    // A failing service-state write takes the incident and its event with it.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON service_state
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    store
        .save_state(write("resolved", Some("{\"hold\":1}")))
        .await
        .unwrap_err();
    assert_eq!(store.load_incidents(0).await.unwrap(), vec![]);
    assert_eq!(store.outbox_depth().await.unwrap(), vec![]);
    assert_eq!(store.load_service_states().await.unwrap(), vec![]);

    Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TRIGGER boom;")
        .unwrap();
    store
        .save_state(write("resolved", Some("{\"hold\":1}")))
        .await
        .unwrap();
    assert_eq!(
        store.load_service_states().await.unwrap(),
        vec![("identity".to_string(), "{\"hold\":1}".to_string())]
    );
    assert_eq!(
        store.incident_notifiers("inc-1").await.unwrap(),
        ["tickets"]
    );
    // A state alone (no incident), then `None` deletes the row.
    store
        .save_state(StateWrite {
            service_state: Some(ServiceStateRow {
                service: "identity".into(),
                body_json: None,
            }),
            ..StateWrite::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_service_states().await.unwrap(), vec![]);
    assert_eq!(store.load_incidents(0).await.unwrap().len(), 1);

    // A copy holds everything and opens as a store of its own.
    let copy = dir.path().join("copy.db");
    store.copy_to(copy.clone()).await.unwrap();
    let reader = Store::open_read_only(&copy).unwrap();
    assert_eq!(
        reader.load_incidents(0).unwrap(),
        store.load_incidents(0).await.unwrap()
    );
}

/// Entries made by time alone travel with the incident as last stored, which
/// a queued change may have overtaken: such a write adds the entries and
/// records them on the row, but never writes that older body back.
#[tokio::test]
async fn an_entries_only_write_never_overwrites_a_newer_incident_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let detect = entry(EntryKind::Detect, "P1", Figure::Detect, 60_000_000);
    let mut newer = incident_save("inc-1", "open", T0, vec![detect]);
    newer.body_json = "{\"acknowledged\":true}".into();
    store.write_incident(newer).await.unwrap();
    let missed = entry(
        EntryKind::AcknowledgeTarget,
        "P1",
        Figure::AcknowledgeMissed,
        0,
    );
    let write = StateWrite {
        incident: Some(IncidentRow {
            id: "inc-1".into(),
            service: "identity".into(),
            state: "open".into(),
            opened_at: T0,
            body_json: "{\"acknowledged\":false}".into(),
        }),
        entries: vec![missed],
        entries_only: true,
        ..StateWrite::default()
    };
    store.save_state(write.clone()).await.unwrap();
    // A retry adds nothing more.
    store.save_state(write).await.unwrap();
    assert_eq!(
        store.load_incidents(0).await.unwrap(),
        vec![("inc-1".to_string(), "{\"acknowledged\":true}".to_string())]
    );
    assert_eq!(
        store.load_incident_totals().await.unwrap(),
        vec![
            totals_row("P1", "acknowledge_missed", 1, 0),
            totals_row("P1", "detect", 1, 60_000_000),
        ]
    );
    let entered = store.load_entered(0).await.unwrap();
    assert_eq!(
        entered,
        vec![(
            "inc-1".to_string(),
            EntryKind::Detect.bit() | EntryKind::AcknowledgeTarget.bit()
        )]
    );
}

#[tokio::test]
async fn outbox_due_for_serves_one_notifier_and_treats_settled_rows_as_finished() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let save = |id: &str, events: Vec<OutboxInsert>| {
        store.save_incident(
            id.into(),
            "identity".into(),
            "open".into(),
            T0,
            "{}".into(),
            events,
        )
    };
    // seq 1, 2: A opened for tickets and chat; seq 3: B opened for tickets;
    // seq 4, 5: A acknowledged for tickets and chat.
    save(
        "A",
        vec![
            event("a-open", "tickets", "A", T0),
            event("a-open", "chat", "A", T0),
        ],
    )
    .await
    .unwrap();
    save("B", vec![event("b-open", "tickets", "B", T0)])
        .await
        .unwrap();
    save(
        "A",
        vec![
            event("a-ack", "tickets", "A", T0 + 1),
            event("a-ack", "chat", "A", T0 + 1),
        ],
    )
    .await
    .unwrap();
    let ids = |rows: Vec<OutboxRow>| rows.into_iter().map(|r| r.event_id).collect::<Vec<_>>();
    let due = |n: &str, now: i64, settled: Vec<i64>| {
        store.outbox_due_for(n.to_string(), now, 10, settled)
    };
    assert_eq!(
        ids(due("tickets", T0 + 5, vec![]).await.unwrap()),
        ["a-open", "b-open"]
    );
    assert_eq!(ids(due("chat", T0 + 5, vec![]).await.unwrap()), ["a-open"]);
    assert_eq!(
        ids(due("nobody", T0 + 5, vec![]).await.unwrap()),
        Vec::<String>::new()
    );
    // Not yet due.
    assert_eq!(
        ids(due("tickets", T0 - 1, vec![]).await.unwrap()),
        Vec::<String>::new()
    );
    // a-open for tickets (seq 1) is settled in the worker's memory: it is
    // not offered again, and a-ack behind it is.
    assert_eq!(
        ids(due("tickets", T0 + 5, vec![1]).await.unwrap()),
        ["b-open", "a-ack"]
    );
    assert_eq!(
        ids(due("tickets", T0 + 5, vec![1, 3, 4]).await.unwrap()),
        Vec::<String>::new()
    );
    // The other notifier's queue is untouched by it.
    assert_eq!(ids(due("chat", T0 + 5, vec![1]).await.unwrap()), ["a-open"]);
    assert_eq!(
        store.outbox_notifiers().await.unwrap(),
        ["chat".to_string(), "tickets".to_string()]
    );
}

#[tokio::test]
async fn outbox_settle_writes_all_outcomes_at_once_and_keeps_the_first_final_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    store
        .save_incident(
            "A".into(),
            "identity".into(),
            "open".into(),
            T0,
            "{}".into(),
            vec![
                event("e1", "tickets", "A", T0),
                event("e2", "chat", "A", T0),
                event("e3", "pager", "A", T0),
            ],
        )
        .await
        .unwrap();
    let mark = |seq, outcome| OutboxMark { seq, outcome };
    store
        .outbox_settle(vec![
            mark(1, OutboxOutcome::Delivered { at: T0 + 1 }),
            mark(
                2,
                OutboxOutcome::Retry {
                    attempts: 3,
                    next_attempt_at: T0 + 60,
                },
            ),
            mark(3, OutboxOutcome::Dropped { at: T0 + 2 }),
        ])
        .await
        .unwrap();
    // A second outcome for a finished row changes nothing.
    store
        .outbox_settle(vec![
            mark(1, OutboxOutcome::Dropped { at: T0 + 9 }),
            mark(3, OutboxOutcome::Delivered { at: T0 + 9 }),
        ])
        .await
        .unwrap();
    // (seq, delivered_at, dropped_at, attempts, next_attempt_at)
    type Raw = (i64, Option<i64>, Option<i64>, i64, i64);
    let raw: Vec<Raw> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT seq, delivered_at, dropped_at, attempts, next_attempt_at FROM outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        raw,
        vec![
            (1, Some(T0 + 1), None, 0, T0),
            (2, None, None, 3, T0 + 60),
            (3, None, Some(T0 + 2), 0, T0),
        ]
    );
    assert_eq!(
        store.outbox_notifiers().await.unwrap(),
        ["chat".to_string()]
    );

    // All or nothing: a failing update rolls back the whole batch.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE UPDATE ON outbox WHEN NEW.attempts = 99
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let err = store
        .outbox_settle(vec![
            mark(2, OutboxOutcome::Delivered { at: T0 + 70 }),
            mark(
                2,
                OutboxOutcome::Retry {
                    attempts: 99,
                    next_attempt_at: T0 + 80,
                },
            ),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Write {
                op: "outbox_settle",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store.outbox_notifiers().await.unwrap(),
        ["chat".to_string()]
    );
}
