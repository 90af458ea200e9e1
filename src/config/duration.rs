//! Durations as written in the config file: `500ms`, `15s`, `5m`, `6h`, `30d`, `2w`.
//! Compound forms (`1h30m`) are accepted too.

use std::time::Duration;

/// Parse a duration string. The error text says what is accepted.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. `500ms`, `15s`, `5m`, `6h`, `30d`".into());
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{s}`: expected a number followed by a unit (ms, s, m, h, d, w), e.g. `15s`"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration `{s}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "invalid duration `{s}`: missing unit; write e.g. `{n}s` (units: ms, s, m, h, d, w)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{s}`: unknown unit `{other}` (units: ms, s, m, h, d, w)"
                ));
            }
        };
        total = total
            .checked_add(n.saturating_mul(ms_per))
            .ok_or_else(|| format!("invalid duration `{s}`: too large"))?;
    }
    let ms = u64::try_from(total).map_err(|_| format!("invalid duration `{s}`: too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Format a duration in the largest unit that divides it exactly: `30d`, `90m`, `1500ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, per) in [
        ("w", 604_800_000u128),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<u64, &str>) {
        let got = parse(input).map(|d| d.as_millis() as u64);
        match expected {
            Ok(ms) => assert_eq!(got, Ok(ms), "{input}"),
            Err(frag) => {
                let e = got.expect_err(input);
                assert!(e.contains(frag), "{input}: {e}");
            }
        }
    }

    #[test]
    fn parses_units() {
        check("500ms", Ok(500));
        check("15s", Ok(15_000));
        check("5m", Ok(300_000));
        check("6h", Ok(21_600_000));
        check("30d", Ok(2_592_000_000));
        check("2w", Ok(1_209_600_000));
        check("1h30m", Ok(5_400_000));
        check("15", Err("missing unit"));
        check("15sec", Err("unknown unit `sec`"));
        check("", Err("empty"));
        check("s", Err("expected a number"));
    }

    #[test]
    fn formats_largest_exact_unit() {
        assert_eq!(format(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format(Duration::from_secs(5400)), "90m");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(14 * 86_400)), "2w");
    }
}
