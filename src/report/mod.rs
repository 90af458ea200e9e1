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
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

mod doc;
mod text;

use crate::config::{self, Config, ResponseTarget, Slo, SloWindow};
use crate::incident::{Incident, MttxStats, Stage, State, Totals};
use crate::slo::{self, Schedule, ServiceSlo, Window};
use crate::store::{BucketRow, ReadOnlyStore, StoreError};
use doc::{
    CheckDoc, CumulativeDoc, CumulativeSeverityDoc, IncidentsDoc, MttxDoc, ReportDoc, RunsDoc,
    ServiceDoc, SeverityDoc, SloDoc, TargetDoc,
};
use text::render_text;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Includes "no state at PATH — has the daemon run?" for a missing file.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

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
        .map(|s| report_window(s.slo.as_ref(), window).span())
        .fold(slo::LONGEST_BURN_WINDOW, Duration::max);
    let longest = i64::try_from(longest.as_secs()).unwrap_or(i64::MAX);
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
        .map(|s| report_window(s.slo.as_ref(), window).start(now))
        .min()
        .unwrap_or(now)
        .as_second();
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
            window: window.unwrap_or(Window::DEFAULT.into()),
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
        let since = Window::from(counting.window).start(now);
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

/// The window a service is reported over: `--window` when given, else its
/// SLO's, else [`Window::DEFAULT`].
fn report_window(slo: Option<&Slo>, window: Option<SloWindow>) -> Window {
    window.map_or_else(|| Window::of(slo), Window::from)
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
    since: Timestamp,
    now: Timestamp,
) -> IncidentsDoc {
    let all: Vec<&Incident> = incidents.collect();
    let in_window: Vec<&Incident> = all
        .iter()
        .copied()
        .filter(|i| i.opened_at >= since)
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

/// A `--window` that is neither `month` nor a duration in range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowArgError {
    #[error(transparent)]
    Duration(#[from] config::duration::DurationError),
    #[error("{given} is out of range {min}..={max} (or `month`)")]
    OutOfRange {
        given: String,
        min: String,
        max: String,
    },
}

/// Parses `--window`: `month` or a duration like `30d`.
pub fn parse_window(s: &str) -> Result<SloWindow, WindowArgError> {
    if s == "month" {
        return Ok(SloWindow::Month);
    }
    let range = config::limits::SLO_WINDOW;
    match config::duration::parse(s).map_err(WindowArgError::Duration)? {
        d if range.contains(d) => Ok(SloWindow::Rolling(d)),
        _ => Err(WindowArgError::OutOfRange {
            given: s.to_string(),
            min: config::duration::format(range.min),
            max: config::duration::format(range.max),
        }),
    }
}
