//! The HTTP probe: one request on a fresh connection, the body read up to a
//! cap, then the expectations judged in a fixed order. Plain `http://`
//! requests without redirects take the lean path in [`super::http1`];
//! everything else goes through reqwest.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use tokio::time::Instant;

use super::net::{self, Failure, ResolveFailure, TlsConfigs};
use super::{Outcome, ProbeInitError, Reason, http1, jsonpath};
use crate::clock::Clock;
use crate::config::{HttpExpect, HttpSpec, JsonExpectation};

/// The four reqwest clients, one per (verify, follow redirects) profile.
#[derive(Debug, Clone)]
pub(crate) struct HttpClients {
    verify_follow: Client,
    verify_stay: Client,
    insecure_follow: Client,
    insecure_stay: Client,
}

impl HttpClients {
    pub fn new(tls: &TlsConfigs) -> Result<Self, ProbeInitError> {
        Ok(Self {
            verify_follow: build(tls, true, true)?,
            verify_stay: build(tls, true, false)?,
            insecure_follow: build(tls, false, true)?,
            insecure_stay: build(tls, false, false)?,
        })
    }

    fn pick(&self, verify: bool, follow: bool) -> &Client {
        match (verify, follow) {
            (true, true) => &self.verify_follow,
            (true, false) => &self.verify_stay,
            (false, true) => &self.insecure_follow,
            (false, false) => &self.insecure_stay,
        }
    }
}

fn build(tls: &TlsConfigs, verify: bool, follow: bool) -> Result<Client, ProbeInitError> {
    let policy = if follow {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    Client::builder()
        .use_preconfigured_tls((*tls.pick(verify)).clone())
        .tls_info(true)
        // No idle connections: every run pays connect + TLS, which is what the
        // user's clients pay too, and what a broken listener would fail.
        .pool_max_idle_per_host(0)
        .redirect(policy)
        // A probe measures the path to the service, not through a proxy that
        // happens to be set in the daemon's environment.
        .no_proxy()
        .dns_resolver(Arc::new(ProbeResolver))
        .user_agent(http1::USER_AGENT_VALUE)
        .build()
        .map_err(ProbeInitError::Http)
}

/// The system resolver, but failing with [`ResolveFailure`] so the probe can
/// report `dns` instead of a generic connect error.
#[derive(Debug)]
struct ProbeResolver;

impl Resolve for ProbeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let fut = async move {
            type BoxError = Box<dyn std::error::Error + Send + Sync>;
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(it) => it.collect(),
                // Handed on as is so `net::classify` finds it under reqwest's
                // error and reports a local error, not `dns`.
                Err(e) if net::is_local(&e) => return Err(Box::new(e) as BoxError),
                Err(_) => Vec::new(),
            };
            if found.is_empty() {
                return Err(Box::new(ResolveFailure { host }) as BoxError);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        };
        Box::pin(fut)
    }
}

/// Runs the HTTP probe. Failure order: transport, status, body, cert, latency.
pub(crate) async fn run(
    clients: &HttpClients,
    spec: &HttpSpec,
    clock: &dyn Clock,
    start: Instant,
) -> Outcome {
    let mut outcome = run_unredacted(clients, spec, clock, start).await;
    redact(&mut outcome.detail, spec);
    outcome
}

/// Shortest header value [`redact`] looks for: shorter ones are not
/// credentials and would mangle ordinary words.
const MIN_REDACTED_LEN: usize = 4;

/// Details go to logs and to `/api/v1/services`. Request header values are
/// where tokens live, so none may appear in a detail, whatever a peer echoed
/// or a library put into an error text; nor may a URL password.
fn redact(detail: &mut String, spec: &HttpSpec) {
    let secrets = spec
        .headers
        .iter()
        .map(|h| h.value.as_str())
        .chain(
            spec.env_headers
                .iter()
                .filter_map(|h| h.value.as_ref().map(|v| v.expose())),
        )
        .chain(spec.url.password());
    for secret in secrets {
        if secret.len() >= MIN_REDACTED_LEN && detail.contains(secret) {
            *detail = detail.replace(secret, "<redacted>");
        }
    }
}

async fn run_unredacted(
    clients: &HttpClients,
    spec: &HttpSpec,
    clock: &dyn Clock,
    start: Instant,
) -> Outcome {
    let Exchanged {
        status,
        body,
        not_after,
    } = match exchange(clients, spec).await {
        Ok(v) => v,
        Err((f, not_after)) => return f.into_outcome(start, not_after),
    };
    let latency = start.elapsed();
    let verdict = judge(&spec.expect, status, &body, not_after, latency, clock);
    let (reason, detail) = match verdict {
        Some(f) => (Some(f.reason), f.detail),
        None => (None, format!("status {status}")),
    };
    Outcome {
        reason,
        latency,
        cert_not_after: not_after,
        detail,
    }
}

/// What came back, before judging.
pub(crate) struct Exchanged {
    pub status: u16,
    /// At most `max_body_bytes`.
    pub body: Vec<u8>,
    /// Leaf certificate notAfter when the (final) connection used TLS.
    pub not_after: Option<i64>,
}

/// The check's method and its own headers (`headers`, then `headers_env`),
/// validated; the clients add their defaults later.
fn request_parts(spec: &HttpSpec) -> Result<(Method, HeaderMap), Failure> {
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
        Failure::new(
            Reason::Protocol,
            format!("invalid method {:?}", spec.method),
        )
    })?;
    let mut headers = HeaderMap::with_capacity(spec.headers.len() + spec.env_headers.len());
    for header in &spec.headers {
        let (k, v) = (&header.name, &header.value);
        let name = HeaderName::from_bytes(k.as_bytes());
        let value = HeaderValue::from_str(v);
        match (name, value) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            // Name only: header values are where tokens live.
            _ => {
                return Err(Failure::new(
                    Reason::Protocol,
                    format!("invalid header {k:?}"),
                ));
            }
        }
    }
    // `headers_env`: validated at load, and `run` refuses a config whose
    // variable is unset, so `value` is present here. Marked sensitive so
    // reqwest/hyper never print it.
    for h in &spec.env_headers {
        let Some(secret) = &h.value else { continue };
        let name = HeaderName::from_bytes(h.name.as_bytes());
        let value = HeaderValue::from_str(secret.expose());
        match (name, value) {
            (Ok(n), Ok(mut v)) => {
                v.set_sensitive(true);
                headers.append(n, v);
            }
            _ => {
                return Err(Failure::new(
                    Reason::Protocol,
                    format!("invalid header {:?} from {}", h.name, h.var),
                ));
            }
        }
    }
    Ok((method, headers))
}

async fn exchange(
    clients: &HttpClients,
    spec: &HttpSpec,
) -> Result<Exchanged, (Failure, Option<i64>)> {
    let (method, headers) = request_parts(spec).map_err(|f| (f, None))?;
    if let Some(uri) = http1::eligible(spec) {
        match http1::resolve(spec).await {
            Ok(Some(addr)) => {
                return http1::exchange(addr, uri, spec, method, headers)
                    .await
                    .map_err(|f| (f, None));
            }
            Ok(None) => {}
            Err(f) => return Err((f, None)),
        }
    }
    let client = clients.pick(spec.tls_verify, spec.follow_redirects);
    let mut req = client.request(method, spec.url.clone()).headers(headers);
    if let Some(body) = &spec.body {
        req = req.body(body.clone());
    }

    let mut resp = req.send().await.map_err(|e| (transport(&e), None))?;
    let not_after = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .and_then(net::cert_not_after);
    let status = resp.status().as_u16();

    // Read at most `max_body_bytes`, then stop and judge what arrived: a
    // probe must not be made to download a runaway body.
    let cap = spec.max_body_bytes;
    let mut body = Vec::new();
    while body.len() < cap {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            Err(e) => return Err((transport(&e), not_after)),
        }
    }
    Ok(Exchanged {
        status,
        body,
        not_after,
    })
}

/// A reqwest error as a failure. Never uses reqwest's own message: it embeds
/// the URL, which may carry credentials.
fn transport(e: &reqwest::Error) -> Failure {
    if let Some(f) = net::classify(e) {
        return f;
    }
    if e.is_timeout() {
        return Failure::new(Reason::Timeout, "timed out");
    }
    if e.is_connect() {
        return Failure::new(Reason::Network, "connect failed");
    }
    if e.is_redirect() {
        return Failure::new(Reason::Protocol, "too many redirects");
    }
    // What is left after connecting is hyper failing to make sense of the
    // peer: garbage instead of HTTP, a message cut short, bad chunking.
    let root = root_cause(e);
    Failure::new(Reason::Protocol, format!("bad HTTP response: {root}"))
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    let mut depth = 0;
    while let Some(next) = cur.source() {
        cur = next;
        depth += 1;
    }
    if depth == 0 {
        // reqwest's own text would include the URL.
        return "unknown error".to_string();
    }
    cur.to_string()
}

/// Judges a finished exchange; `None` means good.
fn judge(
    expect: &HttpExpect,
    status: u16,
    body: &[u8],
    not_after: Option<i64>,
    latency: std::time::Duration,
    clock: &dyn Clock,
) -> Option<Failure> {
    if !expect.status.contains(&status) {
        return Some(Failure::new(
            Reason::Status,
            format!("status {status} not in {}", status_list(&expect.status)),
        ));
    }
    if let Some(f) = judge_body(expect, body) {
        return Some(f);
    }
    if let Some(min_days) = expect.cert_min_days {
        match not_after {
            None => {
                return Some(Failure::new(
                    Reason::Cert,
                    "cert_min_days set but no TLS certificate was seen",
                ));
            }
            Some(na) => {
                if let Some(d) = net::cert_too_close(na, min_days, clock.now()) {
                    return Some(Failure::new(Reason::Cert, d));
                }
            }
        }
    }
    if let Some(max) = expect.max_latency
        && latency > max
    {
        return Some(Failure::new(
            Reason::Latency,
            format!("took {}ms, max {}ms", latency.as_millis(), max.as_millis()),
        ));
    }
    None
}

/// `[200-299, 304]`: the default list is a range, and a hundred numbers in a
/// log line help nobody.
fn status_list(list: &[u16]) -> String {
    let mut sorted = list.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}-{}", sorted[i], sorted[j]));
        } else {
            parts.extend(sorted[i..=j].iter().map(u16::to_string));
        }
        i = j + 1;
    }
    format!("[{}]", parts.join(", "))
}

fn judge_body(expect: &HttpExpect, body: &[u8]) -> Option<Failure> {
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &expect.body_contains
        && !text.contains(needle.as_str())
    {
        return Some(Failure::new(
            Reason::Body,
            format!("body does not contain {:?}", short(needle)),
        ));
    }
    if let Some(re) = &expect.body_regex
        && !re.is_match(&text)
    {
        return Some(Failure::new(
            Reason::Body,
            format!("body does not match /{}/", short(re.as_str())),
        ));
    }
    if expect.json.is_empty() {
        return None;
    }
    let doc: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(Failure::new(Reason::Body, format!("body is not JSON: {e}")));
        }
    };
    for JsonExpectation { path, value: want } in &expect.json {
        let segs = match jsonpath::parse(path) {
            Ok(s) => s,
            Err(e) => return Some(Failure::new(Reason::Body, e.to_string())),
        };
        match jsonpath::select(&doc, &segs) {
            None => return Some(Failure::new(Reason::Body, format!("{path} not found"))),
            Some(got) if !jsonpath::matches(got, want) => {
                return Some(Failure::new(
                    Reason::Body,
                    format!(
                        "{path} is {}, expected {}",
                        short(&got.to_string()),
                        short(&want.to_string())
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Keeps details short: they go to logs and the API, not to a dump.
fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[u16], expected: &str) {
        assert_eq!(status_list(list), expected, "{list:?}");
    }

    #[test]
    fn details_never_show_header_values_or_a_url_password() {
        let spec = |url: &str, headers: &[(&str, &str)]| HttpSpec {
            url: url::Url::parse(url).unwrap(),
            method: "GET".into(),
            headers: headers
                .iter()
                .map(|(k, v)| crate::config::HttpHeader::new(*k, *v))
                .collect(),
            env_headers: vec![crate::config::EnvHeader {
                name: "X-Env-Token".into(),
                var: "TOKEN_VAR".into(),
                value: Some(crate::config::Secret::new("env-secret-value")),
            }],
            body: None,
            follow_redirects: false,
            tls_verify: true,
            max_body_bytes: 1024,
            expect: HttpExpect {
                status: vec![200],
                body_contains: None,
                body_regex: None,
                json: Vec::new(),
                max_latency: None,
                cert_min_days: None,
            },
        };
        fn check(spec: &HttpSpec, detail: &str, expected: &str) {
            let mut d = detail.to_string();
            redact(&mut d, spec);
            assert_eq!(d, expected, "{detail:?}");
        }
        let s = spec(
            "http://user:hunter22@h/x",
            &[("Authorization", "Bearer t0k3n"), ("Accept", "*/*")],
        );
        check(
            &s,
            r#"$.echo is "Bearer t0k3n", expected "UP""#,
            r#"$.echo is "<redacted>", expected "UP""#,
        );
        check(&s, "t0k3n", "t0k3n");
        check(
            &s,
            "got hunter22 twice: hunter22",
            "got <redacted> twice: <redacted>",
        );
        // Values taken from the environment (`headers_env`) too.
        check(&s, "echoed env-secret-value back", "echoed <redacted> back");
        // Values too short to be credentials are left alone.
        check(&s, "Accept */*", "Accept */*");
        check(&s, "status 200", "status 200");
    }

    #[test]
    fn status_list_table() {
        let default: Vec<u16> = (200..=299).collect();
        check(&default, "[200-299]");
        check(&[200], "[200]");
        check(&[200, 201], "[200, 201]");
        check(&[304, 200, 201, 202], "[200-202, 304]");
        check(&[200, 200, 204], "[200, 204]");
        check(&[], "[]");
    }
}
