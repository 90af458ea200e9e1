//! The HTTP surface (SPEC §6): `/metrics`, `/healthz`, `/readyz`, the JSON API
//! and `POST /-/reload`. Handlers only read snapshots of shared state; the
//! daemon and engine are the writers.
//!
//! Every error is JSON `{"error": "..."}` with the right status code. Request
//! bodies are capped at [`MAX_BODY_BYTES`].

mod api;
mod auth;
mod status;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::daemon::Shared;

/// Largest request body accepted (ack notes and the like are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .route("/api/v1/services", get(api::services))
        .route("/api/v1/incidents", get(api::incidents))
        .route("/api/v1/incidents/{id}/ack", post(api::ack))
        .route("/api/v1/incidents/{id}/resolve", post(api::resolve))
        .merge(status::routes(Arc::clone(&shared)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    // Rendering 10k checks takes tens of milliseconds: keep it off the
    // async workers that run probes.
    let body = match tokio::task::spawn_blocking(move || shared.render_metrics()).await {
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

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn reload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_bearer(&shared, &headers)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    shared
        .reload_tx
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
        "method not allowed on this endpoint; see the README's API section",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint; see the README's API section",
    )
}
