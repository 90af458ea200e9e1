//! Jira Cloud REST API v3 fake (issues, comments, transitions, JQL search),
//! and the signed `jira:issue_updated` webhook Jira sends.
//!
//! # Sources
//! - "The Jira Cloud platform REST API v3", groups Issues, Issue comments,
//!   Issue search: <https://developer.atlassian.com/cloud/jira/platform/rest/v3/>
//!   (create issue answers 201 `{id, key, self}`; edit and transition answer
//!   204; `GET /issue/{key}/transitions`; comments take an ADF `body`).
//! - "Issue search" (`/rest/api/3/search/jql`, GET and POST): `jql` must be a
//!   bounded query, only issue ids are returned unless `fields` are asked for,
//!   pagination by `nextPageToken`/`isLast`, and "Recent updates might not be
//!   immediately visible in the returned search results. If you need
//!   read-after-write consistency, you can utilize the `reconcileIssues`
//!   parameter" — modelled by [`Visibility::Manual`].
//! - Changelog CHANGE-2046: `/rest/api/{2,3}/search` was removed; it answers
//!   410 `The requested API has been removed. Please migrate to the
//!   /rest/api/3/search/jql API...` (the body clients quote verbatim).
//! - "Atlassian Document Format" (`{"type":"doc","version":1,"content":[...]}`):
//!   v3 refuses a plain-string `description` with
//!   `errors.description = "Operation value must be an Atlassian Document (see
//!   the Atlassian Document Format)"` (as reported by v3 clients).
//! - "Basic auth for REST APIs": `Authorization: Basic base64(email:api_token)`.
//! - "Webhooks" (secure admin webhooks): with a secret, Jira sends
//!   `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (WebSub
//!   `method=signature`), plus `X-Atlassian-Webhook-Identifier`.
//!
//! # Choices where the docs are silent
//! - 401 body `{"message":"Client must be authenticated to access this
//!   resource.","status-code":401}` (as observed from Jira Cloud).
//! - Field error strings other than the ADF one are modelled on Jira's
//!   `{"errorMessages":[],"errors":{field: message}}` shape; the exact
//!   wording of `summary`/`labels`/`priority` messages is a best effort.
//! - Unknown fields are refused with `Field 'x' cannot be set. It is not on
//!   the appropriate screen, or unknown.` like the real create screen.
//! - JQL: the fake understands `AND`-joined clauses on `labels` (`=`, `in`),
//!   `project`, `key`, `issuetype`, `status` and `statusCategory` (`=`, `!=`),
//!   and a trailing `ORDER BY`; anything else is refused with a `[fake]`
//!   reason (the real service would run it).
//! - Issue ids count from 10000, keys from `<PROJECT>-1`; transitions are
//!   global (available from every status but their target) and identified by
//!   id only, as the REST API requires.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::server::{Handler, Ids, Outcome, Request, Response, Server, lock};
use super::{Clock, HookRequest, default_clock, hmac_sha256_hex};

#[derive(Debug, Clone)]
pub struct IssueType {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    pub issue_types: Vec<IssueType>,
}

/// A workflow status; `category` is `new`, `indeterminate` or `done`.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub id: String,
    pub name: String,
    pub category: String,
}

/// A global workflow transition to the status named `to`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: String,
    pub name: String,
    pub to: String,
}

/// When a created issue becomes visible to JQL search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Visibility {
    /// At once.
    Immediate,
    /// Only after [`Jira::index_now`], or when named in `reconcileIssues`.
    Manual,
}

/// A Jira user (the API caller, or a person acting in Jira).
#[derive(Debug, Clone)]
pub struct JiraUser {
    pub account_id: String,
    pub display_name: String,
}

pub struct Config {
    pub email: String,
    pub api_token: String,
    /// The account the API token belongs to (comment author, reporter).
    pub account: JiraUser,
    pub projects: Vec<Project>,
    /// `(id, name)`, e.g. `("2", "High")`.
    pub priorities: Vec<(String, String)>,
    pub default_priority: String,
    pub statuses: Vec<Status>,
    pub initial_status: String,
    pub transitions: Vec<Transition>,
    /// Custom fields the create and edit screens accept (e.g. `customfield_10010`).
    pub extra_fields: Vec<String>,
    pub search: Visibility,
    pub clock: Arc<dyn Clock>,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        let s = |id: &str, name: &str, category: &str| Status {
            id: id.into(),
            name: name.into(),
            category: category.into(),
        };
        let t = |id: &str, name: &str| Transition {
            id: id.into(),
            name: name.into(),
            to: name.into(),
        };
        Config {
            email: "sentinel@example.com".into(),
            api_token: "jira-api-token".into(),
            account: JiraUser {
                account_id: "5b10ac8d82e05b22cc7d4ef5".into(),
                display_name: "sentinel".into(),
            },
            projects: vec![Project {
                id: "10000".into(),
                key: "OPS".into(),
                name: "Operations".into(),
                issue_types: vec![
                    IssueType {
                        id: "10001".into(),
                        name: "Task".into(),
                    },
                    IssueType {
                        id: "10002".into(),
                        name: "Bug".into(),
                    },
                    IssueType {
                        id: "10003".into(),
                        name: "Incident".into(),
                    },
                ],
            }],
            priorities: [
                ("1", "Highest"),
                ("2", "High"),
                ("3", "Medium"),
                ("4", "Low"),
                ("5", "Lowest"),
            ]
            .iter()
            .map(|(i, n)| (i.to_string(), n.to_string()))
            .collect(),
            default_priority: "Medium".into(),
            statuses: vec![
                s("10000", "To Do", "new"),
                s("3", "In Progress", "indeterminate"),
                s("5", "Resolved", "done"),
                s("10001", "Done", "done"),
            ],
            initial_status: "To Do".into(),
            transitions: vec![
                t("11", "To Do"),
                t("21", "In Progress"),
                t("31", "Resolved"),
                t("41", "Done"),
            ],
            extra_fields: Vec::new(),
            search: Visibility::Immediate,
            clock: default_clock(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JiraComment {
    pub id: String,
    /// The ADF document.
    pub body: Value,
    pub author: String,
    pub created: String,
}

impl JiraComment {
    /// The concatenated text nodes of the body.
    pub fn text(&self) -> String {
        adf_text(&self.body)
    }
}

/// A status change made on an issue.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub from: Status,
    pub to: Status,
    pub by: String,
}

#[derive(Debug, Clone)]
pub struct JiraIssue {
    pub id: String,
    pub key: String,
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    /// The ADF document, `None` when unset.
    pub description: Option<Value>,
    pub labels: Vec<String>,
    pub priority: String,
    pub status: Status,
    pub resolution: Option<String>,
    pub comments: Vec<JiraComment>,
    pub history: Vec<StatusChange>,
    pub extra: Map<String, Value>,
    pub created: String,
    pub updated: String,
    /// Visible to JQL search.
    pub indexed: bool,
}

/// The concatenated `text` of every text node in an ADF document.
pub fn adf_text(doc: &Value) -> String {
    let mut out = String::new();
    fn walk(v: &Value, out: &mut String) {
        if let Some(t) = v.get("text").and_then(Value::as_str) {
            out.push_str(t);
        }
        if let Some(children) = v.get("content").and_then(Value::as_array) {
            for c in children {
                walk(c, out);
            }
        }
    }
    walk(doc, &mut out);
    out
}

/// A one-paragraph ADF document.
pub fn adf_paragraph(text: &str) -> Value {
    json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    ]})
}

/// Whether `v` is a structurally valid ADF document: a `doc` node of version
/// 1 whose nodes all have a `type`, text nodes a `text`, and children arrays.
pub fn is_adf(v: &Value) -> bool {
    fn node(v: &Value) -> bool {
        let Some(obj) = v.as_object() else {
            return false;
        };
        let Some(ty) = obj.get("type").and_then(Value::as_str) else {
            return false;
        };
        if ty == "text" && !obj.get("text").is_some_and(Value::is_string) {
            return false;
        }
        match obj.get("content") {
            None => true,
            Some(Value::Array(children)) => children.iter().all(node),
            Some(_) => false,
        }
    }
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_i64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
        && node(v)
}

const ADF_ERROR: &str =
    "Operation value must be an Atlassian Document (see the Atlassian Document Format)";

#[derive(Default)]
struct State {
    issues: Vec<JiraIssue>,
    next_id: u64,
    next_comment: u64,
    keys: std::collections::HashMap<String, u64>,
}

struct Inner {
    cfg: Config,
    ids: Ids,
    base_url: OnceLock<String>,
    state: Mutex<State>,
}

/// A running Jira fake. Derefs to its [`Server`] for logs and faults.
pub struct Jira {
    server: Server,
    inner: Arc<Inner>,
}

impl std::ops::Deref for Jira {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Jira {
    pub async fn start(config: Config) -> Jira {
        let inner = Arc::new(Inner {
            ids: Ids::new(config.seed),
            cfg: config,
            base_url: OnceLock::new(),
            state: Mutex::new(State {
                next_id: 10000,
                next_comment: 10000,
                ..State::default()
            }),
        });
        let server = Server::start(Arc::clone(&inner) as Arc<dyn Handler>).await;
        let _ = inner.base_url.set(server.base_url());
        Jira { server, inner }
    }

    pub fn issues(&self) -> Vec<JiraIssue> {
        lock(&self.inner.state).issues.clone()
    }

    pub fn issue(&self, key: &str) -> Option<JiraIssue> {
        self.issues().into_iter().find(|i| i.key == key)
    }

    /// Issues carrying `label`.
    pub fn with_label(&self, label: &str) -> Vec<JiraIssue> {
        self.issues()
            .into_iter()
            .filter(|i| i.labels.iter().any(|l| l == label))
            .collect()
    }

    /// Makes every issue visible to search (see [`Visibility::Manual`]).
    pub fn index_now(&self) {
        for issue in &mut lock(&self.inner.state).issues {
            issue.indexed = true;
        }
    }

    /// Acts out a person moving an issue through the transition named `name`
    /// in the Jira UI. `None` when the issue or transition does not exist.
    pub fn transition_as(&self, key: &str, name: &str, user: &JiraUser) -> Option<StatusChange> {
        let tr = self
            .inner
            .cfg
            .transitions
            .iter()
            .find(|t| t.name == name)?
            .clone();
        let now = self.inner.now();
        let mut state = lock(&self.inner.state);
        let issue = state.issues.iter_mut().find(|i| i.key == key)?;
        self.inner
            .apply_transition(issue, &tr, &user.account_id, &now)
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
}

/// What Jira POSTs for a status change: a `jira:issue_updated` event with the
/// changelog item, signed with `secret` in `X-Hub-Signature`.
pub fn issue_updated_webhook(
    jira_base_url: &str,
    issue: &JiraIssue,
    change: &StatusChange,
    user: &JiraUser,
    timestamp_ms: i64,
    secret: &str,
) -> HookRequest {
    let status = |s: &Status| {
        json!({"self": format!("{jira_base_url}/rest/api/2/status/{}", s.id), "id": s.id,
               "name": s.name, "statusCategory": category(&s.category)})
    };
    let body = json!({
        "timestamp": timestamp_ms,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {
            "self": format!("{jira_base_url}/rest/api/2/user?accountId={}", user.account_id),
            "accountId": user.account_id,
            "displayName": user.display_name,
            "active": true,
            "accountType": "atlassian",
        },
        "issue": {
            "id": issue.id,
            "self": format!("{jira_base_url}/rest/api/2/{}", issue.id),
            "key": issue.key,
            "fields": {
                "summary": issue.summary,
                "labels": issue.labels,
                "status": status(&change.to),
                "issuetype": {"name": issue.issue_type},
                "project": {"key": issue.project},
                "priority": {"name": issue.priority},
                "resolution": issue.resolution.as_ref().map(|r| json!({"name": r})),
                "created": issue.created,
                "updated": issue.updated,
            },
        },
        "changelog": {
            "id": format!("{}", 10000 + timestamp_ms.rem_euclid(90000)),
            "items": [{
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": change.from.id,
                "fromString": change.from.name,
                "to": change.to.id,
                "toString": change.to.name,
            }],
        },
    });
    let raw = body.to_string().into_bytes();
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &raw));
    HookRequest {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Hub-Signature".into(), signature),
            (
                "X-Atlassian-Webhook-Identifier".into(),
                format!("{}", timestamp_ms.rem_euclid(1_000_000_007)),
            ),
        ],
        body: raw,
    }
}

fn category(key: &str) -> Value {
    let (id, name) = match key {
        "new" => (2, "To Do"),
        "done" => (3, "Done"),
        _ => (4, "In Progress"),
    };
    json!({"id": id, "key": key, "name": name})
}

fn errors(status: u16, messages: &[&str], errors: Map<String, Value>, reason: &str) -> Outcome {
    Outcome::Rejected(
        Response::json(
            status,
            &json!({"errorMessages": messages, "errors": Value::Object(errors)}),
        ),
        reason.to_string(),
    )
}

fn one_error(field: &str, message: &str) -> Outcome {
    let mut m = Map::new();
    m.insert(field.to_string(), Value::String(message.to_string()));
    errors(400, &[], m, &format!("{field}: {message}"))
}

fn issue_not_found() -> Outcome {
    Outcome::Served(Response::json(
        404,
        &json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}),
    ))
}

// ------------------------------------------------------------------- JQL

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(jql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = jql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Op("!=".into()));
            i += 2;
        } else if c == '=' || c == '~' {
            out.push(Tok::Op(c.to_string()));
            i += 1;
        } else if c.is_alphanumeric() || "-_.*".contains(c) {
            let mut s = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || "-_.*".contains(chars[i])) {
                s.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Word(s));
        } else {
            return Err(format!("unexpected character '{c}'"));
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Clause {
    field: String,
    negate: bool,
    values: Vec<String>,
}

/// Parses the supported JQL subset; `Err((message, fake_only))`.
/// Clauses and an optional `(field, descending)` order.
type Jql = (Vec<Clause>, Option<(String, bool)>);
/// A JQL error message and whether only the fake refuses it.
type JqlError = (String, bool);

fn parse_jql(jql: &str) -> Result<Jql, JqlError> {
    let toks = tokenize(jql).map_err(|e| (e, false))?;
    let mut clauses = Vec::new();
    let mut order = None;
    let mut i = 0;
    let word = |t: Option<&Tok>| match t {
        Some(Tok::Word(w)) => Some(w.clone()),
        _ => None,
    };
    while i < toks.len() {
        if word(toks.get(i)).is_some_and(|w| w.eq_ignore_ascii_case("order")) {
            let by = word(toks.get(i + 1)).unwrap_or_default();
            let field =
                word(toks.get(i + 2)).ok_or(("ORDER BY needs a field".to_string(), false))?;
            if !by.eq_ignore_ascii_case("by") {
                return Err(("expected BY after ORDER".into(), false));
            }
            let desc = word(toks.get(i + 3)).is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            order = Some((field, desc));
            break;
        }
        if !clauses.is_empty() {
            match word(toks.get(i)) {
                Some(w) if w.eq_ignore_ascii_case("and") => i += 1,
                Some(w) if w.eq_ignore_ascii_case("or") => {
                    return Err(("OR is not implemented".into(), true));
                }
                _ => return Err((format!("expected AND near token {}", i + 1), false)),
            }
        }
        let field = match toks.get(i) {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => w.clone(),
            _ => return Err((format!("expected a field name near token {}", i + 1), false)),
        };
        let field_lc = field.to_ascii_lowercase();
        if ![
            "labels",
            "project",
            "key",
            "issuekey",
            "issuetype",
            "status",
            "statuscategory",
        ]
        .contains(&field_lc.as_str())
        {
            return Err((format!("field '{field}' is not implemented"), true));
        }
        i += 1;
        let (negate, is_in) = match toks.get(i) {
            Some(Tok::Op(op)) if op == "=" => (false, false),
            Some(Tok::Op(op)) if op == "!=" => (true, false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => (false, true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => {
                if word(toks.get(i + 1)).is_some_and(|x| x.eq_ignore_ascii_case("in")) {
                    i += 1;
                    (true, true)
                } else {
                    return Err(("expected IN after NOT".into(), false));
                }
            }
            other => return Err((format!("operator {other:?} is not implemented"), true)),
        };
        i += 1;
        let mut values = Vec::new();
        if is_in {
            if toks.get(i) != Some(&Tok::LParen) {
                return Err(("expected ( after IN".into(), false));
            }
            i += 1;
            loop {
                match toks.get(i) {
                    Some(Tok::Word(w)) | Some(Tok::Str(w)) => values.push(w.clone()),
                    _ => return Err(("expected a value in the IN list".into(), false)),
                }
                i += 1;
                match toks.get(i) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(("expected , or ) in the IN list".into(), false)),
                }
            }
        } else {
            match toks.get(i) {
                Some(Tok::Word(w)) | Some(Tok::Str(w)) => values.push(w.clone()),
                _ => return Err(("expected a value".into(), false)),
            }
            i += 1;
        }
        clauses.push(Clause {
            field: field_lc,
            negate,
            values,
        });
    }
    Ok((clauses, order))
}

impl Inner {
    fn now(&self) -> String {
        self.cfg
            .clock
            .now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string()
    }

    fn base(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    fn status(&self, name: &str) -> Status {
        self.cfg
            .statuses
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or(Status {
                id: "1".into(),
                name: name.into(),
                category: "new".into(),
            })
    }

    fn priority_json(&self, name: &str) -> Value {
        let id = self
            .cfg
            .priorities
            .iter()
            .find(|(_, n)| n == name)
            .map(|(i, _)| i.clone())
            .unwrap_or_default();
        json!({"self": format!("{}/rest/api/3/priority/{id}", self.base()), "id": id, "name": name})
    }

    fn status_json(&self, s: &Status) -> Value {
        json!({"self": format!("{}/rest/api/3/status/{}", self.base(), s.id), "id": s.id,
               "name": s.name, "statusCategory": category(&s.category)})
    }

    fn issue_fields(&self, issue: &JiraIssue) -> Map<String, Value> {
        let project = self.cfg.projects.iter().find(|p| p.key == issue.project);
        let issuetype = project
            .and_then(|p| p.issue_types.iter().find(|t| t.name == issue.issue_type))
            .map(|t| json!({"id": t.id, "name": t.name, "subtask": false}))
            .unwrap_or(Value::Null);
        let mut f = Map::new();
        f.insert("summary".into(), json!(issue.summary));
        f.insert(
            "description".into(),
            issue.description.clone().unwrap_or(Value::Null),
        );
        f.insert("labels".into(), json!(issue.labels));
        f.insert("priority".into(), self.priority_json(&issue.priority));
        f.insert("status".into(), self.status_json(&issue.status));
        f.insert("issuetype".into(), issuetype);
        f.insert(
            "project".into(),
            json!({"id": project.map(|p| p.id.clone()), "key": issue.project,
                   "name": project.map(|p| p.name.clone())}),
        );
        f.insert(
            "resolution".into(),
            issue
                .resolution
                .as_ref()
                .map(|r| json!({"name": r}))
                .unwrap_or(Value::Null),
        );
        f.insert("created".into(), json!(issue.created));
        f.insert("updated".into(), json!(issue.updated));
        for (k, v) in &issue.extra {
            f.insert(k.clone(), v.clone());
        }
        f
    }

    fn render_issue(&self, issue: &JiraIssue, fields: Option<&[String]>) -> Value {
        let all = self.issue_fields(issue);
        let selected: Map<String, Value> = match fields {
            None => all,
            Some(wanted) if wanted.iter().any(|w| w == "*all" || w == "*navigable") => all,
            Some(wanted) => all
                .into_iter()
                .filter(|(k, _)| wanted.contains(k))
                .collect(),
        };
        json!({"expand": "", "id": issue.id, "key": issue.key,
               "self": format!("{}/rest/api/3/issue/{}", self.base(), issue.id),
               "fields": selected})
    }

    fn comment_json(&self, issue: &JiraIssue, c: &JiraComment) -> Value {
        json!({
            "self": format!("{}/rest/api/3/issue/{}/comment/{}", self.base(), issue.id, c.id),
            "id": c.id,
            "author": {"accountId": c.author, "displayName": if c.author == self.cfg.account.account_id { self.cfg.account.display_name.clone() } else { c.author.clone() }},
            "body": c.body,
            "created": c.created,
            "updated": c.created,
        })
    }

    fn authenticate(&self, req: &Request) -> Result<(), Outcome> {
        match req.basic_auth() {
            Some((u, p)) if u == self.cfg.email && p == self.cfg.api_token => Ok(()),
            other => Err(Outcome::Rejected(
                Response::json(
                    401,
                    &json!({"message": "Client must be authenticated to access this resource.", "status-code": 401}),
                ),
                match (other, req.header("authorization")) {
                    (_, None) => "no Authorization header".into(),
                    (None, Some(_)) => "Authorization is not Basic email:api_token".into(),
                    (Some(_), Some(_)) => "wrong email or API token".into(),
                },
            )),
        }
    }

    fn json_body(&self, req: &Request) -> Result<Value, Outcome> {
        if req.media_type().as_deref() != Some("application/json") {
            return Err(Outcome::Rejected(
                Response::empty(415),
                "Content-Type is not application/json".into(),
            ));
        }
        req.json().ok_or_else(|| {
            errors(
                400,
                &["Unexpected character in the request body: it is not valid JSON."],
                Map::new(),
                "body is not valid JSON",
            )
        })
    }

    fn find_priority(&self, v: &Value) -> Option<String> {
        let by_name = v.get("name").and_then(Value::as_str);
        let by_id = v.get("id").and_then(Value::as_str);
        self.cfg
            .priorities
            .iter()
            .find(|(id, name)| Some(name.as_str()) == by_name || Some(id.as_str()) == by_id)
            .map(|(_, n)| n.clone())
    }

    /// Validates settable fields shared by create and edit; collects errors.
    fn check_fields(
        &self,
        fields: &Map<String, Value>,
        errs: &mut Map<String, Value>,
        create: bool,
    ) {
        for (k, v) in fields {
            match k.as_str() {
                "project" | "issuetype" if create => {}
                "summary" => match v.as_str() {
                    Some(s) if s.trim().is_empty() => {
                        errs.insert(k.clone(), "You must specify a summary of the issue.".into());
                    }
                    Some(s) if s.chars().count() > 255 => {
                        errs.insert(
                            k.clone(),
                            "Summary must be less than 255 characters.".into(),
                        );
                    }
                    Some(s) if s.contains('\n') => {
                        errs.insert(
                            k.clone(),
                            "Field 'summary' cannot contain newline characters.".into(),
                        );
                    }
                    Some(_) => {}
                    None => {
                        errs.insert(k.clone(), "Operation value must be a string".into());
                    }
                },
                "description" => {
                    if !v.is_null() && !is_adf(v) {
                        errs.insert(k.clone(), ADF_ERROR.into());
                    }
                }
                "labels" => match v.as_array() {
                    Some(labels) => {
                        for l in labels {
                            match l.as_str() {
                                Some(s) if s.is_empty() || s.chars().any(char::is_whitespace) => {
                                    errs.insert(
                                        k.clone(),
                                        format!(
                                            "The label '{s}' contains spaces which is invalid."
                                        )
                                        .into(),
                                    );
                                }
                                Some(s) if s.chars().count() > 255 => {
                                    errs.insert(
                                        k.clone(),
                                        "The label must not exceed 255 characters.".into(),
                                    );
                                }
                                Some(_) => {}
                                None => {
                                    errs.insert(
                                        k.clone(),
                                        "Operation value must be a string".into(),
                                    );
                                }
                            }
                        }
                    }
                    None => {
                        errs.insert(k.clone(), "Operation value must be an array".into());
                    }
                },
                "priority" => {
                    if self.find_priority(v).is_none() {
                        errs.insert(k.clone(), "The priority selected is invalid.".into());
                    }
                }
                f if self.cfg.extra_fields.iter().any(|e| e == f) => {}
                f => {
                    errs.insert(
                        k.clone(),
                        format!("Field '{f}' cannot be set. It is not on the appropriate screen, or unknown.")
                            .into(),
                    );
                }
            }
        }
    }

    fn apply_fields(&self, issue: &mut JiraIssue, fields: &Map<String, Value>) {
        for (k, v) in fields {
            match k.as_str() {
                "summary" => issue.summary = v.as_str().unwrap_or("").to_string(),
                "description" => issue.description = (!v.is_null()).then(|| v.clone()),
                "labels" => {
                    issue.labels = v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|l| l.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                }
                "priority" => {
                    if let Some(p) = self.find_priority(v) {
                        issue.priority = p;
                    }
                }
                "project" | "issuetype" => {}
                other => {
                    issue.extra.insert(other.to_string(), v.clone());
                }
            }
        }
    }

    fn create(&self, req: &Request) -> Outcome {
        let body = match self.json_body(req) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let Some(fields) = body.get("fields").and_then(Value::as_object) else {
            return errors(
                400,
                &[],
                [(
                    "project".to_string(),
                    Value::from("Specify a valid project ID or key"),
                )]
                .into_iter()
                .collect(),
                "no fields object",
            );
        };
        let mut errs = Map::new();
        let project = fields.get("project").and_then(|p| {
            let key = p.get("key").and_then(Value::as_str);
            let id = p.get("id").and_then(Value::as_str);
            self.cfg
                .projects
                .iter()
                .find(|x| Some(x.key.as_str()) == key || Some(x.id.as_str()) == id)
        });
        let issue_type = match project {
            None => {
                errs.insert("project".into(), "Specify a valid project ID or key".into());
                None
            }
            Some(p) => {
                let it = fields.get("issuetype");
                let name = it.and_then(|t| t.get("name")).and_then(Value::as_str);
                let id = it.and_then(|t| t.get("id")).and_then(Value::as_str);
                let found = p
                    .issue_types
                    .iter()
                    .find(|t| Some(t.name.as_str()) == name || Some(t.id.as_str()) == id);
                match (it, found) {
                    (None, _) => {
                        errs.insert("issuetype".into(), "Specify an issue type".into());
                    }
                    (Some(_), None) => {
                        errs.insert(
                            "issuetype".into(),
                            "The issue type selected is invalid.".into(),
                        );
                    }
                    _ => {}
                }
                found.cloned()
            }
        };
        if !fields.contains_key("summary") {
            errs.insert(
                "summary".into(),
                "You must specify a summary of the issue.".into(),
            );
        }
        self.check_fields(fields, &mut errs, true);
        if !errs.is_empty() {
            let reason = errs
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("; ");
            return errors(400, &[], errs, &reason);
        }
        let (Some(project), Some(issue_type)) = (project, issue_type) else {
            return errors(400, &["invalid project"], Map::new(), "invalid project");
        };
        let now = self.now();
        let mut state = lock(&self.state);
        let id = state.next_id;
        state.next_id += 1;
        let n = {
            let n = state.keys.entry(project.key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let mut issue = JiraIssue {
            id: id.to_string(),
            key: format!("{}-{n}", project.key),
            project: project.key.clone(),
            issue_type: issue_type.name.clone(),
            summary: String::new(),
            description: None,
            labels: Vec::new(),
            priority: self.cfg.default_priority.clone(),
            status: self.status(&self.cfg.initial_status),
            resolution: None,
            comments: Vec::new(),
            history: Vec::new(),
            extra: Map::new(),
            created: now.clone(),
            updated: now,
            indexed: self.cfg.search == Visibility::Immediate,
        };
        self.apply_fields(&mut issue, fields);
        let answer = json!({"id": issue.id, "key": issue.key,
                            "self": format!("{}/rest/api/3/issue/{}", self.base(), issue.id)});
        state.issues.push(issue);
        Outcome::Served(Response::json(201, &answer))
    }

    fn find<'a>(&self, state: &'a mut State, key_or_id: &str) -> Option<&'a mut JiraIssue> {
        state
            .issues
            .iter_mut()
            .find(|i| i.key == key_or_id || i.id == key_or_id)
    }

    fn edit(&self, key: &str, req: &Request) -> Outcome {
        let body = match self.json_body(req) {
            Ok(b) => b,
            Err(o) => return o,
        };
        if lock(&self.state)
            .issues
            .iter()
            .all(|i| i.key != key && i.id != key)
        {
            return issue_not_found();
        }
        let empty = Map::new();
        let fields = body
            .get("fields")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let update = body
            .get("update")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        if fields.is_empty() && update.is_empty() {
            return errors(
                400,
                &["No fields or update operations were specified."],
                Map::new(),
                "empty edit",
            );
        }
        let mut errs = Map::new();
        self.check_fields(fields, &mut errs, false);
        let mut comments = Vec::new();
        let mut label_ops = Vec::new();
        for (k, ops) in update {
            let Some(ops) = ops.as_array() else {
                errs.insert(k.clone(), "Operation value must be an array".into());
                continue;
            };
            for op in ops {
                match (k.as_str(), op.as_object()) {
                    ("comment", Some(o)) if o.contains_key("add") => {
                        let b = o["add"].get("body").cloned().unwrap_or(Value::Null);
                        if is_adf(&b) {
                            comments.push(b);
                        } else {
                            errs.insert("comment".into(), ADF_ERROR.into());
                        }
                    }
                    ("labels", Some(o)) => {
                        for (verb, v) in o {
                            match (verb.as_str(), v.as_str()) {
                                ("add" | "remove", Some(l))
                                    if !l.chars().any(char::is_whitespace) && !l.is_empty() =>
                                {
                                    label_ops.push((verb.clone(), l.to_string()));
                                }
                                _ => {
                                    errs.insert(
                                        "labels".into(),
                                        format!("Invalid labels operation {verb}").into(),
                                    );
                                }
                            }
                        }
                    }
                    _ => {
                        errs.insert(
                            k.clone(),
                            format!("Field '{k}' cannot be set. It is not on the appropriate screen, or unknown.")
                                .into(),
                        );
                    }
                }
            }
        }
        if !errs.is_empty() {
            let reason = errs
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("; ");
            return errors(400, &[], errs, &reason);
        }
        let now = self.now();
        let mut state = lock(&self.state);
        let mut next_comment = state.next_comment;
        let Some(issue) = self.find(&mut state, key) else {
            return issue_not_found();
        };
        self.apply_fields(issue, fields);
        for (verb, l) in label_ops {
            if verb == "add" && !issue.labels.contains(&l) {
                issue.labels.push(l);
            } else if verb == "remove" {
                issue.labels.retain(|x| x != &l);
            }
        }
        for b in comments {
            issue.comments.push(JiraComment {
                id: next_comment.to_string(),
                body: b,
                author: self.cfg.account.account_id.clone(),
                created: now.clone(),
            });
            next_comment += 1;
        }
        issue.updated = now;
        state.next_comment = next_comment;
        Outcome::Served(Response::empty(204))
    }

    fn add_comment(&self, key: &str, req: &Request) -> Outcome {
        let body = match self.json_body(req) {
            Ok(b) => b,
            Err(o) => return o,
        };
        match body.get("body") {
            None | Some(Value::Null) => {
                return one_error("comment", "Comment body can not be empty!");
            }
            Some(b) if !is_adf(b) => return one_error("comment", ADF_ERROR),
            Some(_) => {}
        }
        let now = self.now();
        let mut state = lock(&self.state);
        let id = state.next_comment;
        let author = self.cfg.account.account_id.clone();
        let Some(issue) = self.find(&mut state, key) else {
            return issue_not_found();
        };
        let c = JiraComment {
            id: id.to_string(),
            body: body["body"].clone(),
            author,
            created: now.clone(),
        };
        let answer = self.comment_json(issue, &c);
        issue.comments.push(c);
        issue.updated = now;
        state.next_comment += 1;
        Outcome::Served(Response::json(201, &answer))
    }

    fn list_comments(&self, key: &str) -> Outcome {
        let mut state = lock(&self.state);
        let Some(issue) = self.find(&mut state, key) else {
            return issue_not_found();
        };
        let issue = issue.clone();
        let comments: Vec<Value> = issue
            .comments
            .iter()
            .map(|c| self.comment_json(&issue, c))
            .collect();
        Outcome::Served(Response::json(
            200,
            &json!({"startAt": 0, "maxResults": 5000, "total": comments.len(), "comments": comments}),
        ))
    }

    fn available(&self, issue: &JiraIssue) -> Vec<&Transition> {
        self.cfg
            .transitions
            .iter()
            .filter(|t| t.to != issue.status.name)
            .collect()
    }

    fn transitions(&self, key: &str) -> Outcome {
        let mut state = lock(&self.state);
        let Some(issue) = self.find(&mut state, key) else {
            return issue_not_found();
        };
        let issue = issue.clone();
        let list: Vec<Value> = self
            .available(&issue)
            .into_iter()
            .map(|t| {
                json!({"id": t.id, "name": t.name, "to": self.status_json(&self.status(&t.to)),
                       "hasScreen": false, "isGlobal": true, "isInitial": false,
                       "isAvailable": true, "isConditional": false, "isLooped": false})
            })
            .collect();
        Outcome::Served(Response::json(
            200,
            &json!({"expand": "transitions", "transitions": list}),
        ))
    }

    fn apply_transition(
        &self,
        issue: &mut JiraIssue,
        tr: &Transition,
        by: &str,
        now: &str,
    ) -> Option<StatusChange> {
        if tr.to == issue.status.name {
            return None;
        }
        let to = self.status(&tr.to);
        let change = StatusChange {
            from: issue.status.clone(),
            to: to.clone(),
            by: by.to_string(),
        };
        issue.resolution = (to.category == "done").then(|| "Done".to_string());
        issue.status = to;
        issue.updated = now.to_string();
        issue.history.push(change.clone());
        Some(change)
    }

    fn do_transition(&self, key: &str, req: &Request) -> Outcome {
        let body = match self.json_body(req) {
            Ok(b) => b,
            Err(o) => return o,
        };
        let id = match body.get("transition").and_then(|t| t.get("id")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return errors(
                    400,
                    &["Missing 'transition' identifier"],
                    Map::new(),
                    "no transition.id (transitions are chosen by id, not name)",
                );
            }
        };
        let mut comments = Vec::new();
        if let Some(update) = body.get("update").and_then(Value::as_object) {
            for (k, ops) in update {
                for op in ops.as_array().cloned().unwrap_or_default() {
                    match op.get("add").and_then(|a| a.get("body")) {
                        Some(b) if k == "comment" && is_adf(b) => comments.push(b.clone()),
                        Some(_) if k == "comment" => return one_error("comment", ADF_ERROR),
                        _ => {
                            return one_error(
                                k,
                                &format!(
                                    "Field '{k}' cannot be set. It is not on the appropriate screen, or unknown."
                                ),
                            );
                        }
                    }
                }
            }
        }
        if let Some(k) = body
            .get("fields")
            .and_then(Value::as_object)
            .and_then(|f| f.keys().find(|k| k.as_str() != "resolution"))
        {
            return one_error(
                k,
                &format!(
                    "Field '{k}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            );
        }
        let now = self.now();
        let account = self.cfg.account.account_id.clone();
        let mut state = lock(&self.state);
        let mut next_comment = state.next_comment;
        let Some(issue) = self.find(&mut state, key) else {
            return issue_not_found();
        };
        let Some(tr) = self
            .available(issue)
            .into_iter()
            .find(|t| t.id == id)
            .cloned()
        else {
            return errors(
                400,
                &[&format!(
                    "Transition id '{id}' is not valid for this issue."
                )],
                Map::new(),
                &format!("transition {id} not available from {}", issue.status.name),
            );
        };
        self.apply_transition(issue, &tr, &account, &now);
        for b in comments {
            issue.comments.push(JiraComment {
                id: next_comment.to_string(),
                body: b,
                author: account.clone(),
                created: now.clone(),
            });
            next_comment += 1;
        }
        state.next_comment = next_comment;
        Outcome::Served(Response::empty(204))
    }

    fn search(&self, req: &Request) -> Outcome {
        let (jql, fields, max, token, reconcile) = if req.method == "POST" {
            let body = match self.json_body(req) {
                Ok(b) => b,
                Err(o) => return o,
            };
            let list = |k: &str| -> Option<Vec<String>> {
                body.get(k).and_then(Value::as_array).map(|a| {
                    a.iter()
                        .map(|v| {
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect()
                })
            };
            (
                body.get("jql").and_then(Value::as_str).map(String::from),
                list("fields"),
                body.get("maxResults").and_then(Value::as_u64),
                body.get("nextPageToken")
                    .and_then(Value::as_str)
                    .map(String::from),
                list("reconcileIssues").unwrap_or_default(),
            )
        } else {
            let pairs = req.query_pairs();
            let multi = |k: &str| -> Option<Vec<String>> {
                let v: Vec<String> = pairs
                    .iter()
                    .filter(|(n, _)| n == k)
                    .flat_map(|(_, v)| {
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            (
                req.query_param("jql"),
                multi("fields"),
                req.query_param("maxResults").and_then(|v| v.parse().ok()),
                req.query_param("nextPageToken"),
                multi("reconcileIssues").unwrap_or_default(),
            )
        };
        let jql = jql.unwrap_or_default();
        let (clauses, order) = match parse_jql(&jql) {
            Ok(p) => p,
            Err((message, fake_only)) => {
                let reason = if fake_only {
                    format!("[fake] JQL not implemented: {message}")
                } else {
                    format!("JQL syntax: {message}")
                };
                return errors(
                    400,
                    &[&format!("Error in the JQL Query: {message}")],
                    Map::new(),
                    &reason,
                );
            }
        };
        if clauses.is_empty() {
            return errors(
                400,
                &[
                    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
                ],
                Map::new(),
                "unbounded JQL",
            );
        }
        let state = lock(&self.state);
        let mut hits: Vec<&JiraIssue> = state
            .issues
            .iter()
            .filter(|i| i.indexed || reconcile.contains(&i.id))
            .filter(|i| {
                clauses.iter().all(|c| {
                    let m = c.values.iter().any(|v| match c.field.as_str() {
                        "labels" => i.labels.iter().any(|l| l == v),
                        "project" => i.project.eq_ignore_ascii_case(v),
                        "key" | "issuekey" => i.key.eq_ignore_ascii_case(v),
                        "issuetype" => i.issue_type.eq_ignore_ascii_case(v),
                        "status" => i.status.name.eq_ignore_ascii_case(v),
                        "statuscategory" => {
                            let cat = match i.status.category.as_str() {
                                "new" => "To Do",
                                "done" => "Done",
                                _ => "In Progress",
                            };
                            cat.eq_ignore_ascii_case(v) || i.status.category.eq_ignore_ascii_case(v)
                        }
                        _ => false,
                    });
                    m != c.negate
                })
            })
            .collect();
        if let Some((field, desc)) = order {
            hits.sort_by(|a, b| {
                let o = match field.to_ascii_lowercase().as_str() {
                    "key" | "id" => {
                        a.id.parse::<u64>()
                            .unwrap_or(0)
                            .cmp(&b.id.parse::<u64>().unwrap_or(0))
                    }
                    "updated" => a.updated.cmp(&b.updated),
                    _ => a
                        .created
                        .cmp(&b.created)
                        .then(a.id.len().cmp(&b.id.len()))
                        .then(a.id.cmp(&b.id)),
                };
                if desc { o.reverse() } else { o }
            });
        }
        let offset = token
            .as_deref()
            .and_then(|t| t.strip_prefix("page-"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let max = max.unwrap_or(50).clamp(1, 5000) as usize;
        let page: Vec<Value> = hits
            .iter()
            .skip(offset)
            .take(max)
            .map(|i| match &fields {
                None => json!({"id": i.id}),
                Some(f) if f.iter().all(|x| x == "id") => json!({"id": i.id}),
                Some(f) => self.render_issue(i, Some(f)),
            })
            .collect();
        let is_last = offset + max >= hits.len();
        let mut answer = json!({"issues": page, "isLast": is_last});
        if !is_last {
            answer["nextPageToken"] = json!(format!("page-{}", offset + max));
        }
        Outcome::Served(Response::json(200, &answer))
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
            ("POST", ["rest", "api", "3", "issue"]) => self.create(req),
            ("GET", ["rest", "api", "3", "issue", key]) => {
                let mut state = lock(&self.state);
                match self.find(&mut state, key) {
                    Some(issue) => {
                        let issue = issue.clone();
                        drop(state);
                        Outcome::Served(Response::json(200, &self.render_issue(&issue, None)))
                    }
                    None => issue_not_found(),
                }
            }
            ("PUT", ["rest", "api", "3", "issue", key]) => self.edit(key, req),
            ("POST", ["rest", "api", "3", "issue", key, "comment"]) => self.add_comment(key, req),
            ("GET", ["rest", "api", "3", "issue", key, "comment"]) => self.list_comments(key),
            ("GET", ["rest", "api", "3", "issue", key, "transitions"]) => self.transitions(key),
            ("POST", ["rest", "api", "3", "issue", key, "transitions"]) => {
                self.do_transition(key, req)
            }
            ("GET" | "POST", ["rest", "api", "3", "search", "jql"]) => self.search(req),
            (_, ["rest", "api", "2" | "3" | "latest", "search"]) => errors(
                410,
                &[
                    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
                ],
                Map::new(),
                "removed search endpoint (CHANGE-2046)",
            ),
            ("GET", ["rest", "api", "3", "myself"]) => Outcome::Served(Response::json(
                200,
                &json!({"accountId": self.cfg.account.account_id,
                        "displayName": self.cfg.account.display_name,
                        "emailAddress": self.cfg.email, "active": true}),
            )),
            (_, ["rest", "api", "2", ..]) => errors(
                404,
                &["[fake] only REST API v3 is implemented"],
                Map::new(),
                "[fake] REST API v2 is not implemented",
            ),
            (m, _) => errors(
                404,
                &[&format!("No resource for {m} {}", req.path)],
                Map::new(),
                &format!("no resource {m} {}", req.path),
            ),
        }
    }

    fn fault_response(&self, status: u16) -> Response {
        let msg = match status {
            429 => "Rate limit exceeded.",
            503 => "Service Unavailable",
            _ => "Internal server error",
        };
        Response::json(status, &json!({"errorMessages": [msg], "errors": {}}))
    }
}
