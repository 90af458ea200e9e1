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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    DeliveryResult, Event, NotifyError, RetryReason, Secrets, backoff, build_request, send,
    shown_location, url_is_secret,
};
use crate::clock::Clock;
use crate::config::Notifier;

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

/// Delivery counters per notifier, for the metrics module.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    counts: Mutex<BTreeMap<(String, Attempt), u64>>,
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

/// The supervisor's delivery tasks, one per notifier name.
struct Tasks {
    set: JoinSet<()>,
    names: HashMap<tokio::task::Id, String>,
    shutdown: CancellationToken,
    poll: Duration,
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-text panic)".to_string())
}

fn targets(notifiers: &[Notifier], secrets: Secrets) -> Targets {
    Targets {
        notifiers: notifiers
            .iter()
            .map(|n| (n.name.clone(), n.clone()))
            .collect(),
        secrets,
    }
}

fn current<S>(inner: &Inner<S>) -> Arc<Targets> {
    Arc::clone(&inner.targets.read().unwrap_or_else(PoisonError::into_inner))
}

fn queue<S>(inner: &Inner<S>, name: &str) -> Arc<Queue> {
    Arc::clone(
        lock(&inner.queues)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Queue::new(name))),
    )
}

/// One notifier's delivery loop: fetch due events, deliver up to
/// `concurrency` incidents at once, store outcomes, and go again when an
/// attempt finishes, the engine wrote events, `poll` passes, or a reload
/// changed the notifier. Returns on shutdown, or when the notifier is not
/// configured and nothing of it is queued.
async fn serve<S: OutboxStore>(
    inner: &Arc<Inner<S>>,
    q: &Arc<Queue>,
    shutdown: &CancellationToken,
    poll: Duration,
    batch: usize,
    concurrency: usize,
) {
    let concurrency = concurrency.max(1);
    let mut inflight: JoinSet<()> = JoinSet::new();
    // Incident of each attempt in flight; its other events wait.
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    // Fetched, not yet started (bounded by `batch`).
    let mut backlog: VecDeque<Vec<OutboxRow>> = VecDeque::new();
    let mut retry_now = false;
    let mut store_failures = 0u64;
    loop {
        // Every wake-up below is a reason to look for due events, once the
        // previous fetch has been started.
        if backlog.is_empty() {
            flush(inner, q).await;
            let configured = current(inner).notifiers.contains_key(&q.name);
            // A notifier that is gone drains its queue whatever the schedule.
            let due_at = if retry_now || !configured {
                Timestamp::MAX
            } else {
                inner.clock.now()
            };
            retry_now = false;
            let taken: HashSet<&String> = busy.values().collect();
            match due(inner, q, due_at, batch).await {
                Ok((_, groups)) => backlog.extend(
                    groups
                        .into_iter()
                        .filter(|g| g.first().is_some_and(|r| !taken.contains(&r.incident_id))),
                ),
                Err(e) => {
                    if store_failures.is_multiple_of(60) {
                        tracing::warn!(notifier = %q.name, error = %e, "reading the outbox failed; retrying");
                    }
                    store_failures += 1;
                }
            }
            if !configured && backlog.is_empty() && inflight.is_empty() {
                flush(inner, q).await;
                return;
            }
        }
        while inflight.len() < concurrency
            && let Some(group) = backlog.pop_front()
        {
            let incident = group
                .first()
                .map(|r| r.incident_id.clone())
                .unwrap_or_default();
            let (inner, q) = (Arc::clone(inner), Arc::clone(q));
            let h = inflight.spawn(async move {
                deliver_group(&inner, &q, group).await;
            });
            busy.insert(h.id(), incident);
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = q.retarget.notified() => {
                inflight.abort_all();
                while inflight.join_next().await.is_some() {}
                busy.clear();
                backlog.clear();
                retry_now = true;
            }
            Some(res) = inflight.join_next_with_id() => {
                let id = match &res {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                busy.remove(&id);
                if let Err(e) = res
                    && e.is_panic()
                {
                    // Let the supervisor log, count and restart the task.
                    std::panic::resume_unwind(e.into_panic());
                }
                // Store what finished (other attempts that finished
                // together are flushed with it).
                while let Some(Ok((id, ()))) = inflight.try_join_next_with_id() {
                    busy.remove(&id);
                }
                flush(inner, q).await;
            }
            () = q.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    inflight.abort_all();
    while inflight.join_next().await.is_some() {}
    flush(inner, q).await;
}

/// One pass over one notifier's queue (see [`Worker::run_once`]).
async fn pass<S: OutboxStore>(
    inner: &Arc<Inner<S>>,
    q: &Arc<Queue>,
    batch: usize,
    concurrency: usize,
) -> Result<Pass, NotifyError> {
    flush(inner, q).await;
    let due_at = if current(inner).notifiers.contains_key(&q.name) {
        inner.clock.now()
    } else {
        Timestamp::MAX
    };
    let (due, groups) = due(inner, q, due_at, batch).await?;
    let mut total = Pass {
        due,
        ..Pass::default()
    };
    let mut tasks = JoinSet::new();
    for group in groups {
        while tasks.len() >= concurrency.max(1) {
            if let Some(res) = tasks.join_next().await {
                total.merge(joined(res));
            }
        }
        let (inner, q) = (Arc::clone(inner), Arc::clone(q));
        tasks.spawn(async move { deliver_group(&inner, &q, group).await });
    }
    while let Some(res) = tasks.join_next().await {
        total.merge(joined(res));
    }
    flush(inner, q).await;
    Ok(total)
}

fn joined(res: Result<Pass, tokio::task::JoinError>) -> Pass {
    match res {
        Ok(p) => p,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Pass::default(),
    }
}

/// Due rows of one notifier as per-incident groups in `seq` order, with the
/// in-memory outcomes applied: finished rows are excluded (the store is told
/// to treat them as finished), and a retry schedule the store did not take
/// yet holds its row back. Also returns how many rows the store offered.
async fn due<S: OutboxStore>(
    inner: &Inner<S>,
    q: &Queue,
    now: Timestamp,
    batch: usize,
) -> Result<(usize, Vec<Vec<OutboxRow>>), NotifyError> {
    let marks = lock(&q.marks).clone();
    let settled: Vec<i64> = marks
        .iter()
        .filter(|(_, o)| o.is_final())
        .map(|(s, _)| *s)
        .collect();
    let mut rows = inner
        .store
        .outbox_due(&q.name, now, batch, &settled)
        .await
        .map_err(|e| NotifyError::Store(Box::new(e)))?;
    rows.sort_by_key(|r| r.seq);
    let offered = rows.len();
    let mut groups: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    // Incidents whose first offered row still backs off (per memory): none
    // of their rows go in this fetch.
    let mut held: HashSet<String> = HashSet::new();
    for mut r in rows {
        if held.contains(&r.incident_id) {
            continue;
        }
        match marks.get(&r.seq) {
            Some(o) if o.is_final() => continue,
            Some(Outcome::Retry {
                attempts,
                next_attempt_at,
            }) => {
                r.attempts = *attempts;
                r.next_attempt_at = *next_attempt_at;
                if *next_attempt_at > now {
                    held.insert(r.incident_id.clone());
                    continue;
                }
            }
            _ => {}
        }
        if !groups.contains_key(&r.incident_id) {
            order.push(r.incident_id.clone());
        }
        groups.entry(r.incident_id.clone()).or_default().push(r);
    }
    // First-seen order is `seq` order of each incident's first due row.
    let out = order
        .into_iter()
        .filter_map(|i| groups.remove(&i))
        .collect();
    Ok((offered, out))
}

/// Rows of one incident for one notifier, in order; stops at the first row
/// that is not finished (delivered or dropped).
async fn deliver_group<S: OutboxStore>(inner: &Inner<S>, q: &Queue, group: Vec<OutboxRow>) -> Pass {
    let mut pass = Pass::default();
    for row in group {
        let waiting = lock(&q.blocked)
            .get(&row.incident_id)
            .is_some_and(|head| *head < row.seq);
        if waiting {
            break;
        }
        let (attempt, outcome) = attempt(inner, &row).await;
        // Recorded in memory at once, before anything else can await: from
        // here on this row is never sent again while the process lives,
        // whether or not the store takes the outcome.
        inner.stats.add(&q.name, attempt);
        lock(&q.marks).insert(row.seq, outcome);
        {
            let mut b = lock(&q.blocked);
            if outcome.is_final() {
                if b.get(&row.incident_id) == Some(&row.seq) {
                    b.remove(&row.incident_id);
                }
            } else {
                b.insert(row.incident_id.clone(), row.seq);
            }
        }
        pass.count(attempt);
        if !outcome.is_final() {
            break;
        }
    }
    pass
}

/// Store the outcomes held in memory; on failure keep them (and log the
/// first failure, then every 60th).
async fn flush<S: OutboxStore>(inner: &Inner<S>, q: &Queue) {
    let _one = q.flushing.lock().await;
    let marks: Vec<(i64, Outcome)> = lock(&q.marks).iter().map(|(s, o)| (*s, *o)).collect();
    if !marks.is_empty() {
        match inner.store.outbox_settle(&marks).await {
            Ok(()) => {
                let mut m = lock(&q.marks);
                for (seq, o) in &marks {
                    if m.get(seq) == Some(o) {
                        m.remove(seq);
                    }
                }
                let n = q
                    .flush_failures
                    .swap(0, std::sync::atomic::Ordering::Relaxed);
                if n > 0 {
                    tracing::info!(notifier = %q.name, failures = n, "delivery outcomes stored again");
                }
            }
            Err(e) => {
                let n = q
                    .flush_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(60) {
                    tracing::error!(notifier = %q.name, error = %e, held = marks.len(), "storing delivery outcomes failed; keeping them in memory (delivered events are not re-sent) and retrying");
                }
            }
        }
    }
    let held = lock(&q.marks).len() as u64;
    lock(&inner.stats.unstored).insert(q.name.clone(), held);
}

fn desk<S>(inner: &Inner<S>) -> Arc<crate::notify::tickets::Desk> {
    Arc::clone(inner.tickets.get_or_init(|| {
        Arc::new(crate::notify::tickets::Desk::memory(Arc::clone(
            &inner.clock,
        )))
    }))
}

/// One attempt at `row`: what to count and what to record. Outbox outcomes
/// are not stored here; a ticket connector stores the ticket it learns.
async fn attempt<S>(inner: &Inner<S>, row: &OutboxRow) -> (Attempt, Outcome) {
    let targets = current(inner);
    let Some(notifier) = targets.notifiers.get(&row.notifier) else {
        tracing::warn!(notifier = %row.notifier, event = %row.event_id, "notifier no longer configured; event dropped");
        return (
            Attempt::Expired,
            Outcome::Dropped {
                at: inner.clock.now(),
            },
        );
    };
    let mut event = match Event::from_payload(&row.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "undecodable outbox payload; event dropped");
            return (
                Attempt::Expired,
                Outcome::Dropped {
                    at: inner.clock.now(),
                },
            );
        }
    };
    let desk = desk(inner);
    event.incident.tickets = desk.book().refs(&event.incident.id);
    let (result, url) = if notifier.kind.is_ticket() {
        // A conversation with the provider; it logs its own refusals.
        let r = crate::notify::tickets::deliver(
            &desk,
            &inner.client,
            notifier,
            &event,
            &targets.secrets,
        )
        .await;
        (r, None)
    } else {
        match build_request(notifier, &event, &targets.secrets, inner.clock.now()) {
            Ok(req) => (send(&inner.client, &req).await, Some(req.url)),
            Err(e) => {
                // A missing secret may be fixed by a reload: retry until max_age.
                tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "cannot build notification");
                (DeliveryResult::Retry(RetryReason::Network), None)
            }
        }
    };
    let now = inner.clock.now();
    let failed = match result {
        DeliveryResult::Delivered { .. } => {
            return (Attempt::Delivered, Outcome::Delivered { at: now });
        }
        DeliveryResult::Reject { status } => {
            tracing::warn!(notifier = %row.notifier, event = %row.event_id, status, "receiver rejected event; dropped");
            return (Attempt::Rejected, Outcome::Dropped { at: now });
        }
        DeliveryResult::Redirect { .. } if notifier.kind.is_ticket() => Attempt::Redirected,
        DeliveryResult::Redirect { status, location } => {
            let secret = url_is_secret(notifier);
            let shown = match (&url, &location) {
                (Some(u), Some(l)) => shown_location(u, l, secret),
                _ => "(none)".to_string(),
            };
            tracing::error!(
                notifier = %row.notifier,
                event = %row.event_id,
                status,
                location = %shown,
                "receiver answered with a redirect, which is not followed; the event stays queued and is retried until max_age: point the notifier's url at the new location and reload"
            );
            Attempt::Redirected
        }
        DeliveryResult::Retry(why) => {
            tracing::debug!(notifier = %row.notifier, event = %row.event_id, attempts = row.attempts + 1, reason = ?why, "delivery failed; will retry");
            Attempt::Retry
        }
    };
    let max_age = SignedDuration::try_from(notifier.max_age).unwrap_or(SignedDuration::MAX);
    let attempts = row.attempts.saturating_add(1);
    if now.duration_since(row.created_at) >= max_age {
        tracing::warn!(notifier = %row.notifier, event = %row.event_id, attempts, "event older than max_age; dropped");
        return (Attempt::Expired, Outcome::Dropped { at: now });
    }
    let delay = backoff(attempts, &mut rand::rng());
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::ZERO);
    let next_attempt_at = now.checked_add(delay).unwrap_or(now);
    (
        failed,
        Outcome::Retry {
            attempts,
            next_attempt_at,
        },
    )
}

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
        Ok(rows
            .into_iter()
            .map(|r| OutboxRow {
                seq: r.seq,
                event_id: r.event_id,
                notifier: r.notifier,
                incident_id: r.incident_id,
                payload: r.payload,
                // Out-of-range times (a corrupt row) read as the epoch, so
                // the row ages out instead of blocking its queue forever.
                created_at: Timestamp::from_second(r.created_at).unwrap_or(Timestamp::UNIX_EPOCH),
                attempts: r.attempts,
                next_attempt_at: Timestamp::from_second(r.next_attempt_at)
                    .unwrap_or(Timestamp::UNIX_EPOCH),
            })
            .collect())
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
