//! Each provider's payload → what it asks sentinel to do ([`Intent`]).
//!
//! | provider | acknowledge | resolve | finds the incident by |
//! |---|---|---|---|
//! | PagerDuty v3 | `incident.acknowledged` | `incident.resolved` | `data.incident_key` (the dedup key) |
//! | Opsgenie | `action: Acknowledge` | `action: Close` | `alert.alias` (the dedup key), else the stored alert id / tiny id |
//! | Slack | button `sentinel_ack` | button `sentinel_resolve` | the button's `value` (the incident id) |
//! | ServiceNow | `state` 2 (In Progress) | `state` 6 (Resolved) or 7 (Closed) | `correlation_id` (the incident id), else the stored `sys_id` / number |
//! | Jira | status changed into category `indeterminate` | … into category `done` | the label `sentinel-<id>`, else the stored issue key / id |
//!
//! Everything else a provider sends is [`Intent::Ignore`] with the reason,
//! including sentinel's own changes coming back: a PagerDuty event whose
//! agent is not a user (sentinel's Events API acknowledge / resolve, an
//! auto-resolve), an Opsgenie action with `source.name` `sentinel` (what the
//! connector sends).

use serde_json::Value;

use crate::config::HookProvider;

/// Slack button that acknowledges; its `value` is the incident id.
pub const SLACK_ACK_ACTION: &str = "sentinel_ack";
/// Slack button that resolves; its `value` is the incident id.
pub const SLACK_RESOLVE_ACTION: &str = "sentinel_resolve";
/// The `block_id` of the actions block carrying both buttons.
pub const SLACK_ACTIONS_BLOCK: &str = "sentinel-actions";

/// Longest `by` kept (as for the API).
const MAX_BY_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Acknowledge,
    Resolve,
}

/// A way to find the sentinel incident a provider object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// The incident id itself.
    Id(String),
    /// A value the ticket connector stored for the incident (provider id,
    /// key, or lookup value): `notify::tickets::Book::find`.
    Ticket {
        provider: &'static str,
        reference: String,
    },
}

/// An acknowledgement or resolution a person made in the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub kind: ActionKind,
    /// Ways to find the incident, tried in order.
    pub refs: Vec<Ref>,
    /// The person the provider names.
    pub by: String,
    /// The provider's event id, when deliveries are deduplicated by it
    /// (PagerDuty).
    pub delivery_id: Option<String>,
    /// Slack: where to update the message the button was in, and that
    /// message as Slack sent it back.
    pub slack: Option<SlackReply>,
}

/// What a Slack interaction needs for its follow-up.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackReply {
    pub response_url: String,
    pub message: Value,
    /// `<@U…>`: how the message mentions the person.
    pub mention: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Act(Action),
    /// Nothing to do; answered 2xx with this reason.
    Ignore(String),
}

/// The body is not what the provider sends (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// What `provider` asks for in `body` (its signature already checked).
pub fn intent(provider: HookProvider, body: &[u8]) -> Result<Intent, ParseError> {
    match provider {
        HookProvider::PagerDuty => pagerduty(&json(body)?),
        HookProvider::Opsgenie => opsgenie(&json(body)?),
        HookProvider::Slack => slack(body),
        HookProvider::ServiceNow => servicenow(&json(body)?),
        HookProvider::Jira => jira(&json(body)?),
    }
}

/// The incident id inside a dedup key `sentinel/<service>/<id>` (service
/// names have no `/`).
pub fn id_from_dedup_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("sentinel/")?;
    let (service, id) = rest.split_once('/')?;
    (!service.is_empty() && !id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

fn json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError(format!("body is not JSON: {e}")))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A string, or a number written as one (`"6"` or `6`).
fn text_or_number(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn person(name: Option<&str>, provider: HookProvider) -> String {
    let name = name.unwrap_or(provider.as_str());
    name.chars().take(MAX_BY_CHARS).collect()
}

fn ignore(reason: impl Into<String>) -> Result<Intent, ParseError> {
    Ok(Intent::Ignore(reason.into()))
}

fn pagerduty(v: &Value) -> Result<Intent, ParseError> {
    let event = v
        .get("event")
        .filter(|e| e.is_object())
        .ok_or_else(|| ParseError("no `event` object: not a v3 webhook".into()))?;
    let kind = match text(event, &["event_type"]) {
        Some("incident.acknowledged") => ActionKind::Acknowledge,
        Some("incident.resolved") => ActionKind::Resolve,
        Some(other) => return ignore(format!("event type `{other}` is not acted on")),
        None => return Err(ParseError("no `event.event_type`".into())),
    };
    let Some(id) = text(event, &["id"]) else {
        return Err(ParseError("no `event.id`".into()));
    };
    // A change made by a service or an integration — sentinel's own
    // acknowledge or resolve event coming back, an auto-resolve timeout —
    // is not a person acting.
    match text(event, &["agent", "type"]) {
        Some("user_reference") => {}
        other => {
            return ignore(format!(
                "not done by a person (agent type `{}`)",
                other.unwrap_or("none")
            ));
        }
    }
    let refs = text(event, &["data", "incident_key"])
        .and_then(id_from_dedup_key)
        .map(Ref::Id)
        .into_iter()
        .collect();
    Ok(Intent::Act(Action {
        kind,
        refs,
        by: person(text(event, &["agent", "summary"]), HookProvider::PagerDuty),
        delivery_id: Some(id.to_string()),
        slack: None,
    }))
}

fn opsgenie(v: &Value) -> Result<Intent, ParseError> {
    let kind = match text(v, &["action"]) {
        Some("Acknowledge") => ActionKind::Acknowledge,
        Some("Close") => ActionKind::Resolve,
        Some(other) => return ignore(format!("action `{other}` is not acted on")),
        None => return Err(ParseError("no `action`".into())),
    };
    let alert = v
        .get("alert")
        .ok_or_else(|| ParseError("no `alert` object".into()))?;
    // sentinel's connector acts with `source: sentinel`: its own change
    // coming back.
    if text(v, &["source", "name"]) == Some("sentinel") {
        return ignore("sentinel's own change (source `sentinel`)");
    }
    let mut refs: Vec<Ref> = text(alert, &["alias"])
        .and_then(id_from_dedup_key)
        .map(Ref::Id)
        .into_iter()
        .collect();
    for key in ["alertId", "tinyId"] {
        if let Some(r) = text(alert, &[key]) {
            refs.push(Ref::Ticket {
                provider: "opsgenie",
                reference: r.to_string(),
            });
        }
    }
    Ok(Intent::Act(Action {
        kind,
        refs,
        by: person(text(alert, &["username"]), HookProvider::Opsgenie),
        delivery_id: None,
        slack: None,
    }))
}

fn slack(body: &[u8]) -> Result<Intent, ParseError> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ParseError("no `payload` form field".into()))?;
    let v: Value = serde_json::from_str(&payload)
        .map_err(|e| ParseError(format!("`payload` is not JSON: {e}")))?;
    match text(&v, &["type"]) {
        Some("block_actions") => {}
        Some(other) => return ignore(format!("interaction type `{other}` is not acted on")),
        None => return Err(ParseError("no `type` in the payload".into())),
    }
    let ours = v
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|a| {
            let kind = match text(a, &["action_id"])? {
                SLACK_ACK_ACTION => ActionKind::Acknowledge,
                SLACK_RESOLVE_ACTION => ActionKind::Resolve,
                _ => return None,
            };
            Some((kind, text(a, &["value"])?.to_string()))
        });
    let Some((kind, id)) = ours else {
        return ignore("no sentinel button in the interaction");
    };
    let user = v.get("user").unwrap_or(&Value::Null);
    let name = text(user, &["username"]).or_else(|| text(user, &["name"]));
    let user_id = text(user, &["id"]);
    let slack = text(&v, &["response_url"]).map(|url| SlackReply {
        response_url: url.to_string(),
        message: v.get("message").cloned().unwrap_or(Value::Null),
        mention: match user_id {
            Some(u) => format!("<@{u}>"),
            None => name.unwrap_or("someone").to_string(),
        },
    });
    Ok(Intent::Act(Action {
        kind,
        refs: vec![Ref::Id(id)],
        by: person(name.or(user_id), HookProvider::Slack),
        delivery_id: None,
        slack,
    }))
}

fn servicenow(v: &Value) -> Result<Intent, ParseError> {
    let state = text_or_number(v, "state").ok_or_else(|| ParseError("no `state`".into()))?;
    let kind = match state.as_str() {
        "2" => ActionKind::Acknowledge,
        "6" | "7" => ActionKind::Resolve,
        other => return ignore(format!("state `{other}` is not acted on")),
    };
    let mut refs: Vec<Ref> = text(v, &["correlation_id"])
        .map(|id| Ref::Id(id.to_string()))
        .into_iter()
        .collect();
    for key in ["sys_id", "number"] {
        if let Some(r) = text(v, &[key]) {
            refs.push(Ref::Ticket {
                provider: "servicenow",
                reference: r.to_string(),
            });
        }
    }
    Ok(Intent::Act(Action {
        kind,
        refs,
        by: person(text(v, &["sys_updated_by"]), HookProvider::ServiceNow),
        delivery_id: None,
        slack: None,
    }))
}

fn jira(v: &Value) -> Result<Intent, ParseError> {
    match text(v, &["webhookEvent"]) {
        Some("jira:issue_updated") => {}
        Some(other) => return ignore(format!("webhook event `{other}` is not acted on")),
        None => return Err(ParseError("no `webhookEvent`".into())),
    }
    let status_changed = v
        .get("changelog")
        .and_then(|c| c.get("items"))
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(|i| text(i, &["field"]) == Some("status")));
    if !status_changed {
        return ignore("the status did not change");
    }
    let issue = v
        .get("issue")
        .ok_or_else(|| ParseError("no `issue` object".into()))?;
    let kind = match text(issue, &["fields", "status", "statusCategory", "key"]) {
        Some("done") => ActionKind::Resolve,
        Some("indeterminate") => ActionKind::Acknowledge,
        Some(other) => return ignore(format!("status category `{other}` is not acted on")),
        None => {
            return Err(ParseError(
                "no `issue.fields.status.statusCategory.key`".into(),
            ));
        }
    };
    let mut refs: Vec<Ref> = issue
        .get("fields")
        .and_then(|f| f.get("labels"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|l| l.strip_prefix("sentinel-"))
        .map(|id| Ref::Id(id.to_string()))
        .collect();
    for key in ["key", "id"] {
        if let Some(r) = text(issue, &[key]) {
            refs.push(Ref::Ticket {
                provider: "jira",
                reference: r.to_string(),
            });
        }
    }
    Ok(Intent::Act(Action {
        kind,
        refs,
        by: person(text(v, &["user", "displayName"]), HookProvider::Jira),
        delivery_id: None,
        slack: None,
    }))
}

#[cfg(test)]
mod tests;
