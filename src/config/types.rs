//! The validated, typed configuration. Everything downstream of `config::load`
//! works on these types and never re-checks them: durations are positive,
//! names are unique, references (notifiers, maintenance services) resolve,
//! timeouts are not longer than intervals, regexes compile, URLs parse.
//!
//! What a key becomes when the file leaves it out is defined here, next to
//! the type that holds it (`Default` impls and `DEFAULT_*` constants).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use regex::Regex;

/// The whole daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub defaults: Defaults,
    pub notifiers: Vec<Notifier>,
    /// Keyed by severity name (`P1`, `P2`, ...).
    pub response_targets: BTreeMap<String, ResponseTarget>,
    pub maintenance: Vec<Maintenance>,
    pub services: Vec<Service>,
    pub metrics: MetricsExport,
    pub status_page: StatusPage,
    /// Inbound hooks: acknowledgements and resolutions from providers.
    pub inbound: super::Inbound,
}

impl Config {
    /// Whether `service` is inside one of its maintenance windows at `at`
    /// (start included, end excluded).
    pub fn in_maintenance(&self, service: &str, at: jiff::Timestamp) -> bool {
        self.maintenance
            .iter()
            .any(|m| m.start <= at && at < m.end && m.services.iter().any(|s| s == service))
    }
}

/// The public status page (`/status`, its JSON, Atom feed and badges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPage {
    /// Page heading and feed title. Default `Service status`.
    pub title: String,
    /// Services shown, in this order (validated to exist). `None`: every
    /// service, in config order.
    pub services: Option<Vec<String>>,
    /// Show open and past incidents (and the feed's entries). Default true.
    pub show_incidents: bool,
}

impl Default for StatusPage {
    fn default() -> Self {
        Self {
            title: "Service status".to_string(),
            services: None,
            show_incidents: true,
        }
    }
}

/// The `metrics:` section: what `/metrics` exports (not the metrics
/// themselves, which live in `crate::metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsExport {
    /// Export the `le` buckets of `sentinel_check_duration_seconds` (11 series
    /// per check). Default true; `false` keeps only `+Inf`, `_sum` and `_count`
    /// for very large fleets.
    pub check_histograms: bool,
}

impl Default for MetricsExport {
    fn default() -> Self {
        MetricsExport {
            check_histograms: true,
        }
    }
}

impl StatusPage {
    /// Whether `service` appears on the page.
    pub fn shows(&self, service: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == service))
    }
}

/// A value read from the environment that must never be shown: `Debug`
/// prints `<redacted>`, there is no `Display` and no `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    /// Address for `/metrics`, `/api/v1`, health endpoints. Default `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// Name of the environment variable holding the bearer token for write
    /// endpoints. `None` (or an unset/empty variable) disables write endpoints.
    pub api_token_env: Option<String>,
    /// Global cap on probes running at once. Default 1024.
    pub max_concurrency: usize,
    /// Cap on open HTTP connections. `None`: derived at start from the
    /// descriptor limit (what is left after probes, store and notifiers).
    pub max_connections: Option<usize>,
    /// Threads of the runtime that runs probes, the engine and the HTTP
    /// server. `None`: chosen at start from the probe rate
    /// (`daemon::runtime_workers`).
    pub worker_threads: Option<usize>,
    /// Time a client has to send a request head (from connecting, or from the
    /// previous response on a kept-alive connection) and then its body. Default 10s.
    pub read_timeout: Duration,
    /// Base of every link sent out (acknowledge / resolve links in events,
    /// ticket descriptions), without a trailing slash. Default `http://<listen>`.
    pub external_url: String,
}

impl Server {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));
    pub const DEFAULT_MAX_CONCURRENCY: usize = 1024;
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: Self::DEFAULT_LISTEN,
            api_token_env: None,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            max_connections: None,
            worker_threads: None,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            external_url: format!("http://{}", Self::DEFAULT_LISTEN),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Storage {
    /// SQLite file. Default `data/sentinel.db`. Parent directory is created.
    pub path: PathBuf,
    /// How long minute buckets are kept. Default 7h (windows up to 6h use minute
    /// buckets; longer ones use hour buckets).
    pub minute_retention: Duration,
    /// How long hour buckets and incidents are kept. Default 400d.
    pub retention: Duration,
}

impl Storage {
    pub const DEFAULT_PATH: &str = "data/sentinel.db";
    /// The SLO math reads minute buckets for windows up to 6h only; one more
    /// hour of margin. Longer windows use hour buckets, kept for `retention`.
    pub const DEFAULT_MINUTE_RETENTION: Duration = Duration::from_secs(7 * 3600);
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            path: PathBuf::from(Self::DEFAULT_PATH),
            minute_retention: Self::DEFAULT_MINUTE_RETENTION,
            retention: Self::DEFAULT_RETENTION,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    /// Default 30s.
    pub interval: Duration,
    /// Default 5s (clamped to the interval when the interval is shorter and no
    /// timeout is given explicitly).
    pub timeout: Duration,
}

impl Defaults {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Self::DEFAULT_INTERVAL,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// `PartialEq` lets a reload tell a changed notifier from an unchanged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    /// Give up delivering an event after this long. Default 24h.
    pub max_age: Duration,
    /// Per-attempt HTTP timeout. Default 10s.
    pub timeout: Duration,
}

impl Notifier {
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierKind {
    /// Generic JSON, signed per Standard Webhooks when `secret_env` is set.
    Webhook {
        url: UrlSource,
        secret_env: Option<String>,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        url: UrlSource,
        routing_key_env: String,
    },
    /// Slack incoming webhook. `buttons`: messages carry Acknowledge /
    /// Resolve buttons (set when `inbound.slack` is configured, so a press
    /// reaches a hook that checks it).
    Slack { url: UrlSource, buttons: bool },
    /// Alertmanager base URL; alerts go to `{url}/api/v2/alerts`.
    /// `repost_every`: how often the firing alert of every open incident is
    /// sent again, so Alertmanager never lets it expire (its `endsAt` is
    /// [`alertmanager_ends_after`] ahead).
    Alertmanager {
        url: UrlSource,
        repost_every: Duration,
    },
    /// ServiceNow Table API: one record per incident.
    ServiceNow(super::tickets::ServiceNowSpec),
    /// Jira Cloud REST v3: one issue per incident.
    Jira(super::tickets::JiraSpec),
    /// Opsgenie / JSM Ops Alert API v2: one alert per incident.
    Opsgenie(super::tickets::OpsgenieSpec),
}

impl NotifierKind {
    /// Whether this notifier keeps a ticket per incident (a multi-request
    /// conversation with the provider) rather than posting one request per event.
    pub fn is_ticket(&self) -> bool {
        matches!(
            self,
            NotifierKind::ServiceNow(_) | NotifierKind::Jira(_) | NotifierKind::Opsgenie(_)
        )
    }
}

/// A URL given inline (`url:`) or through an environment variable (`url_env:`),
/// for URLs that embed a secret (Slack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    Inline(url::Url),
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTarget {
    pub acknowledge: Duration,
    pub restore: Duration,
    /// Notifiers (validated to exist) told with `incident.escalated` once
    /// an incident of this severity passes `acknowledge` unacknowledged.
    /// Empty: no escalation.
    pub escalate: Vec<String>,
}

/// Default `repost_every` of an `alertmanager` notifier.
pub const DEFAULT_ALERTMANAGER_REPOST_EVERY: Duration = Duration::from_secs(300);

/// How far ahead of the send time an open incident's alert `endsAt` is, for
/// an Alertmanager notifier re-posting every `repost_every`: four periods, so
/// three lost re-posts in a row do not end the alert (Prometheus uses the
/// same factor for its own alerts).
pub fn alertmanager_ends_after(repost_every: Duration) -> Duration {
    repost_every.saturating_mul(4)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// Service names (validated to exist). Empty never happens: validation rejects it.
    pub services: Vec<String>,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tier: Option<u8>,
    pub checks: Vec<Check>,
    pub slo: Option<Slo>,
    pub incident: IncidentPolicy,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub interval: Duration,
    /// Never longer than `interval`.
    pub timeout: Duration,
    pub probe: ProbeSpec,
}

// One per check, built once at load: boxing the large variant would only
// add an indirection to every probe run.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Dns(DnsSpec),
    Tls(TlsSpec),
}

impl ProbeSpec {
    /// Closed set, used as a metric label / in logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Http(_) => "http",
            ProbeSpec::Tcp(_) => "tcp",
            ProbeSpec::Dns(_) => "dns",
            ProbeSpec::Tls(_) => "tls",
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: url::Url,
    /// Upper-case method, default `GET`.
    pub method: String,
    /// In file order.
    pub headers: Vec<HttpHeader>,
    /// `headers_env`: headers whose value comes from an environment variable
    /// (tokens), in file order, sent after `headers`.
    pub env_headers: Vec<EnvHeader>,
    pub body: Option<String>,
    /// Follow redirects (up to 10). Default false: a 3xx is judged by `expect.status`.
    pub follow_redirects: bool,
    /// Verify the server certificate. Default true.
    pub tls_verify: bool,
    /// Stop reading the body after this many bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    pub expect: HttpExpect,
}

impl HttpSpec {
    pub const DEFAULT_METHOD: &str = "GET";
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;
}

/// One `headers` entry: a header sent with every request of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

impl HttpHeader {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        HttpHeader {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Compares with a `(name, value)` pair, the shape the file writes it in.
impl PartialEq<(String, String)> for HttpHeader {
    fn eq(&self, (name, value): &(String, String)) -> bool {
        self.name == *name && self.value == *value
    }
}

/// One `headers_env` entry. `value` is `None` only when the variable was
/// unset at load: `validate` warns about it, `run` and reload refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvHeader {
    pub name: String,
    /// The environment variable's name.
    pub var: String,
    pub value: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct HttpExpect {
    /// Accepted status codes. Default: 200..=299.
    pub status: Vec<u16>,
    pub body_contains: Option<String>,
    pub body_regex: Option<Regex>,
    /// In file order.
    pub json: Vec<JsonExpectation>,
    pub max_latency: Option<Duration>,
    pub cert_min_days: Option<u32>,
}

/// One `expect.json` entry: the value a JSON path must select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonExpectation {
    /// `$.a.b[0].c`; starts with `$`.
    pub path: String,
    pub value: serde_json::Value,
}

impl JsonExpectation {
    pub fn new(path: impl Into<String>, value: serde_json::Value) -> Self {
        JsonExpectation {
            path: path.into(),
            value,
        }
    }
}

/// Compares with a `(path, value)` pair, the shape the file writes it in.
impl PartialEq<(String, serde_json::Value)> for JsonExpectation {
    fn eq(&self, (path, value): &(String, serde_json::Value)) -> bool {
        self.path == *path && self.value == *value
    }
}

impl Default for HttpExpect {
    /// Any 2xx answer is good; nothing else is looked at.
    fn default() -> Self {
        HttpExpect {
            status: (200..=299).collect(),
            body_contains: None,
            body_regex: None,
            json: Vec::new(),
            max_latency: None,
            cert_min_days: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TcpSpec {
    pub host: String,
    pub port: u16,
    /// Do a TLS handshake after connecting.
    pub tls: bool,
    /// Verify the certificate when `tls`. Default true.
    pub tls_verify: bool,
    /// SNI / name to verify; default `host`.
    pub server_name: Option<String>,
    /// Bytes to write after connecting (and the handshake).
    pub send: Option<String>,
    /// Substring that must appear in what the server sends back (read up to 64 KiB).
    pub expect: Option<String>,
    pub cert_min_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub name: String,
    pub record: RecordType,
    /// The server to ask; no resolver, no cache.
    pub server: SocketAddr,
    /// Every expected answer must be present (as text: `10.0.0.1`, `mail.example.com.`...).
    /// Empty: any NOERROR answer with at least one record of the type is good.
    pub expect: Vec<String>,
}

impl DnsSpec {
    pub const DEFAULT_RECORD: RecordType = RecordType::A;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Srv,
    Ptr,
    Soa,
}

#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub host: String,
    pub port: u16,
    pub server_name: Option<String>,
    /// Default true.
    pub tls_verify: bool,
    /// Default 14.
    pub cert_min_days: u32,
}

impl TlsSpec {
    pub const DEFAULT_PORT: u16 = 443;
    pub const DEFAULT_CERT_MIN_DAYS: u32 = 14;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As a ratio in (0, 1): `objective: 99.9` in the file becomes 0.999.
    pub objective: f64,
    pub window: SloWindow,
    pub latency: Option<LatencySlo>,
}

impl Slo {
    pub const DEFAULT_WINDOW: SloWindow = SloWindow::Rolling(Duration::from_secs(30 * 86_400));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloWindow {
    Rolling(Duration),
    /// Calendar month, UTC.
    Month,
}

impl SloWindow {
    /// The label used in metrics: `30d`, `4w`, `month`, ...
    pub fn label(&self) -> String {
        match self {
            SloWindow::Month => "month".to_string(),
            SloWindow::Rolling(d) => crate::config::duration::format(*d),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySlo {
    pub threshold: Duration,
    /// Ratio in (0, 1).
    pub objective: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentPolicy {
    /// Default 3.
    pub open_after: u32,
    /// Default 2.
    pub resolve_after: u32,
    /// Default true (only meaningful with an `slo`).
    pub burn_rate_alerts: bool,
    /// Default `P2`.
    pub severity: String,
    /// Notifier names (validated to exist).
    pub notify: Vec<String>,
}

impl IncidentPolicy {
    pub const DEFAULT_OPEN_AFTER: u32 = 3;
    pub const DEFAULT_RESOLVE_AFTER: u32 = 2;
    pub const DEFAULT_SEVERITY: &str = "P2";
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            open_after: Self::DEFAULT_OPEN_AFTER,
            resolve_after: Self::DEFAULT_RESOLVE_AFTER,
            burn_rate_alerts: true,
            severity: Self::DEFAULT_SEVERITY.to_string(),
            notify: Vec::new(),
        }
    }
}
