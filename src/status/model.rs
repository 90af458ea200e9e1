//! The page model: what `/status`, `/status.json`, the feed and the badges
//! show, built from plain inputs by [`build`]. Pure: no IO, no clock.
//!
//! Public-safety rule: nothing here carries a check name, probe target,
//! notifier, person or failure detail. An incident's `reason` (probe text)
//! never leaves [`PublicIncident::from_incident`]; it becomes an [`Impact`].

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;

use super::history::{DAY_SECS, DAYS, History};
pub use crate::incident::UpdateStatus;
use crate::incident::{Incident, State, Trigger, Update};

/// Objective the daily bars of a service without an `slo:` are coloured against.
pub const DEFAULT_BAR_OBJECTIVE: f64 = 0.999;

/// A bar is "far below" its objective when the day's failure rate is more
/// than this many times the allowed one.
pub const FAR_BELOW_FACTOR: f64 = 10.0;

/// A service's state as the public sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicState {
    /// No run has finished yet (a new service, a fresh start).
    Unknown,
    Operational,
    Maintenance,
    Degraded,
    Outage,
}

impl PublicState {
    pub fn text(self) -> &'static str {
        match self {
            PublicState::Unknown => "No data yet",
            PublicState::Operational => "Operational",
            PublicState::Maintenance => "Under maintenance",
            PublicState::Degraded => "Degraded",
            PublicState::Outage => "Outage",
        }
    }

    /// CSS class / badge colour key.
    pub fn key(self) -> &'static str {
        match self {
            PublicState::Unknown => "unknown",
            PublicState::Operational => "operational",
            PublicState::Maintenance => "maintenance",
            PublicState::Degraded => "degraded",
            PublicState::Outage => "outage",
        }
    }
}

/// The public summary of what an incident does to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Degraded,
    Unavailable,
}

impl Impact {
    pub fn text(self) -> &'static str {
        match self {
            Impact::Degraded => "Service degraded",
            Impact::Unavailable => "Service unavailable",
        }
    }
}

/// A day's availability against the objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// No valid run that day (before monitoring started, or all maintenance).
    NoData,
    /// At or above the objective.
    Met,
    /// Below the objective.
    Below,
    /// Failure rate more than [`FAR_BELOW_FACTOR`] times the allowed one.
    FarBelow,
}

impl Grade {
    pub fn of(availability: Option<f64>, objective: f64) -> Grade {
        let Some(a) = availability else {
            return Grade::NoData;
        };
        if a >= objective {
            Grade::Met
        } else if a >= 1.0 - FAR_BELOW_FACTOR * (1.0 - objective) {
            Grade::Below
        } else {
            Grade::FarBelow
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Grade::NoData => "no data",
            Grade::Met => "objective met",
            Grade::Below => "below objective",
            Grade::FarBelow => "far below objective",
        }
    }
}

/// A human update as the public sees it: when, the status and the message
/// as written (escaped by every renderer), never who posted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentUpdate {
    pub at: Timestamp,
    pub status: UpdateStatus,
    pub message: String,
}

impl From<&Update> for IncidentUpdate {
    fn from(u: &Update) -> Self {
        IncidentUpdate {
            at: u.at,
            status: u.status,
            message: u.message.clone(),
        }
    }
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    /// `started`, `opened`, `acknowledged`, `restored`, `resolved`, or `update`.
    pub kind: &'static str,
    pub text: String,
}

/// An incident as the public sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicIncident {
    pub id: String,
    pub service: String,
    pub severity: String,
    pub impact: Impact,
    /// `<service>: <impact>`, e.g. `identity: Service unavailable`.
    pub title: String,
    /// `open` or `resolved`.
    pub state: &'static str,
    /// The latest human update's status, else `investigating` while open,
    /// `monitoring` once restored but not yet resolved, `resolved`.
    pub status: &'static str,
    /// Whether a person of the IT team has acknowledged it.
    pub acknowledged: bool,
    /// Whether opening it notified the IT team.
    pub team_alerted: bool,
    pub impact_started_at: Timestamp,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub restored_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Impact start to restoration (or to resolution, or to now while open).
    pub duration_seconds: i64,
    pub timeline: Vec<TimelineEntry>,
    pub updates: Vec<IncidentUpdate>,
}

impl PublicIncident {
    /// The public view of `inc` (its human updates without their authors)
    /// on the page of service `svc`.
    pub fn from_incident(inc: &Incident, svc: &ServiceInput, now: Timestamp) -> PublicIncident {
        let (checks, all_down) = (svc.checks_up.len(), svc.all_down());
        let open = inc.state == State::Open;
        let impact = match (&inc.trigger, open && all_down) {
            (_, true) => Impact::Unavailable,
            (Trigger::ChecksFailing, _) if checks == 1 => Impact::Unavailable,
            _ => Impact::Degraded,
        };
        let mut timeline = vec![
            TimelineEntry {
                at: inc.impact_started_at,
                kind: "started",
                text: "Problems began".into(),
            },
            TimelineEntry {
                at: inc.opened_at,
                kind: "opened",
                text: if svc.alerts_team {
                    "Detected by monitoring; the IT team was alerted".into()
                } else {
                    "Detected by monitoring".into()
                },
            },
        ];
        if let Some(at) = inc.acknowledged_at {
            timeline.push(TimelineEntry {
                at,
                kind: "acknowledged",
                text: "Acknowledged: the IT team is working on it".into(),
            });
        }
        if let Some(at) = inc.restored_at {
            timeline.push(TimelineEntry {
                at,
                kind: "restored",
                text: if open {
                    "Service restored; the IT team is monitoring".into()
                } else {
                    "Service restored".into()
                },
            });
        }
        if let (false, Some(at)) = (open, inc.resolved_at) {
            timeline.push(TimelineEntry {
                at,
                kind: "resolved",
                text: "Resolved".into(),
            });
        }
        let mut updates: Vec<IncidentUpdate> =
            inc.updates.iter().map(IncidentUpdate::from).collect();
        updates.sort_by_key(|u| u.at);
        for u in &updates {
            timeline.push(TimelineEntry {
                at: u.at,
                kind: "update",
                text: format!("{}: {}", u.status.text(), u.message),
            });
        }
        // Stable: equal instants keep the order above (started before opened).
        timeline.sort_by_key(|e| e.at);
        let status = if !open {
            "resolved"
        } else if let Some(u) = updates.last() {
            u.status.as_str()
        } else if inc.restored_at.is_some() {
            "monitoring"
        } else {
            "investigating"
        };
        let end = if open {
            now
        } else {
            inc.restored_at.or(inc.resolved_at).unwrap_or(now)
        };
        PublicIncident {
            id: inc.id.clone(),
            service: inc.service.clone(),
            severity: inc.severity.clone(),
            impact,
            title: format!("{}: {}", inc.service, impact.text()),
            state: inc.state.as_str(),
            status,
            acknowledged: inc.acknowledged_at.is_some(),
            team_alerted: svc.alerts_team,
            impact_started_at: inc.impact_started_at,
            opened_at: inc.opened_at,
            acknowledged_at: inc.acknowledged_at,
            restored_at: inc.restored_at,
            resolved_at: if open { None } else { inc.resolved_at },
            duration_seconds: end.duration_since(inc.impact_started_at).as_secs().max(0),
            timeline,
            updates,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == "open"
    }

    /// `[impact start, end)`: the span the incident touched users.
    fn span(&self, now: Timestamp) -> (i64, i64) {
        let end = if self.is_open() {
            now
        } else {
            self.resolved_at.or(self.restored_at).unwrap_or(now)
        };
        (self.impact_started_at.as_second(), end.as_second())
    }
}

/// An incident as a bar's tooltip names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayIncident {
    pub id: String,
    pub severity: String,
    pub impact: Impact,
}

/// One UTC day of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayBar {
    pub date: Date,
    pub valid: u64,
    pub good: u64,
    /// good / valid; `None` without valid runs.
    pub availability: Option<f64>,
    pub grade: Grade,
    /// The last bar: today so far.
    pub partial: bool,
    /// Incidents whose impact overlapped the day (empty when incidents are hidden).
    pub incidents: Vec<DayIncident>,
}

/// A service's SLO figures as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloView {
    /// Ratio in (0, 1).
    pub objective: f64,
    /// `30d`, `month`, ...
    pub window: String,
    /// good / valid over the SLO window; `None` without valid runs.
    pub availability: Option<f64>,
    pub meets_objective: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub description: Option<String>,
    pub state: PublicState,
    pub state_text: &'static str,
    pub slo: Option<SloView>,
    /// good / valid over the 90 days of bars.
    pub availability_90d: Option<f64>,
    /// What the bars are coloured against: the SLO objective, else [`DEFAULT_BAR_OBJECTIVE`].
    pub bar_objective: f64,
    /// Exactly [`DAYS`] bars, oldest first; the last one is today.
    pub days: Vec<DayBar>,
    /// Id of the open incident, when incidents are shown.
    pub open_incident: Option<String>,
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overall {
    pub state: PublicState,
    pub text: String,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub title: String,
    pub generated_at: Timestamp,
    pub overall: Overall,
    pub show_incidents: bool,
    pub first_day: Date,
    pub last_day: Date,
    pub services: Vec<ServiceStatus>,
    /// Open incidents of the shown services, newest first.
    pub open_incidents: Vec<PublicIncident>,
    /// Resolved incidents whose impact touched the last 90 days, newest first.
    pub past_incidents: Vec<PublicIncident>,
}

impl Page {
    pub fn service(&self, name: &str) -> Option<&ServiceStatus> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every incident shown, open ones first.
    pub fn incidents(&self) -> impl Iterator<Item = &PublicIncident> {
        self.open_incidents.iter().chain(&self.past_incidents)
    }
}

/// The SLO of a service, from the config and the engine's snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SloInput {
    pub objective: f64,
    pub window: String,
    pub availability: Option<f64>,
}

/// One service, as the handler extracts it from shared state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInput {
    pub name: String,
    pub description: Option<String>,
    /// Last result of each check: up, down, or not run yet.
    pub checks_up: Vec<Option<bool>>,
    pub slo: Option<SloInput>,
    pub in_maintenance: bool,
    /// Id of the service's open incident in the engine's snapshot.
    pub open_incident: Option<String>,
    /// Whether the service's incidents notify someone (`incident.notify` is
    /// not empty); the page only says "the IT team was alerted" when true.
    pub alerts_team: bool,
}

impl ServiceInput {
    fn all_down(&self) -> bool {
        !self.checks_up.is_empty() && self.checks_up.iter().all(|u| *u == Some(false))
    }
}

/// Everything [`build`] needs, as plain data.
#[derive(Debug, Clone)]
pub struct PageInput<'a> {
    pub title: String,
    pub show_incidents: bool,
    pub now: Timestamp,
    /// The services to show, in page order.
    pub services: Vec<ServiceInput>,
    /// Incidents from the engine's snapshot (fresh) and from the store (the
    /// 90-day history); the snapshot's copy wins when both hold an id.
    pub snapshot_incidents: &'a [Incident],
    pub history: &'a History,
}

/// Unix seconds of 00:00 UTC of the day holding `t`.
pub fn day_start(t: Timestamp) -> i64 {
    t.as_second().div_euclid(DAY_SECS) * DAY_SECS
}

/// The UTC date starting at unix second `day`.
pub fn date_of(day: i64) -> Date {
    Timestamp::from_second(day)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .unwrap_or(Date::ZERO)
}

fn ratio(good: u64, valid: u64) -> Option<f64> {
    (valid > 0).then(|| good as f64 / valid as f64)
}

/// Builds the page at `input.now`.
pub fn build(input: &PageInput<'_>) -> Page {
    let now = input.now;
    let today = day_start(now);
    let first = today - (DAYS as i64 - 1) * DAY_SECS;
    let shown: HashMap<&str, &ServiceInput> = input
        .services
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();

    // Incidents of shown services: the snapshot's copy first, then the
    // store's history for ids the snapshot no longer holds.
    let mut incidents: Vec<PublicIncident> = Vec::new();
    if input.show_incidents {
        let mut seen = std::collections::HashSet::new();
        for inc in input
            .snapshot_incidents
            .iter()
            .chain(input.history.incidents.iter())
        {
            let Some(svc) = shown.get(inc.service.as_str()) else {
                continue;
            };
            if !seen.insert(inc.id.as_str()) {
                continue;
            }
            let p = PublicIncident::from_incident(inc, svc, now);
            // Only what touched the 90 days shown (open ones always).
            if p.is_open() || p.span(now).1 >= first {
                incidents.push(p);
            }
        }
        incidents.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| b.id.cmp(&a.id)));
    }
    let mut by_service: HashMap<&str, Vec<&PublicIncident>> = HashMap::new();
    for p in &incidents {
        by_service.entry(p.service.as_str()).or_default().push(p);
    }

    let services: Vec<ServiceStatus> = input
        .services
        .iter()
        .map(|svc| {
            let mine = by_service
                .get(svc.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            service_status(svc, mine, input.history, first, now)
        })
        .collect();

    let (open_incidents, past_incidents): (Vec<_>, Vec<_>) =
        incidents.into_iter().partition(PublicIncident::is_open);
    Page {
        title: input.title.clone(),
        generated_at: now,
        overall: overall(&services),
        show_incidents: input.show_incidents,
        first_day: date_of(first),
        last_day: date_of(today),
        services,
        open_incidents,
        past_incidents,
    }
}

fn service_status(
    svc: &ServiceInput,
    incidents: &[&PublicIncident],
    history: &History,
    first: i64,
    now: Timestamp,
) -> ServiceStatus {
    let bar_objective = svc
        .slo
        .as_ref()
        .map_or(DEFAULT_BAR_OBJECTIVE, |s| s.objective);
    let spans: Vec<((i64, i64), &PublicIncident)> =
        incidents.iter().map(|p| (p.span(now), *p)).collect();
    let stored = history.days_of(&svc.name);
    let mut total_valid = 0u64;
    let mut total_good = 0u64;
    let days: Vec<DayBar> = (0..DAYS as i64)
        .map(|i| {
            let day = first + i * DAY_SECS;
            let c = stored
                .and_then(|m| m.get(&day).copied())
                .unwrap_or_default();
            total_valid += c.valid;
            total_good += c.good;
            let availability = ratio(c.good, c.valid);
            let day_incidents = spans
                .iter()
                .filter(|((s, e), _)| *s < day + DAY_SECS && *e >= day)
                .map(|(_, p)| DayIncident {
                    id: p.id.clone(),
                    severity: p.severity.clone(),
                    impact: p.impact,
                })
                .collect();
            DayBar {
                date: date_of(day),
                valid: c.valid,
                good: c.good,
                availability,
                grade: Grade::of(availability, bar_objective),
                partial: i == DAYS as i64 - 1,
                incidents: day_incidents,
            }
        })
        .collect();
    let open = incidents.iter().find(|p| p.is_open());
    let state = if svc.in_maintenance {
        PublicState::Maintenance
    } else if let Some(p) = open {
        match p.impact {
            Impact::Unavailable => PublicState::Outage,
            Impact::Degraded => PublicState::Degraded,
        }
    } else if svc.open_incident.is_some() {
        // Incidents hidden: the state still says something is wrong.
        if svc.all_down() {
            PublicState::Outage
        } else {
            PublicState::Degraded
        }
    } else if svc.checks_up.iter().all(Option::is_none) {
        PublicState::Unknown
    } else {
        PublicState::Operational
    };
    ServiceStatus {
        name: svc.name.clone(),
        description: svc.description.clone(),
        state,
        state_text: state.text(),
        slo: svc.slo.as_ref().map(|s| SloView {
            objective: s.objective,
            window: s.window.clone(),
            availability: s.availability,
            meets_objective: s.availability.map(|a| a >= s.objective),
        }),
        availability_90d: ratio(total_good, total_valid),
        bar_objective,
        days,
        open_incident: open.map(|p| p.id.clone()),
    }
}

/// How many affected services the header names before "and N more".
const HEADER_NAMES: usize = 5;

fn overall(services: &[ServiceStatus]) -> Overall {
    if services.is_empty() {
        return Overall {
            state: PublicState::Unknown,
            text: "No services are shown on this page".into(),
        };
    }
    let affected: Vec<&ServiceStatus> = services
        .iter()
        .filter(|s| s.state > PublicState::Operational)
        .collect();
    let worst = services
        .iter()
        .map(|s| s.state)
        .max()
        .unwrap_or(PublicState::Unknown);
    if affected.is_empty() {
        let text = if services.iter().all(|s| s.state == PublicState::Unknown) {
            "Waiting for the first checks"
        } else {
            "All systems operational"
        };
        return Overall {
            state: worst,
            text: text.into(),
        };
    }
    let lead = match worst {
        PublicState::Outage => "Outage",
        PublicState::Degraded => "Degraded service",
        _ => "Maintenance",
    };
    let mut names: Vec<String> = affected
        .iter()
        .take(HEADER_NAMES)
        .map(|s| format!("{} ({})", s.name, s.state_text.to_lowercase()))
        .collect();
    if affected.len() > HEADER_NAMES {
        names.push(format!("and {} more", affected.len() - HEADER_NAMES));
    }
    Overall {
        state: worst,
        text: format!(
            "{lead}: {} of {} services affected: {}",
            affected.len(),
            services.len(),
            names.join(", ")
        ),
    }
}
