//! The settings file of docker-proxy mode: what dockerd's command line cannot say.
//!
//! dockerd starts one cproxy per published port with docker-proxy's six flags and nothing else,
//! so every other forwarding setting comes from a TOML file read at start:
//! [`DEFAULT_PATH`], or the file [`PATH_ENV`] names. Its `[defaults]` apply to every binding;
//! each `[[binding]]` table selects bindings by what dockerd's command line tells (protocol, host
//! address and port, container address and port) and overrides the defaults for them. The
//! first `[[binding]]` that matches is the one applied (file order, as firewall rules), over
//! `[defaults]`; flags given on the command line win over both.
//!
//! A file that cannot be read or does not hold exactly what is documented is an error naming
//! the file, the line and the reason ([`SettingsError`]): cproxy then refuses to start. Only a
//! missing file at the default path means "no settings". The format is in docs/SETTINGS.md.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::cli::{MAX_THREADS, Tuning};
use crate::duration;
use crate::proxy::Proto;
use crate::proxy::proxy_proto::Version;
use crate::spec::PortRange;

/// Where the settings file is when [`PATH_ENV`] is not set; its absence means no settings.
pub const DEFAULT_PATH: &str = "/etc/cproxy/settings.toml";

/// The environment variable that names another settings file, which must then exist.
pub const PATH_ENV: &str = "CPROXY_SETTINGS";

/// Defines a table of the file: its own `extra` keys, then every forwarding setting, each
/// optional (absent: the next source decides), unknown keys refused.
macro_rules! settings_table {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Option<$ty>,)*
            /// `-grace`: how long busy connections may finish after a stop signal.
            pub grace: Option<GoDuration>,
            /// `-connect-timeout`: how long a dial to the container may take (more than 0).
            pub connect_timeout: Option<PositiveDuration>,
            /// `-max-conns`: concurrent TCP connections.
            pub max_conns: Option<Bounded<1, { u32::MAX as i64 }>>,
            /// `-tcp-idle-timeout`: close TCP connections idle this long ("0": never).
            pub tcp_idle_timeout: Option<GoDuration>,
            /// `-tcp-keepalive`: keepalive idle time and interval ("0": off).
            pub tcp_keepalive: Option<GoDuration>,
            /// `-udp-idle-timeout`: close UDP sessions idle this long (more than 0).
            pub udp_idle_timeout: Option<PositiveDuration>,
            /// `-udp-max-sessions`: UDP sessions before the least recently used is evicted.
            pub udp_max_sessions: Option<Bounded<1, { u32::MAX as i64 }>>,
            /// `-pipe-size`: capacity of each splice pipe in bytes.
            pub pipe_size: Option<Bounded<4096, { u32::MAX as i64 }>>,
            /// `-no-splice`: copy through user space.
            pub no_splice: Option<bool>,
            /// `-proxy-protocol`: "v1", "v2" or "none"; TCP bindings only.
            pub proxy_protocol: Option<Spanned<ProxyProtocol>>,
            /// `-source-ip-transparent`: connect to the container from the client's address.
            pub source_ip_transparent: Option<bool>,
            /// `-threads`: worker threads.
            pub threads: Option<Bounded<1, { MAX_THREADS as i64 }>>,
            /// `-log-format`: "text" or "json".
            pub log_format: Option<LogFormat>,
            /// What is logged, as `CPROXY_LOG` takes it (`info`, `cproxy=debug,warn`);
            /// `CPROXY_LOG` or `RUST_LOG` in the environment win over it.
            pub log_level: Option<LogLevel>,
        }

        impl $name {
            /// This table's forwarding settings over `base`: each one it sets replaces
            /// `base`'s.
            pub fn over(&self, base: &Values) -> Values {
                Values {
                    grace: self.grace.or(base.grace),
                    connect_timeout: self.connect_timeout.or(base.connect_timeout),
                    max_conns: self.max_conns.or(base.max_conns),
                    tcp_idle_timeout: self.tcp_idle_timeout.or(base.tcp_idle_timeout),
                    tcp_keepalive: self.tcp_keepalive.or(base.tcp_keepalive),
                    udp_idle_timeout: self.udp_idle_timeout.or(base.udp_idle_timeout),
                    udp_max_sessions: self.udp_max_sessions.or(base.udp_max_sessions),
                    pipe_size: self.pipe_size.or(base.pipe_size),
                    no_splice: self.no_splice.or(base.no_splice),
                    proxy_protocol: self.proxy_protocol.clone().or(base.proxy_protocol.clone()),
                    source_ip_transparent: self.source_ip_transparent.or(base.source_ip_transparent),
                    threads: self.threads.or(base.threads),
                    log_format: self.log_format.or(base.log_format),
                    log_level: self.log_level.clone().or(base.log_level.clone()),
                }
            }
        }
    };
}

settings_table! {
    /// Forwarding settings: the `[defaults]` table, and what applies to one binding once the
    /// tables are merged ([`Settings::resolve`]).
    Values {}
}

settings_table! {
    /// A `[[binding]]` table: which bindings it selects (a key left out selects any), and the
    /// settings it overrides for them.
    Rule {
        /// `tcp` or `udp`.
        proto: ProtoSelector,
        /// The `-host-ip` dockerd passes (`0.0.0.0`, `::`, an address), or a network (CIDR).
        host_ip: IpSelector,
        /// The `-host-port`: a port, or a range `"8000-8100"`.
        host_port: PortSelector,
        /// The `-container-ip`, or a network (`"172.17.0.0/16"`).
        container_ip: IpSelector,
        /// The `-container-port`: a port or a range.
        container_port: PortSelector,
    }
}

/// A settings file as read: `[defaults]` and the `[[binding]]` tables in file order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Settings for every binding.
    #[serde(default)]
    pub defaults: Values,
    /// Overrides for selected bindings; the first that matches applies.
    #[serde(default, rename = "binding")]
    pub bindings: Vec<Rule>,
    /// The control socket of the shared forwarder each process hands its port to
    /// (`crate::handoff`); `""` turns the handoff off. The `CPROXY_FORWARDER` environment
    /// variable wins over it; without either, `/run/cproxy/forwarder.sock`.
    #[serde(default)]
    pub forwarder: Option<String>,
}

/// What dockerd's command line says about the one binding of a docker-proxy mode process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// `-proto`.
    pub proto: Proto,
    /// `-host-ip`.
    pub host_ip: IpAddr,
    /// `-host-port` (a Go int: it may be out of range, or absent with `-use-listen-fd`).
    pub host_port: Option<i64>,
    /// `-container-ip`.
    pub container_ip: IpAddr,
    /// `-container-port`.
    pub container_port: Option<i64>,
}

impl Rule {
    /// True when every selector this rule has matches `t`.
    pub fn matches(&self, t: &Target) -> bool {
        self.proto.is_none_or(|p| p.0 == t.proto)
            && self.host_ip.is_none_or(|s| s.contains(t.host_ip))
            && self.host_port.is_none_or(|s| s.contains(t.host_port))
            && self.container_ip.is_none_or(|s| s.contains(t.container_ip))
            && self.container_port.is_none_or(|s| s.contains(t.container_port))
    }
}

impl Settings {
    /// The settings for `t`: the first `[[binding]]` that matches it, over `[defaults]`.
    pub fn resolve(&self, t: &Target) -> Values {
        let defaults = self.defaults.over(&Values::default());
        match self.bindings.iter().find(|rule| rule.matches(t)) {
            Some(rule) => rule.over(&defaults),
            None => defaults,
        }
    }

    /// Reads the settings file: [`PATH_ENV`]'s if set (it must exist), else [`DEFAULT_PATH`]'s
    /// if there is one, else no settings.
    pub fn load() -> Result<Settings, SettingsError> {
        match std::env::var_os(PATH_ENV) {
            Some(path) if path.is_empty() => Err(SettingsError {
                path: PathBuf::new(),
                position: None,
                reason: format!("{PATH_ENV} is set but empty (unset it, or name a file)"),
            }),
            Some(path) => Settings::read(Path::new(&path), true),
            None => Settings::read(Path::new(DEFAULT_PATH), false),
        }
    }

    /// Reads and parses the file at `path`; if it does not exist, that is an error when
    /// `required`, and no settings otherwise.
    pub fn read(path: &Path, required: bool) -> Result<Settings, SettingsError> {
        let error = |position, reason| SettingsError { path: path.to_owned(), position, reason };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Settings::default());
            }
            Err(e) => {
                let from = if required { format!(" (named by {PATH_ENV})") } else { String::new() };
                return Err(error(None, format!("cannot read{from}: {}", os_words(&e))));
            }
        };
        parse_bytes(&bytes).map_err(|e| error(Some((e.line, e.column)), e.reason))
    }
}

/// An I/O error's words without Rust's ` (os error N)`, as Go's errors read.
fn os_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Parses the text of a settings file (which must be UTF-8).
pub fn parse_bytes(bytes: &[u8]) -> Result<Settings, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let (line, column) = position(bytes, e.valid_up_to());
            Err(ParseError { line, column, reason: "the file is not UTF-8 text".to_string() })
        }
    }
}

/// Parses a settings file's text.
pub fn parse(text: &str) -> Result<Settings, ParseError> {
    let settings: Settings = toml::from_str(text).map_err(|e| {
        let (line, column) = position(text.as_bytes(), e.span().map_or(0, |s| s.start));
        ParseError { line, column, reason: one_line(e.message()) }
    })?;
    for rule in &settings.bindings {
        if let (Some(proto), Some(pp)) = (rule.proto, &rule.proxy_protocol)
            && proto.0 == Proto::Udp
            && pp.get_ref().0.is_some()
        {
            let (line, column) = position(text.as_bytes(), pp.span().start);
            return Err(ParseError {
                line,
                column,
                reason: "proxy_protocol is for TCP: a binding with proto = \"udp\" cannot carry \
                         the header"
                    .to_string(),
            });
        }
    }
    Ok(settings)
}

/// A message on one line: the status pipe's text is shown by dockerd as one.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() { "invalid settings".to_string() } else { lines.join("; ") }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn position(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

/// Why a settings file's text was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, on one line.
    pub reason: String,
}

/// Why the settings file could not be used: the file, the place (for a file that was read),
/// the reason. cproxy refuses to start with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The file.
    pub path: PathBuf,
    /// Line and column, when the file was read and its text is at fault.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            return write!(f, "settings file: {}", self.reason);
        }
        write!(f, "settings file {}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ", line {line}, column {column}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for SettingsError {}

impl Values {
    /// Sets `tuning` (the command line's) from these settings, except what `given` says was
    /// given on the command line. A `proto` binding that is UDP takes no PROXY protocol.
    pub fn apply(&self, proto: Proto, tuning: &mut Tuning, given: &dyn Fn(&str) -> bool) {
        // Each setting is the flag's field of the same name.
        macro_rules! set {
            ($field:ident, |$v:ident| $value:expr) => {
                if let Some($v) = &self.$field
                    && !given(stringify!($field))
                {
                    tuning.$field = $value;
                }
            };
        }
        set!(grace, |v| v.0);
        set!(connect_timeout, |v| v.0);
        set!(max_conns, |v| v.get() as u32);
        set!(tcp_idle_timeout, |v| Some(v.0));
        set!(tcp_keepalive, |v| v.0);
        set!(udp_idle_timeout, |v| v.0);
        set!(udp_max_sessions, |v| v.get() as u32);
        set!(pipe_size, |v| v.get() as u32);
        set!(no_splice, |v| *v);
        set!(source_ip_transparent, |v| *v);
        set!(threads, |v| Some(v.get() as u16));
        set!(log_format, |v| if v.json { "json" } else { "text" }.to_string());
        if proto == Proto::Tcp {
            set!(proxy_protocol, |v| v.get_ref().0);
        }
    }
}

/// The ids of the flags given on the command line `args` (docker-proxy mode; as `main` got
/// them, before normalizing): those the settings file does not override.
pub fn given_flags(args: Vec<OsString>) -> BTreeSet<String> {
    use clap::CommandFactory;
    use clap::parser::ValueSource;
    let args = crate::compat::normalize_args(args);
    let Ok(matches) = crate::cli::Cli::command().try_get_matches_from(args) else {
        return BTreeSet::new();
    };
    matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().to_string())
        .collect()
}

/// Deserializes a value written as a string, read by `parse`; `expecting` says what it must be.
fn from_text<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Text<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for Text<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(Text { expecting, parse })
}

/// A duration in Go's syntax (`"5s"`, `"1m30s"`, `"0"`), as the flags take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "a Go duration such as \"5s\", \"1m30s\" or \"0\"", |s| {
            duration::parse(s).map(GoDuration).map_err(|e| e.to_string())
        })
    }
}

/// A Go duration of more than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositiveDuration(pub Duration);

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "a Go duration of more than 0, such as \"10s\"", |s| {
            match duration::parse(s) {
                Ok(d) if d.is_zero() => Err(format!("{s:?}: must be more than 0 (e.g. \"90s\")")),
                Ok(d) => Ok(PositiveDuration(d)),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// An integer from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Int<const MIN: i64, const MAX: i64>;
        impl<const MIN: i64, const MAX: i64> Visitor<'_> for Int<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from {MIN} to {MAX}")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                if (MIN..=MAX).contains(&n) {
                    Ok(Bounded(n))
                } else {
                    Err(E::custom(format!("{n} is out of range: use {MIN} to {MAX}")))
                }
            }
        }
        d.deserialize_i64(Int::<MIN, MAX>)
    }
}

/// `proxy_protocol`: a version, or `"none"` (`None`), which turns off one the defaults set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyProtocol(pub Option<Version>);

impl<'de> Deserialize<'de> for ProxyProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "\"v1\", \"v2\" or \"none\"", |s| match s {
            "none" => Ok(ProxyProtocol(None)),
            "v1" => Ok(ProxyProtocol(Some(Version::V1))),
            "v2" => Ok(ProxyProtocol(Some(Version::V2))),
            _ => Err(format!("unknown proxy_protocol {s:?}: use \"v1\", \"v2\" or \"none\"")),
        })
    }
}

/// `log_format`: `"text"` or `"json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFormat {
    /// True for JSON lines.
    pub json: bool,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "\"text\" or \"json\"", |s| match s {
            "text" => Ok(LogFormat { json: false }),
            "json" => Ok(LogFormat { json: true }),
            _ => Err(format!("unknown log_format {s:?}: use \"text\" or \"json\"")),
        })
    }
}

/// `log_level`: a filter as `CPROXY_LOG` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevel(pub String);

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "a log filter such as \"info\" or \"cproxy=debug,warn\"", |s| {
            match s.parse::<tracing_subscriber::filter::Targets>() {
                Ok(_) => Ok(LogLevel(s.to_string())),
                Err(e) => Err(format!("invalid log_level {s:?}: {e}")),
            }
        })
    }
}

/// `proto`: `"tcp"` or `"udp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoSelector(pub Proto);

impl<'de> Deserialize<'de> for ProtoSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "\"tcp\" or \"udp\"", |s| {
            Proto::from_name(s)
                .map(ProtoSelector)
                .ok_or_else(|| format!("unknown proto {s:?}: use \"tcp\" or \"udp\""))
        })
    }
}

/// `host_ip`, `container_ip`: an address, or a network `ADDRESS/PREFIX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSelector {
    net: IpAddr,
    prefix: u8,
}

impl IpSelector {
    /// True when `ip` is the address, or in the network. IPv4-mapped IPv6 addresses are the
    /// IPv4 address, as Go reads them.
    pub fn contains(self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<IpSelector, String> {
        let bad = || {
            format!(
                "invalid address {s:?}: use an IP address or a network such as \"172.17.0.0/16\""
            )
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let net = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(IpSelector { net, prefix })
    }
}

impl<'de> Deserialize<'de> for IpSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "an IP address or a network such as \"172.17.0.0/16\"", |s| s.parse())
    }
}

/// `host_port`, `container_port`: a port (an integer) or a range (`"8000-8100"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSelector(PortRange);

impl PortSelector {
    /// True when `port` (a Go int from the command line) is in the range.
    pub fn contains(self, port: Option<i64>) -> bool {
        port.and_then(|p| u16::try_from(p).ok()).is_some_and(|p| self.0.contains(p))
    }
}

impl<'de> Deserialize<'de> for PortSelector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTING: &str = "a port from 1 to 65535, or a range such as \"8000-8100\"";
        struct Port;
        impl Visitor<'_> for Port {
            type Value = PortSelector;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortSelector, E> {
                u16::try_from(n)
                    .ok()
                    .and_then(PortRange::single)
                    .map(PortSelector)
                    .ok_or_else(|| E::custom(format!("invalid port {n}: use {EXPECTING}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortSelector, E> {
                s.parse::<PortRange>()
                    .map(PortSelector)
                    .map_err(|_| E::custom(format!("invalid port range {s:?}: use {EXPECTING}")))
            }
        }
        d.deserialize_any(Port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(proto: Proto, host_port: i64, container: &str, container_port: i64) -> Target {
        Target {
            proto,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: Some(host_port),
            container_ip: container.parse().unwrap(),
            container_port: Some(container_port),
        }
    }

    fn err(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    const EXAMPLE: &str = r#"
[defaults]
grace = "30s"
tcp_keepalive = "1m"
log_format = "json"

[[binding]]
host_port = 8443
proxy_protocol = "v2"

[[binding]]
proto = "tcp"
host_port = "9000-9099"
container_ip = "172.17.0.0/16"
proxy_protocol = "v1"
max_conns = 100
threads = 2

[[binding]]
proto = "udp"
container_port = 53
udp_idle_timeout = "10s"
"#;

    #[test]
    fn an_empty_file_is_no_settings() {
        assert_eq!(parse("").unwrap(), Settings::default());
        assert_eq!(parse("# nothing\n\n[defaults]\n").unwrap(), Settings::default());
    }

    #[test]
    fn every_setting_parses_in_the_flags_syntax() {
        let s = parse(
            r#"[defaults]
grace = "1m30s"
connect_timeout = "250ms"
max_conns = 7
tcp_idle_timeout = "0"
tcp_keepalive = "0"
udp_idle_timeout = "1h"
udp_max_sessions = 9
pipe_size = 65536
no_splice = true
proxy_protocol = "none"
source_ip_transparent = true
threads = 1024
log_format = "text"
log_level = "cproxy=debug,warn"
"#,
        )
        .unwrap();
        let d = s.defaults;
        assert_eq!(d.grace, Some(GoDuration(Duration::from_secs(90))));
        assert_eq!(d.connect_timeout, Some(PositiveDuration(Duration::from_millis(250))));
        assert_eq!(d.max_conns.map(Bounded::get), Some(7));
        assert_eq!(d.tcp_idle_timeout, Some(GoDuration(Duration::ZERO)));
        assert_eq!(d.udp_idle_timeout, Some(PositiveDuration(Duration::from_secs(3600))));
        assert_eq!(d.udp_max_sessions.map(Bounded::get), Some(9));
        assert_eq!(d.pipe_size.map(Bounded::get), Some(65536));
        assert_eq!(d.no_splice, Some(true));
        assert_eq!(d.source_ip_transparent, Some(true));
        assert_eq!(d.proxy_protocol.map(|p| *p.get_ref()), Some(ProxyProtocol(None)));
        assert_eq!(d.threads.map(Bounded::get), Some(1024));
        assert_eq!(d.log_format, Some(LogFormat { json: false }));
        assert_eq!(d.log_level, Some(LogLevel("cproxy=debug,warn".into())));
    }

    #[test]
    fn the_first_matching_binding_applies_over_the_defaults() {
        let s = parse(EXAMPLE).unwrap();
        let v2 = |v: &Values| v.proxy_protocol.as_ref().map(|p| p.get_ref().0);
        // host_port 8443, any protocol and container: v2, with the defaults underneath.
        let v = s.resolve(&target(Proto::Tcp, 8443, "10.0.0.9", 443));
        assert_eq!(v2(&v), Some(Some(Version::V2)));
        assert_eq!(v.grace, Some(GoDuration(Duration::from_secs(30))));
        assert_eq!(v.max_conns, None);
        // 9050 in 9000-9099, container in 172.17/16: the second table.
        let v = s.resolve(&target(Proto::Tcp, 9050, "172.17.0.3", 80));
        assert_eq!((v2(&v), v.max_conns.map(Bounded::get)), (Some(Some(Version::V1)), Some(100)));
        assert_eq!(v.tcp_keepalive, Some(GoDuration(Duration::from_secs(60))));
        // Same ports, a container outside the network: defaults only.
        let v = s.resolve(&target(Proto::Tcp, 9050, "10.0.0.3", 80));
        assert_eq!((v2(&v), v.max_conns), (None, None));
        assert_eq!(v, s.defaults);
        // Protocol selects: UDP to 53.
        let v = s.resolve(&target(Proto::Udp, 5353, "172.17.0.3", 53));
        assert_eq!(v.udp_idle_timeout, Some(PositiveDuration(Duration::from_secs(10))));
        let v = s.resolve(&target(Proto::Tcp, 5353, "10.0.0.3", 53));
        assert_eq!(v.udp_idle_timeout, None);
    }

    #[test]
    fn file_order_decides_between_two_matching_bindings() {
        let s = parse(
            "[[binding]]\nhost_port = \"1-65535\"\nmax_conns = 1\n\
             [[binding]]\nhost_port = 80\nmax_conns = 2\n",
        )
        .unwrap();
        let v = s.resolve(&target(Proto::Tcp, 80, "10.0.0.2", 80));
        assert_eq!(v.max_conns.map(Bounded::get), Some(1), "first match, not most specific");
    }

    #[test]
    fn selectors_match_what_dockerd_passes() {
        let rule =
            |text: &str| parse(&format!("[[binding]]\n{text}\n")).unwrap().bindings[0].clone();
        let t = Target {
            proto: Proto::Tcp,
            host_ip: "::".parse().unwrap(),
            host_port: Some(8080),
            container_ip: "::ffff:172.17.0.2".parse().unwrap(),
            container_port: Some(80),
        };
        assert!(rule("").matches(&t), "no selector: every binding");
        assert!(rule("host_ip = \"::\"").matches(&t));
        assert!(!rule("host_ip = \"0.0.0.0\"").matches(&t), "families differ");
        assert!(rule("container_ip = \"172.17.0.2\"").matches(&t), "v4-mapped is v4");
        assert!(rule("container_ip = \"172.16.0.0/12\"").matches(&t));
        assert!(!rule("container_ip = \"172.18.0.0/16\"").matches(&t));
        assert!(rule("container_ip = \"0.0.0.0/0\"").matches(&t));
        assert!(rule("proto = \"TCP\"\nhost_port = \"8000-8080\"").matches(&t));
        assert!(!rule("host_port = \"8081-9000\"").matches(&t));
        assert!(!rule("proto = \"udp\"").matches(&t));
        assert!(rule("container_port = 80").matches(&t));
        // Out-of-range or absent ports (a Go int, -use-listen-fd) match no port selector.
        let odd = Target { host_port: Some(-1), container_port: None, ..t };
        assert!(!rule("host_port = \"1-65535\"").matches(&odd));
        assert!(!rule("container_port = 80").matches(&odd));
        assert!(rule("host_ip = \"::/0\"").matches(&odd));
    }

    #[test]
    fn each_error_names_its_line_and_reason() {
        for (text, line, words) in [
            ("[defaults]\ngrase = \"5s\"\n", 2, "unknown field `grase`"),
            ("[defaults]\n\ngrace = 5\n", 3, "a Go duration"),
            ("[defaults]\ngrace = \"5\"\n", 2, "invalid duration \"5\""),
            ("[defaults]\nconnect_timeout = \"0s\"\n", 2, "must be more than 0"),
            ("[defaults]\nudp_idle_timeout = \"0\"\n", 2, "must be more than 0"),
            ("[defaults]\nmax_conns = 0\n", 2, "0 is out of range: use 1 to"),
            ("[defaults]\nthreads = 1025\n", 2, "use 1 to 1024"),
            ("[defaults]\npipe_size = 4095\n", 2, "use 4096 to"),
            ("[defaults]\nno_splice = \"yes\"\n", 2, "expected a boolean"),
            ("[defaults]\nsource_ip_transparent = 1\n", 2, "expected a boolean"),
            ("[defaults]\nsource_ip_transparency = true\n", 2, "unknown field"),
            ("[defaults]\nproxy_protocol = \"v3\"\n", 2, "unknown proxy_protocol \"v3\""),
            ("[defaults]\nlog_format = \"xml\"\n", 2, "unknown log_format"),
            ("[defaults]\nlog_level = \"cproxy=loud\"\n", 2, "invalid log_level"),
            ("[defaults]\nhost_port = 80\n", 2, "unknown field `host_port`"),
            ("\n[[binding]]\nproto = \"sctp\"\n", 3, "unknown proto \"sctp\""),
            ("[[binding]]\nhost_port = 0\n", 2, "invalid port 0"),
            ("[[binding]]\nhost_port = 70000\n", 2, "invalid port 70000"),
            ("[[binding]]\nhost_port = \"90-80\"\n", 2, "invalid port range \"90-80\""),
            ("[[binding]]\ncontainer_ip = \"172.17.0.0/33\"\n", 2, "invalid address"),
            ("[[binding]]\nhost_ip = \"localhost\"\n", 2, "invalid address"),
            ("[[binding]]\nhostport = 80\n", 2, "unknown field `hostport`"),
            (
                "[[binding]]\nproto = \"udp\"\nhost_port = 53\nproxy_protocol = \"v2\"\n",
                4,
                "proxy_protocol is for TCP",
            ),
            ("[binding]\nhost_port = 80\n", 1, "sequence"),
            ("[defaults\n", 1, ""),
            ("[defaults]\ngrace = \"5s\"\ngrace = \"6s\"\n", 3, "duplicate key"),
            ("[proxy]\n", 1, "unknown field `proxy`"),
        ] {
            let e = err(text);
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.reason.contains(words), "{text:?}: {e:?}");
            assert!(!e.reason.contains('\n'), "{text:?}: one line: {e:?}");
        }
        let e = parse_bytes(b"[defaults]\n# caf\xe9\n").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (2, "the file is not UTF-8 text"));
    }

    #[test]
    fn udp_bindings_may_turn_the_header_off_but_not_on() {
        assert!(parse("[[binding]]\nproto = \"udp\"\nproxy_protocol = \"none\"\n").is_ok());
    }

    fn tuning(args: &[&str]) -> Tuning {
        use clap::Parser;
        let argv = std::iter::once("cproxy").chain(args.iter().copied()).map(Into::into);
        crate::cli::Cli::try_parse_from(crate::compat::normalize_args(argv.collect()))
            .unwrap()
            .docker_proxy
            .tuning
    }

    #[test]
    fn the_file_sets_what_the_command_line_did_not_give() {
        let values = parse(
            "[defaults]\ngrace = \"30s\"\nmax_conns = 5\nproxy_protocol = \"v2\"\n\
             tcp_idle_timeout = \"1m\"\nno_splice = false\nthreads = 2\nlog_format = \"json\"\n",
        )
        .unwrap()
        .defaults;
        let args = ["-host-port", "80", "-grace", "1s", "-no-splice"];
        let given =
            given_flags(std::iter::once("cproxy").chain(args).map(OsString::from).collect());
        assert!(
            given.contains("grace") && given.contains("no_splice") && given.contains("host_port")
        );
        assert!(!given.contains("max_conns"), "a default is not given: {given:?}");
        let mut t = tuning(&args);
        values.apply(Proto::Tcp, &mut t, &|name| given.contains(name));
        assert_eq!(t.grace, Duration::from_secs(1), "the flag wins");
        assert!(t.no_splice, "the flag wins");
        assert_eq!(t.max_conns, 5);
        assert_eq!(t.tcp_idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(t.threads, Some(2));
        assert!(t.json_logs());
        assert_eq!(t.config().proxy_protocol, Some(Version::V2));
        // A UDP binding takes no header from the file.
        let mut t = tuning(&["-proto", "udp"]);
        values.apply(Proto::Udp, &mut t, &|_| false);
        assert_eq!(t.proxy_protocol, None);
    }

    #[test]
    fn a_binding_turns_off_what_the_defaults_turned_on() {
        let s = parse(
            "[defaults]\nproxy_protocol = \"v1\"\ntcp_idle_timeout = \"1m\"\n\
             [[binding]]\nhost_port = 80\nproxy_protocol = \"none\"\ntcp_idle_timeout = \"0\"\n",
        )
        .unwrap();
        let mut t = tuning(&[]);
        s.resolve(&target(Proto::Tcp, 80, "10.0.0.2", 80)).apply(Proto::Tcp, &mut t, &|_| false);
        let c = t.config();
        assert_eq!((c.proxy_protocol, c.tcp_idle_timeout), (None, None));
    }

    #[test]
    fn transparent_mode_is_set_for_the_bindings_a_table_selects_tcp_and_udp() {
        let s = parse(
            "[defaults]\nsource_ip_transparent = true\n\
             [[binding]]\nhost_port = 8443\nsource_ip_transparent = false\n",
        )
        .unwrap();
        for (proto, port, want) in
            [(Proto::Tcp, 80, true), (Proto::Udp, 53, true), (Proto::Tcp, 8443, false)]
        {
            let mut t = tuning(&[]);
            s.resolve(&target(proto, port, "172.17.0.2", port)).apply(proto, &mut t, &|_| false);
            assert_eq!(t.config().transparent, want, "{proto} {port}");
        }
        // The flag given on the command line wins over the file.
        let mut t = tuning(&["-source-ip-transparent=false"]);
        let given = |name: &str| name == "source_ip_transparent";
        s.resolve(&target(Proto::Tcp, 80, "172.17.0.2", 80)).apply(Proto::Tcp, &mut t, &given);
        assert!(!t.config().transparent);
    }

    #[test]
    fn load_reads_the_named_file_and_refuses_one_that_is_not_there() {
        let missing = Path::new("/nonexistent/cproxy/settings.toml");
        assert_eq!(Settings::read(missing, false), Ok(Settings::default()));
        let e = Settings::read(missing, true).unwrap_err();
        assert_eq!(e.position, None);
        assert_eq!(
            e.to_string(),
            "settings file /nonexistent/cproxy/settings.toml: cannot read (named by \
             CPROXY_SETTINGS): No such file or directory"
        );
        let e = Settings::read(Path::new("/"), false).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "a directory: {e}");
    }

    #[test]
    fn the_error_reads_file_line_column_reason() {
        let e = SettingsError {
            path: "/etc/cproxy/settings.toml".into(),
            position: Some((3, 1)),
            reason: "unknown field `grase`".into(),
        };
        assert_eq!(
            e.to_string(),
            "settings file /etc/cproxy/settings.toml, line 3, column 1: unknown field `grase`"
        );
    }

    /// The settings fuzz target's property, over its saved corpus: every text parses or is
    /// refused with a line in it, without a panic.
    #[test]
    fn the_settings_fuzz_corpus_still_holds() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/settings");
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if let Err(e) = parse_bytes(&data) {
                let lines = data.split(|&b| b == b'\n').count();
                assert!((1..=lines).contains(&e.line), "{e:?}");
            }
        }
    }
}
