//! Policy: a service's `slo` and `incident` blocks, and the warning about
//! severities without response targets.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::{Position, SeverityUse, Validator, join_key, pos, unknown_notifier_hint};
use crate::config::duration;
use crate::config::limits;
use crate::config::raw::{self, Opt};
use crate::config::types::*;

/// The longest calendar month: what a `month` window needs of history.
const MONTH_SPAN: Duration = Duration::from_secs(31 * 86_400);

impl<'a> Validator<'a> {
    pub(super) fn slo(&mut self, s: &Spanned<raw::RawSlo>, path: &str) -> Option<Slo> {
        let at = pos(&s.referenced);
        let s = &s.value;
        let objective = self.objective(&s.objective, at, path);
        let window = match &s.window {
            None => Some(Slo::DEFAULT_WINDOW),
            Some(w) if w.value.trim().eq_ignore_ascii_case("month") => Some(SloWindow::Month),
            Some(_) => self
                .duration(
                    &s.window,
                    &join_key(path, "window"),
                    "window",
                    &limits::SLO_WINDOW,
                )
                .ok()
                .flatten()
                .map(SloWindow::Rolling),
        };
        // Runs older than the retention are deleted, so a longer window could
        // never be filled again after a restart.
        if let Some(w) = window {
            let longest = match w {
                SloWindow::Rolling(d) => d,
                SloWindow::Month => MONTH_SPAN,
            };
            if longest > self.retention {
                let at = s.window.as_ref().map_or(at, |w| pos(&w.referenced));
                self.report(
                    at,
                    &join_key(path, "window"),
                    format!(
                        "window {} is longer than storage.retention {}",
                        w.label(),
                        duration::format(self.retention)
                    ),
                    Some(
                        "history older than the retention is deleted; raise `storage.retention` or shorten the window"
                            .into(),
                    ),
                );
                return None;
            }
        }
        let latency = match &s.latency {
            None => None,
            // Reported already; the SLO is unusable without it.
            Some(l) => Some(self.latency_slo(l, &join_key(path, "latency"))?),
        };
        let (Some(objective), Some(window)) = (objective, window) else {
            return None;
        };
        Some(Slo {
            objective,
            window,
            latency,
        })
    }

    /// `slo.latency`: a threshold and the share of runs that must beat it.
    fn latency_slo(&mut self, l: &Spanned<raw::RawLatency>, path: &str) -> Option<LatencySlo> {
        let at = pos(&l.referenced);
        let threshold =
            self.required_duration(&l.value.threshold, at, path, "threshold", &limits::LATENCY);
        let objective = self.objective(&l.value.objective, at, path);
        Some(LatencySlo {
            threshold: threshold?,
            objective: objective?,
        })
    }

    pub(super) fn objective(&mut self, value: &Opt<f64>, at: Position, path: &str) -> Option<f64> {
        let Some(o) = value else {
            self.missing(at, path, "objective");
            return None;
        };
        // Plain `/ 100.0` turns 99.9 into 0.9990000000000001; going through
        // an integer count of billionths of a percent gives the double
        // closest to what was written (0.999), so `1 - objective` and the
        // `rules` output read as the operator expects. NaN fails both tests.
        let ratio = (o.value * 1e9).round() / 1e11;
        if ratio > 0.0 && o.value <= limits::MAX_OBJECTIVE_PERCENT {
            return Some(ratio);
        }
        self.report(
            pos(&o.referenced),
            &join_key(path, "objective"),
            format!(
                "objective {} is out of range: it is a percent, greater than 0 and at most {}",
                o.value,
                limits::MAX_OBJECTIVE_PERCENT
            ),
            Some("e.g. `99.9`".into()),
        );
        None
    }

    pub(super) fn incident(
        &mut self,
        raw: Option<&Spanned<raw::RawIncident>>,
        path: &str,
        notifiers: &[Notifier],
    ) -> IncidentPolicy {
        let mut policy = IncidentPolicy::default();
        let Some(i) = raw.map(|r| &r.value) else {
            return policy;
        };
        if let Ok(Some(n)) = self.int_in(
            &i.open_after,
            &join_key(path, "open_after"),
            &limits::STREAK,
            "open_after",
        ) {
            policy.open_after = u32::try_from(n).unwrap_or(IncidentPolicy::DEFAULT_OPEN_AFTER);
        }
        if let Ok(Some(n)) = self.int_in(
            &i.resolve_after,
            &join_key(path, "resolve_after"),
            &limits::STREAK,
            "resolve_after",
        ) {
            policy.resolve_after =
                u32::try_from(n).unwrap_or(IncidentPolicy::DEFAULT_RESOLVE_AFTER);
        }
        policy.burn_rate_alerts = i.burn_rate_alerts.unwrap_or(policy.burn_rate_alerts);
        if let Ok(Some(sev)) = self.optional_nonempty(&i.severity, &join_key(path, "severity")) {
            policy.severity = sev;
        }
        let known: Vec<&str> = notifiers.iter().map(|n| n.name.as_str()).collect();
        for (k, n) in i.notify.iter().enumerate() {
            // A notifier that is defined but invalid was reported already;
            // naming it here is not a second problem.
            if known.contains(&n.value.as_str()) || self.seen_notifiers.contains_key(&n.value) {
                if !policy.notify.contains(&n.value) {
                    policy.notify.push(n.value.clone());
                }
            } else {
                let hint = Some(unknown_notifier_hint(
                    &n.value,
                    &known,
                    "no notifiers are defined",
                ));
                self.report(
                    pos(&n.referenced),
                    &format!("{path}.notify[{k}]"),
                    format!("unknown notifier `{}` in `notify`", n.value),
                    hint,
                );
            }
        }
        policy
    }

    /// A severity that services open incidents at but `response_targets`
    /// does not list: its incidents are measured against no target. One
    /// warning per severity, at the first service using it.
    pub(super) fn severity_warnings(
        &mut self,
        targets: &std::collections::BTreeMap<String, ResponseTarget>,
    ) {
        // severity → (services using it, where the first one says so).
        let mut users: std::collections::BTreeMap<String, (usize, SeverityUse<'a>)> =
            std::collections::BTreeMap::new();
        for u in std::mem::take(&mut self.severity_uses) {
            if !targets.contains_key(&u.severity) {
                users.entry(u.severity.clone()).or_insert((0, u)).0 += 1;
            }
        }
        for (severity, (count, first)) in users {
            let who = if count == 1 {
                "1 service".to_string()
            } else {
                format!("{count} services")
            };
            self.file = first.file;
            self.warn(
                first.at,
                &first.path,
                format!(
                    "severity `{severity}` ({who}) has no `response_targets` entry: its incidents count toward no acknowledge or restore target"
                ),
                Some(format!("add `response_targets: {{ {severity}: {{ acknowledge: 30m, restore: 8h }} }}`")),
            );
        }
    }
}
