//! The `escalation` object of `incident.escalated`: why an incident
//! escalated (a severity raise or a missed acknowledge target), in words
//! and as a closed cause receivers route on.

use serde::{Deserialize, Serialize};

use crate::incident::{Change, ChangeKind};

/// The `escalation` object of an `incident.escalated` event: the two
/// causes share the event type, so a receiver routes on `cause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub cause: EscalationCause,
    /// In words, e.g. "not acknowledged within 10m, the acknowledge target
    /// of P1".
    pub reason: String,
    /// `acknowledge_target` only: the target that passed, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seconds: Option<u64>,
    /// `acknowledge_target` only: the `escalate` notifiers told.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifiers: Vec<String>,
}

/// Why an incident escalated. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationCause {
    /// A page-level trigger raised a ticket-level incident to its configured
    /// severity (`previous_severity` says from what).
    Severity,
    /// The acknowledge target of the incident's severity passed while it
    /// was unacknowledged; the target's `escalate` notifiers were told.
    AcknowledgeTarget,
}

impl Escalation {
    pub(super) fn of(change: &Change) -> Option<Escalation> {
        match &change.kind {
            ChangeKind::Escalated { from, to } => Some(Escalation {
                cause: EscalationCause::Severity,
                reason: format!("severity raised from {from} to {to} by a page-level trigger"),
                target_seconds: None,
                notifiers: Vec::new(),
            }),
            ChangeKind::Unacknowledged { target } => Some(Escalation {
                cause: EscalationCause::AcknowledgeTarget,
                reason: format!(
                    "not acknowledged within {}, the acknowledge target of {}",
                    crate::config::duration::format(*target),
                    change.incident.severity
                ),
                target_seconds: Some(target.as_secs()),
                notifiers: change.incident.escalated_to.clone(),
            }),
            _ => None,
        }
    }
}
