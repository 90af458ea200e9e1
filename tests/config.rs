//! Config loading end to end: YAML text in, typed config or exact problem
//! lines out.

use std::time::Duration;

use sentinel::config::{
    self, ConfigError, NotifierKind, ProbeSpec, RecordType, SloWindow, UrlSource,
};

/// Parse `yaml` as file `t.yaml`; `expected` empty means it must be valid,
/// otherwise the rendered problems must be exactly these lines.
fn check(yaml: &str, expected: &[&str]) {
    match config::parse_str(yaml, "t.yaml") {
        Ok(_) => assert!(
            expected.is_empty(),
            "expected problems {expected:#?}, got a valid config for:\n{yaml}"
        ),
        Err(ConfigError::Invalid(problems)) => {
            let got: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, expected, "for:\n{yaml}");
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn dump() {
    for (yaml, n) in [
        (
            r#"services:
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
"#,
            "dup_service",
        ),
        (
            r#"services:
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
      - name: login
        tcp: { host: ldap.example.com, port: 636 }
"#,
            "dup_check",
        ),
        (
            r#"services:
  - name: identity
    checks:
      - name: login
        interval: 5s
        timeout: 10s
        http: { url: https://sso.example.com/health }
"#,
            "timeout_long",
        ),
        (
            r#"services:
  - name: identity
    checks:
      - name: a
        http: { url: ftp://sso.example.com/health }
      - name: b
        http: { url: sso.example.com/health }
      - name: c
        http: { url: "http://" }
"#,
            "urls",
        ),
        (
            r#"defaults:
  interval: 15
  timeout: 5sec
services:
  - name: identity
    checks:
      - name: a
        interval: 0s
        http: { url: https://sso.example.com/health }
"#,
            "durations",
        ),
        (
            r#"services:
  - name: identity
    checks:
      - name: a
        http: { url: https://sso.example.com/health }
    slo:
      objective: 100
      window: 30x
      latency: { threshold: 300ms, objective: 0 }
"#,
            "objective",
        ),
        (
            r#"services:
  - name: identity
    checks:
      - name: none
        interval: 5s
      - name: two
        http: { url: https://sso.example.com/health }
        tcp: { host: ldap.example.com, port: 636 }
"#,
            "probes",
        ),
        (
            r#"notifiers:
  - name: tickets
    type: webhook
    url: http://127.0.0.1:8080/hooks
maintenance:
  - services: [identiy, billing]
    start: 2026-12-01T23:00:00Z
    end: 2026-12-01T22:00:00Z
  - services: [identity]
    start: tomorrow
    end: 2026-12-01T22:00:00Z
services:
  - name: identity
    checks:
      - name: a
        http: { url: https://sso.example.com/health }
    incident:
      notify: [ticket, pager]
"#,
            "refs",
        ),
        (
            r#"server:
  listen: 9464
services:
  - name: identity
    checks:
      - name: a
        http:
          url: https://sso.example.com/health
          expect: { status: [200, 700], body_regex: "(ok" }
      - name: b
        dns: { name: sso.example.com, record: AAA, server: dns.local }
      - name: c
        dns: { name: sso.example.com, record: aaaa, server: "10.0.0.2" }
"#,
            "misc",
        ),
        (
            r#"notifiers:
  - name: oncall
    type: pagerduty
    url: https://events.pagerduty.com/v2/enqueue
  - name: chat
    type: slack
  - name: x
    type: webhok
    url: http://127.0.0.1/
  - name: y
    type: webhook
    url_env: "not a var"
services:
  - name: identity
    checks:
      - name: a
        http: { url: https://sso.example.com/health }
"#,
            "notifiers",
        ),
        (
            r#"services:
  - name: "bad name"
    checks: []
  - name: ""
    checks:
      - name: "a/b"
        tls: { host: sso.example.com }
  - name: ok
"#,
            "names",
        ),
        (
            r#"response_targets:
  P1: { acknowledge: 10m, restor: 2h }
services:
  - name: identity
    checks:
      - name: a
        http: { url: https://sso.example.com/health }
"#,
            "rt",
        ),
        (
            r#"response_targets:
  P1: { acknowledge: 10m }
services:
  - name: identity
    checks:
      - name: a
        tcp: { host: "https://x", port: 70000, cert_min_days: 3 }
"#,
            "rt2",
        ),
        (r#""#, "empty"),
        (
            r#"services:
  - name: identity
    tier: high
"#,
            "type",
        ),
    ] {
        eprintln!("== {n}");
        match config::parse_str(yaml, "t.yaml") {
            Ok(c) => eprintln!("OK {c:#?}"),
            Err(e) => eprintln!("{e}"),
        }
    }
}
