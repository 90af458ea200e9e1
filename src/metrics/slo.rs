//! The `sentinel_slo_*` families, from the engine's [`Snapshot`].

use crate::engine::Snapshot;
use crate::metrics::{Expo, MetricType};
use crate::slo::{Figures, SloFigures};

/// The availability SLO and, when configured, the latency SLO, with their `slo` label.
fn slos_with_label(f: &Figures) -> impl Iterator<Item = (&'static str, &SloFigures)> {
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
        for (kind, s) in slos_with_label(f) {
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
                        ("is_slo_window", is_slo_window(f, &row.window)),
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
                    ("is_slo_window", is_slo_window(f, &row.window)),
                ],
                row.coverage,
            );
        }
    }
    out.family(
        "sentinel_slo_window_seconds",
        "Length of the SLO window in seconds (for `month`, the current calendar month's).",
        MetricType::Gauge,
    );
    for (svc, f) in &with_slo {
        for (kind, _) in slos_with_label(f) {
            out.sample(
                "sentinel_slo_window_seconds",
                &[("service", svc), ("slo", kind)],
                f.window_seconds,
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
        for (kind, s) in slos_with_label(f) {
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
        for (kind, s) in slos_with_label(f) {
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
        for (kind, s) in slos_with_label(f) {
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

/// The `is_slo_window` label of a `window` row: `"true"` for the service's
/// SLO window (which may also be a burn window, `window: 1d`), so queries
/// select it without listing the burn windows.
fn is_slo_window(f: &Figures, window: &str) -> &'static str {
    if window == f.window_label {
        "true"
    } else {
        "false"
    }
}
