//! Inbound hooks: providers (PagerDuty, Opsgenie / Jira Service
//! Management, Slack, ServiceNow, Jira) telling sentinel that a person
//! acknowledged or resolved an incident there.
//!
//! This module is PURE: [`verify`] checks each provider's signature or
//! credential, [`parse`] turns its payload into an [`Intent`], and
//! [`InboundStats`] counts the outcomes (`sentinel_inbound_hooks_total`).
//! The HTTP handler (`http::hooks`) reads the secret from the environment,
//! finds the incident (a stored ticket is looked up in the ticket book),
//! applies the action through the engine's incident command (the write path
//! of the API's acknowledge and resolve) and answers.

pub mod parse;
pub mod slack;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};

pub use parse::{Action, ActionKind, Intent, ParseError, Ref, SlackReply};
pub use verify::AuthError;

use crate::config::HookProvider;
use crate::incident::Source;

/// How long PagerDuty event ids acted on are remembered: PagerDuty retries
/// an unanswered delivery for about 20 minutes; a week covers that and a
/// sentinel that was down meanwhile.
pub const DELIVERY_ID_RETENTION_SECS: i64 = 7 * 86_400;

/// The incident source a provider's actions are recorded with.
pub fn source(provider: HookProvider) -> Source {
    match provider {
        HookProvider::PagerDuty => Source::PagerDuty,
        HookProvider::Opsgenie => Source::Opsgenie,
        HookProvider::Slack => Source::Slack,
        HookProvider::ServiceNow => Source::ServiceNow,
        HookProvider::Jira => Source::Jira,
    }
}

/// What became of one hook request: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookResult {
    /// It acknowledged or resolved an incident.
    Applied,
    /// Answered 2xx and nothing changed: a repeat acknowledgement (kept in
    /// the incident's list), an unknown or resolved incident, an event
    /// sentinel does not act on, a PagerDuty delivery already acted on.
    Ignored,
    /// Refused: bad or missing signature or credential (401), a body that
    /// is not the provider's (400), or sentinel shutting down (503).
    Rejected,
}

impl HookResult {
    pub const ALL: [HookResult; 3] = [
        HookResult::Applied,
        HookResult::Ignored,
        HookResult::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookResult::Applied => "applied",
            HookResult::Ignored => "ignored",
            HookResult::Rejected => "rejected",
        }
    }
}

/// Counts of hook requests per provider and result (since start).
#[derive(Debug, Default)]
pub struct InboundStats {
    counts: [[AtomicU64; 3]; 5],
}

impl InboundStats {
    fn slot(&self, provider: HookProvider, result: HookResult) -> &AtomicU64 {
        let p = HookProvider::ALL
            .iter()
            .position(|x| *x == provider)
            .unwrap_or(0);
        let r = HookResult::ALL
            .iter()
            .position(|x| *x == result)
            .unwrap_or(0);
        &self.counts[p][r]
    }

    pub fn record(&self, provider: HookProvider, result: HookResult) {
        self.slot(provider, result).fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, provider: HookProvider, result: HookResult) -> u64 {
        self.slot(provider, result).load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_provider_and_result() {
        let s = InboundStats::default();
        s.record(HookProvider::Jira, HookResult::Rejected);
        s.record(HookProvider::Jira, HookResult::Rejected);
        s.record(HookProvider::Slack, HookResult::Applied);
        for p in HookProvider::ALL {
            for r in HookResult::ALL {
                let expected = match (p, r) {
                    (HookProvider::Jira, HookResult::Rejected) => 2,
                    (HookProvider::Slack, HookResult::Applied) => 1,
                    _ => 0,
                };
                assert_eq!(s.get(p, r), expected, "{p:?} {r:?}");
            }
        }
    }

    #[test]
    fn every_provider_is_its_own_source() {
        for p in HookProvider::ALL {
            assert_eq!(source(p).as_str(), p.as_str());
        }
    }
}
