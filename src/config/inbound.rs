//! The `inbound:` section: which providers may tell sentinel that a person
//! acknowledged or resolved an incident there, and which environment
//! variable holds each one's signing secret or token. A provider left out
//! has no hook (its endpoint answers 404).

/// A provider with an inbound hook (`POST /api/v1/hooks/{name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookProvider {
    PagerDuty,
    Opsgenie,
    Slack,
    ServiceNow,
    Jira,
}

impl HookProvider {
    pub const ALL: [HookProvider; 5] = [
        HookProvider::PagerDuty,
        HookProvider::Opsgenie,
        HookProvider::Slack,
        HookProvider::ServiceNow,
        HookProvider::Jira,
    ];

    /// The path segment, config key and `provider` label.
    pub fn as_str(self) -> &'static str {
        match self {
            HookProvider::PagerDuty => "pagerduty",
            HookProvider::Opsgenie => "opsgenie",
            HookProvider::Slack => "slack",
            HookProvider::ServiceNow => "servicenow",
            HookProvider::Jira => "jira",
        }
    }

    pub fn parse(name: &str) -> Option<HookProvider> {
        HookProvider::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The key under `inbound.<provider>` that names the variable.
    pub fn env_key(self) -> &'static str {
        match self {
            HookProvider::PagerDuty | HookProvider::Jira => "secret_env",
            HookProvider::Opsgenie | HookProvider::ServiceNow => "token_env",
            HookProvider::Slack => "signing_secret_env",
        }
    }
}

/// The typed `inbound:` section: per provider, the name of the environment
/// variable holding its credential (`None`: no hook for that provider).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    /// `pagerduty.secret_env`: the signing secret of the v3 webhook
    /// subscription (`X-PagerDuty-Signature`).
    pub pagerduty: Option<String>,
    /// `opsgenie.token_env`: the token the outgoing webhook sends (bearer,
    /// or the password of basic auth).
    pub opsgenie: Option<String>,
    /// `slack.signing_secret_env`: the Slack app's signing secret
    /// (`X-Slack-Signature`). Also turns on the Acknowledge / Resolve
    /// buttons in Slack messages.
    pub slack: Option<String>,
    /// `servicenow.token_env`: the token the outbound REST message sends
    /// (bearer, or the password of basic auth).
    pub servicenow: Option<String>,
    /// `jira.secret_env`: the secret of the Jira webhook (`X-Hub-Signature`).
    pub jira: Option<String>,
}

impl Inbound {
    /// The variable holding `provider`'s credential; `None` when the
    /// provider is not configured.
    pub fn env_var(&self, provider: HookProvider) -> Option<&str> {
        match provider {
            HookProvider::PagerDuty => self.pagerduty.as_deref(),
            HookProvider::Opsgenie => self.opsgenie.as_deref(),
            HookProvider::Slack => self.slack.as_deref(),
            HookProvider::ServiceNow => self.servicenow.as_deref(),
            HookProvider::Jira => self.jira.as_deref(),
        }
    }

    pub fn set(&mut self, provider: HookProvider, var: String) {
        let slot = match provider {
            HookProvider::PagerDuty => &mut self.pagerduty,
            HookProvider::Opsgenie => &mut self.opsgenie,
            HookProvider::Slack => &mut self.slack,
            HookProvider::ServiceNow => &mut self.servicenow,
            HookProvider::Jira => &mut self.jira,
        };
        *slot = Some(var);
    }

    /// The configured providers, in [`HookProvider::ALL`] order.
    pub fn providers(&self) -> impl Iterator<Item = HookProvider> + '_ {
        HookProvider::ALL
            .into_iter()
            .filter(|p| self.env_var(*p).is_some())
    }
}
