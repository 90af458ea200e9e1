//! [`AppState`]: what the HTTP handlers read. The daemon builds it from the
//! handles it owns; every field is a published read model (a `watch` value,
//! counters, a snapshot handle) or a channel to the one writer, so handlers
//! never take part in the daemon's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::engine::EngineHandle;
use crate::metrics::{CheckMetrics, ConnectionGauges, Scrape, StartLag};
use crate::notify::worker::DeliveryStats;

use super::server::ConnectionStats;

/// The answer to a reload request: the config's errors when it was refused
/// (the running config stays).
pub type ReloadReply = Result<(), ConfigError>;

/// A reload request from `POST /-/reload`; the daemon answers on the sender.
pub type ReloadRequest = oneshot::Sender<ReloadReply>;

/// Everything the handlers read, cheap to share (`Arc`s and handles).
pub struct AppState {
    /// The running config; the daemon publishes a new one on each reload.
    pub config: watch::Receiver<Arc<Config>>,
    pub clock: Arc<dyn Clock>,
    /// Per-check telemetry (written by the checks' tasks).
    pub checks: Arc<CheckMetrics>,
    /// Snapshots, API commands and the engine's counters.
    pub engine: EngineHandle,
    pub deliveries: Arc<DeliveryStats>,
    /// The incidents' external tickets (ServiceNow, Jira, Opsgenie).
    pub tickets: crate::notify::tickets::Book,
    /// The state store: the inbound hooks remember PagerDuty deliveries
    /// acted on there.
    pub store: crate::store::Store,
    /// Inbound hook requests by provider and result.
    pub inbound: Arc<crate::inbound::InboundStats>,
    /// Held across "seen? → act → remember" of a deduplicated delivery, so
    /// two copies of one PagerDuty delivery arriving together act once.
    pub hook_deliveries: tokio::sync::Mutex<()>,
    /// Refused hook requests are logged at most once a minute (anyone can
    /// send them); `sentinel_inbound_hooks_total` counts every one.
    pub(crate) hook_refusals: std::sync::Mutex<crate::throttle::Throttle>,
    /// Outbound HTTP for the handlers (the Slack follow-up to a button
    /// press); the delivery workers' client (no redirects, a timeout).
    pub http: reqwest::Client,
    pub start_lag: Arc<StartLag>,
    pub connections: Arc<ConnectionStats>,
    pub health: Arc<Health>,
    /// Asks the daemon loop to reload the config.
    pub reload: mpsc::Sender<ReloadRequest>,
}

impl AppState {
    /// The running config.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
    }

    /// `Ok` when `/readyz` should answer 200; otherwise why not. Ready means
    /// state is loaded, checks are scheduled, the engine runs, and the state
    /// file at `storage.path` is the one being written.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if self.health.engine_dead.load(Ordering::Acquire) {
            return Err(NotReady::EngineStopped);
        }
        if !self.health.ready.load(Ordering::Acquire) {
            return Err(NotReady::Starting);
        }
        if let Some(problem) = self.engine.stats.store_file_problem() {
            return Err(NotReady::StateFile(problem));
        }
        Ok(())
    }

    /// The whole `/metrics` body at wall time `now`.
    pub fn render_metrics(&self, now: Timestamp) -> String {
        let config = self.config();
        let snapshot = self.engine.snapshot();
        Scrape {
            now,
            config: &config,
            checks: &self.checks,
            snapshot: &snapshot,
            engine: &self.engine.stats,
            deliveries: &self.deliveries,
            inbound: &self.inbound,
            start_lag: &self.start_lag,
            connections: ConnectionGauges {
                open: self.connections.open(),
                limit: self.connections.limit(),
            },
            last_reload_ok: self.health.last_reload_ok(),
        }
        .render()
    }
}

/// Why `/readyz` fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error(
        "the engine task stopped: SLO and incident state are no longer updated; restart sentinel"
    )]
    EngineStopped,
    #[error("not ready: starting up or shutting down")]
    Starting,
    /// `storage.path` no longer names the file the store writes: what happened.
    #[error("{0}")]
    StateFile(String),
}

/// Facts about the daemon's life that `/readyz` and `/metrics` report; the
/// daemon sets them.
#[derive(Debug)]
pub struct Health {
    /// The `/readyz` latch: set once state is loaded and checks are
    /// scheduled, cleared at shutdown.
    ready: AtomicBool,
    /// Set when the engine task has died (a bug): `/readyz` fails for good.
    engine_dead: AtomicBool,
    last_reload_ok: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            ready: AtomicBool::new(false),
            engine_dead: AtomicBool::new(false),
            last_reload_ok: AtomicBool::new(true),
        }
    }
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn set_engine_dead(&self) {
        self.engine_dead.store(true, Ordering::Release);
    }

    pub fn set_last_reload_ok(&self, ok: bool) {
        self.last_reload_ok.store(ok, Ordering::Relaxed);
    }

    pub fn last_reload_ok(&self) -> bool {
        self.last_reload_ok.load(Ordering::Relaxed)
    }
}
