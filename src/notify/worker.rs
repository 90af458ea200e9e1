//! The delivery worker: drains the durable outbox into the notifiers.
//!
//! Guarantees (SPEC §5):
//! - at least once: a row is marked delivered only after a 2xx; a crash
//!   between the send and the mark re-sends it under the same event id;
//! - in order per (incident, notifier): event n+1 is not sent before event n
//!   is delivered or dropped. The store's `outbox_due` returns only the oldest
//!   pending row of each (incident, notifier) pair (see [`OutboxStore`]), and
//!   within a pass the worker stops a pair at its first failure;
//! - retries: 5xx, 429 and network errors back off ([`super::backoff`]) until
//!   the notifier's `max_age` since the event was written, then the row is
//!   dropped; any other 4xx drops it at once (retrying cannot help).
//!
//! Pairs are delivered concurrently (bounded), rows of one pair sequentially.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{
    DeliveryResult, Event, NotifyError, RetryReason, Secrets, backoff, build_request, send,
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

/// What the worker needs from the store.
pub trait OutboxStore: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Pending rows (neither delivered nor dropped) that are the OLDEST
    /// pending row of their (incident_id, notifier) pair and whose
    /// `next_attempt_at <= now`, ordered by `seq`, at most `limit`.
    ///
    /// The "oldest of its pair" part is what keeps per-incident order across
    /// restarts: a later event must not overtake one waiting for its retry.
    fn outbox_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, Self::Error>> + Send;
    fn outbox_delivered(
        &self,
        seq: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn outbox_retry(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_at: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn outbox_drop(
        &self,
        seq: i64,
        at: Timestamp,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Outcome label of one attempt (`sentinel_notifier_deliveries_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attempt {
    Delivered,
    /// Failed, will be retried.
    Retry,
    /// Refused by the receiver (4xx other than 429): dropped.
    Rejected,
    /// Failed and older than `max_age`, or unusable (notifier gone, bad
    /// payload): dropped.
    Expired,
}

impl Attempt {
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Delivered => "delivered",
            Attempt::Retry => "retry",
            Attempt::Rejected => "rejected",
            Attempt::Expired => "expired",
        }
    }
}

/// Attempt counters per (notifier, result), for the metrics module.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    counts: Mutex<BTreeMap<(String, Attempt), u64>>,
}

impl DeliveryStats {
    fn add(&self, notifier: &str, a: Attempt) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((notifier.to_string(), a)).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<(String, Attempt), u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
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

/// Notifier definitions and their secrets; swapped as a whole on reload.
struct Targets {
    notifiers: HashMap<String, Notifier>,
    secrets: Secrets,
}

struct Inner<S> {
    store: S,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    targets: RwLock<Arc<Targets>>,
    stats: Arc<DeliveryStats>,
    /// (incident, notifier) → seq of a row waiting for its retry, so later
    /// rows of the pair wait even if a store returns them.
    blocked: Mutex<HashMap<(String, String), i64>>,
}

/// The outbox delivery worker. Cheap to clone.
pub struct Worker<S> {
    inner: Arc<Inner<S>>,
    /// Rows fetched per pass.
    pub batch: usize,
    /// Pairs delivered at once.
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
                blocked: Mutex::new(HashMap::new()),
            }),
            batch: 500,
            concurrency: 32,
        }
    }

    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.inner.stats)
    }

    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// After a config reload. Events of removed notifiers are dropped.
    pub fn set_notifiers(&self, notifiers: &[Notifier], secrets: Secrets) {
        if let Ok(mut t) = self.inner.targets.write() {
            *t = Arc::new(targets(notifiers, secrets));
        }
    }

    /// Deliver what is due now, once. Returns after every fetched row was
    /// attempted (or skipped behind a failed predecessor).
    pub async fn run_once(&self) -> Result<Pass, NotifyError> {
        let now = self.inner.clock.now();
        let mut rows = self
            .inner
            .store
            .outbox_due(now, self.batch)
            .await
            .map_err(|e| NotifyError::Store(Box::new(e)))?;
        rows.sort_by_key(|r| r.seq);
        let due = rows.len();
        let mut groups: BTreeMap<(String, String), Vec<OutboxRow>> = BTreeMap::new();
        for r in rows {
            groups
                .entry((r.incident_id.clone(), r.notifier.clone()))
                .or_default()
                .push(r);
        }
        let mut pass = Pass {
            due,
            ..Pass::default()
        };
        let mut tasks = JoinSet::new();
        let mut first_err = None;
        for (_, group) in groups {
            while tasks.len() >= self.concurrency.max(1) {
                if let Some(res) = tasks.join_next().await {
                    merge(&mut pass, res, &mut first_err);
                }
            }
            let inner = Arc::clone(&self.inner);
            tasks.spawn(async move { deliver_group(&inner, group).await });
        }
        while let Some(res) = tasks.join_next().await {
            merge(&mut pass, res, &mut first_err);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(pass),
        }
    }

    /// Loop until `shutdown`: a pass, then wait for `wake` (the engine wrote
    /// events), `poll` (retries fall due), or go again at once when the
    /// batch was full.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        wake: Arc<tokio::sync::Notify>,
        poll: Duration,
    ) {
        loop {
            let full = match self.run_once().await {
                Ok(p) => p.due >= self.batch,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox pass failed");
                    false
                }
            };
            if full {
                if shutdown.is_cancelled() {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
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

fn merge(
    pass: &mut Pass,
    res: Result<Result<Pass, NotifyError>, tokio::task::JoinError>,
    first_err: &mut Option<NotifyError>,
) {
    match res {
        Ok(Ok(p)) => {
            pass.delivered += p.delivered;
            pass.retried += p.retried;
            pass.dropped += p.dropped;
        }
        Ok(Err(e)) => {
            first_err.get_or_insert(e);
        }
        Err(e) => {
            first_err.get_or_insert(NotifyError::Store(Box::new(e)));
        }
    }
}

/// Rows of one (incident, notifier) pair, in order; stops at the first row
/// that is not finished (delivered or dropped).
async fn deliver_group<S: OutboxStore>(
    inner: &Inner<S>,
    group: Vec<OutboxRow>,
) -> Result<Pass, NotifyError> {
    let mut pass = Pass::default();
    for row in group {
        let key = (row.incident_id.clone(), row.notifier.clone());
        let waiting = inner
            .blocked
            .lock()
            .ok()
            .and_then(|b| b.get(&key).copied())
            .is_some_and(|head| head < row.seq);
        if waiting {
            break;
        }
        let attempt = deliver_row(inner, &row).await?;
        match attempt {
            Attempt::Delivered => pass.delivered += 1,
            Attempt::Retry => pass.retried += 1,
            Attempt::Rejected | Attempt::Expired => pass.dropped += 1,
        }
        if let Ok(mut b) = inner.blocked.lock() {
            if attempt == Attempt::Retry {
                b.insert(key, row.seq);
            } else {
                b.remove(&key);
            }
        }
        if attempt == Attempt::Retry {
            break;
        }
    }
    Ok(pass)
}

/// Drops a row that can never be delivered (its notifier is gone, or its
/// payload cannot be read), counted as `expired`.
async fn drop_undeliverable<S: OutboxStore>(
    inner: &Inner<S>,
    row: &OutboxRow,
) -> Result<Attempt, NotifyError> {
    inner
        .store
        .outbox_drop(row.seq, inner.clock.now())
        .await
        .map_err(|e| NotifyError::Store(Box::new(e)))?;
    inner.stats.add(&row.notifier, Attempt::Expired);
    Ok(Attempt::Expired)
}

async fn deliver_row<S: OutboxStore>(
    inner: &Inner<S>,
    row: &OutboxRow,
) -> Result<Attempt, NotifyError> {
    let store_err = |e: S::Error| NotifyError::Store(Box::new(e));
    let targets = match inner.targets.read() {
        Ok(t) => Arc::clone(&*t),
        Err(p) => Arc::clone(&p.into_inner()),
    };
    let Some(notifier) = targets.notifiers.get(&row.notifier) else {
        tracing::warn!(notifier = %row.notifier, event = %row.event_id, "notifier no longer configured; event dropped");
        return drop_undeliverable(inner, row).await;
    };
    let event = match Event::from_payload(&row.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "undecodable outbox payload; event dropped");
            return drop_undeliverable(inner, row).await;
        }
    };
    let result = match build_request(notifier, &event, &targets.secrets, inner.clock.now()) {
        Ok(req) => send(&inner.client, &req).await,
        Err(e) => {
            // A missing secret may be fixed by a reload: retry until max_age.
            tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "cannot build notification");
            DeliveryResult::Retry(RetryReason::Network)
        }
    };
    let now = inner.clock.now();
    let attempt = match result {
        DeliveryResult::Delivered { .. } => {
            inner
                .store
                .outbox_delivered(row.seq, now)
                .await
                .map_err(store_err)?;
            Attempt::Delivered
        }
        DeliveryResult::Reject { status } => {
            tracing::warn!(notifier = %row.notifier, event = %row.event_id, status, "receiver rejected event; dropped");
            inner
                .store
                .outbox_drop(row.seq, now)
                .await
                .map_err(store_err)?;
            Attempt::Rejected
        }
        DeliveryResult::Retry(why) => {
            let max_age = SignedDuration::try_from(notifier.max_age).unwrap_or(SignedDuration::MAX);
            let attempts = row.attempts.saturating_add(1);
            if now.duration_since(row.created_at) >= max_age {
                tracing::warn!(notifier = %row.notifier, event = %row.event_id, attempts, reason = ?why, "event older than max_age; dropped");
                inner
                    .store
                    .outbox_drop(row.seq, now)
                    .await
                    .map_err(store_err)?;
                Attempt::Expired
            } else {
                let delay = backoff(attempts, &mut rand::rng());
                let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::ZERO);
                let next = now.checked_add(delay).unwrap_or(now);
                tracing::debug!(notifier = %row.notifier, event = %row.event_id, attempts, reason = ?why, "delivery failed; will retry");
                inner
                    .store
                    .outbox_retry(row.seq, attempts, next)
                    .await
                    .map_err(store_err)?;
                Attempt::Retry
            }
        }
    };
    inner.stats.add(&row.notifier, attempt);
    Ok(attempt)
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
        self.rows()
            .iter()
            .filter(|r| r.delivered_at.is_none() && r.dropped_at.is_none())
            .count()
    }

    fn update(&self, seq: i64, f: impl FnOnce(&mut MemoryRow)) -> Result<(), MemoryOutboxError> {
        let mut rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        if let Some(r) = rows.iter_mut().find(|r| r.row.seq == seq) {
            f(r);
        }
        Ok(())
    }
}

impl OutboxStore for MemoryOutbox {
    type Error = MemoryOutboxError;

    async fn outbox_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let rows = self.rows.lock().map_err(|_| MemoryOutboxError)?;
        let mut seen = std::collections::HashSet::new();
        let mut due = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.delivered_at.is_none() && r.dropped_at.is_none())
        {
            // Only the oldest pending row of each pair is eligible.
            if seen.insert((r.row.incident_id.clone(), r.row.notifier.clone()))
                && r.row.next_attempt_at <= now
            {
                due.push(r.row.clone());
            }
        }
        due.truncate(limit);
        Ok(due)
    }

    async fn outbox_delivered(&self, seq: i64, at: Timestamp) -> Result<(), Self::Error> {
        self.update(seq, |r| r.delivered_at = Some(at))
    }

    async fn outbox_retry(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_at: Timestamp,
    ) -> Result<(), Self::Error> {
        self.update(seq, |r| {
            r.row.attempts = attempts;
            r.row.next_attempt_at = next_attempt_at;
        })
    }

    async fn outbox_drop(&self, seq: i64, at: Timestamp) -> Result<(), Self::Error> {
        self.update(seq, |r| r.dropped_at = Some(at))
    }
}

/// The real store keeps unix seconds; a retry time is rounded up so the
/// backoff is never shortened.
impl OutboxStore for crate::store::Store {
    type Error = crate::store::StoreError;

    async fn outbox_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, Self::Error> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let rows = crate::store::Store::outbox_due(self, now.as_second(), limit).await?;
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

    async fn outbox_delivered(&self, seq: i64, at: Timestamp) -> Result<(), Self::Error> {
        crate::store::Store::outbox_delivered(self, seq, at.as_second()).await
    }

    async fn outbox_retry(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_at: Timestamp,
    ) -> Result<(), Self::Error> {
        let secs = next_attempt_at.as_second() + i64::from(next_attempt_at.subsec_nanosecond() > 0);
        crate::store::Store::outbox_retry(self, seq, attempts, secs).await
    }

    async fn outbox_drop(&self, seq: i64, at: Timestamp) -> Result<(), Self::Error> {
        crate::store::Store::outbox_drop(self, seq, at.as_second()).await
    }
}
