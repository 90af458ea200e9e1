//! The documented range of every number in the config file.
//!
//! Validation checks each value against its range here, so a hostile or
//! mistyped number (`window: 100000000w`, `max_body_bytes: 9223372036854775807`)
//! is a config error at `validate` and at reload, never an allocation failure
//! at run time. `docs/configuration.md` lists the same ranges (a test checks it).
//! `sentinel report --window` uses [`SLO_WINDOW`] too.

use std::time::Duration;

/// An inclusive range of durations, with why it has those bounds (the hint of
/// an out-of-range problem; empty when the range says it all).
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
    pub why: &'static str,
}

impl DurationRange {
    pub fn contains(&self, d: Duration) -> bool {
        self.min <= d && d <= self.max
    }
}

/// An inclusive range of whole numbers, with why it has those bounds.
#[derive(Debug, Clone, Copy)]
pub struct IntRange {
    pub min: i64,
    pub max: i64,
    pub why: &'static str,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// `interval` of a check and `defaults.interval`.
pub const INTERVAL: DurationRange = DurationRange {
    min: ms(100),
    max: secs(DAY),
    why: "a check runs at most 10 times a second and at least once a day",
};

/// `timeout` of a check and `defaults.timeout` (also never longer than the interval).
pub const TIMEOUT: DurationRange = DurationRange {
    min: ms(10),
    max: secs(10 * MINUTE),
    why: "a probe gets between 10ms and 10m to finish",
};

/// `slo.window` (also at most `storage.retention`).
pub const SLO_WINDOW: DurationRange = DurationRange {
    min: secs(HOUR),
    max: secs(400 * DAY),
    why: "the SLO history is kept in memory in hour buckets; use 1h to 400d, or `month`",
};

/// `slo.latency.threshold` and `http.expect.max_latency`.
pub const LATENCY: DurationRange = DurationRange {
    min: ms(1),
    max: secs(10 * MINUTE),
    why: "a latency bound is between 1ms and 10m",
};

/// `storage.retention`: hour buckets and incidents.
pub const RETENTION: DurationRange = DurationRange {
    min: secs(3 * DAY),
    max: secs(1830 * DAY),
    why: "history must cover the 3d burn window and is kept for at most 5 years (1830d)",
};

/// `storage.minute_retention`: minute buckets.
pub const MINUTE_RETENTION: DurationRange = DurationRange {
    min: secs(6 * HOUR),
    max: secs(7 * DAY),
    why: "windows up to 6h read minute buckets, longer ones hour buckets",
};

/// `notifiers[].timeout`: one delivery attempt.
pub const NOTIFIER_TIMEOUT: DurationRange = DurationRange {
    min: ms(100),
    max: secs(5 * MINUTE),
    why: "one delivery attempt gets between 100ms and 5m",
};

/// `notifiers[].max_age`: how long an event is retried.
pub const NOTIFIER_MAX_AGE: DurationRange = DurationRange {
    min: secs(MINUTE),
    max: secs(30 * DAY),
    why: "events are retried for between 1m and 30d",
};

/// `notifiers[].repost_every` (`alertmanager`).
pub const REPOST_EVERY: DurationRange = DurationRange {
    min: secs(1),
    max: secs(5 * MINUTE),
    why: "an open incident's alert is sent again at least every 5m, so Alertmanager never lets it expire",
};

/// `response_targets.*.acknowledge` and `.restore`.
pub const RESPONSE_TARGET: DurationRange = DurationRange {
    min: secs(MINUTE),
    max: secs(90 * DAY),
    why: "a response target is between 1m and 90d",
};

/// `incident.open_after` and `incident.resolve_after`.
pub const STREAK: IntRange = IntRange {
    min: 1,
    max: 1000,
    why: "",
};

/// `server.max_connections`.
pub const MAX_CONNECTIONS: IntRange = IntRange {
    min: 1,
    max: 1_000_000,
    why: "",
};

/// `server.read_timeout`.
pub const READ_TIMEOUT: DurationRange = DurationRange {
    min: ms(100),
    max: secs(5 * MINUTE),
    why: "a client gets between 100ms and 5m to send a request head, and again its body",
};

/// `server.max_concurrency`.
pub const MAX_CONCURRENCY: IntRange = IntRange {
    min: 1,
    max: 1_000_000,
    why: "",
};

/// `server.worker_threads`.
pub const WORKER_THREADS: IntRange = IntRange {
    min: 1,
    max: 256,
    why: "",
};

/// `http.max_body_bytes`: 64 MiB, the most one probe may buffer.
pub const MAX_BODY_BYTES: IntRange = IntRange {
    min: 1,
    max: 64 * 1024 * 1024,
    why: "at most 64 MiB (67108864) of a response body is read and held per run",
};

/// `cert_min_days` of `http.expect`, `tcp` and `tls`.
pub const CERT_MIN_DAYS: IntRange = IntRange {
    min: 0,
    max: 3650,
    why: "",
};

/// `tcp.port`, `tls.port`.
pub const PORT: IntRange = IntRange {
    min: 1,
    max: 65535,
    why: "",
};

/// `slo.objective` and `slo.latency.objective`, in percent: greater than 0
/// and at most this. Beyond five nines a synthetic check cannot tell the
/// difference (30 days of one run every 30s allow 0.86 bad runs at 99.999).
pub const MAX_OBJECTIVE_PERCENT: f64 = 99.999;

/// Names (services, checks, notifiers) become metric labels and URL segments;
/// they are ASCII, so characters and bytes are the same count.
pub const MAX_NAME_CHARS: usize = 128;

/// A config file (the main one or an included one) larger than this is refused
/// before parsing; 100 000 checks take about 20 MiB.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;
