//! The config file as written: serde structs that mirror its keys one for one.
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
    pub inbound: Option<Spanned<RawInbound>>,
}

/// `inbound:`: one block per provider, each naming its credential's variable.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInbound {
    pub pagerduty: Option<Spanned<RawHookSecret>>,
    pub opsgenie: Option<Spanned<RawHookToken>>,
    pub slack: Option<Spanned<RawHookSlack>>,
    pub servicenow: Option<Spanned<RawHookToken>>,
    pub jira: Option<Spanned<RawHookSecret>>,
}

/// `inbound.pagerduty`, `inbound.jira`: a signing secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHookSecret {
    pub secret_env: Opt<String>,
}

/// `inbound.opsgenie`, `inbound.servicenow`: a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHookToken {
    pub token_env: Opt<String>,
}

/// `inbound.slack`: the app's signing secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHookSlack {
    pub signing_secret_env: Opt<String>,
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

/// An included file as read, with its name as problems give it.
#[derive(Debug)]
pub struct IncludedFile {
    pub file: String,
    pub raw: RawFragment,
}

/// Keys only the main file may set (an included file that sets one gets a
/// precise message instead of "unknown key").
pub const MAIN_ONLY_KEYS: [&str; 8] = [
    "include",
    "server",
    "storage",
    "defaults",
    "response_targets",
    "metrics",
    "status_page",
    "inbound",
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
    pub worker_threads: Opt<i64>,
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
    /// `alertmanager` only.
    pub repost_every: Opt<String>,
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
    pub escalate: Option<Spanned<Vec<Spanned<String>>>>,
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
