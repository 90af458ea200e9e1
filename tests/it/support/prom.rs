//! Prometheus-side helpers: reading samples out of a scrape, scraping and
//! polling a daemon's `/metrics`, `promtool check metrics`, and throw-away
//! instances of Debian's `prometheus` and `prometheus-alertmanager` on
//! loopback (each binds `127.0.0.1:0` and the harness reads the address it
//! logs).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::daemon::{Daemon, Proc};
use super::eventually;

/// What Prometheus and Alertmanager (exporter-toolkit) log once they listen.
const LISTENING_ON: &str = r#"msg="Listening on" address=(127\.0\.0\.1:\d+)"#;

/// Value of the first sample whose name is `name` and whose labels contain
/// every one of `labels` (written `key="value"`).
pub fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    samples(metrics, name, labels).next()
}

/// Sum of every sample of `name` whose labels contain all of `labels`.
pub fn total(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    samples(metrics, name, labels).sum()
}

fn samples<'a>(
    metrics: &'a str,
    name: &'a str,
    labels: &'a [&'a str],
) -> impl Iterator<Item = f64> + 'a {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|lab| rest.contains(lab)))
                .then(|| value.parse().ok())?
        })
}

/// The daemon's `/metrics` text.
pub async fn scrape(client: &reqwest::Client, d: &Daemon) -> String {
    client
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Scrapes until `pred` holds, or fails after `secs` with the last scrape
/// and the daemon's stderr.
pub async fn wait_for(
    client: &reqwest::Client,
    d: &Daemon,
    secs: u64,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let last = std::sync::Mutex::new(String::new());
    eventually(
        Duration::from_secs(secs),
        what,
        || {
            format!(
                "last scrape:\n{}\nstderr: {:?}",
                last.lock().unwrap(),
                d.log()
            )
        },
        || async {
            let m = scrape(client, d).await;
            let done = pred(&m);
            *last.lock().unwrap() = m.clone();
            done.then_some(m)
        },
    )
    .await
}

/// Runs `promtool check metrics` on a scrape: its complaints (exit status,
/// stdout and stderr), empty when it accepts the text without a word.
pub fn promtool_complaints(scrape: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/test.sh (Debian package `prometheus`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match (out.status.success(), report.is_empty()) {
        (true, true) => String::new(),
        (true, false) => report,
        (false, _) => format!("exit {}: {report}", out.status),
    }
}

/// `promtool check metrics` accepts `scrape` silently.
pub fn assert_promtool_accepts(scrape: &str) {
    assert_eq!(promtool_complaints(scrape), "", "--- scrape:\n{scrape}");
}

/// A Prometheus scraping `target` every second, its TSDB under `dir`; its
/// base URL.
pub fn start_prometheus(dir: &Path, target: std::net::SocketAddr) -> (Proc, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sentinel\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/bin/prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--log.level=info")
        .current_dir(dir);
    let (p, addr) = Proc::spawn(cmd, Some(LISTENING_ON));
    (p, format!("http://{}", addr.unwrap()))
}

/// An Alertmanager that routes everything nowhere, its data under `dir`,
/// clustering off; its base URL.
pub fn start_alertmanager(dir: &Path) -> (Proc, String) {
    start_alertmanager_with(dir, "")
}

/// [`start_alertmanager`] with `global` as the config's `global:` section
/// (YAML flow mapping body, e.g. `resolve_timeout: 1s`; empty for none).
pub fn start_alertmanager_with(dir: &Path, global: &str) -> (Proc, String) {
    const BINARY: &str = "prometheus-alertmanager";
    let cfg = dir.join("alertmanager.yml");
    let global = if global.is_empty() {
        String::new()
    } else {
        format!("global: {{ {global} }}\n")
    };
    std::fs::write(
        &cfg,
        format!("{global}route:\n  receiver: none\nreceivers:\n  - name: none\n"),
    )
    .unwrap();
    let mut cmd = Command::new(BINARY);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--cluster.listen-address=");
    let (p, addr) = Proc::spawn(cmd, Some(LISTENING_ON));
    (p, format!("http://{}", addr.unwrap()))
}
