//! Alertmanager: alerts pushed to `{url}/api/v2/alerts`.
//!
//! Alertmanager resolves an alert by itself when its `endsAt` passes, and
//! Prometheus keeps its alerts alive by sending them again. sentinel does
//! the same: a firing alert carries `endsAt` = send time + four times the
//! notifier's `repost_every` ([`crate::config::alertmanager_ends_after`]),
//! and while the incident is open its alert is sent again every
//! `repost_every` ([`repost`], driven by the notifier's delivery task), so
//! it never expires however long the incident stays open, and an
//! Alertmanager that restarted (it keeps no alerts on disk) has it again
//! within one period. The resolution sets `endsAt` to `resolved_at`.
//!
//! Labels are `alertname="SentinelIncident"`, `service`, `severity` and
//! `incident_id` (so two incidents of a service are two alerts). A severity
//! escalation ends the alert of the previous severity in the same POST,
//! since a label change makes a new alert in Alertmanager's eyes.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Event;
use crate::incident::EventType;

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

/// The JSON array to POST, at send time `now`; an open incident's alert
/// ends `ends_after` from `now` unless sent again.
pub fn body(event: &Event, now: Timestamp, ends_after: Duration) -> Value {
    Value::Array(alerts(event, now, ends_after))
}

fn alerts(event: &Event, now: Timestamp, ends_after: Duration) -> Vec<Value> {
    let inc = &event.incident;
    let ttl = SignedDuration::try_from(ends_after).unwrap_or(SignedDuration::MAX);
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
    alerts
}

/// The re-post of open incidents' alerts: one POST body for `events` (the
/// last event each incident's alert was sent with), every firing alert
/// pushed out to `now + ends_after`. Events of resolved incidents are left
/// out: a re-post never revives an ended alert.
pub fn repost(events: &[Event], now: Timestamp, ends_after: Duration) -> Value {
    Value::Array(
        events
            .iter()
            .filter(|e| e.kind != EventType::Resolved)
            .flat_map(|e| alerts(e, now, ends_after))
            .collect(),
    )
}
