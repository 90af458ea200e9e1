//! Opsgenie Alert API v2 connector (also Jira Service Management Ops, which
//! serves the same API under another base URL): one alert per incident,
//! whose `alias` is the incident's dedup key.
//!
//! - Lookup: `GET /v2/alerts/{alias}?identifierType=alias` (404: none).
//! - Create: `POST /v2/alerts` with `message` (≤ 130 characters), `alias`,
//!   `description`, `tags` (`sentinel`, the service, the severity, plus any
//!   from `fields`), `details` (service, severity, incident id, links),
//!   `entity` (the service), `source` (`sentinel`), `priority` (from the
//!   severity map) and the notifier's other `fields`. Opsgenie answers 202
//!   and processes the request later; sentinel then reads
//!   `GET /v2/alerts/requests/{requestId}` (a few times within about a
//!   second) and `GET /v2/alerts/{alertId}` for the tiny id. When Opsgenie
//!   has not processed it yet, the ticket's key is the alias and later
//!   updates address the alert by alias. Opsgenie itself de-duplicates
//!   creates by alias while the alert is open.
//! - Acknowledged: `POST /v2/alerts/{id}/acknowledge` (`user`, `source`, `note`).
//! - Escalated: `PUT /v2/alerts/{id}/priority`, then `POST …/notes`.
//! - Updated (a human update): `POST …/notes` (`user` is its author), also
//!   on a closed alert.
//! - Resolved: `POST /v2/alerts/{id}/close` with the close notes as `note`.
//!
//! Authentication: `Authorization: GenieKey <api key>`. Updates are
//! accepted with 202 and applied asynchronously by Opsgenie.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::config::tickets::OpsgenieSpec;
use crate::incident::EventType;
use crate::notify::Event;
use crate::notify::tickets::{Conn, Failure, Found, join, text};
use crate::store::TicketRow;

/// How long sentinel waits between reads of a create request's status.
const REQUEST_POLLS: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(600),
];

fn alerts(spec: &OpsgenieSpec, tail: &[&str]) -> url::Url {
    let mut segs = vec!["v2", "alerts"];
    segs.extend_from_slice(tail);
    join(&spec.url, &segs)
}

/// `(identifier, identifierType)` of the stored alert: its id when known,
/// else its alias.
fn target(t: &TicketRow) -> (String, &'static str) {
    match &t.ext_id {
        Some(id) => (id.clone(), "id"),
        None => (t.lookup.clone(), "alias"),
    }
}

fn found_alert(data: &Value, alias: &str) -> Option<Found> {
    let id = data.get("id").and_then(Value::as_str)?.to_string();
    let key = data
        .get("tinyId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(alias)
        .to_string();
    Some(Found {
        key,
        ext_id: Some(id),
        url: None,
    })
}

async fn get_alert(
    c: &Conn<'_>,
    spec: &OpsgenieSpec,
    identifier: &str,
    kind: &str,
) -> Result<Option<Value>, Failure> {
    let mut url = alerts(spec, &[identifier]);
    url.query_pairs_mut().append_pair("identifierType", kind);
    let answer = c.call(Method::GET, url, None).await?;
    if answer.status == 404 {
        return Ok(None);
    }
    Ok(answer.ok()?.json().get("data").cloned())
}

pub async fn find(c: &Conn<'_>, spec: &OpsgenieSpec, ev: &Event) -> Result<Option<Found>, Failure> {
    let alias = &ev.incident.dedup_key;
    Ok(get_alert(c, spec, alias, "alias")
        .await?
        .and_then(|d| found_alert(&d, alias)))
}

pub async fn create(c: &Conn<'_>, spec: &OpsgenieSpec, ev: &Event) -> Result<Found, Failure> {
    let i = &ev.incident;
    let mut body = Map::new();
    let mut tags = vec![json!("sentinel"), json!(i.service), json!(i.severity)];
    let mut details = Map::new();
    for (k, v) in &spec.fields {
        match k.as_str() {
            "tags" => tags.extend(v.as_array().cloned().unwrap_or_default()),
            "details" => {
                if let Some(m) = v.as_object() {
                    details.extend(m.clone());
                }
            }
            _ => {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    tags.truncate(20);
    for (k, v) in [
        ("service", i.service.as_str()),
        ("severity", i.severity.as_str()),
        ("incident", i.id.as_str()),
        ("acknowledge", i.links.ack.as_str()),
        ("resolve", i.links.resolve.as_str()),
    ] {
        details.insert(k.into(), json!(v));
    }
    body.insert("message".into(), json!(text::title(ev, 130)));
    body.insert("alias".into(), json!(i.dedup_key));
    body.insert(
        "description".into(),
        json!(text::cut(&text::description(ev).join("\n"), 15_000)),
    );
    body.insert("tags".into(), Value::Array(tags));
    body.insert("details".into(), Value::Object(details));
    body.entry("entity").or_insert_with(|| json!(i.service));
    body.insert("source".into(), json!("sentinel"));
    if let Some(p) = spec.priority(&i.severity) {
        body.insert("priority".into(), json!(p));
    }
    let answer = c
        .call(Method::POST, alerts(spec, &[]), Some(&Value::Object(body)))
        .await?
        .ok()?;
    let request = answer
        .json()
        .get("requestId")
        .and_then(Value::as_str)
        .map(String::from);
    let placeholder = Found {
        key: i.dedup_key.clone(),
        ext_id: None,
        url: None,
    };
    let Some(request) = request else {
        return Ok(placeholder);
    };
    for wait in REQUEST_POLLS {
        tokio::time::sleep(wait).await;
        let status = c
            .call(Method::GET, alerts(spec, &["requests", &request]), None)
            .await?;
        if status.status == 404 {
            continue; // not processed yet
        }
        let data = status.ok()?.json().get("data").cloned().unwrap_or_default();
        if data.get("isSuccess").and_then(Value::as_bool) == Some(false) {
            return Err(Failure::Reject {
                status: 202,
                detail: format!(
                    "Opsgenie did not create the alert: {}",
                    data.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown reason")
                ),
            });
        }
        let Some(id) = data.get("alertId").and_then(Value::as_str) else {
            continue;
        };
        return Ok(get_alert(c, spec, id, "id")
            .await?
            .and_then(|d| found_alert(&d, &i.dedup_key))
            .unwrap_or(Found {
                ext_id: Some(id.to_string()),
                ..placeholder
            }));
    }
    Ok(placeholder)
}

async fn action(
    c: &Conn<'_>,
    spec: &OpsgenieSpec,
    t: &TicketRow,
    method: Method,
    verb: &str,
    body: Value,
) -> Result<(), Failure> {
    let (id, kind) = target(t);
    let mut url = alerts(spec, &[&id, verb]);
    url.query_pairs_mut().append_pair("identifierType", kind);
    c.call(method, url, Some(&body)).await?.ok()?;
    Ok(())
}

/// The `user` of a human update's note: its author (Opsgenie allows 100
/// characters).
fn event_user(ev: &Event) -> String {
    text::cut(
        ev.update.as_ref().map_or("sentinel", |u| u.by.as_str()),
        100,
    )
}

pub async fn update(
    c: &Conn<'_>,
    spec: &OpsgenieSpec,
    t: &TicketRow,
    ev: &Event,
) -> Result<(), Failure> {
    let i = &ev.incident;
    let note = text::cut(&text::note(ev), 25_000);
    match ev.kind {
        EventType::Opened => Ok(()),
        EventType::Acknowledged => {
            let user = text::cut(i.acknowledged_by.as_deref().unwrap_or("sentinel"), 100);
            action(
                c,
                spec,
                t,
                Method::POST,
                "acknowledge",
                json!({"user": user, "source": "sentinel", "note": note}),
            )
            .await
        }
        EventType::Escalated => {
            if let Some(p) = spec.priority(&i.severity) {
                action(c, spec, t, Method::PUT, "priority", json!({"priority": p})).await?;
            }
            action(
                c,
                spec,
                t,
                Method::POST,
                "notes",
                json!({"user": "sentinel", "source": "sentinel", "note": note}),
            )
            .await
        }
        EventType::UpdatePosted => {
            let user = event_user(ev);
            action(
                c,
                spec,
                t,
                Method::POST,
                "notes",
                json!({"user": user, "source": "sentinel", "note": note}),
            )
            .await
        }
        EventType::Resolved => {
            let user = match i.resolved_by.as_deref() {
                None | Some("auto") => "sentinel".to_string(),
                Some(by) => text::cut(by, 100),
            };
            action(
                c,
                spec,
                t,
                Method::POST,
                "close",
                json!({"user": user, "source": "sentinel", "note": note}),
            )
            .await
        }
    }
}
