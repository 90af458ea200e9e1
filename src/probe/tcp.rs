//! The TCP probe (connect, optional TLS, optional send/expect) and the TLS
//! probe (connect, handshake, certificate expiry), which shares its steps.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::net::{self, Failure, TlsConfigs};
use super::{Outcome, Reason};
use crate::clock::Clock;
use crate::config::{TcpSpec, TlsSpec};

/// How much of the peer's reply we read while looking for `expect`.
const EXPECT_READ_CAP: usize = 64 * 1024;

pub(crate) async fn run_tcp(
    tls: &TlsConfigs,
    spec: &TcpSpec,
    clock: &dyn Clock,
    start: Instant,
) -> Outcome {
    let stream = match connect(&spec.host, spec.port).await {
        Ok(s) => s,
        Err(f) => return f.into_outcome(start, None),
    };
    let (result, not_after) = if spec.tls {
        let name = spec.server_name.as_deref().unwrap_or(&spec.host);
        match handshake(tls.pick(spec.tls_verify), name, stream).await {
            Ok((s, not_after)) => (converse(s, spec).await, not_after),
            Err(f) => return f.into_outcome(start, None),
        }
    } else {
        (converse(stream, spec).await, None)
    };
    if let Err(f) = result {
        return f.into_outcome(start, not_after);
    }
    if let Some(min_days) = spec.cert_min_days {
        let detail = match not_after {
            None => Some("cert_min_days set but no TLS certificate was seen".to_string()),
            Some(na) => net::cert_too_close(na, min_days, clock.now()),
        };
        if let Some(d) = detail {
            return Failure::new(Reason::Cert, d).into_outcome(start, not_after);
        }
    }
    Outcome {
        reason: None,
        latency: start.elapsed(),
        cert_not_after: not_after,
        detail: if spec.tls {
            "connected, TLS ok".to_string()
        } else {
            "connected".to_string()
        },
    }
}

pub(crate) async fn run_tls(
    tls: &TlsConfigs,
    spec: &TlsSpec,
    clock: &dyn Clock,
    start: Instant,
) -> Outcome {
    let stream = match connect(&spec.host, spec.port).await {
        Ok(s) => s,
        Err(f) => return f.into_outcome(start, None),
    };
    let name = spec.server_name.as_deref().unwrap_or(&spec.host);
    let not_after = match handshake(tls.pick(spec.tls_verify), name, stream).await {
        Ok((_, na)) => na,
        Err(f) => return f.into_outcome(start, None),
    };
    let Some(na) = not_after else {
        return Failure::new(Reason::Tls, "peer sent no parseable certificate")
            .into_outcome(start, None);
    };
    if let Some(d) = net::cert_too_close(na, spec.cert_min_days, clock.now()) {
        return Failure::new(Reason::Cert, d).into_outcome(start, not_after);
    }
    let days = (na - clock.now().as_second()).div_euclid(86_400);
    Outcome {
        reason: None,
        latency: start.elapsed(),
        cert_not_after: not_after,
        detail: format!("certificate valid for {days} more days"),
    }
}

/// Resolves `host` (no cache beyond the system's) and connects to the first
/// address that accepts.
async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let addrs: Vec<_> = match tokio::net::lookup_host((host, port)).await {
        Ok(it) => it.collect(),
        // The resolver could not open a file or socket: says nothing about
        // the name (glibc reports EAI_SYSTEM with the errno).
        Err(e) if net::is_local(&e) => return Err(net::local(&e)),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Err(Failure::new(
            Reason::Dns,
            format!("cannot resolve host {host}"),
        ));
    }
    let mut last = Failure::new(Reason::Network, "no address to connect to");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                // Small request/response exchanges: do not wait for Nagle.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = net::classify_io(&e),
        }
    }
    Err(last)
}

async fn handshake(
    config: Arc<ClientConfig>,
    name: &str,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, Option<i64>), Failure> {
    // `ServerName` parses IP literals itself, so an IP host verifies against
    // the certificate's IP SANs.
    let server_name = ServerName::try_from(name)
        .map(|n| n.to_owned())
        .map_err(|_| Failure::new(Reason::Tls, format!("invalid TLS server name {name:?}")))?;
    let tls = TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|e| net::classify_handshake(&e))?;
    let not_after = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| net::cert_not_after(leaf));
    Ok((tls, not_after))
}

/// Optional send, then optional read until `expect` shows up.
async fn converse<S>(mut stream: S, spec: &TcpSpec) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(send) = &spec.send {
        stream
            .write_all(send.as_bytes())
            .await
            .map_err(|e| io_failure(&e))?;
        stream.flush().await.map_err(|e| io_failure(&e))?;
    }
    let Some(expect) = &spec.expect else {
        return Ok(());
    };
    let needle = expect.as_bytes();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8 * 1024];
    while got.len() < EXPECT_READ_CAP {
        let want = buf.len().min(EXPECT_READ_CAP - got.len());
        let n = match stream.read(&mut buf[..want]).await {
            Ok(n) => n,
            // A TLS peer that hangs up without close_notify: judge what came.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io_failure(&e)),
        };
        if n == 0 {
            break;
        }
        // Only the tail can hold a match that was not there before.
        let from = got.len().saturating_sub(needle.len().saturating_sub(1));
        got.extend_from_slice(&buf[..n]);
        if contains(&got[from..], needle) {
            return Ok(());
        }
    }
    if contains(&got, needle) {
        return Ok(());
    }
    Err(Failure::new(
        Reason::Body,
        format!(
            "reply ({} bytes) does not contain {:?}",
            got.len(),
            expect.chars().take(80).collect::<String>()
        ),
    ))
}

fn io_failure(e: &std::io::Error) -> Failure {
    net::classify(e).unwrap_or_else(|| net::classify_io(e))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
