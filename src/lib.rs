//! sentinel: synthetic checks, SLOs, error budgets, burn rates, MTTx and
//! incident webhooks for the services an IT/SRE team owns.
//!
//! # Layout
//!
//! - [`config`]: YAML → validated, typed [`config::Config`]; every error with line and column.
//! - [`clock`]: the only place that reads wall time; tests inject a manual clock.
//! - [`probe`]: http / tcp / dns / tls checks. IO only; every failure is an [`probe::Outcome`].
//! - [`scheduler`]: fixed-rate timing per check, phase spread, timeouts, a global concurrency cap.
//! - [`metrics`]: per-check counters and HdrHistograms, rendered as Prometheus text.
//! - [`http`]: the axum router: `/metrics`, health, the JSON API.
//! - [`daemon`]: wires the pieces together for `sentinel run`.

pub mod clock;
pub mod config;
pub mod incident;
pub mod notify;
pub mod probe;
