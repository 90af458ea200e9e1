//! Opening a store: migrations, corrupt and newer files, full disk, paths.

use super::*;

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
