//! The delivery worker: drains the durable outbox into the notifiers.
//!
//! Guarantees (the delivery contract in `docs/webhooks.md`):
//! - **independent notifiers**: every notifier has its own delivery task, so
//!   a receiver that hangs or is down delays only its own queue. The engine
//!   wakes the worker when it writes events, and the worker wakes every
//!   notifier's task. A task that panics is logged, counted
//!   (`sentinel_notifier_task_restarts_total`) and restarted after 1 s from
//!   the stored outbox;
//! - **at least once**: an event is finished only by a 2xx, a refusal or
//!   `max_age`; a crash between the send and the record re-sends it under
//!   the same event id;
//! - **never twice while the process lives**: an outcome (delivered,
//!   dropped, retry schedule) is kept in memory the moment it happens and
//!   stored afterwards; when the store cannot write (full disk), the memory
//!   copy is what counts and storing is retried before every fetch. A
//!   delivered event is therefore not re-sent, a failing one keeps its
//!   backoff, and `delivered` is counted when the receiver answered 2xx, not
//!   when the store caught up;
//! - **in order per (incident, notifier)**: event n+1 is not sent before
//!   event n is finished. [`OutboxStore::outbox_due`] offers only the oldest
//!   pending event of each incident, and the worker itself keeps later rows
//!   behind one that is backing off even if a store offers them;
//! - **retries**: 5xx, 429, network errors and redirects (3xx) back off
//!   ([`super::backoff`]) until the notifier's `max_age` since the event was
//!   written, then the event is dropped (`expired`); any other 4xx drops it
//!   at once (`rejected`).
//!
//! Reload ([`Worker::set_notifiers`]): an added notifier gets a task at
//! once; a notifier whose definition or secrets changed has its attempts in
//! flight cancelled and every queued event retried at once with the new
//! definition (so fixing a moved URL delivers the backlog without waiting
//! out the backoff); a removed notifier's queued events are dropped
//! (`expired`), as are events of notifiers no longer configured found at
//! start.
//!
//! Within one notifier, up to [`Worker::concurrency`] incidents are
//! delivered at once; one incident's events go one after the other.
//!
//! **Alertmanager re-post.** Alertmanager ends an alert whose `endsAt`
//! passed, so an `alertmanager` notifier's task also sends the firing
//! alert of every open incident again: when it starts, after a reload
//! changed the notifier, and every `repost_every` (default 5m). What it
//! sends is the last event the notifier finished for each incident still
//! open ([`OutboxStore::outbox_open_heads`]), with a fresh `endsAt`.
//! Re-posts are idempotent state pushes, so they do not go through the
//! outbox: nothing is written, a failed one is counted
//! (`sentinel_notifier_reposts_total`) and the next one tries again (the
//! alert's `endsAt` lasts four periods). They run inside the notifier's
//! task, between fetches, and skip incidents with an attempt in flight, so
//! a re-post never lands after the event that changed or resolved its
//! alert. [`Worker::run_once`] does not re-post.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    DeliveryResult, Event, NotifyError, PreparedRequest, RetryReason, Secrets, alertmanager,
    backoff, build_request, resolve_url, send, shown_location, url_is_secret,
};
use crate::clock::Clock;
use crate::config::{Notifier, NotifierKind, alertmanager_ends_after};

/// One row of the `outbox` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: String,
    pub notifier: String,
    pub incident_id: String,
    /// [`Event`] JSON.
    pub payload: String,
    pub created_at: Timestamp,
    /// Failed attempts so far.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
}

/// What became of a row after an attempt, as the worker records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered { at: Timestamp },
    /// Given up: refused, older than `max_age`, or undeliverable.
    Dropped { at: Timestamp },
    /// Failed `attempts` times; try again at `next_attempt_at`.
    Retry {
        attempts: u32,
        next_attempt_at: Timestamp,
    },
}

impl Outcome {
    /// Delivered or dropped: the row is never sent again.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Retry { .. })
    }
}

/// What the worker needs from the store.
pub trait OutboxStore: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Names of the notifiers that have pending (neither delivered nor
    /// dropped) rows.
    fn outbox_notifiers(&self) -> impl Future<Output = Result<Vec<String>, Self::Error>> + Send;

    /// Pending rows of `notifier` that are the OLDEST pending row of their
    /// incident, not listed in `settled`, and whose `next_attempt_at <= now`,
    /// ordered by `seq`, at most `limit`. Rows in `settled` count as
    /// finished: the worker delivered or dropped them but could not record
    /// it yet.
    ///
    /// The "oldest of its incident" part is what keeps per-incident order
    /// across restarts: a later event must not overtake one waiting for its
    /// retry.
    fn outbox_due(
        &self,
        notifier: &str,
        now: Timestamp,
        limit: usize,
        settled: &[i64],
    ) -> impl Future<Output = Result<Vec<OutboxRow>, Self::Error>> + Send;

    /// For each incident still open, the last finished row of `notifier`
    /// (delivered or dropped, or listed in `settled`, which the worker
    /// finished but could not record yet): what the receiver was last told.
    /// An incident counts as open while no `incident.resolved` was written
    /// for it. Used to re-post open incidents' alerts to Alertmanager; a
    /// store that cannot answer returns none (no re-post).
    fn outbox_open_heads(
        &self,
        notifier: &str,
        settled: &[i64],
    ) -> impl Future<Output = Result<Vec<OutboxRow>, Self::Error>> + Send {
        let _ = (notifier, settled);
        async { Ok(Vec::new()) }
    }

    /// Record outcomes by `seq`, all or none. A row already delivered or
    /// dropped keeps its first outcome.
    fn outbox_settle(
        &self,
        marks: &[(i64, Outcome)],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Outcome label of one attempt (`sentinel_notifier_deliveries_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attempt {
    Delivered,
    /// Failed (5xx, 429, network), will be retried.
    Retry,
    /// The receiver answered 3xx; kept and retried like `Retry`, logged at
    /// ERROR with the `Location`.
    Redirected,
    /// Refused by the receiver (4xx other than 429): dropped.
    Rejected,
    /// Failed and older than `max_age`, or unusable (notifier gone, bad
    /// payload): dropped.
    Expired,
}

impl Attempt {
    /// Every value, in exposition order.
    pub const ALL: [Attempt; 5] = [
        Attempt::Delivered,
        Attempt::Retry,
        Attempt::Redirected,
        Attempt::Rejected,
        Attempt::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Delivered => "delivered",
            Attempt::Retry => "retry",
            Attempt::Redirected => "redirected",
            Attempt::Rejected => "rejected",
            Attempt::Expired => "expired",
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps behind these locks stay consistent across a panic (every
    // update is a single insert/remove), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Outcome label of one re-posted alert
/// (`sentinel_notifier_reposts_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Repost {
    /// Alertmanager answered 2xx.
    Delivered,
    /// Any other answer or a network error; the next re-post tries again.
    Failed,
}

impl Repost {
    pub const ALL: [Repost; 2] = [Repost::Delivered, Repost::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Repost::Delivered => "delivered",
            Repost::Failed => "failed",
        }
    }
}

/// Delivery counters per notifier, for the metrics module.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    counts: Mutex<BTreeMap<(String, Attempt), u64>>,
    reposts: Mutex<BTreeMap<(String, Repost), u64>>,
    restarts: Mutex<BTreeMap<String, u64>>,
    unstored: Mutex<BTreeMap<String, u64>>,
}

impl DeliveryStats {
    fn add(&self, notifier: &str, a: Attempt) {
        *lock(&self.counts)
            .entry((notifier.to_string(), a))
            .or_default() += 1;
    }

    /// Attempts per (notifier, result).
    pub fn snapshot(&self) -> BTreeMap<(String, Attempt), u64> {
        lock(&self.counts).clone()
    }

    fn add_reposts(&self, notifier: &str, r: Repost, n: u64) {
        *lock(&self.reposts)
            .entry((notifier.to_string(), r))
            .or_default() += n;
    }

    /// Re-posted alerts per (notifier, result).
    pub fn reposts(&self) -> BTreeMap<(String, Repost), u64> {
        lock(&self.reposts).clone()
    }

    /// Delivery task restarts (after a panic) per notifier.
    pub fn restarts(&self) -> BTreeMap<String, u64> {
        lock(&self.restarts).clone()
    }

    /// Outcomes per notifier held in memory because the store has not
    /// taken them yet (non-zero while the disk is full).
    pub fn unstored(&self) -> BTreeMap<String, u64> {
        lock(&self.unstored).clone()
    }
}

/// Totals of one [`Worker::run_once`] pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Rows `outbox_due` returned.
    pub due: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dropped: usize,
}

impl Pass {
    fn count(&mut self, a: Attempt) {
        match a {
            Attempt::Delivered => self.delivered += 1,
            Attempt::Retry | Attempt::Redirected => self.retried += 1,
            Attempt::Rejected | Attempt::Expired => self.dropped += 1,
        }
    }

    fn merge(&mut self, o: Pass) {
        self.due += o.due;
        self.delivered += o.delivered;
        self.retried += o.retried;
        self.dropped += o.dropped;
    }
}

/// Notifier definitions and their secrets; swapped as a whole on reload.
struct Targets {
    notifiers: HashMap<String, Notifier>,
    secrets: Secrets,
}

/// What one notifier's queue remembers beyond the store. It outlives the
/// delivery task, so a task restarted after a panic still knows what was
/// delivered.
struct Queue {
    name: String,
    /// Outcomes not yet stored, by seq. A final one means "never send this
    /// row again", whatever the store says.
    marks: Mutex<BTreeMap<i64, Outcome>>,
    /// incident → seq of its row backing off: later rows of that incident
    /// wait even if a store offers them.
    blocked: Mutex<HashMap<String, i64>>,
    /// New rows may be due.
    wake: Notify,
    /// The notifier was changed or removed by a reload: cancel attempts in
    /// flight and retry every queued event now.
    retarget: Notify,
    /// One flush at a time, so a slow store write is not raced by a copy.
    flushing: tokio::sync::Mutex<()>,
    /// Failed flushes, to log the first and then every 60th.
    flush_failures: std::sync::atomic::AtomicU64,
    /// Failed re-posts in a row, to log the first and then every 60th.
    repost_failures: std::sync::atomic::AtomicU64,
}

impl Queue {
    fn new(name: &str) -> Self {
        Queue {
            name: name.to_string(),
            marks: Mutex::new(BTreeMap::new()),
            blocked: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            retarget: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            flush_failures: std::sync::atomic::AtomicU64::new(0),
            repost_failures: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

struct Inner<S> {
    store: S,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    targets: RwLock<Arc<Targets>>,
    stats: Arc<DeliveryStats>,
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// The set of notifiers changed (reload).
    reconfigured: Notify,
    /// The ticket connectors' state (the daemon sets one backed by the
    /// store; without it, a memory-only desk is made on first use).
    tickets: std::sync::OnceLock<Arc<crate::notify::tickets::Desk>>,
}

/// The outbox delivery worker. Cheap to clone.
pub struct Worker<S> {
    inner: Arc<Inner<S>>,
    /// Rows fetched per notifier at a time.
    pub batch: usize,
    /// Incidents delivered at once per notifier.
    pub concurrency: usize,
}

impl<S> Clone for Worker<S> {
    fn clone(&self) -> Self {
        Worker {
            inner: Arc::clone(&self.inner),
            batch: self.batch,
            concurrency: self.concurrency,
        }
    }
}

/// How often the supervisor looks for queued events of notifiers that are
/// no longer configured (written by a change that raced a reload).
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Pause before a panicked notifier task starts again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

impl<S: OutboxStore> Worker<S> {
    pub fn new(
        store: S,
        notifiers: &[Notifier],
        secrets: Secrets,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Worker {
            inner: Arc::new(Inner {
                store,
                client,
                clock,
                targets: RwLock::new(Arc::new(targets(notifiers, secrets))),
                stats: Arc::new(DeliveryStats::default()),
                queues: Mutex::new(HashMap::new()),
                reconfigured: Notify::new(),
                tickets: std::sync::OnceLock::new(),
            }),
            batch: 500,
            concurrency: 32,
        }
    }

    /// Use `desk` for the ticket connectors (before the first delivery;
    /// later calls are ignored).
    pub fn set_tickets(&self, desk: Arc<crate::notify::tickets::Desk>) {
        let _ = self.inner.tickets.set(desk);
    }

    /// The ticket connectors' state.
    pub fn tickets(&self) -> Arc<crate::notify::tickets::Desk> {
        desk(&self.inner)
    }

    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.inner.stats)
    }

    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// After a config reload. A changed notifier (definition or secret
    /// values) cancels its attempts in flight and retries its queue at once;
    /// a removed one's events are dropped as `expired`; an added one starts.
    pub fn set_notifiers(&self, notifiers: &[Notifier], secrets: Secrets) {
        let new = Arc::new(targets(notifiers, secrets));
        let old = {
            let mut t = self
                .inner
                .targets
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *t, Arc::clone(&new))
        };
        for (name, before) in &old.notifiers {
            let changed = match new.notifiers.get(name) {
                None => true,
                Some(after) => after != before || new.secrets.of(after) != old.secrets.of(before),
            };
            if changed && let Some(q) = lock(&self.inner.queues).get(name) {
                q.retarget.notify_one();
            }
        }
        self.inner.reconfigured.notify_one();
    }

    /// Deliver what is due now, once, for every notifier with a queue (the
    /// configured ones and any with stored events). Returns after every
    /// fetched row was attempted (or skipped behind a failed predecessor).
    /// For tests and tools; the daemon uses [`Worker::run`]. Do not mix
    /// the two on one worker.
    pub async fn run_once(&self) -> Result<Pass, NotifyError> {
        let names = self.queue_names().await?;
        let mut passes = JoinSet::new();
        for name in names {
            let inner = Arc::clone(&self.inner);
            let queue = queue(&self.inner, &name);
            let (batch, concurrency) = (self.batch, self.concurrency);
            passes.spawn(async move { pass(&inner, &queue, batch, concurrency).await });
        }
        let mut total = Pass::default();
        let mut first_err = None;
        while let Some(res) = passes.join_next().await {
            match res {
                Ok(Ok(p)) => total.merge(p),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    first_err.get_or_insert(NotifyError::Store(Box::new(e)));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Configured notifiers plus any with stored pending events, sorted.
    async fn queue_names(&self) -> Result<Vec<String>, NotifyError> {
        let mut names: Vec<String> = self
            .inner
            .store
            .outbox_notifiers()
            .await
            .map_err(|e| NotifyError::Store(Box::new(e)))?;
        names.extend(current(&self.inner).notifiers.keys().cloned());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Deliver until `shutdown`: one supervised task per notifier. `wake`
    /// (the engine wrote events) wakes every notifier's task; each task also
    /// looks for due retries every `poll`.
    pub async fn run(self, shutdown: CancellationToken, wake: Arc<Notify>, poll: Duration) {
        let mut tasks = Tasks {
            set: JoinSet::new(),
            names: HashMap::new(),
            shutdown: shutdown.clone(),
            poll,
        };
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick (at once) starts a task per queue.
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = wake.notified() => {
                    for q in lock(&self.inner.queues).values() {
                        q.wake.notify_one();
                    }
                }
                () = self.inner.reconfigured.notified() => self.reconcile(&mut tasks).await,
                Some(res) = tasks.set.join_next_with_id() => {
                    let (id, panicked) = match res {
                        Ok((id, ())) => (id, None),
                        Err(e) => (e.id(), e.is_panic().then(|| panic_text(e))),
                    };
                    let Some(name) = tasks.names.remove(&id) else { continue };
                    match panicked {
                        Some(why) => {
                            *lock(&self.inner.stats.restarts).entry(name.clone()).or_default() += 1;
                            tracing::error!(notifier = %name, panic = %why, "notifier delivery task panicked; restarting it from the stored outbox in 1s");
                            self.spawn(&mut tasks, &name, RESTART_DELAY);
                        }
                        // A task ends by itself once a notifier that is no
                        // longer configured has nothing left it can drop.
                        // If a reload brought the notifier back meanwhile, it
                        // starts again; rows it could not drop (the store did
                        // not take the drop) wait for the sweep, so this
                        // never spins.
                        None => {
                            if current(&self.inner).notifiers.contains_key(&name) {
                                self.spawn(&mut tasks, &name, Duration::ZERO);
                            }
                        }
                    }
                }
                _ = sweep.tick() => self.reconcile(&mut tasks).await,
            }
        }
        // Each task sees `shutdown` itself, cancels what is in flight (the
        // events stay queued) and stores what it knows.
        while tasks.set.join_next().await.is_some() {}
    }

    /// Start a task for every notifier that needs one and has none.
    async fn reconcile(&self, tasks: &mut Tasks) {
        let wanted = match self.queue_names().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "listing notifier queues failed; serving the configured ones");
                current(&self.inner).notifiers.keys().cloned().collect()
            }
        };
        for name in wanted {
            if !tasks.names.values().any(|n| *n == name) {
                self.spawn(tasks, &name, Duration::ZERO);
            }
        }
    }

    /// Start `name`'s delivery task after `delay`.
    fn spawn(&self, tasks: &mut Tasks, name: &str, delay: Duration) {
        let inner = Arc::clone(&self.inner);
        let q = queue(&self.inner, name);
        let shutdown = tasks.shutdown.clone();
        let (poll, batch, concurrency) = (tasks.poll, self.batch, self.concurrency);
        let handle = tasks.set.spawn(async move {
            if !delay.is_zero() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            serve(&inner, &q, &shutdown, poll, batch, concurrency).await;
        });
        tasks.names.insert(handle.id(), name.to_string());
    }
}

mod deliver;
mod memory;

use deliver::*;
pub use memory::{MemoryOutbox, MemoryOutboxError, MemoryRow};
