//! Wire formats of the four notifiers, asserted as exact JSON, and the
//! Standard Webhooks signature checked by an independent implementation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::support::webhooks::verify;
use sentinel::config::{IncidentPolicy, Notifier, NotifierKind, UrlSource};
use sentinel::incident::{Ack, Change, ServiceIncidents};
use sentinel::notify::webhook::SigningKey;
use sentinel::notify::{Event, EventContext, NotifyError, PreparedRequest, Secrets, build_request};

const BASE: i64 = 1_800_000_000;
const INC: &str = "inc-identity-1800000050-1";

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(BASE + s).unwrap()
}

fn ctx() -> EventContext {
    EventContext {
        availability_ratio: Some(0.9984),
        error_budget_remaining_ratio: Some(0.25),
        api_base: "http://sentinel.test:9464/".to_string(),
    }
}

/// opened (t50, impact t30), acknowledged by bob (t70), resolved (t100, restored t90).
fn lifecycle() -> Vec<Change> {
    let policy = IncidentPolicy {
        open_after: 3,
        resolve_after: 2,
        burn_rate_alerts: true,
        severity: "P1".into(),
        notify: vec![],
    };
    let mut m = ServiceIncidents::new("identity", &policy, None, 0);
    let mut out = Vec::new();
    for s in [30, 40, 50] {
        out.extend(m.on_run(t(s), "login", false, "status 503 not in [200]", false));
    }
    let Ack::Changed(c) = m.ack(t(70), INC, "bob", Some("on it")).unwrap() else {
        panic!("ack must change");
    };
    out.push(c);
    out.extend(m.on_run(t(90), "login", true, "", false));
    out.extend(m.on_run(t(100), "login", true, "", false));
    assert_eq!(out.len(), 3);
    out
}

fn event(i: usize) -> Event {
    let c = &lifecycle()[i];
    let at = [t(50), t(70), t(100)][i];
    Event::from_change(c, at, &ctx()).unwrap()
}

fn notifier(kind: NotifierKind) -> Notifier {
    Notifier {
        name: "n".into(),
        kind,
        max_age: Duration::from_secs(86_400),
        timeout: Duration::from_secs(10),
    }
}

fn inline(u: &str) -> UrlSource {
    UrlSource::Inline(url::Url::parse(u).unwrap())
}

fn body(req: &PreparedRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

fn header<'a>(req: &'a PreparedRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn webhook_body_is_the_spec_shape() {
    let req = build_request(
        &notifier(NotifierKind::Webhook {
            url: inline("http://127.0.0.1:8080/hooks"),
            secret_env: None,
        }),
        &event(0),
        &Secrets::default(),
        t(55),
    )
    .unwrap();
    assert_eq!(req.url.as_str(), "http://127.0.0.1:8080/hooks");
    assert_eq!(
        body(&req),
        json!({
            "id": format!("evt-{INC}-1"),
            "type": "incident.opened",
            "occurred_at": "2027-01-15T08:00:50Z",
            "incident": {
                "id": INC,
                "dedup_key": format!("sentinel/identity/{INC}"),
                "service": "identity",
                "severity": "P1",
                "title": "identity is failing",
                "reason": "check `login` failed 3 times in a row: status 503 not in [200]",
                "state": "open",
                "impact_started_at": "2027-01-15T08:00:30Z",
                "opened_at": "2027-01-15T08:00:50Z",
                "acknowledged_at": null,
                "restored_at": null,
                "resolved_at": null,
                "availability_ratio": 0.9984,
                "error_budget_remaining_ratio": 0.25,
                "links": {
                    "ack": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/ack"),
                    "resolve": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/resolve"),
                },
            },
        })
    );
    assert_eq!(
        header(&req, "webhook-id"),
        Some(format!("evt-{INC}-1").as_str())
    );
    assert_eq!(
        header(&req, "webhook-timestamp"),
        Some((BASE + 55).to_string().as_str())
    );
    assert_eq!(header(&req, "webhook-signature"), None);
    assert_eq!(header(&req, "content-type"), Some("application/json"));
}

#[test]
fn webhook_signature_verifies_with_an_independent_implementation() {
    let secret = format!("whsec_{}", STANDARD.encode(b"sentinel-test-key-0123456789"));
    let secrets = Secrets::from_pairs([("HOOK_SECRET", secret.clone())]);
    let n = notifier(NotifierKind::Webhook {
        url: inline("http://127.0.0.1:8080/hooks"),
        secret_env: Some("HOOK_SECRET".into()),
    });
    for (i, ty) in [
        (0, "incident.opened"),
        (1, "incident.acknowledged"),
        (2, "incident.resolved"),
    ] {
        let ev = event(i);
        let req = build_request(&n, &ev, &secrets, t(200)).unwrap();
        assert_eq!(body(&req)["type"], ty);
        let sig = header(&req, "webhook-signature").unwrap();
        assert!(sig.starts_with("v1,"), "{sig}");
        let ts = header(&req, "webhook-timestamp").unwrap();
        assert_eq!(ts, "1800000200");
        assert!(
            verify(&secret, &ev.id, ts, &req.body, sig),
            "signature {sig} did not verify"
        );
        // Tampering with the body breaks it.
        let mut tampered = req.body.clone();
        tampered.push(b' ');
        assert!(!verify(&secret, &ev.id, ts, &tampered, sig));
    }
    let ack = body(&build_request(&n, &event(1), &secrets, t(200)).unwrap());
    assert_eq!(ack["incident"]["acknowledged_at"], "2027-01-15T08:01:10Z");
    assert_eq!(ack["incident"]["acknowledged_by"], "bob");
    let res = body(&build_request(&n, &event(2), &secrets, t(200)).unwrap());
    assert_eq!(res["incident"]["state"], "resolved");
    assert_eq!(res["incident"]["restored_at"], "2027-01-15T08:01:30Z");
    assert_eq!(res["incident"]["resolved_at"], "2027-01-15T08:01:40Z");
    assert_eq!(res["incident"]["resolved_by"], "auto");
}

/// The test vector published with the Standard Webhooks reference libraries
/// (standard-webhooks/standard-webhooks, `libraries/javascript/src/webhook.test.ts`,
/// "sign function works"): the harness's verifier accepts it, and sentinel's
/// signing key produces exactly it.
#[test]
fn standard_webhooks_spec_test_vector() {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    assert!(verify(SECRET, MSG_ID, "1614265330", PAYLOAD, EXPECTED));
    // One of several signatures, as during a key rotation.
    let rotated = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {EXPECTED}");
    assert!(verify(SECRET, MSG_ID, "1614265330", PAYLOAD, &rotated));
    // Any change to what is signed breaks it.
    assert!(!verify(SECRET, MSG_ID, "1614265331", PAYLOAD, EXPECTED));
    assert!(!verify(
        SECRET,
        "msg_other",
        "1614265330",
        PAYLOAD,
        EXPECTED
    ));
    assert!(!verify(
        SECRET,
        MSG_ID,
        "1614265330",
        br#"{"test":2432232314}"#,
        EXPECTED
    ));
    assert!(!verify(
        SECRET,
        MSG_ID,
        "1614265330",
        PAYLOAD,
        &EXPECTED.replacen("v1,", "v2,", 1)
    ));

    let key = SigningKey::parse("spec", "SPEC_SECRET", SECRET).unwrap();
    assert_eq!(key.sign(MSG_ID, TIMESTAMP, PAYLOAD), EXPECTED);
}

#[test]
fn a_secret_without_prefix_is_used_as_raw_bytes() {
    let secrets = Secrets::from_pairs([("HOOK_SECRET", "plain-shared-secret")]);
    let n = notifier(NotifierKind::Webhook {
        url: inline("http://127.0.0.1:8080/hooks"),
        secret_env: Some("HOOK_SECRET".into()),
    });
    let ev = event(0);
    let req = build_request(&n, &ev, &secrets, t(60)).unwrap();
    let as_whsec = format!("whsec_{}", STANDARD.encode(b"plain-shared-secret"));
    let ts = header(&req, "webhook-timestamp").unwrap();
    let sig = header(&req, "webhook-signature").unwrap();
    assert!(verify(&as_whsec, &ev.id, ts, &req.body, sig));
}

#[test]
fn missing_or_bad_secrets_are_errors_naming_the_variable_only() {
    let n = notifier(NotifierKind::Webhook {
        url: inline("http://127.0.0.1:8080/hooks"),
        secret_env: Some("HOOK_SECRET".into()),
    });
    let err = build_request(&n, &event(0), &Secrets::default(), t(60)).unwrap_err();
    assert!(matches!(err, NotifyError::MissingSecret { .. }));
    assert_eq!(
        err.to_string(),
        "notifier `n`: environment variable `HOOK_SECRET` is not set or empty"
    );
    let bad = Secrets::from_pairs([("HOOK_SECRET", "whsec_***not base64***")]);
    let err = build_request(&n, &event(0), &bad, t(60)).unwrap_err();
    assert!(!err.to_string().contains("not base64***"), "{err}");
    let slack = notifier(NotifierKind::Slack {
        url: UrlSource::Env("SLACK_URL".into()),
        buttons: false,
    });
    let err = build_request(
        &slack,
        &event(0),
        &Secrets::from_pairs([("SLACK_URL", "::nope")]),
        t(60),
    )
    .unwrap_err();
    assert!(matches!(err, NotifyError::BadUrl { .. }), "{err}");
}

#[test]
fn pagerduty_events_v2_shapes() {
    let n = notifier(NotifierKind::PagerDuty {
        url: inline("https://events.pagerduty.com/v2/enqueue"),
        routing_key_env: "PD_KEY".into(),
    });
    let secrets = Secrets::from_pairs([("PD_KEY", "R0UT1NG")]);
    let trigger = build_request(&n, &event(0), &secrets, t(60)).unwrap();
    assert_eq!(
        trigger.url.as_str(),
        "https://events.pagerduty.com/v2/enqueue"
    );
    assert_eq!(
        body(&trigger),
        json!({
            "routing_key": "R0UT1NG",
            "event_action": "trigger",
            "dedup_key": format!("sentinel/identity/{INC}"),
            "payload": {
                "summary": "[P1] identity is failing: check `login` failed 3 times in a row: status 503 not in [200]",
                "source": "sentinel",
                "severity": "critical",
                "timestamp": "2027-01-15T08:00:30Z",
                "component": "identity",
                "custom_details": {
                    "incident_id": INC,
                    "event_id": format!("evt-{INC}-1"),
                    "severity": "P1",
                    "reason": "check `login` failed 3 times in a row: status 503 not in [200]",
                    "impact_started_at": "2027-01-15T08:00:30Z",
                    "opened_at": "2027-01-15T08:00:50Z",
                    "availability_ratio": 0.9984,
                    "error_budget_remaining_ratio": 0.25,
                },
            },
            "links": [
                {"href": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/ack"), "text": "Acknowledge in sentinel"},
                {"href": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/resolve"), "text": "Resolve in sentinel"},
            ],
        })
    );
    for (i, action) in [(1, "acknowledge"), (2, "resolve")] {
        let req = build_request(&n, &event(i), &secrets, t(60)).unwrap();
        assert_eq!(
            body(&req),
            json!({
                "routing_key": "R0UT1NG",
                "event_action": action,
                "dedup_key": format!("sentinel/identity/{INC}"),
            })
        );
    }
    fn check(sev: &str, expected: &str) {
        assert_eq!(
            sentinel::notify::pagerduty::severity(sev),
            expected,
            "{sev}"
        );
    }
    check("P1", "critical");
    check("P2", "error");
    check("P3", "warning");
    check("P4", "info");
    check("other", "error");
}

#[test]
fn slack_message_shape() {
    let n = notifier(NotifierKind::Slack {
        url: UrlSource::Env("SLACK_URL".into()),
        buttons: false,
    });
    let secrets =
        Secrets::from_pairs([("SLACK_URL", "https://hooks.slack.com/services/T0/B0/XyZ")]);
    let req = build_request(&n, &event(1), &secrets, t(80)).unwrap();
    assert_eq!(
        req.url.as_str(),
        "https://hooks.slack.com/services/T0/B0/XyZ"
    );
    assert_eq!(
        body(&req),
        json!({
            "text": "[P1] Incident acknowledged: identity is failing — check `login` failed 3 times in a row: status 503 not in [200]",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "[P1] Incident acknowledged: identity is failing"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Service:*\nidentity"},
                    {"type": "mrkdwn", "text": "*Severity:*\nP1"},
                    {"type": "mrkdwn", "text": "*Availability:*\n99.8%"},
                    {"type": "mrkdwn", "text": "*Error budget left:*\n25.0%"},
                ]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Reason:* check `login` failed 3 times in a row: status 503 not in [200]\n*Acknowledged by:* bob"}},
                {"type": "context", "elements": [
                    {"type": "mrkdwn", "text": format!(
                        "<http://sentinel.test:9464/api/v1/incidents/{INC}/ack|Acknowledge> · <http://sentinel.test:9464/api/v1/incidents/{INC}/resolve|Resolve> · `{INC}`"
                    )},
                ]},
            ],
        })
    );
}

#[test]
fn alertmanager_alert_shapes_firing_and_resolved() {
    let n = notifier(NotifierKind::Alertmanager {
        url: inline("http://127.0.0.1:9093"),
        repost_every: Duration::from_secs(300),
    });
    let open = build_request(&n, &event(0), &Secrets::default(), t(60)).unwrap();
    assert_eq!(open.url.as_str(), "http://127.0.0.1:9093/api/v2/alerts");
    let alert = |ends_at: &str| {
        json!([{
            "labels": {
                "alertname": "SentinelIncident",
                "service": "identity",
                "severity": "P1",
                "incident_id": INC,
            },
            "annotations": {
                "summary": "identity is failing",
                "description": "check `login` failed 3 times in a row: status 503 not in [200]",
                "dedup_key": format!("sentinel/identity/{INC}"),
                "ack_url": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/ack"),
                "resolve_url": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/resolve"),
            },
            "startsAt": "2027-01-15T08:00:30Z",
            "endsAt": ends_at,
            "generatorURL": format!("http://sentinel.test:9464/api/v1/incidents/{INC}/ack"),
        }])
    };
    // Open: endsAt four re-post periods (4 × 5m) after sending.
    assert_eq!(body(&open), alert("2027-01-15T08:21:00Z"));
    // Resolved: endsAt = resolved_at.
    let resolved = build_request(&n, &event(2), &Secrets::default(), t(500)).unwrap();
    assert_eq!(body(&resolved), alert("2027-01-15T08:01:40Z"));
    // A base URL with a path keeps it.
    let n = notifier(NotifierKind::Alertmanager {
        url: inline("http://127.0.0.1:9093/am/"),
        repost_every: Duration::from_secs(300),
    });
    let req = build_request(&n, &event(0), &Secrets::default(), t(60)).unwrap();
    assert_eq!(req.url.as_str(), "http://127.0.0.1:9093/am/api/v2/alerts");
}

#[test]
fn events_round_trip_through_the_outbox_payload() {
    for i in 0..3 {
        let ev = event(i);
        let payload = ev.to_payload().unwrap();
        assert_eq!(Event::from_payload(&payload).unwrap(), ev);
    }
}

#[test]
fn escalation_retriggers_pagerduty_and_moves_the_alertmanager_alert() {
    let policy = IncidentPolicy {
        open_after: 3,
        resolve_after: 2,
        burn_rate_alerts: true,
        severity: "P1".into(),
        notify: vec![],
    };
    let mut m = ServiceIncidents::new("identity", &policy, None, 0);
    m.on_alerts(t(0), None, Some("burn rate 1d 3.5 > 3"), false);
    let esc = m
        .on_alerts(t(60), Some("burn rate 6h 7.0 > 6"), None, false)
        .remove(0);
    let ev = Event::from_change(&esc, t(60), &ctx()).unwrap();
    assert_eq!(ev.previous_severity.as_deref(), Some("P2"));
    let inc = format!("inc-identity-{BASE}-1");

    let pd = notifier(NotifierKind::PagerDuty {
        url: inline("https://events.pagerduty.com/v2/enqueue"),
        routing_key_env: "PD_KEY".into(),
    });
    let req = build_request(&pd, &ev, &Secrets::from_pairs([("PD_KEY", "k")]), t(61)).unwrap();
    let b = body(&req);
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], format!("sentinel/identity/{inc}"));
    assert_eq!(b["payload"]["severity"], "critical");
    assert_eq!(
        b["payload"]["summary"],
        "[P1] identity is failing: burn rate 6h 7.0 > 6 (page)"
    );

    let am = notifier(NotifierKind::Alertmanager {
        url: inline("http://127.0.0.1:9093"),
        repost_every: Duration::from_secs(300),
    });
    let b = body(&build_request(&am, &ev, &Secrets::default(), t(61)).unwrap());
    let alerts = b.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["labels"]["severity"], "P1");
    assert_eq!(alerts[0]["endsAt"], "2027-01-15T08:21:01Z");
    assert_eq!(alerts[1]["labels"]["severity"], "P2");
    assert_eq!(alerts[1]["endsAt"], "2027-01-15T08:01:00Z");

    let hook = notifier(NotifierKind::Webhook {
        url: inline("http://127.0.0.1:8080/hooks"),
        secret_env: None,
    });
    let b = body(&build_request(&hook, &ev, &Secrets::default(), t(61)).unwrap());
    assert_eq!(b["type"], "incident.escalated");
    assert_eq!(b["id"], format!("evt-{inc}-2"));
    assert_eq!(b["previous_severity"], "P2");
    assert_eq!(
        b["escalation"],
        json!({"cause": "severity", "reason": "severity raised from P2 to P1 by a page-level trigger"})
    );
    assert_eq!(b["incident"]["severity"], "P1");
}

#[test]
fn the_alertmanager_repost_pushes_open_alerts_out_and_never_revives_an_ended_one() {
    use sentinel::notify::alertmanager;
    // The acknowledged incident's alert, re-posted at t(1000) with 4 × 5s
    // ahead; the resolved one is left out.
    let b = alertmanager::repost(&[event(1), event(2)], t(1000), Duration::from_secs(20));
    let alerts = b.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{b}");
    assert_eq!(alerts[0]["labels"]["incident_id"], INC);
    assert_eq!(alerts[0]["labels"]["severity"], "P1");
    assert_eq!(alerts[0]["startsAt"], "2027-01-15T08:00:30Z");
    assert_eq!(alerts[0]["endsAt"], "2027-01-15T08:17:00Z");
    // The same alert as the event's own request at that time: Alertmanager
    // sees one alert, kept alive.
    let am = notifier(NotifierKind::Alertmanager {
        url: inline("http://127.0.0.1:9093"),
        repost_every: Duration::from_secs(5),
    });
    let own = body(&build_request(&am, &event(1), &Secrets::default(), t(1000)).unwrap());
    assert_eq!(b, own);
    assert_eq!(
        alertmanager::repost(&[event(2)], t(1000), Duration::from_secs(20)),
        json!([])
    );
}
