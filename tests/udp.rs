//! UDP forwarding through the library API, with real sockets on 127.0.0.1 and ::1.

mod udp_common;

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cproxy::proxy::{Config, Proto, Proxy, ProxyError, Stats};
use udp_common::{
    Backend, DEADLINE, WHOAMI, client, exchange, forward, pattern, recv, stats, wait_for,
};

#[tokio::test(flavor = "multi_thread")]
async fn interleaved_clients_each_get_exactly_their_own_replies() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let (proxy, info) = forward(Config::default(), "127.0.0.1", backend.addr);
    let clients =
        [client("127.0.0.1").await?, client("127.0.0.1").await?, client("127.0.0.1").await?];
    let mut sent = 0u64;
    for round in 0..50 {
        for (i, c) in clients.iter().enumerate() {
            let msg = format!("client {i} round {round}");
            c.send_to(msg.as_bytes(), info.local).await?;
            sent += msg.len() as u64;
        }
        for (i, c) in clients.iter().enumerate() {
            let (reply, from) = recv(c).await?;
            assert_eq!(String::from_utf8_lossy(&reply), format!("client {i} round {round}"));
            assert_eq!(from, info.local);
        }
    }
    let s = stats(&proxy, &info);
    assert_eq!(Stats::get(&s.sessions), 3);
    assert_eq!(Stats::get(&s.sessions_opened), 3);
    assert_eq!(Stats::get(&s.bytes_to_backend), sent);
    assert_eq!(Stats::get(&s.bytes_to_client), sent);
    assert_eq!(Stats::get(&s.datagrams_dropped), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_ipv4_datagram_round_trips_intact() -> io::Result<()> {
    largest_datagram_round_trips("127.0.0.1", 65507).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_largest_ipv6_datagram_round_trips_intact() -> io::Result<()> {
    largest_datagram_round_trips("::1", 65527).await
}

/// A datagram of `size` bytes, the protocol's largest on `ip`, goes there and back unchanged.
async fn largest_datagram_round_trips(ip: &str, size: usize) -> io::Result<()> {
    let backend = Backend::start(ip).await?;
    let (proxy, info) = forward(Config::default(), ip, backend.addr);
    let c = client(ip).await?;
    let big = pattern(size, 4);
    let (reply, _) = exchange(&c, info.local, &big).await?;
    assert_eq!(reply.len(), big.len());
    assert!(reply == big, "the datagram came back altered");
    assert_eq!(Stats::get(&stats(&proxy, &info).datagrams_dropped), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_expires_and_the_client_then_gets_a_fresh_one() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let config = Config { udp_idle_timeout: Duration::from_millis(200), ..Config::default() };
    let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
    let s = stats(&proxy, &info);
    let c = client("127.0.0.1").await?;
    let (first, _) = exchange(&c, info.local, WHOAMI).await?;
    assert_eq!(Stats::get(&s.sessions_opened), 1);
    assert_eq!(wait_for(&s.sessions_expired, |n| n == 1).await, 1);
    assert_eq!(Stats::get(&s.sessions), 0);
    let (second, _) = exchange(&c, info.local, WHOAMI).await?;
    assert_eq!(Stats::get(&s.sessions_opened), 2);
    assert_eq!(Stats::get(&s.sessions), 1);
    assert_ne!(first, second, "the backend saw the same source port: the old socket lived on");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_in_use_does_not_expire() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let config = Config { udp_idle_timeout: Duration::from_secs(1), ..Config::default() };
    let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
    let s = stats(&proxy, &info);
    let c = client("127.0.0.1").await?;
    let mut seen = Vec::new();
    // Pacing, not synchronisation: traffic every 100 ms for 2.5 timeouts.
    for _ in 0..25 {
        let (me, _) = exchange(&c, info.local, WHOAMI).await?;
        seen.push(me);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "the backend saw several source ports");
    assert_eq!(Stats::get(&s.sessions_opened), 1);
    assert_eq!(Stats::get(&s.sessions_expired), 0);
    Ok(())
}

/// Raises the descriptor limit as the cproxy binary does (the soft limit to the hard one), so
/// the flood fits in this process (its clients, and the proxy's sessions) whatever the soft
/// limit is.
fn raise_fd_limit() {
    testkit::rlimit::raise_fd_limit(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_clients_never_holds_more_sessions_than_the_cap() -> io::Result<()> {
    raise_fd_limit();
    const CAP: u64 = 1_000;
    const CLIENTS: u64 = 10_000;
    const BATCH: u64 = 100;
    let backend = Backend::start("127.0.0.1").await?;
    let config = Config { udp_max_sessions: CAP as usize, ..Config::default() };
    let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
    let s = stats(&proxy, &info);

    // Samples the gauge every millisecond for as long as the flood lasts.
    let flooding = Arc::new(AtomicBool::new(true));
    let most = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let (s, flooding, most) = (s.clone(), flooding.clone(), most.clone());
        async move {
            while flooding.load(Ordering::Relaxed) {
                most.fetch_max(Stats::get(&s.sessions), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    // Each client, from a port of its own, sends one datagram and waits for its echo, a batch at
    // a time, so the test's own descriptors stay few and no datagram overflows a receive buffer.
    // The kernel hands out ports again once they are closed; a port seen before is skipped (and
    // held until the batch ends, so it is not handed out again at once).
    let mut seen = std::collections::HashSet::new();
    for batch in 0..CLIENTS / BATCH {
        let mut clients = Vec::new();
        let mut skipped = Vec::new();
        while (clients.len() as u64) < BATCH {
            let c = client("127.0.0.1").await?;
            if !seen.insert(c.local_addr()?.port()) {
                skipped.push(c);
                continue;
            }
            let i = batch * BATCH + clients.len() as u64;
            c.send_to(&i.to_be_bytes(), info.local).await?;
            clients.push((i, c));
        }
        for (i, c) in &clients {
            let (reply, _) = recv(c).await?;
            assert_eq!(reply, i.to_be_bytes());
        }
        assert!(Stats::get(&s.sessions) <= CAP);
    }
    flooding.store(false, Ordering::Relaxed);
    sampler.await.map_err(io::Error::other)?;

    let most = most.load(Ordering::Relaxed);
    assert!(most <= CAP, "{most} sessions open at once, cap {CAP}");
    assert_eq!(Stats::get(&s.sessions), CAP);
    assert_eq!(Stats::get(&s.sessions_opened), CLIENTS);
    assert_eq!(Stats::get(&s.sessions_evicted), CLIENTS - CAP);

    let good = client("127.0.0.1").await?;
    let (reply, _) = exchange(&good, info.local, b"still there?").await?;
    assert_eq!(reply, b"still there?");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_leave_from_the_address_the_client_sent_to_on_a_wildcard_binding() -> io::Result<()>
{
    let backend = Backend::start("127.0.0.1").await?;
    let (_proxy, info) = forward(Config::default(), "0.0.0.0", backend.addr);
    let port = info.local.port();
    for (client_ip, sent_to) in
        [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("127.0.0.1", "127.0.0.2")]
    {
        let c = client(client_ip).await?;
        let to = SocketAddr::new(sent_to.parse().map_err(io::Error::other)?, port);
        let (reply, from) = exchange(&c, to, b"where from?").await?;
        assert_eq!(reply, b"where from?");
        assert_eq!(from, to, "reply to a client on {client_ip}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_is_down_costs_datagrams_not_the_session_and_service_resumes()
-> io::Result<()> {
    // A port with nobody on it, for now: on 127.0.0.3, because the flood test running beside
    // this one binds thousands of ephemeral ports on 127.0.0.1 and could take it.
    let backend_addr = std::net::UdpSocket::bind("127.0.0.3:0")?.local_addr()?;
    let (proxy, info) = forward(Config::default(), "127.0.0.1", backend_addr);
    let s = stats(&proxy, &info);
    let c = client("127.0.0.1").await?;

    for n in 1..=3 {
        c.send_to(b"anyone?", info.local).await?;
        // The port-unreachable error comes back to the session socket and is counted.
        assert!(wait_for(&s.datagrams_dropped, |d| d >= n).await >= n);
    }
    assert_eq!(Stats::get(&s.sessions), 1);
    assert_eq!(Stats::get(&s.sessions_opened), 1);
    let mut buf = [0u8; 64];
    assert_eq!(
        c.try_recv_from(&mut buf).map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::WouldBlock)
    );

    // The backend returns on the same port: the very next datagram gets through.
    let _back = Backend::on(backend_addr).await?;
    let (reply, _) = exchange(&c, info.local, b"back?").await?;
    assert_eq!(reply, b"back?");
    assert_eq!(Stats::get(&s.sessions_opened), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_udp_socket_bound_by_the_caller_is_served() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let bound = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let addr = bound.local_addr()?;
    let proxy = Proxy::new(Config::default());
    let info = proxy
        .add_socket(Proto::Udp, OwnedFd::from(bound), backend.addr)
        .map_err(io::Error::other)?;
    assert_eq!(info.local, addr);
    let c = client("127.0.0.1").await?;
    let (reply, from) = exchange(&c, addr, b"adopted").await?;
    assert_eq!((reply.as_slice(), from), (&b"adopted"[..], addr));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_adopted_dual_stack_socket_answers_ipv4_clients_from_the_address_they_sent_to()
-> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None)?;
    socket.set_only_v6(false)?;
    socket.bind(&SocketAddr::from(([0u16; 8], 0)).into())?;
    let proxy = Proxy::new(Config::default());
    let info = proxy
        .add_socket(Proto::Udp, OwnedFd::from(socket), backend.addr)
        .map_err(io::Error::other)?;
    let c = client("127.0.0.1").await?;
    let to = SocketAddr::from(([127, 0, 0, 2], info.local.port()));
    let (reply, from) = exchange(&c, to, b"mapped").await?;
    assert_eq!((reply.as_slice(), from), (&b"mapped"[..], to));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tcp_socket_passed_as_udp_is_refused() -> io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let proxy = Proxy::new(Config::default());
    let backend: SocketAddr = "127.0.0.1:9".parse().map_err(io::Error::other)?;
    let r = proxy.add_socket(Proto::Udp, OwnedFd::from(listener), backend);
    assert!(matches!(r, Err(ProxyError::BadSocket(_))), "{:?}", r.map(|i| i.local));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_binding_frees_its_port_at_once_despite_open_sessions() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let config = Config { grace: Duration::from_secs(60), ..Config::default() };
    let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
    let c = client("127.0.0.1").await?;
    exchange(&c, info.local, b"hello").await?;
    let s = stats(&proxy, &info);
    // UDP has nothing to drain: removal must not sit out the grace period.
    let removed = tokio::time::timeout(DEADLINE, proxy.remove(info.id)).await;
    assert_eq!(removed.ok(), Some(true));
    assert_eq!(Stats::get(&s.sessions), 0);
    std::net::UdpSocket::bind(info.local)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_closes_every_session() -> io::Result<()> {
    let backend = Backend::start("127.0.0.1").await?;
    let (proxy, info) = forward(Config::default(), "127.0.0.1", backend.addr);
    let s = stats(&proxy, &info);
    for _ in 0..3 {
        exchange(&client("127.0.0.1").await?, info.local, b"hi").await?;
    }
    assert_eq!(Stats::get(&s.sessions), 3);
    proxy.kill();
    assert_eq!(wait_for(&s.sessions, |n| n == 0).await, 0);
    Ok(())
}

/// A backend that only records: each datagram and where it came from, in order of arrival.
async fn recording_backend() -> io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::bind("127.0.0.1:0").await
}

/// The next `n` datagrams `backend` receives, with their sources.
async fn received(
    backend: &tokio::net::UdpSocket,
    n: usize,
) -> io::Result<Vec<(Vec<u8>, SocketAddr)>> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(recv(backend).await?);
    }
    Ok(got)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_from_one_client_reaches_the_backend_whole_and_in_order() -> io::Result<()> {
    // More datagrams than one batch takes, of one size (sent to the backend as segments of one
    // buffer) and a last, shorter one.
    let backend = recording_backend().await?;
    let (proxy, info) = forward(Config::default(), "127.0.0.1", backend.local_addr()?);
    let c = client("127.0.0.1").await?;
    let mut burst: Vec<Vec<u8>> = (0..40).map(|i| pattern(1472, i)).collect();
    burst.push(pattern(100, 40));
    for d in &burst {
        c.send_to(d, info.local).await?;
    }
    let got = received(&backend, burst.len()).await?;
    let data: Vec<Vec<u8>> = got.iter().map(|(d, _)| d.clone()).collect();
    assert!(data == burst, "datagrams split, merged, altered or reordered");
    let sources: std::collections::HashSet<SocketAddr> = got.iter().map(|(_, f)| *f).collect();
    assert_eq!(sources.len(), 1, "one client's datagrams came from several sessions");
    let s = stats(&proxy, &info);
    let bytes: usize = burst.iter().map(Vec::len).sum();
    assert_eq!(wait_for(&s.datagrams_to_backend, |n| n == 41).await, 41);
    assert_eq!(Stats::get(&s.bytes_to_backend), bytes as u64);
    assert_eq!(Stats::get(&s.datagrams_dropped), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_datagram_of_a_burst_leaves_from_its_own_clients_session_despite_evictions()
-> io::Result<()> {
    // One session at most: in a burst a, b, a each datagram evicts the session before it, and
    // must still leave from its own client's (a fresh) session, never from the one it evicted.
    let backend = recording_backend().await?;
    let config = Config { udp_max_sessions: 1, ..Config::default() };
    let (proxy, info) = forward(config, "127.0.0.1", backend.local_addr()?);
    let (a, b) = (client("127.0.0.1").await?, client("127.0.0.1").await?);
    a.send_to(b"a1", info.local).await?;
    b.send_to(b"b1", info.local).await?;
    a.send_to(b"a2", info.local).await?;
    let got = received(&backend, 3).await?;
    let data: Vec<&[u8]> = got.iter().map(|(d, _)| d.as_slice()).collect();
    assert_eq!(data, [&b"a1"[..], b"b1", b"a2"]);
    assert_ne!(got[0].1, got[1].1, "a and b shared a session");
    assert_ne!(got[2].1, got[1].1, "a's datagram left from b's session");
    let s = stats(&proxy, &info);
    assert_eq!(Stats::get(&s.sessions_evicted), 2);
    assert_eq!(Stats::get(&s.sessions), 1);
    Ok(())
}
