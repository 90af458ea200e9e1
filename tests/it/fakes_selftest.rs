//! The fakes refuse what the real services refuse (with their status codes
//! and error bodies), keep records the way they do, act out the injected
//! faults, and their signed senders agree with independent verifications.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fakes;
use crate::support::fakes::servicenow::{self, ServiceNow};
use crate::support::fakes::{Fault, Match};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

// ---------------------------------------------------------------- ServiceNow

async fn snow_post(snow: &ServiceNow, body: &Value) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/api/now/table/incident", snow.base_url()))
        .basic_auth("sentinel.integration", Some("s3cret"))
        .header("Accept", "application/json")
        .json(body)
        .send()
        .await
}

async fn snow_patch(snow: &ServiceNow, sys_id: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .patch(format!(
            "{}/api/now/table/incident/{sys_id}",
            snow.base_url()
        ))
        .basic_auth("sentinel.integration", Some("s3cret"))
        .header("Accept", "application/json")
        .json(body)
        .send()
        .await
        .unwrap();
    body_of(resp).await
}

async fn body_of(resp: reqwest::Response) -> (u16, Value) {
    body(resp).await
}

async fn snow_lookup(snow: &ServiceNow, correlation_id: &str) -> Vec<Value> {
    let resp = client()
        .get(format!("{}/api/now/table/incident", snow.base_url()))
        .query(&[
            ("sysparm_query", format!("correlation_id={correlation_id}")),
            ("sysparm_limit", "10".to_string()),
        ])
        .basic_auth("sentinel.integration", Some("s3cret"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, v) = body(resp).await;
    assert_eq!(status, 200, "{v}");
    v["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn servicenow_refuses_missing_auth_with_its_error_envelope() {
    let snow = ServiceNow::start(Default::default()).await;
    let resp = client()
        .post(format!("{}/api/now/table/incident", snow.base_url()))
        .header("Accept", "application/json")
        .json(&json!({"short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(resp).await,
        (
            401,
            json!({"error": {"message": "User Not Authenticated",
                             "detail": "Required to provide Auth information"},
                   "status": "failure"})
        )
    );
    let wrong = client()
        .get(format!("{}/api/now/table/incident", snow.base_url()))
        .basic_auth("sentinel.integration", Some("wrong"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let rejections = snow.rejections();
    assert_eq!(rejections.len(), 2);
    assert_eq!(rejections[0].reason, "no Authorization header");
    assert_eq!(rejections[1].reason, "wrong credentials or auth scheme");
    assert!(snow.records().is_empty());
}

#[tokio::test]
async fn servicenow_bearer_auth_and_content_negotiation() {
    let snow = ServiceNow::start(servicenow::Config {
        auth: servicenow::Auth::Bearer {
            token: "tok-1".into(),
            user: "svc.sentinel".into(),
        },
        ..Default::default()
    })
    .await;
    let url = format!("{}/api/now/table/incident", snow.base_url());
    // Basic credentials do not satisfy an OAuth-configured instance.
    let basic = client()
        .post(&url)
        .basic_auth("svc.sentinel", Some("tok-1"))
        .header("Accept", "application/json")
        .json(&json!({"short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    // Form bodies are refused with 415.
    let form = client()
        .post(&url)
        .bearer_auth("tok-1")
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("short_description=x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    // Asking for XML only is refused with 406.
    let xml = client()
        .post(&url)
        .bearer_auth("tok-1")
        .header("Accept", "application/xml")
        .json(&json!({"short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status().as_u16(), 406);
    let reasons: Vec<String> = snow.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            "wrong credentials or auth scheme",
            "Content-Type is not application/json",
            "Accept does not allow application/json",
        ]
    );
    let ok = client()
        .post(&url)
        .bearer_auth("tok-1")
        .header("Accept", "application/json")
        .json(&json!({"short_description": "x"}))
        .send()
        .await
        .unwrap();
    let (status, v) = body(ok).await;
    assert_eq!(status, 201);
    assert_eq!(v["result"]["sys_created_by"], "svc.sentinel");
    assert_eq!(snow.records().len(), 1);
}

#[tokio::test]
async fn servicenow_incident_lifecycle_create_lookup_update_resolve() {
    let snow = ServiceNow::start(Default::default()).await;
    let resp = snow_post(
        &snow,
        &json!({"short_description": "checkout down", "correlation_id": "inc-1",
                "urgency": "2", "impact": "2", "assignment_group": "IT Operations",
                "correlationid": "typo"}),
    )
    .await
    .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let (status, created) = body(resp).await;
    assert_eq!(status, 201, "{created}");
    let rec = &created["result"];
    let sys_id = rec["sys_id"].as_str().unwrap().to_string();
    assert_eq!(sys_id.len(), 32);
    assert!(sys_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        location,
        format!("{}/api/now/table/incident/{sys_id}", snow.base_url())
    );
    assert_eq!(rec["number"], "INC0010001");
    assert_eq!(rec["state"], "1");
    assert_eq!(rec["priority"], "3");
    assert_eq!(rec["opened_at"], "2026-01-15 09:00:00");
    assert_eq!(
        rec["assignment_group"],
        json!({"link": format!("{}/api/now/table/sys_user_group/IT Operations", snow.base_url()),
               "value": "IT Operations"})
    );
    assert!(rec.get("correlationid").is_none());
    assert_eq!(
        snow.ignored_fields(),
        [("correlationid".to_string(), "incident".to_string())]
    );

    let found = snow_lookup(&snow, "inc-1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["sys_id"], sys_id.as_str());
    assert!(snow_lookup(&snow, "inc-2").await.is_empty());

    // A second incident gets the next number.
    let (_, second) = body(
        snow_post(
            &snow,
            &json!({"short_description": "b", "correlation_id": "inc-2"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(second["result"]["number"], "INC0010002");

    // Work notes are journaled and read back empty.
    let (status, v) = snow_patch(
        &snow,
        &sys_id,
        &json!({"work_notes": "acknowledged by bob", "state": "2", "urgency": "1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["work_notes"], "");
    assert_eq!(v["result"]["state"], "2");
    assert_eq!(v["result"]["priority"], "2");
    assert_eq!(v["result"]["sys_mod_count"], "1");
    assert_eq!(
        snow.record(&sys_id).unwrap().work_notes(),
        ["acknowledged by bob"]
    );

    // The data policy: resolving needs a resolution code and notes.
    let (status, v) = snow_patch(&snow, &sys_id, &json!({"state": "6"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        v,
        json!({"error": {"message": "Operation Failed",
                         "detail": "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes"},
               "status": "failure"})
    );
    let (status, _) = snow_patch(
        &snow,
        &sys_id,
        &json!({"state": "6", "close_code": "Fixed it", "close_notes": "n"}),
    )
    .await;
    assert_eq!(status, 400, "close_code outside the choice list");
    assert_eq!(
        snow.record(&sys_id).unwrap().state(),
        "2",
        "refused writes change nothing"
    );
    let (status, v) = snow_patch(&snow, &sys_id, &json!({"state": "6", "close_code": "Solution provided", "close_notes": "restored at 09:05"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["state"], "6");
    assert_eq!(v["result"]["incident_state"], "6");
    assert_eq!(v["result"]["resolved_at"], "2026-01-15 09:00:00");
    assert_eq!(v["result"]["active"], "true");

    // Closed incidents are read-only.
    let (status, _) = snow_patch(&snow, &sys_id, &json!({"state": "7"})).await;
    assert_eq!(status, 200);
    let (status, v) = snow_patch(&snow, &sys_id, &json!({"work_notes": "late"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        v["error"]["detail"],
        "ACL Exception Update Failed due to security constraints"
    );

    // Unknown record.
    let (status, v) = snow_patch(&snow, &"0".repeat(32), &json!({"state": "2"})).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["message"], "No Record found");
    assert_eq!(snow.by_correlation_id("incident", "inc-1").len(), 1);
}

#[tokio::test]
async fn servicenow_commit_then_drop_really_commits() {
    let snow = ServiceNow::start(Default::default()).await;
    snow.inject_on(
        Match::request("POST", "/api/now/table/incident"),
        Fault::CommitThenDrop,
        1,
    );
    let err = snow_post(
        &snow,
        &json!({"short_description": "x", "correlation_id": "inc-9"}),
    )
    .await
    .expect_err("the connection is closed before any response");
    assert!(!err.is_timeout(), "{err}");
    // The create was committed: a careful client finds it and does not create again.
    let found = snow_lookup(&snow, "inc-9").await;
    assert_eq!(found.len(), 1);
    assert_eq!(snow.records().len(), 1);
    let log = snow.requests();
    assert_eq!(log[0].fault, Some(Fault::CommitThenDrop));
    assert_eq!(log[0].status, None);
    assert_eq!(log[1].status, Some(200));
    // The fault was used up: the next create is answered.
    let resp = snow_post(
        &snow,
        &json!({"short_description": "y", "correlation_id": "inc-10"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

#[tokio::test]
async fn servicenow_injected_statuses_hangs_and_drops() {
    let snow = ServiceNow::start(Default::default()).await;
    snow.inject(Fault::Status(503), 2);
    snow.inject(Fault::Status(429), 1);
    for _ in 0..2 {
        let (status, v) = body(
            snow_post(&snow, &json!({"short_description": "x"}))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 503);
        assert_eq!(v["status"], "failure");
    }
    let resp = snow_post(&snow, &json!({"short_description": "x"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(
        snow.records().is_empty(),
        "injected statuses process nothing"
    );
    assert_eq!(
        snow_post(&snow, &json!({"short_description": "x"}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );

    // A hanging request is not processed; the client gives up.
    snow.inject(Fault::Hang, 1);
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = short
        .post(format!("{}/api/now/table/incident", snow.base_url()))
        .basic_auth("sentinel.integration", Some("s3cret"))
        .header("Accept", "application/json")
        .json(&json!({"short_description": "hang"}))
        .send()
        .await
        .expect_err("never answered");
    assert!(err.is_timeout(), "{err}");
    // A slow answer is processed even though the client gave up first.
    snow.inject(Fault::Slow(Duration::from_secs(3)), 1);
    let err = short
        .post(format!("{}/api/now/table/incident", snow.base_url()))
        .basic_auth("sentinel.integration", Some("s3cret"))
        .header("Accept", "application/json")
        .json(&json!({"short_description": "slow"}))
        .send()
        .await
        .expect_err("answered too late");
    assert!(err.is_timeout(), "{err}");
    // A plain drop processes nothing.
    snow.inject(Fault::Drop, 1);
    snow_post(&snow, &json!({"short_description": "drop"}))
        .await
        .expect_err("dropped");
    let descriptions: Vec<String> = snow
        .records()
        .iter()
        .map(|r| r.get("short_description").to_string())
        .collect();
    assert_eq!(descriptions, ["x", "slow"]);
}

// ---------------------------------------------------------------------- Jira

use crate::support::fakes::jira::{self, Jira, JiraUser};

fn jira_req(jira: &Jira, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", jira.base_url()))
        .basic_auth("sentinel@example.com", Some("jira-api-token"))
}

async fn jira_create(jira: &Jira, label: &str) -> (u16, Value) {
    let resp = jira_req(jira, reqwest::Method::POST, "/rest/api/3/issue")
        .json(&json!({"fields": {
            "project": {"key": "OPS"},
            "issuetype": {"name": "Incident"},
            "summary": "checkout is down",
            "description": jira::adf_paragraph("availability 99.1%"),
            "labels": ["sentinel", label],
            "priority": {"name": "High"},
        }}))
        .send()
        .await
        .unwrap();
    body(resp).await
}

async fn jira_search(jira: &Jira, jql: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut q = vec![("jql", jql)];
    q.extend_from_slice(extra);
    let resp = jira_req(jira, reqwest::Method::GET, "/rest/api/3/search/jql")
        .query(&q)
        .send()
        .await
        .unwrap();
    body(resp).await
}

#[tokio::test]
async fn jira_refuses_missing_auth_plain_descriptions_and_unknown_fields() {
    let jira = Jira::start(Default::default()).await;
    let anon = client()
        .post(format!("{}/rest/api/3/issue", jira.base_url()))
        .json(&json!({"fields": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(anon).await,
        (
            401,
            json!({"message": "Client must be authenticated to access this resource.", "status-code": 401})
        )
    );
    let plain = jira_req(&jira, reqwest::Method::POST, "/rest/api/3/issue")
        .json(
            &json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Incident"},
                                 "summary": "s", "description": "plain text"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(plain).await,
        (
            400,
            json!({"errorMessages": [], "errors": {"description":
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)"}})
        )
    );
    let bad = jira_req(&jira, reqwest::Method::POST, "/rest/api/3/issue")
        .json(
            &json!({"fields": {"project": {"key": "NOPE"}, "summary": "",
                                 "labels": ["has space"], "customfield_99": "x"}}),
        )
        .send()
        .await
        .unwrap();
    let (status, v) = body(bad).await;
    assert_eq!(status, 400);
    assert_eq!(v["errors"]["project"], "Specify a valid project ID or key");
    assert_eq!(
        v["errors"]["summary"],
        "You must specify a summary of the issue."
    );
    assert_eq!(
        v["errors"]["labels"],
        "The label 'has space' contains spaces which is invalid."
    );
    assert_eq!(
        v["errors"]["customfield_99"],
        "Field 'customfield_99' cannot be set. It is not on the appropriate screen, or unknown."
    );
    let form = jira_req(&jira, reqwest::Method::POST, "/rest/api/3/issue")
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    let old = jira_search(&jira, "labels = x", &[]).await;
    assert_eq!(old.0, 200);
    let removed = jira_req(&jira, reqwest::Method::GET, "/rest/api/3/search")
        .query(&[("jql", "labels = x")])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status().as_u16(), 410);
    let reasons: Vec<String> = jira.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons[0], "no Authorization header");
    assert!(
        reasons[1].starts_with("description: Operation value must be an Atlassian Document"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3], "Content-Type is not application/json");
    assert_eq!(reasons[4], "removed search endpoint (CHANGE-2046)");
    assert!(jira.issues().is_empty());
}

#[tokio::test]
async fn jira_issue_lifecycle_search_comment_priority_transition() {
    let jira = Jira::start(Default::default()).await;
    let (status, created) = jira_create(&jira, "sentinel-inc-1").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created,
        json!({"id": "10000", "key": "OPS-1", "self": format!("{}/rest/api/3/issue/10000", jira.base_url())})
    );
    assert_eq!(jira_create(&jira, "sentinel-inc-2").await.1["key"], "OPS-2");

    // Search returns ids only unless fields are asked for.
    let (status, found) = jira_search(&jira, r#"labels = "sentinel-inc-1""#, &[]).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found, json!({"issues": [{"id": "10000"}], "isLast": true}));
    let (_, found) = jira_search(
        &jira,
        r#"project = OPS AND labels = "sentinel-inc-1" AND statusCategory != Done"#,
        &[("fields", "key,status")],
    )
    .await;
    assert_eq!(found["issues"][0]["key"], "OPS-1");
    assert_eq!(found["issues"][0]["fields"]["status"]["name"], "To Do");
    assert!(found["issues"][0]["fields"].get("summary").is_none());
    let (status, v) = jira_search(&jira, "order by created DESC", &[]).await;
    assert_eq!(
        (status, v["errorMessages"][0].as_str().unwrap()),
        (
            400,
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
        )
    );
    let (status, _) = jira_search(&jira, "summary ~ checkout", &[]).await;
    assert_eq!(status, 400);
    assert!(
        jira.rejections()
            .last()
            .unwrap()
            .reason
            .starts_with("[fake] JQL not implemented")
    );

    // Comment (ADF only) and priority.
    let c = jira_req(
        &jira,
        reqwest::Method::POST,
        "/rest/api/3/issue/OPS-1/comment",
    )
    .json(&json!({"body": jira::adf_paragraph("acknowledged by bob")}))
    .send()
    .await
    .unwrap();
    assert_eq!(c.status().as_u16(), 201);
    let c = jira_req(
        &jira,
        reqwest::Method::POST,
        "/rest/api/3/issue/OPS-1/comment",
    )
    .json(&json!({"body": "plain"}))
    .send()
    .await
    .unwrap();
    assert_eq!(c.status().as_u16(), 400);
    let p = jira_req(&jira, reqwest::Method::PUT, "/rest/api/3/issue/OPS-1")
        .json(&json!({"fields": {"priority": {"name": "Highest"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(p.status().as_u16(), 204);
    let p = jira_req(&jira, reqwest::Method::PUT, "/rest/api/3/issue/OPS-1")
        .json(&json!({"fields": {"priority": {"name": "Urgent"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(p.status().as_u16(), 400);
    let issue = jira.issue("OPS-1").unwrap();
    assert_eq!(issue.priority, "Highest");
    assert_eq!(issue.comments.len(), 1);
    assert_eq!(issue.comments[0].text(), "acknowledged by bob");
    assert_eq!(issue.created, "2026-01-15T09:00:00.000+0000");

    // Transitions: listed by name, applied by id.
    let (_, t) = body(
        jira_req(
            &jira,
            reqwest::Method::GET,
            "/rest/api/3/issue/OPS-1/transitions",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let names: Vec<&str> = t["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["In Progress", "Resolved", "Done"]);
    let resolved_id = t["transitions"][1]["id"].as_str().unwrap().to_string();
    let by_name = jira_req(
        &jira,
        reqwest::Method::POST,
        "/rest/api/3/issue/OPS-1/transitions",
    )
    .json(&json!({"transition": {"name": "Resolved"}}))
    .send()
    .await
    .unwrap();
    assert_eq!(by_name.status().as_u16(), 400);
    let tr = jira_req(&jira, reqwest::Method::POST, "/rest/api/3/issue/OPS-1/transitions")
        .json(&json!({"transition": {"id": resolved_id},
                      "update": {"comment": [{"add": {"body": jira::adf_paragraph("resolved by sentinel")}}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(tr.status().as_u16(), 204);
    let again = jira_req(
        &jira,
        reqwest::Method::POST,
        "/rest/api/3/issue/OPS-1/transitions",
    )
    .json(&json!({"transition": {"id": resolved_id}}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        body(again).await,
        (
            400,
            json!({"errorMessages": ["Transition id '31' is not valid for this issue."], "errors": {}})
        )
    );
    let issue = jira.issue("OPS-1").unwrap();
    assert_eq!(issue.status.name, "Resolved");
    assert_eq!(issue.resolution.as_deref(), Some("Done"));
    assert_eq!(issue.comments.len(), 2);
    let (_, open) = jira_search(
        &jira,
        r#"labels = "sentinel-inc-1" AND statusCategory != Done"#,
        &[],
    )
    .await;
    assert_eq!(open["issues"], json!([]));
    let missing = jira_req(
        &jira,
        reqwest::Method::GET,
        "/rest/api/3/issue/OPS-99/transitions",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test]
async fn jira_search_lags_until_indexed_unless_reconciled() {
    let jira = Jira::start(jira::Config {
        search: jira::Visibility::Manual,
        ..Default::default()
    })
    .await;
    jira.inject_on(
        Match::request("POST", "/rest/api/3/issue"),
        Fault::CommitThenDrop,
        1,
    );
    let err = jira_req(&jira, reqwest::Method::POST, "/rest/api/3/issue")
        .json(
            &json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"},
                                 "summary": "s", "labels": ["sentinel-inc-7"]}}),
        )
        .send()
        .await;
    assert!(err.is_err(), "dropped after commit");
    assert_eq!(jira.with_label("sentinel-inc-7").len(), 1, "committed");
    let (_, v) = jira_search(&jira, "labels = sentinel-inc-7", &[]).await;
    assert_eq!(v["issues"], json!([]), "not indexed yet");
    let (_, v) = jira_search(
        &jira,
        "labels = sentinel-inc-7",
        &[("reconcileIssues", "10000")],
    )
    .await;
    assert_eq!(v["issues"], json!([{"id": "10000"}]));
    jira.index_now();
    let (_, v) = jira_search(&jira, "labels = sentinel-inc-7", &[]).await;
    assert_eq!(v["issues"], json!([{"id": "10000"}]));
}

// ------------------------------------------------------------------ Opsgenie

use crate::support::fakes::opsgenie::{self, Opsgenie};

const GENIE_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";

fn genie(og: &Opsgenie, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}{path}", og.base_url()))
        .header("Authorization", format!("GenieKey {GENIE_KEY}"))
}

#[tokio::test]
async fn opsgenie_auth_and_validation_use_its_error_bodies() {
    let og = Opsgenie::start(Default::default()).await;
    let anon = client()
        .post(format!("{}/v2/alerts", og.base_url()))
        .json(&json!({"message": "m"}))
        .send()
        .await
        .unwrap();
    let (status, v) = body(anon).await;
    assert_eq!(
        (status, v["message"].as_str().unwrap()),
        (401, "Could not authenticate")
    );
    assert!(v["requestId"].is_string() && v["took"].is_number());
    let malformed = client()
        .post(format!("{}/v2/alerts", og.base_url()))
        .header("Authorization", "GenieKey not-a-key")
        .json(&json!({"message": "m"}))
        .send()
        .await
        .unwrap();
    let (status, v) = body(malformed).await;
    assert_eq!(
        (status, v["message"].as_str().unwrap()),
        (422, "Key format is not valid!")
    );
    let bearer = client()
        .post(format!("{}/v2/alerts", og.base_url()))
        .bearer_auth(GENIE_KEY)
        .json(&json!({"message": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 401);
    let invalid = genie(&og, reqwest::Method::POST, "/v2/alerts")
        .json(&json!({"message": "x".repeat(131), "priority": "P0", "alias": "a".repeat(513)}))
        .send()
        .await
        .unwrap();
    let (status, v) = body(invalid).await;
    assert_eq!(status, 422);
    assert_eq!(
        v["message"],
        "Request body is not processable. Please check the errors."
    );
    assert_eq!(
        v["errors"]["priority"],
        "should be one of [ P1, P2, P3, P4, P5 ]"
    );
    assert_eq!(
        v["errors"]["message"],
        "Message can not be longer than 130 characters."
    );
    assert_eq!(
        v["errors"]["alias"],
        "Alias can not be longer than 512 characters."
    );
    let no_message = genie(&og, reqwest::Method::POST, "/v2/alerts")
        .json(&json!({"alias": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(no_message).await.1["errors"]["message"],
        "Message can not be empty."
    );
    let reasons: Vec<String> = og.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons[..3],
        [
            "no Authorization header",
            "API key is not UUID-shaped",
            "Authorization is not GenieKey <key>"
        ]
    );
    assert!(og.alerts().is_empty());
}

#[tokio::test]
async fn opsgenie_async_create_dedup_ack_note_priority_close() {
    let og = Opsgenie::start(opsgenie::Config {
        processing: opsgenie::Processing::Manual,
        ..Default::default()
    })
    .await;
    let create = || async {
        let resp = genie(&og, reqwest::Method::POST, "/v2/alerts")
            .json(
                &json!({"message": "checkout down", "alias": "dedup-1", "priority": "P2",
                          "tags": ["sentinel"], "details": {"service": "checkout"},
                          "description": "availability 99.1%"}),
            )
            .send()
            .await
            .unwrap();
        body(resp).await
    };
    let (status, accepted) = create().await;
    assert_eq!(status, 202);
    assert_eq!(accepted["result"], "Request will be processed");
    let request_id = accepted["requestId"].as_str().unwrap().to_string();
    // Not processed yet: neither the request nor the alert can be found.
    let (status, v) = body(
        genie(
            &og,
            reqwest::Method::GET,
            &format!("/v2/alerts/requests/{request_id}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, v["message"].as_str().unwrap()),
        (404, "Request not found. It might not be processed, yet.")
    );
    let by_alias = genie(&og, reqwest::Method::GET, "/v2/alerts/dedup-1")
        .query(&[("identifierType", "alias")])
        .send()
        .await
        .unwrap();
    assert_eq!(by_alias.status().as_u16(), 404);
    // A retry races the first create; processing de-duplicates by alias.
    let (_, retry) = create().await;
    og.process();
    assert_eq!(og.alerts().len(), 1);
    assert_eq!(og.alerts()[0].count, 2);
    let (status, v) = body(
        genie(
            &og,
            reqwest::Method::GET,
            &format!("/v2/alerts/requests/{request_id}"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["isSuccess"], true);
    assert_eq!(v["data"]["status"], "Created alert");
    assert_eq!(v["data"]["alias"], "dedup-1");
    let alert_id = v["data"]["alertId"].as_str().unwrap().to_string();
    let retry_status = og
        .request_status(retry["requestId"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (retry_status.status.as_str(), retry_status.alert_id.as_str()),
        ("Alert is deduplicated", alert_id.as_str())
    );

    let (status, v) = body(
        genie(&og, reqwest::Method::GET, "/v2/alerts/dedup-1")
            .query(&[("identifierType", "alias")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["id"], alert_id.as_str());
    assert_eq!(v["data"]["tinyId"], "1");
    assert_eq!(v["data"]["status"], "open");
    assert_eq!(v["data"]["priority"], "P2");
    assert_eq!(v["data"]["createdAt"], "2026-01-15T09:00:00.000Z");

    for (path, payload) in [
        (
            "/v2/alerts/dedup-1/acknowledge",
            json!({"user": "sentinel", "note": "acknowledged by bob"}),
        ),
        (
            "/v2/alerts/dedup-1/notes",
            json!({"user": "sentinel", "note": "budget 12% left"}),
        ),
    ] {
        let r = genie(&og, reqwest::Method::POST, path)
            .query(&[("identifierType", "alias")])
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
    }
    let empty_note = genie(&og, reqwest::Method::POST, "/v2/alerts/dedup-1/notes")
        .query(&[("identifierType", "alias")])
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_note.status().as_u16(), 422);
    let pr = genie(&og, reqwest::Method::PUT, "/v2/alerts/dedup-1/priority")
        .query(&[("identifierType", "alias")])
        .json(&json!({"priority": "P1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pr.status().as_u16(), 202);
    // Acknowledging an alias that never existed is accepted, then fails.
    let (_, ghost) = body(
        genie(&og, reqwest::Method::POST, "/v2/alerts/nope/acknowledge")
            .query(&[("identifierType", "alias")])
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    og.process();
    let ghost = og
        .request_status(ghost["requestId"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (ghost.success, ghost.status.as_str()),
        (false, "Alert does not exist")
    );
    let a = &og.alerts()[0];
    assert!(a.acknowledged);
    assert_eq!(a.priority, "P1");
    let notes: Vec<&str> = a.notes.iter().map(|n| n.note.as_str()).collect();
    assert_eq!(notes, ["acknowledged by bob", "budget 12% left"]);

    let close = genie(&og, reqwest::Method::POST, "/v2/alerts/dedup-1/close")
        .query(&[("identifierType", "alias")])
        .json(&json!({"user": "sentinel", "note": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(close.status().as_u16(), 202);
    og.process();
    assert_eq!(og.alerts()[0].status, "closed");
    // A closed alias starts a new alert.
    create().await;
    og.process();
    let all = og.by_alias("dedup-1");
    assert_eq!(all.len(), 2);
    assert_eq!(
        (
            all[1].status.as_str(),
            all[1].tiny_id.as_str(),
            all[1].count
        ),
        ("open", "2", 1)
    );
}

// ----------------------------------------------------------------- PagerDuty

use crate::support::fakes::pagerduty::{self, PagerDuty};

async fn enqueue(pd: &PagerDuty, event: &Value) -> (u16, Value) {
    body(
        client()
            .post(pd.enqueue_url())
            .json(event)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn trigger(dedup_key: &str) -> Value {
    json!({"routing_key": pagerduty::ROUTING_KEY, "event_action": "trigger", "dedup_key": dedup_key,
           "payload": {"summary": "checkout down", "source": "sentinel", "severity": "critical"}})
}

#[tokio::test]
async fn pagerduty_refuses_invalid_events_with_its_error_body() {
    let pd = PagerDuty::start(Default::default()).await;
    let (status, v) = enqueue(
        &pd,
        &json!({"routing_key": pagerduty::ROUTING_KEY, "event_action": "trigger",
                                           "payload": {"summary": "s", "source": "x"}}),
    )
    .await;
    assert_eq!(
        (status, v),
        (
            400,
            json!({"status": "invalid event", "message": "Event object is invalid",
                     "errors": ["'payload.severity' is missing or blank"]})
        )
    );
    let (status, v) = enqueue(
        &pd,
        &json!({"routing_key": "short", "event_action": "resolve"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["errors"],
        json!([
            "Length of 'routing_key' is incorrect (should be 32 characters)",
            "'dedup_key' is missing or blank"
        ])
    );
    let (status, v) = enqueue(&pd, &json!({"routing_key": pagerduty::ROUTING_KEY, "event_action": "trigger",
                                           "payload": {"summary": "x".repeat(1025), "source": "s", "severity": "fatal"}})).await;
    assert_eq!(status, 400);
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    let (status, _) = enqueue(&pd, &json!({"routing_key": "0".repeat(32), "event_action": "trigger",
                                           "payload": {"summary": "s", "source": "s", "severity": "info"}})).await;
    assert_eq!(status, 400);
    assert_eq!(pd.rejections().len(), 4);
    assert!(pd.alerts().is_empty() && pd.events().is_empty());
}

#[tokio::test]
async fn pagerduty_keeps_alert_state_per_dedup_key() {
    let pd = PagerDuty::start(Default::default()).await;
    let (status, v) = enqueue(&pd, &trigger("inc-1")).await;
    assert_eq!(
        (status, v),
        (
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": "inc-1"})
        )
    );
    assert_eq!(enqueue(&pd, &trigger("inc-1")).await.0, 202);
    assert_eq!(
        pd.by_dedup_key("inc-1").len(),
        1,
        "a repeated trigger joins the open alert"
    );
    assert_eq!(pd.by_dedup_key("inc-1")[0].triggers, 2);
    let ack = json!({"routing_key": pagerduty::ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "inc-1"});
    assert_eq!(enqueue(&pd, &ack).await.0, 202);
    assert_eq!(pd.by_dedup_key("inc-1")[0].status, "acknowledged");
    let resolve = json!({"routing_key": pagerduty::ROUTING_KEY, "event_action": "resolve", "dedup_key": "inc-1"});
    assert_eq!(enqueue(&pd, &resolve).await.0, 202);
    assert_eq!(pd.by_dedup_key("inc-1")[0].status, "resolved");
    // After resolution an acknowledge is accepted and dropped; a trigger opens a new alert.
    assert_eq!(enqueue(&pd, &ack).await.0, 202);
    assert!(!pd.events().last().unwrap().applied);
    enqueue(&pd, &trigger("inc-1")).await;
    let alerts = pd.by_dedup_key("inc-1");
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        (alerts[0].status.as_str(), alerts[1].status.as_str()),
        ("resolved", "triggered")
    );
    assert_eq!(alerts[1].incident_number, 2);
    // Without a dedup_key PagerDuty makes one up and returns it.
    let mut no_key = trigger("x");
    no_key.as_object_mut().unwrap().remove("dedup_key");
    let (_, v) = enqueue(&pd, &no_key).await;
    assert_eq!(v["dedup_key"].as_str().unwrap().len(), 32);
    // Injected throttling processes nothing.
    pd.inject(Fault::Status(429), 1);
    let (status, v) = enqueue(&pd, &trigger("inc-2")).await;
    assert_eq!(
        (status, v["status"].as_str().unwrap()),
        (429, "throttle event")
    );
    assert!(pd.by_dedup_key("inc-2").is_empty());
}

// --------------------------------------------------------------------- Slack

use crate::support::fakes::slack::{self, Slack};

#[tokio::test]
async fn slack_webhook_answers_ok_or_its_error_strings() {
    let sl = Slack::start(Default::default()).await;
    let post = |url: String, ct: &'static str, b: String| async move {
        let resp = client()
            .post(url)
            .header("Content-Type", ct)
            .body(b)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    let url = sl.webhook_url();
    assert_eq!(
        post(
            url.clone(),
            "application/json",
            json!({"text": "hi"}).to_string()
        )
        .await,
        (200, "ok".into())
    );
    assert_eq!(
        post(
            format!("{}/services/T1/B1/wrong", sl.base_url()),
            "application/json",
            json!({"text": "hi"}).to_string()
        )
        .await,
        (404, "no_service".into())
    );
    assert_eq!(
        post(url.clone(), "text/plain", "hi".into()).await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        post(url.clone(), "application/json", "{not json".into()).await,
        (400, "invalid_payload".into())
    );
    assert_eq!(
        post(
            url.clone(),
            "application/json",
            json!({"username": "x"}).to_string()
        )
        .await,
        (400, "no_text".into())
    );
    assert_eq!(
        post(
            url.clone(),
            "application/json",
            json!({"text": "t", "blocks": {"type": "section"}}).to_string()
        )
        .await,
        (400, "invalid_blocks".into())
    );
    let blocks =
        json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*down*"}}]});
    assert_eq!(
        post(url.clone(), "application/json", blocks.to_string()).await,
        (200, "ok".into())
    );
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json!({"text": "via form"}).to_string())
        .finish();
    assert_eq!(
        post(url.clone(), "application/x-www-form-urlencoded", form).await,
        (200, "ok".into())
    );
    assert_eq!(
        post(
            sl.response_url(),
            "application/json",
            json!({"text": "ack", "replace_original": true}).to_string()
        )
        .await,
        (200, "ok".into())
    );
    let texts: Vec<String> = sl.messages().iter().map(|m| m.text().to_string()).collect();
    assert_eq!(texts, ["hi", "", "via form"]);
    assert_eq!(sl.responses()[0].body["replace_original"], true);
    let reasons: Vec<String> = sl.rejections().into_iter().map(|r| r.reason).collect();
    assert_eq!(reasons.len(), 5);
    assert_eq!(
        reasons[2],
        "body is not a JSON message matching its Content-Type"
    );
}

// ------------------------------------------------------------ signed senders

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An HMAC computed here, not through the fakes.
fn independent_hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn slack_signature_reproduces_the_published_example() {
    // "Verifying requests from Slack": the documented example request.
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    assert_eq!(
        slack::signature(
            "8f742231b10e8888abcd99yyyzzz85a5",
            1_531_420_618,
            body.as_bytes()
        ),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}

#[test]
fn slack_interaction_request_is_a_signed_form_with_a_block_actions_payload() {
    let user = slack::SlackUser {
        id: "U0BOB".into(),
        username: "bob".into(),
        name: "bob".into(),
        team_id: "T0001SNTNL".into(),
    };
    let message = json!({"text": "checkout down", "blocks": []});
    let payload = slack::block_actions_payload(
        &user,
        "sentinel_ack",
        "inc-1",
        &message,
        "https://hooks.slack.com/actions/T/1/x",
        "1768467601.000200",
    );
    let req = slack::interaction_request("s3cr3t", 1_768_467_601, &payload);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("x-slack-request-timestamp"), Some("1768467601"));
    let base = format!("v0:1768467601:{}", req.body_text());
    assert_eq!(
        req.header("x-slack-signature").unwrap(),
        format!("v0={}", independent_hmac_hex(b"s3cr3t", base.as_bytes()))
    );
    assert!(req.body_text().starts_with("payload=%7B"));
    let (k, v) = url::form_urlencoded::parse(&req.body).next().unwrap();
    assert_eq!(k, "payload");
    let p: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(p["type"], "block_actions");
    assert_eq!(
        p["user"],
        json!({"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0001SNTNL"})
    );
    assert_eq!(p["actions"][0]["action_id"], "sentinel_ack");
    assert_eq!(p["actions"][0]["value"], "inc-1");
    assert_eq!(p["message"]["text"], "checkout down");
    assert_eq!(p["response_url"], "https://hooks.slack.com/actions/T/1/x");
    // Tampering keeps the old signature.
    let tampered = req.clone().with_body(b"payload=%7B%7D");
    assert_ne!(
        tampered.header("x-slack-signature").unwrap(),
        format!(
            "v0={}",
            independent_hmac_hex(
                b"s3cr3t",
                format!("v0:1768467601:{}", tampered.body_text()).as_bytes()
            )
        )
    );
}

#[tokio::test]
async fn pagerduty_webhook_is_signed_with_every_secret() {
    let pd = PagerDuty::start(Default::default()).await;
    enqueue(&pd, &trigger("dedup-77")).await;
    let alert = pd.acknowledge_as("dedup-77", "PBOB123").unwrap();
    let agent = pagerduty::PdUser {
        id: "PBOB123".into(),
        summary: "Bob".into(),
    };
    let req = pagerduty::webhook_v3(
        "incident.acknowledged",
        &alert,
        &agent,
        "01ABCDEF",
        "2026-01-15T09:01:00.000Z",
        &["old-secret", "new-secret"],
    );
    // Verified as the PagerDuty docs describe: split on ',', keep v1=, compare.
    let header = req.header("x-pagerduty-signature").unwrap();
    let sigs: Vec<&str> = header
        .split(',')
        .filter_map(|s| s.strip_prefix("v1="))
        .collect();
    assert_eq!(sigs.len(), 2);
    assert!(sigs.contains(&independent_hmac_hex(b"old-secret", &req.body).as_str()));
    assert!(sigs.contains(&independent_hmac_hex(b"new-secret", &req.body).as_str()));
    assert!(!sigs.contains(&independent_hmac_hex(b"other", &req.body).as_str()));
    assert_eq!(req.header("x-webhook-id"), Some("wh-01ABCDEF"));
    let v: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["event"]["id"], "01ABCDEF");
    assert_eq!(v["event"]["event_type"], "incident.acknowledged");
    assert_eq!(v["event"]["agent"]["summary"], "Bob");
    assert_eq!(v["event"]["data"]["incident_key"], "dedup-77");
    assert_eq!(v["event"]["data"]["status"], "acknowledged");
    assert_eq!(v["event"]["data"]["id"], alert.incident_id.as_str());
}

#[tokio::test]
async fn jira_webhook_carries_the_status_change_and_hub_signature() {
    let jira = Jira::start(Default::default()).await;
    jira_create(&jira, "sentinel-inc-3").await;
    let alice = JiraUser {
        account_id: "557058:alice".into(),
        display_name: "Alice".into(),
    };
    let change = jira.transition_as("OPS-1", "Resolved", &alice).unwrap();
    assert_eq!(
        (change.from.name.as_str(), change.to.name.as_str()),
        ("To Do", "Resolved")
    );
    let issue = jira.issue("OPS-1").unwrap();
    let req = jira::issue_updated_webhook(
        &jira.base_url(),
        &issue,
        &change,
        &alice,
        1_768_467_660_000,
        "jira-secret",
    );
    assert_eq!(
        req.header("x-hub-signature").unwrap(),
        format!("sha256={}", independent_hmac_hex(b"jira-secret", &req.body))
    );
    let v: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["webhookEvent"], "jira:issue_updated");
    assert_eq!(v["user"]["displayName"], "Alice");
    assert_eq!(v["issue"]["key"], "OPS-1");
    assert_eq!(
        v["issue"]["fields"]["labels"],
        json!(["sentinel", "sentinel-inc-3"])
    );
    assert_eq!(
        v["changelog"]["items"][0],
        json!({"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10000",
               "fromString": "To Do", "to": "5", "toString": "Resolved"})
    );
}

#[tokio::test]
async fn opsgenie_and_servicenow_hooks_carry_the_configured_credential() {
    let og = Opsgenie::start(Default::default()).await;
    genie(&og, reqwest::Method::POST, "/v2/alerts")
        .json(&json!({"message": "m", "alias": "dedup-5"}))
        .send()
        .await
        .unwrap();
    let alert = og.acknowledge_as("dedup-5", "bob@example.com").unwrap();
    let user = opsgenie::OpsgenieUser {
        username: "bob@example.com".into(),
        user_id: "daed1180-0ce8-438b-8f8e-57e1a5920a2d".into(),
    };
    let (id, name) = og.integration();
    let req = opsgenie::outgoing_webhook(
        "Acknowledge",
        &alert,
        &user,
        (&id, &name),
        1_768_467_660_000_000_000,
        &opsgenie::HookAuth::Bearer("hook-token".into()),
    );
    assert_eq!(req.header("authorization"), Some("Bearer hook-token"));
    let v: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(v["action"], "Acknowledge");
    assert_eq!(v["alert"]["alias"], "dedup-5");
    assert_eq!(v["alert"]["username"], "bob@example.com");
    assert_eq!(v["alert"]["alertId"], alert.id.as_str());
    assert_eq!(v["integrationName"], "sentinel");
    let basic = opsgenie::outgoing_webhook(
        "Close",
        &alert,
        &user,
        (&id, &name),
        0,
        &opsgenie::HookAuth::Basic("u".into(), "p".into()),
    );
    assert_eq!(basic.header("authorization"), Some("Basic dTpw"));

    let snow = ServiceNow::start(Default::default()).await;
    let (_, created) = body(
        snow_post(
            &snow,
            &json!({"short_description": "x", "correlation_id": "inc-4"}),
        )
        .await
        .unwrap(),
    )
    .await;
    let sys_id = created["result"]["sys_id"].as_str().unwrap();
    let rec = snow
        .update_as(
            sys_id,
            "jane.doe",
            &[
                ("state", "6"),
                ("close_code", "Solution provided"),
                ("close_notes", "fixed"),
            ],
        )
        .unwrap();
    assert_eq!(rec.get("resolved_by"), "jane.doe");
    let req = servicenow::outbound_message(&rec, "snow-hook-token");
    assert_eq!(req.header("authorization"), Some("Bearer snow-hook-token"));
    let v: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        v,
        json!({"table": "incident", "sys_id": sys_id, "number": "INC0010001", "correlation_id": "inc-4",
               "state": "6", "close_code": "Solution provided", "close_notes": "fixed",
               "sys_updated_by": "jane.doe", "sys_updated_on": "2026-01-15 09:00:00"})
    );
}

/// A receiver built on the fakes' own server core, to check `HookRequest::send`
/// delivers the exact bytes and headers that were signed.
struct Recorder;

impl fakes::server::Handler for Recorder {
    fn handle(&self, _req: &fakes::Request) -> fakes::server::Outcome {
        fakes::server::Outcome::Served(fakes::Response::empty(202))
    }
    fn fault_response(&self, status: u16) -> fakes::Response {
        fakes::Response::empty(status)
    }
}

#[tokio::test]
async fn hook_requests_arrive_byte_for_byte() {
    let rx = fakes::Server::start(std::sync::Arc::new(Recorder)).await;
    let user = slack::SlackUser {
        id: "U1".into(),
        username: "u".into(),
        name: "u".into(),
        team_id: "T1".into(),
    };
    let payload = slack::block_actions_payload(
        &user,
        "sentinel_resolve",
        "inc-1",
        &json!({"text": "t"}),
        "http://x",
        "1.2",
    );
    let req = slack::interaction_request("sec", 1_768_467_600, &payload);
    let resp = req
        .send(&client(), &format!("{}/api/v1/hooks/slack", rx.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let got = &rx.requests()[0].request;
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/api/v1/hooks/slack");
    assert_eq!(got.body, req.body);
    for name in [
        "content-type",
        "x-slack-request-timestamp",
        "x-slack-signature",
    ] {
        assert_eq!(got.header(name), req.header(name), "{name}");
    }
}
