//! Telemetry and its Prometheus text exposition.
//!
//! - [`expo`]: the text-format writer every module renders into.
//! - [`checks`]: per-check counters, duration histogram and the 5-minute
//!   HdrHistogram latency window (`sentinel_check_*`).
//! - [`process`]: `sentinel_build_info`, `sentinel_config_last_reload_successful`
//!   and `process_*` from `/proc/self`.
//!
//! Architecture invariant: label values come from config names and closed
//! enums only; URLs and error text never become labels.

pub mod checks;
pub mod expo;
pub mod process;

pub use checks::{CheckMetrics, CheckSlot, SyncStats};
pub use expo::{Expo, LabelSet, MetricType};
pub use process::render_process;
