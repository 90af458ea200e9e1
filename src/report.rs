//! `sentinel report`: the SLO picture of every service, rebuilt from the
//! stored buckets with the same [`crate::slo`] math the daemon uses, so the
//! report agrees with `/metrics`. Reads the store read-only and works while a
//! daemon is running.
//!
//! Service figures pool every check stored for the service, including checks
//! since removed from the config: their runs happened and spent budget.
//!
//! The incidents section has two parts, matching the two time bases of the
//! `sentinel_incident_*` metrics:
//! - **windowed** (`opened_in_window`, `by_severity`): [`MttxStats`] (the
//!   daemon's own MTTx code) rebuilt from the stored incident bodies opened in
//!   the service's report window, like the summaries' quantiles; "open now"
//!   also counts incidents opened before the window that are still open;
//! - **cumulative** (`cumulative`): the totals the daemon keeps in the store,
//!   exactly the values of `sentinel_incidents_total`,
//!   `sentinel_incident_response_total` and the summaries' `_sum`/`_count`
//!   (every incident ever counted, including those pruned since).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::{self, Config, ResponseTarget, Slo, SloWindow};
use crate::incident::totals::Tally;
use crate::incident::{Attainment, Cumulative, Incident, MttxStats, Stage, State, Summary, Totals};
use crate::slo::{Counts, Figures, Schedule, ServiceSlo, SloFigures};
use crate::store::{BucketRow, ReadOnlyStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Includes "no state at PATH — has the daemon run?" for a missing file.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The window used to count runs of a service that has no SLO.
const DEFAULT_WINDOW: SloWindow = SloWindow::Rolling(Duration::from_secs(30 * 86_400));
/// The longest burn window: hour buckets are always loaded at least this far back.
const LONGEST_BURN: i64 = 3 * 86_400;
/// The longest calendar month.
const LONGEST_MONTH: i64 = 31 * 86_400;
/// One bucket of margin on each load bound, so alignment never cuts a bucket.
const HOUR: i64 = 3600;

/// Builds the report at `now`: text for people, or (with `json`) a stable JSON
/// document. `window` replaces every service's configured SLO window.
pub fn run(
    cfg: &Config,
    store_path: &Path,
    window: Option<SloWindow>,
    json: bool,
    now: Timestamp,
) -> Result<String, ReportError> {
    let store = ReadOnlyStore::open(store_path)?;
    let now_s = now.as_second();
    let longest = cfg
        .services
        .iter()
        .map(|s| {
            window
                .or(s.slo.as_ref().map(|slo| slo.window))
                .unwrap_or(DEFAULT_WINDOW)
        })
        .map(window_span)
        .max()
        .unwrap_or(0)
        .max(LONGEST_BURN);
    let minute_span = i64::try_from(cfg.storage.minute_retention.as_secs()).unwrap_or(i64::MAX);
    let rows = store.load_buckets(
        now_s.saturating_sub(minute_span).saturating_sub(HOUR),
        now_s.saturating_sub(longest).saturating_sub(HOUR),
    )?;
    let mut by_service: BTreeMap<&str, Vec<&BucketRow>> = BTreeMap::new();
    for row in &rows {
        by_service
            .entry(row.service.as_str())
            .or_default()
            .push(row);
    }

    // One read for every service: from the earliest window start asked for
    // (the store adds incidents still open, whenever they opened).
    let earliest = cfg
        .services
        .iter()
        .map(|s| incident_window_start(s.slo.as_ref(), window, now))
        .min()
        .unwrap_or(now_s);
    let (incidents, unreadable) = parse_incidents(store.load_incidents(earliest)?);
    let totals = Totals::restore(
        store
            .load_incident_totals()?
            .into_iter()
            .map(|r| (r.service, r.severity, r.figure, r.count, r.sum_micros)),
        [],
    );

    let mut doc = ReportDoc {
        generated_at: now.to_string(),
        store: store_path.display().to_string(),
        unreadable_incidents: unreadable,
        services: Vec::new(),
    };
    for service in &cfg.services {
        let slo = service.slo.clone().map(|s| Slo {
            window: window.unwrap_or(s.window),
            ..s
        });
        let counting = slo.clone().unwrap_or(Slo {
            objective: 0.999,
            window: window.unwrap_or(DEFAULT_WINDOW),
            latency: None,
        });
        let service_rows = by_service.get(service.name.as_str()).map_or(&[][..], |v| v);
        let schedule = Schedule::of(service, &cfg.maintenance);
        let pooled = replay(&counting, schedule, service_rows.iter().copied());
        let figures = pooled.figures(now);

        let mut check_names: Vec<(String, bool)> = service
            .checks
            .iter()
            .map(|c| (c.name.clone(), true))
            .collect();
        let mut gone: Vec<String> = service_rows
            .iter()
            .map(|r| r.check.clone())
            .filter(|c| !service.checks.iter().any(|k| &k.name == c))
            .collect();
        gone.dedup();
        check_names.extend(gone.into_iter().map(|c| (c, false)));
        let checks = check_names
            .into_iter()
            .map(|(name, in_config)| {
                // Only the counts are read: no schedule needed.
                let one = replay(
                    &counting,
                    Schedule::default(),
                    service_rows.iter().copied().filter(|r| r.check == name),
                );
                let c = one.figures(now).counts;
                CheckDoc {
                    check: name,
                    in_config,
                    runs: RunsDoc::from(c),
                }
            })
            .collect();
        let since = window_start(counting.window, now);
        let of_service = incidents.iter().filter(|i| i.service == service.name);
        doc.services.push(ServiceDoc {
            service: service.name.clone(),
            window: counting.window.label(),
            window_seconds: figures.window_seconds,
            availability: slo
                .as_ref()
                .map(|_| SloDoc::new(&figures, &figures.availability)),
            latency: figures.latency.as_ref().map(|l| SloDoc::new(&figures, l)),
            runs: RunsDoc::from(figures.counts),
            checks,
            incidents: IncidentsDoc {
                cumulative: cumulative_doc(&service.name, &totals),
                ..incidents_doc(&service.name, &cfg.response_targets, of_service, since, now)
            },
        });
    }
    if json {
        let mut out = serde_json::to_string_pretty(&doc)?;
        out.push('\n');
        Ok(out)
    } else {
        Ok(render_text(&doc))
    }
}

/// Feeds stored buckets into a fresh [`ServiceSlo`].
fn replay<'a>(
    slo: &Slo,
    schedule: Schedule,
    rows: impl Iterator<Item = &'a BucketRow>,
) -> ServiceSlo {
    let mut s = ServiceSlo::new(slo, schedule);
    for r in rows {
        s.add_bucket(r.resolution, r.start, r.counts);
    }
    s
}

/// How far back a window can reach, in seconds.
fn window_span(w: SloWindow) -> i64 {
    match w {
        SloWindow::Rolling(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        SloWindow::Month => LONGEST_MONTH,
    }
}

/// Where window `w` starts at `now`, unix seconds (the UTC month's start for `month`).
fn window_start(w: SloWindow, now: Timestamp) -> i64 {
    match w {
        SloWindow::Rolling(_) => now.as_second().saturating_sub(window_span(w)),
        SloWindow::Month => {
            let dt = jiff::tz::TimeZone::UTC.to_datetime(now);
            dt.first_of_month()
                .start_of_day()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_or(now.as_second(), |z| z.timestamp().as_second())
        }
    }
}

/// Where the incident window of a service starts: its report window's start.
fn incident_window_start(slo: Option<&Slo>, window: Option<SloWindow>, now: Timestamp) -> i64 {
    let w = window.or(slo.map(|s| s.window)).unwrap_or(DEFAULT_WINDOW);
    window_start(w, now)
}

/// Decodes stored incident bodies. A body this version cannot read (written
/// by a newer sentinel, or damaged) is counted rather than failing the whole
/// report: the SLO figures are still worth printing.
fn parse_incidents(rows: Vec<(String, String)>) -> (Vec<Incident>, u64) {
    let mut out = Vec::with_capacity(rows.len());
    let mut unreadable = 0;
    for (id, body) in rows {
        match Incident::from_json(&body) {
            Ok(inc) => out.push(inc),
            Err(e) => {
                tracing::warn!(incident = %id, error = %e, "skipping an unreadable incident");
                unreadable += 1;
            }
        }
    }
    (out, unreadable)
}

/// The incidents section of one service: incidents opened at or after
/// `since` feed the counts by severity, MTTx and attainment; `open` counts
/// every incident still open.
fn incidents_doc<'a>(
    service: &str,
    targets: &BTreeMap<String, ResponseTarget>,
    incidents: impl Iterator<Item = &'a Incident>,
    since: i64,
    now: Timestamp,
) -> IncidentsDoc {
    let all: Vec<&Incident> = incidents.collect();
    let in_window: Vec<&Incident> = all
        .iter()
        .copied()
        .filter(|i| i.opened_at.as_second() >= since)
        .collect();
    let open: Vec<&Incident> = all
        .iter()
        .copied()
        .filter(|i| i.state == State::Open)
        .collect();
    let stats = MttxStats::rebuild(targets.clone(), in_window.iter().map(|&i| i.clone()));
    let summaries = stats.summaries();
    let responses = stats.response_counts(now);
    let severities: std::collections::BTreeSet<&str> = in_window
        .iter()
        .chain(open.iter())
        .map(|i| i.severity.as_str())
        .collect();
    let by_severity = severities
        .into_iter()
        .map(|sev| {
            let of = |i: &&&Incident| i.severity == sev;
            let summary = summaries.get(&(service.to_string(), sev.to_string()));
            let target = |stage: Stage| {
                targets.get(sev).map(|t| {
                    let a = responses
                        .get(&(service.to_string(), sev.to_string(), stage))
                        .copied()
                        .unwrap_or_default();
                    let target = match stage {
                        Stage::Acknowledge => t.acknowledge,
                        Stage::Restore => t.restore,
                    };
                    TargetDoc::new(target.as_secs_f64(), a)
                })
            };
            SeverityDoc {
                severity: sev.to_string(),
                opened: in_window.iter().filter(of).count() as u64,
                open: open.iter().filter(of).count() as u64,
                mttd: MttxDoc::from(summary.map(|s| &s.mttd)),
                mtta: MttxDoc::from(summary.map(|s| &s.mtta)),
                mttr: MttxDoc::from(summary.map(|s| &s.mttr)),
                acknowledge: target(Stage::Acknowledge),
                restore: target(Stage::Restore),
            }
        })
        .collect();
    IncidentsDoc {
        opened_in_window: in_window.len() as u64,
        open: open.len() as u64,
        by_severity,
        cumulative: CumulativeDoc::default(),
    }
}

/// The cumulative part of a service's incidents section, by severity.
fn cumulative_doc(service: &str, totals: &Totals) -> CumulativeDoc {
    let by_severity: Vec<CumulativeSeverityDoc> = totals
        .by_key()
        .iter()
        .filter(|((svc, _), _)| svc == service)
        .map(|((_, sev), c)| CumulativeSeverityDoc::new(sev, c))
        .collect();
    CumulativeDoc {
        opened: by_severity.iter().map(|s| s.opened).sum(),
        by_severity,
    }
}

/// Rounds away float noise (`1 − 0.999` is not exactly `0.001`) so documents
/// carry `-2.0`, not `-1.9999999999999973`.
fn tidy(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

#[derive(Debug, Serialize)]
struct ReportDoc {
    /// RFC 3339, the `now` the figures are for.
    generated_at: String,
    store: String,
    /// Stored incidents this version could not decode (left out of every figure).
    unreadable_incidents: u64,
    services: Vec<ServiceDoc>,
}

#[derive(Debug, Serialize)]
struct ServiceDoc {
    service: String,
    /// `30d`, `month`, ...: the configured window or `--window`.
    window: String,
    window_seconds: f64,
    /// Absent (null) when the service has no SLO configured.
    availability: Option<SloDoc>,
    latency: Option<SloDoc>,
    runs: RunsDoc,
    checks: Vec<CheckDoc>,
    incidents: IncidentsDoc,
}

#[derive(Debug, Serialize)]
struct SloDoc {
    objective: f64,
    /// Null with no valid runs in the window.
    sli: Option<f64>,
    /// How much of the window is real data: min(1, valid / expected).
    coverage: f64,
    /// Valid runs the checks' schedule produces over the whole window
    /// (maintenance excluded); budgets divide by max(valid, expected).
    expected_runs: f64,
    error_budget_remaining_ratio: f64,
    error_budget_remaining_seconds: f64,
    error_budget_remaining_minutes: f64,
    burn_rates: Vec<BurnDoc>,
}

#[derive(Debug, Serialize)]
struct BurnDoc {
    window: &'static str,
    burn_rate: f64,
    sli: Option<f64>,
    coverage: f64,
    valid: u64,
    expected_runs: f64,
}

#[derive(Debug, Serialize)]
struct RunsDoc {
    valid: u64,
    good: u64,
    bad: u64,
}

#[derive(Debug, Serialize)]
struct CheckDoc {
    check: String,
    /// False for a check that has stored runs but is no longer configured.
    in_config: bool,
    runs: RunsDoc,
}

#[derive(Debug, Serialize)]
struct IncidentsDoc {
    opened_in_window: u64,
    /// Open now, including incidents opened before the window.
    open: u64,
    /// Windowed: severities with an incident in the window or open now, by name.
    by_severity: Vec<SeverityDoc>,
    /// Every incident the daemon counted: the `/metrics` counters.
    cumulative: CumulativeDoc,
}

/// The values of `sentinel_incidents_total`, the MTTx `_sum`/`_count` and
/// `sentinel_incident_response_total` for one service.
#[derive(Debug, Default, Serialize)]
struct CumulativeDoc {
    opened: u64,
    /// Severities with anything counted, by name.
    by_severity: Vec<CumulativeSeverityDoc>,
}

#[derive(Debug, Serialize)]
struct CumulativeSeverityDoc {
    severity: String,
    opened: u64,
    mttd: TallyDoc,
    mtta: TallyDoc,
    mttr: TallyDoc,
    acknowledge: CountedDoc,
    restore: CountedDoc,
}

/// A summary's `_count`, `_sum` and their exact mean.
#[derive(Debug, Serialize)]
struct TallyDoc {
    count: u64,
    sum_seconds: f64,
    mean_seconds: Option<f64>,
}

/// Met / missed from `sentinel_incident_response_total`.
#[derive(Debug, Serialize)]
struct CountedDoc {
    met: u64,
    missed: u64,
    attainment: Option<f64>,
}

impl CumulativeSeverityDoc {
    fn new(severity: &str, c: &Cumulative) -> Self {
        let tally = |t: Tally| TallyDoc {
            count: t.count,
            sum_seconds: tidy(t.sum_seconds()),
            mean_seconds: t.mean_seconds().map(tidy),
        };
        let counted = |a: Attainment| {
            let n = a.met + a.missed;
            CountedDoc {
                met: a.met,
                missed: a.missed,
                attainment: (n > 0).then(|| tidy(a.met as f64 / n as f64)),
            }
        };
        CumulativeSeverityDoc {
            severity: severity.to_string(),
            opened: c.opened(),
            mttd: tally(c.mttd),
            mtta: tally(c.mtta),
            mttr: tally(c.mttr),
            acknowledge: counted(c.acknowledge),
            restore: counted(c.restore),
        }
    }
}

#[derive(Debug, Serialize)]
struct SeverityDoc {
    severity: String,
    opened: u64,
    open: u64,
    mttd: MttxDoc,
    /// Acknowledged incidents only.
    mtta: MttxDoc,
    /// Resolved incidents only.
    mttr: MttxDoc,
    /// Null when `response_targets` has no entry for the severity.
    acknowledge: Option<TargetDoc>,
    restore: Option<TargetDoc>,
}

/// Mean is exact; p50/p90 come from the same HdrHistogram of whole seconds
/// as the `sentinel_incident_mtt*_seconds` summaries. Null with no samples.
#[derive(Debug, Serialize)]
struct MttxDoc {
    count: u64,
    mean_seconds: Option<f64>,
    p50_seconds: Option<f64>,
    p90_seconds: Option<f64>,
}

/// A stage counts once it completed or its target passed.
#[derive(Debug, Serialize)]
struct TargetDoc {
    target_seconds: f64,
    met: u64,
    missed: u64,
    /// met / (met + missed); null while nothing has counted yet.
    attainment: Option<f64>,
}

impl From<Option<&Summary>> for MttxDoc {
    fn from(s: Option<&Summary>) -> Self {
        let q = |want: f64| {
            s.and_then(|s| {
                s.quantiles
                    .iter()
                    .find(|(q, _)| (q - want).abs() < 1e-9)
                    .map(|&(_, v)| v)
            })
        };
        MttxDoc {
            count: s.map_or(0, |s| s.count),
            mean_seconds: s.and_then(Summary::mean_seconds).map(tidy),
            p50_seconds: q(0.5),
            p90_seconds: q(0.9),
        }
    }
}

impl TargetDoc {
    fn new(target_seconds: f64, a: Attainment) -> Self {
        let counted = a.met + a.missed;
        TargetDoc {
            target_seconds,
            met: a.met,
            missed: a.missed,
            attainment: (counted > 0).then(|| tidy(a.met as f64 / counted as f64)),
        }
    }
}

impl From<Counts> for RunsDoc {
    fn from(c: Counts) -> Self {
        RunsDoc {
            valid: c.valid,
            good: c.good,
            bad: c.bad(),
        }
    }
}

impl SloDoc {
    /// One SLO of `all` (coverage and expected runs are the service's, shared by both SLOs).
    fn new(all: &Figures, f: &SloFigures) -> Self {
        SloDoc {
            objective: tidy(f.objective),
            sli: f.sli.map(tidy),
            coverage: tidy(all.coverage),
            expected_runs: tidy(all.expected),
            error_budget_remaining_ratio: tidy(f.error_budget_remaining_ratio),
            error_budget_remaining_seconds: tidy(f.error_budget_remaining_seconds),
            error_budget_remaining_minutes: tidy(f.error_budget_remaining_seconds / 60.0),
            burn_rates: f
                .burn
                .iter()
                .map(|b| BurnDoc {
                    window: b.window,
                    burn_rate: tidy(b.burn_rate),
                    sli: b.sli.map(tidy),
                    coverage: tidy(b.coverage),
                    valid: b.counts.valid,
                    expected_runs: tidy(b.expected),
                })
                .collect(),
        }
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{:.3}%", v * 100.0))
}

fn render_text(doc: &ReportDoc) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "sentinel report at {} from {}",
        doc.generated_at, doc.store
    );
    for s in &doc.services {
        let _ = writeln!(out, "\n{} (window {})", s.service, s.window);
        match &s.availability {
            None => {
                let _ = writeln!(out, "  no SLO configured");
            }
            Some(a) => render_slo(&mut out, "availability", a),
        }
        if let Some(l) = &s.latency {
            render_slo(&mut out, "latency", l);
        }
        if let Some(a) = &s.availability {
            // The same for every SLO of the service: shown once.
            let cov: Vec<String> = a
                .burn_rates
                .iter()
                .map(|b| format!("{} {}", b.window, coverage(b.coverage)))
                .collect();
            let _ = writeln!(out, "  {:<12}  {}", "coverage", cov.join("  "));
        }
        let _ = writeln!(
            out,
            "  runs          valid {}  good {}  bad {}",
            s.runs.valid, s.runs.good, s.runs.bad
        );
        for c in &s.checks {
            let note = if c.in_config { "" } else { "  (not in config)" };
            let _ = writeln!(
                out,
                "    {:<12}  valid {}  good {}  bad {}{}",
                c.check, c.runs.valid, c.runs.good, c.runs.bad, note
            );
        }
        let _ = writeln!(
            out,
            "  incidents     opened in window {}  open now {}",
            s.incidents.opened_in_window, s.incidents.open
        );
        for sev in &s.incidents.by_severity {
            render_severity(&mut out, sev);
        }
        let c = &s.incidents.cumulative;
        let _ = writeln!(
            out,
            "  all time      opened {}  (cumulative: the /metrics _total, _sum and _count)",
            c.opened
        );
        for sev in &c.by_severity {
            render_cumulative(&mut out, sev);
        }
    }
    if doc.unreadable_incidents > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {} stored incident(s) could not be read and are left out",
            doc.unreadable_incidents
        );
    }
    out
}

fn render_severity(out: &mut String, s: &SeverityDoc) {
    let _ = writeln!(
        out,
        "    {:<12}  opened {}  open {}",
        s.severity, s.opened, s.open
    );
    for (name, m) in [("MTTD", &s.mttd), ("MTTA", &s.mtta), ("MTTR", &s.mttr)] {
        let _ = writeln!(
            out,
            "      {name:<11}  n {}  mean {}  p50 {}  p90 {}",
            m.count,
            human(m.mean_seconds),
            human(m.p50_seconds),
            human(m.p90_seconds)
        );
    }
    for (name, t) in [("acknowledge", &s.acknowledge), ("restore", &s.restore)] {
        match t {
            None => {
                let _ = writeln!(out, "      {name:<11}  no target");
            }
            Some(t) => {
                let _ = writeln!(
                    out,
                    "      {name:<11}  target {}  met {}  missed {}  attainment {}",
                    human(Some(t.target_seconds)),
                    t.met,
                    t.missed,
                    percent(t.attainment)
                );
            }
        }
    }
}

fn render_cumulative(out: &mut String, s: &CumulativeSeverityDoc) {
    let _ = writeln!(out, "    {:<12}  opened {}", s.severity, s.opened);
    for (name, t) in [("MTTD", &s.mttd), ("MTTA", &s.mtta), ("MTTR", &s.mttr)] {
        let _ = writeln!(
            out,
            "      {name:<11}  n {}  mean {}",
            t.count,
            human(t.mean_seconds)
        );
    }
    for (name, c) in [("acknowledge", &s.acknowledge), ("restore", &s.restore)] {
        let _ = writeln!(
            out,
            "      {name:<11}  met {}  missed {}  attainment {}",
            c.met,
            c.missed,
            percent(c.attainment)
        );
    }
}

/// Seconds as `45s`, `12m05s` or `2h03m00s` (rounded to the second).
fn human(secs: Option<f64>) -> String {
    let Some(secs) = secs else {
        return "n/a".to_string();
    };
    let sign = if secs < 0.0 { "-" } else { "" };
    let t = secs.abs().round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{sign}{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{sign}{m}m{s:02}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// A coverage ratio as a percentage with one decimal (`100.0%`, `0.2%`);
/// never rounded to a bound it has not reached (`<0.1%`, `>99.9%`).
fn coverage(x: f64) -> String {
    if x > 0.0 && x < 0.0005 {
        "<0.1%".to_string()
    } else if (0.9995..1.0).contains(&x) {
        ">99.9%".to_string()
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

fn render_slo(out: &mut String, name: &str, f: &SloDoc) {
    let _ = writeln!(
        out,
        "  {:<12}  objective {}  SLI {} (coverage {})  budget left {:.3} ({:.1} min)",
        name,
        percent(Some(f.objective)),
        percent(f.sli),
        coverage(f.coverage),
        f.error_budget_remaining_ratio,
        f.error_budget_remaining_minutes
    );
    let burns: Vec<String> = f
        .burn_rates
        .iter()
        .map(|b| format!("{} {:.2}", b.window, b.burn_rate))
        .collect();
    let _ = writeln!(out, "  {:<12}  {}", "burn rate", burns.join("  "));
}

/// Parses `--window`: `month` or a duration like `30d`.
pub fn parse_window(s: &str) -> Result<SloWindow, String> {
    if s == "month" {
        return Ok(SloWindow::Month);
    }
    let range = config::limits::SLO_WINDOW;
    match config::duration::parse(s).map_err(|e| e.to_string())? {
        d if range.contains(d) => Ok(SloWindow::Rolling(d)),
        _ => Err(format!(
            "{s} is out of range {}..={} (or `month`)",
            config::duration::format(range.min),
            config::duration::format(range.max)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::coverage;

    #[test]
    fn coverage_is_never_rounded_to_a_bound_it_has_not_reached() {
        for (x, want) in [
            (0.0, "0.0%"),
            (0.000_46, "<0.1%"),
            (0.000_5, "0.1%"),
            (0.348_189, "34.8%"),
            (0.999_4, "99.9%"),
            (0.999_6, ">99.9%"),
            (1.0, "100.0%"),
        ] {
            assert_eq!(coverage(x), want, "{x}");
        }
    }
}
