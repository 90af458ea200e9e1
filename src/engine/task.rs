//! The engine task: the IO around [`EngineState`]. Runs arrive on a
//! channel, counts are flushed to the store, snapshots are published,
//! incident writes are persisted in order and retried, and the state file is
//! watched.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{
    EngineOptions, EngineState, EngineStats, IncidentWrite, RunRecord, Snapshot, incident_window,
    load_bounds,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::incident::{Change, Incident, IncidentError, Source, Totals, Update, UpdateStatus};
use crate::store::Store;

/// A state-file problem is logged again at most this often while it lasts.
const STORE_PROBLEM_LOG_EVERY: Duration = Duration::from_secs(60);

/// An acknowledge or resolve request from the API or an inbound hook
/// (`source` says which; the API's is [`Source::Api`]), or a human update
/// from the API.
#[derive(Debug)]
pub enum IncidentCommand {
    Ack {
        id: String,
        by: String,
        note: Option<String>,
        source: Source,
    },
    Resolve {
        id: String,
        by: String,
        source: Source,
    },
    /// A human update; `update.at` is set by the engine.
    PostUpdate {
        id: String,
        status: UpdateStatus,
        message: String,
        by: String,
    },
}

/// The answer to an [`IncidentCommand`]: the incident after it, and whether
/// it took effect (a repeated acknowledgement is recorded in the incident's
/// `acknowledgements` but answers `false`).
pub type IncidentReply = Result<(Incident, bool), IncidentError>;

/// Messages to the engine task.
pub enum EngineMsg {
    Run(RunRecord),
    Reconfigure(Arc<Config>),
    Incident(IncidentCommand, tokio::sync::oneshot::Sender<IncidentReply>),
}

/// What the rest of the daemon holds: a sender and the latest snapshot.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<EngineMsg>,
    /// The engine task publishes each snapshot whole; readers take the
    /// latest `Arc` and never hold a lock while they read it.
    snapshot: watch::Receiver<Arc<Snapshot>>,
    pub stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub fn send(&self, msg: EngineMsg) {
        // The receiver only goes away at shutdown, when runs no longer matter.
        let _ = self.tx.send(msg);
    }

    /// Run an API command on the engine; `None` when the engine has stopped.
    pub async fn command(&self, cmd: IncidentCommand) -> Option<IncidentReply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(EngineMsg::Incident(cmd, tx)).ok()?;
        rx.await.ok()
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.borrow())
    }
}

/// Loads state from the store and spawns the engine task. Returns once the
/// state is loaded (so `/readyz` can flip), with the task's join handle.
/// `wake` is notified whenever outbox events were written.
pub async fn start(
    cfg: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) -> Result<(EngineHandle, tokio::task::JoinHandle<()>), crate::store::StoreError> {
    let now = clock.now();
    let bounds = load_bounds(&cfg, now);
    let rows = store
        .load_service_buckets(bounds.minutes_since, bounds.hours_since)
        .await?;
    let mut state = EngineState::new(Arc::clone(&cfg));
    state.restore(&rows);
    let since = now
        .as_second()
        .saturating_sub(i64::try_from(incident_window(&cfg).as_secs()).unwrap_or(i64::MAX));
    let mut incidents = Vec::new();
    for (id, body) in store.load_incidents(since).await? {
        match Incident::from_json(&body) {
            Ok(i) => incidents.push(i),
            Err(e) => {
                tracing::error!(incident = %id, error = %e, "stored incident is unreadable; skipped")
            }
        }
    }
    tracing::info!(
        buckets = rows.len(),
        incidents = incidents.len(),
        "state restored from the store"
    );
    let totals = store.load_incident_totals().await?;
    let entered = store.load_entered(since).await?;
    state.restore_totals(Totals::restore(
        totals
            .into_iter()
            .map(|r| (r.service, r.severity, r.figure, r.count, r.sum_micros)),
        entered,
    ));
    // Incidents stored before the totals existed and not loaded above
    // (outside the MTTx window) enter the totals once, now.
    let loaded: std::collections::HashSet<&str> = incidents.iter().map(|i| i.id.as_str()).collect();
    let earlier: Vec<Incident> = store
        .load_unentered()
        .await?
        .into_iter()
        .filter(|(id, _)| !loaded.contains(id.as_str()))
        .filter_map(|(_, body)| Incident::from_json(&body).ok())
        .collect();
    drop(loaded);
    state.enter_stored(&earlier, now);
    state.restore_incidents(incidents);
    state.restore_service_states(store.load_service_states().await?);
    let orphans = state.orphaned_open();
    let mut notifiers = Vec::with_capacity(orphans.len());
    for inc in &orphans {
        // Tell whoever was told it opened (and is still configured).
        let told = store.incident_notifiers(&inc.id).await?;
        notifiers.push(
            told.into_iter()
                .filter(|n| cfg.notifiers.iter().any(|c| c.name == *n))
                .collect::<Vec<_>>(),
        );
    }
    let (snapshot, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(EngineStats::default());
    let handle = EngineHandle {
        tx,
        snapshot: snapshot_rx,
        stats: Arc::clone(&stats),
    };
    let mut engine = EngineTask {
        state,
        store,
        clock,
        opts,
        snapshot,
        stats,
        wake,
        // Entries owed at start (incidents stored before the totals
        // existed): written first.
        unsaved: std::collections::VecDeque::new(),
        dirty: false,
        last_publish: None,
        store_problem_logged: None,
    };
    for (inc, told) in orphans.into_iter().zip(notifiers) {
        tracing::warn!(incident = %inc.id, service = %inc.service, "open incident of a service no longer configured; resolving it");
        let w = engine.state.close_orphan(now, inc, &told);
        engine.unsaved.extend(w);
    }
    let owed = engine.state.take_entry_writes();
    engine.unsaved.extend(owed);
    // The first evaluation (burn alerts on the restored history) is an
    // evaluation like any other: its changes are written before the first
    // snapshot is published, and only what was stored is shown.
    engine.publish().await;
    let task = tokio::spawn(engine.run(rx, shutdown));
    Ok((handle, task))
}

/// The engine task's state beyond [`EngineState`]: IO handles and the queue
/// of incident writes not yet in the store.
struct EngineTask {
    state: EngineState,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    snapshot: watch::Sender<Arc<Snapshot>>,
    stats: Arc<EngineStats>,
    wake: Arc<tokio::sync::Notify>,
    /// Incident writes in the order they happened; the head is retried until
    /// the store takes it.
    unsaved: std::collections::VecDeque<IncidentWrite>,
    /// An incident changed since the last published snapshot.
    dirty: bool,
    last_publish: Option<tokio::time::Instant>,
    /// When a state-file problem was last logged (it is logged at most once
    /// per [`STORE_PROBLEM_LOG_EVERY`] while it lasts).
    store_problem_logged: Option<tokio::time::Instant>,
}

impl EngineTask {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<EngineMsg>,
        shutdown: CancellationToken,
    ) {
        let mut flush = tokio::time::interval(self.opts.flush_every);
        let mut publish = tokio::time::interval(self.opts.snapshot_every);
        let mut prune = tokio::time::interval(self.opts.prune_every);
        let mut store_check = tokio::time::interval(self.opts.store_check_every);
        for t in [&mut flush, &mut publish, &mut prune, &mut store_check] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = flush.tick() => {
                    self.flush_counts().await;
                    // A retried write that lands (the disk has room again)
                    // is shown at once, not at the next publish tick.
                    if self.persist().await {
                        self.dirty = true;
                    }
                    if self.dirty {
                        self.publish().await;
                    }
                }
                _ = publish.tick() => self.publish().await,
                _ = prune.tick() => self.prune().await,
                _ = store_check.tick() => self.check_store_file().await,
            }
        }
        // Drain what is already queued, then write it: a clean stop loses nothing.
        while let Ok(msg) = rx.try_recv() {
            if let EngineMsg::Run(run) = msg {
                self.on_run(&run);
            }
        }
        self.flush_counts().await;
        self.persist().await;
        if !self.unsaved.is_empty() {
            tracing::error!(
                pending = self.unsaved.len(),
                "incident changes could not be written before exit"
            );
        }
    }

    fn on_run(&mut self, run: &RunRecord) {
        let (valid, changes) = self.state.on_run(run);
        if valid {
            self.stats.runs_recorded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats
                .runs_in_maintenance
                .fetch_add(1, Ordering::Relaxed);
        }
        self.queue(changes, run.at);
    }

    fn queue(&mut self, changes: Vec<Change>, now: Timestamp) {
        for c in &changes {
            tracing::info!(incident = %c.incident.id, service = %c.incident.service, change = ?c.kind, "incident changed");
        }
        let writes = self.state.writes(changes, now);
        self.queue_writes(writes);
    }

    fn queue_writes(&mut self, writes: Vec<IncidentWrite>) {
        self.unsaved.extend(writes);
        self.stats
            .incident_writes_pending
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
    }

    async fn handle(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Run(run) => {
                let queued = self.unsaved.len();
                self.on_run(&run);
                // Incident changes are written at once: a kill right after
                // an incident opens must not lose its event. The API should
                // show them soon too, but an incident storm must not turn
                // into a full snapshot per change: at most 4 per second.
                // Only a run that changed an incident writes here; older
                // changes a failing disk refused are retried by the flush
                // tick, not by every run that arrives meanwhile.
                if self.unsaved.len() > queued {
                    self.persist().await;
                    self.dirty = true;
                    let recent = self
                        .last_publish
                        .is_some_and(|t| t.elapsed() < Duration::from_millis(250));
                    if !recent {
                        self.publish().await;
                    }
                }
            }
            EngineMsg::Reconfigure(cfg) => {
                self.flush_counts().await;
                let now = self.clock.now();
                let (rebuild, writes) = self.state.reconfigure(now, Arc::clone(&cfg));
                for w in &writes {
                    if let Some(i) = &w.incident {
                        tracing::info!(incident = %i.id, service = %i.service, state = i.state.as_str(), "incident changed by the reload");
                    }
                }
                self.queue_writes(writes);
                self.persist().await;
                if !rebuild.is_empty() {
                    let b = load_bounds(&cfg, now);
                    match self
                        .store
                        .load_service_buckets(b.minutes_since, b.hours_since)
                        .await
                    {
                        Ok(rows) => self.state.restore_only(&rebuild, &rows),
                        Err(e) => {
                            tracing::error!(error = %e, "reloading SLO history after a config change failed")
                        }
                    }
                }
                self.publish().await;
            }
            EngineMsg::Incident(cmd, reply) => {
                let now = self.clock.now();
                let result = match cmd {
                    IncidentCommand::Ack {
                        id,
                        by,
                        note,
                        source,
                    } => self
                        .state
                        .acknowledge(now, &id, &by, note.as_deref(), source)
                        .map(|a| (a.incident, a.change, a.first)),
                    IncidentCommand::Resolve { id, by, source } => self
                        .state
                        .resolve_from(now, &id, &by, source)
                        .map(|c| (c.incident.clone(), Some(c), true)),
                    IncidentCommand::PostUpdate {
                        id,
                        status,
                        message,
                        by,
                    } => {
                        let update = Update {
                            at: now,
                            status,
                            message,
                            by,
                        };
                        let queued = self.latest_queued(&id);
                        self.state
                            .post_update(now, &id, update, queued)
                            .map(|c| (c.incident.clone(), Some(c), true))
                    }
                };
                let answer = result.map(|(inc, change, took_effect)| {
                    if let Some(c) = change {
                        self.queue(vec![c], now);
                    }
                    (inc, took_effect)
                });
                // Persist before answering, so a 200 means the change is on disk
                // (or, with a failing disk, queued in order and retried).
                self.persist().await;
                self.publish().await;
                let _ = reply.send(answer);
            }
        }
    }

    /// The newest version of incident `id` waiting in the write queue, if
    /// any: ahead of what the store (and so the snapshot) holds.
    fn latest_queued(&self, id: &str) -> Option<Incident> {
        self.unsaved
            .iter()
            .rev()
            .filter(|w| !w.entries_only)
            .find_map(|w| w.incident.as_ref().filter(|i| i.id == id))
            .cloned()
    }

    /// Write queued incident changes in order; stop at the first failure.
    /// Returns whether anything was stored (readers see it from the next
    /// snapshot on).
    async fn persist(&mut self) -> bool {
        let mut wrote_events = false;
        let mut stored = false;
        while let Some(w) = self.unsaved.front() {
            let row = match w.to_store() {
                Ok(r) => r,
                Err(e) => {
                    // Serializing plain structs cannot fail in practice;
                    // never seen, but never silent either.
                    tracing::error!(error = %e, "encoding an incident change failed; dropping it");
                    self.unsaved.pop_front();
                    continue;
                }
            };
            match self.store.save_state(row).await {
                Ok(()) => {
                    wrote_events |= !w.events.is_empty();
                    stored = true;
                    if let Some(w) = self.unsaved.pop_front() {
                        self.state.stored(&w);
                    }
                }
                Err(e) => {
                    let n = self
                        .stats
                        .store_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(60) {
                        tracing::error!(error = %e, pending = self.unsaved.len(), "writing an incident change failed; keeping it queued");
                    }
                    break;
                }
            }
        }
        self.stats
            .incident_writes_pending
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
        if wrote_events {
            self.wake.notify_one();
        }
        stored
    }

    async fn publish(&mut self) {
        let now = self.clock.now();
        let (mut snap, changes) = self.state.evaluate(now);
        self.queue(changes, now);
        // After the changes: an entry made by time alone in the same
        // evaluation must not be written before the change it follows.
        let owed = self.state.take_entry_writes();
        self.queue_writes(owed);
        if self.persist().await {
            self.state.fill_incidents(&mut snap, now);
        }
        match self.store.outbox_depth().await {
            Ok(d) => snap.queue_depth = d.into_iter().collect(),
            Err(e) => tracing::warn!(error = %e, "reading the outbox depth failed"),
        }
        self.dirty = false;
        self.last_publish = Some(tokio::time::Instant::now());
        // Replaced even while no handle is left to read it (at shutdown).
        self.snapshot.send_replace(Arc::new(snap));
    }

    /// The state-file watch (see the module docs).
    async fn check_store_file(&mut self) {
        let problem = self.store.file_problem().await;
        match &problem {
            Some(p) => {
                let due = self
                    .store_problem_logged
                    .is_none_or(|t| t.elapsed() >= STORE_PROBLEM_LOG_EVERY);
                if due {
                    self.store_problem_logged = Some(tokio::time::Instant::now());
                    tracing::error!(
                        path = %self.store.path().display(),
                        "{p}. /readyz fails until this is fixed; probing continues. \
                         Stop sentinel with SIGTERM: it then saves what it holds next to the path \
                         (the log names the file); put that file, or a backup, at the path and start again"
                    );
                }
            }
            None => {
                if self.stats.store_file_problem().is_some() {
                    tracing::info!(path = %self.store.path().display(), "the state file is back at its path");
                }
                self.store_problem_logged = None;
            }
        }
        self.stats.set_store_file_problem(problem);
    }

    async fn prune(&mut self) {
        let now = self.clock.now().as_second();
        let cfg = &self.state.cfg;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let minute_before = now.saturating_sub(secs(cfg.storage.minute_retention));
        let hour_before = now.saturating_sub(secs(cfg.storage.retention));
        if let Err(e) = self.store.prune(minute_before, hour_before).await {
            tracing::warn!(error = %e, "pruning old buckets failed");
        }
        if let Err(e) = self.store.prune_incidents(hour_before).await {
            tracing::warn!(error = %e, "pruning old incidents failed");
        }
        let window_start = now.saturating_sub(secs(incident_window(cfg)));
        if let Ok(ts) = Timestamp::from_second(window_start) {
            self.state.mttx.prune(ts);
        }
        // Incidents no longer held make no more entries; open ones (held by
        // their service's state machine) still will.
        let state = &mut self.state;
        let keep: std::collections::HashSet<String> = state
            .mttx
            .incidents()
            .map(|i| i.id.clone())
            .chain(
                state
                    .incidents
                    .values()
                    .filter_map(|m| m.open_incident().map(|i| i.id.clone())),
            )
            .collect();
        state.totals.retain_incidents(|id| keep.contains(id));
    }

    async fn flush_counts(&mut self) {
        let deltas = self.state.take_pending();
        if deltas.is_empty() {
            self.stats.pending_deltas.store(0, Ordering::Relaxed);
            return;
        }
        if let Err(e) = self.store.add_counts(deltas.clone()).await {
            let n = self
                .stats
                .store_write_errors
                .fetch_add(1, Ordering::Relaxed);
            // Log the first failure and then every 60th, so a full disk does not flood the log.
            if n.is_multiple_of(60) {
                tracing::error!(error = %e, deltas = deltas.len(), "writing run counts failed; keeping them in memory and retrying");
            }
            self.state.requeue(deltas);
        }
        self.stats
            .pending_deltas
            .store(self.state.pending_len() as u64, Ordering::Relaxed);
    }
}
