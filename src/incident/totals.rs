//! Cumulative incident figures: `sentinel_incidents_total`, the `_sum` and
//! `_count` of the MTTD/MTTA/MTTR summaries and
//! `sentinel_incident_response_total`.
//!
//! Prometheus reads any decrease of a counter (and of a summary's `_sum` or
//! `_count`) as a process restart and `rate()`/`increase()` then add the
//! whole value again. So these figures follow the summary convention: the
//! quantiles cover the SLO window ([`super::MttxStats`]), while sum and count
//! are **cumulative** over every incident the store ever held, and never
//! decrease: not when an incident leaves the window, not across a restart,
//! not when the store prunes old incidents.
//!
//! Each incident makes up to five *entries*, each exactly once, at the moment
//! its value is final, and never changes them afterwards:
//!
//! | entry | when | adds to |
//! |---|---|---|
//! | detect | the incident exists (it opened) | incidents opened, MTTD |
//! | acknowledge | `acknowledged_at` is set (the first ack) | MTTA |
//! | restore | the incident is resolved (resolution is final) | MTTR |
//! | acknowledge target | acknowledged, or the target passed unacknowledged | met / missed |
//! | restore target | resolved, or the target passed unresolved | met / missed |
//!
//! An entry counts under the incident's severity *at the time it is made*
//! (an escalation later does not move it; the windowed quantiles follow the
//! current severity) and a verdict uses the target of that severity at that
//! time (a reload later does not re-judge it). Relapses, updates and
//! escalations make no entry. Durations are clamped at zero (a wall clock
//! stepped backwards must not shrink a sum) and kept in whole microseconds,
//! so a sum read back from the store is bit-for-bit the sum that was
//! rendered before.
//!
//! Why persisted totals instead of recomputing them at start: the store
//! prunes resolved incidents after `storage.retention`, so totals rebuilt
//! from the remaining rows would drop. The store keeps the totals in their
//! own table and, per incident row, the set of entries it made
//! ([`Entered`]); an entry is added to the totals in the same transaction
//! that writes the incident, and only if the row does not have it yet. A
//! crash therefore loses an entry together with the change that made it
//! (the change is made again), and never counts one twice. This module
//! decides what is due; the engine carries it to the store.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

use super::Incident;
use super::mttx::{Attainment, Stage, verdict};
use crate::config::ResponseTarget;

/// Bit set of the entries an incident has made (stored with its row).
pub type Entered = u32;

/// Every entry made: the incident makes no more.
pub const ENTERED_ALL: Entered = 31;

/// One kind of entry; its value is the bit in [`Entered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    Detect = 1,
    Acknowledge = 2,
    Restore = 4,
    AcknowledgeTarget = 8,
    RestoreTarget = 16,
}

impl EntryKind {
    pub const ALL: [EntryKind; 5] = [
        EntryKind::Detect,
        EntryKind::Acknowledge,
        EntryKind::Restore,
        EntryKind::AcknowledgeTarget,
        EntryKind::RestoreTarget,
    ];

    pub fn bit(self) -> Entered {
        self as Entered
    }
}

/// What an entry adds to: the row of the totals table it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    /// Count = incidents opened, sum = MTTD.
    Detect,
    /// MTTA.
    Acknowledge,
    /// MTTR.
    Restore,
    AcknowledgeMet,
    AcknowledgeMissed,
    RestoreMet,
    RestoreMissed,
}

impl Figure {
    pub const ALL: [Figure; 7] = [
        Figure::Detect,
        Figure::Acknowledge,
        Figure::Restore,
        Figure::AcknowledgeMet,
        Figure::AcknowledgeMissed,
        Figure::RestoreMet,
        Figure::RestoreMissed,
    ];

    /// The store's name for it. Stored in files: never rename one.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Detect => "detect",
            Figure::Acknowledge => "acknowledge",
            Figure::Restore => "restore",
            Figure::AcknowledgeMet => "acknowledge_met",
            Figure::AcknowledgeMissed => "acknowledge_missed",
            Figure::RestoreMet => "restore_met",
            Figure::RestoreMissed => "restore_missed",
        }
    }

    pub fn parse(s: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One contribution of one incident: add 1 to the count and `micros` to the
/// sum of (`service`, `severity`, `figure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub service: String,
    pub severity: String,
    pub figure: Figure,
    /// Zero for the met/missed figures.
    pub micros: u64,
}

/// A cumulative count and sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub sum_micros: u64,
}

impl Tally {
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    pub fn mean_seconds(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_seconds() / self.count as f64)
    }
}

/// Cumulative figures of one (service, severity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cumulative {
    /// `count` is the number of incidents opened.
    pub mttd: Tally,
    pub mtta: Tally,
    pub mttr: Tally,
    pub acknowledge: Attainment,
    pub restore: Attainment,
}

impl Cumulative {
    /// Incidents opened.
    pub fn opened(&self) -> u64 {
        self.mttd.count
    }

    pub fn attainment(&self, stage: Stage) -> Attainment {
        match stage {
            Stage::Acknowledge => self.acknowledge,
            Stage::Restore => self.restore,
        }
    }

    /// Adds `count` and `micros` to `figure` (saturating: a counter stops
    /// at its maximum rather than wrapping to a "reset").
    pub fn add(&mut self, figure: Figure, count: u64, micros: u64) {
        let tally = |t: &mut Tally| {
            t.count = t.count.saturating_add(count);
            t.sum_micros = t.sum_micros.saturating_add(micros);
        };
        match figure {
            Figure::Detect => tally(&mut self.mttd),
            Figure::Acknowledge => tally(&mut self.mtta),
            Figure::Restore => tally(&mut self.mttr),
            Figure::AcknowledgeMet => {
                self.acknowledge.met = self.acknowledge.met.saturating_add(count)
            }
            Figure::AcknowledgeMissed => {
                self.acknowledge.missed = self.acknowledge.missed.saturating_add(count)
            }
            Figure::RestoreMet => self.restore.met = self.restore.met.saturating_add(count),
            Figure::RestoreMissed => {
                self.restore.missed = self.restore.missed.saturating_add(count)
            }
        }
    }
}

/// A duration as whole microseconds, clamped at zero.
fn micros(d: SignedDuration) -> u64 {
    u64::try_from(d.as_micros().max(0)).unwrap_or(u64::MAX)
}

/// The entry of `kind` that `inc` can make at `now`, if its value is final.
/// `targets` are the response targets by severity.
pub fn due(
    inc: &Incident,
    kind: EntryKind,
    targets: &BTreeMap<String, ResponseTarget>,
    now: Timestamp,
) -> Option<Entry> {
    let (figure, micros) = match kind {
        EntryKind::Detect => (Figure::Detect, micros(inc.time_to_detect())),
        EntryKind::Acknowledge => (Figure::Acknowledge, micros(inc.time_to_acknowledge()?)),
        EntryKind::Restore => (Figure::Restore, micros(inc.time_to_restore()?)),
        EntryKind::AcknowledgeTarget | EntryKind::RestoreTarget => {
            let t = targets.get(&inc.severity)?;
            let (stage, target, met, missed) = if kind == EntryKind::AcknowledgeTarget {
                (
                    Stage::Acknowledge,
                    t.acknowledge,
                    Figure::AcknowledgeMet,
                    Figure::AcknowledgeMissed,
                )
            } else {
                (
                    Stage::Restore,
                    t.restore,
                    Figure::RestoreMet,
                    Figure::RestoreMissed,
                )
            };
            let figure = if verdict(inc, stage, target, now)? {
                met
            } else {
                missed
            };
            (figure, 0)
        }
    };
    Some(Entry {
        kind,
        service: inc.service.clone(),
        severity: inc.severity.clone(),
        figure,
        micros,
    })
}

/// The cumulative figures and, for incidents that may still make entries,
/// which entries they made.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    by: BTreeMap<(String, String), Cumulative>,
    entered: HashMap<String, Entered>,
}

impl Totals {
    /// From the store: `(service, severity, figure, count, sum_micros)` rows
    /// and `(incident id, entered)` of the incidents loaded. Rows of a figure
    /// this version does not know (written by a newer one) are ignored.
    pub fn restore(
        rows: impl IntoIterator<Item = (String, String, String, u64, u64)>,
        entered: impl IntoIterator<Item = (String, Entered)>,
    ) -> Totals {
        let mut t = Totals::default();
        for (service, severity, figure, count, sum) in rows {
            if let Some(f) = Figure::parse(&figure) {
                t.by.entry((service, severity))
                    .or_default()
                    .add(f, count, sum);
            }
        }
        t.entered = entered.into_iter().filter(|(_, e)| *e != 0).collect();
        t
    }

    /// Makes every entry `inc` owes at `now` and has not made yet: adds them
    /// to the totals, marks them made, and returns them for the store (which
    /// must write them with the incident).
    pub fn account(
        &mut self,
        inc: &Incident,
        targets: &BTreeMap<String, ResponseTarget>,
        now: Timestamp,
    ) -> Vec<Entry> {
        let done = self.entered.get(&inc.id).copied().unwrap_or(0);
        let mut made = Vec::new();
        for kind in EntryKind::ALL {
            if done & kind.bit() != 0 {
                continue;
            }
            if let Some(e) = due(inc, kind, targets, now) {
                made.push(e);
            }
        }
        if made.is_empty() {
            return made;
        }
        let mut bits = done;
        for e in &made {
            bits |= e.kind.bit();
            self.by
                .entry((e.service.clone(), e.severity.clone()))
                .or_default()
                .add(e.figure, 1, e.micros);
        }
        self.entered.insert(inc.id.clone(), bits);
        made
    }

    /// The entries incident `id` made (0 when unknown).
    pub fn entered(&self, id: &str) -> Entered {
        self.entered.get(id).copied().unwrap_or(0)
    }

    /// Forgets the per-incident marks of incidents `keep` rejects (they will
    /// make no more entries); the totals stay.
    pub fn retain_incidents(&mut self, keep: impl Fn(&str) -> bool) {
        self.entered.retain(|id, _| keep(id));
    }

    /// Cumulative figures per (service, severity).
    pub fn by_key(&self) -> &BTreeMap<(String, String), Cumulative> {
        &self.by
    }
}
