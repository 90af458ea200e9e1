//! The HTTP surface: `/metrics`, `/healthz`, `/readyz`, the JSON API and
//! `POST /-/reload`. Handlers read [`AppState`], which the daemon builds:
//! snapshots and counters published by their one writer (daemon, engine,
//! checks' tasks, delivery workers), and channels to that writer. [`server`]
//! is the accept loop with its connection cap and read timeout.
//!
//! Every error is JSON `{"error": "..."}` with the right status code. Request
//! bodies are capped at [`MAX_BODY_BYTES`] ([`MAX_HOOK_BODY_BYTES`] for the
//! inbound hooks): a declared `Content-Length` over
//! it is refused (413) before a byte of the body is read, a chunked body as
//! soon as it passes it, and a body must arrive within `server.read_timeout`
//! (408).

mod api;
mod auth;
mod hooks;
pub mod server;
mod state;

pub use state::{AppState, Health, NotReady, ReloadReply, ReloadRequest};
mod stall;
mod status;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::json;

/// Largest request body accepted (ack notes and the like are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body an inbound hook accepts: providers send their whole object
/// (a Jira issue with its description and comments, the Slack message the
/// button was in), which can pass [`MAX_BODY_BYTES`].
pub const MAX_HOOK_BODY_BYTES: usize = 1024 * 1024;

/// Path prefix of the inbound hooks.
const HOOKS_PREFIX: &str = "/api/v1/hooks/";

/// The body cap for a request to `path`.
fn body_cap(path: &str) -> usize {
    if path.starts_with(HOOKS_PREFIX) {
        MAX_HOOK_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// An API error: status + message, rendered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: say the connection ends
            // here, so a client does not reuse it for its next request.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// The log throttle for refused inbound hook requests: one line a minute.
pub(crate) fn refusal_throttle() -> crate::throttle::Throttle {
    crate::throttle::Throttle::new(std::time::Duration::from_secs(60))
}

pub fn router(app: Arc<AppState>) -> Router {
    let read_timeout = app.config().server.read_timeout;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .route("/api/v1/services", get(api::services))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}/ack", post(api::ack))
        .route("/api/v1/incidents/{id}/resolve", post(api::resolve))
        .route("/api/v1/incidents/{id}/updates", post(api::post_update))
        .route(
            "/api/v1/hooks/{provider}",
            post(hooks::hook).layer(DefaultBodyLimit::max(MAX_HOOK_BODY_BYTES)),
        )
        .merge(status::routes(Arc::clone(&app)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(read_timeout, guard_body))
        .with_state(app)
}

/// Reads the request body before any handler sees it, so every endpoint
/// gets the same limits: over [`MAX_BODY_BYTES`] → 413 (a declared length at
/// once, without reading; a chunked body once it passes the cap), not
/// complete within `read_timeout` → 408. Without this, a client announcing
/// a huge `Content-Length` and sending nothing would hold its connection
/// and a handler forever.
async fn guard_body(
    State(read_timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let cap = body_cap(request.uri().path());
    let body = request.body();
    if body.is_end_stream() {
        return next.run(request).await;
    }
    if body.size_hint().upper().is_some_and(|n| n > cap as u64) {
        return closing(too_large(cap));
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(read_timeout, read_capped(body, cap)).await {
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} (server.read_timeout)",
                crate::config::duration::format(read_timeout)
            ),
        )),
        Ok(Err(BodyError::TooLarge)) => closing(too_large(cap)),
        Ok(Err(BodyError::Read(e))) => closing(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("reading the request body failed: {e}"),
        )),
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// An error answered before the body was read to its end: the rest of the
/// body may still be on the wire, so the connection cannot carry another
/// request. `Connection: close` tells the client so (and makes hyper close
/// it), instead of the client reusing a connection that is going away.
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

fn too_large(cap: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {cap} bytes"),
    )
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// The whole body, or [`BodyError::TooLarge`] as soon as it passes `cap`.
async fn read_capped(mut body: Body, cap: usize) -> Result<Bytes, BodyError> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > cap {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    // Rendering 10k checks takes tens of milliseconds: keep it off the
    // async workers that run probes.
    let now = app.clock.now();
    let body = match tokio::task::spawn_blocking(move || app.render_metrics(now)).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering metrics failed: {e}"),
            )
            .into_response();
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 `ready` or 503 `{"error": why}` (see [`AppState::readiness`]).
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    match app.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.to_string()).into_response(),
    }
}

async fn reload(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_bearer(&app, &headers)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.reload
        .send(tx)
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "daemon is shutting down"))?;
    match rx.await {
        Ok(Ok(())) => Ok(Json(json!({ "status": "reloaded" }))),
        Ok(Err(errors)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("config refused; the running config stays:\n{errors}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "daemon is shutting down",
        )),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint; the endpoints are listed in docs/api.md",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; the endpoints are listed in docs/api.md",
    )
}
