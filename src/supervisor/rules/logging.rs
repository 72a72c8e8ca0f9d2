//! Docker's log drivers as a container's `HostConfig.LogConfig` and dockerd's `--log-driver` /
//! `--log-opt` name them: which driver, which options it takes (checked at create, as moby's
//! `ValidateLogOpts`), and how its files rotate (read at start, as the driver's `New`, each
//! refusal in the driver's words).
//!
//! cproxy has three drivers: `json-file` (dockerd's default: one JSON record per line, kept
//! whole unless `max-size` is given), `local` (the same records, rotated by default: 20 MiB
//! files, 5 of them, the old ones gzipped) and `none` (nothing kept; `logs` is refused).

use std::collections::BTreeMap;

use crate::supervisor::rules::format::{go_atoi, go_parse_bool};
use crate::supervisor::rules::mounts::ram_in_bytes;

/// What a `tag` template may name: moby's `logger.Info`, its methods and string fields.
pub const TAG_FIELDS: &[&str] = &[
    "ID",
    "FullID",
    "Name",
    "ImageID",
    "ImageFullID",
    "ImageName",
    "Hostname",
    "DaemonName",
    "ContainerID",
    "ContainerName",
    "ContainerImageID",
    "ContainerImageName",
    "LogPath",
];

/// Checks a `tag` template as Go's `text/template` parses and runs it over a `logger.Info`,
/// in its words (`template: log-tag:1: unclosed action`).
pub fn check_tag(template: &str) -> Result<(), String> {
    use crate::supervisor::rules::template::{position, template_actions};
    let actions = template_actions(template).map_err(|e| format!("template: log-tag:{e}"))?;
    for (offset, action) in actions {
        for word in action.split_whitespace().filter(|w| w.starts_with('.') && w.len() > 1) {
            let name = word[1..].split('.').next().unwrap_or_default();
            if !TAG_FIELDS.contains(&name) {
                let (line, col) = position(template, offset + action.find(word).unwrap_or(0));
                return Err(format!(
                    "template: log-tag:{line}:{col}: executing \"log-tag\" at <{word}>: can't \
                     evaluate field {name} in type *logger.Info"
                ));
            }
        }
    }
    Ok(())
}

/// What json-file adds to each record (its `attrs`, moby's `Info.ExtraAttributes`): the
/// container's labels named by `labels` or matched by `labels-regex`, its environment's
/// variables named by `env` or matched by `env-regex`, and `tag` (already rendered; left out
/// when empty). A regexp that does not parse is refused in Go's words.
pub fn attributes(
    config: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    env: &[String],
    tag: &str,
) -> Result<BTreeMap<String, String>, String> {
    let regex = |key: &str| -> Result<Option<regex_lite::Regex>, String> {
        match config.get(key).filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(r) => regex_lite::Regex::new(r)
                .map(Some)
                .map_err(|e| format!("error parsing regexp: {e}: `{r}`")),
        }
    };
    let env: BTreeMap<&str, &str> = env.iter().filter_map(|e| e.split_once('=')).collect();
    let mut extra = BTreeMap::new();
    let mut take = |named: &str, regex: Option<regex_lite::Regex>, from: Vec<(&str, &str)>| {
        let names: Vec<&str> = config.get(named).map_or(Vec::new(), |n| n.split(',').collect());
        for (k, v) in from {
            if names.contains(&k) || regex.as_ref().is_some_and(|r| r.is_match(k)) {
                extra.insert(k.to_string(), v.to_string());
            }
        }
    };
    let labels_regex = regex("labels-regex")?;
    let env_regex = regex("env-regex")?;
    take("labels", labels_regex, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect());
    take("env", env_regex, env.into_iter().collect());
    if !tag.is_empty() {
        extra.insert("tag".to_string(), tag.to_string());
    }
    Ok(extra)
}

/// The attributes as `logs --details` shows them before a record: `k=v` pairs joined by `,`,
/// keys sorted, each side escaped as Go's `url.QueryEscape` escapes it.
pub fn details(attrs: &BTreeMap<String, String>) -> String {
    use crate::supervisor::rules::format::percent_encode;
    let pairs: Vec<String> = attrs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k, true), percent_encode(v, true)))
        .collect();
    pairs.join(",")
}

/// One json-file record, a line as moby's `jsonlog` writes it: `log`, `stream`, the `attrs`
/// (already encoded by [`encode_attrs`]; empty: none), `time`. The text is escaped as
/// jsonlog escapes it: `<`, `>`, `&` and control characters but `\n` and `\r` as `\u00XX`,
/// U+2028 and U+2029 as themselves escaped, a replaced byte as `\ufffd`.
pub fn record_line(log: &str, stream: &str, attrs: &str, time: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(log.len() + attrs.len() + 64);
    out.extend_from_slice(b"{\"log\":\"");
    // Runs of characters written as they are are copied whole.
    let mut plain = 0;
    for (at, c) in log.char_indices() {
        // The short escape, or empty for `\u00XX`.
        let escape: Option<&[u8]> = match c {
            '\\' => Some(b"\\\\"),
            '"' => Some(b"\\\""),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '<' | '>' | '&' | '\0'..='\x1f' | '\u{2028}' | '\u{2029}' | '\u{fffd}' => Some(b""),
            _ => None,
        };
        let Some(escape) = escape else { continue };
        out.extend_from_slice(&log.as_bytes()[plain..at]);
        match escape {
            b"" => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            short => out.extend_from_slice(short),
        }
        plain = at + c.len_utf8();
    }
    out.extend_from_slice(&log.as_bytes()[plain..]);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",");
    if !attrs.is_empty() {
        out.extend_from_slice(b"\"attrs\":");
        out.extend_from_slice(attrs.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(b"\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

/// The attributes as Go's `json.Marshal` writes a `map[string]string`: keys sorted, `<`, `>`,
/// `&`, U+2028 and U+2029 escaped as `\u00XX`; empty when there are none.
pub fn encode_attrs(attrs: &BTreeMap<String, String>) -> String {
    if attrs.is_empty() {
        return String::new();
    }
    let text = serde_json::to_string(attrs).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// dockerd's default driver.
pub const DEFAULT_DRIVER: &str = "json-file";

/// The drivers dockerd 20.10 has built in that cproxy has not: they forward output to a
/// service (a syslog, journald, a collector); cproxy keeps it on the host's disk.
const FORWARDING: &[&str] = &[
    "awslogs",
    "etwlogs",
    "fluentd",
    "gcplogs",
    "gelf",
    "journald",
    "logentries",
    "splunk",
    "syslog",
];

/// The options `json-file` takes (moby's `jsonfilelog.ValidateLogOpt`).
const JSON_FILE_OPTS: &[&str] =
    &["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"];

/// The options `local` takes.
const LOCAL_OPTS: &[&str] = &["max-file", "max-size", "compress"];

/// A log driver cproxy has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// `json-file`: the records in `<id>-json.log` (the file `inspect`'s `LogPath` names).
    JsonFile,
    /// `local`: the records under `local-logs/`, rotated by default.
    Local,
    /// `none`: nothing kept.
    None,
}

impl Driver {
    /// The driver a name selects (empty: dockerd's default), or dockerd's refusal.
    pub fn parse(name: &str) -> Result<Driver, String> {
        match name {
            "" | "json-file" => Ok(Driver::JsonFile),
            "local" => Ok(Driver::Local),
            "none" => Ok(Driver::None),
            other if FORWARDING.contains(&other) => Err(format!(
                "logging driver {other} is not supported by cproxy: use json-file, local or none"
            )),
            other => Err(format!(
                "error looking up logging plugin {other}: plugin \"{other}\" not found"
            )),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Driver::JsonFile => "json-file",
            Driver::Local => "local",
            Driver::None => "none",
        }
    }
}

/// What the create checks (moby's `ValidateLogOpts`): the driver exists, and takes each
/// option named (the values are read at start, by [`rotation`]).
pub fn check(kind: &str, config: &BTreeMap<String, String>) -> Result<Driver, String> {
    let driver = Driver::parse(kind)?;
    let (known, words): (&[&str], fn(&str) -> String) = match driver {
        Driver::JsonFile => {
            (JSON_FILE_OPTS, |k| format!("unknown log opt '{k}' for json-file log driver"))
        }
        Driver::Local => (LOCAL_OPTS, |k| format!("unknown log opt '{k}' for log driver local")),
        // dockerd takes any option for `none` (its client refuses them).
        Driver::None => return Ok(driver),
    };
    match config.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(words(k)),
        None => Ok(driver),
    }
}

/// How a driver's files rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated before a record is added once it holds this many bytes (`None`: it
    /// grows without bound, Docker's `json-file` default).
    pub max_size: Option<u64>,
    /// How many files are kept, the one written included (at least 1).
    pub max_files: usize,
    /// Whether rotated files are gzipped (`<file>.1.gz`).
    pub compress: bool,
}

/// `local`'s defaults: 20 MiB files, five of them, the rotated ones gzipped.
const LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
const LOCAL_MAX_FILES: i64 = 5;

/// How the driver's files rotate, read from its options as the driver does when the container
/// starts (`None` for `none`), or the driver's refusal (dockerd's start fails with it, after
/// `failed to initialize logging driver: `).
pub fn rotation(
    driver: Driver,
    config: &BTreeMap<String, String>,
) -> Result<Option<Rotation>, String> {
    let get = |k: &str| config.get(k).map(String::as_str);
    match driver {
        Driver::None => Ok(None),
        Driver::JsonFile => {
            let max_size = match get("max-size") {
                None => None,
                Some(v) => match ram_in_bytes(v)? {
                    n if n <= 0 => return Err("max-size must be a positive number".into()),
                    n => Some(n as u64),
                },
            };
            let max_files = match get("max-file") {
                None => 1,
                Some(v) => match go_atoi(v)? {
                    n if n < 1 => return Err("max-file cannot be less than 1".into()),
                    n => n,
                },
            };
            let compress = get("compress").map(go_parse_bool).transpose()?.unwrap_or(false);
            if compress && (max_files < 2 || max_size.is_none()) {
                return Err(
                    "compress cannot be true when max-file is less than 2 or max-size is not set"
                        .into(),
                );
            }
            Ok(Some(Rotation { max_size, max_files: files(max_files), compress }))
        }
        Driver::Local => {
            let max_size = match get("max-size") {
                None => LOCAL_MAX_SIZE,
                Some(v) => ram_in_bytes(v)
                    .map_err(|e| format!("invalid value for max-size: {v}: {e}"))?
                    .max(0) as u64,
            };
            let max_files = match get("max-file") {
                None => LOCAL_MAX_FILES,
                Some(v) => {
                    go_atoi(v).map_err(|e| format!("invalid value for max-file: {v}: {e}"))?
                }
            };
            let compress = match get("compress") {
                None => true,
                Some(v) => go_parse_bool(v)
                    .map_err(|e| format!("error reading compress log option: {e}"))?,
            };
            if max_files < 0 {
                return Err("max file count cannot be less than 0".into());
            }
            if compress && max_files <= 1 {
                return Err("compression cannot be enabled when max file count is 1".into());
            }
            Ok(Some(Rotation { max_size: Some(max_size), max_files: files(max_files), compress }))
        }
    }
}

/// A file count as kept: at least the one written, at most what a directory can sensibly
/// hold.
fn files(n: i64) -> usize {
    n.clamp(1, 1 << 16) as usize
}

/// A container's log config with the daemon's default merged in, as moby's
/// `mergeAndVerifyLogConfig` does: no driver named takes the daemon's, and the daemon's options
/// fill in those a container of the daemon's driver did not give.
pub fn merge(
    kind: &str,
    config: &BTreeMap<String, String>,
    daemon_kind: &str,
    daemon_config: &BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    let kind = if kind.is_empty() { daemon_kind } else { kind };
    let mut config = config.clone();
    if kind == daemon_kind {
        for (k, v) in daemon_config {
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    (kind.to_string(), config)
}

/// dockerd's `--log-driver` and `--log-opt`s, checked as it starts (the values too, where
/// dockerd leaves them to each container's start: every start would fail on a bad one).
pub fn check_daemon_default(
    kind: &str,
    config: &BTreeMap<String, String>,
) -> Result<Driver, String> {
    let driver = check(kind, config).map_err(|e| format!("failed to set log opts: {e}"))?;
    rotation(driver, config).map_err(|e| format!("failed to set log opts: {e}"))?;
    Ok(driver)
}

/// A `--log-opt KEY=VALUE` as Docker's CLI and dockerd read it (`ConvertKVStringsToMap`): no
/// `=` is a key with an empty value (the driver's check then names it).
pub fn parse_opt(text: &str) -> (String, String) {
    let (k, v) = text.split_once('=').unwrap_or((text, ""));
    (k.to_string(), v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn json(pairs: &[(&str, &str)]) -> Result<Option<Rotation>, String> {
        rotation(Driver::JsonFile, &opts(pairs))
    }

    fn local(pairs: &[(&str, &str)]) -> Result<Option<Rotation>, String> {
        rotation(Driver::Local, &opts(pairs))
    }

    #[test]
    fn create_checks_the_driver_and_its_option_names_as_dockerd() {
        assert_eq!(check("", &opts(&[])), Ok(Driver::JsonFile));
        assert_eq!(check("none", &opts(&[("max-size", "1k")])), Ok(Driver::None));
        assert_eq!(
            check("json-file", &opts(&[("foo", "bar")])).unwrap_err(),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            check("local", &opts(&[("tag", "x")])).unwrap_err(),
            "unknown log opt 'tag' for log driver local"
        );
        assert_eq!(
            check("foo", &opts(&[])).unwrap_err(),
            "error looking up logging plugin foo: plugin \"foo\" not found"
        );
        assert!(check("syslog", &opts(&[])).unwrap_err().contains("not supported by cproxy"));
        assert!(check("json-file", &opts(&[("max-size", "abc"), ("tag", "t")])).is_ok());
    }

    #[test]
    fn json_file_values_are_read_at_start_in_its_words() {
        assert_eq!(json(&[]), Ok(Some(Rotation { max_size: None, max_files: 1, compress: false })));
        assert_eq!(json(&[("max-size", "abc")]).unwrap_err(), "invalid size: 'abc'");
        assert_eq!(json(&[("max-size", "-1")]).unwrap_err(), "invalid size: '-1'");
        assert_eq!(json(&[("max-size", "0")]).unwrap_err(), "max-size must be a positive number");
        assert_eq!(json(&[("max-file", "0")]).unwrap_err(), "max-file cannot be less than 1");
        assert_eq!(
            json(&[("max-file", "x")]).unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            json(&[("compress", "maybe")]).unwrap_err(),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        let no_compress =
            "compress cannot be true when max-file is less than 2 or max-size is not set";
        assert_eq!(json(&[("compress", "true")]).unwrap_err(), no_compress);
        assert_eq!(json(&[("compress", "1"), ("max-size", "1k")]).unwrap_err(), no_compress);
        assert_eq!(
            json(&[("compress", "T"), ("max-size", "1.5k"), ("max-file", "3")]),
            Ok(Some(Rotation { max_size: Some(1536), max_files: 3, compress: true }))
        );
        assert_eq!(json(&[("max-size", "1KiB")]).unwrap().unwrap().max_size, Some(1024));
        assert_eq!(json(&[("max-size", "10")]).unwrap().unwrap().max_size, Some(10));
    }

    #[test]
    fn local_has_docker_s_defaults_and_words() {
        assert_eq!(
            local(&[]),
            Ok(Some(Rotation { max_size: Some(20 << 20), max_files: 5, compress: true }))
        );
        assert_eq!(
            local(&[("max-size", "abc")]).unwrap_err(),
            "invalid value for max-size: abc: invalid size: 'abc'"
        );
        assert_eq!(
            local(&[("max-file", "x")]).unwrap_err(),
            "invalid value for max-file: x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            local(&[("compress", "x")]).unwrap_err(),
            "error reading compress log option: strconv.ParseBool: parsing \"x\": invalid syntax"
        );
        let one = "compression cannot be enabled when max file count is 1";
        assert_eq!(local(&[("max-file", "1")]).unwrap_err(), one);
        assert_eq!(local(&[("max-file", "0")]).unwrap_err(), one);
        assert_eq!(
            local(&[("max-file", "-1"), ("compress", "false")]).unwrap_err(),
            "max file count cannot be less than 0"
        );
        assert_eq!(
            local(&[("max-file", "0"), ("compress", "false")]),
            Ok(Some(Rotation { max_size: Some(20 << 20), max_files: 1, compress: false }))
        );
        assert_eq!(rotation(Driver::None, &opts(&[("max-size", "x")])), Ok(None));
    }

    #[test]
    fn the_daemon_s_options_fill_in_for_its_driver_only() {
        let daemon = opts(&[("max-size", "10m"), ("max-file", "3")]);
        let (kind, config) = merge("", &opts(&[("max-file", "2")]), "json-file", &daemon);
        assert_eq!(kind, "json-file");
        assert_eq!(config, opts(&[("max-size", "10m"), ("max-file", "2")]));
        let (kind, config) = merge("local", &opts(&[]), "json-file", &daemon);
        assert_eq!((kind.as_str(), config), ("local", opts(&[])));
    }

    /// As dockerd 20.10.24 wrote `echo -e "<a&b>\t\001\xff\xe2\x80\xa8\"\\x"` here.
    #[test]
    fn a_record_is_escaped_as_jsonlog_escapes_it() {
        let text = String::from_utf8_lossy(b"<a&b>\t\x01\xff\xe2\x80\xa8\"\\x\n");
        let attrs = encode_attrs(&opts(&[("ky", "v&w")]));
        assert_eq!(
            String::from_utf8(record_line(&text, "stdout", &attrs, "T")).unwrap(),
            concat!(
                r#"{"log":"\u003ca\u0026b\u003e\u0009\u0001\ufffd\u2028\"\\x\n","#,
                r#""stream":"stdout","attrs":{"ky":"v\u0026w"},"time":"T"}"#,
                "\n"
            )
        );
        assert_eq!(
            record_line("hi", "stderr", "", "T"),
            b"{\"log\":\"hi\",\"stream\":\"stderr\",\"time\":\"T\"}\n"
        );
        assert_eq!(details(&opts(&[("a b", "x/y=z,&")])), "a+b=x%2Fy%3Dz%2C%26");
    }

    #[test]
    fn a_log_opt_is_a_key_and_a_value() {
        assert_eq!(parse_opt("max-size=10m"), ("max-size".into(), "10m".into()));
        assert_eq!(parse_opt("labels=a=b"), ("labels".into(), "a=b".into()));
        assert_eq!(parse_opt("max-size"), ("max-size".into(), String::new()));
    }
}
