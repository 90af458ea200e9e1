//! Raw config → typed [`Config`]: defaults applied, every value checked, every
//! reference resolved. Problems are collected, not returned at the first one,
//! so an operator fixes the whole file in one round.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde_saphyr::{Location, Spanned};

use super::Env;
use super::duration;
use super::error::{Problem, Warning};
use super::limits::{self, DurationRange, IntRange};
use super::raw::{self, Opt, RawConfig, RawFragment};
use super::types::*;

mod tickets;

const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
const DEFAULT_STORAGE_PATH: &str = "data/sentinel.db";
/// The SLO math reads minute buckets for windows up to 6h only; one more hour
/// of margin. Longer windows use hour buckets, kept for `retention`.
const DEFAULT_MINUTE_RETENTION: Duration = Duration::from_secs(7 * 3600);
const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
const DEFAULT_MAX_CONCURRENCY: usize = 1024;
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_NOTIFIER_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_NOTIFIER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SLO_WINDOW: Duration = Duration::from_secs(30 * 86_400);
const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;
const DEFAULT_CERT_MIN_DAYS: u32 = 14;
const DEFAULT_OPEN_AFTER: u32 = 3;
const DEFAULT_RESOLVE_AFTER: u32 = 2;
const DEFAULT_SEVERITY: &str = "P2";
/// The longest calendar month: what a `month` window needs of history.
const MONTH_SPAN: Duration = Duration::from_secs(31 * 86_400);
const NOTIFIER_TYPES: [&str; 7] = [
    "webhook",
    "pagerduty",
    "slack",
    "alertmanager",
    "servicenow",
    "jira",
    "opsgenie",
];
const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR", "SOA"];

/// Location used when a problem has nothing better to point at (a key
/// missing from the top level of the file).
const TOP: (u64, u64) = (1, 1);

/// What validation found: the config (meaningful only without problems),
/// every problem and every warning, unsorted.
pub(crate) struct Checked {
    pub config: Config,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

/// Validate the main file `raw` (named `file`) together with the included
/// files, in include order. Environment variables named by `_env` keys are
/// looked up through `env`.
pub(crate) fn validate(
    raw: RawConfig,
    file: &str,
    includes: &[(String, RawFragment)],
    env: Env<'_>,
) -> Checked {
    let mut v = Validator {
        file,
        problems: Vec::new(),
        warnings: Vec::new(),
        retention: DEFAULT_RETENTION,
        env,
        seen_notifiers: HashMap::new(),
        seen_services: HashMap::new(),
        severity_uses: Vec::new(),
    };
    let config = v.config(raw, file, includes);
    Checked {
        config,
        problems: v.problems,
        warnings: v.warnings,
    }
}

struct Validator<'a> {
    /// The file being read: problems are located in it.
    file: &'a str,
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
    /// `storage.retention` once read: SLO windows may not be longer.
    retention: Duration,
    env: Env<'a>,
    /// Names seen so far across all files → (file, line), for duplicates.
    seen_notifiers: HashMap<String, (&'a str, u64)>,
    seen_services: HashMap<String, (&'a str, u64)>,
    /// Each service's incident severity and where it comes from, for the
    /// warning about severities without response targets.
    severity_uses: Vec<SeverityUse<'a>>,
}

struct SeverityUse<'a> {
    severity: String,
    file: &'a str,
    at: (u64, u64),
    path: String,
}

fn pos(loc: &Location) -> (u64, u64) {
    (loc.line(), loc.column())
}

fn sub(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Validator<'a> {
    fn report(&mut self, at: (u64, u64), path: &str, message: String, hint: Option<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: at.0,
            column: at.1,
            key_path: path.to_string(),
            message,
            hint,
        });
    }

    fn problem(&mut self, at: (u64, u64), path: &str, message: impl Into<String>) {
        self.report(at, path, message.into(), None);
    }

    fn missing(&mut self, parent: (u64, u64), parent_path: &str, key: &str) {
        self.problem(
            parent,
            &sub(parent_path, key),
            format!("missing required key `{key}`"),
        );
    }

    /// A required string; reports it when absent or blank.
    fn required(
        &mut self,
        value: &Opt<String>,
        parent: (u64, u64),
        parent_path: &str,
        key: &str,
    ) -> Option<String> {
        match value {
            None => {
                self.missing(parent, parent_path, key);
                None
            }
            Some(s) if s.value.trim().is_empty() => {
                self.problem(
                    pos(&s.referenced),
                    &sub(parent_path, key),
                    format!("`{key}` is empty"),
                );
                None
            }
            Some(s) => Some(s.value.clone()),
        }
    }

    /// A name that becomes a metric label and part of API URLs.
    fn name(
        &mut self,
        value: &Opt<String>,
        parent: (u64, u64),
        parent_path: &str,
    ) -> Option<String> {
        let name = self.required(value, parent, parent_path, "name")?;
        let ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok && name.len() > limits::MAX_NAME_LEN {
            let at = value.as_ref().map_or(parent, |s| pos(&s.referenced));
            self.report(
                at,
                &sub(parent_path, "name"),
                format!(
                    "name is {} characters long, more than {}",
                    name.len(),
                    limits::MAX_NAME_LEN
                ),
                Some("names become metric labels and URL path segments; shorten it".into()),
            );
            return None;
        }
        if !ok {
            let at = value.as_ref().map_or(parent, |s| pos(&s.referenced));
            self.report(
                at,
                &sub(parent_path, "name"),
                format!("name `{name}` may only contain letters, digits, `_`, `.` and `-`"),
                Some("names become metric labels and URL path segments".into()),
            );
            return None;
        }
        Some(name)
    }

    fn env_name(&mut self, value: &Opt<String>, path: &str) -> Option<String> {
        let s = value.as_ref()?;
        let v = s.value.trim();
        let ok = !v.is_empty()
            && !v.starts_with(|c: char| c.is_ascii_digit())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            self.report(
                pos(&s.referenced),
                path,
                format!("`{}` is not an environment variable name", s.value),
                Some("keys ending in `_env` name a variable, e.g. `PD_ROUTING_KEY`; never put the secret itself here".into()),
            );
            return None;
        }
        Some(v.to_string())
    }

    /// `Ok(None)` when absent; `Err(())` after reporting a bad value. `what`
    /// names the value in the message (`interval 50ms is out of range ...`).
    fn duration(
        &mut self,
        value: &Opt<String>,
        path: &str,
        what: &str,
        range: &DurationRange,
    ) -> Result<Option<Duration>, ()> {
        let Some(s) = value else { return Ok(None) };
        match duration::parse(&s.value) {
            Ok(d) if range.contains(d) => Ok(Some(d)),
            Ok(_) => {
                self.report(
                    pos(&s.referenced),
                    path,
                    format!(
                        "{what} {} is out of range {}..={}",
                        s.value.trim(),
                        duration::format(range.min),
                        duration::format(range.max)
                    ),
                    Some(range.why.to_string()),
                );
                Err(())
            }
            Err(e) => {
                self.problem(pos(&s.referenced), path, e);
                Err(())
            }
        }
    }

    fn duration_or(
        &mut self,
        value: &Opt<String>,
        path: &str,
        what: &str,
        range: &DurationRange,
        default: Duration,
    ) -> Duration {
        self.duration(value, path, what, range)
            .ok()
            .flatten()
            .unwrap_or(default)
    }

    fn int_in(
        &mut self,
        value: &Opt<i64>,
        path: &str,
        range: &IntRange,
        what: &str,
    ) -> Option<i64> {
        let s = value.as_ref()?;
        if (range.min..=range.max).contains(&s.value) {
            return Some(s.value);
        }
        self.report(
            pos(&s.referenced),
            path,
            format!(
                "{what} {} is out of range {}..={}",
                s.value, range.min, range.max
            ),
            (!range.why.is_empty()).then(|| range.why.to_string()),
        );
        None
    }

    /// A literal URL. `credentials_fix` is the hint when it holds `user:pass@`.
    fn url(&mut self, s: &Spanned<String>, path: &str, credentials_fix: &str) -> Option<url::Url> {
        match parse_url(&s.value) {
            Ok(u) => Some(u),
            Err((message, _, UrlFault::Credentials)) => {
                self.report(
                    pos(&s.referenced),
                    path,
                    message,
                    Some(credentials_fix.to_string()),
                );
                None
            }
            Err((message, hint, _)) => {
                self.report(pos(&s.referenced), path, message, hint);
                None
            }
        }
    }

    fn warn(&mut self, at: (u64, u64), path: &str, message: String, hint: Option<String>) {
        self.warnings.push(Warning {
            problem: Problem {
                file: self.file.to_string(),
                line: at.0,
                column: at.1,
                key_path: path.to_string(),
                message,
                hint,
            },
            blocks_run: false,
        });
    }

    /// The value of the variable an `_env` key names, warning when it is
    /// unset; `consequence` says what happens then ("deliveries to `x` fail").
    fn env_value(
        &mut self,
        key: &Spanned<String>,
        var: &str,
        path: &str,
        consequence: &str,
    ) -> Option<String> {
        let value = (self.env)(var);
        if value.is_none() {
            self.warn(
                pos(&key.referenced),
                path,
                format!("environment variable {var} is not set: {consequence}"),
                Some(format!("export {var} in the daemon's environment")),
            );
        }
        value
    }

    /// Warnings about the server block: write endpoints that will be disabled.
    fn server_warnings(&mut self, raw: &RawConfig, server: &Server) {
        let consequence =
            "the write API (acknowledge, resolve, reload over HTTP) is disabled and answers 403";
        match (
            &server.api_token_env,
            raw.server
                .as_ref()
                .and_then(|s| s.value.api_token_env.as_ref()),
        ) {
            (Some(var), Some(key)) => {
                let var = var.clone();
                self.env_value(key, &var, "server.api_token_env", consequence);
            }
            (None, None) => {
                let at = raw.server.as_ref().map_or(TOP, |s| pos(&s.referenced));
                self.warn(
                    at,
                    "server.api_token_env",
                    format!("no `server.api_token_env`: {consequence}"),
                    Some("name a variable holding a long random token, e.g. `api_token_env: SENTINEL_API_TOKEN`".into()),
                );
            }
            // An invalid name was already reported as a problem.
            _ => {}
        }
    }

    /// A severity that services open incidents at but `response_targets`
    /// does not list: its incidents are measured against no target. One
    /// warning per severity, at the first service using it.
    fn severity_warnings(&mut self, targets: &std::collections::BTreeMap<String, ResponseTarget>) {
        // severity → (services using it, where the first one says so).
        let mut users: std::collections::BTreeMap<String, (usize, SeverityUse<'a>)> =
            std::collections::BTreeMap::new();
        for u in std::mem::take(&mut self.severity_uses) {
            if !targets.contains_key(&u.severity) {
                users.entry(u.severity.clone()).or_insert((0, u)).0 += 1;
            }
        }
        for (severity, (count, first)) in users {
            let who = if count == 1 {
                "1 service".to_string()
            } else {
                format!("{count} services")
            };
            self.file = first.file;
            self.warn(
                first.at,
                &first.path,
                format!(
                    "severity `{severity}` ({who}) has no `response_targets` entry: its incidents count toward no acknowledge or restore target"
                ),
                Some(format!("add `response_targets: {{ {severity}: {{ acknowledge: 30m, restore: 8h }} }}`")),
            );
        }
    }

    fn config(
        &mut self,
        raw: RawConfig,
        main: &'a str,
        includes: &'a [(String, RawFragment)],
    ) -> Config {
        let server = self.server(raw.server.as_ref());
        let storage = self.storage(raw.storage.as_ref());
        self.retention = storage.retention;
        let defaults = self.defaults(raw.defaults.as_ref());
        let metrics = Metrics {
            check_histograms: raw
                .metrics
                .as_ref()
                .and_then(|m| m.value.check_histograms)
                .unwrap_or(true),
        };
        // Lists merge across files: the main file's first, then each
        // included file's in include order.
        let mut notifiers = self.notifiers(&raw.notifiers);
        for (file, part) in includes {
            self.file = file;
            notifiers.extend(self.notifiers(&part.notifiers));
        }
        self.file = main;
        let response_targets = self.response_targets(&raw.response_targets);
        let mut services = self.services(&raw.services, &defaults, &notifiers);
        for (file, part) in includes {
            self.file = file;
            services.extend(self.services(&part.services, &defaults, &notifiers));
        }
        self.file = main;
        if raw.services.is_empty() && includes.iter().all(|(_, p)| p.services.is_empty()) {
            self.report(
                TOP,
                "services",
                "no services configured".into(),
                Some("add a `services:` list with at least one service and check".into()),
            );
        }
        let mut maintenance = self.maintenance(&raw.maintenance, &services);
        for (file, part) in includes {
            self.file = file;
            maintenance.extend(self.maintenance(&part.maintenance, &services));
        }
        self.file = main;
        let (status_page, problems) =
            super::status_page::validate(raw.status_page.as_ref(), &services, self.file);
        self.problems.extend(problems);
        self.server_warnings(&raw, &server);
        self.severity_warnings(&response_targets);
        self.file = main;
        Config {
            server,
            storage,
            defaults,
            notifiers,
            response_targets,
            maintenance,
            services,
            metrics,
            status_page,
        }
    }

    fn server(&mut self, raw: Option<&Spanned<raw::RawServer>>) -> Server {
        let mut server = Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            api_token_env: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_connections: None,
            read_timeout: DEFAULT_READ_TIMEOUT,
            external_url: format!("http://{DEFAULT_LISTEN}"),
        };
        let Some(raw) = raw.map(|s| &s.value) else {
            return server;
        };
        let listen = raw
            .listen
            .as_ref()
            .map_or(DEFAULT_LISTEN, |s| s.value.as_str());
        match parse_listen(listen) {
            Some(addr) => server.listen = addr,
            None => {
                let at = raw.listen.as_ref().map_or(TOP, |s| pos(&s.referenced));
                self.report(
                    at,
                    "server.listen",
                    format!("invalid listen address `{listen}`: expected IP:PORT"),
                    Some("e.g. `127.0.0.1:9464`, `0.0.0.0:9464` or `[::]:9464`".into()),
                );
            }
        }
        server.api_token_env = self.env_name(&raw.api_token_env, "server.api_token_env");
        if let Some(n) = self.int_in(
            &raw.max_concurrency,
            "server.max_concurrency",
            &limits::MAX_CONCURRENCY,
            "max_concurrency",
        ) {
            server.max_concurrency = n as usize;
        }
        if let Some(n) = self.int_in(
            &raw.max_connections,
            "server.max_connections",
            &limits::MAX_CONNECTIONS,
            "max_connections",
        ) {
            server.max_connections = Some(n as usize);
        }
        if let Ok(Some(d)) = self.duration(
            &raw.read_timeout,
            "server.read_timeout",
            "read_timeout",
            &limits::READ_TIMEOUT,
        ) {
            server.read_timeout = d;
        }
        server.external_url = match &raw.external_url {
            None => format!("http://{}", server.listen),
            Some(s) => self
                .external_url(s)
                .unwrap_or_else(|| format!("http://{}", server.listen)),
        };
        server
    }

    /// `server.external_url`: an http(s) URL without credentials, query or
    /// fragment; kept without a trailing slash so links append `/api/...`.
    fn external_url(&mut self, s: &Spanned<String>) -> Option<String> {
        let path = "server.external_url";
        let u = self.url(
            s,
            path,
            "links sent out must not carry credentials: protect the API with `api_token_env`",
        )?;
        if u.query().is_some() || u.fragment().is_some() {
            self.report(
                pos(&s.referenced),
                path,
                format!("external_url `{u}` has a query or fragment"),
                Some("give the base URL people reach sentinel at, e.g. `https://sentinel.example.com` or `https://ops.example.com/sentinel`".into()),
            );
            return None;
        }
        Some(u.as_str().trim_end_matches('/').to_string())
    }

    fn storage(&mut self, raw: Option<&Spanned<raw::RawStorage>>) -> Storage {
        let mut storage = Storage {
            path: PathBuf::from(DEFAULT_STORAGE_PATH),
            minute_retention: DEFAULT_MINUTE_RETENTION,
            retention: DEFAULT_RETENTION,
        };
        let Some(raw) = raw.map(|s| &s.value) else {
            return storage;
        };
        if let Some(p) = &raw.path {
            if p.value.trim().is_empty() {
                self.problem(pos(&p.referenced), "storage.path", "`path` is empty");
            } else {
                // Relative paths are relative to the working directory, like
                // every other path a CLI is given.
                storage.path = PathBuf::from(&p.value);
            }
        }
        storage.minute_retention = self.duration_or(
            &raw.minute_retention,
            "storage.minute_retention",
            "minute_retention",
            &limits::MINUTE_RETENTION,
            DEFAULT_MINUTE_RETENTION,
        );
        storage.retention = self.duration_or(
            &raw.retention,
            "storage.retention",
            "retention",
            &limits::RETENTION,
            DEFAULT_RETENTION,
        );
        storage
    }

    fn defaults(&mut self, raw: Option<&Spanned<raw::RawDefaults>>) -> Defaults {
        let mut d = Defaults {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        };
        let Some(raw) = raw.map(|s| &s.value) else {
            return d;
        };
        let interval = self.duration(
            &raw.interval,
            "defaults.interval",
            "interval",
            &limits::INTERVAL,
        );
        let timeout = self.duration(
            &raw.timeout,
            "defaults.timeout",
            "timeout",
            &limits::TIMEOUT,
        );
        if let Ok(Some(i)) = interval {
            d.interval = i;
        }
        if let Ok(Some(t)) = timeout {
            d.timeout = t;
        }
        // Both written and contradicting each other: say so here rather than
        // silently clamping every check.
        if let (Ok(Some(i)), Ok(Some(t)), Some(ts)) = (interval, timeout, &raw.timeout)
            && t > i
        {
            self.problem(
                pos(&ts.referenced),
                "defaults.timeout",
                format!(
                    "timeout {} is longer than interval {}",
                    duration::format(t),
                    duration::format(i)
                ),
            );
        }
        d
    }

    /// Where a name was first defined, as a duplicate's message says it.
    fn first_defined(&self, (file, line): (&str, u64)) -> String {
        if file == self.file {
            format!("first defined on line {line}")
        } else {
            format!("first defined at {file}:{line}")
        }
    }

    fn notifiers(&mut self, raw: &[Spanned<raw::RawNotifier>]) -> Vec<Notifier> {
        let mut out = Vec::new();
        for (i, n) in raw.iter().enumerate() {
            let path = format!("notifiers[{i}]");
            let at = pos(&n.referenced);
            let n = &n.value;
            let name = self.name(&n.name, at, &path);
            if let (Some(name), Some(s)) = (&name, &n.name) {
                let here = (self.file, s.referenced.line());
                if let Some(first) = self.seen_notifiers.get(name).copied() {
                    let origin = self.first_defined(first);
                    self.problem(
                        pos(&s.referenced),
                        &sub(&path, "name"),
                        format!("duplicate notifier name `{name}` ({origin})"),
                    );
                } else {
                    self.seen_notifiers.insert(name.clone(), here);
                }
            }
            let kind = self.required(&n.kind, at, &path, "type");
            let kind_at = n.kind.as_ref().map_or(at, |s| pos(&s.referenced));
            let url = self.url_source(n, at, &path);
            let secret_env = self.env_name(&n.secret_env, &sub(&path, "secret_env"));
            let routing_key_env = self.env_name(&n.routing_key_env, &sub(&path, "routing_key_env"));
            let max_age = self.duration_or(
                &n.max_age,
                &sub(&path, "max_age"),
                "max_age",
                &limits::NOTIFIER_MAX_AGE,
                DEFAULT_NOTIFIER_MAX_AGE,
            );
            let timeout = self.duration_or(
                &n.timeout,
                &sub(&path, "timeout"),
                "timeout",
                &limits::NOTIFIER_TIMEOUT,
                DEFAULT_NOTIFIER_TIMEOUT,
            );
            let Some(kind) = kind else { continue };
            let kind_lc = kind.to_ascii_lowercase();
            if !NOTIFIER_TYPES.contains(&kind_lc.as_str()) {
                let hint = match raw::suggest(&kind, NOTIFIER_TYPES) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "one of `webhook`, `pagerduty`, `slack`, `alertmanager`, `servicenow`, `jira`, `opsgenie`".into(),
                };
                self.report(
                    kind_at,
                    &sub(&path, "type"),
                    format!("unknown notifier type `{kind}`"),
                    Some(hint),
                );
                continue;
            }
            if kind_lc != "webhook"
                && let Some(s) = &n.secret_env
            {
                self.problem(
                    pos(&s.referenced),
                    &sub(&path, "secret_env"),
                    format!("`secret_env` is only used by `webhook` notifiers, not `{kind_lc}`"),
                );
            }
            if kind_lc != "pagerduty"
                && let Some(s) = &n.routing_key_env
            {
                self.problem(
                    pos(&s.referenced),
                    &sub(&path, "routing_key_env"),
                    format!(
                        "`routing_key_env` is only used by `pagerduty` notifiers, not `{kind_lc}`"
                    ),
                );
            }
            if kind_lc == "pagerduty" && n.routing_key_env.is_none() {
                self.report(
                    at,
                    &sub(&path, "routing_key_env"),
                    "missing required key `routing_key_env`".into(),
                    Some(
                        "pagerduty notifiers need the environment variable holding the routing key"
                            .into(),
                    ),
                );
            }
            let label = n.name.as_ref().map_or("", |s| s.value.as_str());
            let consequence = format!("deliveries to notifier `{label}` fail until it is set");
            for (key, var, key_name) in [
                (&n.secret_env, &secret_env, "secret_env"),
                (&n.routing_key_env, &routing_key_env, "routing_key_env"),
            ] {
                if let (Some(key), Some(var)) = (key, var) {
                    self.env_value(key, var, &sub(&path, key_name), &consequence);
                }
            }
            self.misplaced_ticket_keys(n, &kind_lc, &path);
            if tickets::TICKET_TYPES.contains(&kind_lc.as_str()) {
                let kind = self.ticket_kind(&kind_lc, n, at, &path, url);
                if let (Some(name), Some(kind)) = (name, kind) {
                    out.push(Notifier {
                        name,
                        kind,
                        max_age,
                        timeout,
                    });
                }
                continue;
            }
            let (Some(name), Some(url)) = (name, url) else {
                continue;
            };
            let kind = match kind_lc.as_str() {
                "webhook" => NotifierKind::Webhook { url, secret_env },
                "pagerduty" => match routing_key_env {
                    Some(routing_key_env) => NotifierKind::PagerDuty {
                        url,
                        routing_key_env,
                    },
                    None => continue,
                },
                "slack" => NotifierKind::Slack { url },
                _ => NotifierKind::Alertmanager { url },
            };
            out.push(Notifier {
                name,
                kind,
                max_age,
                timeout,
            });
        }
        out
    }

    fn url_source(
        &mut self,
        n: &raw::RawNotifier,
        at: (u64, u64),
        path: &str,
    ) -> Option<UrlSource> {
        match (&n.url, &n.url_env) {
            (Some(u), Some(_)) => {
                self.problem(
                    pos(&u.referenced),
                    &sub(path, "url"),
                    "give either `url` or `url_env`, not both",
                );
                None
            }
            (Some(u), None) => self
                .url(
                    u,
                    &sub(path, "url"),
                    "secrets never go in the file: put the whole URL in an environment variable and name it with `url_env`",
                )
                .map(UrlSource::Inline),
            (None, Some(key)) => {
                let var = self.env_name(&n.url_env, &sub(path, "url_env"))?;
                let name = n.name.as_ref().map_or("", |s| s.value.as_str());
                let consequence = format!("deliveries to notifier `{name}` fail until it is set");
                if let Some(value) = self.env_value(key, &var, &sub(path, "url_env"), &consequence)
                    && let Err((_, _, fault)) = parse_url(&value)
                {
                    // Never echo the value: the URL in a variable is a secret.
                    self.report(
                        pos(&key.referenced),
                        &sub(path, "url_env"),
                        format!("environment variable {var} holds an invalid URL: {}", fault.reason()),
                        Some("the URL must be http:// or https:// with a host and no `user:password@`".into()),
                    );
                    return None;
                }
                Some(UrlSource::Env(var))
            }
            (None, None) => {
                self.report(
                    at,
                    &sub(path, "url"),
                    "missing required key `url` (or `url_env`)".into(),
                    Some("use `url_env` when the URL embeds a secret".into()),
                );
                None
            }
        }
    }

    fn response_targets(
        &mut self,
        raw: &raw::OrderedMap<Spanned<raw::RawResponseTarget>>,
    ) -> std::collections::BTreeMap<String, ResponseTarget> {
        let mut out = std::collections::BTreeMap::new();
        for (key, target) in &raw.0 {
            let path = format!("response_targets.{key}");
            if key.trim().is_empty() {
                self.problem(pos(&target.referenced), &path, "empty severity name");
                continue;
            }
            let at = pos(&target.referenced);
            let t = &target.value;
            let ack = self.required_duration(
                &t.acknowledge,
                at,
                &path,
                "acknowledge",
                &limits::RESPONSE_TARGET,
            );
            let restore =
                self.required_duration(&t.restore, at, &path, "restore", &limits::RESPONSE_TARGET);
            if let (Some(acknowledge), Some(restore)) = (ack, restore) {
                out.insert(
                    key.clone(),
                    ResponseTarget {
                        acknowledge,
                        restore,
                    },
                );
            }
        }
        out
    }

    fn required_duration(
        &mut self,
        value: &Opt<String>,
        parent: (u64, u64),
        parent_path: &str,
        key: &str,
        range: &DurationRange,
    ) -> Option<Duration> {
        if value.is_none() {
            self.missing(parent, parent_path, key);
            return None;
        }
        self.duration(value, &sub(parent_path, key), key, range)
            .ok()
            .flatten()
    }

    fn maintenance(
        &mut self,
        raw: &[Spanned<raw::RawMaintenance>],
        services: &[Service],
    ) -> Vec<Maintenance> {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let mut out = Vec::new();
        for (i, m) in raw.iter().enumerate() {
            let path = format!("maintenance[{i}]");
            let at = pos(&m.referenced);
            let m = &m.value;
            let mut list = Vec::new();
            match &m.services {
                None => self.missing(at, &path, "services"),
                Some(s) if s.value.is_empty() => self.problem(
                    pos(&s.referenced),
                    &sub(&path, "services"),
                    "empty `services` list; name at least one service",
                ),
                Some(s) => {
                    for (j, svc) in s.value.iter().enumerate() {
                        if names.contains(&svc.value.as_str()) {
                            list.push(svc.value.clone());
                        } else {
                            let hint = raw::suggest(&svc.value, names.iter().copied())
                                .map(|s| format!("did you mean `{s}`?"));
                            self.report(
                                pos(&svc.referenced),
                                &format!("{path}.services[{j}]"),
                                format!("unknown service `{}` in maintenance", svc.value),
                                hint,
                            );
                        }
                    }
                }
            }
            let start = self.timestamp(&m.start, at, &path, "start");
            let end = self.timestamp(&m.end, at, &path, "end");
            if let (Some(start), Some(end), Some(e)) = (start, end, &m.end)
                && end <= start
            {
                self.problem(
                    pos(&e.referenced),
                    &sub(&path, "end"),
                    format!("maintenance end {end} is not after its start {start}"),
                );
                continue;
            }
            if let (Some(start), Some(end)) = (start, end)
                && !list.is_empty()
                && m.services
                    .as_ref()
                    .is_some_and(|s| s.value.len() == list.len())
            {
                out.push(Maintenance {
                    services: list,
                    start,
                    end,
                });
            }
        }
        out
    }

    fn timestamp(
        &mut self,
        value: &Opt<String>,
        parent: (u64, u64),
        parent_path: &str,
        key: &str,
    ) -> Option<Timestamp> {
        let text = self.required(value, parent, parent_path, key)?;
        match text.trim().parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                let at = value.as_ref().map_or(parent, |s| pos(&s.referenced));
                self.report(
                    at,
                    &sub(parent_path, key),
                    format!("invalid time `{text}`: expected RFC 3339 with a UTC offset"),
                    Some("e.g. `2026-12-01T22:00:00Z`".into()),
                );
                None
            }
        }
    }

    fn services(
        &mut self,
        raw: &[Spanned<raw::RawService>],
        defaults: &Defaults,
        notifiers: &[Notifier],
    ) -> Vec<Service> {
        let mut out = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let path = format!("services[{i}]");
            let at = pos(&s.referenced);
            let s = &s.value;
            let name = self.name(&s.name, at, &path);
            if let (Some(name), Some(sp)) = (&name, &s.name) {
                let here = (self.file, sp.referenced.line());
                if let Some(first) = self.seen_services.get(name).copied() {
                    let origin = self.first_defined(first);
                    self.problem(
                        pos(&sp.referenced),
                        &sub(&path, "name"),
                        format!("duplicate service name `{name}` ({origin})"),
                    );
                } else {
                    self.seen_services.insert(name.clone(), here);
                }
            }
            // Messages quote the name as written, even when it is invalid.
            let label = s.name.as_ref().map(|n| n.value.clone()).unwrap_or_default();
            let checks = self.checks(s, at, &path, &label, defaults);
            let slo = s
                .slo
                .as_ref()
                .and_then(|slo| self.slo(slo, &sub(&path, "slo")));
            let incident = self.incident(s.incident.as_ref(), &sub(&path, "incident"), notifiers);
            // Where the severity is written, or the service when it is the default.
            let written = s
                .incident
                .as_ref()
                .and_then(|i| i.value.severity.as_ref())
                .map(|sev| pos(&sev.referenced));
            self.severity_uses.push(SeverityUse {
                severity: incident.severity.clone(),
                file: self.file,
                at: written.unwrap_or(at),
                path: if written.is_some() {
                    format!("{path}.incident.severity")
                } else {
                    path.clone()
                },
            });
            if let Some(name) = name {
                out.push(Service {
                    name,
                    description: s.description.clone(),
                    owner: s.owner.clone(),
                    tier: s.tier.as_ref().map(|t| t.value),
                    checks,
                    slo,
                    incident,
                });
            }
        }
        out
    }

    fn checks(
        &mut self,
        s: &raw::RawService,
        at: (u64, u64),
        path: &str,
        service: &str,
        defaults: &Defaults,
    ) -> Vec<Check> {
        let checks_path = sub(path, "checks");
        let raw = match &s.checks {
            Some(c) if !c.value.is_empty() => &c.value,
            other => {
                let at = other.as_ref().map_or(at, |c| pos(&c.referenced));
                let who = if service.is_empty() {
                    "service".to_string()
                } else {
                    format!("service `{service}`")
                };
                self.report(
                    at,
                    &checks_path,
                    format!("{who} has no checks"),
                    Some("add at least one check (`http`, `tcp`, `dns` or `tls`)".into()),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for (j, c) in raw.iter().enumerate() {
            let path = format!("{checks_path}[{j}]");
            let at = pos(&c.referenced);
            let c = &c.value;
            let name = self.name(&c.name, at, &path);
            if let (Some(name), Some(sp)) = (&name, &c.name)
                && let Some(line) = seen.insert(name.clone(), sp.referenced.line())
            {
                self.problem(
                    pos(&sp.referenced),
                    &sub(&path, "name"),
                    format!(
                        "duplicate check name `{name}` in service `{service}` (first defined on line {line})"
                    ),
                );
            }
            let interval = self.duration(
                &c.interval,
                &sub(&path, "interval"),
                "interval",
                &limits::INTERVAL,
            );
            let timeout = self.duration(
                &c.timeout,
                &sub(&path, "timeout"),
                "timeout",
                &limits::TIMEOUT,
            );
            let interval_v = interval.ok().flatten().unwrap_or(defaults.interval);
            let timeout_v = match timeout {
                Ok(Some(t)) if t > interval_v => {
                    if let Some(ts) = &c.timeout {
                        self.problem(
                            pos(&ts.referenced),
                            &sub(&path, "timeout"),
                            format!(
                                "timeout {} is longer than interval {}",
                                duration::format(t),
                                duration::format(interval_v)
                            ),
                        );
                    }
                    t
                }
                Ok(Some(t)) => t,
                // The default timeout gives way to a short interval: a run must
                // end before the next one is due.
                _ => defaults.timeout.min(interval_v),
            };
            let probe = self.probe(c, at, &path);
            if let (Some(name), Some(probe), Ok(_), Ok(_)) = (name, probe, interval, timeout) {
                out.push(Check {
                    name,
                    interval: interval_v,
                    timeout: timeout_v,
                    probe,
                });
            }
        }
        out
    }

    fn probe(&mut self, c: &raw::RawCheck, at: (u64, u64), path: &str) -> Option<ProbeSpec> {
        let mut kinds = Vec::new();
        if c.http.is_some() {
            kinds.push("http");
        }
        if c.tcp.is_some() {
            kinds.push("tcp");
        }
        if c.dns.is_some() {
            kinds.push("dns");
        }
        if c.tls.is_some() {
            kinds.push("tls");
        }
        if kinds.len() != 1 {
            let message = if kinds.is_empty() {
                "check has no probe".to_string()
            } else {
                let list: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
                format!("check has {} probes ({})", kinds.len(), list.join(", "))
            };
            self.report(
                at,
                path,
                message,
                Some("give exactly one of `http`, `tcp`, `dns`, `tls`".into()),
            );
            return None;
        }
        if let Some(h) = &c.http {
            return self.http(h, &sub(path, "http")).map(ProbeSpec::Http);
        }
        if let Some(t) = &c.tcp {
            return self.tcp(t, &sub(path, "tcp")).map(ProbeSpec::Tcp);
        }
        if let Some(d) = &c.dns {
            return self.dns(d, &sub(path, "dns")).map(ProbeSpec::Dns);
        }
        if let Some(t) = &c.tls {
            return self.tls(t, &sub(path, "tls")).map(ProbeSpec::Tls);
        }
        None
    }

    fn http(&mut self, h: &Spanned<raw::RawHttp>, path: &str) -> Option<HttpSpec> {
        let at = pos(&h.referenced);
        let h = &h.value;
        let mut ok = true;
        let url = match &h.url {
            None => {
                self.missing(at, path, "url");
                None
            }
            Some(u) => self.url(
                u,
                &sub(path, "url"),
                "secrets never go in the file: send them with `headers_env: { Authorization: VAR }`, where VAR holds e.g. `Basic dXNlcjpwYXNz`",
            ),
        };
        let method = match &h.method {
            None => "GET".to_string(),
            Some(m) => {
                let up = m.value.trim().to_ascii_uppercase();
                if up.is_empty() || !up.chars().all(|c| c.is_ascii_alphabetic()) {
                    self.problem(
                        pos(&m.referenced),
                        &sub(path, "method"),
                        format!("invalid HTTP method `{}`", m.value),
                    );
                    ok = false;
                }
                up
            }
        };
        let mut headers = Vec::new();
        for (k, v) in &h.headers.0 {
            let hp = format!("{path}.headers.{k}");
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                self.problem(
                    pos(&v.referenced),
                    &hp,
                    format!("invalid header name `{k}`"),
                );
                ok = false;
            } else if reqwest::header::HeaderValue::from_str(&v.value).is_err() {
                self.problem(
                    pos(&v.referenced),
                    &hp,
                    "invalid header value (control characters or line breaks)",
                );
                ok = false;
            }
            headers.push((k.clone(), v.value.clone()));
        }
        let mut env_headers = Vec::new();
        for (k, v) in &h.headers_env.0 {
            let hp = format!("{path}.headers_env.{k}");
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                self.problem(
                    pos(&v.referenced),
                    &hp,
                    format!("invalid header name `{k}`"),
                );
                ok = false;
                continue;
            }
            if headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(k)) {
                self.problem(
                    pos(&v.referenced),
                    &hp,
                    format!("header `{k}` is set in both `headers` and `headers_env`"),
                );
                ok = false;
                continue;
            }
            let Some(var) = self.env_name(&Some(v.clone()), &hp) else {
                ok = false;
                continue;
            };
            let value = (self.env)(&var);
            match &value {
                None => self.warnings.push(Warning {
                    problem: Problem {
                        file: self.file.to_string(),
                        line: v.referenced.line(),
                        column: v.referenced.column(),
                        key_path: hp.clone(),
                        message: format!(
                            "environment variable {var} is not set: the check cannot send header `{k}`, so `sentinel run` and reload refuse this config"
                        ),
                        hint: Some(format!("export {var} in the daemon's environment")),
                    },
                    blocks_run: true,
                }),
                // Never echo the value: it is a secret.
                Some(val) if reqwest::header::HeaderValue::from_str(val).is_err() => {
                    self.problem(
                        pos(&v.referenced),
                        &hp,
                        format!(
                            "environment variable {var} is not a valid header value (control characters or line breaks)"
                        ),
                    );
                    ok = false;
                }
                Some(_) => {}
            }
            env_headers.push(EnvHeader {
                name: k.clone(),
                var,
                value: value.map(Secret::new),
            });
        }
        let max_body_bytes = match &h.max_body_bytes {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(_) => match self.int_in(
                &h.max_body_bytes,
                &sub(path, "max_body_bytes"),
                &limits::MAX_BODY_BYTES,
                "max_body_bytes",
            ) {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => {
                    ok = false;
                    DEFAULT_MAX_BODY_BYTES
                }
            },
        };
        let expect = self.http_expect(h.expect.as_ref(), &sub(path, "expect"), url.as_ref());
        let (Some(url), Some(expect), true) = (url, expect, ok) else {
            return None;
        };
        Some(HttpSpec {
            url,
            method,
            headers,
            env_headers,
            body: h.body.clone(),
            follow_redirects: h.follow_redirects.unwrap_or(false),
            tls_verify: h.tls_verify.unwrap_or(true),
            max_body_bytes,
            expect,
        })
    }

    fn http_expect(
        &mut self,
        e: Option<&Spanned<raw::RawHttpExpect>>,
        path: &str,
        url: Option<&url::Url>,
    ) -> Option<HttpExpect> {
        let mut expect = HttpExpect {
            status: (200..=299).collect(),
            body_contains: None,
            body_regex: None,
            json: Vec::new(),
            max_latency: None,
            cert_min_days: None,
        };
        let Some(e) = e.map(|e| &e.value) else {
            return Some(expect);
        };
        let mut ok = true;
        if let Some(st) = &e.status {
            let sp = sub(path, "status");
            if st.value.0.is_empty() {
                self.problem(
                    pos(&st.referenced),
                    &sp,
                    "empty `status` list; leave it out to accept 200..=299",
                );
                ok = false;
            }
            let mut codes = Vec::new();
            for code in &st.value.0 {
                match u16::try_from(*code) {
                    Ok(c) if (100..=599).contains(&c) => codes.push(c),
                    _ => {
                        self.problem(
                            pos(&st.referenced),
                            &sp,
                            format!("status code {code} is out of range 100..=599"),
                        );
                        ok = false;
                    }
                }
            }
            expect.status = codes;
        }
        expect.body_contains = e.body_contains.clone();
        if let Some(re) = &e.body_regex {
            match regex::Regex::new(&re.value) {
                Ok(r) => expect.body_regex = Some(r),
                Err(err) => {
                    self.problem(
                        pos(&re.referenced),
                        &sub(path, "body_regex"),
                        format!("invalid regex `{}`: {}", re.value, regex_reason(&err)),
                    );
                    ok = false;
                }
            }
        }
        for (k, v) in &e.json.0 {
            if !k.starts_with('$') {
                self.report(
                    pos(&v.referenced),
                    &format!("{path}.json.{k}"),
                    format!("JSON path `{k}` must start with `$`"),
                    Some(format!("e.g. `$.{}`", k.trim_start_matches('.'))),
                );
                ok = false;
            }
            expect.json.push((k.clone(), v.value.clone()));
        }
        match self.duration(
            &e.max_latency,
            &sub(path, "max_latency"),
            "max_latency",
            &limits::LATENCY,
        ) {
            Ok(d) => expect.max_latency = d,
            Err(()) => ok = false,
        }
        if let Some(days) = &e.cert_min_days {
            let cp = sub(path, "cert_min_days");
            match self.int_in(
                &e.cert_min_days,
                &cp,
                &limits::CERT_MIN_DAYS,
                "cert_min_days",
            ) {
                Some(n) => expect.cert_min_days = u32::try_from(n).ok(),
                None => ok = false,
            }
            if url.is_some_and(|u| u.scheme() != "https") {
                self.problem(
                    pos(&days.referenced),
                    &cp,
                    "`cert_min_days` needs an https URL",
                );
                ok = false;
            }
        }
        ok.then_some(expect)
    }

    fn host(&mut self, value: &Opt<String>, at: (u64, u64), path: &str) -> Option<String> {
        let host = self.required(value, at, path, "host")?;
        if host.contains("://") || host.contains('/') || host.contains(char::is_whitespace) {
            let at = value.as_ref().map_or(at, |s| pos(&s.referenced));
            self.report(
                at,
                &sub(path, "host"),
                format!("invalid host `{host}`: give a bare host name or IP"),
                Some("no scheme, port or path; the port goes in `port`".into()),
            );
            return None;
        }
        Some(host.trim().to_string())
    }

    fn port(
        &mut self,
        value: &Opt<i64>,
        at: (u64, u64),
        path: &str,
        default: Option<u16>,
    ) -> Option<u16> {
        match (value, default) {
            (None, Some(d)) => Some(d),
            (None, None) => {
                self.missing(at, path, "port");
                None
            }
            (Some(_), _) => self
                .int_in(value, &sub(path, "port"), &limits::PORT, "port")
                .and_then(|p| u16::try_from(p).ok()),
        }
    }

    fn cert_days(&mut self, value: &Opt<i64>, path: &str) -> Result<Option<u32>, ()> {
        match value {
            None => Ok(None),
            Some(_) => self
                .int_in(
                    value,
                    &sub(path, "cert_min_days"),
                    &limits::CERT_MIN_DAYS,
                    "cert_min_days",
                )
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or(()),
        }
    }

    fn tcp(&mut self, t: &Spanned<raw::RawTcp>, path: &str) -> Option<TcpSpec> {
        let at = pos(&t.referenced);
        let t = &t.value;
        let host = self.host(&t.host, at, path);
        let port = self.port(&t.port, at, path, None);
        let tls = t.tls.unwrap_or(false);
        let cert = self.cert_days(&t.cert_min_days, path);
        if let (Some(days), false) = (&t.cert_min_days, tls) {
            self.problem(
                pos(&days.referenced),
                &sub(path, "cert_min_days"),
                "`cert_min_days` needs `tls: true`",
            );
            return None;
        }
        let server_name = self.optional_nonempty(&t.server_name, &sub(path, "server_name"));
        let (Some(host), Some(port), Ok(cert_min_days), Ok(server_name)) =
            (host, port, cert, server_name)
        else {
            return None;
        };
        Some(TcpSpec {
            host,
            port,
            tls,
            tls_verify: t.tls_verify.unwrap_or(true),
            server_name,
            send: t.send.clone(),
            expect: t.expect.clone(),
            cert_min_days,
        })
    }

    fn optional_nonempty(&mut self, value: &Opt<String>, path: &str) -> Result<Option<String>, ()> {
        match value {
            None => Ok(None),
            Some(s) if s.value.trim().is_empty() => {
                self.problem(
                    pos(&s.referenced),
                    path,
                    "empty value; leave the key out instead",
                );
                Err(())
            }
            Some(s) => Ok(Some(s.value.trim().to_string())),
        }
    }

    fn dns(&mut self, d: &Spanned<raw::RawDns>, path: &str) -> Option<DnsSpec> {
        let at = pos(&d.referenced);
        let d = &d.value;
        let name = self.required(&d.name, at, path, "name");
        let record = match &d.record {
            None => Some(RecordType::A),
            Some(r) => match parse_record(&r.value) {
                Some(rt) => Some(rt),
                None => {
                    self.report(
                        pos(&r.referenced),
                        &sub(path, "record"),
                        format!("unknown record type `{}`", r.value),
                        Some(format!("one of {}", RECORD_TYPES.join(", "))),
                    );
                    None
                }
            },
        };
        let server = match &d.server {
            None => {
                self.report(
                    at,
                    &sub(path, "server"),
                    "missing required key `server`".into(),
                    Some("the DNS server to ask, e.g. `10.0.0.2:53`".into()),
                );
                None
            }
            Some(s) => match parse_dns_server(&s.value) {
                Some(addr) => Some(addr),
                None => {
                    self.report(
                        pos(&s.referenced),
                        &sub(path, "server"),
                        format!("invalid DNS server `{}`: expected IP or IP:PORT", s.value),
                        Some("e.g. `10.0.0.2:53` or `10.0.0.2` (port 53)".into()),
                    );
                    None
                }
            },
        };
        let (Some(name), Some(record), Some(server)) = (name, record, server) else {
            return None;
        };
        Some(DnsSpec {
            name: name.trim().to_string(),
            record,
            server,
            expect: d.expect.clone(),
        })
    }

    fn tls(&mut self, t: &Spanned<raw::RawTls>, path: &str) -> Option<TlsSpec> {
        let at = pos(&t.referenced);
        let t = &t.value;
        let host = self.host(&t.host, at, path);
        let port = self.port(&t.port, at, path, Some(443));
        let cert = self.cert_days(&t.cert_min_days, path);
        let server_name = self.optional_nonempty(&t.server_name, &sub(path, "server_name"));
        let (Some(host), Some(port), Ok(cert), Ok(server_name)) = (host, port, cert, server_name)
        else {
            return None;
        };
        Some(TlsSpec {
            host,
            port,
            server_name,
            tls_verify: t.tls_verify.unwrap_or(true),
            cert_min_days: cert.unwrap_or(DEFAULT_CERT_MIN_DAYS),
        })
    }

    fn objective(&mut self, value: &Opt<f64>, at: (u64, u64), path: &str) -> Option<f64> {
        let Some(o) = value else {
            self.missing(at, path, "objective");
            return None;
        };
        // Plain `/ 100.0` turns 99.9 into 0.9990000000000001; going through
        // an integer count of billionths of a percent gives the double
        // closest to what was written (0.999), so `1 - objective` and the
        // `rules` output read as the operator expects. NaN fails both tests.
        let ratio = (o.value * 1e9).round() / 1e11;
        if ratio > 0.0 && o.value <= limits::MAX_OBJECTIVE_PERCENT {
            return Some(ratio);
        }
        self.report(
            pos(&o.referenced),
            &sub(path, "objective"),
            format!(
                "objective {} is out of range: it is a percent, greater than 0 and at most {}",
                o.value,
                limits::MAX_OBJECTIVE_PERCENT
            ),
            Some("e.g. `99.9`".into()),
        );
        None
    }

    fn slo(&mut self, s: &Spanned<raw::RawSlo>, path: &str) -> Option<Slo> {
        let at = pos(&s.referenced);
        let s = &s.value;
        let objective = self.objective(&s.objective, at, path);
        let window = match &s.window {
            None => Some(SloWindow::Rolling(DEFAULT_SLO_WINDOW)),
            Some(w) if w.value.trim().eq_ignore_ascii_case("month") => Some(SloWindow::Month),
            Some(_) => self
                .duration(
                    &s.window,
                    &sub(path, "window"),
                    "window",
                    &limits::SLO_WINDOW,
                )
                .ok()
                .flatten()
                .map(SloWindow::Rolling),
        };
        // Runs older than the retention are deleted, so a longer window could
        // never be filled again after a restart.
        if let Some(w) = window {
            let longest = match w {
                SloWindow::Rolling(d) => d,
                SloWindow::Month => MONTH_SPAN,
            };
            if longest > self.retention {
                let at = s.window.as_ref().map_or(at, |w| pos(&w.referenced));
                self.report(
                    at,
                    &sub(path, "window"),
                    format!(
                        "window {} is longer than storage.retention {}",
                        w.label(),
                        duration::format(self.retention)
                    ),
                    Some(
                        "history older than the retention is deleted; raise `storage.retention` or shorten the window"
                            .into(),
                    ),
                );
                return None;
            }
        }
        let latency = match &s.latency {
            None => Ok(None),
            Some(l) => {
                let lp = sub(path, "latency");
                let lat = pos(&l.referenced);
                let threshold = self.required_duration(
                    &l.value.threshold,
                    lat,
                    &lp,
                    "threshold",
                    &limits::LATENCY,
                );
                let objective = self.objective(&l.value.objective, lat, &lp);
                match (threshold, objective) {
                    (Some(threshold), Some(objective)) => Ok(Some(LatencySlo {
                        threshold,
                        objective,
                    })),
                    _ => Err(()),
                }
            }
        };
        let (Some(objective), Some(window), Ok(latency)) = (objective, window, latency) else {
            return None;
        };
        Some(Slo {
            objective,
            window,
            latency,
        })
    }

    fn incident(
        &mut self,
        raw: Option<&Spanned<raw::RawIncident>>,
        path: &str,
        notifiers: &[Notifier],
    ) -> IncidentPolicy {
        let mut policy = IncidentPolicy {
            open_after: DEFAULT_OPEN_AFTER,
            resolve_after: DEFAULT_RESOLVE_AFTER,
            burn_rate_alerts: true,
            severity: DEFAULT_SEVERITY.to_string(),
            notify: Vec::new(),
        };
        let Some(i) = raw.map(|r| &r.value) else {
            return policy;
        };
        if let Some(n) = self.int_in(
            &i.open_after,
            &sub(path, "open_after"),
            &limits::STREAK,
            "open_after",
        ) {
            policy.open_after = u32::try_from(n).unwrap_or(DEFAULT_OPEN_AFTER);
        }
        if let Some(n) = self.int_in(
            &i.resolve_after,
            &sub(path, "resolve_after"),
            &limits::STREAK,
            "resolve_after",
        ) {
            policy.resolve_after = u32::try_from(n).unwrap_or(DEFAULT_RESOLVE_AFTER);
        }
        policy.burn_rate_alerts = i.burn_rate_alerts.unwrap_or(true);
        if let Ok(Some(sev)) = self.optional_nonempty(&i.severity, &sub(path, "severity")) {
            policy.severity = sev;
        }
        let known: Vec<&str> = notifiers.iter().map(|n| n.name.as_str()).collect();
        for (k, n) in i.notify.iter().enumerate() {
            // A notifier that is defined but invalid was reported already;
            // naming it here is not a second problem.
            if known.contains(&n.value.as_str()) || self.seen_notifiers.contains_key(&n.value) {
                if !policy.notify.contains(&n.value) {
                    policy.notify.push(n.value.clone());
                }
            } else {
                let hint = match raw::suggest(&n.value, known.iter().copied()) {
                    Some(s) => Some(format!("did you mean `{s}`?")),
                    None if known.is_empty() => Some("no notifiers are defined".into()),
                    None => Some(format!(
                        "defined notifiers: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                self.report(
                    pos(&n.referenced),
                    &format!("{path}.notify[{k}]"),
                    format!("unknown notifier `{}` in `notify`", n.value),
                    hint,
                );
            }
        }
        policy
    }
}

/// Why a URL is refused, without quoting it (a URL read from the
/// environment is a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlFault {
    Parse(url::ParseError),
    NoScheme,
    Scheme(String),
    NoHost,
    Credentials,
}

impl UrlFault {
    fn reason(&self) -> String {
        match self {
            UrlFault::Parse(e) => e.to_string(),
            UrlFault::NoScheme => "missing scheme".to_string(),
            UrlFault::Scheme(s) => format!("scheme must be http or https, not `{s}`"),
            UrlFault::NoHost => "no host".to_string(),
            UrlFault::Credentials => "it contains credentials (`user:password@`)".to_string(),
        }
    }
}

/// Only http(s) URLs with a host and without credentials: the probes and
/// notifiers speak nothing else, and secrets never go in the file. The
/// message quotes the URL, except one with credentials, which is named by
/// its host only.
fn parse_url(text: &str) -> Result<url::Url, (String, Option<String>, UrlFault)> {
    let t = text.trim();
    let fault = match url::Url::parse(t) {
        Ok(u) if u.scheme() != "http" && u.scheme() != "https" => {
            UrlFault::Scheme(u.scheme().to_string())
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => UrlFault::NoHost,
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            let host = u.host_str().unwrap_or_default();
            return Err((
                format!("URL for `{host}` contains credentials (`user:password@`)"),
                None,
                UrlFault::Credentials,
            ));
        }
        Ok(u) => return Ok(u),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err((
                format!("invalid URL `{t}`: missing scheme"),
                Some(format!("write `https://{t}`")),
                UrlFault::NoScheme,
            ));
        }
        Err(e) => UrlFault::Parse(e),
    };
    Err((
        format!("invalid URL `{t}`: {}", fault.reason()),
        None,
        fault,
    ))
}

/// `IP:PORT`, plus `localhost:PORT` because people write it.
fn parse_listen(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = t.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `IP:PORT`, or a bare IP meaning port 53.
fn parse_dns_server(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

fn parse_record(text: &str) -> Option<RecordType> {
    Some(match text.trim().to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "NS" => RecordType::Ns,
        "SRV" => RecordType::Srv,
        "PTR" => RecordType::Ptr,
        "SOA" => RecordType::Soa,
        _ => return None,
    })
}

/// The regex crate's errors span several lines (pattern, caret, reason); a
/// problem is one line, so keep the reason.
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || text.lines().last().unwrap_or_default().trim().to_string(),
            str::to_string,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug + PartialEq>(got: T, expected: T) {
        assert_eq!(got, expected);
    }

    #[test]
    fn dns_servers() {
        let addr = |s: &str| s.parse::<SocketAddr>().ok();
        check(parse_dns_server("10.0.0.2:53"), addr("10.0.0.2:53"));
        check(parse_dns_server("10.0.0.2"), addr("10.0.0.2:53"));
        check(parse_dns_server(" 10.0.0.2:5353 "), addr("10.0.0.2:5353"));
        check(parse_dns_server("::1"), addr("[::1]:53"));
        check(parse_dns_server("[::1]"), addr("[::1]:53"));
        check(parse_dns_server("[::1]:5300"), addr("[::1]:5300"));
        check(parse_dns_server("dns.local"), None);
        check(parse_dns_server("10.0.0.2:99999"), None);
    }

    #[test]
    fn listen_addresses() {
        let addr = |s: &str| s.parse::<SocketAddr>().ok();
        check(parse_listen("127.0.0.1:9464"), addr("127.0.0.1:9464"));
        check(parse_listen("[::]:9464"), addr("[::]:9464"));
        check(parse_listen("localhost:8080"), addr("127.0.0.1:8080"));
        check(parse_listen("9464"), None);
        check(parse_listen(":9464"), None);
        check(parse_listen("example.com:9464"), None);
    }

    #[test]
    fn record_types_are_case_insensitive() {
        check(parse_record("a"), Some(RecordType::A));
        check(parse_record("Aaaa"), Some(RecordType::Aaaa));
        check(parse_record("cname"), Some(RecordType::Cname));
        check(parse_record("MX"), Some(RecordType::Mx));
        check(parse_record("txt"), Some(RecordType::Txt));
        check(parse_record("ns"), Some(RecordType::Ns));
        check(parse_record("srv"), Some(RecordType::Srv));
        check(parse_record("ptr"), Some(RecordType::Ptr));
        check(parse_record("soa"), Some(RecordType::Soa));
        check(parse_record("AAA"), None);
    }

    #[test]
    fn urls() {
        let msg = |s: &str| parse_url(s).map(|u| u.to_string()).map_err(|e| e.0);
        check(msg("https://x.example/h"), Ok("https://x.example/h".into()));
        check(
            msg(" http://127.0.0.1:8080 "),
            Ok("http://127.0.0.1:8080/".into()),
        );
        check(
            msg("mailto:a@b"),
            Err("invalid URL `mailto:a@b`: scheme must be http or https, not `mailto`".into()),
        );
        check(msg("x/y"), Err("invalid URL `x/y`: missing scheme".into()));
        check(
            msg("http://[::1"),
            Err("invalid URL `http://[::1`: invalid IPv6 address".into()),
        );
    }

    #[test]
    fn regex_errors_become_one_line() {
        // Built at run time: clippy rejects an invalid regex literal.
        let pattern = format!("a{{{},{}}}", 2, 1);
        let err = regex::Regex::new(&pattern).unwrap_err();
        check(
            regex_reason(&err).as_str(),
            "invalid repetition count range, the start must be <= the end",
        );
    }
}
