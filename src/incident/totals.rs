//! Cumulative incident figures: `sentinel_incidents_total`, the `_sum` and
//! `_count` of the MTTD/MTTA/MTTR summaries,
//! `sentinel_incident_response_total` and
//! `sentinel_incident_escalations_total`.
//!
//! Prometheus reads any decrease of a counter (and of a summary's `_sum` or
//! `_count`) as a process restart and `rate()`/`increase()` then add the
//! whole value again. So these figures follow the summary convention: the
//! quantiles cover the SLO window ([`super::MttxStats`]), while sum and count
//! are **cumulative** over every incident the store ever held, and never
//! decrease: not when an incident leaves the window, not across a restart,
//! not when the store prunes old incidents.
//!
//! Each incident makes up to six *entries*, each exactly once, at the moment
//! its value is final, and never changes them afterwards:
//!
//! | entry | when | adds to |
//! |---|---|---|
//! | detect | the incident exists (it opened) | incidents opened, MTTD |
//! | acknowledge | `acknowledged_at` is set (the first ack) | MTTA |
//! | restore | the incident is resolved (resolution is final) | MTTR |
//! | acknowledge target | acknowledged, or the target passed unacknowledged | met / missed |
//! | restore target | resolved, or the target passed unresolved | met / missed |
//! | acknowledge source | `acknowledged_at` is set (the first ack) | acknowledgements by source |
//! | escalation | the acknowledge target passed unacknowledged and the `escalate` notifiers were told | escalations |
//!
//! An entry counts under the incident's severity *at the time it is made*
//! (an escalation later does not move it; the windowed quantiles follow the
//! current severity) and a verdict uses the target of that severity at that
//! time (a reload later does not re-judge it). Relapses, updates and
//! severity escalations make no entry. Durations are clamped at zero (a wall clock
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

use super::mttx::{Attainment, Stage, verdict};
use super::{Incident, Source};
use crate::config::ResponseTarget;

/// Bit set of the entries an incident has made (stored with its row).
pub type Entered = u32;

/// Every entry made: the incident makes no more.
pub const ENTERED_ALL: Entered = 127;

/// One kind of entry; its value is the bit in [`Entered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    Detect = 1,
    Acknowledge = 2,
    Restore = 4,
    AcknowledgeTarget = 8,
    RestoreTarget = 16,
    /// The acknowledge-target escalation ([`Incident::ack_escalated_at`]).
    Escalation = 32,
    /// Where the first acknowledgement came from.
    AckSource = 64,
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        EntryKind::Detect,
        EntryKind::Acknowledge,
        EntryKind::Restore,
        EntryKind::AcknowledgeTarget,
        EntryKind::RestoreTarget,
        EntryKind::Escalation,
        EntryKind::AckSource,
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
    /// Count = acknowledge-target escalations.
    Escalation,
    /// Count = incidents first acknowledged from this source.
    AckVia(Source),
}

impl Figure {
    pub const ALL: [Figure; 8] = [
        Figure::Detect,
        Figure::Acknowledge,
        Figure::Restore,
        Figure::AcknowledgeMet,
        Figure::AcknowledgeMissed,
        Figure::RestoreMet,
        Figure::RestoreMissed,
        Figure::Escalation,
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
            Figure::Escalation => "escalation",
            Figure::AckVia(source) => match source {
                Source::Api => "ack_via_api",
                Source::PagerDuty => "ack_via_pagerduty",
                Source::Opsgenie => "ack_via_opsgenie",
                Source::Slack => "ack_via_slack",
                Source::ServiceNow => "ack_via_servicenow",
                Source::Jira => "ack_via_jira",
                Source::Auto => "ack_via_auto",
            },
        }
    }

    pub fn parse(s: &str) -> Option<Figure> {
        Figure::ALL
            .into_iter()
            .chain(Source::ACK.map(Figure::AckVia))
            .find(|f| f.as_str() == s)
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
    /// Acknowledge-target escalations.
    pub escalations: u64,
    /// Incidents acknowledged, by the source of the first acknowledgement,
    /// indexed like [`Source::ACK`].
    pub acks_by_source: [u64; Source::ACK.len()],
}

impl Cumulative {
    /// Incidents opened.
    pub fn opened(&self) -> u64 {
        self.mttd.count
    }

    /// Incidents whose first acknowledgement came from `source`.
    pub fn acknowledged_via(&self, source: Source) -> u64 {
        Source::ACK
            .iter()
            .position(|s| *s == source)
            .map_or(0, |i| self.acks_by_source[i])
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
            Figure::Escalation => self.escalations = self.escalations.saturating_add(count),
            Figure::AckVia(source) => {
                if let Some(i) = Source::ACK.iter().position(|s| *s == source) {
                    self.acks_by_source[i] = self.acks_by_source[i].saturating_add(count);
                }
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
        EntryKind::AckSource => {
            inc.acknowledged_at?;
            (Figure::AckVia(inc.ack_source.unwrap_or(Source::Api)), 0)
        }
        EntryKind::Restore => (Figure::Restore, micros(inc.time_to_restore()?)),
        EntryKind::Escalation => {
            inc.ack_escalated_at?;
            (Figure::Escalation, 0)
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::incident::{ServiceIncidents, State};

    const BASE: i64 = 1_800_000_000;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(BASE + s).unwrap()
    }

    fn targets() -> BTreeMap<String, ResponseTarget> {
        let t = |ack, restore| ResponseTarget {
            acknowledge: Duration::from_secs(ack),
            restore: Duration::from_secs(restore),
            escalate: Vec::new(),
        };
        BTreeMap::from([("P1".into(), t(600, 3600)), ("P2".into(), t(1800, 7200))])
    }

    /// An incident of `svc` opened at 60 with impact at 0, severity `sev`.
    fn opened(sev: &str) -> Incident {
        let policy = crate::config::IncidentPolicy {
            open_after: 2,
            resolve_after: 1,
            burn_rate_alerts: false,
            severity: sev.to_string(),
            notify: vec![],
        };
        let mut m = ServiceIncidents::new("svc", &policy, None, 0);
        m.on_run(t(0), "c", false, "x", false);
        m.on_run(t(60), "c", false, "x", false).remove(0).incident
    }

    fn made(entries: &[Entry]) -> Vec<(EntryKind, &str, Figure, u64)> {
        entries
            .iter()
            .map(|e| (e.kind, e.severity.as_str(), e.figure, e.micros))
            .collect()
    }

    #[test]
    fn each_entry_is_made_once_when_its_value_is_final() {
        let mut tot = Totals::default();
        let mut inc = opened("P1");
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(60))),
            vec![(EntryKind::Detect, "P1", Figure::Detect, 60_000_000)]
        );
        assert_eq!(tot.account(&inc, &targets(), t(61)), vec![]);
        inc.acknowledged_at = Some(t(360));
        inc.ack_source = Some(Source::Slack);
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(360))),
            vec![
                (
                    EntryKind::Acknowledge,
                    "P1",
                    Figure::Acknowledge,
                    300_000_000
                ),
                (
                    EntryKind::AcknowledgeTarget,
                    "P1",
                    Figure::AcknowledgeMet,
                    0
                ),
                (EntryKind::AckSource, "P1", Figure::AckVia(Source::Slack), 0),
            ]
        );
        // Restored in time but not resolved: nothing yet, even after the
        // restore target passed (a relapse could still clear it).
        inc.restored_at = Some(t(3000));
        assert_eq!(tot.account(&inc, &targets(), t(4000)), vec![]);
        inc.state = State::Resolved;
        inc.resolved_at = Some(t(4000));
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(4000))),
            vec![
                (EntryKind::Restore, "P1", Figure::Restore, 3_000_000_000),
                (EntryKind::RestoreTarget, "P1", Figure::RestoreMet, 0),
            ]
        );
        assert_eq!(tot.account(&inc, &targets(), t(90_000)), vec![]);
        // Never escalated: every entry but the escalation's.
        assert_eq!(
            tot.entered(&inc.id),
            ENTERED_ALL & !EntryKind::Escalation.bit()
        );
        let c = tot.by_key()[&("svc".to_string(), "P1".to_string())];
        assert_eq!(c.opened(), 1);
        assert_eq!((c.mttd.count, c.mttd.sum_seconds()), (1, 60.0));
        assert_eq!((c.mtta.count, c.mtta.sum_seconds()), (1, 300.0));
        assert_eq!((c.mttr.count, c.mttr.sum_seconds()), (1, 3000.0));
        assert_eq!(c.acknowledge, Attainment { met: 1, missed: 0 });
        assert_eq!(c.restore, Attainment { met: 1, missed: 0 });
        assert_eq!(c.acknowledged_via(Source::Slack), 1);
        assert_eq!(c.acknowledged_via(Source::Api), 0);
    }

    #[test]
    fn entries_stay_with_the_severity_and_target_of_their_time() {
        let mut tot = Totals::default();
        let mut inc = opened("P2");
        tot.account(&inc, &targets(), t(60));
        // Escalated to P1 at 900: P1's acknowledge target (600 after opening
        // at 60) has passed, so that verdict is missed, under P1.
        inc.severity = "P1".into();
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(900))),
            vec![(
                EntryKind::AcknowledgeTarget,
                "P1",
                Figure::AcknowledgeMissed,
                0
            )]
        );
        let p2 = tot.by_key()[&("svc".to_string(), "P2".to_string())];
        let p1 = tot.by_key()[&("svc".to_string(), "P1".to_string())];
        assert_eq!((p2.opened(), p1.opened()), (1, 0), "opened as P2");
        assert_eq!(p1.acknowledge, Attainment { met: 0, missed: 1 });
        // A severity without a target makes no verdict.
        let mut other = opened("P9");
        other.id = "inc-svc-other".into();
        other.acknowledged_at = Some(t(61));
        assert_eq!(
            made(&tot.account(&other, &targets(), t(99_999))),
            vec![
                (EntryKind::Detect, "P9", Figure::Detect, 60_000_000),
                (EntryKind::Acknowledge, "P9", Figure::Acknowledge, 1_000_000),
                // Stored before sources were kept: an API acknowledgement.
                (EntryKind::AckSource, "P9", Figure::AckVia(Source::Api), 0),
            ]
        );
    }

    #[test]
    fn an_escalation_counts_once_under_the_severity_it_had_then() {
        let mut tot = Totals::default();
        let mut inc = opened("P1");
        tot.account(&inc, &targets(), t(60));
        // The acknowledge target (600 after opening at 60) passed at 661:
        // the escalation and the missed verdict are made together.
        inc.ack_escalated_at = Some(t(661));
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(661))),
            vec![
                (
                    EntryKind::AcknowledgeTarget,
                    "P1",
                    Figure::AcknowledgeMissed,
                    0
                ),
                (EntryKind::Escalation, "P1", Figure::Escalation, 0),
            ]
        );
        inc.acknowledged_at = Some(t(700));
        inc.severity = "P2".into();
        assert_eq!(
            made(&tot.account(&inc, &targets(), t(700))),
            vec![
                (
                    EntryKind::Acknowledge,
                    "P2",
                    Figure::Acknowledge,
                    640_000_000
                ),
                // Stored without a source: an API acknowledgement.
                (EntryKind::AckSource, "P2", Figure::AckVia(Source::Api), 0),
            ]
        );
        assert_eq!(tot.account(&inc, &targets(), t(800)), vec![]);
        let p1 = tot.by_key()[&("svc".to_string(), "P1".to_string())];
        assert_eq!((p1.escalations, p1.opened()), (1, 1));
        assert_eq!(
            Figure::parse("escalation"),
            Some(Figure::Escalation),
            "the store's name is stable"
        );
    }

    #[test]
    fn a_clock_stepped_backwards_adds_zero_never_a_negative() {
        let mut tot = Totals::default();
        let mut inc = opened("P1");
        inc.acknowledged_at = Some(t(30));
        let e = tot.account(&inc, &targets(), t(60));
        assert_eq!(e[1].figure, Figure::Acknowledge);
        assert_eq!(e[1].micros, 0);
    }

    #[test]
    fn restore_reads_back_what_was_written_and_skips_unknown_figures() {
        let mut tot = Totals::default();
        let mut inc = opened("P1");
        inc.state = State::Resolved;
        inc.restored_at = Some(t(7300));
        inc.resolved_at = Some(t(7300));
        tot.account(&inc, &targets(), t(7300));
        let mut rows: Vec<(String, String, String, u64, u64)> = Vec::new();
        for ((svc, sev), c) in tot.by_key() {
            for (f, n, us) in [
                (Figure::Detect, c.mttd.count, c.mttd.sum_micros),
                (Figure::Acknowledge, c.mtta.count, c.mtta.sum_micros),
                (Figure::Restore, c.mttr.count, c.mttr.sum_micros),
                (Figure::AcknowledgeMet, c.acknowledge.met, 0),
                (Figure::AcknowledgeMissed, c.acknowledge.missed, 0),
                (Figure::RestoreMet, c.restore.met, 0),
                (Figure::RestoreMissed, c.restore.missed, 0),
            ] {
                rows.push((svc.clone(), sev.clone(), f.as_str().into(), n, us));
            }
        }
        rows.push(("svc".into(), "P1".into(), "ack_via_jira".into(), 3, 0));
        rows.push(("svc".into(), "P1".into(), "from_the_future".into(), 7, 7));
        let back = Totals::restore(rows, [(inc.id.clone(), tot.entered(&inc.id))]);
        let c = back.by_key()[&("svc".to_string(), "P1".to_string())];
        assert_eq!(c.acknowledged_via(Source::Jira), 3);
        let mut without = c;
        without.acks_by_source = [0; Source::ACK.len()];
        assert_eq!(
            without,
            tot.by_key()[&("svc".to_string(), "P1".to_string())]
        );
        assert_eq!(c.acknowledge, Attainment { met: 0, missed: 1 });
        assert_eq!(c.restore, Attainment { met: 0, missed: 1 });
        let mut again = back.clone();
        assert_eq!(again.account(&inc, &targets(), t(99_999)), vec![]);
        for f in Figure::ALL
            .into_iter()
            .chain(Source::ACK.map(Figure::AckVia))
        {
            assert_eq!(Figure::parse(f.as_str()), Some(f));
        }
    }
}
