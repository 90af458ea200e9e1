//! `/badge/{service}.svg`: a shields.io-style flat badge whose figure is real
//! SVG text (and its `<title>` / `aria-label`), so it reads without images.

use std::fmt::Write;

use super::model::{Grade, PublicState, ServiceStatus};
use super::text::{self, Esc};

/// What the badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// The current state: `operational`, `degraded`, `outage`, ...
    Status,
    /// Availability over the SLO window (90 days without an SLO).
    Availability,
}

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "status" => Some(Metric::Status),
            "availability" => Some(Metric::Availability),
            _ => None,
        }
    }
}

const GREEN: &str = "#44cc11";
const YELLOW: &str = "#dfb317";
const RED: &str = "#e05d44";
const BLUE: &str = "#007ec6";
const GREY: &str = "#9f9f9f";

/// (label, message, colour) of the badge.
pub fn parts(s: &ServiceStatus, metric: Metric) -> (String, String, &'static str) {
    match metric {
        Metric::Status => {
            let colour = match s.state {
                PublicState::Operational => GREEN,
                PublicState::Degraded => YELLOW,
                PublicState::Outage => RED,
                PublicState::Maintenance => BLUE,
                PublicState::Unknown => GREY,
            };
            (s.name.clone(), s.state.text().to_lowercase(), colour)
        }
        Metric::Availability => {
            let (window, availability, objective) = match &s.slo {
                Some(slo) => (slo.window.clone(), slo.availability, slo.objective),
                None => ("90d".to_string(), s.availability_90d, s.bar_objective),
            };
            let colour = match Grade::of(availability, objective) {
                Grade::Met => GREEN,
                Grade::Below => YELLOW,
                Grade::FarBelow => RED,
                Grade::NoData => GREY,
            };
            let message = availability.map_or_else(|| "no data".to_string(), text::pct);
            (format!("{} {window}", s.name), message, colour)
        }
    }
}

/// Approximate width in pixels of `s` in 11 px Verdana (the shields.io
/// font), per character class; enough to size the boxes.
fn text_width(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '!' | '|' | ' ' => 4,
            'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '-' => 5,
            'm' | 'w' | 'M' | 'W' | '%' => 11,
            'A'..='Z' => 8,
            _ => 7,
        })
        .sum()
}

/// The badge SVG for `s`.
pub fn svg(s: &ServiceStatus, metric: Metric) -> String {
    let (label, message, colour) = parts(s, metric);
    let lw = text_width(&label) + 10;
    let mw = text_width(&message) + 10;
    let w = lw + mw;
    let (label, message) = (Esc(&label), Esc(&message));
    let mut o = String::with_capacity(1024);
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\"{label}: {message}\">\
         <title>{label}: {message}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{colour}\"/><rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"{lx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{label}</text><text x=\"{lx}\" y=\"14\">{label}</text>\
         <text x=\"{mx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{message}</text><text x=\"{mx}\" y=\"14\">{message}</text>\
         </g></svg>",
        lx = f64::from(lw) / 2.0,
        mx = f64::from(lw) + f64::from(mw) / 2.0,
    );
    o
}
