//! `/status/report?month=YYYY-MM`: the monthly operations report for
//! leadership, one printable page (print CSS: A4 landscape, no navigation,
//! table headers repeated on each sheet). Pure: built from plain inputs.
//!
//! Per service: availability over the calendar month against the objective,
//! error budget left (the SLO rule: bad runs against the allowance of the
//! whole month's scheduled runs), incidents opened in the month by severity,
//! mean MTTA / MTTR and how many incidents met their response targets.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;

use super::text::{self, Esc};
use crate::config::ResponseTarget;
use crate::incident::{Attainment, Incident, MttxStats, Stage};
use crate::slo::Counts;

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    /// The 1st of the month.
    pub first: Date,
}

impl Month {
    /// `2026-03` → March 2026. Years 1970..=9999 only.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let y: i16 = y.parse().ok()?;
        let m: i8 = m.parse().ok()?;
        if !(1970..=9999).contains(&y) {
            return None;
        }
        Date::new(y, m, 1).ok().map(|first| Month { first })
    }

    /// The month holding `t` (UTC).
    pub fn of(t: Timestamp) -> Month {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        Month {
            first: d.first_of_month(),
        }
    }

    /// `[start, end)` in unix seconds.
    pub fn bounds(self) -> (i64, i64) {
        let start = unix(self.first);
        let end = unix(self.next().first);
        (start, end)
    }

    pub fn next(self) -> Month {
        Month {
            first: self
                .first
                .checked_add(jiff::Span::new().months(1))
                .unwrap_or(self.first),
        }
    }

    pub fn prev(self) -> Month {
        Month {
            first: self
                .first
                .checked_sub(jiff::Span::new().months(1))
                .unwrap_or(self.first),
        }
    }

    /// `2026-03`.
    pub fn key(self) -> String {
        self.first.strftime("%Y-%m").to_string()
    }

    /// `March 2026`.
    pub fn label(self) -> String {
        self.first.strftime("%B %Y").to_string()
    }
}

fn unix(d: Date) -> i64 {
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_second())
}

/// One service's month, as the handler extracts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportServiceInput {
    pub name: String,
    pub description: Option<String>,
    /// The availability objective as a ratio; `None` without an SLO.
    pub objective: Option<f64>,
    /// Runs of the month (so far).
    pub counts: Counts,
    /// Valid runs the schedule produces over the whole month, maintenance excluded.
    pub expected: f64,
}

#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    pub title: String,
    pub month: Month,
    pub now: Timestamp,
    pub services: Vec<ReportServiceInput>,
    /// Incidents of the shown services opened in the month.
    pub incidents: &'a [Incident],
    pub targets: &'a BTreeMap<String, ResponseTarget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub name: String,
    pub description: Option<String>,
    pub objective: Option<f64>,
    pub availability: Option<f64>,
    pub counts: Counts,
    pub meets_objective: Option<bool>,
    /// `1 − bad / ((1 − objective) × max(valid, expected))`; negative when overspent.
    pub budget_remaining: Option<f64>,
    pub incidents: BTreeMap<String, u64>,
    pub mtta_mean_seconds: Option<f64>,
    pub mttr_mean_seconds: Option<f64>,
    pub acknowledge: Attainment,
    pub restore: Attainment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeverityRow {
    pub severity: String,
    pub incidents: u64,
    pub target: Option<ResponseTarget>,
    pub mtta_mean_seconds: Option<f64>,
    pub mttr_mean_seconds: Option<f64>,
    pub acknowledge: Attainment,
    pub restore: Attainment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub title: String,
    pub month: Month,
    pub generated_at: Timestamp,
    /// The month is over (else: month to date).
    pub complete: bool,
    pub rows: Vec<ReportRow>,
    pub severities: Vec<SeverityRow>,
}

impl Report {
    pub fn incidents(&self) -> u64 {
        self.rows.iter().flat_map(|r| r.incidents.values()).sum()
    }

    /// (services meeting their objective, services with an objective and data).
    pub fn meeting(&self) -> (usize, usize) {
        let judged: Vec<bool> = self.rows.iter().filter_map(|r| r.meets_objective).collect();
        (judged.iter().filter(|m| **m).count(), judged.len())
    }

    pub fn attainment(&self, stage: Stage) -> Attainment {
        let mut a = Attainment::default();
        for s in &self.severities {
            let x = match stage {
                Stage::Acknowledge => s.acknowledge,
                Stage::Restore => s.restore,
            };
            a.met += x.met;
            a.missed += x.missed;
        }
        a
    }
}

fn mean(samples: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = samples.fold((0u64, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

fn add(a: &mut Attainment, b: Attainment) {
    a.met += b.met;
    a.missed += b.missed;
}

/// Builds the report.
pub fn build(input: &ReportInput<'_>) -> Report {
    let (_, end) = input.month.bounds();
    let stats = MttxStats::rebuild(input.targets.clone(), input.incidents.iter().cloned());
    let response = stats.response_counts(input.now);
    let mtta = |list: &[&Incident]| {
        mean(
            list.iter()
                .filter_map(|i| i.time_to_acknowledge())
                .map(|d| d.as_secs_f64()),
        )
    };
    let mttr = |list: &[&Incident]| {
        mean(
            list.iter()
                .filter_map(|i| i.time_to_restore())
                .map(|d| d.as_secs_f64()),
        )
    };

    let rows = input
        .services
        .iter()
        .map(|s| {
            let mine: Vec<&Incident> = input
                .incidents
                .iter()
                .filter(|i| i.service == s.name)
                .collect();
            let mut incidents = BTreeMap::new();
            for i in &mine {
                *incidents.entry(i.severity.clone()).or_insert(0u64) += 1;
            }
            let (mut acknowledge, mut restore) = (Attainment::default(), Attainment::default());
            for ((svc, _, stage), a) in &response {
                if *svc == s.name {
                    match stage {
                        Stage::Acknowledge => add(&mut acknowledge, *a),
                        Stage::Restore => add(&mut restore, *a),
                    }
                }
            }
            let availability =
                (s.counts.valid > 0).then(|| s.counts.good as f64 / s.counts.valid as f64);
            let budget_remaining = s.objective.map(|o| {
                let allowance = (1.0 - o) * crate::slo::denominator(s.counts.valid, s.expected);
                if allowance > 0.0 {
                    1.0 - s.counts.bad() as f64 / allowance
                } else {
                    1.0
                }
            });
            ReportRow {
                name: s.name.clone(),
                description: s.description.clone(),
                objective: s.objective,
                availability,
                counts: s.counts,
                meets_objective: s.objective.zip(availability).map(|(o, a)| a >= o),
                budget_remaining,
                incidents,
                mtta_mean_seconds: mtta(&mine),
                mttr_mean_seconds: mttr(&mine),
                acknowledge,
                restore,
            }
        })
        .collect();

    let mut severities: BTreeMap<&str, Vec<&Incident>> = BTreeMap::new();
    for i in input.incidents {
        severities.entry(i.severity.as_str()).or_default().push(i);
    }
    for sev in input.targets.keys() {
        severities.entry(sev.as_str()).or_default();
    }
    let severities = severities
        .into_iter()
        .map(|(sev, list)| {
            let (mut acknowledge, mut restore) = (Attainment::default(), Attainment::default());
            for ((_, s, stage), a) in &response {
                if s == sev {
                    match stage {
                        Stage::Acknowledge => add(&mut acknowledge, *a),
                        Stage::Restore => add(&mut restore, *a),
                    }
                }
            }
            SeverityRow {
                severity: sev.to_string(),
                incidents: list.len() as u64,
                target: input.targets.get(sev).cloned(),
                mtta_mean_seconds: mtta(&list),
                mttr_mean_seconds: mttr(&list),
                acknowledge,
                restore,
            }
        })
        .collect();

    Report {
        title: input.title.clone(),
        month: input.month,
        generated_at: input.now,
        complete: input.now.as_second() >= end,
        rows,
        severities,
    }
}

const CSS: &str = r#"
:root{--fg:#1f2328;--mut:#59636e;--line:#d1d9e0;--ok:#1a7f37;--bad:#cf222e;--card:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px}
h1{font-size:1.5rem;margin:0}
h2{font-size:1.15rem;margin:24px 0 8px}
.sub{color:var(--mut);margin:2px 0 12px}
nav{margin:0 0 12px;font-size:.9rem}
nav a{color:#0969da;margin-right:16px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px;margin:12px 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:var(--card)}
.tile b{display:block;font-size:1.4rem}
.tile span{color:var(--mut);font-size:.85rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:right;vertical-align:top;font-variant-numeric:tabular-nums}
th:first-child,td:first-child{text-align:left}
th{background:var(--card);font-weight:600}
td small,th small{display:block;color:var(--mut);font-weight:400;white-space:nowrap}
tbody th{font-weight:600;max-width:260px;overflow-wrap:anywhere}
tbody th small{white-space:normal}
.met{color:var(--ok);font-weight:600}
.missed{color:var(--bad);font-weight:600}
.notes{color:var(--mut);font-size:.8rem;margin-top:20px}
@page{size:A4 landscape;margin:12mm}
@media print{nav{display:none}main{max-width:none;padding:0}body{font-size:10pt}thead{display:table-header-group}tr,.tile{break-inside:avoid}h2{break-after:avoid}*{print-color-adjust:exact;-webkit-print-color-adjust:exact}.scroll{overflow:visible}}
"#;

fn attainment(a: Attainment) -> String {
    let total = a.met + a.missed;
    if total == 0 {
        return "—".into();
    }
    let class = if a.missed == 0 { "met" } else { "missed" };
    format!(
        "<span class={class}>{}</span><small>{} of {total}</small>",
        text::pct(a.met as f64 / total as f64),
        a.met
    )
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |s| text::duration(s.round() as i64))
}

fn target(d: Option<Duration>) -> String {
    d.map_or_else(
        || "no target".into(),
        |d| format!("target {}", text::duration(d.as_secs() as i64)),
    )
}

/// The report document.
pub fn html(r: &Report) -> String {
    let mut o = String::with_capacity(8192 + 600 * r.rows.len());
    let _ = write_html(&mut o, r);
    o
}

fn write_html(o: &mut String, r: &Report) -> std::fmt::Result {
    let title = Esc(&r.title);
    let month = r.month.label();
    write!(
        o,
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}: operations report, {month}</title><style>{CSS}</style></head><body><main>\
         <nav><a href=\"../status\">Status page</a><a href=\"report?month={prev}\">← {prev_label}</a>\
         <a href=\"report?month={next}\">{next_label} →</a></nav>\
         <h1>{title}: monthly operations report</h1>\
         <p class=sub>{month}{partial} · generated {generated}</p>",
        prev = r.month.prev().key(),
        prev_label = r.month.prev().label(),
        next = r.month.next().key(),
        next_label = r.month.next().label(),
        partial = if r.complete { "" } else { " (month to date)" },
        generated = text::time(r.generated_at),
    )?;

    let (meeting, judged) = r.meeting();
    let by_sev: Vec<String> = r
        .severities
        .iter()
        .filter(|s| s.incidents > 0)
        .map(|s| format!("{} {}", Esc(&s.severity), s.incidents))
        .collect();
    let ack = r.attainment(Stage::Acknowledge);
    let res = r.attainment(Stage::Restore);
    let share = |a: Attainment| {
        let t = a.met + a.missed;
        if t == 0 {
            "—".to_string()
        } else {
            text::pct(a.met as f64 / t as f64)
        }
    };
    write!(
        o,
        "<section class=tiles aria-label=Summary>\
         <div class=tile><b>{meeting} of {judged}</b><span>services met their availability objective</span></div>\
         <div class=tile><b>{incidents}</b><span>incidents{by_sev}</span></div>\
         <div class=tile><b>{ack}</b><span>acknowledged within target ({ack_n} of {ack_t})</span></div>\
         <div class=tile><b>{res}</b><span>restored within target ({res_n} of {res_t})</span></div>\
         </section>",
        incidents = r.incidents(),
        by_sev = if by_sev.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_sev.join(", "))
        },
        ack = share(ack),
        ack_n = ack.met,
        ack_t = ack.met + ack.missed,
        res = share(res),
        res_n = res.met,
        res_t = res.met + res.missed,
    )?;

    o.push_str(
        "<h2>Services</h2><div class=scroll><table><thead><tr><th scope=col>Service</th>\
         <th scope=col>Availability</th><th scope=col>Objective</th><th scope=col>Error budget left</th>\
         <th scope=col>Incidents</th><th scope=col>MTTA (mean)</th><th scope=col>MTTR (mean)</th>\
         <th scope=col>Acknowledged in target</th><th scope=col>Restored in target</th></tr></thead><tbody>",
    );
    for row in &r.rows {
        write!(o, "<tr><th scope=row>{}", Esc(&row.name))?;
        if let Some(d) = &row.description {
            write!(o, "<small>{}</small>", Esc(d))?;
        }
        o.push_str("</th><td>");
        match row.availability {
            Some(a) => {
                let class = match row.meets_objective {
                    Some(true) => "met",
                    Some(false) => "missed",
                    None => "",
                };
                write!(
                    o,
                    "<span class=\"{class}\">{}</span><small>{} of {} runs good</small>",
                    text::pct(a),
                    row.counts.good,
                    row.counts.valid
                )?;
            }
            None => o.push_str("no data"),
        }
        o.push_str("</td><td>");
        match (row.objective, row.meets_objective) {
            (Some(obj), Some(true)) => write!(
                o,
                "{} <small class=met>met</small>",
                text::objective_pct(obj)
            )?,
            (Some(obj), Some(false)) => write!(
                o,
                "{} <small class=missed>missed</small>",
                text::objective_pct(obj)
            )?,
            (Some(obj), None) => write!(o, "{}", text::objective_pct(obj))?,
            (None, _) => o.push_str("none"),
        }
        o.push_str("</td><td>");
        match row.budget_remaining {
            Some(b) if b < 0.0 => write!(
                o,
                "<span class=missed>overspent</span><small>{}</small>",
                signed_pct(b)
            )?,
            Some(b) => o.push_str(&text::pct(b)),
            None => o.push('—'),
        }
        o.push_str("</td><td>");
        let total: u64 = row.incidents.values().sum();
        write!(o, "{total}")?;
        if total > 0 {
            let parts: Vec<String> = row
                .incidents
                .iter()
                .map(|(s, n)| format!("{} {n}", Esc(s)))
                .collect();
            write!(o, "<small>{}</small>", parts.join(", "))?;
        }
        write!(
            o,
            "</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            secs(row.mtta_mean_seconds),
            secs(row.mttr_mean_seconds),
            attainment(row.acknowledge),
            attainment(row.restore)
        )?;
    }
    o.push_str("</tbody></table></div>");

    o.push_str(
        "<h2>Response by severity</h2><div class=scroll><table><thead><tr><th scope=col>Severity</th>\
         <th scope=col>Incidents</th><th scope=col>MTTA (mean)</th><th scope=col>Acknowledged in target</th>\
         <th scope=col>MTTR (mean)</th><th scope=col>Restored in target</th></tr></thead><tbody>",
    );
    if r.severities.is_empty() {
        o.push_str("<tr><td colspan=6>No incidents and no response targets.</td></tr>");
    }
    for s in &r.severities {
        write!(
            o,
            "<tr><th scope=row>{sev}</th><td>{n}</td><td>{mtta}<small>{at}</small></td><td>{aa}</td>\
             <td>{mttr}<small>{rt}</small></td><td>{ra}</td></tr>",
            sev = Esc(&s.severity),
            n = s.incidents,
            mtta = secs(s.mtta_mean_seconds),
            at = target(s.target.as_ref().map(|t| t.acknowledge)),
            aa = attainment(s.acknowledge),
            mttr = secs(s.mttr_mean_seconds),
            rt = target(s.target.as_ref().map(|t| t.restore)),
            ra = attainment(s.restore),
        )?;
    }
    o.push_str("</tbody></table></div>");
    o.push_str(
        "<p class=notes>Availability: good ÷ valid automated check runs in the calendar month (UTC); \
         runs in maintenance windows count toward nothing. Error budget left: 1 − bad runs ÷ the \
         month's allowance, (1 − objective) × the runs the schedule produces over the whole month \
         (or the runs seen, if more). Incidents: opened in the month. MTTA: opened → acknowledged; \
         MTTR: impact start → restored. In target: met ÷ (met + missed) against the response \
         targets per severity; a target still running is not counted yet. Figures are truncated, \
         never rounded up.</p></main></body></html>",
    );
    Ok(())
}

/// A negative ratio as a percentage: `-0.5` → `−50%`.
fn signed_pct(r: f64) -> String {
    if r < 0.0 {
        format!("−{}", text::pct(-r))
    } else {
        text::pct(r)
    }
}
