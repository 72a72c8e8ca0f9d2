//! The loopback backends every peer forwards to: one TCP port whose first byte picks what the
//! connection is, sink (`S`: everything is read and counted) or echo (`E`: everything, that first
//! byte included, is sent back), and one UDP port whose datagrams are counted if they start with
//! `S` and sent back otherwise.
//!
//! One TCP port for every TCP load means one forwarding process per protocol, as docker-proxy
//! runs, so a peer's memory and CPU are read off one process. The servers are blocking threads:
//! a fixed pool of acceptors, each serving one connection at a time, so no thread is spawned per
//! connection (that would cap the connection rate of the direct path, the yardstick).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testkit::peers::UdpServer;

/// First byte of a connection that only sends: the backend reads and counts.
pub const SINK: u8 = b'S';
/// First byte of a connection that wants everything back, that byte included.
pub const ECHO: u8 = b'E';

/// Size of the bulk writes and the sink's reads: large, so the tool is not what limits the
/// direct path, but not larger. Measured here, 128 KiB moves about 1.6 times what 256 KiB does
/// on one loopback stream (a writer's and a reader's 256 KiB fill a 512 KiB L2 cache), and is
/// on a par with iperf3, which uses 128 KiB too.
pub const BULK_BUF: usize = 128 * 1024;

/// A connection that moves nothing for this long is closed, so a wedged peer cannot hold an
/// acceptor thread for ever.
const IDLE: Duration = Duration::from_secs(5);

/// The running backends; they stop when this is dropped.
pub struct Backends {
    /// The TCP port (sink or echo by first byte).
    pub tcp: SocketAddr,
    /// The UDP port (sink or echo by first byte).
    pub udp: SocketAddr,
    /// Counters, shared with the server threads.
    shared: Arc<Shared>,
    /// Kept to shut it down, which wakes the acceptors blocked on it.
    listener: Arc<TcpListener>,
    /// Acceptor threads, joined on drop.
    threads: Vec<JoinHandle<()>>,
    /// The UDP server at `udp`, two threads on one socket; held only to stop it when dropped.
    _udp: UdpServer,
}

/// What the server threads and the loads share.
#[derive(Default)]
struct Shared {
    /// Set once, when the backends are dropped.
    stop: AtomicBool,
    /// Bytes read by sinks since start.
    sunk: AtomicU64,
    /// Sink connections open now.
    open_sinks: AtomicUsize,
    /// Bytes of the UDP datagrams sunk since start.
    udp_sunk: AtomicU64,
}

impl Backends {
    /// Starts the backends on free ports of 127.0.0.1, with `acceptors` TCP connections served
    /// at once (more wait in the listen queue).
    pub fn start(acceptors: usize) -> io::Result<Backends> {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
        let shared = Arc::new(Shared::default());
        let udp = udp_server(Arc::clone(&shared))?;
        let mut threads = Vec::new();
        for i in 0..acceptors.max(1) {
            let (listener, shared) = (Arc::clone(&listener), Arc::clone(&shared));
            threads
                .push(spawn(format!("tcp-backend-{i}"), move || accept_loop(&listener, &shared))?);
        }
        Ok(Backends {
            tcp: listener.local_addr()?,
            udp: udp.addr(),
            shared,
            listener,
            threads,
            _udp: udp,
        })
    }

    /// Bytes the sinks have read since start.
    pub fn sunk(&self) -> u64 {
        self.shared.sunk.load(Ordering::Relaxed)
    }

    /// Bytes of the UDP datagrams sunk since start.
    pub fn udp_sunk(&self) -> u64 {
        self.shared.udp_sunk.load(Ordering::Relaxed)
    }

    /// Waits until no sink connection is open, for at most `limit`; true if none is. Used
    /// between runs so that bytes still in flight are not counted in the next one.
    pub fn wait_sinks_closed(&self, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while self.shared.open_sinks.load(Ordering::Relaxed) > 0 {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // On Linux, shutdown(2) of a listening socket wakes every thread blocked in accept(2).
        let _ = socket2::SockRef::from(&*self.listener).shutdown(Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Receive buffer asked for the UDP port: deep enough that the backend is not where a bulk
/// run loses datagrams (granted only with `CAP_NET_ADMIN`; else the kernel's `rmem_max`).
const UDP_RCVBUF: usize = 16 << 20;

/// The UDP port: two threads on one socket, counting datagrams that start with [`SINK`] and
/// sending the others back.
fn udp_server(shared: Arc<Shared>) -> io::Result<UdpServer> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let sock = socket2::SockRef::from(&socket);
    if nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &UDP_RCVBUF)
        .is_err()
    {
        sock.set_recv_buffer_size(UDP_RCVBUF)?;
    }
    UdpServer::on(socket, 2, move |socket, datagram, peer| {
        if datagram.first() == Some(&SINK) {
            shared.udp_sunk.fetch_add(datagram.len() as u64, Ordering::Relaxed);
        } else {
            let _ = socket.send_to(datagram, peer);
        }
    })
}

/// Spawns a named thread.
fn spawn<F: FnOnce() + Send + 'static>(name: String, f: F) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// One acceptor: serves connections one after the other until stopped.
fn accept_loop(listener: &TcpListener, shared: &Shared) {
    let mut buf = vec![0u8; BULK_BUF];
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                // Errors end the connection, never the acceptor: a peer that resets is a
                // peer's business.
                let _ = serve(conn, shared, &mut buf);
            }
            Err(_) if shared.stop.load(Ordering::Relaxed) => break,
            // Descriptor exhaustion and the like: back off briefly, keep serving.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Serves one connection: the first byte says sink or echo.
fn serve(mut conn: TcpStream, shared: &Shared, buf: &mut [u8]) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    conn.set_write_timeout(Some(IDLE))?;
    conn.set_nodelay(true)?;
    let n = conn.read(buf)?;
    match buf[..n].first() {
        None => Ok(()),
        Some(&SINK) => {
            shared.open_sinks.fetch_add(1, Ordering::Relaxed);
            let result = sink(&mut conn, shared, buf, n as u64);
            shared.open_sinks.fetch_sub(1, Ordering::Relaxed);
            result
        }
        Some(&ECHO) => {
            conn.write_all(&buf[..n])?;
            echo(&mut conn, shared, buf)
        }
        Some(_) => conn.shutdown(Shutdown::Both),
    }
}

/// Reads and counts until end of stream or stop.
fn sink(conn: &mut TcpStream, shared: &Shared, buf: &mut [u8], first: u64) -> io::Result<()> {
    shared.sunk.fetch_add(first, Ordering::Relaxed);
    while !shared.stop.load(Ordering::Relaxed) {
        match conn.read(buf)? {
            0 => break,
            n => shared.sunk.fetch_add(n as u64, Ordering::Relaxed),
        };
    }
    Ok(())
}

/// Sends back what arrives until end of stream or stop.
fn echo(conn: &mut TcpStream, shared: &Shared, buf: &mut [u8]) -> io::Result<()> {
    while !shared.stop.load(Ordering::Relaxed) {
        match conn.read(buf)? {
            0 => break,
            n => conn.write_all(&buf[..n])?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    fn connect(b: &Backends) -> TcpStream {
        let c = TcpStream::connect(b.tcp).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    }

    #[test]
    fn echo_connections_get_every_byte_back_first_byte_included() {
        let b = Backends::start(2).unwrap();
        let mut c = connect(&b);
        c.write_all(b"Ehello").unwrap();
        let mut got = [0u8; 6];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"Ehello");
    }

    #[test]
    fn sink_connections_are_counted_and_seen_closed() {
        let b = Backends::start(2).unwrap();
        let mut c = connect(&b);
        c.write_all(&[SINK; 1000]).unwrap();
        drop(c);
        let end = Instant::now() + Duration::from_secs(5);
        while b.sunk() < 1000 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(b.wait_sinks_closed(Duration::from_secs(5)));
        assert_eq!(b.sunk(), 1000);
    }

    #[test]
    fn udp_datagrams_starting_with_s_are_counted_not_sent_back() {
        let b = Backends::start(1).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(b.udp).unwrap();
        c.send(&[SINK; 100]).unwrap();
        c.send(b"Eback").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 8];
        let n = c.recv(&mut got).unwrap();
        assert_eq!(&got[..n], b"Eback");
        // Two threads serve the port: the other may still be counting the first datagram.
        let end = Instant::now() + Duration::from_secs(5);
        while b.udp_sunk() < 100 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(b.udp_sunk(), 100);
    }

    #[test]
    fn udp_datagrams_come_back_to_their_sender() {
        let b = Backends::start(1).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"ping", b.udp).unwrap();
        let mut got = [0u8; 8];
        let (n, from) = c.recv_from(&mut got).unwrap();
        assert_eq!((&got[..n], from), (&b"ping"[..], b.udp));
    }

    #[test]
    fn dropping_the_backends_frees_idle_acceptors_at_once() {
        let b = Backends::start(4).unwrap();
        let started = Instant::now();
        drop(b);
        assert!(started.elapsed() < IDLE);
    }
}
