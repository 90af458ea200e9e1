//! Single values: required strings, names, environment variable names,
//! durations and numbers in their ranges, timestamps, URLs, addresses,
//! record types.
//!
//! The free functions parse and say why a value is refused
//! ([`ValueError`], [`UrlError`]); the [`Validator`] methods report that as a
//! problem at the value's place.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use jiff::Timestamp;
use serde_saphyr::Spanned;

use super::{Position, Validator, join_key, pos};
use crate::config::duration;
use crate::config::limits::{self, DurationRange, IntRange};
use crate::config::raw::Opt;
use crate::config::types::*;

impl<'a> Validator<'a> {
    /// A required string; reports it when absent or blank.
    pub(super) fn required(
        &mut self,
        value: &Opt<String>,
        parent: Position,
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
                    &join_key(parent_path, key),
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
        parent: Position,
        parent_path: &str,
    ) -> Option<String> {
        let name = self.required(value, parent, parent_path, "name")?;
        let ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok && name.len() > limits::MAX_NAME_CHARS {
            let at = value.as_ref().map_or(parent, |s| pos(&s.referenced));
            self.report(
                at,
                &join_key(parent_path, "name"),
                format!(
                    "name is {} characters long, more than {}",
                    name.len(),
                    limits::MAX_NAME_CHARS
                ),
                Some("names become metric labels and URL path segments; shorten it".into()),
            );
            return None;
        }
        if !ok {
            let at = value.as_ref().map_or(parent, |s| pos(&s.referenced));
            self.report(
                at,
                &join_key(parent_path, "name"),
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

    /// Records `error` as the problem of the value at `at` and hands it back.
    fn reject<T>(&mut self, at: Position, path: &str, error: ValueError) -> Result<T, ValueError> {
        self.report(at, path, error.to_string(), error.hint());
        Err(error)
    }

    /// `Ok(None)` when absent; `Err` after reporting a bad value. `what`
    /// names the value in the message (`interval 50ms is out of range ...`).
    pub(super) fn duration(
        &mut self,
        value: &Opt<String>,
        path: &str,
        what: &str,
        range: &DurationRange,
    ) -> Result<Option<Duration>, ValueError> {
        let Some(s) = value else { return Ok(None) };
        match duration_within(&s.value, what, range) {
            Ok(d) => Ok(Some(d)),
            Err(e) => self.reject(pos(&s.referenced), path, e),
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
        parent: Position,
        parent_path: &str,
        key: &str,
        range: &DurationRange,
    ) -> Option<Duration> {
        if value.is_none() {
            self.missing(parent, parent_path, key);
            return None;
        }
        self.duration(value, &join_key(parent_path, key), key, range)
            .ok()
            .flatten()
    }

    /// `Ok(None)` when absent; `Err` after reporting a value out of `range`.
    pub(super) fn int_in(
        &mut self,
        value: &Opt<i64>,
        path: &str,
        range: &IntRange,
        what: &str,
    ) -> Result<Option<i64>, ValueError> {
        let Some(s) = value else { return Ok(None) };
        match int_within(s.value, what, range) {
            Ok(n) => Ok(Some(n)),
            Err(e) => self.reject(pos(&s.referenced), path, e),
        }
    }

    /// An optional string that may not be blank when given; trimmed.
    pub(super) fn optional_nonempty(
        &mut self,
        value: &Opt<String>,
        path: &str,
    ) -> Result<Option<String>, ValueError> {
        match value {
            None => Ok(None),
            Some(s) if s.value.trim().is_empty() => {
                self.reject(pos(&s.referenced), path, ValueError::Empty)
            }
            Some(s) => Ok(Some(s.value.trim().to_string())),
        }
    }

    pub(super) fn timestamp(
        &mut self,
        value: &Opt<String>,
        parent: Position,
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
                    &join_key(parent_path, key),
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
            Err(e) => {
                let hint = match &e {
                    UrlError::Credentials { .. } => Some(credentials_fix.to_string()),
                    UrlError::Invalid { .. } => e.hint(),
                };
                self.report(pos(&s.referenced), path, e.to_string(), hint);
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

/// Why a single value is refused. The text is the problem's message;
/// [`ValueError::hint`] what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum ValueError {
    #[error(transparent)]
    Duration(#[from] duration::DurationError),
    /// `what` names the value (`interval`), `written` is the text as
    /// written, trimmed.
    #[error(
        "{what} {written} is out of range {}..={}",
        duration::format(.range.min),
        duration::format(.range.max)
    )]
    DurationOutOfRange {
        what: String,
        written: String,
        range: DurationRange,
    },
    #[error("{what} {value} is out of range {}..={}", .range.min, .range.max)]
    IntOutOfRange {
        what: String,
        value: i64,
        range: IntRange,
    },
    /// An optional key given with a blank value.
    #[error("empty value; leave the key out instead")]
    Empty,
}

impl ValueError {
    /// Why the range is what it is, when it does not say so itself.
    pub(super) fn hint(&self) -> Option<String> {
        match self {
            ValueError::DurationOutOfRange { range, .. } => Some(range.why.to_string()),
            ValueError::IntOutOfRange { range, .. } => {
                (!range.why.is_empty()).then(|| range.why.to_string())
            }
            ValueError::Duration(_) | ValueError::Empty => None,
        }
    }
}

/// A duration within `range`; `what` names it in the message.
pub(super) fn duration_within(
    text: &str,
    what: &str,
    range: &DurationRange,
) -> Result<Duration, ValueError> {
    let d = duration::parse(text)?;
    if range.contains(d) {
        return Ok(d);
    }
    Err(ValueError::DurationOutOfRange {
        what: what.to_string(),
        written: text.trim().to_string(),
        range: *range,
    })
}

/// A whole number within `range`; `what` names it in the message.
pub(super) fn int_within(value: i64, what: &str, range: &IntRange) -> Result<i64, ValueError> {
    if (range.min..=range.max).contains(&value) {
        return Ok(value);
    }
    Err(ValueError::IntOutOfRange {
        what: what.to_string(),
        value,
        range: *range,
    })
}

/// Why a URL is refused. The text is the problem's message: it quotes the
/// URL, except one with credentials, which is named by its host only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum UrlError {
    /// `url` is the text as written, trimmed.
    #[error("invalid URL `{url}`: {fault}")]
    Invalid { url: String, fault: UrlFault },
    #[error("URL for `{host}` contains credentials (`user:password@`)")]
    Credentials { host: String },
}

/// What is wrong with a URL that is not a credentials leak. The text never
/// quotes the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum UrlFault {
    #[error(transparent)]
    Parse(url::ParseError),
    #[error("missing scheme")]
    NoScheme,
    #[error("scheme must be http or https, not `{0}`")]
    Scheme(String),
    #[error("no host")]
    NoHost,
}

impl UrlError {
    /// Why the URL is refused without quoting any of it, for a URL read from
    /// the environment (a secret).
    pub(super) fn reason(&self) -> String {
        match self {
            UrlError::Invalid { fault, .. } => fault.to_string(),
            UrlError::Credentials { .. } => {
                "it contains credentials (`user:password@`)".to_string()
            }
        }
    }

    /// The fix, when it is plain from the URL (a missing scheme).
    pub(super) fn hint(&self) -> Option<String> {
        match self {
            UrlError::Invalid {
                url,
                fault: UrlFault::NoScheme,
            } => Some(format!("write `https://{url}`")),
            _ => None,
        }
    }
}

/// Only http(s) URLs with a host and without credentials: the probes and
/// notifiers speak nothing else, and secrets never go in the file.
pub(super) fn parse_url(text: &str) -> Result<url::Url, UrlError> {
    let t = text.trim();
    let fault = match url::Url::parse(t) {
        Ok(u) if u.scheme() != "http" && u.scheme() != "https" => {
            UrlFault::Scheme(u.scheme().to_string())
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => UrlFault::NoHost,
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            return Err(UrlError::Credentials {
                host: u.host_str().unwrap_or_default().to_string(),
            });
        }
        Ok(u) => return Ok(u),
        Err(url::ParseError::RelativeUrlWithoutBase) => UrlFault::NoScheme,
        Err(e) => UrlFault::Parse(e),
    };
    Err(UrlError::Invalid {
        url: t.to_string(),
        fault,
    })
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
        let msg = |s: &str| {
            parse_url(s)
                .map(|u| u.to_string())
                .map_err(|e| e.to_string())
        };
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
    fn url_hints_and_reasons() {
        let e = parse_url(" x/y ").unwrap_err();
        check(e.hint(), Some("write `https://x/y`".to_string()));
        check(e.reason(), "missing scheme".to_string());
        let e = parse_url("ftp://h/").unwrap_err();
        check(e.hint(), None);
        check(
            e.reason(),
            "scheme must be http or https, not `ftp`".to_string(),
        );
    }

    #[test]
    fn a_url_with_credentials_is_named_by_its_host_only() {
        let e = parse_url("https://user:hunter22@sso.example/x").unwrap_err();
        check(
            e.to_string(),
            "URL for `sso.example` contains credentials (`user:password@`)".to_string(),
        );
        check(
            e.reason(),
            "it contains credentials (`user:password@`)".to_string(),
        );
        check(e.hint(), None);
    }

    /// The problem text and hint of a refused value.
    fn refused<T: std::fmt::Debug>(r: Result<T, ValueError>) -> (String, Option<String>) {
        let e = r.unwrap_err();
        (e.to_string(), e.hint())
    }

    #[test]
    fn values_out_of_range_name_the_range_and_why() {
        check(
            refused(duration_within(" 50ms ", "interval", &limits::INTERVAL)),
            (
                "interval 50ms is out of range 100ms..=1d".to_string(),
                Some("a check runs at most 10 times a second and at least once a day".to_string()),
            ),
        );
        check(
            refused(duration_within("15", "timeout", &limits::TIMEOUT)),
            (
                "invalid duration `15`: missing unit; write e.g. `15s` (units: ms, s, m, h, d, w)"
                    .to_string(),
                None,
            ),
        );
        check(
            duration_within("1d", "interval", &limits::INTERVAL).ok(),
            Some(Duration::from_secs(86_400)),
        );
        check(
            refused(int_within(0, "port", &limits::PORT)),
            ("port 0 is out of range 1..=65535".to_string(), None),
        );
        check(
            refused(int_within(
                67_108_865,
                "max_body_bytes",
                &limits::MAX_BODY_BYTES,
            )),
            (
                "max_body_bytes 67108865 is out of range 1..=67108864".to_string(),
                Some(limits::MAX_BODY_BYTES.why.to_string()),
            ),
        );
        check(int_within(65_535, "port", &limits::PORT).ok(), Some(65_535));
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
