//! The top-level sections: `server`, `storage`, `defaults`, `notifiers`,
//! `response_targets` and `maintenance`, and the warnings about the server.

use std::path::PathBuf;

use serde_saphyr::Spanned;

use super::parse::{parse_listen, parse_url};
use super::{
    FILE_START, FirstDefinition, Position, Validator, join_key, pos, unknown_notifier_hint,
};
use crate::config::duration;
use crate::config::limits;
use crate::config::raw::{self, RawConfig};
use crate::config::suggest::suggest;
use crate::config::types::*;

const NOTIFIER_TYPES: [&str; 7] = [
    "webhook",
    "pagerduty",
    "slack",
    "alertmanager",
    "servicenow",
    "jira",
    "opsgenie",
];

impl<'a> Validator<'a> {
    pub(super) fn server(&mut self, raw: Option<&Spanned<raw::RawServer>>) -> Server {
        let mut server = Server::default();
        let Some(raw) = raw.map(|s| &s.value) else {
            return server;
        };
        if let Some(listen) = &raw.listen {
            match parse_listen(&listen.value) {
                Some(addr) => server.listen = addr,
                None => self.report(
                    pos(&listen.referenced),
                    "server.listen",
                    format!(
                        "invalid listen address `{}`: expected IP:PORT",
                        listen.value
                    ),
                    Some("e.g. `127.0.0.1:9464`, `0.0.0.0:9464` or `[::]:9464`".into()),
                ),
            }
        }
        server.api_token_env = self.env_name(&raw.api_token_env, "server.api_token_env");
        if let Ok(Some(n)) = self.int_in(
            &raw.max_concurrency,
            "server.max_concurrency",
            &limits::MAX_CONCURRENCY,
            "max_concurrency",
        ) {
            server.max_concurrency = n as usize;
        }
        if let Ok(Some(n)) = self.int_in(
            &raw.max_connections,
            "server.max_connections",
            &limits::MAX_CONNECTIONS,
            "max_connections",
        ) {
            server.max_connections = Some(n as usize);
        }
        if let Ok(Some(n)) = self.int_in(
            &raw.worker_threads,
            "server.worker_threads",
            &limits::WORKER_THREADS,
            "worker_threads",
        ) {
            server.worker_threads = Some(n as usize);
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

    pub(super) fn storage(&mut self, raw: Option<&Spanned<raw::RawStorage>>) -> Storage {
        let mut storage = Storage::default();
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
            Storage::DEFAULT_MINUTE_RETENTION,
        );
        storage.retention = self.duration_or(
            &raw.retention,
            "storage.retention",
            "retention",
            &limits::RETENTION,
            Storage::DEFAULT_RETENTION,
        );
        storage
    }

    pub(super) fn defaults(&mut self, raw: Option<&Spanned<raw::RawDefaults>>) -> Defaults {
        let mut d = Defaults::default();
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

    pub(super) fn notifiers(&mut self, raw: &[Spanned<raw::RawNotifier>]) -> Vec<Notifier> {
        let mut out = Vec::new();
        for (i, n) in raw.iter().enumerate() {
            let path = format!("notifiers[{i}]");
            let at = pos(&n.referenced);
            let n = &n.value;
            let name = self.name(&n.name, at, &path);
            if let (Some(name), Some(s)) = (&name, &n.name) {
                let here = FirstDefinition {
                    file: self.file,
                    line: s.referenced.line(),
                };
                if let Some(first) = self.seen_notifiers.get(name).copied() {
                    let origin = self.first_defined(first);
                    self.problem(
                        pos(&s.referenced),
                        &join_key(&path, "name"),
                        format!("duplicate notifier name `{name}` ({origin})"),
                    );
                } else {
                    self.seen_notifiers.insert(name.clone(), here);
                }
            }
            let kind = self.required(&n.kind, at, &path, "type");
            let kind_at = n.kind.as_ref().map_or(at, |s| pos(&s.referenced));
            let url = self.url_source(n, at, &path);
            let secret_env = self.env_name(&n.secret_env, &join_key(&path, "secret_env"));
            let routing_key_env =
                self.env_name(&n.routing_key_env, &join_key(&path, "routing_key_env"));
            let max_age = self.duration_or(
                &n.max_age,
                &join_key(&path, "max_age"),
                "max_age",
                &limits::NOTIFIER_MAX_AGE,
                Notifier::DEFAULT_MAX_AGE,
            );
            let timeout = self.duration_or(
                &n.timeout,
                &join_key(&path, "timeout"),
                "timeout",
                &limits::NOTIFIER_TIMEOUT,
                Notifier::DEFAULT_TIMEOUT,
            );
            let repost_every = self.duration_or(
                &n.repost_every,
                &join_key(&path, "repost_every"),
                "repost_every",
                &limits::REPOST_EVERY,
                DEFAULT_ALERTMANAGER_REPOST_EVERY,
            );
            let Some(kind) = kind else { continue };
            let kind_lc = kind.to_ascii_lowercase();
            if !NOTIFIER_TYPES.contains(&kind_lc.as_str()) {
                let hint = match suggest(&kind, NOTIFIER_TYPES) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "one of `webhook`, `pagerduty`, `slack`, `alertmanager`, `servicenow`, `jira`, `opsgenie`".into(),
                };
                self.report(
                    kind_at,
                    &join_key(&path, "type"),
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
                    &join_key(&path, "secret_env"),
                    format!("`secret_env` is only used by `webhook` notifiers, not `{kind_lc}`"),
                );
            }
            if kind_lc != "pagerduty"
                && let Some(s) = &n.routing_key_env
            {
                self.problem(
                    pos(&s.referenced),
                    &join_key(&path, "routing_key_env"),
                    format!(
                        "`routing_key_env` is only used by `pagerduty` notifiers, not `{kind_lc}`"
                    ),
                );
            }
            if kind_lc != "alertmanager"
                && let Some(s) = &n.repost_every
            {
                self.problem(
                    pos(&s.referenced),
                    &join_key(&path, "repost_every"),
                    format!(
                        "`repost_every` is only used by `alertmanager` notifiers, not `{kind_lc}`"
                    ),
                );
            }
            if kind_lc == "pagerduty" && n.routing_key_env.is_none() {
                self.report(
                    at,
                    &join_key(&path, "routing_key_env"),
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
                    self.env_value(key, var, &join_key(&path, key_name), &consequence);
                }
            }
            self.misplaced_ticket_keys(n, &kind_lc, &path);
            if super::tickets::TICKET_TYPES.contains(&kind_lc.as_str()) {
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
                "slack" => NotifierKind::Slack {
                    url,
                    buttons: false,
                },
                _ => NotifierKind::Alertmanager { url, repost_every },
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

    pub(super) fn url_source(
        &mut self,
        n: &raw::RawNotifier,
        at: Position,
        path: &str,
    ) -> Option<UrlSource> {
        match (&n.url, &n.url_env) {
            (Some(u), Some(_)) => {
                self.problem(
                    pos(&u.referenced),
                    &join_key(path, "url"),
                    "give either `url` or `url_env`, not both",
                );
                None
            }
            (Some(u), None) => self
                .url(
                    u,
                    &join_key(path, "url"),
                    "secrets never go in the file: put the whole URL in an environment variable and name it with `url_env`",
                )
                .map(UrlSource::Inline),
            (None, Some(key)) => {
                let var = self.env_name(&n.url_env, &join_key(path, "url_env"))?;
                let name = n.name.as_ref().map_or("", |s| s.value.as_str());
                let consequence = format!("deliveries to notifier `{name}` fail until it is set");
                if let Some(value) = self.env_value(key, &var, &join_key(path, "url_env"), &consequence)
                    && let Err(e) = parse_url(&value)
                {
                    // Never echo the value: the URL in a variable is a secret.
                    self.report(
                        pos(&key.referenced),
                        &join_key(path, "url_env"),
                        format!("environment variable {var} holds an invalid URL: {}", e.reason()),
                        Some("the URL must be http:// or https:// with a host and no `user:password@`".into()),
                    );
                    return None;
                }
                Some(UrlSource::Env(var))
            }
            (None, None) => {
                self.report(
                    at,
                    &join_key(path, "url"),
                    "missing required key `url` (or `url_env`)".into(),
                    Some("use `url_env` when the URL embeds a secret".into()),
                );
                None
            }
        }
    }

    pub(super) fn response_targets(
        &mut self,
        raw: &raw::OrderedMap<Spanned<raw::RawResponseTarget>>,
        notifiers: &[Notifier],
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
            let escalate = self.escalate(t.escalate.as_ref(), &path, notifiers);
            if let (Some(acknowledge), Some(restore)) = (ack, restore) {
                out.insert(
                    key.clone(),
                    ResponseTarget {
                        acknowledge,
                        restore,
                        escalate,
                    },
                );
            }
        }
        out
    }

    /// `response_targets.<severity>.escalate`: names of configured
    /// notifiers, each kept once.
    fn escalate(
        &mut self,
        raw: Option<&Spanned<Vec<Spanned<String>>>>,
        parent: &str,
        notifiers: &[Notifier],
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let Some(list) = raw else { return out };
        let known: Vec<&str> = notifiers.iter().map(|n| n.name.as_str()).collect();
        for (k, n) in list.value.iter().enumerate() {
            // A notifier that is defined but invalid was reported already;
            // naming it here is not a second problem.
            if known.contains(&n.value.as_str()) || self.seen_notifiers.contains_key(&n.value) {
                if !out.contains(&n.value) {
                    out.push(n.value.clone());
                }
                continue;
            }
            let hint = unknown_notifier_hint(
                &n.value,
                &known,
                "no notifiers are defined; define the escalation contacts under `notifiers`",
            );
            self.report(
                pos(&n.referenced),
                &format!("{parent}.escalate[{k}]"),
                format!("unknown notifier `{}` in `escalate`", n.value),
                Some(hint),
            );
        }
        out
    }

    pub(super) fn maintenance(
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
                    &join_key(&path, "services"),
                    "empty `services` list; name at least one service",
                ),
                Some(s) => {
                    for (j, svc) in s.value.iter().enumerate() {
                        if names.contains(&svc.value.as_str()) {
                            list.push(svc.value.clone());
                        } else {
                            let hint = suggest(&svc.value, names.iter().copied())
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
                    &join_key(&path, "end"),
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

    /// Warnings about the server block: write endpoints that will be disabled.
    pub(super) fn server_warnings(&mut self, raw: &RawConfig, server: &Server) {
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
                let at = raw
                    .server
                    .as_ref()
                    .map_or(FILE_START, |s| pos(&s.referenced));
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
}
