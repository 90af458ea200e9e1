//! DNS probe against a loopback server built with hickory-proto.

mod support;

use std::net::SocketAddr;

use sentinel::config::{DnsSpec, ProbeSpec, RecordType};
use sentinel::probe::{Prober, Reason};

/// The question and the answers that must be present.
type Question<'a> = (&'a str, RecordType, &'a [&'a str]);

async fn check(
    prober: &Prober,
    server: SocketAddr,
    (name, record, expect): Question<'_>,
    reason: Option<Reason>,
    detail: &str,
) {
    let spec = DnsSpec {
        name: name.into(),
        record,
        server,
        expect: expect.iter().map(|s| s.to_string()).collect(),
    };
    let out = prober.run(&support::check(ProbeSpec::Dns(spec), 300)).await;
    assert_eq!(
        out.reason, reason,
        "{name} {record:?} {expect:?}: {}",
        out.detail
    );
    assert!(
        out.detail.starts_with(detail),
        "{name}: detail {:?} does not start with {detail:?}",
        out.detail
    );
    assert_eq!(out.cert_not_after, None);
}

#[tokio::test]
async fn dns_table() {
    let prober = Prober::new().unwrap();
    let server = support::dns_server().await;
    use RecordType::*;
    let cases: Vec<(Question, Option<Reason>, &str)> = vec![
        (("svc.test", A, &[]), None, "svc.test A: 2 answers"),
        (
            ("svc.test", A, &["10.0.0.1"]),
            None,
            "svc.test A: 2 answers",
        ),
        (
            ("SVC.test.", A, &["10.0.0.2", "10.0.0.1"]),
            None,
            "SVC.test. A: 2 answers",
        ),
        (
            ("svc.test", A, &["10.0.0.1", "10.0.0.3"]),
            Some(Reason::Dns),
            "svc.test A: missing 10.0.0.3 (got 10.0.0.1, 10.0.0.2)",
        ),
        (
            ("svc.test", Aaaa, &[]),
            Some(Reason::Dns),
            "svc.test has no AAAA records",
        ),
        (
            ("other.test", A, &[]),
            Some(Reason::Dns),
            "other.test A: Non-Existent Domain",
        ),
        (
            ("garbage.test", A, &[]),
            Some(Reason::Protocol),
            "unparseable DNS reply",
        ),
        (
            ("wrongid.test", A, &[]),
            Some(Reason::Protocol),
            "reply id ",
        ),
        // Truncated over UDP: asked again over TCP on the same port.
        (
            ("big.test", A, &["192.0.2.7"]),
            None,
            "big.test A: 1 answers",
        ),
    ];
    for (q, reason, detail) in cases {
        check(&prober, server, q, reason, detail).await;
    }
}

#[tokio::test]
async fn dns_server_silent_or_closed() {
    let prober = Prober::new().unwrap();
    let (_keep, silent) = support::silent_udp().await;
    check(
        &prober,
        silent,
        ("svc.test", RecordType::A, &[]),
        Some(Reason::Timeout),
        "no verdict within 300ms",
    )
    .await;

    // Nothing bound: the kernel answers with ICMP port unreachable.
    let closed = {
        let (sock, addr) = support::silent_udp().await;
        drop(sock);
        addr
    };
    check(
        &prober,
        closed,
        ("svc.test", RecordType::A, &[]),
        Some(Reason::Refused),
        "connection refused",
    )
    .await;
}
