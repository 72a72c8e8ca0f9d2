//! Shared test fixtures: a proxy in its own runtime, loopback peers, and a streaming checksum.
#![allow(dead_code)] // Each test binary uses a different subset.

pub mod netns;
pub mod process;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use cproxy::proxy::{Binding, BindingInfo, Config, Proto, Proxy};

/// A proxy running on its own multi-thread runtime, driven from blocking test code.
pub struct TestProxy {
    pub rt: tokio::runtime::Runtime,
    pub proxy: Proxy,
}

impl TestProxy {
    pub fn new(config: Config) -> TestProxy {
        // The proxy's sockets and pipes live in this process, next to the test's own.
        raise_fd_limit(16_384);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        TestProxy { rt, proxy: Proxy::new(config) }
    }

    /// Forwards a fresh port on `host_ip` to `backend`; returns the address to connect to.
    pub fn forward(&self, host_ip: &str, backend: SocketAddr) -> SocketAddr {
        self.add(Proto::Tcp, host_ip, backend).local
    }

    pub fn add(&self, proto: Proto, host_ip: &str, backend: SocketAddr) -> BindingInfo {
        let _enter = self.rt.enter();
        let host = SocketAddr::new(host_ip.parse().expect("ip"), 0);
        self.proxy.add(Binding { proto, host, backend }).expect("add binding")
    }
}

/// An order-sensitive checksum over a byte stream, fast enough for hundreds of MiB.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sum {
    h: u64,
    pub len: u64,
}

impl Sum {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.h = (self.h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.len += data.len() as u64;
    }
}

/// Deterministic pseudo-random bytes: the same `seed` gives the same stream.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }

    /// The next 8 bytes of the stream, as a number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0), for picking what to do next.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Writes `len` bytes of `Pattern(seed)` to `w`; returns their checksum.
pub fn send_pattern(w: &mut impl Write, seed: u64, len: u64) -> io::Result<Sum> {
    let mut pattern = Pattern::new(seed);
    let mut buf = vec![0u8; 256 * 1024];
    let mut sum = Sum::default();
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        pattern.fill(&mut buf[..n]);
        w.write_all(&buf[..n])?;
        sum.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(sum)
}

/// Reads `r` to end of stream; returns the checksum of what was read.
pub fn recv_sum(r: &mut impl Read) -> io::Result<Sum> {
    recv_into(r, Sum::default())
}

/// Reads `r` to end of stream, continuing `sum` over what was read.
pub fn recv_into(r: &mut impl Read, mut sum: Sum) -> io::Result<Sum> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf)? {
            0 => return Ok(sum),
            n => sum.update(&buf[..n]),
        }
    }
}

/// Sends `len` bytes each way at once over `conn` and checks both ends' checksums: the peer on
/// `listener` does the same from the other side.
pub fn bidirectional_transfer(listener: TcpListener, target: SocketAddr, len: u64) {
    let server = thread::spawn(move || -> io::Result<(Sum, Sum)> {
        let (conn, _) = listener.accept()?;
        exchange(conn, 2, len)
    });
    let client = TcpStream::connect(target).expect("connect to proxy");
    let (client_sent, client_got) = exchange(client, 1, len).expect("client side");
    let (server_sent, server_got) = server.join().expect("server thread").expect("server side");
    assert_eq!(client_sent.len, len);
    assert_eq!(server_got, client_sent, "backend must receive exactly what the client sent");
    assert_eq!(client_got, server_sent, "client must receive exactly what the backend sent");
}

/// Sends `len` bytes of `Pattern(seed)` then half-closes, while reading the peer to its end;
/// returns the checksums of what was sent and what was read.
pub fn exchange(conn: TcpStream, seed: u64, len: u64) -> io::Result<(Sum, Sum)> {
    let mut writer = conn.try_clone()?;
    let sender = thread::spawn(move || -> io::Result<Sum> {
        let sum = send_pattern(&mut writer, seed, len)?;
        writer.shutdown(Shutdown::Write)?;
        Ok(sum)
    });
    let mut reader = conn;
    let got = recv_sum(&mut reader)?;
    let sent = sender.join().map_err(|_| io::Error::other("sender panicked"))??;
    Ok((sent, got))
}

/// A TCP echo server on 127.0.0.1 (or `ip`) that echoes each connection until EOF, then
/// closes it. Runs until the process ends.
pub fn echo_server(ip: &str) -> SocketAddr {
    let listener = listen(ip);
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut r = conn.try_clone().expect("clone");
                let _ = io::copy(&mut r, &mut conn);
                let _ = conn.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// An address on 127.0.0.1 where nothing listens (bound once, then released).
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Sends `msg` to `addr`, half-closes, and returns everything read back until EOF.
pub fn echo_via(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(msg).expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("read");
    got
}

/// A blocking UDP echo server on `ip` that answers each datagram with the same bytes. Runs until
/// the process ends.
pub fn udp_echo_server(ip: &str) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).expect("bind udp echo");
    let addr = socket.local_addr().expect("addr");
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], peer);
        }
    });
    addr
}

/// Sends `msg` to `addr` from a fresh UDP socket; returns the reply, which must come from
/// `addr` within 5 s.
pub fn udp_echo_via(addr: SocketAddr, msg: &[u8]) -> io::Result<Vec<u8>> {
    let client = UdpSocket::bind(SocketAddr::new(addr.ip(), 0))?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    client.send_to(msg, addr)?;
    let mut buf = vec![0u8; 65536];
    let (n, from) = client.recv_from(&mut buf)?;
    assert_eq!(from, addr, "the reply must come from the address the request went to");
    buf.truncate(n);
    Ok(buf)
}

/// A listener on a fresh port of `ip` with a backlog as deep as the proxy's own: std's default of 128 drops
/// SYNs when the proxy dials hundreds of connections at once, and their retries (1 s, 3 s, 7 s)
/// can outlast the connect timeout on a loaded machine.
pub fn listen(ip: &str) -> TcpListener {
    let addr = SocketAddr::new(ip.parse().expect("listen address"), 0);
    let sock =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
            .expect("socket");
    sock.bind(&addr.into()).expect("bind");
    sock.listen(4096).expect("listen");
    sock.into()
}

/// Lets this test process hold `want` descriptors (the soft limit up to the hard one, and the
/// hard one up to `want` where allowed, as for root), whatever the shell's limit is.
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let wanted =
            libc::rlimit { rlim_cur: lim.rlim_max.max(want), rlim_max: lim.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
