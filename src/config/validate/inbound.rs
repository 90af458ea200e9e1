//! The `inbound:` section: per provider, the variable holding the signing
//! secret or token its hook checks. A variable that is not set is a warning
//! (the hook then refuses every request with 401), like every `_env` key.

use serde_saphyr::Spanned;

use super::{Validator, join_key, pos};
use crate::config::raw::{Opt, RawInbound};
use crate::config::{HookProvider, Inbound};

/// Where a provider's block starts, and its one key as written.
type Block<'r> = (&'r serde_saphyr::Location, &'r Opt<String>);

impl Validator<'_> {
    pub(super) fn inbound(&mut self, raw: Option<&Spanned<RawInbound>>) -> Inbound {
        let mut inbound = Inbound::default();
        let Some(raw) = raw else {
            return inbound;
        };
        let r = &raw.value;
        let blocks: [(HookProvider, Option<Block<'_>>); 5] = [
            (
                HookProvider::PagerDuty,
                r.pagerduty
                    .as_ref()
                    .map(|b| (&b.referenced, &b.value.secret_env)),
            ),
            (
                HookProvider::Opsgenie,
                r.opsgenie
                    .as_ref()
                    .map(|b| (&b.referenced, &b.value.token_env)),
            ),
            (
                HookProvider::Slack,
                r.slack
                    .as_ref()
                    .map(|b| (&b.referenced, &b.value.signing_secret_env)),
            ),
            (
                HookProvider::ServiceNow,
                r.servicenow
                    .as_ref()
                    .map(|b| (&b.referenced, &b.value.token_env)),
            ),
            (
                HookProvider::Jira,
                r.jira
                    .as_ref()
                    .map(|b| (&b.referenced, &b.value.secret_env)),
            ),
        ];
        for (provider, block) in blocks {
            let Some((at, key)) = block else {
                continue;
            };
            let path = join_key("inbound", provider.as_str());
            let env_key = provider.env_key();
            let Some(written) = key else {
                self.missing(pos(at), &path, env_key);
                continue;
            };
            let key_path = join_key(&path, env_key);
            let Some(var) = self.env_name(key, &key_path) else {
                continue;
            };
            let consequence = format!(
                "the {} hook answers 401 to every request",
                provider.as_str()
            );
            self.env_value(written, &var, &key_path, &consequence);
            inbound.set(provider, var);
        }
        inbound
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{HookProvider, parse_with_env};

    const SERVICES: &str = "services:\n  - name: web\n    checks:\n      - name: home\n        http: { url: http://127.0.0.1:1/ }\n";

    #[test]
    fn each_provider_names_its_variable_and_unset_ones_warn() {
        let yaml = format!(
            "{SERVICES}inbound:\n  pagerduty: {{ secret_env: PD_SECRET }}\n  opsgenie: {{ token_env: OG_TOKEN }}\n  slack: {{ signing_secret_env: SLACK_SECRET }}\n  servicenow: {{ token_env: SNOW_TOKEN }}\n  jira: {{ secret_env: JIRA_SECRET }}\n"
        );
        let env = |v: &str| (v == "PD_SECRET").then(|| "x".to_string());
        let loaded = parse_with_env(&yaml, "t.yaml", &env).unwrap();
        let inbound = &loaded.config.inbound;
        assert_eq!(inbound.env_var(HookProvider::PagerDuty), Some("PD_SECRET"));
        assert_eq!(inbound.env_var(HookProvider::Opsgenie), Some("OG_TOKEN"));
        assert_eq!(inbound.env_var(HookProvider::Slack), Some("SLACK_SECRET"));
        assert_eq!(
            inbound.env_var(HookProvider::ServiceNow),
            Some("SNOW_TOKEN")
        );
        assert_eq!(inbound.env_var(HookProvider::Jira), Some("JIRA_SECRET"));
        let warned: Vec<String> = loaded
            .warnings
            .iter()
            .map(|w| w.problem.key_path.clone())
            .filter(|k| k.starts_with("inbound"))
            .collect();
        assert_eq!(
            warned,
            [
                "inbound.opsgenie.token_env",
                "inbound.slack.signing_secret_env",
                "inbound.servicenow.token_env",
                "inbound.jira.secret_env",
            ]
        );
    }

    #[test]
    fn a_block_without_its_key_or_with_a_bad_name_is_a_problem() {
        let yaml = format!(
            "{SERVICES}inbound:\n  pagerduty: {{}}\n  jira: {{ secret_env: \"not a name\" }}\n"
        );
        let err = parse_with_env(&yaml, "t.yaml", &|_: &str| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("inbound.pagerduty.secret_env: missing required key `secret_env`"),
            "{err}"
        );
        assert!(
            err.contains(
                "inbound.jira.secret_env: `not a name` is not an environment variable name"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_provider_left_out_has_no_hook_and_unknown_keys_are_refused() {
        let yaml = format!("{SERVICES}inbound:\n  slack: {{ signing_secret_env: S }}\n");
        let loaded = parse_with_env(&yaml, "t.yaml", &|_: &str| None).unwrap();
        let on: Vec<HookProvider> = loaded.config.inbound.providers().collect();
        assert_eq!(on, [HookProvider::Slack]);
        let yaml = format!("{SERVICES}inbound:\n  slack: {{ secret_env: S }}\n");
        let err = parse_with_env(&yaml, "t.yaml", &|_: &str| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signing_secret_env"), "{err}");
        let yaml = format!("{SERVICES}inbound:\n  teams: {{ token_env: T }}\n");
        let err = parse_with_env(&yaml, "t.yaml", &|_: &str| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key"), "{err}");
    }

    #[test]
    fn slack_notifiers_carry_buttons_exactly_when_inbound_slack_is_set() {
        use crate::config::NotifierKind;
        let notifiers = "notifiers:\n  - { name: chat, type: slack, url: https://hooks.slack.com/services/T/B/x }\n";
        let buttons = |inbound: &str| {
            let yaml = format!("{SERVICES}{notifiers}{inbound}");
            let loaded = parse_with_env(&yaml, "t.yaml", &|_: &str| None).unwrap();
            match &loaded.config.notifiers[0].kind {
                NotifierKind::Slack { buttons, .. } => *buttons,
                other => panic!("{other:?}"),
            }
        };
        assert!(!buttons(""));
        assert!(!buttons("inbound:\n  jira: { secret_env: J }\n"));
        assert!(buttons("inbound:\n  slack: { signing_secret_env: S }\n"));
    }
}
