//! Durations in Go's syntax (`90s`, `1m30s`, `250ms`, `1.5h`), as docker-proxy's flags take them.

use std::fmt;
use std::time::Duration;

/// A duration string that is not in Go's syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration \"{}\" (use a number and a unit, e.g. 90s, 1m30s, 250ms)",
            self.0
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses `s` as Go's `time.ParseDuration` does, except that negative durations are rejected
/// (no flag of cproxy means anything by them). A bare `0` is zero.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(s.to_string());
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * nanos_per_unit;
        rest = tail;
    }
    // Go's limit: durations are i64 nanoseconds (about 292 years). `i64::MAX as f64` rounds up
    // to 2^63, itself one past the limit, so it must be refused too.
    if !total.is_finite() || total >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_go_forms() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("+2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_what_go_rejects_and_negatives() {
        for s in ["", "5", "s", "1x", "-1s", "1..5s", ".s", "1s2", "9999999999h"] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn durations_past_gos_i64_nanoseconds_are_rejected() {
        assert!(parse("9223372036854775808ns").is_err());
        assert!(parse("2562048h").is_err());
        assert_eq!(parse("2562047h"), Ok(Duration::from_secs(2562047 * 3600)));
    }

    #[test]
    fn error_names_the_input_and_the_fix() {
        let e = parse("5").unwrap_err().to_string();
        assert!(e.contains("\"5\"") && e.contains("90s"), "{e}");
    }
}
