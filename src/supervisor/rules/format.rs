//! Docker's text formats, as the 20.10 client prints them: Go's tabwriter columns (`ps`'s table),
//! the PORTS column with consecutive ports folded into ranges, `docker port` lines, human
//! durations ("5 seconds ago"), quoted commands and RFC 3339 timestamps. Pure functions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A port as the API lists it, the input of [`displayable_ports`].
use crate::supervisor::api::types::Port;

/// The PORTS column of `docker ps`: sorted, runs of ports that map to themselves folded into
/// ranges (`0.0.0.0:7000-7002->7000-7002/tcp`), other mappings listed after them.
pub fn displayable_ports(ports: &[Port]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, &a.proto).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port,
            &b.proto,
        ))
    });
    // Groups keyed by "IP/proto" (or "proto"), in the order the keys first appear.
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for port in &ports {
        let current = port.private_port;
        let key = if port.ip.is_empty() {
            port.proto.clone()
        } else {
            if port.public_port != current {
                host_mappings.push(format!(
                    "{}:{}->{}/{}",
                    port.ip, port.public_port, port.private_port, port.proto
                ));
                continue;
            }
            format!("{}/{}", port.ip, port.proto)
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(group) if current == group.2.wrapping_add(1) => group.2 = current,
            Some(group) => {
                result.push(form_group(&group.0, group.1, group.2));
                *group = (key, current, current);
            }
        }
    }
    for (key, first, last) in &groups {
        result.push(form_group(key, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    // The key is "proto" or "IP/proto"; an IPv6 address has no '/'.
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{proto}")
}

/// Rows as `docker ps` and `docker network ls` print them: the cells in [`tabwrite`]'s columns
/// (min width 10, padding 3), every column but the last padded to its widest cell plus 3, a
/// line a row.
pub fn table(rows: &[Vec<String>]) -> String {
    let lines: Vec<Vec<&str>> =
        rows.iter().map(|row| row.iter().map(String::as_str).collect()).collect();
    align(&lines, 10, 3).into_iter().map(|line| line + "\n").collect()
}

/// Go's `text/tabwriter` with space padding and no flags: a cell ends at a tab; each column
/// block (consecutive lines that have a cell in that column) is as wide as its widest cell
/// plus `padding`, at least `min_width`; the text after a line's last tab is not a cell.
pub fn tabwrite(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    align(&lines, min_width, padding).join("\n")
}

/// Each line's cells padded as [`tabwrite`] says (a line's last cell is its trailing text).
fn align(lines: &[Vec<&str>], min_width: usize, padding: usize) -> Vec<String> {
    let mut widths: Vec<Vec<usize>> = vec![Vec::new(); lines.len()];
    fn block(
        lines: &[Vec<&str>],
        widths: &mut [Vec<usize>],
        column: usize,
        from: usize,
        to: usize,
        min: usize,
        pad: usize,
    ) {
        let mut i = from;
        while i < to {
            if column + 1 >= lines[i].len() {
                i += 1;
                continue;
            }
            let start = i;
            let mut width = min;
            while i < to && column + 1 < lines[i].len() {
                width = width.max(lines[i][column].chars().count() + pad);
                i += 1;
            }
            for w in &mut widths[start..i] {
                w.push(width);
            }
            block(lines, widths, column + 1, start, i, min, pad);
        }
    }
    block(lines, &mut widths, 0, 0, lines.len(), min_width, padding);
    lines
        .iter()
        .zip(&widths)
        .map(|(cells, widths)| {
            let mut out = String::new();
            for (j, cell) in cells.iter().enumerate() {
                out.push_str(cell);
                if let Some(w) = widths.get(j) {
                    out.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
                }
            }
            out
        })
        .collect()
}

/// Go's `units.HumanDuration`: "Less than a second", "5 seconds", "About a minute", …
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// Go's `units.HumanSizeWithPrecision`: decimal units (`kB`, `MB`, …), `precision`
/// significant digits as Go's `%.*g` writes them (`1.98MB`, `999B`, `1e+03kB`).
pub fn human_size(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    scaled(size, 1000.0, &UNITS, precision)
}

/// go-units' `CustomSize`: `size` divided by `base` until below it, in `%.*g`, its unit after.
fn scaled(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut s = size;
    let mut i = 0;
    while s >= base && i < units.len() - 1 {
        s /= base;
        i += 1;
    }
    format!("{}{}", go_g(s, precision.max(1)), units[i])
}

/// Go's `units.BytesSize`: binary units (`KiB`, `MiB`, …), four significant digits
/// (`372KiB`, `23.54GiB`), as `docker stats` shows memory.
pub fn bytes_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    scaled(size, 1024.0, &UNITS, 4)
}

/// Go's `%.*g`: the shortest of `%e` and `%f` at `precision` significant digits, trailing
/// zeros dropped.
fn go_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let trim = |s: String| -> String {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    };
    let e = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim(format!("{v:.decimals$}"))
    }
}

/// The command as dockerd lists it: the path, then the arguments, those with a space in
/// single quotes (`sh -c 'exit 3'`).
pub fn command_line(path: &str, args: &[String]) -> String {
    let mut s = path.to_string();
    for arg in args {
        s.push(' ');
        if arg.contains(' ') {
            s.push('\'');
            s.push_str(arg);
            s.push('\'');
        } else {
            s.push_str(arg);
        }
    }
    s
}

/// A string as Go's `encoding/json` marshals it: `<`, `>`, `&`, U+2028 and U+2029 as `\u…`,
/// control characters as `\n`, `\r`, `\t` or `\u00XX`.
pub fn go_json_string(s: &str, out: &mut String) {
    go_json_quote(s, true, out);
}

/// [`go_json_string`], with `<`, `>` and `&` kept as they are when not `escape_html` (an
/// encoder after `SetEscapeHTML(false)`, as dockerd's `WriteJSON`).
pub fn go_json_quote(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote` for the printable text a command line is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-encodes `s` as Go's `url.PathEscape` does for a value (unreserved bytes kept), or,
/// with `space_plus`, as `url.QueryEscape` does (a space as `+`).
pub fn percent_encode(s: &str, space_plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' if space_plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits within 64 bits; the error in its
/// words (`strconv.Atoi: parsing "x": invalid syntax`).
pub fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(s)));
    }
    s.parse().map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", go_quote(s)))
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True`, `0 f F FALSE false False`; the error in
/// its words.
pub fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(s))),
    }
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A time as RFC 3339 with nanoseconds in UTC, as Docker writes `Created` and log times.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Go's `time.Time` as its JSON and `RFC3339Nano` write it: trailing zeros of the
/// nanoseconds dropped (`2026-12-06T14:47:28.5Z`, `…:28Z`), in UTC.
pub fn go_rfc3339_nano(t: SystemTime) -> String {
    let s = rfc3339(t);
    let Some((head, frac)) = s.trim_end_matches('Z').split_once('.') else { return s };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{head}Z") } else { format!("{head}.{frac}Z") }
}

/// Nanoseconds since the epoch, now (0 before it, the largest number past 2262).
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Reads back what [`rfc3339`] wrote (and Docker's zero time, `0001-01-01T00:00:00Z`, as the
/// epoch).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let days = days_from_civil(y, m, day);
    if days < 0 {
        return Some(UNIX_EPOCH);
    }
    let secs = days as u64 * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Howard Hinnant's algorithm: days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, public: u16, private: u16, proto: &str) -> Port {
        Port { ip: ip.into(), private_port: private, public_port: public, proto: proto.into() }
    }

    #[test]
    fn go_json_quotes_escape_html_only_when_asked_as_dockerds_write_json_does_not() {
        let odd = "a<b>&\"\\\n\u{1}\u{2028}é";
        let (mut marshalled, mut written) = (String::new(), String::new());
        go_json_quote(odd, true, &mut marshalled);
        go_json_quote(odd, false, &mut written);
        assert_eq!(marshalled, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
        assert_eq!(written, r#""a<b>&\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn ports_column_folds_ranges_as_docker_ps() {
        // p_multi of the 3a transcript.
        let mut ports = vec![
            port("127.0.0.1", 5004, 5000, "tcp"),
            port("0.0.0.0", 5005, 5001, "tcp"),
            port("::", 5005, 5001, "tcp"),
            port("0.0.0.0", 5006, 53, "tcp"),
            port("::", 5006, 53, "tcp"),
            port("0.0.0.0", 5006, 53, "udp"),
            port("::", 5006, 53, "udp"),
        ];
        for p in 6100..=6103 {
            ports.push(port("0.0.0.0", p, p, "udp"));
            ports.push(port("::", p, p, "udp"));
        }
        assert_eq!(
            displayable_ports(&ports),
            "0.0.0.0:6100-6103->6100-6103/udp, :::6100-6103->6100-6103/udp, \
             0.0.0.0:5006->53/tcp, 0.0.0.0:5006->53/udp, :::5006->53/tcp, :::5006->53/udp, \
             127.0.0.1:5004->5000/tcp, 0.0.0.0:5005->5001/tcp, :::5005->5001/tcp"
        );
        let pub_p = [port("0.0.0.0", 32768, 5000, "tcp"), port("::", 32768, 5000, "tcp")];
        assert_eq!(displayable_ports(&pub_p), "0.0.0.0:32768->5000/tcp, :::32768->5000/tcp");
        assert_eq!(displayable_ports(&[port("", 0, 80, "tcp")]), "80/tcp");
    }

    #[test]
    fn bytes_sizes_are_go_units_binary_ones() {
        // 03-stats.txt's MEM USAGE / LIMIT cells.
        assert_eq!(bytes_size(380_928.0), "372KiB");
        assert_eq!(bytes_size(67_108_864.0), "64MiB");
        assert_eq!(bytes_size(25_276_000_000.0), "23.54GiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn table_pads_as_tabwriter() {
        let rows = vec![
            vec!["CONTAINER ID".into(), "PORTS".into(), "NAMES".into()],
            vec!["30395957e23f".into(), "".into(), "p_exited".into()],
        ];
        assert_eq!(
            table(&rows),
            "CONTAINER ID   PORTS     NAMES\n30395957e23f             p_exited\n"
        );
    }

    #[test]
    fn tabwriter_blocks_columns_as_go() {
        assert_eq!(tabwrite("a\tb\nlonger cell\tc\n", 10, 3), "a             b\nlonger cell   c\n");
        // A line without a tab ends the block.
        assert_eq!(tabwrite("a\tb\nplain\nccc\td\n", 4, 1), "a   b\nplain\nccc d\n");
        assert_eq!(tabwrite("sidecar\t\t\n", 10, 3), "sidecar             \n");
    }

    #[test]
    fn durations_and_commands_read_as_docker() {
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(4)), "4 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(
            go_quote(&command_line("sh", &["-c".into(), "exit 3".into()])),
            "\"sh -c 'exit 3'\""
        );
        assert_eq!(ellipsis("python3 -m http.server 8000", 20), "python3 -m http.ser…");
    }

    #[test]
    fn sizes_read_as_dockers() {
        for (size, want) in [
            (0.0, "0B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1982307.0, "1.98MB"),
            (12345.0, "12.3kB"),
            (123456.0, "123kB"),
            (999999.0, "1e+03kB"),
            (4.26e9, "4.26GB"),
        ] {
            assert_eq!(human_size(size, 3), want, "{size}");
        }
        assert_eq!(human_size(1982307.0, 4), "1.982MB");
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_795_000_000, 123_456_789);
        let s = rfc3339(t);
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
