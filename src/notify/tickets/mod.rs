//! Ticket connectors: one external record per incident in ServiceNow, Jira
//! or Opsgenie, created when the incident opens and updated by its later
//! events.
//!
//! Delivering an event to a ticket notifier is a short conversation
//! ([`deliver`]), not one request:
//! - `incident.opened` (and any later event whose incident has no ticket
//!   yet): use the stored ticket; else look the record up at the provider by
//!   the incident's lookup value (ServiceNow `correlation_id` = incident id,
//!   Jira label `sentinel-<incident id>`, Opsgenie `alias` = dedup key); else
//!   create it. The ticket is stored ([`Desk::record`]) as soon as the
//!   provider names it, before the worker marks the event delivered.
//! - `incident.acknowledged` / `incident.escalated` / `incident.updated` /
//!   `incident.resolved`: update that record (work note or comment, urgency
//!   or priority, resolution with close notes). A resolve finds no ticket
//!   only when none was ever created; then there is nothing to resolve, and
//!   a human update of a resolved incident without a ticket creates none.
//!
//! **Idempotent creates.** Before a create is sent, a row without a key
//! records that one is in flight (`create_sent_at`). When its answer is
//! lost (dropped connection, timeout, `kill -9`), the next attempt looks the
//! record up before creating another. Jira's search is eventually
//! consistent, so while a create in doubt is younger than
//! [`Provider::search_lag`] a miss means "not indexed yet": the event is
//! retried instead of creating a second issue.
//!
//! **Outcomes.** 2xx moves on; 429, 5xx and network errors are retried
//! with the worker's backoff; a 3xx is kept and retried like a webhook's;
//! any other 4xx (a 404 of a lookup is "not found", not an error) drops
//! the event, and the provider's own error text is logged (never a
//! credential).
//!
//! [`Book`] holds every known ticket in memory (loaded from the store at
//! start): the API shows it in `/api/v1/incidents` (`tickets`), and the
//! worker adds it to every event it sends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::tickets::{JiraSpec, OpsgenieSpec, ServiceNowAuth, ServiceNowSpec};
use crate::config::{Notifier, NotifierKind};
use crate::incident::EventType;
use crate::notify::{DeliveryResult, Event, NotifyError, RetryReason, Secrets};
use crate::store::{Store, TicketRow};

mod book;
pub mod text;

pub use book::{Book, Desk, TicketRef};

/// The environment variables a ticket notifier reads.
pub fn env_vars(kind: &NotifierKind) -> Vec<String> {
    match kind {
        NotifierKind::ServiceNow(s) => match &s.auth {
            ServiceNowAuth::Basic {
                username_env,
                password_env,
            } => vec![username_env.clone(), password_env.clone()],
            ServiceNowAuth::Bearer { token_env } => vec![token_env.clone()],
        },
        NotifierKind::Jira(j) => vec![j.user_env.clone(), j.token_env.clone()],
        NotifierKind::Opsgenie(o) => vec![o.api_key_env.clone()],
        _ => Vec::new(),
    }
}

/// Why a step of the conversation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429, 5xx or a network error: try again later. `maybe_committed`:
    /// the request reached the provider and may have taken effect.
    Retry {
        reason: RetryReason,
        maybe_committed: bool,
    },
    /// 3xx, never followed.
    Redirect {
        status: u16,
        location: Option<String>,
    },
    /// The provider refused (4xx); `detail` is its error text.
    Reject { status: u16, detail: String },
}

/// What a lookup or a create learned about the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub ext_id: Option<String>,
    pub url: Option<String>,
}

/// One provider answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    location: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Ok(self)` for 2xx; otherwise the failure it is.
    pub fn ok(self) -> Result<Answer, Failure> {
        match self.status {
            200..=299 => Ok(self),
            429 | 500..=599 => Err(Failure::Retry {
                reason: RetryReason::Status(self.status),
                maybe_committed: self.status != 429,
            }),
            300..=399 => Err(Failure::Redirect {
                status: self.status,
                location: self.location,
            }),
            status => Err(Failure::Reject {
                status,
                detail: error_text(&self.body),
            }),
        }
    }
}

/// The provider's error message from an error body: ServiceNow
/// `error.message`/`error.detail`, Jira `errorMessages`/`errors`, Opsgenie
/// `message`/`errors`; else the start of the body.
pub fn error_text(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut parts: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && !parts.iter().any(|p| p == s) {
            parts.push(s.to_string());
        }
    };
    if let Some(e) = v.get("error") {
        for k in ["message", "detail"] {
            if let Some(s) = e.get(k).and_then(Value::as_str) {
                push(s);
            }
        }
    }
    if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
        for m in list.iter().filter_map(Value::as_str) {
            push(m);
        }
    }
    if let Some(s) = v.get("message").and_then(Value::as_str) {
        push(s);
    }
    if let Some(errs) = v.get("errors").and_then(Value::as_object) {
        for (k, m) in errs {
            let m = m.as_str().map_or_else(|| m.to_string(), str::to_string);
            push(&format!("{k}: {m}"));
        }
    }
    if parts.is_empty() {
        let text = String::from_utf8_lossy(body);
        return text.trim().chars().take(300).collect();
    }
    parts.join("; ")
}

/// HTTP to one provider: its credentials, the per-request timeout, and the
/// notifier's name for logs. `Debug` hides the credential.
pub struct Conn<'a> {
    client: &'a reqwest::Client,
    auth: String,
    timeout: Duration,
}

impl Conn<'_> {
    /// Sends one request; every HTTP status is an [`Answer`], transport
    /// errors are [`Failure::Retry`].
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        let mut rb = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::AUTHORIZATION, &self.auth);
        if let Some(b) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).unwrap_or_default());
        }
        match rb.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                match resp.bytes().await {
                    Ok(b) => Ok(Answer {
                        status,
                        body: b.to_vec(),
                        location,
                    }),
                    Err(e) => Err(transport(&e)),
                }
            }
            Err(e) => Err(transport(&e)),
        }
    }
}

fn transport(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        Failure::Retry {
            reason: RetryReason::Connect,
            maybe_committed: false,
        }
    } else if e.is_timeout() {
        Failure::Retry {
            reason: RetryReason::Timeout,
            maybe_committed: true,
        }
    } else {
        Failure::Retry {
            reason: RetryReason::Network,
            maybe_committed: true,
        }
    }
}

/// `base` with `segments` appended to its path (each percent-encoded), so a
/// base with a path (`https://api.atlassian.com/jsm/ops/integration`) keeps it.
pub fn join(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut u = base.clone();
    if let Ok(mut p) = u.path_segments_mut() {
        p.pop_if_empty();
        p.extend(segments);
    }
    u
}

/// The provider behind a ticket notifier.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'a> {
    ServiceNow(&'a ServiceNowSpec),
    Jira(&'a JiraSpec),
    Opsgenie(&'a OpsgenieSpec),
}

/// How long after a create whose answer was lost a Jira search miss still
/// means "not indexed yet" rather than "not created". Jira's search is
/// eventually consistent (usually seconds).
pub const JIRA_SEARCH_LAG: Duration = Duration::from_secs(60);

impl<'a> Provider<'a> {
    pub fn of(kind: &'a NotifierKind) -> Option<Provider<'a>> {
        match kind {
            NotifierKind::ServiceNow(s) => Some(Provider::ServiceNow(s)),
            NotifierKind::Jira(j) => Some(Provider::Jira(j)),
            NotifierKind::Opsgenie(o) => Some(Provider::Opsgenie(o)),
            _ => None,
        }
    }

    /// The `provider` column and log field.
    pub fn name(self) -> &'static str {
        match self {
            Provider::ServiceNow(_) => "servicenow",
            Provider::Jira(_) => "jira",
            Provider::Opsgenie(_) => "opsgenie",
        }
    }

    /// What finds the incident's record at the provider.
    pub fn lookup(self, event: &Event) -> String {
        match self {
            Provider::ServiceNow(_) => event.incident.id.clone(),
            Provider::Jira(_) => crate::notify::jira::label(&event.incident.id),
            Provider::Opsgenie(_) => event.incident.dedup_key.clone(),
        }
    }

    /// See [`JIRA_SEARCH_LAG`]; zero for providers whose lookups see every
    /// committed record (ServiceNow's Table API; Opsgenie, which also
    /// de-duplicates creates by alias).
    pub fn search_lag(self) -> Duration {
        match self {
            Provider::Jira(_) => JIRA_SEARCH_LAG,
            _ => Duration::ZERO,
        }
    }

    fn auth(self, notifier: &str, secrets: &Secrets) -> Result<String, NotifyError> {
        let basic = |u: &str, p: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{p}")));
        Ok(match self {
            Provider::ServiceNow(s) => match &s.auth {
                ServiceNowAuth::Basic {
                    username_env,
                    password_env,
                } => basic(
                    secrets.require(notifier, username_env)?,
                    secrets.require(notifier, password_env)?,
                ),
                ServiceNowAuth::Bearer { token_env } => {
                    format!("Bearer {}", secrets.require(notifier, token_env)?)
                }
            },
            Provider::Jira(j) => basic(
                secrets.require(notifier, &j.user_env)?,
                secrets.require(notifier, &j.token_env)?,
            ),
            Provider::Opsgenie(o) => {
                format!("GenieKey {}", secrets.require(notifier, &o.api_key_env)?)
            }
        })
    }

    async fn find(self, c: &Conn<'_>, event: &Event) -> Result<Option<Found>, Failure> {
        match self {
            Provider::ServiceNow(s) => crate::notify::servicenow::find(c, s, event).await,
            Provider::Jira(j) => crate::notify::jira::find(c, j, event).await,
            Provider::Opsgenie(o) => crate::notify::opsgenie::find(c, o, event).await,
        }
    }

    async fn create(self, c: &Conn<'_>, event: &Event) -> Result<Found, Failure> {
        match self {
            Provider::ServiceNow(s) => crate::notify::servicenow::create(c, s, event).await,
            Provider::Jira(j) => crate::notify::jira::create(c, j, event).await,
            Provider::Opsgenie(o) => crate::notify::opsgenie::create(c, o, event).await,
        }
    }

    async fn update(self, c: &Conn<'_>, t: &TicketRow, event: &Event) -> Result<(), Failure> {
        match self {
            Provider::ServiceNow(s) => crate::notify::servicenow::update(c, s, t, event).await,
            Provider::Jira(j) => crate::notify::jira::update(c, j, t, event).await,
            Provider::Opsgenie(o) => crate::notify::opsgenie::update(c, o, t, event).await,
        }
    }
}

/// Whether a lookup miss may be trusted enough to create: no create is in
/// doubt, or the one in doubt was sent at least `lag` before `now`.
pub fn may_create(now: Timestamp, create_sent_at: Option<i64>, lag: Duration) -> bool {
    let lag = i64::try_from(lag.as_secs()).unwrap_or(i64::MAX);
    create_sent_at.is_none_or(|sent| now.as_second().saturating_sub(sent) >= lag)
}

/// Deliver `event` to the ticket notifier `notifier`: look up, create or
/// update its record (see the module docs). Never fails: every outcome is
/// a [`DeliveryResult`] the worker knows how to schedule.
pub async fn deliver(
    desk: &Desk,
    client: &reqwest::Client,
    notifier: &Notifier,
    event: &Event,
    secrets: &Secrets,
) -> DeliveryResult {
    let Some(provider) = Provider::of(&notifier.kind) else {
        return DeliveryResult::Reject { status: 0 };
    };
    let auth = match provider.auth(&notifier.name, secrets) {
        Ok(a) => a,
        Err(e) => {
            // A missing secret may be fixed by a reload: retry until max_age.
            tracing::error!(notifier = %notifier.name, event = %event.id, error = %e, "cannot reach the ticket provider");
            return DeliveryResult::Retry(RetryReason::Network);
        }
    };
    let conn = Conn {
        client,
        auth,
        timeout: notifier.timeout,
    };
    let started = tokio::time::Instant::now();
    let result = converse(desk, provider, &conn, notifier, event).await;
    match result {
        Ok(step) => {
            tracing::debug!(
                notifier = %notifier.name,
                provider = provider.name(),
                event = %event.id,
                step,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "ticket delivered"
            );
            DeliveryResult::Delivered { status: 200 }
        }
        Err(Failure::Retry { reason, .. }) => DeliveryResult::Retry(reason),
        Err(Failure::Redirect { status, location }) => {
            tracing::error!(
                notifier = %notifier.name,
                event = %event.id,
                status,
                location = location.as_deref().unwrap_or("(none)"),
                "ticket provider answered with a redirect, which is not followed; point the notifier's url at the new location and reload"
            );
            DeliveryResult::Redirect { status, location }
        }
        Err(Failure::Reject { status, detail }) => {
            tracing::warn!(
                notifier = %notifier.name,
                provider = provider.name(),
                event = %event.id,
                status,
                detail = %detail,
                "ticket provider refused the request"
            );
            DeliveryResult::Reject { status }
        }
    }
}

/// The conversation behind [`deliver`]; returns what it did.
async fn converse(
    desk: &Desk,
    provider: Provider<'_>,
    conn: &Conn<'_>,
    notifier: &Notifier,
    event: &Event,
) -> Result<&'static str, Failure> {
    let incident = &event.incident.id;
    let stored = desk
        .book
        .get(incident, &notifier.name)
        .filter(|t| t.key.is_some());
    if let Some(t) = stored {
        if event.kind == EventType::Opened {
            return Ok("already created");
        }
        provider.update(conn, &t, event).await?;
        return Ok("updated");
    }
    // No key stored: the record may still exist (created by an attempt
    // whose answer was lost). Look before creating.
    let pending = desk.book.get(incident, &notifier.name);
    let found = provider.find(conn, event).await?;
    let ticket = match found {
        Some(f) => record_found(desk, provider, notifier, event, f).await,
        None => {
            let sent = pending.as_ref().and_then(|t| t.create_sent_at);
            if !may_create(desk.now(), sent, provider.search_lag()) {
                tracing::info!(
                    notifier = %notifier.name,
                    event = %event.id,
                    "a create sent earlier is not searchable yet; looking again before creating another"
                );
                return Err(Failure::Retry {
                    reason: RetryReason::Network,
                    maybe_committed: false,
                });
            }
            if event.kind == EventType::Resolved {
                tracing::info!(notifier = %notifier.name, event = %event.id, "no ticket was created for this incident; nothing to resolve");
                return Ok("nothing to resolve");
            }
            if event.kind == EventType::UpdatePosted
                && event.incident.state == crate::incident::State::Resolved
            {
                // A record is not opened for a note on a resolved incident.
                tracing::info!(notifier = %notifier.name, event = %event.id, "no ticket was created for this resolved incident; the update is not noted");
                return Ok("nothing to note");
            }
            create(desk, provider, conn, notifier, event).await?
        }
    };
    if event.kind == EventType::Opened {
        return Ok("created");
    }
    provider.update(conn, &ticket, event).await?;
    Ok("created and updated")
}

/// Sends the create with its intent recorded first; stores the key.
async fn create(
    desk: &Desk,
    provider: Provider<'_>,
    conn: &Conn<'_>,
    notifier: &Notifier,
    event: &Event,
) -> Result<TicketRow, Failure> {
    let now = desk.now().as_second();
    let intent = TicketRow {
        incident_id: event.incident.id.clone(),
        notifier: notifier.name.clone(),
        provider: provider.name().to_string(),
        lookup: provider.lookup(event),
        key: None,
        ext_id: None,
        url: None,
        create_sent_at: Some(now),
        updated_at: now,
    };
    desk.record(intent.clone()).await;
    match provider.create(conn, event).await {
        Ok(found) => Ok(record_found(desk, provider, notifier, event, found).await),
        Err(f) => {
            let maybe = matches!(
                f,
                Failure::Retry {
                    maybe_committed: true,
                    ..
                }
            );
            if !maybe {
                // The create certainly did not happen: no need to wait for
                // a search to see it.
                desk.record(TicketRow {
                    create_sent_at: None,
                    ..intent
                })
                .await;
            }
            Err(f)
        }
    }
}

/// Stores the ticket the provider named (no create in doubt any more).
async fn record_found(
    desk: &Desk,
    provider: Provider<'_>,
    notifier: &Notifier,
    event: &Event,
    f: Found,
) -> TicketRow {
    let row = TicketRow {
        incident_id: event.incident.id.clone(),
        notifier: notifier.name.clone(),
        provider: provider.name().to_string(),
        lookup: provider.lookup(event),
        key: Some(f.key),
        ext_id: f.ext_id,
        url: f.url,
        create_sent_at: None,
        updated_at: desk.now().as_second(),
    };
    desk.record(row.clone()).await;
    tracing::info!(
        notifier = %notifier.name,
        provider = provider.name(),
        incident = %event.incident.id,
        key = row.key.as_deref().unwrap_or(""),
        "ticket stored"
    );
    row
}

#[cfg(test)]
mod tests;
