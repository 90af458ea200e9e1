//! The one test harness: every helper the integration tests share.
//!
//! - [`daemon`]: the real `sentinel` binary ([`daemon::Daemon`]) and other
//!   programs ([`daemon::Proc`]), killed on drop, stderr kept, their listen
//!   address read from their log.
//! - [`servers`]: loopback servers for probes and daemons to talk to (raw
//!   HTTP, TLS, line, DNS, a switchable `/health` target, a hanging server,
//!   ports that refuse), and the test PKI.
//! - [`webhooks`]: the webhook receiver and the Standard Webhooks verifier.
//! - [`prom`]: samples of a scrape, `promtool`, Prometheus and Alertmanager.
//! - [`fakes`]: strict local fakes of the SaaS APIs sentinel talks to.
//! - [`eventually`]: the one poll loop.
//!
//! Every server binds `127.0.0.1:0` and reports the port it got; no helper
//! picks a port and hopes it is still free.

// Each test module uses a different part of the harness.
#![allow(dead_code)]

pub mod daemon;
pub mod fakes;
pub mod prom;
pub mod servers;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(50);

/// Polls `probe` until it returns `Some`, and returns that; panics after
/// `within` with `what` and, to explain the failure, `context()` (called only
/// then, e.g. `|| format!("{:?}", d.log())`; `String::new` for none).
pub async fn eventually<T, F, Fut>(
    within: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for {what}\n{}",
                context()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Set in the environment of a child started by [`isolated`]: the name of
/// the one test it runs.
const ISOLATED: &str = "SENTINEL_IT_ISOLATED";

/// Runs test `name` (its path in this binary, e.g. `probe_local::some_test`)
/// alone in a child process of this test binary, for a test that changes
/// process-wide state (such as the descriptor limit) which the tests running
/// beside it in this process must not feel.
///
/// Returns `true` in that child: the caller runs its body. Returns `false`
/// in the parent once the child passed (the caller returns); fails with the
/// child's output if it did not, or if it did not run exactly that test.
pub fn isolated(name: &str) -> bool {
    if std::env::var(ISOLATED).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ISOLATED, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name} in a process of its own: {}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
        out.status
    );
    false
}
