#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shipped Grafana dashboards, proven against real parts: the real
//! `sentinel` binary probes a loopback target through an outage (an incident
//! opens, is acknowledged through the API and resolves), Debian's `prometheus`
//! scrapes it every second, and every panel query of `dashboards/*.json` runs
//! through Prometheus' query API and must return at least one series with a
//! finite value (a ratio of `increase()`s over a range without events is NaN).
//!
//! The JSON is also checked for what Grafana file provisioning needs (the
//! datasource is a template variable, never `__inputs`) and for layout and
//! unit mistakes; a query naming a metric sentinel does not export fails with
//! the panel's title and the query.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sentinel");
const FILES: [&str; 2] = ["leadership.json", "service.json"];
const TOKEN: &str = "dash-board-token";
const SERVICE: &str = "portal";

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

/// `(panel title, expr)` of every query target.
fn queries(d: &Value) -> Vec<(String, String)> {
    panels(d)
        .into_iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .map(|e| (title(p).to_string(), e.to_string()))
        })
        .collect()
}

fn variable<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["templating"]["list"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
}

/// What Grafana would send for the template variables; `service` is what the
/// `service` variable holds (a regex alternation for a multi-value variable).
fn substitute(expr: &str, service: &str) -> String {
    expr.replace("${service}", service)
        .replace("$service", service)
        .replace("${__range}", "5m")
        .replace("$__range", "5m")
        .replace("${__rate_interval}", "4s")
        .replace("$__rate_interval", "4s")
        .replace("${__interval}", "1s")
        .replace("$__interval", "1s")
}

// ---------------------------------------------------------------------------
// Checks on the JSON alone

fn datasource_ok(v: &Value) -> bool {
    *v == json!({"type": "prometheus", "uid": "${datasource}"})
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
    let multi = match variable(d, "service") {
        Some(v)
            if v["type"] == "query"
                && v["definition"] == "label_values(sentinel_check_up, service)" =>
        {
            v["multi"] == true
        }
        _ => {
            out.push(format!(
                "{file}: no `service` variable from label_values(sentinel_check_up, service)"
            ));
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
        }
    }
    out
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
    let re = regex::Regex::new(r"sentinel_[a-z_]+").unwrap();
    let mut out = Vec::new();
    for (t, expr) in queries(d) {
        let named: BTreeSet<&str> = re.find_iter(&expr).map(|m| m.as_str()).collect();
        for m in named {
            if !exported.contains(m) {
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

/// The MTTx `_sum`/`_count` and `sentinel_incident_response_total` are
/// cumulative since the first incident sentinel counted: a panel shows them
/// through `increase()` over a stated range, never raw (a raw ratio would be
/// an all-time mean, whatever the dashboard says).
#[test]
fn cumulative_incident_series_are_read_through_increase() {
    let mut checked = 0;
    for file in FILES {
        for (t, expr) in queries(&load(file)) {
            let cumulative = [
                "_seconds_sum",
                "_seconds_count",
                "sentinel_incident_response_total",
            ];
            if !cumulative.iter().any(|c| expr.contains(c)) {
                continue;
            }
            checked += 1;
            let uses = expr.matches("sentinel_").count();
            let wrapped = expr.matches("increase(sentinel_").count();
            assert_eq!(uses, wrapped, "{file}: panel \"{t}\": `{expr}`");
        }
    }
    // Leadership: attainment, MTTA, MTTR, MTTR trend; service: MTTD/A/R.
    assert_eq!(checked, 7);
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
/// `exported`) and compares every message with `expected`.
fn check(dashboard: Value, exported: &[&str], expected: &[&str]) {
    let names: BTreeSet<String> = exported.iter().map(|s| s.to_string()).collect();
    let mut got = structure_problems("t.json", &dashboard);
    got.extend(unexported_metrics("t.json", &dashboard, &names));
    assert_eq!(got, expected, "dashboard: {dashboard:#}");
}

fn ds() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn vars(multi: bool) -> Value {
    json!({"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "service", "type": "query", "multi": multi,
         "definition": "label_values(sentinel_check_up, service)"}
    ]})
}

fn stat(id: u64, title: &str, expr: &str) -> Value {
    json!({"id": id, "type": "stat", "title": title, "datasource": ds(),
           "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
           "fieldConfig": {"defaults": {"unit": "short"}},
           "targets": [{"refId": "A", "datasource": ds(), "expr": expr}]})
}

fn dash(panels: Vec<Value>) -> Value {
    json!({"templating": vars(false), "panels": panels})
}

#[test]
fn bad_dashboards_are_named_with_panel_and_query() {
    let up = "sentinel_check_up{service=\"$service\"}";
    check(dash(vec![stat(1, "Up", up)]), &["sentinel_check_up"], &[]);
    // Bad input: a metric sentinel does not export.
    check(
        dash(vec![stat(
            1,
            "Uptime",
            "avg(sentinel_check_uptime{service=\"$service\"})",
        )]),
        &["sentinel_check_up"],
        &[
            "t.json: panel \"Uptime\": query `avg(sentinel_check_uptime{service=\"$service\"})` names sentinel_check_uptime, which sentinel does not export",
        ],
    );
    // Histogram and summary series count as the family they belong to.
    check(
        dash(vec![stat(
            1,
            "p99",
            "histogram_quantile(0.99, rate(sentinel_check_duration_seconds_bucket[5m]))",
        )]),
        &["sentinel_check_duration_seconds_bucket"],
        &[],
    );
    check(
        dash(vec![stat(1, "A", up), stat(1, "B", up)]),
        &["sentinel_check_up"],
        &["t.json: panel 1 \"B\": duplicate id"],
    );
    let mut wide = stat(2, "Wide", up);
    wide["gridPos"] = json!({"x": 12, "y": 0, "w": 13, "h": 4});
    let mut flat = stat(3, "Flat", up);
    flat["gridPos"] = json!({"x": 0, "y": 0, "w": 6, "h": 0});
    check(
        dash(vec![wide, flat]),
        &["sentinel_check_up"],
        &[
            "t.json: panel 2 \"Wide\": invalid gridPos {\"h\":4,\"w\":13,\"x\":12,\"y\":0}",
            "t.json: panel 3 \"Flat\": invalid gridPos {\"h\":0,\"w\":6,\"x\":0,\"y\":0}",
        ],
    );
    let mut unitless = stat(4, "Unitless", up);
    unitless["fieldConfig"]["defaults"] = json!({});
    check(
        dash(vec![unitless]),
        &["sentinel_check_up"],
        &["t.json: panel 4 \"Unitless\": no unit (fieldConfig.defaults.unit)"],
    );
    let mut pinned = stat(5, "Pinned", up);
    pinned["datasource"] = json!({"type": "prometheus", "uid": "abc123"});
    pinned["targets"][0]["datasource"] = json!("Prometheus");
    check(
        dash(vec![pinned]),
        &["sentinel_check_up"],
        &[
            "t.json: panel 5 \"Pinned\": datasource is {\"type\":\"prometheus\",\"uid\":\"abc123\"} not ${datasource}",
            "t.json: panel 5 \"Pinned\": target \"A\" datasource is \"Prometheus\" not ${datasource}",
        ],
    );
    let mut exported = dash(vec![stat(1, "Up", up)]);
    exported["__inputs"] = json!([{"name": "DS_PROMETHEUS", "type": "datasource"}]);
    exported["templating"]["list"][0]["type"] = json!("constant");
    check(
        exported,
        &["sentinel_check_up"],
        &[
            "t.json: has __inputs, which file provisioning does not resolve",
            "t.json: no `datasource` variable of type datasource for prometheus",
        ],
    );
    let mut multi = dash(vec![stat(1, "Up", up)]);
    multi["templating"] = vars(true);
    check(
        multi,
        &["sentinel_check_up"],
        &[
            "t.json: panel 1 \"Up\": multi-value $service needs =~ in `sentinel_check_up{service=\"$service\"}`",
        ],
    );
}

#[test]
fn substitution_fills_every_grafana_variable() {
    assert_eq!(
        substitute(
            "increase(x{service=~\"${service}\"}[$__range]) / rate(y{service=\"$service\"}[$__rate_interval]) + z[$__interval]",
            "(a|b)"
        ),
        "increase(x{service=~\"(a|b)\"}[5m]) / rate(y{service=\"(a|b)\"}[4s]) + z[1s]"
    );
}

// ---------------------------------------------------------------------------
// Real parts: sentinel, a target, a webhook receiver, Prometheus

/// A child process killed (and reaped) on drop, so a failing test leaks nothing.
struct Proc {
    child: Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    /// Spawns `cmd` with stderr captured; returns it and the first capture of
    /// `pattern` in its stderr, if one is given.
    fn spawn(mut cmd: Command, pattern: Option<&str>) -> (Proc, Option<String>) {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        let re = pattern.map(|p| regex::Regex::new(p).unwrap());
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(re) = &re
                    && !sent
                    && let Some(c) = re.captures(&line)
                {
                    let _ = tx.send(c[1].to_string());
                    sent = true;
                }
                sink.lock().unwrap().push(line);
            }
        });
        let proc = Proc { child, lines };
        let found = pattern.map(|_| {
            rx.recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| {
                    panic!("{cmd:?} did not log its address; stderr: {:?}", proc.log())
                })
        });
        (proc, found)
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/health` answers 200 "ok" while `up`, 503 otherwise.
async fn start_target(up: Arc<AtomicBool>) -> SocketAddr {
    let app = Router::new().route(
        "/health",
        get(move || {
            let up = Arc::clone(&up);
            async move {
                if up.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    serve(app).await
}

/// A webhook receiver that accepts and counts every delivery.
async fn start_receiver(count: Arc<AtomicU64>) -> SocketAddr {
    let app = Router::new().route(
        "/hooks",
        post(move || {
            let count = Arc::clone(&count);
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }
        }),
    );
    serve(app).await
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn write_sentinel_config(dir: &Path, target: SocketAddr, hooks: SocketAddr) -> PathBuf {
    // burn_rate_alerts off: after the outage the 5m burn rate stays over 14.4
    // for minutes, which would keep the incident open past the test.
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
  P1: {{ acknowledge: 10m, restore: 2h }}
services:
  - name: {SERVICE}
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
"#,
        db = dir.join("state.db").display(),
        port = target.port(),
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(dir: &Path, sentinel: SocketAddr) -> (Proc, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sentinel\n    static_configs:\n      - targets: ['{sentinel}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut cmd = Command::new("/usr/bin/prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .current_dir(dir);
    let (p, _) = Proc::spawn(cmd, None);
    (p, format!("http://127.0.0.1:{port}"))
}

/// Polls `probe` every 100ms until it returns `Some`, or panics after `secs`
/// with `what` and the output of `context`.
async fn wait_until<T, F, Fut>(
    secs: u64,
    what: &str,
    context: impl Fn() -> String,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", context());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Runs an instant query: `Ok((series, series with a finite value))` or
/// `Err(Prometheus' error)`. A ratio of two `increase()`s over a range
/// without events is NaN: a series, but no data a panel can show.
async fn instant(
    client: &reqwest::Client,
    prom: &str,
    query: &str,
) -> Result<(usize, usize), String> {
    let r = client
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", query)])
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
    let finite = result
        .iter()
        .filter_map(|r| r["value"][1].as_str())
        .filter(|x| x.parse::<f64>().is_ok_and(f64::is_finite))
        .count();
    Ok((result.len(), finite))
}

/// Every panel query of both dashboards, substituted, that does not return a
/// series with a finite value yet: `file: panel "title": query `...`: why`.
async fn failing_queries(client: &reqwest::Client, prom: &str) -> Vec<String> {
    let mut out = Vec::new();
    for file in FILES {
        let d = load(file);
        let multi = variable(&d, "service").is_some_and(|v| v["multi"] == true);
        // A multi-value variable reaches Prometheus as an alternation.
        let service = if multi {
            format!("({SERVICE}|checkout)")
        } else {
            SERVICE.to_string()
        };
        for (t, expr) in queries(&d) {
            let q = substitute(&expr, &service);
            match instant(client, prom, &q).await {
                Ok((0, _)) => out.push(format!("{file}: panel \"{t}\": query `{q}`: no series")),
                Ok((n, 0)) => out.push(format!(
                    "{file}: panel \"{t}\": query `{q}`: {n} series, none with a finite value"
                )),
                Ok(_) => {}
                Err(e) => out.push(format!("{file}: panel \"{t}\": query `{q}`: {e}")),
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_series_from_a_real_prometheus() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let deliveries = Arc::new(AtomicU64::new(0));
    let hooks = start_receiver(Arc::clone(&deliveries)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_sentinel_config(dir.path(), target, hooks);

    let mut cmd = Command::new(BIN);
    cmd.args(["run", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .env("DASH_TOKEN", TOKEN);
    let (sentinel, addr) = Proc::spawn(cmd, Some(r"listen=(\d+\.\d+\.\d+\.\d+:\d+)"));
    let addr: SocketAddr = addr.unwrap().parse().unwrap();
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

    wait_until(15, "prometheus ready", &logs, || async {
        let r = client.get(format!("{prom}/-/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // Some healthy history before the outage.
    wait_until(10, "a first scrape of a good run", &logs, || async {
        let (n, _) = instant(&client, &prom, "sentinel_check_up{check=\"health\"} == 1")
            .await
            .ok()?;
        (n > 0).then_some(())
    })
    .await;

    // Outage: the incident opens, the test acknowledges it, the target recovers.
    up.store(false, Ordering::SeqCst);
    let open = wait_until(10, "an open incident in the API", &logs, || async {
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
    up.store(true, Ordering::SeqCst);
    wait_until(10, "the incident to resolve", &logs, || async {
        incidents(&client, &base, "open")
            .await?
            .is_empty()
            .then_some(())
    })
    .await;
    wait_until(10, "webhook deliveries", &logs, || async {
        (deliveries.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;

    // Bad input: every metric the panels name must be one sentinel exports.
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

    // Prometheus has the whole story once every panel query answers.
    let mut last = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        last = failing_queries(&client, &prom).await;
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last.is_empty(),
        "panel queries without data:\n{}\n--- scrape:\n{scrape}",
        last.join("\n")
    );
    drop(prometheus);
    drop(sentinel);
}
