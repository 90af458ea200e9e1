//! Notifications: incident events, their wire formats, and at-least-once
//! delivery from the durable outbox.
//!
//! - [`Event`] is what the outbox stores (as JSON in `payload`): the incident
//!   snapshot at the time of the change, so a retry hours later sends exactly
//!   what was true then, under the same event id.
//! - One file per format ([`webhook`], [`pagerduty`], [`slack`],
//!   [`alertmanager`]) turns an event into a [`PreparedRequest`]; [`send`]
//!   performs it and classifies the answer; [`worker`] drives the outbox.
//! - The ticket connectors ([`servicenow`], [`jira`], [`opsgenie`]) keep one
//!   external record per incident: each event is a short conversation (look
//!   up, create or update) driven by [`crate::notify::tickets`].
//!
//! Secrets (webhook signing secrets, PagerDuty routing keys, Slack URLs) come
//! from the environment into [`Secrets`], whose `Debug` prints names only, and
//! a [`PreparedRequest`] never prints its URL path/query or header values.

pub mod alertmanager;
mod escalation;
pub mod jira;
pub mod opsgenie;
pub mod pagerduty;
pub mod servicenow;
pub mod slack;
pub mod tickets;
pub mod webhook;
pub mod worker;

pub use escalation::{Escalation, EscalationCause};

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Notifier, NotifierKind, UrlSource, alertmanager_ends_after};
use crate::incident::{Change, ChangeKind, EventType, Incident, ResolvedBy, Source, State, Update};

/// Errors building or delivering notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier `{notifier}`: environment variable `{var}` is not set or empty")]
    MissingSecret { notifier: String, var: String },
    #[error("notifier `{notifier}`: the URL from `{var}` does not parse: {source}")]
    BadUrl {
        notifier: String,
        var: String,
        source: url::ParseError,
    },
    #[error(
        "notifier `{notifier}`: webhook secret from `{var}` is not valid base64 after `whsec_`"
    )]
    BadSecret { notifier: String, var: String },
    #[error("event payload is not valid JSON: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("outbox store: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "notifier `{notifier}` is a ticket connector: it holds a conversation per event, not one request"
    )]
    TicketConnector { notifier: String },
}

/// Links a receiver can follow to act on the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub ack: String,
    pub resolve: String,
}

/// The incident as an event shows it (the `incident` object of every payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    pub id: String,
    pub dedup_key: String,
    pub service: String,
    pub severity: String,
    pub title: String,
    pub reason: String,
    pub state: State,
    pub impact_started_at: Timestamp,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// The note given with the acknowledgement, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_note: Option<String>,
    pub restored_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// Where the first acknowledgement came from (`api`, `pagerduty`,
    /// `opsgenie`, `slack`, `servicenow`, `jira`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_source: Option<Source>,
    /// Where the resolution came from: one of the above, or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_source: Option<Source>,
    /// Availability SLI over the SLO window at the time of the event; `None`
    /// for a service without an SLO.
    pub availability_ratio: Option<f64>,
    pub error_budget_remaining_ratio: Option<f64>,
    pub links: Links,
    /// The external tickets known when the event is sent (not stored in
    /// the outbox: added at each attempt, so a ticket created after the
    /// change still shows up in later deliveries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<crate::notify::tickets::TicketRef>,
}

/// One outbox event; its JSON is the outbox `payload` and the `webhook` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `evt-<incident id>-<n>`, identical on every retry.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: Timestamp,
    /// The severity before an escalation (only on a severity escalation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_severity: Option<String>,
    /// Why the incident escalated (only on `incident.escalated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// The human update posted (only on `incident.updated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    pub incident: IncidentSnapshot,
}

/// What the engine knows beside the incident when it writes an event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContext {
    pub availability_ratio: Option<f64>,
    pub error_budget_remaining_ratio: Option<f64>,
    /// Base URL of sentinel's API as receivers reach it, e.g.
    /// `http://sentinel.example.com:9464` (no trailing slash needed).
    pub api_base: String,
}

impl Event {
    /// The event for a change, or `None` for changes that do not notify.
    pub fn from_change(
        change: &Change,
        occurred_at: Timestamp,
        ctx: &EventContext,
    ) -> Option<Event> {
        let (id, kind) = change.event.clone()?;
        let previous_severity = match &change.kind {
            ChangeKind::Escalated { from, .. } => Some(from.clone()),
            _ => None,
        };
        let update = match &change.kind {
            ChangeKind::UpdatePosted => change.incident.updates.last().cloned(),
            _ => None,
        };
        Some(Event {
            id,
            kind,
            occurred_at,
            previous_severity,
            escalation: Escalation::of(change),
            update,
            incident: snapshot(&change.incident, ctx),
        })
    }

    pub fn to_payload(&self) -> Result<String, NotifyError> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn from_payload(payload: &str) -> Result<Event, NotifyError> {
        Ok(serde_json::from_str(payload)?)
    }
}

/// The outbox rows for `change`: one per notifier of the service, all with
/// the same event id and payload, ready for `Store::save_incident` together
/// with the incident itself (one transaction). Empty for changes that do not
/// notify.
pub fn outbox_inserts(
    change: &Change,
    notifiers: &[String],
    ctx: &EventContext,
    now: Timestamp,
) -> Result<Vec<crate::store::OutboxInsert>, NotifyError> {
    let Some(event) = Event::from_change(change, now, ctx) else {
        return Ok(Vec::new());
    };
    let payload = event.to_payload()?;
    Ok(notifiers
        .iter()
        .map(|n| crate::store::OutboxInsert {
            event_id: event.id.clone(),
            notifier: n.clone(),
            incident_id: change.incident.id.clone(),
            payload: payload.clone(),
            created_at: now.as_second(),
        })
        .collect())
}

fn snapshot(inc: &Incident, ctx: &EventContext) -> IncidentSnapshot {
    let base = ctx.api_base.trim_end_matches('/');
    IncidentSnapshot {
        id: inc.id.clone(),
        dedup_key: inc.dedup_key.clone(),
        service: inc.service.clone(),
        severity: inc.severity.clone(),
        title: inc.title.clone(),
        reason: inc.reason.clone(),
        state: inc.state,
        impact_started_at: inc.impact_started_at,
        opened_at: inc.opened_at,
        acknowledged_at: inc.acknowledged_at,
        acknowledged_by: inc.acknowledged_by.clone(),
        ack_note: inc.ack_note.clone(),
        restored_at: inc.restored_at,
        resolved_at: inc.resolved_at,
        resolved_by: inc.resolved_by.as_ref().map(|b| match b {
            ResolvedBy::Auto => "auto".to_string(),
            ResolvedBy::User(u) => u.clone(),
        }),
        ack_source: inc.ack_source,
        resolve_source: inc.resolve_source,
        availability_ratio: ctx.availability_ratio,
        error_budget_remaining_ratio: ctx.error_budget_remaining_ratio,
        links: Links {
            ack: format!("{base}/api/v1/incidents/{}/ack", inc.id),
            resolve: format!("{base}/api/v1/incidents/{}/resolve", inc.id),
        },
        tickets: Vec::new(),
    }
}

/// Whether a notifier of `kind` is sent events of type `event`. Every
/// notifier gets every event but human updates (`incident.updated`), which
/// PagerDuty (Events API v2 has no notes) and Alertmanager (an alert has no
/// place for a message, and re-sending it would only push out its expiry)
/// do not get: no outbox row is written for them.
pub fn carries(kind: &NotifierKind, event: EventType) -> bool {
    match event {
        EventType::UpdatePosted => !matches!(
            kind,
            NotifierKind::PagerDuty { .. } | NotifierKind::Alertmanager { .. }
        ),
        EventType::Opened
        | EventType::Acknowledged
        | EventType::Resolved
        | EventType::Escalated => true,
    }
}

/// Secret values read from the environment, by variable name. `Debug` shows
/// variable names only.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, String>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl Secrets {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Secrets(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Read every variable the notifiers name. Unset or empty variables are
    /// left out; building a request for them fails with `MissingSecret`.
    pub fn from_env(notifiers: &[Notifier]) -> Self {
        Secrets(
            notifiers
                .iter()
                .flat_map(env_vars)
                .filter_map(|v| match std::env::var(&v) {
                    Ok(val) if !val.is_empty() => Some((v, val)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// The values `notifier` uses (by variable name), so a reload can tell
    /// whether its credentials or secret URL changed.
    pub fn of(&self, notifier: &Notifier) -> Vec<(String, Option<String>)> {
        env_vars(notifier)
            .into_iter()
            .map(|v| {
                let val = self.0.get(&v).cloned();
                (v, val)
            })
            .collect()
    }

    pub(crate) fn require(&self, notifier: &str, var: &str) -> Result<&str, NotifyError> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| NotifyError::MissingSecret {
                notifier: notifier.to_string(),
                var: var.to_string(),
            })
    }
}

/// The environment variables a notifier reads.
fn env_vars(n: &Notifier) -> Vec<String> {
    let mut vars = Vec::new();
    let url = match &n.kind {
        NotifierKind::Webhook { url, secret_env } => {
            vars.extend(secret_env.iter().cloned());
            url
        }
        NotifierKind::PagerDuty {
            url,
            routing_key_env,
        } => {
            vars.push(routing_key_env.clone());
            url
        }
        NotifierKind::Slack { url, .. } | NotifierKind::Alertmanager { url, .. } => url,
        NotifierKind::ServiceNow(_) | NotifierKind::Jira(_) | NotifierKind::Opsgenie(_) => {
            return crate::notify::tickets::env_vars(&n.kind);
        }
    };
    if let UrlSource::Env(v) = url {
        vars.push(v.clone());
    }
    vars
}

/// Whether the notifier's URL is a secret (it comes from `url_env`, as a
/// Slack incoming-webhook URL does): then logs show only its origin.
pub fn url_is_secret(n: &Notifier) -> bool {
    let url = match &n.kind {
        NotifierKind::Webhook { url, .. }
        | NotifierKind::PagerDuty { url, .. }
        | NotifierKind::Slack { url, .. }
        | NotifierKind::Alertmanager { url, .. } => url,
        // Instance URLs are not secret; credentials travel in headers.
        NotifierKind::ServiceNow(_) | NotifierKind::Jira(_) | NotifierKind::Opsgenie(_) => {
            return false;
        }
    };
    matches!(url, UrlSource::Env(_))
}

pub(crate) fn resolve_url(
    notifier: &str,
    src: &UrlSource,
    secrets: &Secrets,
) -> Result<url::Url, NotifyError> {
    match src {
        UrlSource::Inline(u) => Ok(u.clone()),
        UrlSource::Env(var) => {
            let raw = secrets.require(notifier, var)?;
            url::Url::parse(raw).map_err(|source| NotifyError::BadUrl {
                notifier: notifier.to_string(),
                var: var.clone(),
                source,
            })
        }
    }
}

/// An HTTP POST ready to go. `Debug` hides the URL's path and query (Slack
/// puts its secret there) and every header value.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.url.origin().ascii_serialization();
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("PreparedRequest")
            .field("url", &format_args!("{origin}/…"))
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PreparedRequest {
    pub(crate) fn json(
        url: url::Url,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Self, NotifyError> {
        Ok(PreparedRequest {
            url,
            headers: vec![("content-type".to_string(), "application/json".to_string())],
            body: serde_json::to_vec(body)?,
            timeout,
        })
    }
}

/// Build the request that delivers `event` to `notifier` at `now` (the
/// webhook signature's timestamp, so every attempt is signed afresh).
pub fn build_request(
    notifier: &Notifier,
    event: &Event,
    secrets: &Secrets,
    now: Timestamp,
) -> Result<PreparedRequest, NotifyError> {
    let name = notifier.name.as_str();
    match &notifier.kind {
        NotifierKind::Webhook { url, secret_env } => {
            let url = resolve_url(name, url, secrets)?;
            let secret = match secret_env {
                Some(var) => Some(webhook::SigningKey::parse(
                    name,
                    var,
                    secrets.require(name, var)?,
                )?),
                None => None,
            };
            webhook::build(url, event, secret.as_ref(), now, notifier.timeout)
        }
        NotifierKind::PagerDuty {
            url,
            routing_key_env,
        } => {
            let url = resolve_url(name, url, secrets)?;
            let key = secrets.require(name, routing_key_env)?;
            PreparedRequest::json(url, &pagerduty::body(event, key), notifier.timeout)
        }
        NotifierKind::Slack { url, buttons } => {
            let url = resolve_url(name, url, secrets)?;
            PreparedRequest::json(url, &slack::body(event, *buttons), notifier.timeout)
        }
        NotifierKind::Alertmanager { url, repost_every } => {
            let base = resolve_url(name, url, secrets)?;
            PreparedRequest::json(
                alertmanager::alerts_url(&base),
                &alertmanager::body(event, now, alertmanager_ends_after(*repost_every)),
                notifier.timeout,
            )
        }
        NotifierKind::ServiceNow(_) | NotifierKind::Jira(_) | NotifierKind::Opsgenie(_) => {
            Err(NotifyError::TicketConnector {
                notifier: name.to_string(),
            })
        }
    }
}

/// Why an attempt should be retried. Closed set: a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 5xx or 429.
    Status(u16),
    Timeout,
    Connect,
    /// Other transport errors (reset mid-way, bad response framing…).
    Network,
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// 2xx.
    Delivered { status: u16 },
    /// 5xx, 429 or a network error: try again later.
    Retry(RetryReason),
    /// 3xx: the receiver moved (say http→https). Redirects are never followed
    /// (a POST would turn into a GET, and a signed body must not go to a host
    /// nobody configured), so the event stays queued with backoff until the
    /// operator fixes the URL or `max_age` passes. `location` is the
    /// `Location` header as sent, if any.
    Redirect {
        status: u16,
        location: Option<String>,
    },
    /// Any other status (4xx other than 429, 1xx): the receiver refuses this
    /// event; retrying will not help.
    Reject { status: u16 },
}

/// Perform one attempt. Never fails: every outcome is a [`DeliveryResult`].
/// The client must not follow redirects (the daemon's does not).
pub async fn send(client: &reqwest::Client, req: &PreparedRequest) -> DeliveryResult {
    let mut rb = client
        .post(req.url.clone())
        .timeout(req.timeout)
        .body(req.body.clone());
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    match rb.send().await {
        Ok(resp) => match classify(resp.status().as_u16()) {
            DeliveryResult::Redirect { status, .. } => DeliveryResult::Redirect {
                status,
                location: resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            },
            other => other,
        },
        Err(e) if e.is_timeout() => DeliveryResult::Retry(RetryReason::Timeout),
        Err(e) if e.is_connect() => DeliveryResult::Retry(RetryReason::Connect),
        Err(e) => match e.status() {
            Some(s) => classify(s.as_u16()),
            None => DeliveryResult::Retry(RetryReason::Network),
        },
    }
}

/// The status-code policy: 2xx delivered; 5xx and 429 retried; 3xx kept
/// and retried (loudly, see [`DeliveryResult::Redirect`]); the rest refused.
pub fn classify(status: u16) -> DeliveryResult {
    match status {
        200..=299 => DeliveryResult::Delivered { status },
        429 | 500..=599 => DeliveryResult::Retry(RetryReason::Status(status)),
        300..=399 => DeliveryResult::Redirect {
            status,
            location: None,
        },
        _ => DeliveryResult::Reject { status },
    }
}

/// A redirect target as it may be logged: resolved against the request URL;
/// only its origin when the notifier's URL is a secret (the `Location` of a
/// moved Slack webhook carries the same secret path).
pub fn shown_location(request: &url::Url, location: &str, secret: bool) -> String {
    match request.join(location) {
        Ok(u) if secret => format!("{}/…", u.origin().ascii_serialization()),
        Ok(u) => u.to_string(),
        Err(_) if secret => "(hidden: the notifier URL is secret)".to_string(),
        Err(_) => location.to_string(),
    }
}

/// First retry delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay: a receiver that comes back is served within this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Delay before retry number `attempt` (1 = after the first failure):
/// `min(1s × 2^(attempt−1), 5m)`, jittered uniformly into `[d/2, d]` so a
/// fleet of events that failed together does not retry in lockstep.
pub fn backoff<R: rand::Rng + ?Sized>(attempt: u32, rng: &mut R) -> Duration {
    use rand::RngExt;
    let exp = attempt.saturating_sub(1).min(16);
    let d = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_stays_within_half_to_full_step_and_caps_at_five_minutes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let cases: [(u32, u64); 12] = [
            (0, 1_000),
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (4, 8_000),
            (5, 16_000),
            (8, 128_000),
            (9, 256_000),
            (10, 300_000),
            (11, 300_000),
            (40, 300_000),
            (u32::MAX, 300_000),
        ];
        for (attempt, full_ms) in cases {
            for _ in 0..200 {
                let d = backoff(attempt, &mut rng).as_millis() as u64;
                assert!(
                    d >= full_ms / 2 && d <= full_ms,
                    "attempt {attempt}: {d}ms not in [{}, {full_ms}]",
                    full_ms / 2
                );
            }
        }
    }

    #[test]
    fn status_classes() {
        fn check(status: u16, expected: DeliveryResult) {
            assert_eq!(classify(status), expected, "status {status}");
        }
        check(200, DeliveryResult::Delivered { status: 200 });
        check(202, DeliveryResult::Delivered { status: 202 });
        check(204, DeliveryResult::Delivered { status: 204 });
        check(429, DeliveryResult::Retry(RetryReason::Status(429)));
        check(500, DeliveryResult::Retry(RetryReason::Status(500)));
        check(503, DeliveryResult::Retry(RetryReason::Status(503)));
        check(400, DeliveryResult::Reject { status: 400 });
        check(401, DeliveryResult::Reject { status: 401 });
        check(404, DeliveryResult::Reject { status: 404 });
        check(
            301,
            DeliveryResult::Redirect {
                status: 301,
                location: None,
            },
        );
        check(
            308,
            DeliveryResult::Redirect {
                status: 308,
                location: None,
            },
        );
        check(101, DeliveryResult::Reject { status: 101 });
    }

    #[test]
    fn a_redirect_location_is_shown_resolved_and_only_by_origin_for_secret_urls() {
        fn check(location: &str, secret: bool, expected: &str) {
            let req =
                url::Url::parse("http://hooks.example.com/services/T0/B0/SECRETPART").unwrap();
            assert_eq!(
                shown_location(&req, location, secret),
                expected,
                "{location} {secret}"
            );
        }
        check(
            "https://hooks.example.com/x",
            false,
            "https://hooks.example.com/x",
        );
        check(
            "/v2/hooks?a=1",
            false,
            "http://hooks.example.com/v2/hooks?a=1",
        );
        check(
            "https://hooks.example.com/services/T0/B0/SECRETPART",
            true,
            "https://hooks.example.com/…",
        );
        check(
            "/services/T0/B0/SECRETPART",
            true,
            "http://hooks.example.com/…",
        );
        check("http://[bad", true, "(hidden: the notifier URL is secret)");
        check("http://[bad", false, "http://[bad");
    }

    #[test]
    fn secrets_and_requests_never_print_secret_values() {
        let s = Secrets::from_pairs([("PD_KEY", "R0UTINGKEY"), ("SLACK", "https://hooks/T/B/XYZ")]);
        let shown = format!("{s:?}");
        assert_eq!(shown, r#"{"PD_KEY": "<redacted>", "SLACK": "<redacted>"}"#);
        let req = PreparedRequest {
            url: url::Url::parse("https://hooks.slack.com/services/T0/B0/SECRETPART").unwrap(),
            headers: vec![("webhook-signature".into(), "v1,abc".into())],
            body: b"{}".to_vec(),
            timeout: Duration::from_secs(10),
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("SECRETPART"), "{shown}");
        assert!(!shown.contains("v1,abc"), "{shown}");
        assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
    }
}
