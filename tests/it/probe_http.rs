//! HTTP probe against loopback servers: every expectation, redirects, body
//! cap, garbage, slow-loris, refused and unresolvable targets.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::servers;
use crate::support::servers::{Reply, http_spec, response};
use regex::Regex;
use sentinel::config::{HttpHeader, HttpSpec, JsonExpectation, ProbeSpec};
use sentinel::probe::{Prober, Reason};
use serde_json::json;

const OK_JSON: &str = r#"{"status":"UP","count":3,"items":[{"id":"a"}]}"#;

async fn server() -> SocketAddr {
    servers::http_server(|head: &str| {
        let line = head.lines().next().unwrap_or("");
        let path = line.split_whitespace().nth(1).unwrap_or("");
        match path {
            "/ok" => response("200 OK", &[("Content-Type", "application/json")], OK_JSON),
            "/down" => response("503 Service Unavailable", &[], "down"),
            "/redirect" => response("302 Found", &[("Location", "/ok")], ""),
            "/loop" => response("302 Found", &[("Location", "/loop")], ""),
            "/echo" => response("200 OK", &[], head),
            "/garbage" => Reply::Bytes(b"HELLO I AM NOT HTTP\r\n\r\n".to_vec()),
            "/truncated" => {
                Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b".to_vec())
            }
            "/hangup" => Reply::Bytes(Vec::new()),
            "/huge" => Reply::Endless {
                head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nSTART".to_vec(),
                chunk: vec![b'x'; 8192],
            },
            "/slow" => Reply::Trickle {
                bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                every: Duration::from_millis(100),
            },
            "/delayed" => Reply::Delayed(
                Duration::from_millis(200),
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
            ),
            _ => response("404 Not Found", &[], "no"),
        }
    })
    .await
}

/// One case: tweak the default spec for `path`, expect a reason and a detail
/// (a prefix when the text comes from a dependency or a clock).
struct Case {
    path: &'static str,
    tweak: fn(&mut HttpSpec),
    timeout_ms: u64,
    reason: Option<Reason>,
    detail: &'static str,
}

fn case(
    path: &'static str,
    tweak: fn(&mut HttpSpec),
    reason: Option<Reason>,
    detail: &'static str,
) -> Case {
    Case {
        path,
        tweak,
        timeout_ms: 1000,
        reason,
        detail,
    }
}

async fn check(prober: &Prober, base: &str, c: Case) {
    let mut spec = http_spec(&format!("{base}{}", c.path));
    (c.tweak)(&mut spec);
    let out = prober
        .run(&servers::check(ProbeSpec::Http(spec), c.timeout_ms))
        .await;
    assert_eq!(out.reason, c.reason, "{}: {}", c.path, out.detail);
    assert!(
        out.detail.starts_with(c.detail),
        "{}: detail {:?} does not start with {:?}",
        c.path,
        out.detail,
        c.detail
    );
    assert_eq!(out.cert_not_after, None, "{}", c.path);
}

fn none(_: &mut HttpSpec) {}

#[tokio::test]
async fn http_expectations_table() {
    let addr = server().await;
    let base = format!("http://{addr}");
    let prober = Prober::new().unwrap();
    let cases = vec![
        case("/ok", none, None, "status 200"),
        case(
            "/ok",
            |s| s.expect.status = vec![201],
            Some(Reason::Status),
            "status 200 not in [201]",
        ),
        case(
            "/down",
            |s| s.expect.status = vec![200, 204],
            Some(Reason::Status),
            "status 503 not in [200, 204]",
        ),
        case(
            "/down",
            |s| {
                s.expect.status = vec![503];
                s.expect.body_contains = Some("down".into());
            },
            None,
            "status 503",
        ),
        case(
            "/ok",
            |s| s.expect.body_contains = Some("UP".into()),
            None,
            "status 200",
        ),
        case(
            "/ok",
            |s| s.expect.body_contains = Some("nope".into()),
            Some(Reason::Body),
            "body does not contain \"nope\"",
        ),
        case(
            "/ok",
            |s| s.expect.body_regex = Some(Regex::new(r#""count":\s*\d+"#).unwrap()),
            None,
            "status 200",
        ),
        case(
            "/ok",
            |s| s.expect.body_regex = Some(Regex::new("DOWN|FAIL").unwrap()),
            Some(Reason::Body),
            "body does not match /DOWN|FAIL/",
        ),
        case(
            "/ok",
            |s| {
                s.expect.json = vec![
                    JsonExpectation::new("$.status", json!("UP")),
                    JsonExpectation::new("$.count", json!(3)),
                    JsonExpectation::new("$.count", json!("3")),
                    JsonExpectation::new("$.items[0]['id']", json!("a")),
                ]
            },
            None,
            "status 200",
        ),
        case(
            "/ok",
            |s| s.expect.json = vec![JsonExpectation::new("$.status", json!("DOWN"))],
            Some(Reason::Body),
            "$.status is \"UP\", expected \"DOWN\"",
        ),
        case(
            "/ok",
            |s| s.expect.json = vec![JsonExpectation::new("$.items[3].id", json!("a"))],
            Some(Reason::Body),
            "$.items[3].id not found",
        ),
        case(
            "/down",
            |s| {
                s.expect.status = vec![503];
                s.expect.json = vec![JsonExpectation::new("$.status", json!("UP"))];
            },
            Some(Reason::Body),
            "body is not JSON: expected value at line 1 column 1",
        ),
        // Status is judged before the body.
        case(
            "/down",
            |s| s.expect.body_contains = Some("nope".into()),
            Some(Reason::Status),
            "status 503 not in [200-299]",
        ),
        case(
            "/echo",
            |s| {
                s.method = "POST".into();
                s.headers = vec![HttpHeader::new("X-Probe", "yes")];
                s.body = Some("hello".into());
                s.expect.body_regex = Some(Regex::new(r"(?s)^POST /echo .*x-probe: yes").unwrap());
            },
            None,
            "status 200",
        ),
        case(
            "/redirect",
            |s| s.expect.status = vec![200],
            Some(Reason::Status),
            "status 302 not in [200]",
        ),
        case(
            "/redirect",
            |s| s.expect.status = vec![302],
            None,
            "status 302",
        ),
        case(
            "/redirect",
            |s| {
                s.follow_redirects = true;
                s.expect.json = vec![JsonExpectation::new("$.status", json!("UP"))];
            },
            None,
            "status 200",
        ),
        case(
            "/loop",
            |s| s.follow_redirects = true,
            Some(Reason::Protocol),
            "too many redirects",
        ),
        case(
            "/garbage",
            none,
            Some(Reason::Protocol),
            "bad HTTP response: ",
        ),
        // The body stops 90 bytes short of its Content-Length.
        case(
            "/truncated",
            none,
            Some(Reason::Protocol),
            "truncated: peer closed mid-message",
        ),
        // Accepted, read the request, closed without a word.
        case(
            "/hangup",
            none,
            Some(Reason::Protocol),
            "bad HTTP response: connection closed before message completed",
        ),
        // The body never ends: the probe stops at the cap and judges the start.
        case(
            "/huge",
            |s| {
                s.max_body_bytes = 4096;
                s.expect.body_contains = Some("START".into());
            },
            None,
            "status 200",
        ),
        case(
            "/huge",
            |s| {
                s.max_body_bytes = 4096;
                s.expect.body_contains = Some("END".into());
            },
            Some(Reason::Body),
            "body does not contain \"END\"",
        ),
        case(
            "/delayed",
            |s| s.expect.max_latency = Some(Duration::from_millis(50)),
            Some(Reason::Latency),
            "took ",
        ),
        case(
            "/delayed",
            |s| s.expect.cert_min_days = Some(14),
            Some(Reason::Cert),
            "cert_min_days set but no TLS certificate was seen",
        ),
        Case {
            timeout_ms: 400,
            ..case(
                "/slow",
                none,
                Some(Reason::Timeout),
                "no verdict within 400ms",
            )
        },
    ];
    for c in cases {
        check(&prober, &base, c).await;
    }
}

#[tokio::test]
async fn refused_and_unresolvable() {
    let prober = Prober::new().unwrap();
    let refused = servers::refused_tcp();
    let port = refused.port();
    check(
        &prober,
        &format!("http://127.0.0.1:{port}"),
        case("/", none, Some(Reason::Refused), "connection refused"),
    )
    .await;
    check(
        &prober,
        "http://nonexistent.invalid",
        case(
            "/",
            none,
            Some(Reason::Dns),
            "cannot resolve host nonexistent.invalid",
        ),
    )
    .await;
}

/// A URL with credentials must not leak them into the detail.
#[tokio::test]
async fn detail_never_contains_the_url() {
    let prober = Prober::new().unwrap();
    let refused = servers::refused_tcp();
    let port = refused.port();
    let spec = http_spec(&format!(
        "http://user:s3cret@127.0.0.1:{port}/?token=s3cret"
    ));
    let out = prober
        .run(&servers::check(ProbeSpec::Http(spec), 1000))
        .await;
    assert_eq!(out.reason, Some(Reason::Refused));
    assert_eq!(out.detail, "connection refused");
}

/// A plain `http://` check without redirects takes the lean hyper path,
/// one that follows redirects takes reqwest's: both send the same request
/// head (request line, the check's headers in order, `Accept`,
/// `User-Agent`, `Host` with the port) and reach the same verdict.
#[tokio::test]
async fn lean_and_reqwest_paths_send_the_same_request() {
    use std::sync::{Arc, Mutex};
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&heads);
    let addr = servers::http_server(move |head: &str| {
        let end = head.find("\r\n\r\n").map_or(head.len(), |i| i + 4);
        seen.lock().unwrap().push(head[..end].to_string());
        response("200 OK", &[], "ok")
    })
    .await;
    let prober = Prober::new().unwrap();
    let variants: Vec<(&str, Vec<HttpHeader>, Option<&str>)> = vec![
        ("GET", Vec::new(), None),
        (
            "POST",
            vec![
                HttpHeader::new("X-Probe", "one"),
                HttpHeader::new("Accept", "text/plain"),
                HttpHeader::new("X-Probe", "two"),
            ],
            Some("hello"),
        ),
        (
            "GET",
            vec![
                HttpHeader::new("Host", "example.test"),
                HttpHeader::new("User-Agent", "mine"),
            ],
            None,
        ),
    ];
    for (method, headers, body) in variants {
        for follow in [false, true] {
            let mut spec = http_spec(&format!("http://{addr}/echo?x=1&y=%20#fragment"));
            spec.method = method.into();
            spec.headers = headers.clone();
            spec.body = body.map(str::to_string);
            spec.follow_redirects = follow;
            spec.expect.body_contains = Some("ok".into());
            let out = prober
                .run(&servers::check(ProbeSpec::Http(spec), 2000))
                .await;
            assert_eq!(out.reason, None, "{method} follow={follow}: {}", out.detail);
            assert_eq!(out.detail, "status 200");
        }
        let got: Vec<String> = std::mem::take(&mut *heads.lock().unwrap());
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0], got[1],
            "lean path (left) and reqwest (right) differ"
        );
        assert!(
            got[0].starts_with(&format!("{method} /echo?x=1&y=%20 HTTP/1.1\r\n")),
            "{:?}",
            got[0]
        );
    }
    // The defaults, when the check sets none of them.
    let mut spec = http_spec(&format!("http://{addr}/"));
    spec.expect.body_contains = Some("ok".into());
    let out = prober
        .run(&servers::check(ProbeSpec::Http(spec), 2000))
        .await;
    assert_eq!(out.reason, None, "{}", out.detail);
    let head = heads.lock().unwrap().pop().unwrap();
    assert_eq!(
        head,
        format!(
            "GET / HTTP/1.1\r\naccept: */*\r\nuser-agent: sentinel/{}\r\nhost: {addr}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
