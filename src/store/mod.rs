//! Durable state: SLO count buckets, incidents and the notification outbox in
//! one SQLite file (WAL), so a restart — even `kill -9` — loses nothing that
//! was committed.
//!
//! One OS thread owns the read-write connection; [`Store`] is a cheap,
//! cloneable handle that sends it closures and awaits their results. SQLite
//! calls block, and keeping them off the tokio workers means a slow disk
//! delays only the writes, never probes or HTTP. [`ReadOnlyStore`] is a plain
//! synchronous reader for `sentinel report`, safe to use while a daemon writes
//! (WAL lets readers and one writer proceed together).
//!
//! Timestamps are unix seconds (`i64`) everywhere in this API.

mod daily;
mod db;
mod hooks;
mod schema;
mod tickets;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

pub use daily::DayCounts;
pub use schema::SUPPORTED_VERSION;
pub use tickets::TicketRow;

use crate::incident::Entry;
use crate::incident::totals::Entered;
use crate::slo::{Counts, Resolution};

/// Everything that can go wrong with the state file. The open-time variants
/// tell an operator what to do; `Write` and `Read` happen while running and
/// are counted and logged by the daemon, which keeps probing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state file {path} is not a SQLite database or is corrupt ({detail}); it was left untouched — \
         move it aside or restore a backup, then start again"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "state file {path} has schema version {found}, newer than the {supported} this sentinel \
         supports; run a newer sentinel or point storage.path elsewhere"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "state file {path} has schema version {found}, older than {supported}; start the daemon once \
         to upgrade it"
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("state file {path} is not writable: {source}")]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no state at {path} — has the daemon run?")]
    Missing { path: PathBuf },
    #[error("cannot open state file {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    /// A failed write: full disk, I/O error, lock timeout. Nothing of the
    /// operation was committed.
    #[error("state write failed ({op}): {source}")]
    Write {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state read failed ({op}): {source}")]
    Read {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The store thread has stopped (after [`Store::close`]).
    #[error("the state store is closed")]
    Closed,
}

/// Counts to add to one check's minute bucket (and the hour bucket holding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketDelta {
    pub service: String,
    pub check: String,
    /// Start of the minute bucket, unix seconds (rounded down to a minute).
    pub at_minute: i64,
    pub counts: Counts,
}

/// One stored bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    pub service: String,
    pub check: String,
    pub resolution: Resolution,
    /// Bucket start, unix seconds.
    pub start: i64,
    pub counts: Counts,
}

/// One stored bucket summed over a service's checks (see `load_service_buckets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBucket {
    pub service: std::sync::Arc<str>,
    pub resolution: Resolution,
    /// Bucket start, unix seconds.
    pub start: i64,
    pub counts: Counts,
}

/// An outbox event to enqueue with an incident change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxInsert {
    /// Stable across retries; receivers de-duplicate on it.
    pub event_id: String,
    pub notifier: String,
    pub incident_id: String,
    pub payload: String,
    pub created_at: i64,
}

/// One incident row as stored (see [`StateWrite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: String,
    pub service: String,
    pub state: String,
    /// Unix seconds.
    pub opened_at: i64,
    pub body_json: String,
}

/// A service's persisted incident-machine state (see [`StateWrite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStateRow {
    pub service: String,
    /// `None` deletes the row: the service has nothing to remember.
    pub body_json: Option<String>,
}

/// One atomic write of incident state: the incident (if any), its outbox
/// events, and the service's machine state (if it changed). Either all of it
/// lands or none of it does, so a notification exists exactly when the state
/// change it announces does, and a manual resolve and the hold it leaves on
/// the service's burn alerts are never stored apart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateWrite {
    pub incident: Option<IncidentRow>,
    pub events: Vec<OutboxInsert>,
    /// Cumulative-total entries the change made; an entry the incident's row
    /// already made is skipped, so a retried write never counts twice.
    pub entries: Vec<Entry>,
    /// Write only the entries (and the row's record of them), not the
    /// incident's body: the caller's copy may be older than the stored row.
    pub entries_only: bool,
    pub service_state: Option<ServiceStateRow>,
}

/// A pending outbox event, as handed to the delivery worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Insertion order; delivery order within an (incident, notifier) queue.
    pub seq: i64,
    pub event_id: String,
    pub notifier: String,
    pub incident_id: String,
    pub payload: String,
    pub created_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
}

/// An incident row to write, with its outbox events and the cumulative-total
/// entries the change made (see [`crate::incident::totals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSave {
    pub id: String,
    pub service: String,
    pub state: String,
    /// Unix seconds.
    pub opened_at: i64,
    pub body_json: String,
    pub events: Vec<OutboxInsert>,
    pub entries: Vec<Entry>,
}

/// One row of the cumulative incident totals (never pruned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsRow {
    pub service: String,
    pub severity: String,
    /// [`crate::incident::totals::Figure`] as stored.
    pub figure: String,
    pub count: u64,
    pub sum_micros: u64,
}

/// What happened to an outbox event, to record with [`Store::outbox_settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// A 2xx at `at` (unix seconds).
    Delivered { at: i64 },
    /// Given up at `at`: refused, too old, or its notifier is gone.
    Dropped { at: i64 },
    /// Failed `attempts` times so far; next try at `next_attempt_at`.
    Retry { attempts: u32, next_attempt_at: i64 },
}

/// One outcome for the row `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxMark {
    pub seq: i64,
    pub outcome: OutboxOutcome,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A message to the store thread.
enum ThreadMsg {
    Run(Job),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// Queue length between async callers and the store thread; callers wait
/// (back-pressure) rather than buffering without bound when the disk is slow.
const QUEUE: usize = 1024;

/// Handle to the read-write store. Clone freely; all clones talk to the one
/// thread that owns the connection.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<ThreadMsg>,
    path: PathBuf,
    /// (device, inode) of the file opened, to notice when the path no longer
    /// names it (deleted or replaced while running).
    identity: Option<(u64, u64)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens or creates the state file (and its directory), verifies it and
    /// migrates it to the current schema. Does not need a tokio runtime.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = schema::open_read_write(path)?;
        let identity = file_identity(path).ok();
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("sentinel-store".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                detail: format!("cannot start the store thread: {e}"),
            })?;
        Ok(Store {
            tx,
            path: path.to_path_buf(),
            identity,
        })
    }

    /// Read-only access for `sentinel report`; see [`ReadOnlyStore::open`].
    pub fn open_read_only(path: &Path) -> Result<ReadOnlyStore, StoreError> {
        ReadOnlyStore::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (cancelled); nothing to tell then.
            let _ = reply.send(f(conn));
        });
        self.tx
            .send(ThreadMsg::Run(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Adds each delta to its minute bucket and to the hour bucket holding
    /// it, all in one transaction: either every count lands or none does.
    pub async fn add_counts(&self, deltas: Vec<BucketDelta>) -> Result<(), StoreError> {
        self.call(move |c| db::add_counts(c, &deltas)).await
    }

    /// Minute buckets starting at or after `since_minute` and hour buckets at
    /// or after `since_hour`: all minute rows, then all hour rows, each by
    /// start, then service, then check.
    pub async fn load_buckets(
        &self,
        since_minute: i64,
        since_hour: i64,
    ) -> Result<Vec<BucketRow>, StoreError> {
        self.call(move |c| db::load_buckets(c, since_minute, since_hour))
            .await
    }

    /// Buckets summed per service (what the engine restores at start).
    pub async fn load_service_buckets(
        &self,
        since_minute: i64,
        since_hour: i64,
    ) -> Result<Vec<ServiceBucket>, StoreError> {
        self.call(move |c| db::load_service_buckets(c, since_minute, since_hour))
            .await
    }

    /// Deletes minute buckets starting before `minute_before` and hour
    /// buckets before `hour_before`. Returns the number of rows deleted.
    pub async fn prune(&self, minute_before: i64, hour_before: i64) -> Result<u64, StoreError> {
        self.call(move |c| db::prune(c, minute_before, hour_before))
            .await
    }

    /// Deletes resolved incidents opened before `before`, and finished
    /// (delivered or dropped) outbox events created before it. Open incidents
    /// and pending events are kept whatever their age.
    pub async fn prune_incidents(&self, before: i64) -> Result<u64, StoreError> {
        self.call(move |c| db::prune_incidents(c, before)).await
    }

    /// Writes `w` in ONE transaction: the incident upserted, its outbox
    /// events enqueued (an event already queued, same `event_id` and
    /// `notifier`, is left as it is), the service state upserted or deleted.
    pub async fn save_state(&self, w: StateWrite) -> Result<(), StoreError> {
        self.call(move |c| db::save_state(c, &w)).await
    }

    /// [`Self::save_state`] of one incident and its events.
    pub async fn save_incident(
        &self,
        id: String,
        service: String,
        state: String,
        opened_at: i64,
        body_json: String,
        events: Vec<OutboxInsert>,
    ) -> Result<(), StoreError> {
        self.save_state(StateWrite {
            incident: Some(IncidentRow {
                id,
                service,
                state,
                opened_at,
                body_json,
            }),
            events,
            entries: Vec::new(),
            entries_only: false,
            service_state: None,
        })
        .await
    }

    /// [`Store::save_incident`] plus the change's cumulative-total entries,
    /// all in ONE transaction. An entry the incident row already made is
    /// skipped, so a retried write never counts twice.
    pub async fn write_incident(&self, w: IncidentSave) -> Result<(), StoreError> {
        self.save_state(StateWrite {
            incident: Some(IncidentRow {
                id: w.id,
                service: w.service,
                state: w.state,
                opened_at: w.opened_at,
                body_json: w.body_json,
            }),
            events: w.events,
            entries: w.entries,
            entries_only: false,
            service_state: None,
        })
        .await
    }

    /// `(service, body_json)` of every stored service state.
    pub async fn load_service_states(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.call(|c| db::load_service_states(c)).await
    }

    /// Notifiers that were given at least one event of `incident_id`, by name.
    pub async fn incident_notifiers(&self, incident_id: &str) -> Result<Vec<String>, StoreError> {
        let id = incident_id.to_string();
        self.call(move |c| db::incident_notifiers(c, &id)).await
    }

    /// Whether `storage.path` still names the file this store writes. `None`
    /// when it does; otherwise what happened, for the log and `/readyz`.
    /// While the path is gone or names another file, every write still
    /// succeeds but lands in the old file, which is lost when sentinel stops.
    pub async fn file_problem(&self) -> Option<String> {
        let path = self.path.clone();
        let opened = self.identity;
        let now = tokio::task::spawn_blocking(move || file_identity(&path))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let shown = self.path.display();
        match (now, opened) {
            (Ok(now), Some(opened)) if now == opened => None,
            (Ok(_), _) => Some(format!(
                "state file {shown} was replaced by another file while sentinel runs: \
                 sentinel still writes the file it opened, which vanishes when sentinel exits"
            )),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "state file {shown} was deleted while sentinel runs: counts and incident \
                 changes now go to the deleted file, which vanishes when sentinel exits"
            )),
            (Err(e), _) => Some(format!("state file {shown} cannot be checked: {e}")),
        }
    }

    /// Writes a consistent copy of everything the store holds to `dest` (a
    /// new file). Used at shutdown when the state file was deleted, so the
    /// operator can put it back.
    pub async fn copy_to(&self, dest: PathBuf) -> Result<(), StoreError> {
        self.call(move |c| db::copy_to(c, &dest)).await
    }

    /// The cumulative incident totals.
    pub async fn load_incident_totals(&self) -> Result<Vec<TotalsRow>, StoreError> {
        self.call(|c| db::load_incident_totals(c)).await
    }

    /// `(id, entered)` of the incidents [`Store::load_incidents`] returns.
    pub async fn load_entered(&self, since: i64) -> Result<Vec<(String, Entered)>, StoreError> {
        self.call(move |c| db::load_entered(c, since)).await
    }

    /// `(id, body_json)` of incidents that made no cumulative-total entry
    /// yet (rows written before schema v2), oldest first.
    pub async fn load_unentered(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.call(|c| db::load_unentered(c)).await
    }

    /// `(id, body_json)` of incidents opened at or after `since`, plus every
    /// incident whose state is not `resolved`, oldest first.
    pub async fn load_incidents(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.call(move |c| db::load_incidents(c, since)).await
    }

    /// Pending events due at `now`, by `seq`, at most `limit`. Only the head
    /// of each (incident, notifier) queue is returned, so delivering every
    /// returned row at once never reorders one incident's events.
    pub async fn outbox_due(&self, now: i64, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        self.call(move |c| db::outbox_due(c, now, limit)).await
    }

    /// One notifier's share of [`Store::outbox_due`]: its due queue heads,
    /// by `seq`, at most `limit`. Rows listed in `settled` count as finished
    /// (the worker delivered or dropped them but could not record it yet), so
    /// they are not returned and the events queued behind them are.
    pub async fn outbox_due_for(
        &self,
        notifier: String,
        now: i64,
        limit: u32,
        settled: Vec<i64>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.call(move |c| db::outbox_due_for(c, &notifier, now, limit, &settled))
            .await
    }

    /// For each incident open in the store, the last finished (delivered or
    /// dropped, or listed in `settled`) outbox row of `notifier`: what that
    /// receiver was last told about the incident. The Alertmanager re-post
    /// sends these again. Scans the notifier's finished rows; meant for a
    /// call every few minutes, not per event.
    pub async fn outbox_open_heads(
        &self,
        notifier: String,
        settled: Vec<i64>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.call(move |c| db::outbox_open_heads(c, &notifier, &settled))
            .await
    }

    /// Records several delivery outcomes in one transaction (all or none).
    /// A row already delivered or dropped keeps its first outcome.
    pub async fn outbox_settle(&self, marks: Vec<OutboxMark>) -> Result<(), StoreError> {
        self.call(move |c| db::outbox_settle(c, &marks)).await
    }

    /// Names of the notifiers with pending events, sorted.
    pub async fn outbox_notifiers(&self) -> Result<Vec<String>, StoreError> {
        self.call(|c| db::outbox_notifiers(c)).await
    }

    pub async fn outbox_delivered(&self, seq: i64, at: i64) -> Result<(), StoreError> {
        self.call(move |c| db::outbox_delivered(c, seq, at)).await
    }

    pub async fn outbox_retry(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        self.call(move |c| db::outbox_retry(c, seq, attempts, next_attempt_at))
            .await
    }

    /// Gives up on an event (past the notifier's `max_age`).
    pub async fn outbox_drop(&self, seq: i64, at: i64) -> Result<(), StoreError> {
        self.call(move |c| db::outbox_drop(c, seq, at)).await
    }

    /// Pending (undelivered, not dropped) events per notifier, by name.
    /// Notifiers with nothing pending are absent.
    pub async fn outbox_depth(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.call(|c| db::outbox_depth(c)).await
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.call(move |c| db::get_meta(c, &key)).await
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.call(move |c| db::set_meta(c, &key, &value)).await
    }

    /// Runs `PRAGMA quick_check` over the whole file. [`Store::open`] skips
    /// it for large files to keep start-up fast; the daemon may run this in
    /// the background instead. Blocks other store work while it runs.
    pub async fn quick_check(&self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.call(move |c| schema::quick_check(c, &path)).await
    }

    /// Finishes queued work, checkpoints and closes the connection, and stops
    /// the thread. Later calls on any clone return [`StoreError::Closed`].
    pub async fn close(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(ThreadMsg::Close(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// (device, inode) of the file at `path`.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// The store thread: runs jobs in arrival order until closed or every handle
/// is dropped.
fn run(conn: Connection, mut rx: mpsc::Receiver<ThreadMsg>) {
    let mut conn = conn;
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            ThreadMsg::Run(job) => job(&mut conn),
            ThreadMsg::Close(reply) => {
                rx.close();
                let result = conn.close().map_err(|(_, source)| StoreError::Write {
                    op: "close",
                    source,
                });
                let _ = reply.send(result);
                return;
            }
        }
    }
}

/// Read-only access for `sentinel report`; works while a daemon writes.
#[derive(Debug)]
pub struct ReadOnlyStore {
    conn: Connection,
}

impl ReadOnlyStore {
    /// Opens an existing, current-schema state file. A missing file is
    /// [`StoreError::Missing`]; nothing is ever created or migrated.
    pub fn open(path: &Path) -> Result<ReadOnlyStore, StoreError> {
        Ok(ReadOnlyStore {
            conn: schema::open_read_only(path)?,
        })
    }

    pub fn load_buckets(
        &self,
        since_minute: i64,
        since_hour: i64,
    ) -> Result<Vec<BucketRow>, StoreError> {
        db::load_buckets(&self.conn, since_minute, since_hour)
    }

    pub fn load_incidents(&self, since: i64) -> Result<Vec<(String, String)>, StoreError> {
        db::load_incidents(&self.conn, since)
    }

    pub fn outbox_depth(&self) -> Result<Vec<(String, u64)>, StoreError> {
        db::outbox_depth(&self.conn)
    }

    pub fn load_incident_totals(&self) -> Result<Vec<TotalsRow>, StoreError> {
        db::load_incident_totals(&self.conn)
    }
}

#[cfg(test)]
mod tests;
