//! Jira Cloud REST API v3 connector: one issue per incident in the
//! notifier's project.
//!
//! - Lookup: `POST /rest/api/3/search/jql` with `project = "<KEY>" AND labels
//!   = "sentinel-<incident id>" ORDER BY created ASC` (fields `status`, one
//!   result). Search is eventually consistent; see [`crate::notify::tickets`] for
//!   how a create whose answer was lost is not repeated meanwhile.
//! - Create: `POST /rest/api/3/issue` with `project`, `issuetype` (by name),
//!   `summary` (≤ 255 characters, one line), `description` (Atlassian
//!   Document Format), `labels` (`sentinel`, `sentinel-<incident id>` and
//!   any from `fields`), `priority` (by name, from the severity map) and the
//!   notifier's other `fields`; 201 answers `{id, key, self}`.
//! - Acknowledged, and updated (a human update): `POST
//!   /rest/api/3/issue/{key}/comment` (ADF body, a paragraph per line).
//! - Escalated: `PUT /rest/api/3/issue/{key}` with the new `priority` and a
//!   comment (`update.comment`).
//! - Resolved: `GET /rest/api/3/issue/{key}?fields=status`; an issue whose
//!   status category is already `done` gets a comment; otherwise `GET
//!   …/transitions`, pick the one whose name (or target status name) is
//!   `resolve_transition` (case-insensitive), and `POST …/transitions` with
//!   its id and the close notes as a comment. No such transition is a
//!   refusal naming the transitions Jira offers.
//!
//! Authentication is basic: the account's e-mail and an API token. The
//! issue link is `{url}/browse/{key}`.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::config::tickets::JiraSpec;
use crate::incident::EventType;
use crate::notify::Event;
use crate::notify::tickets::{Conn, Failure, Found, join, text};
use crate::store::TicketRow;

/// The label that marks an incident's issue.
pub fn label(incident_id: &str) -> String {
    format!("sentinel-{incident_id}")
}

fn api(spec: &JiraSpec, tail: &[&str]) -> url::Url {
    let mut segs = vec!["rest", "api", "3"];
    segs.extend_from_slice(tail);
    join(&spec.url, &segs)
}

/// The issue's page.
pub fn browse_url(spec: &JiraSpec, key: &str) -> String {
    join(&spec.url, &["browse", key]).to_string()
}

/// A JQL string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An ADF document: one paragraph per line; `http(s)://` words become links.
pub fn adf(lines: &[String]) -> Value {
    let paragraphs: Vec<Value> = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut content = Vec::new();
            let mut plain = String::new();
            for (i, word) in line.split(' ').enumerate() {
                let sep = if i == 0 { "" } else { " " };
                if word.starts_with("http://") || word.starts_with("https://") {
                    plain.push_str(sep);
                    if !plain.is_empty() {
                        content.push(json!({"type": "text", "text": plain}));
                        plain = String::new();
                    }
                    content.push(json!({"type": "text", "text": word,
                        "marks": [{"type": "link", "attrs": {"href": word}}]}));
                } else {
                    plain.push_str(sep);
                    plain.push_str(word);
                }
            }
            if !plain.is_empty() {
                content.push(json!({"type": "text", "text": plain}));
            }
            json!({"type": "paragraph", "content": content})
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

fn found(spec: &JiraSpec, issue: &Value) -> Option<Found> {
    let key = issue.get("key")?.as_str()?.to_string();
    Some(Found {
        url: Some(browse_url(spec, &key)),
        ext_id: issue.get("id").and_then(Value::as_str).map(String::from),
        key,
    })
}

pub async fn find(c: &Conn<'_>, spec: &JiraSpec, ev: &Event) -> Result<Option<Found>, Failure> {
    let jql = format!(
        "project = {} AND labels = {} ORDER BY created ASC",
        quoted(&spec.project),
        quoted(&label(&ev.incident.id))
    );
    let body = json!({"jql": jql, "fields": ["status"], "maxResults": 1});
    let answer = c
        .call(Method::POST, api(spec, &["search", "jql"]), Some(&body))
        .await?
        .ok()?;
    let v = answer.json();
    let Some(issues) = v.get("issues").and_then(Value::as_array) else {
        return Err(Failure::Reject {
            status: answer.status,
            detail: "Jira answered a search without `issues`".into(),
        });
    };
    Ok(issues.first().and_then(|i| found(spec, i)))
}

pub async fn create(c: &Conn<'_>, spec: &JiraSpec, ev: &Event) -> Result<Found, Failure> {
    let mut fields = Map::new();
    let mut labels = vec![json!("sentinel"), json!(label(&ev.incident.id))];
    for (k, v) in &spec.fields {
        if k == "labels" {
            labels.extend(v.as_array().cloned().unwrap_or_default());
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
    fields.insert("project".into(), json!({"key": spec.project}));
    fields.insert("issuetype".into(), json!({"name": spec.issue_type}));
    fields.insert("summary".into(), json!(text::title(ev, 255)));
    fields.insert("description".into(), adf(&text::description(ev)));
    fields.insert("labels".into(), Value::Array(labels));
    if let Some(p) = spec.priority(&ev.incident.severity) {
        fields.insert("priority".into(), json!({"name": p}));
    }
    let answer = c
        .call(
            Method::POST,
            api(spec, &["issue"]),
            Some(&json!({"fields": fields})),
        )
        .await?
        .ok()?;
    found(spec, &answer.json()).ok_or_else(|| Failure::Reject {
        status: answer.status,
        detail: "Jira answered a create without an issue key".into(),
    })
}

/// A comment whose body has one paragraph per line of `note`.
fn comment(note: String) -> Value {
    let lines: Vec<String> = note.lines().map(str::to_string).collect();
    json!({"body": adf(&lines)})
}

pub async fn update(
    c: &Conn<'_>,
    spec: &JiraSpec,
    t: &TicketRow,
    ev: &Event,
) -> Result<(), Failure> {
    let Some(key) = t.key.as_deref() else {
        return Err(Failure::Reject {
            status: 0,
            detail: "stored ticket has no issue key".into(),
        });
    };
    match ev.kind {
        EventType::Opened => Ok(()),
        EventType::Acknowledged | EventType::UpdatePosted => {
            c.call(
                Method::POST,
                api(spec, &["issue", key, "comment"]),
                Some(&comment(text::note(ev))),
            )
            .await?
            .ok()?;
            Ok(())
        }
        EventType::Escalated => {
            let mut body = json!({"update": {"comment": [{"add": comment(text::note(ev))}]}});
            if let Some(p) = spec.priority(&ev.incident.severity) {
                body["fields"] = json!({"priority": {"name": p}});
            }
            c.call(Method::PUT, api(spec, &["issue", key]), Some(&body))
                .await?
                .ok()?;
            Ok(())
        }
        EventType::Resolved => resolve(c, spec, key, ev).await,
    }
}

async fn resolve(c: &Conn<'_>, spec: &JiraSpec, key: &str, ev: &Event) -> Result<(), Failure> {
    let mut url = api(spec, &["issue", key]);
    url.query_pairs_mut().append_pair("fields", "status");
    let issue = c.call(Method::GET, url, None).await?.ok()?.json();
    let category = issue
        .pointer("/fields/status/statusCategory/key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let notes = text::close_notes(ev);
    if category == "done" {
        c.call(
            Method::POST,
            api(spec, &["issue", key, "comment"]),
            Some(&comment(notes)),
        )
        .await?
        .ok()?;
        return Ok(());
    }
    let list = c
        .call(Method::GET, api(spec, &["issue", key, "transitions"]), None)
        .await?
        .ok()?
        .json();
    let transitions = list
        .get("transitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let wanted = spec.resolve_transition.to_lowercase();
    let name_of = |t: &Value, ptr: &str| {
        t.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase()
    };
    let chosen = transitions
        .iter()
        .find(|t| name_of(t, "/name") == wanted)
        .or_else(|| {
            transitions
                .iter()
                .find(|t| name_of(t, "/to/name") == wanted)
        });
    let Some(id) = chosen.and_then(|t| match t.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }) else {
        let offered: Vec<String> = transitions
            .iter()
            .map(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        return Err(Failure::Reject {
            status: 0,
            detail: format!(
                "issue {key} offers no transition named `{}` (offered: {}); set `resolve_transition` to one of them",
                spec.resolve_transition,
                offered.join(", ")
            ),
        });
    };
    let body = json!({
        "transition": {"id": id},
        "update": {"comment": [{"add": comment(notes)}]},
    });
    c.call(
        Method::POST,
        api(spec, &["issue", key, "transitions"]),
        Some(&body),
    )
    .await?
    .ok()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adf_paragraphs_with_links() {
        let doc = adf(&[
            "Service: web".to_string(),
            String::new(),
            "Resolve (API, POST): https://s.example.com/api/v1/incidents/x/resolve".to_string(),
        ]);
        assert_eq!(
            doc,
            json!({"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Service: web"}]},
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Resolve (API, POST): "},
                    {"type": "text", "text": "https://s.example.com/api/v1/incidents/x/resolve",
                     "marks": [{"type": "link", "attrs": {"href": "https://s.example.com/api/v1/incidents/x/resolve"}}]}
                ]}
            ]})
        );
    }

    #[test]
    fn jql_literals_are_escaped() {
        assert_eq!(quoted("OPS"), "\"OPS\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
