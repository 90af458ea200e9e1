//! The incidents' external tickets: [`Book`] (what readers see) and
//! [`Desk`] (the connectors' record, loaded from and written to the store).

use super::*;

/// A ticket as the API and events show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    pub notifier: String,
    /// What people call the record: `INC0010001`, `OPS-12`, an Opsgenie
    /// tiny id (the alias until Opsgenie has processed the create).
    pub key: String,
    /// A link to the record; `null` for Opsgenie (its API does not say
    /// which web address an account uses).
    pub url: Option<String>,
}

pub(super) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Every known ticket by (incident, notifier). Cheap to clone; clones
/// share one map.
#[derive(Debug, Clone, Default)]
pub struct Book(Arc<RwLock<BTreeMap<(String, String), TicketRow>>>);

impl Book {
    pub fn get(&self, incident: &str, notifier: &str) -> Option<TicketRow> {
        read(&self.0)
            .get(&(incident.to_string(), notifier.to_string()))
            .cloned()
    }

    pub fn put(&self, row: TicketRow) {
        write(&self.0).insert((row.incident_id.clone(), row.notifier.clone()), row);
    }

    /// The incident's tickets whose key is known, by notifier name.
    pub fn refs(&self, incident: &str) -> Vec<TicketRef> {
        let map = read(&self.0);
        map.range((incident.to_string(), String::new())..)
            .take_while(|((i, _), _)| i == incident)
            .filter_map(|(_, t)| {
                Some(TicketRef {
                    notifier: t.notifier.clone(),
                    key: t.key.clone()?,
                    url: t.url.clone(),
                })
            })
            .collect()
    }

    /// The incident whose `provider` ticket (`servicenow`, `jira`,
    /// `opsgenie`) has `reference` as its provider id, key or lookup value:
    /// how an inbound hook finds the incident of a provider's record. The
    /// most recently updated ticket wins.
    pub fn find(&self, provider: &str, reference: &str) -> Option<String> {
        read(&self.0)
            .values()
            .filter(|t| t.provider == provider)
            .filter(|t| {
                t.ext_id.as_deref() == Some(reference)
                    || t.key.as_deref() == Some(reference)
                    || t.lookup == reference
            })
            .max_by_key(|t| t.updated_at)
            .map(|t| t.incident_id.clone())
    }

    /// Every ticket, by incident then notifier.
    pub fn all(&self) -> Vec<TicketRow> {
        read(&self.0).values().cloned().collect()
    }
}

/// The ticket connectors' state: the [`Book`], and the store that keeps
/// it across restarts.
pub struct Desk {
    pub(super) book: Book,
    /// `None`: memory only (tests and tools without a state file).
    pub(super) store: Option<Store>,
    pub(super) clock: Arc<dyn Clock>,
    /// Rows recorded in the book that the store has not taken yet (a
    /// failing disk); stored again before every later record.
    pub(super) unstored: Mutex<BTreeMap<(String, String), TicketRow>>,
    pub(super) store_failures: AtomicU64,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("tickets", &read(&self.book.0).len())
            .field("stored", &self.store.is_some())
            .finish()
    }
}

impl Desk {
    /// A desk that keeps tickets in memory only.
    pub fn memory(clock: Arc<dyn Clock>) -> Desk {
        Desk {
            book: Book::default(),
            store: None,
            clock,
            unstored: Mutex::new(BTreeMap::new()),
            store_failures: AtomicU64::new(0),
        }
    }

    /// A desk backed by `store`, with every stored ticket loaded.
    pub async fn load(
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Desk, crate::store::StoreError> {
        let rows = store.tickets_load().await?;
        let desk = Desk {
            store: Some(store),
            ..Desk::memory(clock)
        };
        for row in rows {
            desk.book.put(row);
        }
        Ok(desk)
    }

    pub fn book(&self) -> Book {
        self.book.clone()
    }

    /// Keep `row` in the book at once, then store it (with any row the
    /// store refused before). A store that cannot write is logged (the
    /// first time, then every 60th) and the row kept for the next try: the
    /// book is what this process acts on, and after a restart the lookup at
    /// the provider finds the record again.
    pub async fn record(&self, row: TicketRow) {
        self.book.put(row.clone());
        let Some(store) = &self.store else { return };
        let rows: Vec<TicketRow> = {
            let mut pending = self.unstored.lock().unwrap_or_else(PoisonError::into_inner);
            pending.insert((row.incident_id.clone(), row.notifier.clone()), row);
            pending.values().cloned().collect()
        };
        match store.ticket_put(rows.clone()).await {
            Ok(()) => {
                let mut pending = self.unstored.lock().unwrap_or_else(PoisonError::into_inner);
                for r in rows {
                    let k = (r.incident_id.clone(), r.notifier.clone());
                    if pending.get(&k) == Some(&r) {
                        pending.remove(&k);
                    }
                }
                self.store_failures.store(0, Ordering::Relaxed);
            }
            Err(e) => {
                let n = self.store_failures.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(60) {
                    tracing::error!(error = %e, "storing ticket keys failed; keeping them in memory and retrying with the next ticket change");
                }
            }
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
