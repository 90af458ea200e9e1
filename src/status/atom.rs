//! `/status/feed.atom`: RFC 4287 Atom, one entry per incident and one per
//! human update, newest first. Links are relative to the feed's own URL
//! (`../status#<incident>` from `/status/feed.atom`), so they resolve behind
//! a reverse proxy under any prefix.

use std::fmt::Write;

use jiff::Timestamp;

use super::model::{Page, PublicIncident};
use super::text::{self, Esc};

/// The feed document.
pub fn feed(p: &Page) -> String {
    let mut o = String::with_capacity(2048 + 1024 * p.open_incidents.len());
    let _ = write_feed(&mut o, p);
    o
}

struct Entry<'a> {
    id: String,
    title: String,
    updated: Timestamp,
    published: Timestamp,
    incident: &'a PublicIncident,
    content: String,
}

fn incident_updated(i: &PublicIncident) -> Timestamp {
    i.timeline.iter().map(|e| e.at).max().unwrap_or(i.opened_at)
}

fn write_feed(o: &mut String, p: &Page) -> std::fmt::Result {
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for inc in p.incidents() {
        let mut content = format!(
            "{} ({}). Status: {}. Started {}",
            inc.impact.text(),
            inc.severity,
            inc.status,
            text::time(inc.impact_started_at)
        );
        if let Some(at) = inc.acknowledged_at {
            let _ = write!(content, "; acknowledged by the IT team {}", text::time(at));
        }
        match (inc.is_open(), inc.restored_at.or(inc.resolved_at)) {
            (false, Some(at)) => {
                let _ = write!(
                    content,
                    "; resolved {} after {}",
                    text::time(at),
                    text::duration(inc.duration_seconds)
                );
            }
            (true, Some(at)) => {
                let _ = write!(content, "; restored {}, monitoring", text::time(at));
            }
            _ => {}
        }
        content.push('.');
        entries.push(Entry {
            id: format!("urn:sentinel:incident:{}", inc.id),
            title: format!(
                "{} [{}]{}",
                inc.title,
                inc.severity,
                if inc.is_open() { "" } else { " (resolved)" }
            ),
            updated: incident_updated(inc),
            published: inc.opened_at,
            incident: inc,
            content,
        });
        for (n, u) in inc.updates.iter().enumerate() {
            entries.push(Entry {
                id: format!("urn:sentinel:incident:{}:update:{}", inc.id, n + 1),
                title: format!("{}: {}", inc.title, u.status.text()),
                updated: u.at,
                published: u.at,
                incident: inc,
                content: u.message.clone(),
            });
        }
    }
    entries.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(p.generated_at);
    write!(
        o,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{title}: incidents</title>\n\
         <id>urn:sentinel:status-feed:{slug}</id>\n\
         <updated>{updated}</updated>\n\
         <author><name>{title}</name></author>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"../status\"/>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"feed.atom\"/>\n",
        title = Esc(&p.title),
        slug = slug(&p.title),
        updated = rfc3339(updated),
    )?;
    for e in &entries {
        write!(
            o,
            "<entry>\n<id>{id}</id>\n<title>{title}</title>\n<updated>{updated}</updated>\n\
             <published>{published}</published>\n\
             <link rel=\"alternate\" type=\"text/html\" href=\"../status#{anchor}\"/>\n\
             <category term=\"{sev}\"/>\n<content type=\"text\">{content}</content>\n</entry>\n",
            id = Esc(&e.id),
            title = Esc(&e.title),
            updated = rfc3339(e.updated),
            published = rfc3339(e.published),
            anchor = Esc(&e.incident.id),
            sev = Esc(&e.incident.severity),
            content = Esc(&e.content),
        )?;
    }
    o.push_str("</feed>\n");
    Ok(())
}

/// The title as a URN-safe word: ASCII letters and digits, `-` for the rest.
fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    if s.is_empty() {
        "status".into()
    } else {
        s.into()
    }
}

/// RFC 3339 in UTC with a `Z`, whole seconds.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
