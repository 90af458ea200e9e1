//! Each provider's payloads as the strict test fakes build them (and the
//! providers' docs show them), and what sentinel makes of them.

use serde_json::json;

use super::*;

const KEY: &str = "sentinel/web/inc-web-1768467600-1";
const ID: &str = "inc-web-1768467600-1";

fn act(provider: HookProvider, body: &[u8]) -> Action {
    match intent(provider, body) {
        Ok(Intent::Act(a)) => a,
        other => panic!("{provider:?}: expected an action, got {other:?}"),
    }
}

fn ignored(provider: HookProvider, body: &[u8]) -> String {
    match intent(provider, body) {
        Ok(Intent::Ignore(why)) => why,
        other => panic!("{provider:?}: expected to be ignored, got {other:?}"),
    }
}

fn ticket(provider: &'static str, reference: &str) -> Ref {
    Ref::Ticket {
        provider,
        reference: reference.into(),
    }
}

#[test]
fn dedup_keys_name_the_incident() {
    assert_eq!(id_from_dedup_key(KEY).as_deref(), Some(ID));
    assert_eq!(id_from_dedup_key("sentinel/web/"), None);
    assert_eq!(id_from_dedup_key("sentinel//inc-1"), None);
    assert_eq!(id_from_dedup_key("other/web/inc-1"), None);
    assert_eq!(id_from_dedup_key("sentinel/web/a/b"), None);
}

fn pd(event_type: &str, key: Option<&str>) -> Vec<u8> {
    json!({"event": {
        "id": "01DEV8PQZ7WXYR8LX2LRNAV3C4",
        "event_type": event_type,
        "resource_type": "incident",
        "agent": {"summary": "Alice Ops", "type": "user_reference"},
        "data": {"id": "Q1ABC", "incident_key": key, "status": "acknowledged"},
    }})
    .to_string()
    .into_bytes()
}

#[test]
fn pagerduty_acts_on_acknowledged_and_resolved_incidents() {
    let a = act(
        HookProvider::PagerDuty,
        &pd("incident.acknowledged", Some(KEY)),
    );
    assert_eq!(a.kind, ActionKind::Acknowledge);
    assert_eq!(a.refs, [Ref::Id(ID.into())]);
    assert_eq!(a.by, "Alice Ops");
    assert_eq!(a.delivery_id.as_deref(), Some("01DEV8PQZ7WXYR8LX2LRNAV3C4"));
    let r = act(HookProvider::PagerDuty, &pd("incident.resolved", Some(KEY)));
    assert_eq!(r.kind, ActionKind::Resolve);
    // Not a sentinel incident: acted on with nothing to find (ignored later).
    let other = act(
        HookProvider::PagerDuty,
        &pd("incident.resolved", Some("db-17")),
    );
    assert!(other.refs.is_empty());
    let other = act(HookProvider::PagerDuty, &pd("incident.resolved", None));
    assert!(other.refs.is_empty());
    assert_eq!(
        ignored(
            HookProvider::PagerDuty,
            &pd("incident.triggered", Some(KEY))
        ),
        "event type `incident.triggered` is not acted on"
    );
    // sentinel's own Events API acknowledge coming back, an auto-resolve.
    for agent in [
        json!({"type": "service_reference", "summary": "sentinel"}),
        json!({"type": "integration_reference", "summary": "Events API v2"}),
        json!(null),
    ] {
        let mut v: serde_json::Value =
            serde_json::from_slice(&pd("incident.acknowledged", Some(KEY))).unwrap();
        v["event"]["agent"] = agent.clone();
        let why = ignored(HookProvider::PagerDuty, v.to_string().as_bytes());
        assert!(why.starts_with("not done by a person"), "{agent}: {why}");
    }
    assert!(intent(HookProvider::PagerDuty, b"{}").is_err());
    assert!(intent(HookProvider::PagerDuty, b"not json").is_err());
}

#[test]
fn opsgenie_acts_on_acknowledge_and_close_by_alias_or_stored_alert() {
    let body = |action: &str, alias: &str| {
        json!({"source": {"name": "", "type": "web"}, "action": action,
               "alert": {"alias": alias, "alertId": "8418d193-2dab", "tinyId": "14", "username": "alice@example.com"},
               "integrationId": "37c8f316", "integrationName": "sentinel"})
        .to_string()
        .into_bytes()
    };
    let c = act(HookProvider::Opsgenie, &body("Close", KEY));
    assert_eq!(c.kind, ActionKind::Resolve);
    assert_eq!(
        c.refs,
        [
            Ref::Id(ID.into()),
            ticket("opsgenie", "8418d193-2dab"),
            ticket("opsgenie", "14")
        ]
    );
    assert_eq!(c.by, "alice@example.com");
    assert_eq!(c.delivery_id, None);
    let a = act(HookProvider::Opsgenie, &body("Acknowledge", "custom-alias"));
    assert_eq!(a.kind, ActionKind::Acknowledge);
    assert_eq!(a.refs[0], ticket("opsgenie", "8418d193-2dab"));
    assert_eq!(
        ignored(HookProvider::Opsgenie, &body("AddNote", KEY)),
        "action `AddNote` is not acted on"
    );
    let mut own: serde_json::Value = serde_json::from_slice(&body("Acknowledge", KEY)).unwrap();
    own["source"] = json!({"name": "sentinel", "type": "API"});
    assert_eq!(
        ignored(HookProvider::Opsgenie, own.to_string().as_bytes()),
        "sentinel's own change (source `sentinel`)"
    );
}

fn slack_form(payload: &serde_json::Value) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

#[test]
fn slack_acts_on_its_own_buttons_only() {
    let payload = |action_id: &str| {
        json!({"type": "block_actions",
               "user": {"id": "U0001", "username": "alice", "name": "alice", "team_id": "T0001"},
               "response_url": "https://hooks.slack.com/actions/T0001/1/abc",
               "message": {"text": "incident", "blocks": []},
               "actions": [{"type": "button", "action_id": action_id, "value": ID, "block_id": SLACK_ACTIONS_BLOCK}]})
    };
    let a = act(HookProvider::Slack, &slack_form(&payload(SLACK_ACK_ACTION)));
    assert_eq!(a.kind, ActionKind::Acknowledge);
    assert_eq!(a.refs, [Ref::Id(ID.into())]);
    assert_eq!(a.by, "alice");
    let reply = a.slack.unwrap();
    assert_eq!(reply.mention, "<@U0001>");
    assert_eq!(
        reply.response_url,
        "https://hooks.slack.com/actions/T0001/1/abc"
    );
    let r = act(
        HookProvider::Slack,
        &slack_form(&payload(SLACK_RESOLVE_ACTION)),
    );
    assert_eq!(r.kind, ActionKind::Resolve);
    assert_eq!(
        ignored(HookProvider::Slack, &slack_form(&payload("someone_elses"))),
        "no sentinel button in the interaction"
    );
    assert_eq!(
        ignored(
            HookProvider::Slack,
            &slack_form(&json!({"type": "view_submission"}))
        ),
        "interaction type `view_submission` is not acted on"
    );
    assert!(intent(HookProvider::Slack, b"payload=%7Bnot").is_err());
    assert!(intent(HookProvider::Slack, b"other=1").is_err());
}

#[test]
fn servicenow_in_progress_acknowledges_and_resolved_or_closed_resolves() {
    let body = |state: serde_json::Value| {
        json!({"table": "incident", "sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0010001",
               "correlation_id": ID, "state": state, "close_code": "", "close_notes": "",
               "sys_updated_by": "carol", "sys_updated_on": "2026-01-15 09:05:00"})
        .to_string()
        .into_bytes()
    };
    let r = act(HookProvider::ServiceNow, &body(json!("6")));
    assert_eq!(r.kind, ActionKind::Resolve);
    assert_eq!(
        r.refs,
        [
            Ref::Id(ID.into()),
            ticket("servicenow", "9d385017c611228701d22104cc95c371"),
            ticket("servicenow", "INC0010001")
        ]
    );
    assert_eq!(r.by, "carol");
    assert_eq!(
        act(HookProvider::ServiceNow, &body(json!(7))).kind,
        ActionKind::Resolve
    );
    assert_eq!(
        act(HookProvider::ServiceNow, &body(json!("2"))).kind,
        ActionKind::Acknowledge
    );
    assert_eq!(
        ignored(HookProvider::ServiceNow, &body(json!("3"))),
        "state `3` is not acted on"
    );
    assert!(intent(HookProvider::ServiceNow, br#"{"number": "INC1"}"#).is_err());
}

#[test]
fn jira_acts_on_status_changes_by_category() {
    let body = |category: &str, field: &str| {
        json!({"webhookEvent": "jira:issue_updated",
               "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Dana Dev"},
               "issue": {"id": "10001", "key": "OPS-1",
                         "fields": {"labels": ["web-team", format!("sentinel-{ID}")],
                                    "status": {"name": "x", "statusCategory": {"key": category}}}},
               "changelog": {"items": [{"field": field, "fromString": "To Do", "toString": "x"}]}})
        .to_string()
        .into_bytes()
    };
    let r = act(HookProvider::Jira, &body("done", "status"));
    assert_eq!(r.kind, ActionKind::Resolve);
    assert_eq!(
        r.refs,
        [
            Ref::Id(ID.into()),
            ticket("jira", "OPS-1"),
            ticket("jira", "10001")
        ]
    );
    assert_eq!(r.by, "Dana Dev");
    assert_eq!(
        act(HookProvider::Jira, &body("indeterminate", "status")).kind,
        ActionKind::Acknowledge
    );
    assert_eq!(
        ignored(HookProvider::Jira, &body("new", "status")),
        "status category `new` is not acted on"
    );
    assert_eq!(
        ignored(HookProvider::Jira, &body("done", "priority")),
        "the status did not change"
    );
    assert_eq!(
        ignored(
            HookProvider::Jira,
            br#"{"webhookEvent": "comment_created"}"#
        ),
        "webhook event `comment_created` is not acted on"
    );
}

#[test]
fn a_missing_person_is_named_after_the_provider_and_long_names_are_cut() {
    let body = json!({"action": "Close", "alert": {"alias": KEY}}).to_string();
    assert_eq!(act(HookProvider::Opsgenie, body.as_bytes()).by, "opsgenie");
    let long = "x".repeat(500);
    let body = json!({"action": "Close", "alert": {"alias": KEY, "username": long}}).to_string();
    assert_eq!(act(HookProvider::Opsgenie, body.as_bytes()).by.len(), 200);
}
