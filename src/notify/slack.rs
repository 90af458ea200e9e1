//! Slack incoming webhook: a plain `text` fallback (notifications, old
//! clients) and Block Kit `blocks` with the fields on-call needs at a glance.
//!
//! With `buttons` (when `inbound.slack` is configured) a message about an
//! open incident ends with an `actions` block: **Acknowledge** (until the
//! incident is acknowledged) and **Resolve**, each with the incident id as
//! its `value`. Slack sends a press to the app's Request URL, the
//! `slack` inbound hook.

use serde_json::{Value, json};

use super::{EscalationCause, Event};
use crate::inbound::parse::{SLACK_ACK_ACTION, SLACK_ACTIONS_BLOCK, SLACK_RESOLVE_ACTION};
use crate::incident::{EventType, State};

fn headline(event: &Event) -> String {
    let inc = &event.incident;
    let verb = match event.kind {
        EventType::Opened => "opened",
        EventType::Acknowledged => "acknowledged",
        EventType::Resolved => "resolved",
        EventType::Escalated => "escalated",
        EventType::UpdatePosted => {
            let status = event.update.as_ref().map_or("", |u| u.status.text());
            return format!(
                "[{}] Incident update ({status}): {}",
                inc.severity, inc.title
            );
        }
    };
    format!("[{}] Incident {verb}: {}", inc.severity, inc.title)
}

/// Text a person wrote, safe in Slack `mrkdwn`: `&`, `<` and `>` escaped,
/// so it cannot mention `<!channel>` or hide a link.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `12.3%`, or `n/a` without an SLO.
fn percent(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "n/a".to_string(),
    }
}

pub fn body(event: &Event, buttons: bool) -> Value {
    let inc = &event.incident;
    let head = headline(event);
    let mut detail = format!("*Reason:* {}", inc.reason);
    if let Some(by) = &inc.acknowledged_by
        && event.kind == EventType::Acknowledged
    {
        detail.push_str(&format!("\n*Acknowledged by:* {by}"));
    }
    if let Some(u) = &event.update {
        detail.push_str(&format!(
            "\n*Update ({}):* {}\n*Posted by:* {}",
            u.status.text(),
            escaped(&u.message),
            escaped(&u.by)
        ));
    }
    if let Some(from) = &event.previous_severity {
        detail.push_str(&format!("\n*Escalated from:* {from}"));
    }
    if let Some(e) = &event.escalation
        && e.cause == EscalationCause::AcknowledgeTarget
    {
        detail.push_str(&format!("\n*Escalated:* {}", e.reason));
        if !e.notifiers.is_empty() {
            detail.push_str(&format!(" (told: {})", e.notifiers.join(", ")));
        }
    }
    if !inc.tickets.is_empty() {
        let list: Vec<String> = inc
            .tickets
            .iter()
            .map(|t| match &t.url {
                Some(u) => format!("<{u}|{}> ({})", t.key, t.notifier),
                None => format!("{} ({})", t.key, t.notifier),
            })
            .collect();
        detail.push_str(&format!("\n*Tickets:* {}", list.join(", ")));
    }
    let text = match &event.update {
        Some(u) => format!("{head} — {}", escaped(&u.message)),
        None => format!("{head} — {}", inc.reason),
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": head}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Service:*\n{}", inc.service)},
            {"type": "mrkdwn", "text": format!("*Severity:*\n{}", inc.severity)},
            {"type": "mrkdwn", "text": format!("*Availability:*\n{}", percent(inc.availability_ratio))},
            {"type": "mrkdwn", "text": format!("*Error budget left:*\n{}", percent(inc.error_budget_remaining_ratio))},
        ]}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": detail}}),
    ];
    if buttons && inc.state == State::Open {
        blocks.push(actions(&inc.id, inc.acknowledged_at.is_none()));
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("`{}`", inc.id)},
        ]}));
    } else {
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!(
                "<{}|Acknowledge> · <{}|Resolve> · `{}`",
                inc.links.ack, inc.links.resolve, inc.id
            )},
        ]}));
    }
    json!({ "text": text, "blocks": blocks })
}

/// The Block Kit `actions` block: Acknowledge (while `unacknowledged`) and
/// Resolve, each carrying the incident id.
fn actions(id: &str, unacknowledged: bool) -> Value {
    let button = |text: &str, action_id: &str| {
        json!({"type": "button", "action_id": action_id, "value": id,
               "text": {"type": "plain_text", "text": text}})
    };
    let mut elements = Vec::new();
    if unacknowledged {
        let mut ack = button("Acknowledge", SLACK_ACK_ACTION);
        ack["style"] = json!("primary");
        elements.push(ack);
    }
    elements.push(button("Resolve", SLACK_RESOLVE_ACTION));
    json!({"type": "actions", "block_id": SLACK_ACTIONS_BLOCK, "elements": elements})
}
