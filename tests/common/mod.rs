//! Shared test fixtures: a proxy in its own runtime, and the test kit's loopback peers and
//! checksummed streams under the names the tests use.
#![allow(dead_code, unused_imports)] // Each test binary uses a different subset.

pub mod process;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use cproxy::proxy::{Binding, BindingInfo, Config, Proto, Proxy};
pub use testkit::pattern::{Pattern, Sum, exchange, recv_into, recv_sum, send_pattern};
use testkit::peers;
pub use testkit::rlimit::raise_fd_limit;

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

/// A TCP echo server on `ip` that echoes each connection until EOF, then closes it. Runs until
/// the process ends.
pub fn echo_server(ip: &str) -> SocketAddr {
    peers::tcp_echo_server(ip).expect("tcp echo server")
}

/// An address on 127.0.0.1 where nothing listens, kept so until the process ends.
pub fn refused_addr() -> SocketAddr {
    peers::refused_tcp_addr().expect("refused address")
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

/// A UDP echo server on `ip` that answers each datagram with the same bytes. Runs until the
/// process ends.
pub fn udp_echo_server(ip: &str) -> SocketAddr {
    peers::udp_echo_server(ip).expect("udp echo server")
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

/// A listener on a fresh port of `ip` with a backlog as deep as the proxy's own.
pub fn listen(ip: &str) -> TcpListener {
    peers::listen(ip).expect("listen")
}
