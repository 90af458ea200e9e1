//! The shipped benchmark's local HTTP target: answers `200 ok` on any path,
//! `500 down` under `/fail/`, and counts webhook deliveries on `POST /hook`
//! (read back with `GET /hook/count`) for the incident-storm stage.
//!
//! It listens on several loopback ports because the probes under test open a
//! fresh connection per run (that is what they measure): at 5 000 probes/s
//! one port would recycle the ~28 000 ephemeral ports within seconds, so the
//! load is spread over more (client port, server port) pairs.
//!
//! Usage: `bench_target [PORTS]` (default 8). Prints one line
//! `listening 127.0.0.1:P1 127.0.0.1:P2 ...` on stdout once every port is bound.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, get, post};

/// Counters read by the orchestrator; relaxed atomics because only totals matter.
#[derive(Default)]
struct Counts {
    hooks: AtomicU64,
    hook_bytes: AtomicU64,
}

async fn ok() -> &'static str {
    "ok"
}

async fn fail() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "down")
}

async fn hook(State(c): State<Arc<Counts>>, body: axum::body::Bytes) -> StatusCode {
    c.hooks.fetch_add(1, Ordering::Relaxed);
    c.hook_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    StatusCode::OK
}

async fn hook_count(State(c): State<Arc<Counts>>) -> String {
    format!(
        "{} {}\n",
        c.hooks.load(Ordering::Relaxed),
        c.hook_bytes.load(Ordering::Relaxed)
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let ports: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8)
        .max(1);
    let counts = Arc::new(Counts::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/hook/count", get(hook_count))
        .route("/fail/{*rest}", any(fail))
        .fallback(ok)
        .with_state(counts);

    let mut addrs = Vec::with_capacity(ports);
    let mut servers = tokio::task::JoinSet::new();
    for _ in 0..ports {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        addrs.push(listener.local_addr()?.to_string());
        let app = app.clone();
        servers.spawn(async move { axum::serve(listener, app).await });
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", addrs.join(" "))?;
        out.flush()?;
    }
    // Runs until the orchestrator kills it; a server that stops is an error.
    while let Some(res) = servers.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    Ok(())
}
