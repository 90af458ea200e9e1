//! Opsgenie Alert API v2 fake (also the shape of Jira Service Management
//! Ops alerts), and the payload of the Outgoing Webhook integration.
//!
//! # Sources
//! - "Alert API" <https://docs.opsgenie.com/docs/alert-api>: `Authorization:
//!   GenieKey <key>`; create/acknowledge/close/note/priority requests are
//!   "processed asynchronously ... responded to with HTTP status 202 -
//!   Accepted" and tracked by `GET /v2/alerts/requests/{requestId}` (sample
//!   bodies for a created alert and for `Alert does not exist`);
//!   `identifierType` = `id` | `alias` | `tiny`; field limits (message 130,
//!   alias 512, description 15000, tags 20 x 50, details 8000 total, entity
//!   512, source 100, user 100, note 25000); priorities P1..P5, default P3.
//! - "Alerts and Alert Fields": alias de-duplication — "When there is an open
//!   alert with the same alias, no new alert is created, only a counter will
//!   be incremented"; a closed alias starts a new alert.
//! - "Sample Alert Action Data" (Marid/Webhook integrations):
//!   <https://docs.opsgenie.com/v1.0/docs/sample-alert-action-data> — the
//!   outgoing webhook body `{source, alert{...}, action, integrationId,
//!   integrationName}` sent for `Create`, `Acknowledge`, `Close`, ...
//! - Error bodies `{"message", "took", "requestId"}`, 422 with `errors` for
//!   validation (`"priority": "should be one of [ P1, P2, P3, P4, P5 ]"`),
//!   `Could not authenticate`, `Key format is not valid!` — as reported by
//!   clients of the real API.
//!
//! # Choices where the docs are silent
//! - [`Processing::Immediate`] processes a request right after answering 202;
//!   [`Processing::Manual`] holds requests until [`Opsgenie::process`], so a
//!   test can look an alias up before the create it raced with is processed.
//!   Until processed, `GET /v2/alerts/requests/{id}` answers 404 `Request not
//!   found. It might not be processed, yet.`
//! - A de-duplicated create reports `isSuccess: true`, `status: "Alert is
//!   deduplicated"` and the existing alert's id.
//! - Overlong fields are refused with 422 (the real service may truncate
//!   `message` instead); an unknown `identifierType` is refused `[fake]`.
//! - Acknowledging or closing a closed alert succeeds without change.
//! - Outgoing webhooks carry whatever credential the admin configured as a
//!   custom header ([`HookAuth`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::server::{Handler, Ids, Outcome, Request, Response, Server, lock};
use super::{Clock, HookRequest, default_clock};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Processing {
    Immediate,
    /// Requests wait for [`Opsgenie::process`].
    Manual,
}

pub struct Config {
    /// An API integration key (UUID-shaped).
    pub api_key: String,
    pub processing: Processing,
    pub integration_id: String,
    pub integration_name: String,
    pub clock: Arc<dyn Clock>,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_key: "eb243592-faa2-4ba2-a551-1afdf565c889".into(),
            processing: Processing::Immediate,
            integration_id: "37c8f316-17c6-49d7-899b-9c7e540c048d".into(),
            integration_name: "sentinel".into(),
            clock: default_clock(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub note: String,
    pub owner: String,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: String,
    pub tiny_id: String,
    pub alias: String,
    pub message: String,
    pub description: String,
    pub priority: String,
    pub tags: Vec<String>,
    pub details: Map<String, Value>,
    pub entity: String,
    pub source: String,
    /// `open` or `closed`.
    pub status: String,
    pub acknowledged: bool,
    pub count: u64,
    pub created_at: String,
    pub updated_at: String,
    pub last_occurred_at: String,
    pub created_ms: i64,
    pub acknowledged_by: Option<String>,
    pub closed_by: Option<String>,
    pub notes: Vec<Note>,
}

/// A request's processing result (`GET /v2/alerts/requests/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestStatus {
    pub action: String,
    pub success: bool,
    pub status: String,
    pub alert_id: String,
    pub alias: String,
    pub processed_at: String,
}

#[derive(Debug, Clone)]
enum Action {
    Create(Map<String, Value>),
    Acknowledge(Target, Option<String>, Option<String>),
    Close(Target, Option<String>, Option<String>),
    AddNote(Target, Option<String>, String),
    Priority(Target, String),
}

#[derive(Debug, Clone)]
struct Target {
    identifier: String,
    kind: String,
}

#[derive(Default)]
struct State {
    alerts: Vec<Alert>,
    pending: Vec<(String, Action)>,
    done: HashMap<String, RequestStatus>,
    tiny: u64,
}

struct Inner {
    cfg: Config,
    ids: Ids,
    state: Mutex<State>,
}

/// A running Opsgenie fake. Derefs to its [`Server`] for logs and faults.
pub struct Opsgenie {
    server: Server,
    inner: Arc<Inner>,
}

impl std::ops::Deref for Opsgenie {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Opsgenie {
    pub async fn start(config: Config) -> Opsgenie {
        let inner = Arc::new(Inner {
            ids: Ids::new(config.seed),
            cfg: config,
            state: Mutex::new(State::default()),
        });
        let server = Server::start(Arc::clone(&inner) as Arc<dyn Handler>).await;
        Opsgenie { server, inner }
    }

    pub fn alerts(&self) -> Vec<Alert> {
        lock(&self.inner.state).alerts.clone()
    }

    /// Every alert (open or closed) with this alias, oldest first.
    pub fn by_alias(&self, alias: &str) -> Vec<Alert> {
        self.alerts()
            .into_iter()
            .filter(|a| a.alias == alias)
            .collect()
    }

    /// Requests accepted but not processed yet.
    pub fn pending(&self) -> usize {
        lock(&self.inner.state).pending.len()
    }

    /// Processes every pending request, in arrival order.
    pub fn process(&self) {
        let mut state = lock(&self.inner.state);
        let pending = std::mem::take(&mut state.pending);
        for (id, action) in pending {
            let status = self.inner.apply(&mut state, action);
            state.done.insert(id, status);
        }
    }

    pub fn request_status(&self, request_id: &str) -> Option<RequestStatus> {
        lock(&self.inner.state).done.get(request_id).cloned()
    }

    /// Acts out a person acknowledging the open alert with `alias` in the
    /// Opsgenie UI; returns it.
    pub fn acknowledge_as(&self, alias: &str, user: &str) -> Option<Alert> {
        let now = self.inner.now();
        let mut state = lock(&self.inner.state);
        let alert = state
            .alerts
            .iter_mut()
            .rev()
            .find(|a| a.alias == alias && a.status == "open")?;
        alert.acknowledged = true;
        alert.acknowledged_by = Some(user.to_string());
        alert.updated_at = now;
        Some(alert.clone())
    }

    /// Acts out a person closing the open alert with `alias`; returns it.
    pub fn close_as(&self, alias: &str, user: &str) -> Option<Alert> {
        let now = self.inner.now();
        let mut state = lock(&self.inner.state);
        let alert = state
            .alerts
            .iter_mut()
            .rev()
            .find(|a| a.alias == alias && a.status == "open")?;
        alert.status = "closed".into();
        alert.closed_by = Some(user.to_string());
        alert.updated_at = now;
        Some(alert.clone())
    }

    pub fn integration(&self) -> (String, String) {
        (
            self.inner.cfg.integration_id.clone(),
            self.inner.cfg.integration_name.clone(),
        )
    }
}

/// The credential an admin configured on the outgoing webhook integration.
#[derive(Debug, Clone)]
pub enum HookAuth {
    None,
    Bearer(String),
    Basic(String, String),
    /// Any custom header.
    Header(String, String),
}

/// The person who acted in Opsgenie.
#[derive(Debug, Clone)]
pub struct OpsgenieUser {
    pub username: String,
    pub user_id: String,
}

/// What the Outgoing Webhook integration POSTs when `action` (`Acknowledge`,
/// `Close`, `Create`, ...) happens to `alert`.
pub fn outgoing_webhook(
    action: &str,
    alert: &Alert,
    user: &OpsgenieUser,
    integration: (&str, &str),
    updated_at_ns: i128,
    auth: &HookAuth,
) -> HookRequest {
    let body = json!({
        "source": {"name": "", "type": "web"},
        "alert": {
            "updatedAt": updated_at_ns,
            "tags": alert.tags,
            "message": alert.message,
            "username": user.username,
            "alertId": alert.id,
            "source": alert.source,
            "alias": alert.alias,
            "tinyId": alert.tiny_id,
            "createdAt": alert.created_ms,
            "userId": user.user_id,
            "entity": alert.entity,
        },
        "action": action,
        "integrationId": integration.0,
        "integrationName": integration.1,
    });
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    match auth {
        HookAuth::None => {}
        HookAuth::Bearer(t) => headers.push(("Authorization".into(), format!("Bearer {t}"))),
        HookAuth::Basic(u, p) => headers.push((
            "Authorization".into(),
            format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))),
        )),
        HookAuth::Header(k, v) => headers.push((k.clone(), v.clone())),
    }
    HookRequest {
        headers,
        body: body.to_string().into_bytes(),
    }
}

fn body_with(
    status: u16,
    message: &str,
    request_id: &str,
    extra: Option<(&str, Value)>,
) -> Response {
    let mut v = json!({"message": message, "took": 0.003, "requestId": request_id});
    if let Some((k, e)) = extra {
        v[k] = e;
    }
    Response::json(status, &v)
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Inner {
    fn now(&self) -> String {
        self.cfg
            .clock
            .now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    fn alert_json(&self, a: &Alert) -> Value {
        let mut report = Map::new();
        if let Some(u) = &a.acknowledged_by {
            report.insert("acknowledgedBy".into(), json!(u));
        }
        if let Some(u) = &a.closed_by {
            report.insert("closedBy".into(), json!(u));
        }
        json!({
            "id": a.id, "tinyId": a.tiny_id, "alias": a.alias, "message": a.message,
            "status": a.status, "acknowledged": a.acknowledged, "isSeen": false,
            "tags": a.tags, "snoozed": false, "count": a.count,
            "lastOccurredAt": a.last_occurred_at, "createdAt": a.created_at,
            "updatedAt": a.updated_at, "source": a.source, "owner": "",
            "priority": a.priority, "responders": [],
            "integration": {"id": self.cfg.integration_id, "name": self.cfg.integration_name, "type": "API"},
            "report": Value::Object(report), "actions": [], "entity": a.entity,
            "description": a.description, "details": a.details,
        })
    }

    fn find<'a>(&self, state: &'a mut State, t: &Target) -> Option<&'a mut Alert> {
        let alerts = &state.alerts;
        let index = match t.kind.as_str() {
            // Prefer the open alert; else the latest with that alias.
            "alias" => alerts
                .iter()
                .rposition(|a| a.alias == t.identifier && a.status == "open")
                .or_else(|| alerts.iter().rposition(|a| a.alias == t.identifier)),
            "tiny" => alerts.iter().rposition(|a| a.tiny_id == t.identifier),
            _ => alerts.iter().rposition(|a| a.id == t.identifier),
        }?;
        state.alerts.get_mut(index)
    }

    /// Processes one accepted request.
    fn apply(&self, state: &mut State, action: Action) -> RequestStatus {
        let now = self.now();
        let done =
            |action: &str, success: bool, status: &str, alert: Option<&Alert>| RequestStatus {
                action: action.to_string(),
                success,
                status: status.to_string(),
                alert_id: alert.map(|a| a.id.clone()).unwrap_or_default(),
                alias: alert.map(|a| a.alias.clone()).unwrap_or_default(),
                processed_at: now.clone(),
            };
        match action {
            Action::Create(body) => {
                let s = |k: &str| {
                    body.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let alias = s("alias");
                if let Some(a) = state
                    .alerts
                    .iter_mut()
                    .find(|a| !alias.is_empty() && a.alias == alias && a.status == "open")
                {
                    a.count += 1;
                    a.last_occurred_at = now.clone();
                    a.updated_at = now.clone();
                    let a = a.clone();
                    return done("Create", true, "Alert is deduplicated", Some(&a));
                }
                state.tiny += 1;
                let id = self.ids.uuid("alert");
                let created_ms = self.cfg.clock.now().as_millisecond();
                let alert = Alert {
                    alias: if alias.is_empty() { id.clone() } else { alias },
                    id,
                    tiny_id: state.tiny.to_string(),
                    message: s("message"),
                    description: s("description"),
                    priority: body
                        .get("priority")
                        .and_then(Value::as_str)
                        .unwrap_or("P3")
                        .to_string(),
                    tags: body
                        .get("tags")
                        .and_then(Value::as_array)
                        .map(|t| {
                            t.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    details: body
                        .get("details")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default(),
                    entity: s("entity"),
                    source: if s("source").is_empty() {
                        "127.0.0.1".into()
                    } else {
                        s("source")
                    },
                    status: "open".into(),
                    acknowledged: false,
                    count: 1,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                    last_occurred_at: now.clone(),
                    created_ms,
                    acknowledged_by: None,
                    closed_by: None,
                    notes: match body.get("note").and_then(Value::as_str) {
                        Some(n) if !n.is_empty() => vec![Note {
                            note: n.to_string(),
                            owner: s("user"),
                            created_at: now.clone(),
                        }],
                        _ => Vec::new(),
                    },
                };
                let status = done("Create", true, "Created alert", Some(&alert));
                state.alerts.push(alert);
                status
            }
            Action::Acknowledge(t, user, note) => match self.find(state, &t) {
                None => done("Acknowledge", false, "Alert does not exist", None),
                Some(a) => {
                    if a.status == "open" && !a.acknowledged {
                        a.acknowledged = true;
                        a.acknowledged_by = Some(user.clone().unwrap_or_default());
                        a.updated_at = now.clone();
                    }
                    if let Some(n) = note.filter(|n| !n.is_empty()) {
                        a.notes.push(Note {
                            note: n,
                            owner: user.unwrap_or_default(),
                            created_at: now.clone(),
                        });
                    }
                    let a = a.clone();
                    done("Acknowledge", true, "Acknowledged alert", Some(&a))
                }
            },
            Action::Close(t, user, note) => match self.find(state, &t) {
                None => done("Close", false, "Alert does not exist", None),
                Some(a) => {
                    if a.status == "open" {
                        a.status = "closed".into();
                        a.closed_by = Some(user.clone().unwrap_or_default());
                        a.updated_at = now.clone();
                    }
                    if let Some(n) = note.filter(|n| !n.is_empty()) {
                        a.notes.push(Note {
                            note: n,
                            owner: user.unwrap_or_default(),
                            created_at: now.clone(),
                        });
                    }
                    let a = a.clone();
                    done("Close", true, "Closed alert", Some(&a))
                }
            },
            Action::AddNote(t, user, note) => match self.find(state, &t) {
                None => done("AddNote", false, "Alert does not exist", None),
                Some(a) => {
                    a.notes.push(Note {
                        note,
                        owner: user.unwrap_or_default(),
                        created_at: now.clone(),
                    });
                    a.updated_at = now.clone();
                    let a = a.clone();
                    done("AddNote", true, "Added note", Some(&a))
                }
            },
            Action::Priority(t, p) => match self.find(state, &t) {
                None => done("UpdatePriority", false, "Alert does not exist", None),
                Some(a) => {
                    a.priority = p;
                    a.updated_at = now.clone();
                    let a = a.clone();
                    done("UpdatePriority", true, "Updated priority", Some(&a))
                }
            },
        }
    }

    fn accept(&self, action: Action) -> Outcome {
        let request_id = self.ids.uuid("request");
        let mut state = lock(&self.state);
        match self.cfg.processing {
            Processing::Immediate => {
                let status = self.apply(&mut state, action);
                state.done.insert(request_id.clone(), status);
            }
            Processing::Manual => state.pending.push((request_id.clone(), action)),
        }
        Outcome::Served(Response::json(
            202,
            &json!({"result": "Request will be processed", "took": 0.107, "requestId": request_id}),
        ))
    }

    fn invalid(&self, errors: Map<String, Value>) -> Outcome {
        let reason = errors
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ");
        Outcome::Rejected(
            body_with(
                422,
                "Request body is not processable. Please check the errors.",
                &self.ids.uuid("request"),
                Some(("errors", Value::Object(errors))),
            ),
            reason,
        )
    }

    /// The JSON body of a write; an empty body counts as `{}`.
    fn body(&self, req: &Request) -> Result<Map<String, Value>, Outcome> {
        if req.body.is_empty() {
            return Ok(Map::new());
        }
        if req.media_type().as_deref() != Some("application/json") {
            return Err(Outcome::Rejected(
                body_with(
                    415,
                    "Unsupported Media Type",
                    &self.ids.uuid("request"),
                    None,
                ),
                "Content-Type is not application/json".into(),
            ));
        }
        match req.json() {
            Some(Value::Object(m)) => Ok(m),
            _ => Err(Outcome::Rejected(
                body_with(
                    400,
                    "Request body is not valid JSON.",
                    &self.ids.uuid("request"),
                    None,
                ),
                "body is not a JSON object".into(),
            )),
        }
    }

    fn check_len(
        errors: &mut Map<String, Value>,
        body: &Map<String, Value>,
        field: &str,
        label: &str,
        max: usize,
    ) {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() > max => {
                errors.insert(
                    field.into(),
                    format!("{label} can not be longer than {max} characters.").into(),
                );
            }
            Some(Value::String(_)) => {}
            Some(_) => {
                errors.insert(field.into(), format!("{label} should be a string.").into());
            }
        }
    }

    fn check_common(errors: &mut Map<String, Value>, body: &Map<String, Value>) {
        Inner::check_len(errors, body, "user", "User", 100);
        Inner::check_len(errors, body, "source", "Source", 100);
        Inner::check_len(errors, body, "note", "Note", 25000);
    }

    fn create(&self, req: &Request) -> Outcome {
        let body = match self.body(req) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let mut errors = Map::new();
        match body.get("message").and_then(Value::as_str) {
            None => {
                errors.insert("message".into(), "Message can not be empty.".into());
            }
            Some(m) if m.trim().is_empty() => {
                errors.insert("message".into(), "Message can not be empty.".into());
            }
            Some(_) => Inner::check_len(&mut errors, &body, "message", "Message", 130),
        }
        Inner::check_len(&mut errors, &body, "alias", "Alias", 512);
        Inner::check_len(&mut errors, &body, "description", "Description", 15000);
        Inner::check_len(&mut errors, &body, "entity", "Entity", 512);
        Inner::check_common(&mut errors, &body);
        if body.get("priority").is_some_and(|p| {
            p.as_str()
                .is_none_or(|p| !["P1", "P2", "P3", "P4", "P5"].contains(&p))
        }) {
            errors.insert(
                "priority".into(),
                "should be one of [ P1, P2, P3, P4, P5 ]".into(),
            );
        }
        if let Some(tags) = body.get("tags") {
            match tags.as_array() {
                Some(t) if t.len() > 20 => {
                    errors.insert("tags".into(), "Tags can not be more than 20.".into());
                }
                Some(t)
                    if t.iter()
                        .any(|x| x.as_str().is_none_or(|s| s.chars().count() > 50)) =>
                {
                    errors.insert(
                        "tags".into(),
                        "Each tag should be a string of at most 50 characters.".into(),
                    );
                }
                Some(_) => {}
                None => {
                    errors.insert("tags".into(), "Tags should be an array of strings.".into());
                }
            }
        }
        if let Some(details) = body.get("details") {
            match details.as_object() {
                Some(d) if d.values().any(|v| !v.is_string()) => {
                    errors.insert("details".into(), "Details values should be strings.".into());
                }
                Some(d)
                    if d.iter()
                        .map(|(k, v)| {
                            k.chars().count() + v.as_str().map_or(0, |s| s.chars().count())
                        })
                        .sum::<usize>()
                        > 8000 =>
                {
                    errors.insert(
                        "details".into(),
                        "Details can not be longer than 8000 characters.".into(),
                    );
                }
                Some(_) => {}
                None => {
                    errors.insert(
                        "details".into(),
                        "Details should be a map of strings.".into(),
                    );
                }
            }
        }
        if !errors.is_empty() {
            return self.invalid(errors);
        }
        self.accept(Action::Create(body))
    }

    fn target(&self, req: &Request, identifier: &str) -> Result<Target, Outcome> {
        let kind = req
            .query_param("identifierType")
            .unwrap_or_else(|| "id".to_string());
        if !["id", "alias", "tiny"].contains(&kind.as_str()) {
            return Err(Outcome::Rejected(
                body_with(
                    422,
                    "Invalid identifier type",
                    &self.ids.uuid("request"),
                    None,
                ),
                format!("[fake] identifierType={kind} is not id, alias or tiny"),
            ));
        }
        Ok(Target {
            identifier: identifier.to_string(),
            kind,
        })
    }

    fn authenticate(&self, req: &Request) -> Result<(), Outcome> {
        let rid = self.ids.uuid("request");
        match req.auth_credential("geniekey") {
            None => Err(Outcome::Rejected(
                body_with(401, "Could not authenticate", &rid, None),
                match req.header("authorization") {
                    None => "no Authorization header".into(),
                    Some(_) => "Authorization is not GenieKey <key>".into(),
                },
            )),
            Some(k) if !is_uuid(k) => Err(Outcome::Rejected(
                body_with(422, "Key format is not valid!", &rid, None),
                "API key is not UUID-shaped".into(),
            )),
            Some(k) if k != self.cfg.api_key => Err(Outcome::Rejected(
                body_with(401, "Could not authenticate", &rid, None),
                "unknown API key".into(),
            )),
            Some(_) => Ok(()),
        }
    }
}

impl Handler for Inner {
    fn handle(&self, req: &Request) -> Outcome {
        if let Err(o) = self.authenticate(req) {
            return o;
        }
        let seg = req.segments();
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        match (req.method.as_str(), seg.as_slice()) {
            ("POST", ["v2", "alerts"]) => self.create(req),
            ("GET", ["v2", "alerts", "requests", id]) => {
                let state = lock(&self.state);
                match state.done.get(*id) {
                    Some(s) => Outcome::Served(Response::json(
                        200,
                        &json!({"data": {"success": s.success, "action": s.action,
                                         "processedAt": s.processed_at,
                                         "integrationId": self.cfg.integration_id,
                                         "isSuccess": s.success, "status": s.status,
                                         "alertId": s.alert_id, "alias": s.alias},
                                "took": 0.022, "requestId": self.ids.uuid("request")}),
                    )),
                    None => Outcome::Served(body_with(
                        404,
                        "Request not found. It might not be processed, yet.",
                        &self.ids.uuid("request"),
                        None,
                    )),
                }
            }
            ("GET", ["v2", "alerts", ident]) => {
                let t = match self.target(req, ident) {
                    Ok(t) => t,
                    Err(o) => return o,
                };
                let mut state = lock(&self.state);
                match self.find(&mut state, &t) {
                    Some(a) => {
                        let a = a.clone();
                        Outcome::Served(Response::json(
                            200,
                            &json!({"data": self.alert_json(&a), "took": 0.003,
                                    "requestId": self.ids.uuid("request")}),
                        ))
                    }
                    None => Outcome::Served(body_with(
                        404,
                        "Alert does not exist",
                        &self.ids.uuid("request"),
                        None,
                    )),
                }
            }
            ("GET", ["v2", "alerts", ident, "notes"]) => {
                let t = match self.target(req, ident) {
                    Ok(t) => t,
                    Err(o) => return o,
                };
                let mut state = lock(&self.state);
                match self.find(&mut state, &t) {
                    Some(a) => {
                        let notes: Vec<Value> = a
                            .notes
                            .iter()
                            .map(|n| json!({"note": n.note, "owner": n.owner, "createdAt": n.created_at}))
                            .collect();
                        Outcome::Served(Response::json(
                            200,
                            &json!({"data": notes, "paging": {}, "took": 0.003,
                                    "requestId": self.ids.uuid("request")}),
                        ))
                    }
                    None => Outcome::Served(body_with(
                        404,
                        "Alert does not exist",
                        &self.ids.uuid("request"),
                        None,
                    )),
                }
            }
            (
                "POST",
                [
                    "v2",
                    "alerts",
                    ident,
                    verb @ ("acknowledge" | "close" | "notes"),
                ],
            ) => {
                let t = match self.target(req, ident) {
                    Ok(t) => t,
                    Err(o) => return o,
                };
                let body = match self.body(req) {
                    Ok(b) => b,
                    Err(o) => return o,
                };
                let mut errors = Map::new();
                Inner::check_common(&mut errors, &body);
                let s = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
                if *verb == "notes" && s("note").is_none_or(|n| n.trim().is_empty()) {
                    errors.insert("note".into(), "Note can not be empty.".into());
                }
                if !errors.is_empty() {
                    return self.invalid(errors);
                }
                self.accept(match *verb {
                    "acknowledge" => Action::Acknowledge(t, s("user"), s("note")),
                    "close" => Action::Close(t, s("user"), s("note")),
                    _ => Action::AddNote(t, s("user"), s("note").unwrap_or_default()),
                })
            }
            ("PUT", ["v2", "alerts", ident, "priority"]) => {
                let t = match self.target(req, ident) {
                    Ok(t) => t,
                    Err(o) => return o,
                };
                let body = match self.body(req) {
                    Ok(b) => b,
                    Err(o) => return o,
                };
                match body.get("priority").and_then(Value::as_str) {
                    Some(p) if ["P1", "P2", "P3", "P4", "P5"].contains(&p) => {
                        self.accept(Action::Priority(t, p.to_string()))
                    }
                    _ => {
                        let mut e = Map::new();
                        e.insert(
                            "priority".into(),
                            "should be one of [ P1, P2, P3, P4, P5 ]".into(),
                        );
                        self.invalid(e)
                    }
                }
            }
            (m, _) => Outcome::Rejected(
                body_with(
                    404,
                    "Could not find the resource",
                    &self.ids.uuid("request"),
                    None,
                ),
                format!("no resource {m} {}", req.path),
            ),
        }
    }

    fn fault_response(&self, status: u16) -> Response {
        let msg = match status {
            429 => {
                "You are making too many requests! To avoid errors, we recommend you limit requests."
            }
            _ => "Internal Server Error",
        };
        body_with(status, msg, &self.ids.uuid("request"), None)
    }
}
