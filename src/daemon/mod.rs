//! `sentinel run`: wires config → scheduler → probes → metrics/engine → HTTP.
//!
//! Start-up order matters: the config is already validated (a bad file never
//! binds a port); then the caller opens the state store and binds the HTTP
//! listener (state first, so a corrupt store fails before any port is bound,
//! and a port clash fails fast with exit 1), and hands both to [`run`] with
//! the clock and the shutdown token. `/readyz` flips to ready once state is
//! loaded and checks are scheduled. Only then is `sentinel listening` logged,
//! with the SIGHUP handler already installed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Check, Config};
use crate::engine::{self, EngineHandle, EngineMsg, EngineOptions, RunRecord};
use crate::http::server::{ConnectionStats, DescriptorBudget, ServerLimits};
use crate::http::{AppState, Health, ReloadReply};
use crate::metrics::checks::{Transition, short_detail};
use crate::metrics::{CheckMetrics, CheckSlot, StartLag};
use crate::notify::worker::Worker;
use crate::probe::{Outcome, Prober, Reason};
use crate::scheduler::{CheckId, Probe, RunEvent, RunSink, Scheduler};
use crate::store::Store;

/// Adapts the real prober to the scheduler's [`Probe`] trait.
struct RealProbe(Prober);

impl Probe for RealProbe {
    fn run(&self, check: &Arc<Check>) -> impl std::future::Future<Output = Outcome> + Send {
        self.0.run(check)
    }
}

/// Records each run into its check's metrics slot (held by the check's
/// task) and hands it to the engine.
struct Sink {
    checks: Arc<CheckMetrics>,
    start_lag: Arc<StartLag>,
    clock: Arc<dyn Clock>,
    engine: EngineHandle,
}

impl RunSink for Sink {
    /// `None` only for a check the metrics registry does not hold, which
    /// `sync` order rules out (the registry is synced first).
    type Bound = Option<Arc<CheckSlot>>;

    fn bind(&self, id: &CheckId) -> Self::Bound {
        self.checks.slot(&id.service, &id.check)
    }

    fn deliver(&self, slot: &Self::Bound, event: RunEvent) {
        match event {
            RunEvent::Finished {
                id,
                scheduled,
                started,
                outcome,
            } => {
                self.start_lag
                    .record(started.saturating_duration_since(scheduled));
                let now = self.clock.now();
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
                self.engine.send(EngineMsg::Run(RunRecord {
                    service: Arc::clone(&id.service),
                    check: Arc::clone(&id.check),
                    at: now,
                    good: outcome.good(),
                    latency: outcome.latency,
                    detail: outcome.detail,
                }));
            }
            RunEvent::Skipped { id, .. } => {
                if let Some(slot) = slot {
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

/// `sentinel run` on the system clock: opens the state store, then binds
/// `server.listen`, then [`run`]s until `shutdown` is cancelled.
pub async fn open_and_run(
    config_path: PathBuf,
    cfg: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // State before the port: a corrupt or unwritable store stops start-up
    // with its own message, and nothing is listening meanwhile.
    let store = Store::open(&cfg.storage.path)?;
    let listener = crate::http::server::bind(cfg.server.listen)
        .with_context(|| format!("binding server.listen {}", cfg.server.listen))?;
    run(
        config_path,
        cfg,
        store,
        listener,
        Arc::new(SystemClock),
        shutdown,
    )
    .await
}

/// Runs the daemon on `listener` until `shutdown` is cancelled, reading wall
/// time from `clock`. Errors are start-up failures (state not loadable);
/// once running, failures are logged and counted. `config_path` is re-read
/// on reload.
pub async fn run(
    config_path: PathBuf,
    cfg: Config,
    store: Store,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let limits = descriptor_budget(&cfg);
    let prober = Prober::new().context("initialising probes")?;
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
    let worker = Worker::new(
        store.clone(),
        &cfg.notifiers,
        crate::notify::Secrets::from_env(&cfg.notifiers),
        client.clone(),
        Arc::clone(&clock),
    );
    // Ticket keys known from earlier runs, before anything is delivered.
    let desk = crate::notify::tickets::Desk::load(store.clone(), Arc::clone(&clock))
        .await
        .context("loading stored tickets")?;
    worker.set_tickets(Arc::new(desk));
    let tickets = worker.tickets().book();
    let deliveries = worker.stats();
    let worker_task = tokio::spawn(supervise_worker(
        worker.clone(),
        shutdown.clone(),
        Arc::clone(&wake),
    ));
    // Before anything announces the daemon: a SIGHUP sent as soon as the
    // "listening" line appears must reload, not kill (the default action).
    let mut hup = sighup()?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;

    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(4);
    let checks = Arc::new(CheckMetrics::new());
    checks.sync(&CheckMetrics::checks_of(&cfg));
    checks.set_histograms(cfg.metrics.check_histograms);
    let start_lag = Arc::new(StartLag::new().context("start-lag histogram")?);
    let health = Arc::new(Health::default());
    let (config_tx, config_rx) = watch::channel(Arc::new(cfg.clone()));
    let app = Arc::new(AppState {
        config: config_rx,
        clock: Arc::clone(&clock),
        checks: Arc::clone(&checks),
        engine: engine.clone(),
        deliveries,
        start_lag: Arc::clone(&start_lag),
        tickets,
        store: store.clone(),
        inbound: Arc::new(crate::inbound::InboundStats::default()),
        hook_deliveries: tokio::sync::Mutex::new(()),
        hook_refusals: std::sync::Mutex::new(crate::http::refusal_throttle()),
        http: client,
        connections: Arc::new(ConnectionStats::default()),
        health: Arc::clone(&health),
        reload: reload_tx,
    });
    // The engine owns SLO and incident state; if it dies (a bug), runs are
    // no longer counted, so say so loudly and stop reporting ready.
    let watched = Arc::clone(&health);
    let engine_task = tokio::spawn(async move {
        if let Err(e) = engine_task.await {
            watched.set_engine_dead();
            tracing::error!(error = %e, "engine task died: SLO and incident state are no longer updated; /readyz now fails");
        }
    });

    let server = tokio::spawn(crate::http::server::serve(
        listener,
        crate::http::router(Arc::clone(&app)),
        limits,
        Arc::clone(&app.connections),
        shutdown.clone(),
    ));

    let sink = Arc::new(Sink {
        checks: Arc::clone(&checks),
        start_lag,
        clock: Arc::clone(&clock),
        engine: engine.clone(),
    });
    let scheduler = Scheduler::new(
        Arc::new(RealProbe(prober)),
        sink,
        cfg.server.max_concurrency,
        shutdown.clone(),
    )
    .align_to_wall_clock(clock.now().as_millisecond());
    let mut running = Running {
        config_path,
        config: config_tx,
        checks,
        engine,
        worker,
        health: Arc::clone(&health),
        scheduler,
    };
    let (started, _) = running.scheduler.sync(scheduled_checks(&cfg));
    tracing::info!(
        checks = started,
        services = cfg.services.len(),
        "checks scheduled"
    );
    health.set_ready(true);
    // Announced once ready and reloadable, so whoever waits for this line
    // (an operator, a supervisor, the tests) finds `/readyz` answering 200.
    tracing::info!(listen = %local, config = %running.config_path.display(), "sentinel listening");

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = hup.recv() => {
                let result = running.reload();
                log_reload(&result);
            }
            Some(reply) = reload_rx.recv() => {
                let result = running.reload();
                log_reload(&result);
                let _ = reply.send(result);
            }
        }
    }
    tracing::info!("shutting down: waiting for runs in flight");
    health.set_ready(false);
    let drain = tokio::time::timeout(Duration::from_secs(30), running.scheduler.shutdown()).await;
    if drain.is_err() {
        tracing::warn!("runs still in flight after 30s; exiting anyway");
    }
    engine_stop.cancel();
    let _ = engine_task.await;
    if let Err(e) = worker_task.await {
        tracing::error!(error = %e, "notifier worker panicked");
    }
    if let Some(problem) = store.file_problem().await {
        save_detached_store(&store, &problem, clock.now()).await;
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
async fn save_detached_store(store: &Store, problem: &str, now: jiff::Timestamp) {
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
    worker: Worker<Store>,
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

fn log_reload(result: &ReloadReply) {
    match result {
        Ok(()) => tracing::info!("config reloaded"),
        Err(e) => tracing::error!(errors = %e, "config reload refused; the running config stays"),
    }
}

/// What the daemon loop owns once running: the writers a reload updates.
struct Running {
    config_path: PathBuf,
    /// Publishes the running config to the HTTP handlers.
    config: watch::Sender<Arc<Config>>,
    checks: Arc<CheckMetrics>,
    engine: EngineHandle,
    worker: Worker<Store>,
    health: Arc<Health>,
    scheduler: Scheduler<RealProbe, Sink>,
}

impl Running {
    /// Reload the config file: a bad file is refused (its errors returned)
    /// and the running config stays; checks whose definition did not change
    /// keep their schedule and counters.
    fn reload(&mut self) -> ReloadReply {
        let new = match config::load_for_run(&self.config_path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("config: {w}");
                }
                loaded.config
            }
            Err(e) => {
                self.health.set_last_reload_ok(false);
                return Err(e);
            }
        };
        let old = Arc::clone(&self.config.borrow());
        for key in restart_only_changes(&old, &new) {
            tracing::warn!(
                key,
                "{key} changed; the running daemon keeps the old value until the next restart"
            );
        }
        // Slots first: a check task the scheduler starts below binds its slot.
        self.checks.sync(&CheckMetrics::checks_of(&new));
        self.checks.set_histograms(new.metrics.check_histograms);
        let new = Arc::new(new);
        self.engine.send(EngineMsg::Reconfigure(Arc::clone(&new)));
        self.worker.set_notifiers(
            &new.notifiers,
            crate::notify::Secrets::from_env(&new.notifiers),
        );
        let (started, stopped) = self.scheduler.sync(scheduled_checks(&new));
        tracing::info!(started, stopped, "checks rescheduled");
        self.config.send_replace(new);
        self.health.set_last_reload_ok(true);
        Ok(())
    }
}

#[cfg(unix)]
/// The keys a reload cannot apply to a running daemon (the listener, the
/// runtime, the probe semaphore and the state file are built once at start)
/// whose value differs between `old` and `new`.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    [
        ("server.listen", o.listen != n.listen),
        (
            "server.max_connections",
            o.max_connections != n.max_connections,
        ),
        ("server.read_timeout", o.read_timeout != n.read_timeout),
        (
            "server.worker_threads",
            o.worker_threads != n.worker_threads,
        ),
        (
            "server.max_concurrency",
            o.max_concurrency != n.max_concurrency,
        ),
        ("storage.path", old.storage.path != new.storage.path),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

fn sighup() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing SIGHUP handler")
}

/// Probes per second below which the daemon runs on one worker thread
/// when `server.worker_threads` is unset. One thread then does the work of
/// two for a third less CPU: a second worker adds work-stealing and
/// cross-thread wake-ups to every probe (measured: 70-76 against 96-119
/// CPU-ms per 1 000 probes at 1 000/s), and below this rate one core is
/// far from busy. Above it, the runtime gets one worker per CPU.
pub const ONE_WORKER_BELOW_PER_SECOND: f64 = 5000.0;

/// Probes per second the configuration schedules (every check's runs per
/// second, summed).
pub fn probe_rate(cfg: &Config) -> f64 {
    cfg.services
        .iter()
        .flat_map(|s| &s.checks)
        .map(|c| 1e9 / (c.interval.as_nanos().max(1) as f64))
        .sum()
}

/// Worker threads of the daemon's runtime: `server.worker_threads`, else
/// one below [`ONE_WORKER_BELOW_PER_SECOND`] probes/s, else `cpus`.
/// Decided at start (a reload does not resize the runtime).
pub fn runtime_workers(cfg: &Config, cpus: usize) -> usize {
    match cfg.server.worker_threads {
        Some(n) => n,
        None if probe_rate(cfg) < ONE_WORKER_BELOW_PER_SECOND => 1,
        None => cpus.max(1),
    }
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

#[cfg(test)]
mod hook_tests;
#[cfg(test)]
mod tests;
