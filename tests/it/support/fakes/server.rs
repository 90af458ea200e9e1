//! The HTTP core every fake shares: a loopback server on `127.0.0.1:0`, a log
//! of every request and of every rejection with its reason, and fault
//! injection (error statuses, dropped connections, hangs, slow answers).
//!
//! Each provider implements [`Handler`]: a synchronous function from a fully
//! read [`Request`] to an [`Outcome`]. The handler runs under the fake's lock
//! before anything is written back, which is what makes
//! [`Fault::CommitThenDrop`] honest: the record exists when the socket closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Locks a mutex, ignoring poisoning: a panicking test must not hide the
/// fake's state from the assertions that explain it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One request as the fake received it, body fully read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    /// The raw query string (no leading `?`), empty when absent.
    pub query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Decoded query parameters in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The first decoded value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `None` when it is not valid JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Path segments after the leading `/`, percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect()
    }

    /// `Authorization: Basic` credentials, if well formed.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?;
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    }

    /// The credential after `Authorization: <scheme> `, scheme matched
    /// case-insensitively.
    pub fn auth_credential(&self, scheme: &str) -> Option<&str> {
        let value = self.header("authorization")?;
        let (s, rest) = value.split_once(' ')?;
        s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the fake writes back.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![(
                "content-type".to_string(),
                "application/json;charset=UTF-8".to_string(),
            )],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![(
                "content-type".to_string(),
                "text/plain;charset=utf-8".to_string(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The body parsed as JSON (for assertions on what a fake answered).
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What a provider decided about a request.
#[derive(Debug)]
pub enum Outcome {
    /// Processed (or a plain lookup); the response may still be a 404.
    Served(Response),
    /// Refused for a reason the real service would refuse it: bad auth,
    /// missing fields, wrong content type. Logged in `rejections()`.
    Rejected(Response, String),
}

/// A provider's behaviour behind the shared server.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Outcome;
    /// The provider's own error body for an injected status (5xx, 429).
    fn fault_response(&self, status: u16) -> Response;
}

/// A misbehaviour to act out instead of (or after) the normal answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and the provider's error body; the request is
    /// not processed. 429 carries `Retry-After: 1`.
    Status(u16),
    /// Process the request (the create is committed), then close the
    /// connection without writing a response.
    CommitThenDrop,
    /// Close the connection without processing the request.
    Drop,
    /// Accept the request and never answer (not processed).
    Hang,
    /// Process the request, then never answer.
    CommitThenHang,
    /// Process the request and answer after this delay.
    Slow(Duration),
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default)]
pub struct Match {
    method: Option<String>,
    path_prefix: Option<String>,
}

impl Match {
    /// Every request.
    pub fn any() -> Match {
        Match::default()
    }

    /// Requests with this method whose path starts with `path_prefix`.
    pub fn request(method: &str, path_prefix: &str) -> Match {
        Match {
            method: Some(method.to_ascii_uppercase()),
            path_prefix: Some(path_prefix.to_string()),
        }
    }

    /// Requests with this method, any path.
    pub fn method(method: &str) -> Match {
        Match {
            method: Some(method.to_ascii_uppercase()),
            path_prefix: None,
        }
    }

    fn matches(&self, req: &Request) -> bool {
        self.method.as_deref().is_none_or(|m| m == req.method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| req.path.starts_with(p))
    }
}

#[derive(Debug)]
struct Armed {
    matcher: Match,
    fault: Fault,
    remaining: usize,
}

/// A request in the fake's log.
#[derive(Debug, Clone)]
pub struct Logged {
    /// 0-based arrival order across the fake's lifetime.
    pub seq: usize,
    pub request: Request,
    /// The injected fault acted out on this request, if any.
    pub fault: Option<Fault>,
    /// The status written back; `None` when the connection was dropped or the
    /// request is hanging.
    pub status: Option<u16>,
    /// Why the fake refused it, when it did.
    pub rejected: Option<String>,
}

/// A request the fake refused, and why.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub seq: usize,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub reason: String,
}

struct Core {
    handler: Arc<dyn Handler>,
    faults: Mutex<Vec<Armed>>,
    log: Mutex<Vec<Logged>>,
    latency: Mutex<Duration>,
}

enum Act {
    Answer(Response, Duration),
    Drop,
    Hang,
}

impl Core {
    fn take_fault(&self, req: &Request) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let armed = faults
            .iter_mut()
            .find(|a| a.remaining > 0 && a.matcher.matches(req))?;
        armed.remaining -= 1;
        let fault = armed.fault.clone();
        faults.retain(|a| a.remaining > 0);
        Some(fault)
    }

    /// Decides what to do with a request; runs the handler synchronously.
    fn decide(&self, req: Request) -> Act {
        let fault = self.take_fault(&req);
        let latency = *lock(&self.latency);
        let (act, status, rejected) = match &fault {
            Some(Fault::Status(code)) => {
                let mut resp = self.handler.fault_response(*code);
                if *code == 429 {
                    resp = resp.with_header("retry-after", "1");
                }
                let status = resp.status;
                (Act::Answer(resp, latency), Some(status), None)
            }
            Some(Fault::Drop) => (Act::Drop, None, None),
            Some(Fault::Hang) => (Act::Hang, None, None),
            Some(Fault::CommitThenDrop) => {
                let (_, rejected) = split(self.handler.handle(&req));
                (Act::Drop, None, rejected)
            }
            Some(Fault::CommitThenHang) => {
                let (_, rejected) = split(self.handler.handle(&req));
                (Act::Hang, None, rejected)
            }
            Some(Fault::Slow(delay)) => {
                let (resp, rejected) = split(self.handler.handle(&req));
                let status = resp.status;
                (Act::Answer(resp, latency + *delay), Some(status), rejected)
            }
            None => {
                let (resp, rejected) = split(self.handler.handle(&req));
                let status = resp.status;
                (Act::Answer(resp, latency), Some(status), rejected)
            }
        };
        let mut log = lock(&self.log);
        let seq = log.len();
        log.push(Logged {
            seq,
            request: req,
            fault,
            status,
            rejected,
        });
        act
    }

    async fn serve(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        kill: Arc<Notify>,
    ) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(_) => {
                // The client went away mid-body; nothing to answer.
                return Ok(to_hyper(Response::empty(400)));
            }
        };
        let request = Request {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        match self.decide(request) {
            Act::Answer(resp, delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(to_hyper(resp))
            }
            Act::Drop => {
                kill.notify_one();
                std::future::pending().await
            }
            Act::Hang => std::future::pending().await,
        }
    }
}

fn split(outcome: Outcome) -> (Response, Option<String>) {
    match outcome {
        Outcome::Served(resp) => (resp, None),
        Outcome::Rejected(resp, reason) => (resp, Some(reason)),
    }
}

fn to_hyper(resp: Response) -> hyper::Response<Full<Bytes>> {
    let status = hyper::StatusCode::from_u16(resp.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = hyper::Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() = status;
    for (name, value) in resp.headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

/// A running fake server. Stops (closing every connection, hanging ones
/// included) when dropped.
pub struct Server {
    addr: SocketAddr,
    core: Arc<Core>,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Server {
    /// Binds `127.0.0.1:0` and serves `handler` until dropped.
    pub async fn start(handler: Arc<dyn Handler>) -> Server {
        #[allow(clippy::expect_used)] // a fake that cannot bind must fail the test loudly
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake server: bind 127.0.0.1:0");
        #[allow(clippy::expect_used)]
        let addr = listener.local_addr().expect("fake server: local_addr");
        let core = Arc::new(Core {
            handler,
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
        });
        let shutdown = CancellationToken::new();
        let (c, s) = (Arc::clone(&core), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = s.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (core, stop) = (Arc::clone(&c), s.clone());
                tokio::spawn(async move {
                    let kill = Arc::new(Notify::new());
                    let k = Arc::clone(&kill);
                    let svc = service_fn(move |req| Arc::clone(&core).serve(req, Arc::clone(&k)));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    // Dropping `conn` closes the socket without a response.
                    tokio::select! {
                        _ = conn => {}
                        () = kill.notified() => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        Server {
            addr,
            core,
            shutdown,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Acts out `fault` on the next `times` requests.
    pub fn inject(&self, fault: Fault, times: usize) {
        self.inject_on(Match::any(), fault, times);
    }

    /// Acts out `fault` on the next `times` requests that `matcher` selects.
    /// Faults armed earlier take precedence.
    pub fn inject_on(&self, matcher: Match, fault: Fault, times: usize) {
        lock(&self.core.faults).push(Armed {
            matcher,
            fault,
            remaining: times,
        });
    }

    /// Disarms every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.core.faults).clear();
    }

    /// Adds `latency` before every answer from now on.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.core.latency) = latency;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.core.log).clone()
    }

    /// Requests received with this method and exact path.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Logged> {
        lock(&self.core.log)
            .iter()
            .filter(|l| l.request.method == method && l.request.path == path)
            .cloned()
            .collect()
    }

    /// Every request refused, with the reason.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.core.log)
            .iter()
            .filter_map(|l| {
                l.rejected.as_ref().map(|reason| Rejection {
                    seq: l.seq,
                    method: l.request.method.clone(),
                    path: l.request.path.clone(),
                    status: l.status.unwrap_or(0),
                    reason: reason.clone(),
                })
            })
            .collect()
    }
}

/// Deterministic identifiers: the same fake configuration yields the same
/// ids on every run, so tests can assert exact values.
#[derive(Debug)]
pub struct Ids {
    seed: u64,
    counter: Mutex<u64>,
}

impl Ids {
    pub fn new(seed: u64) -> Ids {
        Ids {
            seed,
            counter: Mutex::new(0),
        }
    }

    fn digest(&self, label: &str) -> [u8; 32] {
        let n = {
            let mut c = lock(&self.counter);
            *c += 1;
            *c
        };
        let mut h = Sha256::new();
        h.update(self.seed.to_be_bytes());
        h.update(label.as_bytes());
        h.update(n.to_be_bytes());
        h.finalize().into()
    }

    /// 32 lower-case hex characters (a ServiceNow `sys_id`).
    pub fn hex32(&self, label: &str) -> String {
        hex(&self.digest(label)[..16])
    }

    /// A version-4-shaped UUID string.
    pub fn uuid(&self, label: &str) -> String {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.digest(label)[..16]);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
