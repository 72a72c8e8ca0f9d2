//! UDP over a real network path: cproxy in one namespace, its backend across a veth pair in
//! another, as dockerd runs it for a container. Many clients send bursts at once, so the
//! binding finds several datagrams waiting on its host socket and several sessions with replies
//! waiting in one wake-up: every datagram must come back, to the client that sent it, from the
//! address that client sent to.

mod common;

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::Child;
use std::time::Duration;

use common::process::spawn_in_netns;
use cproxy::proxy::{Binding, Config, Proto, Proxy, Stats};
use testkit::netns::VethPath;
use testkit::peers::UdpEcho;

const PROXY_PORT: u16 = 5353;
const BACKEND_PORT: u16 = 53;
/// How long a client waits for a reply before it sends what is missing again (UDP may drop a
/// datagram when a burst overflows a socket buffer; that is the network's right, not a bug).
const REPLY_WAIT: Duration = Duration::from_secs(1);
/// Rounds of resending before a missing reply fails the test.
const ATTEMPTS: usize = 10;

/// cproxy (UDP) in `near` forwarding to an echo in `far`; the proxy is killed on drop.
struct Setup {
    path: VethPath,
    proxy: Child,
    front: SocketAddr,
    _echo: UdpEcho,
}

impl Setup {
    fn new() -> Setup {
        let path = VethPath::new(1500);
        let backend = SocketAddr::new(VethPath::FAR, BACKEND_PORT);
        let echo = path.far.run(move || UdpEcho::bind(backend, 2)).expect("echo in far");
        let args = format!(
            "-proto udp -host-ip {} -host-port {PROXY_PORT} -container-ip {} -container-port \
             {BACKEND_PORT}",
            VethPath::NEAR,
            VethPath::FAR
        );
        let args: Vec<&str> = args.split_whitespace().collect();
        let proxy = spawn_in_netns(&path.near, &args);
        let front = SocketAddr::new(VethPath::NEAR, PROXY_PORT);
        Setup { path, proxy, front, _echo: echo }
    }

    /// `n` client sockets in `near`, each on its own port.
    fn clients(&self, n: usize) -> Vec<UdpSocket> {
        Setup::clients_in(&self.path.near, n)
    }

    /// `n` client sockets in `near`, each on its own port.
    fn clients_in(near: &testkit::netns::Netns, n: usize) -> Vec<UdpSocket> {
        near.run(move || {
            (0..n)
                .map(|_| {
                    let s = UdpSocket::bind("10.77.0.1:0").expect("bind a client");
                    s.set_read_timeout(Some(REPLY_WAIT)).expect("read timeout");
                    s
                })
                .collect()
        })
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// The request `seq` of client `client`: unique across the test, and long enough that a mix-up
/// of two replies would show.
fn request(client: usize, seq: usize) -> Vec<u8> {
    format!("client {client:03} request {seq:03} ").repeat(3).into_bytes()
}

/// Datagrams the kernel dropped in `ns` (UDP `InErrors`, which counts full receive buffers), as
/// seen from a thread inside it.
fn udp_drops(ns: &testkit::netns::Netns) -> u64 {
    let snmp = ns.run(|| std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp"));
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().expect("Udp names"), udp.next().expect("Udp values"));
    let column = names.split_whitespace().position(|n| n == "InErrors").expect("InErrors");
    values.split_whitespace().nth(column).and_then(|v| v.parse().ok()).expect("a count")
}

/// Reads replies on `socket` until none of `wanted` is missing, or none comes for `REPLY_WAIT`
/// (once per round: after one wait, every reply in flight has arrived, so the other clients only
/// take what is there). Asserts each reply is one of client `c`'s and comes from `front`.
fn read_replies(
    socket: &UdpSocket,
    c: usize,
    per_client: usize,
    front: SocketAddr,
    wanted: &mut HashSet<Vec<u8>>,
    waited: &mut bool,
) -> io::Result<()> {
    socket.set_nonblocking(*waited)?;
    let mut buf = [0u8; 2048];
    while !wanted.is_empty() {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                *waited = true;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        assert_eq!(from, front, "client {c}: a reply from the wrong address");
        let reply = buf[..n].to_vec();
        // A resent request may be answered twice: a reply to one of this client's own requests
        // that is no longer missing is a duplicate, not a mix-up.
        let own = (0..per_client).any(|s| request(c, s) == reply);
        assert!(own, "client {c} got a reply it never asked for: {:?}", &buf[..n]);
        wanted.remove(&reply);
    }
    Ok(())
}

/// Every client sends all its unanswered requests at once (all clients one after the other, so
/// the proxy sees one burst), then reads its replies; repeated until every request was answered.
/// A reply missing after the first round must be accounted for by a datagram the kernel
/// dropped (a full socket buffer): one that the proxy left waiting would be a stall that only
/// the resend hid. Returns the rounds it took.
fn burst(setup: &Setup, clients: &[UdpSocket], per_client: usize) -> io::Result<usize> {
    let mut missing: Vec<HashSet<Vec<u8>>> =
        (0..clients.len()).map(|c| (0..per_client).map(|s| request(c, s)).collect()).collect();
    let drops = || udp_drops(&setup.path.near) + udp_drops(&setup.path.far);
    let dropped_before = drops();
    for attempt in 1..=ATTEMPTS {
        for (socket, wanted) in clients.iter().zip(&missing) {
            for req in wanted {
                socket.send_to(req, setup.front)?;
            }
        }
        let mut waited = false;
        for (c, (socket, wanted)) in clients.iter().zip(missing.iter_mut()).enumerate() {
            read_replies(socket, c, per_client, setup.front, wanted, &mut waited)?;
        }
        let left: u64 = missing.iter().map(|m| m.len() as u64).sum();
        if attempt == 1 {
            let dropped = drops() - dropped_before;
            assert!(left <= dropped, "{left} replies missing, only {dropped} datagrams dropped");
        }
        if left == 0 {
            return Ok(attempt);
        }
    }
    let left: usize = missing.iter().map(HashSet::len).sum();
    panic!("{left} requests never answered after {ATTEMPTS} rounds");
}

#[test]
fn a_burst_of_1000_datagrams_from_50_clients_is_answered_to_each_from_the_proxy() {
    let setup = Setup::new();
    let clients = setup.clients(50);
    let rounds = burst(&setup, &clients, 20).expect("udp burst");
    eprintln!("all 1000 answered in {rounds} round(s)");
    // The sessions are warm now: a second burst goes through the same sessions.
    let rounds = burst(&setup, &clients, 20).expect("second udp burst");
    eprintln!("all 1000 answered again in {rounds} round(s)");
}

#[test]
fn one_client_with_many_replies_waiting_gets_them_all() {
    // One session with a queue of replies waiting: the binding takes one per turn and must come
    // back for the rest without a new datagram to wake it.
    let setup = Setup::new();
    let sent: Vec<Vec<u8>> = (0..100).map(|s| request(0, s)).collect();
    all_answered(&setup, &sent);
}

#[test]
fn bursts_of_datagrams_as_large_as_the_link_carries_and_larger_all_come_back() {
    // 1472 bytes fill a 1500-byte frame: a burst of them goes to the backend as segments of one
    // buffer. 3000 bytes do not fit: the kernel refuses to segment them, and they go one by one
    // (as IP fragments); the 1472-byte ones after that still go as segments.
    let setup = Setup::new();
    for (round, size) in [1472, 3000, 1472].into_iter().enumerate() {
        let sent: Vec<Vec<u8>> = (0..30).map(|s| sized(request(round, s), size)).collect();
        all_answered(&setup, &sent);
    }
}

/// `request` repeated to exactly `size` bytes.
fn sized(request: Vec<u8>, size: usize) -> Vec<u8> {
    request.into_iter().cycle().take(size).collect()
}

/// One client sends every datagram of `sent` at once, then reads the echoes; what is missing is
/// sent again, up to [`ATTEMPTS`] rounds. Every echo must come from the proxy's address and be
/// one of `sent`, and each of `sent` must come back.
fn all_answered(setup: &Setup, sent: &[Vec<u8>]) {
    let clients = setup.clients(1);
    let client = &clients[0];
    let mut got: Vec<Vec<u8>> = Vec::new();
    for attempt in 0..ATTEMPTS {
        let wanted: Vec<&Vec<u8>> = sent.iter().filter(|r| !got.contains(*r)).collect();
        if wanted.is_empty() {
            break;
        }
        assert!(attempt + 1 < ATTEMPTS, "{} replies never came", wanted.len());
        for req in wanted {
            client.send_to(req, setup.front).expect("send");
        }
        let mut buf = vec![0u8; 65536];
        while got.len() < sent.len() {
            match client.recv_from(&mut buf) {
                Ok((len, from)) => {
                    assert_eq!(from, setup.front);
                    assert!(sent.iter().any(|r| r[..] == buf[..len]), "a reply never asked for");
                    if !got.iter().any(|r| r[..] == buf[..len]) {
                        got.push(buf[..len].to_vec());
                    }
                }
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    break;
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
    assert_eq!(got.len(), sent.len());
}

/// Where the recording backend of [`each_clients_datagrams_reach_the_backend_whole_and_in_order`]
/// listens in `far`.
const RECORDER_PORT: u16 = 54;

/// Datagram `seq` of round `round` from client `client`, `size` bytes: the three numbers, then a
/// byte of its own; an empty one if `size` is 0.
fn numbered(client: usize, round: usize, seq: usize, size: usize) -> Vec<u8> {
    let fill = (client * 7 + round * 3 + seq) as u8;
    let mut d = vec![fill; size];
    for (b, n) in d.iter_mut().zip([client, round, seq]) {
        *b = n as u8;
    }
    d
}

/// Each round: every client sends its datagrams of the round back to back, client after client,
/// so the proxy finds runs of one client's datagrams waiting together. 1472 bytes fill a
/// 1500-byte frame (sent on as segments of one buffer); 3000 do not (the kernel refuses to
/// segment them and they go one by one, as IP fragments); small ones of one size end with an
/// empty datagram; small ones of many sizes go with one `sendmmsg`.
fn rounds() -> Vec<Vec<usize>> {
    vec![
        vec![1472; 8],
        (0..12).map(|i| 3 + i * 17).collect(),
        [vec![64; 12], vec![0]].concat(),
        vec![3000; 6],
        [vec![1472; 7], vec![100]].concat(),
    ]
}

#[test]
fn each_clients_datagrams_reach_the_backend_whole_and_in_order() {
    // cproxy's library on a runtime whose threads live in `near`, so its sockets do; the backend
    // in `far` records what arrives and from which of the proxy's session sockets.
    let path = VethPath::new(1500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(path.near.enterer())
        .enable_all()
        .build()
        .expect("runtime");
    let backend = SocketAddr::new(VethPath::FAR, RECORDER_PORT);
    let recorder = path.far.run(move || UdpSocket::bind(backend)).expect("recorder in far");
    recorder.set_read_timeout(Some(REPLY_WAIT)).expect("read timeout");
    let proxy = Proxy::new(Config::default());
    let host = SocketAddr::new(VethPath::NEAR, 0);
    let adding = proxy.clone();
    let add =
        runtime.spawn(async move { adding.add(Binding { proto: Proto::Udp, host, backend }) });
    let info = runtime.block_on(add).expect("add task").expect("add the binding");
    let clients = Setup::clients_in(&path.near, 3);
    let drops = || udp_drops(&path.near) + udp_drops(&path.far);
    let dropped_before = drops();
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); clients.len()];
    let mut arrived: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    for (round, sizes) in rounds().into_iter().enumerate() {
        for (c, client) in clients.iter().enumerate() {
            for (seq, &size) in sizes.iter().enumerate() {
                let d = numbered(c, round, seq, size);
                client.send_to(&d, info.local).expect("send");
                sent[c].push(d);
            }
        }
        // Until all of the round is in, or nothing more comes for a while.
        let expected: usize = sent.iter().map(Vec::len).sum();
        while arrived.len() < expected {
            match recorder.recv_from(&mut buf) {
                Ok((n, from)) => arrived.push((buf[..n].to_vec(), from)),
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    break;
                }
                Err(e) => panic!("recorder: {e}"),
            }
        }
    }
    let dropped = drops() - dropped_before;
    // One session per client, each of whose datagrams came from it in the order sent.
    let mut sessions: Vec<SocketAddr> = Vec::new();
    for (_, from) in &arrived {
        if !sessions.contains(from) {
            sessions.push(*from);
        }
    }
    assert_eq!(sessions.len(), clients.len(), "sessions: {sessions:?}");
    let mut missing = 0;
    let mut clients_seen = HashSet::new();
    for session in sessions {
        let got: Vec<&Vec<u8>> =
            arrived.iter().filter(|(_, from)| *from == session).map(|(d, _)| d).collect();
        let c = usize::from(got.iter().find_map(|d| d.first().copied()).expect("a client's byte"));
        assert!(clients_seen.insert(c), "client {c}'s datagrams came from two sessions");
        // In order and whole: what arrived is what was sent, less what the kernel dropped.
        let mut rest = sent[c].iter();
        for d in &got {
            assert!(
                rest.any(|s| s == *d),
                "client {c}: a datagram of {} bytes arrived out of order, split, merged or \
                 altered",
                d.len()
            );
        }
        missing += sent[c].len() - got.len();
    }
    assert!(missing as u64 <= dropped, "{missing} datagrams missing, the kernel dropped {dropped}");
    let stats = proxy.stats(info.id).expect("stats");
    assert_eq!(Stats::get(&stats.datagrams_dropped), 0, "datagrams the proxy dropped");
    drop(runtime);
}
