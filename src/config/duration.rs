//! Durations as written in the config file: `500ms`, `15s`, `5m`, `6h`, `30d`, `2w`.
//! Compound forms (`1h30m`) are accepted too.

use std::time::Duration;

/// Why a duration string is refused. The text says what is accepted and
/// quotes the input as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write e.g. `500ms`, `15s`, `5m`, `6h`, `30d`")]
    Empty,
    #[error(
        "invalid duration `{input}`: expected a number followed by a unit (ms, s, m, h, d, w), e.g. `15s`"
    )]
    NoNumber { input: String },
    #[error("invalid duration `{input}`: number too large")]
    NumberTooLarge { input: String },
    #[error(
        "invalid duration `{input}`: missing unit; write e.g. `{number}s` (units: ms, s, m, h, d, w)"
    )]
    MissingUnit { input: String, number: u128 },
    #[error("invalid duration `{input}`: unknown unit `{unit}` (units: ms, s, m, h, d, w)")]
    UnknownUnit { input: String, unit: String },
    /// The sum does not fit in `u64` milliseconds.
    #[error("invalid duration `{input}`: too large")]
    TooLarge { input: String },
}

/// Parse a duration string.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let input = || s.to_string();
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NoNumber { input: input() });
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::NumberTooLarge { input: input() })?;
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
                return Err(DurationError::MissingUnit {
                    input: input(),
                    number,
                });
            }
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input(),
                    unit: other.to_string(),
                });
            }
        };
        total = total
            .checked_add(number.saturating_mul(ms_per))
            .ok_or_else(|| DurationError::TooLarge { input: input() })?;
    }
    let ms = u64::try_from(total).map_err(|_| DurationError::TooLarge { input: input() })?;
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
            Err(message) => assert_eq!(got.map_err(|e| e.to_string()), Err(message.to_string())),
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
        check(
            "15",
            Err("invalid duration `15`: missing unit; write e.g. `15s` (units: ms, s, m, h, d, w)"),
        );
        check(
            " 15sec",
            Err("invalid duration ` 15sec`: unknown unit `sec` (units: ms, s, m, h, d, w)"),
        );
        check(
            "",
            Err("empty duration; write e.g. `500ms`, `15s`, `5m`, `6h`, `30d`"),
        );
        check(
            "s",
            Err(
                "invalid duration `s`: expected a number followed by a unit (ms, s, m, h, d, w), e.g. `15s`",
            ),
        );
        check(
            "99999999999999999999999999999999999999999s",
            Err("invalid duration `99999999999999999999999999999999999999999s`: number too large"),
        );
        check(
            "40000000000w",
            Err("invalid duration `40000000000w`: too large"),
        );
    }

    #[test]
    fn formats_largest_exact_unit() {
        assert_eq!(format(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format(Duration::from_secs(5400)), "90m");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(14 * 86_400)), "2w");
    }
}
