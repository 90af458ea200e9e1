//! The report document: one serde type per part, shared by the JSON output
//! and the text rendering.

use serde::Serialize;

use crate::incident::totals::Tally;
use crate::incident::{Attainment, Cumulative, Summary};
use crate::slo::{Counts, Figures, SloFigures};

/// Rounds away float noise (`1 − 0.999` is not exactly `0.001`) so documents
/// carry `-2.0`, not `-1.9999999999999973`.
pub(super) fn tidy(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

#[derive(Debug, Serialize)]
pub(super) struct ReportDoc {
    /// RFC 3339, the `now` the figures are for.
    pub generated_at: String,
    pub store: String,
    /// Stored incidents this version could not decode (left out of every figure).
    pub unreadable_incidents: u64,
    pub services: Vec<ServiceDoc>,
}

#[derive(Debug, Serialize)]
pub(super) struct ServiceDoc {
    pub service: String,
    /// `30d`, `month`, ...: the configured window or `--window`.
    pub window: String,
    pub window_seconds: f64,
    /// Absent (null) when the service has no SLO configured.
    pub availability: Option<SloDoc>,
    pub latency: Option<SloDoc>,
    pub runs: RunsDoc,
    pub checks: Vec<CheckDoc>,
    pub incidents: IncidentsDoc,
}

#[derive(Debug, Serialize)]
pub(super) struct SloDoc {
    pub objective: f64,
    /// Null with no valid runs in the window.
    pub sli: Option<f64>,
    /// How much of the window is real data: min(1, valid / expected).
    pub coverage: f64,
    /// Valid runs the checks' schedule produces over the whole window
    /// (maintenance excluded); budgets divide by max(valid, expected).
    pub expected_runs: f64,
    pub error_budget_remaining_ratio: f64,
    pub error_budget_remaining_seconds: f64,
    pub error_budget_remaining_minutes: f64,
    pub burn_rates: Vec<BurnDoc>,
}

#[derive(Debug, Serialize)]
pub(super) struct BurnDoc {
    pub window: &'static str,
    pub burn_rate: f64,
    pub sli: Option<f64>,
    pub coverage: f64,
    pub valid: u64,
    pub expected_runs: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct RunsDoc {
    pub valid: u64,
    pub good: u64,
    pub bad: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct CheckDoc {
    pub check: String,
    /// False for a check that has stored runs but is no longer configured.
    pub in_config: bool,
    pub runs: RunsDoc,
}

#[derive(Debug, Serialize)]
pub(super) struct IncidentsDoc {
    pub opened_in_window: u64,
    /// Open now, including incidents opened before the window.
    pub open: u64,
    /// Windowed: severities with an incident in the window or open now, by name.
    pub by_severity: Vec<SeverityDoc>,
    /// Every incident the daemon counted: the `/metrics` counters.
    pub cumulative: CumulativeDoc,
}

/// The values of `sentinel_incidents_total`, the MTTx `_sum`/`_count` and
/// `sentinel_incident_response_total` for one service.
#[derive(Debug, Default, Serialize)]
pub(super) struct CumulativeDoc {
    pub opened: u64,
    /// Severities with anything counted, by name.
    pub by_severity: Vec<CumulativeSeverityDoc>,
}

#[derive(Debug, Serialize)]
pub(super) struct CumulativeSeverityDoc {
    pub severity: String,
    pub opened: u64,
    pub mttd: TallyDoc,
    pub mtta: TallyDoc,
    pub mttr: TallyDoc,
    pub acknowledge: CountedDoc,
    pub restore: CountedDoc,
    /// Incidents escalated to the `escalate` contacts because the
    /// acknowledge target passed (`sentinel_incident_escalations_total`).
    pub escalated: u64,
}

/// A summary's `_count`, `_sum` and their exact mean.
#[derive(Debug, Serialize)]
pub(super) struct TallyDoc {
    pub count: u64,
    pub sum_seconds: f64,
    pub mean_seconds: Option<f64>,
}

/// Met / missed from `sentinel_incident_response_total`.
#[derive(Debug, Serialize)]
pub(super) struct CountedDoc {
    pub met: u64,
    pub missed: u64,
    pub attainment: Option<f64>,
}

impl CumulativeSeverityDoc {
    pub(super) fn new(severity: &str, c: &Cumulative) -> Self {
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
            escalated: c.escalations,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct SeverityDoc {
    pub severity: String,
    pub opened: u64,
    pub open: u64,
    pub mttd: MttxDoc,
    /// Acknowledged incidents only.
    pub mtta: MttxDoc,
    /// Resolved incidents only.
    pub mttr: MttxDoc,
    /// Null when `response_targets` has no entry for the severity.
    pub acknowledge: Option<TargetDoc>,
    pub restore: Option<TargetDoc>,
}

/// Mean is exact; p50/p90 come from the same HdrHistogram of whole seconds
/// as the `sentinel_incident_mtt*_seconds` summaries. Null with no samples.
#[derive(Debug, Serialize)]
pub(super) struct MttxDoc {
    pub count: u64,
    pub mean_seconds: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// A stage counts once it completed or its target passed.
#[derive(Debug, Serialize)]
pub(super) struct TargetDoc {
    pub target_seconds: f64,
    pub met: u64,
    pub missed: u64,
    /// met / (met + missed); null while nothing has counted yet.
    pub attainment: Option<f64>,
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
    pub(super) fn new(target_seconds: f64, a: Attainment) -> Self {
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
    pub(super) fn new(all: &Figures, f: &SloFigures) -> Self {
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
