//! [`EngineState`]: the SLO and incident state without IO, tested on fixed
//! timestamps. The engine task ([`super::task`]) drives it and persists what
//! it returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;

use super::{IncidentWrite, RunRecord, ServiceSeverity, ServiceStateChange, ServiceView, Snapshot};
use crate::config::Config;
use crate::incident::{
    Ack, Change, Cumulative, Incident, IncidentError, MttxStats, ServiceIncidents, ServiceState,
    Source, State, Totals, Update,
};
use crate::slo::{self, Counts, Figures, Resolution, Schedule, ServiceSlo};
use crate::store::{BucketDelta, ServiceBucket};

/// The SLO state, without IO: testable on a manual clock.
pub struct EngineState {
    pub(super) cfg: Arc<Config>,
    pub(super) slos: HashMap<String, ServiceSlo>,
    pub(super) pending: HashMap<PendingKey, Counts>,
    pub(super) incidents: HashMap<String, ServiceIncidents>,
    pub(super) mttx: MttxStats,
    /// Latest (availability SLI, budget remaining) per service, for event context.
    pub(super) latest: HashMap<String, LatestSlo>,
    /// The ledger of cumulative figures (incidents opened, MTTx sums and
    /// counts, targets met / missed): restored from the store and only ever
    /// added to, so they are real counters across restarts and pruning. It
    /// decides which entries a change makes, so it runs ahead of the store.
    pub(super) totals: Totals,
    /// The cumulative figures readers see: those restored plus the entries
    /// of every write the store has taken ([`Self::stored`]).
    pub(super) visible: BTreeMap<ServiceSeverity, Cumulative>,
    /// Entries made by time alone (a response target passing) or found
    /// owed at start, with no incident change to carry them: written as
    /// their own incident writes; see [`Self::take_entry_writes`].
    pub(super) entry_writes: Vec<IncidentWrite>,
    /// Service states that changed and are not yet part of a write, in order.
    pub(super) state_changes: Vec<ServiceStateChange>,
}

/// The latest availability figures of a service, for the context of the
/// events its incident changes send.
#[derive(Debug, Clone, Copy)]
pub(super) struct LatestSlo {
    pub availability: Option<f64>,
    pub budget_remaining: f64,
}

/// Run counts waiting for the store are kept per (service, check, minute).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PendingKey {
    pub service: Arc<str>,
    pub check: Arc<str>,
    /// Start of the minute, unix seconds.
    pub minute: i64,
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
            visible: BTreeMap::new(),
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
        self.visible = totals
            .by_key()
            .iter()
            .map(|((service, severity), c)| (ServiceSeverity::new(service, severity), *c))
            .collect();
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
    fn make_entries(&mut self, changes: &mut [Change], now: Timestamp) {
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
                    self.queue_state_change(&service);
                }
                None => self.state_changes.push(ServiceStateChange {
                    service,
                    state: ServiceState::default(),
                }),
            }
        }
    }

    /// Queue `service`'s machine state if it changed (see [`Self::writes`]).
    fn queue_state_change(&mut self, service: &str) {
        if let Some(st) = self
            .incidents
            .get_mut(service)
            .and_then(|m| m.take_state_change())
        {
            self.state_changes.push(ServiceStateChange {
                service: service.to_string(),
                state: st,
            });
        }
    }

    /// A write has been stored: from now on readers may see it. Feeds MTTx
    /// (and so the snapshot's incident list) and the cumulative figures.
    pub fn stored(&mut self, w: &IncidentWrite) {
        for e in &w.entries {
            self.visible
                .entry(ServiceSeverity::new(&e.service, &e.severity))
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
        self.make_entries(&mut changes, now);
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
        let maintenance = self.cfg.in_maintenance(&run.service, run.at);
        let mut changes = match self.incidents.get_mut(&*run.service) {
            Some(m) => m.on_run(run.at, &run.check, run.good, &run.detail, maintenance),
            None => Vec::new(),
        };
        self.make_entries(&mut changes, run.at);
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
            .entry(PendingKey {
                service: Arc::clone(&run.service),
                check: Arc::clone(&run.check),
                minute,
            })
            .or_default();
        c.valid += 1;
        c.good += u64::from(run.good);
        c.latency_good += u64::from(latency_good);
        (true, changes)
    }

    /// Evaluate burn-rate alerts of every service at `now` (services with an
    /// SLO and `burn_rate_alerts: true`) and the acknowledge targets of open
    /// incidents (escalation), and return the snapshot and changes.
    pub fn evaluate(&mut self, now: Timestamp) -> (Snapshot, Vec<Change>) {
        let mut changes = Vec::new();
        let cfg = Arc::clone(&self.cfg);
        let mut services = Vec::with_capacity(cfg.services.len());
        for svc in &cfg.services {
            let figures = self.slos.get(&svc.name).map(|s| s.figures(now));
            let alerts = figures.as_ref().map(slo::burn_alerts).unwrap_or_default();
            let maintenance = cfg.in_maintenance(&svc.name, now);
            if let Some(f) = &figures {
                self.latest.insert(
                    svc.name.clone(),
                    LatestSlo {
                        availability: f.availability.sli,
                        budget_remaining: f.availability.error_budget_remaining_ratio,
                    },
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
                    self.queue_state_change(&svc.name);
                }
            }
            // The acknowledge target passes with time alone: escalate now.
            if let Some(m) = self.incidents.get_mut(&svc.name)
                && let Some(c) = m.escalate_unacknowledged(now, &cfg.response_targets, maintenance)
            {
                changes.push(c);
            }
            services.push(ServiceView {
                name: svc.name.clone(),
                open_incident: None,
                figures,
                alerts,
                in_maintenance: maintenance,
            });
        }
        self.make_entries(&mut changes, now);
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
}

/// What an acknowledgement did ([`EngineState::acknowledge`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    /// The incident after the call.
    pub incident: Incident,
    /// The change to persist: the acknowledgement, or a repeat kept in the
    /// incident's `acknowledgements` (none when that list is full).
    pub change: Option<Change>,
    /// Whether this was the first acknowledgement (it set `acknowledged_at`).
    pub first: bool,
}

impl EngineState {
    /// Acknowledge incident `id` through the API. Returns the incident after
    /// the call and the change to persist (for a repeat, the record of it).
    pub fn ack(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<(Incident, Option<Change>), IncidentError> {
        let out = self.acknowledge(now, id, by, note, Source::Api)?;
        Ok((out.incident, out.change))
    }

    /// Acknowledge incident `id` from `source`. The first acknowledgement
    /// from any source sets MTTA; a repeat changes nothing but is recorded.
    pub fn acknowledge(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        note: Option<&str>,
        source: Source,
    ) -> Result<Acked, IncidentError> {
        let m = self.machine_for(id)?;
        match m.ack_from(now, id, by, note, source)? {
            Ack::Changed(c) => {
                let mut changes = [c];
                self.make_entries(&mut changes, now);
                let [c] = changes;
                Ok(Acked {
                    incident: c.incident.clone(),
                    change: Some(c),
                    first: true,
                })
            }
            Ack::AlreadyAcked(inc) => match m.record_ack(now, id, by, source) {
                Some(c) => Ok(Acked {
                    incident: c.incident.clone(),
                    change: Some(c),
                    first: false,
                }),
                None => Ok(Acked {
                    incident: inc,
                    change: None,
                    first: false,
                }),
            },
        }
    }

    /// Resolve incident `id` by hand through the API. A burn alert that
    /// still fires is held (see [`ServiceIncidents`]); the hold is written
    /// with the resolve.
    pub fn resolve(&mut self, now: Timestamp, id: &str, by: &str) -> Result<Change, IncidentError> {
        self.resolve_from(now, id, by, Source::Api)
    }

    /// [`Self::resolve`] by a person acting in `source`.
    pub fn resolve_from(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        source: Source,
    ) -> Result<Change, IncidentError> {
        let m = self.machine_for(id)?;
        let mut changes = [m.resolve_from(now, id, by, source)?];
        self.make_entries(&mut changes, now);
        let [c] = changes;
        let service = c.incident.service.clone();
        self.queue_state_change(&service);
        Ok(c)
    }

    /// Add a human update to incident `id` ([`crate::incident::update`]).
    /// An open incident is its service machine's; a resolved one is taken
    /// at its latest version: `queued`, the newest write of it not yet
    /// stored (the task's queue), else the stored one.
    pub fn post_update(
        &mut self,
        now: Timestamp,
        id: &str,
        update: Update,
        queued: Option<Incident>,
    ) -> Result<Change, IncidentError> {
        let open = self
            .incidents
            .values_mut()
            .find(|m| m.open_incident().is_some_and(|i| i.id == id));
        let mut changes = match open {
            Some(m) => [m.post_update(now, id, update)?],
            None => {
                let mut inc = queued
                    .filter(|i| i.id == id)
                    .or_else(|| self.mttx.incidents().find(|i| i.id == id).cloned())
                    .ok_or_else(|| IncidentError::NotFound { id: id.to_string() })?;
                [crate::incident::update::post(&mut inc, update, now)?]
            }
        };
        self.make_entries(&mut changes, now);
        let [c] = changes;
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

    /// Deltas to persist; the caller hands them back with [`Self::requeue`] if the write fails.
    pub fn take_pending(&mut self) -> Vec<BucketDelta> {
        self.pending
            .drain()
            .map(|(key, counts)| BucketDelta {
                service: key.service.to_string(),
                check: key.check.to_string(),
                at_minute: key.minute,
                counts,
            })
            .collect()
    }

    pub fn requeue(&mut self, deltas: Vec<BucketDelta>) {
        for d in deltas {
            let c = self
                .pending
                .entry(PendingKey {
                    service: Arc::from(d.service.as_str()),
                    check: Arc::from(d.check.as_str()),
                    minute: d.at_minute,
                })
                .or_default();
            c.valid += d.counts.valid;
            c.good += d.counts.good;
            c.latency_good += d.counts.latency_good;
        }
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Adopt a reloaded config. A changed SLO keeps the history held when
    /// [`ServiceSlo::reconfigured`] can carry it; services whose new SLO
    /// reaches further back (or adds a latency objective) need their history
    /// re-read: returns their names (the caller reloads from the store), and
    /// the writes of the incident changes the new config causes:
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
                // A changed SLO keeps the history held when it reaches no
                // further back and needs no column that was not kept.
                Some(old) if let Some(mut carried) = old.reconfigured(new) => {
                    carried.set_schedule(schedule);
                    slos.insert(svc.name.clone(), carried);
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
                self.state_changes.push(ServiceStateChange {
                    service: name,
                    state: st,
                });
            }
        }
        self.make_entries(&mut removed, now);
        let mut writes = self.writes(removed, now);
        let mut incidents = HashMap::new();
        let mut changes = Vec::new();
        for svc in &cfg.services {
            let m = match self.incidents.remove(&svc.name) {
                Some(mut m) => {
                    changes.extend(m.reconfigure(now, svc, cfg.in_maintenance(&svc.name, now)));
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
            self.queue_state_change(&n);
        }
        // The new targets are in force from now: verdicts these changes make
        // use them.
        self.make_entries(&mut changes, now);
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
