//! The lean path of the HTTP probe: plain `http://`, no redirects to follow,
//! no credentials in the URL, a host that is (or resolves to) one address.
//! That is most checks, and for them reqwest's per-request machinery (a
//! connector service stack, a pool that holds nothing, a spawned connection
//! task, `getpeername`/`getsockname` for connection info, TCP keep-alive
//! options, an orderly `shutdown` before close) is most of the user-space
//! cost of a run. Here one hyper HTTP/1.1 connection is driven on the
//! probe's own task and dropped after the verdict.
//!
//! What a run measures is the same as on the reqwest path: a fresh TCP
//! connection (connect time is in the latency), the same request line and
//! headers (`Host`, `User-Agent: sentinel/<version>`, `Accept: */*` unless
//! the check sets them), the body read up to `max_body_bytes`, and the same
//! failure reasons and details (both paths classify hyper's and the socket's
//! errors with [`net::classify`]). Every other case (TLS, redirects, URL
//! credentials, a host with several addresses, which reqwest's connector
//! races) stays on reqwest.
//!
//! After the verdict the socket is simply closed (an orderly FIN, as
//! before; the separate `shutdown` call reqwest's connection makes first
//! is skipped). `SO_LINGER` 0 (a reset instead of the closing handshake)
//! was measured and saved no CPU here, so the peer sees the same close as
//! from any HTTP client.

use std::future::{Future, poll_fn};
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use reqwest::Method;
use tokio::net::TcpStream;

use super::net::{self, Failure, ResolveFailure};
use super::{Reason, http::Exchanged};
use crate::config::HttpSpec;

/// `User-Agent` of every probe request, the same as the reqwest clients'.
pub(crate) const USER_AGENT_VALUE: &str = concat!("sentinel/", env!("CARGO_PKG_VERSION"));

/// The request target (path and query) when the spec may take the lean
/// path; the host is looked at later, by [`resolve`]. `None` also for a
/// target hyper would not parse: reqwest then reports it as it always did.
pub(crate) fn eligible(spec: &HttpSpec) -> Option<hyper::Uri> {
    if spec.url.scheme() != "http"
        || spec.follow_redirects
        || !spec.url.username().is_empty()
        || spec.url.password().is_some()
    {
        return None;
    }
    spec.url[url::Position::BeforePath..url::Position::AfterQuery]
        .parse()
        .ok()
}

/// The one address to connect to; `Ok(None)` when the host has several
/// (reqwest's connector tries them with a fallback race, so such a run
/// stays there). Failures are the ones reqwest's path reports: `dns` when
/// nothing resolves, `local` when this host could not ask.
pub(crate) async fn resolve(spec: &HttpSpec) -> Result<Option<SocketAddr>, Failure> {
    let port = spec.url.port_or_known_default().unwrap_or(80);
    let host = match spec.url.host() {
        Some(url::Host::Ipv4(ip)) => return Ok(Some(SocketAddr::new(IpAddr::V4(ip), port))),
        Some(url::Host::Ipv6(ip)) => return Ok(Some(SocketAddr::new(IpAddr::V6(ip), port))),
        Some(url::Host::Domain(d)) => d,
        // An `http` URL always has a host; let reqwest say what it makes of one without.
        None => return Ok(None),
    };
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(it) => it.collect(),
        Err(e) if net::is_local(&e) => return Err(net::local(&e)),
        Err(_) => Vec::new(),
    };
    match found.as_slice() {
        [] => Err(Failure::new(
            Reason::Dns,
            ResolveFailure {
                host: host.to_string(),
            }
            .to_string(),
        )),
        [one] => Ok(Some(*one)),
        _ => Ok(None),
    }
}

/// One request for `uri` (from [`eligible`]) on a fresh connection to
/// `addr`. `headers` are the check's own, already validated.
pub(crate) async fn exchange(
    addr: SocketAddr,
    uri: hyper::Uri,
    spec: &HttpSpec,
    method: Method,
    mut headers: HeaderMap,
) -> Result<Exchanged, Failure> {
    // The same defaults, in the same order, as reqwest (`Accept`, then
    // `User-Agent`, each only when the check did not set it) and hyper-util
    // (`Host` with the port when it is not the scheme's default).
    headers
        .entry(ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    headers
        .entry(USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT_VALUE));
    if !headers.contains_key(HOST) {
        let host = spec.url.host_str().unwrap_or_default();
        let value = match spec.url.port() {
            Some(port) => HeaderValue::from_str(&format!("{host}:{port}")),
            None => HeaderValue::from_str(host),
        };
        if let Ok(v) = value {
            headers.insert(HOST, v);
        }
    }
    let body = spec
        .body
        .as_ref()
        .map(|b| Bytes::copy_from_slice(b.as_bytes()))
        .unwrap_or_default();
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;

    let stream = TcpStream::connect(addr).await.map_err(|e| io_failure(&e))?;
    // What reqwest sets too: the request leaves in one segment, now.
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_failure(&e))?;

    let cap = spec.max_body_bytes;
    let work = async move {
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        // Read at most `max_body_bytes`, then stop and judge what arrived.
        let mut got = Vec::new();
        while got.len() < cap {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(chunk) = frame.into_data() {
                        let take = chunk.len().min(cap - got.len());
                        got.extend_from_slice(&chunk[..take]);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(Exchanged {
            status,
            body: got,
            not_after: None,
        })
    };
    drive(conn, work).await.map_err(|e| hyper_failure(&e))
}

/// Polls the connection and the exchange on this task until the exchange is
/// done. A connection that fails hands its error to the pending request, so
/// only the exchange's result matters; a finished connection is not polled
/// again.
async fn drive<C, W, T>(conn: C, work: W) -> T
where
    C: Future,
    W: Future<Output = T>,
{
    let mut conn = pin!(conn);
    let mut work = pin!(work);
    let mut conn_done = false;
    poll_fn(|cx| {
        if !conn_done && conn.as_mut().poll(cx).is_ready() {
            conn_done = true;
        }
        work.as_mut().poll(cx)
    })
    .await
}

/// A connect error, as the reqwest path classifies it.
fn io_failure(e: &std::io::Error) -> Failure {
    net::classify(e).unwrap_or_else(|| net::classify_io(e))
}

/// hyper's error as the reqwest path reports it: a cause we recognise
/// (reset, truncation, local), else `protocol` with hyper's innermost text.
fn hyper_failure(e: &hyper::Error) -> Failure {
    if let Some(f) = net::classify(e) {
        return f;
    }
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    Failure::new(Reason::Protocol, format!("bad HTTP response: {cur}"))
}
