//! Single values: required strings, names, environment variable names,
//! durations and numbers in their ranges, timestamps, URLs, addresses,
//! record types.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use jiff::Timestamp;
use serde_saphyr::Spanned;

use super::{Validator, pos, sub};
use crate::config::duration;
use crate::config::limits::{self, DurationRange, IntRange};
use crate::config::raw::Opt;
use crate::config::types::*;

impl<'a> Validator<'a> {
    /// A required string; reports it when absent or blank.
    pub(super) fn required(
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
    pub(super) fn name(
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

    pub(super) fn env_name(&mut self, value: &Opt<String>, path: &str) -> Option<String> {
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
    pub(super) fn duration(
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
                self.problem(pos(&s.referenced), path, e.to_string());
                Err(())
            }
        }
    }

    pub(super) fn duration_or(
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

    pub(super) fn required_duration(
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

    pub(super) fn int_in(
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

    pub(super) fn optional_nonempty(
        &mut self,
        value: &Opt<String>,
        path: &str,
    ) -> Result<Option<String>, ()> {
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

    pub(super) fn timestamp(
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

    /// A literal URL. `credentials_fix` is the hint when it holds `user:pass@`.
    pub(super) fn url(
        &mut self,
        s: &Spanned<String>,
        path: &str,
        credentials_fix: &str,
    ) -> Option<url::Url> {
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

    /// The value of the variable an `_env` key names, warning when it is
    /// unset; `consequence` says what happens then ("deliveries to `x` fail").
    pub(super) fn env_value(
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
}

/// Why a URL is refused, without quoting it (a URL read from the
/// environment is a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UrlFault {
    Parse(url::ParseError),
    NoScheme,
    Scheme(String),
    NoHost,
    Credentials,
}

impl UrlFault {
    pub(super) fn reason(&self) -> String {
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
pub(super) fn parse_url(text: &str) -> Result<url::Url, (String, Option<String>, UrlFault)> {
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
pub(super) fn parse_listen(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = t.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `IP:PORT`, or a bare IP meaning port 53.
pub(super) fn parse_dns_server(text: &str) -> Option<SocketAddr> {
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

pub(super) fn parse_record(text: &str) -> Option<RecordType> {
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
pub(super) fn regex_reason(err: &regex::Error) -> String {
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
