//! Every integration test of sentinel, in one test binary: one link of the
//! crate instead of one per file, and one harness ([`support`]) instead of a
//! copy per file. A new integration test is a module here, not a new file
//! under `tests/`.
//!
//! The tests of a binary run in parallel threads of one process, so nothing
//! here may change process-wide state that another test could feel: a test
//! that must (lowering this process's descriptor limit) runs itself in a
//! child process of its own with [`support::isolated`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod alertmanager_repost;
mod config;
mod config_cli;
mod config_tickets;
mod counters;
mod daemon;
mod dashboards;
mod docs;
mod escalation;
mod fakes_selftest;
mod fuzz;
mod hooks;
mod http_guard;
mod incidents;
mod layout;
mod local_errors;
mod metrics_promtool;
mod notify_alertmanager;
mod notify_daemon;
mod notify_delivery;
mod notify_formats;
mod notify_repost;
mod notify_store;
mod persistence;
mod probe_dns;
mod probe_http;
mod probe_local;
mod probe_tcp;
mod probe_tls;
mod slo_rules;
mod status_page;
mod store_report;
mod tickets;
mod updates;
