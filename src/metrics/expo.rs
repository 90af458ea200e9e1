//! A minimal writer for the Prometheus text exposition format 0.0.4.
//!
//! We render by hand instead of using the `prometheus` crate so that a scrape of
//! 10 000 checks is one pass over plain data into one `String`: no registry of
//! boxed collectors, no per-sample `Vec`/`String` allocation, and HdrHistogram
//! quantiles need no adapter. Every module that exports metrics writes into the
//! same [`Expo`], so one scrape is one buffer.
//!
//! The writer does not check that samples of one family are contiguous; callers
//! render family by family (header, then every sample), which is what the format
//! requires.

use std::fmt::Write as _;

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// An exposition being written. `buf` is the finished scrape body.
#[derive(Debug, Default)]
pub struct Expo {
    pub buf: String,
    /// Families whose header was already written. A scrape has a handful of
    /// families, so a linear scan beats hashing; it exists so that a family
    /// header is never written twice, which Prometheus rejects.
    families: Vec<&'static str>,
}

impl Expo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pre-sizes the buffer: a 10 000-check scrape is a few MiB, and growing a
    /// `String` by doubling copies it ~20 times.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
            families: Vec::new(),
        }
    }

    /// The scrape body.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    pub fn into_string(self) -> String {
        self.buf
    }

    /// Writes `# HELP` and `# TYPE` for a family, once per exposition.
    ///
    /// `name` is the family name: for counters that is the full name including
    /// `_total` (format 0.0.4), for histograms and summaries the name without
    /// `_bucket`/`_sum`/`_count`.
    pub fn family(&mut self, name: &'static str, help: &str, kind: MetricType) {
        if self.families.contains(&name) {
            return;
        }
        self.families.push(name);
        self.buf.push_str("# HELP ");
        self.buf.push_str(name);
        self.buf.push(' ');
        escape_help(&mut self.buf, help);
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(kind.as_str());
        self.buf.push('\n');
    }

    /// Writes one sample line with a float value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.head(name, labels);
        write_f64(&mut self.buf, value);
        self.buf.push('\n');
    }

    /// Writes one sample line with an integer value (counters, counts): exact,
    /// where an `f64` would round above 2^53.
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.head(name, labels);
        write_u64(&mut self.buf, value);
        self.buf.push('\n');
    }

    /// Writes one sample line with a signed integer value (timestamps).
    pub fn sample_i64(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.head(name, labels);
        if value < 0 {
            self.buf.push('-');
        }
        write_u64(&mut self.buf, value.unsigned_abs());
        self.buf.push('\n');
    }

    /// Like [`Expo::sample`], with labels escaped once in a [`LabelSet`]
    /// followed by `extra` pairs.
    pub fn sample_set(&mut self, name: &str, set: &LabelSet, extra: &[(&str, &str)], value: f64) {
        self.head_set(name, set, extra);
        write_f64(&mut self.buf, value);
        self.buf.push('\n');
    }

    /// Like [`Expo::sample_u64`], with a pre-escaped [`LabelSet`].
    pub fn sample_set_u64(
        &mut self,
        name: &str,
        set: &LabelSet,
        extra: &[(&str, &str)],
        value: u64,
    ) {
        self.head_set(name, set, extra);
        write_u64(&mut self.buf, value);
        self.buf.push('\n');
    }

    /// Like [`Expo::sample_i64`], with a pre-escaped [`LabelSet`].
    pub fn sample_set_i64(
        &mut self,
        name: &str,
        set: &LabelSet,
        extra: &[(&str, &str)],
        value: i64,
    ) {
        self.head_set(name, set, extra);
        if value < 0 {
            self.buf.push('-');
        }
        write_u64(&mut self.buf, value.unsigned_abs());
        self.buf.push('\n');
    }

    /// `name{l1="v1",l2="v2"} ` — everything before the value.
    fn head(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.buf.push_str(name);
        if !labels.is_empty() {
            self.buf.push('{');
            write_pairs(&mut self.buf, labels);
            self.buf.push('}');
        }
        self.buf.push(' ');
    }

    fn head_set(&mut self, name: &str, set: &LabelSet, extra: &[(&str, &str)]) {
        self.buf.push_str(name);
        if set.0.is_empty() && extra.is_empty() {
            self.buf.push(' ');
            return;
        }
        self.buf.push('{');
        self.buf.push_str(&set.0);
        if !set.0.is_empty() && !extra.is_empty() {
            self.buf.push(',');
        }
        write_pairs(&mut self.buf, extra);
        self.buf.push_str("} ");
    }
}

/// Label pairs escaped and joined once (`a="x",b="y"`), for series that are
/// rendered many times per scrape: a check's `service`/`check` pair appears on
/// ~30 lines, and escaping it once per line was a third of render time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSet(String);

impl LabelSet {
    pub fn new(labels: &[(&str, &str)]) -> Self {
        let mut s = String::new();
        write_pairs(&mut s, labels);
        Self(s)
    }

    /// The escaped pairs, without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `l1="v1",l2="v2"` with values escaped.
fn write_pairs(buf: &mut String, labels: &[(&str, &str)]) {
    for (i, (label, value)) in labels.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str(label);
        buf.push_str("=\"");
        escape_label_value(buf, value);
        buf.push('"');
    }
}

/// Label values escape backslash, double quote and newline (format 0.0.4).
/// Most values (config names) need none, so the common case is one `push_str`.
fn escape_label_value(buf: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        buf.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

/// HELP text escapes only backslash and newline (format 0.0.4).
fn escape_help(buf: &mut String, help: &str) {
    if !help.contains(['\\', '\n']) {
        buf.push_str(help);
        return;
    }
    for c in help.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

/// Prometheus spells the non-finite values `+Inf`, `-Inf` and `NaN`. Finite
/// values use Rust's shortest round-trip form (`1`, `0.25`, `1e-7` → `0.0000001`),
/// which Prometheus' Go `ParseFloat` reads back exactly.
pub fn write_f64(buf: &mut String, value: f64) {
    if value.is_nan() {
        buf.push_str("NaN");
    } else if value == f64::INFINITY {
        buf.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        buf.push_str("-Inf");
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Integral gauges (up, timestamps, counts stored as f64) are the
        // common case; the integer path skips float formatting. Cast is exact
        // below 2^53, and 1e15 < 2^53.
        if value < 0.0 {
            buf.push('-');
        }
        write_u64(buf, value.abs() as u64);
    } else {
        // Writing into a String cannot fail.
        let _ = write!(buf, "{value}");
    }
}

/// Decimal digits of `v` without going through `core::fmt` (the hot path of a
/// scrape is counters).
pub fn write_u64(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `v % 10` is < 10, so the cast cannot truncate.
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written, so this never takes the fallback.
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: f64, expected: &str) {
        let mut s = String::new();
        write_f64(&mut s, value);
        assert_eq!(s, expected, "formatting {value:?}");
    }

    #[test]
    fn floats_are_formatted_the_prometheus_way() {
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(f64::NAN, "NaN");
        check(0.0, "0");
        check(-0.0, "0");
        check(1.0, "1");
        check(-3.0, "-3");
        check(1_700_000_000.0, "1700000000");
        check(0.005, "0.005");
        check(2.5, "2.5");
        check(-0.25, "-0.25");
        check(1e-7, "0.0000001");
        check(1e20, "100000000000000000000");
    }

    #[test]
    fn integers_are_exact() {
        let cases: [(u64, &str); 4] = [
            (0, "0"),
            (7, "7"),
            (1234567890, "1234567890"),
            (u64::MAX, "18446744073709551615"),
        ];
        for (v, expected) in cases {
            let mut s = String::new();
            write_u64(&mut s, v);
            assert_eq!(s, expected);
        }
        let mut e = Expo::new();
        e.sample_i64("t", &[], -42);
        e.sample_i64("t", &[], i64::MIN);
        assert_eq!(e.as_str(), "t -42\nt -9223372036854775808\n");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut e = Expo::new();
        e.sample_u64(
            "m",
            &[
                ("a", "back\\slash"),
                ("b", "say \"hi\""),
                ("c", "two\nlines"),
            ],
            1,
        );
        assert_eq!(
            e.as_str(),
            "m{a=\"back\\\\slash\",b=\"say \\\"hi\\\"\",c=\"two\\nlines\"} 1\n"
        );
    }

    #[test]
    fn label_sets_render_like_plain_labels() {
        let set = LabelSet::new(&[("service", "a\"b"), ("check", "c")]);
        assert_eq!(set.as_str(), "service=\"a\\\"b\",check=\"c\"");
        let mut e = Expo::new();
        e.sample_set_u64("m", &set, &[("le", "+Inf")], 2);
        e.sample_set("m", &set, &[], 0.5);
        e.sample_set_i64("m", &LabelSet::default(), &[("x", "y")], -1);
        e.sample_set_u64("m", &LabelSet::default(), &[], 0);
        assert_eq!(
            e.as_str(),
            "m{service=\"a\\\"b\",check=\"c\",le=\"+Inf\"} 2\n\
             m{service=\"a\\\"b\",check=\"c\"} 0.5\n\
             m{x=\"y\"} -1\n\
             m 0\n"
        );
    }

    #[test]
    fn family_header_is_written_once_and_help_is_escaped() {
        let mut e = Expo::new();
        e.family("x_total", "a \\ b\nc \"q\"", MetricType::Counter);
        e.sample_u64("x_total", &[], 3);
        e.family("x_total", "again", MetricType::Counter);
        e.family("y", "why", MetricType::Gauge);
        e.sample("y", &[("k", "v")], 0.5);
        assert_eq!(
            e.as_str(),
            "# HELP x_total a \\\\ b\\nc \"q\"\n# TYPE x_total counter\nx_total 3\n\
             # HELP y why\n# TYPE y gauge\ny{k=\"v\"} 0.5\n"
        );
    }
}
