//! The status page's history: daily run counts per service (from the
//! store's hour buckets) and incidents of the last [`DAYS`] days, cached so a
//! request never waits on SQLite unless the cache is cold.
//!
//! Refresh rule ([`History::stale`]): at most once a minute, and at once when
//! an hour has closed since the last load. Days before yesterday change only
//! when the UTC date does, so they are read once a day; yesterday (runs
//! finishing just before midnight are flushed just after it) and today are
//! re-read on every refresh, a few hundred rows per service at most.
//!
//! The reads go through their own read-only SQLite connection, on a blocking
//! thread, so they never queue in front of the engine's writes on the store
//! thread (WAL lets one writer and readers proceed together).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use jiff::Timestamp;

use crate::incident::Incident;
use crate::slo::Counts;
use crate::store::{ReadOnlyStore, StoreError};

/// Days of bars on the page.
pub const DAYS: usize = 90;
pub const DAY_SECS: i64 = 86_400;
/// The longest a page may show counts older than the store's.
pub const MAX_AGE_SECS: i64 = 60;

/// Daily counts per service and recent incidents, as loaded at `loaded_at`.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub loaded_at: Option<Timestamp>,
    /// Unix seconds of the UTC day `loaded_at` falls in.
    pub today: i64,
    days: HashMap<Arc<str>, BTreeMap<i64, Counts>>,
    /// Incidents opened in the last [`DAYS`] days, and every open one, from the store.
    pub incidents: Vec<Incident>,
}

impl History {
    /// History from explicit rows (tests, benchmarks): `(service, day start, counts)`.
    pub fn from_days(
        rows: impl IntoIterator<Item = (String, i64, Counts)>,
        incidents: Vec<Incident>,
    ) -> History {
        let mut h = History {
            incidents,
            ..History::default()
        };
        for (service, day, counts) in rows {
            h.days
                .entry(Arc::from(service.as_str()))
                .or_default()
                .insert(day.div_euclid(DAY_SECS) * DAY_SECS, counts);
        }
        h
    }

    /// Counts of `service` on the UTC day starting at `day`.
    pub fn day(&self, service: &str, day: i64) -> Option<Counts> {
        self.days.get(service)?.get(&day).copied()
    }

    /// Every stored day of `service`, by day start.
    pub fn days_of(&self, service: &str) -> Option<&BTreeMap<i64, Counts>> {
        self.days.get(service)
    }

    /// Whether the history must be re-read at `now`: never loaded, a minute
    /// old, or an hour (so also a day) has closed since it was loaded.
    pub fn stale(&self, now: Timestamp) -> bool {
        let Some(at) = self.loaded_at else {
            return true;
        };
        let (now_s, at_s) = (now.as_second(), at.as_second());
        now_s - at_s >= MAX_AGE_SECS || now_s.div_euclid(3600) != at_s.div_euclid(3600)
    }

    /// The history at `now`, re-reading from `store` what may have changed
    /// since `self` was loaded (see the module doc).
    pub fn refreshed(&self, store: &ReadOnlyStore, now: Timestamp) -> Result<History, StoreError> {
        let today = super::model::day_start(now);
        let first = today - (DAYS as i64 - 1) * DAY_SECS;
        let yesterday = today - DAY_SECS;
        let mut days: HashMap<Arc<str>, BTreeMap<i64, Counts>> = HashMap::new();
        let old_from = if self.loaded_at.is_some() && self.today == today {
            // Same UTC day: the days before yesterday are final; keep them.
            for (svc, map) in &self.days {
                let kept: BTreeMap<i64, Counts> =
                    map.range(first..yesterday).map(|(d, c)| (*d, *c)).collect();
                if !kept.is_empty() {
                    days.insert(Arc::clone(svc), kept);
                }
            }
            yesterday
        } else {
            first
        };
        for row in store.daily_service_counts(old_from, now.as_second() + 3600)? {
            days.entry(row.service)
                .or_default()
                .insert(row.day, row.counts);
        }
        let mut incidents = Vec::new();
        for (id, body) in store.load_incidents(first)? {
            match Incident::from_json(&body) {
                Ok(i) => incidents.push(i),
                Err(e) => {
                    tracing::warn!(incident = %id, error = %e, "stored incident is unreadable; not shown on the status page")
                }
            }
        }
        Ok(History {
            loaded_at: Some(now),
            today,
            days,
            incidents,
        })
    }
}

/// A read-only connection to the state file, opened on first use (the
/// daemon creates the file before it serves) and reopened after a failed
/// read (the file may have been moved or replaced).
#[derive(Clone, Default)]
pub struct Reader {
    conn: Arc<Mutex<Option<(PathBuf, ReadOnlyStore)>>>,
}

impl Reader {
    /// Runs `f` on the connection to `path`, on a blocking thread.
    pub async fn read<T, F>(&self, path: &Path, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadOnlyStore) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = path.to_path_buf();
        let joined = tokio::task::spawn_blocking(move || {
            let mut slot = match conn.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if slot.as_ref().is_none_or(|(p, _)| *p != path) {
                *slot = Some((path.clone(), ReadOnlyStore::open(&path)?));
            }
            let result = match slot.as_ref() {
                Some((_, store)) => f(store),
                None => Err(StoreError::Missing { path }),
            };
            if result.is_err() {
                *slot = None;
            }
            result
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(StoreError::Open {
                path: self.path_hint(),
                detail: format!("the status page's store reader panicked: {e}"),
            }),
        }
    }

    fn path_hint(&self) -> PathBuf {
        match self.conn.lock() {
            Ok(g) => g.as_ref().map(|(p, _)| p.clone()).unwrap_or_default(),
            Err(_) => PathBuf::new(),
        }
    }
}

/// The cached [`History`] and the reader that refreshes it. Shared (`Arc`)
/// so a refresh can run in the background while requests are answered.
pub struct HistoryCache {
    current: RwLock<Arc<History>>,
    reader: Reader,
    /// One refresh at a time.
    refreshing: Arc<tokio::sync::Mutex<()>>,
}

impl HistoryCache {
    pub fn new(reader: Reader) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(History::default())),
            reader,
            refreshing: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    fn current(&self) -> Arc<History> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The history at `now` from the state file at `path`. While it is fresh,
    /// the cached one. When it is stale, the cached one too, while one
    /// background task re-reads it (a day change re-reads 90 days: most of a
    /// second for 1 000 checks, which no request should wait for). Only a
    /// cache that was never loaded makes the request wait. A failed read is
    /// logged and the old history stays (retried a minute later): the page
    /// still shows the live state.
    pub async fn get(self: &Arc<Self>, path: &Path, now: Timestamp) -> Arc<History> {
        let cur = self.current();
        if !cur.stale(now) {
            return cur;
        }
        if cur.loaded_at.is_some() {
            if let Ok(guard) = Arc::clone(&self.refreshing).try_lock_owned() {
                let this = Arc::clone(self);
                let path = path.to_path_buf();
                tokio::spawn(async move {
                    this.refresh(&path, now, cur).await;
                    drop(guard);
                });
            }
            return self.current();
        }
        let _guard = self.refreshing.lock().await;
        let cur = self.current();
        if !cur.stale(now) {
            return cur;
        }
        self.refresh(path, now, cur).await
    }

    async fn refresh(&self, path: &Path, now: Timestamp, cur: Arc<History>) -> Arc<History> {
        let base = Arc::clone(&cur);
        let next = match self
            .reader
            .read(path, move |store| base.refreshed(store, now))
            .await
        {
            Ok(h) => Arc::new(h),
            Err(e) => {
                tracing::warn!(error = %e, "status page: reading history from the store failed; showing the previous history");
                Arc::new(History {
                    loaded_at: Some(now),
                    ..(*cur).clone()
                })
            }
        };
        match self.current.write() {
            Ok(mut g) => *g = Arc::clone(&next),
            Err(p) => *p.into_inner() = Arc::clone(&next),
        }
        next
    }
}

/// One calendar month's run counts per service and the incidents opened in it.
#[derive(Debug, Clone, Default)]
pub struct MonthData {
    pub counts: HashMap<String, Counts>,
    pub incidents: Vec<Incident>,
    pub loaded_at: Option<Timestamp>,
}

/// Months read for the report, kept so repeated views do not re-read SQLite:
/// a month that ended more than an hour before it was read never changes;
/// the current month is re-read at most once a minute.
pub struct MonthCache {
    reader: Reader,
    months: Mutex<BTreeMap<i64, Arc<MonthData>>>,
}

/// Months kept in memory.
const MONTHS_KEPT: usize = 24;

impl MonthCache {
    pub fn new(reader: Reader) -> Self {
        Self {
            reader,
            months: Mutex::new(BTreeMap::new()),
        }
    }

    /// The month `[start, end)` (unix seconds) at `now`.
    pub async fn get(
        &self,
        path: &Path,
        start: i64,
        end: i64,
        now: Timestamp,
    ) -> Result<Arc<MonthData>, StoreError> {
        let fresh = |m: &MonthData| {
            m.loaded_at.is_some_and(|at| {
                at.as_second() >= end + 3600 || now.as_second() - at.as_second() < MAX_AGE_SECS
            })
        };
        let cached = match self.months.lock() {
            Ok(g) => g.get(&start).cloned(),
            Err(p) => p.into_inner().get(&start).cloned(),
        };
        if let Some(m) = cached.filter(|m| fresh(m)) {
            return Ok(m);
        }
        let data = self
            .reader
            .read(path, move |store| {
                let mut counts: HashMap<String, Counts> = HashMap::new();
                for row in store.daily_service_counts(start, end)? {
                    let c = counts.entry(row.service.to_string()).or_default();
                    c.valid += row.counts.valid;
                    c.good += row.counts.good;
                    c.latency_good += row.counts.latency_good;
                }
                let mut incidents = Vec::new();
                for (id, body) in store.load_incidents(start)? {
                    match Incident::from_json(&body) {
                        Ok(i) => {
                            let at = i.opened_at.as_second();
                            if start <= at && at < end {
                                incidents.push(i);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(incident = %id, error = %e, "stored incident is unreadable; not in the report")
                        }
                    }
                }
                Ok(MonthData {
                    counts,
                    incidents,
                    loaded_at: Some(now),
                })
            })
            .await?;
        let data = Arc::new(data);
        let mut months = match self.months.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        months.insert(start, Arc::clone(&data));
        while months.len() > MONTHS_KEPT {
            let oldest = months
                .iter()
                .min_by_key(|(_, m)| m.loaded_at)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => months.remove(&k),
                None => break,
            };
        }
        Ok(data)
    }
}
