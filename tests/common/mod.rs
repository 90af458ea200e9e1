//! Shared harness for end-to-end tests: the real `sentinel` binary, a
//! switchable HTTP target, and `/metrics` helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

pub const BIN: &str = env!("CARGO_BIN_EXE_sentinel");

/// A daemon started for a test; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(config: &std::path::Path, envs: &[(&str, &str)]) -> Daemon {
        Daemon::start_wrapped(&[], config, envs)
    }

    /// Like [`Daemon::start`], run through a wrapper that execs it (same pid),
    /// e.g. `["prlimit", "--nofile=64:64", "--"]`.
    pub fn start_wrapped(
        wrapper: &[&str],
        config: &std::path::Path,
        envs: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            None => Command::new(BIN),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
        };
        cmd.args(["run", "-c"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sentinel");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            let re = regex::Regex::new(r"listen=(\d+\.\d+\.\d+\.\d+:\d+)").unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(c) = re.captures(&line) {
                    let _ = tx.send(c[1].parse::<SocketAddr>().unwrap());
                    sent = true;
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "daemon did not report its listen address; stderr: {:?}",
                    lines.lock().unwrap()
                )
            });
        Daemon {
            child,
            addr,
            stderr: lines,
        }
    }

    /// Send a signal (`-TERM`, `-KILL`, `-HUP`) to the daemon.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(st.success(), "kill {sig} {pid}");
    }

    /// Wait up to 20 s for the daemon to exit.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        for _ in 0..400 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon did not exit within 20s; stderr: {:?}",
            self.stderr.lock().unwrap()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..200 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not stop within 10s of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A target whose `/health` answers 200 "ok" while `up`, 503 otherwise.
pub async fn start_target(up: Arc<AtomicBool>) -> SocketAddr {
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Value of the first sample whose name and labels contain `needle`s.
pub fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|lab| rest.contains(lab)))
                .then(|| value.parse().ok())?
        })
}

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

/// Polls until `pred` holds on a scrape, or fails after `secs`.
pub async fn wait_for(
    client: &reqwest::Client,
    d: &Daemon,
    secs: u64,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let m = scrape(client, d).await;
        if pred(&m) {
            return m;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; last scrape:\n{m}\nstderr: {:?}",
                d.stderr.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGKILL the daemon (no clean shutdown) and wait for it.
pub fn kill9(d: &mut Daemon) {
    let pid = d.child.id().to_string();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let _ = d.child.wait();
}
