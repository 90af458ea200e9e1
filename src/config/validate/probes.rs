//! What each probe kind needs: `http` (with its `expect`), `tcp`, `dns`, `tls`.

use serde_saphyr::Spanned;

use super::parse::{ValueError, parse_dns_server, parse_record, regex_reason};
use super::{Position, Validator, join_key, pos};
use crate::config::error::{Problem, Warning};
use crate::config::limits;
use crate::config::raw::{self, Opt};
use crate::config::types::*;

const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR", "SOA"];

impl<'a> Validator<'a> {
    pub(super) fn http(&mut self, h: &Spanned<raw::RawHttp>, path: &str) -> Option<HttpSpec> {
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
                &join_key(path, "url"),
                "secrets never go in the file: send them with `headers_env: { Authorization: VAR }`, where VAR holds e.g. `Basic dXNlcjpwYXNz`",
            ),
        };
        let method = match &h.method {
            None => HttpSpec::DEFAULT_METHOD.to_string(),
            Some(m) => {
                let up = m.value.trim().to_ascii_uppercase();
                if up.is_empty() || !up.chars().all(|c| c.is_ascii_alphabetic()) {
                    self.problem(
                        pos(&m.referenced),
                        &join_key(path, "method"),
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
            headers.push(HttpHeader::new(k, &v.value));
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
            if headers.iter().any(|h| h.name.eq_ignore_ascii_case(k)) {
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
        let max_body_bytes = match self.int_in(
            &h.max_body_bytes,
            &join_key(path, "max_body_bytes"),
            &limits::MAX_BODY_BYTES,
            "max_body_bytes",
        ) {
            Ok(None) => HttpSpec::DEFAULT_MAX_BODY_BYTES,
            Ok(Some(n)) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(_) => {
                ok = false;
                HttpSpec::DEFAULT_MAX_BODY_BYTES
            }
        };
        let expect = self.http_expect(h.expect.as_ref(), &join_key(path, "expect"), url.as_ref());
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

    pub(super) fn http_expect(
        &mut self,
        e: Option<&Spanned<raw::RawHttpExpect>>,
        path: &str,
        url: Option<&url::Url>,
    ) -> Option<HttpExpect> {
        let mut expect = HttpExpect::default();
        let Some(e) = e.map(|e| &e.value) else {
            return Some(expect);
        };
        let mut ok = true;
        if let Some(st) = &e.status {
            let sp = join_key(path, "status");
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
                        &join_key(path, "body_regex"),
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
            } else if let Err(err) = crate::config::jsonpath::parse(k) {
                self.report(
                    pos(&v.referenced),
                    &format!("{path}.json.{k}"),
                    format!("JSON path `{k}` is not valid at byte {}: {}", err.at, err.what),
                    Some(
                        "paths are `$`, then `.key`, `['key']` or `[index]` steps, e.g. `$.data['status'][0]`"
                            .to_string(),
                    ),
                );
                ok = false;
            }
            expect.json.push(JsonExpectation::new(k, v.value.clone()));
        }
        match self.duration(
            &e.max_latency,
            &join_key(path, "max_latency"),
            "max_latency",
            &limits::LATENCY,
        ) {
            Ok(d) => expect.max_latency = d,
            Err(_) => ok = false,
        }
        if let Some(days) = &e.cert_min_days {
            let cp = join_key(path, "cert_min_days");
            match self.int_in(
                &e.cert_min_days,
                &cp,
                &limits::CERT_MIN_DAYS,
                "cert_min_days",
            ) {
                Ok(n) => expect.cert_min_days = n.and_then(|n| u32::try_from(n).ok()),
                Err(_) => ok = false,
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

    pub(super) fn tcp(&mut self, t: &Spanned<raw::RawTcp>, path: &str) -> Option<TcpSpec> {
        let at = pos(&t.referenced);
        let t = &t.value;
        let host = self.host(&t.host, at, path);
        let port = self.port(&t.port, at, path, None);
        let tls = t.tls.unwrap_or(false);
        let cert = self.cert_days(&t.cert_min_days, path);
        if let (Some(days), false) = (&t.cert_min_days, tls) {
            self.problem(
                pos(&days.referenced),
                &join_key(path, "cert_min_days"),
                "`cert_min_days` needs `tls: true`",
            );
            return None;
        }
        let server_name = self.optional_nonempty(&t.server_name, &join_key(path, "server_name"));
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

    pub(super) fn dns(&mut self, d: &Spanned<raw::RawDns>, path: &str) -> Option<DnsSpec> {
        let at = pos(&d.referenced);
        let d = &d.value;
        let name = self.required(&d.name, at, path, "name");
        let record = match &d.record {
            None => Some(DnsSpec::DEFAULT_RECORD),
            Some(r) => match parse_record(&r.value) {
                Some(rt) => Some(rt),
                None => {
                    self.report(
                        pos(&r.referenced),
                        &join_key(path, "record"),
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
                    &join_key(path, "server"),
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
                        &join_key(path, "server"),
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

    pub(super) fn tls(&mut self, t: &Spanned<raw::RawTls>, path: &str) -> Option<TlsSpec> {
        let at = pos(&t.referenced);
        let t = &t.value;
        let host = self.host(&t.host, at, path);
        let port = self.port(&t.port, at, path, Some(TlsSpec::DEFAULT_PORT));
        let cert = self.cert_days(&t.cert_min_days, path);
        let server_name = self.optional_nonempty(&t.server_name, &join_key(path, "server_name"));
        let (Some(host), Some(port), Ok(cert), Ok(server_name)) = (host, port, cert, server_name)
        else {
            return None;
        };
        Some(TlsSpec {
            host,
            port,
            server_name,
            tls_verify: t.tls_verify.unwrap_or(true),
            cert_min_days: cert.unwrap_or(TlsSpec::DEFAULT_CERT_MIN_DAYS),
        })
    }

    pub(super) fn host(&mut self, value: &Opt<String>, at: Position, path: &str) -> Option<String> {
        let host = self.required(value, at, path, "host")?;
        if host.contains("://") || host.contains('/') || host.contains(char::is_whitespace) {
            let at = value.as_ref().map_or(at, |s| pos(&s.referenced));
            self.report(
                at,
                &join_key(path, "host"),
                format!("invalid host `{host}`: give a bare host name or IP"),
                Some("no scheme, port or path; the port goes in `port`".into()),
            );
            return None;
        }
        Some(host.trim().to_string())
    }

    pub(super) fn port(
        &mut self,
        value: &Opt<i64>,
        at: Position,
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
                .int_in(value, &join_key(path, "port"), &limits::PORT, "port")
                .ok()
                .flatten()
                .and_then(|p| u16::try_from(p).ok()),
        }
    }

    pub(super) fn cert_days(
        &mut self,
        value: &Opt<i64>,
        path: &str,
    ) -> Result<Option<u32>, ValueError> {
        let days = self.int_in(
            value,
            &join_key(path, "cert_min_days"),
            &limits::CERT_MIN_DAYS,
            "cert_min_days",
        )?;
        // The range (0..=3650) fits.
        Ok(days.and_then(|n| u32::try_from(n).ok()))
    }
}
