//! The config file as written: serde structs that mirror SPEC §2 key for key.
//!
//! Every struct denies unknown keys, so a typo is an error rather than a
//! silently ignored setting. Almost every field is optional here, even the
//! required ones: a missing key is reported by validation (together with every
//! other problem in the file) instead of stopping serde at the first one.
//! Values that validation judges are wrapped in [`Spanned`] so each problem can
//! point at its line and column.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::error::Problem;

/// A spanned optional scalar, the shape of most leaf keys.
pub type Opt<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Glob patterns of more files to merge, relative to this file.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub include: Vec<Spanned<String>>,
    pub server: Option<Spanned<RawServer>>,
    pub storage: Option<Spanned<RawStorage>>,
    pub defaults: Option<Spanned<RawDefaults>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub notifiers: Vec<Spanned<RawNotifier>>,
    #[serde(default)]
    pub response_targets: OrderedMap<Spanned<RawResponseTarget>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub maintenance: Vec<Spanned<RawMaintenance>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub services: Vec<Spanned<RawService>>,
    pub metrics: Option<Spanned<RawMetrics>>,
    pub status_page: Option<Spanned<RawStatusPage>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatusPage {
    pub title: Opt<String>,
    pub services: Option<Spanned<Vec<Spanned<String>>>>,
    pub show_incidents: Opt<bool>,
}

/// An included file: only the lists that merge across files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFragment {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub services: Vec<Spanned<RawService>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub notifiers: Vec<Spanned<RawNotifier>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub maintenance: Vec<Spanned<RawMaintenance>>,
}

/// Keys only the main file may set (an included file that sets one gets a
/// precise message instead of "unknown key").
pub const MAIN_ONLY_KEYS: [&str; 7] = [
    "include",
    "server",
    "storage",
    "defaults",
    "response_targets",
    "metrics",
    "status_page",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub check_histograms: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Opt<String>,
    pub api_token_env: Opt<String>,
    pub max_concurrency: Opt<i64>,
    pub max_connections: Opt<i64>,
    pub read_timeout: Opt<String>,
    pub external_url: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub path: Opt<String>,
    pub minute_retention: Opt<String>,
    pub retention: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub interval: Opt<String>,
    pub timeout: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifier {
    pub name: Opt<String>,
    #[serde(rename = "type")]
    pub kind: Opt<String>,
    pub url: Opt<String>,
    pub url_env: Opt<String>,
    pub secret_env: Opt<String>,
    pub routing_key_env: Opt<String>,
    pub max_age: Opt<String>,
    pub timeout: Opt<String>,
    // Ticket connectors (`servicenow`, `jira`, `opsgenie`); checked in
    // `validate::tickets`.
    pub username_env: Opt<String>,
    pub password_env: Opt<String>,
    pub token_env: Opt<String>,
    pub user_env: Opt<String>,
    pub api_key_env: Opt<String>,
    pub table: Opt<String>,
    pub close_code: Opt<String>,
    pub project: Opt<String>,
    pub issue_type: Opt<String>,
    pub resolve_transition: Opt<String>,
    pub fields: Option<Spanned<OrderedMap<Spanned<serde_json::Value>>>>,
    pub severity_map: Option<Spanned<OrderedMap<Spanned<serde_json::Value>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponseTarget {
    pub acknowledge: Opt<String>,
    pub restore: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub services: Option<Spanned<Vec<Spanned<String>>>>,
    pub start: Opt<String>,
    pub end: Opt<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: Opt<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tier: Opt<u8>,
    pub checks: Option<Spanned<Vec<Spanned<RawCheck>>>>,
    pub slo: Option<Spanned<RawSlo>>,
    pub incident: Option<Spanned<RawIncident>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Opt<String>,
    pub interval: Opt<String>,
    pub timeout: Opt<String>,
    pub http: Option<Spanned<RawHttp>>,
    pub tcp: Option<Spanned<RawTcp>>,
    pub dns: Option<Spanned<RawDns>>,
    pub tls: Option<Spanned<RawTls>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub url: Opt<String>,
    pub method: Opt<String>,
    #[serde(default)]
    pub headers: OrderedMap<Spanned<String>>,
    /// Header name → environment variable holding its value.
    #[serde(default)]
    pub headers_env: OrderedMap<Spanned<String>>,
    pub body: Option<String>,
    pub follow_redirects: Option<bool>,
    pub tls_verify: Option<bool>,
    pub max_body_bytes: Opt<i64>,
    pub expect: Option<Spanned<RawHttpExpect>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpExpect {
    pub status: Opt<StatusCodes>,
    pub body_contains: Option<String>,
    pub body_regex: Opt<String>,
    #[serde(default)]
    pub json: OrderedMap<Spanned<serde_json::Value>>,
    pub max_latency: Opt<String>,
    pub cert_min_days: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub host: Opt<String>,
    pub port: Opt<i64>,
    pub tls: Option<bool>,
    pub tls_verify: Option<bool>,
    pub server_name: Opt<String>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub cert_min_days: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub name: Opt<String>,
    pub record: Opt<String>,
    pub server: Opt<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub expect: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub host: Opt<String>,
    pub port: Opt<i64>,
    pub server_name: Opt<String>,
    pub tls_verify: Option<bool>,
    pub cert_min_days: Opt<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub objective: Opt<f64>,
    pub window: Opt<String>,
    pub latency: Option<Spanned<RawLatency>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    pub threshold: Opt<String>,
    pub objective: Opt<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncident {
    pub open_after: Opt<i64>,
    pub resolve_after: Opt<i64>,
    pub burn_rate_alerts: Option<bool>,
    pub severity: Opt<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub notify: Vec<Spanned<String>>,
}

/// A list key written with no value (`notifiers:` with every entry
/// commented out) means an empty list, not a type error.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A YAML mapping kept in file order. Headers and JSON expectations are
/// applied in the order written; a `BTreeMap` would sort them. Keys stay plain
/// strings so error paths name them (`response_targets.P1.restore`); problems
/// about an entry point at its (spanned) value instead.
#[derive(Debug)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }

            // A key with no value (`headers:`) is an empty mapping.
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    entries.push((k, v));
                }
                Ok(OrderedMap(entries))
            }
        }

        // `deserialize_map` would reject null before the visitor sees it.
        deserializer.deserialize_any(MapVisitor(PhantomData))
    }
}

/// `expect.status`: one code or a list of codes. Kept as `i64` so that an
/// out-of-range code is reported by validation with a useful message rather
/// than as a serde overflow.
#[derive(Debug)]
pub struct StatusCodes(pub Vec<i64>);

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;

        impl<'de> Visitor<'de> for StatusVisitor {
            type Value = StatusCodes;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code or a list of status codes")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StatusCodes(vec![v]))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StatusCodes(vec![i64::try_from(v).unwrap_or(i64::MAX)]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut codes = Vec::new();
                while let Some(code) = seq.next_element::<i64>()? {
                    codes.push(code);
                }
                Ok(StatusCodes(codes))
            }
        }

        deserializer.deserialize_any(StatusVisitor)
    }
}

/// Read the YAML into [`RawConfig`]. serde stops at the first syntax, type or
/// unknown-key error; that one is returned with its location and key path.
pub fn parse(text: &str, file: &str) -> Result<RawConfig, Problem> {
    parse_as(text, file)
}

/// Read an included file into [`RawFragment`]. A key only the main file may
/// set is named as such.
pub fn parse_fragment(text: &str, file: &str) -> Result<RawFragment, Problem> {
    parse_as(text, file).map_err(|mut p: Problem| {
        let key = p.key_path.as_str();
        if MAIN_ONLY_KEYS.contains(&key) && p.message.starts_with("unknown key") {
            p.message = format!("`{key}` may only be set in the main config file");
            p.hint = Some(
                "an included file holds `services`, `notifiers` and `maintenance`".to_string(),
            );
        }
        p
    })
}

fn parse_as<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    file: &str,
) -> Result<T, Problem> {
    parse_within(text, file, budget())
}

fn parse_within<T: serde::de::DeserializeOwned + Default>(
    text: &str,
    file: &str,
    budget: serde_saphyr::Budget,
) -> Result<T, Problem> {
    // An empty file (or only comments) is an empty config; validation then
    // says what is missing instead of the parser saying "unexpected end".
    let has_content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
    if !has_content {
        return Ok(T::default());
    }
    let mut options = serde_saphyr::Options::default();
    // We render our own one-line messages; the snippet would only be dropped.
    options.with_snippet = false;
    options.budget = Some(budget);
    // Fast path first: tracking the key path costs an allocation per key,
    // a third of the parse time of a 100 000-check file. Only a file that
    // fails is parsed again with tracking, to name the key in the message.
    if let Ok(raw) = serde_saphyr::from_str_with_options(text, options.clone()) {
        return Ok(raw);
    }
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = key_path(e.path());
            e.into_inner()
        })
    })
    .map_err(|e| problem_from_serde(&e, path, text, file))
}

/// Most YAML nodes (keys, scalars, lists, maps) one file may hold. A plain
/// check takes 8 to 40 nodes, so this admits well over 100 000 checks per
/// file while still bounding what a hostile file can make the parser do.
pub const MAX_NODES: usize = 10_000_000;

/// The parser's resource limits, sized for configs of 100 000 checks (the
/// library's defaults stop at 250 000 nodes, about 25 000 checks). Nesting
/// depth, aliases and anchors keep the library's defaults: a config needs
/// none of them in bulk.
fn budget() -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_nodes = MAX_NODES;
    // Every node is an event, plus one end event per list and map.
    b.max_events = 2 * MAX_NODES;
    b.max_total_scalar_bytes = super::limits::MAX_FILE_BYTES;
    b.max_reader_input_bytes = Some(super::limits::MAX_FILE_BYTES);
    // `!include` is not a sentinel feature (`include:` is).
    b.max_inclusion_depth = 0;
    b
}

/// A parser limit, said in words: what was too much and what to do.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> (String, Option<String>) {
    use serde_saphyr::budget::BudgetBreach as B;
    let split = Some("split the services over several files with `include:`".to_string());
    match breach {
        B::Nodes { .. } | B::Events { .. } => (
            format!("the file has more than {MAX_NODES} YAML nodes (keys, values, lists and maps)"),
            split,
        ),
        B::ScalarBytes { .. } | B::InputBytes { .. } => (
            format!(
                "the file holds more than {} MiB of text",
                super::limits::MAX_FILE_BYTES / (1024 * 1024)
            ),
            split,
        ),
        B::Depth { depth } => (
            format!("lists and maps are nested {depth} deep, more than a config needs"),
            None,
        ),
        B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => (
            "too many YAML anchors or aliases (`&name` / `*name`)".to_string(),
            Some("repeat the settings or use `defaults:` instead of anchors".to_string()),
        ),
        B::MergeKeys { .. } => ("too many YAML merge keys (`<<:`)".to_string(), None),
        B::Documents { .. } => (
            "too many YAML documents (`---`) in one file".to_string(),
            Some("a config file is one document".to_string()),
        ),
        B::InclusionDepth { .. } => (
            "`!include` tags are not supported".to_string(),
            Some("list more files under the top-level `include:` key".to_string()),
        ),
        _ => (
            "the file is too large or too deeply structured to parse".to_string(),
            split,
        ),
    }
}

/// `services[0].checks[1].interval`, without the `value` hops that
/// [`Spanned`] adds on its way to the wrapped value.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key == "value" {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else if path == key || path.ends_with(&format!(".{key}")) {
        path.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn problem_from_serde(err: &serde_saphyr::Error, path: String, text: &str, file: &str) -> Problem {
    use serde_saphyr::Error as E;
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut problem = Problem {
        file: file.to_string(),
        line,
        column,
        key_path: path,
        message: String::new(),
        hint: None,
    };
    match err.without_snippet() {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            problem.key_path = join(&problem.key_path, field);
            problem.message = format!("unknown key `{field}`");
            problem.hint = Some(match suggest(field, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "valid keys here: {}",
                    expected
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        E::SerdeMissingField { field, .. } => {
            problem.key_path = join(&problem.key_path, field);
            problem.message = format!("missing required key `{field}`");
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => {
            problem.message = format!("expected {expected}, found {unexpected}");
        }
        E::InvalidScalar { ty, location } => {
            let found = location
                .span()
                .byte_offset()
                .zip(location.span().byte_len())
                .and_then(|(at, len)| text.get(at as usize..(at + len) as usize))
                .map(|s| format!(", found `{s}`"))
                .unwrap_or_default();
            problem.message = format!("expected {}{found}", describe_type(ty));
        }
        E::Unexpected { expected, .. } => {
            problem.message = match *expected {
                "mapping start" => "expected a mapping of `key: value` pairs".to_string(),
                "sequence start" => "expected a list (`- item` lines or `[a, b]`)".to_string(),
                other => format!("expected {other}"),
            };
        }
        E::Budget { breach, .. } => {
            let (message, hint) = budget_message(breach);
            problem.message = message;
            problem.hint = hint;
        }
        E::DuplicateMappingKey { key: Some(key), .. } => {
            problem.key_path = join(&problem.key_path, key);
            problem.message = format!("duplicate key `{key}`");
        }
        other => {
            let text = other.to_string();
            // The generic rendering appends the location we already print.
            let text = match text.rfind(" at line ") {
                Some(i) => &text[..i],
                None => &text,
            };
            problem.message = text.lines().next().unwrap_or_default().trim().to_string();
        }
    }
    problem
}

/// Rust scalar type names as an operator would say them.
fn describe_type(ty: &str) -> String {
    match ty {
        "u8" => "a whole number 0..=255".into(),
        "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "bool" => "`true` or `false`".into(),
        other => format!("a value of type {other}"),
    }
}

/// The closest candidate to a misspelt `word`: edit distance of at most 2, or
/// one being a prefix of the other. `None` when nothing is close.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase();
            let d = edit_distance(&lower, &cl);
            let prefix = !lower.is_empty() && (cl.starts_with(&lower) || lower.starts_with(&cl));
            // A prefix (`time` for `timeout`) beats a short accidental distance.
            (d <= 2 || prefix).then_some(((!prefix, d), c))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(word: &str, expected: Option<&str>) {
        let keys = ["interval", "timeout", "name", "http", "tcp", "dns", "tls"];
        assert_eq!(suggest(word, keys), expected, "{word}");
    }

    #[test]
    fn suggestions() {
        check("intervl", Some("interval"));
        check("Interval", Some("interval"));
        check("timout", Some("timeout"));
        check("time", Some("timeout"));
        check("htp", Some("http"));
        check("frobnicate", None);
    }

    #[test]
    fn a_node_budget_breach_is_said_in_words_with_its_place() {
        let mut b = budget();
        b.max_nodes = 12;
        let text = "services:\n  - name: a\n    checks:\n      - name: x\n        tcp: { host: h, port: 1 }\n  - name: b\n";
        let p = parse_within::<RawConfig>(text, "t.yaml", b).unwrap_err();
        assert_eq!(
            p.to_string(),
            "t.yaml:5:14: services[0].checks[0]: the file has more than 10000000 YAML nodes (keys, values, lists and maps) — split the services over several files with `include:`"
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
