//! The fakes refuse what the real services refuse (with their status codes
//! and error bodies), keep records the way they do, act out the injected
//! faults, and their signed senders agree with independent verifications.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers; a panic is the failure report

mod fakes;

use std::time::Duration;

use serde_json::{Value, json};

use fakes::servicenow::{self, ServiceNow};
use fakes::{Fault, Match};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
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
        .patch(format!("{}/api/now/table/incident/{sys_id}", snow.base_url()))
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
    assert_eq!(location, format!("{}/api/now/table/incident/{sys_id}", snow.base_url()));
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
    assert_eq!(snow.ignored_fields(), [("correlationid".to_string(), "incident".to_string())]);

    let found = snow_lookup(&snow, "inc-1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["sys_id"], sys_id.as_str());
    assert!(snow_lookup(&snow, "inc-2").await.is_empty());

    // A second incident gets the next number.
    let (_, second) = body(snow_post(&snow, &json!({"short_description": "b", "correlation_id": "inc-2"})).await.unwrap()).await;
    assert_eq!(second["result"]["number"], "INC0010002");

    // Work notes are journaled and read back empty.
    let (status, v) = snow_patch(&snow, &sys_id, &json!({"work_notes": "acknowledged by bob", "state": "2", "urgency": "1"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["work_notes"], "");
    assert_eq!(v["result"]["state"], "2");
    assert_eq!(v["result"]["priority"], "2");
    assert_eq!(v["result"]["sys_mod_count"], "1");
    assert_eq!(snow.record(&sys_id).unwrap().work_notes(), ["acknowledged by bob"]);

    // The data policy: resolving needs a resolution code and notes.
    let (status, v) = snow_patch(&snow, &sys_id, &json!({"state": "6"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        v,
        json!({"error": {"message": "Operation Failed",
                         "detail": "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes"},
               "status": "failure"})
    );
    let (status, _) = snow_patch(&snow, &sys_id, &json!({"state": "6", "close_code": "Fixed it", "close_notes": "n"})).await;
    assert_eq!(status, 400, "close_code outside the choice list");
    assert_eq!(snow.record(&sys_id).unwrap().state(), "2", "refused writes change nothing");
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
    assert_eq!(v["error"]["detail"], "ACL Exception Update Failed due to security constraints");

    // Unknown record.
    let (status, v) = snow_patch(&snow, &"0".repeat(32), &json!({"state": "2"})).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["message"], "No Record found");
    assert_eq!(snow.by_correlation_id("incident", "inc-1").len(), 1);
}

#[tokio::test]
async fn servicenow_commit_then_drop_really_commits() {
    let snow = ServiceNow::start(Default::default()).await;
    snow.inject_on(Match::request("POST", "/api/now/table/incident"), Fault::CommitThenDrop, 1);
    let err = snow_post(&snow, &json!({"short_description": "x", "correlation_id": "inc-9"}))
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
    let resp = snow_post(&snow, &json!({"short_description": "y", "correlation_id": "inc-10"})).await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

#[tokio::test]
async fn servicenow_injected_statuses_hangs_and_drops() {
    let snow = ServiceNow::start(Default::default()).await;
    snow.inject(Fault::Status(503), 2);
    snow.inject(Fault::Status(429), 1);
    for _ in 0..2 {
        let (status, v) = body(snow_post(&snow, &json!({"short_description": "x"})).await.unwrap()).await;
        assert_eq!(status, 503);
        assert_eq!(v["status"], "failure");
    }
    let resp = snow_post(&snow, &json!({"short_description": "x"})).await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(snow.records().is_empty(), "injected statuses process nothing");
    assert_eq!(snow_post(&snow, &json!({"short_description": "x"})).await.unwrap().status().as_u16(), 201);

    // A hanging request is not processed; the client gives up.
    snow.inject(Fault::Hang, 1);
    let short = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
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
    snow_post(&snow, &json!({"short_description": "drop"})).await.expect_err("dropped");
    let descriptions: Vec<String> = snow.records().iter().map(|r| r.get("short_description").to_string()).collect();
    assert_eq!(descriptions, ["x", "slow"]);
}
