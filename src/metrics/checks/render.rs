//! The `sentinel_check_*` families, rendered from one [`SlotReading`] per check.

use super::slot::{BUCKETS, CheckSlot, QUANTILES, SlotReading};
use crate::metrics::expo::{Expo, MetricType};
use crate::probe::Reason;

pub(super) fn render_readings(out: &mut Expo, snaps: &[(&CheckSlot, SlotReading)], buckets: bool) {
    out.family(
        "sentinel_check_up",
        "1 if the last run of the check was good, 0 if it was bad.",
        MetricType::Gauge,
    );
    for (slot, s) in snaps {
        if let Some(up) = s.up {
            out.sample_set_u64("sentinel_check_up", &slot.labels, &[], u64::from(up));
        }
    }

    out.family(
        "sentinel_check_runs_total",
        "Finished runs of the check by result.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        for (result, n) in [("good", s.good), ("bad", s.bad)] {
            out.sample_set_u64(
                "sentinel_check_runs_total",
                &slot.labels,
                &[("result", result)],
                n,
            );
        }
    }

    out.family(
        "sentinel_check_failures_total",
        "Bad runs of the check by reason; reasons that never occurred are omitted.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        for (reason, n) in Reason::ALL.iter().zip(s.failures) {
            if n > 0 {
                out.sample_set_u64(
                    "sentinel_check_failures_total",
                    &slot.labels,
                    &[("reason", reason.as_str())],
                    n,
                );
            }
        }
    }

    out.family(
        "sentinel_check_skipped_total",
        "Runs not started because the previous run of the check was still going.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        out.sample_set_u64("sentinel_check_skipped_total", &slot.labels, &[], s.skipped);
    }

    out.family(
        "sentinel_check_local_errors_total",
        "Runs that could not probe the target because of an error of this host (out of descriptors, memory, socket buffers or local ports); not counted as runs.",
        MetricType::Counter,
    );
    for (slot, s) in snaps {
        out.sample_set_u64(
            "sentinel_check_local_errors_total",
            &slot.labels,
            &[],
            s.local_errors,
        );
    }

    out.family(
        "sentinel_check_duration_seconds",
        "Duration of finished runs of the check.",
        MetricType::Histogram,
    );
    for (slot, s) in snaps {
        let mut cumulative = 0;
        for ((_, le), n) in BUCKETS.iter().zip(s.buckets) {
            cumulative += n;
            if buckets {
                out.sample_set_u64(
                    "sentinel_check_duration_seconds_bucket",
                    &slot.labels,
                    &[("le", le)],
                    cumulative,
                );
            }
        }
        out.sample_set_u64(
            "sentinel_check_duration_seconds_bucket",
            &slot.labels,
            &[("le", "+Inf")],
            s.count,
        );
        out.sample_set(
            "sentinel_check_duration_seconds_sum",
            &slot.labels,
            &[],
            s.sum_seconds,
        );
        out.sample_set_u64(
            "sentinel_check_duration_seconds_count",
            &slot.labels,
            &[],
            s.count,
        );
    }

    // Typed `summary` (quantiles only, no `_sum`/`_count`) although the metric
    // is documented as a gauge: `promtool check metrics` rejects a `quantile` label
    // on any other type, and the series Prometheus stores are identical.
    out.family(
        "sentinel_check_latency_seconds",
        "Run duration quantiles over the last 5 minutes (HdrHistogram, within 3.2%).",
        MetricType::Summary,
    );
    for (slot, s) in snaps {
        if let Some(q) = s.quantiles {
            for ((_, label), v) in QUANTILES.iter().zip(q) {
                out.sample_set(
                    "sentinel_check_latency_seconds",
                    &slot.labels,
                    &[("quantile", label)],
                    v,
                );
            }
        }
    }

    out.family(
        "sentinel_check_tls_cert_expiry_timestamp_seconds",
        "notAfter of the last certificate the check saw, in unix seconds.",
        MetricType::Gauge,
    );
    for (slot, s) in snaps {
        if let Some(t) = s.cert_not_after {
            out.sample_set_i64(
                "sentinel_check_tls_cert_expiry_timestamp_seconds",
                &slot.labels,
                &[],
                t,
            );
        }
    }
}
