//! A bounded soak: `cproxy forward` under mixed TCP and UDP load for `CPROXY_SOAK_SECS` seconds
//! (5 by default; 60 for the long run), with limits small enough that the load reaches them.
//! Afterwards the proxy must have given back every descriptor and all but a little memory,
//! every echo it carried must have been intact, and it must still serve.
//!
//! Nothing here depends on timing: the load runs for a while and stops, and the only waits are
//! for the proxy to close what the load left open, polled against generous deadlines.

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::process::{Fds, ProxyProcess};
use common::{Pattern, echo_server, echo_via, exchange, udp_echo_server, udp_echo_via};

/// Soak length unless `CPROXY_SOAK_SECS` says otherwise.
const DEFAULT_SECS: u64 = 5;
/// TCP connections per binding: the over-limit client opens more than this at once.
const MAX_CONNS: usize = 100;
/// Connections the over-limit client opens beyond `MAX_CONNS`: at least these are reset.
const OVER_LIMIT: usize = 20;
/// UDP sessions: every verified exchange comes from a new socket, so eviction never stops.
const UDP_MAX_SESSIONS: usize = 64;
const UDP_IDLE_TIMEOUT: &str = "1s";
/// Idle pipes the proxy's pool keeps open for reuse (`IDLE_PIPES` in src/proxy/mod.rs); the
/// only descriptors the proxy may hold after the load that it did not hold before, two each.
const POOL_PIPES: usize = 32;
/// How much the proxy's resident memory may grow over the whole soak.
const RSS_GROWTH_KIB: u64 = 8 * 1024;
/// How long the proxy may take to close what the load left open. It needs about the UDP idle
/// timeout; the rest is for a loaded machine.
const SETTLE: Duration = Duration::from_secs(30);
/// A verified UDP request is sent this many times, a second apart, before it counts as
/// unanswered: an evicted session loses its reply, as UDP may.
const UDP_ATTEMPTS: u32 = 8;
/// No single read or write of the load may block longer than this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Marks a UDP request whose client waits for the echo and checks it.
const VERIFIED: u8 = b'V';
/// Marks a UDP request whose client has gone by the time the echo comes back.
const UNANSWERED: u8 = b'U';

#[test]
fn after_a_soak_of_mixed_load_the_proxy_holds_what_it_held_before_and_still_serves() {
    let secs = std::env::var("CPROXY_SOAK_SECS").ok().and_then(|s| s.parse().ok());
    let secs = secs.unwrap_or(DEFAULT_SECS);
    let seed = std::env::var("CPROXY_SOAK_SEED").ok().and_then(|s| s.parse().ok());
    let seed = seed.unwrap_or_else(|| u64::from(std::process::id()));
    let mut proxy = soak_proxy();
    let fds_before = proxy.fds();
    let rss_before = proxy.status_kib("VmRSS");
    let load = Load {
        echo: proxy.host(0),
        udp: proxy.host(1),
        abandoned: proxy.host(2),
        until: Instant::now() + Duration::from_secs(secs),
        tally: Tally::default(),
        retransmitted: Mutex::new(HashSet::new()),
        next_id: AtomicU64::new(0),
    };
    eprintln!("soak: {secs} s, seed {seed} (CPROXY_SOAK_SECS, CPROXY_SOAK_SEED)");
    let fds_peak = thread::scope(|s| {
        let peak = s.spawn(|| peak_fds(&proxy, &load, fds_before));
        load.run(seed);
        peak.join().unwrap()
    });
    let rss_peak = proxy.status_kib("VmHWM");
    let load_ended = Instant::now();
    let fds_after = settle(&proxy, fds_before);
    let rss_after = proxy.status_kib("VmRSS");

    load.tally.report();
    eprintln!("soak: fds before {fds_before:?}, peak {fds_peak:?}, after {fds_after:?}");
    eprintln!(
        "soak: the last client ended {:?} after the deadline; the proxy settled {:?} later",
        load_ended.saturating_duration_since(load.until),
        load_ended.elapsed()
    );
    eprintln!("soak: VmRSS before {rss_before} KiB, peak {rss_peak} KiB, after {rss_after} KiB");
    let log = proxy.log();
    if !log.is_empty() {
        eprintln!("soak: the proxy logged:\n{log}");
    }

    let failures = load.tally.failures.lock().unwrap();
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    let t = &load.tally;
    assert!(get(&t.tcp_echoes) > 0 && get(&t.udp_echoes) > 0, "the load did not run");
    // Two TCP bindings of at most MAX_CONNS connections, each a client and a backend socket
    // and two pipes; at most UDP_MAX_SESSIONS session sockets; the pool's idle pipes. Slack
    // for a connection each accept loop is resetting, and for /proc/PID/fd, which is not read
    // in one instant.
    let slack = 2 + 16;
    let most_sockets = fds_before.sockets + 2 * 2 * MAX_CONNS + UDP_MAX_SESSIONS + slack;
    let most_pipes = fds_before.pipes + 2 * 4 * MAX_CONNS + 2 * POOL_PIPES + slack;
    assert!(
        fds_peak.sockets <= most_sockets && fds_peak.pipes <= most_pipes,
        "the proxy held more than its limits allow: {fds_peak:?}"
    );
    assert_eq!(fds_after.sockets, fds_before.sockets, "sockets left open after the load");
    assert_eq!(fds_after.other, fds_before.other, "descriptors left open after the load");
    let pooled = fds_after.pipes.checked_sub(fds_before.pipes);
    assert!(
        pooled.is_some_and(|n| n % 2 == 0 && n <= 2 * POOL_PIPES),
        "pipes beyond the pool's {POOL_PIPES} idle ones: {fds_before:?} before, {fds_after:?} after"
    );
    let growth = rss_after.saturating_sub(rss_before);
    assert!(growth < RSS_GROWTH_KIB, "VmRSS grew by {growth} KiB over the soak");

    assert!(proxy.alive(), "the proxy died: {log}");
    assert_eq!(echo_via(load.echo, b"after the soak"), b"after the soak");
    assert_eq!(udp_echo_via(load.udp, b"after the soak").unwrap(), b"after the soak");
}

/// `cproxy forward` with small limits, forwarding to echo backends in this process: a TCP
/// binding whose connections echo whole, a UDP binding, and a TCP binding for connections that
/// are abandoned or refused, so that however far the proxy falls behind in closing those, the
/// echo clients are never refused.
fn soak_proxy() -> ProxyProcess {
    let tcp_backend = echo_server("127.0.0.1");
    let udp_backend = udp_echo_server("127.0.0.1");
    let specs = [
        format!("127.0.0.1::{}", tcp_backend.port()),
        format!("127.0.0.1::{}/udp", udp_backend.port()),
        format!("127.0.0.1::{}", tcp_backend.port()),
    ];
    let flags = [
        format!("--max-conns={MAX_CONNS}"),
        format!("--udp-max-sessions={UDP_MAX_SESSIONS}"),
        format!("--udp-idle-timeout={UDP_IDLE_TIMEOUT}"),
        // Fixed, so that the memory bound does not depend on how many cores run the test.
        "--threads=2".to_string(),
    ];
    let mut args = vec!["--to", "127.0.0.1"];
    args.extend(specs.iter().flat_map(|s| ["-p", s.as_str()]));
    args.extend(flags.iter().map(String::as_str));
    ProxyProcess::forward(&args, specs.len())
}

/// The most descriptors of each kind the proxy held while `load` ran, sampled.
fn peak_fds(proxy: &ProxyProcess, load: &Load, before: Fds) -> Fds {
    let mut peak = before;
    while load.running() {
        let now = proxy.fds();
        peak.sockets = peak.sockets.max(now.sockets);
        peak.pipes = peak.pipes.max(now.pipes);
        peak.other = peak.other.max(now.other);
        // A sample, not a signal: a peak between samples goes unseen.
        thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// Waits until the proxy holds no more sockets than before the load (its TCP connections ended,
/// its UDP sessions expired); returns its descriptors then, or whatever it holds at `SETTLE`.
fn settle(proxy: &ProxyProcess, before: Fds) -> Fds {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = proxy.fds();
        if now.sockets <= before.sockets || Instant::now() >= deadline {
            return now;
        }
        // Polled: the proxy signals nothing when a connection closes.
        thread::sleep(Duration::from_millis(50));
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// What the load did, counted as it went.
#[derive(Default)]
struct Tally {
    tcp_echoes: AtomicU64,
    tcp_echo_bytes: AtomicU64,
    tcp_aborted: AtomicU64,
    tcp_silent: AtomicU64,
    tcp_over_limit: AtomicU64,
    udp_echoes: AtomicU64,
    udp_echo_bytes: AtomicU64,
    udp_resent: AtomicU64,
    /// Echoes that reached a client which did not send them: the late second reply to a resent
    /// request, or the reply to an unanswered one, after its client's port was reused.
    udp_strays: AtomicU64,
    udp_unanswered: AtomicU64,
    /// Every misbehaviour the load saw; the test fails unless this stays empty.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn report(&self) {
        eprintln!(
            "soak: tcp: {} echoes ({} KiB), {} aborted, {} silent, {} reset over the limit",
            get(&self.tcp_echoes),
            get(&self.tcp_echo_bytes) >> 10,
            get(&self.tcp_aborted),
            get(&self.tcp_silent),
            get(&self.tcp_over_limit),
        );
        eprintln!(
            "soak: udp: {} echoes from fresh sockets ({} KiB, {} resent, {} strays), {} unanswered",
            get(&self.udp_echoes),
            get(&self.udp_echo_bytes) >> 10,
            get(&self.udp_resent),
            get(&self.udp_strays),
            get(&self.udp_unanswered),
        );
    }
}

/// The clients, all sharing one deadline.
struct Load {
    /// The binding whose connections echo whole.
    echo: SocketAddr,
    udp: SocketAddr,
    /// The binding whose connections are abandoned, or refused for being over the limit.
    abandoned: SocketAddr,
    until: Instant,
    tally: Tally,
    /// Ids of verified UDP requests that were sent more than once: the echo of the copy that
    /// was not needed may reach whichever client has the port by then.
    retransmitted: Mutex<HashSet<u64>>,
    next_id: AtomicU64,
}

impl Load {
    /// Runs every client on its own threads until the deadline.
    fn run(&self, seed: u64) {
        type Client = fn(&Load, &mut Pattern);
        let clients: [(Client, usize); 6] = [
            (Load::tcp_echoes, 3),
            (Load::tcp_aborts, 2),
            (Load::tcp_silent, 1),
            (Load::tcp_over_limit, 1),
            (Load::udp_echoes, 2),
            (Load::udp_unanswered, 1),
        ];
        thread::scope(|s| {
            let mut n = 0;
            for (client, threads) in clients {
                for _ in 0..threads {
                    n += 1;
                    let mut rng = Pattern::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) + n);
                    s.spawn(move || client(self, &mut rng));
                }
            }
        });
    }

    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    fn fail(&self, what: String) {
        let mut failures = self.tally.failures.lock().unwrap();
        // Enough to diagnose; a broken proxy would otherwise fill memory with the same line.
        if failures.len() < 50 {
            failures.push(what);
        }
    }

    fn connect(&self, to: SocketAddr) -> Option<TcpStream> {
        match TcpStream::connect(to) {
            Ok(c) => {
                let _ = c.set_read_timeout(Some(IO_TIMEOUT));
                let _ = c.set_write_timeout(Some(IO_TIMEOUT));
                Some(c)
            }
            Err(e) => {
                self.fail(format!("connecting to {to}: {e}"));
                None
            }
        }
    }

    /// Whole echoes of 1 B to 512 KiB (small sizes as likely as large), sent while read back,
    /// compared by checksum.
    fn tcp_echoes(&self, rng: &mut Pattern) {
        let mut pace = Pace::new(300);
        while self.running() {
            pace.next();
            let Some(conn) = self.connect(self.echo) else { continue };
            let len = random_len(rng, 18);
            match exchange(conn, rng.next_u64(), len) {
                Ok((sent, got)) if sent == got => {
                    add(&self.tally.tcp_echoes, 1);
                    add(&self.tally.tcp_echo_bytes, len);
                }
                Ok((sent, got)) => {
                    self.fail(format!("tcp echo of {} bytes came back as {got:?}", sent.len))
                }
                Err(e) => self.fail(format!("tcp echo of {len} bytes: {e}")),
            }
        }
    }

    /// Connections abandoned part-way: dropped with the echo unread (the kernel resets them),
    /// reset at once (`SO_LINGER` 0), or half-closed and dropped with part of the echo read.
    /// Whatever echo is read must be right; errors are the point.
    fn tcp_aborts(&self, rng: &mut Pattern) {
        let mut pace = Pace::new(300);
        while self.running() {
            pace.next();
            let Some(mut conn) = self.connect(self.abandoned) else { continue };
            let mut sent = vec![0u8; random_len(rng, 17) as usize];
            rng.fill(&mut sent);
            let written = match rng.below(2) {
                0 => conn.write(&sent).unwrap_or(0),
                _ => conn.write_all(&sent).map_or(0, |()| sent.len()),
            };
            let want = rng.below(written as u64 + 1) as usize;
            match rng.below(3) {
                0 => {}
                1 => {
                    self.read_echo(&mut conn, &sent[..want]);
                    let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                }
                _ => {
                    let _ = conn.shutdown(Shutdown::Write);
                    self.read_echo(&mut conn, &sent[..want]);
                }
            }
            drop(conn);
            add(&self.tally.tcp_aborted, 1);
        }
    }

    /// Reads `expected.len()` bytes of echo and checks them; a connection that fails first is
    /// fine (its client is about to abandon it anyway).
    fn read_echo(&self, conn: &mut TcpStream, expected: &[u8]) {
        let mut got = vec![0u8; expected.len()];
        if conn.read_exact(&mut got).is_ok() && got != expected {
            self.fail(format!("tcp echo of {} bytes differs from what was sent", expected.len()));
        }
    }

    /// Connections that send nothing: opened a few at a time, so they overlap, then dropped.
    fn tcp_silent(&self, _rng: &mut Pattern) {
        let mut pace = Pace::new(50);
        while self.running() {
            pace.next();
            let conns: Vec<TcpStream> =
                (0..8).filter_map(|_| self.connect(self.abandoned)).collect();
            add(&self.tally.tcp_silent, conns.len() as u64);
        }
    }

    /// More silent connections than the binding allows, all open at once: the proxy must reset
    /// at least the excess (more if it has not yet closed the previous round's).
    fn tcp_over_limit(&self, _rng: &mut Pattern) {
        let mut pace = Pace::new(2);
        while self.running() {
            pace.next();
            let conns: Vec<TcpStream> = (0..MAX_CONNS + OVER_LIMIT)
                .filter_map(|_| self.connect(self.abandoned))
                .filter(|c| c.set_nonblocking(true).is_ok())
                .collect();
            let mut ended = vec![false; conns.len()];
            let deadline = Instant::now() + IO_TIMEOUT;
            let mut resets = 0;
            while resets < OVER_LIMIT && Instant::now() < deadline {
                for (mut conn, ended) in conns.iter().zip(&mut ended) {
                    if *ended {
                        continue;
                    }
                    match conn.read(&mut [0u8; 1]) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Ok(0) | Err(_) => {
                            *ended = true;
                            resets += 1;
                        }
                        Ok(_) => self.fail("a silent connection received data".into()),
                    }
                }
                // Polled: a reset gives no signal to a client that is not reading.
                thread::sleep(Duration::from_millis(10));
            }
            if resets < OVER_LIMIT {
                self.fail(format!(
                    "{} connections over a limit of {MAX_CONNS}: only {resets} reset",
                    conns.len()
                ));
            }
            add(&self.tally.tcp_over_limit, resets as u64);
        }
    }

    /// Request/response from a fresh socket each (a new client, so a new session, so the
    /// table evicts all the time), eight clients at once; the echo must be exact.
    fn udp_echoes(&self, rng: &mut Pattern) {
        let mut pace = Pace::new(100);
        while self.running() {
            pace.next();
            let mut clients = Vec::new();
            for _ in 0..8 {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let request = udp_request(VERIFIED, id, rng);
                match UdpSocket::bind("127.0.0.1:0").and_then(|s| {
                    s.send_to(&request, self.udp)?;
                    Ok(s)
                }) {
                    Ok(socket) => clients.push((socket, id, request)),
                    Err(e) => self.fail(format!("udp client: {e}")),
                }
            }
            for (socket, id, request) in clients {
                self.await_echo(&socket, id, &request);
            }
        }
    }

    /// Waits for the echo of `request`, sending it again each second that it does not come.
    fn await_echo(&self, socket: &UdpSocket, id: u64, request: &[u8]) {
        let mut buf = vec![0u8; 65536];
        for attempt in 0..UDP_ATTEMPTS {
            if attempt > 0 {
                self.retransmitted.lock().unwrap().insert(id);
                add(&self.tally.udp_resent, 1);
                if let Err(e) = socket.send_to(request, self.udp) {
                    self.fail(format!("udp resend: {e}"));
                    return;
                }
            }
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let _ = socket.set_read_timeout(Some(left.max(Duration::from_millis(1))));
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => {
                        self.fail(format!("udp receive: {e}"));
                        return;
                    }
                };
                let reply = &buf[..n];
                if from != self.udp {
                    self.fail(format!("udp reply from {from}, not from the proxy {}", self.udp));
                } else if reply == request {
                    add(&self.tally.udp_echoes, 1);
                    add(&self.tally.udp_echo_bytes, n as u64);
                    return;
                } else {
                    self.stray(id, reply);
                }
            }
        }
        self.fail(format!("udp request {id} unanswered after {UDP_ATTEMPTS} tries"));
    }

    /// Judges a datagram that is not the echo its client waits for: fine if it is a second
    /// echo of a resent request or the echo of an unanswered one, arriving after their client's
    /// port was reused; anything else was corrupted or sent to the wrong client.
    fn stray(&self, waiting_for: u64, reply: &[u8]) {
        let (kind, id) = match reply {
            [kind, id @ ..] if id.len() >= 8 => {
                let id = id[..8].try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
                (*kind, id)
            }
            _ => (0, u64::MAX),
        };
        let explained = kind == UNANSWERED
            || (kind == VERIFIED
                && id != waiting_for
                && self.retransmitted.lock().unwrap().contains(&id));
        if explained {
            add(&self.tally.udp_strays, 1);
        } else {
            self.fail(format!(
                "udp client waiting for the echo of {waiting_for} got {} bytes of {:?} {id}",
                reply.len(),
                kind as char
            ));
        }
    }

    /// Datagrams from sockets that close right after sending: their sessions linger until
    /// evicted or expired, and their echoes go to closed ports.
    fn udp_unanswered(&self, rng: &mut Pattern) {
        let mut pace = Pace::new(300);
        while self.running() {
            pace.next();
            let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else { continue };
            for _ in 0..=rng.below(4) {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if socket.send_to(&udp_request(UNANSWERED, id, rng), self.udp).is_ok() {
                    add(&self.tally.udp_unanswered, 1);
                }
            }
        }
    }
}

/// A UDP request: its kind, its id, then random bytes (up to 16 KiB, now and then the largest
/// datagram IPv4 carries).
fn udp_request(kind: u8, id: u64, rng: &mut Pattern) -> Vec<u8> {
    let body = if rng.below(64) == 0 { 65507 - 9 } else { random_len(rng, 13) as usize };
    let mut request = vec![0u8; 9 + body];
    request[0] = kind;
    request[1..9].copy_from_slice(&id.to_le_bytes());
    rng.fill(&mut request[9..]);
    request
}

/// A length from 1 to 2^(`max_bits` + 1) - 1, each power of two as likely as the next.
fn random_len(rng: &mut Pattern, max_bits: u64) -> u64 {
    let bits = rng.below(max_bits + 1);
    (1 << bits) + rng.below(1 << bits)
}

/// Holds a client to at most `per_sec` rounds a second: every TCP connection leaves a
/// TIME_WAIT behind for a minute, and a fast machine must not run out of ports.
struct Pace {
    start: Instant,
    per_sec: u32,
    rounds: u32,
}

impl Pace {
    fn new(per_sec: u32) -> Pace {
        Pace { start: Instant::now(), per_sec, rounds: 0 }
    }

    /// Waits, if need be, until the next round is due.
    fn next(&mut self) {
        let due = self.start + Duration::from_secs(1) * self.rounds / self.per_sec;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        self.rounds += 1;
    }
}
