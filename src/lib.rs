//! sentinel: synthetic checks, SLOs, error budgets, burn rates, MTTx and
//! incident webhooks for the services an IT/SRE team owns.
//!
//! # Layout
//!
//! - [`config`]: YAML → validated, typed [`config::Config`]; every error with line and column.
//! - [`clock`]: the only place that reads wall time; tests inject a manual clock.
//! - [`probe`]: http / tcp / dns / tls checks. IO only; every failure is an [`probe::Outcome`].
//! - [`slo`]: PURE SLO math: bucketed run counts, SLIs, error budgets, burn rates, burn alerts.
//! - [`rules`]: `sentinel rules`: Prometheus recording + alerting rules equivalent to the SLOs.
//! - [`scheduler`]: fixed-rate timing per check, phase spread, timeouts, a global concurrency cap.
//! - [`metrics`]: per-check counters and HdrHistograms, rendered as Prometheus text.
//! - [`http`]: the axum router: `/metrics`, health, the JSON API.
//! - [`daemon`]: wires the pieces together for `sentinel run`.
//! - [`store`]: SQLite state (WAL, one owning thread, versioned migrations): SLO buckets, incidents, outbox.
//! - [`report`]: `sentinel report`: per-service SLO figures read from the store, as text or JSON.

pub mod clock;
pub mod config;
pub mod incident;
pub mod notify;
pub mod probe;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod slo;
pub mod store;
