//! MTTD / MTTA / MTTR and response-target attainment over a window of incidents.
//!
//! The statistics are a pure function of the incidents in the SLO window, so
//! we keep those incidents (few: one open at a time per service) and derive
//! the HdrHistograms on demand. That makes a rebuild from the store at start
//! and the live figures identical by construction, and an escalation simply
//! moves an incident's samples to its new severity.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};

use super::{Incident, State};
use crate::config::ResponseTarget;

/// Quantiles exported for every summary.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// A response stage with a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Acknowledge,
    Restore,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Acknowledge => "acknowledge",
            Stage::Restore => "restore",
        }
    }
}

/// One summary: exact sum and count, quantiles from a 3-significant-figure
/// HdrHistogram of whole seconds (exact up to 2048 s, 0.1% beyond; response
/// times finer than a second do not matter here).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: u64,
    /// Exact, in seconds (not derived from the histogram).
    pub sum_seconds: f64,
    /// `(quantile, seconds)` for each of [`QUANTILES`]; empty when `count` is 0.
    pub quantiles: Vec<(f64, f64)>,
}

impl Summary {
    pub fn mean_seconds(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_seconds / self.count as f64)
    }

    fn from_samples(samples: &[SignedDuration]) -> Summary {
        let mut sum = 0.0;
        let mut quantiles = Vec::new();
        // Auto-resizing, so no upper bound to outgrow; 3 significant figures.
        if let Ok(mut h) = Histogram::<u64>::new(3) {
            for s in samples {
                sum += s.as_secs_f64();
                let secs = s.as_secs_f64().round().max(0.0) as u64;
                // Recording into an auto-resizing histogram only fails on
                // allocation limits; a lost sample only skews a quantile.
                let _ = h.record(secs);
            }
            if !samples.is_empty() {
                quantiles = QUANTILES
                    .iter()
                    .map(|&q| (q, h.value_at_quantile(q) as f64))
                    .collect();
            }
        }
        Summary {
            count: samples.len() as u64,
            sum_seconds: sum,
            quantiles,
        }
    }
}

/// MTTD, MTTA and MTTR of one (service, severity).
#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary {
    pub mttd: Summary,
    pub mtta: Summary,
    pub mttr: Summary,
}

/// Met / missed counts of one (service, severity, stage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attainment {
    pub met: u64,
    pub missed: u64,
}

/// Incidents of the SLO window and the figures derived from them.
#[derive(Debug, Clone, Default)]
pub struct MttxStats {
    targets: BTreeMap<String, ResponseTarget>,
    incidents: BTreeMap<String, Incident>,
}

/// How a stage of one incident stands against its target at `now`.
pub(super) fn verdict(
    inc: &Incident,
    stage: Stage,
    target: Duration,
    now: Timestamp,
) -> Option<bool> {
    let target = SignedDuration::try_from(target).unwrap_or(SignedDuration::MAX);
    let (start, done) = match stage {
        Stage::Acknowledge => (inc.opened_at, inc.acknowledged_at),
        Stage::Restore => (
            inc.impact_started_at,
            (inc.state == State::Resolved)
                .then_some(inc.restored_at.or(inc.resolved_at))
                .flatten(),
        ),
    };
    let deadline = start.checked_add(target).unwrap_or(Timestamp::MAX);
    // Restored in time but not resolved yet (the checks still have to show
    // `resolve_after` good runs): a relapse would clear `restored_at`, so
    // the verdict waits for the resolution instead of calling it missed and
    // then met. A verdict, once given, never changes.
    let restored_in_time = stage == Stage::Restore
        && inc.state == State::Open
        && inc.restored_at.is_some_and(|r| r <= deadline);
    match done {
        Some(t) => Some(t <= deadline),
        // Not done yet: missed once the deadline passed (also for an
        // incident resolved without anyone acknowledging it).
        None if now > deadline && !restored_in_time => Some(false),
        None => None,
    }
}

impl MttxStats {
    pub fn new(targets: BTreeMap<String, ResponseTarget>) -> Self {
        Self {
            targets,
            ..Self::default()
        }
    }

    /// Rebuild from the incidents the store holds for the SLO window.
    pub fn rebuild(
        targets: BTreeMap<String, ResponseTarget>,
        incidents: impl IntoIterator<Item = Incident>,
    ) -> Self {
        let mut s = Self::new(targets);
        for inc in incidents {
            s.upsert(&inc);
        }
        s
    }

    /// After a reload.
    pub fn set_targets(&mut self, targets: BTreeMap<String, ResponseTarget>) {
        self.targets = targets;
    }

    /// Record an incident's latest state (from every [`super::Change`]).
    pub fn upsert(&mut self, inc: &Incident) {
        self.incidents.insert(inc.id.clone(), inc.clone());
    }

    /// Forget resolved incidents opened before `window_start`. Open ones
    /// stay whatever their age: readers list them from here.
    pub fn prune(&mut self, window_start: Timestamp) {
        self.incidents
            .retain(|_, i| i.opened_at >= window_start || i.state == super::State::Open);
    }

    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values()
    }

    /// MTTD / MTTA / MTTR per (service, severity), over incidents in the window.
    pub fn summaries(&self) -> BTreeMap<(String, String), StageSummary> {
        type Samples = (
            Vec<SignedDuration>,
            Vec<SignedDuration>,
            Vec<SignedDuration>,
        );
        let mut by: BTreeMap<(String, String), Samples> = BTreeMap::new();
        for inc in self.incidents.values() {
            let e = by
                .entry((inc.service.clone(), inc.severity.clone()))
                .or_default();
            e.0.push(inc.time_to_detect());
            if let Some(d) = inc.time_to_acknowledge() {
                e.1.push(d);
            }
            if let Some(d) = inc.time_to_restore() {
                e.2.push(d);
            }
        }
        by.into_iter()
            .map(|(k, (d, a, r))| {
                let s = StageSummary {
                    mttd: Summary::from_samples(&d),
                    mtta: Summary::from_samples(&a),
                    mttr: Summary::from_samples(&r),
                };
                (k, s)
            })
            .collect()
    }

    /// `(open, total)` incidents per (service, severity) in the window.
    pub fn counts(&self) -> BTreeMap<(String, String), (u64, u64)> {
        let mut by: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for inc in self.incidents.values() {
            let e = by
                .entry((inc.service.clone(), inc.severity.clone()))
                .or_default();
            e.0 += u64::from(inc.state == State::Open);
            e.1 += 1;
        }
        by
    }

    /// Met / missed per (service, severity, stage): a stage counts once it
    /// completed or its target passed. Incidents of severities without a
    /// target count nowhere.
    pub fn response_counts(&self, now: Timestamp) -> BTreeMap<(String, String, Stage), Attainment> {
        let mut by: BTreeMap<(String, String, Stage), Attainment> = BTreeMap::new();
        for inc in self.incidents.values() {
            let Some(t) = self.targets.get(&inc.severity) else {
                continue;
            };
            for (stage, target) in [
                (Stage::Acknowledge, t.acknowledge),
                (Stage::Restore, t.restore),
            ] {
                if let Some(met) = verdict(inc, stage, target, now) {
                    let e = by
                        .entry((inc.service.clone(), inc.severity.clone(), stage))
                        .or_default();
                    if met {
                        e.met += 1;
                    } else {
                        e.missed += 1;
                    }
                }
            }
        }
        by
    }
}
