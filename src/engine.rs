//! The engine: single owner of SLO state. Consumes finished runs, keeps one
//! [`ServiceSlo`] per service, persists run counts to the store, and publishes
//! an immutable [`Snapshot`] that `/metrics` and the API read.
//!
//! Architecture invariants:
//! - Only the engine task mutates SLO state; HTTP handlers read `Arc<Snapshot>`.
//! - Runs inside a maintenance window are not valid: they reach neither the
//!   SLO math nor the store.
//! - Counts are persisted as (service, check, minute) deltas every
//!   [`EngineOptions::flush_every`]; the store adds each delta to its minute
//!   row and to the hour row containing it, in one transaction. A failed write
//!   (full disk) keeps the deltas for the next attempt and is counted; the
//!   daemon keeps probing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, SloWindow};
use crate::metrics::{Expo, MetricType};
use crate::slo::{self, AlertState, Counts, Figures, Resolution, ServiceSlo, SloFigures};
use crate::store::{BucketDelta, BucketRow, Store};

/// One finished run, as the engine needs it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub service: Arc<str>,
    pub check: Arc<str>,
    /// Wall time the run finished.
    pub at: Timestamp,
    pub good: bool,
    pub latency: Duration,
}

/// What the engine publishes for readers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at: Option<Timestamp>,
    pub services: Vec<ServiceView>,
}

#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    /// `None` for a service without an `slo:` block.
    pub figures: Option<Figures>,
    pub alerts: AlertState,
    pub in_maintenance: bool,
}

/// Timing knobs; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    pub flush_every: Duration,
    pub snapshot_every: Duration,
    pub prune_every: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            snapshot_every: Duration::from_secs(2),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// Counters about the engine itself, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub store_write_errors: AtomicU64,
    /// Deltas waiting for the store (non-zero while the disk is full).
    pub pending_deltas: AtomicU64,
    pub runs_recorded: AtomicU64,
    pub runs_in_maintenance: AtomicU64,
}

/// The SLO state, without IO: testable on a manual clock.
pub struct EngineState {
    cfg: Arc<Config>,
    slos: HashMap<String, ServiceSlo>,
    pending: HashMap<(Arc<str>, Arc<str>, i64), Counts>,
}

/// Whether `service` is inside a maintenance window at `at`.
pub fn in_maintenance(cfg: &Config, service: &str, at: Timestamp) -> bool {
    cfg.maintenance
        .iter()
        .any(|m| m.start <= at && at < m.end && m.services.iter().any(|s| s == service))
}

/// How far back (unix seconds) minute and hour buckets must be loaded at `now`
/// to rebuild every service's SLO state.
pub fn load_bounds(cfg: &Config, now: Timestamp) -> (i64, i64) {
    const HOUR: i64 = 3600;
    let now_s = now.as_second();
    let longest = cfg
        .services
        .iter()
        .filter_map(|s| s.slo.as_ref())
        .map(|s| match s.window {
            SloWindow::Rolling(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            SloWindow::Month => 31 * 86_400,
        })
        .max()
        .unwrap_or(0)
        .max(3 * 86_400);
    let minutes = i64::try_from(slo::MINUTE_RING_SPAN.as_secs()).unwrap_or(6 * HOUR);
    (
        now_s.saturating_sub(minutes).saturating_sub(HOUR),
        now_s.saturating_sub(longest).saturating_sub(HOUR),
    )
}

impl EngineState {
    pub fn new(cfg: Arc<Config>) -> Self {
        let slos = cfg
            .services
            .iter()
            .filter_map(|s| {
                s.slo
                    .as_ref()
                    .map(|slo| (s.name.clone(), ServiceSlo::new(slo)))
            })
            .collect();
        Self {
            cfg,
            slos,
            pending: HashMap::new(),
        }
    }

    /// Restore persisted buckets (rows of services without an SLO are ignored).
    pub fn restore(&mut self, rows: &[BucketRow]) {
        for r in rows {
            if let Some(s) = self.slos.get_mut(&r.service) {
                s.add_bucket(r.resolution, r.start, r.counts);
            }
        }
    }

    /// Account one finished run. Returns false when it fell in maintenance.
    pub fn on_run(&mut self, run: &RunRecord) -> bool {
        if in_maintenance(&self.cfg, &run.service, run.at) {
            return false;
        }
        let threshold = self
            .slos
            .get(&*run.service)
            .and_then(|s| s.slo().latency)
            .map(|l| l.threshold);
        let latency_good = run.good && threshold.is_none_or(|t| run.latency <= t);
        if let Some(s) = self.slos.get_mut(&*run.service) {
            s.record(run.at, run.good, latency_good);
        }
        let minute = slo::bucket_start(Resolution::Minute, run.at);
        let c = self
            .pending
            .entry((Arc::clone(&run.service), Arc::clone(&run.check), minute))
            .or_default();
        c.valid += 1;
        c.good += u64::from(run.good);
        c.latency_good += u64::from(latency_good);
        true
    }

    /// Deltas to persist; the caller hands them back with [`Self::requeue`] if the write fails.
    pub fn take_pending(&mut self) -> Vec<BucketDelta> {
        self.pending
            .drain()
            .map(|((service, check, at_minute), counts)| BucketDelta {
                service: service.to_string(),
                check: check.to_string(),
                at_minute,
                counts,
            })
            .collect()
    }

    pub fn requeue(&mut self, deltas: Vec<BucketDelta>) {
        for d in deltas {
            let c = self
                .pending
                .entry((
                    Arc::from(d.service.as_str()),
                    Arc::from(d.check.as_str()),
                    d.at_minute,
                ))
                .or_default();
            c.valid += d.counts.valid;
            c.good += d.counts.good;
            c.latency_good += d.counts.latency_good;
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Figures of every service at `now`, in config order.
    pub fn snapshot(&self, now: Timestamp) -> Snapshot {
        let services = self
            .cfg
            .services
            .iter()
            .map(|svc| {
                let figures = self.slos.get(&svc.name).map(|s| s.figures(now));
                let alerts = figures.as_ref().map(slo::burn_alerts).unwrap_or_default();
                ServiceView {
                    name: svc.name.clone(),
                    figures,
                    alerts,
                    in_maintenance: in_maintenance(&self.cfg, &svc.name, now),
                }
            })
            .collect();
        Snapshot {
            at: Some(now),
            services,
        }
    }

    /// Adopt a reloaded config. Services whose SLO definition changed need
    /// their history re-read: returns their names (the caller reloads from the store).
    pub fn reconfigure(&mut self, cfg: Arc<Config>) -> Vec<String> {
        let mut rebuild = Vec::new();
        let mut slos = HashMap::new();
        for svc in &cfg.services {
            let Some(new) = svc.slo.as_ref() else {
                continue;
            };
            match self.slos.remove(&svc.name) {
                Some(old) if old.slo() == new => {
                    slos.insert(svc.name.clone(), old);
                }
                _ => {
                    slos.insert(svc.name.clone(), ServiceSlo::new(new));
                    rebuild.push(svc.name.clone());
                }
            }
        }
        self.slos = slos;
        self.cfg = cfg;
        rebuild
    }

    /// Re-read history for `services` from `rows` (after a reconfigure).
    pub fn restore_only(&mut self, services: &[String], rows: &[BucketRow]) {
        for r in rows {
            if services.contains(&r.service)
                && let Some(s) = self.slos.get_mut(&r.service)
            {
                s.add_bucket(r.resolution, r.start, r.counts);
            }
        }
    }
}

/// Messages to the engine task.
pub enum EngineMsg {
    Run(RunRecord),
    Reconfigure(Arc<Config>),
}

/// What the rest of the daemon holds: a sender and the latest snapshot.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<EngineMsg>,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    pub stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub fn send(&self, msg: EngineMsg) {
        // The receiver only goes away at shutdown, when runs no longer matter.
        let _ = self.tx.send(msg);
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

/// Loads state from the store and spawns the engine task. Returns once the
/// state is loaded (so `/readyz` can flip), with the task's join handle.
pub async fn start(
    cfg: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    shutdown: CancellationToken,
) -> Result<(EngineHandle, tokio::task::JoinHandle<()>), crate::store::StoreError> {
    let now = clock.now();
    let (since_min, since_hour) = load_bounds(&cfg, now);
    let rows = store.load_buckets(since_min, since_hour).await?;
    let mut state = EngineState::new(Arc::clone(&cfg));
    state.restore(&rows);
    tracing::info!(buckets = rows.len(), "SLO state restored from the store");
    let snapshot = Arc::new(RwLock::new(Arc::new(state.snapshot(now))));
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(EngineStats::default());
    let handle = EngineHandle {
        tx,
        snapshot: Arc::clone(&snapshot),
        stats: Arc::clone(&stats),
    };
    let task = tokio::spawn(run_loop(
        state, store, clock, opts, rx, snapshot, stats, shutdown,
    ));
    Ok((handle, task))
}

#[allow(clippy::too_many_arguments)]
async fn run_loop(
    mut state: EngineState,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    mut rx: mpsc::UnboundedReceiver<EngineMsg>,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    stats: Arc<EngineStats>,
    shutdown: CancellationToken,
) {
    let mut flush = tokio::time::interval(opts.flush_every);
    let mut publish = tokio::time::interval(opts.snapshot_every);
    let mut prune = tokio::time::interval(opts.prune_every);
    for t in [&mut flush, &mut publish, &mut prune] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            msg = rx.recv() => match msg {
                Some(EngineMsg::Run(run)) => {
                    if state.on_run(&run) {
                        stats.runs_recorded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        stats.runs_in_maintenance.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(EngineMsg::Reconfigure(cfg)) => {
                    flush_pending(&mut state, &store, &stats).await;
                    let rebuild = state.reconfigure(Arc::clone(&cfg));
                    if !rebuild.is_empty() {
                        let (m, h) = load_bounds(&cfg, clock.now());
                        match store.load_buckets(m, h).await {
                            Ok(rows) => state.restore_only(&rebuild, &rows),
                            Err(e) => tracing::error!(error = %e, "reloading SLO history after a config change failed"),
                        }
                    }
                }
                None => break,
            },
            _ = flush.tick() => flush_pending(&mut state, &store, &stats).await,
            _ = publish.tick() => {
                let snap = Arc::new(state.snapshot(clock.now()));
                match snapshot.write() {
                    Ok(mut g) => *g = snap,
                    Err(p) => *p.into_inner() = snap,
                }
            }
            _ = prune.tick() => {
                let now = clock.now().as_second();
                let cfg = &state.cfg;
                let minute_before = now.saturating_sub(i64::try_from(cfg.storage.minute_retention.as_secs()).unwrap_or(i64::MAX));
                let hour_before = now.saturating_sub(i64::try_from(cfg.storage.retention.as_secs()).unwrap_or(i64::MAX));
                if let Err(e) = store.prune(minute_before, hour_before).await {
                    tracing::warn!(error = %e, "pruning old buckets failed");
                }
            }
        }
    }
    // Drain what is already queued, then write it: a clean stop loses nothing.
    while let Ok(msg) = rx.try_recv() {
        if let EngineMsg::Run(run) = msg {
            state.on_run(&run);
        }
    }
    flush_pending(&mut state, &store, &stats).await;
}

async fn flush_pending(state: &mut EngineState, store: &Store, stats: &EngineStats) {
    let deltas = state.take_pending();
    if deltas.is_empty() {
        stats.pending_deltas.store(0, Ordering::Relaxed);
        return;
    }
    if let Err(e) = store.add_counts(deltas.clone()).await {
        let n = stats.store_write_errors.fetch_add(1, Ordering::Relaxed);
        // Log the first failure and then every 60th, so a full disk does not flood the log.
        if n.is_multiple_of(60) {
            tracing::error!(error = %e, deltas = deltas.len(), "writing run counts failed; keeping them in memory and retrying");
        }
        state.requeue(deltas);
    }
    stats
        .pending_deltas
        .store(state.pending_len() as u64, Ordering::Relaxed);
}

/// The availability SLO and, when configured, the latency SLO, with their `slo` label.
fn each(f: &Figures) -> impl Iterator<Item = (&'static str, &SloFigures)> {
    std::iter::once(&f.availability)
        .chain(f.latency.as_ref())
        .map(|s| (s.kind.label(), s))
}

/// The `sentinel_slo_*` families (SPEC §3) from a snapshot.
pub fn render_slo(out: &mut Expo, snap: &Snapshot) {
    let with_slo: Vec<(&str, &Figures)> = snap
        .services
        .iter()
        .filter_map(|s| s.figures.as_ref().map(|f| (s.name.as_str(), f)))
        .collect();
    out.family(
        "sentinel_slo_objective_ratio",
        "SLO target as a ratio.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_objective_ratio",
                &[("service", svc), ("slo", kind)],
                s.objective,
            );
        }
    }
    out.family(
        "sentinel_slo_sli_ratio",
        "Good over valid runs over the window (absent with no valid runs).",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            for b in &s.burn {
                if let Some(v) = b.sli {
                    out.sample(
                        "sentinel_slo_sli_ratio",
                        &[("service", svc), ("slo", kind), ("window", b.window)],
                        v,
                    );
                }
            }
            if let Some(v) = s.sli {
                out.sample(
                    "sentinel_slo_sli_ratio",
                    &[("service", svc), ("slo", kind), ("window", &f.window_label)],
                    v,
                );
            }
        }
    }
    out.family(
        "sentinel_slo_error_budget_remaining_ratio",
        "1 - (bad/valid)/(1 - objective) over the SLO window; negative when overspent.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_error_budget_remaining_ratio",
                &[("service", svc), ("slo", kind)],
                s.error_budget_remaining_ratio,
            );
        }
    }
    out.family(
        "sentinel_slo_error_budget_remaining_seconds",
        "Remaining error budget as downtime: remaining ratio x (1 - objective) x window length.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_error_budget_remaining_seconds",
                &[("service", svc), ("slo", kind)],
                s.error_budget_remaining_seconds,
            );
        }
    }
    out.family(
        "sentinel_slo_burn_rate",
        "(bad/valid over the window)/(1 - objective).",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            for b in &s.burn {
                out.sample(
                    "sentinel_slo_burn_rate",
                    &[("service", svc), ("slo", kind), ("window", b.window)],
                    b.burn_rate,
                );
            }
        }
    }
    out.family(
        "sentinel_slo_burn_alert",
        "1 while the multiwindow multi-burn-rate alert of this severity fires.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        let _ = f;
        let view = snap.services.iter().find(|s| s.name == *svc);
        let a = view.map(|v| v.alerts).unwrap_or_default();
        out.sample(
            "sentinel_slo_burn_alert",
            &[("service", svc), ("severity", "page")],
            f64::from(u8::from(a.page)),
        );
        out.sample(
            "sentinel_slo_burn_alert",
            &[("service", svc), ("severity", "ticket")],
            f64::from(u8::from(a.ticket)),
        );
    }
}

/// Engine/store health families.
pub fn render_engine_stats(out: &mut Expo, stats: &EngineStats) {
    out.family(
        "sentinel_store_write_errors_total",
        "Failed writes of run counts to the state store (e.g. disk full); counts are kept and retried.",
        MetricType::Counter,
    );
    out.sample_u64(
        "sentinel_store_write_errors_total",
        &[],
        stats.store_write_errors.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_store_pending_deltas",
        "Run-count deltas waiting to be written to the store.",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_store_pending_deltas",
        &[],
        stats.pending_deltas.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_runs_in_maintenance_total",
        "Runs that fell in a maintenance window and count toward nothing.",
        MetricType::Counter,
    );
    out.sample_u64(
        "sentinel_runs_in_maintenance_total",
        &[],
        stats.runs_in_maintenance.load(Ordering::Relaxed),
    );
}
