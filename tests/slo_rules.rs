//! `sentinel rules`: the generated file passes the real `promtool check rules`,
//! the expressions are exactly what we document, and `promtool test rules`
//! fires the same alerts sentinel's own `burn_alerts` would.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure report
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sentinel::config::{
    Config, Defaults, IncidentPolicy, LatencySlo, Server, Service, Slo, SloWindow, Storage,
};
use sentinel::rules::{alert_expr, error_ratio_expr, generate};
use sentinel::slo::AlertSeverity;

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
    assert_eq!(
        error_ratio_expr("identity", "5m"),
        "(\n  sum by (service) (rate(sentinel_check_runs_total{service=\"identity\",result=\"bad\"}[5m]))\n  or\n  sum by (service) (rate(sentinel_check_runs_total{service=\"identity\"}[5m])) * 0\n)\n/\n(sum by (service) (rate(sentinel_check_runs_total{service=\"identity\"}[5m])) > 0)"
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
fn generated_rules_pass_promtool_check() {
    let mut with_latency = slo(0.995, SloWindow::Month);
    with_latency.latency = Some(LatencySlo {
        threshold: Duration::from_millis(300),
        objective: 0.99,
    });
    let cfg = config(vec![
        service("identity", Some(slo(0.999, D30))),
        service("billing", Some(with_latency)),
        service("no-slo", None),
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
    assert!(!text.contains("no-slo"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &text).unwrap();
    let (ok, out) = run_promtool(dir.path(), &["check", "rules", "rules.yml"]);
    assert!(ok, "promtool failed:\n{out}\n---\n{text}");
    // 3 services × (7 recording + 2 alerting) rules.
    assert!(out.contains("SUCCESS: 27 rules found"), "{out}");
}

#[test]
fn no_slo_gives_an_empty_but_valid_file() {
    let text = generate(&config(vec![service("plain", None)]));
    assert!(text.ends_with("groups: []\n"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &text).unwrap();
    let (ok, out) = run_promtool(dir.path(), &["check", "rules", "rules.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 0 rules found"), "{out}");
}
