//! `sentinel report` as text for people.

use std::fmt::Write as _;

use super::doc::{CumulativeSeverityDoc, ReportDoc, SeverityDoc, SloDoc};

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{:.3}%", v * 100.0))
}

pub(super) fn render_text(doc: &ReportDoc) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "sentinel report at {} from {}",
        doc.generated_at, doc.store
    );
    for s in &doc.services {
        let _ = writeln!(out, "\n{} (window {})", s.service, s.window);
        match &s.availability {
            None => {
                let _ = writeln!(out, "  no SLO configured");
            }
            Some(a) => render_slo(&mut out, "availability", a),
        }
        if let Some(l) = &s.latency {
            render_slo(&mut out, "latency", l);
        }
        if let Some(a) = &s.availability {
            // The same for every SLO of the service: shown once.
            let cov: Vec<String> = a
                .burn_rates
                .iter()
                .map(|b| format!("{} {}", b.window, coverage(b.coverage)))
                .collect();
            let _ = writeln!(out, "  {:<12}  {}", "coverage", cov.join("  "));
        }
        let _ = writeln!(
            out,
            "  runs          valid {}  good {}  bad {}",
            s.runs.valid, s.runs.good, s.runs.bad
        );
        for c in &s.checks {
            let note = if c.in_config { "" } else { "  (not in config)" };
            let _ = writeln!(
                out,
                "    {:<12}  valid {}  good {}  bad {}{}",
                c.check, c.runs.valid, c.runs.good, c.runs.bad, note
            );
        }
        let _ = writeln!(
            out,
            "  incidents     opened in window {}  open now {}",
            s.incidents.opened_in_window, s.incidents.open
        );
        for sev in &s.incidents.by_severity {
            render_severity(&mut out, sev);
        }
        let c = &s.incidents.cumulative;
        let _ = writeln!(
            out,
            "  all time      opened {}  (cumulative: the /metrics _total, _sum and _count)",
            c.opened
        );
        for sev in &c.by_severity {
            render_cumulative(&mut out, sev);
        }
    }
    if doc.unreadable_incidents > 0 {
        let _ = writeln!(
            out,
            "\nwarning: {} stored incident(s) could not be read and are left out",
            doc.unreadable_incidents
        );
    }
    out
}

fn render_severity(out: &mut String, s: &SeverityDoc) {
    let _ = writeln!(
        out,
        "    {:<12}  opened {}  open {}",
        s.severity, s.opened, s.open
    );
    for (name, m) in [("MTTD", &s.mttd), ("MTTA", &s.mtta), ("MTTR", &s.mttr)] {
        let _ = writeln!(
            out,
            "      {name:<11}  n {}  mean {}  p50 {}  p90 {}",
            m.count,
            human(m.mean_seconds),
            human(m.p50_seconds),
            human(m.p90_seconds)
        );
    }
    for (name, t) in [("acknowledge", &s.acknowledge), ("restore", &s.restore)] {
        match t {
            None => {
                let _ = writeln!(out, "      {name:<11}  no target");
            }
            Some(t) => {
                let _ = writeln!(
                    out,
                    "      {name:<11}  target {}  met {}  missed {}  attainment {}",
                    human(Some(t.target_seconds)),
                    t.met,
                    t.missed,
                    percent(t.attainment)
                );
            }
        }
    }
}

fn render_cumulative(out: &mut String, s: &CumulativeSeverityDoc) {
    let _ = writeln!(out, "    {:<12}  opened {}", s.severity, s.opened);
    for (name, t) in [("MTTD", &s.mttd), ("MTTA", &s.mtta), ("MTTR", &s.mttr)] {
        let _ = writeln!(
            out,
            "      {name:<11}  n {}  mean {}",
            t.count,
            human(t.mean_seconds)
        );
    }
    for (name, c) in [("acknowledge", &s.acknowledge), ("restore", &s.restore)] {
        let _ = writeln!(
            out,
            "      {name:<11}  met {}  missed {}  attainment {}",
            c.met,
            c.missed,
            percent(c.attainment)
        );
    }
    let _ = writeln!(out, "      {:<11}  {}", "escalated", s.escalated);
}

/// Seconds as `45s`, `12m05s` or `2h03m00s` (rounded to the second).
fn human(secs: Option<f64>) -> String {
    let Some(secs) = secs else {
        return "n/a".to_string();
    };
    let sign = if secs < 0.0 { "-" } else { "" };
    let t = secs.abs().round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{sign}{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{sign}{m}m{s:02}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// A coverage ratio as a percentage with one decimal (`100.0%`, `0.2%`);
/// never rounded to a bound it has not reached (`<0.1%`, `>99.9%`).
pub(super) fn coverage(x: f64) -> String {
    if x > 0.0 && x < 0.0005 {
        "<0.1%".to_string()
    } else if (0.9995..1.0).contains(&x) {
        ">99.9%".to_string()
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

fn render_slo(out: &mut String, name: &str, f: &SloDoc) {
    let _ = writeln!(
        out,
        "  {:<12}  objective {}  SLI {} (coverage {})  budget left {:.3} ({:.1} min)",
        name,
        percent(Some(f.objective)),
        percent(f.sli),
        coverage(f.coverage),
        f.error_budget_remaining_ratio,
        f.error_budget_remaining_minutes
    );
    let burns: Vec<String> = f
        .burn_rates
        .iter()
        .map(|b| format!("{} {:.2}", b.window, b.burn_rate))
        .collect();
    let _ = writeln!(out, "  {:<12}  {}", "burn rate", burns.join("  "));
}

#[cfg(test)]
mod tests {
    use super::coverage;

    #[test]
    fn coverage_is_never_rounded_to_a_bound_it_has_not_reached() {
        for (x, want) in [
            (0.0, "0.0%"),
            (0.000_46, "<0.1%"),
            (0.000_5, "0.1%"),
            (0.348_189, "34.8%"),
            (0.999_4, "99.9%"),
            (0.999_6, ">99.9%"),
            (1.0, "100.0%"),
        ] {
            assert_eq!(coverage(x), want, "{x}");
        }
    }
}
