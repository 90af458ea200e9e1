//! Local errors through the real probes: with this process out of file
//! descriptors, every probe kind reports `Reason::Local` (not `network`,
//! `dns` or `tls`), and reports its real verdict again once descriptors are
//! free. It lowers the process's own descriptor limit, which no other test
//! may share, so it runs in a process of its own ([`crate::support::isolated`]).

use std::net::UdpSocket as StdUdpSocket;

use crate::support::{isolated, servers};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use sentinel::config::{DnsSpec, ProbeSpec, RecordType, TcpSpec, TlsSpec};
use sentinel::probe::{Outcome, Prober, Reason};

fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// Opens sockets until the process has no descriptor left; they are freed
/// when the returned vector is dropped.
fn exhaust_descriptors() -> Vec<StdUdpSocket> {
    let mut held = Vec::new();
    loop {
        match StdUdpSocket::bind("127.0.0.1:0") {
            Ok(s) => held.push(s),
            Err(e) => {
                assert_eq!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::MFILE),
                    "expected EMFILE, got {e}"
                );
                return held;
            }
        }
        assert!(held.len() < 10_000, "the lowered limit did not take");
    }
}

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

/// Every probe kind against a healthy local target.
struct Targets {
    specs: Vec<(&'static str, ProbeSpec)>,
}

async fn run_all(prober: &Prober, targets: &Targets) -> Vec<(&'static str, Outcome)> {
    let mut out = Vec::new();
    for (what, spec) in &targets.specs {
        let outcome = prober.run(&servers::check(spec.clone(), 2_000)).await;
        out.push((*what, outcome));
    }
    out
}

#[test]
fn every_probe_reports_a_local_error_when_this_host_is_out_of_descriptors() {
    if !isolated(
        "probe_local::every_probe_reports_a_local_error_when_this_host_is_out_of_descriptors",
    ) {
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(out_of_descriptors());
}

async fn out_of_descriptors() {
    let pki = servers::Pki::new();
    let clock: std::sync::Arc<dyn sentinel::clock::Clock> =
        std::sync::Arc::new(sentinel::clock::SystemClock);
    let prober = servers::prober_trusting(&pki, clock);
    let http = servers::http_server(|_: &str| servers::response("200 OK", &[], "ok")).await;
    let line = servers::line_server("220 ready\r\n").await;
    let tls = servers::tls_line_server(&pki, "220 ready\r\n").await;
    let dns = servers::dns_server().await;
    let refused = servers::refused_tcp();
    let closed = refused.port();
    let targets = Targets {
        specs: vec![
            (
                "http by address",
                ProbeSpec::Http(servers::http_spec(&format!("http://{http}/health"))),
            ),
            (
                // Goes through the system resolver first (getaddrinfo fails
                // with EAI_SYSTEM/EMFILE), which must not read as `dns`.
                "http by name",
                ProbeSpec::Http(servers::http_spec(&format!(
                    "http://localhost:{}/health",
                    http.port()
                ))),
            ),
            (
                "tcp by address",
                ProbeSpec::Tcp(tcp("127.0.0.1", line.port())),
            ),
            ("tcp by name", ProbeSpec::Tcp(tcp("localhost", line.port()))),
            (
                "tls",
                ProbeSpec::Tls(TlsSpec {
                    host: "127.0.0.1".into(),
                    port: tls.port(),
                    server_name: None,
                    tls_verify: true,
                    cert_min_days: 14,
                }),
            ),
            (
                "dns",
                ProbeSpec::Dns(DnsSpec {
                    name: "svc.test".into(),
                    record: RecordType::A,
                    server: dns,
                    expect: vec!["10.0.0.1".into()],
                }),
            ),
            ("refused", ProbeSpec::Tcp(tcp("127.0.0.1", closed))),
        ],
    };

    // With descriptors: the real verdicts (a refused port stays refused).
    for (what, outcome) in run_all(&prober, &targets).await {
        let expected = (what == "refused").then_some(Reason::Refused);
        assert_eq!(outcome.reason, expected, "{what}: {}", outcome.detail);
    }

    let saved = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_descriptors() + 32),
            maximum: saved.maximum,
        },
    )
    .unwrap();
    let held = exhaust_descriptors();
    let starved = run_all(&prober, &targets).await;
    drop(held);
    setrlimit(Resource::Nofile, saved).unwrap();

    for (what, outcome) in &starved {
        assert_eq!(
            outcome.reason,
            Some(Reason::Local),
            "{what}: {}",
            outcome.detail
        );
        assert!(outcome.is_local(), "{what}");
        assert!(!outcome.good(), "{what}");
        assert_eq!(
            outcome.detail, "local error on this host: Too many open files (os error 24)",
            "{what}"
        );
    }

    // Descriptors free again: the same probes are good again.
    for (what, outcome) in run_all(&prober, &targets).await {
        let expected = (what == "refused").then_some(Reason::Refused);
        assert_eq!(outcome.reason, expected, "{what}: {}", outcome.detail);
    }
}
