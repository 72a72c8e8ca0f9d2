//! What transparent mode (`--source-ip-transparent`) costs, across a veth path: a client host,
//! the host running cproxy and a container host (three namespaces the bench makes and removes,
//! MTU 1500; nothing leaves them). In one run, three paths to the same servers in the
//! container: direct (the client routed straight to the container), cproxy, and cproxy in
//! transparent mode; each figure also as a ratio of direct.
//!
//! Figures: TCP throughput (one connection, client to container), TCP connection rate (connect,
//! one answer, close; one at a time), TCP round-trip latency (64 bytes each way on one
//! connection, p50 and p99) and UDP round-trip latency (p50, p99; each datagram opens nothing
//! new, one session). Every loop is bounded by a count. Numbers only: nothing is asserted.
//!
//! `cargo bench --bench transparent_veth` (as root); `CPROXY_BIN` names another cproxy build.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use testkit::netns::{Netns, RoutedHosts};
use testkit::peers::UdpEcho;
use testkit::spawn;

const BULK_BYTES: u64 = 512 << 20;
const CONNECTIONS: usize = 2000;
const ROUND_TRIPS: usize = 5000;
/// Each path is measured this many times, interleaved; the median is reported.
const ROUNDS: usize = 3;

const SINK_PORT: u16 = 9000;
const ANSWER_PORT: u16 = 9001;
const ECHO_PORT: u16 = 9002;
const UDP_PORT: u16 = 9003;

struct Figures {
    gbit_s: f64,
    conns_s: f64,
    tcp_rtt: (f64, f64),
    udp_rtt: (f64, f64),
}

fn main() {
    let bin = std::env::var("CPROXY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_cproxy").into());
    let hosts = RoutedHosts::new();
    servers(&hosts.container);
    let ctr = RoutedHosts::CONTAINER_V4;
    let front = RoutedHosts::PROXY_V4;
    let mut proxies: Vec<Child> = Vec::new();
    for (offset, transparent) in [(0u16, false), (100, true)] {
        for (proto, port) in
            [("tcp", SINK_PORT), ("tcp", ANSWER_PORT), ("tcp", ECHO_PORT), ("udp", UDP_PORT)]
        {
            let mut args = vec![
                "-proto".to_string(),
                proto.into(),
                "-host-ip".into(),
                front.to_string(),
                "-host-port".into(),
                (port + 10_000 + offset).to_string(),
                "-container-ip".into(),
                ctr.to_string(),
                "-container-port".into(),
                port.to_string(),
            ];
            if transparent {
                args.push("-source-ip-transparent".into());
            }
            proxies.push(start(&hosts.proxy, &bin, &args));
        }
    }
    let paths = [("direct", ctr, 0u16), ("cproxy", front, 10_000), ("transparent", front, 10_100)];
    let mut results: Vec<Vec<Figures>> = paths.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (i, (_, ip, offset)) in paths.iter().enumerate() {
            let at = |port: u16| SocketAddr::new(*ip, port + offset);
            results[i].push(measure(&hosts.client, at));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let summary: Vec<[f64; 6]> = results
        .iter()
        .map(|r| {
            let pick = |f: fn(&Figures) -> f64| median(&mut r.iter().map(f).collect());
            [
                pick(|f| f.gbit_s),
                pick(|f| f.conns_s),
                pick(|f| f.tcp_rtt.0),
                pick(|f| f.tcp_rtt.1),
                pick(|f| f.udp_rtt.0),
                pick(|f| f.udp_rtt.1),
            ]
        })
        .collect();
    println!(
        "veth path, MTU 1500, median of {ROUNDS} rounds; ({BULK_BYTES} bytes, {CONNECTIONS} \
         connections, {ROUND_TRIPS} round trips)"
    );
    println!(
        "{:<12} {:>14} {:>16} {:>20} {:>20}",
        "path", "TCP Gbit/s", "TCP conns/s", "TCP RTT p50/p99 us", "UDP RTT p50/p99 us"
    );
    for ((name, _, _), s) in paths.iter().zip(&summary) {
        let d = &summary[0];
        println!(
            "{:<12} {:>6.2} ({:.2}) {:>8.0} ({:.2}) {:>7.0}/{:<4.0}({:.2}) {:>7.0}/{:<4.0}({:.2})",
            name,
            s[0],
            s[0] / d[0],
            s[1],
            s[1] / d[1],
            s[2],
            s[3],
            s[2] / d[2],
            s[4],
            s[5],
            s[4] / d[4]
        );
    }
    println!(
        "(ratios of direct in parentheses: throughput and rate, higher is better; RTT p50, lower is better)"
    );
    // Stopped as dockerd stops them, so the last removes the routing and its lock file.
    for mut p in proxies {
        let pid = nix::unistd::Pid::from_raw(p.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = p.wait();
    }
}

/// The container's servers: a sink, an answerer (writes its peer's address and closes), a TCP
/// echo, and a UDP echo; each on its fixed port.
fn servers(container: &Netns) {
    let ip = RoutedHosts::CONTAINER_V4;
    let (sink, answer, echo, udp) = container.run(move || {
        let l = |port| TcpListener::bind((ip, port)).expect("listen in the container");
        let udp = UdpEcho::bind(SocketAddr::new(ip, UDP_PORT), 1).expect("udp echo");
        (l(SINK_PORT), l(ANSWER_PORT), l(ECHO_PORT), udp)
    });
    udp.forever();
    each(sink, |mut c| {
        let _ = std::io::copy(&mut c, &mut std::io::sink());
        let _ = c.write_all(b"done");
    });
    each(answer, |mut c| {
        let peer = c.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let _ = c.write_all(peer.as_bytes());
    });
    each(echo, |mut c| {
        let mut r = c.try_clone().expect("clone");
        let _ = std::io::copy(&mut r, &mut c);
    });
}

fn each(listener: TcpListener, serve: fn(TcpStream)) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
}

fn start(ns: &Netns, bin: &str, args: &[String]) -> Child {
    let (status, write) = spawn::status_pipe().expect("status pipe");
    let mut cmd = ns.command(bin);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    spawn::die_with_parent(&mut cmd);
    let child = spawn::spawn_with_fds(cmd, &[Some(write.as_fd())]).expect("spawn cproxy");
    drop(write);
    assert_eq!(spawn::read_status(status).expect("status"), "0\n", "cproxy did not start");
    child
}

fn measure(client: &Netns, at: impl Fn(u16) -> SocketAddr + Send + Sync) -> Figures {
    client.run(|| {
        // Throughput: one connection, client to container.
        let mut conn = TcpStream::connect(at(SINK_PORT)).expect("connect");
        let chunk = vec![7u8; 1 << 20];
        let t = Instant::now();
        for _ in 0..BULK_BYTES / chunk.len() as u64 {
            conn.write_all(&chunk).expect("bulk write");
        }
        conn.shutdown(Shutdown::Write).unwrap();
        let mut done = [0u8; 4];
        conn.read_exact(&mut done).expect("the sink's end");
        let gbit_s = BULK_BYTES as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9;
        // Connection rate.
        let t = Instant::now();
        let mut buf = [0u8; 64];
        for _ in 0..CONNECTIONS {
            let mut c = TcpStream::connect(at(ANSWER_PORT)).expect("connect");
            while c.read(&mut buf).expect("answer") > 0 {}
        }
        let conns_s = CONNECTIONS as f64 / t.elapsed().as_secs_f64();
        // TCP round trips.
        let mut c = TcpStream::connect(at(ECHO_PORT)).expect("connect");
        c.set_nodelay(true).unwrap();
        let mut rtts = Vec::with_capacity(ROUND_TRIPS);
        let msg = [1u8; 64];
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            c.write_all(&msg).unwrap();
            c.read_exact(&mut buf).unwrap();
            rtts.push(t.elapsed());
        }
        let tcp_rtt = percentiles(&mut rtts);
        // UDP round trips.
        let u = UdpSocket::bind((RoutedHosts::CLIENT_V4, 0)).unwrap();
        u.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        u.connect(at(UDP_PORT)).unwrap();
        let mut rtts = Vec::with_capacity(ROUND_TRIPS);
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            u.send(&msg).unwrap();
            if u.recv(&mut buf).is_ok() {
                rtts.push(t.elapsed());
            }
        }
        let udp_rtt = percentiles(&mut rtts);
        Figures { gbit_s, conns_s, tcp_rtt, udp_rtt }
    })
}

/// p50 and p99 in microseconds.
fn percentiles(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}
