//! Ticket connectors against the strict local fakes (real HTTP on
//! 127.0.0.1, real protocol): one ServiceNow record per incident even when
//! a create is committed and its answer lost; a Jira issue commented,
//! re-prioritised and transitioned on resolve, never created twice while
//! search lags; an Opsgenie alert acknowledged and closed by alias; and the
//! real binary killed with `kill -9` between "ticket created" and "key
//! stored" leaves exactly one record, resolved after the restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use sentinel::clock::{Clock, ManualClock};
use sentinel::config::tickets::{
    JiraSpec, OpsgenieSpec, ServiceNowAuth, ServiceNowSpec, SnowUrgency,
};
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind};
use sentinel::incident::{Ack, EventType, ServiceIncidents};
use sentinel::notify::tickets::{Desk, TicketRef};
use sentinel::notify::worker::{Attempt, MemoryOutbox, Worker};
use sentinel::notify::{Event, EventContext, Secrets};
use sentinel::store::Store;

use crate::support::fakes;
use crate::support::{daemon, servers};

use fakes::jira::{self, Jira};
use fakes::opsgenie::{self, Opsgenie};
use fakes::servicenow::{self, ServiceNow};
use fakes::{Fault, Match};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(fakes::START + s).unwrap()
}

const SNOW_USER: &str = "sentinel.integration";
const SNOW_PASSWORD: &str = "s3cret";
const JIRA_USER: &str = "sentinel@example.com";
const JIRA_TOKEN: &str = "jira-api-token";
const GENIE_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

fn secrets() -> Secrets {
    Secrets::from_pairs([
        ("SNOW_USER", SNOW_USER),
        ("SNOW_PASSWORD", SNOW_PASSWORD),
        ("JIRA_USER", JIRA_USER),
        ("JIRA_TOKEN", JIRA_TOKEN),
        ("GENIE_KEY", GENIE_KEY),
    ])
}

fn url(base: &str) -> url::Url {
    url::Url::parse(base).unwrap()
}

fn notifier(name: &str, kind: NotifierKind) -> Notifier {
    Notifier {
        name: name.into(),
        kind,
        max_age: Duration::from_secs(86_400),
        timeout: Duration::from_secs(5),
    }
}

fn snow_notifier(base: &str) -> Notifier {
    notifier(
        "snow",
        NotifierKind::ServiceNow(ServiceNowSpec {
            url: url(base),
            auth: ServiceNowAuth::Basic {
                username_env: "SNOW_USER".into(),
                password_env: "SNOW_PASSWORD".into(),
            },
            table: "incident".into(),
            fields: vec![("assignment_group".into(), "IT Operations".into())],
            close_code: "Solution provided".into(),
            severity_map: BTreeMap::new(),
        }),
    )
}

fn jira_notifier(base: &str, resolve_transition: &str) -> Notifier {
    notifier(
        "jira",
        NotifierKind::Jira(JiraSpec {
            url: url(base),
            user_env: "JIRA_USER".into(),
            token_env: "JIRA_TOKEN".into(),
            project: "OPS".into(),
            issue_type: "Incident".into(),
            resolve_transition: resolve_transition.into(),
            fields: vec![("labels".into(), serde_json::json!(["web-team"]))],
            severity_map: BTreeMap::new(),
        }),
    )
}

fn genie_notifier(base: &str) -> Notifier {
    notifier(
        "genie",
        NotifierKind::Opsgenie(OpsgenieSpec {
            url: url(base),
            api_key_env: "GENIE_KEY".into(),
            fields: vec![(
                "responders".into(),
                serde_json::json!([{"type": "team", "name": "ops"}]),
            )],
            severity_map: BTreeMap::new(),
        }),
    )
}

/// One incident of `service` through its life: opened (P3) at `s0`,
/// acknowledged by alice with a note, escalated to P1, resolved
/// automatically. Events as the engine writes them.
struct Life {
    opened: Event,
    acked: Event,
    escalated: Event,
    resolved: Event,
}

fn life(service: &str, s0: i64) -> Life {
    let policy = IncidentPolicy {
        open_after: 1,
        resolve_after: 1,
        burn_rate_alerts: true,
        severity: "P3".into(),
        notify: vec!["snow".into()],
    };
    let ctx = EventContext {
        availability_ratio: Some(0.995),
        error_budget_remaining_ratio: Some(0.25),
        api_base: "https://sentinel.example.com".into(),
    };
    let ev = |c: &sentinel::incident::Change, at: i64| Event::from_change(c, t(at), &ctx).unwrap();
    let mut m = ServiceIncidents::new(service, &policy, None, 0);
    let opened = m.on_run(t(s0), "health", false, "status 503", false);
    let id = opened[0].incident.id.clone();
    let Ack::Changed(acked) = m.ack(t(s0 + 60), &id, "alice", Some("on it")).unwrap() else {
        panic!("ack must change");
    };
    let resolved = m.on_run(t(s0 + 600), "health", true, "", false);
    let acked = ev(&acked, s0 + 60);
    // Escalation comes from page-level burn alerts; the connectors only see
    // the event, so it is built here as the engine writes it.
    let mut escalated = acked.clone();
    escalated.id = format!("evt-{id}-esc");
    escalated.kind = EventType::Escalated;
    escalated.previous_severity = Some("P3".into());
    escalated.incident.severity = "P1".into();
    escalated.occurred_at = t(s0 + 120);
    Life {
        opened: ev(&opened[0], s0),
        acked,
        escalated,
        resolved: ev(&resolved[0], s0 + 600),
    }
}

fn push(outbox: &MemoryOutbox, notifier: &str, events: &[&Event], at: Timestamp) {
    for e in events {
        outbox.push(
            &e.id,
            notifier,
            &e.incident.id,
            &e.to_payload().unwrap(),
            at,
        );
    }
}

struct Rig {
    worker: Worker<MemoryOutbox>,
    clock: ManualClock,
    _dir: tempfile::TempDir,
    db: PathBuf,
}

/// A worker with an in-memory outbox and a desk on a real SQLite store.
async fn rig(n: Notifier) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sentinel.db");
    let clock = ManualClock::new(t(0));
    let store = Store::open(&db).unwrap();
    let c: Arc<dyn Clock> = Arc::new(clock.clone());
    let desk = Desk::load(store, Arc::clone(&c)).await.unwrap();
    let worker = Worker::new(
        MemoryOutbox::default(),
        &[n],
        secrets(),
        reqwest::Client::new(),
        c,
    );
    worker.set_tickets(Arc::new(desk));
    Rig {
        worker,
        clock,
        _dir: dir,
        db,
    }
}

impl Rig {
    /// Delivery passes until nothing is pending, moving the clock past
    /// every backoff in between.
    async fn drain(&self) -> usize {
        let mut passes = 0;
        while self.worker.store().pending() > 0 {
            self.worker.run_once().await.unwrap();
            self.clock.advance(Duration::from_secs(301));
            passes += 1;
            assert!(passes < 20, "outbox did not drain");
        }
        passes
    }

    fn attempts(&self, notifier: &str, a: Attempt) -> u64 {
        self.worker
            .stats()
            .snapshot()
            .get(&(notifier.to_string(), a))
            .copied()
            .unwrap_or(0)
    }

    async fn stored(&self) -> Vec<sentinel::store::TicketRow> {
        let ro = Store::open_read_only(&self.db).unwrap();
        ro.tickets_load().unwrap()
    }
}

#[tokio::test]
async fn servicenow_keeps_one_record_when_a_committed_create_loses_its_answer() {
    let snow = ServiceNow::start(Default::default()).await;
    let rig = rig(snow_notifier(&snow.base_url())).await;
    let l = life("web", 0);
    let id = l.opened.incident.id.clone();
    snow.inject_on(
        Match::request("POST", "/api/now/table/incident"),
        Fault::CommitThenDrop,
        1,
    );
    push(rig.worker.store(), "snow", &[&l.opened], t(0));
    let pass = rig.worker.run_once().await.unwrap();
    assert_eq!(
        (pass.delivered, pass.retried),
        (0, 1),
        "the answer was lost"
    );
    assert_eq!(snow.by_correlation_id("incident", &id).len(), 1);
    rig.clock.advance(Duration::from_secs(2));
    let pass = rig.worker.run_once().await.unwrap();
    assert_eq!(
        pass.delivered, 1,
        "found by correlation_id, not created again"
    );
    assert_eq!(
        snow.requests_to("POST", "/api/now/table/incident").len(),
        1,
        "one create in all"
    );

    push(
        rig.worker.store(),
        "snow",
        &[&l.acked, &l.escalated, &l.resolved],
        t(60),
    );
    rig.drain().await;
    let records = snow.by_correlation_id("incident", &id);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.number(), "INC0010001");
    assert_eq!(r.get("short_description"), "[sentinel] web is failing");
    assert_eq!(r.get("correlation_display"), "sentinel");
    assert_eq!(r.get("assignment_group"), "IT Operations");
    // P3 → impact 2 / urgency 2 at create, P1 → 1 / 1 on escalation.
    assert_eq!(
        (r.get("impact"), r.get("urgency"), r.get("priority")),
        ("1", "1", "1")
    );
    assert_eq!(r.state(), servicenow::RESOLVED);
    assert_eq!(r.get("close_code"), "Solution provided");
    assert_eq!(
        r.get("close_notes"),
        format!(
            "Resolved automatically by sentinel: every failing check passed again at 2026-01-15 09:10:00 UTC. \
             Impact from 2026-01-15 09:00:00 UTC to 2026-01-15 09:10:00 UTC (10 min). sentinel incident {id}."
        )
    );
    assert_eq!(
        r.work_notes(),
        vec![
            "Acknowledged in sentinel by alice at 2026-01-15 09:01:00 UTC: on it".to_string(),
            "Severity raised by sentinel from P3 to P1: check `health` failed: status 503"
                .to_string(),
        ]
    );
    let description = r.get("description");
    assert!(
        description.contains(&format!(
            "Resolve (API, POST): https://sentinel.example.com/api/v1/incidents/{id}/resolve"
        )),
        "{description}"
    );
    assert!(snow.rejections().is_empty(), "{:?}", snow.rejections());
    assert!(
        snow.ignored_fields().is_empty(),
        "{:?}",
        snow.ignored_fields()
    );

    let sys_id = r.sys_id().to_string();
    let stored = rig.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (
            stored[0].key.as_deref(),
            stored[0].ext_id.as_deref(),
            stored[0].lookup.as_str(),
            stored[0].create_sent_at
        ),
        (Some("INC0010001"), Some(sys_id.as_str()), id.as_str(), None)
    );
    assert_eq!(
        rig.worker.tickets().book().refs(&id),
        vec![TicketRef {
            notifier: "snow".into(),
            key: "INC0010001".into(),
            url: Some(format!("{}/incident.do?sys_id={sys_id}", snow.base_url())),
        }]
    );
}

#[tokio::test]
async fn servicenow_severity_override_and_a_refusal_that_is_not_retried() {
    let snow = ServiceNow::start(Default::default()).await;
    let mut n = snow_notifier(&snow.base_url());
    if let NotifierKind::ServiceNow(s) = &mut n.kind {
        s.severity_map.insert(
            "P3".into(),
            SnowUrgency {
                impact: 3,
                urgency: 1,
            },
        );
    }
    let rig = rig(n.clone()).await;
    let l = life("web", 0);
    push(rig.worker.store(), "snow", &[&l.opened], t(0));
    rig.drain().await;
    let r = &snow.records()[0];
    // impact 3 × urgency 1 is priority 3 in ServiceNow's default lookup.
    assert_eq!(
        (r.get("impact"), r.get("urgency"), r.get("priority")),
        ("3", "1", "3")
    );
    // A password changed on the ServiceNow side: 401 is a refusal, the
    // event is dropped at once instead of retried for a day.
    rig.worker.set_notifiers(
        &[n],
        Secrets::from_pairs([("SNOW_USER", SNOW_USER), ("SNOW_PASSWORD", "old")]),
    );
    push(rig.worker.store(), "snow", &[&l.resolved], t(600));
    rig.drain().await;
    assert_eq!(rig.attempts("snow", Attempt::Delivered), 1);
    assert_eq!(rig.attempts("snow", Attempt::Rejected), 1);
    assert_eq!(snow.records()[0].state(), servicenow::NEW);
    let rejections = snow.rejections();
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].status, 401);
}

#[tokio::test]
async fn jira_issue_is_commented_reprioritised_and_transitioned_on_resolve() {
    let jira = Jira::start(Default::default()).await;
    let rig = rig(jira_notifier(&jira.base_url(), "Resolved")).await;
    let l = life("web", 0);
    let id = l.opened.incident.id.clone();
    push(
        rig.worker.store(),
        "jira",
        &[&l.opened, &l.acked, &l.escalated, &l.resolved],
        t(0),
    );
    rig.drain().await;
    let issues = jira.with_label(&format!("sentinel-{id}"));
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue.key, "OPS-1");
    assert_eq!(issue.issue_type, "Incident");
    assert_eq!(issue.summary, "[sentinel] web is failing");
    assert_eq!(
        issue.labels,
        vec![
            "sentinel".to_string(),
            format!("sentinel-{id}"),
            "web-team".into()
        ]
    );
    assert_eq!(issue.priority, "Highest", "P3 (Medium) escalated to P1");
    assert_eq!(issue.status.name, "Resolved");
    assert_eq!(issue.history.len(), 1, "one transition: To Do → Resolved");
    let comments: Vec<String> = issue.comments.iter().map(|c| c.text()).collect();
    assert_eq!(comments.len(), 3, "{comments:?}");
    assert_eq!(
        comments[0],
        "Acknowledged in sentinel by alice at 2026-01-15 09:01:00 UTC: on it"
    );
    assert!(comments[1].starts_with("Severity raised by sentinel from P3 to P1"));
    assert!(comments[2].starts_with("Resolved automatically by sentinel"));
    assert!(jira.rejections().is_empty(), "{:?}", jira.rejections());
    assert_eq!(
        rig.worker.tickets().book().refs(&id),
        vec![TicketRef {
            notifier: "jira".into(),
            key: "OPS-1".into(),
            url: Some(format!("{}/browse/OPS-1", jira.base_url())),
        }]
    );
}

#[tokio::test]
async fn jira_create_in_doubt_waits_for_search_instead_of_creating_a_second_issue() {
    let jira = Jira::start(jira::Config {
        search: jira::Visibility::Manual,
        ..Default::default()
    })
    .await;
    let rig = rig(jira_notifier(&jira.base_url(), "Done")).await;
    let l = life("web", 0);
    let id = l.opened.incident.id.clone();
    jira.inject_on(
        Match::request("POST", "/rest/api/3/issue"),
        Fault::CommitThenDrop,
        1,
    );
    push(rig.worker.store(), "jira", &[&l.opened, &l.resolved], t(0));
    // Lost answer; then searches that do not see the new issue yet.
    for _ in 0..3 {
        rig.worker.run_once().await.unwrap();
        rig.clock.advance(Duration::from_secs(5));
    }
    assert_eq!(jira.issues().len(), 1);
    assert_eq!(jira.requests_to("POST", "/rest/api/3/issue").len(), 1);
    assert_eq!(jira.requests_to("POST", "/rest/api/3/search/jql").len(), 3);
    assert_eq!(rig.attempts("jira", Attempt::Delivered), 0);
    jira.index_now();
    rig.drain().await;
    assert_eq!(
        jira.requests_to("POST", "/rest/api/3/issue").len(),
        1,
        "never created twice"
    );
    let issue = &jira.with_label(&format!("sentinel-{id}"))[0];
    assert_eq!(issue.status.name, "Done");
    assert!(jira.rejections().is_empty(), "{:?}", jira.rejections());
}

#[tokio::test]
async fn jira_without_the_resolve_transition_drops_the_resolve_and_keeps_the_issue_open() {
    let jira = Jira::start(Default::default()).await;
    let rig = rig(jira_notifier(&jira.base_url(), "Closed")).await;
    let l = life("web", 0);
    push(rig.worker.store(), "jira", &[&l.opened, &l.resolved], t(0));
    rig.drain().await;
    assert_eq!(rig.attempts("jira", Attempt::Rejected), 1);
    assert_eq!(jira.issues()[0].status.name, "To Do");
    assert!(
        jira.requests_to("POST", "/rest/api/3/issue/OPS-1/transitions")
            .is_empty()
    );
}

#[tokio::test]
async fn opsgenie_alert_is_acknowledged_reprioritised_and_closed_by_alias() {
    // Opsgenie processes requests asynchronously; here not before the
    // test says so, so sentinel never learns the alert id and addresses
    // the alert by its alias.
    let genie = Opsgenie::start(opsgenie::Config {
        processing: opsgenie::Processing::Manual,
        ..Default::default()
    })
    .await;
    let rig = rig(genie_notifier(&genie.base_url())).await;
    let l = life("web", 0);
    let alias = l.opened.incident.dedup_key.clone();
    push(rig.worker.store(), "genie", &[&l.opened], t(0));
    rig.drain().await;
    genie.process();
    push(
        rig.worker.store(),
        "genie",
        &[&l.acked, &l.escalated, &l.resolved],
        t(60),
    );
    rig.drain().await;
    genie.process();
    let alerts = genie.by_alias(&alias);
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.message, "[sentinel] web is failing");
    assert_eq!(a.status, "closed");
    assert!(a.acknowledged);
    assert_eq!(a.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(a.closed_by.as_deref(), Some("sentinel"));
    assert_eq!(a.priority, "P1", "created P3, escalated to P1");
    assert_eq!(a.entity, "web");
    assert_eq!(a.source, "sentinel");
    assert_eq!(a.tags, vec!["sentinel", "web", "P3"]);
    assert_eq!(
        a.details.get("incident"),
        Some(&Value::from(l.opened.incident.id.clone()))
    );
    let notes: Vec<&str> = a.notes.iter().map(|n| n.note.as_str()).collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    let encoded = alias.replace('/', "%2F");
    for verb in ["acknowledge", "notes", "close"] {
        let hits = genie.requests_to("POST", &format!("/v2/alerts/{encoded}/{verb}"));
        assert_eq!(hits.len(), 1, "{verb}");
        assert_eq!(hits[0].request.query, "identifierType=alias");
    }
    assert!(genie.rejections().is_empty(), "{:?}", genie.rejections());
    assert_eq!(
        rig.worker.tickets().book().refs(&l.opened.incident.id)[0].key,
        alias,
        "the alias stands in for the tiny id Opsgenie had not assigned yet"
    );
}

#[tokio::test]
async fn opsgenie_alert_id_and_tiny_id_are_stored_once_processed() {
    let genie = Opsgenie::start(Default::default()).await;
    let rig = rig(genie_notifier(&genie.base_url())).await;
    let l = life("web", 0);
    push(
        rig.worker.store(),
        "genie",
        &[&l.opened, &l.acked, &l.resolved],
        t(0),
    );
    rig.drain().await;
    let a = &genie.alerts()[0];
    assert_eq!(genie.alerts().len(), 1);
    assert_eq!(a.status, "closed");
    let stored = rig.stored().await;
    assert_eq!(stored[0].key.as_deref(), Some("1"));
    assert_eq!(stored[0].ext_id.as_deref(), Some(a.id.as_str()));
    let close = genie.requests_to("POST", &format!("/v2/alerts/{}/close", a.id));
    assert_eq!(close.len(), 1);
    assert_eq!(close[0].request.query, "identifierType=id");
    assert!(genie.rejections().is_empty(), "{:?}", genie.rejections());
}

// ---------------------------------------------------------------------
// The real binary, kill -9 between "ticket created" and "key stored".

const TOKEN: &str = "tickets-e2e-token";

/// A webhook receiver that keeps every body it gets and answers 200.
async fn receiver() -> (Arc<std::sync::Mutex<Vec<Value>>>, std::net::SocketAddr) {
    let got: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&got);
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            axum::http::StatusCode::OK
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (got, addr)
}

fn daemon_config(
    dir: &Path,
    target: std::net::SocketAddr,
    snow: &str,
    hooks: std::net::SocketAddr,
) -> PathBuf {
    let text = format!(
        r#"server:
  listen: 127.0.0.1:0
  api_token_env: TICKETS_E2E_TOKEN
  external_url: https://sentinel.example.com/
storage:
  path: {db}
notifiers:
  - name: snow
    type: servicenow
    url: {snow}
    username_env: SNOW_USER
    password_env: SNOW_PASSWORD
    timeout: 20s
  - name: hooks
    type: webhook
    url: http://{hooks}/events
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
    incident:
      open_after: 2
      resolve_after: 2
      severity: P2
      notify: [snow, hooks]
"#,
        db = dir.join("sentinel.db").display()
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn incidents(client: &reqwest::Client, d: &daemon::Daemon) -> Vec<Value> {
    let v: Value = client
        .get(d.url("/api/v1/incidents?state=all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().cloned().unwrap_or_default()
}

async fn until<T>(secs: u64, what: &str, f: impl AsyncFnMut() -> Option<T>) -> T {
    poll_every(Duration::from_millis(50), secs, what, f).await
}

async fn poll_every<T>(
    every: Duration,
    secs: u64,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_ticket_created_and_key_stored_leaves_one_record_resolved_after_restart() {
    let snow = ServiceNow::start(Default::default()).await;
    let up = Arc::new(AtomicBool::new(false));
    let target = servers::start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let (hooks, hooks_addr) = receiver().await;
    let config = daemon_config(dir.path(), target, &snow.base_url(), hooks_addr);
    let env = [
        ("TICKETS_E2E_TOKEN", TOKEN),
        ("SNOW_USER", SNOW_USER),
        ("SNOW_PASSWORD", SNOW_PASSWORD),
    ];
    // The create is committed, and its answer never comes.
    snow.inject_on(
        Match::request("POST", "/api/now/table/incident"),
        Fault::CommitThenHang,
        1,
    );
    let mut d = daemon::Daemon::start(&config, &env);
    let record = until(20, "the record to be created", async || {
        snow.records().into_iter().next()
    })
    .await;
    daemon::kill9(&mut d);
    let incident_id = record.get("correlation_id").to_string();
    assert!(incident_id.starts_with("inc-portal-"), "{incident_id}");

    let d = daemon::Daemon::start(&config, &env);
    let client = reqwest::Client::new();
    let tickets = until(20, "the ticket key to be stored", async || {
        let list = incidents(&client, &d).await;
        let inc = list.iter().find(|i| i["id"] == incident_id.as_str())?;
        let t = inc["tickets"].as_array()?.first()?.clone();
        Some(t)
    })
    .await;
    assert_eq!(tickets["notifier"], "snow");
    assert_eq!(tickets["key"], "INC0010001");
    assert_eq!(
        tickets["url"],
        format!("{}/incident.do?sys_id={}", snow.base_url(), record.sys_id())
    );
    let resolved = client
        .post(d.url(&format!("/api/v1/incidents/{incident_id}/resolve")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"by": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let body: Value = resolved.json().await.unwrap();
    assert_eq!(body["incident"]["tickets"][0]["key"], "INC0010001");
    until(20, "the record to be resolved", async || {
        (snow.records()[0].state() == servicenow::RESOLVED).then_some(())
    })
    .await;
    let records = snow.by_correlation_id("incident", &incident_id);
    assert_eq!(records.len(), 1, "exactly one record");
    assert_eq!(snow.records().len(), 1);
    assert_eq!(snow.requests_to("POST", "/api/now/table/incident").len(), 1);
    let r = &records[0];
    assert!(
        r.get("close_notes")
            .starts_with("Resolved in sentinel by carol at "),
        "{}",
        r.get("close_notes")
    );
    assert!(
        r.get("description").contains(&format!(
            "https://sentinel.example.com/api/v1/incidents/{incident_id}/ack"
        )),
        "links use server.external_url: {}",
        r.get("description")
    );
    assert!(snow.rejections().is_empty(), "{:?}", snow.rejections());
    // Later events to every notifier carry the ticket.
    let resolved = until(20, "the resolve event at the webhook", async || {
        hooks
            .lock()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "incident.resolved")
            .cloned()
    })
    .await;
    assert_eq!(
        resolved["incident"]["tickets"],
        serde_json::json!([{"notifier": "snow", "key": "INC0010001",
            "url": format!("{}/incident.do?sys_id={}", snow.base_url(), record.sys_id())}])
    );
    assert_eq!(
        resolved["incident"]["links"]["resolve"],
        format!("https://sentinel.example.com/api/v1/incidents/{incident_id}/resolve")
    );
    drop(d);
}

#[test]
fn slack_messages_name_the_tickets() {
    let mut ev = life("web", 0).acked;
    ev.incident.tickets = vec![
        TicketRef {
            notifier: "snow".into(),
            key: "INC0010001".into(),
            url: Some("https://acme.service-now.com/incident.do?sys_id=abc".into()),
        },
        TicketRef {
            notifier: "genie".into(),
            key: "17".into(),
            url: None,
        },
    ];
    let body = sentinel::notify::slack::body(&ev, false);
    assert_eq!(
        body["blocks"][2]["text"]["text"],
        "*Reason:* check `health` failed: status 503\n*Acknowledged by:* alice\n\
         *Tickets:* <https://acme.service-now.com/incident.do?sys_id=abc|INC0010001> (snow), 17 (genie)"
    );
}

// ---------------------------------------------------------------------
// Figures: time from an incident change (its outbox write) to the ticket
// created or updated in each fake, with the delivery task woken as the
// engine wakes it. Printed, not asserted; what is asserted is that every
// incident got exactly one record and its update.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn measure(
    name: &str,
    n: Notifier,
    incidents: usize,
    created: impl Fn(&Event) -> bool,
    updated: impl Fn(&Event) -> bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sentinel.db")).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(sentinel::clock::SystemClock);
    let worker = Worker::new(
        store.clone(),
        &[n],
        secrets(),
        reqwest::Client::new(),
        Arc::clone(&clock),
    );
    worker.set_tickets(Arc::new(
        Desk::load(store.clone(), Arc::clone(&clock)).await.unwrap(),
    ));
    let wake = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(worker.clone().run(
        stop.clone(),
        Arc::clone(&wake),
        Duration::from_secs(1),
    ));
    let (mut create, mut update) = (Vec::new(), Vec::new());
    for k in 0..incidents {
        let l = life(&format!("svc{k}"), 0);
        for step in 0..2 {
            let (event, done): (&Event, &dyn Fn(&Event) -> bool) = match step {
                0 => (&l.opened, &created),
                _ => (&l.acked, &updated),
            };
            let started = tokio::time::Instant::now();
            store
                .save_state(sentinel::store::StateWrite {
                    events: vec![sentinel::store::OutboxInsert {
                        event_id: event.id.clone(),
                        notifier: name.into(),
                        incident_id: event.incident.id.clone(),
                        payload: event.to_payload().unwrap(),
                        created_at: clock.now().as_second(),
                    }],
                    ..Default::default()
                })
                .await
                .unwrap();
            wake.notify_one();
            poll_every(
                Duration::from_micros(200),
                10,
                "the ticket change",
                async || done(event).then_some(()),
            )
            .await;
            let took = started.elapsed();
            if step == 0 {
                create.push(took);
            } else {
                update.push(took);
            }
            // The conversation may still be finishing (reading back the
            // alert id): let it, so the next event starts from a quiet worker.
            poll_every(
                Duration::from_millis(1),
                10,
                "the event to be delivered",
                async || (store.outbox_depth().await.unwrap().is_empty()).then_some(()),
            )
            .await;
        }
    }
    stop.cancel();
    task.await.unwrap();
    create.sort();
    update.sort();
    (create, update)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_time_from_incident_change_to_ticket_in_each_fake() {
    const N: usize = 40;
    let snow = ServiceNow::start(Default::default()).await;
    let jira = Jira::start(Default::default()).await;
    let genie = Opsgenie::start(Default::default()).await;
    let mut rows = Vec::new();
    let s = measure(
        "snow",
        snow_notifier(&snow.base_url()),
        N,
        |e| snow.by_correlation_id("incident", &e.incident.id).len() == 1,
        |e| {
            snow.by_correlation_id("incident", &e.incident.id)
                .first()
                .is_some_and(|r| r.work_notes().len() == 1)
        },
    )
    .await;
    rows.push(("servicenow", s));
    let j = measure(
        "jira",
        jira_notifier(&jira.base_url(), "Done"),
        N,
        |e| {
            jira.with_label(&format!("sentinel-{}", e.incident.id))
                .len()
                == 1
        },
        |e| {
            jira.with_label(&format!("sentinel-{}", e.incident.id))
                .first()
                .is_some_and(|i| i.comments.len() == 1)
        },
    )
    .await;
    rows.push(("jira", j));
    let g = measure(
        "genie",
        genie_notifier(&genie.base_url()),
        N,
        |e| genie.by_alias(&e.incident.dedup_key).len() == 1,
        |e| {
            genie
                .by_alias(&e.incident.dedup_key)
                .first()
                .is_some_and(|a| a.acknowledged)
        },
    )
    .await;
    rows.push(("opsgenie", g));
    assert_eq!(snow.records().len(), N);
    assert_eq!(jira.issues().len(), N);
    assert_eq!(genie.alerts().len(), N);
    for (provider, (create, update)) in &rows {
        assert_eq!((create.len(), update.len()), (N, N));
        eprintln!(
            "figure: {provider:<10} created p50 {:>6.1} ms p99 {:>6.1} ms | updated p50 {:>6.1} ms p99 {:>6.1} ms (n={N} each)",
            percentile(create, 50.0).as_secs_f64() * 1e3,
            percentile(create, 99.0).as_secs_f64() * 1e3,
            percentile(update, 50.0).as_secs_f64() * 1e3,
            percentile(update, 99.0).as_secs_f64() * 1e3,
        );
    }
}

#[tokio::test]
async fn a_stored_key_survives_a_restart_so_a_redelivered_open_sends_nothing() {
    let snow = ServiceNow::start(Default::default()).await;
    let n = snow_notifier(&snow.base_url());
    let first = rig(n.clone()).await;
    let l = life("web", 0);
    push(first.worker.store(), "snow", &[&l.opened], t(0));
    first.drain().await;
    let before = snow.requests().len();
    // A restart that lost the outbox outcome but kept the ticket: the
    // opened event is delivered again by a new worker on the same state file.
    let store = Store::open(&first.db).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(first.clock.clone());
    let second = Worker::new(
        MemoryOutbox::default(),
        &[n],
        secrets(),
        reqwest::Client::new(),
        Arc::clone(&clock),
    );
    second.set_tickets(Arc::new(Desk::load(store, clock).await.unwrap()));
    push(second.store(), "snow", &[&l.opened], t(0));
    let pass = second.run_once().await.unwrap();
    assert_eq!(pass.delivered, 1);
    assert_eq!(snow.requests().len(), before, "no lookup, no create");
    push(second.store(), "snow", &[&l.resolved], t(0));
    assert_eq!(second.run_once().await.unwrap().delivered, 1);
    assert_eq!(snow.records().len(), 1);
    assert_eq!(snow.records()[0].state(), servicenow::RESOLVED);
}
