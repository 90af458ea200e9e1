//! Incidents and their outbox events: restart, atomic commits, order, pruning.

use super::*;

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
