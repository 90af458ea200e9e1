//! The daemon's own health: store and engine counters, scheduler start lag,
//! HTTP connections.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::{CreationError, Histogram};

use crate::engine::EngineStats;
use crate::metrics::{Expo, MetricType};

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
        "sentinel_incident_writes_pending",
        "Incident changes (with their events) waiting to be written to the store.",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_incident_writes_pending",
        &[],
        stats.incident_writes_pending.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_store_file_ok",
        "1 while storage.path names the state file sentinel writes; 0 once it was deleted or replaced (see /readyz).",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_store_file_ok",
        &[],
        u64::from(stats.store_file_problem().is_none()),
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

/// Scheduler start lag (actual − scheduled start of a run, waiting for a
/// concurrency permit included) since the daemon started.
#[derive(Debug)]
pub struct StartLag {
    /// Microseconds, 1 µs .. 60 s at two significant figures. Locked for one
    /// record per run and one copy per scrape.
    micros: Mutex<Histogram<u64>>,
}

impl StartLag {
    pub fn new() -> Result<Self, CreationError> {
        Ok(Self {
            micros: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 2)?),
        })
    }

    /// One run's lag; saturates at the histogram's top (60 s) instead of failing.
    pub fn record(&self, lag: Duration) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.micros
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .saturating_record(us);
    }

    /// The `sentinel_scheduler_start_lag_seconds` summary.
    pub fn render(&self, out: &mut Expo) {
        let h = self
            .micros
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.family(
            "sentinel_scheduler_start_lag_seconds",
            "Actual minus scheduled start of check runs since the daemon started.",
            MetricType::Summary,
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

/// Open HTTP connections and their cap, as the server counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionGauges {
    pub open: u64,
    pub limit: u64,
}

impl ConnectionGauges {
    /// The `sentinel_http_connections_*` families.
    pub fn render(self, out: &mut Expo) {
        out.family(
            "sentinel_http_connections_open",
            "HTTP connections the server holds open now.",
            MetricType::Gauge,
        );
        out.sample_u64("sentinel_http_connections_open", &[], self.open);
        out.family(
            "sentinel_http_connections_limit",
            "Cap on open HTTP connections (server.max_connections, or derived from the descriptor limit); further clients wait.",
            MetricType::Gauge,
        );
        out.sample_u64("sentinel_http_connections_limit", &[], self.limit);
    }
}
