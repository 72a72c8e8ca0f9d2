//! TCP forwarding through the library API over real loopback sockets (127.0.0.1 and ::1).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    TestProxy, bidirectional_transfer, echo_server, recv_sum, refused_addr, send_pattern,
};
use cproxy::proxy::{Config, Proto, RelayMode, Stats};
use std::sync::Arc;

const MIB: u64 = 1 << 20;

/// Moves `len` bytes each way through a fresh proxy; returns the binding's counters after.
fn transfer_through(config: Config, host_ip: &str, backend_ip: &str, len: u64) -> Arc<Stats> {
    let tp = TestProxy::new(config);
    let backend = common::listen(backend_ip);
    let info = tp.add(Proto::Tcp, host_ip, backend.local_addr().unwrap());
    bidirectional_transfer(backend, info.local, len);
    let stats = tp.proxy.stats(info.id).unwrap();
    // The connection task may still be recording its totals just after the peers are done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Stats::get(&stats.active) != 0 {
        assert!(Instant::now() < deadline, "connection never ended");
        thread::yield_now();
    }
    stats
}

#[test]
fn splice_carries_256_mib_each_way_at_once_intact() {
    let stats = transfer_through(Config::default(), "127.0.0.1", "127.0.0.1", 256 * MIB);
    assert_eq!(Stats::get(&stats.copy_fallbacks), 0, "splice fell back to copying");
    assert_eq!(Stats::get(&stats.bytes_to_backend), 256 * MIB);
    assert_eq!(Stats::get(&stats.bytes_to_client), 256 * MIB);
}

#[test]
fn forced_copy_fallback_carries_256_mib_each_way_at_once_intact() {
    let config = Config { relay: RelayMode::Copy, ..Config::default() };
    transfer_through(config, "127.0.0.1", "127.0.0.1", 256 * MIB);
}

#[test]
fn small_pipes_still_carry_everything() {
    let config = Config { pipe_size: 4096, ..Config::default() };
    transfer_through(config, "127.0.0.1", "127.0.0.1", 8 * MIB);
}

#[test]
fn ipv6_host_to_ipv6_backend() {
    transfer_through(Config::default(), "::1", "::1", 4 * MIB);
}

#[test]
fn ipv6_host_to_ipv4_backend_and_back() {
    transfer_through(Config::default(), "::1", "127.0.0.1", 4 * MIB);
    transfer_through(Config::default(), "127.0.0.1", "::1", 4 * MIB);
}

#[test]
fn wildcard_host_ips_accept_loopback_clients() {
    for (wildcard, client_ip) in [("0.0.0.0", "127.0.0.1"), ("::", "::1")] {
        let tp = TestProxy::new(Config::default());
        let port = tp.forward(wildcard, echo_server("127.0.0.1")).port();
        let mut c = TcpStream::connect((client_ip, port)).unwrap();
        c.write_all(b"ping").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "ping", "via {wildcard}");
    }
}

#[test]
fn half_close_from_client_still_delivers_the_full_reply() {
    let tp = TestProxy::new(Config::default());
    let backend = common::listen("127.0.0.1");
    let target = tp.forward("127.0.0.1", backend.local_addr().unwrap());
    let server = thread::spawn(move || {
        let (mut conn, _) = backend.accept().unwrap();
        // The request ends at EOF: only then does the backend answer.
        let request = recv_sum(&mut conn).unwrap();
        let reply = send_pattern(&mut conn, 7, 3 * MIB).unwrap();
        (request, reply)
    });
    let mut client = TcpStream::connect(target).unwrap();
    let sent = send_pattern(&mut client, 3, 100_000).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = recv_sum(&mut client).unwrap();
    let (request, reply) = server.join().unwrap();
    assert_eq!(request, sent);
    assert_eq!(got, reply, "the reply after the client's half-close must arrive whole");
}

#[test]
fn five_hundred_concurrent_connections_each_echo_their_own_data() {
    let tp = TestProxy::new(Config::default());
    let target = tp.forward("127.0.0.1", echo_server("127.0.0.1"));
    // Open all 500 first, so they are concurrent, then exchange on each.
    let conns: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(target).unwrap()).collect();
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            thread::spawn(move || {
                let sent = send_pattern(&mut c, i as u64 + 1, 32 * 1024).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                assert_eq!(recv_sum(&mut c).unwrap(), sent, "connection {i}");
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

/// Reads until the connection ends; true if it ended (EOF or reset) before `limit`.
fn closed_within(mut c: TcpStream, limit: Duration) -> bool {
    c.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

#[test]
fn refused_backend_closes_the_client_promptly() {
    let config = Config { connect_timeout: Duration::from_secs(2), ..Config::default() };
    let tp = TestProxy::new(config);
    let info = tp.add(Proto::Tcp, "127.0.0.1", refused_addr());
    let c = TcpStream::connect(info.local).unwrap();
    assert!(closed_within(c, Duration::from_secs(2)), "client left hanging");
    let stats = tp.proxy.stats(info.id).unwrap();
    assert_eq!(Stats::get(&stats.dial_failures), 1);
}

/// A backend that never answers a dial: a listener whose accept queue is full drops further
/// SYNs. Kept alive by the returned sockets.
fn unanswered_backend() -> (SocketAddr, Vec<socket2::Socket>) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.listen(0).unwrap();
    let backend = sock.local_addr().unwrap().as_socket().unwrap();
    let mut held = vec![sock];
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&backend.into());
        held.push(s);
    }
    (backend, held)
}

#[test]
fn unanswered_backend_dial_times_out_and_closes_the_client() {
    let (backend, _held) = unanswered_backend();
    let timeout = Duration::from_millis(500);
    let tp = TestProxy::new(Config { connect_timeout: timeout, ..Config::default() });
    let target = tp.forward("127.0.0.1", backend);
    let started = Instant::now();
    let c = TcpStream::connect(target).unwrap();
    assert!(closed_within(c, Duration::from_secs(5)), "client left hanging past the timeout");
    assert!(started.elapsed() >= timeout, "closed before the connect timeout could have passed");
}

#[test]
fn backend_reset_mid_stream_resets_the_client_and_others_carry_on() {
    let tp = TestProxy::new(Config::default());
    let backend = common::listen("127.0.0.1");
    let target = tp.forward("127.0.0.1", backend.local_addr().unwrap());
    let mut victim = TcpStream::connect(target).unwrap();
    let (mut doomed, _) = backend.accept().unwrap();
    let mut bystander = TcpStream::connect(target).unwrap();
    let (mut bystander_backend, _) = backend.accept().unwrap();

    victim.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    doomed.read_exact(&mut buf).unwrap();
    socket2::SockRef::from(&doomed).set_linger(Some(Duration::ZERO)).unwrap();
    drop(doomed); // RST to the proxy.
    assert!(closed_within(victim, Duration::from_secs(5)));

    bystander.write_all(b"still here").unwrap();
    let mut got = [0u8; 10];
    bystander_backend.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
}

#[test]
fn connection_limit_resets_the_excess_and_keeps_existing_ones_working() {
    let tp = TestProxy::new(Config { max_connections: 2, ..Config::default() });
    let target = tp.forward("127.0.0.1", echo_server("127.0.0.1"));
    let mut a = TcpStream::connect(target).unwrap();
    let mut b = TcpStream::connect(target).unwrap();
    for c in [&mut a, &mut b] {
        c.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        c.read_exact(&mut one).unwrap();
    }
    let third = TcpStream::connect(target).unwrap();
    assert!(closed_within(third, Duration::from_secs(5)), "excess connection was not refused");
    a.write_all(b"y").unwrap();
    let mut one = [0u8; 1];
    a.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"y");
}

#[test]
fn removing_a_binding_frees_its_port_and_spares_the_others() {
    let tp = TestProxy::new(Config { grace: Duration::from_millis(200), ..Config::default() });
    let echo = echo_server("127.0.0.1");
    let keep = tp.add(Proto::Tcp, "127.0.0.1", echo);
    let gone = tp.add(Proto::Tcp, "127.0.0.1", echo);
    let mut live = TcpStream::connect(keep.local).unwrap();
    live.write_all(b"a").unwrap();

    assert!(tp.rt.block_on(tp.proxy.remove(gone.id)));
    assert!(TcpListener::bind(gone.local).is_ok(), "removed binding still holds its port");
    assert!(!tp.rt.block_on(tp.proxy.remove(gone.id)), "removing twice must report false");

    live.write_all(b"b").unwrap();
    live.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    live.read_to_string(&mut got).unwrap();
    assert_eq!(got, "ab");
    assert_eq!(tp.proxy.list().len(), 1);
}

#[test]
fn shutdown_lets_in_flight_transfers_finish_within_grace() {
    let tp = TestProxy::new(Config { grace: Duration::from_secs(30), ..Config::default() });
    let backend = common::listen("127.0.0.1");
    let target = tp.forward("127.0.0.1", backend.local_addr().unwrap());
    let mut client = TcpStream::connect(target).unwrap();
    let (mut server, _) = backend.accept().unwrap();
    // Connections made while probing below must not linger: with the backend gone they fail.
    drop(backend);
    client.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    server.read_exact(&mut one).unwrap();

    // Stop while the connection is open; the transfer started before must complete.
    let proxy = tp.proxy.clone();
    let stopping = tp.rt.spawn(async move { proxy.shutdown().await });
    let sender = thread::spawn(move || {
        let sum = send_pattern(&mut server, 9, 16 * MIB).unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        sum
    });
    // New connections are refused once accepting has stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(target).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        thread::yield_now();
    }
    client.shutdown(Shutdown::Write).unwrap();
    let got = recv_sum(&mut client).unwrap();
    assert_eq!(got, sender.join().unwrap());
    tp.rt.block_on(stopping).unwrap();
}

#[test]
fn idle_timeout_closes_silent_connections_and_spares_busy_ones() {
    // Long enough that a loaded machine (CI's two cores) cannot stall the busy connection's
    // 10 ms round trips for a whole idle period.
    let idle = Duration::from_millis(1500);
    let tp = TestProxy::new(Config { tcp_idle_timeout: Some(idle), ..Config::default() });
    let target = tp.forward("127.0.0.1", echo_server("127.0.0.1"));
    let silent = TcpStream::connect(target).unwrap();
    let mut busy = TcpStream::connect(target).unwrap();
    let started = Instant::now();
    // Keep one connection busy for three idle periods.
    while started.elapsed() < idle * 3 {
        busy.write_all(b"x").unwrap();
        let mut one = [0u8; 1];
        busy.read_exact(&mut one).unwrap();
        thread::sleep(Duration::from_millis(10));
    }
    assert!(closed_within(silent, Duration::from_secs(5)), "silent connection was not closed");
    busy.write_all(b"y").unwrap();
    let mut one = [0u8; 1];
    busy.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"y", "busy connection was closed as idle");
}

/// Waits until the binding has no live connection.
fn wait_no_active(stats: &Stats, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Stats::get(&stats.active) != 0 {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn urgent_data_arrives_in_place_in_both_modes() {
    for relay in [RelayMode::Splice, RelayMode::Copy] {
        let tp = TestProxy::new(Config { relay, ..Config::default() });
        let backend = common::listen("127.0.0.1");
        let target = tp.forward("127.0.0.1", backend.local_addr().unwrap());
        let client = TcpStream::connect(target).unwrap();
        let (mut server, _) = backend.accept().unwrap();
        let send = |data: &[u8], flags| {
            // SAFETY: send from a valid buffer on a socket this test owns.
            let n =
                unsafe { libc::send(client.as_raw_fd(), data.as_ptr().cast(), data.len(), flags) };
            assert_eq!(n, data.len() as isize);
        };
        // The backend asks for urgent data in line too, as the relay delivers it.
        socket2::SockRef::from(&server).set_out_of_band_inline(true).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut read = |n: usize| {
            let mut got = vec![0; n];
            server.read_exact(&mut got).unwrap();
            got
        };
        // Before any end of stream: the relay finds the mark by a read that finds nothing.
        send(b"hello", 0);
        send(b"!", libc::MSG_OOB);
        send(b"world", 0);
        assert_eq!(
            read(11),
            b"hello!world",
            "{relay:?}: every byte, urgent one included, in order"
        );
        // Urgent data again, alone, once the first has been read past.
        send(b"?", libc::MSG_OOB);
        assert_eq!(read(1), b"?", "{relay:?}: a second urgent byte");
        // Then right before the end of stream, where the read at the mark returns 0 too.
        send(b"again", 0);
        send(b"#", libc::MSG_OOB);
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"again#", "{relay:?}: the urgent byte before the end of stream");
    }
}

#[test]
fn client_that_half_closes_then_resets_frees_its_connection() {
    let tp = TestProxy::new(Config::default());
    let backend = common::listen("127.0.0.1");
    let info = tp.add(Proto::Tcp, "127.0.0.1", backend.local_addr().unwrap());
    let stats = tp.proxy.stats(info.id).unwrap();
    let mut client = TcpStream::connect(info.local).unwrap();
    // The backend never sends and never closes.
    let (mut server, _) = backend.accept().unwrap();
    client.write_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"request");
    // (That the finished direction's pipe is back in the pool by now is a unit test of
    // `proxy`: the pool is not part of the API.)
    socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST to the proxy, after its FIN.
    wait_no_active(&stats, "a client that reset after half-closing still holds its connection");
    // The backend already saw the end of the request; what tells it the client is gone is the
    // reset the proxy passes on, so its reply cannot be delivered.
    let err = server.write_all(b"reply").expect_err("the backend's connection must be reset");
    assert!(
        matches!(err.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset),
        "{err}"
    );
}

#[test]
fn shutdown_closes_idle_connections_at_once_instead_of_waiting_the_grace_period() {
    let tp = TestProxy::new(Config { grace: Duration::from_secs(30), ..Config::default() });
    let info = tp.add(Proto::Tcp, "127.0.0.1", echo_server("127.0.0.1"));
    let mut idle = TcpStream::connect(info.local).unwrap();
    idle.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    idle.read_exact(&mut one).unwrap();
    let started = Instant::now();
    tp.rt.block_on(tp.proxy.shutdown());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown waited {took:?} for an idle connection");
    // Nothing was in flight: an orderly close, as a server closes an idle keep-alive connection.
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(idle.read(&mut one).unwrap(), 0, "the idle connection must end in order");
}

#[test]
fn shutdown_gives_up_on_a_dial_the_backend_does_not_answer() {
    let (backend, _held) = unanswered_backend();
    let tp = TestProxy::new(Config { grace: Duration::from_secs(30), ..Config::default() });
    let info = tp.add(Proto::Tcp, "127.0.0.1", backend);
    let stats = tp.proxy.stats(info.id).unwrap();
    let client = TcpStream::connect(info.local).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Stats::get(&stats.active) == 0 {
        assert!(Instant::now() < deadline, "the connection was never accepted");
        thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    tp.rt.block_on(tp.proxy.shutdown());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown waited {took:?} on a dial to a gone backend");
    assert!(closed_within(client, Duration::from_secs(1)), "the client was left hanging");
}
