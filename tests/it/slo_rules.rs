//! `sentinel rules`: the generated file passes the real `promtool check rules`,
//! the expressions are exactly what we document, and `promtool test rules`
//! fires the same alerts sentinel's own `burn_alerts` would.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sentinel::config::{
    Config, Defaults, IncidentPolicy, LatencySlo, Server, Service, Slo, SloWindow, StatusPage,
    Storage,
};
use sentinel::rules::{alert_expr, error_ratio_expr, generate};
use sentinel::slo::{
    AlertSeverity, AlertState, Counts, Resolution, Schedule, ServiceSlo, burn_alerts,
};

const D30: SloWindow = SloWindow::Rolling(Duration::from_secs(30 * 86_400));

fn service(name: &str, slo: Option<Slo>) -> Service {
    Service {
        name: name.into(),
        description: None,
        owner: None,
        tier: None,
        checks: vec![],
        slo,
        incident: IncidentPolicy {
            open_after: 3,
            resolve_after: 2,
            burn_rate_alerts: true,
            severity: "P2".into(),
            notify: vec![],
        },
    }
}

fn config(services: Vec<Service>) -> Config {
    Config {
        server: Server {
            listen: "127.0.0.1:9464".parse().unwrap(),
            api_token_env: None,
            max_concurrency: 1024,
            max_connections: None,
            worker_threads: None,
            read_timeout: std::time::Duration::from_secs(10),
            external_url: "http://127.0.0.1:9464".into(),
        },
        storage: Storage {
            path: "data/sentinel.db".into(),
            minute_retention: Duration::from_secs(3 * 86_400),
            retention: Duration::from_secs(400 * 86_400),
        },
        defaults: Defaults {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        },
        notifiers: vec![],
        response_targets: BTreeMap::new(),
        maintenance: vec![],
        services,
        metrics: Default::default(),
        status_page: StatusPage::default(),
        inbound: Default::default(),
    }
}

fn slo(objective: f64, window: SloWindow) -> Slo {
    Slo {
        objective,
        window,
        latency: None,
    }
}

fn promtool() -> &'static str {
    let p = "/usr/bin/promtool";
    assert!(
        Path::new(p).exists(),
        "promtool is required for this test: apt-get install -y prometheus"
    );
    p
}

/// Runs `promtool <args> FILE...` in `dir`; returns (success, stdout+stderr).
fn run_promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(promtool())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn error_ratio_expression_is_exact() {
    let all = "sum by (service) (rate(sentinel_check_runs_total{service=\"identity\"}[5m]))";
    let bad = "sum by (service) (rate(sentinel_check_runs_total{service=\"identity\",result=\"bad\"}[5m]))";
    let expected = "max by (service) (sentinel_slo_expected_runs_per_second{service=\"identity\"})";
    // bad / max(all, expected): `all >= expected` keeps all where it is the
    // larger, `or expected` fills in the rest, `or all` covers a missing gauge.
    assert_eq!(
        error_ratio_expr("identity", "5m"),
        format!(
            "(\n  {bad}\n  or\n  {all} * 0\n)\n/\n(\n  (\n    (\n      {all}\n      >=\n      {expected}\n    )\n    or\n    {expected}\n    or\n    {all}\n  )\n  > 0\n)"
        )
    );
}

#[test]
fn alert_expressions_are_exact_for_30d_and_month() {
    let page = "(\n  sentinel:slo_error_ratio:rate1h{service=\"identity\"} > 14.4 * (1 - 0.999)\n  and\n  sentinel:slo_error_ratio:rate5m{service=\"identity\"} > 14.4 * (1 - 0.999)\n)\nor\n(\n  sentinel:slo_error_ratio:rate6h{service=\"identity\"} > 6 * (1 - 0.999)\n  and\n  sentinel:slo_error_ratio:rate30m{service=\"identity\"} > 6 * (1 - 0.999)\n)";
    let ticket = "(\n  sentinel:slo_error_ratio:rate1d{service=\"identity\"} > 3 * (1 - 0.999)\n  and\n  sentinel:slo_error_ratio:rate2h{service=\"identity\"} > 3 * (1 - 0.999)\n)\nor\n(\n  sentinel:slo_error_ratio:rate3d{service=\"identity\"} > 1 * (1 - 0.999)\n  and\n  sentinel:slo_error_ratio:rate6h{service=\"identity\"} > 1 * (1 - 0.999)\n)";
    for window in [D30, SloWindow::Month] {
        let s = slo(0.999, window);
        assert_eq!(alert_expr("identity", &s, AlertSeverity::Page), page);
        assert_eq!(alert_expr("identity", &s, AlertSeverity::Ticket), ticket);
    }
    // A 7d window scales the factors: 2% × 7d / 1h = 3.36.
    let s = slo(0.99, SloWindow::Rolling(Duration::from_secs(7 * 86_400)));
    assert!(alert_expr("web", &s, AlertSeverity::Page).starts_with(
        "(\n  sentinel:slo_error_ratio:rate1h{service=\"web\"} > 3.36 * (1 - 0.99)\n"
    ));
}

#[test]
fn generated_rules_pass_promtool_check_lint_fatal() {
    let latency = |mut s: Slo| {
        s.latency = Some(LatencySlo {
            threshold: Duration::from_millis(300),
            objective: 0.99,
        });
        s
    };
    let mut quiet = service("quiet", Some(slo(0.99, D30)));
    quiet.incident.burn_rate_alerts = false;
    // Several services with the same window and latency SLOs: before the
    // alerts carried a `service` label, their alerts were duplicates.
    let cfg = config(vec![
        service("identity", Some(latency(slo(0.999, D30)))),
        service("vpn", Some(latency(slo(0.999, D30)))),
        service("mail", Some(slo(0.999, D30))),
        service("billing", Some(latency(slo(0.995, SloWindow::Month)))),
        service("ledger", Some(slo(0.995, SloWindow::Month))),
        service("no-slo", None),
        quiet,
        service(
            "weird \"name\" \\ x",
            Some(slo(
                0.9,
                SloWindow::Rolling(Duration::from_secs(7 * 86_400)),
            )),
        ),
    ]);
    let text = generate(&cfg);
    assert!(text.contains("Maintenance windows are NOT visible to these rules"));
    assert!(text.contains("Latency SLOs are not covered"));
    assert!(!text.contains("no-slo"));
    for internal in ["SPEC", "../shared"] {
        assert!(
            !text.contains(internal),
            "rules mention {internal}:\n{text}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &text).unwrap();
    let (ok, out) = run_promtool(dir.path(), &["check", "rules", "--lint-fatal", "rules.yml"]);
    assert!(ok, "promtool failed:\n{out}\n---\n{text}");
    // 6 services × (7 recording + 2 alerting) rules, and 7 recording rules for `quiet`.
    assert!(out.contains("SUCCESS: 61 rules found"), "{out}");
    assert!(text.contains("incident.burn_rate_alerts is false"));
}

#[test]
fn no_slo_gives_an_empty_but_valid_file() {
    let text = generate(&config(vec![service("plain", None)]));
    assert!(text.ends_with("groups: []\n"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &text).unwrap();
    let (ok, out) = run_promtool(dir.path(), &["check", "rules", "--lint-fatal", "rules.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 0 rules found"), "{out}");
}

/// Minutes of history in the equivalence scenarios: 4 days, more than the 3d window.
const MINUTES: usize = 4 * 24 * 60;
const RUNS_PER_MINUTE: u64 = 1000;
/// The schedule behind those runs: one check every 60 ms.
const INTERVAL: Duration = Duration::from_millis(60);

/// Feeds per-minute bad counts (`None`: sentinel was not watching yet) to
/// sentinel (through the restore path, which the slo proptests prove equal to
/// recording) and returns its burn alerts just before the end of the last minute.
fn sentinel_alerts(slo_cfg: &Slo, bad: &[Option<u64>]) -> AlertState {
    let base: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z
    let mut s = ServiceSlo::new(slo_cfg, Schedule::new([INTERVAL], []));
    let mut hours = BTreeMap::<i64, Counts>::new();
    for (m, b) in bad.iter().enumerate() {
        let Some(b) = b else { continue };
        let start = base + 60 * m as i64;
        let c = Counts {
            valid: RUNS_PER_MINUTE,
            good: RUNS_PER_MINUTE - b,
            latency_good: 0,
        };
        s.add_bucket(Resolution::Minute, start, c);
        let h = hours.entry(start.div_euclid(3600) * 3600).or_default();
        h.valid += c.valid;
        h.good += c.good;
    }
    for (start, c) in hours {
        s.add_bucket(Resolution::Hour, start, c);
    }
    let now = jiff::Timestamp::from_second(base + 60 * bad.len() as i64 - 1).unwrap();
    burn_alerts(&s.figures(now))
}

/// Cumulative counter samples, one a minute: sample m = runs in minutes < m;
/// no sample (`_`) before the first watched minute, which starts at 0.
fn counter_values(per_minute: impl Iterator<Item = Option<u64>>) -> String {
    let mut total: Option<u64> = None;
    let mut v = Vec::new();
    for x in per_minute {
        match (total, x) {
            (None, None) => v.push("_".to_string()),
            (None, Some(x)) => {
                v.push("0".to_string());
                total = Some(x);
            }
            (Some(t), x) => {
                v.push(t.to_string());
                total = Some(t + x.unwrap_or(0));
            }
        }
    }
    v.push(total.map_or("_".to_string(), |t| t.to_string()));
    v.join(" ")
}

/// What `promtool test rules` says fires at the end of the same history.
fn promtool_agrees(slo_cfg: &Slo, bad: &[Option<u64>], expected: AlertState) {
    let cfg = config(vec![service("identity", Some(slo_cfg.clone()))]);
    let window = slo_cfg.window.label();
    let mut samples = String::new();
    for (on, severity) in [(expected.page, "page"), (expected.ticket, "ticket")] {
        if on {
            samples.push_str(&format!(
                "          - labels: 'ALERTS{{alertname=\"SentinelErrorBudgetBurn\",alertstate=\"firing\",service=\"identity\",severity=\"{severity}\",slo=\"availability\",slo_window=\"{window}\"}}'\n            value: 1\n"
            ));
        }
    }
    if samples.is_empty() {
        samples = "          []\n".into();
    }
    let test = format!(
        "rule_files: [rules.yml]\nevaluation_interval: 1h\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'sentinel_check_runs_total{{service=\"identity\",check=\"login\",result=\"good\"}}'\n        values: '{good}'\n      - series: 'sentinel_check_runs_total{{service=\"identity\",check=\"login\",result=\"bad\"}}'\n        values: '{badv}'\n      - series: 'sentinel_slo_expected_runs_per_second{{service=\"identity\",instance=\"sentinel:9464\"}}'\n        values: '{rate}+0x{MINUTES}'\n    promql_expr_test:\n      - expr: ALERTS{{alertname=\"SentinelErrorBudgetBurn\"}}\n        eval_time: {MINUTES}m\n        exp_samples:\n{samples}",
        good = counter_values(bad.iter().map(|b| b.map(|b| RUNS_PER_MINUTE - b))),
        badv = counter_values(bad.iter().copied()),
        rate = Schedule::new([INTERVAL], []).runs_per_second(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), generate(&cfg)).unwrap();
    std::fs::write(dir.path().join("test.yml"), test).unwrap();
    let (ok, out) = run_promtool(dir.path(), &["test", "rules", "test.yml"]);
    assert!(
        ok,
        "promtool disagrees with sentinel ({expected:?}):\n{out}"
    );
}

/// One scenario: `bad_per_mille` bad runs per 1000 during the last `minutes`
/// minutes (good before) of `watched` minutes of history (nothing before).
/// Sentinel must give `expected`, and Prometheus too.
fn check_young(watched: usize, bad_per_mille: u64, minutes: usize, expected: AlertState) {
    let slo_cfg = slo(0.999, D30);
    let bad: Vec<Option<u64>> = (0..MINUTES)
        .map(|m| {
            if m < MINUTES - watched {
                None
            } else if m >= MINUTES - minutes {
                Some(bad_per_mille)
            } else {
                Some(0)
            }
        })
        .collect();
    assert_eq!(
        sentinel_alerts(&slo_cfg, &bad),
        expected,
        "sentinel, {bad_per_mille}‰ for {minutes}m of {watched}m"
    );
    promtool_agrees(&slo_cfg, &bad, expected);
}

/// [`check_young`] on a full 4 days of history.
fn check(bad_per_mille: u64, minutes: usize, expected: AlertState) {
    check_young(MINUTES, bad_per_mille, minutes, expected);
}

#[test]
fn promtool_fires_the_same_burn_alerts_as_sentinel() {
    let (none, page, ticket, both) = (
        AlertState::default(),
        AlertState {
            page: true,
            ticket: false,
        },
        AlertState {
            page: false,
            ticket: true,
        },
        AlertState {
            page: true,
            ticket: true,
        },
    );
    // Healthy.
    check(0, 0, none);
    // Fast burn, 15% for 10m: 1h = 2.5% > 1.44%, 6h = 0.42% < 0.6%; 1d < 0.3%.
    check(150, 10, page);
    // Slow burn, 0.5% for 2 days: 1d and 2h > 0.3%, 6h < 0.6%, 1h < 1.44%.
    check(5, 2 * 24 * 60, ticket);
    // 1% for 8h: 6h and 30m > 0.6%; 1d = 0.33% and 2h > 0.3%.
    check(10, 8 * 60, both);
    // Young history: watched for 10 minutes, the last 2 at 10%. Over the runs
    // seen alone that is 2% everywhere (page and ticket); over the schedule's
    // hour it is 200 of 60 000 runs (burn 3.3), over its day 0.14: nothing.
    check_young(10, 100, 2, none);
    // Watched for 40 minutes, the last 10 at 15%: 1 500 of the hour's 60 000
    // runs is burn 25 and the 5m window burns 150, so it pages as it would on
    // a long history; 6h (4.2 < 6) and the ticket windows stay quiet.
    check_young(40, 150, 10, page);
}
