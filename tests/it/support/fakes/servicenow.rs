//! ServiceNow Table API fake, and the outbound REST message a ServiceNow admin
//! configures to tell sentinel about incident state changes.
//!
//! # Sources
//! - "Table API" (REST API reference, Australia release):
//!   <https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html>
//!   (`ServiceNow/ServiceNowDocs`, `markdown/api-reference/rest-apis/c_TableAPI.md`):
//!   paths, `sysparm_query` encoded-query syntax (`=`, `!=`, `^`, `ORDERBY`),
//!   `sysparm_limit`/`offset`/`fields`/`exclude_reference_link`,
//!   `X-no-response-body`, `X-Total-Count`, `{"result": ...}` envelopes, 201 +
//!   `Location` on insert, record shape (all values strings, reference fields
//!   as `{"link","value"}`), and that invalid query parts are ignored.
//! - "REST API HTTP response codes": 400/401/403 (ACL, business rule or data
//!   policy)/404/405/406/415.
//! - "Best Practice - Incident Resolution Workflow" (Helsinki docs): "Close code
//!   and Close notes fields are mandatory whenever an incident is Resolved or
//!   Closed"; closed incidents are read-only for non-administrators.
//! - Incident state model (KB0564465): 1 New, 2 In Progress, 3 On Hold,
//!   6 Resolved, 7 Closed, 8 Canceled.
//! - The error envelope `{"error":{"message","detail"},"status":"failure"}` and
//!   the 401 wording `User Not Authenticated` / `Required to provide Auth
//!   information` as reported by clients of real instances (no doc page prints
//!   them).
//!
//! # Choices where the docs are silent
//! - A fresh instance numbers incidents from `INC0010001` (the doc example of
//!   an insert answers `INC0010002`); configurable.
//! - The data policy answers 403 `Operation Failed` / `Data Policy Exception:
//!   The following fields are mandatory: Resolution code, Resolution notes`.
//! - Fake-only strictness, marked `[fake]` in rejection reasons: a missing
//!   `Accept` header (the real instance defaults to JSON), choice values
//!   outside the lists below (the real instance stores them silently), query
//!   operators other than `=`/`!=`, and `sysparm_display_value`.
//! - Unknown fields in a write are ignored, as the real API does; they are
//!   listed by [`ServiceNow::ignored_fields`] so a typo is visible in a test.
//! - Journal fields (`work_notes`, `comments`) append to the record's journal
//!   and read back as `""`, as through the real Table API.
//! - `priority` is derived from `impact` × `urgency` with the default priority
//!   lookup; writes to `priority` are ignored.
//!
//! # Outbound REST message (admin-configured, our contract)
//! ServiceNow has no built-in webhook for incident changes; an admin adds a
//! Business Rule (after update, when `state` changes) that calls an Outbound
//! REST Message. [`outbound_message`] builds what that message sends:
//! `POST` with `Content-Type: application/json`, `Authorization: Bearer
//! <token>` and the body
//! `{"table","sys_id","number","correlation_id","state","close_code",
//! "close_notes","sys_updated_by","sys_updated_on"}` (all strings).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::server::{Handler, Ids, Outcome, Request, Response, Server, lock};
use super::{Clock, HookRequest, default_clock};

/// How clients must authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    Basic {
        user: String,
        password: String,
    },
    /// OAuth access token; `user` is who the token acts as (`sys_updated_by`).
    Bearer {
        token: String,
        user: String,
    },
}

pub struct Config {
    pub auth: Auth,
    /// Tables that exist; any other answers 400 `Invalid table`.
    pub tables: Vec<String>,
    /// Custom columns (e.g. `u_sentinel_url`) the incident table has.
    pub extra_fields: Vec<String>,
    /// The number of the first incident (`INC0010001`).
    pub first_number: u64,
    /// `[fake]` refuse requests without `Accept: application/json`.
    pub require_accept: bool,
    /// The data policy: resolving or closing needs close code and notes.
    pub resolution_policy: bool,
    /// Valid `close_code` choices.
    pub close_codes: Vec<String>,
    pub clock: Arc<dyn Clock>,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            auth: Auth::Basic {
                user: "sentinel.integration".to_string(),
                password: "s3cret".to_string(),
            },
            tables: vec!["incident".to_string()],
            extra_fields: Vec::new(),
            first_number: 10001,
            require_accept: true,
            resolution_policy: true,
            close_codes: [
                "Duplicate",
                "Known error",
                "No resolution provided",
                "Resolved by caller",
                "Resolved by change",
                "Resolved by problem",
                "Resolved by request",
                "Solution provided",
                "Workaround provided",
                "User error",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            clock: default_clock(),
            seed: 0,
        }
    }
}

/// The fields of an incident record (from the Table API reference examples).
pub const INCIDENT_FIELDS: &[&str] = &[
    "active",
    "activity_due",
    "additional_assignee_list",
    "approval",
    "approval_history",
    "approval_set",
    "assigned_to",
    "assignment_group",
    "business_duration",
    "business_service",
    "business_stc",
    "calendar_duration",
    "calendar_stc",
    "caller_id",
    "category",
    "caused_by",
    "child_incidents",
    "close_code",
    "close_notes",
    "closed_at",
    "closed_by",
    "cmdb_ci",
    "comments",
    "comments_and_work_notes",
    "company",
    "contact_type",
    "correlation_display",
    "correlation_id",
    "delivery_plan",
    "delivery_task",
    "description",
    "due_date",
    "escalation",
    "expected_start",
    "follow_up",
    "group_list",
    "hold_reason",
    "impact",
    "incident_state",
    "knowledge",
    "location",
    "made_sla",
    "notify",
    "number",
    "opened_at",
    "opened_by",
    "order",
    "parent",
    "parent_incident",
    "priority",
    "problem_id",
    "reassignment_count",
    "rejection_goto",
    "reopen_count",
    "resolved_at",
    "resolved_by",
    "rfc",
    "severity",
    "short_description",
    "sla_due",
    "state",
    "subcategory",
    "sys_class_name",
    "sys_created_by",
    "sys_created_on",
    "sys_domain",
    "sys_domain_path",
    "sys_id",
    "sys_mod_count",
    "sys_tags",
    "sys_updated_by",
    "sys_updated_on",
    "time_worked",
    "upon_approval",
    "upon_reject",
    "urgency",
    "user_input",
    "watch_list",
    "wf_activity",
    "work_end",
    "work_notes",
    "work_notes_list",
    "work_start",
];

/// Reference fields and the table they point to (rendered as `{link, value}`).
const REFERENCES: &[(&str, &str)] = &[
    ("assigned_to", "sys_user"),
    ("assignment_group", "sys_user_group"),
    ("caller_id", "sys_user"),
    ("closed_by", "sys_user"),
    ("cmdb_ci", "cmdb_ci"),
    ("company", "core_company"),
    ("location", "cmn_location"),
    ("opened_by", "sys_user"),
    ("parent_incident", "incident"),
    ("problem_id", "problem"),
    ("resolved_by", "sys_user"),
    ("sys_domain", "sys_user_group"),
];

const JOURNAL_FIELDS: &[&str] = &["work_notes", "comments"];

/// Incident states: 1 New, 2 In Progress, 3 On Hold, 6 Resolved, 7 Closed,
/// 8 Canceled.
pub const STATES: &[&str] = &["1", "2", "3", "6", "7", "8"];
pub const NEW: &str = "1";
pub const IN_PROGRESS: &str = "2";
pub const RESOLVED: &str = "6";
pub const CLOSED: &str = "7";

/// One journal entry (a work note or an additional comment).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// `work_notes` or `comments`.
    pub field: String,
    pub value: String,
    pub by: String,
    /// `YYYY-MM-DD HH:MM:SS` UTC, as ServiceNow writes dates.
    pub at: String,
}

/// A stored record.
#[derive(Debug, Clone)]
pub struct SnowRecord {
    pub table: String,
    /// Every field, as the strings ServiceNow stores.
    pub fields: Map<String, Value>,
    pub journal: Vec<JournalEntry>,
}

impl SnowRecord {
    /// A field's value, `""` when absent.
    pub fn get(&self, field: &str) -> &str {
        self.fields.get(field).and_then(Value::as_str).unwrap_or("")
    }

    pub fn sys_id(&self) -> &str {
        self.get("sys_id")
    }

    pub fn number(&self) -> &str {
        self.get("number")
    }

    pub fn state(&self) -> &str {
        self.get("state")
    }

    /// The work notes, oldest first.
    pub fn work_notes(&self) -> Vec<String> {
        self.journal
            .iter()
            .filter(|j| j.field == "work_notes")
            .map(|j| j.value.clone())
            .collect()
    }
}

#[derive(Default)]
struct State {
    records: Vec<SnowRecord>,
    numbers: HashMap<String, u64>,
    ignored: Vec<(String, String)>,
}

struct Inner {
    auth: Auth,
    tables: Vec<String>,
    extra_fields: Vec<String>,
    first_number: u64,
    require_accept: bool,
    resolution_policy: bool,
    close_codes: Vec<String>,
    clock: Arc<dyn Clock>,
    ids: Ids,
    base_url: OnceLock<String>,
    state: Mutex<State>,
}

/// A running ServiceNow fake. Derefs to its [`Server`] for logs and faults.
pub struct ServiceNow {
    server: Server,
    inner: Arc<Inner>,
}

impl std::ops::Deref for ServiceNow {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl ServiceNow {
    pub async fn start(config: Config) -> ServiceNow {
        let inner = Arc::new(Inner {
            auth: config.auth,
            tables: config.tables,
            extra_fields: config.extra_fields,
            first_number: config.first_number,
            require_accept: config.require_accept,
            resolution_policy: config.resolution_policy,
            close_codes: config.close_codes,
            clock: config.clock,
            ids: Ids::new(config.seed),
            base_url: OnceLock::new(),
            state: Mutex::new(State::default()),
        });
        let server = Server::start(Arc::clone(&inner) as Arc<dyn Handler>).await;
        let _ = inner.base_url.set(server.base_url());
        ServiceNow { server, inner }
    }

    /// Every record of every table, in insertion order.
    pub fn records(&self) -> Vec<SnowRecord> {
        lock(&self.inner.state).records.clone()
    }

    /// Records of `table` whose `correlation_id` is `correlation_id`.
    pub fn by_correlation_id(&self, table: &str, correlation_id: &str) -> Vec<SnowRecord> {
        self.records()
            .into_iter()
            .filter(|r| r.table == table && r.get("correlation_id") == correlation_id)
            .collect()
    }

    pub fn record(&self, sys_id: &str) -> Option<SnowRecord> {
        self.records().into_iter().find(|r| r.sys_id() == sys_id)
    }

    /// `(field, table)` pairs a write named that the table does not have.
    pub fn ignored_fields(&self) -> Vec<(String, String)> {
        lock(&self.inner.state).ignored.clone()
    }

    /// Acts out a person editing the record in the ServiceNow UI (no API
    /// checks): sets `fields`, journals `work_notes`/`comments`, and does the
    /// state bookkeeping as `user`. Returns the updated record.
    pub fn update_as(
        &self,
        sys_id: &str,
        user: &str,
        fields: &[(&str, &str)],
    ) -> Option<SnowRecord> {
        let now = self.inner.now();
        let mut state = lock(&self.inner.state);
        let rec = state.records.iter_mut().find(|r| r.sys_id() == sys_id)?;
        let values: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        apply_write(rec, &values, user, &now);
        Some(rec.clone())
    }
}

/// What the admin-configured outbound REST message sends for `record`.
pub fn outbound_message(record: &SnowRecord, token: &str) -> HookRequest {
    let body = json!({
        "table": record.table,
        "sys_id": record.sys_id(),
        "number": record.number(),
        "correlation_id": record.get("correlation_id"),
        "state": record.state(),
        "close_code": record.get("close_code"),
        "close_notes": record.get("close_notes"),
        "sys_updated_by": record.get("sys_updated_by"),
        "sys_updated_on": record.get("sys_updated_on"),
    });
    HookRequest {
        headers: vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
            ("Authorization".to_string(), format!("Bearer {token}")),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// The error envelope of every ServiceNow REST error.
pub fn error_body(message: &str, detail: Option<&str>) -> Value {
    json!({"error": {"message": message, "detail": detail}, "status": "failure"})
}

fn reject(status: u16, message: &str, detail: Option<&str>, reason: &str) -> Outcome {
    Outcome::Rejected(
        Response::json(status, &error_body(message, detail)),
        reason.to_string(),
    )
}

fn not_found() -> Outcome {
    Outcome::Served(Response::json(
        404,
        &error_body(
            "No Record found",
            Some("Record doesn't exist or ACL restricts the record retrieval"),
        ),
    ))
}

/// ServiceNow's default priority lookup from impact and urgency.
fn priority(impact: &str, urgency: &str) -> &'static str {
    match (impact, urgency) {
        ("1", "1") => "1",
        ("1", "2") | ("2", "1") => "2",
        ("1", "3") | ("2", "2") | ("3", "1") => "3",
        ("2", "3") | ("3", "2") => "4",
        _ => "5",
    }
}

fn field_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Applies already validated `values` to `rec` as `user` at `now`.
fn apply_write(rec: &mut SnowRecord, values: &Map<String, Value>, user: &str, now: &str) {
    let before = rec.state().to_string();
    for (k, v) in values {
        let value = field_str(v).unwrap_or_default();
        if JOURNAL_FIELDS.contains(&k.as_str()) {
            if !value.is_empty() {
                rec.journal.push(JournalEntry {
                    field: k.clone(),
                    value,
                    by: user.to_string(),
                    at: now.to_string(),
                });
            }
            continue;
        }
        if k == "priority" || k.starts_with("sys_") {
            continue;
        }
        rec.fields.insert(k.clone(), Value::String(value));
    }
    if rec.table == "incident" {
        let p = priority(rec.get("impact"), rec.get("urgency"));
        rec.fields.insert("priority".into(), p.into());
        let state = rec.state().to_string();
        rec.fields
            .insert("incident_state".into(), Value::String(state.clone()));
        if state != before {
            let set = |rec: &mut SnowRecord, k: &str, v: &str| {
                if rec.get(k).is_empty() {
                    rec.fields.insert(k.into(), Value::String(v.to_string()));
                }
            };
            match state.as_str() {
                RESOLVED => {
                    set(rec, "resolved_at", now);
                    set(rec, "resolved_by", user);
                }
                CLOSED => {
                    set(rec, "resolved_at", now);
                    set(rec, "resolved_by", user);
                    set(rec, "closed_at", now);
                    set(rec, "closed_by", user);
                    rec.fields.insert("active".into(), "false".into());
                }
                "8" => {
                    rec.fields.insert("active".into(), "false".into());
                }
                _ => {
                    if before == RESOLVED || before == CLOSED {
                        let n = rec.get("reopen_count").parse::<u64>().unwrap_or(0) + 1;
                        rec.fields
                            .insert("reopen_count".into(), Value::String(n.to_string()));
                        rec.fields.insert("active".into(), "true".into());
                        for k in ["resolved_at", "resolved_by", "closed_at", "closed_by"] {
                            rec.fields.insert(k.into(), "".into());
                        }
                    }
                }
            }
        }
    }
    rec.fields
        .insert("sys_updated_on".into(), Value::String(now.to_string()));
    rec.fields
        .insert("sys_updated_by".into(), Value::String(user.to_string()));
}

impl Inner {
    fn now(&self) -> String {
        self.clock.now().strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    fn base(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    /// The authenticated user, or the 401 to answer.
    fn authenticate(&self, req: &Request) -> Result<String, Outcome> {
        let ok = match &self.auth {
            Auth::Basic { user, password } => match req.basic_auth() {
                Some((u, p)) if &u == user && &p == password => Some(user.clone()),
                _ => None,
            },
            Auth::Bearer { token, user } => match req.auth_credential("bearer") {
                Some(t) if t == token => Some(user.clone()),
                _ => None,
            },
        };
        let reason = match req.header("authorization") {
            None => "no Authorization header",
            Some(_) => "wrong credentials or auth scheme",
        };
        ok.ok_or_else(|| {
            reject(
                401,
                "User Not Authenticated",
                Some("Required to provide Auth information"),
                reason,
            )
        })
    }

    fn known_field(&self, table: &str, field: &str) -> bool {
        if table == "incident" {
            INCIDENT_FIELDS.contains(&field) || self.extra_fields.iter().any(|f| f == field)
        } else {
            true
        }
    }

    fn render(&self, rec: &SnowRecord, req: &Request) -> Value {
        let wanted: Option<Vec<String>> = req
            .query_param("sysparm_fields")
            .map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
        let links = req.query_param("sysparm_exclude_reference_link").as_deref() != Some("true");
        let mut out = Map::new();
        for (k, v) in &rec.fields {
            if wanted.as_ref().is_some_and(|w| !w.contains(k)) {
                continue;
            }
            let s = v.as_str().unwrap_or("");
            let target = REFERENCES.iter().find(|(f, _)| f == k).map(|(_, t)| *t);
            match target {
                Some(table) if links && !s.is_empty() => {
                    out.insert(
                        k.clone(),
                        json!({"link": format!("{}/api/now/table/{table}/{s}", self.base()), "value": s}),
                    );
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Value::Object(out)
    }

    /// Validates a write body; returns the fields to apply.
    fn validate_write(
        &self,
        table: &str,
        req: &Request,
        existing: Option<&SnowRecord>,
    ) -> Result<Map<String, Value>, Outcome> {
        if req.media_type().as_deref() != Some("application/json") {
            return Err(reject(
                415,
                "Unsupported Media Type",
                Some("The request body media type is not supported; send application/json"),
                "Content-Type is not application/json",
            ));
        }
        let Some(body) = req.json() else {
            return Err(reject(
                400,
                "Exception while reading request",
                Some("The payload is not valid JSON."),
                "body is not valid JSON",
            ));
        };
        let Value::Object(body) = body else {
            return Err(reject(
                400,
                "Exception while reading request",
                Some("Multiple record insertion is not supported; send one JSON object"),
                "body is not a JSON object",
            ));
        };
        let mut values = Map::new();
        for (k, v) in &body {
            if field_str(v).is_none() {
                return Err(reject(
                    400,
                    "Exception while reading request",
                    Some(&format!("Field '{k}' must be a string")),
                    &format!("field {k} is an object or array"),
                ));
            }
            if !self.known_field(table, k) {
                lock(&self.state)
                    .ignored
                    .push((k.clone(), table.to_string()));
                continue;
            }
            values.insert(k.clone(), v.clone());
        }
        if table == "incident" {
            let check = |field: &str, allowed: &[&str]| -> Result<(), Outcome> {
                match values.get(field).and_then(field_str) {
                    Some(v) if !allowed.contains(&v.as_str()) => Err(reject(
                        400,
                        "Invalid choice",
                        Some(&format!("'{v}' is not a valid choice for {field}")),
                        &format!("[fake] {field}={v} is not one of {allowed:?}"),
                    )),
                    _ => Ok(()),
                }
            };
            check("state", STATES)?;
            check("impact", &["1", "2", "3"])?;
            check("urgency", &["1", "2", "3"])?;
            let codes: Vec<&str> = self.close_codes.iter().map(String::as_str).collect();
            if values
                .get("close_code")
                .and_then(field_str)
                .is_some_and(|c| !c.is_empty())
            {
                check("close_code", &codes)?;
            }
            if existing.is_some_and(|r| r.state() == CLOSED) {
                return Err(reject(
                    403,
                    "Operation Failed",
                    Some("ACL Exception Update Failed due to security constraints"),
                    "closed incidents are read-only",
                ));
            }
            let merged = |f: &str| -> String {
                values
                    .get(f)
                    .and_then(field_str)
                    .unwrap_or_else(|| existing.map(|r| r.get(f).to_string()).unwrap_or_default())
            };
            let state = merged("state");
            if self.resolution_policy && (state == RESOLVED || state == CLOSED) {
                let mut missing = Vec::new();
                if merged("close_code").trim().is_empty() {
                    missing.push("Resolution code");
                }
                if merged("close_notes").trim().is_empty() {
                    missing.push("Resolution notes");
                }
                if !missing.is_empty() {
                    let detail = format!(
                        "Data Policy Exception: The following fields are mandatory: {}",
                        missing.join(", ")
                    );
                    return Err(reject(
                        403,
                        "Operation Failed",
                        Some(&detail),
                        &format!("resolving without {}", missing.join(" and ")),
                    ));
                }
            }
        }
        Ok(values)
    }

    fn insert(&self, table: &str, req: &Request, user: &str) -> Outcome {
        let values = match self.validate_write(table, req, None) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let now = self.now();
        let mut state = lock(&self.state);
        let n = *state
            .numbers
            .entry(table.to_string())
            .or_insert(self.first_number);
        state.numbers.insert(table.to_string(), n + 1);
        let prefix = match table {
            "incident" => "INC",
            "problem" => "PRB",
            "change_request" => "CHG",
            _ => "REC",
        };
        let sys_id = self.ids.hex32("sys_id");
        let mut fields = Map::new();
        if table == "incident" {
            for f in INCIDENT_FIELDS {
                fields.insert(f.to_string(), "".into());
            }
            for f in &self.extra_fields {
                fields.insert(f.clone(), "".into());
            }
            for (k, v) in [
                ("active", "true"),
                ("approval", "not requested"),
                ("escalation", "0"),
                ("impact", "3"),
                ("urgency", "3"),
                ("severity", "3"),
                ("notify", "1"),
                ("reassignment_count", "0"),
                ("reopen_count", "0"),
                ("knowledge", "false"),
                ("made_sla", "true"),
                ("upon_approval", "proceed"),
                ("upon_reject", "cancel"),
                ("state", NEW),
                ("sys_class_name", "incident"),
                ("sys_domain", "global"),
                ("sys_domain_path", "/"),
                ("opened_at", now.as_str()),
                ("opened_by", user),
            ] {
                fields.insert(k.into(), Value::String(v.to_string()));
            }
        }
        fields.insert("sys_id".into(), Value::String(sys_id.clone()));
        fields.insert("number".into(), Value::String(format!("{prefix}{n:07}")));
        fields.insert("sys_created_on".into(), Value::String(now.clone()));
        fields.insert("sys_created_by".into(), Value::String(user.to_string()));
        fields.insert("sys_mod_count".into(), "0".into());
        let mut rec = SnowRecord {
            table: table.to_string(),
            fields,
            journal: Vec::new(),
        };
        apply_write(&mut rec, &values, user, &now);
        let body = json!({"result": self.render(&rec, req)});
        state.records.push(rec);
        let location = format!("{}/api/now/table/{table}/{sys_id}", self.base());
        Outcome::Served(respond(201, &body, req).with_header("location", &location))
    }

    fn update(&self, table: &str, sys_id: &str, req: &Request, user: &str) -> Outcome {
        let existing = {
            let state = lock(&self.state);
            state
                .records
                .iter()
                .find(|r| r.table == table && r.sys_id() == sys_id)
                .cloned()
        };
        let Some(existing) = existing else {
            return not_found();
        };
        let values = match self.validate_write(table, req, Some(&existing)) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let now = self.now();
        let mut state = lock(&self.state);
        let Some(rec) = state
            .records
            .iter_mut()
            .find(|r| r.table == table && r.sys_id() == sys_id)
        else {
            return not_found();
        };
        apply_write(rec, &values, user, &now);
        let count = rec.get("sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
        rec.fields
            .insert("sys_mod_count".into(), Value::String(count.to_string()));
        let body = json!({"result": self.render(rec, req)});
        Outcome::Served(respond(200, &body, req))
    }

    fn list(&self, table: &str, req: &Request) -> Outcome {
        let mut conds: Vec<(String, bool, String)> = Vec::new();
        let mut order: Vec<(String, bool)> = Vec::new();
        if let Some(q) = req.query_param("sysparm_query") {
            for part in q.split('^').filter(|p| !p.is_empty()) {
                if let Some(f) = part.strip_prefix("ORDERBYDESC") {
                    order.push((f.to_string(), true));
                    continue;
                }
                if let Some(f) = part.strip_prefix("ORDERBY") {
                    order.push((f.to_string(), false));
                    continue;
                }
                if part.starts_with("OR") || part.starts_with("NQ") {
                    return reject(
                        400,
                        "Invalid query",
                        Some(part),
                        &format!("[fake] query operator in '{part}' is not implemented"),
                    );
                }
                let Some(eq) = part.find('=') else {
                    return reject(
                        400,
                        "Invalid query",
                        Some(part),
                        &format!(
                            "[fake] query condition '{part}' is not implemented (only = and !=)"
                        ),
                    );
                };
                let (mut field, value) = (&part[..eq], &part[eq + 1..]);
                let negate = field.ends_with('!');
                if negate {
                    field = &field[..field.len() - 1];
                }
                if !field
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return reject(
                        400,
                        "Invalid query",
                        Some(part),
                        &format!(
                            "[fake] query condition '{part}' is not implemented (only = and !=)"
                        ),
                    );
                }
                if !self.known_field(table, field) {
                    // The real instance ignores invalid parts of a query.
                    lock(&self.state)
                        .ignored
                        .push((field.to_string(), table.to_string()));
                    continue;
                }
                conds.push((field.to_string(), negate, value.to_string()));
            }
        }
        for (k, v) in req.query_pairs() {
            if !k.starts_with("sysparm_") && self.known_field(table, &k) {
                conds.push((k, false, v));
            }
        }
        if req
            .query_param("sysparm_display_value")
            .is_some_and(|v| v != "false")
        {
            return reject(
                400,
                "Invalid parameter",
                Some("sysparm_display_value"),
                "[fake] sysparm_display_value is not implemented",
            );
        }
        let state = lock(&self.state);
        let mut rows: Vec<&SnowRecord> = state
            .records
            .iter()
            .filter(|r| r.table == table)
            .filter(|r| {
                conds
                    .iter()
                    .all(|(f, neg, v)| (r.get(f) == v.as_str()) != *neg)
            })
            .collect();
        for (field, desc) in order.iter().rev() {
            rows.sort_by(|a, b| {
                let o = a.get(field).cmp(b.get(field));
                if *desc { o.reverse() } else { o }
            });
        }
        let total = rows.len();
        let offset = req
            .query_param("sysparm_offset")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let limit = req
            .query_param("sysparm_limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(10_000);
        let result: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|r| self.render(r, req))
            .collect();
        Outcome::Served(
            Response::json(200, &json!({"result": result}))
                .with_header("x-total-count", &total.to_string()),
        )
    }

    fn get(&self, table: &str, sys_id: &str, req: &Request) -> Outcome {
        let state = lock(&self.state);
        match state
            .records
            .iter()
            .find(|r| r.table == table && r.sys_id() == sys_id)
        {
            Some(rec) => Outcome::Served(Response::json(
                200,
                &json!({"result": self.render(rec, req)}),
            )),
            None => not_found(),
        }
    }
}

fn respond(status: u16, body: &Value, req: &Request) -> Response {
    if req
        .header("x-no-response-body")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        Response::empty(status)
    } else {
        Response::json(status, body)
    }
}

impl Handler for Inner {
    fn handle(&self, req: &Request) -> Outcome {
        let user = match self.authenticate(req) {
            Ok(u) => u,
            Err(o) => return o,
        };
        let seg = req.segments();
        let (table, sys_id) = match seg.as_slice() {
            [api, now, t, table] if api == "api" && now == "now" && t == "table" => {
                (table.clone(), None)
            }
            [api, now, t, table, id] if api == "api" && now == "now" && t == "table" => {
                (table.clone(), Some(id.clone()))
            }
            _ => {
                return reject(
                    400,
                    "Requested URI does not represent any resource",
                    None,
                    &format!("no such resource {}", req.path),
                );
            }
        };
        if !self.tables.contains(&table) {
            return reject(
                400,
                &format!("Invalid table {table}"),
                Some(&format!("Table {table} does not exist")),
                &format!("table {table} does not exist"),
            );
        }
        match req.header("accept") {
            None if self.require_accept => {
                return reject(
                    406,
                    "Not Acceptable",
                    Some("Send Accept: application/json"),
                    "[fake] no Accept header",
                );
            }
            Some(a)
                if !a.split(',').any(|m| {
                    let m = m.split(';').next().unwrap_or("").trim();
                    m == "application/json" || m == "*/*" || m == "application/*"
                }) =>
            {
                return reject(
                    406,
                    "Not Acceptable",
                    Some(&format!("Unsupported Accept: {a}")),
                    "Accept does not allow application/json",
                );
            }
            _ => {}
        }
        match (req.method.as_str(), sys_id) {
            ("POST", None) => self.insert(&table, req, &user),
            ("GET", None) => self.list(&table, req),
            ("GET", Some(id)) => self.get(&table, &id, req),
            ("PATCH" | "PUT", Some(id)) => self.update(&table, &id, req, &user),
            (m, _) => reject(
                405,
                "Method not Supported",
                Some(&format!("{m} is not supported for this resource")),
                &format!("method {m} on {}", req.path),
            ),
        }
    }

    fn fault_response(&self, status: u16) -> Response {
        let message = match status {
            429 => "Rate limit exceeded",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        };
        Response::json(status, &error_body(message, None))
    }
}
