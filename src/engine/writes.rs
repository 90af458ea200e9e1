//! [`IncidentWrite`]: what the engine hands the store for one transaction,
//! and how [`EngineState`] turns incident changes into writes with their
//! outbox events.

use jiff::Timestamp;

use super::EngineState;
use super::state::LatestSlo;
use crate::incident::{Change, ChangeKind, Entry, Incident, ServiceState};
use crate::notify::EventContext;
use crate::store::{IncidentRow, OutboxInsert, ServiceStateRow, StateWrite};

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
    pub service_state: Option<ServiceStateChange>,
    /// The change opened the incident (counts toward `incidents_total` once stored).
    pub opened: bool,
}

/// A service's incident-machine state that changed, to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStateChange {
    pub service: String,
    pub state: ServiceState,
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
            Some(c) => Some(ServiceStateRow {
                service: c.service.clone(),
                body_json: if c.state.is_empty() {
                    None
                } else {
                    Some(c.state.to_json()?)
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

impl EngineState {
    /// Turn changes into the writes that persist them, in order, each with
    /// its outbox rows; a service state that changed meanwhile joins the last
    /// write of its service (one transaction with, e.g., the manual resolve
    /// that caused it), or gets a write of its own.
    pub fn writes(&mut self, changes: Vec<Change>, now: Timestamp) -> Vec<IncidentWrite> {
        let mut out: Vec<IncidentWrite> = changes.iter().map(|c| self.write_for(c, now)).collect();
        // Only a service's latest state matters; one write each.
        let mut latest: Vec<ServiceStateChange> = Vec::new();
        for change in std::mem::take(&mut self.state_changes) {
            latest.retain(|c| c.service != change.service);
            latest.push(change);
        }
        for change in latest {
            let last = out.iter_mut().rev().find(|w| {
                w.service_state.is_none()
                    && w.incident
                        .as_ref()
                        .is_some_and(|i| i.service == change.service)
            });
            match last {
                Some(w) => w.service_state = Some(change),
                None => out.push(IncidentWrite {
                    incident: None,
                    events: Vec::new(),
                    entries: Vec::new(),
                    entries_only: false,
                    service_state: Some(change),
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
        let mut notify = svc.map(|s| s.incident.notify.clone()).unwrap_or_default();
        // Notifiers an escalation brought in hear every later event too
        // (while they are configured).
        for n in &change.incident.escalated_to {
            if !notify.contains(n) && self.cfg.notifiers.iter().any(|c| c.name == *n) {
                notify.push(n.clone());
            }
        }
        let has_slo = svc.is_some_and(|s| s.slo.is_some());
        self.write_with(change, &notify, has_slo, now)
    }

    /// [`Self::write_for`] with the notifiers given.
    pub(super) fn write_with(
        &self,
        change: &Change,
        notify: &[String],
        has_slo: bool,
        now: Timestamp,
    ) -> IncidentWrite {
        let latest = self
            .latest
            .get(&change.incident.service)
            .copied()
            .unwrap_or(LatestSlo {
                availability: None,
                budget_remaining: 1.0,
            });
        let ctx = EventContext {
            availability_ratio: latest.availability,
            error_budget_remaining_ratio: has_slo.then_some(latest.budget_remaining),
            api_base: self.cfg.server.external_url.clone(),
        };
        // Only notifiers whose format carries the event get a row (human
        // updates skip PagerDuty and Alertmanager; `notify::carries`).
        let notify: Vec<String> = match &change.event {
            Some((_, kind)) => notify
                .iter()
                .filter(|n| {
                    self.cfg
                        .notifiers
                        .iter()
                        .find(|c| c.name == **n)
                        .is_none_or(|c| crate::notify::carries(&c.kind, *kind))
                })
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let events = match crate::notify::outbox_inserts(change, &notify, &ctx, now) {
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
}
