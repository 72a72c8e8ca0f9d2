//! Host-port allocation for `-P` and for specs without a host port. A port is found free by
//! binding it, and the bound socket is what the caller gets, so nothing can take the port
//! between "found free" and "in use": the kernel's `bind` is the only arbiter.
//!
//! The default range is the kernel's ephemeral range, as Docker's; a rotating cursor shared by
//! all callers makes consecutive and concurrent allocations try different ports instead of all
//! retrying the first free-looking one.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::proxy::{Proto, ProxyError, tcp_listening_socket};
use crate::spec::{HostPort, PortMapping, PortRange};

/// Where Linux keeps its ephemeral port range, which Docker allocates from.
const KERNEL_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Docker's dynamic port range, used when the kernel's cannot be read.
pub const FALLBACK_RANGE: PortRange = match PortRange::new(49153, 65535) {
    Some(range) => range,
    None => panic!("49153-65535 is a valid range"), // Evaluated at compile time.
};

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), or
/// [`FALLBACK_RANGE`] if it cannot be read.
pub fn kernel_range() -> PortRange {
    range_or_fallback(std::fs::read_to_string(KERNEL_RANGE_PATH).ok())
}

fn range_or_fallback(text: Option<String>) -> PortRange {
    text.as_deref().and_then(parse_kernel_range).unwrap_or(FALLBACK_RANGE)
}

/// Reads the kernel's `START<tab>END` format.
fn parse_kernel_range(text: &str) -> Option<PortRange> {
    let mut fields = text.split_whitespace();
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    PortRange::new(start, end)
}

/// Hands out free host ports of one range, as bound sockets. Share one allocator (`&` is
/// enough; it is `Sync`) among everything that allocates from the same range.
#[derive(Debug)]
pub struct PortAllocator {
    range: PortRange,
    /// Counts attempts over the allocator's life; attempt `n` tries port `start + n % count`.
    /// Each attempt takes the next value, so callers never queue up behind the same port.
    cursor: AtomicU32,
}

impl PortAllocator {
    /// An allocator over `range` (for example 49000-49900).
    pub fn new(range: PortRange) -> PortAllocator {
        // A random first port keeps separate processes allocating from the same range (several
        // cproxy instances, say) from all contending for its first ports.
        let seed = RandomState::new().hash_one(std::process::id()) as u32;
        PortAllocator { range, cursor: AtomicU32::new(seed % range.count()) }
    }

    /// An allocator over the kernel's ephemeral range, as Docker allocates (see
    /// [`kernel_range`]).
    pub fn from_kernel() -> PortAllocator {
        PortAllocator::new(kernel_range())
    }

    /// One mapping for its own protocol (tests).
    #[cfg(test)]
    fn bind_mapping(&self, mapping: &PortMapping) -> Result<Vec<BoundSocket>, AllocError> {
        self.bind_mapping_for(mapping, &[mapping.proto])
    }

    /// Binds a free port of the range on `ip`: a listening socket for TCP (set up as the
    /// forwarder's own listeners are), a bound socket for UDP. Ports in use are skipped.
    #[cfg(test)]
    fn allocate(&self, ip: IpAddr, proto: Proto) -> Result<BoundSocket, AllocError> {
        let mut sockets = self.bind(Some(ip), HostPort::Any, &[proto])?;
        Ok(sockets.remove(0))
    }

    /// Binds one free port of the range on `ip` for both TCP and UDP, as `(tcp, udp)`. A port
    /// free for one protocol but not the other is released again and skipped.
    #[cfg(test)]
    fn allocate_pair(&self, ip: IpAddr) -> Result<(BoundSocket, BoundSocket), AllocError> {
        let mut sockets = self.bind(Some(ip), HostPort::Any, &[Proto::Tcp, Proto::Udp])?;
        let udp = sockets.remove(1);
        Ok((sockets.remove(0), udp))
    }

    /// Binds what one mapping of a spec asks for (its fixed port, any port of this allocator's
    /// range, or one port of the mapping's own range) once for each of `protos` (the mapping's
    /// own protocol is ignored), all on one host port: the TCP and UDP halves of a published
    /// port get the same number. An allocated port taken for any of them is skipped for all.
    ///
    /// Without a host IP it binds as Docker does: `0.0.0.0` and, where the host has IPv6, `[::]`
    /// (IPv6-only) on the same port, IPv4 first. An allocated port taken on either family is
    /// skipped for both; a fixed one is an error.
    pub fn bind_mapping_for(
        &self,
        mapping: &PortMapping,
        protos: &[Proto],
    ) -> Result<Vec<BoundSocket>, AllocError> {
        self.bind(mapping.host_ip, mapping.host_port, protos)
    }

    /// Binds `host_port` on `host_ip` (both families if `None`) once for each of `protos` (not
    /// empty), all on one port, in that order; IPv4 before IPv6 for each protocol.
    fn bind(
        &self,
        host_ip: Option<IpAddr>,
        host_port: HostPort,
        protos: &[Proto],
    ) -> Result<Vec<BoundSocket>, AllocError> {
        let bind = |first: u16| {
            let mut all: Vec<BoundSocket> = Vec::new();
            for &proto in protos {
                // Port 0 lets the kernel pick for the first socket; the rest take its pick.
                let port = all.first().map_or(first, BoundSocket::port);
                match host_ip {
                    Some(ip) => all.push(bind_socket(proto, SocketAddr::new(ip, port))?),
                    None => all.extend(bind_both_families(proto, port)?),
                }
            }
            Ok(all)
        };
        let ip = host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let names = match protos {
            [Proto::Tcp] => "tcp",
            [Proto::Udp] => "udp",
            _ => "tcp and udp",
        };
        match host_port {
            HostPort::Fixed(port) => bind(port).map_err(AllocError::Bind),
            HostPort::Any => self.search(ip, names, |addr| bind(addr.port())),
            HostPort::OneOf(range) => {
                PortAllocator::new(range).search(ip, names, |addr| bind(addr.port()))
            }
        }
    }

    /// Tries ports from the cursor on until `bind` succeeds, fails for a reason other than
    /// the port being taken, or every port of the range has been tried once.
    fn search<T>(
        &self,
        ip: IpAddr,
        protos: &'static str,
        mut bind: impl FnMut(SocketAddr) -> Result<T, ProxyError>,
    ) -> Result<T, AllocError> {
        for _ in 0..self.range.count() {
            match bind(SocketAddr::new(ip, self.next_port())) {
                Ok(bound) => return Ok(bound),
                Err(ProxyError::AddrInUse { .. }) => continue,
                Err(e) => return Err(AllocError::Bind(e)),
            }
        }
        Err(AllocError::AllAllocated { ip, range: self.range, protos })
    }

    fn next_port(&self) -> u16 {
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        // offset < count, so start + offset <= end: no overflow.
        let offset = (n % self.range.count()) as u16;
        self.range.start() + offset
    }
}

/// Binds `0.0.0.0:port`, then `[::]` on the port that got (the same, unless `port` is 0). A
/// host without IPv6 gets the IPv4 socket alone, as from Docker.
fn bind_both_families(proto: Proto, port: u16) -> Result<Vec<BoundSocket>, ProxyError> {
    let v4 = bind_socket(proto, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))?;
    match bind_socket(proto, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), v4.port())) {
        Ok(v6) => Ok(vec![v4, v6]),
        Err(ProxyError::Listen { source, .. }) if no_ipv6(&source) => Ok(vec![v4]),
        // Dropping the IPv4 socket frees its port again.
        Err(e) => Err(e),
    }
}

/// True for the errors of a host (or namespace) without IPv6: no such family, or no `::`.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL))
}

/// Binds `addr` for `proto`; a port in use comes back as [`ProxyError::AddrInUse`].
fn bind_socket(proto: Proto, addr: SocketAddr) -> Result<BoundSocket, ProxyError> {
    let socket = match proto {
        Proto::Tcp => tcp_listening_socket(addr),
        Proto::Udp => udp_socket(addr),
    }
    .map_err(|e| ProxyError::listen(proto, addr, e))?;
    // Differs from `addr` only when port 0 let the kernel choose.
    let local = socket.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(addr);
    Ok(BoundSocket { proto, local, socket })
}

/// A bound UDP socket: non-blocking, close-on-exec, IPv6-only for IPv6 addresses (Docker runs
/// one proxy per address family). No `SO_REUSEADDR`: for UDP it would let two sockets share
/// the port.
fn udp_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM.nonblocking().cloexec(),
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// A host port, held: a listening TCP socket or a bound UDP socket. Hand it to the forwarder
/// with `Proxy::add_socket(socket.proto(), socket.into_fd(), backend)`; dropping it frees the
/// port.
#[derive(Debug)]
pub struct BoundSocket {
    proto: Proto,
    local: SocketAddr,
    socket: socket2::Socket,
}

impl BoundSocket {
    /// TCP (listening) or UDP (bound).
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The address and port bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// The socket's descriptor, for `Proxy::add_socket`.
    pub fn into_fd(self) -> OwnedFd {
        self.socket.into()
    }
}

impl AsFd for BoundSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl From<BoundSocket> for OwnedFd {
    fn from(socket: BoundSocket) -> OwnedFd {
        socket.into_fd()
    }
}

/// Why no host port could be had.
#[derive(Debug)]
pub enum AllocError {
    /// Every port of the range was in use.
    AllAllocated {
        /// The address ports were tried on.
        ip: IpAddr,
        /// The range tried.
        range: PortRange,
        /// What was asked for: `tcp`, `udp`, or `tcp and udp`.
        protos: &'static str,
    },
    /// A bind failed for a reason other than the port being taken (an address that is not
    /// on this host, say), or a fixed port was taken.
    Bind(ProxyError),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::AllAllocated { ip, range, protos } => write!(
                f,
                "all ports are allocated (no free {protos} port in {range} on {ip}; \
                 free some or widen the range)"
            ),
            AllocError::Bind(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AllocError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AllocError::Bind(e) => Some(e),
            AllocError::AllAllocated { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::sync::{Arc, Barrier};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A block of `len` consecutive ports free for TCP and UDP on 127.0.0.1, searched for in
    /// `area..area + 1000`. Each test has its own area, so tests running side by side do not
    /// take each other's ports.
    fn free_block(area: u16, len: u16) -> PortRange {
        let mut start = area;
        while start + len <= area + 1000 {
            let mut held = Vec::new();
            let all_free = (start..start + len).all(|port| {
                let tcp = TcpListener::bind((LOCALHOST, port));
                let udp = UdpSocket::bind((LOCALHOST, port));
                let free = tcp.is_ok() && udp.is_ok();
                held.push((tcp, udp));
                free
            });
            if all_free {
                return PortRange::new(start, start + len - 1).unwrap();
            }
            start += len;
        }
        panic!("no {len} free ports on 127.0.0.1 in {area}-{}", area + 1000);
    }

    /// An allocator whose first try is the first port of `range`.
    fn from_first_port(range: PortRange) -> PortAllocator {
        PortAllocator { range, cursor: AtomicU32::new(0) }
    }

    #[test]
    fn concurrent_allocations_never_share_a_port() {
        let range = free_block(20000, 300);
        let allocator = Arc::new(PortAllocator::new(range));
        let start = Arc::new(Barrier::new(200));
        let threads: Vec<_> = (0..200)
            .map(|_| {
                let (allocator, start) = (allocator.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    allocator.allocate(LOCALHOST, Proto::Tcp)
                })
            })
            .collect();
        // Every socket is kept until the check, so no port can be freed and handed out twice.
        let sockets: Vec<BoundSocket> =
            threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
        let ports: HashSet<u16> = sockets.iter().map(BoundSocket::port).collect();
        assert_eq!(ports.len(), 200);
        assert!(ports.iter().all(|&p| range.contains(p)));
    }

    #[test]
    fn consecutive_allocations_move_on_through_the_range() {
        let range = free_block(21000, 3);
        let allocator = from_first_port(range);
        let ports: Vec<u16> = (0..3)
            .map(|_| allocator.allocate(LOCALHOST, Proto::Udp).unwrap())
            .map(|s| s.port()) // Dropped at once: the next call must still not retry it.
            .collect();
        assert_eq!(ports, [range.start(), range.start() + 1, range.start() + 2]);
    }

    #[test]
    fn tcp_port_held_by_another_socket_is_skipped() {
        let range = free_block(22000, 2);
        let _other = TcpListener::bind((LOCALHOST, range.start())).unwrap();
        let socket = from_first_port(range).allocate(LOCALHOST, Proto::Tcp).unwrap();
        assert_eq!(socket.port(), range.end());
    }

    #[test]
    fn udp_port_held_by_another_socket_is_skipped() {
        let range = free_block(23000, 2);
        let _other = UdpSocket::bind((LOCALHOST, range.start())).unwrap();
        let socket = from_first_port(range).allocate(LOCALHOST, Proto::Udp).unwrap();
        assert_eq!(socket.port(), range.end());
    }

    #[test]
    fn exhausted_range_says_all_ports_are_allocated() {
        let range = free_block(24000, 2);
        let _held: Vec<TcpListener> =
            range.ports().map(|p| TcpListener::bind((LOCALHOST, p)).unwrap()).collect();
        let e = PortAllocator::new(range).allocate(LOCALHOST, Proto::Tcp).unwrap_err();
        assert!(matches!(e, AllocError::AllAllocated { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "all ports are allocated (no free tcp port in {range} on 127.0.0.1; \
                 free some or widen the range)"
            )
        );
    }

    #[test]
    fn tcp_and_udp_halves_get_the_same_port() {
        let range = free_block(25000, 10);
        let (tcp, udp) = PortAllocator::new(range).allocate_pair(LOCALHOST).unwrap();
        assert_eq!((tcp.proto(), udp.proto()), (Proto::Tcp, Proto::Udp));
        assert_eq!(tcp.port(), udp.port());
        assert!(range.contains(tcp.port()));
        // The TCP half is already listening: a client can connect before anyone accepts.
        TcpStream::connect(tcp.local_addr()).unwrap();
    }

    #[test]
    fn pair_skips_a_port_whose_udp_half_is_taken_and_releases_its_tcp_half() {
        let range = free_block(26000, 2);
        let _other = UdpSocket::bind((LOCALHOST, range.start())).unwrap();
        let (tcp, udp) = from_first_port(range).allocate_pair(LOCALHOST).unwrap();
        assert_eq!((tcp.port(), udp.port()), (range.end(), range.end()));
        TcpListener::bind((LOCALHOST, range.start())).expect("the skipped TCP half was released");
    }

    #[test]
    fn allocated_sockets_are_nonblocking_and_close_on_exec() {
        let range = free_block(27000, 10);
        let allocator = PortAllocator::new(range);
        for proto in [Proto::Tcp, Proto::Udp] {
            let socket = allocator.allocate(LOCALHOST, proto).unwrap();
            assert!(socket.socket.nonblocking().unwrap(), "{proto}");
            // SAFETY: F_GETFD on a descriptor this test owns.
            let flags = unsafe { libc::fcntl(socket.socket.as_fd().as_raw_fd(), libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "{proto}");
        }
    }

    #[test]
    fn fixed_mapping_on_a_port_taken_by_another_socket_is_a_bind_failure_in_gos_words() {
        let range = free_block(28000, 1);
        let _other = TcpListener::bind((LOCALHOST, range.start())).unwrap();
        let mapping = PortMapping {
            host_ip: Some(LOCALHOST),
            host_port: HostPort::Fixed(range.start()),
            container_port: 80,
            proto: Proto::Tcp,
        };
        let e = PortAllocator::new(range).bind_mapping(&mapping).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("listen tcp4 127.0.0.1:{}: bind: address already in use", range.start())
        );
    }

    #[test]
    fn mappings_bind_their_own_port_range_or_the_allocators() {
        let own = free_block(29000, 5);
        let allocators = free_block(29500, 5);
        let allocator = PortAllocator::new(allocators);
        let mapping = |host_port| PortMapping {
            host_ip: Some(LOCALHOST),
            host_port,
            container_port: 80,
            proto: Proto::Udp,
        };
        let bind = |host_port| {
            let mut sockets = allocator.bind_mapping(&mapping(host_port)).unwrap();
            assert_eq!(sockets.len(), 1, "a mapping with a host IP binds that address alone");
            sockets.remove(0)
        };
        let fixed = bind(HostPort::Fixed(own.end()));
        assert_eq!(fixed.local_addr(), SocketAddr::new(LOCALHOST, own.end()));
        let one_of = bind(HostPort::OneOf(own));
        assert!(own.contains(one_of.port()) && one_of.port() != own.end());
        let any = bind(HostPort::Any);
        assert!(allocators.contains(any.port()));
    }

    #[test]
    fn tcp_and_udp_halves_of_a_mapping_share_the_port_on_both_families() {
        let range = free_block(32000, 10);
        let allocator = PortAllocator::new(range);
        let mapping = PortMapping {
            host_ip: None,
            host_port: HostPort::Any,
            container_port: 53,
            proto: Proto::Udp,
        };
        // The first port of the range is free for TCP only: it must be skipped.
        let _udp_taken = UdpSocket::bind(("0.0.0.0", range.start())).unwrap();
        let mut seen = Vec::new();
        for _ in 0..range.count() - 1 {
            let sockets = allocator.bind_mapping_for(&mapping, &[Proto::Tcp, Proto::Udp]).unwrap();
            let kinds: Vec<(Proto, bool)> =
                sockets.iter().map(|s| (s.proto(), s.local_addr().is_ipv4())).collect();
            assert_eq!(
                kinds,
                [(Proto::Tcp, true), (Proto::Tcp, false), (Proto::Udp, true), (Proto::Udp, false)]
            );
            let port = sockets[0].port();
            assert!(sockets.iter().all(|s| s.port() == port), "{sockets:?}");
            assert_ne!(port, range.start(), "port whose udp half is taken was used");
            seen.push(sockets);
        }
        let e = allocator.bind_mapping_for(&mapping, &[Proto::Tcp, Proto::Udp]).unwrap_err();
        assert!(e.to_string().contains("tcp and udp"), "{e}");
    }

    /// Without a host IP, as Docker: 0.0.0.0 and [::] on one port (this host has IPv6).
    #[test]
    fn a_mapping_without_host_ip_binds_both_families_on_one_port() {
        let range = free_block(31000, 20);
        let mapping = |host_port| PortMapping {
            host_ip: None,
            host_port,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let allocator = PortAllocator::new(range);
        let any = allocator.bind_mapping(&mapping(HostPort::Any)).unwrap();
        assert!(any.len() == 2 && any[0].port() == any[1].port(), "{any:?}");
        drop(any);
        let port = range.start();
        let both = allocator.bind_mapping(&mapping(HostPort::Fixed(port))).unwrap();
        let addrs: Vec<SocketAddr> = both.iter().map(BoundSocket::local_addr).collect();
        assert_eq!(
            addrs,
            [SocketAddr::from(([0, 0, 0, 0], port)), format!("[::]:{port}").parse().unwrap()]
        );
        // [::] taken by someone else: a fixed port fails in Go's words and leaves 0.0.0.0
        // free; an allocated one moves on to a port free on both.
        let taken = both.into_iter().nth(1).unwrap();
        let e = allocator.bind_mapping(&mapping(HostPort::Fixed(port))).unwrap_err();
        assert_eq!(e.to_string(), format!("listen tcp6 [::]:{port}: bind: address already in use"));
        assert!(TcpListener::bind(("0.0.0.0", port)).is_ok(), "0.0.0.0 half left bound");
        let own = PortRange::new(port, port + 1).unwrap();
        let moved = allocator.bind_mapping(&mapping(HostPort::OneOf(own))).unwrap();
        assert!(moved.iter().all(|s| s.port() == port + 1), "{moved:?}");
        drop(taken);
    }

    #[tokio::test]
    async fn allocated_sockets_are_accepted_by_the_forwarder() {
        let range = free_block(30000, 10);
        let (tcp, udp) = PortAllocator::new(range).allocate_pair(LOCALHOST).unwrap();
        let port = tcp.port();
        let proxy = crate::proxy::Proxy::new(crate::proxy::Config::default());
        let backend = SocketAddr::new(LOCALHOST, 9);
        let tcp_info = proxy.add_socket(tcp.proto(), tcp.into_fd(), backend).unwrap();
        let udp_info = proxy.add_socket(udp.proto(), udp.into_fd(), backend).unwrap();
        assert_eq!(tcp_info.local, SocketAddr::new(LOCALHOST, port));
        assert_eq!(udp_info.local, SocketAddr::new(LOCALHOST, port));
        proxy.kill();
        proxy.shutdown().await;
    }

    #[test]
    fn kernel_range_is_read_in_procs_format() {
        assert_eq!(parse_kernel_range("32768\t60999\n"), PortRange::new(32768, 60999));
        for junk in ["", "32768", "60999\t32768", "0\t100", "1 2 3", "a\tb"] {
            assert_eq!(parse_kernel_range(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn unreadable_kernel_range_falls_back_to_dockers() {
        assert_eq!(range_or_fallback(None), FALLBACK_RANGE);
        assert_eq!(range_or_fallback(Some("junk".into())), FALLBACK_RANGE);
        assert_eq!(FALLBACK_RANGE, PortRange::new(49153, 65535).unwrap());
    }
}
