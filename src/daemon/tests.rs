//! The daemon in-process: the test binds the listener (so it knows the
//! port without reading logs), injects a manual wall clock (so every
//! timestamp the daemon writes is known exactly) and stops it with the
//! shutdown token, not a signal.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::run;
use crate::clock::ManualClock;
use crate::config::parse_str;
use crate::slo::Resolution;
use crate::store::{ReadOnlyStore, Store};

const T0: &str = "2026-01-02T03:04:05Z";

fn config(db: &Path, target: std::net::SocketAddr) -> crate::config::Config {
    let text = format!(
        "server:\n  listen: 127.0.0.1:0\nstorage:\n  path: {}\nservices:\n  - name: web\n    checks:\n      \
         - name: port\n        interval: 100ms\n        timeout: 100ms\n        tcp: {{ host: 127.0.0.1, port: {} }}\n    \
         slo: {{ objective: 99, window: 7d }}\n",
        db.display(),
        target.port()
    );
    parse_str(&text, "test.yaml").unwrap()
}

/// The value of the sample line starting with `prefix` in a scrape.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_process_on_the_given_listener_clock_and_shutdown_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    // A TCP target that accepts every connection.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = target.accept().await {
            drop(conn);
        }
    });
    let cfg = config(&db, target_addr);
    let listener = crate::http::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock = ManualClock::new(T0.parse().unwrap());
    let shutdown = CancellationToken::new();
    let daemon = tokio::spawn(run(
        dir.path().join("sentinel.yaml"),
        cfg.clone(),
        Store::open(&db).unwrap(),
        listener,
        Arc::new(clock.clone()),
        shutdown.clone(),
    ));

    let client = reqwest::Client::new();
    let mut good = 0.0;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/metrics")).send().await {
            let text = r.text().await.unwrap();
            good = sample(
                &text,
                r#"sentinel_check_runs_total{service="web",check="port",result="good"}"#,
            )
            .unwrap_or(0.0);
            if good >= 3.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(good >= 3.0, "three good runs within 10 s, saw {good}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Every run finished at the manual clock's time, to the second.
    let services: serde_json::Value = client
        .get(format!("{base}/api/v1/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let check = &services["services"][0]["checks"][0];
    assert_eq!(check["up"], serde_json::json!(true));
    assert_eq!(check["last_run"]["at"], serde_json::json!(T0));
    assert_eq!(check["last_run"]["result"], serde_json::json!("good"));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), daemon)
        .await
        .expect("run returns once the token is cancelled")
        .unwrap()
        .unwrap();

    // A clean stop flushed every run, each in the buckets of the manual
    // clock's minute and hour.
    let t0: Timestamp = T0.parse().unwrap();
    let rows = ReadOnlyStore::open(&db)
        .unwrap()
        .load_buckets(0, 0)
        .unwrap();
    for (res, start) in [
        (Resolution::Minute, t0.as_second() / 60 * 60),
        (Resolution::Hour, t0.as_second() / 3600 * 3600),
    ] {
        let of: Vec<_> = rows.iter().filter(|r| r.resolution == res).collect();
        assert_eq!(of.len(), 1, "{res:?}: {rows:?}");
        assert_eq!(of[0].start, start, "{res:?}");
        assert_eq!(
            (of[0].service.as_str(), of[0].check.as_str()),
            ("web", "port")
        );
        assert!(
            of[0].counts.valid as f64 >= good,
            "{res:?}: {:?}",
            of[0].counts
        );
        assert_eq!(of[0].counts.good, of[0].counts.valid, "{res:?}");
    }
}

#[test]
fn runtime_workers_follow_the_probe_rate_unless_configured() {
    use super::{probe_rate, runtime_workers};
    let cfg = |n: usize, interval: &str, extra: &str| {
        let mut text =
            format!("server:\n  listen: 127.0.0.1:0\n{extra}services:\n  - name: s\n    checks:\n");
        for i in 0..n {
            text.push_str(&format!(
                "      - {{ name: c{i}, interval: {interval}, tcp: {{ host: h, port: 1 }} }}\n"
            ));
        }
        parse_str(&text, "t.yaml").unwrap()
    };
    // 1 000 checks every second: 1 000 probes/s, one worker whatever the CPUs.
    let c = cfg(1000, "1s", "");
    assert_eq!(probe_rate(&c), 1000.0);
    assert_eq!(runtime_workers(&c, 2), 1);
    assert_eq!(runtime_workers(&c, 8), 1);
    // 500 every 100ms: 5 000/s, the threshold: one per CPU.
    let c = cfg(500, "100ms", "");
    assert_eq!(probe_rate(&c), 5000.0);
    assert_eq!(runtime_workers(&c, 2), 2);
    assert_eq!(runtime_workers(&c, 8), 8);
    assert_eq!(runtime_workers(&c, 0), 1);
    // 499 every 100ms: just below.
    assert_eq!(runtime_workers(&cfg(499, "100ms", ""), 8), 1);
    // Configured: taken as is, at any rate.
    let c = cfg(500, "100ms", "  worker_threads: 3\n");
    assert_eq!(c.server.worker_threads, Some(3));
    assert_eq!(runtime_workers(&c, 2), 3);
    assert_eq!(
        runtime_workers(&cfg(1, "1s", "  worker_threads: 4\n"), 1),
        4
    );
}

#[test]
fn a_reload_names_every_restart_only_key_it_cannot_apply() {
    use super::restart_only_changes;
    let base = "services:\n  - name: s\n    checks:\n      - { name: c, interval: 1s, tcp: { host: h, port: 1 } }\n";
    let cfg = |server: &str, storage: &str| {
        parse_str(&format!("{server}{storage}{base}"), "t.yaml").unwrap()
    };
    let old = cfg("server:\n  listen: 127.0.0.1:9464\n", "");
    assert!(restart_only_changes(&old, &old).is_empty());
    let new = cfg(
        "server:\n  listen: 127.0.0.1:9465\n  max_connections: 100\n  read_timeout: 3s\n  worker_threads: 2\n  max_concurrency: 10\n",
        "storage:\n  path: other.db\n",
    );
    assert_eq!(
        restart_only_changes(&old, &new),
        [
            "server.listen",
            "server.max_connections",
            "server.read_timeout",
            "server.worker_threads",
            "server.max_concurrency",
            "storage.path"
        ]
    );
    // Keys a reload applies are not named.
    let slo = cfg(
        "server:\n  listen: 127.0.0.1:9464\n",
        "metrics:\n  check_histograms: false\n",
    );
    assert!(restart_only_changes(&old, &slo).is_empty());
}
