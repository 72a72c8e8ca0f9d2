//! Loopback peers for a proxy to forward to, or to be measured against: a TCP echo and a TCP
//! sink that serve every connection on a thread of its own, a UDP echo, listeners with a deep
//! backlog, and free ports. Callers give loopback addresses only.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A request the UDP echo answers with the address it saw the request come from, as text,
/// instead of echoing it: how a test sees which source address a proxy used.
pub const WHOAMI: &[u8] = b"whoami";

/// How often a stopped [`UdpServer`] thread that was not woken notices it: a fallback, since
/// dropping the echo wakes its threads at once.
const UDP_POLL: Duration = Duration::from_millis(100);

/// The largest datagram there is (65,535 bytes less the UDP header), so nothing is truncated.
const MAX_DATAGRAM: usize = 65536;

/// A listener on a fresh port of `ip` with a backlog as deep as a proxy's own: std's default
/// of 128 drops SYNs when a proxy dials hundreds of connections at once, and their retries
/// (1 s, 3 s, 7 s) can outlast its connect timeout on a loaded machine.
pub fn listen(ip: &str) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(parse_ip(ip)?, 0);
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(sock.into())
}

/// A TCP echo server on a fresh port of `ip`: each connection gets back what it sends until it
/// half-closes, then is closed. Runs until the process ends.
pub fn tcp_echo_server(ip: &str) -> io::Result<SocketAddr> {
    serve_each_connection(listen(ip)?, |mut conn| {
        let mut r = conn.try_clone()?;
        let _ = io::copy(&mut r, &mut conn);
        conn.shutdown(Shutdown::Write)
    })
}

/// A TCP sink on a fresh port of `ip`: reads and discards every connection's bytes, and
/// closes it at end of stream. Runs until the process ends.
pub fn tcp_sink_server(ip: &str) -> io::Result<SocketAddr> {
    serve_each_connection(listen(ip)?, |mut conn| {
        io::copy(&mut conn, &mut io::sink())?;
        Ok(())
    })
}

/// Serves each connection of `listener` with `serve` on a thread of its own, for ever.
fn serve_each_connection(
    listener: TcpListener,
    serve: fn(std::net::TcpStream) -> io::Result<()>,
) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            // A peer that resets is the peer's business, not the server's.
            thread::spawn(move || serve(conn));
        }
    });
    Ok(addr)
}

/// A UDP echo on a fresh port of `ip` that runs until the process ends; see [`UdpEcho`].
pub fn udp_echo_server(ip: &str) -> io::Result<SocketAddr> {
    UdpEcho::start(ip).map(UdpEcho::forever)
}

/// A blocking UDP echo: each datagram goes back to its sender unchanged, except [`WHOAMI`],
/// which gets the sender's address as text. Stops when dropped: its threads are woken and
/// joined, so the port is closed when `drop` returns.
pub struct UdpEcho(UdpServer);

impl UdpEcho {
    /// An echo on a fresh port of `ip`, served by one thread.
    pub fn start(ip: &str) -> io::Result<UdpEcho> {
        UdpEcho::bind(SocketAddr::new(parse_ip(ip)?, 0), 1)
    }

    /// An echo on exactly `addr` (port 0: a fresh one), served by `threads` threads at once.
    pub fn bind(addr: SocketAddr, threads: usize) -> io::Result<UdpEcho> {
        UdpServer::on(UdpSocket::bind(addr)?, threads, echo).map(UdpEcho)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr()
    }

    /// Lets it run until the process ends; returns where it listens.
    pub fn forever(self) -> SocketAddr {
        let addr = self.addr();
        std::mem::forget(self);
        addr
    }
}

/// What [`UdpEcho`] does with a datagram.
fn echo(socket: &UdpSocket, datagram: &[u8], peer: SocketAddr) {
    let _ = if datagram == WHOAMI {
        socket.send_to(peer.to_string().as_bytes(), peer)
    } else {
        socket.send_to(datagram, peer)
    };
}

/// A blocking UDP server: threads on one socket, each handing every datagram it receives and
/// its sender to a function. Stops when dropped: its threads are woken and joined, so the port
/// is closed when `drop` returns.
pub struct UdpServer {
    /// Where it listens.
    addr: SocketAddr,
    /// Set once, when dropped.
    stop: Arc<AtomicBool>,
    /// A handle on the socket, to wake the threads blocked on it.
    socket: UdpSocket,
    /// The threads serving it, joined on drop.
    threads: Vec<JoinHandle<()>>,
}

impl UdpServer {
    /// Serves the bound `socket` with `threads` threads at once, each calling `serve` with the
    /// socket, a datagram and its sender.
    pub fn on<F>(socket: UdpSocket, threads: usize, serve: F) -> io::Result<UdpServer>
    where
        F: Fn(&UdpSocket, &[u8], SocketAddr) + Send + Sync + 'static,
    {
        socket.set_read_timeout(Some(UDP_POLL))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut server =
            UdpServer { addr: socket.local_addr()?, stop, socket, threads: Vec::new() };
        let serve = Arc::new(serve);
        for i in 0..threads.max(1) {
            let (socket, stop) = (server.socket.try_clone()?, Arc::clone(&server.stop));
            let serve = Arc::clone(&serve);
            let thread = thread::Builder::new()
                .name(format!("udp-server-{i}"))
                .spawn(move || serve_datagrams(&socket, &stop, &*serve))?;
            server.threads.push(thread);
        }
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // On Linux, shutdown(2) of a UDP socket wakes the threads blocked receiving on it (it
        // then reports ENOTCONN for an unconnected socket, which is expected).
        let _ = socket2::SockRef::from(&self.socket).shutdown(Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Hands every datagram to `serve` until `stop` is set.
fn serve_datagrams(
    socket: &UdpSocket,
    stop: &AtomicBool,
    serve: &(dyn Fn(&UdpSocket, &[u8], SocketAddr) + Send + Sync),
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        // Timeouts, errors an ICMP message left on the socket, and the wake-up of a shut down
        // socket (no datagram, no sender) are no reason to stop.
        let Ok((n, Some(peer))) = recv_from(socket, &mut buf) else { continue };
        serve(socket, &buf[..n], peer);
    }
}

/// `recv_from(2)` that gives `None` for a sender it did not report. std's `recv_from` panics
/// on that, and a UDP socket that is shut down (how [`UdpEcho`] wakes its threads) wakes its
/// readers with exactly that: no bytes and no sender.
fn recv_from(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, Option<SocketAddr>)> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and recv only writes
    // initialised bytes into a buffer that is initialised already.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let (n, from) = socket2::SockRef::from(socket).recv_from(uninit)?;
    Ok((n, from.as_socket()))
}

/// A TCP address on 127.0.0.1 where nothing listens, reserved until the process ends: the
/// port stays bound by a socket that never listens, so a connection to it is refused, and
/// neither another bind nor a connect's ephemeral source port (which would connect the dialer
/// to itself) can take it.
pub fn refused_tcp_addr() -> io::Result<SocketAddr> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let addr = socket.local_addr()?.as_socket().ok_or(io::ErrorKind::InvalidData)?;
    std::mem::forget(socket);
    Ok(addr)
}

/// A TCP port free right now on 127.0.0.1, for a proxy the caller starts to bind. It is
/// below the kernel's ephemeral range, so no `bind(0)` and no connect's source port elsewhere
/// can take it before the caller binds it, however many sockets the tests beside it open; and
/// each call in a process gets another one.
pub fn free_tcp_port() -> io::Result<u16> {
    free_tcp_ports(1)
}

/// The first of `n` consecutive TCP ports free right now on 127.0.0.1, as [`free_tcp_port`].
pub fn free_tcp_ports(n: u16) -> io::Result<u16> {
    reserved_ports(n, |p| TcpListener::bind(("127.0.0.1", p)).is_ok())
}

/// A UDP port free right now on 127.0.0.1, as [`free_tcp_port`].
pub fn free_udp_port() -> io::Result<u16> {
    reserved_ports(1, |p| UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// The lowest port [`reserved_ports`] hands out: above the well-known services people run on
/// hosts (8080, 9090…).
const RESERVED_FLOOR: u32 = 10_000;

/// The first of `n` consecutive ports for which `free` holds, taken in turn from the ports
/// between [`RESERVED_FLOOR`] and the start of the kernel's ephemeral range
/// (`ip_local_port_range`, 32768 by default), starting at an offset drawn from the process ID
/// so that two test processes at once rarely try the same ones.
fn reserved_ports(n: u16, free: impl Fn(u16) -> bool) -> io::Result<u16> {
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicU32;
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let span = ephemeral_start.saturating_sub(RESERVED_FLOOR);
    let n32 = u32::from(n);
    if span < 2 * n32 + 100 {
        return Err(io::Error::other(format!(
            "no ports below the ephemeral range (it starts at {ephemeral_start})"
        )));
    }
    let next = NEXT.get_or_init(|| AtomicU32::new(std::process::id().wrapping_mul(7919) % span));
    for _ in 0..span {
        let offset = next.fetch_add(n32, Ordering::Relaxed) % span;
        if offset + n32 > span {
            continue;
        }
        let first = RESERVED_FLOOR + offset;
        let ports = (first..first + n32).map(|p| u16::try_from(p).unwrap_or(0));
        if ports.clone().all(|p| p != 0 && free(p)) {
            return u16::try_from(first).map_err(io::Error::other);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free port below the ephemeral range"))
}

/// `ip` as an address, or an `InvalidInput` error that names it.
fn parse_ip(ip: &str) -> io::Result<IpAddr> {
    ip.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{ip}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_bindable_and_never_handed_out_twice() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let ephemeral: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let first = free_tcp_ports(3).unwrap();
            for p in first..first + 3 {
                assert!(p < ephemeral && u32::from(p) >= RESERVED_FLOOR, "{p}");
                assert!(seen.insert(p), "{p} handed out twice");
                TcpListener::bind(("127.0.0.1", p)).unwrap();
            }
            let udp = free_udp_port().unwrap();
            assert!(seen.insert(udp), "{udp} handed out twice");
            UdpSocket::bind(("127.0.0.1", udp)).unwrap();
        }
    }

    #[test]
    fn the_tcp_echo_sends_everything_back_and_closes_after_the_client() {
        let mut c = TcpStream::connect(tcp_echo_server("127.0.0.1").unwrap()).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hello");
    }

    #[test]
    fn the_udp_echo_answers_whoami_with_the_senders_address() {
        let echo = UdpEcho::start("127.0.0.1").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        c.send_to(b"ping", echo.addr()).unwrap();
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], echo.addr()));
        c.send_to(WHOAMI, echo.addr()).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf[..n]), c.local_addr().unwrap().to_string());
    }

    #[test]
    fn dropping_the_udp_echo_frees_its_port_at_once() {
        let mut echo = UdpEcho::bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
        let addr = echo.addr();
        let threads = std::mem::take(&mut echo.0.threads);
        let started = Instant::now();
        drop(echo);
        for t in threads {
            assert!(t.join().is_ok(), "an echo thread panicked when woken");
        }
        assert!(started.elapsed() < UDP_POLL, "the threads were not woken");
        assert!(UdpSocket::bind(addr).is_ok(), "the port is still taken");
    }
}
