//! The read model the engine publishes ([`Snapshot`]) and how its incident
//! part is derived from what the store holds.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use super::EngineState;
use crate::incident::{Attainment, Cumulative, Incident, MttxStats, Stage, StageSummary, State};
use crate::slo::{AlertState, Figures, Window};

/// What the engine publishes for readers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at: Option<Timestamp>,
    pub services: Vec<ServiceView>,
    /// Open incidents and the resolved ones still in the MTTx window, newest first.
    pub incidents: Vec<Incident>,
    /// Windowed MTTD/MTTA/MTTR: over each service's incidents opened in its
    /// SLO window (the summaries' quantiles).
    pub mttx: BTreeMap<ServiceSeverity, StageSummary>,
    /// Cumulative over every incident the store held (the summaries' `_sum`
    /// and `_count`, incidents opened, targets met / missed).
    pub totals: BTreeMap<ServiceSeverity, Cumulative>,
    pub incident_counts: BTreeMap<ServiceSeverity, IncidentCounts>,
    /// Cumulative targets met / missed per stage; zero for every (service,
    /// severity) with a response target, so the counters exist before they
    /// first move.
    pub response: BTreeMap<(ServiceSeverity, Stage), Attainment>,
    /// Undelivered events per notifier name.
    pub queue_depth: BTreeMap<String, u64>,
}

/// The labels every incident family is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceSeverity {
    pub service: String,
    pub severity: String,
}

impl ServiceSeverity {
    pub fn new(service: &str, severity: &str) -> Self {
        Self {
            service: service.to_string(),
            severity: severity.to_string(),
        }
    }
}

/// Incidents of one (service, severity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncidentCounts {
    /// Open now.
    pub open: u64,
    /// Opened ever: cumulative, survives restarts and pruning.
    pub opened: u64,
}

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

impl EngineState {
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

    /// MTTx figures per service over all incidents opened in *that
    /// service's* window ([`Window::of`]: its SLO window, 30d without one),
    /// the same rule `sentinel report` uses. Open incidents count as open
    /// whatever their age.
    #[allow(clippy::type_complexity)]
    fn per_service_mttx(
        &self,
        incidents: &[Incident],
        now: Timestamp,
    ) -> (
        BTreeMap<ServiceSeverity, StageSummary>,
        BTreeMap<ServiceSeverity, IncidentCounts>,
        BTreeMap<(ServiceSeverity, Stage), Attainment>,
    ) {
        let mut by_service: HashMap<&str, Vec<&Incident>> = HashMap::new();
        for i in incidents {
            by_service.entry(i.service.as_str()).or_default().push(i);
        }
        let mut summaries = BTreeMap::new();
        let mut counts: BTreeMap<ServiceSeverity, IncidentCounts> = BTreeMap::new();
        for svc in &self.cfg.services {
            let Some(list) = by_service.get(svc.name.as_str()) else {
                continue;
            };
            let start = Window::of(svc.slo.as_ref()).start(now);
            let in_window = list
                .iter()
                .filter(|i| i.opened_at >= start)
                .map(|i| (*i).clone());
            let m = MttxStats::rebuild(self.cfg.response_targets.clone(), in_window);
            summaries.extend(
                m.summaries()
                    .into_iter()
                    .map(|((service, severity), s)| (ServiceSeverity { service, severity }, s)),
            );

            for i in list.iter().filter(|i| i.state == State::Open) {
                counts
                    .entry(ServiceSeverity::new(&i.service, &i.severity))
                    .or_default()
                    .open += 1;
            }
        }
        let mut response = BTreeMap::new();
        let configured = self.cfg.services.iter().map(|s| {
            (
                ServiceSeverity::new(&s.name, &s.incident.severity),
                Cumulative::default(),
            )
        });
        let mut all: BTreeMap<ServiceSeverity, Cumulative> = configured.collect();
        all.extend(self.visible.iter().map(|(k, v)| (k.clone(), *v)));
        for (key, c) in all {
            counts.entry(key.clone()).or_default().opened = c.opened();
            let counted =
                c.acknowledge.met + c.acknowledge.missed + c.restore.met + c.restore.missed;
            if self.cfg.response_targets.contains_key(&key.severity) || counted > 0 {
                for stage in [Stage::Acknowledge, Stage::Restore] {
                    response.insert((key.clone(), stage), c.attainment(stage));
                }
            }
        }
        (summaries, counts, response)
    }
}
