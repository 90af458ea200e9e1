//! The JSON API: services, incidents, acknowledge, resolve, human updates.
//!
//! Reads come from the engine's published snapshot; writes go to the engine
//! as commands and are answered once the change is persisted.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::{ApiError, auth};
use crate::config::Check;
use crate::engine::{IncidentCommand, ServiceView};
use crate::incident::update::check_message;
use crate::incident::{Incident, IncidentError, Source, UpdateStatus};
use crate::probe::Reason;

pub async fn services(State(app): State<Arc<AppState>>) -> Json<Value> {
    let cfg = app.config();
    let snap = app.engine.snapshot();
    let list: Vec<Value> = cfg
        .services
        .iter()
        .map(|svc| {
            let view = snap.services.iter().find(|v| v.name == svc.name);
            let checks: Vec<Value> = svc
                .checks
                .iter()
                .map(|c| check_json(&app, &svc.name, c))
                .collect();
            let any_down = checks.iter().any(|c| c["up"] == json!(false));
            let all_unknown = checks.iter().all(|c| c["up"].is_null());
            let open = view.and_then(|v| v.open_incident.clone());
            let status = match (
                open.is_some(),
                any_down,
                all_unknown,
                view.is_some_and(|v| v.in_maintenance),
            ) {
                (_, _, _, true) => "maintenance",
                (true, _, _, _) => "incident",
                (false, true, _, _) => "degraded",
                (false, false, true, _) => "unknown",
                _ => "up",
            };
            json!({
                "name": svc.name,
                "description": svc.description,
                "owner": svc.owner,
                "tier": svc.tier,
                "status": status,
                "checks": checks,
                "slo": view.map(slo_json).unwrap_or(Value::Null),
                "open_incident": open,
            })
        })
        .collect();
    Json(json!({ "services": list }))
}

/// One check: its schedule, whether it is up, and its last run (local
/// errors excluded; they are only counted). Details are short and never
/// carry request header values.
fn check_json(app: &AppState, service: &str, c: &Check) -> Value {
    let slot = app.checks.slot(service, &c.name);
    let up = slot.as_ref().and_then(|s| s.last_up());
    let last_run = slot.as_ref().and_then(|s| s.last_run()).map(|r| {
        json!({
            "at": jiff::Timestamp::from_second(r.at).ok().map(|t| t.to_string()),
            "result": if r.reason.is_none() { "good" } else { "bad" },
            "reason": r.reason.map(Reason::as_str),
            "detail": r.detail,
        })
    });
    json!({
        "name": c.name,
        "kind": c.probe.kind(),
        "interval_seconds": c.interval.as_secs_f64(),
        "up": up,
        "last_run": last_run,
        "local_errors": slot.as_ref().map_or(0, |s| s.local_errors()),
    })
}

fn slo_json(view: &ServiceView) -> Value {
    let Some(f) = &view.figures else {
        return Value::Null;
    };
    let one = |s: &crate::slo::SloFigures| {
        let burn: serde_json::Map<String, Value> = s
            .burn
            .iter()
            .map(|b| (b.window.to_string(), json!(b.burn_rate)))
            .collect();
        let sli: serde_json::Map<String, Value> = s
            .burn
            .iter()
            .map(|b| (b.window.to_string(), json!(b.sli)))
            .collect();
        let coverage: serde_json::Map<String, Value> = s
            .burn
            .iter()
            .map(|b| (b.window.to_string(), json!(b.coverage)))
            .collect();
        json!({
            "objective": s.objective,
            "sli": s.sli,
            "sli_by_window": sli,
            "coverage": f.coverage,
            "coverage_by_window": coverage,
            "error_budget_remaining_ratio": s.error_budget_remaining_ratio,
            "error_budget_remaining_seconds": s.error_budget_remaining_seconds,
            "burn_rate": burn,
        })
    };
    json!({
        "window": f.window_label,
        "valid_runs": f.counts.valid,
        "good_runs": f.counts.good,
        "expected_runs": f.expected,
        "availability": one(&f.availability),
        "latency": f.latency.as_ref().map(one),
        "alerts": { "page": view.alerts.page, "ticket": view.alerts.ticket },
    })
}

#[derive(Debug, Deserialize)]
pub struct IncidentQuery {
    state: Option<String>,
}

pub async fn incidents(
    State(app): State<Arc<AppState>>,
    q: Result<Query<IncidentQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let only_open = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid state `{other}`: use `open` or `all`"),
            ));
        }
    };
    let snap = app.engine.snapshot();
    let list: Vec<Value> = snap
        .incidents
        .iter()
        .filter(|i| !only_open || i.state == crate::incident::State::Open)
        .map(|i| with_tickets(&app.tickets, i))
        .collect();
    Ok(Json(json!({ "incidents": list })))
}

/// An incident as the API shows it: its fields plus `tickets`, the external
/// records the ticket connectors keep for it (`[{notifier, key, url}]`).
fn with_tickets(book: &crate::notify::tickets::Book, incident: &Incident) -> Value {
    let mut v = serde_json::to_value(incident).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("tickets".into(), json!(book.refs(&incident.id)));
    }
    v
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
    note: Option<String>,
}

/// Parse an optional JSON body; an empty body is fine. Oversized bodies
/// and malformed JSON become JSON errors (413 / 400).
fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<AckBody, ApiError> {
    let bytes = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(AckBody::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}; expected {{\"by\": \"...\", \"note\": \"...\"}}"),
        )
    })
}

/// The `{id}` path segment; a segment that is not UTF-8 is a JSON 400 like
/// every other bad request.
fn incident_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))
}

/// Longest acknowledgement note kept: it travels in every later event.
const MAX_NOTE_CHARS: usize = 2_000;

fn who(body: &AckBody) -> Result<String, ApiError> {
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`note` is longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    let by = body.by.clone().unwrap_or_else(|| "api".to_string());
    if by.len() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`by` is longer than 200 characters",
        ));
    }
    Ok(by)
}

pub async fn ack(
    State(app): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    auth::require_bearer(&app, &headers)?;
    let id = incident_id(id)?;
    let body = parse_body(body)?;
    let by = who(&body)?;
    run(
        &app,
        IncidentCommand::Ack {
            id,
            by,
            note: body.note,
            source: Source::Api,
        },
    )
    .await
}

pub async fn resolve(
    State(app): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    auth::require_bearer(&app, &headers)?;
    let id = incident_id(id)?;
    let body = parse_body(body)?;
    let by = who(&body)?;
    run(
        &app,
        IncidentCommand::Resolve {
            id,
            by,
            source: Source::Api,
        },
    )
    .await
}

async fn run(app: &AppState, cmd: IncidentCommand) -> Result<Json<Value>, ApiError> {
    match app.engine.command(cmd).await {
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is shutting down",
        )),
        Some(Ok((incident, changed))) => Ok(Json(
            json!({ "changed": changed, "incident": with_tickets(&app.tickets, &incident) }),
        )),
        Some(Err(e @ IncidentError::NotFound { .. })) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
        }
        Some(Err(e @ (IncidentError::Conflict { .. } | IncidentError::UpdatesClosed { .. }))) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string()))
        }
    }
}

/// The body of `POST /api/v1/incidents/{id}/updates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: Option<String>,
    message: Option<String>,
    by: Option<String>,
}

const UPDATE_SHAPE: &str =
    r#"{"status": "investigating|identified|monitoring|resolved", "message": "...", "by": "..."}"#;

/// The engine command of a valid update body; a 400 naming what is wrong otherwise.
fn update_command(
    id: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<IncidentCommand, ApiError> {
    let bad = |msg: String| ApiError::new(StatusCode::BAD_REQUEST, msg);
    let bytes = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let body: UpdateBody = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("invalid JSON body: {e}; expected {UPDATE_SHAPE}")))?;
    let status = body
        .status
        .ok_or_else(|| bad(format!("`status` is missing; expected {UPDATE_SHAPE}")))?;
    let status = UpdateStatus::parse(&status).ok_or_else(|| {
        let all: Vec<&str> = UpdateStatus::ALL.iter().map(|s| s.as_str()).collect();
        bad(format!(
            "invalid status `{status}`: use one of {}",
            all.join(", ")
        ))
    })?;
    let message = body
        .message
        .ok_or_else(|| bad(format!("`message` is missing; expected {UPDATE_SHAPE}")))?;
    let message = check_message(&message).map_err(|e| bad(e.to_string()))?;
    let by = who(&AckBody {
        by: body.by,
        note: None,
    })?;
    Ok(IncidentCommand::PostUpdate {
        id,
        status,
        message,
        by,
    })
}

/// `POST /api/v1/incidents/{id}/updates`: a human update, stored on the
/// incident and announced as `incident.updated`; answered once persisted.
pub async fn post_update(
    State(app): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    auth::require_bearer(&app, &headers)?;
    let id = incident_id(id)?;
    let cmd = update_command(id, body)?;
    run(&app, cmd).await
}
