//! The per-service incident state machine: one open incident per service,
//! opened by check streaks or burn-rate alerts, resolved by recovery or by hand.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::{
    AckRecord, AlertHold, AlertLevel, Change, ChangeKind, Incident, IncidentError, MAX_ACK_RECORDS,
    ResolvedBy, ServiceState, Source, State, Trigger, change, ticket_severity,
};
use crate::config::{IncidentPolicy, ResponseTarget, Service};

/// Streaks of one check, counted over valid (non-maintenance) runs only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Streak {
    bad_runs: u32,
    /// First bad run of the current bad streak.
    bad_since: Option<Timestamp>,
    good_runs: u32,
    /// First good run of the current good streak.
    good_since: Option<Timestamp>,
    /// The check failed while the current incident was open (or was failing
    /// when it opened), so the incident waits for its recovery.
    involved: bool,
}

/// Result of an acknowledgement. Acknowledging twice is not an error: the API
/// answers 200 with the incident as it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    Changed(Change),
    AlreadyAcked(Incident),
}

/// Incident state of one service: at most one open incident, streaks per
/// check, and the last alert state seen.
///
/// Maintenance: inputs flagged `in_maintenance` count toward nothing (streaks
/// are frozen, not reset), no incident opens and an open one neither resolves
/// nor escalates; acknowledging and resolving by hand still work.
///
/// Manual resolve (the one rule, for both kinds of trigger): it ends the
/// incident, and the failure episode that is still going on does not reopen
/// it. Check streaks restart at the resolve, so a check that keeps failing
/// opens a new incident only after `open_after` more failed runs in a row.
/// A burn-rate alert that still fires is *held* ([`AlertHold`]): it opens
/// nothing until no alert fires, except a higher level (a page while only a
/// ticket fired at the resolve). The hold is part of [`ServiceState`], which
/// the engine persists, so it survives restarts.
#[derive(Debug, Clone)]
pub struct ServiceIncidents {
    service: String,
    open_after: u32,
    resolve_after: u32,
    severity: String,
    checks: BTreeMap<String, Streak>,
    /// Burn-rate alerts are evaluated for this service (it has an SLO and
    /// `burn_rate_alerts: true`). When they are not, no alert state is kept:
    /// a stale "firing" would hold an incident open forever.
    alerts_enabled: bool,
    page: Option<String>,
    ticket: Option<String>,
    hold: Option<AlertHold>,
    /// The [`ServiceState`] last handed out by [`Self::take_state_change`]
    /// (or restored), so only real changes are written.
    reported: ServiceState,
    open: Option<Incident>,
    /// The last resolved incident, to answer ack/resolve on it with Conflict.
    last_resolved: Option<Incident>,
    /// Incidents opened for this service so far (part of the id).
    opened_count: u64,
}

impl ServiceIncidents {
    /// `open` is the incident found open in the store at start, and
    /// `opened_count` the number of incidents the store holds for the service.
    ///
    /// After a restart the streaks are unknown, so an open incident assumes
    /// the worst until told otherwise: a burn-rate incident's alert is taken
    /// as still firing (until the next [`Self::on_alerts`]; not at all when
    /// burn-rate alerts are off), and every check passed to
    /// [`Self::set_checks`] must show `resolve_after` good runs.
    pub fn new(
        service: &str,
        policy: &IncidentPolicy,
        open: Option<Incident>,
        opened_count: u64,
    ) -> Self {
        let open = open.filter(|i| i.state == State::Open);
        let assumed = |level| match open.as_ref().map(|i| &i.trigger) {
            Some(Trigger::BurnRate { level: l }) if *l == level && policy.burn_rate_alerts => {
                Some("alert state unknown after restart".to_string())
            }
            _ => None,
        };
        Self {
            service: service.to_string(),
            open_after: policy.open_after.max(1),
            resolve_after: policy.resolve_after.max(1),
            severity: policy.severity.clone(),
            checks: BTreeMap::new(),
            alerts_enabled: policy.burn_rate_alerts,
            page: assumed(AlertLevel::Page),
            ticket: assumed(AlertLevel::Ticket),
            hold: None,
            reported: ServiceState::default(),
            open,
            last_resolved: None,
            opened_count,
        }
    }

    /// [`Self::new`] plus [`Self::set_checks`] from the service's config.
    pub fn from_config(service: &Service, open: Option<Incident>, opened_count: u64) -> Self {
        let mut m = Self::new(&service.name, &service.incident, open, opened_count);
        m.set_alerts_enabled(alerts_enabled(service));
        m.set_checks(service.checks.iter().map(|c| c.name.as_str()));
        m
    }

    /// Whether burn-rate alerts are evaluated for this service. Turning them
    /// off forgets the alert state and any hold: an incident held open only
    /// by an alert then resolves by check recovery alone.
    pub fn set_alerts_enabled(&mut self, enabled: bool) {
        self.alerts_enabled = enabled;
        if !enabled {
            self.page = None;
            self.ticket = None;
            self.hold = None;
        }
    }

    /// The state restored from the store at start (see [`ServiceState`]).
    pub fn restore_state(&mut self, state: ServiceState) {
        self.hold = state.alert_hold.clone().filter(|_| self.alerts_enabled);
        self.reported = state;
    }

    /// The service's [`ServiceState`] if it changed since the last call (or
    /// the restore): the engine writes it together with the changes of the
    /// same input, in one transaction.
    pub fn take_state_change(&mut self) -> Option<ServiceState> {
        let now = ServiceState {
            alert_hold: self.hold.clone(),
        };
        if now == self.reported {
            return None;
        }
        self.reported = now.clone();
        Some(now)
    }

    /// The current alert hold, if a manual resolve left one.
    pub fn alert_hold(&self) -> Option<&AlertHold> {
        self.hold.as_ref()
    }

    /// The service's checks. Streaks of checks no longer listed are
    /// forgotten (a removed check must not hold an incident open); a new
    /// check joins an open incident, so it must prove itself healthy.
    pub fn set_checks<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let names: Vec<&str> = names.into_iter().collect();
        self.checks.retain(|k, _| names.contains(&k.as_str()));
        let open = self.open.is_some();
        for n in names {
            self.checks.entry(n.to_string()).or_insert_with(|| Streak {
                involved: open,
                ..Streak::default()
            });
        }
    }

    /// A reload: new policy and check list; an incident that was waiting
    /// only for removed checks, or for a burn alert that is now off, may
    /// resolve now. An open incident keeps its severity; the new one applies
    /// to incidents opened from now on and to escalations.
    pub fn reconfigure(
        &mut self,
        now: Timestamp,
        service: &Service,
        in_maintenance: bool,
    ) -> Vec<Change> {
        self.set_policy(&service.incident);
        self.set_alerts_enabled(alerts_enabled(service));
        self.set_checks(service.checks.iter().map(|c| c.name.as_str()));
        let mut changes = Vec::new();
        if !in_maintenance {
            self.evaluate_recovery(now, &mut changes);
        }
        changes
    }

    /// A reload changed the policy: thresholds and severity apply from now on.
    pub fn set_policy(&mut self, policy: &IncidentPolicy) {
        self.open_after = policy.open_after.max(1);
        self.resolve_after = policy.resolve_after.max(1);
        self.severity = policy.severity.clone();
    }

    pub fn open_incident(&self) -> Option<&Incident> {
        self.open.as_ref()
    }

    /// One finished run of `check`. `detail` explains a bad run (probe detail).
    pub fn on_run(
        &mut self,
        now: Timestamp,
        check: &str,
        good: bool,
        detail: &str,
        in_maintenance: bool,
    ) -> Vec<Change> {
        if in_maintenance {
            return Vec::new();
        }
        let incident_open = self.open.is_some();
        let streak = self.checks.entry(check.to_string()).or_default();
        if good {
            streak.bad_runs = 0;
            streak.bad_since = None;
            streak.good_runs += 1;
            streak.good_since.get_or_insert(now);
        } else {
            streak.good_runs = 0;
            streak.good_since = None;
            streak.bad_runs += 1;
            streak.bad_since.get_or_insert(now);
        }
        let mut changes = Vec::new();
        if good {
            self.evaluate_recovery(now, &mut changes);
            return changes;
        }
        let bad_runs = streak.bad_runs;
        let bad_since = streak.bad_since.unwrap_or(now);
        let newly_involved = incident_open && !streak.involved;
        if incident_open {
            streak.involved = true;
        }
        if bad_runs >= self.open_after {
            let reason = if bad_runs == 1 {
                format!("check `{check}` failed: {detail}")
            } else {
                format!("check `{check}` failed {bad_runs} times in a row: {detail}")
            };
            match self.open.as_mut() {
                None => {
                    self.open_incident_now(now, bad_since, Trigger::ChecksFailing, true, reason);
                    if let Some(inc) = self.open.as_mut() {
                        changes.push(change(ChangeKind::Opened, inc));
                    }
                }
                Some(inc) => {
                    if !inc.page_level {
                        self.escalate(reason, &mut changes);
                    } else if bad_runs == self.open_after {
                        inc.reason = reason;
                        changes.push(change(ChangeKind::Updated, inc));
                    }
                }
            }
        }
        // A relapse after restoration: the incident is not restored any more.
        if let Some(inc) = self.open.as_mut()
            && inc.restored_at.is_some()
        {
            inc.restored_at = None;
            changes.push(change(ChangeKind::Updated, inc));
        } else if newly_involved
            && changes.is_empty()
            && let Some(inc) = self.open.as_mut()
        {
            // Keep the stored incident's reason loosely current without
            // notifying: a new check is now part of it.
            inc.reason = format!("check `{check}` failing: {detail}");
            changes.push(change(ChangeKind::Updated, inc));
        }
        changes
    }

    /// The current burn-rate alert state: `Some(detail)` when that level
    /// fires, e.g. `Some("burn rate 1h 15.2 > 14.4")`.
    pub fn on_alerts(
        &mut self,
        now: Timestamp,
        page: Option<&str>,
        ticket: Option<&str>,
        in_maintenance: bool,
    ) -> Vec<Change> {
        self.page = page.map(str::to_string);
        self.ticket = ticket.map(str::to_string);
        if page.is_none() && ticket.is_none() {
            // The episode a manual resolve held has ended.
            self.hold = None;
        }
        let mut changes = Vec::new();
        if in_maintenance {
            return changes;
        }
        let firing = match (page, ticket) {
            (Some(d), _) => Some((AlertLevel::Page, d)),
            (None, Some(d)) => Some((AlertLevel::Ticket, d)),
            (None, None) => None,
        };
        let held = |level: AlertLevel, hold: &Option<AlertHold>| {
            hold.as_ref()
                .is_some_and(|h| level_rank(level) <= level_rank(h.level))
        };
        match (firing, self.open.as_ref()) {
            (Some((level, detail)), None) if !held(level, &self.hold) => {
                self.hold = None;
                let reason = format!("{detail} ({})", level_name(level));
                // Impact began with the earliest current failure, if any.
                let impact = self
                    .checks
                    .values()
                    .filter_map(|s| s.bad_since)
                    .min()
                    .unwrap_or(now);
                self.open_incident_now(
                    now,
                    impact,
                    Trigger::BurnRate { level },
                    level == AlertLevel::Page,
                    reason,
                );
                if let Some(inc) = self.open.as_mut() {
                    changes.push(change(ChangeKind::Opened, inc));
                }
            }
            (Some((AlertLevel::Page, detail)), Some(inc)) if !inc.page_level => {
                let reason = format!("{detail} (page)");
                self.escalate(reason, &mut changes);
            }
            (None, Some(_)) => self.evaluate_recovery(now, &mut changes),
            _ => {}
        }
        changes
    }

    /// The acknowledge-target escalation, evaluated at `now`: the open
    /// incident, still unacknowledged after the `acknowledge` target of its
    /// severity (strictly later than `opened_at + acknowledge`, the moment
    /// that target counts as missed), is escalated to the target's
    /// `escalate` notifiers. At most once per incident; not while the
    /// service is in maintenance (it happens when the window ends, if the
    /// incident is still open and unacknowledged). The targets are those in
    /// force now: a reload that shortens one or adds `escalate` applies at
    /// the next evaluation, also to incidents already open.
    pub fn escalate_unacknowledged(
        &mut self,
        now: Timestamp,
        targets: &BTreeMap<String, ResponseTarget>,
        in_maintenance: bool,
    ) -> Option<Change> {
        if in_maintenance {
            return None;
        }
        let inc = self.open.as_mut()?;
        if inc.acknowledged_at.is_some() || inc.ack_escalated_at.is_some() {
            return None;
        }
        let target = targets.get(&inc.severity)?;
        if target.escalate.is_empty() {
            return None;
        }
        let after = SignedDuration::try_from(target.acknowledge).unwrap_or(SignedDuration::MAX);
        let deadline = inc.opened_at.checked_add(after).unwrap_or(Timestamp::MAX);
        if now <= deadline {
            return None;
        }
        inc.ack_escalated_at = Some(now);
        inc.escalated_to = target.escalate.clone();
        Some(change(
            ChangeKind::Unacknowledged {
                target: target.acknowledge,
            },
            inc,
        ))
    }

    /// Acknowledge incident `id` (must be this service's open incident).
    pub fn ack(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        note: Option<&str>,
    ) -> Result<Ack, IncidentError> {
        self.ack_from(now, id, by, note, Source::Api)
    }

    /// Acknowledge incident `id` from `source`. The first acknowledgement
    /// sets `acknowledged_at`, `acknowledged_by` and `ack_source`; a later
    /// one is [`Ack::AlreadyAcked`] and changes nothing (see
    /// [`Self::record_ack`] to keep it).
    pub fn ack_from(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        note: Option<&str>,
        source: Source,
    ) -> Result<Ack, IncidentError> {
        let inc = self.find_open(id)?;
        if inc.acknowledged_at.is_some() {
            return Ok(Ack::AlreadyAcked(inc.clone()));
        }
        inc.acknowledged_at = Some(now);
        inc.acknowledged_by = Some(by.to_string());
        inc.ack_note = note.map(str::to_string);
        inc.ack_source = Some(source);
        inc.acknowledgements.push(AckRecord {
            at: now,
            by: by.to_string(),
            source,
        });
        Ok(Ack::Changed(change(ChangeKind::Acknowledged, inc)))
    }

    /// Keep a repeated acknowledgement of the open incident `id` in its
    /// `acknowledgements` list: an [`ChangeKind::Updated`] change (stored,
    /// not notified), or `None` when the list is full or `id` is not open.
    /// Nothing else changes: the first acknowledgement stays the one that
    /// counts.
    pub fn record_ack(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
        source: Source,
    ) -> Option<Change> {
        let inc = self.find_open(id).ok()?;
        if inc.acknowledgements.len() >= MAX_ACK_RECORDS {
            return None;
        }
        inc.acknowledgements.push(AckRecord {
            at: now,
            by: by.to_string(),
            source,
        });
        Some(change(ChangeKind::Updated, inc))
    }

    /// Add a human update to this service's open incident `id` (see
    /// [`super::update`]; it changes nothing else).
    pub fn post_update(
        &mut self,
        now: Timestamp,
        id: &str,
        update: super::Update,
    ) -> Result<Change, IncidentError> {
        let inc = self.find_open(id)?;
        super::update::post(inc, update, now)
    }

    /// Resolve incident `id` by hand. Streaks restart, so a check that is
    /// still failing needs `open_after` new failures to open a new incident,
    /// and an alert that still fires is held: it must stop before it can open
    /// one again (a higher level excepted; see the type's docs).
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
        self.find_open(id)?;
        for s in self.checks.values_mut() {
            *s = Streak::default();
        }
        let firing = if self.page.is_some() {
            Some(AlertLevel::Page)
        } else if self.ticket.is_some() {
            Some(AlertLevel::Ticket)
        } else {
            None
        };
        if let Some(level) = firing {
            self.hold = Some(AlertHold {
                level,
                incident: id.to_string(),
                since: now,
            });
        }
        self.close(now, ResolvedBy::User(by.to_string()), source)
            .ok_or_else(|| IncidentError::NotFound { id: id.to_string() })
    }

    /// The service was removed from the configuration: its open incident
    /// (if any) is resolved now, saying why, instead of staying open forever
    /// with nothing left to resolve it.
    pub fn close_removed(&mut self, now: Timestamp) -> Option<Change> {
        let inc = self.open.as_mut()?;
        inc.reason = format!(
            "service `{}` was removed from the configuration while this incident was open",
            self.service
        );
        self.close(now, ResolvedBy::Auto, Source::Auto)
    }

    fn find_open(&mut self, id: &str) -> Result<&mut Incident, IncidentError> {
        if self.last_resolved.as_ref().is_some_and(|i| i.id == id) {
            return Err(IncidentError::Conflict { id: id.to_string() });
        }
        match self.open.as_mut() {
            Some(inc) if inc.id == id => Ok(inc),
            _ => Err(IncidentError::NotFound { id: id.to_string() }),
        }
    }

    fn open_incident_now(
        &mut self,
        now: Timestamp,
        impact_started_at: Timestamp,
        trigger: Trigger,
        page_level: bool,
        reason: String,
    ) {
        self.opened_count += 1;
        let id = format!(
            "inc-{}-{}-{}",
            self.service,
            now.as_second(),
            self.opened_count
        );
        let severity = if page_level {
            self.severity.clone()
        } else {
            ticket_severity(&self.severity)
        };
        for s in self.checks.values_mut() {
            s.involved = s.bad_runs > 0;
        }
        self.open = Some(Incident {
            dedup_key: format!("sentinel/{}/{id}", self.service),
            id,
            service: self.service.clone(),
            severity,
            title: format!("{} is failing", self.service),
            reason,
            state: State::Open,
            trigger,
            page_level,
            impact_started_at: impact_started_at.min(now),
            opened_at: now,
            acknowledged_at: None,
            acknowledged_by: None,
            ack_note: None,
            restored_at: None,
            resolved_at: None,
            resolved_by: None,
            ack_source: None,
            resolve_source: None,
            acknowledgements: Vec::new(),
            ack_escalated_at: None,
            escalated_to: Vec::new(),
            events_emitted: 0,
            updates: Vec::new(),
        });
    }

    /// A page-level trigger on a ticket-level incident: raise it to the
    /// configured severity. Never lowers it (a reload may have configured a
    /// lower severity than the incident already has).
    fn escalate(&mut self, reason: String, changes: &mut Vec<Change>) {
        let configured = self.severity.clone();
        if let Some(inc) = self.open.as_mut() {
            inc.page_level = true;
            inc.reason = reason;
            if !outranks(&configured, &inc.severity) {
                changes.push(change(ChangeKind::Updated, inc));
            } else {
                let from = std::mem::replace(&mut inc.severity, configured.clone());
                changes.push(change(
                    ChangeKind::Escalated {
                        from,
                        to: configured,
                    },
                    inc,
                ));
            }
        }
    }

    /// Restored once every involved check has `resolve_after` good runs;
    /// resolved when, in addition, no alert fires.
    fn evaluate_recovery(&mut self, now: Timestamp, changes: &mut Vec<Change>) {
        let Some(inc) = self.open.as_mut() else {
            return;
        };
        let involved: Vec<&Streak> = self.checks.values().filter(|s| s.involved).collect();
        let recovered = involved.iter().all(|s| s.good_runs >= self.resolve_after);
        if !recovered {
            return;
        }
        let alert_firing = self.page.is_some() || self.ticket.is_some();
        // The last check to recover recovered at the start of its good streak.
        let restored = involved.iter().filter_map(|s| s.good_since).max();
        if inc.restored_at.is_none()
            && let Some(r) = restored
        {
            inc.restored_at = Some(r);
            if alert_firing {
                changes.push(change(ChangeKind::Restored, inc));
            }
        }
        if !alert_firing {
            inc.restored_at.get_or_insert(now);
            if let Some(c) = self.close(now, ResolvedBy::Auto, Source::Auto) {
                changes.push(c);
            }
        }
    }

    fn close(&mut self, now: Timestamp, by: ResolvedBy, source: Source) -> Option<Change> {
        let mut inc = self.open.take()?;
        inc.state = State::Resolved;
        inc.resolved_at = Some(now);
        inc.resolved_by = Some(by);
        inc.resolve_source = Some(source);
        inc.restored_at.get_or_insert(now);
        for s in self.checks.values_mut() {
            s.involved = false;
        }
        let c = change(ChangeKind::Resolved, &mut inc);
        self.last_resolved = Some(inc);
        Some(c)
    }
}

/// Whether burn-rate alerts are evaluated for `service`: the engine feeds
/// alert states only to services with an SLO and `burn_rate_alerts: true`.
fn alerts_enabled(service: &Service) -> bool {
    service.slo.is_some() && service.incident.burn_rate_alerts
}

/// Higher is more urgent.
fn level_rank(level: AlertLevel) -> u8 {
    match level {
        AlertLevel::Ticket => 1,
        AlertLevel::Page => 2,
    }
}

/// Whether severity `a` is more urgent than `b`: `P1` outranks `P2`. Names
/// not of the form `P<n>` outrank any different name (the configured
/// severity wins, as it did before), and nothing outranks itself.
fn outranks(a: &str, b: &str) -> bool {
    let n = |s: &str| s.strip_prefix('P').and_then(|n| n.parse::<u32>().ok());
    match (n(a), n(b)) {
        (Some(x), Some(y)) => x < y,
        _ => a != b,
    }
}

fn level_name(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Page => "page",
        AlertLevel::Ticket => "ticket",
    }
}
