//! Incident storm benchmark (issue 4): N services fail at once; every
//! incident must open and every event reach a local webhook receiver.
//! Prints time to open all incidents, time to drain the outbox, and the
//! peak queue depth, then the same for the recovery.
//!
//! `cargo build --release && cargo run --release --example incident_storm -- [N]`
//! (uses `target/release/sentinel`; everything on 127.0.0.1, bounded in time).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::time::Instant;

#[derive(Default)]
struct Counts {
    opened: AtomicU64,
    resolved: AtomicU64,
    other: AtomicU64,
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let up = Arc::new(AtomicBool::new(true));
    let counts = Arc::new(Counts::default());

    let u = Arc::clone(&up);
    let target = Router::new().route(
        "/health",
        get(move || {
            let u = Arc::clone(&u);
            async move {
                if u.load(Ordering::Relaxed) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let c = Arc::clone(&counts);
    let receiver = Router::new().route(
        "/hooks",
        post(move |body: String| {
            let c = Arc::clone(&c);
            async move {
                if body.contains("\"incident.opened\"") {
                    c.opened.fetch_add(1, Ordering::Relaxed);
                } else if body.contains("\"incident.resolved\"") {
                    c.resolved.fetch_add(1, Ordering::Relaxed);
                } else {
                    c.other.fetch_add(1, Ordering::Relaxed);
                }
                StatusCode::OK
            }
        }),
    );
    let taddr = serve(target).await;
    let raddr = serve(receiver).await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = format!(
        "server:\n  listen: 127.0.0.1:0\n  max_concurrency: 4096\nstorage:\n  path: {}\nnotifiers:\n  - name: hook\n    type: webhook\n    url: http://{raddr}/hooks\nservices:\n",
        dir.path().join("state.db").display()
    );
    for i in 0..n {
        cfg.push_str(&format!(
            "  - name: svc{i}\n    checks:\n      - name: health\n        interval: 1s\n        timeout: 900ms\n        http: {{ url: \"http://{taddr}/health\" }}\n    incident: {{ open_after: 2, resolve_after: 2, burn_rate_alerts: false, notify: [hook] }}\n"
        ));
    }
    let path = dir.path().join("storm.yaml");
    std::fs::write(&path, cfg).unwrap();

    let bin = std::env::var("SENTINEL_BIN").unwrap_or_else(|_| "target/release/sentinel".into());
    let mut child = Command::new(&bin)
        .args(["run", "-c"])
        .arg(&path)
        .env("RUST_LOG", "warn,sentinel::daemon=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run `cargo build --release` first, or set SENTINEL_BIN");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(i) = line.find("listen=") {
                let a: String = line[i + 7..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(a);
                sent = true;
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .parse()
        .unwrap();
    let http = reqwest::Client::new();
    // Let every check run a few times while healthy.
    tokio::time::sleep(Duration::from_secs(3)).await;

    println!("incident storm: {n} services, 1 check each at 1s, open_after 2, resolve_after 2");
    for (phase, down) in [("outage", true), ("recovery", false)] {
        up.store(!down, Ordering::Relaxed);
        let t0 = Instant::now();
        let want = n as u64;
        let mut peak = 0u64;
        let mut all_events_at = None;
        let deadline = t0 + Duration::from_secs(120);
        loop {
            let got = if down {
                counts.opened.load(Ordering::Relaxed)
            } else {
                counts.resolved.load(Ordering::Relaxed)
            };
            let depth = queue_depth(&http, addr).await;
            peak = peak.max(depth);
            if got >= want && all_events_at.is_none() {
                all_events_at = Some(t0.elapsed());
            }
            if all_events_at.is_some() && depth == 0 {
                break;
            }
            if Instant::now() > deadline {
                println!(
                    "  {phase}: TIMEOUT after 120 s: {got}/{want} events, queue depth {depth}"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(t) = all_events_at {
            println!(
                "  {phase}: all {want} events received {:.2} s after the flip; outbox drained at {:.2} s; peak queue depth {peak}",
                t.as_secs_f64(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "  received: opened {}, resolved {}, other {}",
        counts.opened.load(Ordering::Relaxed),
        counts.resolved.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed)
    );
    let _ = child.kill();
    let _ = child.wait();
}

async fn serve(app: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}

async fn queue_depth(http: &reqwest::Client, addr: SocketAddr) -> u64 {
    let Ok(r) = http.get(format!("http://{addr}/metrics")).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("sentinel_notifier_queue_depth{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}
