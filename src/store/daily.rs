//! Daily availability for the status page: hour buckets summed per UTC day
//! and service. Days are `[00:00, 24:00)` UTC; an hour bucket belongs to the
//! day its start falls in, so the sum is exact (hours never straddle days).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, params};

use super::{ReadOnlyStore, Store, StoreError};
use crate::slo::Counts;

const DAY_SECS: i64 = 86_400;

/// One service's runs over one UTC day (or the part of it stored so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounts {
    pub service: Arc<str>,
    /// Unix seconds of the day's 00:00 UTC.
    pub day: i64,
    pub counts: Counts,
}

/// Hour buckets starting in `[from, until)`, summed per (UTC day, service),
/// ordered by day then service. `from` is rounded down to its day.
pub fn daily_service_counts(
    conn: &Connection,
    from: i64,
    until: i64,
) -> Result<Vec<DayCounts>, StoreError> {
    const OP: &str = "daily_service_counts";
    let read = |source| StoreError::Read { op: OP, source };
    let from = from.div_euclid(DAY_SECS) * DAY_SECS;
    // The range scan follows the primary key (resolution, start, ...); the
    // grouping by day needs a small temporary index of (day, service) groups.
    let mut stmt = conn
        .prepare_cached(
            "SELECT service, (start / 86400) * 86400 AS day,
                    SUM(valid), SUM(good), SUM(latency_good)
             FROM buckets
             WHERE resolution = 1 AND start >= ?1 AND start < ?2
             GROUP BY day, service
             ORDER BY day, service",
        )
        .map_err(read)?;
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut rows = stmt.query(params![from.max(0), until]).map_err(read)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(read)? {
        let name: String = row.get(0).map_err(read)?;
        let service = match names.get(&name) {
            Some(a) => Arc::clone(a),
            None => {
                let a: Arc<str> = Arc::from(name.as_str());
                names.insert(name, Arc::clone(&a));
                a
            }
        };
        let count = |i: usize| -> Result<u64, StoreError> {
            let v: i64 = row.get(i).map_err(read)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        out.push(DayCounts {
            service,
            day: row.get(1).map_err(read)?,
            counts: Counts {
                valid: count(2)?,
                good: count(3)?,
                latency_good: count(4)?,
            },
        });
    }
    Ok(out)
}

impl Store {
    /// See [`daily_service_counts`].
    pub async fn daily_service_counts(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<DayCounts>, StoreError> {
        self.call(move |c| daily_service_counts(c, from, until))
            .await
    }
}

impl ReadOnlyStore {
    /// See [`daily_service_counts`].
    pub fn daily_service_counts(
        &self,
        from: i64,
        until: i64,
    ) -> Result<Vec<DayCounts>, StoreError> {
        daily_service_counts(&self.conn, from, until)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::BucketDelta;

    fn delta(service: &str, check: &str, at: i64, valid: u64, good: u64) -> BucketDelta {
        BucketDelta {
            service: service.into(),
            check: check.into(),
            at_minute: at,
            counts: Counts {
                valid,
                good,
                latency_good: good,
            },
        }
    }

    #[tokio::test]
    async fn hours_sum_per_utc_day_and_service_across_checks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        // 2026-03-01T00:00:00Z
        let d1 = 1_772_323_200;
        let d2 = d1 + DAY_SECS;
        store
            .add_counts(vec![
                // Day 1: two checks of `web`, first and last minute of the day.
                delta("web", "home", d1, 100, 100),
                delta("web", "api", d1 + 23 * 3600 + 59 * 60, 50, 47),
                // Day 2, just after midnight: belongs to day 2 only.
                delta("web", "home", d2, 10, 9),
                delta("mail", "smtp", d2 + 3600, 7, 7),
                // Before `from`: not read.
                delta("web", "home", d1 - 60, 1000, 0),
            ])
            .await
            .unwrap();
        // `from` inside day 1 is rounded down to its midnight.
        let rows = store
            .daily_service_counts(d1 + 5, d2 + DAY_SECS)
            .await
            .unwrap();
        let got: Vec<(&str, i64, u64, u64)> = rows
            .iter()
            .map(|r| (&*r.service, r.day, r.counts.valid, r.counts.good))
            .collect();
        assert_eq!(
            got,
            vec![
                ("web", d1, 150, 147),
                ("mail", d2, 7, 7),
                ("web", d2, 10, 9),
            ]
        );
        // `until` is exclusive on bucket starts: day 2's 01:00 hour is cut.
        let rows = store.daily_service_counts(d2, d2 + 3600).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].counts.valid, 10);
        store.close().await.unwrap();
        let ro = ReadOnlyStore::open(&dir.path().join("s.db")).unwrap();
        assert_eq!(ro.daily_service_counts(d1, d2).unwrap().len(), 1);
    }
}
