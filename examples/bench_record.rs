//! Times the per-run cost of recording into SLO state:
//! `sentinel::engine::EngineState::on_run` (SLO counts and the incident state
//! machine) for every check of a config, runs
//! spaced as the daemon would see them at a given total rate, plus the
//! engine's once-a-second `take_pending` (the deltas it hands the store),
//! reported separately and amortised per run.
//!
//! Usage: `bench_record CONFIG [RUNS=1000000] [RATE=5000]`. Prints `key=value`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sentinel::clock::{Clock, SystemClock};
use sentinel::engine::{EngineState, RunRecord};
use tokio::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> anyhow::Result<T> {
    match args.get(i) {
        Some(a) => a
            .parse()
            .map_err(|_| anyhow::anyhow!("argument {i} ({a:?}) is not a number")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config_path = PathBuf::from(
        args.first()
            .context("usage: bench_record CONFIG [RUNS] [RATE]")?,
    );
    let runs: u64 = arg(&args, 1, 1_000_000)?;
    let rate: u64 = arg(&args, 2, 5_000)?.max(1);
    let cfg = Arc::new(sentinel::config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?);
    let ids: Vec<(Arc<str>, Arc<str>)> = cfg
        .services
        .iter()
        .flat_map(|s| {
            let service: Arc<str> = Arc::from(s.name.as_str());
            s.checks
                .iter()
                .map(move |c| (Arc::clone(&service), Arc::from(c.name.as_str())))
        })
        .collect();
    anyhow::ensure!(!ids.is_empty(), "the config has no checks");

    // Records are built up front so only `on_run` is inside the timed loop.
    let t0 = SystemClock.now();
    let step = Duration::from_nanos(1_000_000_000 / rate);
    let records: Vec<RunRecord> = (0..runs)
        .map(|j| {
            let (service, check) = &ids[(j % ids.len() as u64) as usize];
            RunRecord {
                service: Arc::clone(service),
                check: Arc::clone(check),
                at: t0 + step * u32::try_from(j).unwrap_or(u32::MAX),
                good: j % 1_000 != 0,
                latency: Duration::from_micros(500 + (j * 7_919) % 20_000),
                detail: if j % 1_000 == 0 {
                    "status 500".to_owned()
                } else {
                    String::new()
                },
            }
        })
        .collect();

    let mut state = EngineState::new(Arc::clone(&cfg));
    let mut on_run = Duration::ZERO;
    let mut pending = Duration::ZERO;
    let mut deltas: u64 = 0;
    let mut changes: u64 = 0;
    for chunk in records.chunks(rate as usize) {
        let start = Instant::now();
        for r in chunk {
            // Changes are what the engine would persist; count them so the
            // work is not optimised away.
            changes += state.on_run(r).1.len() as u64;
        }
        on_run += start.elapsed();
        // One simulated second has passed: the engine flushes here.
        let start = Instant::now();
        deltas += state.take_pending().len() as u64;
        pending += start.elapsed();
    }
    let per = |d: Duration| d.as_nanos() as f64 / runs.max(1) as f64;
    println!(
        "checks={} runs={runs} rate={rate} on_run_ns={:.0} take_pending_ns_per_run={:.0} total_ns_per_run={:.0} deltas={deltas} incident_changes={changes}",
        ids.len(),
        per(on_run),
        per(pending),
        per(on_run + pending),
    );
    Ok(())
}
