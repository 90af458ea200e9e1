//! Config loading end to end: YAML text in, typed config or exact problem
//! lines out.

use std::path::Path;
use std::time::Duration;

use sentinel::config::{
    self, ConfigError, NotifierKind, ProbeSpec, RecordType, SloWindow, UrlSource,
};

/// Parse `yaml` as file `t.yaml`; `expected` empty means it must be valid,
/// otherwise the rendered problems must be exactly these lines, in order.
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

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn unknown_key_with_hint() {
    check(
        r#"services:
  - name: a
    checks:
      - name: x
        intervl: 5s
        http: { url: http://x }
"#,
        &[
            "t.yaml:5:9: services[0].checks[0].intervl: unknown key `intervl` — did you mean `interval`?",
        ],
    );
    check(
        r#"servr:
  listen: 127.0.0.1:1
"#,
        &["t.yaml:1:1: servr: unknown key `servr` — did you mean `server`?"],
    );
    check(
        r#"services:
  - name: a
    frobnicate: 1
"#,
        &[
            "t.yaml:3:5: services[0].frobnicate: unknown key `frobnicate` — valid keys here: `name`, `description`, `owner`, `tier`, `checks`, `slo`, `incident`",
        ],
    );
}

#[test]
fn response_targets_reject_unknown_keys() {
    check(
        r#"response_targets:
  P1: { acknowledge: 10m, restor: 2h }
services:
  - name: identity
    checks:
      - name: a
        http: { url: https://sso.example.com/health }
"#,
        &[
            "t.yaml:2:27: response_targets.P1.restor: unknown key `restor` — did you mean `restore`?",
        ],
    );
}

#[test]
fn type_errors_name_what_was_found() {
    check(
        r#"services:
  - name: identity
    tier: high
"#,
        &["t.yaml:3:11: services[0].tier: expected a whole number 0..=255, found `high`"],
    );
}

#[test]
fn duplicate_names() {
    check(
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
        &[
            "t.yaml:6:11: services[1].name: duplicate service name `identity` (first defined on line 2)",
        ],
    );
    check(
        r#"services:
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
      - name: login
        tcp: { host: ldap.example.com, port: 636 }
"#,
        &[
            "t.yaml:6:15: services[0].checks[1].name: duplicate check name `login` in service `identity` (first defined on line 4)",
        ],
    );
}

#[test]
fn timeouts_against_intervals() {
    check(
        r#"services:
  - name: identity
    checks:
      - name: login
        interval: 5s
        timeout: 10s
        http: { url: https://sso.example.com/health }
"#,
        &["t.yaml:6:18: services[0].checks[0].timeout: timeout 10s is longer than interval 5s"],
    );
    check(
        r#"defaults:
  interval: 5s
  timeout: 10s
services:
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
"#,
        &["t.yaml:3:12: defaults.timeout: timeout 10s is longer than interval 5s"],
    );
}

#[test]
fn default_timeout_gives_way_to_a_short_interval() {
    let c = config::parse_str(
        r#"services:
  - name: identity
    checks:
      - name: fast
        interval: 2s
        http: { url: https://sso.example.com/health }
      - name: slow
        interval: 1m
        http: { url: https://sso.example.com/health }
"#,
        "t.yaml",
    )
    .unwrap();
    let checks = &c.services[0].checks;
    assert_eq!(
        (checks[0].interval, checks[0].timeout),
        (ms(2_000), ms(2_000))
    );
    assert_eq!(
        (checks[1].interval, checks[1].timeout),
        (ms(60_000), ms(5_000))
    );
}

#[test]
fn invalid_urls() {
    check(
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
        &[
            "t.yaml:5:22: services[0].checks[0].http.url: invalid URL `ftp://sso.example.com/health`: scheme must be http or https, not `ftp`",
            "t.yaml:7:22: services[0].checks[1].http.url: invalid URL `sso.example.com/health`: missing scheme — write `https://sso.example.com/health`",
            "t.yaml:9:22: services[0].checks[2].http.url: invalid URL `http://`: empty host",
        ],
    );
}

#[test]
fn bad_durations() {
    check(
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
        &[
            "t.yaml:2:13: defaults.interval: invalid duration `15`: missing unit; write e.g. `15s` (units: ms, s, m, h, d, w)",
            "t.yaml:3:12: defaults.timeout: invalid duration `5sec`: unknown unit `sec` (units: ms, s, m, h, d, w)",
            "t.yaml:8:19: services[0].checks[0].interval: interval 0s is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
        ],
    );
}

#[test]
fn slo_objectives_are_percent_in_range() {
    check(
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
        &[
            "t.yaml:7:18: services[0].slo.objective: objective 100 is out of range: it is a percent, greater than 0 and at most 99.999 — e.g. `99.9`",
            "t.yaml:8:15: services[0].slo.window: invalid duration `30x`: unknown unit `x` (units: ms, s, m, h, d, w)",
            "t.yaml:9:47: services[0].slo.latency.objective: objective 0 is out of range: it is a percent, greater than 0 and at most 99.999 — e.g. `99.9`",
        ],
    );
}

#[test]
fn exactly_one_probe_kind() {
    check(
        r#"services:
  - name: identity
    checks:
      - name: none
        interval: 5s
      - name: two
        http: { url: https://sso.example.com/health }
        tcp: { host: ldap.example.com, port: 636 }
"#,
        &[
            "t.yaml:4:9: services[0].checks[0]: check has no probe — give exactly one of `http`, `tcp`, `dns`, `tls`",
            "t.yaml:6:9: services[0].checks[1]: check has 2 probes (`http`, `tcp`) — give exactly one of `http`, `tcp`, `dns`, `tls`",
        ],
    );
}

#[test]
fn references_and_maintenance_times() {
    check(
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
        &[
            "t.yaml:6:16: maintenance[0].services[0]: unknown service `identiy` in maintenance — did you mean `identity`?",
            "t.yaml:6:25: maintenance[0].services[1]: unknown service `billing` in maintenance",
            "t.yaml:8:10: maintenance[0].end: maintenance end 2026-12-01T22:00:00Z is not after its start 2026-12-01T23:00:00Z",
            "t.yaml:10:12: maintenance[1].start: invalid time `tomorrow`: expected RFC 3339 with a UTC offset — e.g. `2026-12-01T22:00:00Z`",
            "t.yaml:18:16: services[0].incident.notify[0]: unknown notifier `ticket` in `notify` — did you mean `tickets`?",
            "t.yaml:18:24: services[0].incident.notify[1]: unknown notifier `pager` in `notify` — defined notifiers: `tickets`",
        ],
    );
}

#[test]
fn listen_status_regex_dns() {
    check(
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
        &[
            "t.yaml:2:11: server.listen: invalid listen address `9464`: expected IP:PORT — e.g. `127.0.0.1:9464`, `0.0.0.0:9464` or `[::]:9464`",
            "t.yaml:9:29: services[0].checks[0].http.expect.status: status code 700 is out of range 100..=599",
            "t.yaml:9:53: services[0].checks[0].http.expect.body_regex: invalid regex `(ok`: unclosed group",
            "t.yaml:11:47: services[0].checks[1].dns.record: unknown record type `AAA` — one of A, AAAA, CNAME, MX, TXT, NS, SRV, PTR, SOA",
            "t.yaml:11:60: services[0].checks[1].dns.server: invalid DNS server `dns.local`: expected IP or IP:PORT — e.g. `10.0.0.2:53` or `10.0.0.2` (port 53)",
        ],
    );
}

#[test]
fn notifier_requirements() {
    check(
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
        &[
            "t.yaml:2:5: notifiers[0].routing_key_env: missing required key `routing_key_env` — pagerduty notifiers need the environment variable holding the routing key",
            "t.yaml:5:5: notifiers[1].url: missing required key `url` (or `url_env`) — use `url_env` when the URL embeds a secret",
            "t.yaml:8:11: notifiers[2].type: unknown notifier type `webhok` — did you mean `webhook`?",
            "t.yaml:12:14: notifiers[3].url_env: `not a var` is not an environment variable name — keys ending in `_env` name a variable, e.g. `PD_ROUTING_KEY`; never put the secret itself here",
        ],
    );
}

#[test]
fn names_and_empty_services() {
    check(
        r#"services:
  - name: "bad name"
    checks: []
  - name: ""
    checks:
      - name: "a/b"
        tls: { host: sso.example.com }
  - name: ok
"#,
        &[
            "t.yaml:2:11: services[0].name: name `bad name` may only contain letters, digits, `_`, `.` and `-` — names become metric labels and URL path segments",
            "t.yaml:3:13: services[0].checks: service `bad name` has no checks — add at least one check (`http`, `tcp`, `dns` or `tls`)",
            "t.yaml:4:11: services[1].name: `name` is empty",
            "t.yaml:6:15: services[1].checks[0].name: name `a/b` may only contain letters, digits, `_`, `.` and `-` — names become metric labels and URL path segments",
            "t.yaml:8:5: services[2].checks: service `ok` has no checks — add at least one check (`http`, `tcp`, `dns` or `tls`)",
        ],
    );
    check(
        "",
        &[
            "t.yaml:1:1: services: no services configured — add a `services:` list with at least one service and check",
        ],
    );
}

#[test]
fn tcp_and_missing_target_keys() {
    check(
        r#"response_targets:
  P1: { acknowledge: 10m }
services:
  - name: identity
    checks:
      - name: a
        tcp: { host: "https://x", port: 70000, cert_min_days: 3 }
"#,
        &[
            "t.yaml:2:7: response_targets.P1.restore: missing required key `restore`",
            "t.yaml:7:22: services[0].checks[0].tcp.host: invalid host `https://x`: give a bare host name or IP — no scheme, port or path; the port goes in `port`",
            "t.yaml:7:41: services[0].checks[0].tcp.port: port 70000 is out of range 1..=65535",
            "t.yaml:7:63: services[0].checks[0].tcp.cert_min_days: `cert_min_days` needs `tls: true`",
        ],
    );
}

#[test]
fn invalid_display_lists_every_problem_then_the_count() {
    let err = config::parse_str(
        "services:\n  - name: a\n    checks: []\n  - name: a\n    checks: []\n",
        "c.yaml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.yaml:3:13: services[0].checks: service `a` has no checks — add at least one check (`http`, `tcp`, `dns` or `tls`)\n\
         c.yaml:4:11: services[1].name: duplicate service name `a` (first defined on line 2)\n\
         c.yaml:5:13: services[1].checks: service `a` has no checks — add at least one check (`http`, `tcp`, `dns` or `tls`)\n\
         3 problem(s) found"
    );
    assert_eq!(err.problems().len(), 3);
}

#[test]
fn load_reports_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yaml");
    match config::load(&path) {
        Err(ConfigError::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io error, got {other:?}"),
    }
}

#[test]
fn load_names_the_file_in_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, "servr: {}\n").unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(
        err.problems()[0].to_string(),
        format!(
            "{}:1:1: servr: unknown key `servr` — did you mean `server`?",
            path.display()
        )
    );
}

#[test]
fn defaults_apply() {
    let c = config::parse_str(
        r#"services:
  - name: identity
    checks:
      - name: login
        http: { url: https://sso.example.com/health }
      - name: cert
        tls: { host: sso.example.com }
      - name: dns
        dns: { name: sso.example.com, server: "10.0.0.2" }
    slo: { objective: 99.5 }
"#,
        "t.yaml",
    )
    .unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.server.api_token_env, None);
    assert_eq!(c.server.max_concurrency, 1024);
    assert_eq!(c.storage.path, Path::new("data/sentinel.db"));
    assert_eq!(c.storage.minute_retention, Duration::from_secs(7 * 3600));
    assert_eq!(c.storage.retention, Duration::from_secs(400 * 86_400));
    assert_eq!(
        (c.defaults.interval, c.defaults.timeout),
        (ms(30_000), ms(5_000))
    );
    let s = &c.services[0];
    let ProbeSpec::Http(h) = &s.checks[0].probe else {
        panic!("http")
    };
    assert_eq!(h.method, "GET");
    assert!(!h.follow_redirects);
    assert!(h.tls_verify);
    assert_eq!(h.max_body_bytes, 1_048_576);
    assert_eq!(h.expect.status, (200..=299).collect::<Vec<u16>>());
    let ProbeSpec::Tls(t) = &s.checks[1].probe else {
        panic!("tls")
    };
    assert_eq!((t.port, t.cert_min_days, t.tls_verify), (443, 14, true));
    let ProbeSpec::Dns(d) = &s.checks[2].probe else {
        panic!("dns")
    };
    assert_eq!(
        (d.record, d.server.to_string()),
        (RecordType::A, "10.0.0.2:53".to_string())
    );
    let slo = s.slo.as_ref().unwrap();
    assert_eq!(slo.objective, 0.995);
    assert_eq!(
        slo.window,
        SloWindow::Rolling(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(s.incident.open_after, 3);
    assert_eq!(s.incident.resolve_after, 2);
    assert!(s.incident.burn_rate_alerts);
    assert_eq!(s.incident.severity, "P2");
    assert!(s.incident.notify.is_empty());
}

/// The full example (every section of the reference), read into the values
/// it spells out.
#[test]
fn spec_example_parses_to_the_written_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-full.yaml");
    let c = config::load(&path).unwrap();
    assert_eq!(
        c.server.api_token_env.as_deref(),
        Some("SENTINEL_API_TOKEN")
    );
    let names: Vec<&str> = c.notifiers.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["tickets", "oncall", "chat", "am"]);
    assert_eq!(
        c.inbound,
        sentinel::config::Inbound {
            pagerduty: Some("PD_WEBHOOK_SECRET".into()),
            slack: Some("SLACK_SIGNING_SECRET".into()),
            ..Default::default()
        }
    );
    match &c.notifiers[0].kind {
        NotifierKind::Webhook { url, secret_env } => {
            assert_eq!(
                url,
                &UrlSource::Inline("http://127.0.0.1:8080/hooks".parse().unwrap())
            );
            assert_eq!(secret_env.as_deref(), Some("TICKETS_WEBHOOK_SECRET"));
        }
        other => panic!("{other:?}"),
    }
    match &c.notifiers[1].kind {
        NotifierKind::PagerDuty {
            routing_key_env, ..
        } => {
            assert_eq!(routing_key_env, "PD_ROUTING_KEY")
        }
        other => panic!("{other:?}"),
    }
    match &c.notifiers[2].kind {
        NotifierKind::Slack { url, buttons } => {
            assert_eq!(url, &UrlSource::Env("SLACK_WEBHOOK_URL".into()));
            assert!(buttons, "inbound.slack is set: messages carry buttons");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.notifiers[3].kind,
        NotifierKind::Alertmanager { .. }
    ));
    assert_eq!(c.notifiers[0].max_age, Duration::from_secs(86_400));
    assert_eq!(c.notifiers[0].timeout, ms(10_000));
    assert_eq!(c.response_targets["P1"].acknowledge, ms(600_000));
    assert_eq!(c.response_targets["P2"].restore, ms(8 * 3_600_000));
    assert_eq!(c.maintenance[0].services, ["identity"]);
    assert_eq!(c.maintenance[0].start.to_string(), "2026-12-01T22:00:00Z");
    assert_eq!(c.maintenance[0].end.to_string(), "2026-12-01T23:00:00Z");

    let s = &c.services[0];
    assert_eq!(s.name, "identity");
    assert_eq!(s.description.as_deref(), Some("Single sign-on"));
    assert_eq!(s.owner.as_deref(), Some("it-ops"));
    assert_eq!(s.tier, Some(1));
    let login = &s.checks[0];
    assert_eq!((login.interval, login.timeout), (ms(15_000), ms(3_000)));
    let ProbeSpec::Http(h) = &login.probe else {
        panic!("http")
    };
    assert_eq!(h.url.as_str(), "https://sso.example.com/health");
    assert_eq!(
        h.headers,
        [("Accept".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        (
            h.env_headers[0].name.as_str(),
            h.env_headers[0].var.as_str()
        ),
        ("Authorization", "IDP_HEALTH_TOKEN")
    );
    assert_eq!(h.expect.status, [200]);
    assert_eq!(h.expect.body_contains.as_deref(), Some("ok"));
    assert_eq!(
        h.expect.json,
        [("$.status".to_string(), serde_json::json!("UP"))]
    );
    assert_eq!(h.expect.max_latency, Some(ms(800)));
    assert_eq!(h.expect.cert_min_days, Some(14));
    let ldaps = &s.checks[1];
    assert_eq!((ldaps.interval, ldaps.timeout), (ms(30_000), ms(5_000)));
    let ProbeSpec::Tcp(t) = &ldaps.probe else {
        panic!("tcp")
    };
    assert_eq!(
        (t.host.as_str(), t.port, t.tls, t.tls_verify),
        ("ldap.example.com", 636, true, true)
    );
    let ProbeSpec::Dns(d) = &s.checks[2].probe else {
        panic!("dns")
    };
    assert_eq!(d.name, "sso.example.com");
    assert_eq!(
        (d.record, d.server.to_string()),
        (RecordType::A, "10.0.0.2:53".to_string())
    );
    let slo = s.slo.as_ref().unwrap();
    assert_eq!(slo.objective, 0.999);
    assert_eq!(slo.window.label(), "30d");
    let lat = slo.latency.unwrap();
    assert_eq!((lat.threshold, lat.objective), (ms(300), 0.99));
    assert_eq!(s.incident.severity, "P1");
    assert_eq!(s.incident.notify, ["tickets", "oncall", "chat"]);
}

/// Docs cannot rot: every shipped config file must load.
#[test]
fn every_config_file_in_the_repo_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if let Err(e) = config::load(&path) {
                panic!("{} does not load:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 1, "no config/*.yaml found");
}

#[test]
fn month_window_and_explicit_values() {
    let c = config::parse_str(
        r#"server:
  listen: "[::]:9000"
  max_concurrency: 8
storage:
  path: /var/lib/sentinel/state.db
services:
  - name: billing
    checks:
      - name: api
        http:
          url: http://127.0.0.1:8080/
          method: post
          body: "{}"
          follow_redirects: true
          tls_verify: false
          max_body_bytes: 10
          expect: { status: 204, body_regex: "^o+k$" }
    slo: { objective: 99, window: month }
    incident: { open_after: 1, resolve_after: 5, burn_rate_alerts: false }
"#,
        "t.yaml",
    )
    .unwrap();
    assert_eq!(c.server.listen.to_string(), "[::]:9000");
    assert_eq!(c.server.max_concurrency, 8);
    assert_eq!(c.storage.path, Path::new("/var/lib/sentinel/state.db"));
    let s = &c.services[0];
    let ProbeSpec::Http(h) = &s.checks[0].probe else {
        panic!("http")
    };
    assert_eq!(h.method, "POST");
    assert_eq!(h.body.as_deref(), Some("{}"));
    assert!(h.follow_redirects);
    assert!(!h.tls_verify);
    assert_eq!(h.max_body_bytes, 10);
    assert_eq!(h.expect.status, [204]);
    assert!(h.expect.body_regex.as_ref().unwrap().is_match("oook"));
    assert_eq!(s.slo.as_ref().unwrap().window, SloWindow::Month);
    assert_eq!(s.slo.as_ref().unwrap().objective, 0.99);
    assert_eq!(
        (
            s.incident.open_after,
            s.incident.resolve_after,
            s.incident.burn_rate_alerts
        ),
        (1, 5, false)
    );
}

#[test]
fn syntax_and_structure_errors() {
    check(
        "hello\n",
        &["t.yaml:1:1: expected a mapping of `key: value` pairs"],
    );
    check(
        "services: foo\n",
        &["t.yaml:1:11: services: expected a list (`- item` lines or `[a, b]`)"],
    );
    check(
        "services:\n  - name: a\n    checks: [\n",
        &["t.yaml:3:13: services[0].checks: unclosed bracket '['"],
    );
    check(
        "services:\n  - name: a\n    name: b\n",
        &["t.yaml:3:5: services[0].name: duplicate key `name`"],
    );
}

#[test]
fn http_headers_json_status_method_cert() {
    check(
        r#"services:
  - name: a
    checks:
      - name: x
        http:
          url: http://x
          method: "GE T"
          headers: { "Bad Header": v }
          expect: { json: { status: UP }, status: [], cert_min_days: 3 }
"#,
        &[
            "t.yaml:7:19: services[0].checks[0].http.method: invalid HTTP method `GE T`",
            "t.yaml:8:36: services[0].checks[0].http.headers.Bad Header: invalid header name `Bad Header`",
            "t.yaml:9:37: services[0].checks[0].http.expect.json.status: JSON path `status` must start with `$` — e.g. `$.status`",
            "t.yaml:9:51: services[0].checks[0].http.expect.status: empty `status` list; leave it out to accept 200..=299",
            "t.yaml:9:70: services[0].checks[0].http.expect.cert_min_days: `cert_min_days` needs an https URL",
        ],
    );
}

#[test]
fn malformed_json_paths_are_refused_at_load_time_with_where_and_how() {
    check(
        r#"services:
  - name: a
    checks:
      - name: x
        http:
          url: http://x
          expect: { json: { "$.a[": 1, "$.b[-1]": 2, "$.ok['k']": 3 } }
"#,
        &[
            "t.yaml:7:37: services[0].checks[0].http.expect.json.$.a[: JSON path `$.a[` is not valid at byte 3: unterminated `[` — paths are `$`, then `.key`, `['key']` or `[index]` steps, e.g. `$.data['status'][0]`",
            "t.yaml:7:51: services[0].checks[0].http.expect.json.$.b[-1]: JSON path `$.b[-1]` is not valid at byte 4: index must be a non-negative integer — paths are `$`, then `.key`, `['key']` or `[index]` steps, e.g. `$.data['status'][0]`",
        ],
    );
}

#[test]
fn notifier_keys_that_do_not_fit_the_type() {
    check(
        r#"notifiers:
  - name: s
    type: slack
    url: http://x
    url_env: X
    secret_env: Y
  - name: w
    type: webhook
    url: http://x
    routing_key_env: K
services:
  - name: a
    checks:
      - name: x
        tcp: { host: h, port: 1 }
"#,
        &[
            "t.yaml:4:10: notifiers[0].url: give either `url` or `url_env`, not both",
            "t.yaml:6:17: notifiers[0].secret_env: `secret_env` is only used by `webhook` notifiers, not `slack`",
            "t.yaml:10:22: notifiers[1].routing_key_env: `routing_key_env` is only used by `pagerduty` notifiers, not `webhook`",
        ],
    );
}

#[test]
fn counts_and_ports_in_range() {
    check(
        r#"server:
  max_concurrency: 0
services:
  - name: a
    checks:
      - name: x
        tcp: { host: h, port: -1 }
      - name: y
        tls: { host: h, port: 0, cert_min_days: -2 }
    incident: { open_after: 0, resolve_after: 0, severity: "" }
"#,
        &[
            "t.yaml:2:20: server.max_concurrency: max_concurrency 0 is out of range 1..=1000000",
            "t.yaml:7:31: services[0].checks[0].tcp.port: port -1 is out of range 1..=65535",
            "t.yaml:9:31: services[0].checks[1].tls.port: port 0 is out of range 1..=65535",
            "t.yaml:9:49: services[0].checks[1].tls.cert_min_days: cert_min_days -2 is out of range 0..=3650",
            "t.yaml:10:29: services[0].incident.open_after: open_after 0 is out of range 1..=1000",
            "t.yaml:10:47: services[0].incident.resolve_after: resolve_after 0 is out of range 1..=1000",
            "t.yaml:10:60: services[0].incident.severity: empty value; leave the key out instead",
        ],
    );
}

#[test]
fn anchors_and_merges_are_followed() {
    // A merged copy of a service is still a duplicate, reported where the
    // name is written.
    check(
        r#"services:
  - &c
    name: a
    checks:
      - name: x
        tcp: { host: h, port: 1 }
  - <<: *c
    name: a
"#,
        &["t.yaml:8:11: services[1].name: duplicate service name `a` (first defined on line 3)"],
    );
}

#[test]
fn keys_without_values_mean_empty() {
    let c = config::parse_str(
        r#"notifiers:
maintenance:
response_targets:
services:
  - name: a
    checks:
      - name: x
        http:
          url: http://x
          headers:
          expect: { json: { $.a: [1, { b: 2 }], $.c: null } }
    incident:
      notify:
"#,
        "t.yaml",
    )
    .unwrap();
    assert!(c.notifiers.is_empty() && c.maintenance.is_empty() && c.response_targets.is_empty());
    let ProbeSpec::Http(h) = &c.services[0].checks[0].probe else {
        panic!("http")
    };
    assert!(h.headers.is_empty());
    assert_eq!(
        h.expect.json,
        [
            ("$.a".to_string(), serde_json::json!([1, { "b": 2 }])),
            ("$.c".to_string(), serde_json::Value::Null)
        ]
    );
    assert!(c.services[0].incident.notify.is_empty());
}

#[test]
fn server_connection_cap_and_read_timeout() {
    let c = config::parse_str(
        "server:\n  max_connections: 500\n  read_timeout: 2500ms\nservices:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n",
        "t.yaml",
    )
    .unwrap();
    assert_eq!(c.server.max_connections, Some(500));
    assert_eq!(
        c.server.read_timeout,
        std::time::Duration::from_millis(2500)
    );
    let d = config::parse_str(
        "services:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n",
        "t.yaml",
    )
    .unwrap();
    assert_eq!(d.server.max_connections, None);
    assert_eq!(d.server.read_timeout, std::time::Duration::from_secs(10));
    check(
        "server:\n  max_connections: 0\n  read_timeout: 50ms\nservices:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n",
        &[
            "t.yaml:2:20: server.max_connections: max_connections 0 is out of range 1..=1000000",
            "t.yaml:3:17: server.read_timeout: read_timeout 50ms is out of range 100ms..=5m — a client gets between 100ms and 5m to send a request head, and again its body",
        ],
    );
    check(
        "server:\n  read_timeout: 6m\nservices:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n",
        &[
            "t.yaml:2:17: server.read_timeout: read_timeout 6m is out of range 100ms..=5m — a client gets between 100ms and 5m to send a request head, and again its body",
        ],
    );
}

/// Every number in the file with its value written in: `{v}` markers are
/// filled by the range tests below, one value per key.
fn ranged(v: &[&str; 20]) -> String {
    format!(
        r#"server:
  max_concurrency: {}
storage:
  retention: {}
  minute_retention: {}
defaults:
  interval: {}
  timeout: {}
notifiers:
  - name: n
    type: webhook
    url: http://127.0.0.1:1/
    max_age: {}
    timeout: {}
response_targets:
  P1: {{ acknowledge: {}, restore: {} }}
services:
  - name: a
    checks:
      - name: x
        interval: {}
        timeout: {}
        http:
          url: https://127.0.0.1:1/
          max_body_bytes: {}
          expect: {{ max_latency: {}, cert_min_days: {} }}
      - name: y
        tls: {{ host: h, port: {} }}
    slo:
      objective: {}
      window: {}
      latency: {{ threshold: {}, objective: 99 }}
    incident: {{ open_after: {}, resolve_after: {} }}
"#,
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        v[5],
        v[6],
        v[7],
        v[8],
        v[9],
        v[10],
        v[11],
        v[12],
        v[13],
        v[14],
        v[15],
        v[16],
        v[17],
        v[18],
        v[19]
    )
}

#[test]
fn every_number_loads_at_both_ends_of_its_range() {
    check(
        &ranged(&[
            "1", "3d", "6h", "100ms", "10ms", "1m", "100ms", "1m", "1m", "100ms", "10ms", "1",
            "1ms", "0", "1", "0.001", "1h", "1ms", "1", "1",
        ]),
        &[],
    );
    // `timeout` ≤ `interval` still holds at the top, and the window may be as
    // long as the retention.
    check(
        &ranged(&[
            "1000000", "1830d", "7d", "1d", "10m", "30d", "5m", "90d", "90d", "1d", "10m",
            "67108864", "10m", "3650", "65535", "99.999", "400d", "10m", "1000", "1000",
        ]),
        &[],
    );
}

#[test]
fn every_number_below_its_range_is_refused() {
    check(
        &ranged(&[
            "0", "2d", "5h", "99ms", "9ms", "59s", "99ms", "59s", "59s", "99ms", "9ms", "0", "0ms",
            "-1", "0", "0", "59m", "0s", "0", "0",
        ]),
        &[
            "t.yaml:2:20: server.max_concurrency: max_concurrency 0 is out of range 1..=1000000",
            "t.yaml:4:14: storage.retention: retention 2d is out of range 3d..=1830d — history must cover the 3d burn window and is kept for at most 5 years (1830d)",
            "t.yaml:5:21: storage.minute_retention: minute_retention 5h is out of range 6h..=1w — windows up to 6h read minute buckets, longer ones hour buckets",
            "t.yaml:7:13: defaults.interval: interval 99ms is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
            "t.yaml:8:12: defaults.timeout: timeout 9ms is out of range 10ms..=10m — a probe gets between 10ms and 10m to finish",
            "t.yaml:13:14: notifiers[0].max_age: max_age 59s is out of range 1m..=30d — events are retried for between 1m and 30d",
            "t.yaml:14:14: notifiers[0].timeout: timeout 99ms is out of range 100ms..=5m — one delivery attempt gets between 100ms and 5m",
            "t.yaml:16:22: response_targets.P1.acknowledge: acknowledge 59s is out of range 1m..=90d — a response target is between 1m and 90d",
            "t.yaml:16:36: response_targets.P1.restore: restore 59s is out of range 1m..=90d — a response target is between 1m and 90d",
            "t.yaml:21:19: services[0].checks[0].interval: interval 99ms is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
            "t.yaml:22:18: services[0].checks[0].timeout: timeout 9ms is out of range 10ms..=10m — a probe gets between 10ms and 10m to finish",
            "t.yaml:25:27: services[0].checks[0].http.max_body_bytes: max_body_bytes 0 is out of range 1..=67108864 — at most 64 MiB (67108864) of a response body is read and held per run",
            "t.yaml:26:34: services[0].checks[0].http.expect.max_latency: max_latency 0ms is out of range 1ms..=10m — a latency bound is between 1ms and 10m",
            "t.yaml:26:54: services[0].checks[0].http.expect.cert_min_days: cert_min_days -1 is out of range 0..=3650",
            "t.yaml:28:31: services[0].checks[1].tls.port: port 0 is out of range 1..=65535",
            "t.yaml:30:18: services[0].slo.objective: objective 0 is out of range: it is a percent, greater than 0 and at most 99.999 — e.g. `99.9`",
            "t.yaml:31:15: services[0].slo.window: window 59m is out of range 1h..=400d — the SLO history is kept in memory in hour buckets; use 1h to 400d, or `month`",
            "t.yaml:32:29: services[0].slo.latency.threshold: threshold 0s is out of range 1ms..=10m — a latency bound is between 1ms and 10m",
            "t.yaml:33:29: services[0].incident.open_after: open_after 0 is out of range 1..=1000",
            "t.yaml:33:47: services[0].incident.resolve_after: resolve_after 0 is out of range 1..=1000",
        ],
    );
}

#[test]
fn every_number_above_its_range_is_refused() {
    check(
        &ranged(&[
            "1000001",
            "1831d",
            "169h",
            "1d1ms",
            "10m1ms",
            "31d",
            "5m1ms",
            "91d",
            "13w",
            "25h",
            "601s",
            "67108865",
            "11m",
            "3651",
            "65536",
            "99.9991",
            "57w2d",
            "10m1ms",
            "1001",
            "4294967296",
        ]),
        &[
            "t.yaml:2:20: server.max_concurrency: max_concurrency 1000001 is out of range 1..=1000000",
            "t.yaml:4:14: storage.retention: retention 1831d is out of range 3d..=1830d — history must cover the 3d burn window and is kept for at most 5 years (1830d)",
            "t.yaml:5:21: storage.minute_retention: minute_retention 169h is out of range 6h..=1w — windows up to 6h read minute buckets, longer ones hour buckets",
            "t.yaml:7:13: defaults.interval: interval 1d1ms is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
            "t.yaml:8:12: defaults.timeout: timeout 10m1ms is out of range 10ms..=10m — a probe gets between 10ms and 10m to finish",
            "t.yaml:13:14: notifiers[0].max_age: max_age 31d is out of range 1m..=30d — events are retried for between 1m and 30d",
            "t.yaml:14:14: notifiers[0].timeout: timeout 5m1ms is out of range 100ms..=5m — one delivery attempt gets between 100ms and 5m",
            "t.yaml:16:22: response_targets.P1.acknowledge: acknowledge 91d is out of range 1m..=90d — a response target is between 1m and 90d",
            "t.yaml:16:36: response_targets.P1.restore: restore 13w is out of range 1m..=90d — a response target is between 1m and 90d",
            "t.yaml:21:19: services[0].checks[0].interval: interval 25h is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
            "t.yaml:22:18: services[0].checks[0].timeout: timeout 601s is out of range 10ms..=10m — a probe gets between 10ms and 10m to finish",
            "t.yaml:25:27: services[0].checks[0].http.max_body_bytes: max_body_bytes 67108865 is out of range 1..=67108864 — at most 64 MiB (67108864) of a response body is read and held per run",
            "t.yaml:26:34: services[0].checks[0].http.expect.max_latency: max_latency 11m is out of range 1ms..=10m — a latency bound is between 1ms and 10m",
            "t.yaml:26:54: services[0].checks[0].http.expect.cert_min_days: cert_min_days 3651 is out of range 0..=3650",
            "t.yaml:28:31: services[0].checks[1].tls.port: port 65536 is out of range 1..=65535",
            "t.yaml:30:18: services[0].slo.objective: objective 99.9991 is out of range: it is a percent, greater than 0 and at most 99.999 — e.g. `99.9`",
            "t.yaml:31:15: services[0].slo.window: window 57w2d is out of range 1h..=400d — the SLO history is kept in memory in hour buckets; use 1h to 400d, or `month`",
            "t.yaml:32:29: services[0].slo.latency.threshold: threshold 10m1ms is out of range 1ms..=10m — a latency bound is between 1ms and 10m",
            "t.yaml:33:29: services[0].incident.open_after: open_after 1001 is out of range 1..=1000",
            "t.yaml:33:50: services[0].incident.resolve_after: resolve_after 4294967296 is out of range 1..=1000",
        ],
    );
}

/// Issue: `slo.window: 18446744073709551615ms` passed `validate`, then `run`
/// died allocating 20 TB; `max_body_bytes: 9223372036854775807` let one
/// probe hold gigabytes.
#[test]
fn hostile_numbers_are_config_errors_not_aborts() {
    let base = |window: &str, body: &str| {
        format!(
            "services:\n  - name: a\n    checks:\n      - name: x\n        http: {{ url: http://h, max_body_bytes: {body} }}\n    slo: {{ objective: 99, window: {window} }}\n"
        )
    };
    check(
        &base("18446744073709551615ms", "9223372036854775807"),
        &[
            "t.yaml:5:48: services[0].checks[0].http.max_body_bytes: max_body_bytes 9223372036854775807 is out of range 1..=67108864 — at most 64 MiB (67108864) of a response body is read and held per run",
            "t.yaml:6:35: services[0].slo.window: window 18446744073709551615ms is out of range 1h..=400d — the SLO history is kept in memory in hour buckets; use 1h to 400d, or `month`",
        ],
    );
    check(
        &base("100000000w", "1"),
        &[
            "t.yaml:6:35: services[0].slo.window: window 100000000w is out of range 1h..=400d — the SLO history is kept in memory in hour buckets; use 1h to 400d, or `month`",
        ],
    );
    // Past u64 milliseconds: a clear error, not a wrap-around.
    check(
        &base("18446744073709551616ms", "1"),
        &[
            "t.yaml:6:35: services[0].slo.window: invalid duration `18446744073709551616ms`: too large",
        ],
    );
    check(
        &base("99999999999999999999999999999999999999999d", "1"),
        &[
            "t.yaml:6:35: services[0].slo.window: invalid duration `99999999999999999999999999999999999999999d`: number too large",
        ],
    );
    check(
        &base("1", "99999999999999999999"),
        &[
            "t.yaml:5:48: services[0].checks[0].http.max_body_bytes: expected a whole number, found `99999999999999999999`",
        ],
    );
}

#[test]
fn slo_window_may_not_outlive_the_retention() {
    check(
        "storage: { retention: 30d }\nservices:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n    slo: { objective: 99, window: 31d }\n  - name: b\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n    slo: { objective: 99, window: month }\n",
        &[
            "t.yaml:7:35: services[0].slo.window: window 31d is longer than storage.retention 30d — history older than the retention is deleted; raise `storage.retention` or shorten the window",
            "t.yaml:12:35: services[1].slo.window: window month is longer than storage.retention 30d — history older than the retention is deleted; raise `storage.retention` or shorten the window",
        ],
    );
}

#[test]
fn names_have_a_length_limit() {
    let long = "s".repeat(129);
    check(
        &format!(
            "services:\n  - name: {long}\n    checks:\n      - name: x\n        tcp: {{ host: h, port: 1 }}\n"
        ),
        &[
            "t.yaml:2:11: services[0].name: name is 129 characters long, more than 128 — names become metric labels and URL path segments; shorten it",
        ],
    );
}

/// Like `check`, with the environment given and the warnings compared too.
fn check_env(yaml: &str, env: &[(&str, &str)], expected: Result<&[&str], &[&str]>) {
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    match (config::parse_with_env(yaml, "t.yaml", &lookup), expected) {
        (Ok(loaded), Ok(warnings)) => {
            let got: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
            assert_eq!(got, warnings, "for:\n{yaml}");
        }
        (Err(ConfigError::Invalid(p)), Err(problems)) => {
            let got: Vec<String> = p.0.iter().map(ToString::to_string).collect();
            assert_eq!(got, problems, "for:\n{yaml}");
        }
        (got, want) => panic!("got {got:?}, want {want:?} for:\n{yaml}"),
    }
}

const TOKEN: (&str, &str) = ("SENTINEL_API_TOKEN", "t0ken");

#[test]
fn credentials_in_urls_are_refused_without_echoing_them() {
    check(
        r#"notifiers:
  - name: n
    type: webhook
    url: https://hook:s3cret@hooks.example.com/x
services:
  - name: a
    checks:
      - name: x
        http: { url: "https://user:pa55@sso.example.com/health" }
      - name: y
        http: { url: "https://user@sso.example.com/health" }
"#,
        &[
            "t.yaml:4:10: notifiers[0].url: URL for `hooks.example.com` contains credentials (`user:password@`) — secrets never go in the file: put the whole URL in an environment variable and name it with `url_env`",
            "t.yaml:9:22: services[0].checks[0].http.url: URL for `sso.example.com` contains credentials (`user:password@`) — secrets never go in the file: send them with `headers_env: { Authorization: VAR }`, where VAR holds e.g. `Basic dXNlcjpwYXNz`",
            "t.yaml:11:22: services[0].checks[1].http.url: URL for `sso.example.com` contains credentials (`user:password@`) — secrets never go in the file: send them with `headers_env: { Authorization: VAR }`, where VAR holds e.g. `Basic dXNlcjpwYXNz`",
        ],
    );
}

const HEADERS_ENV: &str = r#"server: { api_token_env: SENTINEL_API_TOKEN }
response_targets: { P2: { acknowledge: 30m, restore: 8h } }
services:
  - name: a
    checks:
      - name: x
        http:
          url: https://sso.example.com/health
          headers: { Accept: application/json }
          headers_env: { Authorization: IDP_TOKEN, X-Tenant: TENANT }
"#;

#[test]
fn headers_env_reads_the_environment_and_never_shows_the_value() {
    let env = |k: &str| match k {
        "IDP_TOKEN" => Some("Bearer very-secret".to_string()),
        "TENANT" => Some("acme".to_string()),
        "SENTINEL_API_TOKEN" => Some("t".to_string()),
        _ => None,
    };
    let loaded = config::parse_with_env(HEADERS_ENV, "t.yaml", &env).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let ProbeSpec::Http(h) = &loaded.config.services[0].checks[0].probe else {
        panic!("http")
    };
    let got: Vec<(&str, &str, Option<&str>)> = h
        .env_headers
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.var.as_str(),
                e.value.as_ref().map(|v| v.expose()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Authorization", "IDP_TOKEN", Some("Bearer very-secret")),
            ("X-Tenant", "TENANT", Some("acme"))
        ]
    );
    let debug = format!("{:?}", loaded.config);
    assert!(!debug.contains("very-secret"), "{debug}");
    assert!(debug.contains("IDP_TOKEN") && debug.contains("<redacted>"));
}

#[test]
fn headers_env_problems_and_warnings() {
    // Unset: a warning for validate that blocks `run`.
    check_env(
        HEADERS_ENV,
        &[TOKEN, ("TENANT", "acme")],
        Ok(&[
            "t.yaml:10:41: services[0].checks[0].http.headers_env.Authorization: environment variable IDP_TOKEN is not set: the check cannot send header `Authorization`, so `sentinel run` and reload refuse this config — export IDP_TOKEN in the daemon's environment",
        ]),
    );
    let loaded = config::parse_with_env(HEADERS_ENV, "t.yaml", &|k: &str| {
        (k == "TENANT").then(|| "acme".to_string())
    })
    .unwrap();
    let blocking: Vec<bool> = loaded.warnings.iter().map(|w| w.blocks_run).collect();
    assert_eq!(blocking, [false, true]);
    // A value with a line break is refused, without printing it.
    check_env(
        HEADERS_ENV,
        &[TOKEN, ("TENANT", "acme"), ("IDP_TOKEN", "abc\r\nX-Evil: 1")],
        Err(&[
            "t.yaml:10:41: services[0].checks[0].http.headers_env.Authorization: environment variable IDP_TOKEN is not a valid header value (control characters or line breaks)",
        ]),
    );
    check(
        r#"services:
  - name: a
    checks:
      - name: x
        http:
          url: https://sso.example.com/health
          headers: { Authorization: x }
          headers_env: { authorization: A, "Bad Header": B, X-Token: "not a var" }
"#,
        &[
            "t.yaml:8:41: services[0].checks[0].http.headers_env.authorization: header `authorization` is set in both `headers` and `headers_env`",
            "t.yaml:8:58: services[0].checks[0].http.headers_env.Bad Header: invalid header name `Bad Header`",
            "t.yaml:8:70: services[0].checks[0].http.headers_env.X-Token: `not a var` is not an environment variable name — keys ending in `_env` name a variable, e.g. `PD_ROUTING_KEY`; never put the secret itself here",
        ],
    );
}

#[test]
fn warnings_for_what_will_fail_later() {
    let yaml = r#"server:
  api_token_env: SENTINEL_API_TOKEN
notifiers:
  - name: tickets
    type: webhook
    url: http://127.0.0.1:8080/hooks
    secret_env: TICKETS_SECRET
  - name: oncall
    type: pagerduty
    url: https://events.pagerduty.com/v2/enqueue
    routing_key_env: PD_KEY
  - name: chat
    type: slack
    url_env: SLACK_URL
response_targets:
  P1: { acknowledge: 10m, restore: 2h }
services:
  - name: a
    checks:
      - name: x
        tcp: { host: h, port: 1 }
    incident: { severity: P1, notify: [tickets, oncall, chat] }
  - name: b
    checks:
      - name: x
        tcp: { host: h, port: 1 }
    incident: { severity: P3 }
  - name: c
    checks:
      - name: x
        tcp: { host: h, port: 1 }
"#;
    check_env(
        yaml,
        &[],
        Ok(&[
            "t.yaml:2:18: server.api_token_env: environment variable SENTINEL_API_TOKEN is not set: the write API (acknowledge, resolve, reload over HTTP) is disabled and answers 403 — export SENTINEL_API_TOKEN in the daemon's environment",
            "t.yaml:7:17: notifiers[0].secret_env: environment variable TICKETS_SECRET is not set: deliveries to notifier `tickets` fail until it is set — export TICKETS_SECRET in the daemon's environment",
            "t.yaml:11:22: notifiers[1].routing_key_env: environment variable PD_KEY is not set: deliveries to notifier `oncall` fail until it is set — export PD_KEY in the daemon's environment",
            "t.yaml:14:14: notifiers[2].url_env: environment variable SLACK_URL is not set: deliveries to notifier `chat` fail until it is set — export SLACK_URL in the daemon's environment",
            "t.yaml:27:27: services[1].incident.severity: severity `P3` (1 service) has no `response_targets` entry: its incidents count toward no acknowledge or restore target — add `response_targets: { P3: { acknowledge: 30m, restore: 8h } }`",
            "t.yaml:28:5: services[2]: severity `P2` (1 service) has no `response_targets` entry: its incidents count toward no acknowledge or restore target — add `response_targets: { P2: { acknowledge: 30m, restore: 8h } }`",
        ]),
    );
    let all = [
        TOKEN,
        ("TICKETS_SECRET", "whsec_x"),
        ("PD_KEY", "k"),
        ("SLACK_URL", "https://hooks.slack.com/services/T/B/X"),
    ];
    check_env(
        &yaml
            .replace("severity: P3", "severity: P1")
            .replace(
                "        tcp: { host: h, port: 1 }\n",
                "        tcp: { host: h, port: 1 }\n    incident: { severity: P1 }\n",
            )
            .replace(
                "    incident: { severity: P1 }\n    incident:",
                "    incident:",
            ),
        &all,
        Ok(&[]),
    );
    // A url_env that is set is checked like a literal URL, without echoing it.
    for (value, reason) in [
        (
            "ftp://hooks.example.com/x",
            "scheme must be http or https, not `ftp`",
        ),
        (
            "https://u:p@hooks.example.com/x",
            "it contains credentials (`user:password@`)",
        ),
        ("hooks.example.com/x", "missing scheme"),
    ] {
        let mut env = all.to_vec();
        env[3] = ("SLACK_URL", value);
        let expected = format!(
            "t.yaml:14:14: notifiers[2].url_env: environment variable SLACK_URL holds an invalid URL: {reason} — the URL must be http:// or https:// with a host and no `user:password@`"
        );
        check_env(yaml, &env, Err(&[expected.as_str()]));
    }
    // No token variable at all: the write API is off.
    check_env(
        "services:\n  - name: a\n    incident: { severity: P1 }\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\nresponse_targets:\n  P1: { acknowledge: 10m, restore: 2h }\n",
        &[],
        Ok(&[
            "t.yaml:1:1: server.api_token_env: no `server.api_token_env`: the write API (acknowledge, resolve, reload over HTTP) is disabled and answers 403 — name a variable holding a long random token, e.g. `api_token_env: SENTINEL_API_TOKEN`",
        ]),
    );
}

/// Writes `files` (relative path → text) under a temp dir and loads
/// `main.yaml` from there, with `SENTINEL_API_TOKEN` set.
#[allow(clippy::unwrap_used)]
fn load_tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<config::Loaded, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let env = |k: &str| (k == "SENTINEL_API_TOKEN").then(|| "t".to_string());
    let r = config::load_checked(&dir.path().join("main.yaml"), &env);
    (dir, r)
}

/// Problems or warnings with the temp dir replaced by `D`.
fn lines(dir: &tempfile::TempDir, items: impl IntoIterator<Item = String>) -> Vec<String> {
    let d = dir.path().display().to_string();
    items.into_iter().map(|l| l.replace(&d, "D")).collect()
}

const MAIN: &str = r#"include: [conf.d/*.yaml]
server: { api_token_env: SENTINEL_API_TOKEN }
response_targets: { P2: { acknowledge: 30m, restore: 8h } }
notifiers:
  - name: tickets
    type: webhook
    url: http://127.0.0.1:8080/hooks
services:
  - name: identity
    checks:
      - name: login
        tcp: { host: h, port: 1 }
"#;

#[test]
fn include_merges_services_notifiers_and_maintenance() {
    let (_dir, r) = load_tree(&[
        ("main.yaml", MAIN),
        (
            "conf.d/b-mail.yaml",
            "services:\n  - name: mail\n    checks:\n      - name: smtp\n        tcp: { host: h, port: 25 }\n    incident: { notify: [tickets, chat] }\nmaintenance:\n  - services: [identity, mail]\n    start: 2026-12-01T22:00:00Z\n    end: 2026-12-01T23:00:00Z\n",
        ),
        (
            "conf.d/a-chat.yaml",
            "notifiers:\n  - name: chat\n    type: alertmanager\n    url: http://127.0.0.1:9093\n",
        ),
        ("conf.d/notes.txt", "not yaml: ["),
    ]);
    let c = r.unwrap().config;
    let services: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(services, ["identity", "mail"]);
    let notifiers: Vec<&str> = c.notifiers.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(notifiers, ["tickets", "chat"]);
    assert_eq!(c.services[1].incident.notify, ["tickets", "chat"]);
    assert_eq!(c.maintenance[0].services, ["identity", "mail"]);
}

#[test]
fn include_errors_name_their_own_file() {
    let (dir, r) = load_tree(&[
        ("main.yaml", MAIN),
        (
            "conf.d/a.yaml",
            "services:\n  - name: identity\n    checks:\n      - name: x\n        interval: 0s\n        tcp: { host: h, port: 1 }\nnotifiers:\n  - name: tickets\n    type: slack\n    url_env: SLACK_URL\n",
        ),
        (
            "conf.d/b.yaml",
            "services:\n  - name: mail\n    checks:\n      - name: smtp\n        tcp: { host: h, port: 99999 }\n",
        ),
    ]);
    let Err(ConfigError::Invalid(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        lines(&dir, p.0.iter().map(ToString::to_string)),
        [
            "D/conf.d/a.yaml:2:11: services[0].name: duplicate service name `identity` (first defined at D/main.yaml:9)",
            "D/conf.d/a.yaml:5:19: services[0].checks[0].interval: interval 0s is out of range 100ms..=1d — a check runs at most 10 times a second and at least once a day",
            "D/conf.d/a.yaml:8:11: notifiers[0].name: duplicate notifier name `tickets` (first defined at D/main.yaml:5)",
            "D/conf.d/b.yaml:5:31: services[0].checks[0].tcp.port: port 99999 is out of range 1..=65535",
        ]
    );
    // A syntax error stops that file's parser; the other files are still read.
    let (dir, r) = load_tree(&[
        ("main.yaml", MAIN),
        (
            "conf.d/a.yaml",
            "services:\n  - name: mail\n    checks: [\n",
        ),
        (
            "conf.d/b.yaml",
            "server: { listen: 127.0.0.1:1 }\nservices:\n  - name: mail\n    chekcs: []\n",
        ),
    ]);
    let Err(ConfigError::Invalid(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        lines(&dir, p.0.iter().map(ToString::to_string)),
        [
            "D/conf.d/a.yaml:3:13: services[0].checks: unclosed bracket '['",
            "D/conf.d/b.yaml:1:1: server: `server` may only be set in the main config file — an included file holds `services`, `notifiers` and `maintenance`",
        ]
    );
}

#[test]
fn include_patterns_that_match_nothing() {
    // A wildcard matching nothing is a warning (an empty conf.d is normal);
    // a file named without wildcards must exist.
    let main = MAIN.replace(
        "include: [conf.d/*.yaml]",
        "include: [conf.d/*.yaml, extra/*.yml]",
    );
    let (dir, r) = load_tree(&[("main.yaml", &main)]);
    assert_eq!(
        lines(&dir, r.unwrap().warnings.iter().map(ToString::to_string)),
        [
            "D/main.yaml:1:11: include: include pattern `conf.d/*.yaml` matches no file — patterns are relative to the including file's directory",
            "D/main.yaml:1:26: include: include pattern `extra/*.yml` matches no file — patterns are relative to the including file's directory",
        ]
    );
    let main = MAIN.replace(
        "include: [conf.d/*.yaml]",
        "include: [conf.d/identity.yaml, \"conf.d/**/*.yaml\"]",
    );
    let (dir, r) = load_tree(&[("main.yaml", &main)]);
    let Err(ConfigError::Invalid(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        lines(&dir, p.0.iter().map(ToString::to_string)),
        [
            "D/main.yaml:1:11: include: included file D/conf.d/identity.yaml does not exist — patterns are relative to the including file's directory",
            "D/main.yaml:1:33: include: include pattern `conf.d/**/*.yaml`: `**` is not supported; use `*` within one directory",
        ]
    );
}

#[test]
fn included_files_cannot_include_and_the_main_file_is_read_once() {
    let main = MAIN.replace("include: [conf.d/*.yaml]", "include: [\"*.yaml\"]");
    let (dir, r) = load_tree(&[
        ("main.yaml", &main),
        ("other.yaml", "include: [main.yaml]\n"),
    ]);
    let Err(ConfigError::Invalid(p)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        lines(&dir, p.0.iter().map(ToString::to_string)),
        [
            "D/other.yaml:1:1: include: `include` may only be set in the main config file — an included file holds `services`, `notifiers` and `maintenance`",
        ]
    );
}

/// Issue: 22 000–35 000 checks ended in `budget breached: Nodes { nodes:
/// 250001 }`. A generated config of 100 000 checks must load (the time is
/// measured in release builds and reported, not asserted here).
#[test]
fn a_config_of_100_000_checks_loads() {
    let mut text = String::from("services:\n");
    for s in 0..10_000 {
        text.push_str(&format!("  - name: svc-{s}\n    checks:\n"));
        for c in 0..10 {
            text.push_str(&format!(
                "      - {{ name: c{c}, http: {{ url: http://127.0.0.1:9/{s}/{c} }} }}\n"
            ));
        }
        text.push_str("    slo: { objective: 99.9 }\n");
    }
    let c = config::parse_str(&text, "big.yaml").unwrap();
    let checks: usize = c.services.iter().map(|s| s.checks.len()).sum();
    assert_eq!((c.services.len(), checks), (10_000, 100_000));
}

#[test]
fn parser_limits_are_said_in_words() {
    let mut text = String::from(
        "services:\n  - name: a\n    checks:\n      - name: x\n        http:\n          url: http://h\n          expect:\n            json:\n              $.a: ",
    );
    text.push_str(&"[".repeat(100));
    text.push_str(&"]".repeat(100));
    let expected = format!(
        "t.yaml:9:76: services[0].checks[0].http.expect.json.$.a{}: lists and maps are nested 65 deep, more than a config needs",
        "[0]".repeat(55)
    );
    check(&text, &[expected.as_str()]);
}

/// Docs cannot rot: every YAML block of the README whose top-level keys are
/// sentinel's loads (a block without `services` gets a stub service).
/// Blocks for other tools (Prometheus, Grafana) are skipped.
#[test]
fn every_sentinel_yaml_block_in_the_readme_loads() {
    const KEYS: [&str; 9] = [
        "include",
        "server",
        "storage",
        "defaults",
        "metrics",
        "notifiers",
        "response_targets",
        "maintenance",
        "services",
    ];
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut loaded = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let text = textwrap_dedent(text);
        let top: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '#', '-']) && l.contains(':'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        if top.is_empty() || !top.iter().all(|k| KEYS.contains(k)) {
            continue;
        }
        let mut text = text.clone();
        if !top.contains(&"services") {
            text.push_str("services:\n  - name: stub\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n");
        }
        let env = |_: &str| Some("https://hooks.example.com/x".to_string());
        if let Err(e) = config::parse_with_env(&text, "README.md", &env) {
            panic!("README block does not load:\n{text}\n{e}");
        }
        loaded += 1;
    }
    assert!(loaded >= 2, "only {loaded} README blocks found");
}

/// Removes the common leading indentation (blocks inside list items are indented).
fn textwrap_dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").to_string() + "\n")
        .collect()
}

#[test]
fn escalate_names_configured_notifiers_and_repost_every_fits_alertmanager() {
    let yaml = r#"notifiers:
  - { name: team, type: webhook, url: "http://127.0.0.1:1/team" }
  - { name: manager, type: webhook, url: "http://127.0.0.1:1/manager", repost_every: 1m }
  - { name: am, type: alertmanager, url: "http://127.0.0.1:9093", repost_every: 6m }
  - { name: am2, type: alertmanager, url: "http://127.0.0.1:9094", repost_every: 500ms }
response_targets:
  P1: { acknowledge: 10m, restore: 2h, escalate: [manger, manager, manager, oncall] }
services:
  - name: a
    incident: { severity: P1, notify: [team] }
    checks:
      - name: x
        tcp: { host: h, port: 1 }
"#;
    check(
        yaml,
        &[
            "t.yaml:3:86: notifiers[1].repost_every: `repost_every` is only used by `alertmanager` notifiers, not `webhook`",
            "t.yaml:4:81: notifiers[2].repost_every: repost_every 6m is out of range 1s..=5m — an open incident's alert is sent again at least every 5m, so Alertmanager never lets it expire",
            "t.yaml:5:82: notifiers[3].repost_every: repost_every 500ms is out of range 1s..=5m — an open incident's alert is sent again at least every 5m, so Alertmanager never lets it expire",
            "t.yaml:7:51: response_targets.P1.escalate[0]: unknown notifier `manger` in `escalate` — did you mean `manager`?",
            "t.yaml:7:77: response_targets.P1.escalate[3]: unknown notifier `oncall` in `escalate` — defined notifiers: `team`, `manager`, `am`, `am2`",
        ],
    );
}

#[test]
fn escalate_with_no_notifiers_says_where_to_define_them() {
    check(
        "response_targets:\n  P1: { acknowledge: 10m, restore: 2h, escalate: [manager] }\nservices:\n  - name: a\n    incident: { severity: P1 }\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n",
        &[
            "t.yaml:2:51: response_targets.P1.escalate[0]: unknown notifier `manager` in `escalate` — no notifiers are defined; define the escalation contacts under `notifiers`",
        ],
    );
}

#[test]
fn escalate_and_repost_every_are_read() {
    let c = config::parse_str(
        r#"notifiers:
  - { name: am, type: alertmanager, url: "http://127.0.0.1:9093" }
  - { name: am30, type: alertmanager, url: "http://127.0.0.1:9094", repost_every: 30s }
  - { name: manager, type: webhook, url: "http://127.0.0.1:1/manager" }
response_targets:
  P1: { acknowledge: 10m, restore: 2h, escalate: [manager, am] }
  P2: { acknowledge: 30m, restore: 8h }
services:
  - name: a
    incident: { severity: P1, notify: [am] }
    checks:
      - name: x
        tcp: { host: h, port: 1 }
"#,
        "t.yaml",
    )
    .unwrap();
    let every: Vec<Option<Duration>> = c
        .notifiers
        .iter()
        .map(|n| match &n.kind {
            sentinel::config::NotifierKind::Alertmanager { repost_every, .. } => {
                Some(*repost_every)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        every,
        [
            Some(Duration::from_secs(300)),
            Some(Duration::from_secs(30)),
            None
        ]
    );
    assert_eq!(c.response_targets["P1"].escalate, ["manager", "am"]);
    assert!(c.response_targets["P2"].escalate.is_empty());
}
