//! Validation of the ticket connector keys (`servicenow`, `jira`,
//! `opsgenie` notifiers): credentials from the environment (warned about
//! when unset, like every `_env` key), the provider's identifiers, extra
//! create fields and the severity map. Keys of one provider on another
//! notifier type are errors.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_saphyr::Spanned;

use super::{Position, Validator, join_key, pos};
use crate::config::raw::{self, Opt, OrderedMap};
use crate::config::tickets::*;
use crate::config::types::{NotifierKind, UrlSource};

pub(super) const TICKET_TYPES: [&str; 3] = ["servicenow", "jira", "opsgenie"];

/// Each ticket key and the notifier types that use it.
const KEYS: [(&str, &[&str]); 12] = [
    ("username_env", &["servicenow"]),
    ("password_env", &["servicenow"]),
    ("token_env", &["servicenow", "jira"]),
    ("user_env", &["jira"]),
    ("api_key_env", &["opsgenie"]),
    ("table", &["servicenow"]),
    ("close_code", &["servicenow"]),
    ("project", &["jira"]),
    ("issue_type", &["jira"]),
    ("resolve_transition", &["jira"]),
    ("fields", &TICKET_TYPES),
    ("severity_map", &TICKET_TYPES),
];

/// ServiceNow fields sentinel writes itself (the lookup key, the texts,
/// the severity and the lifecycle): setting them in `fields` would break
/// the connector or be overwritten.
const SNOW_RESERVED: [(&str, &str); 11] = [
    ("correlation_id", "sentinel finds its record by it"),
    ("correlation_display", "sentinel marks its records with it"),
    ("short_description", "sentinel writes the incident title"),
    ("description", "sentinel writes the incident details"),
    ("impact", "use `severity_map`"),
    ("urgency", "use `severity_map`"),
    ("state", "sentinel moves the record through its states"),
    ("close_code", "use the notifier's `close_code` key"),
    ("close_notes", "sentinel writes the close notes"),
    ("work_notes", "sentinel writes work notes"),
    ("comments", "sentinel writes work notes"),
];

const JIRA_RESERVED: [(&str, &str); 5] = [
    ("project", "use the notifier's `project` key"),
    ("issuetype", "use the notifier's `issue_type` key"),
    ("summary", "sentinel writes the incident title"),
    ("description", "sentinel writes the incident details"),
    ("priority", "use `severity_map`"),
];

const OPSGENIE_RESERVED: [(&str, &str); 4] = [
    (
        "alias",
        "sentinel finds its alert by it (the incident's dedup key)",
    ),
    ("message", "sentinel writes the incident title"),
    ("description", "sentinel writes the incident details"),
    ("priority", "use `severity_map`"),
];

fn key_at(n: &raw::RawNotifier, key: &str) -> Option<Position> {
    let s = |o: &Opt<String>| o.as_ref().map(|s| pos(&s.referenced));
    match key {
        "username_env" => s(&n.username_env),
        "password_env" => s(&n.password_env),
        "token_env" => s(&n.token_env),
        "user_env" => s(&n.user_env),
        "api_key_env" => s(&n.api_key_env),
        "table" => s(&n.table),
        "close_code" => s(&n.close_code),
        "project" => s(&n.project),
        "issue_type" => s(&n.issue_type),
        "resolve_transition" => s(&n.resolve_transition),
        "fields" => n.fields.as_ref().map(|f| pos(&f.referenced)),
        "severity_map" => n.severity_map.as_ref().map(|f| pos(&f.referenced)),
        _ => None,
    }
}

fn kinds_list(kinds: &[&str]) -> String {
    let quoted: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl<'a> Validator<'a> {
    /// Ticket keys on a notifier type that does not use them.
    pub(super) fn misplaced_ticket_keys(&mut self, n: &raw::RawNotifier, kind: &str, path: &str) {
        for (key, kinds) in KEYS {
            if !kinds.contains(&kind)
                && let Some(at) = key_at(n, key)
            {
                self.problem(
                    at,
                    &join_key(path, key),
                    format!(
                        "`{key}` is only used by {} notifiers, not `{kind}`",
                        kinds_list(kinds)
                    ),
                );
            }
        }
    }

    /// The connector settings of a `servicenow`, `jira` or `opsgenie`
    /// notifier; `None` once a problem was reported (every problem is).
    pub(super) fn ticket_kind(
        &mut self,
        kind: &str,
        n: &raw::RawNotifier,
        at: Position,
        path: &str,
        url: Option<UrlSource>,
    ) -> Option<NotifierKind> {
        let url = match url {
            Some(UrlSource::Inline(u)) => Some(u),
            Some(UrlSource::Env(_)) => {
                let at = n.url_env.as_ref().map_or(at, |s| pos(&s.referenced));
                self.report(
                    at,
                    &join_key(path, "url_env"),
                    format!("`{kind}` notifiers take `url`, not `url_env`"),
                    Some(
                        "the instance URL is not a secret; the credentials go in the `_env` keys"
                            .into(),
                    ),
                );
                None
            }
            None => None,
        };
        let label = n.name.as_ref().map_or("", |s| s.value.as_str());
        let consequence =
            format!("tickets of notifier `{label}` are not created or updated until it is set");
        let ctx = Ctx {
            at,
            path,
            consequence: &consequence,
        };
        match kind {
            "servicenow" => self.servicenow(n, &ctx, url),
            "jira" => self.jira(n, &ctx, url),
            _ => self.opsgenie(n, &ctx, url),
        }
    }

    fn servicenow(
        &mut self,
        n: &raw::RawNotifier,
        ctx: &Ctx<'_>,
        url: Option<url::Url>,
    ) -> Option<NotifierKind> {
        let auth = match (&n.username_env, &n.password_env, &n.token_env) {
            (Some(_), Some(_), Some(t)) | (Some(_), None, Some(t)) | (None, Some(_), Some(t)) => {
                self.report(
                    pos(&t.referenced),
                    &join_key(ctx.path, "token_env"),
                    "give either `username_env` + `password_env` (basic auth) or `token_env` (OAuth bearer), not both".into(),
                    None,
                );
                None
            }
            (None, None, Some(_)) => self
                .env_key(&n.token_env, ctx, "token_env", "")
                .map(|token_env| ServiceNowAuth::Bearer { token_env }),
            (None, None, None) => {
                self.report(
                    ctx.at,
                    &join_key(ctx.path, "username_env"),
                    "missing credentials: `username_env` + `password_env` (basic auth) or `token_env` (OAuth bearer)".into(),
                    Some("name the environment variables that hold them, e.g. `username_env: SNOW_USER`".into()),
                );
                None
            }
            _ => {
                let why = "basic auth needs both `username_env` and `password_env`";
                let user = self.env_key(&n.username_env, ctx, "username_env", why);
                let pass = self.env_key(&n.password_env, ctx, "password_env", why);
                match (user, pass) {
                    (Some(username_env), Some(password_env)) => Some(ServiceNowAuth::Basic {
                        username_env,
                        password_env,
                    }),
                    _ => None,
                }
            }
        };
        let table = self.identifier(
            &n.table,
            ctx,
            "table",
            SERVICENOW_DEFAULT_TABLE,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
            "a ServiceNow table name: lower-case letters, digits and `_`, e.g. `incident`",
        );
        let close_code = self.text(
            &n.close_code,
            ctx,
            "close_code",
            SERVICENOW_DEFAULT_CLOSE_CODE,
        );
        let mut fields = Vec::new();
        let mut ok = true;
        for (key, value) in self.map_entries(&n.fields, ctx, "fields", &SNOW_RESERVED) {
            let field_ok = key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !key.is_empty();
            let path = join_key(&join_key(ctx.path, "fields"), &key);
            if !field_ok {
                self.report(
                    pos(&value.referenced),
                    &path,
                    format!("`{key}` is not a ServiceNow field name"),
                    Some("field names are lower-case letters, digits and `_`, e.g. `assignment_group`".into()),
                );
                ok = false;
                continue;
            }
            match scalar(&value.value) {
                Some(v) => fields.push((key, v)),
                None => {
                    self.report(
                        pos(&value.referenced),
                        &path,
                        format!("field `{key}` must be a text, number or boolean"),
                        Some("ServiceNow stores every field as text; reference fields take a sys_id or display value".into()),
                    );
                    ok = false;
                }
            }
        }
        let mut severity_map = BTreeMap::new();
        for (sev, value) in self.map_entries(&n.severity_map, ctx, "severity_map", &[]) {
            let path = join_key(&join_key(ctx.path, "severity_map"), &sev);
            let level = |v: &Value, k: &str| -> Option<u8> {
                v.get(k)
                    .and_then(Value::as_i64)
                    .filter(|x| (1..=3).contains(x))
                    .and_then(|x| u8::try_from(x).ok())
            };
            let obj = value.value.as_object();
            let unknown = obj.and_then(|o| o.keys().find(|k| *k != "impact" && *k != "urgency"));
            match (
                obj,
                level(&value.value, "impact"),
                level(&value.value, "urgency"),
                unknown,
            ) {
                (Some(_), Some(impact), Some(urgency), None) => {
                    severity_map.insert(sev, SnowUrgency { impact, urgency });
                }
                _ => {
                    self.report(
                        pos(&value.referenced),
                        &path,
                        format!("severity `{sev}` must map to `{{ impact: 1..3, urgency: 1..3 }}`"),
                        Some("e.g. `P1: { impact: 1, urgency: 1 }` (1 is the highest)".into()),
                    );
                    ok = false;
                }
            }
        }
        let (url, auth, table, close_code) = (url?, auth?, table?, close_code?);
        ok.then_some(NotifierKind::ServiceNow(ServiceNowSpec {
            url,
            auth,
            table,
            fields,
            close_code,
            severity_map,
        }))
    }

    fn jira(
        &mut self,
        n: &raw::RawNotifier,
        ctx: &Ctx<'_>,
        url: Option<url::Url>,
    ) -> Option<NotifierKind> {
        let user_env = self.env_key(
            &n.user_env,
            ctx,
            "user_env",
            "jira notifiers authenticate with the account's e-mail (`user_env`) and an API token (`token_env`)",
        );
        let token_env = self.env_key(
            &n.token_env,
            ctx,
            "token_env",
            "jira notifiers authenticate with the account's e-mail (`user_env`) and an API token (`token_env`)",
        );
        let project = match &n.project {
            None => {
                self.report(
                    ctx.at,
                    &join_key(ctx.path, "project"),
                    "missing required key `project`".into(),
                    Some("the key of the Jira project that gets the issues, e.g. `OPS`".into()),
                );
                None
            }
            Some(_) => self.identifier(
                &n.project,
                ctx,
                "project",
                "",
                |c| c.is_ascii_alphanumeric() || c == '_',
                "a Jira project key: letters, digits and `_`, e.g. `OPS`",
            ),
        };
        let issue_type = self.text(&n.issue_type, ctx, "issue_type", JIRA_DEFAULT_ISSUE_TYPE);
        let resolve_transition = self.text(
            &n.resolve_transition,
            ctx,
            "resolve_transition",
            JIRA_DEFAULT_RESOLVE_TRANSITION,
        );
        let mut ok = true;
        let mut fields = Vec::new();
        for (key, value) in self.map_entries(&n.fields, ctx, "fields", &JIRA_RESERVED) {
            if key == "labels" && !labels_ok(&value.value, false) {
                self.report(
                    pos(&value.referenced),
                    &join_key(&join_key(ctx.path, "fields"), &key),
                    "`labels` must be a list of texts without spaces".into(),
                    Some("sentinel adds its own labels `sentinel` and `sentinel-<incident id>` to these".into()),
                );
                ok = false;
                continue;
            }
            fields.push((key, value.value.clone()));
        }
        let mut severity_map = BTreeMap::new();
        for (sev, value) in self.map_entries(&n.severity_map, ctx, "severity_map", &[]) {
            match value.value.as_str().map(str::trim) {
                Some(p) if !p.is_empty() => {
                    severity_map.insert(sev, p.to_string());
                }
                _ => {
                    self.report(
                        pos(&value.referenced),
                        &join_key(&join_key(ctx.path, "severity_map"), &sev),
                        format!("severity `{sev}` must map to a Jira priority name"),
                        Some("e.g. `P1: Highest`".into()),
                    );
                    ok = false;
                }
            }
        }
        let (url, user_env, token_env, project) = (url?, user_env?, token_env?, project?);
        let (issue_type, resolve_transition) = (issue_type?, resolve_transition?);
        ok.then_some(NotifierKind::Jira(JiraSpec {
            url,
            user_env,
            token_env,
            project,
            issue_type,
            resolve_transition,
            fields,
            severity_map,
        }))
    }

    fn opsgenie(
        &mut self,
        n: &raw::RawNotifier,
        ctx: &Ctx<'_>,
        url: Option<url::Url>,
    ) -> Option<NotifierKind> {
        let api_key_env = self.env_key(
            &n.api_key_env,
            ctx,
            "api_key_env",
            "opsgenie notifiers need the environment variable holding the API integration key",
        );
        let mut ok = true;
        let mut fields = Vec::new();
        for (key, value) in self.map_entries(&n.fields, ctx, "fields", &OPSGENIE_RESERVED) {
            let bad = match key.as_str() {
                "tags" if !labels_ok(&value.value, true) => Some(
                    "`tags` must be a list of texts (sentinel adds `sentinel` and the service)",
                ),
                "details"
                    if !value
                        .value
                        .as_object()
                        .is_some_and(|m| m.values().all(Value::is_string)) =>
                {
                    Some("`details` must be a mapping of texts (sentinel adds its own entries)")
                }
                _ => None,
            };
            if let Some(message) = bad {
                self.problem(
                    pos(&value.referenced),
                    &join_key(&join_key(ctx.path, "fields"), &key),
                    message,
                );
                ok = false;
                continue;
            }
            fields.push((key, value.value.clone()));
        }
        let mut severity_map = BTreeMap::new();
        for (sev, value) in self.map_entries(&n.severity_map, ctx, "severity_map", &[]) {
            match value.value.as_str().map(str::trim) {
                Some(p) if OPSGENIE_PRIORITIES.contains(&p) => {
                    severity_map.insert(sev, p.to_string());
                }
                _ => {
                    self.report(
                        pos(&value.referenced),
                        &join_key(&join_key(ctx.path, "severity_map"), &sev),
                        format!("severity `{sev}` must map to one of Opsgenie's priorities P1..P5"),
                        Some("e.g. `critical: P1`".into()),
                    );
                    ok = false;
                }
            }
        }
        let (url, api_key_env) = (url?, api_key_env?);
        ok.then_some(NotifierKind::Opsgenie(OpsgenieSpec {
            url,
            api_key_env,
            fields,
            severity_map,
        }))
    }

    /// A required `_env` key: its variable name, warning when the variable
    /// is unset. `why` is the hint when the key is missing.
    fn env_key(
        &mut self,
        value: &Opt<String>,
        ctx: &Ctx<'_>,
        key: &str,
        why: &str,
    ) -> Option<String> {
        let path = join_key(ctx.path, key);
        let Some(spanned) = value else {
            self.report(
                ctx.at,
                &path,
                format!("missing required key `{key}`"),
                (!why.is_empty()).then(|| why.to_string()),
            );
            return None;
        };
        let var = self.env_name(value, &path)?;
        self.env_value(spanned, &var, &path, ctx.consequence);
        Some(var)
    }

    /// A name that goes into URLs or queries; `default` when absent (an
    /// empty default means the key is required and was checked already).
    fn identifier(
        &mut self,
        value: &Opt<String>,
        ctx: &Ctx<'_>,
        key: &str,
        default: &str,
        allowed: impl Fn(char) -> bool,
        what: &str,
    ) -> Option<String> {
        let Some(s) = value else {
            return Some(default.to_string());
        };
        let v = s.value.trim();
        if v.is_empty() || !v.chars().all(allowed) {
            self.report(
                pos(&s.referenced),
                &join_key(ctx.path, key),
                format!("`{}` is not valid here", s.value),
                Some(format!("expected {what}")),
            );
            return None;
        }
        Some(v.to_string())
    }

    /// A non-empty text, `default` when absent.
    fn text(
        &mut self,
        value: &Opt<String>,
        ctx: &Ctx<'_>,
        key: &str,
        default: &str,
    ) -> Option<String> {
        let Some(s) = value else {
            return Some(default.to_string());
        };
        let v = s.value.trim();
        if v.is_empty() {
            self.problem(
                pos(&s.referenced),
                &join_key(ctx.path, key),
                format!("`{key}` is empty"),
            );
            return None;
        }
        Some(v.to_string())
    }

    /// The entries of `fields` / `severity_map`, reporting empty and
    /// reserved keys (which are left out).
    fn map_entries(
        &mut self,
        map: &Option<Spanned<OrderedMap<Spanned<Value>>>>,
        ctx: &Ctx<'_>,
        key: &str,
        reserved: &[(&str, &str)],
    ) -> Vec<(String, Spanned<Value>)> {
        let Some(map) = map else { return Vec::new() };
        let mut out = Vec::new();
        for (k, v) in &map.value.0 {
            let path = join_key(&join_key(ctx.path, key), k);
            if k.trim().is_empty() {
                self.problem(pos(&v.referenced), &path, format!("empty key in `{key}`"));
                continue;
            }
            if let Some((_, why)) = reserved.iter().find(|(r, _)| r == k) {
                self.report(
                    pos(&v.referenced),
                    &path,
                    format!("`{k}` cannot be set in `{key}`"),
                    Some((*why).to_string()),
                );
                continue;
            }
            out.push((k.trim().to_string(), v.clone()));
        }
        out
    }
}

/// Where a ticket notifier is and what an unset variable means for it.
struct Ctx<'p> {
    at: Position,
    path: &'p str,
    consequence: &'p str,
}

/// A YAML scalar as the text ServiceNow stores.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of non-empty texts; without whitespace unless `spaces`.
fn labels_ok(v: &Value, spaces: bool) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter().all(|l| {
            l.as_str()
                .is_some_and(|s| !s.is_empty() && (spaces || !s.chars().any(char::is_whitespace)))
        })
    })
}
