//! The incident counters (`sentinel_incidents_total`,
//! `sentinel_incident_response_total` and the MTTx summaries' `_sum` and
//! `_count`) never decrease: not when incidents leave the SLO window, not
//! across relapses, reloads and API calls, not across a restart with the real
//! store, not when the store prunes old incidents. The quantiles follow the
//! window. Every scrape here is the real `/metrics` rendering of a snapshot.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::config::parse_str;
use crate::incident::Summary;
use crate::incident::{Change, Incident, IncidentError, MttxStats, Stage, StageSummary};
use crate::metrics::{Expo, render_incidents};
use crate::store::{BucketDelta, Store};

const CFG: &str = r#"
response_targets:
  P1: { acknowledge: 10m, restore: 1h }
  P2: { acknowledge: 10m, restore: 1h }
services:
  - name: web
    checks:
      - name: home
        interval: 1m
        http: { url: "http://127.0.0.1:1/" }
      - name: api
        interval: 1m
        http: { url: "http://127.0.0.1:1/api" }
    slo: { objective: 99, window: 7d }
    incident: { open_after: 2, resolve_after: 1, severity: P1, burn_rate_alerts: false }
"#;

fn config(text: &str) -> Arc<Config> {
    Arc::new(parse_str(text, "test.yaml").unwrap())
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn run(check: &str, t: Timestamp, good: bool) -> RunRecord {
    RunRecord {
        service: "web".into(),
        check: check.into(),
        at: t,
        good,
        latency: Duration::from_millis(10),
        detail: if good {
            String::new()
        } else {
            "status 503".into()
        },
    }
}

/// `/metrics` lines of the incident families: series → value.
type Scrape = BTreeMap<String, f64>;

fn render(snap: &Snapshot, cfg: &Config) -> Scrape {
    let mut out = Expo::new();
    render_incidents(&mut out, snap, cfg);
    out.as_str()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, v) = l.rsplit_once(' ').unwrap();
            (series.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn scrape(s: &mut EngineState, now: Timestamp) -> Scrape {
    let (snap, changes) = evaluate(s, now);
    assert!(changes.is_empty(), "{changes:?}");
    render(&snap, &s.cfg)
}

/// What the engine task does when the store takes every write: the
/// changes' writes and the entries made by time alone are stored, in order.
fn commit(s: &mut EngineState, changes: &[Change], now: Timestamp) {
    let mut writes = s.writes(changes.to_vec(), now);
    writes.extend(s.take_entry_writes());
    for w in &writes {
        s.stored(w);
    }
}

fn on_run(s: &mut EngineState, r: &RunRecord) -> (bool, Vec<Change>) {
    let out = s.on_run(r);
    commit(s, &out.1, r.at);
    out
}

fn ack(
    s: &mut EngineState,
    now: Timestamp,
    id: &str,
    by: &str,
    note: Option<&str>,
) -> Result<(Incident, Option<Change>), IncidentError> {
    let out = s.ack(now, id, by, note)?;
    commit(s, out.1.as_slice(), now);
    Ok(out)
}

fn resolve(
    s: &mut EngineState,
    now: Timestamp,
    id: &str,
    by: &str,
) -> Result<Change, IncidentError> {
    let c = s.resolve(now, id, by)?;
    commit(s, std::slice::from_ref(&c), now);
    Ok(c)
}

/// An evaluation whose writes are all stored; the snapshot shows them.
fn evaluate(s: &mut EngineState, now: Timestamp) -> (Snapshot, Vec<Change>) {
    let (mut snap, changes) = s.evaluate(now);
    commit(s, &changes, now);
    s.fill_incidents(&mut snap, now);
    (snap, changes)
}

fn reconfigure(
    s: &mut EngineState,
    now: Timestamp,
    cfg: Arc<Config>,
) -> (Vec<String>, Vec<IncidentWrite>) {
    let (rebuild, writes) = s.reconfigure(now, cfg);
    for w in &writes {
        s.stored(w);
    }
    commit(s, &[], now);
    (rebuild, writes)
}

fn is_counter(series: &str) -> bool {
    let name = series.split('{').next().unwrap_or("");
    name.ends_with("_total") || name.ends_with("_sum") || name.ends_with("_count")
}

/// Every counter series of `before` is in `after` with a value at least as
/// high. Only a zero series may go away (a reload changed the configured
/// severity, so its placeholder is no longer rendered).
fn assert_no_counter_drops(before: &Scrape, after: &Scrape) {
    for (series, v) in before.iter().filter(|(k, _)| is_counter(k)) {
        match after.get(series) {
            Some(w) => assert!(w >= v, "{series} dropped from {v} to {w}"),
            None => assert!(*v == 0.0, "{series} ({v}) disappeared"),
        }
    }
}

fn get(s: &Scrape, series: &str) -> Option<f64> {
    s.get(series).copied()
}

const P1: &str = r#"{service="web",severity="P1"}"#;

fn q(name: &str, quantile: &str) -> String {
    format!(r#"{name}{{service="web",severity="P1",quantile="{quantile}"}}"#)
}

fn response(stage: &str, met: bool) -> String {
    format!(
        r#"sentinel_incident_response_total{{service="web",severity="P1",stage="{stage}",met="{met}"}}"#
    )
}

/// The cumulative figures every scrape of [`scenario`] must show from the
/// moment both incidents resolved: A (MTTD 60, MTTA 300, MTTR 480, both
/// targets met) and B (MTTD 120, never acknowledged, MTTR 7200, both missed).
fn assert_scenario_totals(m: &Scrape) {
    let want = [
        (format!("sentinel_incidents_total{P1}"), 2.0),
        (format!("sentinel_incident_mttd_seconds_sum{P1}"), 180.0),
        (format!("sentinel_incident_mttd_seconds_count{P1}"), 2.0),
        (format!("sentinel_incident_mtta_seconds_sum{P1}"), 300.0),
        (format!("sentinel_incident_mtta_seconds_count{P1}"), 1.0),
        (format!("sentinel_incident_mttr_seconds_sum{P1}"), 7680.0),
        (format!("sentinel_incident_mttr_seconds_count{P1}"), 2.0),
        (response("acknowledge", true), 1.0),
        (response("acknowledge", false), 1.0),
        (response("restore", true), 1.0),
        (response("restore", false), 1.0),
    ];
    for (series, v) in want {
        assert_eq!(get(m, &series), Some(v), "{series}");
    }
}

/// Incident A on day 0 and incident B on day 3 of a 7-day SLO window.
fn scenario(s: &mut EngineState) {
    // A: impact 00:00, opened 00:01, acked 00:06, restored and resolved 00:08.
    on_run(s, &run("home", at("2026-01-01T00:00:00Z"), false));
    let (_, opened) = on_run(s, &run("home", at("2026-01-01T00:01:00Z"), false));
    let id = opened[0].incident.id.clone();
    ack(s, at("2026-01-01T00:06:00Z"), &id, "alice", None).unwrap();
    on_run(s, &run("home", at("2026-01-01T00:08:00Z"), true));
    // B: impact 00:00, opened 00:02, never acked, resolved 02:00.
    on_run(s, &run("api", at("2026-01-04T00:00:00Z"), false));
    on_run(s, &run("api", at("2026-01-04T00:02:00Z"), false));
    // Its acknowledge target passes at 00:12 and its restore target at 01:00.
    evaluate(s, at("2026-01-04T00:30:00Z"));
    evaluate(s, at("2026-01-04T01:30:00Z"));
    on_run(s, &run("api", at("2026-01-04T02:00:00Z"), true));
}

#[test]
fn counters_never_drop_when_incidents_leave_the_slo_window_and_quantiles_follow_it() {
    let mut s = EngineState::new(config(CFG));
    scenario(&mut s);

    // Both incidents in the window.
    let both = scrape(&mut s, at("2026-01-04T03:00:00Z"));
    assert_scenario_totals(&both);
    let mttd = "sentinel_incident_mttd_seconds";
    assert_eq!(get(&both, &q(mttd, "0.5")), Some(60.0));
    assert_eq!(get(&both, &q(mttd, "0.9")), Some(120.0));
    assert_eq!(
        get(&both, &q("sentinel_incident_mtta_seconds", "0.5")),
        Some(300.0)
    );
    // 7200 s reads 7203 s: HdrHistogram's 3 significant figures, the
    // highest value of the bucket holding 7200.
    assert_eq!(
        get(&both, &q("sentinel_incident_mttr_seconds", "0.5")),
        Some(480.0)
    );
    assert_eq!(
        get(&both, &q("sentinel_incident_mttr_seconds", "0.9")),
        Some(7203.0)
    );

    // A (opened 2026-01-01T00:01) left the 7d window at 2026-01-08T00:01.
    let only_b = scrape(&mut s, at("2026-01-08T00:05:00Z"));
    assert_no_counter_drops(&both, &only_b);
    assert_scenario_totals(&only_b);
    assert_eq!(get(&only_b, &q(mttd, "0.5")), Some(120.0));
    assert_eq!(get(&only_b, &q(mttd, "0.9")), Some(120.0));
    assert_eq!(
        get(&only_b, &q("sentinel_incident_mtta_seconds", "0.5")),
        None,
        "the only acknowledged incident left the window"
    );
    assert_eq!(
        get(&only_b, &q("sentinel_incident_mttr_seconds", "0.5")),
        Some(7203.0)
    );

    // Both outside the window: no quantile at all, the same counters.
    let none = scrape(&mut s, at("2026-01-11T03:00:00Z"));
    assert_no_counter_drops(&only_b, &none);
    assert_scenario_totals(&none);
    assert!(none.keys().all(|k| !k.contains("quantile=")), "{none:#?}");
}

/// A verdict is given once, with the target of the time: a reload that
/// changes the targets later does not re-judge it, and an acknowledgement
/// after the target passed adds MTTA but no second verdict.
#[test]
fn a_reload_or_a_late_ack_never_rejudges_a_verdict() {
    let mut s = EngineState::new(config(CFG));
    on_run(&mut s, &run("home", at("2026-01-01T00:00:00Z"), false));
    let (_, opened) = on_run(&mut s, &run("home", at("2026-01-01T00:01:00Z"), false));
    let id = opened[0].incident.id.clone();
    let before = scrape(&mut s, at("2026-01-01T00:12:00Z"));
    assert_eq!(get(&before, &response("acknowledge", false)), Some(1.0));

    let relaxed = CFG.replace(
        "P1: { acknowledge: 10m, restore: 1h }",
        "P1: { acknowledge: 1h, restore: 1h }",
    );
    let (_, changes) = reconfigure(&mut s, at("2026-01-01T00:13:00Z"), config(&relaxed));
    assert!(changes.is_empty());
    let (_, ack) = ack(&mut s, at("2026-01-01T00:20:00Z"), &id, "bob", None).unwrap();
    assert_eq!(
        ack.unwrap()
            .entries
            .iter()
            .map(|e| e.figure)
            .collect::<Vec<_>>(),
        vec![
            crate::incident::totals::Figure::Acknowledge,
            crate::incident::totals::Figure::AckVia(crate::incident::Source::Api),
        ],
        "MTTA and the acknowledgement's source enter; the verdict was given at 00:12"
    );
    let after = scrape(&mut s, at("2026-01-01T00:21:00Z"));
    assert_no_counter_drops(&before, &after);
    assert_eq!(get(&after, &response("acknowledge", false)), Some(1.0));
    assert_eq!(get(&after, &response("acknowledge", true)), Some(0.0));
    assert_eq!(
        get(&after, &format!("sentinel_incident_mtta_seconds_sum{P1}")),
        Some(1140.0)
    );
}

/// A relapse (restored, then failing again) and further updates make no
/// entry; MTTR enters once, at the resolution, with the final restore time.
#[test]
fn a_relapse_counts_mttr_once_at_resolution() {
    let cfg = CFG.replace("resolve_after: 1", "resolve_after: 2");
    let mut s = EngineState::new(config(&cfg));
    on_run(&mut s, &run("home", at("2026-01-01T00:00:00Z"), false));
    on_run(&mut s, &run("home", at("2026-01-01T00:01:00Z"), false));
    // One good run (not enough to resolve), a relapse, then two good runs.
    on_run(&mut s, &run("home", at("2026-01-01T00:02:00Z"), true));
    let (_, relapse) = on_run(&mut s, &run("home", at("2026-01-01T00:03:00Z"), false));
    assert!(relapse.iter().all(|c| c.entries.is_empty()), "{relapse:?}");
    let mid = scrape(&mut s, at("2026-01-01T00:04:00Z"));
    assert_eq!(
        get(&mid, &format!("sentinel_incident_mttr_seconds_count{P1}")),
        Some(0.0)
    );
    on_run(&mut s, &run("home", at("2026-01-01T00:05:00Z"), true));
    let (_, resolved) = on_run(&mut s, &run("home", at("2026-01-01T00:06:00Z"), true));
    assert_eq!(resolved.len(), 1);
    let end = scrape(&mut s, at("2026-01-01T00:07:00Z"));
    assert_no_counter_drops(&mid, &end);
    assert_eq!(
        get(&end, &format!("sentinel_incident_mttr_seconds_sum{P1}")),
        Some(300.0),
        "restored at the first good run after the relapse"
    );
    assert_eq!(
        get(&end, &format!("sentinel_incident_mttr_seconds_count{P1}")),
        Some(1.0)
    );
    assert_eq!(get(&end, &response("restore", true)), Some(1.0));
    assert_eq!(
        get(&end, &format!("sentinel_incidents_total{P1}")),
        Some(1.0)
    );
}

#[derive(Debug, Clone)]
enum Op {
    Run {
        check: usize,
        good: bool,
        gap: i64,
    },
    Ack {
        gap: i64,
    },
    Resolve {
        gap: i64,
    },
    Evaluate {
        gap: i64,
    },
    /// Reload with the other severity for new incidents.
    Reload {
        gap: i64,
    },
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![Just(30i64), Just(300), Just(2 * 3600), Just(3 * 86_400)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..2usize, any::<bool>(), gap()).prop_map(|(check, good, gap)| Op::Run { check, good, gap }),
        2 => gap().prop_map(|gap| Op::Ack { gap }),
        1 => gap().prop_map(|gap| Op::Resolve { gap }),
        2 => gap().prop_map(|gap| Op::Evaluate { gap }),
        1 => gap().prop_map(|gap| Op::Reload { gap }),
    ]
}

proptest! {
    /// Random histories (incidents leaving the 7d window, relapses, acks,
    /// manual resolves, reloads): no rendered counter ever decreases, and
    /// at the end each figure equals a brute force over every incident
    /// there ever was, counted once.
    #[test]
    fn rendered_counters_never_decrease_and_count_every_incident_once(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        const CHECKS: [&str; 2] = ["home", "api"];
        let mut cfgs = [config(CFG), config(&CFG.replace("severity: P1", "severity: P2"))];
        let mut s = EngineState::new(Arc::clone(&cfgs[0]));
        let mut now = at("2026-01-01T00:00:00Z");
        let mut seen: BTreeMap<String, Incident> = BTreeMap::new();
        let mut last = Scrape::new();
        for op in &ops {
            let step = match op {
                Op::Run { gap, .. } | Op::Ack { gap } | Op::Resolve { gap }
                | Op::Evaluate { gap } | Op::Reload { gap } => *gap,
            };
            now = now.checked_add(jiff::SignedDuration::from_secs(step)).unwrap();
            let open = s.incidents.get("web").and_then(|m| m.open_incident()).map(|i| i.id.clone());
            let changed: Vec<Incident> = match op {
                Op::Run { check, good, .. } => on_run(&mut s, &run(CHECKS[*check], now, *good)).1.into_iter().map(|c| c.incident).collect(),
                Op::Ack { .. } => match &open {
                    Some(id) => ack(&mut s, now, id, "x", None).unwrap().1.into_iter().map(|c| c.incident).collect(),
                    None => vec![],
                },
                Op::Resolve { .. } => match &open {
                    Some(id) => vec![resolve(&mut s, now, id, "x").unwrap().incident],
                    None => vec![],
                },
                Op::Evaluate { .. } => evaluate(&mut s, now).1.into_iter().map(|c| c.incident).collect(),
                Op::Reload { .. } => {
                    cfgs.swap(0, 1);
                    reconfigure(&mut s, now, Arc::clone(&cfgs[0])).1.into_iter().filter_map(|w| w.incident).collect()
                }
            };
            for i in changed {
                seen.insert(i.id.clone(), i);
            }
            let (snap, _) = evaluate(&mut s, now);
            let m = render(&snap, &s.cfg);
            assert_no_counter_drops(&last, &m);
            last = m;
        }
        // Brute force over every incident, at the end (targets are the same
        // for both severities, and without burn alerts none escalates).
        let all = MttxStats::rebuild(cfgs[0].response_targets.clone(), seen.values().cloned());
        let sums = all.summaries();
        let verdicts = all.response_counts(now);
        for sev in ["P1", "P2"] {
            let key = ("web".to_string(), sev.to_string());
            let labels = format!(r#"{{service="web",severity="{sev}"}}"#);
            let val = |n: &str| get(&last, &format!("{n}{labels}")).unwrap_or(0.0);
            let want = sums.get(&key);
            let n = |f: fn(&StageSummary) -> &Summary| {
                want.map_or((0.0, 0.0), |w| (f(w).count as f64, f(w).sum_seconds))
            };
            prop_assert_eq!(val("sentinel_incidents_total"), n(|w| &w.mttd).0);
            prop_assert_eq!(val("sentinel_incident_mttd_seconds_count"), n(|w| &w.mttd).0);
            prop_assert_eq!(val("sentinel_incident_mttd_seconds_sum"), n(|w| &w.mttd).1);
            prop_assert_eq!(val("sentinel_incident_mtta_seconds_count"), n(|w| &w.mtta).0);
            prop_assert_eq!(val("sentinel_incident_mtta_seconds_sum"), n(|w| &w.mtta).1);
            prop_assert_eq!(val("sentinel_incident_mttr_seconds_count"), n(|w| &w.mttr).0);
            prop_assert_eq!(val("sentinel_incident_mttr_seconds_sum"), n(|w| &w.mttr).1);
            for (stage, name) in [(Stage::Acknowledge, "acknowledge"), (Stage::Restore, "restore")] {
                let a = verdicts
                    .get(&("web".to_string(), sev.to_string(), stage))
                    .copied()
                    .unwrap_or_default();
                let met = |m: bool| {
                    get(&last, &format!(
                        r#"sentinel_incident_response_total{{service="web",severity="{sev}",stage="{name}",met="{m}"}}"#
                    )).unwrap_or(0.0)
                };
                prop_assert_eq!((met(true), met(false)), (a.met as f64, a.missed as f64), "{} {}", sev, name);
            }
        }
    }
}

/// The counter series of a scrape.
fn counters(m: &Scrape) -> Scrape {
    m.iter()
        .filter(|(k, _)| is_counter(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// A running engine on the real store (real `EngineTask`, real SQLite file).
struct Running {
    handle: EngineHandle,
    task: tokio::task::JoinHandle<()>,
    store: Store,
    shutdown: CancellationToken,
    cfg: Arc<Config>,
}

impl Running {
    async fn start(cfg: &Arc<Config>, clock: &crate::clock::ManualClock) -> Running {
        let store = Store::open(&cfg.storage.path).unwrap();
        let shutdown = CancellationToken::new();
        let opts = EngineOptions {
            flush_every: Duration::from_millis(20),
            snapshot_every: Duration::from_millis(20),
            prune_every: Duration::from_secs(3600),
            store_check_every: Duration::from_secs(3600),
        };
        let (handle, task) = start(
            Arc::clone(cfg),
            store.clone(),
            Arc::new(clock.clone()),
            opts,
            Arc::new(tokio::sync::Notify::new()),
            shutdown.clone(),
        )
        .await
        .unwrap();
        Running {
            handle,
            task,
            store,
            shutdown,
            cfg: Arc::clone(cfg),
        }
    }

    fn scrape(&self) -> Scrape {
        render(&self.handle.snapshot(), &self.cfg)
    }

    /// Polls the published snapshot until `pred` holds on its scrape.
    async fn wait(&self, what: &str, pred: impl Fn(&Scrape) -> bool) -> Scrape {
        for _ in 0..500 {
            let m = self.scrape();
            if pred(&m) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}: {:#?}", self.scrape());
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
        self.store.close().await.unwrap();
    }
}

fn value(series: &str) -> impl Fn(&Scrape) -> f64 + '_ {
    move |m: &Scrape| get(m, series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_are_equal_across_restarts_and_pruning_with_the_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage: {{ path: {}, retention: 10d }}\n{CFG}",
        dir.path().join("state.db").display()
    );
    let cfg = config(&text);
    let clock = crate::clock::ManualClock::new(at("2026-01-01T00:00:00Z"));
    let opened = value(r#"sentinel_incidents_total{service="web",severity="P1"}"#);
    let restored = value(r#"sentinel_incident_mttr_seconds_count{service="web",severity="P1"}"#);
    let ack_missed = response("acknowledge", false);
    let restore_missed = response("restore", false);

    // The scenario of the windowed test, through the engine task.
    let e = Running::start(&cfg, &clock).await;
    let send = |check: &str, t: &str, good: bool| {
        clock.set(at(t));
        e.handle.send(EngineMsg::Run(run(check, at(t), good)));
    };
    send("home", "2026-01-01T00:00:00Z", false);
    send("home", "2026-01-01T00:01:00Z", false);
    e.wait("A opens", |m| opened(m) == 1.0).await;
    let id = e.handle.snapshot().incidents[0].id.clone();
    clock.set(at("2026-01-01T00:06:00Z"));
    let ack = IncidentCommand::Ack {
        id,
        by: "alice".into(),
        note: None,
        source: crate::incident::Source::PagerDuty,
    };
    assert!(e.handle.command(ack).await.unwrap().unwrap().1);
    send("home", "2026-01-01T00:08:00Z", true);
    e.wait("A resolves", |m| restored(m) == 1.0).await;
    send("api", "2026-01-04T00:00:00Z", false);
    send("api", "2026-01-04T00:02:00Z", false);
    e.wait("B opens", |m| opened(m) == 2.0).await;
    clock.set(at("2026-01-04T00:30:00Z"));
    e.wait("B misses its ack target", |m| {
        get(m, &ack_missed) == Some(1.0)
    })
    .await;
    clock.set(at("2026-01-04T01:30:00Z"));
    e.wait("B misses its restore target", |m| {
        get(m, &restore_missed) == Some(1.0)
    })
    .await;
    send("api", "2026-01-04T02:00:00Z", true);
    let before = e.wait("B resolves", |m| restored(m) == 2.0).await;
    assert_scenario_totals(&before);
    // A was acknowledged from PagerDuty (an inbound hook), B never.
    let acks = |source: &str| {
        get(
            &before,
            &format!(
                r#"sentinel_incident_acknowledgements_total{{service="web",severity="P1",source="{source}"}}"#
            ),
        )
    };
    assert_eq!(acks("pagerduty"), Some(1.0));
    assert_eq!(acks("api"), Some(0.0));
    e.stop().await;

    // A restart 40 days later: both incidents are outside every window and
    // are not loaded, the totals are the same.
    clock.set(at("2026-02-10T00:00:00Z"));
    let e = Running::start(&cfg, &clock).await;
    let after = e.scrape();
    assert_eq!(counters(&after), counters(&before));
    assert!(after.keys().all(|k| !k.contains("quantile=")), "{after:#?}");
    // The first prune (at start) deletes both: older than `retention: 10d`.
    for _ in 0..500 {
        if e.store.load_incidents(i64::MIN).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.store.load_incidents(i64::MIN).await.unwrap(), vec![]);
    e.stop().await;

    // And after the pruning, from the totals table alone.
    clock.set(at("2026-02-11T00:00:00Z"));
    let e = Running::start(&cfg, &clock).await;
    assert_eq!(counters(&e.scrape()), counters(&before));
    // A new incident adds to them.
    let e2 = &e;
    let send = |check: &str, t: &str, good: bool| {
        clock.set(at(t));
        e2.handle.send(EngineMsg::Run(run(check, at(t), good)));
    };
    send("home", "2026-02-11T00:00:00Z", false);
    send("home", "2026-02-11T00:00:30Z", false);
    let m = e.wait("a third incident", |m| opened(m) == 3.0).await;
    assert_eq!(
        get(&m, &format!("sentinel_incident_mttd_seconds_sum{P1}")),
        Some(210.0)
    );
    e.stop().await;
}

/// An incident that opens in the first evaluation at start (a burn alert on
/// the restored history) is written with its entry like any other change:
/// its count survives the next restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_opened_by_the_first_evaluation_is_stored_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage: {{ path: {} }}\n{}",
        dir.path().join("state.db").display(),
        CFG.replace("burn_rate_alerts: false", "burn_rate_alerts: true")
    );
    let cfg = config(&text);
    let now = at("2026-01-01T12:00:30Z");
    let clock = crate::clock::ManualClock::new(now);
    // An hour of failures just before the start: every burn window pages.
    let store = Store::open(&cfg.storage.path).unwrap();
    let deltas = (0..60)
        .map(|m| BucketDelta {
            service: "web".into(),
            check: "home".into(),
            at_minute: now.as_second() - 3600 + m * 60,
            counts: slo::Counts {
                valid: 10,
                good: 0,
                latency_good: 0,
            },
        })
        .collect();
    store.add_counts(deltas).await.unwrap();
    store.close().await.unwrap();

    let e = Running::start(&cfg, &clock).await;
    let opened = e.scrape();
    assert_eq!(
        get(&opened, &format!("sentinel_incidents_total{P1}")),
        Some(1.0)
    );
    for _ in 0..500 {
        if !e.store.load_incidents(0).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.store.load_incidents(0).await.unwrap().len(), 1);
    e.stop().await;

    let e = Running::start(&cfg, &clock).await;
    assert_eq!(counters(&e.scrape()), counters(&opened));
    e.stop().await;
}
