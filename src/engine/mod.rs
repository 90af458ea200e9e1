//! The engine: single owner of SLO and incident state. Consumes finished
//! runs, keeps one [`ServiceSlo`] and one [`ServiceIncidents`] per service,
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, SloWindow};
use crate::incident::{
    Ack, Attainment, Change, ChangeKind, Cumulative, Entry, Incident, IncidentError, MttxStats,
    ServiceIncidents, ServiceState, Stage, StageSummary, State, Totals,
};
use crate::notify::EventContext;
use crate::slo::{self, AlertState, Counts, Figures, Resolution, Schedule, ServiceSlo};
use crate::store::{
    BucketDelta, IncidentRow, OutboxInsert, ServiceBucket, ServiceStateRow, StateWrite, Store,
};

#[cfg(test)]
mod counter_tests;
#[cfg(test)]
mod lifecycle_tests;
mod render;
pub use render::{render_config_info, render_engine_stats, render_incidents, render_slo};

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

/// What the engine publishes for readers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at: Option<Timestamp>,
    pub services: Vec<ServiceView>,
    /// Open incidents and the resolved ones still in the MTTx window, newest first.
    pub incidents: Vec<Incident>,
    /// Windowed: MTTx over each service's incidents opened in its SLO window
    /// (the summaries' quantiles).
    pub mttx: BTreeMapSummaries,
    /// Cumulative over every incident the store held (the summaries' `_sum`
    /// and `_count`, incidents opened, targets met / missed).
    pub totals: std::collections::BTreeMap<(String, String), Cumulative>,
    /// (open now, opened ever: cumulative) per (service, severity).
    pub incident_counts: std::collections::BTreeMap<(String, String), (u64, u64)>,
    /// Cumulative targets met / missed; zero for every (service, severity)
    /// with a response target, so the counters exist before they first move.
    pub response: std::collections::BTreeMap<(String, String, Stage), Attainment>,
    /// Undelivered events per notifier.
    pub queue_depth: Vec<(String, u64)>,
}

/// MTTD/MTTA/MTTR per (service, severity).
pub type BTreeMapSummaries = std::collections::BTreeMap<(String, String), StageSummary>;

#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    /// The open incident's id, if any.
    pub open_incident: Option<String>,
    /// `None` for a service without an `slo:` block.
    pub figures: Option<Figures>,
    pub alerts: AlertState,
    pub in_maintenance: bool,
}

/// Timing knobs; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    pub flush_every: Duration,
    pub snapshot_every: Duration,
    pub prune_every: Duration,
    /// How often the engine checks that `storage.path` still names the file
    /// it writes (see [`Store::file_problem`]).
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

/// A state-file problem is logged again at most this often while it lasts.
const STORE_PROBLEM_LOG_EVERY: Duration = Duration::from_secs(60);

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
    pub store_file_problem: std::sync::Mutex<Option<String>>,
}

impl EngineStats {
    /// What is wrong with the state file, if anything.
    pub fn store_file_problem(&self) -> Option<String> {
        match self.store_file_problem.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_store_file_problem(&self, problem: Option<String>) {
        match self.store_file_problem.lock() {
            Ok(mut g) => *g = problem,
            Err(p) => *p.into_inner() = problem,
        }
    }
}

/// The SLO state, without IO: testable on a manual clock.
pub struct EngineState {
    cfg: Arc<Config>,
    slos: HashMap<String, ServiceSlo>,
    pending: HashMap<(Arc<str>, Arc<str>, i64), Counts>,
    incidents: HashMap<String, ServiceIncidents>,
    mttx: MttxStats,
    /// Latest (availability SLI, budget remaining) per service, for event context.
    latest: HashMap<String, (Option<f64>, f64)>,
    /// The ledger of cumulative figures (incidents opened, MTTx sums and
    /// counts, targets met / missed): restored from the store and only ever
    /// added to, so they are real counters across restarts and pruning. It
    /// decides which entries a change makes, so it runs ahead of the store.
    totals: Totals,
    /// The cumulative figures readers see: those restored plus the entries
    /// of every write the store has taken ([`Self::stored`]).
    visible: std::collections::BTreeMap<(String, String), Cumulative>,
    /// Entries made by time alone (a response target passing) or found
    /// owed at start, with no incident change to carry them: written as
    /// their own incident writes; see [`Self::take_entry_writes`].
    entry_writes: Vec<IncidentWrite>,
    /// Service states that changed and are not yet part of a write, in order.
    state_changes: Vec<(String, ServiceState)>,
}

/// One write for the store, in one transaction: an incident change with its
/// outbox rows, and/or the service's changed machine state.
#[derive(Debug, Clone)]
pub struct IncidentWrite {
    pub incident: Option<Incident>,
    pub events: Vec<OutboxInsert>,
    /// The cumulative-total entries the change made (written with it).
    pub entries: Vec<Entry>,
    /// Only `entries` (and the incident's record of them) are written, not
    /// the incident: entries made by time alone, for an incident as stored.
    pub entries_only: bool,
    /// The service's [`ServiceState`] when it changed with this write.
    pub service_state: Option<(String, ServiceState)>,
    /// The change opened the incident (counts toward `incidents_total` once stored).
    pub opened: bool,
}

impl IncidentWrite {
    /// The store's form of this write.
    pub fn to_store(&self) -> Result<StateWrite, serde_json::Error> {
        let incident = match &self.incident {
            Some(i) => Some(IncidentRow {
                id: i.id.clone(),
                service: i.service.clone(),
                state: i.state.as_str().to_string(),
                opened_at: i.opened_at.as_second(),
                body_json: i.to_json()?,
            }),
            None => None,
        };
        let service_state = match &self.service_state {
            Some((service, st)) => Some(ServiceStateRow {
                service: service.clone(),
                body_json: if st.is_empty() {
                    None
                } else {
                    Some(st.to_json()?)
                },
            }),
            None => None,
        };
        Ok(StateWrite {
            incident,
            events: self.events.clone(),
            entries: self.entries.clone(),
            entries_only: self.entries_only,
            service_state,
        })
    }
}

/// How far back incidents are loaded and kept for MTTx: the longest SLO
/// window (SPEC: "all incidents in the SLO window"), at least 30 days.
pub fn incident_window(cfg: &Config) -> Duration {
    cfg.services
        .iter()
        .filter_map(|s| s.slo.as_ref())
        .map(|s| match s.window {
            SloWindow::Rolling(d) => d,
            SloWindow::Month => Duration::from_secs(31 * 86_400),
        })
        .max()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(30 * 86_400))
}

/// Whether `service` is inside a maintenance window at `at`.
pub fn in_maintenance(cfg: &Config, service: &str, at: Timestamp) -> bool {
    cfg.maintenance
        .iter()
        .any(|m| m.start <= at && at < m.end && m.services.iter().any(|s| s == service))
}

/// Start of `window` at `now`: `now − d` for a rolling window, the first of
/// the month 00:00 UTC for `month`.
pub fn window_start(window: SloWindow, now: Timestamp) -> Timestamp {
    match window {
        SloWindow::Rolling(d) => {
            let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
            now.checked_sub(d).unwrap_or(Timestamp::MIN)
        }
        SloWindow::Month => {
            let dt = jiff::tz::TimeZone::UTC.to_datetime(now);
            dt.first_of_month()
                .start_of_day()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_or(now, |z| z.timestamp())
        }
    }
}

/// How far back (unix seconds) minute and hour buckets must be loaded at `now`
/// to rebuild every service's SLO state.
pub fn load_bounds(cfg: &Config, now: Timestamp) -> (i64, i64) {
    const HOUR: i64 = 3600;
    let now_s = now.as_second();
    let longest = cfg
        .services
        .iter()
        .filter_map(|s| s.slo.as_ref())
        .map(|s| match s.window {
            SloWindow::Rolling(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            SloWindow::Month => 31 * 86_400,
        })
        .max()
        .unwrap_or(0)
        .max(3 * 86_400);
    let minutes = i64::try_from(slo::MINUTE_RING_SPAN.as_secs()).unwrap_or(6 * HOUR);
    (
        now_s.saturating_sub(minutes).saturating_sub(HOUR),
        now_s.saturating_sub(longest).saturating_sub(HOUR),
    )
}

impl EngineState {
    pub fn new(cfg: Arc<Config>) -> Self {
        let slos = cfg
            .services
            .iter()
            .filter_map(|s| {
                s.slo.as_ref().map(|slo| {
                    let schedule = Schedule::of(s, &cfg.maintenance);
                    (s.name.clone(), ServiceSlo::new(slo, schedule))
                })
            })
            .collect();
        let incidents = cfg
            .services
            .iter()
            .map(|s| (s.name.clone(), ServiceIncidents::from_config(s, None, 0)))
            .collect();
        let mttx = MttxStats::new(cfg.response_targets.clone());
        Self {
            cfg,
            slos,
            pending: HashMap::new(),
            incidents,
            mttx,
            latest: HashMap::new(),
            totals: Totals::default(),
            visible: std::collections::BTreeMap::new(),
            entry_writes: Vec::new(),
            state_changes: Vec::new(),
        }
    }

    /// Restore incidents loaded from the store. Open ones go back into their
    /// service's state machine; all of them feed MTTx.
    pub fn restore_incidents(&mut self, incidents: Vec<Incident>) {
        let mut per_service: HashMap<&str, (Option<Incident>, u64)> = HashMap::new();
        for inc in &incidents {
            let e = per_service.entry(inc.service.as_str()).or_default();
            e.1 += 1;
            if inc.state == State::Open {
                e.0 = Some(inc.clone());
            }
        }
        for svc in &self.cfg.services {
            let (open, count) = per_service.remove(svc.name.as_str()).unwrap_or_default();
            self.incidents.insert(
                svc.name.clone(),
                ServiceIncidents::from_config(svc, open, count),
            );
        }
        self.mttx = MttxStats::rebuild(self.cfg.response_targets.clone(), incidents);
    }

    /// Restore the cumulative totals (and which entries each loaded incident
    /// made) read from the store. Call before [`Self::restore_incidents`]'s
    /// incidents are evaluated, so nothing they made is made again.
    pub fn restore_totals(&mut self, totals: Totals) {
        self.visible = totals.by_key().clone();
        self.totals = totals;
    }

    /// Make the entries owed by incidents that are not kept in memory
    /// (stored before the totals existed, outside the MTTx window) at `now`.
    /// Their writes join [`Self::take_entry_writes`].
    pub fn enter_stored(&mut self, incidents: &[Incident], now: Timestamp) {
        for inc in incidents {
            self.enter_owed(inc, now);
        }
    }

    /// Makes what `inc` owes at `now` and queues a write for it if anything.
    fn enter_owed(&mut self, inc: &Incident, now: Timestamp) {
        let entries = self.totals.account(inc, &self.cfg.response_targets, now);
        if !entries.is_empty() {
            self.entry_writes.push(IncidentWrite {
                incident: Some(inc.clone()),
                events: Vec::new(),
                entries,
                // `inc` is the stored version, which a change still queued
                // may have overtaken: write the entries, not the body.
                entries_only: true,
                service_state: None,
                opened: false,
            });
        }
    }

    /// Writes of entries that no incident change carries (see
    /// [`Self::entry_writes`]); the caller persists them like changes.
    pub fn take_entry_writes(&mut self) -> Vec<IncidentWrite> {
        std::mem::take(&mut self.entry_writes)
    }

    /// Make the cumulative entries of changes, in order, so each change
    /// carries what it made to the store.
    fn note(&mut self, changes: &mut [Change], now: Timestamp) {
        for c in changes {
            c.entries = self
                .totals
                .account(&c.incident, &self.cfg.response_targets, now);
        }
    }

    /// Restore the service states loaded from the store (`(service, JSON)`).
    /// A state for a service no longer configured is forgotten (its row
    /// deleted with the next write); one that no longer applies (burn-rate
    /// alerts now off) is dropped the same way.
    pub fn restore_service_states(&mut self, rows: Vec<(String, String)>) {
        for (service, body) in rows {
            let st = match ServiceState::from_json(&body) {
                Ok(st) => st,
                Err(e) => {
                    tracing::error!(service = %service, error = %e, "stored service state is unreadable; ignored");
                    continue;
                }
            };
            match self.incidents.get_mut(&service) {
                Some(m) => {
                    m.restore_state(st);
                    self.note_state(&service);
                }
                None => self.state_changes.push((service, ServiceState::default())),
            }
        }
    }

    /// Queue `service`'s machine state if it changed (see [`Self::writes`]).
    fn note_state(&mut self, service: &str) {
        if let Some(st) = self
            .incidents
            .get_mut(service)
            .and_then(|m| m.take_state_change())
        {
            self.state_changes.push((service.to_string(), st));
        }
    }

    /// A write has been stored: from now on readers may see it. Feeds MTTx
    /// (and so the snapshot's incident list) and the cumulative figures.
    pub fn stored(&mut self, w: &IncidentWrite) {
        for e in &w.entries {
            self.visible
                .entry((e.service.clone(), e.severity.clone()))
                .or_default()
                .add(e.figure, 1, e.micros);
        }
        if let Some(inc) = &w.incident
            && !w.entries_only
        {
            self.mttx.upsert(inc);
        }
    }

    /// Stored open incidents of services that are not configured (removed
    /// while the daemon was stopped). Nothing could ever resolve them.
    pub fn orphaned_open(&self) -> Vec<Incident> {
        self.mttx
            .incidents()
            .filter(|i| i.state == State::Open && !self.incidents.contains_key(&i.service))
            .cloned()
            .collect()
    }

    /// Resolve an orphaned open incident (see [`Self::orphaned_open`]) and
    /// announce it to `notifiers` (those told about it before).
    pub fn close_orphan(
        &mut self,
        now: Timestamp,
        incident: Incident,
        notifiers: &[String],
    ) -> Option<IncidentWrite> {
        let policy = crate::config::IncidentPolicy {
            open_after: 1,
            resolve_after: 1,
            burn_rate_alerts: false,
            severity: incident.severity.clone(),
            notify: notifiers.to_vec(),
        };
        let service = incident.service.clone();
        let mut m = ServiceIncidents::new(&service, &policy, Some(incident), 0);
        let mut changes = [m.close_removed(now)?];
        self.note(&mut changes, now);
        let [c] = changes;
        Some(self.write_with(&c, notifiers, false, now))
    }

    /// Restore persisted buckets (rows of services without an SLO are ignored).
    pub fn restore(&mut self, rows: &[ServiceBucket]) {
        for r in rows {
            if let Some(s) = self.slos.get_mut(&*r.service) {
                s.add_bucket(r.resolution, r.start, r.counts);
            }
        }
    }

    /// Account one finished run: SLO counts and the incident state machine.
    /// Returns whether the run was valid (not in maintenance) and the
    /// incident changes it caused.
    pub fn on_run(&mut self, run: &RunRecord) -> (bool, Vec<Change>) {
        let maintenance = in_maintenance(&self.cfg, &run.service, run.at);
        let mut changes = match self.incidents.get_mut(&*run.service) {
            Some(m) => m.on_run(run.at, &run.check, run.good, &run.detail, maintenance),
            None => Vec::new(),
        };
        self.note(&mut changes, run.at);
        if maintenance {
            return (false, changes);
        }
        let threshold = self
            .slos
            .get(&*run.service)
            .and_then(|s| s.slo().latency)
            .map(|l| l.threshold);
        let latency_good = run.good && threshold.is_none_or(|t| run.latency <= t);
        if let Some(s) = self.slos.get_mut(&*run.service) {
            s.record(run.at, run.good, latency_good);
        }
        let minute = slo::bucket_start(Resolution::Minute, run.at);
        let c = self
            .pending
            .entry((Arc::clone(&run.service), Arc::clone(&run.check), minute))
            .or_default();
        c.valid += 1;
        c.good += u64::from(run.good);
        c.latency_good += u64::from(latency_good);
        (true, changes)
    }

    /// Evaluate burn-rate alerts of every service at `now` (services with an
    /// SLO and `burn_rate_alerts: true`) and return the snapshot and changes.
    pub fn evaluate(&mut self, now: Timestamp) -> (Snapshot, Vec<Change>) {
        let mut changes = Vec::new();
        let cfg = Arc::clone(&self.cfg);
        let mut services = Vec::with_capacity(cfg.services.len());
        for svc in &cfg.services {
            let figures = self.slos.get(&svc.name).map(|s| s.figures(now));
            let alerts = figures.as_ref().map(slo::burn_alerts).unwrap_or_default();
            let maintenance = in_maintenance(&cfg, &svc.name, now);
            if let Some(f) = &figures {
                self.latest.insert(
                    svc.name.clone(),
                    (
                        f.availability.sli,
                        f.availability.error_budget_remaining_ratio,
                    ),
                );
                if svc.incident.burn_rate_alerts
                    && let Some(m) = self.incidents.get_mut(&svc.name)
                {
                    let page = alerts
                        .page
                        .then(|| alert_text(f, "page", &[("1h", "5m"), ("6h", "30m")]));
                    let ticket = alerts
                        .ticket
                        .then(|| alert_text(f, "ticket", &[("1d", "2h"), ("3d", "6h")]));
                    changes.extend(m.on_alerts(
                        now,
                        page.as_deref(),
                        ticket.as_deref(),
                        maintenance,
                    ));
                    self.note_state(&svc.name);
                }
            }
            services.push(ServiceView {
                name: svc.name.clone(),
                open_incident: None,
                figures,
                alerts,
                in_maintenance: maintenance,
            });
        }
        self.note(&mut changes, now);
        // Response targets pass with time alone: make those verdicts now.
        // (`account` allocates only for an entry it makes.)
        let incidents: Vec<Incident> = self.mttx.incidents().cloned().collect();
        for inc in &incidents {
            self.enter_owed(inc, now);
        }
        let mut snap = Snapshot {
            at: Some(now),
            services,
            ..Snapshot::default()
        };
        self.fill_incidents(&mut snap, now);
        (snap, changes)
    }

    /// (Re)compute the incident part of `snap` from what is stored: the
    /// incident list, each service's open incident, MTTx and counts. The
    /// engine calls it again after writing the changes an evaluation caused.
    pub fn fill_incidents(&self, snap: &mut Snapshot, now: Timestamp) {
        let mut incidents: Vec<Incident> = self.mttx.incidents().cloned().collect();
        incidents.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| b.id.cmp(&a.id)));
        let open: HashMap<&str, &str> = incidents
            .iter()
            .filter(|i| i.state == State::Open)
            .map(|i| (i.service.as_str(), i.id.as_str()))
            .collect();
        for v in &mut snap.services {
            v.open_incident = open.get(v.name.as_str()).map(|id| id.to_string());
        }
        let (mttx, incident_counts, response) = self.per_service_mttx(&incidents, now);
        snap.mttx = mttx;
        snap.totals = self.visible.clone();
        snap.incident_counts = incident_counts;
        snap.response = response;
        snap.incidents = incidents;
    }

    /// MTTx figures per service over *that service's* SLO window (SPEC §3:
    /// "all incidents in the SLO window"; 30d for a service without an SLO),
    /// the same rule `sentinel report` uses. Open incidents count as open
    /// whatever their age.
    #[allow(clippy::type_complexity)]
    fn per_service_mttx(
        &self,
        incidents: &[Incident],
        now: Timestamp,
    ) -> (
        BTreeMapSummaries,
        std::collections::BTreeMap<(String, String), (u64, u64)>,
        std::collections::BTreeMap<(String, String, Stage), Attainment>,
    ) {
        let mut by_service: HashMap<&str, Vec<&Incident>> = HashMap::new();
        for i in incidents {
            by_service.entry(i.service.as_str()).or_default().push(i);
        }
        let mut summaries = BTreeMapSummaries::new();
        let mut counts = std::collections::BTreeMap::new();
        for svc in &self.cfg.services {
            let Some(list) = by_service.get(svc.name.as_str()) else {
                continue;
            };
            let window = svc
                .slo
                .as_ref()
                .map_or(SloWindow::Rolling(Duration::from_secs(30 * 86_400)), |s| {
                    s.window
                });
            let start = window_start(window, now);
            let in_window = list
                .iter()
                .filter(|i| i.opened_at >= start)
                .map(|i| (*i).clone());
            let m = MttxStats::rebuild(self.cfg.response_targets.clone(), in_window);
            summaries.extend(m.summaries());

            for i in list.iter().filter(|i| i.state == State::Open) {
                counts
                    .entry((i.service.clone(), i.severity.clone()))
                    .or_insert((0, 0))
                    .0 += 1;
            }
        }
        let mut response = std::collections::BTreeMap::new();
        let configured = self.cfg.services.iter().map(|s| {
            (
                (s.name.clone(), s.incident.severity.clone()),
                Cumulative::default(),
            )
        });
        let mut all: std::collections::BTreeMap<(String, String), Cumulative> =
            configured.collect();
        all.extend(self.visible.iter().map(|(k, v)| (k.clone(), *v)));
        for ((svc, sev), c) in all {
            counts.entry((svc.clone(), sev.clone())).or_insert((0, 0)).1 = c.opened();
            let counted =
                c.acknowledge.met + c.acknowledge.missed + c.restore.met + c.restore.missed;
            if self.cfg.response_targets.contains_key(&sev) || counted > 0 {
                for stage in [Stage::Acknowledge, Stage::Restore] {
                    response.insert((svc.clone(), sev.clone(), stage), c.attainment(stage));
                }
            }
        }
        (summaries, counts, response)
    }

    /// Acknowledge incident `id`. Returns the incident after the call and the
    /// change to persist (none when it was already acknowledged).
    pub fn ack(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<(Incident, Option<Change>), IncidentError> {
        let m = self.machine_for(id)?;
        match m.ack(now, id, by, note)? {
            Ack::Changed(c) => {
                let mut changes = [c];
                self.note(&mut changes, now);
                let [c] = changes;
                Ok((c.incident.clone(), Some(c)))
            }
            Ack::AlreadyAcked(inc) => Ok((inc, None)),
        }
    }

    /// Resolve incident `id` by hand. A burn alert that still fires is held
    /// (see [`ServiceIncidents`]); the hold is written with the resolve.
    pub fn resolve(&mut self, now: Timestamp, id: &str, by: &str) -> Result<Change, IncidentError> {
        let m = self.machine_for(id)?;
        let mut changes = [m.resolve(now, id, by)?];
        self.note(&mut changes, now);
        let [c] = changes;
        let service = c.incident.service.clone();
        self.note_state(&service);
        Ok(c)
    }

    /// The state machine holding `id`: the service whose open incident it is;
    /// a known but resolved incident is a conflict; anything else not found.
    fn machine_for(&mut self, id: &str) -> Result<&mut ServiceIncidents, IncidentError> {
        let service = self
            .incidents
            .iter()
            .find(|(_, m)| m.open_incident().is_some_and(|i| i.id == id))
            .map(|(s, _)| s.clone());
        match service {
            Some(s) => self
                .incidents
                .get_mut(&s)
                .ok_or_else(|| IncidentError::NotFound { id: id.to_string() }),
            None if self.mttx.incidents().any(|i| i.id == id) => {
                Err(IncidentError::Conflict { id: id.to_string() })
            }
            None => Err(IncidentError::NotFound { id: id.to_string() }),
        }
    }

    /// Turn changes into the writes that persist them, in order, each with
    /// its outbox rows; a service state that changed meanwhile joins the last
    /// write of its service (one transaction with, e.g., the manual resolve
    /// that caused it), or gets a write of its own.
    pub fn writes(&mut self, changes: Vec<Change>, now: Timestamp) -> Vec<IncidentWrite> {
        let mut out: Vec<IncidentWrite> = changes.iter().map(|c| self.write_for(c, now)).collect();
        // Only a service's latest state matters; one write each.
        let mut latest: Vec<(String, ServiceState)> = Vec::new();
        for (service, st) in std::mem::take(&mut self.state_changes) {
            latest.retain(|(s, _)| *s != service);
            latest.push((service, st));
        }
        for (service, st) in latest {
            let last = out.iter_mut().rev().find(|w| {
                w.service_state.is_none()
                    && w.incident.as_ref().is_some_and(|i| i.service == service)
            });
            match last {
                Some(w) => w.service_state = Some((service, st)),
                None => out.push(IncidentWrite {
                    incident: None,
                    events: Vec::new(),
                    entries: Vec::new(),
                    entries_only: false,
                    service_state: Some((service, st)),
                    opened: false,
                }),
            }
        }
        out
    }

    /// Turn a change into the write that persists it with its outbox rows.
    pub fn write_for(&self, change: &Change, now: Timestamp) -> IncidentWrite {
        let svc = self
            .cfg
            .services
            .iter()
            .find(|s| s.name == change.incident.service);
        let notify = svc.map(|s| s.incident.notify.clone()).unwrap_or_default();
        let has_slo = svc.is_some_and(|s| s.slo.is_some());
        self.write_with(change, &notify, has_slo, now)
    }

    /// [`Self::write_for`] with the notifiers given.
    fn write_with(
        &self,
        change: &Change,
        notify: &[String],
        has_slo: bool,
        now: Timestamp,
    ) -> IncidentWrite {
        let (sli, budget) = self
            .latest
            .get(&change.incident.service)
            .copied()
            .unwrap_or((None, 1.0));
        let ctx = EventContext {
            availability_ratio: sli,
            error_budget_remaining_ratio: has_slo.then_some(budget),
            api_base: self.cfg.server.external_url.clone(),
        };
        let events = match crate::notify::outbox_inserts(change, notify, &ctx, now) {
            Ok(e) => e,
            Err(e) => {
                // Only JSON encoding can fail here; the incident is still saved.
                tracing::error!(error = %e, incident = %change.incident.id, "building outbox events failed");
                Vec::new()
            }
        };
        IncidentWrite {
            incident: Some(change.incident.clone()),
            events,
            entries: change.entries.clone(),
            entries_only: false,
            service_state: None,
            opened: change.kind == ChangeKind::Opened,
        }
    }

    /// Deltas to persist; the caller hands them back with [`Self::requeue`] if the write fails.
    pub fn take_pending(&mut self) -> Vec<BucketDelta> {
        self.pending
            .drain()
            .map(|((service, check, at_minute), counts)| BucketDelta {
                service: service.to_string(),
                check: check.to_string(),
                at_minute,
                counts,
            })
            .collect()
    }

    pub fn requeue(&mut self, deltas: Vec<BucketDelta>) {
        for d in deltas {
            let c = self
                .pending
                .entry((
                    Arc::from(d.service.as_str()),
                    Arc::from(d.check.as_str()),
                    d.at_minute,
                ))
                .or_default();
            c.valid += d.counts.valid;
            c.good += d.counts.good;
            c.latency_good += d.counts.latency_good;
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Adopt a reloaded config. Services whose SLO definition changed need
    /// their history re-read: returns their names (the caller reloads from
    /// the store), and the writes of the incident changes the new config
    /// causes:
    /// - a removed service's open incident is resolved, saying why, and
    ///   announced to the notifiers the service had;
    /// - burn-rate alerts turned off (or the SLO removed) forget the alert
    ///   state and hold, so an incident held open only by an alert resolves
    ///   by check recovery (at once when no check it involved is failing);
    /// - a removed check no longer holds an incident open;
    /// - an open incident keeps its severity; a new `severity` applies to
    ///   incidents opened afterwards and to escalation, which never lowers.
    pub fn reconfigure(
        &mut self,
        now: Timestamp,
        cfg: Arc<Config>,
    ) -> (Vec<String>, Vec<IncidentWrite>) {
        let mut rebuild = Vec::new();
        let mut slos = HashMap::new();
        for svc in &cfg.services {
            let Some(new) = svc.slo.as_ref() else {
                continue;
            };
            // Checks, intervals and maintenance may have changed even when
            // the SLO did not: expected runs always follow the new config.
            let schedule = Schedule::of(svc, &cfg.maintenance);
            match self.slos.remove(&svc.name) {
                Some(mut old) if old.slo() == new => {
                    old.set_schedule(schedule);
                    slos.insert(svc.name.clone(), old);
                }
                _ => {
                    slos.insert(svc.name.clone(), ServiceSlo::new(new, schedule));
                    rebuild.push(svc.name.clone());
                }
            }
        }
        self.slos = slos;
        // Removed services first, while the old config still names their
        // notifiers.
        let mut removed = Vec::new();
        let kept: std::collections::HashSet<&str> =
            cfg.services.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<String> = self
            .incidents
            .keys()
            .filter(|k| !kept.contains(k.as_str()))
            .cloned()
            .collect();
        for name in gone {
            let Some(mut m) = self.incidents.remove(&name) else {
                continue;
            };
            if let Some(c) = m.close_removed(now) {
                removed.push(c);
            }
            m.set_alerts_enabled(false);
            if let Some(st) = m.take_state_change() {
                self.state_changes.push((name, st));
            }
        }
        self.note(&mut removed, now);
        let mut writes = self.writes(removed, now);
        let mut incidents = HashMap::new();
        let mut changes = Vec::new();
        for svc in &cfg.services {
            let m = match self.incidents.remove(&svc.name) {
                Some(mut m) => {
                    changes.extend(m.reconfigure(now, svc, in_maintenance(&cfg, &svc.name, now)));
                    m
                }
                None => ServiceIncidents::from_config(svc, None, 0),
            };
            incidents.insert(svc.name.clone(), m);
        }
        self.incidents = incidents;
        self.mttx.set_targets(cfg.response_targets.clone());
        self.cfg = cfg;
        let names: Vec<String> = self.incidents.keys().cloned().collect();
        for n in names {
            self.note_state(&n);
        }
        // The new targets are in force from now: verdicts these changes make
        // use them.
        self.note(&mut changes, now);
        writes.extend(self.writes(changes, now));
        (rebuild, writes)
    }

    /// Re-read history for `services` from `rows` (after a reconfigure).
    pub fn restore_only(&mut self, services: &[String], rows: &[ServiceBucket]) {
        for r in rows {
            if services.iter().any(|s| **s == *r.service)
                && let Some(s) = self.slos.get_mut(&*r.service)
            {
                s.add_bucket(r.resolution, r.start, r.counts);
            }
        }
    }
}

/// The reason text of a firing burn-rate alert, e.g.
/// "availability burn rate 1h 15.20 and 5m 18.00 over 14.4 (page)".
fn alert_text(f: &Figures, level: &str, pairs: &[(&str, &str)]) -> String {
    let rules = slo::burn_alert_rules(f.window);
    let mut parts = Vec::new();
    for (long, short) in pairs {
        let factor = rules
            .iter()
            .find(|r| r.long == *long && r.short == *short)
            .map(|r| r.factor);
        let (Some(l), Some(sh), Some(fa)) = (
            f.availability.burn_rate(long),
            f.availability.burn_rate(short),
            factor,
        ) else {
            continue;
        };
        if l > fa && sh > fa {
            parts.push(format!(
                "burn rate {long} {l:.2} and {short} {sh:.2} over {fa:.1}"
            ));
        }
    }
    format!("availability {} ({level})", parts.join("; "))
}

/// An acknowledge or resolve request from the API.
#[derive(Debug)]
pub enum Command {
    Ack {
        id: String,
        by: String,
        note: Option<String>,
    },
    Resolve {
        id: String,
        by: String,
    },
}

/// The answer to a [`Command`]: the incident after it, and whether it changed.
pub type CommandReply = Result<(Incident, bool), IncidentError>;

/// Messages to the engine task.
pub enum EngineMsg {
    Run(RunRecord),
    Reconfigure(Arc<Config>),
    Command(Command, tokio::sync::oneshot::Sender<CommandReply>),
}

/// What the rest of the daemon holds: a sender and the latest snapshot.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<EngineMsg>,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    pub stats: Arc<EngineStats>,
}

impl EngineHandle {
    pub fn send(&self, msg: EngineMsg) {
        // The receiver only goes away at shutdown, when runs no longer matter.
        let _ = self.tx.send(msg);
    }

    /// Run an API command on the engine; `None` when the engine has stopped.
    pub async fn command(&self, cmd: Command) -> Option<CommandReply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send(EngineMsg::Command(cmd, tx)).ok()?;
        rx.await.ok()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }
}

/// Loads state from the store and spawns the engine task. Returns once the
/// state is loaded (so `/readyz` can flip), with the task's join handle.
/// `wake` is notified whenever outbox events were written.
pub async fn start(
    cfg: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) -> Result<(EngineHandle, tokio::task::JoinHandle<()>), crate::store::StoreError> {
    let now = clock.now();
    let (since_min, since_hour) = load_bounds(&cfg, now);
    let rows = store.load_service_buckets(since_min, since_hour).await?;
    let mut state = EngineState::new(Arc::clone(&cfg));
    state.restore(&rows);
    let since = now
        .as_second()
        .saturating_sub(i64::try_from(incident_window(&cfg).as_secs()).unwrap_or(i64::MAX));
    let mut incidents = Vec::new();
    for (id, body) in store.load_incidents(since).await? {
        match Incident::from_json(&body) {
            Ok(i) => incidents.push(i),
            Err(e) => {
                tracing::error!(incident = %id, error = %e, "stored incident is unreadable; skipped")
            }
        }
    }
    tracing::info!(
        buckets = rows.len(),
        incidents = incidents.len(),
        "state restored from the store"
    );
    let totals = store.load_incident_totals().await?;
    let entered = store.load_entered(since).await?;
    state.restore_totals(Totals::restore(
        totals
            .into_iter()
            .map(|r| (r.service, r.severity, r.figure, r.count, r.sum_micros)),
        entered,
    ));
    // Incidents stored before the totals existed and not loaded above
    // (outside the MTTx window) enter the totals once, now.
    let loaded: std::collections::HashSet<&str> = incidents.iter().map(|i| i.id.as_str()).collect();
    let earlier: Vec<Incident> = store
        .load_unentered()
        .await?
        .into_iter()
        .filter(|(id, _)| !loaded.contains(id.as_str()))
        .filter_map(|(_, body)| Incident::from_json(&body).ok())
        .collect();
    drop(loaded);
    state.enter_stored(&earlier, now);
    state.restore_incidents(incidents);
    state.restore_service_states(store.load_service_states().await?);
    let orphans = state.orphaned_open();
    let mut notifiers = Vec::with_capacity(orphans.len());
    for inc in &orphans {
        // Tell whoever was told it opened (and is still configured).
        let told = store.incident_notifiers(&inc.id).await?;
        notifiers.push(
            told.into_iter()
                .filter(|n| cfg.notifiers.iter().any(|c| c.name == *n))
                .collect::<Vec<_>>(),
        );
    }
    let snapshot = Arc::new(RwLock::new(Arc::new(Snapshot::default())));
    let (tx, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(EngineStats::default());
    let handle = EngineHandle {
        tx,
        snapshot: Arc::clone(&snapshot),
        stats: Arc::clone(&stats),
    };
    let mut engine = Loop {
        state,
        store,
        clock,
        opts,
        snapshot,
        stats,
        wake,
        // Entries owed at start (incidents stored before the totals
        // existed): written first.
        unsaved: std::collections::VecDeque::new(),
        dirty: false,
        last_publish: None,
        store_problem_logged: None,
    };
    for (inc, told) in orphans.into_iter().zip(notifiers) {
        tracing::warn!(incident = %inc.id, service = %inc.service, "open incident of a service no longer configured; resolving it");
        let w = engine.state.close_orphan(now, inc, &told);
        engine.unsaved.extend(w);
    }
    let owed = engine.state.take_entry_writes();
    engine.unsaved.extend(owed);
    // The first evaluation (burn alerts on the restored history) is an
    // evaluation like any other: its changes are written before the first
    // snapshot is published, and only what was stored is shown.
    engine.publish().await;
    let task = tokio::spawn(engine.run(rx, shutdown));
    Ok((handle, task))
}

/// The engine task's state beyond [`EngineState`]: IO handles and the queue
/// of incident writes not yet in the store.
struct Loop {
    state: EngineState,
    store: Store,
    clock: Arc<dyn Clock>,
    opts: EngineOptions,
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    stats: Arc<EngineStats>,
    wake: Arc<tokio::sync::Notify>,
    /// Incident writes in the order they happened; the head is retried until
    /// the store takes it.
    unsaved: std::collections::VecDeque<IncidentWrite>,
    /// An incident changed since the last published snapshot.
    dirty: bool,
    last_publish: Option<tokio::time::Instant>,
    /// When a state-file problem was last logged (it is logged at most once
    /// per [`STORE_PROBLEM_LOG_EVERY`] while it lasts).
    store_problem_logged: Option<tokio::time::Instant>,
}

impl Loop {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<EngineMsg>,
        shutdown: CancellationToken,
    ) {
        let mut flush = tokio::time::interval(self.opts.flush_every);
        let mut publish = tokio::time::interval(self.opts.snapshot_every);
        let mut prune = tokio::time::interval(self.opts.prune_every);
        let mut store_check = tokio::time::interval(self.opts.store_check_every);
        for t in [&mut flush, &mut publish, &mut prune, &mut store_check] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = flush.tick() => {
                    self.flush_counts().await;
                    // A retried write that lands (the disk has room again)
                    // is shown at once, not at the next publish tick.
                    if self.persist().await {
                        self.dirty = true;
                    }
                    if self.dirty {
                        self.publish().await;
                    }
                }
                _ = publish.tick() => self.publish().await,
                _ = prune.tick() => self.prune().await,
                _ = store_check.tick() => self.check_store_file().await,
            }
        }
        // Drain what is already queued, then write it: a clean stop loses nothing.
        while let Ok(msg) = rx.try_recv() {
            if let EngineMsg::Run(run) = msg {
                self.on_run(&run);
            }
        }
        self.flush_counts().await;
        self.persist().await;
        if !self.unsaved.is_empty() {
            tracing::error!(
                pending = self.unsaved.len(),
                "incident changes could not be written before exit"
            );
        }
    }

    fn on_run(&mut self, run: &RunRecord) {
        let (valid, changes) = self.state.on_run(run);
        if valid {
            self.stats.runs_recorded.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats
                .runs_in_maintenance
                .fetch_add(1, Ordering::Relaxed);
        }
        self.queue(changes, run.at);
    }

    fn queue(&mut self, changes: Vec<Change>, now: Timestamp) {
        for c in &changes {
            tracing::info!(incident = %c.incident.id, service = %c.incident.service, change = ?c.kind, "incident changed");
        }
        let writes = self.state.writes(changes, now);
        self.queue_writes(writes);
    }

    fn queue_writes(&mut self, writes: Vec<IncidentWrite>) {
        self.unsaved.extend(writes);
        self.stats
            .incident_writes_pending
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
    }

    async fn handle(&mut self, msg: EngineMsg) {
        match msg {
            EngineMsg::Run(run) => {
                let queued = self.unsaved.len();
                self.on_run(&run);
                // Incident changes are written at once: a kill right after
                // an incident opens must not lose its event. The API should
                // show them soon too, but an incident storm must not turn
                // into a full snapshot per change: at most 4 per second.
                // Only a run that changed an incident writes here; older
                // changes a failing disk refused are retried by the flush
                // tick, not by every run that arrives meanwhile.
                if self.unsaved.len() > queued {
                    self.persist().await;
                    self.dirty = true;
                    let recent = self
                        .last_publish
                        .is_some_and(|t| t.elapsed() < Duration::from_millis(250));
                    if !recent {
                        self.publish().await;
                    }
                }
            }
            EngineMsg::Reconfigure(cfg) => {
                self.flush_counts().await;
                let now = self.clock.now();
                let (rebuild, writes) = self.state.reconfigure(now, Arc::clone(&cfg));
                for w in &writes {
                    if let Some(i) = &w.incident {
                        tracing::info!(incident = %i.id, service = %i.service, state = i.state.as_str(), "incident changed by the reload");
                    }
                }
                self.queue_writes(writes);
                self.persist().await;
                if !rebuild.is_empty() {
                    let (m, h) = load_bounds(&cfg, now);
                    match self.store.load_service_buckets(m, h).await {
                        Ok(rows) => self.state.restore_only(&rebuild, &rows),
                        Err(e) => {
                            tracing::error!(error = %e, "reloading SLO history after a config change failed")
                        }
                    }
                }
                self.publish().await;
            }
            EngineMsg::Command(cmd, reply) => {
                let now = self.clock.now();
                let result = match cmd {
                    Command::Ack { id, by, note } => self.state.ack(now, &id, &by, note.as_deref()),
                    Command::Resolve { id, by } => self
                        .state
                        .resolve(now, &id, &by)
                        .map(|c| (c.incident.clone(), Some(c))),
                };
                let answer = result.map(|(inc, change)| {
                    let changed = change.is_some();
                    if let Some(c) = change {
                        self.queue(vec![c], now);
                    }
                    (inc, changed)
                });
                // Persist before answering, so a 200 means the change is on disk
                // (or, with a failing disk, queued in order and retried).
                self.persist().await;
                self.publish().await;
                let _ = reply.send(answer);
            }
        }
    }

    /// Write queued incident changes in order; stop at the first failure.
    /// Returns whether anything was stored (readers see it from the next
    /// snapshot on).
    async fn persist(&mut self) -> bool {
        let mut wrote_events = false;
        let mut stored = false;
        while let Some(w) = self.unsaved.front() {
            let row = match w.to_store() {
                Ok(r) => r,
                Err(e) => {
                    // Serializing plain structs cannot fail in practice;
                    // never seen, but never silent either.
                    tracing::error!(error = %e, "encoding an incident change failed; dropping it");
                    self.unsaved.pop_front();
                    continue;
                }
            };
            match self.store.save_state(row).await {
                Ok(()) => {
                    wrote_events |= !w.events.is_empty();
                    stored = true;
                    if let Some(w) = self.unsaved.pop_front() {
                        self.state.stored(&w);
                    }
                }
                Err(e) => {
                    let n = self
                        .stats
                        .store_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(60) {
                        tracing::error!(error = %e, pending = self.unsaved.len(), "writing an incident change failed; keeping it queued");
                    }
                    break;
                }
            }
        }
        self.stats
            .incident_writes_pending
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
        if wrote_events {
            self.wake.notify_one();
        }
        stored
    }

    async fn publish(&mut self) {
        let now = self.clock.now();
        let (mut snap, changes) = self.state.evaluate(now);
        self.queue(changes, now);
        // After the changes: an entry made by time alone in the same
        // evaluation must not be written before the change it follows.
        let owed = self.state.take_entry_writes();
        self.queue_writes(owed);
        if self.persist().await {
            self.state.fill_incidents(&mut snap, now);
        }
        match self.store.outbox_depth().await {
            Ok(d) => snap.queue_depth = d,
            Err(e) => tracing::warn!(error = %e, "reading the outbox depth failed"),
        }
        self.dirty = false;
        self.last_publish = Some(tokio::time::Instant::now());
        let snap = Arc::new(snap);
        match self.snapshot.write() {
            Ok(mut g) => *g = snap,
            Err(p) => *p.into_inner() = snap,
        }
    }

    /// The state-file watch (see the module docs).
    async fn check_store_file(&mut self) {
        let problem = self.store.file_problem().await;
        match &problem {
            Some(p) => {
                let due = self
                    .store_problem_logged
                    .is_none_or(|t| t.elapsed() >= STORE_PROBLEM_LOG_EVERY);
                if due {
                    self.store_problem_logged = Some(tokio::time::Instant::now());
                    tracing::error!(
                        path = %self.store.path().display(),
                        "{p}. /readyz fails until this is fixed; probing continues. \
                         Stop sentinel with SIGTERM: it then saves what it holds next to the path \
                         (the log names the file); put that file, or a backup, at the path and start again"
                    );
                }
            }
            None => {
                if self.stats.store_file_problem().is_some() {
                    tracing::info!(path = %self.store.path().display(), "the state file is back at its path");
                }
                self.store_problem_logged = None;
            }
        }
        self.stats.set_store_file_problem(problem);
    }

    async fn prune(&mut self) {
        let now = self.clock.now().as_second();
        let cfg = &self.state.cfg;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let minute_before = now.saturating_sub(secs(cfg.storage.minute_retention));
        let hour_before = now.saturating_sub(secs(cfg.storage.retention));
        if let Err(e) = self.store.prune(minute_before, hour_before).await {
            tracing::warn!(error = %e, "pruning old buckets failed");
        }
        if let Err(e) = self.store.prune_incidents(hour_before).await {
            tracing::warn!(error = %e, "pruning old incidents failed");
        }
        let window_start = now.saturating_sub(secs(incident_window(cfg)));
        if let Ok(ts) = Timestamp::from_second(window_start) {
            self.state.mttx.prune(ts);
        }
        // Incidents no longer held make no more entries; open ones (held by
        // their service's state machine) still will.
        let state = &mut self.state;
        let keep: std::collections::HashSet<String> = state
            .mttx
            .incidents()
            .map(|i| i.id.clone())
            .chain(
                state
                    .incidents
                    .values()
                    .filter_map(|m| m.open_incident().map(|i| i.id.clone())),
            )
            .collect();
        state.totals.retain_incidents(|id| keep.contains(id));
    }

    async fn flush_counts(&mut self) {
        let deltas = self.state.take_pending();
        if deltas.is_empty() {
            self.stats.pending_deltas.store(0, Ordering::Relaxed);
            return;
        }
        if let Err(e) = self.store.add_counts(deltas.clone()).await {
            let n = self
                .stats
                .store_write_errors
                .fetch_add(1, Ordering::Relaxed);
            // Log the first failure and then every 60th, so a full disk does not flood the log.
            if n.is_multiple_of(60) {
                tracing::error!(error = %e, deltas = deltas.len(), "writing run counts failed; keeping them in memory and retrying");
            }
            self.state.requeue(deltas);
        }
        self.stats
            .pending_deltas
            .store(self.state.pending_len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const CFG: &str = r#"
maintenance:
  - services: [web]
    start: 2026-01-01T10:00:00Z
    end: 2026-01-01T11:00:00Z
response_targets:
  P1: { acknowledge: 10m, restore: 1h }
services:
  - name: web
    checks:
      - name: home
        interval: 1m
        http: { url: "http://127.0.0.1:1/" }
    slo: { objective: 99, window: 30d, latency: { threshold: 200ms, objective: 90 } }
    # Burn-rate alerts off: these tests pin the check-streak path; the
    # alert path is covered in incident::tests.
    incident: { open_after: 2, resolve_after: 1, severity: P1, burn_rate_alerts: false }
"#;

    fn state() -> EngineState {
        EngineState::new(Arc::new(parse_str(CFG, "test.yaml").unwrap()))
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// What the engine task does with changes when the store takes them:
    /// build the writes and mark them stored. Returns the writes.
    fn commit(s: &mut EngineState, changes: Vec<Change>, now: &str) -> Vec<IncidentWrite> {
        let writes = s.writes(changes, at(now));
        for w in &writes {
            s.stored(w);
        }
        writes
    }

    fn run(t: &str, good: bool, latency_ms: u64) -> RunRecord {
        RunRecord {
            service: "web".into(),
            check: "home".into(),
            at: at(t),
            good,
            latency: Duration::from_millis(latency_ms),
            detail: if good {
                String::new()
            } else {
                "status 503 not in [200]".into()
            },
        }
    }

    #[test]
    fn runs_in_maintenance_count_toward_nothing() {
        let mut s = state();
        assert!(s.on_run(&run("2026-01-01T09:59:00Z", true, 10)).0);
        // Two bad runs inside the window: not valid, no incident.
        for t in ["2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z"] {
            let (valid, changes) = s.on_run(&run(t, false, 10));
            assert!(!valid);
            assert!(changes.is_empty());
        }
        let (snap, changes) = s.evaluate(at("2026-01-01T10:59:00Z"));
        assert!(changes.is_empty());
        let f = snap.services[0].figures.as_ref().unwrap();
        assert_eq!(
            f.counts,
            Counts {
                valid: 1,
                good: 1,
                latency_good: 1
            }
        );
        assert!(snap.services[0].in_maintenance);
        let pending = s.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].counts.valid, 1);
    }

    #[test]
    fn latency_good_needs_good_and_under_threshold() {
        let mut s = state();
        s.on_run(&run("2026-01-02T00:00:00Z", true, 150));
        s.on_run(&run("2026-01-02T00:01:00Z", true, 250));
        s.on_run(&run("2026-01-02T00:02:00Z", false, 50));
        let (snap, _) = s.evaluate(at("2026-01-02T00:03:00Z"));
        let f = snap.services[0].figures.as_ref().unwrap();
        assert_eq!(
            f.counts,
            Counts {
                valid: 3,
                good: 2,
                latency_good: 1
            }
        );
    }

    #[test]
    fn an_outage_opens_an_incident_that_the_snapshot_and_mttx_see() {
        let mut s = state();
        assert!(
            s.on_run(&run("2026-01-02T00:00:00Z", false, 10))
                .1
                .is_empty()
        );
        let (_, changes) = s.on_run(&run("2026-01-02T00:01:00Z", false, 10));
        assert_eq!(changes.len(), 1);
        let inc = changes[0].incident.clone();
        assert_eq!(inc.impact_started_at, at("2026-01-02T00:00:00Z"));
        assert_eq!(inc.opened_at, at("2026-01-02T00:01:00Z"));
        let w = s.write_for(&changes[0], at("2026-01-02T00:01:00Z"));
        assert!(w.events.is_empty(), "no notifiers configured");
        // Not stored yet: readers do not see it.
        let (snap, _) = s.evaluate(at("2026-01-02T00:01:10Z"));
        assert_eq!(snap.services[0].open_incident, None);
        assert!(snap.incidents.is_empty());
        commit(&mut s, changes, "2026-01-02T00:01:00Z");

        let (snap, _) = s.evaluate(at("2026-01-02T00:01:30Z"));
        assert_eq!(
            snap.services[0].open_incident.as_deref(),
            Some(inc.id.as_str())
        );
        assert_eq!(snap.incidents.len(), 1);
        assert_eq!(
            snap.incident_counts[&("web".to_string(), "P1".to_string())],
            (1, 1)
        );

        // Ack after 5 minutes: MTTA exactly 300 s; a second ack changes nothing.
        let (acked, change) = s
            .ack(at("2026-01-02T00:06:00Z"), &inc.id, "alice", None)
            .unwrap();
        assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
        commit(&mut s, change.into_iter().collect(), "2026-01-02T00:06:00Z");
        let (_, again) = s
            .ack(at("2026-01-02T00:07:00Z"), &inc.id, "bob", None)
            .unwrap();
        assert!(again.is_none());

        // Recovery after one good run; MTTR = restored - impact start = 8 min.
        let (_, changes) = s.on_run(&run("2026-01-02T00:08:00Z", true, 10));
        assert!(changes.iter().any(|c| c.incident.state == State::Resolved));
        commit(&mut s, changes, "2026-01-02T00:08:00Z");
        let (snap, _) = s.evaluate(at("2026-01-02T00:10:00Z"));
        let sum = &snap.mttx[&("web".to_string(), "P1".to_string())];
        assert_eq!(sum.mtta.count, 1);
        assert_eq!(sum.mtta.sum_seconds, 300.0);
        assert_eq!(sum.mttr.sum_seconds, 480.0);
        assert_eq!(sum.mttd.sum_seconds, 60.0);
        assert_eq!(
            snap.response[&("web".to_string(), "P1".to_string(), Stage::Acknowledge)],
            Attainment { met: 1, missed: 0 }
        );
        // Resolved: acknowledging again is a conflict; an unknown id is not found.
        assert!(matches!(
            s.ack(at("2026-01-02T00:11:00Z"), &inc.id, "x", None),
            Err(IncidentError::Conflict { .. })
        ));
        assert!(matches!(
            s.resolve(at("2026-01-02T00:11:00Z"), "inc-nope", "x"),
            Err(IncidentError::NotFound { .. })
        ));
    }

    #[test]
    fn mttx_counts_only_incidents_in_the_services_own_slo_window() {
        let cfg = CFG.replace("window: 30d", "window: 7d");
        let mut s = EngineState::new(Arc::new(parse_str(&cfg, "test.yaml").unwrap()));
        for (t, good) in [
            ("2026-01-02T00:00:00Z", false),
            ("2026-01-02T00:01:00Z", false),
            ("2026-01-02T00:02:00Z", true),
        ] {
            let (_, changes) = s.on_run(&run(t, good, 10));
            commit(&mut s, changes, t);
        }
        let key = ("web".to_string(), "P1".to_string());
        let (snap, _) = s.evaluate(at("2026-01-08T23:00:00Z"));
        assert_eq!(snap.mttx[&key].mttd.count, 1, "6 days old: inside 7d");
        let (snap, _) = s.evaluate(at("2026-01-09T00:02:00Z"));
        assert!(
            !snap.mttx.contains_key(&key),
            "7 days and 1 minute old: outside 7d"
        );
        assert_eq!(snap.incidents.len(), 1, "the API still lists it");
        assert_eq!(
            snap.incident_counts[&key],
            (0, 1),
            "incidents_total is a counter: it never drops"
        );
    }

    #[test]
    fn requeued_deltas_add_up_exactly() {
        let mut s = state();
        s.on_run(&run("2026-01-02T00:00:10Z", true, 10));
        s.on_run(&run("2026-01-02T00:00:20Z", false, 10));
        let first = s.take_pending();
        s.on_run(&run("2026-01-02T00:00:30Z", true, 10));
        s.requeue(first);
        let again = s.take_pending();
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].counts,
            Counts {
                valid: 3,
                good: 2,
                latency_good: 2
            }
        );
        assert_eq!(again[0].at_minute, at("2026-01-02T00:00:00Z").as_second());
    }

    /// A fresh install: one check every 10 s since 00:00:00, down for a
    /// minute at 00:06. Divided by the runs seen alone, that minute burnt the
    /// 2h and 1d windows far above 3 and the ticket alert held the incident
    /// open for hours after recovery; against the schedule's runs it is a
    /// page-level minute, which clears with the 5m window.
    #[test]
    fn a_young_outage_resolves_once_the_5m_window_passes() {
        let cfg = r#"
services:
  - name: web
    checks:
      - name: home
        interval: 10s
        http: { url: "http://127.0.0.1:1/" }
    slo: { objective: 99.9, window: 30d }
    incident: { open_after: 3, resolve_after: 2, severity: P1 }
"#;
        let mut s = EngineState::new(Arc::new(parse_str(cfg, "test.yaml").unwrap()));
        let start = at("2026-01-02T00:00:00Z");
        let mut changes = Vec::new();
        let mut alerts_at_recovery = None;
        // A run every 10 s for 20 minutes, each followed by an evaluation.
        for k in 0..120i64 {
            let t = start + jiff::SignedDuration::from_secs(10 * k);
            let bad = (36..42).contains(&k); // 00:06:00–00:06:50
            let mut r = run(&t.to_string(), !bad, 10);
            r.detail = if bad { "refused".into() } else { String::new() };
            changes.extend(s.on_run(&r).1);
            let (snap, c) = s.evaluate(t);
            changes.extend(c);
            if t == at("2026-01-02T00:07:10Z") {
                alerts_at_recovery = Some(snap.services[0].alerts);
            }
        }
        // Recovered at 00:07:10 (two good runs), but the minute was 6 of the
        // hour's 355 expected runs (burn 16.9) and 6 of the 5m window's 30:
        // a page, as on any history. No ticket: 6 of a day's runs is burn 0.7.
        assert_eq!(
            alerts_at_recovery,
            Some(AlertState {
                page: true,
                ticket: false
            })
        );
        let opened = changes
            .iter()
            .find(|c| c.kind == crate::incident::ChangeKind::Opened)
            .map(|c| c.incident.clone())
            .unwrap();
        assert_eq!(opened.impact_started_at, at("2026-01-02T00:06:00Z"));
        assert_eq!(opened.opened_at, at("2026-01-02T00:06:20Z"));
        let resolved = changes
            .iter()
            .find(|c| c.incident.state == State::Resolved)
            .map(|c| c.incident.clone())
            .expect("resolved within 20 minutes, not held open by the ticket alert");
        assert_eq!(resolved.id, opened.id);
        assert_eq!(resolved.restored_at, Some(at("2026-01-02T00:07:00Z")));
        // 00:11:00 is the first instant whose 5m window (00:07–00:11) no
        // longer holds the bad minute.
        assert_eq!(resolved.resolved_at, Some(at("2026-01-02T00:11:00Z")));
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.kind == crate::incident::ChangeKind::Opened)
                .count(),
            1
        );
        let (snap, _) = s.evaluate(at("2026-01-02T00:20:00Z"));
        assert_eq!(snap.services[0].open_incident, None);
        let f = snap.services[0].figures.as_ref().unwrap();
        // 6 bad runs of the 30d window's 719 h 20 min of schedule (258 960 runs).
        assert_eq!(f.expected, 258_960.0);
        assert_eq!(
            f.availability.error_budget_remaining_ratio,
            1.0 - (6.0 / 258_960.0) / (1.0 - 0.999)
        );
    }

    #[test]
    fn expected_runs_follow_maintenance_and_a_reload() {
        // CFG: `web` checks once a minute; maintenance 2026-01-01 10:00–11:00.
        let mut s = state();
        s.on_run(&run("2026-01-01T11:59:00Z", true, 10));
        let burn = |s: &mut EngineState, label: &str| {
            let (snap, _) = s.evaluate(at("2026-01-01T12:00:00Z"));
            let f = snap.services[0].figures.clone().unwrap();
            let b = f
                .availability
                .burn
                .iter()
                .find(|b| b.window == label)
                .copied();
            (f.expected_runs_per_second, b.unwrap().expected)
        };
        // 1d at 12:00 spans 13:00 the day before to now: 23 h, minus the hour of maintenance.
        assert_eq!(burn(&mut s, "1d"), (1.0 / 60.0, 22.0 * 60.0));
        // Reload: the check now runs every 15 s, and a second check every 30 s
        // joins; the maintenance window moves a month back. The history stays; expected
        // runs follow the new schedule over the whole window.
        let cfg = CFG
            .replace("        interval: 1m\n", "        interval: 15s\n")
            .replace(
                "        http: { url: \"http://127.0.0.1:1/\" }\n",
                "        http: { url: \"http://127.0.0.1:1/\" }\n      - name: api\n        interval: 30s\n        http: { url: \"http://127.0.0.1:1/api\" }\n",
            )
            .replace("2026-01-01T1", "2025-12-01T1");
        let (rebuild, _) = s.reconfigure(
            at("2026-01-01T12:00:00Z"),
            Arc::new(parse_str(&cfg, "test.yaml").unwrap()),
        );
        assert!(rebuild.is_empty(), "same SLO: the history is kept");
        assert_eq!(burn(&mut s, "1d"), (6.0 / 60.0, 23.0 * 60.0 * 6.0));
        let (snap, _) = s.evaluate(at("2026-01-01T12:00:00Z"));
        assert_eq!(snap.services[0].figures.as_ref().unwrap().counts.valid, 1);
    }
}
