//! Check buckets: per-service sums, minute and hour rows, pruning.

use super::*;

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
