//! Per-check telemetry: the `sentinel_check_*` families.
//!
//! One [`CheckSlot`] per configured check. The scheduler holds an
//! `Arc<CheckSlot>` and records into it directly, so the hot path is one
//! uncontended mutex and no map lookup. [`CheckMetrics`] owns the map from
//! (service, check) to slot, keeps it in step with the config on reload, and
//! renders every slot in a stable (service, check) order.
//!
//! Choices a user can see:
//! - `sentinel_check_up` and `sentinel_check_tls_cert_expiry_timestamp_seconds`
//!   appear only once known (after the first run / first certificate seen), so
//!   a freshly added check does not read as down.
//! - `sentinel_check_failures_total{reason}` renders only reasons that occurred
//!   at least once. Rendering all ten for every check would more than double
//!   the scrape for 10 000 checks; alert on `runs_total{result="bad"}`, which is
//!   always present (zero included).
//! - `sentinel_check_latency_seconds{quantile}` covers the current minute and
//!   the four before it (so 4–5 minutes of data), and is absent when that
//!   window holds no run. It is exposed with `# TYPE summary` (quantile
//!   samples only): the series are the ones the contract names, but `promtool
//!   check metrics` rejects a `quantile` label on a gauge.
//! - A run that ended in a local error ([`crate::probe::Reason::Local`]: this host ran out
//!   of descriptors, memory, ...) is not a run of the target: it only counts
//!   in `sentinel_check_local_errors_total` and leaves `up`, the run counters,
//!   the histograms and the last run shown by the API untouched.

mod render;
mod slot;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::metrics::expo::Expo;
use render::render_readings;
pub use slot::{
    CheckSlot, DETAIL_MAX_CHARS, LOCAL_ERROR_LOG_EVERY, LastRun, Transition, short_detail,
};
use slot::{SlotReading, new_hdr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    pub kept: usize,
    pub added: usize,
    pub removed: usize,
}

/// The registry of check slots: service → check → slot, sorted so the scrape
/// is stable.
#[derive(Debug, Default)]
pub struct CheckMetrics {
    /// Written only on (re)load; read per scrape and by `slot()` when the
    /// scheduler (re)builds its tasks.
    slots: RwLock<BTreeMap<String, BTreeMap<String, Arc<CheckSlot>>>>,
    /// `metrics.check_histograms: false` clears this: the duration histogram
    /// then keeps only `+Inf`, `_sum` and `_count` (3 series per check instead
    /// of 14). Inverted so the `Default` is "on".
    no_histogram_buckets: AtomicBool,
}

impl CheckMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the registry hold exactly `checks`, given as (service, check)
    /// pairs. Slots of checks that still exist are kept — a config reload must
    /// not reset their counters (Prometheus would read a reset as a restart) —,
    /// new checks get fresh slots, removed checks are dropped (the scheduler's
    /// `Arc` may outlive the map entry; its records then go nowhere).
    pub fn sync<S: AsRef<str>, C: AsRef<str>>(&self, checks: &[(S, C)]) -> SyncStats {
        // One write lock for the whole swap: a scheduler looking up a kept
        // check mid-reload must never see it missing.
        let mut map = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        let mut old = std::mem::take(&mut *map);
        let mut next: BTreeMap<String, BTreeMap<String, Arc<CheckSlot>>> = BTreeMap::new();
        let mut stats = SyncStats::default();
        for (service, check) in checks {
            let (service, check) = (service.as_ref(), check.as_ref());
            let entry = next.entry(service.to_owned()).or_default();
            if entry.contains_key(check) {
                // Duplicates are rejected by config validation; be idempotent anyway.
                continue;
            }
            let slot = match old.get_mut(service).and_then(|m| m.remove(check)) {
                Some(slot) => {
                    stats.kept += 1;
                    slot
                }
                None => {
                    stats.added += 1;
                    Arc::new(CheckSlot::new(service, check))
                }
            };
            entry.insert(check.to_owned(), slot);
        }
        stats.removed = old.values().map(BTreeMap::len).sum();
        *map = next;
        stats
    }

    /// The (service, check) pairs of a config, in config order: the argument
    /// for [`CheckMetrics::sync`].
    pub fn checks_of(config: &crate::config::Config) -> Vec<(String, String)> {
        config
            .services
            .iter()
            .flat_map(|s| s.checks.iter().map(|c| (s.name.clone(), c.name.clone())))
            .collect()
    }

    /// Export the `le` buckets of `sentinel_check_duration_seconds` (on by
    /// default). Counting is unchanged either way, so turning them back on
    /// shows the full history.
    pub fn set_histograms(&self, on: bool) {
        self.no_histogram_buckets.store(!on, Ordering::Relaxed);
    }

    /// The slot of one check, for the scheduler to hold.
    pub fn slot(&self, service: &str, check: &str) -> Option<Arc<CheckSlot>> {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)?
            .get(check)
            .cloned()
    }

    /// Number of checks held.
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(BTreeMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Renders every `sentinel_check_*` family, checks sorted by (service, check).
    pub fn render(&self, out: &mut Expo, now_unix_secs: i64) {
        // Snapshot first (each slot locked once, briefly), render after, so
        // neither the map lock nor any slot lock is held while formatting.
        let slots: Vec<Arc<CheckSlot>> = self
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        let mut scratch = new_hdr();
        let readings: Vec<(&CheckSlot, SlotReading)> = slots
            .iter()
            .map(|slot| (slot.as_ref(), slot.snapshot(now_unix_secs, &mut scratch)))
            .collect();
        let buckets = !self.no_histogram_buckets.load(Ordering::Relaxed);
        render_readings(out, &readings, buckets);
    }
}
