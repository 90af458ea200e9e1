//! DNS probe against a loopback server built with hickory-proto.

use std::net::SocketAddr;

use crate::support::servers;
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
    let out = prober.run(&servers::check(ProbeSpec::Dns(spec), 300)).await;
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
    let server = servers::dns_server().await;
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
    let (_keep, silent) = servers::silent_udp().await;
    check(
        &prober,
        silent,
        ("svc.test", RecordType::A, &[]),
        Some(Reason::Timeout),
        "no verdict within 300ms",
    )
    .await;

    // Nobody takes the datagram: the kernel answers with ICMP port unreachable.
    let refused = servers::refused_udp().await;
    check(
        &prober,
        refused.addr,
        ("svc.test", RecordType::A, &[]),
        Some(Reason::Refused),
        "connection refused",
    )
    .await;
}

/// On paused time the timeout fires as soon as nothing else can happen, and
/// the reported latency is exactly the timeout.
#[tokio::test(start_paused = true)]
async fn timeout_latency_is_the_timeout() {
    let prober = Prober::new().unwrap();
    let (_keep, silent) = servers::silent_udp().await;
    let spec = DnsSpec {
        name: "svc.test".into(),
        record: RecordType::A,
        server: silent,
        expect: Vec::new(),
    };
    let out = prober
        .run(&servers::check(ProbeSpec::Dns(spec), 5000))
        .await;
    assert_eq!(out.reason, Some(Reason::Timeout));
    assert_eq!(out.detail, "no verdict within 5s");
    assert_eq!(out.latency, std::time::Duration::from_secs(5));
}

/// The scheduler spawns runs: the future must be `Send`, the prober shareable.
#[test]
fn run_future_is_send_and_prober_is_sync() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync + Clone>() {}
    assert_sync::<Prober>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let prober = Prober::new().unwrap();
    let check = servers::check(
        ProbeSpec::Dns(DnsSpec {
            name: "svc.test".into(),
            record: RecordType::A,
            server: "127.0.0.1:53".parse().unwrap(),
            expect: Vec::new(),
        }),
        100,
    );
    let fut = prober.run(&check);
    assert_send(&fut);
}
