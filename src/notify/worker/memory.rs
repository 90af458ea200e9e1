//! [`MemoryOutbox`], the in-memory [`OutboxStore`], and the SQLite store's
//! implementation of the trait.

use super::*;

/// An in-memory [`OutboxStore`] with the documented `outbox_due` contract;
/// for tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    rows: Mutex<Vec<MemoryRow>>,
}

/// A row and its terminal timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRow {
    pub row: OutboxRow,
    pub delivered_at: Option<Timestamp>,
    pub dropped_at: Option<Timestamp>,
}

impl MemoryRow {
    fn pending(&self) -> bool {
        self.delivered_at.is_none() && self.dropped_at.is_none()
    }
}

/// The in-memory store's only failure: a poisoned lock.
#[derive(Debug, thiserror::Error)]
#[error("memory outbox lock poisoned")]
pub struct MemoryOutboxError;

impl MemoryOutbox {
    /// Append an event for a notifier (seq is assigned).
    pub fn push(
        &self,
        event_id: &str,
        notifier: &str,
        incident_id: &str,
        payload: &str,
        created_at: Timestamp,
    ) {
        if let Ok(mut rows) = self.rows.lock() {
            let seq = rows.len() as i64 + 1;
            rows.push(MemoryRow {
                row: OutboxRow {
                    seq,
                    event_id: event_id.to_string(),
                    notifier: notifier.to_string(),
                    incident_id: incident_id.to_string(),
                    payload: payload.to_string(),
                    created_at,
                    attempts: 0,
                    next_attempt_at: created_at,
                },
                delivered_at: None,
                dropped_at: None,
            });
        }
    }

    pub fn rows(&self) -> Vec<MemoryRow> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Rows neither delivered nor dropped.
    pub fn pending(&self) -> usize {
        self.rows().iter().filter(|r| r.pending()).count()
    }
}

impl OutboxStore for MemoryOutbox {
    type Error = MemoryOutboxError;

    async fn outbox_notifiers(&self) -> Result<Vec<String>, Self::Error> {
        let rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        let mut names: Vec<String> = rows
            .iter()
            .filter(|r| r.pending())
            .map(|r| r.row.notifier.clone())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.pending() && r.row.notifier == notifier && !settled.contains(&r.row.seq))
        {
            // Only the oldest pending row of each incident is eligible.
            if seen.insert(r.row.incident_id.clone()) && r.row.next_attempt_at <= now {
                due.push(r.row.clone());
            }
        }
        due.truncate(limit);
        Ok(due)
    }

    /// Without incident rows, an incident is open while this notifier's
    /// queue holds no `incident.resolved` for it (the engine writes that
    /// event with the resolution).
    async fn outbox_open_heads(
        &self,
        notifier: &str,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        let mine = || rows.iter().filter(|r| r.row.notifier == notifier);
        let resolved: HashSet<&str> = mine()
            .filter(|r| {
                Event::from_payload(&r.row.payload)
                    .is_ok_and(|e| e.kind == crate::incident::EventType::Resolved)
            })
            .map(|r| r.row.incident_id.as_str())
            .collect();
        let mut heads: BTreeMap<&str, &OutboxRow> = BTreeMap::new();
        for r in mine().filter(|r| !r.pending() || settled.contains(&r.row.seq)) {
            if !resolved.contains(r.row.incident_id.as_str()) {
                heads.insert(r.row.incident_id.as_str(), &r.row);
            }
        }
        Ok(heads.into_values().cloned().collect())
    }

    async fn outbox_settle(&self, marks: &[(i64, Outcome)]) -> Result<(), Self::Error> {
        let mut rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        for (seq, outcome) in marks {
            let Some(r) = rows.iter_mut().find(|r| r.row.seq == *seq) else {
                continue;
            };
            match *outcome {
                Outcome::Delivered { at } if r.pending() => r.delivered_at = Some(at),
                Outcome::Dropped { at } if r.pending() => r.dropped_at = Some(at),
                Outcome::Retry {
                    attempts,
                    next_attempt_at,
                } => {
                    r.row.attempts = attempts;
                    r.row.next_attempt_at = next_attempt_at;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The real store keeps unix seconds; a retry time is rounded up so the
/// backoff is never shortened.
impl OutboxStore for crate::store::Store {
    type Error = crate::store::StoreError;

    async fn outbox_notifiers(&self) -> Result<Vec<String>, Self::Error> {
        crate::store::Store::outbox_notifiers(self).await
    }

    async fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = crate::store::Store::outbox_due_for(
            self,
            notifier.to_string(),
            now.as_second(),
            limit,
            settled.to_vec(),
        )
        .await?;
        Ok(rows.into_iter().map(worker_row).collect())
    }

    async fn outbox_open_heads(
        &self,
        notifier: &str,
        settled: &[i64],
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let rows =
            crate::store::Store::outbox_open_heads(self, notifier.to_string(), settled.to_vec())
                .await?;
        Ok(rows.into_iter().map(worker_row).collect())
    }

    async fn outbox_settle(&self, marks: &[(i64, Outcome)]) -> Result<(), Self::Error> {
        use crate::store::{OutboxMark, OutboxOutcome};
        let marks = marks
            .iter()
            .map(|(seq, o)| OutboxMark {
                seq: *seq,
                outcome: match *o {
                    Outcome::Delivered { at } => OutboxOutcome::Delivered { at: at.as_second() },
                    Outcome::Dropped { at } => OutboxOutcome::Dropped { at: at.as_second() },
                    Outcome::Retry {
                        attempts,
                        next_attempt_at: t,
                    } => OutboxOutcome::Retry {
                        attempts,
                        next_attempt_at: t.as_second() + i64::from(t.subsec_nanosecond() > 0),
                    },
                },
            })
            .collect();
        crate::store::Store::outbox_settle(self, marks).await
    }
}

/// The store's row as the worker takes it.
fn worker_row(r: crate::store::OutboxRow) -> OutboxRow {
    OutboxRow {
        seq: r.seq,
        event_id: r.event_id,
        notifier: r.notifier,
        incident_id: r.incident_id,
        payload: r.payload,
        // Out-of-range times (a corrupt row) read as the epoch, so the row
        // ages out instead of blocking its queue forever.
        created_at: Timestamp::from_second(r.created_at).unwrap_or(Timestamp::UNIX_EPOCH),
        attempts: r.attempts,
        next_attempt_at: Timestamp::from_second(r.next_attempt_at).unwrap_or(Timestamp::UNIX_EPOCH),
    }
}
