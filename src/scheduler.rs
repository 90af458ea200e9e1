//! Fixed-rate scheduling of checks.
//!
//! Run `k` of a check starts at `origin + phase + k × interval`, where `phase`
//! is derived from a hash of the check's identity, so 10 000 checks are spread
//! evenly over their interval instead of firing at once. The hash is FNV-1a
//! (64 bit) over `service`, a 0xFF byte and `check`: fixed by this file, not by
//! the Rust release. With [`Scheduler::align_to_wall_clock`] (what the daemon
//! does) the grid is anchored to the Unix epoch, so a check keeps the same start
//! times (modulo its interval) across restarts and upgrades. A slow run never shifts later runs: if run `k` is
//! still going when run `k+1` is due, run `k+1` is *skipped* (and counted).
//! A global semaphore caps the probes running at once; the time spent waiting
//! for it is the *start lag* (actual start − scheduled start).
//!
//! The scheduler owns no state beyond timing: each finished run is handed to a
//! [`RunSink`], which the daemon points at metrics and the engine.
//!
//! Time comes from `tokio::time`, so tests run on paused time and advance it
//! by hand.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Check;
use crate::probe::Outcome;

/// Something that runs one check. The daemon uses [`crate::probe::Prober`];
/// scheduler tests use a scripted fake so timing is exact.
pub trait Probe: Send + Sync + 'static {
    /// The check is shared (`Arc`) so a probe that needs to move it into
    /// another task does not copy it on every run.
    fn run(&self, check: &Arc<Check>) -> impl Future<Output = Outcome> + Send;
}

/// Identity of a scheduled check: the index of its service and check in the
/// config, and the names (shared, cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckId {
    pub service: Arc<str>,
    pub check: Arc<str>,
}

/// One finished (or skipped) run, handed to the sink.
#[derive(Debug, Clone)]
pub enum RunEvent {
    Finished {
        id: CheckId,
        /// When the run was due (monotonic).
        scheduled: Instant,
        /// When it actually started (after waiting for a concurrency permit).
        started: Instant,
        outcome: Outcome,
    },
    /// Run `k` was due but run `k-1` was still going.
    Skipped { id: CheckId, scheduled: Instant },
}

/// Where finished runs go. Called from the run's task; must not block for long.
pub trait RunSink: Send + Sync + 'static {
    /// What a check's task holds for its whole life and hands back with
    /// every run (the daemon: the check's metrics slot), so delivering a run
    /// needs no lookup by name.
    type Bound: Send + Sync + 'static;

    /// Called once when a check's task starts (again after a reload that
    /// restarts it).
    fn bind(&self, id: &CheckId) -> Self::Bound;

    fn deliver(&self, bound: &Self::Bound, event: RunEvent);
}

impl<F: Fn(RunEvent) + Send + Sync + 'static> RunSink for F {
    type Bound = ();

    fn bind(&self, _id: &CheckId) {}

    fn deliver(&self, _bound: &(), event: RunEvent) {
        self(event)
    }
}

/// FNV-1a, 64 bit: a fixed, documented hash (std's `DefaultHasher` may change
/// between Rust releases, which would move every check's phase on upgrade).
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // Separator, so ("ab", "c") and ("a", "bc") differ. 0xFF never
            // appears in UTF-8.
            h ^= 0xff;
            h = h.wrapping_mul(PRIME);
        }
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// Phase offset of a check within its interval: `fnv1a64(service, check)`
/// modulo the interval in whole milliseconds. Stable for a given identity.
pub fn phase(id: &CheckId, interval: Duration) -> Duration {
    let h = fnv1a64(&[id.service.as_bytes(), id.check.as_bytes()]);
    // Whole milliseconds: tokio's timer has millisecond resolution, so a
    // sub-millisecond phase would only add rounding to every start.
    let millis = interval.as_millis().max(1);
    let off = u128::from(h) % millis;
    Duration::from_millis(u64::try_from(off).unwrap_or(0))
}

/// The phase to use on a monotonic grid whose origin is the wall-clock
/// instant `origin_wall_ms` (ms since the Unix epoch), so that starts land on
/// `epoch + phase + k × interval` in wall time.
pub fn wall_aligned_phase(phase: Duration, interval: Duration, origin_wall_ms: i64) -> Duration {
    let step = i128::try_from(interval.as_millis().max(1)).unwrap_or(i128::MAX);
    let p = i128::try_from(phase.as_millis()).unwrap_or(0);
    let shifted = (p - i128::from(origin_wall_ms)).rem_euclid(step);
    Duration::from_millis(u64::try_from(shifted).unwrap_or(0))
}

struct Running {
    /// Definition fingerprint: a check whose definition did not change keeps
    /// its task (and so its phase) across a reload.
    fingerprint: String,
    cancel: CancellationToken,
}

/// Owns one task per check.
pub struct Scheduler<P: Probe, S: RunSink> {
    probe: Arc<P>,
    sink: Arc<S>,
    permits: Arc<Semaphore>,
    /// Shared start for all phases, so a reload keeps the same grid.
    origin: Instant,
    /// Wall time of `origin` in ms since the epoch, when the grid is anchored
    /// to the wall clock (see [`Self::align_to_wall_clock`]).
    origin_wall_ms: Option<i64>,
    tasks: HashMap<CheckId, Running>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl<P: Probe, S: RunSink> Scheduler<P, S> {
    pub fn new(
        probe: Arc<P>,
        sink: Arc<S>,
        max_concurrency: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            probe,
            sink,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            origin: Instant::now(),
            origin_wall_ms: None,
            tasks: HashMap::new(),
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Anchor the grid to the wall clock: `now_wall_ms` is the wall time (ms
    /// since the epoch) of this moment. Run starts then fall on
    /// `epoch + phase + k × interval`, the same after a restart.
    pub fn align_to_wall_clock(mut self, now_wall_ms: i64) -> Self {
        self.origin = Instant::now();
        self.origin_wall_ms = Some(now_wall_ms);
        self
    }

    /// Make the running set equal `checks`: start new or changed checks, stop
    /// removed or changed ones, leave unchanged ones alone. Returns how many
    /// tasks were (started, stopped).
    pub fn sync(&mut self, checks: Vec<(CheckId, Check)>) -> (usize, usize) {
        let mut wanted: HashMap<CheckId, (String, Check)> = HashMap::with_capacity(checks.len());
        for (id, check) in checks {
            let fp = format!("{check:?}");
            wanted.insert(id, (fp, check));
        }
        let mut stopped = 0;
        self.tasks.retain(|id, running| {
            let keep = wanted
                .get(id)
                .is_some_and(|(fp, _)| *fp == running.fingerprint);
            if !keep {
                running.cancel.cancel();
                stopped += 1;
            }
            keep
        });
        let mut started = 0;
        for (id, (fp, check)) in wanted {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let cancel = self.shutdown.child_token();
            self.spawn_check(id.clone(), check, cancel.clone());
            self.tasks.insert(
                id,
                Running {
                    fingerprint: fp,
                    cancel,
                },
            );
            started += 1;
        }
        (started, stopped)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stop every check and wait for runs in flight to finish (each is bounded
    /// by its timeout).
    pub async fn shutdown(self) {
        for running in self.tasks.values() {
            running.cancel.cancel();
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn spawn_check(&self, id: CheckId, check: Check, cancel: CancellationToken) {
        let probe = Arc::clone(&self.probe);
        let sink = Arc::clone(&self.sink);
        let permits = Arc::clone(&self.permits);
        let interval = check.interval.max(Duration::from_millis(1));
        let mut ph = phase(&id, interval);
        if let Some(wall) = self.origin_wall_ms {
            ph = wall_aligned_phase(ph, interval, wall);
        }
        let first = next_due(self.origin, ph, interval, Instant::now());
        let check = Arc::new(check);
        let bound = sink.bind(&id);
        // One task per check runs its probes too: a run is polled on this
        // task (no task, tracker entry and handful of `Arc` clones per run),
        // next to the timer of the next start, so an overlap is still seen
        // and skipped.
        self.tracker.spawn(async move {
            let run = |scheduled: Instant| {
                let (probe, permits, check) = (&probe, &permits, &check);
                async move {
                    // The semaphore is never closed, so acquire only fails
                    // if it were; then run without a permit rather than stop.
                    let _permit = permits.acquire().await.ok();
                    let started = Instant::now();
                    let outcome = probe.run(check).await;
                    (scheduled, started, outcome)
                }
            };
            let mut in_flight = pin!(None);
            let mut cancelled = pin!(cancel.cancelled());
            let mut due = first;
            loop {
                let woke = tokio::select! {
                    biased;
                    _ = &mut cancelled => Woke::Cancelled,
                    done = async {
                        match in_flight.as_mut().as_pin_mut() {
                            Some(f) => f.await,
                            None => std::future::pending().await,
                        }
                    } => Woke::Finished(done),
                    _ = tokio::time::sleep_until(due) => Woke::Due,
                };
                match woke {
                    Woke::Cancelled => break,
                    Woke::Finished((scheduled, started, outcome)) => {
                        in_flight.set(None);
                        sink.deliver(
                            &bound,
                            RunEvent::Finished {
                                id: id.clone(),
                                scheduled,
                                started,
                                outcome,
                            },
                        );
                        continue;
                    }
                    Woke::Due => {}
                }
                if in_flight.is_some() {
                    sink.deliver(
                        &bound,
                        RunEvent::Skipped {
                            id: id.clone(),
                            scheduled: due,
                        },
                    );
                } else {
                    in_flight.set(Some(run(due)));
                }
                // Fixed rate: the next start depends only on the grid, never
                // on when this run finished. If we woke up late (a paused
                // process, an overloaded machine), jump to the next grid point
                // in the future instead of firing a burst of catch-up runs.
                due += interval;
                let now = Instant::now();
                if due + interval <= now {
                    due = next_due(first, Duration::ZERO, interval, now);
                }
            }
            // Stopped (reload or shutdown): a run in flight still finishes
            // (bounded by its timeout) and is recorded.
            if let Some(f) = in_flight.as_mut().as_pin_mut() {
                let (scheduled, started, outcome) = f.await;
                sink.deliver(
                    &bound,
                    RunEvent::Finished {
                        id,
                        scheduled,
                        started,
                        outcome,
                    },
                );
            }
        });
    }
}

/// What a check's task woke up for.
enum Woke<T> {
    Cancelled,
    Finished(T),
    Due,
}

/// The first grid point `origin + phase + k × interval` that is ≥ `now`.
pub fn next_due(origin: Instant, phase: Duration, interval: Duration, now: Instant) -> Instant {
    let base = origin + phase;
    if now <= base {
        return base;
    }
    let elapsed = now.duration_since(base).as_nanos();
    let step = interval.as_nanos().max(1);
    let k = elapsed.div_ceil(step);
    let off = u64::try_from(k.saturating_mul(step)).unwrap_or(u64::MAX);
    base + Duration::from_nanos(off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProbeSpec, TcpSpec};
    use std::sync::Mutex;

    /// A probe that takes a scripted time per run and is always good.
    struct SleepProbe(Duration);

    impl Probe for SleepProbe {
        async fn run(&self, _check: &Arc<Check>) -> Outcome {
            tokio::time::sleep(self.0).await;
            Outcome {
                reason: None,
                latency: self.0,
                cert_not_after: None,
                detail: String::new(),
            }
        }
    }

    #[derive(Default)]
    struct Collect(Mutex<Vec<RunEvent>>);
    impl RunSink for Collect {
        type Bound = ();
        fn bind(&self, _id: &CheckId) {}
        fn deliver(&self, _bound: &(), e: RunEvent) {
            self.0.lock().unwrap().push(e);
        }
    }

    fn check(name: &str, interval_s: u64) -> (CheckId, Check) {
        let id = CheckId {
            service: "svc".into(),
            check: name.into(),
        };
        let check = Check {
            name: name.into(),
            interval: Duration::from_secs(interval_s),
            timeout: Duration::from_secs(interval_s),
            probe: ProbeSpec::Tcp(TcpSpec {
                host: "127.0.0.1".into(),
                port: 1,
                tls: false,
                tls_verify: true,
                server_name: None,
                send: None,
                expect: None,
                cert_min_days: None,
            }),
        };
        (id, check)
    }

    /// (scheduled offset from origin, started offset, skipped?) for each event, in ms.
    fn timeline(events: &[RunEvent], origin: Instant) -> Vec<(u128, Option<u128>)> {
        let mut v: Vec<_> = events
            .iter()
            .map(|e| match e {
                RunEvent::Finished {
                    scheduled, started, ..
                } => (
                    scheduled.duration_since(origin).as_millis(),
                    Some(started.duration_since(origin).as_millis()),
                ),
                RunEvent::Skipped { scheduled, .. } => {
                    (scheduled.duration_since(origin).as_millis(), None)
                }
            })
            .collect();
        v.sort();
        v
    }

    /// The phase hash is pinned: these values must never change, or every
    /// check's start time moves on upgrade. FNV-1a test vectors from the
    /// algorithm's reference (`""` and `"a"`), then our two-part form.
    #[test]
    fn phase_hash_is_fixed_fnv1a() {
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
        let id = CheckId {
            service: "identity".into(),
            check: "login".into(),
        };
        let h = fnv1a64(&[b"identity", b"login"]);
        assert_eq!(
            phase(&id, Duration::from_secs(15)),
            Duration::from_millis(h % 15_000)
        );
    }

    #[test]
    fn wall_aligned_phase_lands_on_the_epoch_grid() {
        let interval = Duration::from_secs(10);
        let phase = Duration::from_millis(2_500);
        // Origin at wall 1_000_000_007_300 ms: 7 300 ms past a 10 s boundary.
        // The next start in wall time is at ...012_500, i.e. 5 200 ms later.
        let p = wall_aligned_phase(phase, interval, 1_000_000_007_300);
        assert_eq!(p, Duration::from_millis(5_200));
        // Exactly on a grid point: phase 0 from origin.
        assert_eq!(
            wall_aligned_phase(phase, interval, 1_000_000_002_500),
            Duration::ZERO
        );
        // Restarting 1 234 ms later keeps the same wall-clock grid.
        let q = wall_aligned_phase(phase, interval, 1_000_000_008_534);
        assert_eq!(q, Duration::from_millis(5_200 - 1_234));
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_fixed_rate_on_the_phase_grid() {
        let sink = Arc::new(Collect::default());
        let mut s = Scheduler::new(
            Arc::new(SleepProbe(Duration::from_secs(3))),
            Arc::clone(&sink),
            10,
            CancellationToken::new(),
        );
        let origin = s.origin;
        let (id, c) = check("a", 10);
        let ph = phase(&id, Duration::from_secs(10)).as_millis();
        s.sync(vec![(id, c)]);
        tokio::time::sleep(Duration::from_millis(ph as u64 + 45_000)).await;
        s.shutdown().await;
        let t = timeline(&sink.0.lock().unwrap(), origin);
        let expected: Vec<_> = (0..5)
            .map(|k| (ph + k * 10_000, Some(ph + k * 10_000)))
            .collect();
        assert_eq!(t, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_run_is_skipped_and_never_shifts_the_grid() {
        let sink = Arc::new(Collect::default());
        // Each run takes 15 s with a 10 s interval: every other slot is skipped.
        let mut s = Scheduler::new(
            Arc::new(SleepProbe(Duration::from_secs(15))),
            Arc::clone(&sink),
            10,
            CancellationToken::new(),
        );
        let origin = s.origin;
        let (id, c) = check("slow", 10);
        let ph = phase(&id, Duration::from_secs(10)).as_millis();
        s.sync(vec![(id, c)]);
        tokio::time::sleep(Duration::from_millis(ph as u64 + 41_000)).await;
        s.shutdown().await;
        let t = timeline(&sink.0.lock().unwrap(), origin);
        assert_eq!(
            t,
            vec![
                (ph, Some(ph)),
                (ph + 10_000, None),
                (ph + 20_000, Some(ph + 20_000)),
                (ph + 30_000, None),
                (ph + 40_000, Some(ph + 40_000)),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_in_flight_when_its_check_is_removed_still_finishes_and_is_recorded() {
        let sink = Arc::new(Collect::default());
        let mut s = Scheduler::new(
            Arc::new(SleepProbe(Duration::from_secs(7))),
            Arc::clone(&sink),
            10,
            CancellationToken::new(),
        );
        let origin = s.origin;
        let (id, c) = check("gone", 10);
        let ph = phase(&id, Duration::from_secs(10)).as_millis();
        s.sync(vec![(id, c)]);
        // Removed 2 s into its second run, which then ends at +17 s.
        tokio::time::sleep(Duration::from_millis(ph as u64 + 12_000)).await;
        assert_eq!(s.sync(Vec::new()), (0, 1));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(timeline(&sink.0.lock().unwrap(), origin).len(), 1);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let events = sink.0.lock().unwrap().clone();
        assert_eq!(
            timeline(&events, origin),
            vec![(ph, Some(ph)), (ph + 10_000, Some(ph + 10_000))]
        );
        let RunEvent::Finished { outcome, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(outcome.latency, Duration::from_secs(7));
        s.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_cap_delays_starts_and_the_lag_is_visible() {
        let sink = Arc::new(Collect::default());
        let mut s = Scheduler::new(
            Arc::new(SleepProbe(Duration::from_secs(2))),
            Arc::clone(&sink),
            1,
            CancellationToken::new(),
        );
        // Three checks; with one permit, runs that overlap wait for each other.
        let checks: Vec<_> = ["x", "y", "z"].iter().map(|n| check(n, 60)).collect();
        let mut phases: Vec<u128> = checks
            .iter()
            .map(|(id, c)| phase(id, c.interval).as_millis())
            .collect();
        phases.sort();
        s.sync(checks);
        tokio::time::sleep(Duration::from_secs(59)).await;
        s.shutdown().await;
        let events = sink.0.lock().unwrap();
        assert_eq!(events.len(), 3);
        // Never two probes at once: starts are at least 2 s apart.
        let mut starts: Vec<Instant> = events
            .iter()
            .filter_map(|e| match e {
                RunEvent::Finished { started, .. } => Some(*started),
                RunEvent::Skipped { .. } => None,
            })
            .collect();
        starts.sort();
        for w in starts.windows(2) {
            assert!(w[1].duration_since(w[0]) >= Duration::from_secs(2));
        }
        // Each start is max(scheduled, previous start + 2 s).
        let mut prev_end = 0u128;
        let mut expected = Vec::new();
        for p in &phases {
            let st = (*p).max(prev_end);
            expected.push(st);
            prev_end = st + 2_000;
        }
        let origin = s_origin_of(&events, &phases);
        let got: Vec<u128> = starts
            .iter()
            .map(|s| s.duration_since(origin).as_millis())
            .collect();
        assert_eq!(got, expected);
    }

    /// Recover the scheduler origin from the earliest event (scheduled = origin + phase).
    fn s_origin_of(events: &[RunEvent], phases: &[u128]) -> Instant {
        let earliest = events
            .iter()
            .map(|e| match e {
                RunEvent::Finished { scheduled, .. } | RunEvent::Skipped { scheduled, .. } => {
                    *scheduled
                }
            })
            .min()
            .unwrap();
        earliest - Duration::from_millis(phases[0] as u64)
    }

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_checks_are_spread_over_the_interval() {
        let n = 10_000;
        let interval = Duration::from_secs(10);
        let mut per_100ms = vec![0u32; 100];
        for i in 0..n {
            let id = CheckId {
                service: format!("svc{}", i / 10).into(),
                check: format!("c{i}").into(),
            };
            let p = phase(&id, interval).as_millis() as usize;
            per_100ms[p / 100] += 1;
        }
        // A uniform spread puts 100 in each 100 ms slot; a burst would put them all in one.
        let max = *per_100ms.iter().max().unwrap();
        let min = *per_100ms.iter().min().unwrap();
        assert!(max <= 140 && min >= 60, "min {min} max {max}");
    }

    #[tokio::test(start_paused = true)]
    async fn sync_keeps_unchanged_checks_and_restarts_changed_ones() {
        let sink = Arc::new(Collect::default());
        let mut s = Scheduler::new(
            Arc::new(SleepProbe(Duration::from_millis(10))),
            Arc::clone(&sink),
            10,
            CancellationToken::new(),
        );
        assert_eq!(s.sync(vec![check("a", 10), check("b", 10)]), (2, 0));
        assert_eq!(s.sync(vec![check("a", 10), check("b", 10)]), (0, 0));
        // b changes its interval, c is new, a is removed.
        assert_eq!(s.sync(vec![check("b", 20), check("c", 10)]), (2, 2));
        assert_eq!(s.len(), 2);
        s.shutdown().await;
    }

    #[test]
    fn next_due_is_the_first_grid_point_not_in_the_past() {
        let origin = Instant::now();
        let i = Duration::from_secs(10);
        let p = Duration::from_secs(3);
        assert_eq!(next_due(origin, p, i, origin), origin + p);
        assert_eq!(
            next_due(origin, p, i, origin + Duration::from_secs(3)),
            origin + p
        );
        assert_eq!(
            next_due(origin, p, i, origin + Duration::from_millis(3001)),
            origin + Duration::from_secs(13)
        );
        assert_eq!(
            next_due(origin, p, i, origin + Duration::from_secs(25)),
            origin + Duration::from_secs(33)
        );
    }
}
