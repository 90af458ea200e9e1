//! Incidents: the per-service open / acknowledge / restore / resolve state
//! machine ([`ServiceIncidents`]) and the response-time statistics built from
//! incidents ([`MttxStats`]).
//!
//! Architecture invariant: this module is PURE. It does no IO and never reads
//! the clock; every input carries `now`. The engine feeds it check runs and
//! burn-rate alert states, persists the returned [`Change`]s together with
//! their outbox events in one transaction, and hands snapshots to the API.
//!
//! Severity policy (our choice; `docs/semantics.md` documents it): a check streak and a
//! page-level burn alert are *page-level* triggers and open the incident at the
//! configured `incident.severity`. A ticket-level burn alert alone opens it one
//! step lower (`P1` → `P2`, …; a name not of the form `P<n>` stays as is, `P5`
//! and beyond stay). A page-level trigger on a ticket-level incident raises it
//! to the configured severity and emits [`ChangeKind::Escalated`]. Severity is
//! never lowered while an incident is open.
//!
//! Escalation for want of an acknowledgement (our choice of shape; also in
//! `docs/semantics.md`): once an open incident passes the `acknowledge`
//! target of its severity unacknowledged, and that target names `escalate`
//! notifiers, it emits [`ChangeKind::Unacknowledged`], which is the same
//! `incident.escalated` event as a severity escalation with a different
//! cause. It happens once per incident ([`Incident::ack_escalated_at`]),
//! never during maintenance, and the escalation notifiers stay on the
//! incident ([`Incident::escalated_to`]) until it resolves.

mod machine;
mod mttx;
pub mod totals;
pub mod update;

pub use machine::{Ack, ServiceIncidents};
pub use mttx::{Attainment, MttxStats, Stage, StageSummary, Summary};
pub use totals::{Cumulative, Entry, Totals};
pub use update::{Update, UpdateStatus};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Errors the API maps to status codes: `NotFound` → 404, `Conflict` and
/// `UpdatesClosed` → 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error("incident `{id}` not found")]
    NotFound { id: String },
    #[error("incident `{id}` is already resolved")]
    Conflict { id: String },
    /// The incident takes no more human updates ([`update`]'s rules).
    #[error("incident `{id}` takes no more updates: {why}")]
    UpdatesClosed { id: String, why: String },
}

/// Lifecycle state. There is no separate "acknowledged" state: acknowledging
/// is a timestamp on an open incident, so an incident can be acked and still
/// be open, or restored and still be unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Open,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Resolved => "resolved",
        }
    }
}

/// Burn-rate alert levels of the SRE Workbook's multiwindow alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Page,
    Ticket,
}

/// What a service's state machine must remember across restarts besides
/// its incidents. Stored as JSON in the store's `service_state` table; the
/// default (nothing to remember) is stored as no row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_hold: Option<AlertHold>,
}

impl ServiceState {
    pub fn is_empty(&self) -> bool {
        self.alert_hold.is_none()
    }

    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(body: &str) -> Result<ServiceState, serde_json::Error> {
        serde_json::from_str(body)
    }
}

/// Left by a manual resolve while a burn-rate alert fires: that alert
/// episode must not open a new incident. Released as soon as no alert fires;
/// meanwhile only a level above `level` (a page while a ticket was held)
/// opens one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertHold {
    /// The highest level firing when the incident was resolved.
    pub level: AlertLevel,
    /// The incident resolved by hand.
    pub incident: String,
    pub since: Timestamp,
}

/// What opened the incident (later triggers only update it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    ChecksFailing,
    BurnRate { level: AlertLevel },
}

/// Who resolved it: the state machine (recovery) or a person (through the
/// API or a provider's inbound hook; [`Incident::resolve_source`] says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    Auto,
    User(String),
}

/// Where an acknowledgement or resolution came from: sentinel's own API, a
/// provider's inbound hook, or (resolutions only) sentinel itself. A closed
/// set: it is the `source` label of `sentinel_incident_acknowledgements_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    PagerDuty,
    Opsgenie,
    Slack,
    ServiceNow,
    Jira,
    /// Recovery (or the service was removed): no person involved.
    Auto,
}

impl Source {
    /// Every source a person can acknowledge from, in label order.
    pub const ACK: [Source; 6] = [
        Source::Api,
        Source::PagerDuty,
        Source::Opsgenie,
        Source::Slack,
        Source::ServiceNow,
        Source::Jira,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::PagerDuty => "pagerduty",
            Source::Opsgenie => "opsgenie",
            Source::Slack => "slack",
            Source::ServiceNow => "servicenow",
            Source::Jira => "jira",
            Source::Auto => "auto",
        }
    }
}

/// One acknowledgement received while the incident was open. The first one
/// set `acknowledged_at`; later ones are kept here and change nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRecord {
    pub at: Timestamp,
    pub by: String,
    pub source: Source,
}

/// At most this many acknowledgements are kept per incident (the first
/// included); later repeats are only logged.
pub const MAX_ACK_RECORDS: usize = 20;

/// One incident. Serialized as the `body` JSON of the store's `incidents` row,
/// so every field a restart needs is here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// `inc-<service>-<opened unix secs>-<n>`: unique because a service has at
    /// most one open incident and `n` counts incidents of the service.
    pub id: String,
    /// `sentinel/<service>/<id>`: what PagerDuty and friends deduplicate on.
    pub dedup_key: String,
    pub service: String,
    pub severity: String,
    pub title: String,
    /// The latest trigger in words, e.g. "check `login` failed 3 times in a row: …".
    pub reason: String,
    pub state: State,
    pub trigger: Trigger,
    /// Whether a page-level trigger has hit this incident (drives escalation).
    pub page_level: bool,
    pub impact_started_at: Timestamp,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<String>,
    pub ack_note: Option<String>,
    pub restored_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<ResolvedBy>,
    /// Where the first acknowledgement came from (`None` until acknowledged;
    /// incidents stored by earlier versions were acknowledged through the API).
    #[serde(default)]
    pub ack_source: Option<Source>,
    /// Where the resolution came from: `auto` for recovery.
    #[serde(default)]
    pub resolve_source: Option<Source>,
    /// Every acknowledgement received while open, first one included, at
    /// most [`MAX_ACK_RECORDS`].
    #[serde(default)]
    pub acknowledgements: Vec<AckRecord>,
    /// When the acknowledge target passed unacknowledged and the
    /// severity's `escalate` notifiers were told (`incident.escalated`,
    /// [`ChangeKind::Unacknowledged`]). Set once: it is what keeps a restart
    /// from escalating again.
    #[serde(default)]
    pub ack_escalated_at: Option<Timestamp>,
    /// The notifiers that escalation brought in. Every later event of the
    /// incident (acknowledged, resolved) goes to them too, beside the
    /// service's notifiers, so whoever was paged also hears the end.
    #[serde(default)]
    pub escalated_to: Vec<String>,
    /// Number of outbox events emitted so far; event ids are
    /// `evt-<incident id>-<n>` so they are stable across retries and restarts.
    pub events_emitted: u32,
    /// Human updates, oldest first ([`update`]). Absent in rows written
    /// before updates existed.
    #[serde(default)]
    pub updates: Vec<Update>,
}

impl Incident {
    /// The `body` column of the store's `incidents` row.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    pub fn from_json(body: &str) -> Result<Incident, serde_json::Error> {
        serde_json::from_str(body)
    }
    /// MTTD: impact start → opened.
    pub fn time_to_detect(&self) -> jiff::SignedDuration {
        self.opened_at.duration_since(self.impact_started_at)
    }

    /// MTTA: opened → acknowledged, only for acknowledged incidents.
    pub fn time_to_acknowledge(&self) -> Option<jiff::SignedDuration> {
        self.acknowledged_at
            .map(|a| a.duration_since(self.opened_at))
    }

    /// MTTR: impact start → restored; a manual resolution without recovery
    /// counts until `resolved_at` (the machine then sets `restored_at` to it).
    pub fn time_to_restore(&self) -> Option<jiff::SignedDuration> {
        self.restored_at
            .or(self.resolved_at)
            .filter(|_| self.state == State::Resolved)
            .map(|r| r.duration_since(self.impact_started_at))
    }
}

/// Types of outbox events (the `type` field of webhook bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "incident.opened")]
    Opened,
    #[serde(rename = "incident.acknowledged")]
    Acknowledged,
    #[serde(rename = "incident.resolved")]
    Resolved,
    #[serde(rename = "incident.escalated")]
    Escalated,
    /// A human update was posted ([`update`]).
    #[serde(rename = "incident.updated")]
    UpdatePosted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Opened => "incident.opened",
            EventType::Acknowledged => "incident.acknowledged",
            EventType::Resolved => "incident.resolved",
            EventType::Escalated => "incident.escalated",
            EventType::UpdatePosted => "incident.updated",
        }
    }
}

/// What happened to an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Opened,
    /// A further trigger (another check, an alert) or a relapse changed the
    /// reason / cleared `restored_at`; persisted but not notified.
    Updated,
    Escalated {
        from: String,
        to: String,
    },
    /// The acknowledge target (`acknowledge` of the severity's response
    /// target) passed while the incident was unacknowledged: announced as
    /// `incident.escalated`, also to the target's `escalate` notifiers
    /// (now in [`Incident::escalated_to`]). Once per incident.
    Unacknowledged {
        target: std::time::Duration,
    },
    /// Every failing check has recovered but an alert still fires; persisted,
    /// not notified (the resolution is).
    Restored,
    Acknowledged,
    Resolved,
    /// A human update was added (the last of `updates`); notified as
    /// `incident.updated`.
    UpdatePosted,
}

/// One state change, with the incident as it is *after* the change. Changes
/// that notify carry their event id and type; the engine writes the incident
/// and one outbox row per notifier in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub incident: Incident,
    /// `Some` when this change becomes an outbox event.
    pub event: Option<(String, EventType)>,
    /// The cumulative-total entries this change made ([`totals`]); the
    /// engine fills them in and writes them with the change. Empty from the
    /// state machine.
    pub entries: Vec<Entry>,
}

impl ChangeKind {
    fn event_type(&self) -> Option<EventType> {
        match self {
            ChangeKind::Opened => Some(EventType::Opened),
            ChangeKind::Escalated { .. } | ChangeKind::Unacknowledged { .. } => {
                Some(EventType::Escalated)
            }
            ChangeKind::Acknowledged => Some(EventType::Acknowledged),
            ChangeKind::Resolved => Some(EventType::Resolved),
            ChangeKind::UpdatePosted => Some(EventType::UpdatePosted),
            ChangeKind::Updated | ChangeKind::Restored => None,
        }
    }
}

/// Records `kind` on `incident`, assigning the next stable event id when the
/// change notifies.
fn change(kind: ChangeKind, incident: &mut Incident) -> Change {
    let event = kind.event_type().map(|t| {
        incident.events_emitted += 1;
        (
            format!("evt-{}-{}", incident.id, incident.events_emitted),
            t,
        )
    });
    Change {
        kind,
        incident: incident.clone(),
        event,
        entries: Vec::new(),
    }
}

/// The severity a ticket-level alert opens with: one step below `configured`.
pub fn ticket_severity(configured: &str) -> String {
    match configured
        .strip_prefix('P')
        .and_then(|n| n.parse::<u32>().ok())
    {
        Some(n) if (1..4).contains(&n) => format!("P{}", n + 1),
        _ => configured.to_string(),
    }
}

#[cfg(test)]
mod tests;
