//! Slack incoming webhook: a plain `text` fallback (notifications, old
//! clients) and Block Kit `blocks` with the fields on-call needs at a glance.

use serde_json::{Value, json};

use super::{EscalationCause, Event};
use crate::incident::EventType;

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

pub fn body(event: &Event) -> Value {
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
    json!({
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Service:*\n{}", inc.service)},
                {"type": "mrkdwn", "text": format!("*Severity:*\n{}", inc.severity)},
                {"type": "mrkdwn", "text": format!("*Availability:*\n{}", percent(inc.availability_ratio))},
                {"type": "mrkdwn", "text": format!("*Error budget left:*\n{}", percent(inc.error_budget_remaining_ratio))},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": detail}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!(
                    "<{}|Acknowledge> · <{}|Resolve> · `{}`",
                    inc.links.ack, inc.links.resolve, inc.id
                )},
            ]},
        ],
    })
}
