//! Times the status page for many services with 90 days of history: the
//! page model build, the HTML render, and its size; with `--store`, also the
//! SQLite reads behind the history cache on a file holding 90 days of hour
//! buckets for every check (2 checks per service).
//!
//! Usage: `cargo run --release --example render_status [-- SERVICES=500] [--store] [--out FILE]`.
//! Prints `key=value` figures. No network, no probes; the store file lives
//! in a temp dir and is removed at exit.

use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use sentinel::incident::{Incident, ResolvedBy, State, Trigger};
use sentinel::slo::Counts;
use sentinel::status::{self, History, PageInput, ServiceInput, SloInput};
use tokio::time::Instant;

const DAY: i64 = 86_400;

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A deterministic day of one service: 2 checks every 30 s, a bad minute or
/// an outage now and then.
fn day_counts(service: usize, day: i64) -> Counts {
    let valid = 5760;
    let k = (service as i64).wrapping_mul(7_919).wrapping_add(day / DAY);
    let bad = match k.rem_euclid(41) {
        0 => 180,
        1..=4 => 4,
        _ => 0,
    };
    Counts {
        valid,
        good: valid - bad,
        latency_good: valid - bad,
    }
}

fn incident(service: &str, n: usize, start: i64, open: bool) -> Incident {
    let id = format!("inc-{service}-{start}-{n}");
    Incident {
        dedup_key: format!("sentinel/{service}/{id}"),
        id,
        service: service.to_string(),
        severity: if n.is_multiple_of(3) { "P1" } else { "P2" }.into(),
        title: format!("{service} is failing"),
        reason: "check failed 3 times in a row".into(),
        state: if open { State::Open } else { State::Resolved },
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(start),
        opened_at: ts(start + 90),
        acknowledged_at: Some(ts(start + 400)),
        acknowledged_by: Some("oncall".into()),
        ack_note: None,
        restored_at: (!open).then(|| ts(start + 2400)),
        resolved_at: (!open).then(|| ts(start + 2460)),
        resolved_by: (!open).then_some(ResolvedBy::Auto),
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        events_emitted: 3,
        updates: Vec::new(),
    }
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        last = Some(v);
    }
    match last {
        Some(v) => (best, v),
        None => unreachable!("n > 0"),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let services: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(500);
    let with_store = args.iter().any(|a| a == "--store");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();

    // A fixed instant, mid-afternoon UTC.
    let now_s = 1_790_000_000 - 1_790_000_000 % DAY + 15 * 3600;
    let now = ts(now_s);
    let today = now_s - now_s % DAY;
    let names: Vec<String> = (0..services).map(|i| format!("service-{i:04}")).collect();

    let mut rows = Vec::with_capacity(services * 90);
    for (i, name) in names.iter().enumerate() {
        for d in 0..90 {
            let day = today - d * DAY;
            rows.push((name.clone(), day, day_counts(i, day)));
        }
    }
    // One resolved incident per 5 services spread over 90 days, 3 open ones.
    let mut incidents = Vec::new();
    for (i, name) in names.iter().enumerate().step_by(5) {
        incidents.push(incident(
            name,
            i,
            today - (i as i64 % 89) * DAY + 3600,
            false,
        ));
    }
    for (i, name) in names.iter().enumerate().take(3) {
        incidents.push(incident(name, i, now_s - 1800, true));
    }
    let history = History::from_days(rows, incidents.clone());
    let open: Vec<Incident> = incidents
        .iter()
        .filter(|i| i.state == State::Open)
        .cloned()
        .collect();
    let inputs: Vec<ServiceInput> = names
        .iter()
        .enumerate()
        .map(|(i, name)| ServiceInput {
            name: name.clone(),
            description: Some(format!("Service number {i} & friends")),
            checks_up: vec![Some(i >= 3), Some(true)],
            slo: Some(SloInput {
                objective: 0.999,
                window: "30d".into(),
                availability: Some(0.9995),
            }),
            in_maintenance: false,
            open_incident: open
                .iter()
                .find(|o| &o.service == name)
                .map(|o| o.id.clone()),
            alerts_team: true,
        })
        .collect();
    let input = PageInput {
        title: "Benchmark status".into(),
        show_incidents: true,
        now,
        services: inputs,
        snapshot_incidents: &open,
        history: &history,
    };

    let (build, page) = best_of(5, || status::build(&input));
    let (render, html) = best_of(5, || status::html::page(&page));
    let (json_time, json) = best_of(5, || serde_json::to_string(&page).unwrap_or_default());
    let (feed_time, feed) = best_of(5, || status::atom::feed(&page));
    let (gzip_time, gz) = best_of(5, || status::gzip(html.as_bytes()).unwrap_or_default());
    let mut levels = String::new();
    for level in [1u32, 6] {
        use std::io::Write;
        let start = Instant::now();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(html.as_bytes())?;
        let n = enc.finish()?.len();
        levels.push_str(&format!(
            " gzip{level}_ms={:.1} gzip{level}_bytes={n}",
            start.elapsed().as_secs_f64() * 1e3
        ));
    }
    let json_gz = status::gzip(json.as_bytes())?.len();
    println!(
        "services={services} days=90 incidents={} build_ms_best_of_5={:.2} html_ms_best_of_5={:.2} \
         build_plus_html_ms={:.2} html_bytes={} html_gzip_bytes={} gzip_ms_best_of_5={:.2} \
         build_html_gzip_ms={:.2} json_ms={:.2} json_bytes={} json_gzip_bytes={json_gz} feed_ms={:.2} feed_bytes={}{levels}",
        page.past_incidents.len() + page.open_incidents.len(),
        build.as_secs_f64() * 1e3,
        render.as_secs_f64() * 1e3,
        (build + render).as_secs_f64() * 1e3,
        html.len(),
        gz.len(),
        gzip_time.as_secs_f64() * 1e3,
        (build + render + gzip_time).as_secs_f64() * 1e3,
        json_time.as_secs_f64() * 1e3,
        json.len(),
        feed_time.as_secs_f64() * 1e3,
        feed.len(),
    );
    if let Some(path) = out {
        std::fs::write(&path, &html).with_context(|| format!("writing {path}"))?;
    }

    if with_store {
        store_reads(&names, today, now).await?;
    }
    Ok(())
}

/// 90 days of hour buckets for 2 checks per service, bulk-inserted in
/// primary-key order into a file made by the real migrations; then the two
/// reads the history cache makes.
async fn store_reads(names: &[String], today: i64, now: Timestamp) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    let store = sentinel::store::Store::open(&path)?;
    store.close().await?;
    let fill = Instant::now();
    let mut conn = rusqlite::Connection::open(&path)?;
    let tx = conn.transaction()?;
    let mut rows = 0u64;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO buckets (service, check_name, resolution, start, valid, good, latency_good)
             VALUES (?1, ?2, 1, ?3, ?4, ?5, ?5)",
        )?;
        let first = today - 89 * DAY;
        for hour in 0..(90 * 24 + 15) {
            let start = first + hour * 3600;
            for (i, name) in names.iter().enumerate() {
                let c = day_counts(i, start - start % DAY);
                for check in ["a", "b"] {
                    let valid = c.valid / 48;
                    let good = valid - u64::from(c.good < c.valid && hour % 24 == 3);
                    stmt.execute(rusqlite::params![
                        name,
                        check,
                        start,
                        valid as i64,
                        good as i64
                    ])?;
                    rows += 1;
                }
            }
        }
    }
    tx.commit()?;
    drop(conn);
    let fill = fill.elapsed();
    let size = std::fs::metadata(&path)?.len();

    let ro = sentinel::store::ReadOnlyStore::open(&path)?;
    let from = today - 89 * DAY;
    let (full, n_full) = best_of(3, || {
        ro.daily_service_counts(from, now.as_second() + 3600)
            .map(|r| r.len())
            .unwrap_or(0)
    });
    let (recent, n_recent) = best_of(3, || {
        ro.daily_service_counts(today - DAY, now.as_second() + 3600)
            .map(|r| r.len())
            .unwrap_or(0)
    });
    let empty = History::default();
    let (first_load, loaded) = best_of(3, || empty.refreshed(&ro, now));
    let loaded = loaded?;
    let (refresh, _) = best_of(3, || loaded.refreshed(&ro, ts(now.as_second() + 60)));
    println!(
        "store_hour_rows={rows} store_bytes={size} fill_s={:.1} daily_90d_ms={:.1} daily_90d_rows={n_full} \
         daily_2d_ms={:.1} daily_2d_rows={n_recent} history_first_load_ms={:.1} history_minute_refresh_ms={:.1}",
        fill.as_secs_f64(),
        full.as_secs_f64() * 1e3,
        recent.as_secs_f64() * 1e3,
        first_load.as_secs_f64() * 1e3,
        refresh.as_secs_f64() * 1e3,
    );
    Ok(())
}
