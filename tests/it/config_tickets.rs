//! Config of the ticket connectors (`servicenow`, `jira`, `opsgenie`) and
//! `server.external_url`: exact values, exact problem lines, warnings for
//! unset credentials, and every YAML example of docs/tickets.md loads.

use std::collections::BTreeMap;
use std::path::Path;

use sentinel::config::tickets::{
    JiraSpec, OpsgenieSpec, ServiceNowAuth, ServiceNowSpec, SnowUrgency,
};
use sentinel::config::{self, ConfigError, NotifierKind};

const SERVICE: &str = "services:
  - name: web
    checks:
      - name: health
        http: { url: https://web.example.com/health }
";

/// `notifiers` (YAML lines) plus one service, with the environment given:
/// `Ok(warnings)` or `Err(problems)`, each rendered.
fn load(
    notifiers: &str,
    env: &[(&str, &str)],
) -> Result<(config::Config, Vec<String>), Vec<String>> {
    let yaml = format!("{notifiers}{SERVICE}");
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    match config::parse_with_env(&yaml, "t.yaml", &lookup) {
        // Only the notifiers' and the server's external_url warnings: the
        // others (write API off, severities without targets) are tested
        // where they are made.
        Ok(l) => Ok((
            l.config,
            l.warnings
                .iter()
                .map(ToString::to_string)
                .filter(|w| w.contains(": notifiers[") || w.contains(": server.external_url"))
                .collect(),
        )),
        Err(ConfigError::Invalid(p)) => Err(p.0.iter().map(ToString::to_string).collect()),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn problems(notifiers: &str, expected: &[&str]) {
    match load(notifiers, &ENV) {
        Ok(_) => panic!("expected problems {expected:#?} for:\n{notifiers}"),
        Err(got) => assert_eq!(got, expected, "for:\n{notifiers}"),
    }
}

const ENV: [(&str, &str); 6] = [
    ("SNOW_USER", "u"),
    ("SNOW_PASSWORD", "p"),
    ("SNOW_TOKEN", "t"),
    ("JIRA_USER", "j@example.com"),
    ("JIRA_TOKEN", "t"),
    ("OPSGENIE_API_KEY", "k"),
];

#[test]
fn the_documented_example_parses_to_the_written_values() {
    let (cfg, warnings) = load(
        "server:
  listen: 127.0.0.1:9464
  external_url: https://sentinel.example.com/
notifiers:
  - name: snow
    type: servicenow
    url: https://acme.service-now.com
    username_env: SNOW_USER
    password_env: SNOW_PASSWORD
    table: incident
    fields: { assignment_group: IT Operations, u_tier: 1 }
    close_code: Workaround provided
    severity_map:
      P2: { impact: 2, urgency: 1 }
  - name: jira
    type: jira
    url: https://acme.atlassian.net
    user_env: JIRA_USER
    token_env: JIRA_TOKEN
    project: OPS
    issue_type: Incident
    resolve_transition: Resolved
    fields:
      labels: [web-team]
      components: [{ name: Network }]
    severity_map: { P1: Blocker }
  - name: genie
    type: opsgenie
    url: https://api.eu.opsgenie.com
    api_key_env: OPSGENIE_API_KEY
    fields:
      responders: [{ type: team, name: ops }]
    severity_map: { critical: P1 }
",
        &ENV,
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cfg.server.external_url, "https://sentinel.example.com");
    let kinds: Vec<&NotifierKind> = cfg.notifiers.iter().map(|n| &n.kind).collect();
    assert_eq!(
        kinds[0],
        &NotifierKind::ServiceNow(ServiceNowSpec {
            url: url::Url::parse("https://acme.service-now.com").unwrap(),
            auth: ServiceNowAuth::Basic {
                username_env: "SNOW_USER".into(),
                password_env: "SNOW_PASSWORD".into(),
            },
            table: "incident".into(),
            fields: vec![
                ("assignment_group".into(), "IT Operations".into()),
                ("u_tier".into(), "1".into()),
            ],
            close_code: "Workaround provided".into(),
            severity_map: BTreeMap::from([(
                "P2".to_string(),
                SnowUrgency {
                    impact: 2,
                    urgency: 1
                }
            )]),
        })
    );
    assert_eq!(
        kinds[1],
        &NotifierKind::Jira(JiraSpec {
            url: url::Url::parse("https://acme.atlassian.net").unwrap(),
            user_env: "JIRA_USER".into(),
            token_env: "JIRA_TOKEN".into(),
            project: "OPS".into(),
            issue_type: "Incident".into(),
            resolve_transition: "Resolved".into(),
            fields: vec![
                ("labels".into(), serde_json::json!(["web-team"])),
                (
                    "components".into(),
                    serde_json::json!([{"name": "Network"}])
                ),
            ],
            severity_map: BTreeMap::from([("P1".to_string(), "Blocker".to_string())]),
        })
    );
    assert_eq!(
        kinds[2],
        &NotifierKind::Opsgenie(OpsgenieSpec {
            url: url::Url::parse("https://api.eu.opsgenie.com").unwrap(),
            api_key_env: "OPSGENIE_API_KEY".into(),
            fields: vec![(
                "responders".into(),
                serde_json::json!([{"type": "team", "name": "ops"}])
            )],
            severity_map: BTreeMap::from([("critical".to_string(), "P1".to_string())]),
        })
    );
}

#[test]
fn defaults_apply() {
    let (cfg, _) = load(
        "server: { listen: '0.0.0.0:9999' }
notifiers:
  - { name: snow, type: servicenow, url: 'https://a.service-now.com', token_env: SNOW_TOKEN }
  - { name: jira, type: jira, url: 'https://a.atlassian.net', user_env: JIRA_USER, token_env: JIRA_TOKEN, project: OPS }
",
        &ENV,
    )
    .unwrap();
    assert_eq!(cfg.server.external_url, "http://0.0.0.0:9999");
    let NotifierKind::ServiceNow(s) = &cfg.notifiers[0].kind else {
        panic!("servicenow expected");
    };
    assert_eq!(
        (&s.auth, s.table.as_str(), s.close_code.as_str()),
        (
            &ServiceNowAuth::Bearer {
                token_env: "SNOW_TOKEN".into()
            },
            "incident",
            "Solution provided"
        )
    );
    let NotifierKind::Jira(j) = &cfg.notifiers[1].kind else {
        panic!("jira expected");
    };
    assert_eq!(
        (j.issue_type.as_str(), j.resolve_transition.as_str()),
        ("Incident", "Done")
    );
    let (cfg, _) = load("", &ENV).unwrap();
    assert_eq!(cfg.server.external_url, "http://127.0.0.1:9464");
}

#[test]
fn credentials_are_required_and_one_auth_mode_at_a_time() {
    problems(
        "notifiers:
  - { name: a, type: servicenow, url: 'https://a.service-now.com' }
  - { name: b, type: servicenow, url: 'https://a.service-now.com', username_env: SNOW_USER, token_env: SNOW_TOKEN }
  - { name: c, type: servicenow, url: 'https://a.service-now.com', password_env: SNOW_PASSWORD }
  - { name: d, type: jira, url: 'https://a.atlassian.net', project: OPS }
  - { name: e, type: opsgenie, url: 'https://api.opsgenie.com' }
",
        &[
            "t.yaml:2:5: notifiers[0].username_env: missing credentials: `username_env` + `password_env` (basic auth) or `token_env` (OAuth bearer) — name the environment variables that hold them, e.g. `username_env: SNOW_USER`",
            "t.yaml:3:104: notifiers[1].token_env: give either `username_env` + `password_env` (basic auth) or `token_env` (OAuth bearer), not both",
            "t.yaml:4:5: notifiers[2].username_env: missing required key `username_env` — basic auth needs both `username_env` and `password_env`",
            "t.yaml:5:5: notifiers[3].user_env: missing required key `user_env` — jira notifiers authenticate with the account's e-mail (`user_env`) and an API token (`token_env`)",
            "t.yaml:5:5: notifiers[3].token_env: missing required key `token_env` — jira notifiers authenticate with the account's e-mail (`user_env`) and an API token (`token_env`)",
            "t.yaml:6:5: notifiers[4].api_key_env: missing required key `api_key_env` — opsgenie notifiers need the environment variable holding the API integration key",
        ],
    );
}

#[test]
fn keys_of_one_provider_on_another_type_are_errors() {
    problems(
        "notifiers:
  - { name: a, type: webhook, url: 'http://h/x', table: incident, severity_map: { P1: P1 } }
  - { name: b, type: jira, url: 'https://a.atlassian.net', user_env: JIRA_USER, token_env: JIRA_TOKEN, project: OPS, api_key_env: OPSGENIE_API_KEY, close_code: x }
  - { name: c, type: opsgenie, url_env: OPSGENIE_URL, api_key_env: OPSGENIE_API_KEY }
",
        &[
            "t.yaml:2:57: notifiers[0].table: `table` is only used by `servicenow` notifiers, not `webhook`",
            "t.yaml:2:81: notifiers[0].severity_map: `severity_map` is only used by `servicenow`, `jira` or `opsgenie` notifiers, not `webhook`",
            "t.yaml:3:131: notifiers[1].api_key_env: `api_key_env` is only used by `opsgenie` notifiers, not `jira`",
            "t.yaml:3:161: notifiers[1].close_code: `close_code` is only used by `servicenow` notifiers, not `jira`",
            "t.yaml:4:41: notifiers[2].url_env: `opsgenie` notifiers take `url`, not `url_env` — the instance URL is not a secret; the credentials go in the `_env` keys",
        ],
    );
}

#[test]
fn fields_and_severity_maps_are_checked() {
    problems(
        "notifiers:
  - name: snow
    type: servicenow
    url: https://a.service-now.com
    token_env: SNOW_TOKEN
    table: Incident Table
    fields: { correlation_id: x, Assignment Group: y, caller_id: [a] }
    severity_map: { P1: { impact: 0, urgency: 1 }, P2: 2 }
  - name: jira
    type: jira
    url: https://a.atlassian.net
    user_env: JIRA_USER
    token_env: JIRA_TOKEN
    project: OPS team
    fields: { priority: { name: High }, labels: [has space] }
    severity_map: { P1: '' }
  - name: genie
    type: opsgenie
    url: https://api.opsgenie.com
    api_key_env: OPSGENIE_API_KEY
    fields: { alias: x, tags: sentinel, details: { a: 1 } }
    severity_map: { P1: P0 }
",
        &[
            "t.yaml:6:12: notifiers[0].table: `Incident Table` is not valid here — expected a ServiceNow table name: lower-case letters, digits and `_`, e.g. `incident`",
            "t.yaml:7:31: notifiers[0].fields.correlation_id: `correlation_id` cannot be set in `fields` — sentinel finds its record by it",
            "t.yaml:7:52: notifiers[0].fields.Assignment Group: `Assignment Group` is not a ServiceNow field name — field names are lower-case letters, digits and `_`, e.g. `assignment_group`",
            "t.yaml:7:66: notifiers[0].fields.caller_id: field `caller_id` must be a text, number or boolean — ServiceNow stores every field as text; reference fields take a sys_id or display value",
            "t.yaml:8:25: notifiers[0].severity_map.P1: severity `P1` must map to `{ impact: 1..3, urgency: 1..3 }` — e.g. `P1: { impact: 1, urgency: 1 }` (1 is the highest)",
            "t.yaml:8:56: notifiers[0].severity_map.P2: severity `P2` must map to `{ impact: 1..3, urgency: 1..3 }` — e.g. `P1: { impact: 1, urgency: 1 }` (1 is the highest)",
            "t.yaml:14:14: notifiers[1].project: `OPS team` is not valid here — expected a Jira project key: letters, digits and `_`, e.g. `OPS`",
            "t.yaml:15:25: notifiers[1].fields.priority: `priority` cannot be set in `fields` — use `severity_map`",
            "t.yaml:15:49: notifiers[1].fields.labels: `labels` must be a list of texts without spaces — sentinel adds its own labels `sentinel` and `sentinel-<incident id>` to these",
            "t.yaml:16:25: notifiers[1].severity_map.P1: severity `P1` must map to a Jira priority name — e.g. `P1: Highest`",
            "t.yaml:21:22: notifiers[2].fields.alias: `alias` cannot be set in `fields` — sentinel finds its alert by it (the incident's dedup key)",
            "t.yaml:21:31: notifiers[2].fields.tags: `tags` must be a list of texts (sentinel adds `sentinel` and the service)",
            "t.yaml:21:50: notifiers[2].fields.details: `details` must be a mapping of texts (sentinel adds its own entries)",
            "t.yaml:22:25: notifiers[2].severity_map.P1: severity `P1` must map to one of Opsgenie's priorities P1..P5 — e.g. `critical: P1`",
        ],
    );
}

#[test]
fn external_url_is_a_plain_http_base() {
    for (value, expected) in [
        (
            "https://sentinel.example.com/?a=1",
            "t.yaml:1:25: server.external_url: external_url `https://sentinel.example.com/?a=1` has a query or fragment — give the base URL people reach sentinel at, e.g. `https://sentinel.example.com` or `https://ops.example.com/sentinel`",
        ),
        (
            "https://ops:pw@sentinel.example.com",
            "t.yaml:1:25: server.external_url: URL for `sentinel.example.com` contains credentials (`user:password@`) — links sent out must not carry credentials: protect the API with `api_token_env`",
        ),
        (
            "sentinel.example.com",
            "t.yaml:1:25: server.external_url: invalid URL `sentinel.example.com`: missing scheme — write `https://sentinel.example.com`",
        ),
    ] {
        problems(
            &format!("server: {{ external_url: '{value}' }}\n"),
            &[expected],
        );
    }
    let (cfg, _) = load(
        "server: { external_url: 'https://ops.example.com/sentinel/' }\n",
        &ENV,
    )
    .unwrap();
    assert_eq!(cfg.server.external_url, "https://ops.example.com/sentinel");
}

#[test]
fn unset_credentials_are_warnings_that_name_the_consequence() {
    let (_, warnings) = load(
        "notifiers:
  - { name: snow, type: servicenow, url: 'https://a.service-now.com', username_env: SNOW_USER, password_env: SNOW_PASSWORD }
  - { name: genie, type: opsgenie, url: 'https://api.opsgenie.com', api_key_env: OPSGENIE_API_KEY }
",
        &[("SNOW_USER", "u")],
    )
    .unwrap();
    assert_eq!(
        warnings,
        [
            "t.yaml:2:110: notifiers[0].password_env: environment variable SNOW_PASSWORD is not set: tickets of notifier `snow` are not created or updated until it is set — export SNOW_PASSWORD in the daemon's environment",
            "t.yaml:3:82: notifiers[1].api_key_env: environment variable OPSGENIE_API_KEY is not set: tickets of notifier `genie` are not created or updated until it is set — export OPSGENIE_API_KEY in the daemon's environment",
        ]
    );
}

/// Docs cannot rot: every YAML block of docs/tickets.md loads.
#[test]
fn every_yaml_example_in_the_tickets_doc_loads() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tickets.md"))
            .unwrap();
    let mut loaded = 0;
    for block in text.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        let full = if yaml.contains("services:") {
            yaml.to_string()
        } else {
            format!("{yaml}{SERVICE}")
        };
        let lookup = |_: &str| Some("set".to_string());
        if let Err(e) = config::parse_with_env(&full, "docs/tickets.md", &lookup) {
            panic!("docs/tickets.md block does not load:\n{full}\n{e}");
        }
        loaded += 1;
    }
    assert!(loaded >= 2, "only {loaded} YAML blocks found");
}
