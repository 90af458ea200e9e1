//! The SQL behind every store operation, as plain synchronous functions on a
//! connection. The writer thread and the read-only handle share them, so the
//! daemon and `sentinel report` can never disagree on how rows are read.

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    BucketDelta, BucketRow, OutboxMark, OutboxOutcome, OutboxRow, ServiceBucket, StateWrite,
    StoreError, TotalsRow,
};
use crate::incident::totals::Entered;
use crate::slo::{Counts, Resolution};

const MINUTE_SECS: i64 = 60;
const HOUR_SECS: i64 = 3600;

fn resolution_code(res: Resolution) -> i64 {
    match res {
        Resolution::Minute => 0,
        Resolution::Hour => 1,
    }
}

/// Counts are `u64` in memory and `INTEGER` (i64) in SQLite; no real count
/// comes near `i64::MAX`, so saturating is only a guard.
fn sql_count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

fn write_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Write { op, source }
}

fn read_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Read { op, source }
}

pub fn add_counts(conn: &mut Connection, deltas: &[BucketDelta]) -> Result<(), StoreError> {
    const OP: &str = "add_counts";
    let tx = conn.transaction().map_err(write_err(OP))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO buckets (service, check_name, resolution, start, valid, good, latency_good)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (service, check_name, resolution, start) DO UPDATE SET
                     valid = valid + excluded.valid,
                     good = good + excluded.good,
                     latency_good = latency_good + excluded.latency_good",
            )
            .map_err(write_err(OP))?;
        for d in deltas {
            let minute = d.at_minute.div_euclid(MINUTE_SECS) * MINUTE_SECS;
            let hour = d.at_minute.div_euclid(HOUR_SECS) * HOUR_SECS;
            for (res, start) in [(Resolution::Minute, minute), (Resolution::Hour, hour)] {
                stmt.execute(params![
                    d.service,
                    d.check,
                    resolution_code(res),
                    start,
                    sql_count(d.counts.valid),
                    sql_count(d.counts.good),
                    sql_count(d.counts.latency_good),
                ])
                .map_err(write_err(OP))?;
            }
        }
    }
    tx.commit().map_err(write_err(OP))
}

/// Buckets since the given starts, summed over the checks of each service:
/// what the daemon needs to rebuild pooled SLO state. The primary key is
/// `(resolution, start, service, check)`, so the grouping streams along the
/// index (no sort), and ten checks per service return a tenth of the rows
/// `load_buckets` would.
pub fn load_service_buckets(
    conn: &Connection,
    since_minute: i64,
    since_hour: i64,
) -> Result<Vec<ServiceBucket>, StoreError> {
    const OP: &str = "load_service_buckets";
    let mut stmt = conn
        .prepare_cached(
            "SELECT service, start, SUM(valid), SUM(good), SUM(latency_good)
             FROM buckets
             WHERE resolution = ?1 AND start >= ?2
             GROUP BY resolution, start, service
             ORDER BY resolution, start, service",
        )
        .map_err(read_err(OP))?;
    // Service names repeat on every row: share one allocation per name.
    let mut names: std::collections::HashMap<String, std::sync::Arc<str>> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for (resolution, since) in [
        (Resolution::Minute, since_minute),
        (Resolution::Hour, since_hour),
    ] {
        let mut rows = stmt
            .query(params![resolution_code(resolution), since])
            .map_err(read_err(OP))?;
        while let Some(row) = rows.next().map_err(read_err(OP))? {
            let name: String = row.get(0).map_err(read_err(OP))?;
            let service = match names.get(&name) {
                Some(a) => std::sync::Arc::clone(a),
                None => {
                    let a: std::sync::Arc<str> = std::sync::Arc::from(name.as_str());
                    names.insert(name, std::sync::Arc::clone(&a));
                    a
                }
            };
            out.push(ServiceBucket {
                service,
                resolution,
                start: row.get(1).map_err(read_err(OP))?,
                counts: Counts {
                    valid: count_at(row, 2).map_err(read_err(OP))?,
                    good: count_at(row, 3).map_err(read_err(OP))?,
                    latency_good: count_at(row, 4).map_err(read_err(OP))?,
                },
            });
        }
    }
    Ok(out)
}

pub fn load_buckets(
    conn: &Connection,
    since_minute: i64,
    since_hour: i64,
) -> Result<Vec<BucketRow>, StoreError> {
    const OP: &str = "load_buckets";
    // One range scan of the primary key per resolution: no sort, no second
    // index, rows already in (resolution, start, service, check) order.
    let mut stmt = conn
        .prepare_cached(
            "SELECT service, check_name, start, valid, good, latency_good
             FROM buckets
             WHERE resolution = ?1 AND start >= ?2
             ORDER BY resolution, start, service, check_name",
        )
        .map_err(read_err(OP))?;
    let mut out = Vec::new();
    for (resolution, since) in [
        (Resolution::Minute, since_minute),
        (Resolution::Hour, since_hour),
    ] {
        let rows = stmt
            .query_map(params![resolution_code(resolution), since], |row| {
                Ok(BucketRow {
                    service: row.get(0)?,
                    check: row.get(1)?,
                    resolution,
                    start: row.get(2)?,
                    counts: Counts {
                        valid: count_at(row, 3)?,
                        good: count_at(row, 4)?,
                        latency_good: count_at(row, 5)?,
                    },
                })
            })
            .map_err(read_err(OP))?;
        for row in rows {
            out.push(row.map_err(read_err(OP))?);
        }
    }
    Ok(out)
}

pub fn prune(
    conn: &mut Connection,
    minute_before: i64,
    hour_before: i64,
) -> Result<u64, StoreError> {
    const OP: &str = "prune";
    let tx = conn.transaction().map_err(write_err(OP))?;
    let mut deleted = 0;
    for (resolution, before) in [
        (Resolution::Minute, minute_before),
        (Resolution::Hour, hour_before),
    ] {
        deleted += tx
            .execute(
                "DELETE FROM buckets WHERE resolution = ?1 AND start < ?2",
                params![resolution_code(resolution), before],
            )
            .map_err(write_err(OP))?;
    }
    tx.commit().map_err(write_err(OP))?;
    Ok(deleted as u64)
}

pub fn prune_incidents(conn: &mut Connection, before: i64) -> Result<u64, StoreError> {
    const OP: &str = "prune_incidents";
    let tx = conn.transaction().map_err(write_err(OP))?;
    let incidents = tx
        .execute(
            "DELETE FROM incidents WHERE state = 'resolved' AND opened_at < ?1",
            params![before],
        )
        .map_err(write_err(OP))?;
    let events = tx
        .execute(
            "DELETE FROM outbox
             WHERE (delivered_at IS NOT NULL OR dropped_at IS NOT NULL) AND created_at < ?1",
            params![before],
        )
        .map_err(write_err(OP))?;
    // A ticket lives as long as its incident.
    let tickets = tx
        .execute(
            "DELETE FROM tickets WHERE incident_id NOT IN (SELECT id FROM incidents)",
            [],
        )
        .map_err(write_err(OP))?;
    tx.commit().map_err(write_err(OP))?;
    Ok((incidents + events + tickets) as u64)
}

pub fn save_state(conn: &mut Connection, w: &StateWrite) -> Result<(), StoreError> {
    // The operation keeps its historical name: most writes carry an incident.
    const OP: &str = "save_incident";
    let tx = conn.transaction().map_err(write_err(OP))?;
    if let Some(i) = &w.incident {
        // Entries the row already made are skipped: writing the same change
        // twice (a retry) never adds to the totals twice.
        let before: Entered = tx
            .query_row(
                "SELECT entered FROM incidents WHERE id = ?1",
                params![i.id],
                |row| row.get(0),
            )
            .optional()
            .map_err(write_err(OP))?
            .unwrap_or(0);
        let mut entered = before;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO incident_totals (service, severity, figure, count, sum_us)
                     VALUES (?1, ?2, ?3, 1, ?4)
                     ON CONFLICT (service, severity, figure) DO UPDATE SET
                         count = count + 1, sum_us = sum_us + excluded.sum_us",
                )
                .map_err(write_err(OP))?;
            for e in &w.entries {
                if entered & e.kind.bit() != 0 {
                    continue;
                }
                entered |= e.kind.bit();
                add.execute(params![
                    e.service,
                    e.severity,
                    e.figure.as_str(),
                    sql_count(e.micros)
                ])
                .map_err(write_err(OP))?;
            }
        }
        if w.entries_only {
            // Entries made by time alone for the incident as stored: the
            // row's body may already be newer than the caller's copy.
            tx.execute(
                "UPDATE incidents SET entered = ?2 WHERE id = ?1",
                params![i.id, entered],
            )
            .map_err(write_err(OP))?;
        } else {
            tx.execute(
                "INSERT INTO incidents (id, service, state, opened_at, body, entered)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET
                     service = excluded.service, state = excluded.state,
                     opened_at = excluded.opened_at, body = excluded.body,
                     entered = excluded.entered",
                params![i.id, i.service, i.state, i.opened_at, i.body_json, entered],
            )
            .map_err(write_err(OP))?;
        }
    }
    {
        // A re-sent event (same id, same notifier) is ignored, so saving the
        // same change twice never notifies twice.
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO outbox (event_id, notifier, incident_id, payload, created_at,
                                     attempts, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5)
                 ON CONFLICT (event_id, notifier) DO NOTHING",
            )
            .map_err(write_err(OP))?;
        for e in &w.events {
            stmt.execute(params![
                e.event_id,
                e.notifier,
                e.incident_id,
                e.payload,
                e.created_at
            ])
            .map_err(write_err(OP))?;
        }
    }
    if let Some(s) = &w.service_state {
        match &s.body_json {
            Some(body) => tx.execute(
                "INSERT INTO service_state (service, body) VALUES (?1, ?2)
                 ON CONFLICT (service) DO UPDATE SET body = excluded.body",
                params![s.service, body],
            ),
            None => tx.execute(
                "DELETE FROM service_state WHERE service = ?1",
                params![s.service],
            ),
        }
        .map_err(write_err(OP))?;
    }
    tx.commit().map_err(write_err(OP))
}

/// Every row of the cumulative incident totals, by service, severity, figure.
pub fn load_incident_totals(conn: &Connection) -> Result<Vec<TotalsRow>, StoreError> {
    const OP: &str = "load_incident_totals";
    let mut stmt = conn
        .prepare_cached(
            "SELECT service, severity, figure, count, sum_us FROM incident_totals
             ORDER BY service, severity, figure",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map([], |row| {
            Ok(TotalsRow {
                service: row.get(0)?,
                severity: row.get(1)?,
                figure: row.get(2)?,
                count: count_at(row, 3)?,
                sum_micros: count_at(row, 4)?,
            })
        })
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// `(id, entered)` of the incidents [`load_incidents`] returns for `since`.
pub fn load_entered(conn: &Connection, since: i64) -> Result<Vec<(String, Entered)>, StoreError> {
    const OP: &str = "load_entered";
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, entered FROM incidents
             WHERE opened_at >= ?1 OR state <> 'resolved'
             ORDER BY opened_at, id",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// `(id, body_json)` of incidents that made no entry at all: rows written
/// before the totals existed (schema v1), oldest first.
pub fn load_unentered(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    const OP: &str = "load_unentered";
    let mut stmt = conn
        .prepare_cached("SELECT id, body FROM incidents WHERE entered = 0 ORDER BY opened_at, id")
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

pub fn load_service_states(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    const OP: &str = "load_service_states";
    let mut stmt = conn
        .prepare_cached("SELECT service, body FROM service_state ORDER BY service")
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// Notifiers that were given at least one event of `incident_id`.
pub fn incident_notifiers(conn: &Connection, incident_id: &str) -> Result<Vec<String>, StoreError> {
    const OP: &str = "incident_notifiers";
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT notifier FROM outbox WHERE incident_id = ?1 ORDER BY notifier",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![incident_id], |row| row.get(0))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// A consistent copy of the whole database (WAL content included) in a new
/// file at `dest`, which must not exist yet.
pub fn copy_to(conn: &Connection, dest: &std::path::Path) -> Result<(), StoreError> {
    let dest = dest.to_string_lossy().into_owned();
    conn.execute("VACUUM INTO ?1", params![dest])
        .map_err(write_err("copy_to"))?;
    Ok(())
}

pub fn load_incidents(conn: &Connection, since: i64) -> Result<Vec<(String, String)>, StoreError> {
    const OP: &str = "load_incidents";
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, body FROM incidents
             WHERE opened_at >= ?1 OR state <> 'resolved'
             ORDER BY opened_at, id",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![since], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

pub fn outbox_due(conn: &Connection, now: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
    const OP: &str = "outbox_due";
    // Only the oldest pending event of each (incident, notifier) queue is
    // offered: a later event must not overtake one that is backing off.
    let mut stmt = conn
        .prepare_cached(
            "SELECT o.seq, o.event_id, o.notifier, o.incident_id, o.payload, o.created_at,
                    o.attempts, o.next_attempt_at
             FROM outbox o
             WHERE o.delivered_at IS NULL AND o.dropped_at IS NULL AND o.next_attempt_at <= ?1
               AND NOT EXISTS (
                   SELECT 1 FROM outbox p
                   WHERE p.notifier = o.notifier AND p.incident_id = o.incident_id
                     AND p.seq < o.seq AND p.delivered_at IS NULL AND p.dropped_at IS NULL)
             ORDER BY o.seq
             LIMIT ?2",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![now, limit], outbox_row)
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// `[1,2,3]`: a list of row ids as SQL's `json_each` reads it.
fn json_array(seqs: &[i64]) -> String {
    let items: Vec<String> = seqs.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(","))
}

/// The due heads of one notifier's queues (see `Store::outbox_due_for`).
pub fn outbox_due_for(
    conn: &Connection,
    notifier: &str,
    now: i64,
    limit: u32,
    settled: &[i64],
) -> Result<Vec<OutboxRow>, StoreError> {
    const OP: &str = "outbox_due_for";
    // `settled` (a JSON array) lists rows the worker finished but could not
    // mark yet: they count as finished here, so the queue behind them moves.
    let settled = json_array(settled);
    let mut stmt = conn
        .prepare_cached(
            "SELECT o.seq, o.event_id, o.notifier, o.incident_id, o.payload, o.created_at,
                    o.attempts, o.next_attempt_at
             FROM outbox o
             WHERE o.notifier = ?1 AND o.delivered_at IS NULL AND o.dropped_at IS NULL
               AND o.next_attempt_at <= ?2
               AND o.seq NOT IN (SELECT value FROM json_each(?4))
               AND NOT EXISTS (
                   SELECT 1 FROM outbox p
                   WHERE p.notifier = o.notifier AND p.incident_id = o.incident_id
                     AND p.seq < o.seq AND p.delivered_at IS NULL AND p.dropped_at IS NULL
                     AND p.seq NOT IN (SELECT value FROM json_each(?4)))
             ORDER BY o.seq
             LIMIT ?3",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![notifier, now, limit, settled], outbox_row)
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

/// The last finished row of `notifier` for each incident open in the store
/// (see `Store::outbox_open_heads`).
pub fn outbox_open_heads(
    conn: &Connection,
    notifier: &str,
    settled: &[i64],
) -> Result<Vec<OutboxRow>, StoreError> {
    const OP: &str = "outbox_open_heads";
    let settled = json_array(settled);
    // Driven by the open incidents (few), each looked up through the
    // `(event_id, notifier)` index: event ids are `evt-<incident id>-<n>`,
    // so an incident's rows are the ids from `evt-<id>-` up to (not
    // including) `evt-<id>.` ('.' follows '-'); `incident_id` is checked
    // too. A scan of every finished row (history is kept for the
    // retention) took about 100 ms per 600 000 rows, this about 15 ms.
    let mut stmt = conn
        .prepare_cached(
            "SELECT o.seq, o.event_id, o.notifier, o.incident_id, o.payload, o.created_at,
                    o.attempts, o.next_attempt_at
             FROM incidents i
             JOIN outbox o ON o.seq = (
                 SELECT MAX(x.seq) FROM outbox x
                 WHERE x.event_id >= 'evt-' || i.id || '-'
                   AND x.event_id < 'evt-' || i.id || '.'
                   AND x.notifier = ?1
                   AND x.incident_id = i.id
                   AND (x.delivered_at IS NOT NULL OR x.dropped_at IS NOT NULL
                        OR x.seq IN (SELECT value FROM json_each(?2))))
             WHERE i.state = 'open'
             ORDER BY i.id",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map(params![notifier, settled], outbox_row)
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

fn outbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        seq: row.get(0)?,
        event_id: row.get(1)?,
        notifier: row.get(2)?,
        incident_id: row.get(3)?,
        payload: row.get(4)?,
        created_at: row.get(5)?,
        attempts: row.get(6)?,
        next_attempt_at: row.get(7)?,
    })
}

/// Records delivery outcomes in one transaction: all of them or none.
pub fn outbox_settle(conn: &mut Connection, marks: &[OutboxMark]) -> Result<(), StoreError> {
    const OP: &str = "outbox_settle";
    let tx = conn.transaction().map_err(write_err(OP))?;
    for m in marks {
        // A finished row stays as it was first finished.
        let res = match m.outcome {
            OutboxOutcome::Delivered { at } => tx
                .prepare_cached(
                    "UPDATE outbox SET delivered_at = ?2
                     WHERE seq = ?1 AND delivered_at IS NULL AND dropped_at IS NULL",
                )
                .and_then(|mut st| st.execute(params![m.seq, at])),
            OutboxOutcome::Dropped { at } => tx
                .prepare_cached(
                    "UPDATE outbox SET dropped_at = ?2
                     WHERE seq = ?1 AND delivered_at IS NULL AND dropped_at IS NULL",
                )
                .and_then(|mut st| st.execute(params![m.seq, at])),
            OutboxOutcome::Retry {
                attempts,
                next_attempt_at,
            } => tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3 WHERE seq = ?1",
                )
                .and_then(|mut st| st.execute(params![m.seq, attempts, next_attempt_at])),
        };
        res.map_err(write_err(OP))?;
    }
    tx.commit().map_err(write_err(OP))
}

/// Notifiers with at least one pending event, by name.
pub fn outbox_notifiers(conn: &Connection) -> Result<Vec<String>, StoreError> {
    const OP: &str = "outbox_notifiers";
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT notifier FROM outbox
             WHERE delivered_at IS NULL AND dropped_at IS NULL
             ORDER BY notifier",
        )
        .map_err(read_err(OP))?;
    let rows = stmt.query_map([], |row| row.get(0)).map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

pub fn outbox_delivered(conn: &Connection, seq: i64, at: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET delivered_at = ?2 WHERE seq = ?1",
        params![seq, at],
    )
    .map_err(write_err("outbox_delivered"))?;
    Ok(())
}

pub fn outbox_retry(
    conn: &Connection,
    seq: i64,
    attempts: u32,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3 WHERE seq = ?1",
        params![seq, attempts, next_attempt_at],
    )
    .map_err(write_err("outbox_retry"))?;
    Ok(())
}

pub fn outbox_drop(conn: &Connection, seq: i64, at: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET dropped_at = ?2 WHERE seq = ?1",
        params![seq, at],
    )
    .map_err(write_err("outbox_drop"))?;
    Ok(())
}

pub fn outbox_depth(conn: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    const OP: &str = "outbox_depth";
    let mut stmt = conn
        .prepare_cached(
            "SELECT notifier, COUNT(*) FROM outbox
             WHERE delivered_at IS NULL AND dropped_at IS NULL
             GROUP BY notifier ORDER BY notifier",
        )
        .map_err(read_err(OP))?;
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, count_at(row, 1)?)))
        .map_err(read_err(OP))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(read_err(OP))
}

pub fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )
    .optional()
    .map_err(read_err("get_meta"))
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map_err(write_err("set_meta"))?;
    Ok(())
}
