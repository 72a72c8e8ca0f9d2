//! Shared UDP test fixtures: a loopback echo backend, a client that does request/response with a
//! deadline, a proxy with one UDP binding, and counter polling with a bounded deadline.
#![allow(dead_code, unused_imports)] // Each test binary uses a different subset.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use cproxy::proxy::{Binding, BindingInfo, Config, Proto, Proxy, Stats};
pub use testkit::pattern::bytes as pattern;
use testkit::peers::UdpEcho;
pub use testkit::peers::WHOAMI;
use tokio::net::UdpSocket;

/// How long any single expected event may take before a test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A UDP echo backend: replies to each datagram with the same bytes, except [`WHOAMI`], which
/// gets the sender's address as text. Stops when dropped, its port closed.
pub struct Backend {
    pub addr: SocketAddr,
    _echo: UdpEcho,
}

impl Backend {
    /// An echo backend on `ip`, port chosen by the kernel.
    pub async fn start(ip: &str) -> io::Result<Backend> {
        Backend::on(SocketAddr::new(ip.parse().map_err(io::Error::other)?, 0)).await
    }

    /// An echo backend on exactly `addr`.
    pub async fn on(addr: SocketAddr) -> io::Result<Backend> {
        let echo = UdpEcho::bind(addr, 1)?;
        Ok(Backend { addr: echo.addr(), _echo: echo })
    }
}

/// A proxy with one UDP binding from `host_ip` (port chosen by the kernel) to `backend`.
pub fn forward(config: Config, host_ip: &str, backend: SocketAddr) -> (Proxy, BindingInfo) {
    let proxy = Proxy::new(config);
    let host = SocketAddr::new(host_ip.parse().expect("test host ip"), 0);
    let info = proxy.add(Binding { proto: Proto::Udp, host, backend }).expect("add udp binding");
    (proxy, info)
}

/// The proxy's counters for `info`'s binding.
pub fn stats(proxy: &Proxy, info: &BindingInfo) -> Arc<Stats> {
    proxy.stats(info.id).expect("binding has stats")
}

/// A client socket on `ip`, port chosen by the kernel.
pub async fn client(ip: &str) -> io::Result<UdpSocket> {
    UdpSocket::bind((ip, 0)).await
}

/// Sends `request` to `to` and returns the reply and where it came from.
pub async fn exchange(
    client: &UdpSocket,
    to: SocketAddr,
    request: &[u8],
) -> io::Result<(Vec<u8>, SocketAddr)> {
    client.send_to(request, to).await?;
    recv(client).await
}

/// The next datagram `client` receives, within [`DEADLINE`].
pub async fn recv(client: &UdpSocket) -> io::Result<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(DEADLINE, client.recv_from(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply within the deadline"))??;
    buf.truncate(n);
    Ok((buf, from))
}

/// Waits until `counter` satisfies `ok`, polling (there is no signal for a counter) until
/// [`DEADLINE`]; returns the last value read, so a failing assert shows it.
pub async fn wait_for(counter: &AtomicU64, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let v = Stats::get(counter);
        if ok(v) || tokio::time::Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
