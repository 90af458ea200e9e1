//! `POST /api/v1/hooks/{provider}`: a provider (PagerDuty, Opsgenie,
//! Slack, ServiceNow, Jira) tells sentinel that a person acknowledged or
//! resolved an incident there.
//!
//! The order is what keeps a refused request from changing anything:
//! the provider must be configured (`inbound.<provider>`, else 404), its
//! signature or credential must check out against the secret in the
//! environment (else 401), and only then is the body read as the
//! provider's payload (400 when it is not). The action goes through the
//! engine's incident command, the write path of the API's acknowledge and
//! resolve, with `by` = the person the provider names and `source` = the
//! provider. Whatever cannot be acted on — an event type sentinel ignores,
//! an unknown or resolved incident, a repeated acknowledgement, a PagerDuty
//! delivery already acted on — is answered 200 with `"result": "ignored"`,
//! so the provider does not retry it.
//!
//! PagerDuty deliveries are remembered by `event.id` in the store
//! (`hook_deliveries`) once acted on: a retry, also after a restart, is
//! ignored; copies arriving together are handled one after the other. The id is recorded after the engine answered, so a crash in
//! between makes the retry act again, which the engine absorbs (a second
//! acknowledgement is only recorded, a second resolve is refused).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};
use crate::config::HookProvider;
use crate::engine::IncidentCommand;
use crate::inbound::{self, Action, ActionKind, HookResult, Intent, Ref, SlackReply, verify};
use crate::incident::IncidentError;

/// How a hook request ended: its answer and its `result` label.
struct Outcome {
    result: HookResult,
    response: Response,
}

impl Outcome {
    fn rejected(error: ApiError) -> Outcome {
        Outcome {
            result: HookResult::Rejected,
            response: error.into_response(),
        }
    }

    fn ignored(reason: impl Into<String>) -> Outcome {
        let reason = reason.into();
        Outcome {
            result: HookResult::Ignored,
            response: Json(json!({ "result": "ignored", "reason": reason })).into_response(),
        }
    }
}

pub async fn hook(
    State(app): State<Arc<AppState>>,
    provider: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = match provider {
        Ok(Path(name)) => name,
        Err(r) => return ApiError::new(StatusCode::BAD_REQUEST, r.body_text()).into_response(),
    };
    let Some(provider) = HookProvider::parse(&name) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no hook for `{name}`: the hooks are pagerduty, opsgenie, slack, servicenow and jira"
            ),
        )
        .into_response();
    };
    let outcome = handle(&app, provider, &headers, body).await;
    app.inbound.record(provider, outcome.result);
    outcome.response
}

async fn handle(
    app: &AppState,
    provider: HookProvider,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Outcome {
    let cfg = app.config();
    let Some(var) = cfg.inbound.env_var(provider) else {
        return Outcome::rejected(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the {0} hook is not configured: set inbound.{0}.{1}",
                provider.as_str(),
                provider.env_key()
            ),
        ));
    };
    let body = match body {
        Ok(b) => b,
        Err(r) => return Outcome::rejected(ApiError::new(r.status(), r.body_text())),
    };
    if let Err(e) = authenticate(app, provider, var, headers, &body) {
        let due = match app.hook_refusals.lock() {
            Ok(mut t) => t.due(),
            Err(poisoned) => poisoned.into_inner().due(),
        };
        if let Some(skipped) = due {
            tracing::warn!(
                provider = provider.as_str(),
                error = %e.message,
                not_logged_since = skipped,
                "inbound hook refused (logged at most once a minute)"
            );
        }
        return Outcome::rejected(e);
    }
    let action = match inbound::parse::intent(provider, &body) {
        Ok(Intent::Act(action)) => action,
        Ok(Intent::Ignore(reason)) => return Outcome::ignored(reason),
        Err(e) => {
            return Outcome::rejected(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("not a {} hook payload: {e}", provider.as_str()),
            ));
        }
    };
    // Only deduplicated deliveries wait for each other (PagerDuty's are
    // few); the lock is released when this function returns.
    let _one_at_a_time = match action.delivery_id {
        Some(_) => Some(app.hook_deliveries.lock().await),
        None => None,
    };
    if let Some(id) = &action.delivery_id {
        match app.store.hook_delivery_seen(provider.as_str(), id).await {
            Ok(true) => return Outcome::ignored(format!("delivery `{id}` was already acted on")),
            Ok(false) => {}
            Err(e) => return Outcome::rejected(store_unavailable(&e)),
        }
    }
    let outcome = apply(app, provider, &action).await;
    if outcome.result == HookResult::Applied
        && let Some(reply) = &action.slack
    {
        slack_followup(app, reply, action.kind);
    }
    if let Some(id) = &action.delivery_id
        && outcome.result != HookResult::Rejected
    {
        let now = app.clock.now().as_second();
        let forget_before = now - inbound::DELIVERY_ID_RETENTION_SECS;
        if let Err(e) = app
            .store
            .hook_delivery_record(provider.as_str(), id, now, forget_before)
            .await
        {
            // Acted on: a retry acts again, which the engine absorbs.
            tracing::warn!(provider = provider.as_str(), delivery = %id, error = %e, "could not remember an inbound delivery");
        }
    }
    outcome
}

/// Rewrites the Slack message the button was pressed in (its
/// `response_url`), in the background: Slack wants the press answered
/// within 3 seconds, and the rewrite is a courtesy (the next incident
/// message says the same).
fn slack_followup(app: &AppState, reply: &SlackReply, kind: ActionKind) {
    let Ok(url) = url::Url::parse(&reply.response_url) else {
        tracing::warn!("Slack sent a response_url that is not a URL; the message is not updated");
        return;
    };
    if !matches!(url.scheme(), "https" | "http") {
        tracing::warn!(
            scheme = url.scheme(),
            "Slack response_url is not http(s); the message is not updated"
        );
        return;
    }
    let body = inbound::slack::followup(reply, kind);
    let client = app.http.clone();
    tokio::spawn(async move {
        let origin = url.origin().ascii_serialization();
        match client.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(status = r.status().as_u16(), origin = %origin, "Slack refused the message update")
            }
            Err(e) => {
                tracing::warn!(origin = %origin, error = %e, "updating the Slack message failed")
            }
        }
    });
}

fn store_unavailable(e: &crate::store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the state store is unavailable: {e}"),
    )
}

/// Checks the request against `provider`'s scheme and the secret in `var`.
fn authenticate(
    app: &AppState,
    provider: HookProvider,
    var: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let unauthorized = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let Some(secret) = std::env::var(var).ok().filter(|s| !s.is_empty()) else {
        // The caller is not told which variable: that is for the operator.
        tracing::warn!(
            provider = provider.as_str(),
            variable = var,
            "inbound hook has no secret: the variable is not set; every request is refused"
        );
        return Err(unauthorized(format!(
            "the {} hook has no secret set in sentinel",
            provider.as_str()
        )));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checked = match provider {
        HookProvider::PagerDuty => {
            verify::pagerduty(&secret, header("x-pagerduty-signature"), body)
        }
        HookProvider::Slack => verify::slack(
            &secret,
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            app.clock.now().as_second(),
        ),
        HookProvider::Jira => verify::hub(&secret, header("x-hub-signature"), body),
        HookProvider::Opsgenie | HookProvider::ServiceNow => {
            verify::token(&secret, header("authorization"))
        }
    };
    checked.map_err(|e| unauthorized(e.to_string()))
}

/// The incident ids `action` may mean, in order, without repeats.
fn candidates(app: &AppState, action: &Action) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in &action.refs {
        let id = match r {
            Ref::Id(id) => Some(id.clone()),
            Ref::Ticket {
                provider,
                reference,
            } => app.tickets.find(provider, reference),
        };
        if let Some(id) = id
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// Runs `action` on the first candidate incident the engine knows.
async fn apply(app: &AppState, provider: HookProvider, action: &Action) -> Outcome {
    let source = inbound::source(provider);
    let ids = candidates(app, action);
    for id in &ids {
        let cmd = match action.kind {
            ActionKind::Acknowledge => IncidentCommand::Ack {
                id: id.clone(),
                by: action.by.clone(),
                note: None,
                source,
            },
            ActionKind::Resolve => IncidentCommand::Resolve {
                id: id.clone(),
                by: action.by.clone(),
                source,
            },
        };
        let verb = match action.kind {
            ActionKind::Acknowledge => "acknowledged",
            ActionKind::Resolve => "resolved",
        };
        match app.engine.command(cmd).await {
            None => {
                return Outcome::rejected(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                ));
            }
            Some(Ok((incident, true))) => {
                tracing::info!(provider = provider.as_str(), incident = %incident.id, by = %action.by, "incident {verb} from an inbound hook");
                return Outcome {
                    result: HookResult::Applied,
                    response: Json(json!({
                        "result": "applied",
                        "action": verb,
                        "incident": incident.id,
                    }))
                    .into_response(),
                };
            }
            Some(Ok((incident, false))) => {
                return Outcome::ignored(format!(
                    "incident `{}` was already acknowledged; the first acknowledgement stays (this one is listed in `acknowledgements` while there is room)",
                    incident.id
                ));
            }
            Some(Err(IncidentError::NotFound { .. })) => continue,
            Some(Err(e)) => return Outcome::ignored(e.to_string()),
        }
    }
    Outcome::ignored(if ids.is_empty() {
        "the event names no sentinel incident".to_string()
    } else {
        format!("no sentinel incident `{}`", ids.join("`, `"))
    })
}
