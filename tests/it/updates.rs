//! Human incident updates (`POST /api/v1/incidents/{id}/updates`) end to
//! end on the real binary: auth and input checks with their status codes,
//! an update that survives `kill -9` right after its 200, the status page
//! (headless Chromium), JSON and Atom feed showing it escaped and without
//! its author, and the `incident.updated` event reaching a signed webhook,
//! Slack, and the ServiceNow, Jira and Opsgenie fakes as a work note, a
//! comment and a note, while PagerDuty and Alertmanager get nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use serde_json::{Value, json};

use sentinel::clock::{Clock, SystemClock};
use sentinel::incident::{Incident, ResolvedBy, State, Trigger};
use sentinel::store::Store;

use crate::status_page::chromium;
use crate::support::daemon::{Daemon, kill9};
use crate::support::fakes::jira::Jira;
use crate::support::fakes::opsgenie::Opsgenie;
use crate::support::fakes::pagerduty::{self, PagerDuty};
use crate::support::fakes::servicenow::{self, ServiceNow};
use crate::support::fakes::slack::Slack;
use crate::support::prom::{sample, scrape};
use crate::support::servers::start_target;
use crate::support::webhooks::{Hit, Receiver};
use crate::support::{eventually, secs};

const TOKEN: &str = "updates-e2e-token-7c2a";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Who posts: the team may see it, the public never.
const AUTHOR: &str = "alice.author-7731";
/// A message with markup in it: shown as text everywhere.
const MESSAGE: &str = "Certificate <b>expired</b> & renewing \"now\"";

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// An incident of `portal` as the engine stores it.
fn incident(id: &str, started: i64, resolved: Option<i64>) -> Incident {
    Incident {
        id: id.to_string(),
        dedup_key: format!("sentinel/portal/{id}"),
        service: "portal".into(),
        severity: "P2".into(),
        title: "portal is failing".into(),
        reason: "check `health` failed 2 times in a row: status 503".into(),
        state: if resolved.is_some() {
            State::Resolved
        } else {
            State::Open
        },
        trigger: Trigger::ChecksFailing,
        page_level: true,
        impact_started_at: ts(started),
        opened_at: ts(started + 60),
        acknowledged_at: None,
        acknowledged_by: None,
        ack_note: None,
        restored_at: resolved.map(ts),
        resolved_at: resolved.map(ts),
        resolved_by: resolved.map(|_| ResolvedBy::Auto),
        ack_source: None,
        resolve_source: None,
        acknowledgements: Vec::new(),
        events_emitted: if resolved.is_some() { 2 } else { 1 },
        ack_escalated_at: None,
        escalated_to: Vec::new(),
        updates: Vec::new(),
    }
}

/// POSTs `body` to the updates endpoint of `id`; the status and JSON answer.
async fn post(d: &Daemon, id: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(d.url(&format!("/api/v1/incidents/{id}/updates")))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
    (status, v)
}

async fn all_incidents(d: &Daemon) -> Vec<Value> {
    let v: Value = reqwest::get(d.url("/api/v1/incidents?state=all"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().unwrap().clone()
}

async fn get_text(d: &Daemon, path: &str) -> String {
    reqwest::get(d.url(path))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_checks_auth_and_input_and_an_update_survives_kill_9_onto_the_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let now = SystemClock.now().as_second();
    // Resolved 8 days ago (closed for updates), resolved an hour ago
    // (still open for them), and open now.
    let old = incident(
        &format!("inc-portal-{}-1", now - 9 * 86_400),
        now - 9 * 86_400,
        Some(now - 8 * 86_400),
    );
    let recent = incident(
        &format!("inc-portal-{}-2", now - 7200),
        now - 7200,
        Some(now - 3600),
    );
    let open = incident(&format!("inc-portal-{}-3", now - 600), now - 660, None);
    let store = Store::open(&db).unwrap();
    for inc in [&old, &recent, &open] {
        store
            .save_incident(
                inc.id.clone(),
                inc.service.clone(),
                inc.state.as_str().into(),
                inc.opened_at.as_second(),
                inc.to_json().unwrap(),
                vec![],
            )
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    // The service stays down: the open incident stays open across restarts.
    let target = start_target(Arc::new(AtomicBool::new(false))).await;
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
server:
  listen: 127.0.0.1:0
  api_token_env: UPDATES_TOKEN
storage:
  path: {db}
status_page:
  title: ACME status
services:
  - name: portal
    checks:
      - name: health
        interval: 1s
        http: {{ url: "http://{target}/health" }}
    incident: {{ open_after: 2, resolve_after: 2, severity: P2 }}
"#,
            db = db.display()
        ),
    )
    .unwrap();
    let env = [("UPDATES_TOKEN", TOKEN)];
    let mut d = Daemon::start(&config, &env);
    d.ready().await;

    let good = json!({"status": "identified", "message": MESSAGE, "by": AUTHOR}).to_string();
    // Auth first: nothing else is looked at without the token.
    for (token, want) in [
        (None, "missing `Authorization: Bearer <token>` header"),
        (Some("wrong-token"), "invalid bearer token"),
    ] {
        let (status, body) = post(&d, &open.id, token, &good).await;
        assert_eq!((status, body["error"].as_str()), (401, Some(want)));
    }
    // Bad input: 400 with what is wrong.
    let long = "x".repeat(2001);
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "invalid JSON body: "),
        (
            json!({"status": "identified"}).to_string(),
            "`message` is missing",
        ),
        (json!({"message": "x"}).to_string(), "`status` is missing"),
        (
            json!({"status": "fixed", "message": "x"}).to_string(),
            "invalid status `fixed`: use one of investigating, identified, monitoring, resolved",
        ),
        (
            json!({"status": "identified", "message": " \n "}).to_string(),
            "`message` is empty",
        ),
        (
            json!({"status": "identified", "message": long}).to_string(),
            "`message` is longer than 2000 characters (2001)",
        ),
        (
            json!({"status": "identified", "message": "a\u{7}b"}).to_string(),
            "`message` contains a control character (U+0007); only line breaks and tabs are allowed",
        ),
        (
            json!({"status": "identified", "message": "x", "author": "eve"}).to_string(),
            "unknown field `author`",
        ),
        (
            json!({"status": "identified", "message": "x", "by": "b".repeat(201)}).to_string(),
            "`by` is longer than 200 characters",
        ),
    ];
    for (body, want) in &cases {
        let (status, answer) = post(&d, &open.id, Some(TOKEN), body).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(error.contains(want), "{body}: `{error}` lacks `{want}`");
    }
    // A body over 64 KiB: 413 before it is read.
    let huge = json!({"status": "identified", "message": "y".repeat(70_000)}).to_string();
    let (status, answer) = post(&d, &open.id, Some(TOKEN), &huge).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "request body is larger than 65536 bytes");
    // Unknown incident: 404; resolved more than a week ago: 409.
    let (status, answer) = post(&d, "inc-nope-1-1", Some(TOKEN), &good).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("incident `inc-nope-1-1` not found"))
    );
    let (status, answer) = post(&d, &old.id, Some(TOKEN), &good).await;
    assert_eq!(status, 409);
    assert_eq!(
        answer["error"],
        format!(
            "incident `{}` takes no more updates: it was resolved more than 7 days ago",
            old.id
        )
    );
    assert!(
        all_incidents(&d)
            .await
            .iter()
            .all(|i| i["updates"] == json!([])),
        "refused requests change nothing"
    );

    // The update: 200 with the incident as it is now.
    let (status, answer) = post(&d, &open.id, Some(TOKEN), &good).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], true);
    let inc = &answer["incident"];
    assert_eq!(inc["id"], open.id.as_str());
    assert_eq!(inc["state"], "open", "an update changes no state");
    assert_eq!(inc["acknowledged_at"], Value::Null);
    let updates = inc["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["status"], "identified");
    assert_eq!(updates[0]["message"], MESSAGE);
    assert_eq!(updates[0]["by"], AUTHOR);
    let at: Timestamp = updates[0]["at"].as_str().unwrap().parse().unwrap();
    assert!((at.as_second() - SystemClock.now().as_second()).abs() < 60);
    // A final word on a recently resolved incident is taken; `by` defaults.
    let postmortem = "Post-mortem: the renewal job had been disabled.";
    let (status, answer) = post(
        &d,
        &recent.id,
        Some(TOKEN),
        &json!({"status": "resolved", "message": postmortem}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["incident"]["state"], "resolved");
    assert_eq!(answer["incident"]["updates"][0]["by"], "api");

    // kill -9 right after the 200s: both were on disk before the answer.
    kill9(&mut d);
    let d = Daemon::start(&config, &env);
    d.ready().await;
    let after = all_incidents(&d).await;
    let find = |id: &str| after.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(find(&open.id)["updates"], json!(updates));
    assert_eq!(find(&open.id)["state"], "open");
    assert_eq!(find(&recent.id)["updates"][0]["message"], postmortem);
    assert_eq!(find(&old.id)["updates"], json!([]));

    // status.json: the update without its author; the latest status shows.
    let page: Value = serde_json::from_str(&get_text(&d, "/status.json").await).unwrap();
    let shown = &page["open_incidents"][0];
    assert_eq!(shown["id"], open.id.as_str());
    assert_eq!(shown["status"], "identified");
    assert_eq!(
        shown["updates"],
        json!([{"at": updates[0]["at"], "status": "identified", "message": MESSAGE}])
    );
    let past: Vec<&Value> = page["past_incidents"].as_array().unwrap().iter().collect();
    let recent_shown = past.iter().find(|p| p["id"] == recent.id.as_str()).unwrap();
    assert_eq!(recent_shown["updates"][0]["message"], postmortem);
    assert!(
        !page.to_string().contains(AUTHOR),
        "the author is not public"
    );

    // The feed: an entry per update, its text unescaped by the XML parser.
    let feed = get_text(&d, "/status/feed.atom").await;
    assert!(!feed.contains(AUTHOR));
    let doc = roxmltree::Document::parse(&feed).expect("well-formed feed");
    let entry = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "entry")
        .find(|e| {
            e.children().any(|c| {
                c.tag_name().name() == "id"
                    && c.text() == Some(&format!("urn:sentinel:incident:{}:update:1", open.id))
            })
        })
        .expect("an entry for the update");
    let text_of = |name: &str| {
        entry
            .children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .unwrap()
            .to_string()
    };
    assert_eq!(text_of("content"), MESSAGE);
    assert_eq!(text_of("title"), "portal: Service unavailable: Identified");
    assert!(feed.contains(&format!("urn:sentinel:incident:{}:update:1", recent.id)));

    // What a person sees: the message as text, no markup, no author.
    let out = chromium(&["--dump-dom".into()], &d.url("/status"));
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(
        dom.contains("Identified: Certificate &lt;b&gt;expired&lt;/b&gt; &amp; renewing \"now\""),
        "the update in the timeline, escaped"
    );
    assert!(
        !dom.contains("<b>expired</b>"),
        "no markup from the message"
    );
    assert!(dom.contains(&format!("Resolved: {postmortem}")));
    assert!(!dom.contains(AUTHOR), "the author is not public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_403_while_the_write_api_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let target = start_target(Arc::new(AtomicBool::new(true))).await;
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{ listen: 127.0.0.1:0 }}\nstorage: {{ path: {db} }}\nservices:\n  - name: portal\n    checks:\n      - name: health\n        http: {{ url: \"http://{target}/health\" }}\n",
            db = dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let d = Daemon::start(&config, &[]);
    d.ready().await;
    let body = json!({"status": "identified", "message": "x"}).to_string();
    let (status, answer) = post(&d, "inc-portal-1-1", Some(TOKEN), &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        answer["error"],
        "write endpoints are disabled: set server.api_token_env and that environment variable"
    );
}

// ---------------------------------------------------------------------
// The event at every notifier.

#[allow(clippy::too_many_arguments)]
fn notifier_config(
    dir: &Path,
    target: SocketAddr,
    hooks: SocketAddr,
    am: SocketAddr,
    slack: &str,
    pd: &str,
    snow: &str,
    jira: &str,
    genie: &str,
) -> PathBuf {
    let text = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: UPDATES_TOKEN
  external_url: https://sentinel.example.com
storage:
  path: {db}
notifiers:
  - {{ name: hooks, type: webhook, url: "http://{hooks}/events", secret_env: UPDATES_SECRET }}
  - {{ name: chat, type: slack, url: "{slack}" }}
  - {{ name: pd, type: pagerduty, url: "{pd}", routing_key_env: UPDATES_PD_KEY }}
  - {{ name: am, type: alertmanager, url: "http://{am}" }}
  - {{ name: snow, type: servicenow, url: "{snow}", username_env: SNOW_USER, password_env: SNOW_PASSWORD }}
  - {{ name: jira, type: jira, url: "{jira}", user_env: JIRA_USER, token_env: JIRA_TOKEN, project: OPS, issue_type: Incident, resolve_transition: Done }}
  - {{ name: genie, type: opsgenie, url: "{genie}", api_key_env: GENIE_KEY }}
services:
  - name: portal
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http: {{ url: "http://{target}/health" }}
    incident:
      open_after: 2
      resolve_after: 2
      severity: P2
      notify: [hooks, chat, pd, am, snow, jira, genie]
"#,
        db = dir.join("state.db").display()
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Waits up to 20 s for `probe` to hold, explaining a timeout with the
/// daemon's log.
async fn until<T>(d: &Daemon, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    eventually(
        secs(20),
        what,
        || format!("{:#?}", d.log()),
        || std::future::ready(probe()),
    )
    .await
}

/// The webhook events of type `kind`, in arrival order.
fn hooks_of(r: &Receiver, kind: &str) -> Vec<Hit> {
    r.delivered()
        .into_iter()
        .filter(|h| h.kind == kind)
        .collect()
}

/// `at` as the ticket notes write it.
fn note_time(at: &Value) -> String {
    let t: Timestamp = at.as_str().unwrap().parse().unwrap();
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_a_signed_webhook_a_slack_message_a_work_note_a_comment_and_a_note() {
    let snow = ServiceNow::start(Default::default()).await;
    let jira = Jira::start(Default::default()).await;
    let genie = Opsgenie::start(Default::default()).await;
    let slack = Slack::start(Default::default()).await;
    let pd = PagerDuty::start(Default::default()).await;
    let (hooks, hooks_addr) = Receiver::start().await;
    let (am, am_addr) = Receiver::start().await;
    let up = Arc::new(AtomicBool::new(false));
    let target = start_target(Arc::clone(&up)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = notifier_config(
        dir.path(),
        target,
        hooks_addr,
        am_addr,
        &slack.webhook_url(),
        &pd.enqueue_url(),
        &snow.base_url(),
        &jira.base_url(),
        &genie.base_url(),
    );
    let d = Daemon::start(
        &config,
        &[
            ("UPDATES_TOKEN", TOKEN),
            ("UPDATES_SECRET", SECRET),
            ("UPDATES_PD_KEY", pagerduty::ROUTING_KEY),
            ("SNOW_USER", "sentinel.integration"),
            ("SNOW_PASSWORD", "s3cret"),
            ("JIRA_USER", "sentinel@example.com"),
            ("JIRA_TOKEN", "jira-api-token"),
            ("GENIE_KEY", "eb243592-faa2-4ba2-a551-1afdf565c889"),
        ],
    );

    // The outage opens an incident; every notifier hears of it.
    let opened = until(&d, "incident.opened at the webhook", || {
        hooks_of(&hooks, "incident.opened").into_iter().next()
    })
    .await;
    let id = opened.json()["incident"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dedup = format!("sentinel/portal/{id}");
    until(&d, "every notifier told of the opening", || {
        (snow.by_correlation_id("incident", &id).len() == 1
            && jira.with_label(&format!("sentinel-{id}")).len() == 1
            && genie.by_alias(&dedup).len() == 1
            && !slack.messages().is_empty()
            && pd.events().len() == 1
            && am.delivered().len() == 1)
            .then_some(())
    })
    .await;

    let (status, answer) = post(
        &d,
        &id,
        Some(TOKEN),
        &json!({"status": "identified", "message": MESSAGE, "by": AUTHOR}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let posted = answer["incident"]["updates"][0].clone();

    // Webhook: signed like every event, the update beside the incident.
    let hit = until(&d, "incident.updated at the webhook", || {
        hooks_of(&hooks, "incident.updated").into_iter().next()
    })
    .await;
    assert!(hit.verifies(SECRET), "signature does not verify: {hit:?}");
    let ev = hit.json();
    assert_eq!(ev["id"], format!("evt-{id}-2"));
    assert_eq!(hit.id, format!("evt-{id}-2"), "webhook-id is the event id");
    assert_eq!(
        ev["update"],
        json!({"at": posted["at"], "status": "identified", "message": MESSAGE, "by": AUTHOR})
    );
    assert_eq!(ev["incident"]["id"], id.as_str());
    assert_eq!(ev["incident"]["state"], "open");

    // Slack: the message escaped for mrkdwn, with its author.
    let msg = until(&d, "the update in Slack", || {
        slack
            .messages()
            .into_iter()
            .find(|m| m.text().contains("Incident update"))
    })
    .await;
    let escaped = "Certificate &lt;b&gt;expired&lt;/b&gt; &amp; renewing \"now\"";
    assert_eq!(
        msg.text(),
        format!("[P2] Incident update (Identified): portal is failing — {escaped}")
    );
    let detail = msg.body["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "\n*Update (Identified):* {escaped}\n*Posted by:* {AUTHOR}\n"
        )),
        "{detail}"
    );

    // The ticket connectors: a work note, a comment, a note.
    let note = format!(
        "Update (Identified) posted in sentinel by {AUTHOR} at {}:\n{MESSAGE}",
        note_time(&posted["at"])
    );
    let record = until(&d, "the ServiceNow work note", || {
        snow.by_correlation_id("incident", &id)
            .into_iter()
            .find(|r| !r.work_notes().is_empty())
    })
    .await;
    assert_eq!(record.work_notes(), std::slice::from_ref(&note));
    let issue = until(&d, "the Jira comment", || {
        jira.with_label(&format!("sentinel-{id}"))
            .into_iter()
            .find(|i| !i.comments.is_empty())
    })
    .await;
    assert_eq!(issue.comments.len(), 1);
    assert_eq!(issue.comments[0].text(), note.replace('\n', ""));
    assert_eq!(
        issue.comments[0].body["content"].as_array().unwrap().len(),
        2,
        "a paragraph per line"
    );
    let alert = until(&d, "the Opsgenie note", || {
        genie
            .by_alias(&dedup)
            .into_iter()
            .find(|a| !a.notes.is_empty())
    })
    .await;
    assert_eq!(alert.notes.len(), 1);
    assert_eq!(alert.notes[0].note, note);
    assert_eq!(alert.notes[0].owner, AUTHOR);
    assert_eq!(alert.status, "open");
    // PagerDuty and Alertmanager: nothing beyond the opening (no outbox
    // row is written for them, so nothing can arrive later either).
    assert_eq!(pd.events().len(), 1);
    assert_eq!(pd.events()[0].event_action, "trigger");
    assert_eq!(am.delivered().len(), 1);

    // Recovery resolves the incident everywhere.
    up.store(true, Ordering::SeqCst);
    until(&d, "every ticket resolved", || {
        let r = &snow.by_correlation_id("incident", &id)[0];
        let i = &jira.with_label(&format!("sentinel-{id}"))[0];
        let a = &genie.by_alias(&dedup)[0];
        (r.state() == servicenow::RESOLVED && i.status.name == "Done" && a.status == "closed")
            .then_some(())
    })
    .await;
    // Someone closes the ServiceNow record (read-only from then on).
    let sys_id = record.sys_id().to_string();
    snow.update_as(&sys_id, "service.desk", &[("state", servicenow::CLOSED)])
        .unwrap();
    let record_reads = snow
        .requests_to("GET", &format!("/api/now/table/incident/{sys_id}"))
        .len();

    // A post-mortem note on the resolved incident.
    let postmortem = "Post-mortem: the renewal job had been disabled.\nIt runs again.";
    let (status, answer) = post(
        &d,
        &id,
        Some(TOKEN),
        &json!({"status": "resolved", "message": postmortem, "by": AUTHOR}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["incident"]["state"], "resolved");
    let at = answer["incident"]["updates"][1]["at"].clone();
    let hit = until(&d, "the second incident.updated", || {
        hooks_of(&hooks, "incident.updated").into_iter().nth(1)
    })
    .await;
    assert!(hit.verifies(SECRET));
    assert_eq!(hit.json()["incident"]["state"], "resolved");
    assert_eq!(hit.json()["update"]["message"], postmortem);
    let note = format!(
        "Update (Resolved) posted in sentinel by {AUTHOR} at {}:\n{postmortem}",
        note_time(&at)
    );
    let issue = until(&d, "the Jira comment on the done issue", || {
        jira.with_label(&format!("sentinel-{id}"))
            .into_iter()
            .find(|i| i.comments.len() == 3)
    })
    .await;
    assert_eq!(issue.comments[2].text(), note.replace('\n', ""));
    let alert = until(&d, "the Opsgenie note on the closed alert", || {
        genie
            .by_alias(&dedup)
            .into_iter()
            .find(|a| a.notes.len() >= 3)
    })
    .await;
    assert_eq!(alert.notes.last().unwrap().note, note);
    // ServiceNow: the record was read, found closed, and left alone; the
    // event counts as delivered (opened, updated, resolved, updated).
    let http = reqwest::Client::new();
    eventually(
        secs(20),
        "the fourth event delivered to ServiceNow",
        || format!("{:#?}", d.log()),
        || async {
            let m = scrape(&http, &d).await;
            let delivered = sample(
                &m,
                "sentinel_notifier_deliveries_total",
                &[r#"notifier="snow""#, r#"result="delivered""#],
            );
            (delivered == Some(4.0)).then_some(())
        },
    )
    .await;
    assert_eq!(
        snow.requests_to("GET", &format!("/api/now/table/incident/{sys_id}"))
            .len(),
        record_reads + 1
    );
    let closed = snow.record(&sys_id).unwrap();
    assert_eq!(closed.state(), servicenow::CLOSED);
    assert!(
        !closed
            .work_notes()
            .iter()
            .any(|n| n.contains("Post-mortem")),
        "{:?}",
        closed.work_notes()
    );
    assert!(snow.rejections().is_empty(), "{:?}", snow.rejections());
    assert!(jira.rejections().is_empty(), "{:?}", jira.rejections());
    assert!(genie.rejections().is_empty(), "{:?}", genie.rejections());
    assert!(slack.rejections().is_empty(), "{:?}", slack.rejections());
    assert_eq!(pd.events().len(), 2, "trigger and resolve only");
    assert_eq!(am.delivered().len(), 2, "opened and resolved only");
}
