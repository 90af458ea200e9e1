//! The `hook_deliveries` table: inbound hook deliveries already acted on,
//! by the provider's event id, so a provider's retry of a delivery is
//! recognised (PagerDuty retries an unanswered delivery for a while), also
//! after a restart. The inbound hooks are the only writer.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

fn seen(conn: &Connection, provider: &str, id: &str) -> Result<bool, StoreError> {
    const OP: &str = "hook_delivery_seen";
    conn.query_row(
        "SELECT 1 FROM hook_deliveries WHERE provider = ?1 AND id = ?2",
        params![provider, id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(|source| StoreError::Read { op: OP, source })
}

fn record(
    conn: &mut Connection,
    provider: &str,
    id: &str,
    at: i64,
    forget_before: i64,
) -> Result<bool, StoreError> {
    const OP: &str = "hook_delivery_record";
    let err = |source| StoreError::Write { op: OP, source };
    let tx = conn.transaction().map_err(err)?;
    let added = tx
        .execute(
            "INSERT INTO hook_deliveries (provider, id, seen_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (provider, id) DO NOTHING",
            params![provider, id, at],
        )
        .map_err(err)?;
    tx.execute(
        "DELETE FROM hook_deliveries WHERE seen_at < ?1",
        params![forget_before],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(added == 1)
}

impl Store {
    /// Whether the delivery `id` of `provider` was recorded (and not yet
    /// forgotten) by [`Store::hook_delivery_record`].
    pub async fn hook_delivery_seen(&self, provider: &str, id: &str) -> Result<bool, StoreError> {
        let (p, i) = (provider.to_string(), id.to_string());
        self.call(move |c| seen(c, &p, &i)).await
    }

    /// Records the delivery `id` of `provider` as acted on at `at` (unix
    /// seconds) and forgets deliveries recorded before `forget_before`, in
    /// one transaction. Returns whether `id` was new.
    pub async fn hook_delivery_record(
        &self,
        provider: &str,
        id: &str,
        at: i64,
        forget_before: i64,
    ) -> Result<bool, StoreError> {
        let (p, i) = (provider.to_string(), id.to_string());
        self.call(move |c| record(c, &p, &i, at, forget_before))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[tokio::test]
    async fn a_delivery_is_remembered_across_a_reopen_until_its_retention_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        assert!(!store.hook_delivery_seen("pagerduty", "E1").await.unwrap());
        assert!(
            store
                .hook_delivery_record("pagerduty", "E1", 1000, 0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .hook_delivery_record("pagerduty", "E1", 1001, 0)
                .await
                .unwrap()
        );
        assert!(store.hook_delivery_seen("pagerduty", "E1").await.unwrap());
        assert!(!store.hook_delivery_seen("slack", "E1").await.unwrap());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert!(store.hook_delivery_seen("pagerduty", "E1").await.unwrap());
        // A later delivery forgets those recorded before its horizon.
        store
            .hook_delivery_record("pagerduty", "E2", 5000, 1001)
            .await
            .unwrap();
        assert!(!store.hook_delivery_seen("pagerduty", "E1").await.unwrap());
        assert!(store.hook_delivery_seen("pagerduty", "E2").await.unwrap());
    }
}
