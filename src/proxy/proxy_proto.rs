//! HAProxy's PROXY protocol, v1 (text) and v2 (binary): the header a proxy sends a backend
//! before any relayed byte, telling it the client's address and the address the client
//! connected to, which the backend would otherwise never see (it sees the proxy's).
//!
//! The writer fills a fixed buffer (no allocation: it runs once per connection); the parser is
//! for backends, tests and programs that embed cproxy, and refuses every malformed header with
//! a sentence that says what is wrong. Both follow
//! <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>:
//!
//! - v1: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or `TCP6`), at most 107 bytes;
//!   `PROXY UNKNOWN…\r\n` when the addresses are not known (the receiver skips to the CRLF).
//! - v2: a 12-byte signature, version and command, family and transport, a big-endian length,
//!   then the addresses (12 bytes for IPv4, 36 for IPv6, 216 for unix sockets) and optional
//!   TLVs. `LOCAL` says the connection is the proxy's own (a health check): the receiver uses
//!   the real addresses and ignores whatever the header carries.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are written as the IPv4 addresses they are;
//! a pair of addresses of different families is written as IPv6 (the IPv4 one mapped), since
//! a header carries one family.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Which version of the protocol to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// The human-readable header (`PROXY TCP4 …\r\n`).
    V1,
    /// The binary header, which is what new receivers should be asked for.
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Version, String> {
        match s.to_ascii_lowercase().as_str() {
            "v1" | "1" => Ok(Version::V1),
            "v2" | "2" => Ok(Version::V2),
            _ => Err(format!("unknown PROXY protocol version {s:?}: use v1 or v2")),
        }
    }
}

/// The transport of the proxied connection (v2 only; v1 knows only TCP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (v2 `STREAM`).
    Stream,
    /// UDP (v2 `DGRAM`).
    Datagram,
    /// v2 `UNSPEC`.
    Unspecified,
}

/// What a header says about the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// The connection was proxied for a client: `source` connected to `destination`.
    Inet {
        /// TCP or UDP.
        transport: Transport,
        /// The client's address.
        source: SocketAddr,
        /// The address the client connected to (the proxy's host address).
        destination: SocketAddr,
    },
    /// A proxied connection between unix sockets (v2 `AF_UNIX`); the paths are not decoded.
    Unix {
        /// Stream or datagram.
        transport: Transport,
    },
    /// The proxy could not tell (v1 `UNKNOWN`, v2 `UNSPEC`): the receiver uses the real
    /// connection's addresses.
    Unknown,
    /// v2 `LOCAL`: the proxy's own connection (a health check); the receiver uses the real
    /// connection's addresses.
    Local,
}

/// A header as parsed from the start of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Which version it was written in.
    pub version: Version,
    /// What it says.
    pub addresses: Addresses,
    /// v2's type-length-value extensions, checked to be well formed (empty for v1).
    pub tlvs: Tlvs<'a>,
    /// Length of the header in bytes: the proxied stream starts after it.
    pub len: usize,
}

/// The TLV section of a v2 header; iterate it for `(type, value)` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlvs<'a>(&'a [u8]);

impl<'a> Iterator for Tlvs<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        // The parser checked the layout; a malformed rest only ends the iteration.
        let (&kind, rest) = self.0.split_first()?;
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let value = rest.get(2..2 + len)?;
        self.0 = &rest[2 + len..];
        Some((kind, value))
    }
}

/// Why bytes are not a PROXY header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes so far are the start of a valid header: read at least this many in all.
    Incomplete {
        /// Total bytes needed before parsing can go on (a lower bound for v1).
        needed: usize,
    },
    /// The bytes are not a PROXY header, or a malformed one; the text says what is wrong.
    Invalid(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Incomplete { needed } => {
                write!(f, "incomplete PROXY header: at least {needed} bytes are needed")
            }
            ParseError::Invalid(why) => write!(f, "invalid PROXY header: {why}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn invalid<T>(why: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Invalid(why.into()))
}

/// The twelve bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v1's longest header, CRLF included.
pub const V1_MAX: usize = 107;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED: usize = 16;
const V2_INET_LEN: usize = 12;
const V2_INET6_LEN: usize = 36;
const V2_UNIX_LEN: usize = 216;

/// A header ready to send, in a fixed buffer.
#[derive(Clone, Copy)]
pub struct Encoded {
    buf: [u8; 108],
    len: usize,
}

impl Encoded {
    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoded({:?})", self.as_bytes())
    }
}

/// Writes the header that tells a backend that `source` connected to `destination` over TCP
/// (`None`: the addresses are not known, written as v1 `UNKNOWN` or v2 `LOCAL`).
pub fn encode(version: Version, addresses: Option<(SocketAddr, SocketAddr)>) -> Encoded {
    let mut out = Encoded { buf: [0; 108], len: 0 };
    let addresses = addresses.map(|(s, d)| same_family(s, d));
    match version {
        Version::V1 => {
            let mut w = Cursor { buf: &mut out.buf, len: 0 };
            let _ = match addresses {
                Some((s, d)) => {
                    let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                    use fmt::Write;
                    write!(w, "PROXY {family} {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port())
                }
                None => fmt::Write::write_str(&mut w, "PROXY UNKNOWN\r\n"),
            };
            out.len = w.len;
        }
        Version::V2 => {
            out.buf[..12].copy_from_slice(&V2_SIGNATURE);
            let (command, family, body_len) = match addresses {
                None => (0x20, 0x00, 0),
                Some((s, _)) if s.is_ipv4() => (0x21, 0x11, V2_INET_LEN),
                Some(_) => (0x21, 0x21, V2_INET6_LEN),
            };
            out.buf[12] = command;
            out.buf[13] = family;
            out.buf[14..16].copy_from_slice(&(body_len as u16).to_be_bytes());
            let mut at = V2_FIXED;
            if let Some((s, d)) = addresses {
                for ip in [s.ip(), d.ip()] {
                    let octets: &[u8] = match &ip {
                        IpAddr::V4(v4) => &v4.octets(),
                        IpAddr::V6(v6) => &v6.octets(),
                    };
                    out.buf[at..at + octets.len()].copy_from_slice(octets);
                    at += octets.len();
                }
                for port in [s.port(), d.port()] {
                    out.buf[at..at + 2].copy_from_slice(&port.to_be_bytes());
                    at += 2;
                }
            }
            out.len = at;
        }
    }
    out
}

/// Sends `backend` the header for a TCP connection from `client` to `local` (the address it
/// connected to; `None` if unknown), before any relayed byte. The socket is freshly connected,
/// so its send buffer has room for the whole header and this takes one `send` in practice.
pub(crate) async fn send(
    backend: &super::sock::Sock,
    version: Version,
    client: SocketAddr,
    local: Option<SocketAddr>,
) -> std::io::Result<()> {
    let header = encode(version, local.map(|local| (client, local)));
    let mut rest = header.as_bytes();
    while !rest.is_empty() {
        backend.writable().await?;
        let fd = std::os::fd::AsFd::as_fd(backend);
        match backend.try_io(tokio::io::Interest::WRITABLE, || crate::sys::send(fd, rest)) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Canonical addresses of one family: v4-mapped ones become IPv4, and if only one is IPv4 it
/// is mapped into IPv6.
fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canon(source), canon(destination));
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(s), v6(d))
}

/// A `fmt::Write` into a fixed buffer (v1's text is at most 107 bytes).
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Parses the PROXY header at the start of `buf`, v1 or v2 (told apart by their first bytes).
pub fn parse(buf: &[u8]) -> Result<Header<'_>, ParseError> {
    let probe = buf.len().min(V2_SIGNATURE.len());
    if buf[..probe] == V2_SIGNATURE[..probe] && !buf.is_empty() {
        return parse_v2(buf);
    }
    let probe = buf.len().min(V1_PREFIX.len());
    if buf[..probe] == V1_PREFIX[..probe] {
        if buf.is_empty() {
            return Err(ParseError::Incomplete { needed: V1_PREFIX.len() });
        }
        return parse_v1(buf);
    }
    invalid("the stream starts with neither \"PROXY \" (v1) nor the v2 signature")
}

fn parse_v1(buf: &[u8]) -> Result<Header<'_>, ParseError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if buf.len() >= V1_MAX {
            return invalid(format!("v1 header has no CRLF within {V1_MAX} bytes"));
        }
        if window.contains(&b'\n') {
            return invalid("v1 header ends in a bare LF instead of CRLF");
        }
        return Err(ParseError::Incomplete { needed: buf.len() + 1 });
    };
    match window.get(cr + 1) {
        Some(b'\n') => {}
        Some(_) => return invalid("v1 header has a CR that is not followed by LF"),
        None if buf.len() >= V1_MAX => {
            return invalid(format!("v1 header has no CRLF within {V1_MAX} bytes"));
        }
        None => return Err(ParseError::Incomplete { needed: cr + 2 }),
    }
    let len = cr + 2;
    let line = &buf[V1_PREFIX.len()..cr];
    let header = |addresses| Ok(Header { version: Version::V1, addresses, tlvs: Tlvs(&[]), len });
    // UNKNOWN: the receiver ignores whatever follows up to the CRLF.
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return header(Addresses::Unknown);
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return invalid("v1 header is not ASCII text");
    };
    let fields: Vec<&str> = line.split(' ').collect();
    let [family, src, dst, sport, dport] = fields.as_slice() else {
        return invalid(format!(
            "v1 header has {} fields where 5 single-space-separated ones are needed \
             (TCP4|TCP6 source destination source-port destination-port)",
            fields.len()
        ));
    };
    let (source, destination) = match *family {
        "TCP4" => (ipv4(src)?, ipv4(dst)?),
        "TCP6" => (ipv6(src)?, ipv6(dst)?),
        other => {
            return invalid(format!("v1 protocol {other:?} is none of TCP4, TCP6, UNKNOWN"));
        }
    };
    header(Addresses::Inet {
        transport: Transport::Stream,
        source: SocketAddr::new(source, port(sport)?),
        destination: SocketAddr::new(destination, port(dport)?),
    })
}

fn ipv4(s: &str) -> Result<IpAddr, ParseError> {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) => Ok(IpAddr::V4(ip)),
        Err(_) => invalid(format!("v1 TCP4 address {s:?} is not a dotted-quad IPv4 address")),
    }
}

fn ipv6(s: &str) -> Result<IpAddr, ParseError> {
    match s.parse::<Ipv6Addr>() {
        Ok(ip) => Ok(IpAddr::V6(ip)),
        Err(_) => invalid(format!("v1 TCP6 address {s:?} is not an IPv6 address")),
    }
}

/// A port as v1 writes it: decimal, 0 to 65535, no sign and no leading zero.
fn port(s: &str) -> Result<u16, ParseError> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u16>() {
        Ok(p) if digits && (s == "0" || !s.starts_with('0')) => Ok(p),
        _ => invalid(format!("v1 port {s:?} is not a decimal number from 0 to 65535")),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Header<'_>, ParseError> {
    if buf.len() < V2_FIXED {
        return Err(ParseError::Incomplete { needed: V2_FIXED });
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return invalid(format!("v2 signature with version {version} (only 2 exists)"));
    }
    let local = match command {
        0 => true,
        1 => false,
        c => return invalid(format!("v2 command {c} is neither LOCAL (0) nor PROXY (1)")),
    };
    // LOCAL's family is ignored, so only PROXY's is checked (early: a bad one is refused
    // without waiting for the rest).
    let (family, transport) = (buf[13] >> 4, buf[13] & 0x0f);
    let transport = match transport {
        _ if local => Transport::Unspecified,
        0 => Transport::Unspecified,
        1 => Transport::Stream,
        2 => Transport::Datagram,
        t => return invalid(format!("v2 transport {t} is none of UNSPEC, STREAM, DGRAM")),
    };
    let addr_len = match family {
        _ if local => 0,
        0 => 0,
        1 => V2_INET_LEN,
        2 => V2_INET6_LEN,
        3 => V2_UNIX_LEN,
        f => return invalid(format!("v2 address family {f} is none of UNSPEC, INET, INET6, UNIX")),
    };
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED + body_len;
    if buf.len() < len {
        return Err(ParseError::Incomplete { needed: len });
    }
    if local {
        // The receiver must accept and skip whatever a LOCAL header carries, family included.
        let tlvs = Tlvs(&[]);
        return Ok(Header { version: Version::V2, addresses: Addresses::Local, tlvs, len });
    }
    let body = &buf[V2_FIXED..len];
    let header = |addresses, tlvs| Ok(Header { version: Version::V2, addresses, tlvs, len });
    if body.len() < addr_len {
        return invalid(format!(
            "v2 header is {body_len} bytes long after its fixed part, too short for the \
             {addr_len} bytes of its address family"
        ));
    }
    let (addrs, tlvs) = body.split_at(addr_len);
    check_tlvs(tlvs)?;
    let be16 = |at: usize| u16::from_be_bytes([addrs[at], addrs[at + 1]]);
    let addresses = match family {
        1 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(addrs[at], addrs[at + 1], addrs[at + 2], addrs[at + 3]))
            };
            Addresses::Inet {
                transport,
                source: SocketAddr::new(ip(0), be16(8)),
                destination: SocketAddr::new(ip(4), be16(10)),
            }
        }
        2 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addrs[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            Addresses::Inet {
                transport,
                source: SocketAddr::new(ip(0), be16(32)),
                destination: SocketAddr::new(ip(16), be16(34)),
            }
        }
        3 => Addresses::Unix { transport },
        _ => Addresses::Unknown,
    };
    header(addresses, Tlvs(tlvs))
}

/// Checks that `tlvs` is a sequence of whole type-length-value records.
fn check_tlvs(mut tlvs: &[u8]) -> Result<(), ParseError> {
    while !tlvs.is_empty() {
        if tlvs.len() < 3 {
            return invalid(format!(
                "v2 TLV section ends in {} stray bytes, less than a TLV's 3-byte head",
                tlvs.len()
            ));
        }
        let (kind, len) = (tlvs[0], usize::from(u16::from_be_bytes([tlvs[1], tlvs[2]])));
        let Some(rest) = tlvs.get(3 + len..) else {
            return invalid(format!(
                "v2 TLV of type {kind:#04x} says {len} bytes but only {} remain",
                tlvs.len() - 3
            ));
        };
        tlvs = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn round_trip(version: Version, src: &str, dst: &str) -> Addresses {
        let enc = encode(version, Some((sa(src), sa(dst))));
        let h = parse(enc.as_bytes()).unwrap();
        assert_eq!((h.version, h.len), (version, enc.as_bytes().len()));
        h.addresses
    }

    fn inet(src: &str, dst: &str) -> Addresses {
        Addresses::Inet { transport: Transport::Stream, source: sa(src), destination: sa(dst) }
    }

    #[test]
    fn v1_ipv4_is_the_spec_text() {
        let enc = encode(Version::V1, Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443"))));
        assert_eq!(enc.as_bytes(), b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
    }

    #[test]
    fn v1_ipv6_is_the_spec_text() {
        let enc = encode(Version::V1, Some((sa("[2001:db8::1]:1"), sa("[::1]:65535"))));
        assert_eq!(enc.as_bytes(), b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
    }

    #[test]
    fn v1_longest_header_fits_in_107_bytes() {
        let ip = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535";
        let enc = encode(Version::V1, Some((sa(ip), sa(ip))));
        assert_eq!(enc.as_bytes().len(), 104);
        assert!(enc.as_bytes().len() <= V1_MAX);
    }

    #[test]
    fn v2_ipv4_is_the_spec_layout() {
        let enc = encode(Version::V2, Some((sa("192.0.2.1:258"), sa("10.0.0.1:80"))));
        let mut want = V2_SIGNATURE.to_vec();
        want.extend([0x21, 0x11, 0, 12, 192, 0, 2, 1, 10, 0, 0, 1, 1, 2, 0, 80]);
        assert_eq!(enc.as_bytes(), want);
    }

    #[test]
    fn v2_ipv6_carries_36_address_bytes() {
        let enc = encode(Version::V2, Some((sa("[2001:db8::1]:1"), sa("[::1]:2"))));
        assert_eq!(enc.as_bytes().len(), 16 + 36);
        assert_eq!(&enc.as_bytes()[12..16], &[0x21, 0x21, 0, 36]);
    }

    #[test]
    fn every_version_and_family_round_trips() {
        for v in [Version::V1, Version::V2] {
            for (s, d) in [("1.2.3.4:5", "6.7.8.9:10"), ("[2001:db8::7]:0", "[::1]:65535")] {
                assert_eq!(round_trip(v, s, d), inet(s, d), "{v} {s} {d}");
            }
        }
    }

    #[test]
    fn v4_mapped_addresses_are_written_as_ipv4() {
        for v in [Version::V1, Version::V2] {
            let got = round_trip(v, "[::ffff:192.0.2.9]:4000", "[::ffff:127.0.0.1]:80");
            assert_eq!(got, inet("192.0.2.9:4000", "127.0.0.1:80"), "{v}");
        }
    }

    #[test]
    fn mixed_families_are_written_as_ipv6() {
        for v in [Version::V1, Version::V2] {
            let got = round_trip(v, "192.0.2.9:4000", "[::1]:80");
            assert_eq!(got, inet("[::ffff:192.0.2.9]:4000", "[::1]:80"), "{v}");
        }
    }

    #[test]
    fn unknown_addresses_are_v1_unknown_and_v2_local() {
        let v1 = encode(Version::V1, None);
        assert_eq!(v1.as_bytes(), b"PROXY UNKNOWN\r\n");
        assert_eq!(parse(v1.as_bytes()).unwrap().addresses, Addresses::Unknown);
        let v2 = encode(Version::V2, None);
        assert_eq!(v2.as_bytes().len(), 16);
        assert_eq!(parse(v2.as_bytes()).unwrap().addresses, Addresses::Local);
    }

    #[test]
    fn the_stream_after_the_header_is_left_alone() {
        for v in [Version::V1, Version::V2] {
            let mut bytes =
                encode(v, Some((sa("1.2.3.4:5"), sa("6.7.8.9:10")))).as_bytes().to_vec();
            let len = bytes.len();
            bytes.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
            assert_eq!(parse(&bytes).unwrap().len, len, "{v}");
        }
    }

    #[test]
    fn v1_unknown_ignores_what_follows_up_to_crlf() {
        let h = parse(b"PROXY UNKNOWN ffff::1 ::1 1 2\r\nrest").unwrap();
        assert_eq!((h.addresses, h.len), (Addresses::Unknown, 31));
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete_not_invalid() {
        for v in [Version::V1, Version::V2] {
            let enc = encode(v, Some((sa("[2001:db8::7]:9"), sa("[::1]:65535"))));
            let bytes = enc.as_bytes();
            for n in 0..bytes.len() {
                match parse(&bytes[..n]) {
                    Err(ParseError::Incomplete { needed }) => assert!(needed > n, "{v} {n}"),
                    other => panic!("{v}: {n} bytes gave {other:?}"),
                }
            }
        }
    }

    fn rejected(bytes: &[u8]) -> String {
        match parse(bytes) {
            Err(ParseError::Invalid(why)) => why,
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn malformed_v1_headers_are_refused_with_the_reason() {
        let cases: &[(&[u8], &str)] = &[
            (b"GET / HTTP/1.1\r\n", "neither"),
            (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "none of TCP4"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "4 fields"),
            (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "6 fields"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "6 fields"),
            (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "not a dotted-quad"),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "not a dotted-quad"),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "not an IPv6"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "port \"65536\""),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "port \"01\""),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "port \"+1\""),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bare LF"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx", "not followed by LF"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n", "not ASCII"),
        ];
        for (bytes, reason) in cases {
            let why = rejected(bytes);
            assert!(why.contains(reason), "{:?}: {why}", String::from_utf8_lossy(bytes));
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
        assert!(rejected(&long).contains("no CRLF within 107 bytes"));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.extend([command, family]);
        b.extend((body.len() as u16).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn malformed_v2_headers_are_refused_with_the_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (v2(0x11, 0x11, &[0; 12]), "version 1"),
            (v2(0x22, 0x11, &[0; 12]), "command 2"),
            (v2(0x21, 0x13, &[0; 12]), "transport 3"),
            (v2(0x21, 0x41, &[0; 12]), "family 4"),
            (v2(0x21, 0x11, &[0; 11]), "too short"),
            (v2(0x21, 0x21, &[0; 12]), "too short"),
            (v2(0x21, 0x31, &[0; 100]), "too short"),
            (v2(0x21, 0x11, &[[0; 12].as_slice(), &[1, 0]].concat()), "stray"),
            (v2(0x21, 0x11, &[[0; 12].as_slice(), &[1, 0, 5, 1]].concat()), "says 5 bytes"),
        ];
        for (bytes, reason) in cases {
            let why = rejected(&bytes);
            assert!(why.contains(reason), "{bytes:?}: {why}");
        }
    }

    #[test]
    fn v2_tlvs_and_unspec_and_unix_are_understood() {
        let body = [[0; 12].as_slice(), &[0x04, 0, 0, 0x01, 0, 2, b'h', b'i']].concat();
        let bytes = v2(0x21, 0x11, &body);
        let h = parse(&bytes).unwrap();
        assert_eq!(h.tlvs.collect::<Vec<_>>(), vec![(4, &[][..]), (1, &b"hi"[..])]);
        assert_eq!(parse(&v2(0x21, 0x00, &[])).unwrap().addresses, Addresses::Unknown);
        let bytes = v2(0x21, 0x32, &[0; 216]);
        let unix = parse(&bytes).unwrap();
        assert_eq!(unix.addresses, Addresses::Unix { transport: Transport::Datagram });
        // LOCAL skips whatever it carries, however odd.
        assert_eq!(parse(&v2(0x20, 0xff, &[1, 2, 3])).unwrap().addresses, Addresses::Local);
    }

    #[test]
    fn v2_dgram_is_reported_as_such() {
        let body = [127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2];
        let bytes = v2(0x21, 0x12, &body);
        let h = parse(&bytes).unwrap();
        let want = Addresses::Inet {
            transport: Transport::Datagram,
            source: sa("127.0.0.1:1"),
            destination: sa("127.0.0.2:2"),
        };
        assert_eq!(h.addresses, want);
    }

    #[test]
    fn versions_parse_as_the_flag_takes_them() {
        assert_eq!("v1".parse(), Ok(Version::V1));
        assert_eq!("V2".parse(), Ok(Version::V2));
        assert!("v3".parse::<Version>().unwrap_err().contains("use v1 or v2"));
    }

    /// The fuzz target's properties, over its saved corpus (which holds a header of every
    /// kind): parsing never panics, an accepted header parses the same from its own bytes.
    #[test]
    fn the_proxy_header_fuzz_corpus_still_holds() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/proxy_header");
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut accepted = 0;
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            match parse(&data) {
                Ok(h) => {
                    assert_eq!(parse(&data[..h.len]).as_ref(), Ok(&h));
                    accepted += 1;
                }
                Err(ParseError::Incomplete { needed }) => assert!(needed > data.len()),
                Err(ParseError::Invalid(why)) => assert!(!why.is_empty()),
            }
        }
        assert!(accepted > 0, "the corpus has no valid header");
    }
}
