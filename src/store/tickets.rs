//! The `tickets` table: the external record (ServiceNow incident, Jira
//! issue, Opsgenie alert) each ticket connector keeps per incident.
//!
//! A row is written before the provider is asked to create anything (`key`
//! NULL, `create_sent_at` set): if the answer is lost — the connection
//! drops, or sentinel is killed — the next attempt knows a record may exist
//! and looks it up first. Once the provider names the record, `key`,
//! `ext_id` and `url` are filled in and `create_sent_at` cleared.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

/// One stored ticket. Timestamps are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRow {
    pub incident_id: String,
    /// The notifier's name.
    pub notifier: String,
    /// `servicenow`, `jira` or `opsgenie`.
    pub provider: String,
    /// What finds the record again at the provider: the correlation id
    /// (ServiceNow), the label (Jira) or the alias (Opsgenie).
    pub lookup: String,
    /// What people call the record (`INC0010001`, `OPS-12`, an Opsgenie
    /// tiny id); `None` until the provider named it.
    pub key: Option<String>,
    /// The provider's own id (`sys_id`, issue id, alert id), when known.
    pub ext_id: Option<String>,
    /// A link to the record, when the provider has one.
    pub url: Option<String>,
    /// A create was sent at this time and its answer is not known.
    pub create_sent_at: Option<i64>,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "incident_id, notifier, provider, lookup, key, ext_id, url, create_sent_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRow> {
    Ok(TicketRow {
        incident_id: r.get(0)?,
        notifier: r.get(1)?,
        provider: r.get(2)?,
        lookup: r.get(3)?,
        key: r.get(4)?,
        ext_id: r.get(5)?,
        url: r.get(6)?,
        create_sent_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

fn write_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Write { op, source }
}

fn read_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Read { op, source }
}

pub(super) fn put(conn: &mut Connection, rows: &[TicketRow]) -> Result<(), StoreError> {
    const OP: &str = "ticket_put";
    let tx = conn.transaction().map_err(write_err(OP))?;
    {
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO tickets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (incident_id, notifier) DO UPDATE SET
                    provider = excluded.provider, lookup = excluded.lookup,
                    key = excluded.key, ext_id = excluded.ext_id, url = excluded.url,
                    create_sent_at = excluded.create_sent_at, updated_at = excluded.updated_at"
            ))
            .map_err(write_err(OP))?;
        for t in rows {
            stmt.execute(params![
                t.incident_id,
                t.notifier,
                t.provider,
                t.lookup,
                t.key,
                t.ext_id,
                t.url,
                t.create_sent_at,
                t.updated_at
            ])
            .map_err(write_err(OP))?;
        }
    }
    tx.commit().map_err(write_err(OP))
}

pub(super) fn load_all(conn: &Connection) -> Result<Vec<TicketRow>, StoreError> {
    const OP: &str = "tickets_load";
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM tickets ORDER BY incident_id, notifier"
        ))
        .map_err(read_err(OP))?;
    stmt.query_map([], row)
        .and_then(|rows| rows.collect())
        .map_err(read_err(OP))
}

pub(super) fn find(
    conn: &Connection,
    provider: &str,
    reference: &str,
) -> Result<Option<TicketRow>, StoreError> {
    const OP: &str = "ticket_find";
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM tickets
             WHERE provider = ?1 AND (ext_id = ?2 OR key = ?2 OR lookup = ?2)
             ORDER BY updated_at DESC LIMIT 1"
        ),
        params![provider, reference],
        row,
    )
    .optional()
    .map_err(read_err(OP))
}

impl Store {
    /// Upserts ticket rows (by incident and notifier), all in one transaction.
    pub async fn ticket_put(&self, rows: Vec<TicketRow>) -> Result<(), StoreError> {
        self.call(move |c| put(c, &rows)).await
    }

    /// Every stored ticket, by incident then notifier.
    pub async fn tickets_load(&self) -> Result<Vec<TicketRow>, StoreError> {
        self.call(|c| load_all(c)).await
    }

    /// The ticket of `provider` whose provider id, key or lookup value is
    /// `reference` (a `sys_id`, `INC0010001`, a correlation id, an issue
    /// key, a label, an alias, ...): how an inbound hook finds the incident.
    pub async fn ticket_find(
        &self,
        provider: &str,
        reference: &str,
    ) -> Result<Option<TicketRow>, StoreError> {
        let (p, r) = (provider.to_string(), reference.to_string());
        self.call(move |c| find(c, &p, &r)).await
    }
}

impl super::ReadOnlyStore {
    /// Every stored ticket (see [`Store::tickets_load`]).
    pub fn tickets_load(&self) -> Result<Vec<TicketRow>, StoreError> {
        load_all(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(incident: &str, notifier: &str, key: Option<&str>) -> TicketRow {
        TicketRow {
            incident_id: incident.into(),
            notifier: notifier.into(),
            provider: "servicenow".into(),
            lookup: incident.into(),
            key: key.map(String::from),
            ext_id: key.map(|k| format!("sys-{k}")),
            url: None,
            create_sent_at: key.is_none().then_some(100),
            updated_at: 100,
        }
    }

    #[tokio::test]
    async fn a_ticket_is_upserted_found_by_any_reference_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        store
            .ticket_put(vec![ticket("inc-a-1-1", "snow", None)])
            .await
            .unwrap();
        let mut done = ticket("inc-a-1-1", "snow", Some("INC0010001"));
        done.updated_at = 101;
        store.ticket_put(vec![done.clone()]).await.unwrap();
        store
            .ticket_put(vec![ticket("inc-b-1-1", "snow", Some("INC0010002"))])
            .await
            .unwrap();
        store.close().await.unwrap();

        let store = Store::open(&path).unwrap();
        let all = store.tickets_load().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], done);
        for reference in ["INC0010001", "sys-INC0010001", "inc-a-1-1"] {
            assert_eq!(
                store.ticket_find("servicenow", reference).await.unwrap(),
                Some(done.clone()),
                "{reference}"
            );
        }
        assert_eq!(store.ticket_find("jira", "INC0010001").await.unwrap(), None);
    }

    #[tokio::test]
    async fn tickets_are_pruned_with_their_incident() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .save_incident(
                "inc-a-1-1".into(),
                "a".into(),
                "resolved".into(),
                10,
                "{}".into(),
                Vec::new(),
            )
            .await
            .unwrap();
        store
            .save_incident(
                "inc-b-1-1".into(),
                "b".into(),
                "open".into(),
                10,
                "{}".into(),
                Vec::new(),
            )
            .await
            .unwrap();
        store
            .ticket_put(vec![
                ticket("inc-a-1-1", "snow", Some("INC1")),
                ticket("inc-b-1-1", "snow", Some("INC2")),
            ])
            .await
            .unwrap();
        // One incident and its ticket.
        assert_eq!(store.prune_incidents(20).await.unwrap(), 2);
        let left: Vec<String> = store
            .tickets_load()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.incident_id)
            .collect();
        assert_eq!(left, ["inc-b-1-1"]);
    }
}
