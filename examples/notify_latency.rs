//! Notifier isolation benchmark: a flapping service notifies two webhook
//! receivers, one that accepts connections and never answers (30 s notifier
//! timeout) and one healthy. Prints, for the healthy receiver:
//! - delivery latency p50/p99/max over every event (arrival − the event's
//!   `occurred_at`, i.e. the run that changed the incident);
//! - for every `incident.opened`, the time from the target's answer to the
//!   `open_after`-th failed run to the event's arrival.
//!
//! `cargo build --release && cargo run --release --example notify_latency -- [CYCLES]`
//! (default 15 cycles of 1.5 s down / 1.5 s up, about a minute; uses
//! `target/release/sentinel` or `SENTINEL_BIN`; everything on 127.0.0.1,
//! bounded in time, kills what it starts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::time::Instant;

const OPEN_AFTER: usize = 3;
const INTERVAL_MS: u64 = 250;

/// An event as the healthy receiver saw it.
struct Arrival {
    at: Instant,
    kind: String,
    /// The incident's `opened_at`, to match an event to its cycle.
    opened_at: jiff::Timestamp,
    /// Arrival wall time − `occurred_at`, seconds.
    latency: f64,
}

#[tokio::main]
async fn main() {
    let cycles: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let up = Arc::new(AtomicBool::new(true));
    // (when, answered good) for every probe the target served.
    let answers: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();

    let (u, a) = (Arc::clone(&up), Arc::clone(&answers));
    let target = Router::new().route(
        "/health",
        get(move || {
            let (u, a) = (Arc::clone(&u), Arc::clone(&a));
            async move {
                let good = u.load(Ordering::SeqCst);
                a.lock().unwrap().push((Instant::now(), good));
                if good {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let arr = Arc::clone(&arrivals);
    let receiver = Router::new().route(
        "/hooks",
        post(move |body: String| {
            let arr = Arc::clone(&arr);
            async move {
                let now = sentinel::clock::Clock::now(&sentinel::clock::SystemClock);
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let occurred: jiff::Timestamp = v["occurred_at"].as_str().unwrap().parse().unwrap();
                arr.lock().unwrap().push(Arrival {
                    at: Instant::now(),
                    kind: v["type"].as_str().unwrap().to_string(),
                    opened_at: v["incident"]["opened_at"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                    latency: (now - occurred).total(jiff::Unit::Second).unwrap(),
                });
                StatusCode::OK
            }
        }),
    );
    let taddr = serve(target).await;
    let raddr = serve(receiver).await;
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let haddr = hang.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"server:
  listen: 127.0.0.1:0
storage:
  path: {db}
notifiers:
  - name: hang
    type: webhook
    url: http://{haddr}/hooks
    timeout: 30s
  - name: ok
    type: webhook
    url: http://{raddr}/hooks
    timeout: 30s
services:
  - name: flappy
    checks:
      - name: health
        interval: {INTERVAL_MS}ms
        timeout: 200ms
        http: {{ url: "http://{taddr}/health" }}
    incident: {{ open_after: {OPEN_AFTER}, resolve_after: 2, burn_rate_alerts: false, notify: [hang, ok] }}
"#,
        db = dir.path().join("state.db").display()
    );
    let path = dir.path().join("latency.yaml");
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
            if !sent && line.contains("listen=") {
                let _ = tx.send(());
                sent = true;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    println!(
        "notifier isolation: 1 check every {INTERVAL_MS} ms, open_after {OPEN_AFTER}, resolve_after 2; \
         notifiers `hang` (accepts, never answers, timeout 30 s) and `ok`; {cycles} cycles of 1.5 s down / 1.5 s up"
    );
    let mut flips = Vec::new();
    for _ in 0..cycles {
        up.store(false, Ordering::SeqCst);
        flips.push((
            Instant::now(),
            sentinel::clock::Clock::now(&sentinel::clock::SystemClock),
        ));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // Let what is still queued arrive (bounded).
    let deadline = Instant::now() + Duration::from_secs(40);
    while arrivals.lock().unwrap().len() < 2 * cycles && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();

    let arrivals = arrivals.lock().unwrap();
    let answers = answers.lock().unwrap();
    let mut all: Vec<f64> = arrivals.iter().map(|a| a.latency).collect();
    // Per cycle: the open_after-th failed answer after the flip, and the
    // arrival of the `incident.opened` of the incident opened in that cycle.
    let mut open_to_delivery = Vec::new();
    for (i, (flip, flip_wall)) in flips.iter().enumerate() {
        let end = flips.get(i + 1).copied();
        let nth_bad = answers
            .iter()
            .filter(|(t, good)| !good && t >= flip && end.is_none_or(|(e, _)| *t < e))
            .nth(OPEN_AFTER - 1)
            .map(|(t, _)| *t);
        let Some(bad) = nth_bad else { continue };
        if let Some(a) = arrivals.iter().find(|a| {
            a.kind == "incident.opened"
                && a.opened_at >= *flip_wall
                && end.is_none_or(|(_, w)| a.opened_at < w)
        }) {
            open_to_delivery.push((a.at - bad).as_secs_f64());
        }
    }
    let opened = arrivals
        .iter()
        .filter(|a| a.kind == "incident.opened")
        .count();
    println!(
        "  healthy receiver got {} events ({opened} opened) for {cycles} cycles; the hanging receiver accepted {} connections",
        arrivals.len(),
        accepted.load(Ordering::SeqCst)
    );
    println!(
        "  | figure | n | p50 | p99 | max |\n  |---|---|---|---|---|\n  | change → delivery (occurred_at → arrival) | {} | {} | {} | {} |",
        all.len(),
        ms(pct(&mut all, 0.50)),
        ms(pct(&mut all, 0.99)),
        ms(pct(&mut all, 1.0)),
    );
    println!(
        "  | failed run #{OPEN_AFTER} (open_after) answered → incident.opened delivered | {} | {} | {} | {} |",
        open_to_delivery.len(),
        ms(pct(&mut open_to_delivery, 0.50)),
        ms(pct(&mut open_to_delivery, 0.99)),
        ms(pct(&mut open_to_delivery, 1.0)),
    );
}

/// Nearest-rank percentile (sorts `v`); `None` when empty.
fn pct(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{:.0} ms", s * 1000.0))
}

async fn serve(app: Router) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    a
}
