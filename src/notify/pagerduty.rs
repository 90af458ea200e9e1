//! PagerDuty Events API v2.
//!
//! `incident.opened` and `incident.escalated` → `trigger` (a second trigger on
//! the same `dedup_key` updates the alert, e.g. its severity);
//! `incident.acknowledged` → `acknowledge`; `incident.resolved` → `resolve`.
//! Human updates (`incident.updated`) are not sent: Events v2 has no notes.
//! Only triggers carry a `payload` (PagerDuty ignores it otherwise).

use serde_json::{Value, json};

use super::Event;
use crate::incident::EventType;

/// PagerDuty caps `summary` at 1024 characters.
const SUMMARY_MAX_CHARS: usize = 1024;

/// Map sentinel severities to PagerDuty's four; unknown names are `error`.
pub fn severity(sev: &str) -> &'static str {
    match sev {
        "P1" => "critical",
        "P2" => "error",
        "P3" => "warning",
        "P4" | "P5" => "info",
        _ => "error",
    }
}

pub fn body(event: &Event, routing_key: &str) -> Value {
    let inc = &event.incident;
    let action = match event.kind {
        EventType::Opened | EventType::Escalated => "trigger",
        EventType::Acknowledged => "acknowledge",
        EventType::Resolved => "resolve",
        // Never written for PagerDuty (`notify::carries`: Events v2 has no
        // notes); were one sent, it would restate the incident's state.
        EventType::UpdatePosted => match (inc.state, inc.acknowledged_at) {
            (crate::incident::State::Resolved, _) => "resolve",
            (_, Some(_)) => "acknowledge",
            (_, None) => "trigger",
        },
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": inc.dedup_key,
    });
    if action == "trigger" {
        let summary: String = format!("[{}] {}: {}", inc.severity, inc.title, inc.reason)
            .chars()
            .take(SUMMARY_MAX_CHARS)
            .collect();
        body["payload"] = json!({
            "summary": summary,
            "source": "sentinel",
            "severity": severity(&inc.severity),
            "timestamp": inc.impact_started_at,
            "component": inc.service,
            "custom_details": {
                "incident_id": inc.id,
                "event_id": event.id,
                "severity": inc.severity,
                "reason": inc.reason,
                "impact_started_at": inc.impact_started_at,
                "opened_at": inc.opened_at,
                "availability_ratio": inc.availability_ratio,
                "error_budget_remaining_ratio": inc.error_budget_remaining_ratio,
            },
        });
        if let Some(e) = &event.escalation {
            body["payload"]["custom_details"]["escalation"] = json!(e.reason);
        }
        body["links"] = json!([
            {"href": inc.links.ack, "text": "Acknowledge in sentinel"},
            {"href": inc.links.resolve, "text": "Resolve in sentinel"},
        ]);
    }
    body
}
