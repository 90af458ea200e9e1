//! `services` and their `checks`: names, intervals and timeouts, and which
//! probe a check runs.

use std::collections::HashMap;

use serde_saphyr::Spanned;

use super::{FirstDefinition, Position, SeverityUse, Validator, join_key, pos};
use crate::config::duration;
use crate::config::limits;
use crate::config::raw;
use crate::config::types::*;

impl<'a> Validator<'a> {
    pub(super) fn services(
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
                let here = FirstDefinition {
                    file: self.file,
                    line: sp.referenced.line(),
                };
                if let Some(first) = self.seen_services.get(name).copied() {
                    let origin = self.first_defined(first);
                    self.problem(
                        pos(&sp.referenced),
                        &join_key(&path, "name"),
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
                .and_then(|slo| self.slo(slo, &join_key(&path, "slo")));
            let incident =
                self.incident(s.incident.as_ref(), &join_key(&path, "incident"), notifiers);
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

    pub(super) fn checks(
        &mut self,
        s: &raw::RawService,
        at: Position,
        path: &str,
        service: &str,
        defaults: &Defaults,
    ) -> Vec<Check> {
        let checks_path = join_key(path, "checks");
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
                    &join_key(&path, "name"),
                    format!(
                        "duplicate check name `{name}` in service `{service}` (first defined on line {line})"
                    ),
                );
            }
            let interval = self.duration(
                &c.interval,
                &join_key(&path, "interval"),
                "interval",
                &limits::INTERVAL,
            );
            let timeout = self.duration(
                &c.timeout,
                &join_key(&path, "timeout"),
                "timeout",
                &limits::TIMEOUT,
            );
            let interval_v = match interval {
                Ok(Some(i)) => i,
                _ => defaults.interval,
            };
            let timeout_v = match timeout {
                Ok(Some(t)) if t > interval_v => {
                    if let Some(ts) = &c.timeout {
                        self.problem(
                            pos(&ts.referenced),
                            &join_key(&path, "timeout"),
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

    pub(super) fn probe(
        &mut self,
        c: &raw::RawCheck,
        at: Position,
        path: &str,
    ) -> Option<ProbeSpec> {
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
            return self.http(h, &join_key(path, "http")).map(ProbeSpec::Http);
        }
        if let Some(t) = &c.tcp {
            return self.tcp(t, &join_key(path, "tcp")).map(ProbeSpec::Tcp);
        }
        if let Some(d) = &c.dns {
            return self.dns(d, &join_key(path, "dns")).map(ProbeSpec::Dns);
        }
        if let Some(t) = &c.tls {
            return self.tls(t, &join_key(path, "tls")).map(ProbeSpec::Tls);
        }
        None
    }
}
