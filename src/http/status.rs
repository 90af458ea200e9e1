//! Handlers of the status page routes: `/`, `/status`, `/status.json`,
//! `/status/feed.atom`, `/status/report` and `/badge/{service}.svg`.
//!
//! Thin on purpose: each handler copies what it needs out of shared state
//! (config, the engine's snapshot, each check's last result, the cached
//! history) into plain [`crate::status`] inputs and calls the pure builders
//! and renderers there. The built page is kept until the snapshot, the
//! config or the history changes (the engine publishes every 2 s), so a
//! burst of visitors during an incident costs one build.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::ApiError;
use super::AppState;
use crate::config::{Config, Service};
use crate::engine::{ServiceView, Snapshot};
use crate::status::history::{MonthCache, Reader};
use crate::status::report::{self, Month, ReportServiceInput};
use crate::status::{self, History, HistoryCache, Page, PageInput, ServiceInput, SloInput, badge};

/// Longest a built page is served before it is rebuilt even with nothing
/// new from the engine (durations like "started 5m ago" move on).
const PAGE_MAX_AGE_SECS: i64 = 5;

/// What the status routes keep between requests.
struct StatusState {
    shared: Arc<AppState>,
    history: Arc<HistoryCache>,
    months: MonthCache,
    page: Mutex<Option<Arc<Built>>>,
}

/// A built page and the inputs it was built from (held, so the pointer
/// comparison cannot be fooled by a freed and reused allocation).
struct Built {
    config: Arc<Config>,
    snapshot: Arc<Snapshot>,
    history: Arc<History>,
    at: Timestamp,
    page: Arc<Page>,
    /// Rendered on first request, once per build.
    html: OnceCell<Arc<Encoded>>,
    json: OnceCell<Arc<Encoded>>,
}

/// A rendered body and its gzip form (sent when the client accepts it).
struct Encoded {
    raw: Bytes,
    gzip: Option<Bytes>,
}

/// The status routes, with their own state; merged into the main router.
pub fn routes<S: Clone + Send + Sync + 'static>(shared: Arc<AppState>) -> Router<S> {
    let reader = Reader::default();
    let history = HistoryCache::new(reader.clone());
    // Load the 90 days now, so the first visitor after a restart does not wait.
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (cache, path, now) = (
            Arc::clone(&history),
            shared.config().storage.path.clone(),
            shared.clock.now(),
        );
        rt.spawn(async move { cache.get(&path, now).await });
    }
    let state = Arc::new(StatusState {
        shared,
        history,
        months: MonthCache::new(reader),
        page: Mutex::new(None),
    });
    Router::new()
        .route("/", get(root))
        .route("/status", get(page_html))
        .route("/status.json", get(page_json))
        .route("/status/feed.atom", get(feed))
        .route("/status/report", get(monthly_report))
        .route("/badge/{file}", get(badge_svg))
        .with_state(state)
}

/// `GET /` → `/status`. Relative, so it works behind a path prefix.
async fn root() -> Redirect {
    Redirect::temporary("status")
}

/// The plain inputs of one service.
fn service_input(svc: &Service, view: Option<&ServiceView>, shared: &AppState) -> ServiceInput {
    ServiceInput {
        name: svc.name.clone(),
        description: svc.description.clone(),
        checks_up: svc
            .checks
            .iter()
            .map(|c| {
                shared
                    .checks
                    .slot(&svc.name, &c.name)
                    .and_then(|s| s.last_up())
            })
            .collect(),
        slo: svc.slo.as_ref().map(|slo| SloInput {
            objective: slo.objective,
            window: slo.window.label(),
            availability: view
                .and_then(|v| v.figures.as_ref())
                .and_then(|f| f.availability.sli),
        }),
        in_maintenance: view.is_some_and(|v| v.in_maintenance),
        open_incident: view.and_then(|v| v.open_incident.clone()),
        alerts_team: !svc.incident.notify.is_empty(),
    }
}

/// Names of the services on the page, in page order.
fn shown(cfg: &Config) -> Vec<&str> {
    match &cfg.status_page.services {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => cfg.services.iter().map(|s| s.name.as_str()).collect(),
    }
}

impl StatusState {
    /// The page now: the cached one when nothing it depends on changed.
    async fn page(&self) -> Result<Arc<Built>, ApiError> {
        let now = self.shared.clock.now();
        let cfg = self.shared.config();
        let snapshot = self.shared.engine.snapshot();
        let history = self.history.get(&cfg.storage.path, now).await;
        let cached = match self.page.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(b) = cached.filter(|b| {
            Arc::ptr_eq(&b.config, &cfg)
                && Arc::ptr_eq(&b.snapshot, &snapshot)
                && Arc::ptr_eq(&b.history, &history)
                && now.as_second() - b.at.as_second() < PAGE_MAX_AGE_SECS
        }) {
            return Ok(b);
        }
        let configured: HashMap<&str, &Service> =
            cfg.services.iter().map(|s| (s.name.as_str(), s)).collect();
        let views: HashMap<&str, &ServiceView> = snapshot
            .services
            .iter()
            .map(|v| (v.name.as_str(), v))
            .collect();
        let services: Vec<ServiceInput> = shown(&cfg)
            .into_iter()
            .filter_map(|name| {
                let svc = configured.get(name)?;
                Some(service_input(svc, views.get(name).copied(), &self.shared))
            })
            .collect();
        let (title, show_incidents) = (
            cfg.status_page.title.clone(),
            cfg.status_page.show_incidents,
        );
        let (snap, hist) = (Arc::clone(&snapshot), Arc::clone(&history));
        // Building 500 services × 90 days takes milliseconds: off the async workers.
        let page = tokio::task::spawn_blocking(move || {
            status::build(&PageInput {
                title,
                show_incidents,
                now,
                services,
                snapshot_incidents: &snap.incidents,
                history: &hist,
            })
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("building the status page failed: {e}"),
            )
        })?;
        let built = Arc::new(Built {
            config: cfg,
            snapshot,
            history,
            at: now,
            page: Arc::new(page),
            html: OnceCell::new(),
            json: OnceCell::new(),
        });
        match self.page.lock() {
            Ok(mut g) => *g = Some(Arc::clone(&built)),
            Err(p) => *p.into_inner() = Some(Arc::clone(&built)),
        }
        Ok(built)
    }
}

/// Headers every status page response carries. The policy lets the
/// browser load nothing at all beyond the document and its inline styles:
/// no script, no external asset, even if something slipped through.
fn respond(content_type: &'static str, cache_seconds: u32, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={cache_seconds}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Renders `page` with `render` on a blocking thread, once per build, and
/// gzips it (500 services are ~3 MB of HTML; ~70 KB gzipped).
async fn encoded(
    cell: &OnceCell<Arc<Encoded>>,
    page: &Arc<Page>,
    render: fn(&Page) -> Result<String, String>,
) -> Result<Arc<Encoded>, ApiError> {
    let page = Arc::clone(page);
    let enc = cell
        .get_or_try_init(|| async move {
            let joined = tokio::task::spawn_blocking(move || {
                let raw = render(&page)?;
                let gzip = match status::gzip(raw.as_bytes()) {
                    Ok(g) => Some(Bytes::from(g)),
                    Err(e) => {
                        tracing::warn!(error = %e, "gzip of the status page failed; sending it uncompressed");
                        None
                    }
                };
                Ok::<_, String>(Encoded {
                    raw: Bytes::from(raw),
                    gzip,
                })
            })
            .await;
            match joined {
                Ok(Ok(e)) => Ok(Arc::new(e)),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering the status page failed: {e}"),
            )
        })?;
    Ok(Arc::clone(enc))
}

/// Whether the request accepts a gzip body (`Accept-Encoding: gzip`, not `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `enc` as the response body: gzip when accepted.
fn send(content_type: &'static str, enc: &Encoded, headers: &HeaderMap) -> Response {
    let gzip = enc.gzip.as_ref().filter(|_| accepts_gzip(headers));
    let mut resp = respond(content_type, 30, gzip.unwrap_or(&enc.raw).clone());
    let h = resp.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip.is_some() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

async fn page_html(
    State(st): State<Arc<StatusState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let built = st.page().await?;
    let enc = encoded(&built.html, &built.page, |p| Ok(status::html::page(p))).await?;
    Ok(send("text/html; charset=utf-8", &enc, &headers))
}

async fn page_json(
    State(st): State<Arc<StatusState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let built = st.page().await?;
    let enc = encoded(&built.json, &built.page, |p| {
        serde_json::to_string(p).map_err(|e| e.to_string())
    })
    .await?;
    Ok(send("application/json", &enc, &headers))
}

async fn feed(State(st): State<Arc<StatusState>>) -> Result<Response, ApiError> {
    let built = st.page().await?;
    Ok(respond(
        "application/atom+xml; charset=utf-8",
        30,
        status::atom::feed(&built.page),
    ))
}

#[derive(Debug, Deserialize)]
struct BadgeQuery {
    metric: Option<String>,
}

async fn badge_svg(
    State(st): State<Arc<StatusState>>,
    file: Result<Path<String>, PathRejection>,
    q: Result<Query<BadgeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(file) = file.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let Query(q) = q.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let metric = match q.metric.as_deref() {
        None => badge::Metric::Status,
        Some(m) => badge::Metric::parse(m).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid metric `{m}`: use `status` or `availability`"),
            )
        })?,
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no such service on the status page; badges are /badge/<service>.svg",
        )
    };
    let name = file.strip_suffix(".svg").ok_or_else(not_found)?;
    let built = st.page().await?;
    let service = built.page.service(name).ok_or_else(not_found)?;
    Ok(respond("image/svg+xml", 60, badge::svg(service, metric)))
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    month: Option<String>,
}

async fn monthly_report(
    State(st): State<Arc<StatusState>>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, r.body_text()))?;
    let now = st.shared.clock.now();
    let month = match q.month.as_deref() {
        None | Some("") => Month::of(now),
        Some(m) => Month::parse(m).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("invalid month `{m}`: use YYYY-MM, e.g. 2026-03"),
            )
        })?,
    };
    let cfg = st.shared.config();
    let (start, end) = month.bounds();
    let data = st
        .months
        .get(&cfg.storage.path, start, end, now)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("reading the month from the state store failed: {e}"),
            )
        })?;
    let (Ok(from), Ok(to)) = (Timestamp::from_second(start), Timestamp::from_second(end)) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "month out of range"));
    };
    let names = shown(&cfg);
    let services: Vec<ReportServiceInput> = names
        .iter()
        .filter_map(|name| cfg.services.iter().find(|s| s.name == *name))
        .map(|svc| ReportServiceInput {
            name: svc.name.clone(),
            description: svc.description.clone(),
            objective: svc.slo.as_ref().map(|s| s.objective),
            counts: data.counts.get(&svc.name).copied().unwrap_or_default(),
            expected: crate::slo::Schedule::of(svc, &cfg.maintenance).expected(from, to),
        })
        .collect();
    let incidents: Vec<crate::incident::Incident> = data
        .incidents
        .iter()
        .filter(|i| names.contains(&i.service.as_str()))
        .cloned()
        .collect();
    let r = report::build(&report::ReportInput {
        title: cfg.status_page.title.clone(),
        month,
        now,
        services,
        incidents: &incidents,
        targets: &cfg.response_targets,
    });
    Ok(respond("text/html; charset=utf-8", 60, report::html(&r)))
}
