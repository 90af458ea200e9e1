//! PagerDuty Events API v2 fake, and signed v3 webhooks.
//!
//! # Sources
//! - "Send an Alert Event" (`PagerDuty/developer-docs`,
//!   `docs/events-API-v2/02-Trigger-Events.md`;
//!   <https://developer.pagerduty.com/docs/send-alert-event>): `routing_key`
//!   is the 32-character integration key; `event_action` trigger /
//!   acknowledge / resolve; `dedup_key` ≤ 255; `payload.summary` (≤ 1024),
//!   `payload.source`, `payload.severity` (critical, error, warning, info)
//!   required for triggers; de-duplication: events for an open alert's
//!   `dedup_key` apply to it; once resolved, a trigger opens a new alert and
//!   acknowledge/resolve are dropped; only the same `routing_key` applies.
//! - "Events API v2 Overview": 202 accepted, 400 bad request, 429 retry,
//!   5xx retry; payloads ≤ 512 KB.
//! - "Webhooks v3 Overview" (`docs/webhooks/01-Overview.md`): payload
//!   `{"event": {id, event_type, resource_type, occurred_at, agent, client,
//!   data}}`; for `incident.*` events `data` is the incident, which carries
//!   `incident_key`.
//! - "Verifying Signatures" (`docs/webhooks/04-Signatures.md`):
//!   `X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, raw body)>`, one per
//!   signing secret, comma-separated during secret rotation.
//! - "Webhook Behavior" (`docs/webhooks/02-Behavior.md`): `X-Webhook-Id` is
//!   unique per webhook and repeated on every delivery attempt; retries on
//!   5xx/429/timeouts, up to 5 attempts.
//! - The 400 body `{"status":"invalid event","message":"Event object is
//!   invalid","errors":[...]}` with messages like `'payload.severity' is
//!   missing or blank` as reported by clients of the real API; success body
//!   `{"status":"success","message":"Event processed","dedup_key":...}`.
//!
//! # The incident key
//! A v3 `incident.*` webhook names the incident's `data.incident_key`. For an
//! incident opened by an Events API v2 trigger this is the event's
//! `dedup_key` (what sentinel sets to the incident's dedup key), as long as
//! the service does not group several alerts into one incident (Intelligent
//! or content-based alert grouping gives the incident its own key; the docs
//! do not spell this out). [`webhook_v3`] sets `incident_key` = `dedup_key`.
//!
//! # Choices where the docs are silent
//! - An unknown (but 32-character) routing key is refused 400 `Invalid
//!   routing key`; a non-JSON content type is refused 400 `[fake]`.
//! - The exact wording of length/enum errors is a best effort.
//! - `User-Agent: PagerDuty-Webhook/V3.0` and `X-Webhook-Subscription` on
//!   webhooks.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::server::{Handler, Ids, Outcome, Request, Response, Server, lock};
use super::{Clock, HookRequest, default_clock, hmac_sha256_hex};

pub struct Config {
    /// Integration keys that exist (32 characters each).
    pub routing_keys: Vec<String>,
    pub clock: Arc<dyn Clock>,
    pub seed: u64,
}

/// The default integration key.
pub const ROUTING_KEY: &str = "e93facc04764012d7bfb002500d5d1a6";

impl Default for Config {
    fn default() -> Config {
        Config {
            routing_keys: vec![ROUTING_KEY.to_string()],
            clock: default_clock(),
            seed: 0,
        }
    }
}

/// An alert (and its incident) as PagerDuty holds it.
#[derive(Debug, Clone)]
pub struct PdAlert {
    pub routing_key: String,
    pub dedup_key: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    pub summary: String,
    pub source: String,
    pub severity: String,
    pub custom_details: Value,
    /// Trigger events applied (1 for a fresh alert).
    pub triggers: u64,
    pub incident_id: String,
    pub incident_number: u64,
    pub created_at: String,
    /// `(event_action or person action, by)` in order.
    pub log: Vec<(String, String)>,
}

/// One accepted event and whether it changed anything.
#[derive(Debug, Clone, PartialEq)]
pub struct PdEvent {
    pub routing_key: String,
    pub event_action: String,
    pub dedup_key: String,
    /// `false` when dropped (acknowledge/resolve with no open alert).
    pub applied: bool,
}

#[derive(Default)]
struct State {
    alerts: Vec<PdAlert>,
    events: Vec<PdEvent>,
    number: u64,
}

struct Inner {
    cfg: Config,
    ids: Ids,
    state: Mutex<State>,
}

/// A running PagerDuty Events API fake. Derefs to its [`Server`].
pub struct PagerDuty {
    server: Server,
    inner: Arc<Inner>,
}

impl std::ops::Deref for PagerDuty {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl PagerDuty {
    pub async fn start(config: Config) -> PagerDuty {
        let inner = Arc::new(Inner {
            ids: Ids::new(config.seed),
            cfg: config,
            state: Mutex::new(State::default()),
        });
        let server = Server::start(Arc::clone(&inner) as Arc<dyn Handler>).await;
        PagerDuty { server, inner }
    }

    /// `http://127.0.0.1:<port>/v2/enqueue`.
    pub fn enqueue_url(&self) -> String {
        format!("{}/v2/enqueue", self.server.base_url())
    }

    pub fn alerts(&self) -> Vec<PdAlert> {
        lock(&self.inner.state).alerts.clone()
    }

    /// Every alert ever opened for `dedup_key`, oldest first.
    pub fn by_dedup_key(&self, dedup_key: &str) -> Vec<PdAlert> {
        self.alerts()
            .into_iter()
            .filter(|a| a.dedup_key == dedup_key)
            .collect()
    }

    /// Accepted events, in order.
    pub fn events(&self) -> Vec<PdEvent> {
        lock(&self.inner.state).events.clone()
    }

    /// Acts out a responder acknowledging the open alert in PagerDuty.
    pub fn acknowledge_as(&self, dedup_key: &str, user: &str) -> Option<PdAlert> {
        self.person(dedup_key, user, "acknowledged")
    }

    /// Acts out a responder resolving the open alert in PagerDuty.
    pub fn resolve_as(&self, dedup_key: &str, user: &str) -> Option<PdAlert> {
        self.person(dedup_key, user, "resolved")
    }

    fn person(&self, dedup_key: &str, user: &str, status: &str) -> Option<PdAlert> {
        let mut state = lock(&self.inner.state);
        let a = state
            .alerts
            .iter_mut()
            .rev()
            .find(|a| a.dedup_key == dedup_key && a.status != "resolved")?;
        a.status = status.to_string();
        a.log.push((status.to_string(), user.to_string()));
        Some(a.clone())
    }
}

/// A PagerDuty user acting on an incident.
#[derive(Debug, Clone)]
pub struct PdUser {
    pub id: String,
    pub summary: String,
}

/// What a v3 webhook subscription POSTs for `event_type`
/// (`incident.acknowledged`, `incident.resolved`, ...) on `alert`'s
/// incident, signed with each of `secrets` (comma-separated `v1=` values).
pub fn webhook_v3(
    event_type: &str,
    alert: &PdAlert,
    agent: &PdUser,
    event_id: &str,
    occurred_at: &str,
    secrets: &[&str],
) -> HookRequest {
    let base = "https://acme.pagerduty.com";
    let api = "https://api.pagerduty.com";
    let status = match event_type {
        "incident.acknowledged" => "acknowledged",
        "incident.resolved" => "resolved",
        "incident.triggered" | "incident.unacknowledged" | "incident.reopened" => "triggered",
        _ => alert.status.as_str(),
    };
    let body = json!({
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": {
                "html_url": format!("{base}/users/{}", agent.id),
                "id": agent.id,
                "self": format!("{api}/users/{}", agent.id),
                "summary": agent.summary,
                "type": "user_reference",
            },
            "client": null,
            "data": {
                "id": alert.incident_id,
                "type": "incident",
                "self": format!("{api}/incidents/{}", alert.incident_id),
                "html_url": format!("{base}/incidents/{}", alert.incident_id),
                "number": alert.incident_number,
                "status": status,
                "incident_key": alert.dedup_key,
                "created_at": alert.created_at,
                "title": alert.summary,
                "service": {
                    "html_url": format!("{base}/services/PSENTNL"),
                    "id": "PSENTNL",
                    "self": format!("{api}/services/PSENTNL"),
                    "summary": "sentinel",
                    "type": "service_reference",
                },
                "assignees": [],
                "escalation_policy": {
                    "html_url": format!("{base}/escalation_policies/PDEFLT1"),
                    "id": "PDEFLT1",
                    "self": format!("{api}/escalation_policies/PDEFLT1"),
                    "summary": "Default",
                    "type": "escalation_policy_reference",
                },
                "teams": [],
                "priority": null,
                "urgency": "high",
                "conference_bridge": null,
                "resolve_reason": null,
            },
        }
    });
    let raw = body.to_string().into_bytes();
    let signatures = secrets
        .iter()
        .map(|s| format!("v1={}", hmac_sha256_hex(s.as_bytes(), &raw)))
        .collect::<Vec<_>>()
        .join(",");
    HookRequest {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), "PagerDuty-Webhook/V3.0".into()),
            ("X-Webhook-Id".into(), format!("wh-{event_id}")),
            ("X-Webhook-Subscription".into(), "PSUBSCR".into()),
            ("X-PagerDuty-Signature".into(), signatures),
        ],
        body: raw,
    }
}

fn invalid(errors: Vec<String>) -> Outcome {
    let reason = errors.join("; ");
    Outcome::Rejected(
        Response::json(
            400,
            &json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
        ),
        reason,
    )
}

const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

impl Inner {
    fn enqueue(&self, req: &Request) -> Outcome {
        if req.media_type().as_deref() != Some("application/json") {
            return Outcome::Rejected(
                Response::json(
                    400,
                    &json!({"status": "invalid event", "message": "Event object is invalid",
                            "errors": ["Content-Type must be application/json"]}),
                ),
                "[fake] Content-Type is not application/json".into(),
            );
        }
        let Some(Value::Object(body)) = req.json() else {
            return invalid(vec!["Event object is not valid JSON".into()]);
        };
        let s = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let mut errors = Vec::new();
        let routing_key = s(body.get("routing_key"));
        if routing_key.is_empty() {
            errors.push("'routing_key' is missing or blank".to_string());
        } else if routing_key.chars().count() != 32 {
            errors
                .push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string());
        } else if !self.cfg.routing_keys.contains(&routing_key) {
            errors.push("Invalid routing key".to_string());
        }
        let action = s(body.get("event_action"));
        if action.is_empty() {
            errors.push("'event_action' is missing or blank".to_string());
        } else if !["trigger", "acknowledge", "resolve"].contains(&action.as_str()) {
            errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')".to_string());
        }
        let mut dedup_key = s(body.get("dedup_key"));
        if dedup_key.chars().count() > 255 {
            errors
                .push("Length of 'dedup_key' is too long (maximum is 255 characters)".to_string());
        }
        if (action == "acknowledge" || action == "resolve") && dedup_key.is_empty() {
            errors.push("'dedup_key' is missing or blank".to_string());
        }
        let payload = body.get("payload");
        if action == "trigger" {
            match payload {
                Some(Value::Object(p)) => {
                    let summary = s(p.get("summary"));
                    if summary.is_empty() {
                        errors.push("'payload.summary' is missing or blank".to_string());
                    } else if summary.chars().count() > 1024 {
                        errors.push(
                            "Length of 'payload.summary' is too long (maximum is 1024 characters)"
                                .to_string(),
                        );
                    }
                    if s(p.get("source")).is_empty() {
                        errors.push("'payload.source' is missing or blank".to_string());
                    }
                    let severity = s(p.get("severity"));
                    if severity.is_empty() {
                        errors.push("'payload.severity' is missing or blank".to_string());
                    } else if !SEVERITIES.contains(&severity.as_str()) {
                        errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')".to_string());
                    }
                    if p.get("timestamp").is_some_and(|ts| {
                        ts.as_str()
                            .is_none_or(|t| t.parse::<jiff::Timestamp>().is_err())
                    }) {
                        errors.push("'payload.timestamp' is invalid".to_string());
                    }
                }
                _ => errors.push("'payload' is missing or blank".to_string()),
            }
        }
        if !errors.is_empty() {
            return invalid(errors);
        }
        if dedup_key.is_empty() {
            dedup_key = self.ids.hex32("dedup_key");
        }
        let now = self
            .cfg
            .clock
            .now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut state = lock(&self.state);
        let open = state.alerts.iter().rposition(|a| {
            a.routing_key == routing_key && a.dedup_key == dedup_key && a.status != "resolved"
        });
        let applied = match (action.as_str(), open) {
            ("trigger", Some(i)) => {
                state.alerts[i].triggers += 1;
                state.alerts[i]
                    .log
                    .push(("trigger".into(), "events-api".into()));
                true
            }
            ("trigger", None) => {
                let p = payload.cloned().unwrap_or(Value::Null);
                state.number += 1;
                let number = state.number;
                let id = format!("Q{}", self.ids.hex32("incident")[..6].to_ascii_uppercase());
                state.alerts.push(PdAlert {
                    routing_key: routing_key.clone(),
                    dedup_key: dedup_key.clone(),
                    status: "triggered".into(),
                    summary: s(p.get("summary")),
                    source: s(p.get("source")),
                    severity: s(p.get("severity")),
                    custom_details: p.get("custom_details").cloned().unwrap_or(Value::Null),
                    triggers: 1,
                    incident_id: id,
                    incident_number: number,
                    created_at: now,
                    log: vec![("trigger".into(), "events-api".into())],
                });
                true
            }
            ("acknowledge", Some(i)) => {
                if state.alerts[i].status == "triggered" {
                    state.alerts[i].status = "acknowledged".into();
                }
                state.alerts[i]
                    .log
                    .push(("acknowledge".into(), "events-api".into()));
                true
            }
            ("resolve", Some(i)) => {
                state.alerts[i].status = "resolved".into();
                state.alerts[i]
                    .log
                    .push(("resolve".into(), "events-api".into()));
                true
            }
            _ => false,
        };
        state.events.push(PdEvent {
            routing_key,
            event_action: action,
            dedup_key: dedup_key.clone(),
            applied,
        });
        Outcome::Served(Response::json(
            202,
            &json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}),
        ))
    }
}

impl Handler for Inner {
    fn handle(&self, req: &Request) -> Outcome {
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/v2/enqueue") => self.enqueue(req),
            (m, p) => Outcome::Rejected(
                Response::json(404, &json!({"status": "not found", "message": "Not Found"})),
                format!("no resource {m} {p}"),
            ),
        }
    }

    fn fault_response(&self, status: u16) -> Response {
        if status == 429 {
            Response::json(
                429,
                &json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."}),
            )
        } else {
            Response::json(
                status,
                &json!({"status": "error", "message": "Internal Server Error"}),
            )
        }
    }
}
