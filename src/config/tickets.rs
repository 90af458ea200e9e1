//! Settings of the ticket connectors (`servicenow`, `jira`, `opsgenie`
//! notifiers): where the provider is, which environment variables hold the
//! credentials, what to set on a new record, and how sentinel severities map
//! to the provider's urgency / priority. Defaults live here, next to the
//! types; `validate::tickets` builds these from the raw file.

use std::collections::BTreeMap;

/// `type: servicenow`: one record per incident in a Table API table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNowSpec {
    /// The instance, e.g. `https://acme.service-now.com` (any path is kept:
    /// requests go to `{url}/api/now/table/{table}`).
    pub url: url::Url,
    pub auth: ServiceNowAuth,
    /// Default `incident`.
    pub table: String,
    /// Extra fields set on create, in file order (values as ServiceNow
    /// stores them: strings).
    pub fields: Vec<(String, String)>,
    /// `close_code` sent with the resolution. Default `Solution provided`.
    pub close_code: String,
    /// Severity → impact and urgency; see [`ServiceNowSpec::urgency`].
    pub severity_map: BTreeMap<String, SnowUrgency>,
}

/// How sentinel authenticates to ServiceNow; the values are environment
/// variable names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceNowAuth {
    Basic {
        username_env: String,
        password_env: String,
    },
    /// An OAuth access token sent as `Authorization: Bearer`.
    Bearer { token_env: String },
}

/// ServiceNow `impact` and `urgency`, each 1 (high) ..= 3 (low). The
/// instance derives `priority` from the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnowUrgency {
    pub impact: u8,
    pub urgency: u8,
}

/// The default ServiceNow mapping: with ServiceNow's default priority
/// lookup each P-number becomes the same priority (P1 → 1 Critical, P2 →
/// 2 High, P3 → 3 Moderate, P4 → 4 Low, P5 → 5 Planning).
pub const SERVICENOW_DEFAULT_MAP: [(&str, SnowUrgency); 5] = [
    ("P1", SnowUrgency::new(1, 1)),
    ("P2", SnowUrgency::new(1, 2)),
    ("P3", SnowUrgency::new(2, 2)),
    ("P4", SnowUrgency::new(2, 3)),
    ("P5", SnowUrgency::new(3, 3)),
];

impl SnowUrgency {
    pub const fn new(impact: u8, urgency: u8) -> Self {
        SnowUrgency { impact, urgency }
    }
}

/// Default `table` of a servicenow notifier.
pub const SERVICENOW_DEFAULT_TABLE: &str = "incident";
/// Default `close_code` of a servicenow notifier.
pub const SERVICENOW_DEFAULT_CLOSE_CODE: &str = "Solution provided";

impl ServiceNowSpec {
    /// Impact and urgency for `severity`: the configured entry, else the
    /// default map; `None` (send neither, the table's default applies) for a
    /// severity in neither.
    pub fn urgency(&self, severity: &str) -> Option<SnowUrgency> {
        self.severity_map.get(severity).copied().or_else(|| {
            SERVICENOW_DEFAULT_MAP
                .iter()
                .find(|(s, _)| *s == severity)
                .map(|(_, u)| *u)
        })
    }
}

/// `type: jira`: one issue per incident, Jira Cloud REST API v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraSpec {
    /// The site, e.g. `https://acme.atlassian.net`.
    pub url: url::Url,
    /// Variable holding the account's e-mail address (basic auth user).
    pub user_env: String,
    /// Variable holding the API token.
    pub token_env: String,
    /// Project key, e.g. `OPS`.
    pub project: String,
    /// Issue type name. Default `Incident`.
    pub issue_type: String,
    /// Name of the transition (or of the status it leads to) that resolves
    /// an issue. Default `Done`.
    pub resolve_transition: String,
    /// Extra fields set on create (JSON values as Jira's create API takes
    /// them, e.g. `components: [{name: Network}]`), in file order.
    pub fields: Vec<(String, serde_json::Value)>,
    /// Severity → priority name; see [`JiraSpec::priority`].
    pub severity_map: BTreeMap<String, String>,
}

/// The default Jira mapping onto Jira's default priority scheme.
pub const JIRA_DEFAULT_MAP: [(&str, &str); 5] = [
    ("P1", "Highest"),
    ("P2", "High"),
    ("P3", "Medium"),
    ("P4", "Low"),
    ("P5", "Lowest"),
];

pub const JIRA_DEFAULT_ISSUE_TYPE: &str = "Incident";
pub const JIRA_DEFAULT_RESOLVE_TRANSITION: &str = "Done";

impl JiraSpec {
    /// The priority name for `severity`: configured, else default; `None`
    /// (no priority sent, the project's default applies) for a severity in
    /// neither.
    pub fn priority(&self, severity: &str) -> Option<&str> {
        self.severity_map
            .get(severity)
            .map(String::as_str)
            .or_else(|| {
                JIRA_DEFAULT_MAP
                    .iter()
                    .find(|(s, _)| *s == severity)
                    .map(|(_, p)| *p)
            })
    }
}

/// `type: opsgenie`: one alert per incident (Alert API v2; Jira Service
/// Management Ops answers the same API under another base URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsgenieSpec {
    /// API base, e.g. `https://api.opsgenie.com` (`https://api.eu.opsgenie.com`,
    /// or `https://api.atlassian.com/jsm/ops/integration` for JSM Ops).
    pub url: url::Url,
    /// Variable holding the API integration key (`GenieKey`).
    pub api_key_env: String,
    /// Extra create fields (`responders`, `visibleTo`, `tags`, `entity`, ...),
    /// in file order.
    pub fields: Vec<(String, serde_json::Value)>,
    /// Severity → `P1`..`P5`; see [`OpsgenieSpec::priority`].
    pub severity_map: BTreeMap<String, String>,
}

/// Opsgenie's priorities; sentinel's P1..P5 map onto them as they are.
pub const OPSGENIE_PRIORITIES: [&str; 5] = ["P1", "P2", "P3", "P4", "P5"];

impl OpsgenieSpec {
    /// `P1`..`P5` for `severity`: configured, else the same name when it is
    /// one of Opsgenie's; `None` (Opsgenie's default, P3) otherwise.
    pub fn priority(&self, severity: &str) -> Option<&str> {
        self.severity_map
            .get(severity)
            .map(String::as_str)
            .or_else(|| OPSGENIE_PRIORITIES.iter().copied().find(|p| *p == severity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snow(map: &[(&str, SnowUrgency)]) -> ServiceNowSpec {
        ServiceNowSpec {
            url: url::Url::parse("https://acme.service-now.com").unwrap(),
            auth: ServiceNowAuth::Bearer {
                token_env: "T".into(),
            },
            table: "incident".into(),
            fields: Vec::new(),
            close_code: SERVICENOW_DEFAULT_CLOSE_CODE.into(),
            severity_map: map.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn servicenow_defaults_and_overrides() {
        let s = snow(&[
            ("P2", SnowUrgency::new(2, 2)),
            ("sev0", SnowUrgency::new(1, 1)),
        ]);
        let check = |sev: &str, expected: Option<(u8, u8)>| {
            assert_eq!(
                s.urgency(sev).map(|u| (u.impact, u.urgency)),
                expected,
                "{sev}"
            );
        };
        check("P1", Some((1, 1)));
        check("P2", Some((2, 2)));
        check("P3", Some((2, 2)));
        check("P4", Some((2, 3)));
        check("P5", Some((3, 3)));
        check("sev0", Some((1, 1)));
        check("critical", None);
    }

    #[test]
    fn jira_and_opsgenie_defaults_and_overrides() {
        let j = JiraSpec {
            url: url::Url::parse("https://acme.atlassian.net").unwrap(),
            user_env: "U".into(),
            token_env: "T".into(),
            project: "OPS".into(),
            issue_type: "Incident".into(),
            resolve_transition: "Done".into(),
            fields: Vec::new(),
            severity_map: [("P1".to_string(), "Blocker".to_string())].into(),
        };
        assert_eq!(j.priority("P1"), Some("Blocker"));
        assert_eq!(j.priority("P2"), Some("High"));
        assert_eq!(j.priority("P5"), Some("Lowest"));
        assert_eq!(j.priority("urgent"), None);
        let o = OpsgenieSpec {
            url: url::Url::parse("https://api.opsgenie.com").unwrap(),
            api_key_env: "K".into(),
            fields: Vec::new(),
            severity_map: [("sev1".to_string(), "P1".to_string())].into(),
        };
        assert_eq!(o.priority("P4"), Some("P4"));
        assert_eq!(o.priority("sev1"), Some("P1"));
        assert_eq!(o.priority("P6"), None);
    }
}
