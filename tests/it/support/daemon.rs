//! Child processes a test starts: the real `sentinel` binary ([`Daemon`]) and
//! any other program ([`Proc`]: Prometheus, Alertmanager). Each is killed and
//! reaped on drop, so a failing test leaks nothing, and its stderr is kept for
//! failure messages.
//!
//! Ports are never guessed: the program binds `127.0.0.1:0` itself and the
//! harness reads the address back from the program's log line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_sentinel");

/// What sentinel logs once its server listens: `listen=127.0.0.1:PORT`.
const SENTINEL_LISTEN: &str = r"listen=(\d+\.\d+\.\d+\.\d+:\d+)";

/// Lines of a child's stderr, shared with the thread that reads them.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Spawns `cmd` with stdout discarded and stderr captured line by line.
/// When `pattern` is given, waits up to 20 s for its first capture group in
/// stderr and returns it.
fn spawn_logged(mut cmd: Command, pattern: Option<&str>) -> (Child, Lines, Option<String>) {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let stderr = child.stderr.take().unwrap();
    let lines: Lines = Arc::default();
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
    let found = pattern.map(|p| match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(found) => found,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not log /{p}/ within 20s; stderr: {:?}",
                lines.lock().unwrap()
            )
        }
    });
    (child, lines, found)
}

/// Any program started for a test.
pub struct Proc {
    pub child: Child,
    pub stderr: Lines,
}

impl Proc {
    /// Spawns `cmd`; with a `pattern`, also returns its first capture in
    /// stderr (e.g. the address the program bound).
    pub fn spawn(cmd: Command, pattern: Option<&str>) -> (Proc, Option<String>) {
        let (child, stderr, found) = spawn_logged(cmd, pattern);
        (Proc { child, stderr }, found)
    }

    /// Its stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sentinel run` started for a test, listening where its log says.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Lines,
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
        cmd.args(["run", "-c"]).arg(config).env("RUST_LOG", "info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let (child, stderr, addr) = spawn_logged(cmd, Some(SENTINEL_LISTEN));
        let addr = addr.unwrap().parse().unwrap();
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    /// Its stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
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
        panic!("daemon did not exit within 20s; stderr: {:?}", self.log());
    }

    /// Waits (up to 20 s) until `/readyz` answers 200.
    pub async fn ready(&self) {
        let http = reqwest::Client::new();
        crate::support::eventually(
            Duration::from_secs(20),
            "/readyz",
            || format!("{:?}", self.log()),
            || async {
                let r = http.get(self.url("/readyz")).send().await.ok()?;
                (r.status() == 200).then_some(())
            },
        )
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGTERM, then wait up to 10 s for the exit.
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

/// SIGKILL the daemon (no clean shutdown) and wait for it.
pub fn kill9(d: &mut Daemon) {
    let pid = d.child.id().to_string();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    let _ = d.child.wait();
}
