//! The times `logs` and `events` take, as Docker reads them.
//!
//! - [`parse_api`]: the API's `since`/`until` (moby's `timetypes.ParseTimestamps`): seconds
//!   since the epoch, optionally `.` and a fraction, in Go's words when it cannot
//!   (`strconv.ParseInt: parsing "abc": invalid syntax`, which dockerd answers with a 500).
//! - [`from_cli`]: what the CLI's `--since`/`--until` take (the docker CLI's
//!   `timetypes.GetTimestamp`): a Go duration before now (`10m`, `1h30m`), an RFC 3339 date
//!   or time (local time without a zone), or a Unix timestamp, turned into the API's form.

use std::num::IntErrorKind;

/// Nanoseconds since the epoch of an API `since`/`until` value.
pub fn parse_api(value: &str) -> Result<i64, String> {
    let (secs, frac) = match value.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (value, None),
    };
    let secs = parse_int(secs)?;
    let nanos = match frac {
        None => 0,
        Some(f) => {
            let n = parse_int(f)?;
            // moby scales whatever digits it got to nanoseconds.
            let scale = 10f64.powi(9 - i32::try_from(f.len()).unwrap_or(i32::MAX));
            (n as f64 * scale) as i64
        }
    };
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with its error words.
fn parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {why}", quote(s))
    })
}

/// Go's `%q` of a string (`strconv.Quote`).
fn quote(s: &str) -> String {
    crate::supervisor::rules::format::go_quote(s)
}

/// The API's form (`SECONDS` or `SECONDS.NANOSECONDS`) of a CLI `--since`/`--until` value;
/// `now` in nanoseconds since the epoch, `offset` the local zone's seconds east of UTC (for a
/// time given without a zone).
pub fn from_cli(value: &str, now: i64, offset: i64) -> Result<String, String> {
    if value != "0"
        && let Some(d) = go_duration(value)
    {
        return Ok(now.saturating_sub(d).div_euclid(1_000_000_000).to_string());
    }
    let local = !(value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3);
    match parse_time(value, local) {
        Some(nanos) => {
            let nanos = if local { nanos - i128::from(offset) * 1_000_000_000 } else { nanos };
            let secs = nanos.div_euclid(1_000_000_000);
            Ok(format!("{secs}.{:09}", nanos.rem_euclid(1_000_000_000)))
        }
        None if value.contains('-') => {
            Err(format!("parsing time {}: not a time Docker can read (RFC 3339)", quote(value)))
        }
        None => match parse_api(value) {
            Ok(_) => Ok(value.to_string()),
            Err(_) => Err(format!("failed to parse value as time or duration: {}", quote(value))),
        },
    }
}

/// Go's `time.ParseDuration` (negative too), in nanoseconds.
pub fn go_duration(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let n = i64::try_from(crate::duration::parse(rest).ok()?.as_nanos()).ok()?;
    Some(if neg { -n } else { n })
}

/// An RFC 3339 date or time as the CLI's formats take it (`2006-01-02`, `2006-01-02T15`,
/// `2006-01-02T15:04`, `2006-01-02T15:04:05`, `…05.999999999`; a zone `Z` or `±07:00` after
/// unless `local`), in nanoseconds since the epoch in the zone it names (UTC if `local`).
fn parse_time(value: &str, local: bool) -> Option<i128> {
    fn num(s: &str, len: usize) -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    }
    let b = value.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(&value[..4], 4)?, num(&value[5..7], 2)?, num(&value[8..10], 2)?);
    if !(1..=12).contains(&m) || !(1..=days_in(y, m)).contains(&d) {
        return None;
    }
    let mut rest = &value[10..];
    let mut secs = 0i64;
    let mut nanos = 0i64;
    if let Some(t) = rest.strip_prefix('T') {
        let h = num(t.get(..2)?, 2)?;
        rest = &t[2..];
        let (mut mm, mut ss) = (0, 0);
        if let Some(t) = rest.strip_prefix(':') {
            mm = num(t.get(..2)?, 2)?;
            rest = &t[2..];
            if let Some(t) = rest.strip_prefix(':') {
                ss = num(t.get(..2)?, 2)?;
                rest = &t[2..];
                if let Some(t) = rest.strip_prefix('.') {
                    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                    if end == 0 || end > 9 {
                        return None;
                    }
                    nanos = format!("{:0<9}", &t[..end]).parse().ok()?;
                    rest = &t[end..];
                }
            }
        }
        if h > 23 || mm > 59 || ss > 59 {
            return None;
        }
        secs = h * 3600 + mm * 60 + ss;
    }
    // A fraction needs the whole time (Go's RFC3339Nano).
    if value.contains('.') && nanos == 0 && !value[10..].contains(':') {
        return None;
    }
    let zone = match (local, rest) {
        (true, "") => 0,
        (false, "Z") => 0,
        (false, z) if z.len() == 6 && z.as_bytes()[3] == b':' => {
            let sign = match z.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (zh, zm) = (num(&z[1..3], 2)?, num(&z[4..6], 2)?);
            if zh > 23 || zm > 59 {
                return None;
            }
            sign * (zh * 3600 + zm * 60)
        }
        _ => return None,
    };
    let days = crate::supervisor::rules::format::days_from_civil(y, m, d);
    let secs = i128::from(days) * 86_400 + i128::from(secs) - i128::from(zone);
    Some(secs * 1_000_000_000 + i128::from(nanos))
}

fn days_in(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000_123_456_789;

    #[test]
    fn api_values_as_moby_reads_them() {
        assert_eq!(parse_api("12"), Ok(12_000_000_000));
        assert_eq!(parse_api("12.5"), Ok(12_500_000_000));
        assert_eq!(parse_api("12.000000001"), Ok(12_000_000_001));
        assert_eq!(parse_api("-5"), Ok(-5_000_000_000));
        assert_eq!(
            parse_api("abc"),
            Err(r#"strconv.ParseInt: parsing "abc": invalid syntax"#.to_string())
        );
        assert_eq!(
            parse_api("1.5x"),
            Err(r#"strconv.ParseInt: parsing "5x": invalid syntax"#.to_string())
        );
        assert!(parse_api("").is_err());
        assert!(parse_api("99999999999999999999").unwrap_err().contains("value out of range"));
    }

    #[test]
    fn durations_are_before_now() {
        assert_eq!(from_cli("10s", NOW, 0).unwrap(), (NOW / 1_000_000_000 - 10).to_string());
        assert_eq!(from_cli("1h30m", NOW, 0).unwrap(), (NOW / 1_000_000_000 - 5400).to_string());
        assert_eq!(from_cli("1.5m", NOW, 0).unwrap(), (NOW / 1_000_000_000 - 90).to_string());
        assert_eq!(go_duration("0"), Some(0));
        for bad in ["", "10", "5x", "1..2s", ".s", "s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_with_and_without_zones() {
        assert_eq!(from_cli("2026-12-06", NOW, 0).unwrap(), "1796515200.000000000");
        assert_eq!(from_cli("2026-12-06T21:52:13", NOW, 0).unwrap(), "1796593933.000000000");
        assert_eq!(from_cli("2026-12-06T21:52:13", NOW, 3600).unwrap(), "1796590333.000000000");
        assert_eq!(from_cli("2026-12-06T21:52:13Z", NOW, 3600).unwrap(), "1796593933.000000000");
        assert_eq!(from_cli("2026-12-06T22:52:13+01:00", NOW, 0).unwrap(), "1796593933.000000000");
        assert_eq!(from_cli("2026-12-06T21", NOW, 0).unwrap(), "1796590800.000000000");
        assert_eq!(from_cli("2026-12-06T21:52:13.5Z", NOW, 0).unwrap(), "1796593933.500000000");
        assert_eq!(from_cli("0", NOW, 0).unwrap(), "0");
        assert_eq!(from_cli("1700000000.5", NOW, 0).unwrap(), "1700000000.5");
    }

    #[test]
    fn bad_values_in_docker_words() {
        assert_eq!(
            from_cli("abc", NOW, 0).unwrap_err(),
            r#"failed to parse value as time or duration: "abc""#
        );
        for bad in ["2026-13-01", "2026-02-30", "2026-12-06T25", "2026-12-06x", "2026-12-06.5"] {
            assert!(from_cli(bad, NOW, 0).unwrap_err().starts_with("parsing time"), "{bad}");
        }
    }
}
