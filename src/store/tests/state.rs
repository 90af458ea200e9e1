//! Service state with its incident, and the outbox per notifier.

use super::*;

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
