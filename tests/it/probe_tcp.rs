//! Plain TCP probe: connect, banner, send/expect, refused, unresolvable, silent.

use crate::support::servers;
use sentinel::config::{ProbeSpec, TcpSpec};
use sentinel::probe::{Prober, Reason};

fn tcp(host: &str, port: u16) -> TcpSpec {
    TcpSpec {
        host: host.into(),
        port,
        tls: false,
        tls_verify: true,
        server_name: None,
        send: None,
        expect: None,
        cert_min_days: None,
    }
}

async fn check(
    prober: &Prober,
    spec: TcpSpec,
    timeout_ms: u64,
    reason: Option<Reason>,
    detail: &str,
) {
    let what = format!(
        "{}:{} send={:?} expect={:?}",
        spec.host, spec.port, spec.send, spec.expect
    );
    let out = prober
        .run(&servers::check(ProbeSpec::Tcp(spec), timeout_ms))
        .await;
    assert_eq!(out.reason, reason, "{what}: {}", out.detail);
    assert_eq!(out.detail, detail, "{what}");
    assert_eq!(out.cert_not_after, None, "{what}");
}

#[tokio::test]
async fn tcp_table() {
    let prober = Prober::new().unwrap();
    let port = servers::line_server("220 ready\r\n").await.port();
    let refused = servers::refused_tcp();
    let closed = refused.port();
    let silent = servers::http_server(|_: &str| servers::Reply::Silent)
        .await
        .port();

    let with = |send: Option<&str>, expect: Option<&str>| {
        let mut s = tcp("127.0.0.1", port);
        s.send = send.map(str::to_string);
        s.expect = expect.map(str::to_string);
        s
    };

    check(&prober, with(None, None), 1000, None, "connected").await;
    check(&prober, with(None, Some("220")), 1000, None, "connected").await;
    check(
        &prober,
        with(Some("PING\r\n"), Some("PONG")),
        1000,
        None,
        "connected",
    )
    .await;
    check(
        &prober,
        with(Some("PING\r\n"), Some("NOPE")),
        1000,
        Some(Reason::Body),
        "reply (17 bytes) does not contain \"NOPE\"",
    )
    .await;
    check(
        &prober,
        tcp("127.0.0.1", closed),
        1000,
        Some(Reason::Refused),
        "connection refused",
    )
    .await;
    check(
        &prober,
        tcp("nonexistent.invalid", 80),
        1000,
        Some(Reason::Dns),
        "cannot resolve host nonexistent.invalid",
    )
    .await;
    let mut waits = tcp("127.0.0.1", silent);
    waits.send = Some("x".into());
    waits.expect = Some("anything".into());
    check(
        &prober,
        waits,
        300,
        Some(Reason::Timeout),
        "no verdict within 300ms",
    )
    .await;
    let mut no_tls = tcp("127.0.0.1", port);
    no_tls.cert_min_days = Some(14);
    check(
        &prober,
        no_tls,
        1000,
        Some(Reason::Cert),
        "cert_min_days set but no TLS certificate was seen",
    )
    .await;
}
