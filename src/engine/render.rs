//! Prometheus rendering of the engine's snapshot: the `sentinel_slo_*`,
//! `sentinel_incident*`, `sentinel_notifier_*` families and the
//! engine's own health counters.

use std::sync::atomic::Ordering;

use super::{EngineStats, Snapshot};
use crate::config::Config;
use crate::incident::Summary;
use crate::incident::totals::Tally;
use crate::metrics::{Expo, MetricType};
use crate::notify::worker::{Attempt, DeliveryStats};
use crate::slo::{Figures, SloFigures};

/// The availability SLO and, when configured, the latency SLO, with their `slo` label.
fn each(f: &Figures) -> impl Iterator<Item = (&'static str, &SloFigures)> {
    std::iter::once(&f.availability)
        .chain(f.latency.as_ref())
        .map(|s| (s.kind.label(), s))
}

/// The `sentinel_slo_*` families from a snapshot.
pub fn render_slo(out: &mut Expo, snap: &Snapshot) {
    let with_slo: Vec<(&str, &Figures)> = snap
        .services
        .iter()
        .filter_map(|s| s.figures.as_ref().map(|f| (s.name.as_str(), f)))
        .collect();
    out.family(
        "sentinel_slo_objective_ratio",
        "SLO target as a ratio.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_objective_ratio",
                &[("service", svc), ("slo", kind)],
                s.objective,
            );
        }
    }
    out.family(
        "sentinel_slo_sli_ratio",
        "Good over valid runs over the window (absent with no valid runs).",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        // sli_rows lists the SLO window once even when it equals a burn window.
        for row in f.sli_rows() {
            if let Some(v) = row.sli {
                out.sample(
                    "sentinel_slo_sli_ratio",
                    &[
                        ("service", svc),
                        ("slo", row.kind.label()),
                        ("window", &row.window),
                    ],
                    v,
                );
            }
        }
    }
    out.family(
        "sentinel_slo_window_coverage_ratio",
        "How much of the window is real data: min(1, valid runs / runs the schedule produces over the whole window); 1 when nothing is expected.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for row in f.sli_rows() {
            out.sample(
                "sentinel_slo_window_coverage_ratio",
                &[
                    ("service", svc),
                    ("slo", row.kind.label()),
                    ("window", &row.window),
                ],
                row.coverage,
            );
        }
    }
    out.family(
        "sentinel_slo_expected_runs_per_second",
        "Runs per second the schedule of the service's checks produces (maintenance not subtracted); what `sentinel rules` divides by when fewer runs were seen.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        out.sample(
            "sentinel_slo_expected_runs_per_second",
            &[("service", svc)],
            f.expected_runs_per_second,
        );
    }
    out.family(
        "sentinel_slo_error_budget_remaining_ratio",
        "1 - (bad/max(valid, expected))/(1 - objective) over the SLO window; negative when overspent.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_error_budget_remaining_ratio",
                &[("service", svc), ("slo", kind)],
                s.error_budget_remaining_ratio,
            );
        }
    }
    out.family(
        "sentinel_slo_error_budget_remaining_seconds",
        "Remaining error budget as downtime: remaining ratio x (1 - objective) x window length.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            out.sample(
                "sentinel_slo_error_budget_remaining_seconds",
                &[("service", svc), ("slo", kind)],
                s.error_budget_remaining_seconds,
            );
        }
    }
    out.family(
        "sentinel_slo_burn_rate",
        "(bad/max(valid, expected) over the window)/(1 - objective).",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, s) in each(f) {
            for b in &s.burn {
                out.sample(
                    "sentinel_slo_burn_rate",
                    &[("service", svc), ("slo", kind), ("window", b.window)],
                    b.burn_rate,
                );
            }
        }
    }
    out.family(
        "sentinel_slo_burn_alert",
        "1 while the multiwindow multi-burn-rate alert of this severity fires.",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        let _ = f;
        let view = snap.services.iter().find(|s| s.name == *svc);
        let a = view.map(|v| v.alerts).unwrap_or_default();
        out.sample(
            "sentinel_slo_burn_alert",
            &[("service", svc), ("severity", "page")],
            f64::from(u8::from(a.page)),
        );
        out.sample(
            "sentinel_slo_burn_alert",
            &[("service", svc), ("severity", "ticket")],
            f64::from(u8::from(a.ticket)),
        );
    }
}

/// Engine/store health families.
pub fn render_engine_stats(out: &mut Expo, stats: &EngineStats) {
    out.family(
        "sentinel_store_write_errors_total",
        "Failed writes of run counts to the state store (e.g. disk full); counts are kept and retried.",
        MetricType::Counter,
    );
    out.sample_u64(
        "sentinel_store_write_errors_total",
        &[],
        stats.store_write_errors.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_store_pending_deltas",
        "Run-count deltas waiting to be written to the store.",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_store_pending_deltas",
        &[],
        stats.pending_deltas.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_incident_writes_pending",
        "Incident changes (with their events) waiting to be written to the store.",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_incident_writes_pending",
        &[],
        stats.incident_writes_pending.load(Ordering::Relaxed),
    );
    out.family(
        "sentinel_store_file_ok",
        "1 while storage.path names the state file sentinel writes; 0 once it was deleted or replaced (see /readyz).",
        MetricType::Gauge,
    );
    out.sample_u64(
        "sentinel_store_file_ok",
        &[],
        u64::from(stats.store_file_problem().is_none()),
    );
    out.family(
        "sentinel_runs_in_maintenance_total",
        "Runs that fell in a maintenance window and count toward nothing.",
        MetricType::Counter,
    );
    out.sample_u64(
        "sentinel_runs_in_maintenance_total",
        &[],
        stats.runs_in_maintenance.load(Ordering::Relaxed),
    );
}

const MTTX: [(&str, &str); 3] = [
    (
        "sentinel_incident_mttd_seconds",
        "Impact start to incident opened. Quantiles: incidents opened in the SLO window; _sum/_count: cumulative over all incidents.",
    ),
    (
        "sentinel_incident_mtta_seconds",
        "Incident opened to acknowledged. Quantiles: acknowledged incidents opened in the SLO window; _sum/_count: cumulative, counted at the first acknowledgement.",
    ),
    (
        "sentinel_incident_mttr_seconds",
        "Impact start to restored. Quantiles: resolved incidents opened in the SLO window; _sum/_count: cumulative, counted at resolution.",
    ),
];

/// Incident and notifier families. Every (service, configured severity) and
/// every configured notifier has a series from the start (zero), so
/// dashboards and alerts see "none" rather than "no data".
pub fn render_incidents(out: &mut Expo, snap: &Snapshot, cfg: &Config, deliveries: &DeliveryStats) {
    // (service, severity) pairs: configured ones plus any seen in incidents.
    let mut pairs: std::collections::BTreeSet<(String, String)> = cfg
        .services
        .iter()
        .map(|s| (s.name.clone(), s.incident.severity.clone()))
        .collect();
    pairs.extend(snap.incident_counts.keys().cloned());
    pairs.extend(snap.mttx.keys().cloned());
    pairs.extend(snap.totals.keys().cloned());

    out.family(
        "sentinel_incidents_open",
        "Open incidents.",
        MetricType::Gauge,
    );
    for (svc, sev) in &pairs {
        let (open, _) = snap
            .incident_counts
            .get(&(svc.clone(), sev.clone()))
            .copied()
            .unwrap_or((0, 0));
        out.sample_u64(
            "sentinel_incidents_open",
            &[("service", svc), ("severity", sev)],
            open,
        );
    }
    out.family(
        "sentinel_incidents_total",
        "Incidents opened, cumulative: survives restarts and the pruning of old incidents.",
        MetricType::Counter,
    );
    for (svc, sev) in &pairs {
        let (_, total) = snap
            .incident_counts
            .get(&(svc.clone(), sev.clone()))
            .copied()
            .unwrap_or((0, 0));
        out.sample_u64(
            "sentinel_incidents_total",
            &[("service", svc), ("severity", sev)],
            total,
        );
    }
    for (i, (name, help)) in MTTX.iter().enumerate() {
        out.family(name, help, MetricType::Summary);
        for (svc, sev) in &pairs {
            let labels = [("service", svc.as_str()), ("severity", sev.as_str())];
            let key = (svc.clone(), sev.clone());
            let windowed = snap.mttx.get(&key).map(|st| match i {
                0 => &st.mttd,
                1 => &st.mtta,
                _ => &st.mttr,
            });
            let cumulative = snap
                .totals
                .get(&key)
                .map(|c| match i {
                    0 => c.mttd,
                    1 => c.mtta,
                    _ => c.mttr,
                })
                .unwrap_or_default();
            render_summary(out, name, &labels, windowed, cumulative);
        }
    }
    out.family(
        "sentinel_incident_response_total",
        "Incidents that met / missed the response target, by stage; cumulative, counted once when the stage completes or its target passes.",
        MetricType::Counter,
    );
    for ((svc, sev, stage), a) in &snap.response {
        for (met, n) in [("true", a.met), ("false", a.missed)] {
            out.sample_u64(
                "sentinel_incident_response_total",
                &[
                    ("service", svc),
                    ("severity", sev),
                    ("stage", stage.as_str()),
                    ("met", met),
                ],
                n,
            );
        }
    }

    let counts = deliveries.snapshot();
    out.family(
        "sentinel_notifier_deliveries_total",
        "Webhook delivery attempts by result (delivered, retry, redirected, rejected, expired).",
        MetricType::Counter,
    );
    for n in &cfg.notifiers {
        for a in Attempt::ALL {
            let v = counts.get(&(n.name.clone(), a)).copied().unwrap_or(0);
            out.sample_u64(
                "sentinel_notifier_deliveries_total",
                &[("notifier", &n.name), ("result", a.as_str())],
                v,
            );
        }
    }
    let restarts = deliveries.restarts();
    out.family(
        "sentinel_notifier_task_restarts_total",
        "Delivery task restarts after a panic (the task resumes from the stored outbox).",
        MetricType::Counter,
    );
    for n in &cfg.notifiers {
        let v = restarts.get(&n.name).copied().unwrap_or(0);
        out.sample_u64(
            "sentinel_notifier_task_restarts_total",
            &[("notifier", &n.name)],
            v,
        );
    }
    let unstored = deliveries.unstored();
    out.family(
        "sentinel_notifier_unstored_outcomes",
        "Delivery outcomes held in memory because the store could not write them yet (full disk); delivered events among them are not re-sent.",
        MetricType::Gauge,
    );
    for n in &cfg.notifiers {
        let v = unstored.get(&n.name).copied().unwrap_or(0);
        out.sample_u64(
            "sentinel_notifier_unstored_outcomes",
            &[("notifier", &n.name)],
            v,
        );
    }
    out.family(
        "sentinel_notifier_queue_depth",
        "Undelivered incident events.",
        MetricType::Gauge,
    );
    for n in &cfg.notifiers {
        let v = snap
            .queue_depth
            .iter()
            .find(|(name, _)| *name == n.name)
            .map_or(0, |(_, d)| *d);
        out.sample_u64("sentinel_notifier_queue_depth", &[("notifier", &n.name)], v);
    }
}

/// The Prometheus summary convention: quantiles over a recent window
/// (`windowed`, absent with no incident in it), `_sum`/`_count` cumulative.
fn render_summary(
    out: &mut Expo,
    name: &str,
    labels: &[(&str, &str); 2],
    windowed: Option<&Summary>,
    cumulative: Tally,
) {
    if let Some(s) = windowed {
        for (q, v) in &s.quantiles {
            let qs = format!("{q}");
            out.sample(name, &[labels[0], labels[1], ("quantile", &qs)], *v);
        }
    }
    out.sample(&format!("{name}_sum"), labels, cumulative.sum_seconds());
    out.sample_u64(&format!("{name}_count"), labels, cumulative.count);
}
