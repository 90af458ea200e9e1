//! `sentinel run`: wires config → scheduler → probes → metrics/engine → HTTP.
//!
//! Start-up order matters: the config is already validated (a bad file never
//! binds a port); then state is opened, the HTTP listener is bound (so a
//! port clash fails fast with exit 1), checks start, and `/readyz` flips to
//! ready once state is loaded. Only then is `sentinel listening` logged, with
//! the SIGHUP handler already installed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Check, Config};
use crate::engine::{self, EngineHandle, EngineMsg, EngineOptions, RunRecord};
use crate::http::server::{ConnectionStats, DescriptorBudget, ServerLimits};
use crate::metrics::checks::{Transition, short_detail};
use crate::metrics::{CheckMetrics, Expo};
use crate::probe::{Outcome, Prober, Reason};
use crate::scheduler::{CheckId, Probe, RunEvent, RunSink, Scheduler};

/// State shared between the daemon's tasks and the HTTP handlers.
pub struct Shared {
    pub config: RwLock<Arc<Config>>,
    pub config_path: PathBuf,
    pub metrics: Arc<CheckMetrics>,
    /// Scheduler start lag (actual − scheduled start) in microseconds since start.
    pub start_lag: Mutex<Histogram<u64>>,
    /// `/readyz` latch: set once state is loaded and checks are scheduled,
    /// cleared at shutdown.
    pub ready: AtomicBool,
    /// Set when the engine task has died (a bug): `/readyz` fails for good.
    pub engine_dead: AtomicBool,
    pub last_reload_ok: AtomicBool,
    pub clock: Arc<dyn Clock>,
    pub engine: EngineHandle,
    /// Delivery counters of the outbox worker.
    pub deliveries: Arc<crate::notify::worker::DeliveryStats>,
    /// The incidents' external tickets (ServiceNow, Jira, Opsgenie).
    pub tickets: crate::tickets::Book,
    /// Open HTTP connections and their cap.
    pub connections: Arc<ConnectionStats>,
    /// Asks the daemon loop to reload the config (from `/-/reload` or SIGHUP);
    /// the reply says whether it worked.
    pub reload_tx: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

impl Shared {
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// `Ok` when `/readyz` should answer 200; otherwise why not. Ready means
    /// state is loaded, checks are scheduled, the engine runs, and the state
    /// file at `storage.path` is the one being written.
    pub fn readiness(&self) -> Result<(), String> {
        if self.engine_dead.load(Ordering::Acquire) {
            return Err(
                "the engine task stopped: SLO and incident state are no longer updated; \
                 restart sentinel"
                    .to_string(),
            );
        }
        if !self.ready.load(Ordering::Acquire) {
            return Err("not ready: starting up or shutting down".to_string());
        }
        if let Some(problem) = self.engine.stats.store_file_problem() {
            return Err(problem);
        }
        Ok(())
    }

    /// The whole `/metrics` body.
    pub fn render_metrics(&self) -> String {
        let now = self.clock.now().as_second();
        let mut out = Expo::with_capacity(256 * 1024);
        self.metrics.render(&mut out, now);
        let snap = self.engine.snapshot();
        let config = self.config();
        engine::render_slo(&mut out, &snap);
        engine::render_incidents(&mut out, &snap, &config, &self.deliveries);
        engine::render_config_info(&mut out, &config);
        engine::render_engine_stats(&mut out, &self.engine.stats);
        self.render_start_lag(&mut out);
        self.connections.render(&mut out);
        crate::metrics::render_process(
            &mut out,
            env!("CARGO_PKG_VERSION"),
            self.last_reload_ok.load(Ordering::Relaxed),
        );
        out.into_string()
    }

    fn render_start_lag(&self, out: &mut Expo) {
        let h = match self.start_lag.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        out.family(
            "sentinel_scheduler_start_lag_seconds",
            "Actual minus scheduled start of check runs since the daemon started.",
            crate::metrics::MetricType::Summary,
        );
        for (q, label) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")] {
            let v = if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1e6
            };
            out.sample(
                "sentinel_scheduler_start_lag_seconds",
                &[("quantile", label)],
                v,
            );
        }
        // HDR keeps no exact sum; the mean × count is exact to the histogram's precision.
        out.sample(
            "sentinel_scheduler_start_lag_seconds_sum",
            &[],
            h.mean() * h.len() as f64 / 1e6,
        );
        out.sample_u64("sentinel_scheduler_start_lag_seconds_count", &[], h.len());
    }
}

/// Adapts the real prober to the scheduler's [`Probe`] trait.
struct RealProbe(Prober);

impl Probe for RealProbe {
    fn run(&self, check: &Arc<Check>) -> impl std::future::Future<Output = Outcome> + Send {
        self.0.run_shared(Arc::clone(check))
    }
}

/// Records each run into its metrics slot.
struct Sink {
    shared: Arc<Shared>,
}

impl RunSink for Sink {
    fn deliver(&self, event: RunEvent) {
        match event {
            RunEvent::Finished {
                id,
                scheduled,
                started,
                outcome,
            } => {
                let lag = started.saturating_duration_since(scheduled);
                if let Ok(mut h) = self.shared.start_lag.lock() {
                    // Saturates at the histogram's top (60 s) instead of failing.
                    h.saturating_record(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
                }
                let now = self.shared.clock.now();
                let slot = self.shared.metrics.slot(&id.service, &id.check);
                if outcome.is_local() {
                    // This host failed, not the target: counted and logged,
                    // but not a run, so it never reaches the SLOs or the
                    // incident streaks.
                    if let Some(slot) = slot {
                        slot.record(&outcome, now.as_second());
                        if let Some(unlogged) =
                            slot.local_error_log_due(tokio::time::Instant::now())
                        {
                            tracing::warn!(
                                service = %id.service,
                                check = %id.check,
                                detail = %outcome.detail,
                                not_logged_since_last = unlogged,
                                "check run has no verdict: local error on this host, not a failure of the target (counted in sentinel_check_local_errors_total only)"
                            );
                        }
                    }
                    return;
                }
                let transition = slot
                    .as_ref()
                    .and_then(|slot| slot.record(&outcome, now.as_second()));
                log_transition(&id, &outcome, transition);
                if let Some(reason) = outcome.reason {
                    tracing::debug!(service = %id.service, check = %id.check, reason = reason.as_str(), detail = %outcome.detail, "check failed");
                }
                self.shared.engine.send(EngineMsg::Run(RunRecord {
                    service: Arc::clone(&id.service),
                    check: Arc::clone(&id.check),
                    at: now,
                    good: outcome.good(),
                    latency: outcome.latency,
                    detail: outcome.detail,
                }));
            }
            RunEvent::Skipped { id, .. } => {
                if let Some(slot) = self.shared.metrics.slot(&id.service, &id.check) {
                    slot.record_skipped();
                }
                tracing::warn!(service = %id.service, check = %id.check, "run skipped: previous run still going");
            }
        }
    }
}

/// One INFO line per up/down change of a check, not one per run.
fn log_transition(id: &CheckId, outcome: &Outcome, transition: Option<Transition>) {
    let detail = short_detail(&outcome.detail);
    match transition {
        None => {}
        Some(Transition::Down) => tracing::info!(
            service = %id.service,
            check = %id.check,
            reason = outcome.reason.map_or("", Reason::as_str),
            detail = %detail,
            "check down"
        ),
        Some(Transition::Up { was, down_since }) => tracing::info!(
            service = %id.service,
            check = %id.check,
            was = was.as_str(),
            down_since = %jiff::Timestamp::from_second(down_since).map_or_else(|_| down_since.to_string(), |t| t.to_string()),
            detail = %detail,
            "check up"
        ),
    }
}

fn scheduled_checks(cfg: &Config) -> Vec<(CheckId, Check)> {
    let mut out = Vec::new();
    for svc in &cfg.services {
        let service: Arc<str> = Arc::from(svc.name.as_str());
        for c in &svc.checks {
            out.push((
                CheckId {
                    service: Arc::clone(&service),
                    check: Arc::from(c.name.as_str()),
                },
                c.clone(),
            ));
        }
    }
    out
}

/// Runs until `shutdown` is cancelled. Errors are start-up failures (port in
/// use, state not loadable); once running, failures are logged and counted.
pub async fn run(
    config_path: PathBuf,
    cfg: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = descriptor_budget(&cfg);
    let prober = Prober::new().context("initialising probes")?;
    // State before the port: a corrupt or unwritable store stops start-up
    // with its own message, and nothing is listening meanwhile.
    let store = crate::store::Store::open(&cfg.storage.path)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let wake = Arc::new(tokio::sync::Notify::new());
    // The engine stops only after the scheduler has drained, so the runs in
    // flight at shutdown are still counted and flushed.
    let engine_stop = CancellationToken::new();
    let (engine, engine_task) = engine::start(
        Arc::new(cfg.clone()),
        store.clone(),
        Arc::clone(&clock),
        EngineOptions::default(),
        Arc::clone(&wake),
        engine_stop.clone(),
    )
    .await?;
    // Webhook deliveries: redirects are not followed (a 3xx is not a
    // delivery), and each attempt has its own timeout.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("sentinel/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the webhook HTTP client")?;
    let worker = crate::notify::worker::Worker::new(
        store.clone(),
        &cfg.notifiers,
        crate::notify::Secrets::from_env(&cfg.notifiers),
        client,
        Arc::clone(&clock),
    );
    // Ticket keys known from earlier runs, before anything is delivered.
    let desk = crate::tickets::Desk::load(store.clone(), Arc::clone(&clock))
        .await
        .context("loading stored tickets")?;
    worker.set_tickets(Arc::new(desk));
    let tickets = worker.tickets().book();
    let deliveries = worker.stats();
    let worker_handle = worker.clone();
    let worker_task = tokio::spawn(supervise_worker(
        worker,
        shutdown.clone(),
        Arc::clone(&wake),
    ));
    // Before anything announces the daemon: a SIGHUP sent as soon as the
    // "listening" line appears must reload, not kill (the default action).
    let mut hup = sighup()?;
    let listener = crate::http::server::bind(cfg.server.listen)
        .with_context(|| format!("binding server.listen {}", cfg.server.listen))?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;

    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
    let metrics = Arc::new(CheckMetrics::new());
    metrics.sync(&CheckMetrics::checks_of(&cfg));
    metrics.set_histograms(cfg.metrics.check_histograms);
    let lag = Histogram::new_with_bounds(1, 60_000_000, 2).context("start-lag histogram")?;
    let shared = Arc::new(Shared {
        config: RwLock::new(Arc::new(cfg.clone())),
        config_path: config_path.clone(),
        metrics,
        start_lag: Mutex::new(lag),
        ready: AtomicBool::new(false),
        engine_dead: AtomicBool::new(false),
        last_reload_ok: AtomicBool::new(true),
        clock,
        engine,
        deliveries,
        tickets,
        connections: Arc::new(ConnectionStats::default()),
        reload_tx,
    });
    // The engine owns SLO and incident state; if it dies (a bug), runs are
    // no longer counted, so say so loudly and stop reporting ready.
    let watched = Arc::clone(&shared);
    let engine_task = tokio::spawn(async move {
        if let Err(e) = engine_task.await {
            watched.engine_dead.store(true, Ordering::Release);
            tracing::error!(error = %e, "engine task died: SLO and incident state are no longer updated; /readyz now fails");
        }
    });

    let app = crate::http::router(Arc::clone(&shared));
    let server = tokio::spawn(crate::http::server::serve(
        listener,
        app,
        limits,
        Arc::clone(&shared.connections),
        shutdown.clone(),
    ));

    let sink = Arc::new(Sink {
        shared: Arc::clone(&shared),
    });
    let mut scheduler = Scheduler::new(
        Arc::new(RealProbe(prober)),
        sink,
        cfg.server.max_concurrency,
        shutdown.clone(),
    )
    .align_to_wall_clock(shared.clock.now().as_millisecond());
    let (started, _) = scheduler.sync(scheduled_checks(&cfg));
    tracing::info!(
        checks = started,
        services = cfg.services.len(),
        "checks scheduled"
    );
    shared.ready.store(true, Ordering::Release);
    // Announced once ready and reloadable, so whoever waits for this line
    // (an operator, a supervisor, the tests) finds `/readyz` answering 200.
    tracing::info!(listen = %local, config = %config_path.display(), "sentinel listening");

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = hup.recv() => {
                let result = reload(&shared, &mut scheduler, &worker_handle);
                log_reload(&result);
            }
            Some(reply) = reload_rx.recv() => {
                let result = reload(&shared, &mut scheduler, &worker_handle);
                log_reload(&result);
                let _ = reply.send(result);
            }
        }
    }
    tracing::info!("shutting down: waiting for runs in flight");
    shared.ready.store(false, Ordering::Release);
    let drain = tokio::time::timeout(Duration::from_secs(30), scheduler.shutdown()).await;
    if drain.is_err() {
        tracing::warn!("runs still in flight after 30s; exiting anyway");
    }
    engine_stop.cancel();
    let _ = engine_task.await;
    if let Err(e) = worker_task.await {
        tracing::error!(error = %e, "notifier worker panicked");
    }
    if let Some(problem) = store.file_problem().await {
        save_detached_store(&store, &problem, shared.clock.now()).await;
    }
    if let Err(e) = store.close().await {
        tracing::warn!(error = %e, "closing the state store");
    }
    if let Err(e) = server.await {
        tracing::error!(error = %e, "http server task panicked");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft descriptor limit to the hard one, shares the descriptors
/// out (probes, store, notifiers, the rest for HTTP connections) and says so.
/// `server.max_connections` overrides the derived cap.
fn descriptor_budget(cfg: &Config) -> ServerLimits {
    let limit = crate::http::server::raise_descriptor_limit();
    let budget = DescriptorBudget::new(limit, cfg.server.max_concurrency, cfg.notifiers.len());
    let max_connections = cfg.server.max_connections.unwrap_or(budget.connections);
    tracing::info!(
        descriptor_limit = limit,
        reserved = budget.reserved,
        max_connections,
        read_timeout = %config::duration::format(cfg.server.read_timeout),
        "descriptor budget"
    );
    if !budget.fits(max_connections) {
        tracing::warn!(
            descriptor_limit = limit,
            reserved = budget.reserved,
            max_connections,
            "the descriptor limit is lower than probes (2 per server.max_concurrency), store, notifiers and HTTP connections may need; under load probes meet local errors (sentinel_check_local_errors_total). Raise the limit (LimitNOFILE=, ulimit -n) or lower server.max_concurrency"
        );
    }
    ServerLimits {
        max_connections,
        read_timeout: cfg.server.read_timeout,
    }
}

/// The state file was deleted or replaced while running: everything since
/// went to the file sentinel still has open, which vanishes when it closes.
/// Save a copy next to the path so the operator can put it back.
async fn save_detached_store(store: &crate::store::Store, problem: &str, now: jiff::Timestamp) {
    let path = store.path();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".orphaned-{}", now.as_second()));
    let dest = PathBuf::from(name);
    match store.copy_to(dest.clone()).await {
        Ok(()) => tracing::error!(
            saved = %dest.display(),
            "{problem}. Saved everything sentinel held to {}: to keep it, move it to {} \
             (after moving aside whatever is there) before starting sentinel again",
            dest.display(),
            path.display()
        ),
        Err(e) => tracing::error!(
            error = %e,
            "{problem}. Saving what sentinel held to {} failed; that state is lost",
            dest.display()
        ),
    }
}

/// Runs the outbox worker and restarts it if it panics: the outbox is in the
/// store, so a restarted worker simply picks up where the last one stopped.
async fn supervise_worker(
    worker: crate::notify::worker::Worker<crate::store::Store>,
    shutdown: CancellationToken,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        let run = tokio::spawn(worker.clone().run(
            shutdown.clone(),
            Arc::clone(&wake),
            Duration::from_secs(1),
        ));
        match run.await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "notifier worker died; restarting in 1s");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

fn log_reload(result: &Result<(), String>) {
    match result {
        Ok(()) => tracing::info!("config reloaded"),
        Err(e) => tracing::error!(errors = %e, "config reload refused; the running config stays"),
    }
}

/// Reload the config file: a bad file is refused (its errors returned) and
/// the running config stays; checks whose definition did not change keep
/// their schedule and counters.
fn reload<P: Probe, S: RunSink>(
    shared: &Shared,
    scheduler: &mut Scheduler<P, S>,
    worker: &crate::notify::worker::Worker<crate::store::Store>,
) -> Result<(), String> {
    let new = match config::load_for_run(&shared.config_path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("config: {w}");
            }
            loaded.config
        }
        Err(e) => {
            shared.last_reload_ok.store(false, Ordering::Relaxed);
            return Err(e.to_string());
        }
    };
    let old = shared.config();
    if new.server.listen != old.server.listen {
        tracing::warn!("server.listen changed; it takes effect at the next restart");
    }
    if new.server.max_connections != old.server.max_connections
        || new.server.read_timeout != old.server.read_timeout
    {
        tracing::warn!(
            "server.max_connections or server.read_timeout changed; it takes effect at the next restart"
        );
    }
    shared.metrics.sync(&CheckMetrics::checks_of(&new));
    shared.metrics.set_histograms(new.metrics.check_histograms);
    shared
        .engine
        .send(EngineMsg::Reconfigure(Arc::new(new.clone())));
    worker.set_notifiers(
        &new.notifiers,
        crate::notify::Secrets::from_env(&new.notifiers),
    );
    let (started, stopped) = scheduler.sync(scheduled_checks(&new));
    tracing::info!(started, stopped, "checks rescheduled");
    match shared.config.write() {
        Ok(mut g) => *g = Arc::new(new),
        Err(p) => *p.into_inner() = Arc::new(new),
    }
    shared.last_reload_ok.store(true, Ordering::Relaxed);
    Ok(())
}

#[cfg(unix)]
fn sighup() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing SIGHUP handler")
}

/// A token cancelled on SIGTERM or SIGINT. Must be called inside the runtime.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot install SIGTERM handler");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = term => tracing::info!("SIGTERM received"),
            r = tokio::signal::ctrl_c() => {
                if r.is_ok() { tracing::info!("SIGINT received") }
            }
        }
        t.cancel();
    });
    token
}
