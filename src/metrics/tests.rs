//! Rendering of the SLO families and the config facts, from real snapshots.

use std::sync::Arc;

use jiff::Timestamp;

use super::*;
use crate::config::{Config, parse_str};
use crate::engine::EngineState;
use crate::metrics::service_info::DESCRIPTION_LABEL_MAX_CHARS;

/// The sample lines of `out` (no `# HELP` / `# TYPE`) of family `name`.
fn lines(out: &Expo, name: &str) -> Vec<String> {
    out.as_str()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(str::to_string)
        .collect()
}

fn config(text: &str) -> Config {
    parse_str(text, "test.yaml").unwrap()
}

const SERVICES: &str = r#"
response_targets:
  P1: { acknowledge: 5m, restore: 30m }
  P3: { acknowledge: 1h30m, restore: 2d }
services:
  - name: vpn
    owner: networking
    tier: 1
    description: "Remote \"access\" VPN\\gateway\nsecond line"
    checks: [{ name: port, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99.5, window: month, latency: { threshold: 1s, objective: 99 } }
  - name: mail
    checks: [{ name: smtp, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99, window: 1d }
  - name: wiki
    tier: 3
    checks: [{ name: home, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
    slo: { objective: 99, window: 30d }
  - name: print
    checks: [{ name: queue, interval: 1m, tcp: { host: 127.0.0.1, port: 1 } }]
"#;

#[test]
fn service_info_and_response_targets_come_from_the_config() {
    let mut out = Expo::new();
    render_service_info(&mut out, &config(SERVICES));
    assert_eq!(
        lines(&out, "sentinel_service_info"),
        [
            r#"sentinel_service_info{service="vpn",owner="networking",tier="1",description="Remote \"access\" VPN\\gateway\nsecond line"} 1"#,
            r#"sentinel_service_info{service="mail",owner="",tier="",description=""} 1"#,
            r#"sentinel_service_info{service="wiki",owner="",tier="3",description=""} 1"#,
            r#"sentinel_service_info{service="print",owner="",tier="",description=""} 1"#,
        ]
    );
    assert_eq!(
        lines(&out, "sentinel_response_target_seconds"),
        [
            r#"sentinel_response_target_seconds{severity="P1",stage="acknowledge"} 300"#,
            r#"sentinel_response_target_seconds{severity="P1",stage="restore"} 1800"#,
            r#"sentinel_response_target_seconds{severity="P3",stage="acknowledge"} 5400"#,
            r#"sentinel_response_target_seconds{severity="P3",stage="restore"} 172800"#,
        ]
    );
}

#[test]
fn a_long_description_is_cut_on_a_character_boundary() {
    // 200 three-byte characters: the label keeps the first 120, whole.
    let text = format!(
        "services:\n  - name: x\n    description: {}\n    checks: [{{ name: c, tcp: {{ host: 127.0.0.1, port: 1 }} }}]\n",
        "€".repeat(200)
    );
    let mut out = Expo::new();
    render_service_info(&mut out, &config(&text));
    assert_eq!(
        lines(&out, "sentinel_service_info"),
        [format!(
            r#"sentinel_service_info{{service="x",owner="",tier="",description="{}"}} 1"#,
            "€".repeat(DESCRIPTION_LABEL_MAX_CHARS)
        )]
    );
}

#[test]
fn without_response_targets_only_the_header_is_rendered() {
    let mut out = Expo::new();
    render_service_info(
        &mut out,
        &config(
            "services:\n  - name: x\n    checks: [{ name: c, tcp: { host: 127.0.0.1, port: 1 } }]\n",
        ),
    );
    assert_eq!(
        lines(&out, "sentinel_response_target_seconds"),
        Vec::<String>::new()
    );
    assert!(
        out.as_str()
            .contains("# TYPE sentinel_response_target_seconds gauge\n")
    );
}

/// At `now`, the SLO families of [`SERVICES`] before any run.
fn slo_scrape(now: &str) -> Expo {
    let mut s = EngineState::new(Arc::new(config(SERVICES)));
    let now: Timestamp = now.parse().unwrap();
    let (snap, _) = s.evaluate(now);
    let mut out = Expo::new();
    render_slo(&mut out, &snap);
    out
}

#[test]
fn slo_window_seconds_is_the_window_and_the_calendar_month() {
    // February 2028 has 29 days; a 1d window is 86 400 s, 30d 2 592 000 s.
    let feb = lines(
        &slo_scrape("2028-02-10T12:00:00Z"),
        "sentinel_slo_window_seconds",
    );
    assert_eq!(
        feb,
        [
            r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2505600"#,
            r#"sentinel_slo_window_seconds{service="vpn",slo="latency"} 2505600"#,
            r#"sentinel_slo_window_seconds{service="mail",slo="availability"} 86400"#,
            r#"sentinel_slo_window_seconds{service="wiki",slo="availability"} 2592000"#,
        ]
    );
    // The last second of a 31-day month, then the first of a 30-day one.
    let jan = lines(
        &slo_scrape("2028-01-31T23:59:59Z"),
        "sentinel_slo_window_seconds",
    );
    assert_eq!(
        jan[0],
        r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2678400"#
    );
    let apr = lines(
        &slo_scrape("2028-04-01T00:00:00Z"),
        "sentinel_slo_window_seconds",
    );
    assert_eq!(
        apr[0],
        r#"sentinel_slo_window_seconds{service="vpn",slo="availability"} 2592000"#
    );
}

#[test]
fn exactly_one_row_per_slo_is_the_slo_window() {
    let out = slo_scrape("2028-02-10T12:00:00Z");
    let cov = lines(&out, "sentinel_slo_window_coverage_ratio");
    let slo_windows: Vec<&str> = cov
        .iter()
        .filter(|l| l.contains(r#"is_slo_window="true""#))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        slo_windows,
        [
            r#"sentinel_slo_window_coverage_ratio{service="vpn",slo="availability",window="month",is_slo_window="true"}"#,
            r#"sentinel_slo_window_coverage_ratio{service="vpn",slo="latency",window="month",is_slo_window="true"}"#,
            // A 1d SLO window is also the 1d burn window: one series, marked.
            r#"sentinel_slo_window_coverage_ratio{service="mail",slo="availability",window="1d",is_slo_window="true"}"#,
            r#"sentinel_slo_window_coverage_ratio{service="wiki",slo="availability",window="30d",is_slo_window="true"}"#,
        ]
    );
    // Every other row says false: 8 rows per SLO with its own window
    // label (3 SLOs), 7 for mail.
    assert_eq!(cov.len(), 8 * 3 + 7);
    assert_eq!(
        cov.iter()
            .filter(|l| l.contains(r#"is_slo_window="false""#))
            .count(),
        cov.len() - 4
    );
}
