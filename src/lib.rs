//! sentinel: synthetic checks, SLOs, error budgets, burn rates, MTTx and
//! incident webhooks for the services an IT/SRE team owns.
//!
//! # Layout
//!
//! - [`config`]: YAML → validated, typed [`config::Config`]; every error with line and column.
//! - [`clock`]: the only place that reads wall time; tests inject a manual clock.
//! - [`probe`]: http / tcp / dns / tls checks. IO only; every failure is an [`probe::Outcome`].
//! - [`scheduler`]: fixed-rate timing per check, phase spread, skips, a global concurrency cap.
//! - [`metrics`]: per-check counters and HdrHistograms, rendered as Prometheus text.
//! - [`slo`]: PURE SLO math: bucketed run counts, SLIs, error budgets, burn rates, burn alerts.
//! - [`engine`]: the single owner of SLO (and incident) state; consumes runs, persists, publishes snapshots.
//! - [`incident`]: PURE incident state machine (open / ack / resolve / escalate) and MTTx HdrHistograms.
//! - [`notify`]: webhook / PagerDuty / Slack / Alertmanager formats, signing, and the outbox delivery worker.
//! - [`store`]: SQLite state (WAL, one owning thread, versioned migrations): SLO buckets, incidents, outbox, tickets.
//! - [`tickets`]: ticket connectors' conversation (look up, create, update) and the incidents' external tickets.
//! - [`http`]: the axum router: `/metrics`, health, the JSON API, reload, the status page routes.
//! - [`status`]: the public status page, its JSON / Atom / badge views and the monthly report (pure rendering + a history cache).
//! - [`daemon`]: wires the pieces together for `sentinel run`; owns reload and shutdown.
//! - [`report`]: `sentinel report`: per-service SLO figures read from the store, as text or JSON.
//! - [`rules`]: `sentinel rules`: Prometheus recording + alerting rules equivalent to the SLOs.
//! - [`cli`]: the subcommands behind the thin binary, and their exit codes.

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod incident;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod slo;
pub mod status;
pub mod store;
pub mod tickets;
