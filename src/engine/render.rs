//! Prometheus rendering of the engine's snapshot: the `sentinel_slo_*`,
//! `sentinel_incident*`, `sentinel_notifier_*` families and the
//! engine's own health counters; and of the config facts dashboards join on
//! (`sentinel_service_info`, `sentinel_response_target_seconds`).

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
        for (kind, _) in each(f) {
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

/// Longest `description` label value, in characters: the label is for
/// telling services apart on a dashboard, not for documentation.
const DESCRIPTION_LABEL_MAX_CHARS: usize = 120;

/// Config facts that dashboards join on: `sentinel_service_info` (value 1)
/// for every configured service, and `sentinel_response_target_seconds` for
/// every configured severity and stage. Label values are config text only
/// (an unset owner, tier or description is the empty value, which Prometheus
/// treats as no label).
pub fn render_config_info(out: &mut Expo, cfg: &Config) {
    out.family(
        "sentinel_service_info",
        &format!(
            "Configured service facts: owner, tier and description (cut to {DESCRIPTION_LABEL_MAX_CHARS} characters); always 1."
        ),
        MetricType::Gauge,
    );
    for s in &cfg.services {
        let tier = s.tier.map(|t| t.to_string()).unwrap_or_default();
        let description: String = s
            .description
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(DESCRIPTION_LABEL_MAX_CHARS)
            .collect();
        out.sample(
            "sentinel_service_info",
            &[
                ("service", &s.name),
                ("owner", s.owner.as_deref().unwrap_or("")),
                ("tier", &tier),
                ("description", &description),
            ],
            1.0,
        );
    }
    out.family(
        "sentinel_response_target_seconds",
        "Configured response target per severity: acknowledge (opened to acknowledged) and restore (impact start to restored).",
        MetricType::Gauge,
    );
    for (severity, t) in &cfg.response_targets {
        for (stage, d) in [("acknowledge", t.acknowledge), ("restore", t.restore)] {
            out.sample(
                "sentinel_response_target_seconds",
                &[("severity", severity), ("stage", stage)],
                d.as_secs_f64(),
            );
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jiff::Timestamp;

    use super::*;
    use crate::config::parse_str;
    use crate::engine::EngineState;

    /// The sample lines of `out` (no `# HELP` / `# TYPE`) of family `name`.
    fn lines(out: &Expo, name: &str) -> Vec<String> {
        out.as_str()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(str::to_string)
            .collect()
    }

    fn config(text: &str) -> Config {
        parse_str(text, "test.yaml").unwrap()
    }

    const SERVICES: &str = r#"
response_targets:
  P1: { acknowledge: 5m, restore: 30m }
  P3: { acknowledge: 1h30m, restore: 2d }
services:
  - name: vpn
    owner: networking
    tier: 1
    description: "Remote \"access\" VPN\\gateway\nsecond line"
    checks: [{ name: port, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99.5, window: month, latency: { threshold: 1s, objective: 99 } }
  - name: mail
    checks: [{ name: smtp, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99, window: 1d }
  - name: wiki
    tier: 3
    checks: [{ name: home, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99, window: 30d }
  - name: print
    checks: [{ name: queue, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
"#;

    #[test]
    fn service_info_and_response_targets_come_from_the_config() {
        let mut out = Expo::new();
        render_config_info(&mut out, &config(SERVICES));
        assert_eq!(
            lines(&out, "sentinel_service_info"),
            [
                r#"sentinel_service_info{service="vpn",owner="networking",tier="1",description="Remote \"access\" VPN\\gateway\nsecond line"} 1"#,
                r#"sentinel_service_info{service="mail",owner="",tier="",description=""} 1"#,
                r#"sentinel_service_info{service="wiki",owner="",tier="3",description=""} 1"#,
                r#"sentinel_service_info{service="print",owner="",tier="",description=""} 1"#,
            ]
        );
        assert_eq!(
            lines(&out, "sentinel_response_target_seconds"),
            [
                r#"sentinel_response_target_seconds{severity="P1",stage="acknowledge"} 300"#,
                r#"sentinel_response_target_seconds{severity="P1",stage="restore"} 1800"#,
                r#"sentinel_response_target_seconds{severity="P3",stage="acknowledge"} 5400"#,
                r#"sentinel_response_target_seconds{severity="P3",stage="restore"} 172800"#,
            ]
        );
    }

    #[test]
    fn a_long_description_is_cut_on_a_character_boundary() {
        // 200 three-byte characters: the label keeps the first 120, whole.
        let text = format!(
            "services:\n  - name: x\n    description: {}\n    checks: [{{ name: c, tcp: {{ host: 127.0.0.1, port: 1 }} }}]\n",
            "€".repeat(200)
        );
        let mut out = Expo::new();
        render_config_info(&mut out, &config(&text));
        assert_eq!(
            lines(&out, "sentinel_service_info"),
            [format!(
                r#"sentinel_service_info{{service="x",owner="",tier="",description="{}"}} 1"#,
                "€".repeat(DESCRIPTION_LABEL_MAX_CHARS)
            )]
        );
    }

    #[test]
    fn without_response_targets_only_the_header_is_rendered() {
        let mut out = Expo::new();
        render_config_info(
            &mut out,
            &config(
                "services:\n  - name: x\n    checks: [{ name: c, tcp: { host: 127.0.0.1, port: 1 } }]\n",
            ),
        );
        assert_eq!(
            lines(&out, "sentinel_response_target_seconds"),
            Vec::<String>::new()
        );
        assert!(
            out.as_str()
                .contains("# TYPE sentinel_response_target_seconds gauge\n")
        );
    }

    /// At `now`, the SLO families of [`SERVICES`] before any run.
    fn slo_scrape(now: &str) -> Expo {
        let mut s = EngineState::new(Arc::new(config(SERVICES)));
        let now: Timestamp = now.parse().unwrap();
        let (snap, _) = s.evaluate(now);
        let mut out = Expo::new();
        render_slo(&mut out, &snap);
        out
    }

    #[test]
    fn slo_window_seconds_is_the_window_and_the_calendar_month() {
        // February 2028 has 29 days; a 1d window is 86 400 s, 30d 2 592 000 s.
        let feb = lines(
            &slo_scrape("2028-02-10T12:00:00Z"),
            "sentinel_slo_window_seconds",
        );
        assert_eq!(
            feb,
            [
                r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2505600"#,
                r#"sentinel_slo_window_seconds{service="vpn",slo="latency"} 2505600"#,
                r#"sentinel_slo_window_seconds{service="mail",slo="availability"} 86400"#,
                r#"sentinel_slo_window_seconds{service="wiki",slo="availability"} 2592000"#,
            ]
        );
        // The last second of a 31-day month, then the first of a 30-day one.
        let jan = lines(
            &slo_scrape("2028-01-31T23:59:59Z"),
            "sentinel_slo_window_seconds",
        );
        assert_eq!(
            jan[0],
            r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2678400"#
        );
        let apr = lines(
            &slo_scrape("2028-04-01T00:00:00Z"),
            "sentinel_slo_window_seconds",
        );
        assert_eq!(
            apr[0],
            r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2592000"#
        );
    }

    #[test]
    fn exactly_one_row_per_slo_is_the_slo_window() {
        let out = slo_scrape("2028-02-10T12:00:00Z");
        let cov = lines(&out, "sentinel_slo_window_coverage_ratio");
        let slo_windows: Vec<&str> = cov
            .iter()
            .filter(|l| l.contains(r#"is_slo_window="true""#))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            slo_windows,
            [
                r#"sentinel_slo_window_coverage_ratio{service="vpn",slo="availability",window="month",is_slo_window="true"}"#,
                r#"sentinel_slo_window_coverage_ratio{service="vpn",slo="latency",window="month",is_slo_window="true"}"#,
                // A 1d SLO window is also the 1d burn window: one series, marked.
                r#"sentinel_slo_window_coverage_ratio{service="mail",slo="availability",window="1d",is_slo_window="true"}"#,
                r#"sentinel_slo_window_coverage_ratio{service="wiki",slo="availability",window="30d",is_slo_window="true"}"#,
            ]
        );
        // Every other row says false: 8 rows per SLO with its own window
        // label (3 SLOs), 7 for mail.
        assert_eq!(cov.len(), 8 * 3 + 7);
        assert_eq!(
            cov.iter()
                .filter(|l| l.contains(r#"is_slo_window="false""#))
                .count(),
            cov.len() - 4
        );
    }
}
