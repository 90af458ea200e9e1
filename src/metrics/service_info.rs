//! Config facts that dashboards join on: `sentinel_service_info` and
//! `sentinel_response_target_seconds`.

use crate::config::Config;
use crate::metrics::{Expo, MetricType};

/// Longest `description` label value, in characters: the label is for
/// telling services apart on a dashboard, not for documentation.
pub(super) const DESCRIPTION_LABEL_MAX_CHARS: usize = 120;

/// Config facts that dashboards join on: `sentinel_service_info` (value 1)
/// for every configured service, and `sentinel_response_target_seconds` for
/// every configured severity and stage. Label values are config text only
/// (an unset owner, tier or description is the empty value, which Prometheus
/// treats as no label).
pub fn render_service_info(out: &mut Expo, cfg: &Config) {
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
