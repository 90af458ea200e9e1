//! The words every connector writes: the record's title and description,
//! the work note of an acknowledgement, an escalation or a human update,
//! the close notes.
//! Plain text lines; each provider formats them (Jira as ADF paragraphs).

use jiff::Timestamp;

use crate::incident::EventType;
use crate::notify::{EscalationCause, Event};

/// `[sentinel] <title>`, cut to `max` characters (Opsgenie 130, Jira 255)
/// on one line.
pub fn title(event: &Event, max: usize) -> String {
    let one_line: String = event
        .incident
        .title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(&format!("[sentinel] {}", one_line.trim()), max)
}

/// `s` cut to at most `max` characters, marked with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn percent(r: f64) -> String {
    format!("{:.3}%", r * 100.0)
}

/// The description lines of a new record.
pub fn description(event: &Event) -> Vec<String> {
    let i = &event.incident;
    let mut lines = vec![
        i.title.clone(),
        String::new(),
        format!("Service: {}", i.service),
        format!("Severity: {}", i.severity),
        format!("Reason: {}", i.reason),
        format!("Impact started: {}", ts(i.impact_started_at)),
        format!("Opened: {}", ts(i.opened_at)),
    ];
    if let Some(a) = i.availability_ratio {
        lines.push(format!("Availability over the SLO window: {}", percent(a)));
    }
    if let Some(b) = i.error_budget_remaining_ratio {
        lines.push(format!("Error budget left: {}", percent(b)));
    }
    lines.push(format!("Acknowledge (API, POST): {}", i.links.ack));
    lines.push(format!("Resolve (API, POST): {}", i.links.resolve));
    lines.push(format!("sentinel incident: {}", i.id));
    lines
}

/// The note for a later event: who acknowledged, what escalated, how it
/// was resolved, what a person posted.
pub fn note(event: &Event) -> String {
    let i = &event.incident;
    match event.kind {
        EventType::Opened => format!("Opened by sentinel: {}", i.reason),
        EventType::Acknowledged => {
            let by = i.acknowledged_by.as_deref().unwrap_or("someone");
            let at = i.acknowledged_at.map(ts).unwrap_or_default();
            match i.ack_note.as_deref().filter(|n| !n.trim().is_empty()) {
                Some(n) => format!("Acknowledged in sentinel by {by} at {at}: {n}"),
                None => format!("Acknowledged in sentinel by {by} at {at}."),
            }
        }
        EventType::Escalated => match &event.escalation {
            Some(e) if e.cause == EscalationCause::AcknowledgeTarget => {
                let told = if e.notifiers.is_empty() {
                    String::new()
                } else {
                    format!(" Escalation contacts notified: {}.", e.notifiers.join(", "))
                };
                format!("Escalated by sentinel: {}.{told}", e.reason)
            }
            _ => format!(
                "Severity raised by sentinel from {} to {}: {}",
                event.previous_severity.as_deref().unwrap_or("?"),
                i.severity,
                i.reason
            ),
        },
        EventType::Resolved => close_notes(event),
        EventType::UpdatePosted => match &event.update {
            Some(u) => format!(
                "Update ({}) posted in sentinel by {} at {}:\n{}",
                u.status.text(),
                u.by,
                ts(u.at),
                u.message
            ),
            None => "Update posted in sentinel.".to_string(),
        },
    }
}

/// The close notes of a resolution: who or what resolved it, and the
/// impact window.
pub fn close_notes(event: &Event) -> String {
    let i = &event.incident;
    let at = i.resolved_at.unwrap_or(event.occurred_at);
    let how = match i.resolved_by.as_deref() {
        None | Some("auto") => {
            "Resolved automatically by sentinel: every failing check passed again".to_string()
        }
        Some(by) => format!("Resolved in sentinel by {by}"),
    };
    let end = i.restored_at.unwrap_or(at);
    let minutes = end.duration_since(i.impact_started_at).as_secs().max(0) / 60;
    format!(
        "{how} at {}. Impact from {} to {} ({minutes} min). sentinel incident {}.",
        ts(at),
        ts(i.impact_started_at),
        ts(end),
        i.id
    )
}
