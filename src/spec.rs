//! Docker's `-p` port specs, `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`: parsed as Docker parses
//! them (go-connections' `nat.ParsePortSpec`), with Docker's error words, shown in a form that
//! parses back to the same spec, and broken down into the one-port mappings a spec stands for.
//!
//! Accepted, as Docker accepts them:
//!
//! - `80`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`, `:8080:80`, `::80`;
//! - `/tcp` or `/udp` after the container port, in any case (`/sctp` is refused: cproxy cannot
//!   forward it);
//! - ranges: `8000-8010:80-90` (pairwise), `80-90` (each to any host port), `8000-8010:80` (one
//!   host port picked from the range);
//! - IPv6 host addresses in brackets (`[::1]:8080:80`, `[::]::80`) or, as Docker still allows,
//!   without them (`::1:8080:80`, `::::80`);
//! - host port `0` (or `0-0`), which Docker treats as "any host port".

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::proxy::Proto;

/// An inclusive range of port numbers: never empty, never containing port 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The ports `start..=end`, or `None` if that is empty or contains port 0.
    pub const fn new(start: u16, end: u16) -> Option<PortRange> {
        if start == 0 || start > end { None } else { Some(PortRange { start, end }) }
    }

    /// The range holding `port` alone, or `None` for port 0.
    pub const fn single(port: u16) -> Option<PortRange> {
        PortRange::new(port, port)
    }

    /// First port of the range.
    pub const fn start(self) -> u16 {
        self.start
    }

    /// Last port of the range (inclusive).
    pub const fn end(self) -> u16 {
        self.end
    }

    /// How many ports the range holds (at least 1).
    pub const fn count(self) -> u32 {
        (self.end - self.start) as u32 + 1
    }

    /// True if `port` is in the range.
    pub const fn contains(self, port: u16) -> bool {
        self.start <= port && port <= self.end
    }

    /// The ports of the range, in order.
    pub fn ports(self) -> RangeInclusive<u16> {
        self.start..=self.end
    }
}

/// `8080` for a single port, `8000-8010` for a range: the form [`PortRange::from_str`] reads.
impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// Reads `8080` or `49000-49900` (ports 1 to 65535, start not after end).
impl FromStr for PortRange {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<PortRange, SpecError> {
        parse_range(s)
            .and_then(|(start, end)| PortRange::new(start, end))
            .ok_or_else(|| SpecError::InvalidPortRange { range: s.to_string() })
    }
}

/// One `-p` spec: which host address and ports forward to which container ports.
///
/// Built by parsing ([`PortSpec::from_str`]) or by [`PortSpec::new`]; either way the host and
/// container ranges fit together, so [`PortSpec::mappings`] is always well defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortSpec {
    host_ip: Option<IpAddr>,
    host_ports: Option<PortRange>,
    container_ports: PortRange,
    proto: Proto,
}

impl PortSpec {
    /// A spec from its parts. Host and container ranges must be as long as each other, unless
    /// the container range is a single port (then the host range is a pool to pick one from).
    pub fn new(
        host_ip: Option<IpAddr>,
        host_ports: Option<PortRange>,
        container_ports: PortRange,
        proto: Proto,
    ) -> Result<PortSpec, SpecError> {
        if let Some(host) = host_ports
            && !lengths_fit(host.count(), container_ports.count())
        {
            return Err(SpecError::RangeMismatch {
                container: container_ports.to_string(),
                host: host.to_string(),
            });
        }
        Ok(PortSpec { host_ip, host_ports, container_ports, proto })
    }

    /// Parses a spec as `docker run -p` does; see the module documentation for the forms.
    ///
    /// The checks come in Docker 20.10's order (go-connections v0.4.0's `ParsePortSpec`), so a
    /// spec with several faults is refused for the same one: the host IP, a missing container
    /// port, the container port, the host port, ranges of different lengths, and only then the
    /// protocol (`training/webapp` has an invalid containerPort, not an invalid proto). Then
    /// come the daemon's checks (container port 0), and last cproxy's own refusal of SCTP,
    /// which Docker only hits when it starts the proxy.
    pub fn parse(spec: &str) -> Result<PortSpec, SpecError> {
        // Docker splits on every colon: the last part is the container port, the one before it
        // the host port, and all that comes before those is the IP (so unbracketed IPv6 works).
        let mut parts = spec.rsplitn(3, ':');
        let container_part = parts.next().unwrap_or_default();
        let host_raw = parts.next().unwrap_or_default();
        let ip_raw = parts.next().unwrap_or_default();

        let (container_raw, proto_raw) = match container_part.split_once('/') {
            Some((port, proto)) => (port, proto),
            None => (container_part, ""),
        };

        let host_ip = if ip_raw.is_empty() { None } else { Some(parse_ip(ip_raw)?) };
        if container_raw.is_empty() {
            return Err(SpecError::NoPort { spec: spec.to_string() });
        }
        let container = parse_range(container_raw)
            .ok_or_else(|| SpecError::InvalidContainerPort { port: container_raw.to_string() })?;
        let host = if host_raw.is_empty() {
            None
        } else {
            let host = parse_range(host_raw)
                .ok_or_else(|| SpecError::InvalidHostPort { port: host_raw.to_string() })?;
            // Checked before port 0 is, in the words as written: Docker's order.
            if !lengths_fit(
                u32::from(host.1 - host.0) + 1,
                u32::from(container.1 - container.0) + 1,
            ) {
                return Err(SpecError::RangeMismatch {
                    container: container_raw.to_string(),
                    host: host_raw.to_string(),
                });
            }
            Some(host)
        };

        // The protocol last of the parser's checks. `None` is SCTP: valid to Docker's parser,
        // refused by cproxy after the daemon's checks below.
        let proto_name =
            if proto_raw.is_empty() { "tcp".to_string() } else { proto_raw.to_lowercase() };
        let proto = match Proto::from_name(&proto_name) {
            Some(proto) => Some(proto),
            None if proto_name == "sctp" => None,
            None => return Err(SpecError::InvalidProto { proto: proto_name }),
        };

        // What the daemon checks next: no container port 0; host port 0 means "any".
        let Some(container_ports) = PortRange::new(container.0, container.1) else {
            return Err(SpecError::ZeroContainerPort { port: format!("0/{proto_name}") });
        };
        let host_ports = match host {
            None | Some((0, 0)) => None,
            Some((start, end)) => Some(
                PortRange::new(start, end)
                    .ok_or_else(|| SpecError::InvalidHostPort { port: host_raw.to_string() })?,
            ),
        };
        let Some(proto) = proto else {
            return Err(SpecError::SctpUnsupported { spec: spec.to_string() });
        };
        PortSpec::new(host_ip, host_ports, container_ports, proto)
    }

    /// The host address to listen on; `None` means all of them (Docker's default).
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.host_ip
    }

    /// The host ports; `None` means any free one per container port.
    pub fn host_ports(&self) -> Option<PortRange> {
        self.host_ports
    }

    /// The container ports forwarded to.
    pub fn container_ports(&self) -> PortRange {
        self.container_ports
    }

    /// TCP or UDP.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// One mapping per container port, telling the allocator what to do for each:
    /// `8000-8010:80-90` gives 11 fixed pairs, `80-82` three "any host port", and
    /// `8000-8010:80` one "pick a host port from 8000-8010".
    pub fn mappings(&self) -> Vec<PortMapping> {
        let mapping = |host_port, container_port| PortMapping {
            host_ip: self.host_ip,
            host_port,
            container_port,
            proto: self.proto,
        };
        let container = self.container_ports.ports();
        match self.host_ports {
            None => container.map(|c| mapping(HostPort::Any, c)).collect(),
            Some(host) if host.count() == self.container_ports.count() => {
                host.ports().zip(container).map(|(h, c)| mapping(HostPort::Fixed(h), c)).collect()
            }
            Some(host) => container.map(|c| mapping(HostPort::OneOf(host), c)).collect(),
        }
    }
}

/// Docker allows a host range of another length than the container range only for a single
/// container port (the host range is then a pool to pick one port from).
fn lengths_fit(host_ports: u32, container_ports: u32) -> bool {
    host_ports == container_ports || container_ports == 1
}

impl FromStr for PortSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<PortSpec, SpecError> {
        PortSpec::parse(s)
    }
}

/// The canonical form: `80/tcp`, `8080:80/tcp`, `127.0.0.1::80/udp`, `[::1]:8000-8010:80/tcp`.
/// It always names the protocol and brackets IPv6 addresses; it parses back to the same spec.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host_ports.map(|h| h.to_string());
        write_spec(f, self.host_ip, host.as_deref(), self.container_ports, self.proto)
    }
}

/// Writes `[IP:][HOST:]CONTAINER/PROTO`, bracketing IPv6 addresses.
fn write_spec(
    f: &mut fmt::Formatter<'_>,
    ip: Option<IpAddr>,
    host: Option<&str>,
    container: PortRange,
    proto: Proto,
) -> fmt::Result {
    match ip {
        Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
        Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
        None => {}
    }
    match (ip, host) {
        (_, Some(host)) => write!(f, "{host}:")?,
        (Some(_), None) => f.write_str(":")?,
        (None, None) => {}
    }
    write!(f, "{container}/{proto}")
}

/// What the allocator must do for the host side of one mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostPort {
    /// Bind exactly this port; if it is taken, the mapping fails.
    Fixed(u16),
    /// Bind any free port of the allocator's range (`-P`, or a spec without a host port).
    Any,
    /// Bind one free port of this range (`8000-8010:80`).
    OneOf(PortRange),
}

/// One container port and what to do on the host for it: one element of
/// [`PortSpec::mappings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// The host address to listen on; `None` means all of them.
    pub host_ip: Option<IpAddr>,
    /// Which host port to bind.
    pub host_port: HostPort,
    /// The container port forwarded to.
    pub container_port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

/// The mapping as a one-port spec: `127.0.0.1:8080:80/tcp`, `::80/udp`, `8000-8010:80/tcp`.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_port {
            HostPort::Fixed(port) => Some(port.to_string()),
            HostPort::Any => None,
            HostPort::OneOf(range) => Some(range.to_string()),
        };
        // A container port 0 cannot come from a spec; show it as Docker would anyway.
        let Some(container) = PortRange::single(self.container_port) else {
            return write!(f, "{}/{}", self.container_port, self.proto);
        };
        write_spec(f, self.host_ip, host.as_deref(), container, self.proto)
    }
}

/// A container port as it is being published: one line of `docker port`'s output,
/// `5000/tcp -> 127.0.0.1:5001` (IPv6 as `[::1]:5001`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublishedPort {
    /// The container port forwarded to.
    pub container_port: u16,
    /// TCP or UDP.
    pub proto: Proto,
    /// The host address and port bound for it.
    pub host: SocketAddr,
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} -> {}", self.container_port, self.proto, self.host)
    }
}

/// Reads a line of `docker port`'s output, as [`PublishedPort`]'s `Display` writes it.
impl FromStr for PublishedPort {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<PublishedPort, SpecError> {
        let bad = || SpecError::InvalidPublished { line: s.to_string() };
        let (container, host) = s.split_once(" -> ").ok_or_else(bad)?;
        let (port, proto) = container.split_once('/').ok_or_else(bad)?;
        // `docker port` writes the name in lower case, as `Proto`'s `Display` does.
        let proto = Proto::from_name(proto).filter(|p| p.to_string() == proto).ok_or_else(bad)?;
        let container_port = parse_number(port).filter(|&p| p != 0).ok_or_else(bad)?;
        let host = host.parse().map_err(|_| bad())?;
        Ok(PublishedPort { container_port, proto, host })
    }
}

/// A port spec (or port range, or `docker port` line) that cannot be used; the text is
/// Docker's where Docker has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// Nothing where the container port belongs: ``, `8080:`, `/udp`.
    NoPort {
        /// The whole spec.
        spec: String,
    },
    /// A protocol other than tcp or udp (or sctp).
    InvalidProto {
        /// The protocol, lowercased as Docker reports it.
        proto: String,
    },
    /// `/sctp`: Docker accepts it, but cproxy cannot forward SCTP.
    SctpUnsupported {
        /// The whole spec.
        spec: String,
    },
    /// The host IP is not an IP address (host names are refused, as by Docker).
    InvalidIp {
        /// The address as written (brackets removed when they were well formed).
        ip: String,
        /// Why bracket removal failed, in Go's words, when it did.
        reason: Option<String>,
    },
    /// The container port is not a port number or a range of them.
    InvalidContainerPort {
        /// The container port as written, without the protocol.
        port: String,
    },
    /// The host port is not a port number or a range of them.
    InvalidHostPort {
        /// The host port as written.
        port: String,
    },
    /// Host and container ranges of different lengths, with more than one container port.
    RangeMismatch {
        /// The container range as written.
        container: String,
        /// The host range as written.
        host: String,
    },
    /// Container port 0 (the daemon's check, worded as the daemon words it).
    ZeroContainerPort {
        /// The port with its protocol, as in `0/tcp`.
        port: String,
    },
    /// A port range (for instance the allocator's) that is not `START[-END]` within 1-65535.
    InvalidPortRange {
        /// The range as written.
        range: String,
    },
    /// A line that is not of the form `80/tcp -> 0.0.0.0:8080`.
    InvalidPublished {
        /// The line as given.
        line: String,
    },
    /// An `--expose` value with a host part: it names container ports only.
    ExposeWithHost {
        /// The value as given.
        spec: String,
    },
    /// An `--expose` value that is not `PORT[-END][/PROTO]`.
    InvalidExpose {
        /// The value as given.
        spec: String,
        /// What is wrong with its port or protocol.
        reason: Box<SpecError>,
    },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::NoPort { spec } => write!(f, "no port specified: {spec}<empty>"),
            SpecError::InvalidProto { proto } => write!(f, "invalid proto: {proto}"),
            SpecError::SctpUnsupported { spec } => {
                write!(f, "sctp is not supported by cproxy: {spec} (use tcp or udp)")
            }
            SpecError::InvalidIp { ip, reason: None } => write!(f, "invalid IP address: {ip}"),
            SpecError::InvalidIp { ip, reason: Some(reason) } => {
                write!(f, "invalid IP address {ip}: {reason}")
            }
            SpecError::InvalidContainerPort { port } => write!(f, "invalid containerPort: {port}"),
            SpecError::InvalidHostPort { port } => write!(f, "invalid hostPort: {port}"),
            SpecError::RangeMismatch { container, host } => write!(
                f,
                "invalid ranges specified for container and host Ports: {container} and {host}"
            ),
            SpecError::ZeroContainerPort { port } => {
                write!(f, "invalid port specification: \"{port}\"")
            }
            SpecError::InvalidPortRange { range } => write!(
                f,
                "invalid port range: \"{range}\" (use START-END with ports 1-65535, \
                 e.g. 49000-49900)"
            ),
            SpecError::ExposeWithHost { spec } => {
                write!(f, "invalid port format for --expose: {spec}")
            }
            SpecError::InvalidExpose { spec, reason } => {
                write!(f, "invalid range format for --expose: {spec}, error: {reason}")
            }
            SpecError::InvalidPublished { line } => {
                write!(
                    f,
                    "invalid published port: \"{line}\" (expected e.g. 80/tcp -> 0.0.0.0:8080)"
                )
            }
        }
    }
}

impl std::error::Error for SpecError {}

/// An `--expose` value as `docker run` takes it: `PORT[-END][/PROTO]`, container ports only.
/// The result is the spec `-P` publishes for it: every port on a host port the allocator picks,
/// on all addresses.
pub fn parse_expose(spec: &str) -> Result<PortSpec, SpecError> {
    if spec.contains(':') {
        return Err(SpecError::ExposeWithHost { spec: spec.to_string() });
    }
    PortSpec::parse(spec)
        .map_err(|e| SpecError::InvalidExpose { spec: spec.to_string(), reason: Box::new(e) })
}

/// A decimal port number as Go's `strconv.ParseUint(s, 10, 16)` reads it: digits only (leading
/// zeros allowed, no sign, no spaces), at most 65535. Port 0 is a number here.
fn parse_number(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `N` or `N-M` with N <= M, as go-connections' `ParsePortRange` reads it (port 0 allowed).
/// Docker ignores anything after a second dash; cproxy refuses it.
fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (start, end) = match s.split_once('-') {
        Some((start, end)) => (parse_number(start)?, parse_number(end)?),
        None => {
            let port = parse_number(s)?;
            (port, port)
        }
    };
    (start <= end).then_some((start, end))
}

/// The host IP of a spec: an IPv4 or IPv6 address, the latter optionally in brackets. Bracket
/// errors are reported as Go's `net.SplitHostPort` reports them, since that is what Docker uses.
fn parse_ip(raw: &str) -> Result<IpAddr, SpecError> {
    let ip = if raw.starts_with('[') {
        strip_brackets(raw).map_err(|reason| SpecError::InvalidIp {
            ip: raw.to_string(),
            reason: Some(format!("address {raw}:: {reason}")),
        })?
    } else {
        raw
    };
    ip.parse().map_err(|_| SpecError::InvalidIp { ip: ip.to_string(), reason: None })
}

/// The inside of `[...]`, with the reason Go's `SplitHostPort` gives when it is malformed.
fn strip_brackets(raw: &str) -> Result<&str, &'static str> {
    let close = raw.find(']').ok_or("missing ']' in address")?;
    if close + 1 != raw.len() {
        // Go sees `raw:`; what follows `]` there is either a colon too many or junk.
        return Err(if raw[close + 1..].starts_with(':') {
            "too many colons in address"
        } else {
            "missing port in address"
        });
    }
    let inner = &raw[1..close];
    if inner.contains('[') {
        return Err("unexpected '[' in address");
    }
    Ok(inner)
}

/// The specs of a command line with the protocols to publish each for. Specs that differ only
/// in protocol and leave the host port to the allocator (`-p 53/tcp -p 53/udp`,
/// `--expose 53/tcp --expose 53/udp -P`) become one, published for both, so the TCP and UDP
/// halves of a port get the same host port.
pub fn pair_halves(specs: &[PortSpec]) -> Vec<(PortSpec, Vec<Proto>)> {
    let mut groups: Vec<(PortSpec, Vec<Proto>)> = Vec::new();
    for spec in specs {
        let half_of = |(g, protos): &&mut (PortSpec, Vec<Proto>)| {
            spec.host_ports().is_none()
                && g.host_ports().is_none()
                && g.host_ip() == spec.host_ip()
                && g.container_ports() == spec.container_ports()
                && !protos.contains(&spec.proto())
        };
        match groups.iter_mut().find(half_of) {
            Some((_, protos)) => protos.push(spec.proto()),
            None => groups.push((*spec, vec![spec.proto()])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {

    #[test]
    fn expose_takes_container_ports_and_ranges_only() {
        let spec = parse_expose("7000-7002/udp").unwrap();
        assert_eq!(spec.to_string(), "7000-7002/udp");
        assert_eq!(spec.mappings().len(), 3);
        assert_eq!(parse_expose("80").unwrap().to_string(), "80/tcp");
        assert_eq!(
            parse_expose("8080:80").unwrap_err().to_string(),
            "invalid port format for --expose: 8080:80"
        );
        assert_eq!(
            parse_expose("http").unwrap_err().to_string(),
            "invalid range format for --expose: http, error: invalid containerPort: http"
        );
        assert_eq!(
            parse_expose("80/ip").unwrap_err().to_string(),
            "invalid range format for --expose: 80/ip, error: invalid proto: ip"
        );
    }
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn spec(s: &str) -> PortSpec {
        match PortSpec::parse(s) {
            Ok(spec) => spec,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn error(s: &str) -> String {
        match PortSpec::parse(s) {
            Ok(spec) => panic!("{s:?} should be refused, got {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Parses `s`, checks its canonical form, and that the canonical form parses back equal.
    fn round_trip(s: &str, canonical: &str) -> PortSpec {
        let parsed = spec(s);
        assert_eq!(parsed.to_string(), canonical, "display of {s:?}");
        assert_eq!(spec(canonical), parsed, "{canonical:?} should parse back to the spec");
        parsed
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange::new(start, end).unwrap()
    }

    const LOCALHOST: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[test]
    fn container_port_alone_publishes_on_any_host_port() {
        let s = round_trip("80", "80/tcp");
        assert_eq!((s.host_ip(), s.host_ports(), s.proto()), (None, None, Proto::Tcp));
        assert_eq!(s.container_ports(), range(80, 80));
        assert_eq!(
            s.mappings(),
            [PortMapping {
                host_ip: None,
                host_port: HostPort::Any,
                container_port: 80,
                proto: Proto::Tcp
            }]
        );
    }

    #[test]
    fn host_port_and_container_port() {
        let s = round_trip("8080:80", "8080:80/tcp");
        assert_eq!(s.host_ports(), Some(range(8080, 8080)));
        assert_eq!(s.mappings()[0].host_port, HostPort::Fixed(8080));
    }

    #[test]
    fn ip_host_port_and_container_port() {
        let s = round_trip("127.0.0.1:8080:80", "127.0.0.1:8080:80/tcp");
        assert_eq!(s.host_ip(), LOCALHOST);
        assert_eq!(s.mappings()[0].host_port, HostPort::Fixed(8080));
    }

    #[test]
    fn ip_with_empty_host_port_means_any_port_on_that_ip() {
        let s = round_trip("127.0.0.1::80", "127.0.0.1::80/tcp");
        assert_eq!((s.host_ip(), s.host_ports()), (LOCALHOST, None));
    }

    #[test]
    fn empty_ip_is_no_ip() {
        assert_eq!(round_trip(":8080:80", "8080:80/tcp"), spec("8080:80"));
        assert_eq!(round_trip("::80", "80/tcp"), spec("80"));
    }

    #[test]
    fn udp_and_tcp_suffixes_in_any_case() {
        assert_eq!(round_trip("53/udp", "53/udp").proto(), Proto::Udp);
        assert_eq!(round_trip("127.0.0.1:53:53/UDP", "127.0.0.1:53:53/udp").proto(), Proto::Udp);
        assert_eq!(round_trip("80/Tcp", "80/tcp").proto(), Proto::Tcp);
    }

    #[test]
    fn empty_protocol_is_tcp() {
        assert_eq!(round_trip("80/", "80/tcp").proto(), Proto::Tcp);
    }

    #[test]
    fn equal_ranges_map_pairwise() {
        let s = round_trip("8000-8010:80-90", "8000-8010:80-90/tcp");
        let pairs: Vec<(HostPort, u16)> =
            s.mappings().iter().map(|m| (m.host_port, m.container_port)).collect();
        assert_eq!(pairs.len(), 11);
        assert_eq!(pairs[0], (HostPort::Fixed(8000), 80));
        assert_eq!(pairs[10], (HostPort::Fixed(8010), 90));
    }

    #[test]
    fn container_range_alone_maps_each_to_any_host_port() {
        let s = round_trip("80-82/udp", "80-82/udp");
        let ports: Vec<(HostPort, u16)> =
            s.mappings().iter().map(|m| (m.host_port, m.container_port)).collect();
        assert_eq!(ports, [(HostPort::Any, 80), (HostPort::Any, 81), (HostPort::Any, 82)]);
    }

    #[test]
    fn host_range_with_one_container_port_picks_one_host_port_from_it() {
        let s = round_trip("127.0.0.1:8000-8010:80", "127.0.0.1:8000-8010:80/tcp");
        assert_eq!(
            s.mappings(),
            [PortMapping {
                host_ip: LOCALHOST,
                host_port: HostPort::OneOf(range(8000, 8010)),
                container_port: 80,
                proto: Proto::Tcp
            }]
        );
    }

    #[test]
    fn bracketed_ipv6_host_ip() {
        let s = round_trip("[::1]:8080:80", "[::1]:8080:80/tcp");
        assert_eq!(s.host_ip(), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        let s = round_trip("[::]::80/udp", "[::]::80/udp");
        assert_eq!((s.host_ip(), s.host_ports()), (Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), None));
    }

    #[test]
    fn unbracketed_ipv6_host_ip_as_docker_still_allows() {
        assert_eq!(round_trip("::1:8080:80", "[::1]:8080:80/tcp"), spec("[::1]:8080:80"));
        assert_eq!(round_trip("::::80/udp", "[::]::80/udp"), spec("[::]::80/udp"));
        let s = round_trip("2001:db8::68::333", "[2001:db8::68]::333/tcp");
        assert_eq!(s.host_ip(), Some("2001:db8::68".parse().unwrap()));
    }

    #[test]
    fn bracketed_ipv4_host_ip_is_accepted_as_by_docker() {
        assert_eq!(round_trip("[127.0.0.1]:80:80", "127.0.0.1:80:80/tcp").host_ip(), LOCALHOST);
    }

    #[test]
    fn ipv4_mapped_ipv6_host_ip_round_trips() {
        round_trip("[::ffff:127.0.0.1]:80:80", "[::ffff:127.0.0.1]:80:80/tcp");
    }

    #[test]
    fn host_port_zero_means_any_host_port() {
        assert_eq!(round_trip("0:80", "80/tcp"), spec("80"));
        assert_eq!(round_trip("127.0.0.1:0-0:80", "127.0.0.1::80/tcp"), spec("127.0.0.1::80"));
    }

    #[test]
    fn leading_zeros_are_accepted_as_by_go() {
        assert_eq!(round_trip("08080:0080", "8080:80/tcp"), spec("8080:80"));
    }

    #[test]
    fn widest_range_is_accepted() {
        let s = round_trip("1-65535:1-65535/udp", "1-65535:1-65535/udp");
        let mappings = s.mappings();
        assert_eq!(mappings.len(), 65535);
        assert_eq!(mappings[65534].host_port, HostPort::Fixed(65535));
    }

    #[test]
    fn empty_spec_has_no_port() {
        assert_eq!(error(""), "no port specified: <empty>");
    }

    #[test]
    fn trailing_colon_has_no_port() {
        assert_eq!(error("8080:"), "no port specified: 8080:<empty>");
    }

    #[test]
    fn protocol_alone_has_no_port() {
        assert_eq!(error("/udp"), "no port specified: /udp<empty>");
    }

    #[test]
    fn unknown_protocol_is_an_invalid_proto() {
        assert_eq!(error("80/icmp"), "invalid proto: icmp");
        assert_eq!(error("80/TCP/x"), "invalid proto: tcp/x");
    }

    // Docker 20.10's order of checks (go-connections v0.4.0's `ParsePortSpec`): a spec with
    // two faults is refused for the one checked first.

    #[test]
    fn forgotten_port_after_p_is_an_invalid_container_port_not_an_invalid_proto() {
        // `docker run -d -p training/webapp python app.py`: `-p` took the image.
        assert_eq!(error("training/webapp"), "invalid containerPort: training");
        assert_eq!(error("webapp"), "invalid containerPort: webapp");
        assert_eq!(error("80:webapp"), "invalid containerPort: webapp");
    }

    #[test]
    fn ip_is_checked_before_the_missing_container_port() {
        assert_eq!(error("foo::"), "invalid IP address: foo");
        assert_eq!(error("300.1.1.1:80:"), "invalid IP address: 300.1.1.1");
    }

    #[test]
    fn ip_is_checked_before_the_ports_and_the_protocol() {
        assert_eq!(error("foo:abc:xyz/icmp"), "invalid IP address: foo");
        assert_eq!(error("1.2.3:80:80/icmp"), "invalid IP address: 1.2.3");
        assert_eq!(error("localhost:80:80/sctp"), "invalid IP address: localhost");
    }

    #[test]
    fn missing_container_port_is_checked_before_the_host_port_and_the_protocol() {
        assert_eq!(error("abc:/icmp"), "no port specified: abc:/icmp<empty>");
    }

    #[test]
    fn container_port_is_checked_before_the_host_port() {
        assert_eq!(error("abc:xyz"), "invalid containerPort: xyz");
        assert_eq!(error("70000:70000"), "invalid containerPort: 70000");
    }

    #[test]
    fn container_port_is_checked_before_the_protocol() {
        assert_eq!(error("abc/icmp"), "invalid containerPort: abc");
        assert_eq!(error("8080:abc/icmp"), "invalid containerPort: abc");
        assert_eq!(error("abc/sctp"), "invalid containerPort: abc");
    }

    #[test]
    fn host_port_is_checked_before_the_protocol() {
        assert_eq!(error("abc:80/icmp"), "invalid hostPort: abc");
        assert_eq!(error("127.0.0.1:abc:80/sctp"), "invalid hostPort: abc");
    }

    #[test]
    fn range_lengths_are_checked_before_the_protocol() {
        assert_eq!(
            error("8000-8001:80-82/icmp"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
        );
    }

    #[test]
    fn protocol_is_checked_before_the_daemons_container_port_zero() {
        assert_eq!(error("0/icmp"), "invalid proto: icmp");
        assert_eq!(error("8080:0/icmp"), "invalid proto: icmp");
    }

    #[test]
    fn sctp_is_refused_after_every_check_docker_makes_before_starting_the_proxy() {
        assert_eq!(error("0/sctp"), "invalid port specification: \"0/sctp\"");
        assert_eq!(error("0-5:80/sctp"), "invalid hostPort: 0-5");
        assert!(matches!(PortSpec::parse("80/SCTP"), Err(SpecError::SctpUnsupported { .. })));
    }

    #[test]
    fn sctp_is_refused_as_unsupported() {
        let e = PortSpec::parse("127.0.0.1:5000:5000/sctp").unwrap_err();
        assert!(matches!(e, SpecError::SctpUnsupported { .. }));
        assert_eq!(
            e.to_string(),
            "sctp is not supported by cproxy: 127.0.0.1:5000:5000/sctp (use tcp or udp)"
        );
    }

    #[test]
    fn host_name_is_an_invalid_ip_address() {
        assert_eq!(error("localhost:1234:1234/tcp"), "invalid IP address: localhost");
    }

    #[test]
    fn extra_colons_end_up_in_an_invalid_ip_address() {
        assert_eq!(error("1:2:3:4"), "invalid IP address: 1:2");
    }

    #[test]
    fn missing_closing_bracket_is_reported_as_go_reports_it() {
        assert_eq!(
            error("[::1:80:80"),
            "invalid IP address [::1: address [::1:: missing ']' in address"
        );
    }

    #[test]
    fn junk_after_closing_bracket_is_reported_as_go_reports_it() {
        assert_eq!(
            error("[::1]x:80:80"),
            "invalid IP address [::1]x: address [::1]x:: missing port in address"
        );
        assert_eq!(
            error("[::1]::80:80"),
            "invalid IP address [::1]:: address [::1]::: too many colons in address"
        );
        assert_eq!(
            error("[[::1]:80:80"),
            "invalid IP address [[::1]: address [[::1]:: unexpected '[' in address"
        );
    }

    #[test]
    fn bracketed_non_address_is_an_invalid_ip_address() {
        assert_eq!(error("[foo]:80:80"), "invalid IP address: foo");
        assert_eq!(error("[fe80::1%eth0]::80"), "invalid IP address: fe80::1%eth0");
    }

    #[test]
    fn container_port_above_65535_is_invalid() {
        assert_eq!(error("65536"), "invalid containerPort: 65536");
    }

    #[test]
    fn host_port_above_65535_is_invalid() {
        assert_eq!(error("65536:80"), "invalid hostPort: 65536");
    }

    #[test]
    fn non_numeric_container_ports_are_invalid() {
        for (s, port) in [("abc", "abc"), ("+80", "+80"), (" 80", " 80"), ("-1", "-1")] {
            assert_eq!(error(s), format!("invalid containerPort: {port}"), "{s:?}");
        }
    }

    #[test]
    fn non_numeric_host_port_is_invalid() {
        assert_eq!(error("http:80"), "invalid hostPort: http");
    }

    #[test]
    fn reversed_range_is_invalid() {
        assert_eq!(error("90-80"), "invalid containerPort: 90-80");
        assert_eq!(error("8010-8000:80"), "invalid hostPort: 8010-8000");
    }

    #[test]
    fn range_with_two_dashes_is_invalid() {
        assert_eq!(error("80-90-100"), "invalid containerPort: 80-90-100");
    }

    #[test]
    fn ranges_of_different_lengths_are_invalid() {
        assert_eq!(
            error("8000-8001:80-82/udp"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
        );
    }

    #[test]
    fn single_host_port_for_a_container_range_is_invalid() {
        assert_eq!(
            error("8000:80-82"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000"
        );
    }

    #[test]
    fn container_port_zero_is_refused_as_the_daemon_refuses_it() {
        assert_eq!(error("0"), "invalid port specification: \"0/tcp\"");
        assert_eq!(error("8080:0/udp"), "invalid port specification: \"0/udp\"");
    }

    #[test]
    fn host_range_starting_at_zero_is_invalid() {
        assert_eq!(error("0-5:80"), "invalid hostPort: 0-5");
    }

    #[test]
    fn spec_error_is_a_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(PortSpec::parse("").unwrap_err());
        assert_eq!(e.to_string(), "no port specified: <empty>");
    }

    #[test]
    fn new_refuses_ranges_that_do_not_fit_together() {
        let e = PortSpec::new(None, Some(range(1, 2)), range(80, 82), Proto::Tcp).unwrap_err();
        assert!(matches!(e, SpecError::RangeMismatch { .. }), "{e}");
        assert!(PortSpec::new(None, Some(range(1, 9)), range(80, 80), Proto::Tcp).is_ok());
    }

    #[test]
    fn port_range_never_holds_port_zero_or_runs_backwards() {
        assert_eq!(PortRange::new(0, 10), None);
        assert_eq!(PortRange::new(10, 9), None);
        assert_eq!(PortRange::single(0), None);
        assert_eq!(range(1, 65535).count(), 65535);
        assert!(range(80, 90).contains(90) && !range(80, 90).contains(91));
    }

    #[test]
    fn port_range_parses_what_it_displays() {
        assert_eq!("49000-49900".parse(), Ok(range(49000, 49900)));
        assert_eq!("8080".parse(), Ok(range(8080, 8080)));
        assert_eq!(range(49000, 49900).to_string(), "49000-49900");
        assert_eq!(range(8080, 8080).to_string(), "8080");
    }

    #[test]
    fn port_range_refuses_zero_backwards_and_junk() {
        for s in ["", "0", "0-10", "10-9", "1-65536", "a-b", "1-2-3", " 1-2"] {
            let e = s.parse::<PortRange>().unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid port range: \"{s}\" (use START-END with ports 1-65535, \
                     e.g. 49000-49900)"
                )
            );
        }
    }

    #[test]
    fn mapping_displays_as_a_one_port_spec() {
        let mappings = spec("[::1]:8000-8010:80/udp").mappings();
        assert_eq!(mappings[0].to_string(), "[::1]:8000-8010:80/udp");
        let mappings = spec("80-81").mappings();
        assert_eq!(mappings[1].to_string(), "81/tcp");
        let mappings = spec("127.0.0.1:8080-8081:80-81").mappings();
        assert_eq!(mappings[1].to_string(), "127.0.0.1:8081:81/tcp");
    }

    #[test]
    fn published_port_displays_as_docker_port_does() {
        let v4 = PublishedPort {
            container_port: 5000,
            proto: Proto::Tcp,
            host: "127.0.0.1:5001".parse().unwrap(),
        };
        assert_eq!(v4.to_string(), "5000/tcp -> 127.0.0.1:5001");
        let v6 = PublishedPort {
            container_port: 53,
            proto: Proto::Udp,
            host: "[::1]:5001".parse().unwrap(),
        };
        assert_eq!(v6.to_string(), "53/udp -> [::1]:5001");
    }

    #[test]
    fn published_port_parses_docker_port_lines() {
        for line in ["5000/tcp -> 127.0.0.1:5001", "53/udp -> [::]:32768"] {
            let p: PublishedPort = line.parse().unwrap();
            assert_eq!(p.to_string(), line);
        }
        for line in ["5000/tcp", "5000/sctp -> 0.0.0.0:1", "0/tcp -> 0.0.0.0:1", "x -> y"] {
            assert!(matches!(
                line.parse::<PublishedPort>(),
                Err(SpecError::InvalidPublished { .. })
            ));
        }
    }
}
