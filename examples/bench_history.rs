//! Writes N days of SLO history for every check of a config straight into its
//! `storage.path`, as the daemon would have left it after running that long:
//! hour buckets for the whole span and minute buckets for
//! `storage.minute_retention` (the daemon prunes older minute rows). The
//! shipped benchmark then measures start-up to `/readyz` on that file.
//!
//! The schema comes from `sentinel::store::Store::open` (the real
//! migrations), so the file is exactly what the daemon expects; the rows are
//! bulk-inserted with plain SQL in primary-key order, because replaying 30
//! days through `add_counts` would take far longer than the benchmark itself.
//!
//! Usage: `bench_history CONFIG [DAYS=30]`. Prints `key=value` figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::params;
use sentinel::clock::{Clock, SystemClock};
use tokio::time::Instant;

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;

/// Runs per minute of one check and how many of them were bad or slow;
/// deterministic and sparse, so every service has a little budget spent.
fn minute_counts(check_index: usize, minute_start: i64, runs: u64) -> (u64, u64, u64) {
    let k = (check_index as i64)
        .wrapping_mul(7_919)
        .wrapping_add(minute_start / MINUTE);
    let bad = u64::from(k.rem_euclid(500) == 0).min(runs);
    let slow = u64::from(k.rem_euclid(97) == 0).min(runs - bad);
    let good = runs - bad;
    (runs, good, good - slow)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let config_path = PathBuf::from(args.next().context("usage: bench_history CONFIG [DAYS]")?);
    let days: i64 = match args.next() {
        Some(d) => d.parse().context("DAYS must be a whole number")?,
        None => 30,
    };
    let cfg = sentinel::config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = cfg.storage.path.clone();
    if path.exists() {
        bail!(
            "{} already exists; the generator only writes fresh files",
            path.display()
        );
    }

    // The real migrations create the file; then the handle is closed so this
    // process owns the only connection.
    let store = sentinel::store::Store::open(&path)?;
    store.close().await?;

    let mut checks: Vec<(String, String, u64)> = cfg
        .services
        .iter()
        .flat_map(|s| {
            s.checks.iter().map(|c| {
                let per_minute = (Duration::from_secs(60).as_millis()
                    / c.interval.as_millis().max(1))
                .max(1) as u64;
                (s.name.clone(), c.name.clone(), per_minute)
            })
        })
        .collect();
    // SQLite's default BINARY collation is byte order, the same as Rust's
    // `str` order: inserting in key order keeps every insert at the B-tree tail.
    checks.sort();

    let now = SystemClock.now().as_second();
    let this_hour = now.div_euclid(HOUR) * HOUR;
    let first_hour = this_hour - days * 24 * HOUR;
    let minute_span = i64::try_from(cfg.storage.minute_retention.as_secs())
        .context("minute_retention")?
        .min(days * 24 * HOUR);
    let this_minute = now.div_euclid(MINUTE) * MINUTE;
    let first_minute = this_minute - minute_span;

    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(&path)?;
    // Bulk load without a WAL (the daemon switches it back on at open).
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let mut minute_rows: u64 = 0;
    let mut hour_rows: u64 = 0;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO buckets (service, check_name, resolution, start, valid, good, latency_good)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut minute = first_minute;
        while minute < this_minute {
            for (i, (service, check, per_minute)) in checks.iter().enumerate() {
                let (v, g, l) = minute_counts(i, minute, *per_minute);
                stmt.execute(params![
                    service, check, 0, minute, v as i64, g as i64, l as i64
                ])?;
                minute_rows += 1;
            }
            minute += MINUTE;
        }
        let mut hour = first_hour;
        while hour < this_hour {
            for (i, (service, check, per_minute)) in checks.iter().enumerate() {
                let (mut v, mut g, mut l) = (0, 0, 0);
                for m in 0..60 {
                    let (mv, mg, ml) = minute_counts(i, hour + m * MINUTE, *per_minute);
                    v += mv;
                    g += mg;
                    l += ml;
                }
                stmt.execute(params![
                    service, check, 1, hour, v as i64, g as i64, l as i64
                ])?;
                hour_rows += 1;
            }
            hour += HOUR;
        }
    }
    tx.commit()?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    drop(conn);
    let took = started.elapsed();
    let bytes = std::fs::metadata(&path)?.len();

    // The daemon's start-up path, step by step, so a slow start can be
    // attributed: open + health check, loading the buckets, rebuilding state.
    let cfg = Arc::new(cfg);
    let t = Instant::now();
    let store = sentinel::store::Store::open(&path)?;
    let open_s = t.elapsed().as_secs_f64();
    let bounds = sentinel::engine::load_bounds(&cfg, SystemClock.now());
    let t = Instant::now();
    let rows = store
        .load_service_buckets(bounds.minutes_since, bounds.hours_since)
        .await?;
    let load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut state = sentinel::engine::EngineState::new(Arc::clone(&cfg));
    state.restore(&rows);
    let restore_s = t.elapsed().as_secs_f64();
    let loaded = rows.len();
    drop(rows);
    drop(state);
    store.close().await?;
    println!(
        "checks={} days={days} minute_rows={minute_rows} hour_rows={hour_rows} store_bytes={bytes} \
         generate_s={:.1} open_s={open_s:.2} load_rows={loaded} load_s={load_s:.2} restore_s={restore_s:.2}",
        checks.len(),
        took.as_secs_f64()
    );
    Ok(())
}
