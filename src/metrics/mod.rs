//! Telemetry and its Prometheus text exposition: every family `/metrics`
//! shows is rendered here, from the read models the rest of the daemon
//! publishes. Nothing in the daemon renders metrics itself.
//!
//! - [`expo`]: the text-format writer every family renders into.
//! - [`checks`]: per-check counters, duration histogram and the 5-minute
//!   HdrHistogram latency window (`sentinel_check_*`); the check's task
//!   writes its [`CheckSlot`].
//! - [`slo`], [`incidents`]: the engine's [`crate::engine::Snapshot`] as
//!   `sentinel_slo_*`, `sentinel_incident*` and `sentinel_notifier_*`.
//! - [`service_info`]: config facts dashboards join on.
//! - [`health`]: store and engine counters, scheduler start lag, HTTP connections.
//! - [`process`]: `sentinel_build_info`, `sentinel_config_last_reload_successful`
//!   and `process_*` from `/proc/self`.
//! - [`scrape`]: [`Scrape`], the whole body assembled in one pass.
//!
//! Architecture invariant: label values come from config names and closed
//! enums only; URLs and error text never become labels.

pub mod checks;
pub mod expo;
pub mod health;
pub mod incidents;
pub mod process;
pub mod scrape;
pub mod service_info;
pub mod slo;
#[cfg(test)]
mod tests;

pub use checks::{CheckMetrics, CheckSlot, SyncStats};
pub use expo::{Expo, LabelSet, MetricType};
pub use health::{ConnectionGauges, StartLag, render_engine_stats};
pub use incidents::{render_inbound, render_incidents, render_notifiers};
pub use process::render_process;
pub use scrape::Scrape;
pub use service_info::render_service_info;
pub use slo::render_slo;
