//! Escaping and the few number, time and duration formats the pages share.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;

/// Text escaped for HTML and XML content and attribute values: `&`, `<`,
/// `>`, `"` and `'`. Everything from config or people goes through it.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A ratio as a percentage, truncated (never rounded up) to three decimals
/// with trailing zeros dropped: `0.99895833` → `99.895%`, `1.0` → `100%`,
/// `0.9999999` → `99.999%`, `0.5` → `50%`.
pub fn pct(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".into();
    }
    // The epsilon keeps exact decimals (0.999 × 10⁵ = 99899.99…) whole.
    let thousandths = (ratio * 100_000.0 + 1e-7).floor() as i64;
    trim(thousandths, 3)
}

/// An objective ratio as written in the config: `0.999` → `99.9%`.
pub fn objective_pct(ratio: f64) -> String {
    let tenthousandths = (ratio * 1_000_000.0).round() as i64;
    trim(tenthousandths, 4)
}

/// `value / 10^decimals` with trailing zeros dropped, plus `%`.
fn trim(value: i64, decimals: u32) -> String {
    let scale = 10i64.pow(decimals);
    let (int, frac) = (value.div_euclid(scale), value.rem_euclid(scale));
    if frac == 0 {
        return format!("{int}%");
    }
    let digits = format!("{frac:0width$}", width = decimals as usize);
    format!("{int}.{}%", digits.trim_end_matches('0'))
}

/// A duration in words: `45s`, `12m`, `1h 20m`, `2d 3h`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h {m}m", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{}d", s / 86_400),
            h => format!("{}d {h}h", s / 86_400),
        },
    }
}

/// `2026-03-12 10:02 UTC`.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `12 Mar 2026`.
pub fn date(d: Date) -> String {
    d.strftime("%-d %b %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            Esc(r#"<script>alert('x') & "y"</script>"#).to_string(),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(Esc("plain é").to_string(), "plain é");
    }

    #[test]
    fn percentages_truncate_and_trim() {
        for (ratio, want) in [
            (2877.0 / 2880.0, "99.895%"),
            (1.0, "100%"),
            (0.9999999, "99.999%"),
            (0.999, "99.9%"),
            (0.5, "50%"),
            (0.0, "0%"),
            (0.123456, "12.345%"),
        ] {
            assert_eq!(pct(ratio), want, "{ratio}");
        }
        assert_eq!(objective_pct(0.999), "99.9%");
        assert_eq!(objective_pct(0.9995), "99.95%");
        assert_eq!(objective_pct(0.99), "99%");
    }

    #[test]
    fn durations_in_words() {
        for (s, want) in [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (4800, "1h 20m"),
            (86_400, "1d"),
            (183_600, "2d 3h"),
            (-5, "0s"),
        ] {
            assert_eq!(duration(s), want, "{s}");
        }
    }
}
