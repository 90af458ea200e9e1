//! Inbound hooks (`POST /api/v1/hooks/{provider}`) on the real binary, with
//! the providers played by the strict local fakes: sentinel's notifiers
//! create the provider's object (PagerDuty alert, Slack message, ServiceNow
//! record, Jira issue, Opsgenie alert), a person acts on it in the fake,
//! and the fake builds the hook request exactly as the provider sends it.
//!
//! - A signed PagerDuty v3 `incident.acknowledged` sets `acknowledged_at`,
//!   `acknowledged_by` and `ack_source`, and MTTA is hook time − opened; a
//!   bad or missing signature is 401 and changes nothing; the same
//!   `event.id` again, also after `kill -9` and a restart, is ignored; a
//!   second person's acknowledgement is recorded and changes nothing.
//! - A Slack button press on the message sentinel posted acknowledges and
//!   rewrites that message through its `response_url`; a stale timestamp or
//!   a forged signature is 401 and changes nothing.
//! - ServiceNow, Jira and Opsgenie people acknowledge and resolve through
//!   their hooks; bad credentials are 401.
//! - `sentinel_inbound_hooks_total` and
//!   `sentinel_incident_acknowledgements_total` move accordingly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;
use sentinel::clock::{Clock, SystemClock};
use serde_json::{Value, json};

use crate::support::daemon::{Daemon, kill9};
use crate::support::fakes::HookRequest;
use crate::support::fakes::jira::{self, Jira, JiraUser};
use crate::support::fakes::opsgenie::{self, HookAuth, Opsgenie, OpsgenieUser};
use crate::support::fakes::pagerduty::{self, PagerDuty, PdUser};
use crate::support::fakes::servicenow::{self, ServiceNow};
use crate::support::fakes::slack::{self, Slack, SlackUser};
use crate::support::prom::{sample, scrape};
use crate::support::servers::start_target;
use crate::support::{eventually, secs};

const PD_SECRET: &str = "pd-webhook-secret-5f1c";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const JIRA_SECRET: &str = "jira-webhook-secret-77ab";
const GENIE_HOOK_TOKEN: &str = "genie-hook-token-0c3e";
const SNOW_HOOK_TOKEN: &str = "snow-hook-token-9d41";

/// The `inbound:` section every test runs with, and its variables.
const INBOUND: &str = r#"inbound:
  pagerduty: { secret_env: PD_WEBHOOK_SECRET }
  opsgenie: { token_env: OPSGENIE_HOOK_TOKEN }
  slack: { signing_secret_env: SLACK_SIGNING_SECRET }
  servicenow: { token_env: SNOW_HOOK_TOKEN }
  jira: { secret_env: JIRA_WEBHOOK_SECRET }
"#;

const INBOUND_ENV: [(&str, &str); 5] = [
    ("PD_WEBHOOK_SECRET", PD_SECRET),
    ("OPSGENIE_HOOK_TOKEN", GENIE_HOOK_TOKEN),
    ("SLACK_SIGNING_SECRET", SLACK_SECRET),
    ("SNOW_HOOK_TOKEN", SNOW_HOOK_TOKEN),
    ("JIRA_WEBHOOK_SECRET", JIRA_SECRET),
];

/// A service whose one check always fails (the target is down), so its
/// incident opens after two probes and stays open.
fn service(name: &str, target: SocketAddr, notify: &[&str]) -> String {
    format!(
        r#"  - name: {name}
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http: {{ url: "http://{target}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P2, notify: [{}] }}
"#,
        notify.join(", ")
    )
}

fn write_config(dir: &Path, notifiers: &str, services: &str) -> PathBuf {
    let text = format!(
        "server:\n  listen: 127.0.0.1:0\nstorage:\n  path: {db}\n{INBOUND}notifiers:\n{notifiers}services:\n{services}",
        db = dir.join("state.db").display()
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn incidents(d: &Daemon) -> Vec<Value> {
    let v: Value = reqwest::get(d.url("/api/v1/incidents?state=all"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().cloned().unwrap_or_default()
}

async fn incident(d: &Daemon, id: &str) -> Value {
    incidents(d)
        .await
        .into_iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("incident {id} not listed"))
}

/// The first open incident of `service`, once there is one.
async fn opened(d: &Daemon, service: &str) -> Value {
    eventually(
        secs(20),
        &format!("an open incident of {service}"),
        || format!("{:?}", d.log()),
        || async {
            incidents(d)
                .await
                .into_iter()
                .find(|i| i["service"] == service && i["state"] == "open")
        },
    )
    .await
}

/// POSTs `req` to the `provider` hook: the status and the JSON answer.
async fn send(d: &Daemon, provider: &str, req: &HookRequest) -> (u16, Value) {
    let r = req
        .send(
            &reqwest::Client::new(),
            &d.url(&format!("/api/v1/hooks/{provider}")),
        )
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
    (status, v)
}

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap()
}

async fn metric(d: &Daemon, name: &str, labels: &[&str]) -> f64 {
    let text = scrape(&reqwest::Client::new(), d).await;
    sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
}

async fn hooks_total(d: &Daemon, provider: &str, result: &str) -> f64 {
    let p = format!("provider=\"{provider}\"");
    let r = format!("result=\"{result}\"");
    metric(d, "sentinel_inbound_hooks_total", &[&p, &r]).await
}

async fn acks_total(d: &Daemon, service: &str, source: &str) -> f64 {
    let s = format!("service=\"{service}\"");
    let src = format!("source=\"{source}\"");
    metric(
        d,
        "sentinel_incident_acknowledgements_total",
        &[&s, "severity=\"P2\"", &src],
    )
    .await
}

fn assert_rejected(answer: &(u16, Value), contains: &str) {
    assert_eq!(answer.0, 401, "{answer:?}");
    let error = answer.1["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(contains),
        "{error:?} should say {contains:?}"
    );
}

fn assert_ignored(answer: &(u16, Value), contains: &str) {
    assert_eq!(
        (answer.0, answer.1["result"].as_str()),
        (200, Some("ignored")),
        "{answer:?}"
    );
    let reason = answer.1["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(contains),
        "{reason:?} should say {contains:?}"
    );
}

fn assert_applied(answer: &(u16, Value), action: &str, id: &str) {
    assert_eq!(
        (answer.0, &answer.1),
        (
            200,
            &json!({"result": "applied", "action": action, "incident": id})
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_pagerduty_acknowledgement_sets_mtta_once_and_replays_or_bad_signatures_change_nothing()
 {
    let pd = PagerDuty::start(Default::default()).await;
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "  - name: pd\n    type: pagerduty\n    url: {}\n    routing_key_env: PD_ROUTING_KEY\n",
            pd.enqueue_url()
        ),
        &service("portal", target, &["pd"]),
    );
    let mut env = INBOUND_ENV.to_vec();
    env.push(("PD_ROUTING_KEY", pagerduty::ROUTING_KEY));
    let mut d = Daemon::start(&config, &env);
    let inc = opened(&d, "portal").await;
    let id = inc["id"].as_str().unwrap().to_string();
    let dedup_key = inc["dedup_key"].as_str().unwrap().to_string();
    let opened_at = ts(&inc["opened_at"]);
    eventually(
        secs(20),
        "the alert at PagerDuty",
        || format!("{:?}", d.log()),
        || async { pd.by_dedup_key(&dedup_key).into_iter().next() },
    )
    .await;
    let alice = PdUser {
        id: "PALICE1".into(),
        summary: "Alice Ops".into(),
    };
    let alert = pd.acknowledge_as(&dedup_key, &alice.summary).unwrap();
    let ack = |event_id: &str, who: &PdUser, secrets: &[&str]| {
        pagerduty::webhook_v3(
            "incident.acknowledged",
            &alert,
            who,
            event_id,
            "2026-01-15T09:05:00.000Z",
            secrets,
        )
    };
    let good = ack("01EVTACK0000000000000001", &alice, &[PD_SECRET]);

    // Refused before anything is read: 401, and the incident is untouched.
    assert_rejected(
        &send(&d, "pagerduty", &ack("01EVTFORGED", &alice, &["guessed"])).await,
        "signature does not match",
    );
    assert_rejected(
        &send(
            &d,
            "pagerduty",
            &good.clone().without_header("X-PagerDuty-Signature"),
        )
        .await,
        "missing `X-PagerDuty-Signature` header",
    );
    let tampered = good.clone().with_body(
        &good
            .body_text()
            .replace("Alice Ops", "Mallory")
            .into_bytes(),
    );
    assert_rejected(
        &send(&d, "pagerduty", &tampered).await,
        "signature does not match",
    );
    let still = incident(&d, &id).await;
    assert_eq!(still["acknowledged_at"], Value::Null, "{still}");
    assert_eq!(still["acknowledgements"], json!([]));
    assert_eq!(hooks_total(&d, "pagerduty", "rejected").await, 3.0);
    assert_eq!(acks_total(&d, "portal", "pagerduty").await, 0.0);

    // Signed with the old and the new secret while it rotates: one match
    // is enough.
    let rotating = ack(
        "01EVTACK0000000000000001",
        &alice,
        &["old-secret", PD_SECRET],
    );
    // PagerDuty may deliver one event twice at once: it acts once.
    let before = SystemClock.now();
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (req, url) = (rotating.clone(), d.url("/api/v1/hooks/pagerduty"));
        copies.spawn(async move {
            let r = req.send(&reqwest::Client::new(), &url).await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let answers = copies.join_all().await;
    let after = SystemClock.now();
    let applied: Vec<&(u16, Value)> = answers
        .iter()
        .filter(|a| a.1["result"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1, "{answers:?}");
    assert_applied(applied[0], "acknowledged", &id);
    for a in answers.iter().filter(|a| a.1["result"] != "applied") {
        assert_ignored(
            a,
            "delivery `01EVTACK0000000000000001` was already acted on",
        );
    }
    let acked = incident(&d, &id).await;
    assert_eq!(acked["acknowledged_by"], "Alice Ops");
    assert_eq!(acked["ack_source"], "pagerduty");
    assert_eq!(acked["state"], "open");
    let acked_at = ts(&acked["acknowledged_at"]);
    assert!(
        before <= acked_at && acked_at <= after,
        "acknowledged at hook time: {before} <= {acked_at} <= {after}"
    );
    // MTTA = hook time − opened, to the microsecond the summary keeps.
    let mtta = acked_at.duration_since(opened_at).as_secs_f64();
    let sum = metric(
        &d,
        "sentinel_incident_mtta_seconds_sum",
        &["service=\"portal\"", "severity=\"P2\""],
    )
    .await;
    assert!(
        (sum - mtta).abs() < 1e-6,
        "MTTA sum {sum} is acknowledged_at − opened_at = {mtta}"
    );
    assert_eq!(
        metric(
            &d,
            "sentinel_incident_mtta_seconds_count",
            &["service=\"portal\""]
        )
        .await,
        1.0
    );
    assert_eq!(acks_total(&d, "portal", "pagerduty").await, 1.0);
    assert_eq!(acks_total(&d, "portal", "api").await, 0.0);
    assert_eq!(hooks_total(&d, "pagerduty", "applied").await, 1.0);
    assert_eq!(hooks_total(&d, "pagerduty", "ignored").await, 5.0);
    assert_eq!(acked["acknowledgements"].as_array().unwrap().len(), 1);

    // PagerDuty retries a delivery whose answer it did not get: same id.
    assert_ignored(
        &send(&d, "pagerduty", &good).await,
        "delivery `01EVTACK0000000000000001` was already acted on",
    );
    // Another responder acknowledges too: recorded, nothing else changes.
    let bob = PdUser {
        id: "PBOB002".into(),
        summary: "Bob Oncall".into(),
    };
    assert_ignored(
        &send(
            &d,
            "pagerduty",
            &ack("01EVTACK0000000000000002", &bob, &[PD_SECRET]),
        )
        .await,
        "already acknowledged",
    );
    let again = incident(&d, &id).await;
    assert_eq!(again["acknowledged_by"], "Alice Ops");
    assert_eq!(again["acknowledged_at"], acked["acknowledged_at"]);
    let sources: Vec<(&str, &str)> = again["acknowledgements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["by"].as_str().unwrap(), a["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sources,
        [("Alice Ops", "pagerduty"), ("Bob Oncall", "pagerduty")]
    );
    assert_eq!(acks_total(&d, "portal", "pagerduty").await, 1.0);
    // Events sentinel does not act on, and incidents it does not know.
    let triggered = pagerduty::webhook_v3(
        "incident.triggered",
        &alert,
        &alice,
        "01EVTTRIG",
        "2026-01-15T09:00:00.000Z",
        &[PD_SECRET],
    );
    assert_ignored(
        &send(&d, "pagerduty", &triggered).await,
        "event type `incident.triggered` is not acted on",
    );
    let mut foreign = alert.clone();
    foreign.dedup_key = "db-primary-disk-full".into();
    let foreign = pagerduty::webhook_v3(
        "incident.resolved",
        &foreign,
        &alice,
        "01EVTFOREIGN",
        "2026-01-15T09:06:00.000Z",
        &[PD_SECRET],
    );
    assert_ignored(
        &send(&d, "pagerduty", &foreign).await,
        "names no sentinel incident",
    );
    assert_eq!(hooks_total(&d, "pagerduty", "ignored").await, 9.0);
    assert_eq!(incident(&d, &id).await["state"], "open");

    // kill -9: the delivery ids acted on are in the store, the counter is
    // cumulative.
    kill9(&mut d);
    let d = Daemon::start(&config, &env);
    eventually(
        secs(20),
        "the daemon back",
        || format!("{:?}", d.log()),
        || async {
            let r = reqwest::get(d.url("/readyz")).await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    assert_ignored(&send(&d, "pagerduty", &good).await, "was already acted on");
    assert_eq!(acks_total(&d, "portal", "pagerduty").await, 1.0);
    let after_restart = incident(&d, &id).await;
    assert_eq!(after_restart["acknowledged_at"], acked["acknowledged_at"]);
    assert_eq!(
        after_restart["acknowledgements"].as_array().unwrap().len(),
        2
    );

    // A resolve from PagerDuty resolves, once.
    let resolved_alert = pd.resolve_as(&dedup_key, &alice.summary).unwrap();
    let resolve = pagerduty::webhook_v3(
        "incident.resolved",
        &resolved_alert,
        &alice,
        "01EVTRES0000000000000001",
        "2026-01-15T09:10:00.000Z",
        &[PD_SECRET],
    );
    assert_applied(&send(&d, "pagerduty", &resolve).await, "resolved", &id);
    let done = incident(&d, &id).await;
    assert_eq!(done["state"], "resolved");
    assert_eq!(done["resolve_source"], "pagerduty");
    assert_eq!(done["resolved_by"], json!({"user": "Alice Ops"}));
    let resolve_again = pagerduty::webhook_v3(
        "incident.resolved",
        &resolved_alert,
        &bob,
        "01EVTRES0000000000000002",
        "2026-01-15T09:10:05.000Z",
        &[PD_SECRET],
    );
    assert_ignored(
        &send(&d, "pagerduty", &resolve_again).await,
        "already resolved",
    );
}

fn slack_user() -> SlackUser {
    SlackUser {
        id: "U0001ALICE".into(),
        username: "alice".into(),
        name: "alice".into(),
        team_id: "T0001SNTNL".into(),
    }
}

/// The `(action_id, value)` of the buttons of the message's actions block.
fn buttons(message: &Value) -> Vec<(String, String)> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["action_id"].as_str().unwrap_or_default().to_string(),
                e["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_slack_button_press_acknowledges_and_stale_or_forged_presses_change_nothing() {
    let slack = Slack::start(Default::default()).await;
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "  - name: chat\n    type: slack\n    url: {}\n",
            slack.webhook_url()
        ),
        &service("portal", target, &["chat"]),
    );
    let d = Daemon::start(&config, &INBOUND_ENV);
    let inc = opened(&d, "portal").await;
    let id = inc["id"].as_str().unwrap().to_string();
    let posted = eventually(
        secs(20),
        "the opened message in Slack",
        || format!("{:?}", d.log()),
        || async { slack.messages().into_iter().next() },
    )
    .await;
    assert_eq!(
        buttons(&posted.body),
        [
            ("sentinel_ack".to_string(), id.clone()),
            ("sentinel_resolve".to_string(), id.clone())
        ],
        "{}",
        posted.body
    );
    let user = slack_user();
    let press = |action_id: &str, at: i64| {
        let payload = slack::block_actions_payload(
            &user,
            action_id,
            &id,
            &posted.body,
            &slack.response_url(),
            &format!("{at}.000200"),
        );
        slack::interaction_request(SLACK_SECRET, at, &payload)
    };
    let now = SystemClock.now().as_second();
    // Signed correctly, but more than five minutes ago: a replay.
    assert_rejected(
        &send(&d, "slack", &press("sentinel_ack", now - 400)).await,
        "refused as a replay",
    );
    // Signed with another app's secret.
    let forged = press("sentinel_ack", now);
    let forged = forged.clone().with_header(
        "X-Slack-Signature",
        &slack::signature("another-apps-secret", now, &forged.body),
    );
    assert_rejected(
        &send(&d, "slack", &forged).await,
        "signature does not match",
    );
    assert_rejected(
        &send(
            &d,
            "slack",
            &press("sentinel_ack", now).without_header("X-Slack-Request-Timestamp"),
        )
        .await,
        "missing `X-Slack-Request-Timestamp` header",
    );
    let untouched = incident(&d, &id).await;
    assert_eq!(untouched["acknowledged_at"], Value::Null, "{untouched}");
    assert_eq!(hooks_total(&d, "slack", "rejected").await, 3.0);

    let before = SystemClock.now();
    let answer = send(&d, "slack", &press("sentinel_ack", now)).await;
    let after = SystemClock.now();
    assert_applied(&answer, "acknowledged", &id);
    let acked = incident(&d, &id).await;
    assert_eq!(acked["acknowledged_by"], "alice");
    assert_eq!(acked["ack_source"], "slack");
    let at = ts(&acked["acknowledged_at"]);
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    assert_eq!(acks_total(&d, "portal", "slack").await, 1.0);
    assert_eq!(hooks_total(&d, "slack", "applied").await, 1.0);
    // The pressed message is rewritten through its response_url: Resolve
    // left, and who acknowledged.
    let rewritten = eventually(
        secs(20),
        "the pressed message rewritten",
        || format!("{:?}", d.log()),
        || async { slack.responses().into_iter().next() },
    )
    .await;
    assert_eq!(rewritten.body["replace_original"], true);
    assert_eq!(
        buttons(&rewritten.body),
        [("sentinel_resolve".to_string(), id.clone())]
    );
    assert!(
        rewritten
            .body
            .to_string()
            .contains("Acknowledged by <@U0001ALICE> in Slack"),
        "{}",
        rewritten.body
    );
    // The acknowledged message keeps only Resolve.
    let ack_message = eventually(
        secs(20),
        "the acknowledged message in Slack",
        || format!("{:?}", d.log()),
        || async {
            slack
                .messages()
                .into_iter()
                .find(|m| m.text().contains("Incident acknowledged"))
        },
    )
    .await;
    assert_eq!(
        buttons(&ack_message.body),
        [("sentinel_resolve".to_string(), id.clone())]
    );
    // A press of someone else's button is not ours to act on.
    let other = slack::interaction_request(
        SLACK_SECRET,
        now,
        &slack::block_actions_payload(
            &user,
            "approve_deploy",
            "deploy-42",
            &posted.body,
            &slack.response_url(),
            &format!("{now}.000300"),
        ),
    );
    assert_ignored(
        &send(&d, "slack", &other).await,
        "no sentinel button in the interaction",
    );

    assert_applied(
        &send(&d, "slack", &press("sentinel_resolve", now)).await,
        "resolved",
        &id,
    );
    let done = incident(&d, &id).await;
    assert_eq!(done["state"], "resolved");
    assert_eq!(done["resolve_source"], "slack");
    assert_eq!(done["resolved_by"], json!({"user": "alice"}));
    let rewritten = eventually(
        secs(20),
        "the pressed message rewritten again",
        || format!("{:?}", d.log()),
        || async { slack.responses().into_iter().nth(1) },
    )
    .await;
    assert_eq!(buttons(&rewritten.body), []);
    assert!(
        rewritten
            .body
            .to_string()
            .contains("Resolved by <@U0001ALICE> in Slack")
    );
    // The old message's button pressed again: the incident is resolved.
    assert_ignored(
        &send(&d, "slack", &press("sentinel_ack", now)).await,
        "already resolved",
    );
    let resolved_message = eventually(
        secs(20),
        "the resolved message in Slack",
        || format!("{:?}", d.log()),
        || async {
            slack
                .messages()
                .into_iter()
                .find(|m| m.text().contains("Incident resolved"))
        },
    )
    .await;
    assert_eq!(buttons(&resolved_message.body), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_in_servicenow_jira_and_opsgenie_acknowledge_and_resolve_through_their_hooks() {
    let snow = ServiceNow::start(Default::default()).await;
    let jira = Jira::start(Default::default()).await;
    let genie = Opsgenie::start(Default::default()).await;
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let dir = tempfile::tempdir().unwrap();
    let notifiers = format!(
        r#"  - name: snow
    type: servicenow
    url: {snow}
    username_env: SNOW_USER
    password_env: SNOW_PASSWORD
  - name: jira
    type: jira
    url: {jira}
    user_env: JIRA_USER
    token_env: JIRA_TOKEN
    project: OPS
    issue_type: Incident
    resolve_transition: Resolved
  - name: genie
    type: opsgenie
    url: {genie}
    api_key_env: GENIE_KEY
"#,
        snow = snow.base_url(),
        jira = jira.base_url(),
        genie = genie.base_url(),
    );
    let services = [
        service("desk", target, &["snow"]),
        service("tracker", target, &["jira"]),
        service("pager", target, &["genie"]),
    ]
    .concat();
    let config = write_config(dir.path(), &notifiers, &services);
    let mut env = INBOUND_ENV.to_vec();
    env.extend([
        ("SNOW_USER", "sentinel.integration"),
        ("SNOW_PASSWORD", "s3cret"),
        ("JIRA_USER", "sentinel@example.com"),
        ("JIRA_TOKEN", "jira-api-token"),
        ("GENIE_KEY", "eb243592-faa2-4ba2-a551-1afdf565c889"),
    ]);
    let d = Daemon::start(&config, &env);
    let id_of = async |service: &str| {
        opened(&d, service).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (desk, tracker, pager) = (
        id_of("desk").await,
        id_of("tracker").await,
        id_of("pager").await,
    );

    // ServiceNow: the record sentinel created; carol works it.
    let record = eventually(
        secs(20),
        "the ServiceNow record",
        || format!("{:?}", d.log()),
        || async { snow.by_correlation_id("incident", &desk).into_iter().next() },
    )
    .await;
    let in_progress = snow
        .update_as(record.sys_id(), "carol", &[("state", "2")])
        .unwrap();
    assert_rejected(
        &send(
            &d,
            "servicenow",
            &servicenow::outbound_message(&in_progress, "not-the-token"),
        )
        .await,
        "invalid credential",
    );
    assert_eq!(incident(&d, &desk).await["acknowledged_at"], Value::Null);
    // Basic auth with the token as password works as well as bearer.
    let basic = servicenow::outbound_message(&in_progress, SNOW_HOOK_TOKEN).with_header(
        "Authorization",
        &format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("servicenow:{SNOW_HOOK_TOKEN}")
            )
        ),
    );
    // A message that leaves out `correlation_id`: the incident is found by
    // the record's sys_id, which the connector stored with its ticket.
    let mut without: Value = serde_json::from_slice(&basic.body).unwrap();
    without.as_object_mut().unwrap().remove("correlation_id");
    let basic = basic.with_body(without.to_string().as_bytes());
    assert_applied(&send(&d, "servicenow", &basic).await, "acknowledged", &desk);
    let acked = incident(&d, &desk).await;
    assert_eq!(
        (&acked["acknowledged_by"], &acked["ack_source"]),
        (&json!("carol"), &json!("servicenow"))
    );
    let resolved = snow
        .update_as(
            record.sys_id(),
            "carol",
            &[
                ("state", "6"),
                ("close_code", "Solution provided"),
                ("close_notes", "restarted the pool"),
            ],
        )
        .unwrap();
    assert_applied(
        &send(
            &d,
            "servicenow",
            &servicenow::outbound_message(&resolved, SNOW_HOOK_TOKEN),
        )
        .await,
        "resolved",
        &desk,
    );
    let done = incident(&d, &desk).await;
    assert_eq!(
        (&done["state"], &done["resolve_source"]),
        (&json!("resolved"), &json!("servicenow"))
    );

    // Jira: the issue sentinel created (label `sentinel-<id>`); dana moves it.
    let issue = eventually(
        secs(20),
        "the Jira issue",
        || format!("{:?}", d.log()),
        || async {
            jira.with_label(&format!("sentinel-{tracker}"))
                .into_iter()
                .next()
        },
    )
    .await;
    let dana = JiraUser {
        account_id: "5b10a2844c20165700ede21g".into(),
        display_name: "Dana Dev".into(),
    };
    let started = jira
        .transition_as(&issue.key, "In Progress", &dana)
        .unwrap();
    let hook = |change| {
        let issue = jira.issue(&issue.key).unwrap();
        jira::issue_updated_webhook(
            &jira.base_url(),
            &issue,
            change,
            &dana,
            1_768_467_900_000,
            JIRA_SECRET,
        )
    };
    let forged = hook(&started).with_header("X-Hub-Signature", "sha256=00");
    assert_rejected(&send(&d, "jira", &forged).await, "signature does not match");
    assert_applied(
        &send(&d, "jira", &hook(&started)).await,
        "acknowledged",
        &tracker,
    );
    let done_change = jira.transition_as(&issue.key, "Done", &dana).unwrap();
    assert_applied(
        &send(&d, "jira", &hook(&done_change)).await,
        "resolved",
        &tracker,
    );
    let done = incident(&d, &tracker).await;
    assert_eq!(done["acknowledged_by"], "Dana Dev");
    assert_eq!(done["ack_source"], "jira");
    assert_eq!(done["resolve_source"], "jira");
    assert_eq!(done["resolved_by"], json!({"user": "Dana Dev"}));

    // Jira sends the whole issue: a body well over the 64 KiB of the other
    // endpoints is read and checked.
    let big = json!({"webhookEvent": "comment_created",
                     "comment": {"body": "x".repeat(300_000)}})
    .to_string();
    let big = HookRequest {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "X-Hub-Signature".into(),
                format!(
                    "sha256={}",
                    crate::support::fakes::hmac_sha256_hex(JIRA_SECRET.as_bytes(), big.as_bytes())
                ),
            ),
        ],
        body: big.into_bytes(),
    };
    assert_ignored(
        &send(&d, "jira", &big).await,
        "webhook event `comment_created` is not acted on",
    );

    // Opsgenie: the alert sentinel created (alias = dedup key).
    let dedup_key = incident(&d, &pager).await["dedup_key"]
        .as_str()
        .unwrap()
        .to_string();
    eventually(
        secs(20),
        "the Opsgenie alert",
        || format!("{:?}", d.log()),
        || async { genie.by_alias(&dedup_key).into_iter().next() },
    )
    .await;
    let erin = OpsgenieUser {
        username: "erin@example.com".into(),
        user_id: "4513b7ea-3b91-438f-b7e4-e3e54af9147c".into(),
    };
    let (integration_id, integration_name) = genie.integration();
    let outgoing = |action: &str, alert: &opsgenie::Alert, auth: &HookAuth| {
        opsgenie::outgoing_webhook(
            action,
            alert,
            &erin,
            (&integration_id, &integration_name),
            1_768_467_900_000_000_000,
            auth,
        )
    };
    let alert = genie.acknowledge_as(&dedup_key, &erin.username).unwrap();
    assert_rejected(
        &send(
            &d,
            "opsgenie",
            &outgoing("Acknowledge", &alert, &HookAuth::None),
        )
        .await,
        "missing `Authorization` header",
    );
    let bearer = HookAuth::Bearer(GENIE_HOOK_TOKEN.into());
    assert_applied(
        &send(&d, "opsgenie", &outgoing("Acknowledge", &alert, &bearer)).await,
        "acknowledged",
        &pager,
    );
    let note = outgoing("AddNote", &alert, &bearer);
    assert_ignored(
        &send(&d, "opsgenie", &note).await,
        "action `AddNote` is not acted on",
    );
    let closed = genie.close_as(&dedup_key, &erin.username).unwrap();
    let basic = HookAuth::Basic("opsgenie".into(), GENIE_HOOK_TOKEN.into());
    assert_applied(
        &send(&d, "opsgenie", &outgoing("Close", &closed, &basic)).await,
        "resolved",
        &pager,
    );
    let done = incident(&d, &pager).await;
    assert_eq!(done["acknowledged_by"], "erin@example.com");
    assert_eq!(done["ack_source"], "opsgenie");
    assert_eq!(done["resolve_source"], "opsgenie");
    assert_ignored(
        &send(&d, "opsgenie", &outgoing("Close", &closed, &basic)).await,
        "already resolved",
    );

    for (provider, service) in [
        ("servicenow", "desk"),
        ("jira", "tracker"),
        ("opsgenie", "pager"),
    ] {
        assert_eq!(
            hooks_total(&d, provider, "applied").await,
            2.0,
            "{provider}"
        );
        assert_eq!(
            hooks_total(&d, provider, "rejected").await,
            1.0,
            "{provider}"
        );
        assert_eq!(acks_total(&d, service, provider).await, 1.0, "{provider}");
    }
    assert_eq!(hooks_total(&d, "opsgenie", "ignored").await, 2.0);
    // A provider's own answer to sentinel's connector does not come back
    // as a second acknowledgement: each incident has exactly one.
    for id in [&desk, &tracker, &pager] {
        let inc = incident(&d, id).await;
        assert_eq!(
            inc["acknowledgements"].as_array().unwrap().len(),
            1,
            "{inc}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_is_not_configured_or_has_no_secret_refuses_everything_until_a_reload_adds_it()
{
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sentinel.yaml");
    let write = |pagerduty: &str| {
        std::fs::write(
            &path,
            format!(
                "server:\n  listen: 127.0.0.1:0\nstorage:\n  path: {}\ninbound:\n  jira: {{ secret_env: UNSET_JIRA_SECRET_VAR }}\n{pagerduty}services:\n{}",
                dir.path().join("state.db").display(),
                service("portal", target, &[])
            ),
        )
        .unwrap()
    };
    write("");
    let d = Daemon::start(&path, &[("PD_WEBHOOK_SECRET", PD_SECRET)]);
    let inc = opened(&d, "portal").await;
    let id = inc["id"].as_str().unwrap();
    let body = json!({"webhookEvent": "jira:issue_updated"}).to_string();
    let signed = HookRequest {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "X-Hub-Signature".into(),
                format!(
                    "sha256={}",
                    crate::support::fakes::hmac_sha256_hex(b"", body.as_bytes())
                ),
            ),
        ],
        body: body.into_bytes(),
    };
    assert_rejected(
        &send(&d, "jira", &signed).await,
        "the jira hook has no secret set in sentinel",
    );
    assert!(
        d.log().iter().any(
            |l| l.contains("inbound hook has no secret") && l.contains("UNSET_JIRA_SECRET_VAR")
        ),
        "the operator learns which variable: {:?}",
        d.log()
    );
    let (status, answer) = send(&d, "pagerduty", &signed).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["error"],
        "the pagerduty hook is not configured: set inbound.pagerduty.secret_env"
    );
    let (status, answer) = send(&d, "teams", &signed).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("no hook for `teams`")
    );
    let r = reqwest::get(d.url("/api/v1/hooks/jira")).await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(incident(&d, id).await["acknowledged_at"], Value::Null);
    assert_eq!(hooks_total(&d, "jira", "rejected").await, 1.0);
    assert_eq!(hooks_total(&d, "pagerduty", "rejected").await, 1.0);

    // A reload adds the PagerDuty hook: it answers at once.
    write("  pagerduty: { secret_env: PD_WEBHOOK_SECRET }\n");
    d.signal("-HUP");
    let body = json!({"event": {"id": "01EVTAFTERRELOAD", "event_type": "incident.annotated"}})
        .to_string();
    let pd = HookRequest {
        headers: vec![(
            "X-PagerDuty-Signature".into(),
            format!(
                "v1={}",
                crate::support::fakes::hmac_sha256_hex(PD_SECRET.as_bytes(), body.as_bytes())
            ),
        )],
        body: body.into_bytes(),
    };
    let answer = eventually(
        secs(20),
        "the PagerDuty hook after the reload",
        || format!("{:?}", d.log()),
        || async {
            let a = send(&d, "pagerduty", &pd).await;
            (a.0 != 404).then_some(a)
        },
    )
    .await;
    assert_ignored(&answer, "event type `incident.annotated` is not acted on");
}
