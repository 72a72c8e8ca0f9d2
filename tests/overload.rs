//! cproxy under overload, run as a separate process so that its descriptor limit and memory
//! can be constrained and measured: descriptor exhaustion, a stuck backend, idle clients.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::echo_server;
use common::process::ProxyProcess;

fn echo_roundtrip(port: u16) -> std::io::Result<()> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(b"ping")?;
    let mut got = [0u8; 4];
    c.read_exact(&mut got)?;
    if &got == b"ping" { Ok(()) } else { Err(std::io::Error::other("wrong echo")) }
}

#[test]
fn descriptor_exhaustion_backs_off_quietly_and_recovers_by_itself() {
    let proxy = ProxyProcess::start(echo_server("127.0.0.1"), Some(48), &[]);
    // Far more connections than 48 descriptors allow: the proxy runs into EMFILE.
    let mut clients = Vec::new();
    for _ in 0..40 {
        // A connection accepted with the last descriptor can find none left for its backend
        // and be reset, before this write or even before `connect` has returned: that is the
        // exhaustion under test, not a failure.
        let mut c = match TcpStream::connect(("127.0.0.1", proxy.port)) {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => panic!("connecting: {e}"),
        };
        let _ = c.write_all(b"x");
        clients.push(c);
    }
    // While exhausted, the accept loop must sleep, not spin: measure CPU over one second.
    let before = proxy.cpu_ticks();
    thread::sleep(Duration::from_secs(1));
    let used = proxy.cpu_ticks() - before;
    eprintln!("while out of descriptors: {used} CPU ticks (1/100 s) in 1 s");
    assert!(used < 30, "accept loop spun while out of descriptors: {used} ticks in 1 s");

    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(20);
    while echo_roundtrip(proxy.port).is_err() {
        assert!(Instant::now() < deadline, "proxy did not resume after descriptors freed up");
    }
    let log = proxy.stop();
    let episodes = log.matches("backing off").count();
    assert!(episodes >= 1, "exhaustion was not logged:\n{log}");
    assert!(episodes <= 3, "logged every failure instead of once per episode:\n{log}");
}

#[test]
fn stuck_backend_stalls_the_client_without_growing_the_proxy() {
    // The backend accepts and never reads.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = ProxyProcess::start(backend.local_addr().unwrap(), None, &[]);
    let client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let (stuck, _) = backend.accept().unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        let mut client = client.try_clone().unwrap();
        thread::spawn(move || {
            let chunk = vec![7u8; 1 << 20];
            for _ in 0..1024 {
                // 1 GiB in all, unless the stall holds it back (it must).
                if client.write_all(&chunk).is_err() {
                    return;
                }
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        })
    };
    // Wait for the client to stall: no progress for half a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = u64::MAX;
    loop {
        let now = sent.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
        assert!(Instant::now() < deadline, "client never stalled");
        thread::sleep(Duration::from_millis(500));
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    assert!(stalled_at < 256 << 20, "proxy accepted {stalled_at} bytes the backend never read");
    let hwm = proxy.status_kib("VmHWM");
    eprintln!(
        "stuck backend: client stalled after {} KiB; proxy peak RSS {hwm} KiB",
        stalled_at >> 10
    );
    assert!(hwm < 32 * 1024, "proxy peak RSS {hwm} KiB while the backend was stuck");

    drop(stuck);
    drop(backend);
    let _ = client.shutdown(Shutdown::Both);
    writer.join().unwrap();
}

#[test]
fn silent_clients_do_not_hold_up_others() {
    let proxy = ProxyProcess::start(echo_server("127.0.0.1"), None, &[]);
    let silent: Vec<TcpStream> =
        (0..50).map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).unwrap()).collect();
    for _ in 0..20 {
        echo_roundtrip(proxy.port).unwrap();
    }
    drop(silent);
}

#[test]
fn killed_backend_ends_its_clients_and_the_proxy_keeps_serving() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = ProxyProcess::start(backend.local_addr().unwrap(), None, &[]);
    let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let (conn, _) = backend.accept().unwrap();
    drop((conn, backend)); // The backend process "dies": its sockets close.
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("client not ended: {other:?}"),
    }
    // A new backend on another port cannot be reached through this binding, but the proxy
    // itself must still accept and answer (with a reset) rather than be gone.
    let c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    drop(c);
    assert!(proxy.status_kib("VmRSS") > 0, "proxy died");
}

/// How long until `c` is closed or reset by the proxy (at most `limit`).
fn time_to_close(mut c: TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 1];
    match c.read(&mut buf) {
        Ok(0) => started.elapsed(),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => started.elapsed(),
        other => panic!("client neither closed nor reset within {limit:?}: {other:?}"),
    }
}

#[test]
fn after_descriptor_exhaustion_clients_of_a_down_backend_are_reset_promptly_again() {
    // A backend that holds every connection until it goes down.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    backend.set_nonblocking(true).unwrap();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holder = {
        let down = down.clone();
        thread::spawn(move || {
            let mut held = Vec::new();
            while !down.load(Ordering::Relaxed) {
                match backend.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            // The backend goes down: its listener and connections close.
        })
    };
    let proxy = ProxyProcess::start(backend_addr, Some(48), &[]);
    let clients: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
            // One accepted while descriptors run out is reset, maybe before it writes.
            let _ = c.write_all(b"x");
            c
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Out of descriptors (within a connection's few of the 48), with clients still waiting in
    // the accept queue.
    loop {
        let fds = proxy.fds().total();
        if proxy.log().contains("backing off") && fds >= 44 {
            break;
        }
        assert!(Instant::now() < deadline, "the proxy never ran out of descriptors ({fds} open)");
        thread::sleep(Duration::from_millis(10));
    }
    down.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    drop(clients);

    // Descriptors are free again. The first client may find the accept loop in its longest
    // pause; from then on each is reset as soon as its dial is refused.
    let first = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    time_to_close(first, Duration::from_secs(30));
    let waits: Vec<Duration> = (0..10)
        .map(|_| {
            let c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
            time_to_close(c, Duration::from_secs(30))
        })
        .collect();
    let longest = waits.iter().max().copied().unwrap_or_default();
    assert!(longest < Duration::from_millis(200), "clients waited to be reset: {waits:?}");
}

/// Sends `command` to a `cproxy forward` control socket; its reply, read within 5 s.
fn control(path: &std::path::Path, command: &str) -> std::io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(s, "{command}")?;
    s.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

#[test]
fn in_forward_one_busy_binding_cannot_starve_another_or_the_control_socket() {
    let dir = testkit::tempdir::TempDir::new("cproxy-budget").unwrap();
    let ctl = dir.path().join("ctl.sock");
    let echo_port = echo_server("127.0.0.1").port();
    let mut cmd = std::process::Command::new(common::process::cproxy());
    cmd.args(["forward", "--to", "127.0.0.1", "--control"]).arg(&ctl);
    cmd.args(["-p", &format!("127.0.0.1::{echo_port}"), "-p", &format!("127.0.0.1::{echo_port}")]);
    testkit::rlimit::limit_child_fds(&mut cmd, 256);
    let proxy = ProxyProcess::forward_command(cmd, 2);
    let (busy, quiet) = (proxy.host(0), proxy.host(1));

    // Far more connections to one binding than 256 descriptors can carry.
    let mut flood = Vec::new();
    for _ in 0..150 {
        let mut c = TcpStream::connect(busy).unwrap();
        // A client refused at once may be reset before it writes.
        let _ = c.write_all(b"x");
        flood.push(c);
    }
    // Until the busy binding has taken all it will: each flood client is served (echoed),
    // refused (reset or closed), or left waiting because nothing is left to serve it with.
    let (mut served, mut refused) = (0, 0);
    for c in &mut flood {
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut one = [0u8; 1];
        match c.read(&mut one) {
            Ok(1) => served += 1,
            Ok(_) => refused += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => refused += 1,
            Err(_) => {}
        }
    }
    eprintln!("busy binding: {served} served, {refused} refused of {}", flood.len());

    echo_roundtrip(quiet.port()).expect("the quiet binding must still serve");
    let reply = control(&ctl, "list").expect("the control socket must still answer");
    assert!(reply.ends_with("ok\n"), "control socket: {reply:?}");
    assert!(served >= 2, "the busy binding must get its reserve and what is shared");
    drop(flood);
    let log = proxy.stop();
    assert!(!log.contains("backing off"), "the budget let the process run out:\n{log}");
}
