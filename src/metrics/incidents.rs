//! The `sentinel_incident*` and `sentinel_notifier_*` families, from the
//! engine's [`Snapshot`] and the delivery workers' counters.

use crate::config::{Config, NotifierKind};
use std::collections::BTreeSet;

use crate::config::HookProvider;
use crate::engine::{ServiceSeverity, Snapshot};
use crate::inbound::{HookResult, InboundStats};
use crate::incident::totals::Tally;
use crate::incident::{Source, Summary};
use crate::metrics::{Expo, MetricType};
use crate::notify::worker::{Attempt, DeliveryStats, Repost};

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

/// Incident families. Every (service, configured severity) has a series
/// from the start (zero), so dashboards and alerts see "none" rather than
/// "no data".
pub fn render_incidents(out: &mut Expo, snap: &Snapshot, cfg: &Config) {
    // (service, severity) pairs: configured ones plus any seen in incidents.
    let mut pairs: BTreeSet<ServiceSeverity> = cfg
        .services
        .iter()
        .map(|s| ServiceSeverity::new(&s.name, &s.incident.severity))
        .collect();
    pairs.extend(snap.incident_counts.keys().cloned());
    pairs.extend(snap.mttx.keys().cloned());
    pairs.extend(snap.totals.keys().cloned());

    out.family(
        "sentinel_incidents_open",
        "Open incidents.",
        MetricType::Gauge,
    );
    for key in &pairs {
        let counts = snap.incident_counts.get(key).copied().unwrap_or_default();
        out.sample_u64(
            "sentinel_incidents_open",
            &[("service", &key.service), ("severity", &key.severity)],
            counts.open,
        );
    }
    out.family(
        "sentinel_incidents_total",
        "Incidents opened, cumulative: survives restarts and the pruning of old incidents.",
        MetricType::Counter,
    );
    for key in &pairs {
        let counts = snap.incident_counts.get(key).copied().unwrap_or_default();
        out.sample_u64(
            "sentinel_incidents_total",
            &[("service", &key.service), ("severity", &key.severity)],
            counts.opened,
        );
    }
    out.family(
        "sentinel_incident_escalations_total",
        "Incidents escalated because their acknowledge target passed unacknowledged (the severity's escalate notifiers were told); cumulative, counted once per incident under its severity then.",
        MetricType::Counter,
    );
    for key in &pairs {
        let n = snap.totals.get(key).map_or(0, |c| c.escalations);
        out.sample_u64(
            "sentinel_incident_escalations_total",
            &[("service", &key.service), ("severity", &key.severity)],
            n,
        );
    }
    for (i, (name, help)) in MTTX.iter().enumerate() {
        out.family(name, help, MetricType::Summary);
        for key in &pairs {
            let labels = [
                ("service", key.service.as_str()),
                ("severity", key.severity.as_str()),
            ];
            let windowed = snap.mttx.get(key).map(|st| match i {
                0 => &st.mttd,
                1 => &st.mtta,
                _ => &st.mttr,
            });
            let cumulative = snap
                .totals
                .get(key)
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
        "sentinel_incident_acknowledgements_total",
        "Incidents acknowledged, by where the first acknowledgement came from (api or the inbound hook's provider); cumulative, counted once per incident. Repeated acknowledgements are recorded on the incident, not counted.",
        MetricType::Counter,
    );
    for key in &pairs {
        let totals = snap.totals.get(key);
        for source in Source::ACK {
            out.sample_u64(
                "sentinel_incident_acknowledgements_total",
                &[
                    ("service", &key.service),
                    ("severity", &key.severity),
                    ("source", source.as_str()),
                ],
                totals.map_or(0, |t| t.acknowledged_via(source)),
            );
        }
    }
    out.family(
        "sentinel_incident_response_total",
        "Incidents that met / missed the response target, by stage; cumulative, counted once when the stage completes or its target passes.",
        MetricType::Counter,
    );
    for ((key, stage), a) in &snap.response {
        for (met, n) in [("true", a.met), ("false", a.missed)] {
            out.sample_u64(
                "sentinel_incident_response_total",
                &[
                    ("service", &key.service),
                    ("severity", &key.severity),
                    ("stage", stage.as_str()),
                    ("met", met),
                ],
                n,
            );
        }
    }
}

/// `sentinel_inbound_hooks_total`: every provider and result from the
/// start (zero), whether configured or not (both are closed sets).
pub fn render_inbound(out: &mut Expo, stats: &InboundStats) {
    const NAME: &str = "sentinel_inbound_hooks_total";
    out.family(
        NAME,
        "Inbound hook requests (POST /api/v1/hooks/<provider>) by result: applied (acknowledged or resolved an incident), ignored (answered 2xx, nothing changed), rejected (401 bad or missing signature or credential, 400 not the provider's payload, 404 not configured, 503).",
        MetricType::Counter,
    );
    for p in HookProvider::ALL {
        for r in HookResult::ALL {
            out.sample_u64(
                NAME,
                &[("provider", p.as_str()), ("result", r.as_str())],
                stats.get(p, r),
            );
        }
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

/// Notifier families. Every configured notifier has a series from the start
/// (zero).
pub fn render_notifiers(out: &mut Expo, snap: &Snapshot, cfg: &Config, deliveries: &DeliveryStats) {
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
    let reposts = deliveries.reposts();
    out.family(
        "sentinel_notifier_reposts_total",
        "Alerts of open incidents sent to Alertmanager again (every repost_every) so they never expire, by result (delivered, failed); alertmanager notifiers only.",
        MetricType::Counter,
    );
    for n in &cfg.notifiers {
        if !matches!(n.kind, NotifierKind::Alertmanager { .. }) {
            continue;
        }
        for r in Repost::ALL {
            let v = reposts.get(&(n.name.clone(), r)).copied().unwrap_or(0);
            out.sample_u64(
                "sentinel_notifier_reposts_total",
                &[("notifier", &n.name), ("result", r.as_str())],
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
        let v = snap.queue_depth.get(&n.name).copied().unwrap_or(0);
        out.sample_u64("sentinel_notifier_queue_depth", &[("notifier", &n.name)], v);
    }
}
