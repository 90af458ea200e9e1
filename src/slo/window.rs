//! [`Window`]: the span an SLO (and the MTTx figures of its service) is
//! evaluated over. The one place that knows where a window starts, how far
//! back it can reach, and which window a service without an `slo:` block
//! gets.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{Slo, SloWindow};

/// A window to count over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last `d`, aligned to buckets (see the module doc of [`crate::slo`]).
    Rolling(Duration),
    /// The current calendar month, UTC.
    Month,
}

impl Window {
    /// The window of a service without an `slo:` block: its runs (in `sentinel
    /// report`) and its incidents (MTTx, response targets) are counted over
    /// the last 30 days. The same as the default of the `slo.window` key (a
    /// test pins it).
    pub const DEFAULT: Window = Window::Rolling(Duration::from_secs(30 * 86_400));

    /// The longest calendar month: how far back a `month` window can reach.
    pub const LONGEST_MONTH: Duration = Duration::from_secs(31 * 86_400);

    /// The window of a service: its SLO's, or [`Window::DEFAULT`] without one.
    pub fn of(slo: Option<&Slo>) -> Window {
        slo.map_or(Window::DEFAULT, |s| Window::from(s.window))
    }

    /// How far back the window can reach: `d` for a rolling window, the
    /// longest month for `month`.
    pub fn span(self) -> Duration {
        match self {
            Window::Rolling(d) => d,
            Window::Month => Self::LONGEST_MONTH,
        }
    }

    /// Where the window starts at `now`: `now − d` for a rolling window, the
    /// first of the month 00:00 UTC for `month`. An incident belongs to a
    /// window when it opened at or after its start.
    pub fn start(self, now: Timestamp) -> Timestamp {
        match self {
            Window::Rolling(d) => {
                let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
                now.checked_sub(d).unwrap_or(Timestamp::MIN)
            }
            Window::Month => Timestamp::from_second(month_of(now).0).unwrap_or(now),
        }
    }

    /// Length of the window at `now` in seconds (the month's real length for `month`).
    pub fn seconds(self, now: Timestamp) -> f64 {
        match self {
            Window::Rolling(d) => d.as_secs_f64(),
            Window::Month => (month_of(now).1 * 86_400) as f64,
        }
    }
}

impl From<SloWindow> for Window {
    fn from(w: SloWindow) -> Self {
        match w {
            SloWindow::Rolling(d) => Window::Rolling(d),
            SloWindow::Month => Window::Month,
        }
    }
}

impl From<Window> for SloWindow {
    fn from(w: Window) -> Self {
        match w {
            Window::Rolling(d) => SloWindow::Rolling(d),
            Window::Month => SloWindow::Month,
        }
    }
}

/// Length of `window` at `now` in seconds (the month's real length for `Month`).
pub fn window_seconds(window: Window, now: Timestamp) -> f64 {
    window.seconds(now)
}

/// Unix seconds of `at`, floored (also for instants before 1970 with a fraction).
pub(super) fn unix_floor(at: Timestamp) -> i64 {
    let s = at.as_second();
    if at.subsec_nanosecond() < 0 { s - 1 } else { s }
}

/// Unix seconds at the start of the UTC calendar month containing `now`, and
/// that month's length in days. UTC has no DST, so plain arithmetic is exact.
pub(super) fn month_of(now: Timestamp) -> (i64, i64) {
    let dt = TimeZone::UTC.to_datetime(now);
    let into_month = (i64::from(dt.day()) - 1) * 86_400
        + i64::from(dt.hour()) * 3600
        + i64::from(dt.minute()) * 60
        + i64::from(dt.second());
    (
        unix_floor(now) - into_month,
        i64::from(dt.date().days_in_month()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_window_starts_a_span_before_now_or_at_the_first_of_the_month() {
        let now = ts("2026-02-17T13:45:30.25Z");
        for (w, start) in [
            (Window::DEFAULT, "2026-01-18T13:45:30.25Z"),
            (
                Window::Rolling(Duration::from_secs(3600)),
                "2026-02-17T12:45:30.25Z",
            ),
            (Window::Month, "2026-02-01T00:00:00Z"),
        ] {
            assert_eq!(w.start(now), ts(start), "{w:?}");
        }
        assert_eq!(Window::Month.span(), Duration::from_secs(31 * 86_400));
        assert_eq!(Window::DEFAULT.span(), Duration::from_secs(30 * 86_400));
        assert_eq!(Window::Month.seconds(now), 28.0 * 86_400.0);
    }

    #[test]
    fn the_default_window_is_the_default_of_the_slo_window_key() {
        let cfg = parse_str(
            "services:\n  - name: web\n    checks:\n      - name: home\n        interval: 1m\n        \
             http: { url: \"http://127.0.0.1:1/\" }\n    slo: { objective: 99 }\n  - name: bare\n    \
             checks:\n      - name: home\n        interval: 1m\n        http: { url: \"http://127.0.0.1:1/\" }\n",
            "test.yaml",
        )
        .unwrap();
        assert_eq!(Window::of(cfg.services[0].slo.as_ref()), Window::DEFAULT);
        assert_eq!(Window::of(cfg.services[1].slo.as_ref()), Window::DEFAULT);
    }
}
