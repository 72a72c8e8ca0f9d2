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
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        c.write_all(b"x").unwrap();
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
