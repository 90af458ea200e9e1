//! sentinel: synthetic checks, SLOs, error budgets, burn rates, MTTx and
//! incident webhooks for the services an IT/SRE team owns.
//!
//! # Layout
//!
//! - [`config`]: YAML → validated, typed [`config::Config`]; every error with line and column.
//! - [`clock`]: the only place that reads wall time; tests inject a manual clock.
//! - [`probe`]: http / tcp / dns / tls checks. IO only; every failure is an [`probe::Outcome`].
//! - [`scheduler`]: fixed-rate timing per check, phase spread, skips, a global concurrency cap.
//! - [`metrics`]: per-check counters and HdrHistograms, and every `/metrics` family,
//!   rendered from the read models the other modules publish ([`metrics::Scrape`]).
//! - [`slo`]: PURE SLO math: bucketed run counts, SLIs, error budgets, burn rates, burn alerts.
//! - [`engine`]: the single owner of SLO and incident state: pure [`engine::EngineState`],
//!   its IO task, and the [`engine::Snapshot`] it publishes through a `watch` channel.
//! - [`incident`]: PURE incident state machine (open / ack / resolve / escalate) and MTTx HdrHistograms.
//! - [`inbound`]: PURE inbound hooks: each provider's signature / credential check and
//!   payload → acknowledge or resolve, and the hook counters; `http` serves them.
//! - [`notify`]: webhook / PagerDuty / Slack / Alertmanager formats, signing, and the outbox delivery worker. Ticket connectors (ServiceNow, Jira, Opsgenie) live in `notify::tickets`.
//! - [`store`]: SQLite state (WAL, one owning thread, versioned migrations): SLO buckets, incidents, outbox, tickets.
//! - [`http`]: the axum router: `/metrics`, health, the JSON API, reload, the status page routes; reads [`http::AppState`].
//! - [`status`]: the public status page, its JSON / Atom / badge views and the monthly report (pure rendering + a history cache).
//! - [`daemon`]: wires the pieces together for `sentinel run`; [`daemon::run`] takes the
//!   store, listener, clock and shutdown token; owns reload.
//! - [`report`]: `sentinel report`: per-service SLO figures read from the store, as text or JSON.
//! - [`rules`]: `sentinel rules`: Prometheus recording + alerting rules equivalent to the SLOs.
//! - [`cli`]: the subcommands behind the thin binary, and their exit codes.
//! - [`throttle`]: rate limit for repeated warnings (a count of what was not logged).

pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod inbound;
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
pub mod throttle;
