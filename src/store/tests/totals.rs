//! Incident totals: each entry once, through pruning, migration and failures.

use super::*;

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
