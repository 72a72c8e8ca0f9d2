//! The embedded DNS server (`src/supervisor/dns_server.rs`) over real sockets, as root. Each test
//! makes its own network namespaces (removed on drop, even when it fails): one per "container",
//! with a `sleep` in it to give a PID, and one for the "daemon", whose runtime's threads all
//! live there, with the fake upstream resolvers on its loopback. Queries are sent to
//! 127.0.0.11:53 from threads inside the containers' namespaces (and by `getent` run there).
//! Nothing leaves the test's namespaces.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cproxy::supervisor::engine::dns_server::{DnsServer, FORWARD_TIMEOUT, Lookup};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use testkit::netns::Netns;

/// A "container": a namespace with a process in it.
struct Container {
    child: Child,
    ns: Netns,
}

impl Container {
    fn new(tag: &str) -> Container {
        let ns = Netns::new(tag);
        let child = ns.command("sleep").arg("600").spawn().expect("start sleep in the namespace");
        Container { child, ns }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `query` to 127.0.0.11:53 over UDP from inside the namespace; the answer, or
    /// `None` if none came within `wait`.
    fn udp(&self, query: Vec<u8>, wait: Duration) -> Option<Message> {
        self.ns.run(move || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(wait)).unwrap();
            s.send_to(&query, "127.0.0.11:53").unwrap();
            let mut buf = [0; 4096];
            let n = s.recv(&mut buf).ok()?;
            Some(Message::from_vec(&buf[..n]).expect("the answer decodes"))
        })
    }

    /// Sends `queries` over one TCP connection, in turn, and returns the answers.
    fn tcp(&self, queries: Vec<Vec<u8>>) -> Vec<Message> {
        self.ns.run(move || {
            let mut s = TcpStream::connect("127.0.0.11:53").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            queries
                .iter()
                .map(|q| {
                    s.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
                    s.write_all(q).unwrap();
                    Message::from_vec(&read_framed(&mut s).unwrap()).unwrap()
                })
                .collect()
        })
    }

    /// Whether 127.0.0.11:53 is free in the namespace now, for UDP and for TCP.
    fn port_free_now(&self) -> bool {
        self.ns.run(|| {
            UdpSocket::bind("127.0.0.11:53").is_ok() && TcpListener::bind("127.0.0.11:53").is_ok()
        })
    }

    /// Whether 127.0.0.11:53 becomes free within 1 s: an attachment that the serving task was
    /// answering when it was detached closes just after (as `detach` documents).
    fn port_free(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.port_free_now() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

/// The daemon's side: a namespace that every thread of the runtime serving the DNS server
/// lives in.
struct Daemon {
    rt: tokio::runtime::Runtime,
    ns: Netns,
}

impl Daemon {
    fn new() -> Daemon {
        let ns = Netns::new("dnsd");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(ns.enterer())
            .enable_all()
            .build()
            .unwrap();
        Daemon { rt, ns }
    }

    fn server(&self, upstreams: Vec<SocketAddr>) -> DnsServer {
        DnsServer::new(upstreams, Arc::new(peers) as Arc<dyn Lookup>)
    }

    fn attach(&self, server: &DnsServer, id: &str, c: &Container) {
        self.rt.block_on(server.attach(id, c.pid())).expect("attach");
    }
}

/// The test's network: c1 and c2 see `web` (both families) and `db`, each its own `peer`;
/// `many` has 60 addresses; `c2only` is known to c2 alone.
fn peers(asker: &str, name: &str) -> Option<Vec<IpAddr>> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    match (asker, name) {
        (_, "web") => Some(vec![ip("10.0.0.2"), ip("fd00::2")]),
        (_, "db") => Some(vec![ip("10.0.0.3")]),
        (_, "many") => Some((1..=60).map(|i| ip(&format!("10.0.1.{i}"))).collect()),
        ("c1", "peer") => Some(vec![ip("10.0.0.11")]),
        ("c2", "peer") => Some(vec![ip("10.0.0.12")]),
        ("c2", "c2only") => Some(vec![ip("10.0.0.99")]),
        _ => None,
    }
}

fn query(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

fn addresses(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

/// The address every fake upstream answers with.
const UPSTREAM_ANSWER: &str = "192.0.2.7";

/// A fake upstream resolver on the daemon namespace's loopback, UDP and TCP on one port:
/// answers every A query with [`UPSTREAM_ANSWER`] under the ID it was sent, or (silent) reads
/// and says nothing.
struct Upstream {
    addr: SocketAddr,
    /// IDs of the queries it received, and how many came over TCP.
    seen: Arc<Mutex<Vec<u16>>>,
    tcp_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start(daemon: &Daemon, silent: bool) -> Upstream {
        let (udp, tcp) = daemon.ns.run(|| {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let tcp = TcpListener::bind(udp.local_addr().unwrap()).unwrap();
            (udp, tcp)
        });
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, tcp2, stop2) = (seen.clone(), tcp_queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf)
                    && let Some(answer) = upstream_answer(&buf[..n], &seen2)
                    && !silent
                {
                    udp.send_to(&answer, from).unwrap();
                }
                if let Ok((mut s, _)) = tcp.accept() {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    while let Ok(q) = read_framed(&mut s) {
                        tcp2.fetch_add(1, Ordering::Relaxed);
                        if let Some(answer) = upstream_answer(&q, &seen2)
                            && !silent
                        {
                            s.write_all(&(answer.len() as u16).to_be_bytes()).unwrap();
                            s.write_all(&answer).unwrap();
                        }
                    }
                }
            }
        });
        Upstream { addr, seen, tcp_queries, stop, thread: Some(thread) }
    }

    fn seen(&self) -> Vec<u16> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn upstream_answer(query: &[u8], seen: &Mutex<Vec<u16>>) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    seen.lock().unwrap().push(q.metadata.id);
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = q.queries.clone();
    let question = q.queries.first()?;
    m.add_answer(Record::from_rdata(
        question.name().clone(),
        60,
        RData::A(A(UPSTREAM_ANSWER.parse().unwrap())),
    ));
    m.to_vec().ok()
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn a_peer_gets_its_addresses_and_an_unknown_single_label_nxdomain() {
    let daemon = Daemon::new();
    let server = daemon.server(vec![]);
    let c1 = Container::new("dns1");
    daemon.attach(&server, "c1", &c1);

    let m = c1.udp(query("web", RecordType::A, 0x1111), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x1111, ResponseCode::NoError));
    assert_eq!(addresses(&m), ["10.0.0.2"]);
    let m = c1.udp(query("WEB.", RecordType::AAAA, 0x2222), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x2222, ResponseCode::NoError));
    assert_eq!(addresses(&m), ["fd00::2"]);
    let m = c1.udp(query("nosuchname", RecordType::A, 0x3333), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x3333, ResponseCode::NXDomain));
    assert!(m.answers.is_empty());
    // No upstream at all: a name for upstreams gets SERVFAIL at once.
    let m = c1.udp(query("example.com", RecordType::A, 0x4444), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x4444, ResponseCode::ServFail));
    daemon.rt.block_on(server.shutdown());
}

#[test]
fn other_names_are_forwarded_from_the_daemons_namespace_and_relayed_with_the_clients_id() {
    let daemon = Daemon::new();
    let upstream = Upstream::start(&daemon, false);
    let server = daemon.server(vec![upstream.addr]);
    let c1 = Container::new("dns1");
    daemon.attach(&server, "c1", &c1);

    for id in [0x4242, 0x4343] {
        let m = c1.udp(query("example.com.", RecordType::A, id), WAIT).expect("an answer");
        assert_eq!((m.metadata.id, m.metadata.response_code), (id, ResponseCode::NoError));
        assert_eq!(addresses(&m), [UPSTREAM_ANSWER]);
    }
    // Other types go upstream too, even for a peer's name.
    let m = c1.udp(query("web", RecordType::MX, 0x4444), WAIT).expect("an answer");
    assert_eq!(m.metadata.id, 0x4444);
    let seen = upstream.seen();
    assert_eq!(seen.len(), 3, "{seen:x?}");
    // The upstream saw fresh IDs, not the client's (1 in 2^32 to fail by chance).
    assert!(seen[..2] != [0x4242, 0x4343], "{seen:x?}");
    // The upstream is on the daemon's loopback: unreachable from the container.
    assert!(c1.ns.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let _ = s.send_to(&query("example.com", RecordType::A, 1), upstream.addr);
        s.recv(&mut [0; 512]).is_err()
    }));
    daemon.rt.block_on(server.shutdown());
}

#[test]
fn a_silent_upstream_is_passed_over_and_none_answering_gets_servfail() {
    let daemon = Daemon::new();
    let silent = Upstream::start(&daemon, true);
    let good = Upstream::start(&daemon, false);
    let c1 = Container::new("dns1");

    let server = daemon.server(vec![silent.addr, good.addr]);
    daemon.attach(&server, "c1", &c1);
    let m = c1.udp(query("example.org", RecordType::A, 0x5151), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x5151, ResponseCode::NoError));
    assert_eq!(addresses(&m), [UPSTREAM_ANSWER]);
    assert_eq!((silent.seen().len(), good.seen().len()), (1, 1));
    daemon.rt.block_on(server.shutdown());

    let server = daemon.server(vec![silent.addr]);
    daemon.attach(&server, "c1", &c1);
    let started = Instant::now();
    let m = c1.udp(query("example.org", RecordType::A, 0x5252), WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x5252, ResponseCode::ServFail));
    assert!(started.elapsed() >= FORWARD_TIMEOUT, "the upstream had its time");
    // While a forward waits, peers' names are still answered.
    let q = query("slow.example", RecordType::A, 0x5353);
    let pending = c1.ns.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(&q, "127.0.0.11:53").unwrap();
        s
    });
    let m = c1.udp(query("db", RecordType::A, 0x5454), WAIT).expect("an answer");
    assert_eq!(addresses(&m), ["10.0.0.3"]);
    pending.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0; 512];
    let n = pending.recv(&mut buf).expect("the forwarded query's SERVFAIL");
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x5353, ResponseCode::ServFail));
    daemon.rt.block_on(server.shutdown());
}

#[test]
fn tcp_carries_several_queries_whole_and_forwards_over_tcp() {
    let daemon = Daemon::new();
    let upstream = Upstream::start(&daemon, false);
    let server = daemon.server(vec![upstream.addr]);
    let c1 = Container::new("dns1");
    daemon.attach(&server, "c1", &c1);

    let answers = c1.tcp(vec![
        query("many", RecordType::A, 1),
        query("web", RecordType::A, 2),
        query("example.net", RecordType::A, 3),
        query("nosuchname", RecordType::A, 4),
    ]);
    assert_eq!(answers.iter().map(|m| m.metadata.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(answers[0].answers.len(), 60, "over TCP nothing is cut");
    assert!(!answers[0].metadata.truncation);
    assert_eq!(addresses(&answers[1]), ["10.0.0.2"]);
    assert_eq!(addresses(&answers[2]), [UPSTREAM_ANSWER]);
    assert_eq!(upstream.tcp_queries.load(Ordering::Relaxed), 1, "forwarded over TCP");
    assert_eq!(answers[3].metadata.response_code, ResponseCode::NXDomain);
    // The same name over UDP is cut to 512 bytes, with TC set.
    let m = c1.udp(query("many", RecordType::A, 5), WAIT).expect("an answer");
    assert!(m.metadata.truncation && m.answers.len() < 60);
    daemon.rt.block_on(server.shutdown());
}

#[test]
fn malformed_input_is_answered_as_dns_rs_says_and_never_stops_the_server() {
    let daemon = Daemon::new();
    let server = daemon.server(vec![]);
    let c1 = Container::new("dns1");
    daemon.attach(&server, "c1", &c1);

    let short = Duration::from_millis(300);
    // Too short for a header, and an answer: nothing comes back.
    assert!(c1.udp(vec![], short).is_none());
    assert!(c1.udp(vec![0x12, 0x34, 0x01], short).is_none());
    let mut response = query("web", RecordType::A, 7);
    response[2] |= 0x80;
    assert!(c1.udp(response.clone(), short).is_none());
    // A header claiming a question that is not there: FORMERR with its ID.
    let m = c1.udp(vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], WAIT).expect("an answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0xabcd, ResponseCode::FormErr));
    // Junk of every length up to a datagram bigger than the server reads.
    for len in [12, 13, 100, 511, 4096, 9000] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8 & 0x7f).collect();
        let _ = c1.udp(junk, short);
    }
    // TCP: a zero-length message, an answer, and a cut message each end their connection.
    for bytes in [vec![0, 0], [vec![0, response.len() as u8], response].concat(), vec![0, 40, 1]] {
        let closed = c1.ns.run(move || {
            let mut s = TcpStream::connect("127.0.0.11:53").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&bytes).unwrap();
            s.read(&mut [0; 16]).map(|n| n == 0).unwrap_or(true)
        });
        assert!(closed);
    }
    let m = c1.udp(query("web", RecordType::A, 8), WAIT).expect("still answering");
    assert_eq!(addresses(&m), ["10.0.0.2"]);
    assert_eq!(c1.tcp(vec![query("db", RecordType::A, 9)]).len(), 1);
    daemon.rt.block_on(server.shutdown());
}

#[test]
fn two_containers_each_get_answers_for_their_own_id_and_detach_closes_the_sockets() {
    let daemon = Daemon::new();
    let server = daemon.server(vec![]);
    let c1 = Container::new("dns1");
    let c2 = Container::new("dns2");
    daemon.attach(&server, "c1", &c1);
    daemon.attach(&server, "c2", &c2);

    let peer = |c: &Container| addresses(&c.udp(query("peer", RecordType::A, 1), WAIT).unwrap());
    assert_eq!(peer(&c1), ["10.0.0.11"]);
    assert_eq!(peer(&c2), ["10.0.0.12"]);
    let c2only = |c: &Container| c.udp(query("c2only", RecordType::A, 2), WAIT).unwrap();
    assert_eq!(c2only(&c1).metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(addresses(&c2only(&c2)), ["10.0.0.99"]);

    assert!(!c1.port_free_now());
    server.detach("c1");
    assert!(c1.port_free(), "detach closed c1's sockets");
    assert!(c1.udp(query("peer", RecordType::A, 3), Duration::from_millis(300)).is_none());
    assert_eq!(peer(&c2), ["10.0.0.12"], "c2 is still served");

    // A restarted container (a new namespace) attaches under the same ID.
    let c1b = Container::new("dns1b");
    daemon.attach(&server, "c1", &c1b);
    assert_eq!(peer(&c1b), ["10.0.0.11"]);
    daemon.attach(&server, "c1", &c1);
    assert_eq!(peer(&c1), ["10.0.0.11"], "attached again to the first namespace");
    assert!(c1b.port_free(), "attaching again replaced the attachment in c1b");
    // `network connect` of a container already served attaches it again in the same namespace:
    // its sockets stay (a second bind there would fail).
    daemon.attach(&server, "c1", &c1);
    assert_eq!(peer(&c1), ["10.0.0.11"], "still served after attaching twice");

    daemon.rt.block_on(server.shutdown());
    assert!(c1.port_free() && c2.port_free(), "shutdown closed every socket");
    assert!(daemon.rt.block_on(server.attach("c3", c2.pid())).is_err());
}

#[test]
fn getent_in_the_container_resolves_through_it() {
    let daemon = Daemon::new();
    let server = daemon.server(vec![]);
    let c1 = Container::new("dns1");
    daemon.attach(&server, "c1", &c1);
    // `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
    let etc = EtcNetns::new(c1.ns.name(), "nameserver 127.0.0.11\noptions ndots:0\n");
    let getent = |name: &str| {
        Command::new("ip")
            .args(["netns", "exec", c1.ns.name(), "getent", "hosts", name])
            .output()
            .unwrap()
    };
    let out = getent("db");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["10.0.0.3", "db"]);
    assert_eq!(getent("nosuchname").status.code(), Some(2), "getent's not found");
    drop(etc);
    daemon.rt.block_on(server.shutdown());
}

/// `/etc/netns/NAME/resolv.conf`, removed on drop.
struct EtcNetns(std::path::PathBuf);

impl EtcNetns {
    fn new(ns: &str, resolv_conf: &str) -> EtcNetns {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        let guard = EtcNetns(dir);
        std::fs::write(guard.0.join("resolv.conf"), resolv_conf).unwrap();
        guard
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir("/etc/netns");
    }
}

#[test]
fn a_container_beyond_its_forwarding_slots_gets_servfail_at_once_and_others_are_still_served() {
    use cproxy::supervisor::engine::dns_server::MAX_FORWARDS_PER_CONTAINER as SLOTS;
    let daemon = Daemon::new();
    let silent = Upstream::start(&daemon, true);
    let good = Upstream::start(&daemon, false);
    let server = daemon.server(vec![silent.addr, good.addr]);
    let c1 = Container::new("dns1");
    let c2 = Container::new("dns2");
    daemon.attach(&server, "c1", &c1);
    daemon.attach(&server, "c2", &c2);

    // Every forwarded query waits FORWARD_TIMEOUT on the silent upstream first.
    let extra = 6;
    let total = SLOTS + extra;
    let client = c1.ns.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for id in 1..=total {
            s.send_to(&query(&format!("x{id}.example"), RecordType::A, id as u16), "127.0.0.11:53")
                .unwrap();
        }
        s
    });
    // c2 has slots of its own: its query goes through while c1's are all taken.
    let m = c2.udp(query("other.example", RecordType::A, 0x7777), Duration::from_secs(10));
    let m = m.expect("c2's answer");
    assert_eq!((m.metadata.id, m.metadata.response_code), (0x7777, ResponseCode::NoError));

    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0; 512];
    let answers: Vec<(u16, ResponseCode)> = (0..total)
        .map(|_| {
            let n = client.recv(&mut buf).expect("every query is answered");
            let m = Message::from_vec(&buf[..n]).unwrap();
            (m.metadata.id, m.metadata.response_code)
        })
        .collect();
    // The queries beyond the slots were answered first, with SERVFAIL; the others by the
    // second upstream once the first had timed out.
    for (id, code) in &answers[..extra] {
        assert!(usize::from(*id) > SLOTS && *code == ResponseCode::ServFail, "{answers:?}");
    }
    for (id, code) in &answers[extra..] {
        assert!(usize::from(*id) <= SLOTS && *code == ResponseCode::NoError, "{answers:?}");
    }
    daemon.rt.block_on(server.shutdown());
}
