//! TCP keepalive on both sides of every connection, over a real network path (a veth pair
//! between two namespaces): on by default with Go's period (15 s, as docker-proxy's accepted
//! connections have it), tunable and off with `-tcp-keepalive 0`, and what it is for: a client
//! that vanishes without a word no longer holds its connection (and its backend's) forever.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::process::spawn_in_netns;
use testkit::netns::{Netns, VethPath};

const PROXY_PORT: u16 = 8080;
const BACKEND_PORT: u16 = 80;

/// cproxy in `near`, listening on `near:8080` and forwarding to `backend`; killed on drop.
struct Proxy(Child);

impl Proxy {
    fn start(ns: &Netns, backend: SocketAddr, extra: &[&str]) -> Proxy {
        let args = [
            "-proto",
            "tcp",
            "-host-ip",
            &VethPath::NEAR.to_string(),
            "-host-port",
            &PROXY_PORT.to_string(),
            "-container-ip",
            &backend.ip().to_string(),
            "-container-port",
            &backend.port().to_string(),
        ];
        let child = spawn_in_netns(ns, &[&args[..], extra].concat());
        Proxy(child)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An echo backend for one connection, in `ns`.
fn echo_backend(ns: &Netns, addr: SocketAddr) -> thread::JoinHandle<()> {
    let listener = ns.run(move || TcpListener::bind(addr).expect("bind backend"));
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if conn.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    })
}

/// A connection from `ns` through the proxy, after one echoed exchange.
fn connected_client(ns: &Netns) -> TcpStream {
    let front = SocketAddr::new(VethPath::NEAR, PROXY_PORT);
    let mut c = ns.run(move || TcpStream::connect(front).expect("connect to the proxy"));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    c
}

/// A socket's timer in `/proc/net/tcp`: its kind (2 is the keepalive timer, 0 none) and the
/// clock ticks left.
type Timer = (u32, u64);

/// The timer of each established TCP socket of `ns` whose local or remote port is `port`:
/// (timer kind, clock ticks left) from `/proc/net/tcp` as seen inside it (kind 2 is the
/// keepalive timer, 0 none).
fn timers(ns: &Netns, local_port: Option<u16>, remote_port: Option<u16>) -> Vec<Timer> {
    ns.run(move || {
        let text = std::fs::read_to_string("/proc/thread-self/net/tcp").expect("net/tcp");
        let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let established = f.get(3) == Some(&"01");
                let matches = local_port.is_none_or(|p| port_of(f[1]) == Some(p))
                    && remote_port.is_none_or(|p| port_of(f[2]) == Some(p));
                if !(established && matches) {
                    return None;
                }
                let (kind, left) = f[5].split_once(':')?;
                Some((u32::from_str_radix(kind, 16).ok()?, u64::from_str_radix(left, 16).ok()?))
            })
            .collect()
    })
}

/// The proxy's two sockets of the one connection: (client side, backend side).
fn proxy_timers(ns: &Netns) -> (Vec<Timer>, Vec<Timer>) {
    (timers(ns, Some(PROXY_PORT), None), timers(ns, None, Some(BACKEND_PORT)))
}

#[test]
fn both_sides_of_a_connection_keep_alive_with_gos_15s_by_default() {
    let path = VethPath::new(1500);
    let backend = SocketAddr::new(VethPath::FAR, BACKEND_PORT);
    let _echo = echo_backend(&path.far, backend);
    let _proxy = Proxy::start(&path.near, backend, &[]);
    let _client = connected_client(&path.near);
    // The proxy's client-side socket (local port 8080) and backend-side socket (remote port
    // 80), both idle: each must have its keepalive timer running, due within 15 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (front, back) = proxy_timers(&path.near);
        let keepalive =
            |t: &[(u32, u64)]| t.len() == 1 && t[0].0 == 2 && t[0].1 > 1000 && t[0].1 <= 1500;
        if keepalive(&front) && keepalive(&back) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 15 s keepalive timer (kind 2, ticks left): client side {front:?}, backend side \
             {back:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcp_keepalive_0_turns_it_off() {
    let path = VethPath::new(1500);
    let backend = SocketAddr::new(VethPath::FAR, BACKEND_PORT);
    let _echo = echo_backend(&path.far, backend);
    let _proxy = Proxy::start(&path.near, backend, &["-tcp-keepalive", "0"]);
    let _client = connected_client(&path.near);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (front, back) = proxy_timers(&path.near);
        let idle = |t: &[Timer]| t.len() == 1 && t[0].0 == 0;
        if idle(&front) && idle(&back) {
            break;
        }
        assert!(Instant::now() < deadline, "timers left running: {front:?}, {back:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The client is across the veth and the backend beside the proxy (on `near`'s loopback); the
/// client's link then goes down, so it vanishes without a FIN or a reset. With a 1 s keepalive
/// (9 probes, the kernel's count) the proxy gives up on it in about 10 s and resets the backend.
#[test]
fn a_client_that_vanishes_without_a_word_is_dropped_by_keepalive() {
    let path = VethPath::new(1500);
    let backend = SocketAddr::from(([127, 0, 0, 1], BACKEND_PORT));
    let listener = path.near.run(move || TcpListener::bind(backend).expect("bind backend"));
    let _proxy = Proxy::start(&path.near, backend, &["-tcp-keepalive", "1s"]);
    let _client = connected_client_without_echo(&path.far);
    let (mut conn, _) = listener.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    path.far.ip(&["link", "set", "veth1", "down"]);
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let end = conn.read(&mut buf);
    let took = started.elapsed();
    assert!(
        matches!(&end, Ok(0)) || matches!(&end, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the backend's connection was not ended: {end:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(30), "the vanished client was noticed only after {took:?}");
}

/// A connection from `ns` through the proxy, without waiting for a reply.
fn connected_client_without_echo(ns: &Netns) -> TcpStream {
    let front = SocketAddr::new(VethPath::NEAR, PROXY_PORT);
    ns.run(move || TcpStream::connect(front).expect("connect to the proxy"))
}
