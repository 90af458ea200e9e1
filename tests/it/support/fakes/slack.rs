//! Slack incoming-webhook fake (with a `response_url` receiver), and signed
//! interactive requests as Slack sends them to an app's Request URL.
//!
//! # Sources
//! - "Sending messages using incoming webhooks"
//!   <https://api.slack.com/messaging/webhooks>: `POST` JSON to
//!   `https://hooks.slack.com/services/T.../B.../...` with `text` and/or
//!   `blocks`; a good request is answered `200 ok`.
//! - "Improving error conditions for Incoming Webhooks" (changelog
//!   2016-05-17): plain-text error strings with statuses — 400
//!   `invalid_payload` ("cannot be understood as presented; verify your content
//!   body matches your content type and is structurally valid"), 403
//!   `action_prohibited`, 404 `channel_not_found`, 410 `channel_is_archived`,
//!   500 `rollup_error`. `no_text` (400) and `no_service` (404, unknown hook)
//!   are the strings Slack answers for a message without content and for an
//!   unknown or revoked webhook URL.
//! - "Verifying requests from Slack"
//!   <https://api.slack.com/authentication/verifying-requests-from-slack>:
//!   `X-Slack-Request-Timestamp`, `X-Slack-Signature: v0=hex(HMAC-SHA256(
//!   signing_secret, "v0:{timestamp}:{raw body}"))`, reject timestamps more
//!   than five minutes old; the published example vector is checked in the
//!   self-test.
//! - "Handling user interaction" / "block_actions payload"
//!   <https://api.slack.com/reference/interaction-payloads/block-actions>:
//!   interactions arrive as `application/x-www-form-urlencoded` with one
//!   `payload` field holding the JSON; `type: block_actions`, `user {id,
//!   username, name, team_id}`, `team`, `api_app_id`, `container`,
//!   `trigger_id`, `channel`, `message`, `response_url`, `actions[{type,
//!   action_id, block_id, value, action_ts, text}]`.
//!
//! # Choices where the docs are silent
//! - A message with `blocks` and no `text` is accepted (Slack recommends a
//!   `text` fallback but does not require it); `blocks` that are not an array
//!   of typed objects answer 400 `invalid_blocks`.
//! - The `response_url` receiver answers like a webhook (`200 ok`).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::server::{Handler, Outcome, Request, Response, Server, lock};
use super::{HookRequest, hmac_sha256_hex};

pub struct Config {
    /// Webhook paths that exist.
    pub webhook_paths: Vec<String>,
    /// `response_url` paths that exist.
    pub response_paths: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            webhook_paths: vec!["/services/T0001SNTNL/B0001SNTNL/XYZ0xyz0XYZ0xyz0XYZ0xyz0".into()],
            response_paths: vec![
                "/actions/T0001SNTNL/6587231100001/a1B2c3D4e5F6g7H8i9J0k1L2".into(),
            ],
        }
    }
}

/// A message Slack accepted.
#[derive(Debug, Clone)]
pub struct SlackMessage {
    pub path: String,
    /// The JSON message (from a JSON body or the `payload` form field).
    pub body: Value,
}

impl SlackMessage {
    pub fn text(&self) -> &str {
        self.body.get("text").and_then(Value::as_str).unwrap_or("")
    }
}

struct Inner {
    cfg: Config,
    messages: Mutex<Vec<SlackMessage>>,
}

/// A running Slack fake. Derefs to its [`Server`].
pub struct Slack {
    server: Server,
    inner: Arc<Inner>,
}

impl std::ops::Deref for Slack {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Slack {
    pub async fn start(config: Config) -> Slack {
        let inner = Arc::new(Inner {
            cfg: config,
            messages: Mutex::new(Vec::new()),
        });
        let server = Server::start(Arc::clone(&inner) as Arc<dyn Handler>).await;
        Slack { server, inner }
    }

    /// The first configured incoming-webhook URL.
    pub fn webhook_url(&self) -> String {
        format!(
            "{}{}",
            self.server.base_url(),
            self.inner
                .cfg
                .webhook_paths
                .first()
                .map(String::as_str)
                .unwrap_or("/services/none")
        )
    }

    /// The first configured `response_url`.
    pub fn response_url(&self) -> String {
        format!(
            "{}{}",
            self.server.base_url(),
            self.inner
                .cfg
                .response_paths
                .first()
                .map(String::as_str)
                .unwrap_or("/actions/none")
        )
    }

    /// Messages accepted on webhooks.
    pub fn messages(&self) -> Vec<SlackMessage> {
        lock(&self.inner.messages)
            .iter()
            .filter(|m| m.path.starts_with("/services/"))
            .cloned()
            .collect()
    }

    /// Messages accepted on `response_url`s.
    pub fn responses(&self) -> Vec<SlackMessage> {
        lock(&self.inner.messages)
            .iter()
            .filter(|m| m.path.starts_with("/actions/"))
            .cloned()
            .collect()
    }
}

/// The Slack user who clicked.
#[derive(Debug, Clone)]
pub struct SlackUser {
    pub id: String,
    pub username: String,
    pub name: String,
    pub team_id: String,
}

/// A `block_actions` payload for a button click on `message` (the message as
/// posted, e.g. [`SlackMessage::body`]).
pub fn block_actions_payload(
    user: &SlackUser,
    action_id: &str,
    value: &str,
    message: &Value,
    response_url: &str,
    action_ts: &str,
) -> Value {
    let mut message = message.clone();
    if let Some(m) = message.as_object_mut() {
        m.entry("type").or_insert(json!("message"));
        m.entry("ts").or_insert(json!("1768467600.000100"));
        m.entry("bot_id").or_insert(json!("B0001SNTNL"));
    }
    let ts = message.get("ts").cloned().unwrap_or(Value::Null);
    json!({
        "type": "block_actions",
        "user": {"id": user.id, "username": user.username, "name": user.name, "team_id": user.team_id},
        "api_app_id": "A0001SNTNL",
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": ts, "channel_id": "C0001INCDT", "is_ephemeral": false},
        "trigger_id": "6587231100001.1234567890.abcdef0123456789abcdef0123456789",
        "team": {"id": user.team_id, "domain": "acme"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": "C0001INCDT", "name": "incidents"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "action_id": action_id,
            "block_id": "sentinel-actions",
            "text": {"type": "plain_text", "text": action_id, "emoji": true},
            "value": value,
            "action_ts": action_ts,
        }],
    })
}

/// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing secret.
pub fn signature(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut base = format!("v0:{timestamp}:").into_bytes();
    base.extend_from_slice(body);
    format!("v0={}", hmac_sha256_hex(signing_secret.as_bytes(), &base))
}

/// What Slack POSTs to the app's Request URL for an interaction: the form
/// body `payload=<json>`, signed at `timestamp` (unix seconds).
pub fn interaction_request(signing_secret: &str, timestamp: i64, payload: &Value) -> HookRequest {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes();
    HookRequest {
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            (
                "User-Agent".into(),
                "Slackbot 1.0 (+https://api.slack.com/robots)".into(),
            ),
            ("X-Slack-Request-Timestamp".into(), timestamp.to_string()),
            (
                "X-Slack-Signature".into(),
                signature(signing_secret, timestamp, &body),
            ),
        ],
        body,
    }
}

fn fail(status: u16, error: &str, reason: &str) -> Outcome {
    Outcome::Rejected(Response::text(status, error), reason.to_string())
}

impl Handler for Inner {
    fn handle(&self, req: &Request) -> Outcome {
        let known = self.cfg.webhook_paths.contains(&req.path)
            || self.cfg.response_paths.contains(&req.path);
        if !known {
            return fail(404, "no_service", &format!("unknown webhook {}", req.path));
        }
        if req.method != "POST" {
            return fail(
                405,
                "invalid_method",
                &format!("[fake] method {}", req.method),
            );
        }
        let message = match req.media_type().as_deref() {
            Some("application/json") => req.json(),
            Some("application/x-www-form-urlencoded") => url::form_urlencoded::parse(&req.body)
                .find(|(k, _)| k == "payload")
                .and_then(|(_, v)| serde_json::from_str(&v).ok()),
            _ => None,
        };
        let Some(Value::Object(message)) = message else {
            return fail(
                400,
                "invalid_payload",
                "body is not a JSON message matching its Content-Type",
            );
        };
        if message.get("text").is_some_and(|t| !t.is_string()) {
            return fail(400, "invalid_payload", "text is not a string");
        }
        let has_text = message
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty());
        if let Some(blocks) = message.get("blocks") {
            let ok = blocks.as_array().is_some_and(|b| {
                b.iter()
                    .all(|x| x.get("type").is_some_and(Value::is_string))
            });
            if !ok {
                return fail(
                    400,
                    "invalid_blocks",
                    "blocks is not an array of typed blocks",
                );
            }
        }
        let has_blocks = message
            .get("blocks")
            .and_then(Value::as_array)
            .is_some_and(|b| !b.is_empty());
        let has_attachments = message
            .get("attachments")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !has_text && !has_blocks && !has_attachments {
            return fail(
                400,
                "no_text",
                "message without text, blocks or attachments",
            );
        }
        lock(&self.messages).push(SlackMessage {
            path: req.path.clone(),
            body: Value::Object(message),
        });
        Outcome::Served(Response::text(200, "ok"))
    }

    fn fault_response(&self, status: u16) -> Response {
        match status {
            429 => Response::text(429, "rate_limited"),
            _ => Response::text(status, "rollup_error"),
        }
    }
}
