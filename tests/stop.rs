//! Stopping cproxy as dockerd stops it (SIGINT, then waiting for the process to exit), over a
//! real network path (a veth pair between two namespaces): connections with nothing in flight
//! are closed at once, so the runtime does not wait; connections still moving bytes get the
//! grace period; what is cut (grace over, a second signal, `ctl remove`) is reset, never ended
//! with an orderly end of stream that would look complete.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::process::{cproxy, spawn_in_netns};
use testkit::netns::VethPath;
use testkit::spawn;

const PROXY_PORT: u16 = 8080;
const BACKEND_PORT: u16 = 80;

/// cproxy in `near` forwarding `near:8080` to `far:80`, started as dockerd starts it; killed on
/// drop if a test left it running.
struct Setup {
    path: VethPath,
    proxy: Child,
    front: SocketAddr,
}

impl Setup {
    fn new(extra: &[&str]) -> Setup {
        let path = VethPath::new(1500);
        let args = spawn::docker_proxy_args(
            "tcp",
            Some(PROXY_PORT),
            SocketAddr::new(VethPath::FAR, BACKEND_PORT),
        );
        // As Go's flag package, the last -host-ip wins.
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["-host-ip", "10.77.0.1"]);
        let proxy = spawn_in_netns(&path.near, &[&args[..], extra].concat());
        Setup { path, proxy, front: SocketAddr::new(VethPath::NEAR, PROXY_PORT) }
    }

    fn backend_listener(&self) -> TcpListener {
        let addr = SocketAddr::new(VethPath::FAR, BACKEND_PORT);
        self.path.far.run(move || TcpListener::bind(addr).expect("bind backend"))
    }

    /// A client in `near`, as one of a port published on the host.
    fn connect(&self) -> TcpStream {
        let front = self.front;
        self.path.near.run(move || TcpStream::connect(front).expect("connect to the proxy"))
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(self.proxy.id() as i32, sig) }, 0);
    }

    /// Waits for the proxy to exit (at most `limit`); how long it took.
    fn exit_time(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(status) = self.proxy.try_wait().expect("wait for cproxy") {
                assert!(status.success(), "cproxy exited with {status}");
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "cproxy still running after {limit:?}");
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// A keep-alive backend: answers every line with "ok\n" and never closes first.
fn keepalive_backend(listener: TcpListener) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else { return };
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = conn.read(&mut buf) {
            if buf[..n].contains(&b'\n') && conn.write_all(b"ok\n").is_err() {
                return;
            }
        }
    })
}

/// A backend that sends without end until its connection fails.
fn endless_backend(listener: TcpListener) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else { return };
        let chunk = vec![0x5au8; 64 * 1024];
        while conn.write_all(&chunk).is_ok() {}
    })
}

/// Reads until the connection ends; how it ended (Ok: orderly end of stream) and the bytes read.
fn read_to_end_of(conn: &mut TcpStream, pace: Option<u64>) -> (std::io::Result<()>, u64) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let started = Instant::now();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (Ok(()), total),
            Ok(n) => total += n as u64,
            Err(e) => return (Err(e), total),
        }
        if let Some(rate) = pace {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
}

/// One request and its answer on a keep-alive connection, after which it stays open and idle.
fn idle_keepalive_client(setup: &Setup) -> (TcpStream, thread::JoinHandle<()>) {
    let backend = keepalive_backend(setup.backend_listener());
    let mut client = setup.connect();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"GET\n").unwrap();
    let mut reply = [0u8; 3];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ok\n");
    (client, backend)
}

/// dockerd stops a proxy with SIGINT and waits for it, port after port: one idle keep-alive
/// client must not make it wait the grace period (docker-proxy exits in 0.08 s).
#[test]
fn sigint_with_an_idle_keepalive_client_exits_at_once() {
    let mut setup = Setup::new(&[]);
    let (mut client, backend) = idle_keepalive_client(&setup);
    setup.signal(libc::SIGINT);
    let took = setup.exit_time(Duration::from_secs(30));
    eprintln!("stop with one idle keep-alive client took {took:?}");
    assert!(took < Duration::from_secs(1), "stopping waited {took:?} for an idle connection");
    // Nothing was in flight: the client is closed as a server closes an idle keep-alive
    // connection, in order, as docker-proxy closes it.
    let (end, extra) = read_to_end_of(&mut client, None);
    assert!(end.is_ok() && extra == 0, "idle connection ended with {end:?} after {extra} bytes");
    backend.join().unwrap();
}

/// A transfer still moving at stop is waited for; once it has gone idle (the download is done
/// but the keep-alive connection stays open) the proxy exits, long before the grace ends.
#[test]
fn a_transfer_that_finishes_during_the_grace_period_lets_the_proxy_exit_then() {
    const LEN: u64 = 16 << 20;
    let mut setup = Setup::new(&["-grace", "60s"]);
    let listener = setup.backend_listener();
    let backend = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let sent = common::send_pattern(&mut conn, 3, LEN).expect("backend send");
        // Keep-alive: the connection stays open after the response.
        let mut buf = [0u8; 16];
        let _ = conn.read(&mut buf);
        sent
    });
    let mut client = setup.connect();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut first = vec![0u8; 1 << 20];
    client.read_exact(&mut first).unwrap();
    setup.signal(libc::SIGINT);
    // The rest, read at 16 MB/s: the connection moves bytes for most of a second after stop.
    let mut got = common::Sum::default();
    got.update(&first);
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    while got.len < LEN {
        let want = buf.len().min((LEN - got.len) as usize);
        let n = client.read(&mut buf[..want]).expect("read during the drain");
        assert!(n > 0, "the transfer was cut after {} bytes", got.len);
        got.update(&buf[..n]);
        let due = Duration::from_secs_f64(got.len as f64 / (16 << 20) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            thread::sleep(wait);
        }
    }
    let took = setup.exit_time(Duration::from_secs(60));
    assert!(took < Duration::from_secs(3), "proxy waited {took:?} after the transfer went idle");
    assert_eq!(got, backend.join().unwrap(), "the drained transfer must arrive whole");
}

/// How a moving download is cut in [`a_cut_download_is_reset`].
enum Cut {
    /// `-grace 1s` runs out.
    GraceOver,
    /// A second SIGTERM.
    SecondSignal,
}

/// A download still moving when it is cut ends in a reset, so the client cannot take what it
/// got for the whole of it.
fn a_cut_download_is_reset(cut: Cut) {
    let grace = match cut {
        Cut::GraceOver => "1s",
        Cut::SecondSignal => "60s",
    };
    let mut setup = Setup::new(&["-grace", grace]);
    let _backend = endless_backend(setup.backend_listener());
    let mut client = setup.connect();
    client.shutdown(Shutdown::Write).unwrap();
    let mut first = [0u8; 1];
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.read_exact(&mut first).unwrap();
    let reader = thread::spawn(move || read_to_end_of(&mut client, Some(4 << 20)));
    setup.signal(libc::SIGTERM);
    if let Cut::SecondSignal = cut {
        thread::sleep(Duration::from_millis(300));
        setup.signal(libc::SIGTERM);
    }
    setup.exit_time(Duration::from_secs(30));
    let (end, got) = reader.join().unwrap();
    match end {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("a cut download ended with {other:?} after {got} bytes, not a reset"),
    }
}

#[test]
fn a_download_cut_at_the_end_of_the_grace_period_is_reset() {
    a_cut_download_is_reset(Cut::GraceOver);
}

#[test]
fn a_download_cut_by_a_second_signal_is_reset() {
    a_cut_download_is_reset(Cut::SecondSignal);
}

/// `ctl remove` of a `cproxy forward` binding: its idle connection is closed at once and a
/// download it cuts after the grace period is reset.
#[test]
fn ctl_remove_closes_idle_connections_at_once_and_resets_the_transfers_it_cuts() {
    let dir = testkit::tempdir::TempDir::new("cproxy-stop").unwrap();
    let control = dir.path().join("ctl.sock");
    let busy_backend = common::listen("127.0.0.1");
    let idle_backend = common::listen("127.0.0.1");
    let busy_port = busy_backend.local_addr().unwrap().port();
    let idle_port = idle_backend.local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(cproxy());
    cmd.args(["forward", "--to", "127.0.0.1", "--grace", "3s", "--control"]).arg(&control);
    cmd.args(["-p", &format!("127.0.0.1::{busy_port}"), "-p", &format!("127.0.0.1::{idle_port}")]);
    let fwd = common::process::ProxyProcess::forward_command(cmd, 2);
    let _busy = endless_backend(busy_backend);
    let _idle = keepalive_backend(idle_backend);

    let mut idle = TcpStream::connect(fwd.host(1)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    idle.write_all(b"GET\n").unwrap();
    let mut reply = [0u8; 3];
    idle.read_exact(&mut reply).unwrap();
    let mut busy = TcpStream::connect(fwd.host(0)).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    busy.read_exact(&mut reply).unwrap();
    let reader = thread::spawn(move || read_to_end_of(&mut busy, Some(4 << 20)));

    let ctl = |command: &str| {
        let out = std::process::Command::new(cproxy())
            .args(["ctl", "--control"])
            .arg(&control)
            .args(command.split(' '))
            .output()
            .unwrap();
        assert!(out.status.success(), "ctl {command}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let ids: Vec<String> =
        ctl("list").lines().map(|l| l.split(' ').next().unwrap().to_string()).collect();
    let started = Instant::now();
    ctl(&format!("remove {}", ids[1]));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "removing a binding with an idle client took {took:?}");
    let (end, extra) = read_to_end_of(&mut idle, None);
    assert!(end.is_ok() && extra == 0, "idle connection ended with {end:?} after {extra} bytes");

    ctl(&format!("remove {}", ids[0]));
    let (end, got) = reader.join().unwrap();
    match end {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("a download cut by remove ended with {other:?} after {got} bytes"),
    }
}
