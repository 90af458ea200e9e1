//! The shipped Grafana dashboards, proven against real parts: the real
//! `sentinel` binary probes loopback targets for three services with their
//! own owners, tiers, SLO windows (30d, `month`, `1d`) and non-default
//! response targets, through an outage of one of them (an incident opens, is
//! acknowledged through the API and resolves); Debian's `prometheus` scrapes
//! it every second, and every panel query of `dashboards/*.json` runs through
//! Prometheus' query API and must return at least one series with a finite
//! value (a ratio of `increase()`s over a range without events is NaN). The
//! owner / tier filter is proven to keep exactly the matching services, and
//! the target panels to return the configured targets.
//!
//! The JSON is also checked for what Grafana file provisioning needs (the
//! datasource is a template variable, never `__inputs`), for layout and unit
//! mistakes, for a stated time base on every panel, for the owner / tier
//! filter on every query, and for numeric thresholds on response-target
//! figures (colours must come from `sentinel_response_target_seconds`); a
//! query naming a metric sentinel does not export fails with the panel's
//! title and the query. Rendering in Grafana is not tested: Debian has no
//! `grafana` package.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sentinel::clock::{Clock, SystemClock};

use crate::support::daemon::Daemon;
use crate::support::prom::{promtool_complaints, start_prometheus};
use crate::support::servers::start_target;
use crate::support::webhooks::Receiver;
use crate::support::{eventually, secs};
use serde_json::{Value, json};

const FILES: [&str; 2] = ["leadership.json", "service.json"];
const TOKEN: &str = "dash-board-token";
/// The service that goes through an outage.
const SERVICE: &str = "portal";
/// What every query reading a per-service metric joins on, so the `owner`
/// and `tier` variables filter it.
const FILTER: &str = r#"sentinel_service_info{owner=~"$owner",tier=~"$tier"}"#;
/// Metrics without a `service` label: a query reading only these may ignore
/// the service, owner and tier variables.
const SERVICELESS: [&str; 3] = [
    "sentinel_response_target_seconds",
    "sentinel_notifier_deliveries_total",
    "sentinel_notifier_queue_depth",
];
/// Series whose value is a response-time figure compared with a target.
const RESPONSE_FIGURES: [&str; 3] = [
    "sentinel_incident_mtta_seconds",
    "sentinel_incident_mttr_seconds",
    "sentinel_response_target_seconds",
];

// ---------------------------------------------------------------------------
// Reading the dashboards

fn load(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

/// Every panel, including those nested in (collapsed) rows.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

fn title(p: &Value) -> &str {
    p["title"].as_str().unwrap_or("<untitled>")
}

fn exprs(p: &Value) -> Vec<&str> {
    p["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect()
}

/// `(panel title, expr)` of every query target.
fn queries(d: &Value) -> Vec<(String, String)> {
    panels(d)
        .into_iter()
        .flat_map(|p| {
            exprs(p)
                .into_iter()
                .map(|e| (title(p).to_string(), e.to_string()))
        })
        .collect()
}

/// The expr of query `ref_id` of the panel titled `panel_title`.
fn query(d: &Value, panel_title: &str, ref_id: &str) -> String {
    let p = panels(d)
        .into_iter()
        .find(|p| title(p) == panel_title)
        .unwrap_or_else(|| panic!("no panel \"{panel_title}\""));
    p["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["refId"] == ref_id)
        .and_then(|t| t["expr"].as_str())
        .unwrap_or_else(|| panic!("panel \"{panel_title}\" has no query {ref_id}"))
        .to_string()
}

fn variable<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["templating"]["list"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

/// What the template variables hold: a multi-value variable reaches
/// Prometheus as a regex (`.*` for "All").
#[derive(Debug, Clone, Copy)]
struct Vars<'a> {
    service: &'a str,
    owner: &'a str,
    tier: &'a str,
}

const ALL: Vars<'static> = Vars {
    service: ".*",
    owner: ".*",
    tier: ".*",
};

/// What Grafana would send for the template variables.
fn substitute(expr: &str, v: Vars) -> String {
    let mut out = expr.to_string();
    for (name, value) in [
        ("service", v.service),
        ("owner", v.owner),
        ("tier", v.tier),
        ("__range", "5m"),
        ("__rate_interval", "4s"),
        ("__interval", "1s"),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// The `sentinel_*` metric names in `expr`.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"sentinel_[a-z_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

// ---------------------------------------------------------------------------
// Checks on the JSON alone

fn datasource_ok(v: &Value) -> bool {
    *v == json!({"type": "prometheus", "uid": "${datasource}"})
}

/// An `owner` / `tier` variable: every value of the config label, several
/// at once, and "All" matching services without the label too.
fn info_variable_ok(d: &Value, name: &str) -> bool {
    variable(d, name).is_some_and(|v| {
        v["type"] == "query"
            && v["definition"] == format!("label_values(sentinel_service_info, {name})")
            && v["multi"] == true
            && v["includeAll"] == true
            && v["allValue"] == ".*"
    })
}

/// Every numeric threshold step of a panel (defaults and overrides).
fn threshold_values(p: &Value) -> Vec<f64> {
    let fc = &p["fieldConfig"];
    let mut sets = vec![&fc["defaults"]["thresholds"]];
    for o in fc["overrides"].as_array().into_iter().flatten() {
        for prop in o["properties"].as_array().into_iter().flatten() {
            if prop["id"] == "thresholds" {
                sets.push(&prop["value"]);
            }
        }
    }
    sets.into_iter()
        .flat_map(|t| t["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["value"].as_f64())
        .collect()
}

/// A query comparing a response time with its target: it reads MTTA or
/// MTTR and divides by `sentinel_response_target_seconds`.
fn is_target_ratio(expr: &str) -> bool {
    (expr.contains("sentinel_incident_mtta_seconds")
        || expr.contains("sentinel_incident_mttr_seconds"))
        && expr.contains("/ on(severity) max by (severity) (sentinel_response_target_seconds")
}

/// Everything wrong with a dashboard that Grafana file provisioning or a reader
/// would trip over, one message per problem.
fn structure_problems(file: &str, d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if d.get("__inputs").is_some() {
        out.push(format!(
            "{file}: has __inputs, which file provisioning does not resolve"
        ));
    }
    match variable(d, "datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => out.push(format!(
            "{file}: no `datasource` variable of type datasource for prometheus"
        )),
    }
    for name in ["owner", "tier"] {
        if !info_variable_ok(d, name) {
            out.push(format!(
                "{file}: no `{name}` variable: label_values(sentinel_service_info, {name}), multi-value, All = .*"
            ));
        }
    }
    let service_def = format!("label_values({FILTER}, service)");
    let multi = match variable(d, "service") {
        Some(v) if v["type"] == "query" && v["definition"] == service_def.as_str() => {
            if v["multi"] == true && v["allValue"] != ".*" {
                out.push(format!(
                    "{file}: multi-value `service` needs All = .* (the owner/tier join filters)"
                ));
            }
            v["multi"] == true
        }
        _ => {
            out.push(format!("{file}: no `service` variable from {service_def}"));
            false
        }
    };
    let mut ids = BTreeSet::new();
    for p in panels(d) {
        let t = title(p);
        let at = format!("{file}: panel {} \"{t}\"", p["id"]);
        match p["id"].as_u64() {
            Some(id) if ids.insert(id) => {}
            Some(_) => out.push(format!("{at}: duplicate id")),
            None => out.push(format!("{at}: no numeric id")),
        }
        let g = &p["gridPos"];
        let num = |k: &str| g[k].as_u64();
        match (num("x"), num("y"), num("w"), num("h")) {
            (Some(x), Some(_), Some(w), Some(h))
                if (1..=24).contains(&w) && x + w <= 24 && h > 0 => {}
            _ => out.push(format!("{at}: invalid gridPos {g}")),
        }
        if p["type"] == "row" {
            continue;
        }
        match p["fieldConfig"]["defaults"]["unit"].as_str() {
            Some(u) if !u.is_empty() => {}
            _ => out.push(format!("{at}: no unit (fieldConfig.defaults.unit)")),
        }
        if !datasource_ok(&p["datasource"]) {
            out.push(format!(
                "{at}: datasource is {} not ${{datasource}}",
                p["datasource"]
            ));
        }
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if targets.is_empty() {
            out.push(format!("{at}: no query"));
        }
        for tg in targets {
            let expr = tg["expr"].as_str().unwrap_or("");
            if expr.trim().is_empty() {
                out.push(format!("{at}: target {} has no expr", tg["refId"]));
            }
            if !datasource_ok(&tg["datasource"]) {
                out.push(format!(
                    "{at}: target {} datasource is {} not ${{datasource}}",
                    tg["refId"], tg["datasource"]
                ));
            }
            // A multi-value variable expands to an alternation: only `=~` matches it.
            if multi && (expr.contains("=\"$service\"") || expr.contains("=\"${service}\"")) {
                out.push(format!("{at}: multi-value $service needs =~ in `{expr}`"));
            }
            out.extend(filter_problems(&at, expr));
            if expr.contains("window!~") {
                out.push(format!(
                    "{at}: `window!~` hides SLO windows named like a burn window (1d, 3d); select is_slo_window=\"true\" in `{expr}`"
                ));
            }
        }
        out.extend(time_base_problems(&at, p));
        out.extend(threshold_problems(&at, p));
    }
    out
}

/// A query reading a per-service metric must take the service variable and
/// join on the owner / tier filter; one that ignores the service variable
/// may only read metrics without a service label.
fn filter_problems(at: &str, expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    if expr.contains("$service") {
        if !expr.contains(FILTER) {
            out.push(format!(
                "{at}: query `{expr}` is not filtered by owner and tier (join on {FILTER})"
            ));
        }
    } else {
        for m in metrics_in(expr) {
            if !SERVICELESS.contains(&m.as_str()) {
                out.push(format!(
                    "{at}: query `{expr}` reads {m} for every service, ignoring the service variable"
                ));
            }
        }
    }
    out
}

/// The title or description says the panel's time base: "SLO window" or
/// "selected time range", matching what the queries read, and a panel with
/// its own time range says that the time picker does not move it.
fn time_base_problems(at: &str, p: &Value) -> Vec<String> {
    let text = format!(
        "{} {}",
        title(p),
        p["description"].as_str().unwrap_or_default()
    );
    let says_slo = text.contains("SLO window");
    let says_range = text.contains("selected time range");
    let mut out = Vec::new();
    if !says_slo && !says_range {
        out.push(format!(
            "{at}: title and description say neither \"SLO window\" nor \"selected time range\""
        ));
    }
    let qs = exprs(p);
    if !says_range && qs.iter().any(|e| e.contains("$__range")) {
        out.push(format!(
            "{at}: counts over $__range but does not say \"selected time range\""
        ));
    }
    let slo_window = [
        "is_slo_window=\"true\"",
        "sentinel_slo_error_budget_remaining",
        "sentinel_slo_window_seconds",
    ];
    if !says_slo && qs.iter().any(|e| slo_window.iter().any(|s| e.contains(s))) {
        out.push(format!(
            "{at}: shows the SLO window but does not say \"SLO window\""
        ));
    }
    if p.get("timeFrom").is_some() && !text.contains("whatever the selected time range") {
        out.push(format!(
            "{at}: has its own time range ({}) but does not say \"whatever the selected time range\"",
            p["timeFrom"]
        ));
    }
    out
}

/// A panel showing a response-time figure (MTTA, MTTR or a target) takes its
/// colours from the configured targets, never from a number in the JSON:
/// no numeric threshold at all, unless every query is a ratio against
/// `sentinel_response_target_seconds`, and then only 1 (the target itself).
fn threshold_problems(at: &str, p: &Value) -> Vec<String> {
    let qs = exprs(p);
    if !qs
        .iter()
        .any(|e| RESPONSE_FIGURES.iter().any(|m| e.contains(m)))
    {
        return Vec::new();
    }
    let all_ratios = qs.iter().all(|e| is_target_ratio(e));
    threshold_values(p)
        .into_iter()
        .filter(|v| !(all_ratios && *v == 1.0))
        .map(|v| {
            format!(
                "{at}: numeric threshold {v} on a response-target figure; divide by sentinel_response_target_seconds and colour at 1 instead"
            )
        })
        .collect()
}

/// Metric names (and their histogram/summary series) in a `/metrics` scrape.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next().unwrap_or(""),
            None if line.starts_with('#') => continue,
            None => line.split(['{', ' ']).next().unwrap_or(""),
        };
        if name.is_empty() {
            continue;
        }
        names.insert(name.to_string());
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                names.insert(base.to_string());
            }
        }
    }
    names
}

/// Panel queries naming a `sentinel_*` metric that is not in `exported`.
fn unexported_metrics(file: &str, d: &Value, exported: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (t, expr) in queries(d) {
        for m in metrics_in(&expr) {
            if !exported.contains(&m) {
                out.push(format!(
                    "{file}: panel \"{t}\": query `{expr}` names {m}, which sentinel does not export"
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Tests on the JSON alone

#[test]
fn shipped_dashboards_are_structurally_sound() {
    for file in FILES {
        let d = load(file);
        assert_eq!(structure_problems(file, &d), Vec::<String>::new());
        assert!(!queries(&d).is_empty(), "{file} has no queries");
    }
    let lead = load("leadership.json");
    let svc = variable(&lead, "service").unwrap();
    assert_eq!(
        (&svc["multi"], &svc["includeAll"]),
        (&json!(true), &json!(true))
    );
    // "This month": increase(...[$__range]) counts the calendar month so far.
    assert_eq!(lead["time"], json!({"from": "now/M", "to": "now"}));
    let detail = load("service.json");
    assert_eq!(variable(&detail, "service").unwrap()["multi"], json!(false));
}

/// The shipped provisioning leaves a Grafana's own default datasource alone
/// (and cannot clash with another provisioned default: one per organization).
#[test]
fn provisioned_datasource_is_not_the_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards/provisioning/datasources/sentinel-prometheus.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    let sources = v["datasources"].as_array().unwrap();
    let named: Vec<(&Value, &Value, &Value, &Value)> = sources
        .iter()
        .map(|d| (&d["name"], &d["uid"], &d["type"], &d["isDefault"]))
        .collect();
    assert_eq!(
        named,
        [(
            &json!("sentinel-prometheus"),
            &json!("sentinel-prometheus"),
            &json!("prometheus"),
            &json!(false)
        )]
    );
}

/// The threshold rule is not vacuous: the boards do show response times
/// against targets, each coloured through a ratio or not at all.
#[test]
fn response_time_panels_take_their_colours_from_the_targets() {
    let mut shown = Vec::new();
    for file in FILES {
        for p in panels(&load(file)) {
            let qs = exprs(p);
            if !qs
                .iter()
                .any(|e| RESPONSE_FIGURES.iter().any(|m| e.contains(m)))
            {
                continue;
            }
            let ratios = qs.iter().all(|e| is_target_ratio(e));
            shown.push((title(p).to_string(), ratios, threshold_values(p)));
        }
    }
    let ratio = |t: &str| (t.to_string(), true, vec![1.0]);
    let plain = |t: &str| (t.to_string(), false, vec![]);
    assert_eq!(
        shown,
        vec![
            ratio("MTTA as a share of the acknowledge target — selected time range"),
            ratio("MTTR as a share of the restore target — selected time range"),
            plain("MTTA / MTTR and response targets — selected time range"),
            plain("MTTR, 90-day trend vs restore target — daily"),
            plain("MTTD / MTTA / MTTR — selected time range"),
            ratio("MTTA / MTTR as a share of the response targets — selected time range"),
        ]
    );
}

/// The MTTx `_sum`/`_count` and `sentinel_incident_response_total` are
/// cumulative since the first incident sentinel counted: a panel shows them
/// through `increase()` over a stated range, never raw (a raw ratio would be
/// an all-time mean, whatever the dashboard says).
#[test]
fn cumulative_incident_series_are_read_through_increase() {
    let cumulative = regex::Regex::new(
        r"(increase\()?(sentinel_incident_mtt[dar]_seconds_(sum|count)|sentinel_incident_response_total)",
    )
    .unwrap();
    let mut checked = 0;
    for file in FILES {
        for (t, expr) in queries(&load(file)) {
            let uses: Vec<_> = cumulative.captures_iter(&expr).collect();
            if uses.is_empty() {
                continue;
            }
            checked += 1;
            for u in uses {
                assert!(
                    u.get(1).is_some(),
                    "{file}: panel \"{t}\": {} outside increase() in `{expr}`",
                    &u[2]
                );
            }
        }
    }
    // Leadership: 2 SLA stats, attainment, MTTA and MTTR ratios, 2 table
    // means, MTTR trend; service: MTTD/A/R and the 2 ratios.
    assert_eq!(checked, 13);
}

#[test]
fn burn_rate_panels_draw_the_alert_thresholds() {
    let d = load("service.json");
    let mut seen = Vec::new();
    for p in panels(&d) {
        if !title(p).starts_with("Burn rate ") {
            continue;
        }
        assert_eq!(
            p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
            "line",
            "{}",
            title(p)
        );
        let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            .as_array()
            .unwrap();
        seen.push((title(p).to_string(), steps[1]["value"].as_f64().unwrap()));
    }
    assert_eq!(
        seen,
        vec![
            ("Burn rate 1h & 5m (page > 14.4)".to_string(), 14.4),
            ("Burn rate 6h & 30m (page > 6)".to_string(), 6.0),
            ("Burn rate 1d & 2h (ticket > 3)".to_string(), 3.0),
            ("Burn rate 3d & 6h (ticket > 1)".to_string(), 1.0),
        ]
    );
}

/// Runs the JSON-only checks on `dashboard` (with sentinel exporting
/// `exported` and `sentinel_service_info`) and compares every message with `expected`.
fn check(dashboard: Value, exported: &[&str], expected: &[&str]) {
    let mut names: BTreeSet<String> = exported.iter().map(|s| s.to_string()).collect();
    names.insert("sentinel_service_info".to_string());
    let mut got = structure_problems("t.json", &dashboard);
    got.extend(unexported_metrics("t.json", &dashboard, &names));
    assert_eq!(got, expected, "dashboard: {dashboard:#}");
}

fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn vars(multi: bool) -> Value {
    let info = |name: &str| {
        json!({"name": name, "type": "query", "multi": true, "includeAll": true, "allValue": ".*",
               "definition": format!("label_values(sentinel_service_info, {name})")})
    };
    let mut service = json!({"name": "service", "type": "query", "multi": multi,
        "definition": format!("label_values({FILTER}, service)")});
    if multi {
        service["allValue"] = json!(".*");
    }
    json!({"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        info("owner"), info("tier"), service
    ]})
}

fn stat(id: u64, title: &str, expr: &str) -> Value {
    json!({"id": id, "type": "stat", "title": title, "datasource": ds(),
           "description": "Time base: the selected time range.",
           "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
           "fieldConfig": {"defaults": {"unit": "short"}},
           "targets": [{"refId": "A", "datasource": ds(), "expr": expr}]})
}

fn dash(panels: Vec<Value>) -> Value {
    json!({"templating": vars(false), "panels": panels})
}

fn filtered(selector: &str) -> String {
    format!("{selector} and on(service) {FILTER}")
}

#[test]
fn bad_dashboards_are_named_with_panel_and_query() {
    let up = filtered("sentinel_check_up{service=\"$service\"}");
    check(dash(vec![stat(1, "Up", &up)]), &["sentinel_check_up"], &[]);
    // Bad input: a metric sentinel does not export.
    let uptime = filtered("avg(sentinel_check_uptime{service=\"$service\"})");
    check(
        dash(vec![stat(1, "Uptime", &uptime)]),
        &["sentinel_check_up", "sentinel_service_info"],
        &[&format!(
            "t.json: panel \"Uptime\": query `{uptime}` names sentinel_check_uptime, which sentinel does not export"
        )],
    );
    // Histogram and summary series count as the family they belong to.
    check(
        dash(vec![stat(
            1,
            "p99",
            &filtered(
                "histogram_quantile(0.99, rate(sentinel_check_duration_seconds_bucket{service=\"$service\"}[5m]))",
            ),
        )]),
        &[
            "sentinel_check_duration_seconds_bucket",
            "sentinel_service_info",
        ],
        &[],
    );
    check(
        dash(vec![stat(1, "A", &up), stat(1, "B", &up)]),
        &["sentinel_check_up", "sentinel_service_info"],
        &["t.json: panel 1 \"B\": duplicate id"],
    );
    let mut wide = stat(2, "Wide", &up);
    wide["gridPos"] = json!({"x": 12, "y": 0, "w": 13, "h": 4});
    let mut flat = stat(3, "Flat", &up);
    flat["gridPos"] = json!({"x": 0, "y": 0, "w": 6, "h": 0});
    check(
        dash(vec![wide, flat]),
        &["sentinel_check_up", "sentinel_service_info"],
        &[
            "t.json: panel 2 \"Wide\": invalid gridPos {\"h\":4,\"w\":13,\"x\":12,\"y\":0}",
            "t.json: panel 3 \"Flat\": invalid gridPos {\"h\":0,\"w\":6,\"x\":0,\"y\":0}",
        ],
    );
    let mut unitless = stat(4, "Unitless", &up);
    unitless["fieldConfig"]["defaults"] = json!({});
    check(
        dash(vec![unitless]),
        &["sentinel_check_up", "sentinel_service_info"],
        &["t.json: panel 4 \"Unitless\": no unit (fieldConfig.defaults.unit)"],
    );
    let mut pinned = stat(5, "Pinned", &up);
    pinned["datasource"] = json!({"type": "prometheus", "uid": "abc123"});
    pinned["targets"][0]["datasource"] = json!("Prometheus");
    check(
        dash(vec![pinned]),
        &["sentinel_check_up", "sentinel_service_info"],
        &[
            "t.json: panel 5 \"Pinned\": datasource is {\"type\":\"prometheus\",\"uid\":\"abc123\"} not ${datasource}",
            "t.json: panel 5 \"Pinned\": target \"A\" datasource is \"Prometheus\" not ${datasource}",
        ],
    );
    let mut exported = dash(vec![stat(1, "Up", &up)]);
    exported["__inputs"] = json!([{"name": "DS_PROMETHEUS", "type": "datasource"}]);
    exported["templating"]["list"][0]["type"] = json!("constant");
    check(
        exported,
        &["sentinel_check_up", "sentinel_service_info"],
        &[
            "t.json: has __inputs, which file provisioning does not resolve",
            "t.json: no `datasource` variable of type datasource for prometheus",
        ],
    );
    let mut multi = dash(vec![stat(1, "Up", &up)]);
    multi["templating"] = vars(true);
    check(
        multi,
        &["sentinel_check_up", "sentinel_service_info"],
        &[&format!(
            "t.json: panel 1 \"Up\": multi-value $service needs =~ in `{up}`"
        )],
    );
}

#[test]
fn dashboards_without_owner_and_tier_filters_are_named() {
    let known = ["sentinel_check_up", "sentinel_service_info"];
    // The owner variable is missing; "All" on tier would drop services
    // without a tier; a multi-value service variable expanding "All" to the
    // listed services is fine for Grafana but not what the join expects.
    let mut d = dash(vec![]);
    let list = d["templating"]["list"].as_array_mut().unwrap();
    list.remove(1);
    list[1]["allValue"] = Value::Null;
    list[2]["multi"] = json!(true);
    check(
        d,
        &known,
        &[
            "t.json: no `owner` variable: label_values(sentinel_service_info, owner), multi-value, All = .*",
            "t.json: no `tier` variable: label_values(sentinel_service_info, tier), multi-value, All = .*",
            "t.json: multi-value `service` needs All = .* (the owner/tier join filters)",
        ],
    );
    // The service picker does not follow owner and tier.
    let mut d = dash(vec![]);
    d["templating"]["list"][3]["definition"] = json!("label_values(sentinel_check_up, service)");
    check(
        d,
        &known,
        &[&format!(
            "t.json: no `service` variable from label_values({FILTER}, service)"
        )],
    );
    // A per-service query without the join, and one ignoring the service.
    let bare = "sentinel_check_up{service=\"$service\"}";
    check(
        dash(vec![
            stat(1, "Up", bare),
            stat(2, "All up", "sum(sentinel_check_up)"),
        ]),
        &known,
        &[
            &format!(
                "t.json: panel 1 \"Up\": query `{bare}` is not filtered by owner and tier (join on {FILTER})"
            ),
            "t.json: panel 2 \"All up\": query `sum(sentinel_check_up)` reads sentinel_check_up for every service, ignoring the service variable",
        ],
    );
    // Targets and notifiers have no service: reading them alone is fine.
    check(
        dash(vec![stat(
            1,
            "Targets",
            "max by (severity) (sentinel_response_target_seconds)",
        )]),
        &["sentinel_response_target_seconds"],
        &[],
    );
    // The fragile SLO-window selector of old.
    let fragile =
        filtered("sentinel_slo_sli_ratio{service=\"$service\",window!~\"5m|30m|1h|2h|6h|1d|3d\"}");
    check(
        dash(vec![stat(1, "Availability", &fragile)]),
        &["sentinel_slo_sli_ratio", "sentinel_service_info"],
        &[&format!(
            "t.json: panel 1 \"Availability\": `window!~` hides SLO windows named like a burn window (1d, 3d); select is_slo_window=\"true\" in `{fragile}`"
        )],
    );
}

#[test]
fn panels_without_a_stated_time_base_are_named() {
    let known = [
        "sentinel_check_up",
        "sentinel_incidents_total",
        "sentinel_slo_sli_ratio",
        "sentinel_slo_error_budget_remaining_ratio",
        "sentinel_service_info",
    ];
    let mut silent = stat(
        1,
        "Incidents",
        &filtered("sentinel_incidents_total{service=\"$service\"}"),
    );
    silent["description"] = json!("How many.");
    let ranged = filtered("increase(sentinel_incidents_total{service=\"$service\"}[$__range])");
    let mut ranged_panel = stat(2, "Opened — SLO window", &ranged);
    ranged_panel["description"] = json!("");
    let budget = filtered("sentinel_slo_error_budget_remaining_ratio{service=\"$service\"}");
    let slo = filtered("sentinel_slo_sli_ratio{service=\"$service\",is_slo_window=\"true\"}");
    let mut trend = stat(
        5,
        "Trend",
        &filtered("sentinel_check_up{service=\"$service\"}"),
    );
    trend["timeFrom"] = json!("90d");
    check(
        dash(vec![
            silent,
            ranged_panel,
            stat(3, "Budget", &budget),
            stat(4, "Availability", &slo),
            trend,
        ]),
        &known,
        &[
            "t.json: panel 1 \"Incidents\": title and description say neither \"SLO window\" nor \"selected time range\"",
            "t.json: panel 2 \"Opened — SLO window\": counts over $__range but does not say \"selected time range\"",
            "t.json: panel 3 \"Budget\": shows the SLO window but does not say \"SLO window\"",
            "t.json: panel 4 \"Availability\": shows the SLO window but does not say \"SLO window\"",
            "t.json: panel 5 \"Trend\": has its own time range (\"90d\") but does not say \"whatever the selected time range\"",
        ],
    );
}

#[test]
fn numeric_thresholds_on_response_times_are_named() {
    let known = [
        "sentinel_incident_mtta_seconds_sum",
        "sentinel_incident_mtta_seconds_count",
        "sentinel_response_target_seconds",
        "sentinel_service_info",
    ];
    let mean = format!(
        "sum by (severity) (increase(sentinel_incident_mtta_seconds_sum{{service=\"$service\"}}[$__range]) and on(service) {FILTER}) / (sum by (severity) (increase(sentinel_incident_mtta_seconds_count{{service=\"$service\"}}[$__range]) and on(service) {FILTER}) > 0)"
    );
    let ratio = format!(
        "({mean}) / on(severity) max by (severity) (sentinel_response_target_seconds{{stage=\"acknowledge\"}})"
    );
    let with_steps = |id: u64, expr: &str, steps: Value, overrides: Value| {
        let mut p = stat(id, "MTTA", expr);
        p["fieldConfig"] = json!({"defaults": {"unit": "s",
            "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": overrides});
        p
    };
    let base = json!([{"color": "green", "value": null}]);
    let at_600 = json!([{"color": "green", "value": null}, {"color": "red", "value": 600}]);
    let at_1 = json!([{"color": "green", "value": null}, {"color": "red", "value": 1}]);
    let p1_override = json!([{"matcher": {"id": "byName", "options": "P1"},
        "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": at_600.clone()}}]}]);
    check(
        dash(vec![
            // Fine: seconds without colours, a ratio coloured at the target.
            with_steps(1, &mean, base.clone(), json!([])),
            with_steps(2, &ratio, at_1.clone(), json!([])),
            // The old way: the example config's target as a number.
            with_steps(3, &mean, at_600.clone(), json!([])),
            with_steps(4, &mean, base.clone(), p1_override),
            // A ratio coloured somewhere else than at the target.
            with_steps(
                5,
                &ratio,
                json!([{"color": "green", "value": null}, {"color": "red", "value": 0.8}]),
                json!([]),
            ),
            // The target itself, in seconds, with a number next to it.
            with_steps(
                6,
                "max by (severity) (sentinel_response_target_seconds)",
                at_1,
                json!([]),
            ),
        ]),
        &known,
        &[
            "t.json: panel 3 \"MTTA\": numeric threshold 600 on a response-target figure; divide by sentinel_response_target_seconds and colour at 1 instead",
            "t.json: panel 4 \"MTTA\": numeric threshold 600 on a response-target figure; divide by sentinel_response_target_seconds and colour at 1 instead",
            "t.json: panel 5 \"MTTA\": numeric threshold 0.8 on a response-target figure; divide by sentinel_response_target_seconds and colour at 1 instead",
            "t.json: panel 6 \"MTTA\": numeric threshold 1 on a response-target figure; divide by sentinel_response_target_seconds and colour at 1 instead",
        ],
    );
}

#[test]
fn substitution_fills_every_grafana_variable() {
    assert_eq!(
        substitute(
            "increase(x{service=~\"${service}\"}[$__range]) / rate(y{service=\"$service\"}[$__rate_interval]) + z[$__interval] and on(service) i{owner=~\"$owner\",tier=~\"${tier}\"}",
            Vars {
                service: "(a|b)",
                owner: "it-ops",
                tier: "1"
            }
        ),
        "increase(x{service=~\"(a|b)\"}[5m]) / rate(y{service=\"(a|b)\"}[4s]) + z[1s] and on(service) i{owner=~\"it-ops\",tier=~\"1\"}"
    );
}

// ---------------------------------------------------------------------------
// Real parts: sentinel, a target, a webhook receiver, Prometheus

/// The services of the test config: name, owner, tier, description, SLO
/// window, objective. Only `portal` goes through an outage.
const PORTAL_DESCRIPTION: &str = r#"Customer "portal" \ web"#;

fn write_sentinel_config(dir: &Path, target: SocketAddr, hooks: SocketAddr) -> PathBuf {
    // burn_rate_alerts off: after the outage the 5m burn rate stays over 14.4
    // for minutes, which would keep the incident open past the test.
    // Response targets differ from the example config's 10m/2h and 30m/8h;
    // sso's P2 has none.
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: DASH_TOKEN
storage:
  path: {db}
notifiers:
  - name: tickets
    type: webhook
    url: http://{hooks}/hooks
response_targets:
  P1: {{ acknowledge: 5m, restore: 30m }}
  P3: {{ acknowledge: 45m, restore: 12h }}
services:
  - name: {SERVICE}
    description: '{PORTAL_DESCRIPTION}'
    owner: it-ops
    tier: 1
    checks:
      - name: health
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/health
          expect:
            status: [200]
            body_contains: ok
      - name: port
        interval: 200ms
        timeout: 150ms
        tcp: {{ host: 127.0.0.1, port: {port} }}
    slo:
      objective: 99.9
      window: 30d
      latency: {{ threshold: 250ms, objective: 99 }}
    incident:
      open_after: 2
      resolve_after: 2
      burn_rate_alerts: false
      severity: P1
      notify: [tickets]
  - name: checkout
    owner: payments
    tier: 2
    checks:
      - {{ name: port, interval: 500ms, timeout: 400ms, tcp: {{ host: 127.0.0.1, port: {port} }} }}
    slo: {{ objective: 90, window: month }}
    incident: {{ severity: P3, burn_rate_alerts: false }}
  - name: sso
    owner: it-ops
    tier: 2
    checks:
      - {{ name: port, interval: 500ms, timeout: 400ms, tcp: {{ host: 127.0.0.1, port: {port} }} }}
    slo: {{ objective: 95, window: 1d }}
    incident: {{ severity: P2, burn_rate_alerts: false }}
"#,
        db = dir.join("state.db").display(),
        port = target.port(),
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The incidents listed by `GET /api/v1/incidents?state=...` (a JSON list, or
/// an object holding one under `incidents`).
async fn incidents(client: &reqwest::Client, base: &str, state: &str) -> Option<Vec<Value>> {
    let r = client
        .get(format!("{base}/api/v1/incidents?state={state}"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    match v {
        Value::Array(list) => Some(list),
        Value::Object(mut o) => match o.remove("incidents") {
            Some(Value::Array(list)) => Some(list),
            _ => None,
        },
        _ => None,
    }
}

/// One series of a query result: its labels and value (NaN when not a number).
type Series = (BTreeMap<String, String>, f64);

/// Runs an instant query at `at` (unix seconds; Prometheus' now when
/// `None`): every series, or Prometheus' error.
async fn instant_at(
    client: &reqwest::Client,
    prom: &str,
    query: &str,
    at: Option<f64>,
) -> Result<Vec<Series>, String> {
    let mut params = vec![("query", query.to_string())];
    if let Some(t) = at {
        params.push(("time", format!("{t:.3}")));
    }
    let r = client
        .get(format!("{prom}/api/v1/query"))
        .query(&params)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    let result = v["data"]["result"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    Ok(result
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let value = r["value"][1]
                .as_str()
                .and_then(|x| x.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect())
}

/// `Ok((series, series with a finite value))` or `Err(Prometheus' error)`.
/// A ratio of two `increase()`s over a range without events is NaN: a
/// series, but no data a panel can show.
async fn instant(
    client: &reqwest::Client,
    prom: &str,
    query: &str,
) -> Result<(usize, usize), String> {
    let s = instant_at(client, prom, query, None).await?;
    Ok((s.len(), s.iter().filter(|(_, v)| v.is_finite()).count()))
}

/// Wall time now, in unix seconds: when the test asks Prometheus.
fn unix_now() -> f64 {
    let now = SystemClock.now();
    now.as_second() as f64 + f64::from(now.subsec_nanosecond()) / 1e9
}

/// When Grafana would evaluate `expr` for its latest point. A panel reading
/// each day from its start (`[1d] offset -1d`, the monthly bars) has its
/// latest point at today's midnight, whose day holds the test's data; an
/// hour ago stands in for it (a later time would look past the data).
fn evaluation_time(expr: &str) -> Option<f64> {
    expr.contains("offset -1d").then(|| unix_now() - 3600.0)
}

/// The variables each dashboard is tested with when nothing is filtered.
fn all_vars(d: &Value) -> Vars<'static> {
    let multi = variable(d, "service").is_some_and(|v| v["multi"] == true);
    Vars {
        service: if multi { ".*" } else { SERVICE },
        ..ALL
    }
}

/// Every panel query of both dashboards, substituted, that does not return a
/// series with a finite value yet: `file: panel "title": query `...`: why`.
async fn failing_queries(client: &reqwest::Client, prom: &str) -> Vec<String> {
    let mut out = Vec::new();
    for file in FILES {
        let d = load(file);
        let vars = all_vars(&d);
        for (t, expr) in queries(&d) {
            let q = substitute(&expr, vars);
            match instant_at(client, prom, &q, evaluation_time(&expr)).await {
                Ok(s) if s.is_empty() => {
                    out.push(format!("{file}: panel \"{t}\": query `{q}`: no series"))
                }
                Ok(s) if !s.iter().any(|(_, v)| v.is_finite()) => out.push(format!(
                    "{file}: panel \"{t}\": query `{q}`: {} series, none with a finite value",
                    s.len()
                )),
                Ok(_) => {}
                Err(e) => out.push(format!("{file}: panel \"{t}\": query `{q}`: {e}")),
            }
        }
    }
    out
}

/// With the owner / tier variables set to `vars`, every leadership query
/// with a `service` label in its result keeps exactly the services in
/// `expected` (and, over all queries, shows each of them); `nobody` as the
/// owner leaves no non-zero value in any per-service query of either board.
async fn filter_problems_live(
    client: &reqwest::Client,
    prom: &str,
    vars: Vars<'_>,
    expected: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    let d = load("leadership.json");
    let mut seen = BTreeSet::new();
    for (t, expr) in queries(&d) {
        let q = substitute(&expr, vars);
        let series = match instant_at(client, prom, &q, evaluation_time(&expr)).await {
            Ok(s) => s,
            Err(e) => {
                out.push(format!("panel \"{t}\": `{q}`: {e}"));
                continue;
            }
        };
        for (labels, _) in series {
            if let Some(s) = labels.get("service") {
                if !expected.contains(&s.as_str()) {
                    out.push(format!(
                        "panel \"{t}\" with {vars:?}: service {s} is not in {expected:?}: `{q}`"
                    ));
                }
                seen.insert(s.clone());
            }
        }
    }
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    if seen != want {
        out.push(format!(
            "with {vars:?} the panels show services {seen:?}, not {want:?}"
        ));
    }
    out
}

async fn nobody_problems(client: &reqwest::Client, prom: &str) -> Vec<String> {
    let mut out = Vec::new();
    for file in FILES {
        let d = load(file);
        let vars = Vars {
            owner: "nobody",
            ..all_vars(&d)
        };
        for (t, expr) in queries(&d) {
            if !expr.contains("$service") {
                continue;
            }
            let q = substitute(&expr, vars);
            match instant_at(client, prom, &q, evaluation_time(&expr)).await {
                Ok(s) => {
                    let shown: Vec<_> = s
                        .into_iter()
                        .filter(|(_, v)| v.is_finite() && *v != 0.0)
                        .collect();
                    if !shown.is_empty() {
                        out.push(format!(
                            "{file}: panel \"{t}\" shows {shown:?} for owner \"nobody\": `{q}`"
                        ));
                    }
                }
                Err(e) => out.push(format!("{file}: panel \"{t}\": `{q}`: {e}")),
            }
        }
    }
    out
}

/// `label value → value` of a query's series, keyed by `label`.
async fn by_label(
    client: &reqwest::Client,
    prom: &str,
    expr: &str,
    vars: Vars<'_>,
    label: &str,
    at: f64,
) -> BTreeMap<String, f64> {
    let q = substitute(expr, vars);
    instant_at(client, prom, &q, Some(at))
        .await
        .unwrap_or_else(|e| panic!("`{q}`: {e}"))
        .into_iter()
        .map(|(l, v)| (l.get(label).cloned().unwrap_or_default(), v))
        .collect()
}

fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_series_from_a_real_prometheus() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let (deliveries, hooks) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_sentinel_config(dir.path(), target, hooks);

    let sentinel = Daemon::start(&cfg, &[("DASH_TOKEN", TOKEN)]);
    let addr = sentinel.addr;
    let base = format!("http://{addr}");
    let (prometheus, prom) = start_prometheus(dir.path(), addr);
    let client = reqwest::Client::new();
    let logs = || {
        format!(
            "sentinel: {:?}\nprometheus: {:?}",
            sentinel.log(),
            prometheus.log()
        )
    };

    eventually(secs(15), "prometheus ready", &logs, || async {
        let r = client.get(format!("{prom}/-/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // Some healthy history before the outage.
    eventually(secs(10), "a first scrape of a good run", &logs, || async {
        let (n, _) = instant(&client, &prom, "sentinel_check_up{check=\"health\"} == 1")
            .await
            .ok()?;
        (n > 0).then_some(())
    })
    .await;

    // Outage: the incident opens, the test acknowledges it, the target recovers.
    up.store(false, Ordering::SeqCst);
    let open = eventually(secs(10), "an open incident in the API", &logs, || async {
        incidents(&client, &base, "open").await?.into_iter().next()
    })
    .await;
    let id = match &open["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ack = client
        .post(format!("{base}/api/v1/incidents/{id}/ack"))
        .bearer_auth(TOKEN)
        .json(&json!({"by": "dashboards-test", "note": "looking"}))
        .send()
        .await
        .unwrap();
    assert!(ack.status().is_success(), "ack {id}: {}", ack.status());
    // Enough bad runs that portal's availability stays under 99.9 % for the
    // rest of the test (10 runs a second).
    tokio::time::sleep(Duration::from_secs(2)).await;
    up.store(true, Ordering::SeqCst);
    eventually(secs(10), "the incident to resolve", &logs, || async {
        incidents(&client, &base, "open")
            .await?
            .is_empty()
            .then_some(())
    })
    .await;
    eventually(secs(10), "webhook deliveries", &logs, || async {
        (deliveries.count() >= 3).then_some(())
    })
    .await;

    // Bad input: every metric the panels name must be one sentinel exports,
    // and the scrape with the config's free text in labels stays valid.
    let scrape = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = exported_names(&scrape);
    let unknown: Vec<String> = FILES
        .iter()
        .flat_map(|f| unexported_metrics(f, &load(f), &exported))
        .collect();
    assert!(
        unknown.is_empty(),
        "{}\n--- scrape:\n{scrape}",
        unknown.join("\n")
    );
    assert_eq!(promtool_complaints(&scrape), "", "--- scrape:\n{scrape}");

    // Prometheus has the whole story once every panel query answers.
    let last = std::sync::Mutex::new(Vec::new());
    eventually(
        secs(20),
        "every panel query to return data",
        || {
            format!(
                "panel queries without data:\n{}\n--- scrape:\n{scrape}",
                last.lock().unwrap().join("\n")
            )
        },
        || async {
            let failing = failing_queries(&client, &prom).await;
            let done = failing.is_empty();
            *last.lock().unwrap() = failing;
            done.then_some(())
        },
    )
    .await;

    // The owner and tier variables keep exactly the matching services.
    for (vars, expected) in [
        (
            Vars {
                owner: "payments",
                ..ALL
            },
            &["checkout"][..],
        ),
        (Vars { tier: "1", ..ALL }, &["portal"][..]),
        (
            Vars {
                owner: "it-ops",
                tier: "2",
                ..ALL
            },
            &["sso"][..],
        ),
        (
            Vars {
                owner: "(it-ops|payments)",
                tier: "2",
                ..ALL
            },
            &["checkout", "sso"][..],
        ),
    ] {
        let problems = filter_problems_live(&client, &prom, vars, expected).await;
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
    let problems = nobody_problems(&client, &prom).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The figures the leadership board shows, at one instant.
    let lead = load("leadership.json");
    let at = unix_now();
    let q = |title: &str, r: &str| query(&lead, title, r);
    let table = "Services: availability vs objective — SLO window";
    let targets = "MTTA / MTTR and response targets — selected time range";
    // The configured targets, not the example config's.
    assert_eq!(
        by_label(&client, &prom, &q(targets, "B"), ALL, "severity", at).await,
        map(&[("P1", 300.0), ("P3", 2700.0)])
    );
    assert_eq!(
        by_label(&client, &prom, &q(targets, "D"), ALL, "severity", at).await,
        map(&[("P1", 1800.0), ("P3", 43_200.0)])
    );
    assert_eq!(
        by_label(
            &client,
            &prom,
            &query(&lead, "MTTR, 90-day trend vs restore target — daily", "B"),
            ALL,
            "severity",
            at
        )
        .await,
        map(&[("P1", 1800.0), ("P3", 43_200.0)])
    );
    // The ratio panels divide the mean by exactly that target.
    for (ratio_title, mean_ref, target_s) in [
        (
            "MTTA as a share of the acknowledge target — selected time range",
            "A",
            300.0,
        ),
        (
            "MTTR as a share of the restore target — selected time range",
            "C",
            1800.0,
        ),
    ] {
        let ratio = by_label(&client, &prom, &q(ratio_title, "A"), ALL, "severity", at).await;
        let mean = by_label(&client, &prom, &q(targets, mean_ref), ALL, "severity", at).await;
        assert_eq!(ratio.keys().collect::<Vec<_>>(), ["P1"], "{ratio_title}");
        let (r, m) = (ratio["P1"], mean["P1"]);
        assert!(
            m > 0.0 && (r - m / target_s).abs() <= 1e-12 * r.abs().max(1.0),
            "{ratio_title}: {r} vs {m} / {target_s}"
        );
    }
    // SLA: portal missed 99.9 % (the outage), checkout and sso met theirs.
    let sla = "Services meeting their availability objective — SLO window";
    for (vars, want) in [
        (ALL, 2.0 / 3.0),
        (
            Vars {
                owner: "payments",
                ..ALL
            },
            1.0,
        ),
        (Vars { tier: "1", ..ALL }, 0.0),
    ] {
        assert_eq!(
            by_label(&client, &prom, &q(sla, "A"), vars, "", at).await,
            map(&[("", want)]),
            "{vars:?}"
        );
    }
    // Acknowledged in 2 s against 5 min, restored well within 30 min.
    for t in [
        "Incidents acknowledged within target — selected time range",
        "Incidents restored within target — selected time range",
    ] {
        assert_eq!(
            by_label(&client, &prom, &q(t, "A"), ALL, "", at).await,
            map(&[("", 1.0)]),
            "{t}"
        );
    }
    // The table: every service's row, the 1d SLO window included (the old
    // `window!~"…|1d|3d"` selector hid it), the month's real length, the
    // config's owner, tier and description.
    let days_in_month = {
        let now = jiff::Timestamp::from_millisecond((at * 1000.0) as i64).unwrap();
        f64::from(now.to_zoned(jiff::tz::TimeZone::UTC).days_in_month())
    };
    assert_eq!(
        by_label(&client, &prom, &q(table, "E"), ALL, "service", at).await,
        map(&[("checkout", days_in_month), ("portal", 30.0), ("sso", 1.0)])
    );
    let met = by_label(&client, &prom, &q(table, "C"), ALL, "service", at).await;
    assert_eq!(
        met,
        map(&[("checkout", 1.0), ("portal", 0.0), ("sso", 1.0)])
    );
    let rows = instant_at(&client, &prom, &substitute(&q(table, "A"), ALL), Some(at))
        .await
        .unwrap();
    let facts: BTreeSet<(String, String, String, String)> = rows
        .iter()
        .map(|(l, _)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            (
                get("service"),
                get("owner"),
                get("tier"),
                get("description"),
            )
        })
        .collect();
    let fact = |s: &str, o: &str, t: &str, d: &str| {
        (s.to_string(), o.to_string(), t.to_string(), d.to_string())
    };
    assert_eq!(
        facts,
        BTreeSet::from([
            fact("checkout", "payments", "2", ""),
            fact("portal", "it-ops", "1", PORTAL_DESCRIPTION),
            fact("sso", "it-ops", "2", ""),
        ])
    );
    // The monthly bars: the day's count of portal's one P1 incident (an
    // increase() extrapolated over the scraped span, so a little over 1).
    let monthly = q(
        "Incidents by severity per month — last 12 calendar months",
        "A",
    );
    let per_day = by_label(
        &client,
        &prom,
        &monthly,
        ALL,
        "severity",
        evaluation_time(&monthly).unwrap(),
    )
    .await;
    assert_eq!(
        per_day
            .iter()
            .map(|(k, v)| (k.as_str(), v.round()))
            .collect::<Vec<_>>(),
        [("P1", 1.0), ("P2", 0.0), ("P3", 0.0)],
        "{per_day:?}"
    );
    drop(prometheus);
    drop(sentinel);
}
