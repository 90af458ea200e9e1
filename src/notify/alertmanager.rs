//! Alertmanager: alerts pushed to `{url}/api/v2/alerts`.
//!
//! Alertmanager resolves an alert by itself when its `endsAt` passes, and
//! Prometheus keeps alerts alive by re-sending them. We send on incident
//! changes only, so a firing alert carries a generous `endsAt`
//! ([`OPEN_ALERT_TTL`] after the event is sent); each retry and each later
//! event (ack, escalation) pushes it out again, and the resolution sets
//! `endsAt` to `resolved_at`. An incident open for longer than the TTL with no
//! further event expires in Alertmanager (documented in `docs/webhooks.md`).
//!
//! Labels are `alertname="SentinelIncident"`, `service`, `severity` and
//! `incident_id` (so two incidents of a service are two alerts). An escalation
//! ends the alert of the previous severity in the same POST, since a label
//! change makes a new alert in Alertmanager's eyes.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Event;
use crate::incident::EventType;

/// How long an open incident's alert lives in Alertmanager without news.
pub const OPEN_ALERT_TTL: Duration = Duration::from_secs(24 * 3600);

pub fn alerts_url(base: &url::Url) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
    u.set_path(&path);
    u
}

fn alert(event: &Event, severity: &str, ends_at: Timestamp) -> Value {
    let inc = &event.incident;
    json!({
        "labels": {
            "alertname": "SentinelIncident",
            "service": inc.service,
            "severity": severity,
            "incident_id": inc.id,
        },
        "annotations": {
            "summary": inc.title,
            "description": inc.reason,
            "dedup_key": inc.dedup_key,
            "ack_url": inc.links.ack,
            "resolve_url": inc.links.resolve,
        },
        "startsAt": inc.impact_started_at,
        "endsAt": ends_at,
        "generatorURL": inc.links.ack,
    })
}

/// The JSON array to POST, at send time `now`.
pub fn body(event: &Event, now: Timestamp) -> Value {
    let inc = &event.incident;
    let ttl = SignedDuration::try_from(OPEN_ALERT_TTL).unwrap_or(SignedDuration::ZERO);
    let ends_at = match (event.kind, inc.resolved_at) {
        (EventType::Resolved, Some(at)) => at,
        (EventType::Resolved, None) => event.occurred_at,
        _ => now.checked_add(ttl).unwrap_or(Timestamp::MAX),
    };
    let mut alerts = vec![alert(event, &inc.severity, ends_at)];
    if let Some(prev) = &event.previous_severity
        && event.kind == EventType::Escalated
    {
        alerts.push(alert(event, prev, event.occurred_at));
    }
    Value::Array(alerts)
}
