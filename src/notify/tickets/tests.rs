use super::*;

#[test]
fn a_lookup_miss_is_trusted_once_the_create_in_doubt_is_older_than_the_lag() {
    let t = |s: i64| Timestamp::from_second(s).unwrap();
    let lag = Duration::from_secs(60);
    let check = |now: i64, sent: Option<i64>, expected: bool| {
        assert_eq!(may_create(t(now), sent, lag), expected, "{now} {sent:?}");
    };
    check(1000, None, true);
    check(1000, Some(1000), false);
    check(1059, Some(1000), false);
    check(1060, Some(1000), true);
    check(5000, Some(1000), true);
    // A clock that went back: still waits.
    check(900, Some(1000), false);
    assert!(may_create(t(1000), Some(1000), Duration::ZERO));
}

#[test]
fn provider_error_texts() {
    let check = |body: &str, expected: &str| {
        assert_eq!(error_text(body.as_bytes()), expected, "{body}");
    };
    check(
        r#"{"error":{"message":"Operation Failed","detail":"Data Policy Exception"},"status":"failure"}"#,
        "Operation Failed; Data Policy Exception",
    );
    check(
        r#"{"errorMessages":[],"errors":{"priority":"The priority selected is invalid."}}"#,
        "priority: The priority selected is invalid.",
    );
    check(
        r#"{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.1}"#,
        "Request body is not processable. Please check the errors.; message: Message can not be empty.",
    );
    check("gateway exploded", "gateway exploded");
}

#[test]
fn join_keeps_the_base_path_and_encodes_segments() {
    let check = |base: &str, segs: &[&str], expected: &str| {
        let b = url::Url::parse(base).unwrap();
        assert_eq!(join(&b, segs).as_str(), expected);
    };
    check(
        "https://api.opsgenie.com",
        &["v2", "alerts", "sentinel/web/inc-1"],
        "https://api.opsgenie.com/v2/alerts/sentinel%2Fweb%2Finc-1",
    );
    check(
        "https://api.atlassian.com/jsm/ops/integration/",
        &["v2", "alerts"],
        "https://api.atlassian.com/jsm/ops/integration/v2/alerts",
    );
    check(
        "https://acme.service-now.com",
        &["api", "now", "table", "incident"],
        "https://acme.service-now.com/api/now/table/incident",
    );
}

#[test]
fn the_book_lists_only_tickets_with_a_key_per_incident() {
    let row = |inc: &str, n: &str, key: Option<&str>| TicketRow {
        incident_id: inc.into(),
        notifier: n.into(),
        provider: "jira".into(),
        lookup: format!("sentinel-{inc}"),
        key: key.map(String::from),
        ext_id: None,
        url: key.map(|k| format!("https://j/browse/{k}")),
        create_sent_at: None,
        updated_at: 0,
    };
    let b = Book::default();
    b.put(row("inc-a", "jira", Some("OPS-1")));
    b.put(row("inc-a", "snow", None));
    b.put(row("inc-ab", "jira", Some("OPS-2")));
    assert_eq!(
        b.refs("inc-a"),
        vec![TicketRef {
            notifier: "jira".into(),
            key: "OPS-1".into(),
            url: Some("https://j/browse/OPS-1".into()),
        }]
    );
    assert_eq!(b.refs("inc-b"), Vec::new());
}

#[test]
fn the_book_finds_an_incident_by_any_reference_of_one_provider() {
    let row = |inc: &str, provider: &str, key: &str, ext_id: &str, updated_at: i64| TicketRow {
        incident_id: inc.into(),
        notifier: provider.into(),
        provider: provider.into(),
        lookup: inc.into(),
        key: Some(key.into()),
        ext_id: Some(ext_id.into()),
        url: None,
        create_sent_at: None,
        updated_at,
    };
    let b = Book::default();
    b.put(row("inc-a", "servicenow", "INC0010001", "9d38", 10));
    b.put(row("inc-b", "jira", "OPS-1", "10001", 10));
    let find = |p: &str, r: &str| b.find(p, r);
    assert_eq!(find("servicenow", "9d38").as_deref(), Some("inc-a"));
    assert_eq!(find("servicenow", "INC0010001").as_deref(), Some("inc-a"));
    assert_eq!(find("servicenow", "inc-a").as_deref(), Some("inc-a"));
    assert_eq!(find("jira", "OPS-1").as_deref(), Some("inc-b"));
    // Another provider's reference, or none at all.
    assert_eq!(find("jira", "INC0010001"), None);
    assert_eq!(find("opsgenie", "9d38"), None);
    // A key reused by a later record (a recreated instance): the newest wins.
    b.put(row("inc-c", "jira", "OPS-1", "10002", 20));
    assert_eq!(find("jira", "OPS-1").as_deref(), Some("inc-c"));
}
