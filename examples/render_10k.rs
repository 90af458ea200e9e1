//! Builds 10 000 check slots with a full 5-minute window and realistic
//! counters, then times `/metrics` rendering. The shipped benchmark reuses it;
//! run with `cargo run --release --example render_10k [-- CHECKS]`.

use std::time::Duration;

use sentinel::metrics::{CheckMetrics, Expo, render_process};
use sentinel::probe::{Outcome, Reason};
use tokio::time::Instant;

fn main() {
    let checks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let pairs: Vec<(String, String)> = (0..checks)
        .map(|i| {
            (
                format!("service-{:04}", i / 10),
                format!("check-{}", i % 10),
            )
        })
        .collect();
    let metrics = CheckMetrics::new();
    metrics.sync(&pairs);

    // Six runs per minute for five minutes per check (a 10 s interval), 1 in
    // 10 bad with a rotating reason, latencies spread over 1..200 ms.
    let now: i64 = 1_700_000_000;
    let fill = Instant::now();
    let mut n: u64 = 0;
    for (service, check) in &pairs {
        let Some(slot) = metrics.slot(service, check) else {
            continue;
        };
        for run in 0..30_i64 {
            n += 1;
            let reason = n
                .is_multiple_of(10)
                .then(|| Reason::ALL[(n / 10) as usize % Reason::ALL.len()]);
            let outcome = Outcome {
                reason,
                latency: Duration::from_micros(1_000 + (n * 7_919) % 199_000),
                cert_not_after: Some(now + 86_400 * 60),
                detail: String::new(),
            };
            slot.record(&outcome, now - 299 + run * 10);
        }
        if n.is_multiple_of(7) {
            slot.record_skipped();
        }
    }
    let fill = fill.elapsed();

    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut out = Expo::with_capacity(bytes);
        metrics.render(&mut out, now);
        render_process(&mut out, env!("CARGO_PKG_VERSION"), true);
        let took = start.elapsed();
        bytes = out.buf.len();
        best = best.min(took);
    }
    let slot_bytes = metrics
        .slot(&pairs[0].0, &pairs[0].1)
        .map(|s| s.approx_bytes())
        .unwrap_or(0);
    println!(
        "checks={checks} runs_recorded={n} fill_ms={:.1} render_ms_best_of_5={:.2} scrape_bytes={bytes} slot_bytes={slot_bytes}",
        fill.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
    );
}
