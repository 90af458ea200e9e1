//! Everything that speaks TLS: HTTPS, TCP with TLS and the `tls` kind, against
//! loopback servers whose leaf (signed by a test CA) expires 2099-01-01.
//! A manual clock pinned 10 days before that makes days-left exact.

use std::sync::Arc;
use std::time::Duration;

use crate::support::servers;
use crate::support::servers::{LEAF_NOT_AFTER, Pki, http_spec, response};
use sentinel::clock::{Clock, ManualClock};
use sentinel::config::{ProbeSpec, TcpSpec, TlsSpec};
use sentinel::probe::{Outcome, Prober, Reason};

fn ten_days_before_expiry() -> Arc<dyn Clock> {
    let clock = ManualClock::new(jiff::Timestamp::UNIX_EPOCH);
    clock.advance(Duration::from_secs((LEAF_NOT_AFTER - 10 * 86_400) as u64));
    Arc::new(clock)
}

/// The verdict we expect: reason, exact detail (or prefix) and certificate.
fn check(name: &str, out: &Outcome, reason: Option<Reason>, detail: &str, cert: Option<i64>) {
    assert_eq!(out.reason, reason, "{name}: {}", out.detail);
    assert!(
        out.detail.starts_with(detail),
        "{name}: detail {:?} does not start with {detail:?}",
        out.detail
    );
    assert_eq!(out.cert_not_after, cert, "{name}");
}

fn tcp(port: u16) -> TcpSpec {
    TcpSpec {
        host: "127.0.0.1".into(),
        port,
        tls: true,
        tls_verify: true,
        server_name: None,
        send: None,
        expect: None,
        cert_min_days: None,
    }
}

fn tls(port: u16) -> TlsSpec {
    TlsSpec {
        host: "127.0.0.1".into(),
        port,
        server_name: None,
        tls_verify: true,
        cert_min_days: 14,
    }
}

async fn run(prober: &Prober, probe: ProbeSpec) -> Outcome {
    prober.run(&servers::check(probe, 1000)).await
}

#[tokio::test]
async fn https_verify_cert_days_and_not_after() {
    let pki = Pki::new();
    let addr = servers::https_server(&pki, |_: &str| response("200 OK", &[], "ok")).await;
    let url = format!("https://{addr}/");
    let trusting = servers::prober_trusting(&pki, ten_days_before_expiry());
    let plain = Prober::new_with_clock(ten_days_before_expiry()).unwrap();
    let known = Some(LEAF_NOT_AFTER);

    let out = run(&trusting, ProbeSpec::Http(http_spec(&url))).await;
    check("trusted CA", &out, None, "status 200", known);

    let mut spec = http_spec(&url);
    spec.expect.cert_min_days = Some(14);
    let out = run(&trusting, ProbeSpec::Http(spec)).await;
    check(
        "14 days wanted, 10 left",
        &out,
        Some(Reason::Cert),
        "certificate expires in 10 days (minimum 14)",
        known,
    );

    let mut spec = http_spec(&url);
    spec.expect.cert_min_days = Some(7);
    let out = run(&trusting, ProbeSpec::Http(spec)).await;
    check("7 days wanted, 10 left", &out, None, "status 200", known);

    // Precedence: a body mismatch is reported before the certificate.
    let mut spec = http_spec(&url);
    spec.expect.cert_min_days = Some(14);
    spec.expect.body_contains = Some("nope".into());
    let out = run(&trusting, ProbeSpec::Http(spec)).await;
    check(
        "body before cert",
        &out,
        Some(Reason::Body),
        "body does not contain \"nope\"",
        known,
    );

    let out = run(&plain, ProbeSpec::Http(http_spec(&url))).await;
    check(
        "unknown CA",
        &out,
        Some(Reason::Tls),
        "tls: invalid peer certificate",
        None,
    );

    let mut spec = http_spec(&url);
    spec.tls_verify = false;
    let out = run(&plain, ProbeSpec::Http(spec)).await;
    check("verify off", &out, None, "status 200", known);
}

#[tokio::test]
async fn https_against_plain_http_is_a_tls_failure() {
    // A plaintext server that speaks first, like SMTP or a misconfigured port.
    let addr = servers::line_server("220 ready\r\n").await;
    let prober = Prober::new().unwrap();
    let out = run(
        &prober,
        ProbeSpec::Http(http_spec(&format!("https://{addr}/"))),
    )
    .await;
    check("plaintext peer", &out, Some(Reason::Tls), "tls: ", None);
}

#[tokio::test]
async fn tcp_with_tls_table() {
    let pki = Pki::new();
    let addr = servers::tls_line_server(&pki, "220 ready\r\n").await;
    let port = addr.port();
    let trusting = servers::prober_trusting(&pki, ten_days_before_expiry());
    let plain = Prober::new_with_clock(ten_days_before_expiry()).unwrap();
    let known = Some(LEAF_NOT_AFTER);

    /// name, trust the test CA, tweak, reason, detail, certificate.
    type Case = (
        &'static str,
        bool,
        fn(&mut TcpSpec),
        Option<Reason>,
        &'static str,
        Option<i64>,
    );
    let cases: Vec<Case> = vec![
        ("handshake", true, |_| {}, None, "connected, TLS ok", known),
        (
            "banner",
            true,
            |s| s.expect = Some("220".into()),
            None,
            "connected, TLS ok",
            known,
        ),
        (
            "send/expect",
            true,
            |s| {
                s.send = Some("PING\r\n".into());
                s.expect = Some("PONG".into());
            },
            None,
            "connected, TLS ok",
            known,
        ),
        (
            "expect missing",
            true,
            |s| {
                s.send = Some("PING\r\n".into());
                s.expect = Some("NOPE".into());
            },
            Some(Reason::Body),
            "reply (17 bytes) does not contain \"NOPE\"",
            known,
        ),
        (
            "sni localhost",
            true,
            |s| s.server_name = Some("localhost".into()),
            None,
            "connected, TLS ok",
            known,
        ),
        (
            "wrong name",
            true,
            |s| s.server_name = Some("wrong.example".into()),
            Some(Reason::Tls),
            "tls: invalid peer certificate",
            None,
        ),
        (
            "cert days",
            true,
            |s| s.cert_min_days = Some(30),
            Some(Reason::Cert),
            "certificate expires in 10 days (minimum 30)",
            known,
        ),
        (
            "unknown CA",
            false,
            |_| {},
            Some(Reason::Tls),
            "tls: invalid peer certificate",
            None,
        ),
        (
            "unknown CA, verify off",
            false,
            |s| s.tls_verify = false,
            None,
            "connected, TLS ok",
            known,
        ),
    ];
    for (name, trust, tweak, reason, detail, cert) in cases {
        let mut spec = tcp(port);
        tweak(&mut spec);
        let prober = if trust { &trusting } else { &plain };
        let out = run(prober, ProbeSpec::Tcp(spec)).await;
        check(name, &out, reason, detail, cert);
    }
}

#[tokio::test]
async fn tls_kind_table() {
    let pki = Pki::new();
    let addr = servers::tls_line_server(&pki, "hi\r\n").await;
    let plaintext = servers::line_server("hi\r\n").await;
    let refused = servers::refused_tcp();
    let closed = refused.port();
    let trusting = servers::prober_trusting(&pki, ten_days_before_expiry());
    let plain = Prober::new_with_clock(ten_days_before_expiry()).unwrap();
    let known = Some(LEAF_NOT_AFTER);

    let out = run(&trusting, ProbeSpec::Tls(tls(addr.port()))).await;
    check(
        "default 14 days",
        &out,
        Some(Reason::Cert),
        "certificate expires in 10 days (minimum 14)",
        known,
    );

    let mut spec = tls(addr.port());
    spec.cert_min_days = 7;
    let out = run(&trusting, ProbeSpec::Tls(spec)).await;
    check(
        "7 days",
        &out,
        None,
        "certificate valid for 10 more days",
        known,
    );

    let mut spec = tls(addr.port());
    spec.cert_min_days = 7;
    let out = run(&plain, ProbeSpec::Tls(spec.clone())).await;
    check(
        "unknown CA",
        &out,
        Some(Reason::Tls),
        "tls: invalid peer certificate",
        None,
    );
    spec.tls_verify = false;
    let out = run(&plain, ProbeSpec::Tls(spec)).await;
    check(
        "verify off",
        &out,
        None,
        "certificate valid for 10 more days",
        known,
    );

    let out = run(&trusting, ProbeSpec::Tls(tls(plaintext.port()))).await;
    check("plaintext peer", &out, Some(Reason::Tls), "tls", None);

    let out = run(&trusting, ProbeSpec::Tls(tls(closed))).await;
    check(
        "closed port",
        &out,
        Some(Reason::Refused),
        "connection refused",
        None,
    );

    // A server that accepts and never answers the ClientHello.
    let silent = servers::http_server(|_: &str| servers::Reply::Silent).await;
    let out = trusting
        .run(&servers::check(ProbeSpec::Tls(tls(silent.port())), 300))
        .await;
    check(
        "silent",
        &out,
        Some(Reason::Timeout),
        "no verdict within 300ms",
        None,
    );
}

#[tokio::test]
async fn expired_certificate_is_a_cert_failure() {
    let pki = Pki::valid_until(2021, 1, 1);
    let addr = servers::tls_line_server(&pki, "hi\r\n").await;
    let trusting = servers::prober_trusting(&pki, ten_days_before_expiry());

    // Verification on: rustls rejects it against the real clock.
    let out = run(&trusting, ProbeSpec::Tls(tls(addr.port()))).await;
    check(
        "verify on",
        &out,
        Some(Reason::Cert),
        "tls: invalid peer certificate: certificate expired",
        None,
    );

    // Verification off: the days-left check catches it against our clock.
    let mut spec = tls(addr.port());
    spec.tls_verify = false;
    let out = run(&trusting, ProbeSpec::Tls(spec)).await;
    check(
        "verify off",
        &out,
        Some(Reason::Cert),
        "certificate expired 28479 days ago",
        Some(1_609_459_200),
    );
}
