//! ServiceNow Table API connector: one record per incident in the
//! notifier's table (default `incident`).
//!
//! - Lookup: `GET /api/now/table/{table}?sysparm_query=correlation_id=<incident
//!   id>^ORDERBYsys_created_on&sysparm_fields=sys_id,number,state&sysparm_limit=1`.
//! - Create: `POST /api/now/table/{table}` with `short_description`,
//!   `description`, `correlation_id` (the incident id), `correlation_display`
//!   (`sentinel`), `impact` and `urgency` from the severity map, and the
//!   notifier's `fields`; 201 answers the record (`sys_id`, `number`).
//! - Acknowledged: `PATCH …/{sys_id}` with a `work_notes` entry.
//! - Escalated: `PATCH` with the new `impact`/`urgency` and a work note.
//! - Updated (a human update): `PATCH` with a `work_notes` entry; for a
//!   resolved incident, `GET …/{sys_id}` first and a closed (7) or
//!   cancelled (8) record is left alone (read-only).
//! - Resolved: `GET …/{sys_id}` first; a record already resolved (6) gets a
//!   work note, one closed (7) or cancelled (8) is left alone (closed
//!   records are read-only); otherwise `PATCH` `state: 6`, `close_code`
//!   and `close_notes` (the resolution data policy requires both).
//!
//! Every request sends `Accept: application/json`; writes send JSON. The
//! record link is `{url}/{table}.do?sys_id=<sys_id>`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::config::tickets::ServiceNowSpec;
use crate::incident::{EventType, State};
use crate::notify::Event;
use crate::notify::tickets::{Conn, Failure, Found, join, text};
use crate::store::TicketRow;

/// States of the `incident` table.
const RESOLVED: &str = "6";
const CLOSED: &str = "7";
const CANCELED: &str = "8";

fn table_url(spec: &ServiceNowSpec, sys_id: Option<&str>) -> url::Url {
    let mut segs = vec!["api", "now", "table", spec.table.as_str()];
    if let Some(id) = sys_id {
        segs.push(id);
    }
    join(&spec.url, &segs)
}

/// The record's page in the ServiceNow UI.
pub fn record_url(spec: &ServiceNowSpec, sys_id: &str) -> String {
    let mut u = join(&spec.url, &[&format!("{}.do", spec.table)]);
    u.query_pairs_mut().append_pair("sys_id", sys_id);
    u.to_string()
}

fn found(spec: &ServiceNowSpec, rec: &Value) -> Option<Found> {
    let sys_id = rec.get("sys_id")?.as_str()?.to_string();
    let number = rec
        .get("number")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(&sys_id)
        .to_string();
    Some(Found {
        url: Some(record_url(spec, &sys_id)),
        key: number,
        ext_id: Some(sys_id),
    })
}

fn malformed(what: &str) -> Failure {
    Failure::Reject {
        status: 200,
        detail: format!("ServiceNow answered {what} without a record (sys_id)"),
    }
}

pub async fn find(
    c: &Conn<'_>,
    spec: &ServiceNowSpec,
    ev: &Event,
) -> Result<Option<Found>, Failure> {
    let mut url = table_url(spec, None);
    url.query_pairs_mut()
        .append_pair(
            "sysparm_query",
            &format!("correlation_id={}^ORDERBYsys_created_on", ev.incident.id),
        )
        .append_pair("sysparm_fields", "sys_id,number,state")
        .append_pair("sysparm_limit", "1")
        .append_pair("sysparm_exclude_reference_link", "true");
    let answer = c.call(Method::GET, url, None).await?;
    if answer.status == 404 {
        // Some instances answer an empty query result this way.
        return Ok(None);
    }
    let v = answer.ok()?.json();
    let Some(list) = v.get("result").and_then(Value::as_array) else {
        return Err(malformed("a lookup"));
    };
    Ok(list.first().and_then(|r| found(spec, r)))
}

fn urgency(spec: &ServiceNowSpec, severity: &str, body: &mut Map<String, Value>) {
    if let Some(u) = spec.urgency(severity) {
        body.insert("impact".into(), json!(u.impact.to_string()));
        body.insert("urgency".into(), json!(u.urgency.to_string()));
    }
}

pub async fn create(c: &Conn<'_>, spec: &ServiceNowSpec, ev: &Event) -> Result<Found, Failure> {
    let mut body = Map::new();
    for (k, v) in &spec.fields {
        body.insert(k.clone(), json!(v));
    }
    body.insert("short_description".into(), json!(text::title(ev, 160)));
    body.insert(
        "description".into(),
        json!(text::description(ev).join("\n")),
    );
    body.insert("correlation_id".into(), json!(ev.incident.id));
    body.insert("correlation_display".into(), json!("sentinel"));
    urgency(spec, &ev.incident.severity, &mut body);
    let mut url = table_url(spec, None);
    url.query_pairs_mut()
        .append_pair("sysparm_fields", "sys_id,number,state")
        .append_pair("sysparm_exclude_reference_link", "true");
    let answer = c
        .call(Method::POST, url, Some(&Value::Object(body)))
        .await?
        .ok()?;
    answer
        .json()
        .get("result")
        .and_then(|r| found(spec, r))
        .ok_or_else(|| malformed("a create"))
}

async fn patch(
    c: &Conn<'_>,
    spec: &ServiceNowSpec,
    sys_id: &str,
    body: Value,
) -> Result<(), Failure> {
    let mut url = table_url(spec, Some(sys_id));
    url.query_pairs_mut()
        .append_pair("sysparm_fields", "sys_id,state");
    c.call(Method::PATCH, url, Some(&body)).await?.ok()?;
    Ok(())
}

/// The record's `state` now.
async fn record_state(
    c: &Conn<'_>,
    spec: &ServiceNowSpec,
    sys_id: &str,
) -> Result<String, Failure> {
    let mut url = table_url(spec, Some(sys_id));
    url.query_pairs_mut()
        .append_pair("sysparm_fields", "sys_id,state")
        .append_pair("sysparm_exclude_reference_link", "true");
    let answer = c.call(Method::GET, url, None).await?.ok()?;
    Ok(answer
        .json()
        .get("result")
        .and_then(|r| r.get("state"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

pub async fn update(
    c: &Conn<'_>,
    spec: &ServiceNowSpec,
    t: &TicketRow,
    ev: &Event,
) -> Result<(), Failure> {
    let Some(sys_id) = t.ext_id.as_deref() else {
        return Err(Failure::Reject {
            status: 0,
            detail: format!("stored ticket {:?} has no sys_id", t.key),
        });
    };
    match ev.kind {
        EventType::Opened => Ok(()),
        EventType::Acknowledged => {
            patch(c, spec, sys_id, json!({"work_notes": text::note(ev)})).await
        }
        EventType::Escalated => {
            let mut body = Map::new();
            urgency(spec, &ev.incident.severity, &mut body);
            body.insert("work_notes".into(), json!(text::note(ev)));
            patch(c, spec, sys_id, Value::Object(body)).await
        }
        EventType::UpdatePosted => {
            // A record closed since the incident resolved is read-only.
            if ev.incident.state == State::Resolved
                && matches!(
                    record_state(c, spec, sys_id).await?.as_str(),
                    CLOSED | CANCELED
                )
            {
                return Ok(());
            }
            patch(c, spec, sys_id, json!({"work_notes": text::note(ev)})).await
        }
        EventType::Resolved => {
            let state = record_state(c, spec, sys_id).await?;
            match state.as_str() {
                RESOLVED => {
                    patch(
                        c,
                        spec,
                        sys_id,
                        json!({"work_notes": text::close_notes(ev)}),
                    )
                    .await
                }
                CLOSED | CANCELED => Ok(()),
                _ => {
                    patch(
                        c,
                        spec,
                        sys_id,
                        json!({
                            "state": RESOLVED,
                            "close_code": spec.close_code,
                            "close_notes": text::close_notes(ev),
                        }),
                    )
                    .await
                }
            }
        }
    }
}
