//! The engine: single owner of SLO and incident state. Consumes finished
//! runs, keeps one [`crate::slo::ServiceSlo`] and one
//! [`crate::incident::ServiceIncidents`] per service,
//! persists run counts, incident changes and their outbox events to the
//! store, and publishes an immutable [`Snapshot`] that `/metrics` and the API
//! read. Acknowledge/resolve requests from the API come in as messages.
//!
//! Architecture invariants:
//! - Only the engine task mutates SLO state; HTTP handlers read `Arc<Snapshot>`.
//! - Runs inside a maintenance window are not valid: they reach neither the
//!   SLO math nor the store.
//! - Counts are persisted as (service, check, minute) deltas every
//!   [`EngineOptions::flush_every`]; the store adds each delta to its minute
//!   row and to the hour row containing it, in one transaction. A failed write
//!   (full disk) keeps the deltas for the next attempt and is counted; the
//!   daemon keeps probing.
//! - An incident change and its outbox events are written in one store
//!   transaction, in the order they happened. A failed write stays queued
//!   (in order) and is retried on the next flush: no event is dropped while
//!   the process lives; once written, the outbox survives `kill -9`.
//! - No change is ever discarded, and readers see only what is stored: the
//!   incidents, counts and MTTx figures of a published [`Snapshot`] come
//!   from changes the store has taken ([`EngineState::stored`]). With a
//!   failing disk the state machine may be ahead of the store; its unstored
//!   incident appears (and is announced) once its write succeeds.
//! - The cumulative incident figures (`sentinel_incidents_total`, the MTTx
//!   `_sum`/`_count`, `sentinel_incident_response_total`) are restored from
//!   the store's totals and only added to: each entry an incident makes
//!   ([`crate::incident::totals`]) travels with the write of the change that
//!   made it, or, for a target that passed with time alone, with a write of
//!   the unchanged incident; it is shown once that write is stored. The
//!   quantiles are windowed and rebuilt.
//! - The state-file watch: every [`EngineOptions::store_check_every`] the
//!   engine checks that `storage.path` still names the file it writes;
//!   when it does not, `/readyz` fails and an ERROR is logged (at most once a
//!   minute) while probing continues.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

use crate::config::Config;
use crate::slo::{self, Window};

#[cfg(test)]
mod counter_tests;
#[cfg(test)]
mod escalation_tests;
#[cfg(test)]
mod lifecycle_tests;
mod snapshot;
mod state;
mod task;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod update_tests;
mod writes;

pub use snapshot::{IncidentCounts, ServiceSeverity, ServiceView, Snapshot};
pub use state::{Acked, EngineState};
pub use task::{EngineHandle, EngineMsg, IncidentCommand, IncidentReply, start};
pub use writes::{IncidentWrite, ServiceStateChange};

/// One finished run, as the engine needs it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub service: Arc<str>,
    pub check: Arc<str>,
    /// Wall time the run finished.
    pub at: Timestamp,
    pub good: bool,
    pub latency: Duration,
    /// Why it was bad (probe detail); empty for good runs.
    pub detail: String,
}

/// Timing knobs; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    pub flush_every: Duration,
    pub snapshot_every: Duration,
    pub prune_every: Duration,
    /// How often the engine checks that `storage.path` still names the file
    /// it writes (see [`crate::store::Store::file_problem`]).
    pub store_check_every: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            snapshot_every: Duration::from_secs(2),
            prune_every: Duration::from_secs(3600),
            store_check_every: STORE_CHECK_EVERY,
        }
    }
}

/// The default [`EngineOptions::store_check_every`] (documented in the README).
pub const STORE_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Counters about the engine itself, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub store_write_errors: AtomicU64,
    /// Deltas waiting for the store (non-zero while the disk is full).
    pub pending_deltas: AtomicU64,
    pub runs_recorded: AtomicU64,
    pub runs_in_maintenance: AtomicU64,
    /// Incident changes written to the store / waiting because a write failed.
    pub incident_writes_pending: AtomicU64,
    /// Set while `storage.path` does not name the file the store writes
    /// (deleted or replaced): what happened, for `/readyz` and the log.
    pub store_file_problem: Mutex<Option<String>>,
}

impl EngineStats {
    /// What is wrong with the state file, if anything.
    pub fn store_file_problem(&self) -> Option<String> {
        self.store_file_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_store_file_problem(&self, problem: Option<String>) {
        *self
            .store_file_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = problem;
    }
}

/// How far back incidents are loaded and kept for MTTx: the longest window
/// of any service (MTTx counts all incidents opened in the service's SLO
/// window; [`Window::DEFAULT`] for a service without one).
pub fn incident_window(cfg: &Config) -> Duration {
    cfg.services
        .iter()
        .map(|s| Window::of(s.slo.as_ref()).span())
        .fold(Window::DEFAULT.span(), Duration::max)
}

/// How far back (unix seconds) minute and hour buckets must be loaded at `now`
/// to rebuild every service's SLO state: the minute ring's span, and the
/// longest SLO window but at least the longest burn window; one hour of
/// margin on each so alignment never cuts a bucket.
pub fn load_bounds(cfg: &Config, now: Timestamp) -> LoadBounds {
    const HOUR: i64 = 3600;
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let now_s = now.as_second();
    let longest = cfg
        .services
        .iter()
        .filter_map(|s| s.slo.as_ref())
        .map(|s| Window::from(s.window).span())
        .fold(slo::LONGEST_BURN_WINDOW, Duration::max);
    LoadBounds {
        minutes_since: now_s
            .saturating_sub(secs(slo::MINUTE_RING_SPAN))
            .saturating_sub(HOUR),
        hours_since: now_s.saturating_sub(secs(longest)).saturating_sub(HOUR),
    }
}

/// Unix seconds from which stored buckets are loaded, per resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBounds {
    pub minutes_since: i64,
    pub hours_since: i64,
}
