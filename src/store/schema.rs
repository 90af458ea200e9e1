//! Opening a state file safely and bringing its schema up to date.
//!
//! The order of steps matters: everything that could *write* (WAL switch,
//! migrations) happens only after the file has been proven to be a healthy
//! SQLite database of a version we understand, so a stray or damaged file is
//! reported and never overwritten.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;

/// Migration `i` brings `user_version` from `i` to `i + 1`. Append only: a
/// released migration is never edited, because files in the field already
/// carry its result.
pub(super) const MIGRATIONS: &[&str] = &[
    // v1: buckets, incidents, the notification outbox, and a key/value table.
    "
    CREATE TABLE buckets (
        service      TEXT    NOT NULL,
        check_name   TEXT    NOT NULL,
        resolution   INTEGER NOT NULL, -- 0 minute, 1 hour
        start        INTEGER NOT NULL, -- unix seconds, bucket start
        valid        INTEGER NOT NULL,
        good         INTEGER NOT NULL,
        latency_good INTEGER NOT NULL,
        -- Time-major key: every access is by resolution and time (load the
        -- last N hours, prune older than M, this minute's upserts land at the
        -- B-tree's tail), so no second index is needed. Measured on 1M rows:
        -- less than half the file size of (service, check, ...) plus a time
        -- index, and loading a window is about 10x faster.
        PRIMARY KEY (resolution, start, service, check_name)
    ) WITHOUT ROWID;

    CREATE TABLE incidents (
        id        TEXT PRIMARY KEY,
        service   TEXT    NOT NULL,
        state     TEXT    NOT NULL,
        opened_at INTEGER NOT NULL,
        body      TEXT    NOT NULL -- JSON owned by the incident module
    );
    CREATE INDEX incidents_by_opened ON incidents (opened_at);

    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id        TEXT    NOT NULL,
        notifier        TEXT    NOT NULL,
        incident_id     TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at    INTEGER NULL,
        dropped_at      INTEGER NULL,
        UNIQUE (event_id, notifier)
    );
    -- Only pending rows are ever scanned for delivery; finished rows are history.
    CREATE INDEX outbox_pending ON outbox (notifier, incident_id, seq)
        WHERE delivered_at IS NULL AND dropped_at IS NULL;

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ",
    // v2: cumulative incident totals. Counters must never decrease, and the
    // incidents behind them are pruned after `storage.retention`, so the
    // totals are kept in their own table (never pruned), and each incident
    // row records which entries it added (`entered`, a bit set owned by
    // `incident::totals`) so that one is never added twice. Rows written
    // before v2 have `entered = 0`; the daemon adds them at its next start.
    "
    ALTER TABLE incidents ADD COLUMN entered INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE incident_totals (
        service  TEXT    NOT NULL,
        severity TEXT    NOT NULL,
        figure   TEXT    NOT NULL, -- detect, acknowledge, restore, *_met, *_missed
        count    INTEGER NOT NULL,
        sum_us   INTEGER NOT NULL, -- whole microseconds; 0 for met/missed
        PRIMARY KEY (service, severity, figure)
    ) WITHOUT ROWID;
    ",
    // v3: per-service incident state that is not an incident, so a restart
    // keeps it: today the burn-alert hold a manual resolve leaves behind
    // (the same alert episode must not reopen the incident). A service with
    // nothing to remember has no row.
    "
    CREATE TABLE service_state (
        service TEXT PRIMARY KEY,
        body    TEXT NOT NULL -- JSON owned by the incident module
    );
    ",
    // v4: the external ticket each ticket connector (ServiceNow, Jira,
    // Opsgenie) keeps per incident. Written as soon as the provider names
    // it, before the outbox row that created it is marked delivered; a row
    // whose `key` is NULL records a create that was sent but not answered,
    // so the next attempt looks the record up before creating another.
    // Inbound hooks map a provider object back to the incident through the
    // indexes (sys_id / issue id / alert id, number / issue key / tiny id,
    // correlation id / label / alias).
    "
    CREATE TABLE tickets (
        incident_id    TEXT    NOT NULL,
        notifier       TEXT    NOT NULL,
        provider       TEXT    NOT NULL, -- servicenow, jira, opsgenie
        lookup         TEXT    NOT NULL, -- correlation id, label or alias
        key            TEXT    NULL,     -- INC0010001, OPS-12, tiny id
        ext_id         TEXT    NULL,     -- sys_id, issue id, alert id
        url            TEXT    NULL,
        create_sent_at INTEGER NULL,     -- unix seconds; NULL once answered
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (incident_id, notifier)
    ) WITHOUT ROWID;
    CREATE INDEX tickets_by_ext_id ON tickets (provider, ext_id);
    CREATE INDEX tickets_by_key ON tickets (provider, key);
    CREATE INDEX tickets_by_lookup ON tickets (provider, lookup);
    ",
    // v5: deliveries of inbound hooks already acted on, by the provider's
    // event id (PagerDuty's `event.id`): a provider that retries a delivery
    // (its answer was lost, or sentinel restarted meanwhile) must not apply
    // it twice. Rows older than the retention are deleted as new ones come.
    "
    CREATE TABLE hook_deliveries (
        provider TEXT    NOT NULL, -- pagerduty
        id       TEXT    NOT NULL, -- the provider's event id
        seen_at  INTEGER NOT NULL, -- unix seconds
        PRIMARY KEY (provider, id)
    ) WITHOUT ROWID;
    CREATE INDEX hook_deliveries_by_seen ON hook_deliveries (seen_at);
    ",
];

/// The newest schema version this binary knows.
pub const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a writer waits for another connection's lock (e.g. a `report`
/// reading while the daemon checkpoints) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the state file for the daemon: checks it,
/// switches it to WAL and migrates it.
pub fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::NotWritable {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| classify_open(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify_open(path, e))?;
    // SQLite silently falls back to read-only when the OS refuses write access.
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| classify_open(path, e))?
    {
        return Err(StoreError::NotWritable {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "SQLite opened the file read-only",
            ),
        });
    }
    let version = check_health(&conn, path)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| classify_open(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            detail: format!("journal_mode stayed {mode:?}, WAL is required"),
        });
    }
    // NORMAL in WAL mode: a power cut may lose the last commits but never
    // corrupts the file; a process crash (kill -9) loses nothing.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| classify_open(path, e))?;
    migrate(&mut conn, path, version)?;
    Ok(conn)
}

/// Opens an existing state file for reading only, e.g. for `sentinel report`
/// while a daemon writes it. Never creates or migrates anything.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify_open(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify_open(path, e))?;
    let version = user_version(&conn, path)?;
    if version > SUPPORTED_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SUPPORTED_VERSION,
        });
    }
    if version < SUPPORTED_VERSION {
        return Err(StoreError::OlderSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SUPPORTED_VERSION,
        });
    }
    Ok(conn)
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| classify_open(path, e))
}

/// Files up to this size get a full `PRAGMA quick_check` at open. It reads
/// every page (measured ~15 ms/MiB on a busy 2-core machine), so a multi-GB
/// store of 10 000 checks would blow the start-up budget; larger files get the
/// header and schema checks only and can be checked with [`super::Store::quick_check`].
pub const QUICK_CHECK_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Reads the header and schema (which fails on a file that is not SQLite),
/// runs `PRAGMA quick_check` on files up to [`QUICK_CHECK_MAX_BYTES`], and
/// returns the schema version. Writes nothing.
fn check_health(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version = user_version(conn, path)?;
    let _: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| classify_open(path, e))?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size <= QUICK_CHECK_MAX_BYTES {
        quick_check(conn, path)?;
    }
    if version > SUPPORTED_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SUPPORTED_VERSION,
        });
    }
    Ok(version)
}

/// `PRAGMA quick_check`: `Corrupt` unless SQLite answers exactly `ok`.
pub fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| classify_open(path, e))?;
    let problems: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| classify_open(path, e))?;
    if problems.len() != 1 || problems[0] != "ok" {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: problems.join("; "),
        });
    }
    Ok(())
}

/// Applies every migration past `from`, each in its own transaction together
/// with the `user_version` bump, so a crash mid-way leaves a consistent file.
fn migrate(conn: &mut Connection, path: &Path, from: i64) -> Result<(), StoreError> {
    let start = usize::try_from(from.max(0)).unwrap_or(usize::MAX);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let next = index as i64 + 1;
        let tx = conn.transaction().map_err(|e| classify_open(path, e))?;
        tx.execute_batch(sql).map_err(|e| classify_open(path, e))?;
        tx.pragma_update(None, "user_version", next)
            .map_err(|e| classify_open(path, e))?;
        tx.commit().map_err(|e| classify_open(path, e))?;
    }
    Ok(())
}

/// Sorts an error met while opening into the classes an operator acts on.
fn classify_open(path: &Path, err: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path,
            detail: err.to_string(),
        },
        Some(
            ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::DiskFull,
        ) => StoreError::NotWritable {
            path,
            source: std::io::Error::other(err),
        },
        _ => StoreError::Open {
            path,
            detail: err.to_string(),
        },
    }
}
