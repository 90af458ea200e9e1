//! The per-notifier delivery tasks: fetch due rows, attempt them (plain
//! notifiers or a ticket conversation), hold and store the outcomes.

use super::*;

/// The supervisor's delivery tasks, one per notifier name.
pub(super) struct Tasks {
    pub(super) set: JoinSet<()>,
    pub(super) names: HashMap<tokio::task::Id, String>,
    pub(super) shutdown: CancellationToken,
    pub(super) poll: Duration,
}

pub(super) fn panic_text(e: tokio::task::JoinError) -> String {
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-text panic)".to_string())
}

pub(super) fn targets(notifiers: &[Notifier], secrets: Secrets) -> Targets {
    Targets {
        notifiers: notifiers
            .iter()
            .map(|n| (n.name.clone(), n.clone()))
            .collect(),
        secrets,
    }
}

pub(super) fn current<S>(inner: &Inner<S>) -> Arc<Targets> {
    Arc::clone(&inner.targets.read().unwrap_or_else(PoisonError::into_inner))
}

pub(super) fn queue<S>(inner: &Inner<S>, name: &str) -> Arc<Queue> {
    Arc::clone(
        lock(&inner.queues)
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Queue::new(name))),
    )
}

/// One notifier's delivery loop: fetch due events, deliver up to
/// `concurrency` incidents at once, store outcomes, and go again when an
/// attempt finishes, the engine wrote events, `poll` passes, or a reload
/// changed the notifier. Returns on shutdown, or when the notifier is not
/// configured and nothing of it is queued.
pub(super) async fn serve<S: OutboxStore>(
    inner: &Arc<Inner<S>>,
    q: &Arc<Queue>,
    shutdown: &CancellationToken,
    poll: Duration,
    batch: usize,
    concurrency: usize,
) {
    let concurrency = concurrency.max(1);
    let mut inflight: JoinSet<()> = JoinSet::new();
    // Incident of each attempt in flight; its other events wait.
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    // Fetched, not yet started (bounded by `batch`).
    let mut backlog: VecDeque<Vec<OutboxRow>> = VecDeque::new();
    let mut retry_now = false;
    let mut store_failures = 0u64;
    // Alertmanager notifiers re-post open incidents' alerts: at once, then
    // every `repost_every` (see the module docs).
    let mut next_repost = repost_every(inner, &q.name).map(|_| tokio::time::Instant::now());
    loop {
        // Every wake-up below is a reason to look for due events, once the
        // previous fetch has been started.
        if backlog.is_empty() {
            flush(inner, q).await;
            let configured = current(inner).notifiers.contains_key(&q.name);
            // A notifier that is gone drains its queue whatever the schedule.
            let due_at = if retry_now || !configured {
                Timestamp::MAX
            } else {
                inner.clock.now()
            };
            retry_now = false;
            let taken: HashSet<&String> = busy.values().collect();
            match due(inner, q, due_at, batch).await {
                Ok((_, groups)) => backlog.extend(
                    groups
                        .into_iter()
                        .filter(|g| g.first().is_some_and(|r| !taken.contains(&r.incident_id))),
                ),
                Err(e) => {
                    if store_failures.is_multiple_of(60) {
                        tracing::warn!(notifier = %q.name, error = %e, "reading the outbox failed; retrying");
                    }
                    store_failures += 1;
                }
            }
            if !configured && backlog.is_empty() && inflight.is_empty() {
                flush(inner, q).await;
                return;
            }
        }
        while inflight.len() < concurrency
            && let Some(group) = backlog.pop_front()
        {
            let incident = group
                .first()
                .map(|r| r.incident_id.clone())
                .unwrap_or_default();
            let (inner, q) = (Arc::clone(inner), Arc::clone(q));
            let h = inflight.spawn(async move {
                deliver_group(&inner, &q, group).await;
            });
            busy.insert(h.id(), incident);
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = q.retarget.notified() => {
                inflight.abort_all();
                while inflight.join_next().await.is_some() {}
                busy.clear();
                backlog.clear();
                retry_now = true;
                // A new Alertmanager (or period) gets the open alerts now.
                next_repost = repost_every(inner, &q.name).map(|_| tokio::time::Instant::now());
            }
            () = tokio::time::sleep_until(next_repost.unwrap_or_else(tokio::time::Instant::now)),
                if next_repost.is_some() =>
            {
                let skip: HashSet<String> = busy.values().cloned().collect();
                // A hanging Alertmanager holds this loop for at most the
                // notifier's timeout per request, and never a shutdown.
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = repost(inner, q, &skip) => {}
                }
                next_repost =
                    repost_every(inner, &q.name).map(|p| tokio::time::Instant::now() + p);
            }
            Some(res) = inflight.join_next_with_id() => {
                let id = match &res {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                busy.remove(&id);
                if let Err(e) = res
                    && e.is_panic()
                {
                    // Let the supervisor log, count and restart the task.
                    std::panic::resume_unwind(e.into_panic());
                }
                // Store what finished (other attempts that finished
                // together are flushed with it).
                while let Some(Ok((id, ()))) = inflight.try_join_next_with_id() {
                    busy.remove(&id);
                }
                flush(inner, q).await;
            }
            () = q.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    inflight.abort_all();
    while inflight.join_next().await.is_some() {}
    flush(inner, q).await;
}

/// `repost_every` of notifier `name` when it is a configured Alertmanager.
pub(super) fn repost_every<S>(inner: &Inner<S>, name: &str) -> Option<Duration> {
    match current(inner).notifiers.get(name).map(|n| &n.kind) {
        Some(NotifierKind::Alertmanager { repost_every, .. }) => Some(*repost_every),
        _ => None,
    }
}

/// Alerts per re-post request.
const REPOST_BATCH: usize = 100;

/// Send the firing alert of every open incident `q`'s Alertmanager was
/// told about again, except those in `skip` (an attempt in flight). Counts
/// and logs; never fails.
pub(super) async fn repost<S: OutboxStore>(inner: &Inner<S>, q: &Queue, skip: &HashSet<String>) {
    let targets = current(inner);
    let Some(notifier) = targets.notifiers.get(&q.name) else {
        return;
    };
    let NotifierKind::Alertmanager { url, repost_every } = &notifier.kind else {
        return;
    };
    // What the store does not know yet (the disk is full) counts as finished.
    let settled: Vec<i64> = lock(&q.marks)
        .iter()
        .filter(|(_, o)| o.is_final())
        .map(|(s, _)| *s)
        .collect();
    let rows = match inner.store.outbox_open_heads(&q.name, &settled).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(notifier = %q.name, error = %e, "reading open incidents for the Alertmanager re-post failed; trying again at the next one");
            return;
        }
    };
    let events: Vec<Event> = rows
        .iter()
        .filter(|r| !skip.contains(&r.incident_id))
        .filter_map(|r| Event::from_payload(&r.payload).ok())
        .filter(|e| e.kind != crate::incident::EventType::Resolved)
        .collect();
    if events.is_empty() {
        return;
    }
    let ends_after = alertmanager_ends_after(*repost_every);
    for chunk in events.chunks(REPOST_BATCH) {
        let n = chunk.len() as u64;
        let now = inner.clock.now();
        let req = resolve_url(&q.name, url, &targets.secrets).and_then(|base| {
            PreparedRequest::json(
                alertmanager::alerts_url(&base),
                &alertmanager::repost(chunk, now, ends_after),
                notifier.timeout,
            )
        });
        let result = match req {
            Ok(req) => send(&inner.client, &req).await,
            Err(e) => {
                tracing::debug!(notifier = %q.name, error = %e, "cannot build the Alertmanager re-post");
                DeliveryResult::Retry(RetryReason::Network)
            }
        };
        let failures = &q.repost_failures;
        if let DeliveryResult::Delivered { .. } = result {
            inner.stats.add_reposts(&q.name, Repost::Delivered, n);
            let before = failures.swap(0, std::sync::atomic::Ordering::Relaxed);
            if before > 0 {
                tracing::info!(notifier = %q.name, failures = before, "Alertmanager re-posts delivered again");
            }
        } else {
            inner.stats.add_reposts(&q.name, Repost::Failed, n);
            let before = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if before.is_multiple_of(60) {
                tracing::warn!(notifier = %q.name, alerts = n, result = ?result, "re-posting open incidents' alerts to Alertmanager failed; trying again in repost_every (their endsAt lasts four periods)");
            }
        }
    }
}

/// One pass over one notifier's queue (see [`Worker::run_once`]).
pub(super) async fn pass<S: OutboxStore>(
    inner: &Arc<Inner<S>>,
    q: &Arc<Queue>,
    batch: usize,
    concurrency: usize,
) -> Result<Pass, NotifyError> {
    flush(inner, q).await;
    let due_at = if current(inner).notifiers.contains_key(&q.name) {
        inner.clock.now()
    } else {
        Timestamp::MAX
    };
    let (due, groups) = due(inner, q, due_at, batch).await?;
    let mut total = Pass {
        due,
        ..Pass::default()
    };
    let mut tasks = JoinSet::new();
    for group in groups {
        while tasks.len() >= concurrency.max(1) {
            if let Some(res) = tasks.join_next().await {
                total.merge(joined(res));
            }
        }
        let (inner, q) = (Arc::clone(inner), Arc::clone(q));
        tasks.spawn(async move { deliver_group(&inner, &q, group).await });
    }
    while let Some(res) = tasks.join_next().await {
        total.merge(joined(res));
    }
    flush(inner, q).await;
    Ok(total)
}

pub(super) fn joined(res: Result<Pass, tokio::task::JoinError>) -> Pass {
    match res {
        Ok(p) => p,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Pass::default(),
    }
}

/// Due rows of one notifier as per-incident groups in `seq` order, with the
/// in-memory outcomes applied: finished rows are excluded (the store is told
/// to treat them as finished), and a retry schedule the store did not take
/// yet holds its row back. Also returns how many rows the store offered.
pub(super) async fn due<S: OutboxStore>(
    inner: &Inner<S>,
    q: &Queue,
    now: Timestamp,
    batch: usize,
) -> Result<(usize, Vec<Vec<OutboxRow>>), NotifyError> {
    let marks = lock(&q.marks).clone();
    let settled: Vec<i64> = marks
        .iter()
        .filter(|(_, o)| o.is_final())
        .map(|(s, _)| *s)
        .collect();
    let mut rows = inner
        .store
        .outbox_due(&q.name, now, batch, &settled)
        .await
        .map_err(|e| NotifyError::Store(Box::new(e)))?;
    rows.sort_by_key(|r| r.seq);
    let offered = rows.len();
    let mut groups: BTreeMap<String, Vec<OutboxRow>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    // Incidents whose first offered row still backs off (per memory): none
    // of their rows go in this fetch.
    let mut held: HashSet<String> = HashSet::new();
    for mut r in rows {
        if held.contains(&r.incident_id) {
            continue;
        }
        match marks.get(&r.seq) {
            Some(o) if o.is_final() => continue,
            Some(Outcome::Retry {
                attempts,
                next_attempt_at,
            }) => {
                r.attempts = *attempts;
                r.next_attempt_at = *next_attempt_at;
                if *next_attempt_at > now {
                    held.insert(r.incident_id.clone());
                    continue;
                }
            }
            _ => {}
        }
        if !groups.contains_key(&r.incident_id) {
            order.push(r.incident_id.clone());
        }
        groups.entry(r.incident_id.clone()).or_default().push(r);
    }
    // First-seen order is `seq` order of each incident's first due row.
    let out = order
        .into_iter()
        .filter_map(|i| groups.remove(&i))
        .collect();
    Ok((offered, out))
}

/// Rows of one incident for one notifier, in order; stops at the first row
/// that is not finished (delivered or dropped).
pub(super) async fn deliver_group<S: OutboxStore>(
    inner: &Inner<S>,
    q: &Queue,
    group: Vec<OutboxRow>,
) -> Pass {
    let mut pass = Pass::default();
    for row in group {
        let waiting = lock(&q.blocked)
            .get(&row.incident_id)
            .is_some_and(|head| *head < row.seq);
        if waiting {
            break;
        }
        let (attempt, outcome) = attempt(inner, &row).await;
        // Recorded in memory at once, before anything else can await: from
        // here on this row is never sent again while the process lives,
        // whether or not the store takes the outcome.
        inner.stats.add(&q.name, attempt);
        lock(&q.marks).insert(row.seq, outcome);
        {
            let mut b = lock(&q.blocked);
            if outcome.is_final() {
                if b.get(&row.incident_id) == Some(&row.seq) {
                    b.remove(&row.incident_id);
                }
            } else {
                b.insert(row.incident_id.clone(), row.seq);
            }
        }
        pass.count(attempt);
        if !outcome.is_final() {
            break;
        }
    }
    pass
}

/// Store the outcomes held in memory; on failure keep them (and log the
/// first failure, then every 60th).
pub(super) async fn flush<S: OutboxStore>(inner: &Inner<S>, q: &Queue) {
    let _one = q.flushing.lock().await;
    let marks: Vec<(i64, Outcome)> = lock(&q.marks).iter().map(|(s, o)| (*s, *o)).collect();
    if !marks.is_empty() {
        match inner.store.outbox_settle(&marks).await {
            Ok(()) => {
                let mut m = lock(&q.marks);
                for (seq, o) in &marks {
                    if m.get(seq) == Some(o) {
                        m.remove(seq);
                    }
                }
                let n = q
                    .flush_failures
                    .swap(0, std::sync::atomic::Ordering::Relaxed);
                if n > 0 {
                    tracing::info!(notifier = %q.name, failures = n, "delivery outcomes stored again");
                }
            }
            Err(e) => {
                let n = q
                    .flush_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(60) {
                    tracing::error!(notifier = %q.name, error = %e, held = marks.len(), "storing delivery outcomes failed; keeping them in memory (delivered events are not re-sent) and retrying");
                }
            }
        }
    }
    let held = lock(&q.marks).len() as u64;
    lock(&inner.stats.unstored).insert(q.name.clone(), held);
}

pub(super) fn desk<S>(inner: &Inner<S>) -> Arc<crate::notify::tickets::Desk> {
    Arc::clone(inner.tickets.get_or_init(|| {
        Arc::new(crate::notify::tickets::Desk::memory(Arc::clone(
            &inner.clock,
        )))
    }))
}

/// One attempt at `row`: what to count and what to record. Outbox outcomes
/// are not stored here; a ticket connector stores the ticket it learns.
pub(super) async fn attempt<S>(inner: &Inner<S>, row: &OutboxRow) -> (Attempt, Outcome) {
    let targets = current(inner);
    let Some(notifier) = targets.notifiers.get(&row.notifier) else {
        tracing::warn!(notifier = %row.notifier, event = %row.event_id, "notifier no longer configured; event dropped");
        return (
            Attempt::Expired,
            Outcome::Dropped {
                at: inner.clock.now(),
            },
        );
    };
    let mut event = match Event::from_payload(&row.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "undecodable outbox payload; event dropped");
            return (
                Attempt::Expired,
                Outcome::Dropped {
                    at: inner.clock.now(),
                },
            );
        }
    };
    let desk = desk(inner);
    event.incident.tickets = desk.book().refs(&event.incident.id);
    let (result, url) = if notifier.kind.is_ticket() {
        // A conversation with the provider; it logs its own refusals.
        let r = crate::notify::tickets::deliver(
            &desk,
            &inner.client,
            notifier,
            &event,
            &targets.secrets,
        )
        .await;
        (r, None)
    } else {
        match build_request(notifier, &event, &targets.secrets, inner.clock.now()) {
            Ok(req) => (send(&inner.client, &req).await, Some(req.url)),
            Err(e) => {
                // A missing secret may be fixed by a reload: retry until max_age.
                tracing::error!(notifier = %row.notifier, event = %row.event_id, error = %e, "cannot build notification");
                (DeliveryResult::Retry(RetryReason::Network), None)
            }
        }
    };
    let now = inner.clock.now();
    let failed = match result {
        DeliveryResult::Delivered { .. } => {
            return (Attempt::Delivered, Outcome::Delivered { at: now });
        }
        DeliveryResult::Reject { status } => {
            tracing::warn!(notifier = %row.notifier, event = %row.event_id, status, "receiver rejected event; dropped");
            return (Attempt::Rejected, Outcome::Dropped { at: now });
        }
        DeliveryResult::Redirect { .. } if notifier.kind.is_ticket() => Attempt::Redirected,
        DeliveryResult::Redirect { status, location } => {
            let secret = url_is_secret(notifier);
            let shown = match (&url, &location) {
                (Some(u), Some(l)) => shown_location(u, l, secret),
                _ => "(none)".to_string(),
            };
            tracing::error!(
                notifier = %row.notifier,
                event = %row.event_id,
                status,
                location = %shown,
                "receiver answered with a redirect, which is not followed; the event stays queued and is retried until max_age: point the notifier's url at the new location and reload"
            );
            Attempt::Redirected
        }
        DeliveryResult::Retry(why) => {
            tracing::debug!(notifier = %row.notifier, event = %row.event_id, attempts = row.attempts + 1, reason = ?why, "delivery failed; will retry");
            Attempt::Retry
        }
    };
    let max_age = SignedDuration::try_from(notifier.max_age).unwrap_or(SignedDuration::MAX);
    let attempts = row.attempts.saturating_add(1);
    if now.duration_since(row.created_at) >= max_age {
        tracing::warn!(notifier = %row.notifier, event = %row.event_id, attempts, "event older than max_age; dropped");
        return (Attempt::Expired, Outcome::Dropped { at: now });
    }
    let delay = backoff(attempts, &mut rand::rng());
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::ZERO);
    let next_attempt_at = now.checked_add(delay).unwrap_or(now);
    (
        failed,
        Outcome::Retry {
            attempts,
            next_attempt_at,
        },
    )
}
