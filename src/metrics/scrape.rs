//! [`Scrape`]: the whole `/metrics` body, assembled in one place from the
//! read models of every part of the daemon.

use jiff::Timestamp;

use super::{
    CheckMetrics, ConnectionGauges, Expo, StartLag, render_engine_stats, render_inbound,
    render_incidents, render_notifiers, render_process, render_service_info, render_slo,
};
use crate::config::Config;
use crate::engine::{EngineStats, Snapshot};
use crate::inbound::InboundStats;
use crate::notify::worker::DeliveryStats;

/// What one scrape reads. The HTTP handler fills it from its state and
/// renders it on a blocking thread.
pub struct Scrape<'a> {
    /// Wall time of the scrape (the check latency window is relative to it).
    pub now: Timestamp,
    pub config: &'a Config,
    pub checks: &'a CheckMetrics,
    pub snapshot: &'a Snapshot,
    pub engine: &'a EngineStats,
    pub deliveries: &'a DeliveryStats,
    pub inbound: &'a InboundStats,
    pub start_lag: &'a StartLag,
    pub connections: ConnectionGauges,
    /// Whether the last config reload worked.
    pub last_reload_ok: bool,
}

impl Scrape<'_> {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Expo::with_capacity(256 * 1024);
        self.checks.render(&mut out, self.now.as_second());
        render_slo(&mut out, self.snapshot);
        render_incidents(&mut out, self.snapshot, self.config);
        render_notifiers(&mut out, self.snapshot, self.config, self.deliveries);
        render_inbound(&mut out, self.inbound);
        render_service_info(&mut out, self.config);
        render_engine_stats(&mut out, self.engine);
        self.start_lag.render(&mut out);
        self.connections.render(&mut out);
        render_process(&mut out, env!("CARGO_PKG_VERSION"), self.last_reload_ok);
        out.into_string()
    }
}
