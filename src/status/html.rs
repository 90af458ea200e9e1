//! `/status` as one self-contained HTML document: inline CSS, no script, no
//! external asset, no web font. Links are relative (`status.json`,
//! `status/feed.atom`), so the page works behind a reverse proxy under any
//! path prefix.
//!
//! Every daily bar is a focusable list item whose text (date, figure,
//! incidents) is visually hidden until the bar is hovered or focused, and is
//! always read by screen readers; colour is never the only signal.

use std::fmt::Write;

use super::model::{DayBar, Grade, Page, PublicIncident, ServiceStatus};
use super::text::{self, Esc};

/// The stylesheet, inline. Bars wrap into three rows of 30 days on narrow
/// screens so each stays wide enough to see and to tap; there the tooltip
/// spans the bar list, on wider screens it sits under its bar (kept inside
/// the list at both ends).
const CSS: &str = r#"
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--mut:#59636e;--line:#d1d9e0;--card:#f6f8fa;--ok:#1a7f37;--warn:#bf8700;--bad:#cf222e;--none:#b7bdc5;--mnt:#0969da;--tipbg:#1f2328;--tipfg:#fff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mut:#9198a1;--line:#3d444d;--card:#151b23;--ok:#2ea043;--warn:#d29922;--bad:#f85149;--none:#3d444d;--mnt:#4493f8;--tipbg:#e6edf3;--tipfg:#0d1117}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:16px}
a{color:var(--mnt)}
h1{font-size:1.6rem;margin:8px 0 0}
h2{font-size:1.2rem;margin:28px 0 8px}
h3{font-size:1.05rem;margin:0}
.upd{color:var(--mut);font-size:.875rem;margin:4px 0 16px}
.banner{border-radius:8px;padding:14px 16px;color:#fff;font-weight:600;font-size:1.1rem;background:var(--ok)}
.banner.degraded,.banner.maintenance{background:var(--warn);color:#1f2328}
.banner.outage{background:var(--bad)}
.banner.unknown{background:var(--none);color:#1f2328}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;color:var(--mut);font-size:.8rem;margin:0 0 8px;padding:0;list-style:none}
.legend li::before{content:"";display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px;background:var(--c)}
.svc{border:1px solid var(--line);border-radius:8px;padding:12px 14px 10px;margin:0 0 12px}
.head{display:flex;justify-content:space-between;align-items:baseline;gap:8px;flex-wrap:wrap}
.pill{font-size:.85rem;font-weight:600;white-space:nowrap}
.pill::before{content:"";display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;background:var(--ok)}
.pill.degraded::before,.pill.maintenance::before{background:var(--warn)}
.pill.maintenance::before{background:var(--mnt)}
.pill.outage::before{background:var(--bad)}
.pill.unknown::before{background:var(--none)}
.desc,.fig{margin:2px 0;color:var(--mut);font-size:.9rem;overflow-wrap:anywhere}
.fig b{color:var(--fg)}
.bars{position:relative;display:flex;gap:2px;list-style:none;margin:8px 0 0;padding:0;height:32px}
.bars li{flex:1 1 0;min-width:0;border-radius:2px;background:var(--none);outline-offset:1px}
.bars .m{background:var(--ok)}.bars .w{background:var(--warn)}.bars .b{background:var(--bad)}
.bars li:hover{opacity:.75}
.bars li:focus{outline:2px solid var(--fg)}
.bars span{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
.bars li:hover span,.bars li:focus span{z-index:3;width:auto;height:auto;max-width:100%;clip-path:none;overflow:visible;white-space:normal;left:0;top:calc(100% + 6px);background:var(--tipbg);color:var(--tipfg);padding:6px 9px;border-radius:6px;font-size:.8rem;line-height:1.4;box-shadow:0 2px 8px rgba(0,0,0,.25)}
.axis{display:flex;justify-content:space-between;color:var(--mut);font-size:.75rem;margin-top:2px}
.inc{border:1px solid var(--line);border-left:4px solid var(--warn);border-radius:8px;padding:10px 14px;margin:0 0 12px;background:var(--card)}
.inc.unavailable{border-left-color:var(--bad)}
.meta{margin:4px 0;color:var(--mut);font-size:.9rem}
.meta strong{color:var(--fg)}
.sev{display:inline-block;font-size:.75rem;font-weight:700;border:1px solid var(--line);border-radius:4px;padding:0 5px;margin-left:6px;vertical-align:2px}
.tl{margin:6px 0 0;padding-left:18px;font-size:.9rem}
.tl time{color:var(--mut);margin-right:6px;font-variant-numeric:tabular-nums}
details{border-bottom:1px solid var(--line);padding:8px 0}
summary{cursor:pointer}
.none{color:var(--mut)}
footer{margin-top:32px;color:var(--mut);font-size:.8rem;border-top:1px solid var(--line);padding-top:8px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
@media (max-width:640px){main{padding:12px}.bars{flex-wrap:wrap;height:auto;row-gap:4px}.bars li{flex:0 0 calc((100% - 58px)/30);height:20px}}
@media (min-width:641px){.bars li{position:relative}.bars li:hover span,.bars li:focus span{width:max-content;max-width:320px;left:50%;transform:translateX(-50%)}
.bars li:nth-child(-n+15):hover span,.bars li:nth-child(-n+15):focus span{left:0;transform:none}
.bars li:nth-child(n+76):hover span,.bars li:nth-child(n+76):focus span{left:auto;right:0;transform:none}}
"#;

/// The whole `/status` document.
pub fn page(p: &Page) -> String {
    // About 60 bytes per bar dominate; reserve once.
    let mut o = String::with_capacity(4096 + p.services.len() * 6000);
    let _ = write_page(&mut o, p);
    o
}

fn write_page(o: &mut String, p: &Page) -> std::fmt::Result {
    write!(
        o,
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title>\
         <link rel=alternate type=\"application/atom+xml\" title=\"{title}: incidents\" href=\"status/feed.atom\">\
         <style>{CSS}</style></head><body><main>\
         <header><h1>{title}</h1><p class=upd>Updated {upd} · <a href=\"status.json\">JSON</a> · \
         <a href=\"status/feed.atom\">Atom feed</a> · <a href=\"status/report\">Monthly report</a></p></header>\
         <p class=\"banner {state}\" role=status>{summary}</p>",
        title = Esc(&p.title),
        upd = text::time(p.generated_at),
        state = p.overall.state.key(),
        summary = Esc(&p.overall.text),
    )?;

    if p.show_incidents && !p.open_incidents.is_empty() {
        o.push_str("<section aria-labelledby=h-open><h2 id=h-open>Current incidents</h2>");
        for inc in &p.open_incidents {
            open_incident(o, inc, p)?;
        }
        o.push_str("</section>");
    }

    write!(
        o,
        "<section aria-labelledby=h-svc><h2 id=h-svc>Services</h2>\
         <ul class=legend aria-label=\"Colour of the daily bars\">\
         <li style=\"--c:var(--ok)\">Objective met</li>\
         <li style=\"--c:var(--warn)\">Below objective</li>\
         <li style=\"--c:var(--bad)\">Far below objective</li>\
         <li style=\"--c:var(--none)\">No data</li></ul>"
    )?;
    for s in &p.services {
        service(o, s, p)?;
    }
    o.push_str("</section>");

    if p.show_incidents {
        o.push_str("<section aria-labelledby=h-past><h2 id=h-past>Past incidents (90 days)</h2>");
        if p.past_incidents.is_empty() {
            o.push_str("<p class=none>No incidents in the last 90 days.</p>");
        }
        for inc in &p.past_incidents {
            past_incident(o, inc)?;
        }
        o.push_str("</section>");
    }
    o.push_str(
        "<footer><p>Times are UTC. A day's figure is the share of successful automated checks \
         of the service that day; days without checks show no data; today's bar is the day so far. \
         Figures are truncated, never rounded up, and refresh at least once a minute.</p></footer>\
         </main></body></html>",
    );
    Ok(())
}

fn service(o: &mut String, s: &ServiceStatus, p: &Page) -> std::fmt::Result {
    let name = Esc(&s.name);
    write!(
        o,
        "<article class=svc id=\"svc-{name}\"><div class=head><h3>{name}</h3>\
         <span class=\"pill {}\">{}</span></div>",
        s.state.key(),
        s.state_text
    )?;
    if let Some(d) = &s.description {
        write!(o, "<p class=desc>{}</p>", Esc(d))?;
    }
    o.push_str("<p class=fig>");
    match &s.slo {
        Some(slo) => {
            match slo.availability {
                Some(a) => write!(o, "<b>{}</b> available", text::pct(a))?,
                None => o.push_str("No data"),
            }
            write!(
                o,
                " over {} · objective {}",
                Esc(&slo.window),
                text::objective_pct(slo.objective)
            )?;
            match slo.meets_objective {
                Some(true) => o.push_str(" · met"),
                Some(false) => o.push_str(" · <b>not met</b>"),
                None => {}
            }
            if let Some(a) = s.availability_90d {
                write!(o, " · 90 days: {}", text::pct(a))?;
            }
        }
        None => match s.availability_90d {
            Some(a) => write!(o, "<b>{}</b> available over 90 days", text::pct(a))?,
            None => o.push_str("No data in the last 90 days"),
        },
    }
    if p.show_incidents
        && let Some(id) = &s.open_incident
    {
        write!(o, " · <a href=\"#{}\">current incident</a>", Esc(id))?;
    }
    o.push_str("</p>");
    write!(
        o,
        "<ol class=bars aria-label=\"Daily availability of {name}, {} to {}, oldest first; objective {}\">",
        text::date(p.first_day),
        text::date(p.last_day),
        text::objective_pct(s.bar_objective)
    )?;
    for d in &s.days {
        bar(o, d)?;
    }
    write!(
        o,
        "</ol><div class=axis aria-hidden=true><span>{}</span><span>Today</span></div></article>",
        text::date(p.first_day)
    )
}

fn bar(o: &mut String, d: &DayBar) -> std::fmt::Result {
    let class = match d.grade {
        Grade::NoData => "n",
        Grade::Met => "m",
        Grade::Below => "w",
        Grade::FarBelow => "b",
    };
    write!(
        o,
        "<li class={class} tabindex=0><span>{}",
        text::date(d.date)
    )?;
    if d.partial {
        o.push_str(" (today so far)");
    }
    match d.availability {
        Some(a) => write!(o, ": {} available", text::pct(a))?,
        None => o.push_str(": no data"),
    }
    if matches!(d.grade, Grade::Below | Grade::FarBelow) {
        write!(o, ", {}", d.grade.text())?;
    }
    for i in &d.incidents {
        write!(
            o,
            "<br>Incident: {} ({})",
            i.impact.text(),
            Esc(&i.severity)
        )?;
    }
    o.push_str("</span></li>");
    Ok(())
}

fn timeline(o: &mut String, inc: &PublicIncident) -> std::fmt::Result {
    o.push_str("<ol class=tl>");
    for e in &inc.timeline {
        write!(
            o,
            "<li><time datetime=\"{}\">{}</time>{}</li>",
            e.at,
            text::time(e.at),
            Esc(&e.text)
        )?;
    }
    o.push_str("</ol>");
    Ok(())
}

fn open_incident(o: &mut String, inc: &PublicIncident, p: &Page) -> std::fmt::Result {
    write!(
        o,
        "<article class=\"inc {impact}\" id=\"{id}\"><h3>{title}<span class=sev>{sev}</span></h3>\
         <p class=meta>{status} · started {started} ({ago} ago) · ",
        impact = match inc.impact {
            super::model::Impact::Degraded => "degraded",
            super::model::Impact::Unavailable => "unavailable",
        },
        id = Esc(&inc.id),
        title = Esc(&inc.title),
        sev = Esc(&inc.severity),
        status = capitalised(inc.status),
        started = text::time(inc.impact_started_at),
        ago = text::duration(
            p.generated_at
                .duration_since(inc.impact_started_at)
                .as_secs()
        ),
    )?;
    match inc.acknowledged_at {
        Some(at) => write!(
            o,
            "<strong>The IT team is aware and working on it</strong> (acknowledged {})",
            text::time(at)
        )?,
        None if inc.team_alerted => {
            o.push_str("<strong>Not yet acknowledged</strong>; the on-call team has been alerted")
        }
        None => o.push_str("<strong>Not yet acknowledged</strong>"),
    }
    o.push_str("</p>");
    timeline(o, inc)?;
    o.push_str("</article>");
    Ok(())
}

fn past_incident(o: &mut String, inc: &PublicIncident) -> std::fmt::Result {
    write!(
        o,
        "<details id=\"{id}\"><summary><time datetime=\"{at}\">{date}</time> · {title}\
         <span class=sev>{sev}</span> · lasted {lasted}</summary>",
        id = Esc(&inc.id),
        at = inc.impact_started_at,
        date = text::time(inc.impact_started_at),
        title = Esc(&inc.title),
        sev = Esc(&inc.severity),
        lasted = text::duration(inc.duration_seconds),
    )?;
    timeline(o, inc)?;
    o.push_str("</details>");
    Ok(())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
