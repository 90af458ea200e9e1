//! The daemon's HTTP server defending itself, end to end with the real
//! binary: idle and slowloris connections are closed after
//! `server.read_timeout` and do not starve `/healthz` or `/metrics`; the
//! connection cap holds; oversized and late bodies are refused; the bearer
//! scheme is case-insensitive; check state changes are logged once and
//! shown by `/api/v1/services`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::daemon::*;
use crate::support::prom::*;
use crate::support::servers::*;
use crate::support::{eventually, secs};

const TOKEN: &str = "guard-token-0123456789";

fn write_config(dir: &std::path::Path, server_extra: &str, checks: &str) -> std::path::PathBuf {
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
  api_token_env: GUARD_TOKEN
{server_extra}
storage:
  path: {db}
services:
  - name: portal
    checks:
{checks}
"#,
        db = dir.join("state.db").display(),
    );
    let path = dir.join("sentinel.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// A check that never runs into trouble: a TCP connect to the daemon's
/// own neighbour, a listener of this test.
async fn quiet_checks() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    format!(
        "      - name: port\n        interval: 5s\n        tcp: {{ host: 127.0.0.1, port: {port} }}\n"
    )
}

/// The soft descriptor limit of this process, raised to the hard one (the
/// daemon it starts inherits it). Every test of this binary shares the
/// raise, which only gives them room: none depends on a low soft limit (the
/// test that needs one sets it in a process of its own, and daemons run
/// under a limit get it from `prlimit`).
fn raise_own_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Whether the server has closed this connection: a read sees EOF (or a
/// reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // The server may answer before closing (it does not today).
            Ok(Ok(_)) => continue,
        }
    }
}

/// Whether the connection is already closed, without waiting.
fn already_closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// `n` connections, opened 100 at a time.
async fn connect_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch: Vec<_> = (0..(n - out.len()).min(100))
            .map(|_| tokio::spawn(TcpStream::connect(addr)))
            .collect();
        for c in batch {
            out.push(c.await.unwrap().unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_neither_starve_the_server_nor_outlive_the_read_timeout() {
    // Two thousand of each, as the server must withstand, unless this
    // machine's hard limit cannot hold them (client and daemon share it).
    let limit = raise_own_limit();
    let n = usize::try_from(limit.saturating_sub(1_000) / 4)
        .unwrap_or(usize::MAX)
        .min(2_000);
    assert!(
        n >= 200,
        "descriptor limit {limit} is too low for this test"
    );
    if n < 2_000 {
        println!("descriptor limit {limit}: testing with {n} + {n} connections");
    }

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "  read_timeout: 6s", &quiet_checks().await);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::new();

    let started = tokio::time::Instant::now();
    let mut idle = connect_many(d.addr, n).await;
    let mut slow = connect_many(d.addr, n).await;
    // Slowloris: a request line and then one header byte at a time, never
    // the blank line that ends the head.
    for s in &slow {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        assert_eq!(s.try_write(head).unwrap(), head.len());
    }
    let trickling = Arc::new(AtomicBool::new(true));
    let (slow_tx, slow_rx) = tokio::sync::oneshot::channel();
    {
        let trickling = Arc::clone(&trickling);
        tokio::spawn(async move {
            let mut alive = vec![true; slow.len()];
            while trickling.load(Ordering::SeqCst) {
                for (s, alive) in slow.iter_mut().zip(alive.iter_mut()) {
                    // A full send buffer would mean the server stopped
                    // reading: that is closing, too.
                    if *alive && !matches!(s.try_write(b"a"), Ok(1)) {
                        *alive = false;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let _ = slow_tx.send(slow);
        });
    }
    let opened_in = started.elapsed();

    // While all of them are held: the server answers.
    let t = tokio::time::Instant::now();
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = scrape(&client, &d).await;
    println!(
        "opened {} connections in {opened_in:?}; /healthz + /metrics answered in {:?} with them held",
        2 * n,
        t.elapsed()
    );
    let held = sample(&metrics, "sentinel_http_connections_open", &[]).unwrap();
    println!(
        "daemon with {held} connections held: RSS {:.1} MiB, {} descriptors open",
        sample(&metrics, "process_resident_memory_bytes", &[]).unwrap_or(0.0) / 1_048_576.0,
        sample(&metrics, "process_open_fds", &[]).unwrap_or(0.0)
    );
    assert!(
        held >= (2 * n) as f64,
        "the server should hold every connection ({} + ours), holds {held}",
        2 * n
    );
    assert!(sample(&metrics, "sentinel_http_connections_limit", &[]).unwrap() >= (2 * n) as f64);

    // Idle ones are closed after the read timeout (generous bound: the
    // machine is shared; the timing itself is printed, not asserted).
    let t = tokio::time::Instant::now();
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(20)).await,
            "idle connection {i} still open"
        );
    }
    println!(
        "all idle connections closed {:?} after the check began",
        t.elapsed()
    );
    trickling.store(false, Ordering::SeqCst);
    let mut slow = slow_rx.await.unwrap();
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(20)).await,
            "slowloris connection {i} still open"
        );
    }
    println!(
        "all slowloris connections closed {:?} after the check began",
        t.elapsed()
    );

    // Nothing is left over.
    let m = wait_for(&client, &d, 10, "the server's connections to drain", |m| {
        sample(m, "sentinel_http_connections_open", &[]).unwrap_or(f64::MAX) <= 2.0
    })
    .await;
    assert!(sample(&m, "sentinel_http_connections_open", &[]).is_some());
    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_cap_clients_wait_until_a_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "  max_connections: 8\n  read_timeout: 1s",
        &quiet_checks().await,
    );
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let m = scrape(&client, &d).await;
    assert_eq!(
        sample(&m, "sentinel_http_connections_limit", &[]),
        Some(8.0)
    );

    // Fill the cap with idle connections, then ask for /healthz: it can only
    // be served once the server has closed one of them.
    // The kernel completes our connects alone; the server accepts them in
    // order, so /healthz queues behind all eight.
    let idle = connect_many(d.addr, 8).await;
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        idle.iter().any(already_closed),
        "/healthz was served while 8 idle connections held the cap of 8"
    );

    // 40 more clients than the cap: all wait their turn, none is dropped,
    // and the server never holds more than 8.
    let mut asks = Vec::new();
    for _ in 0..40 {
        let client = client.clone();
        let url = d.url("/healthz");
        asks.push(tokio::spawn(async move {
            client.get(url).send().await.map(|r| r.status().as_u16())
        }));
    }
    let _more_idle = connect_many(d.addr, 20).await;
    for a in asks {
        assert_eq!(a.await.unwrap().unwrap(), 200);
    }
    let m = scrape(&client, &d).await;
    assert!(sample(&m, "sentinel_http_connections_open", &[]).unwrap() <= 8.0);
    let stderr = d.stderr.lock().unwrap().join("\n");
    assert!(
        stderr.contains("HTTP connection cap reached"),
        "the cap should be logged:\n{stderr}"
    );
    // Shutdown with the cap full of idle connections and clients waiting
    // in the backlog: still a clean, prompt exit.
    let _full = connect_many(d.addr, 12).await;
    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// A client that asks for responses and never reads them: the server's
/// writes stall, and the connection (and its permit of the cap) is given up
/// once a write made no progress for `server.read_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "  read_timeout: 1s", &quiet_checks().await);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // A small receive window, and far more response than the socket
    // buffers of both sides hold: 2 000 pipelined `/metrics` requests.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stalled = sock.connect(d.addr).await.unwrap();
    let requests = "GET /metrics HTTP/1.1\r\nHost: sentinel\r\n\r\n".repeat(2000);
    // The server reads requests only as it answers them; what it has not
    // read may stay in our send buffer.
    let _ = tokio::time::timeout(secs(5), stalled.write_all(requests.as_bytes())).await;
    let m = scrape(&client, &d).await;
    assert!(
        sample(&m, "sentinel_http_connections_open", &[]).unwrap() >= 2.0,
        "the stalled connection should still be open while the server waits to write"
    );
    // Closed by the server although we still hold our end and never read.
    wait_for(
        &client,
        &d,
        20,
        "the server to give up the connection whose client stopped reading",
        |m| sample(m, "sentinel_http_connections_open", &[]).unwrap_or(f64::MAX) <= 1.0,
    )
    .await;
    assert!(
        closed_within(&mut stalled, secs(10)).await,
        "after the data that fit in the buffers, the connection ends"
    );
    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// Sends `head` (and `body`) on a raw connection and returns the status code
/// and JSON body of the response, and whether it says `Connection: close`.
async fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, Value, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking the whole body.
    let _ = s.write_all(body).await;
    let mut got = Vec::new();
    // Bounded only so a regression fails instead of hanging.
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no response to {head:?}: {text:?}"));
    let (response_head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    let close = response_head
        .to_ascii_lowercase()
        .contains("\r\nconnection: close");
    (status, json, close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_late_bodies_are_refused_and_the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "  read_timeout: 1s", &quiet_checks().await);
    let d = Daemon::start(&cfg, &[("GUARD_TOKEN", TOKEN)]);
    let ack = "/api/v1/incidents/no-such-incident/ack";

    // A huge declared length and a 3-byte body: 413 without waiting for the rest.
    let head = format!(
        "POST {ack} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n"
    );
    let (status, body, close) = raw_request(d.addr, &head, b"{}\n").await;
    assert_eq!(status, 413, "{body}");
    // The unread body is still coming: the connection cannot be reused.
    assert!(close);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than 65536 bytes"),
        "{body}"
    );

    // Headers only, no body at all: the same.
    let (status, _, _) = raw_request(d.addr, &head, b"").await;
    assert_eq!(status, 413);

    // Chunked, passing the limit: 413 once past it.
    let chunk = vec![b' '; 70_000];
    let mut chunked = format!("{:x}\r\n", chunk.len()).into_bytes();
    chunked.extend_from_slice(&chunk);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let head = format!(
        "POST {ack} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (status, body, _) = raw_request(d.addr, &head, &chunked).await;
    assert_eq!(status, 413, "{body}");

    // A body announced and never finished: 408 after the read timeout.
    let head = format!(
        "POST {ack} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 10\r\n\r\n"
    );
    let (status, body, close) = raw_request(d.addr, &head, b"{}\n").await;
    assert_eq!(status, 408, "{body}");
    assert!(close);
    assert!(
        body["error"].as_str().unwrap().contains("read_timeout"),
        "{body}"
    );

    // Within the limit, bodies still reach the handler: valid JSON → the
    // incident is looked up (404); broken JSON → 400.
    let client = reqwest::Client::new();
    let url = d.url(ack);
    let post = |auth: &'static str, body: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", auth.parse().unwrap());
            let r = client
                .post(url)
                .headers(headers)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            assert!(body["error"].is_string(), "{body}");
            status
        }
    };
    let bearer =
        |scheme: &str| -> &'static str { Box::leak(format!("{scheme} {TOKEN}").into_boxed_str()) };
    assert_eq!(post(bearer("Bearer"), r#"{"by": "me"}"#).await, 404);
    assert_eq!(post(bearer("Bearer"), "{not json").await, 400);

    // The scheme is case-insensitive; the token is not.
    assert_eq!(post(bearer("bearer"), "{}").await, 404);
    assert_eq!(post(bearer("BEARER"), "{}").await, 404);
    assert_eq!(post(bearer("bEaReR"), "{}").await, 404);
    assert_eq!(
        post(
            Box::leak(format!("Bearer {}", TOKEN.to_uppercase()).into_boxed_str()),
            "{}"
        )
        .await,
        401
    );
    assert_eq!(post("Basic Z3VhcmQ6dG9rZW4=", "{}").await, 401);

    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

async fn check_json(client: &reqwest::Client, d: &Daemon, name: &str) -> Value {
    let v: Value = client
        .get(d.url("/api/v1/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["services"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap()
}

async fn wait_check(
    client: &reqwest::Client,
    d: &Daemon,
    name: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    eventually(
        secs(10),
        what,
        || format!("{}\nstderr: {:?}", last.lock().unwrap(), d.log()),
        || async {
            let c = check_json(client, d, name).await;
            let done = pred(&c);
            *last.lock().unwrap() = c.clone();
            done.then_some(c)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_state_changes_are_logged_once_and_the_api_shows_the_last_run() {
    let up = Arc::new(AtomicBool::new(true));
    let target = start_target(Arc::clone(&up)).await;
    let secret = "Bearer s3cr3t-probe-token";
    let checks = format!(
        r#"      - name: health
        interval: 250ms
        timeout: 240ms
        http:
          url: http://{target}/health
          expect: {{ status: [200], body_contains: ok }}
      - name: echo
        interval: 200ms
        timeout: 150ms
        http:
          url: http://{target}/echo
          headers: {{ Authorization: "{secret}" }}
          expect: {{ json: {{ "$.status": "UP" }} }}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", &checks);
    let d = Daemon::start(&cfg, &[]);
    let client = reqwest::Client::new();

    let c = wait_check(&client, &d, "health", "a good run", |c| {
        c["last_run"]["result"] == "good"
    })
    .await;
    assert_eq!(c["up"], true);
    assert_eq!(c["last_run"]["reason"], Value::Null);
    assert_eq!(c["last_run"]["detail"], "status 200");
    assert_eq!(c["local_errors"], 0);
    let at: jiff::Timestamp = c["last_run"]["at"].as_str().unwrap().parse().unwrap();
    assert!(
        // The daemon runs on the real clock, so the test compares with it.
        (sentinel::clock::Clock::now(&sentinel::clock::SystemClock).as_second() - at.as_second())
            .abs()
            < 60,
        "{c}"
    );

    up.store(false, Ordering::SeqCst);
    let c = wait_check(&client, &d, "health", "a bad run", |c| {
        c["last_run"]["result"] == "bad" && c["last_run"]["reason"] == "status"
    })
    .await;
    assert_eq!(c["up"], false);
    assert_eq!(c["last_run"]["reason"], "status");
    assert_eq!(c["last_run"]["detail"], "status 503 not in [200]");
    // Several bad runs, one "down" line.
    let runs_before = sample(
        &scrape(&client, &d).await,
        "sentinel_check_runs_total",
        &[r#"check="health""#, r#"result="bad""#],
    )
    .unwrap();
    wait_for(&client, &d, 10, "more bad runs", |m| {
        sample(
            m,
            "sentinel_check_runs_total",
            &[r#"check="health""#, r#"result="bad""#],
        )
        .unwrap_or(0.0)
            >= runs_before + 3.0
    })
    .await;
    up.store(true, Ordering::SeqCst);
    wait_check(&client, &d, "health", "a good run again", |c| {
        c["last_run"]["result"] == "good" && c["up"] == true
    })
    .await;
    // A few more good runs: still one "up" line.
    wait_for(&client, &d, 10, "more good runs", |m| {
        sample(
            m,
            "sentinel_check_runs_total",
            &[r#"check="health""#, r#"result="good""#],
        )
        .unwrap_or(0.0)
            >= 6.0
    })
    .await;

    // The echo check fails on a body that repeats its Authorization header:
    // the detail says so without the value.
    let echo = wait_check(&client, &d, "echo", "the echo check to fail", |c| {
        c["last_run"]["reason"] == "body"
    })
    .await;
    assert_eq!(echo["last_run"]["reason"], "body");
    assert_eq!(
        echo["last_run"]["detail"],
        r#"$.status is "<redacted>", expected "UP""#
    );

    let services = client
        .get(d.url("/api/v1/services"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stderr = d.stderr.lock().unwrap().join("\n");
    assert!(!services.contains("s3cr3t"), "{services}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");

    // One line each way for the outage, however many runs it lasted. (A
    // run timing out on a loaded machine would be a change of its own, with
    // reason `timeout`; only the outage's lines are counted.)
    let lines = |msg: &str, reason: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| {
                l.contains(" INFO ")
                    && l.contains(msg)
                    && l.contains("check=health")
                    && l.contains(reason)
            })
            .map(str::to_string)
            .collect()
    };
    let down = lines("check down", r#"reason="status""#);
    let up_lines = lines("check up", r#"was="status""#);
    assert_eq!(down.len(), 1, "{down:#?}");
    assert!(
        down[0].contains("detail=status 503 not in [200]"),
        "{}",
        down[0]
    );
    assert_eq!(up_lines.len(), 1, "{up_lines:#?}");
    assert!(up_lines[0].contains("detail=status 200"), "{}", up_lines[0]);
    assert!(up_lines[0].contains("down_since="), "{}", up_lines[0]);

    let status = d.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
