//! Human updates on an incident (`POST /api/v1/incidents/{id}/updates`):
//! what a person tells the users and the team, stored on the incident and
//! announced as `incident.updated`.
//!
//! An update is communication only: a `resolved` update does not resolve
//! the incident (recovery or the resolve API does), and no update changes
//! the incident's state, severity or response figures.
//!
//! Rules (the API answers 409 when one is broken):
//! - an open incident takes updates;
//! - a resolved one takes them for [`UPDATES_AFTER_RESOLVE`] after it was
//!   resolved (the final "resolved" word, a post-mortem note), then no more;
//! - an incident keeps at most [`MAX_UPDATES`] (its whole body is written
//!   with every change).

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Change, ChangeKind, Incident, IncidentError, State, change};

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// Most updates one incident keeps.
pub const MAX_UPDATES: usize = 100;

/// How long after its resolution an incident still takes updates.
pub const UPDATES_AFTER_RESOLVE: Duration = Duration::from_secs(7 * 86_400);

/// The status a person gives with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl UpdateStatus {
    /// Every status, in the order of an incident's life.
    pub const ALL: [UpdateStatus; 4] = [
        UpdateStatus::Investigating,
        UpdateStatus::Identified,
        UpdateStatus::Monitoring,
        UpdateStatus::Resolved,
    ];

    /// The wire name: `investigating`, `identified`, `monitoring`, `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateStatus::Investigating => "investigating",
            UpdateStatus::Identified => "identified",
            UpdateStatus::Monitoring => "monitoring",
            UpdateStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<UpdateStatus> {
        UpdateStatus::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// As people read it: `Investigating`, `Identified`, ...
    pub fn text(self) -> &'static str {
        match self {
            UpdateStatus::Investigating => "Investigating",
            UpdateStatus::Identified => "Identified",
            UpdateStatus::Monitoring => "Monitoring",
            UpdateStatus::Resolved => "Resolved",
        }
    }
}

/// One human update, as stored on the incident. `by` is for the team (the
/// API and the notifiers); the public status page never shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub at: Timestamp,
    pub status: UpdateStatus,
    pub message: String,
    pub by: String,
}

/// Why a message cannot be posted: the API's 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("`message` is empty")]
    Empty,
    #[error("`message` is longer than {MAX_MESSAGE_CHARS} characters ({0})")]
    TooLong(usize),
    #[error(
        "`message` contains a control character (U+{0:04X}); only line breaks and tabs are allowed"
    )]
    Control(u32),
}

/// The message as stored: trimmed; not empty, at most
/// [`MAX_MESSAGE_CHARS`], no control characters but line breaks and tabs
/// (they could not be carried by the Atom feed's XML).
pub fn check_message(message: &str) -> Result<String, MessageError> {
    let m = message.trim();
    if m.is_empty() {
        return Err(MessageError::Empty);
    }
    let n = m.chars().count();
    if n > MAX_MESSAGE_CHARS {
        return Err(MessageError::TooLong(n));
    }
    if let Some(c) = m
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(MessageError::Control(u32::from(c)));
    }
    Ok(m.to_string())
}

/// Adds `update` to `inc` (the latest version of the incident) at `now`,
/// following the rules of the module docs; the change notifies as
/// `incident.updated`.
pub fn post(inc: &mut Incident, update: Update, now: Timestamp) -> Result<Change, IncidentError> {
    if inc.state == State::Resolved {
        let resolved = inc.resolved_at.unwrap_or(inc.opened_at);
        let window = jiff::SignedDuration::try_from(UPDATES_AFTER_RESOLVE)
            .unwrap_or(jiff::SignedDuration::MAX);
        if now.duration_since(resolved) > window {
            return Err(IncidentError::UpdatesClosed {
                id: inc.id.clone(),
                why: format!(
                    "it was resolved more than {} days ago",
                    UPDATES_AFTER_RESOLVE.as_secs() / 86_400
                ),
            });
        }
    }
    if inc.updates.len() >= MAX_UPDATES {
        return Err(IncidentError::UpdatesClosed {
            id: inc.id.clone(),
            why: format!("it has {MAX_UPDATES} updates, the most one incident keeps"),
        });
    }
    inc.updates.push(update);
    Ok(change(ChangeKind::UpdatePosted, inc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_capped_in_characters_and_free_of_control_characters() {
        fn check(message: &str, expected: Result<&str, MessageError>) {
            assert_eq!(
                check_message(message),
                expected.map(str::to_string),
                "{message:?}"
            );
        }
        check("  Fixed.\n", Ok("Fixed."));
        check("line one\nline two\ttab\r\n", Ok("line one\nline two\ttab"));
        check("", Err(MessageError::Empty));
        check(" \n\t ", Err(MessageError::Empty));
        check("bell\u{7}", Err(MessageError::Control(7)));
        check("nul\u{0}x", Err(MessageError::Control(0)));
        check("esc\u{1b}[31m", Err(MessageError::Control(0x1b)));
        // Characters, not bytes: 2 000 three-byte characters are fine.
        let most = "€".repeat(MAX_MESSAGE_CHARS);
        check(&most, Ok(most.as_str()));
        check(
            &format!("{most}€"),
            Err(MessageError::TooLong(MAX_MESSAGE_CHARS + 1)),
        );
    }

    #[test]
    fn statuses_parse_only_their_wire_names() {
        for s in UpdateStatus::ALL {
            assert_eq!(UpdateStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for bad in ["", "Resolved", "fixed", " monitoring"] {
            assert_eq!(UpdateStatus::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_incident_row_written_before_updates_existed_still_loads() {
        let old = r#"{"id":"inc-web-1-1","dedup_key":"sentinel/web/inc-web-1-1","service":"web",
            "severity":"P1","title":"web is failing","reason":"r","state":"resolved",
            "trigger":{"kind":"checks_failing"},"page_level":true,
            "impact_started_at":"2026-01-02T10:00:00Z","opened_at":"2026-01-02T10:01:00Z",
            "acknowledged_at":null,"acknowledged_by":null,"ack_note":null,
            "restored_at":"2026-01-02T10:09:00Z","resolved_at":"2026-01-02T10:10:00Z",
            "resolved_by":"auto","events_emitted":2}"#;
        let inc = Incident::from_json(old).unwrap();
        assert!(inc.updates.is_empty());
        assert_eq!(inc.events_emitted, 2);
    }
}
