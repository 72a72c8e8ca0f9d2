//! The shared forwarder (issue #23): docker-proxy mode processes, started as dockerd starts
//! them, hand their listening sockets to one `cproxy forward --control PATH` (named by
//! `CPROXY_FORWARDER`) and wait; they forward by themselves while it is gone, and hand the
//! ports back when it returns. Readiness is the status pipe's `0\n` and the control socket's
//! `stats`, polled; nothing sleeps where a signal exists.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::process::cproxy;
use common::{echo_server, echo_via, udp_echo_server, udp_echo_via};
use testkit::netns::{Netns, VethPath};
use testkit::{peers, procfs, spawn, tempdir::TempDir};

/// How long anything here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// A child process killed (and reaped) on drop: the test's own, and only those.
struct Proc {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    /// Spawns `cmd` with a status pipe on fd 3 (and `listen` on fd 4) as dockerd does, and
    /// waits for its `0\n`.
    fn start(mut cmd: Command, listen: Option<&OwnedFd>) -> Proc {
        let (status, write) = spawn::status_pipe().expect("status pipe");
        cmd.env("CPROXY_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(Stdio::piped());
        spawn::die_with_parent(&mut cmd);
        let fds = [Some(write.as_fd()), listen.map(|l| l.as_fd())];
        let n = if listen.is_some() { 2 } else { 1 };
        let mut child = spawn::spawn_with_fds(cmd, &fds[..n]).expect("spawn cproxy");
        drop(write);
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(mut stderr) = child.stderr.take() {
            let log = log.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let proc = Proc { child, log };
        let status = spawn::read_status(status).expect("status pipe");
        assert_eq!(status, "0\n", "cproxy did not start: {}", proc.log());
        proc
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill with the pid of a child this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0, "kill {sig}");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "cproxy still running: {}", self.log());
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn threads(&self) -> u64 {
        procfs::threads(self.pid()).expect("/proc/PID/status")
    }

    /// The file name of the program the process runs now (`cproxy`, or `cproxy-lease` once
    /// the forwarder serves its port).
    fn program(&self) -> String {
        let exe = std::fs::read_link(format!("/proc/{}/exe", self.pid())).unwrap_or_default();
        exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cproxy forward --control SOCKET`, in `ns` if given.
fn forwarder(socket: &Path, ns: Option<&Netns>) -> Proc {
    let mut cmd = match ns {
        Some(ns) => ns.command(cproxy()),
        None => Command::new(cproxy()),
    };
    cmd.arg("forward").arg("--control").arg(socket);
    Proc::start(cmd, None)
}

/// `cproxy-forward --control SOCKET`: the same forwarder from the smaller program the README
/// starts it from.
fn lean_forwarder(socket: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cproxy-forward"));
    cmd.arg("--control").arg(socket);
    Proc::start(cmd, None)
}

/// One port as dockerd runs it: docker-proxy's flags for 127.0.0.1 (or the socket on fd 4),
/// `CPROXY_FORWARDER=socket`.
fn port_process(
    socket: &Path,
    proto: &str,
    host: SocketAddr,
    backend: SocketAddr,
    listen: Option<&OwnedFd>,
    ns: Option<&Netns>,
) -> Proc {
    let mut cmd = match ns {
        Some(ns) => ns.command(cproxy()),
        None => Command::new(cproxy()),
    };
    cmd.args(["-proto", proto, "-host-ip", &host.ip().to_string()]);
    match listen {
        Some(_) => cmd.arg("-use-listen-fd"),
        None => cmd.args(["-host-port", &host.port().to_string()]),
    };
    cmd.args(["-container-ip", &backend.ip().to_string()]);
    cmd.args(["-container-port", &backend.port().to_string()]);
    cmd.env("CPROXY_FORWARDER", socket).env("CPROXY_SETTINGS", "/dev/null");
    Proc::start(cmd, listen)
}

/// The `stats` lines of the control socket, as `key=value` maps; empty if it does not answer.
fn stats(socket: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let Ok(mut s) = UnixStream::connect(socket) else { return Vec::new() };
    if s.write_all(b"stats\n").is_err() {
        return Vec::new();
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    BufReader::new(s)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("id="))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The `proto host` pairs the forwarder serves.
fn served(socket: &Path) -> BTreeSet<(String, String)> {
    stats(socket).into_iter().map(|r| (r["proto"].clone(), r["host"].clone())).collect()
}

/// A counter of the binding at `host` in the forwarder's stats.
fn counter(socket: &Path, host: SocketAddr, key: &str) -> u64 {
    stats(socket)
        .into_iter()
        .find(|r| r["host"] == host.to_string())
        .map_or(0, |r| r[key].parse().unwrap())
}

/// Polls until `f` holds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A bound, listening TCP socket on loopback, as dockerd passes on fd 4.
fn tcp_listen_fd() -> (OwnedFd, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l.into(), addr)
}

/// A bound UDP socket on loopback, as dockerd passes on fd 4.
fn udp_listen_fd() -> (OwnedFd, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    (s.into(), addr)
}

/// A free UDP port's address on loopback.
fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A UDP echo through `addr`, retried: a datagram sent while nobody reads the socket waits in
/// its buffer, one sent while the socket changes hands may be dropped with the session.
fn udp_echo_retried(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + LIMIT;
    loop {
        match udp_echo_via(addr, msg) {
            Ok(reply) => return reply,
            Err(e) => assert!(Instant::now() < deadline, "no UDP echo through {addr}: {e}"),
        }
    }
}

/// What a process logs once the forwarder serves its port and it has stopped its own.
const HANDED: &str = "the shared forwarder serves the port";
/// What it logs once the forwarder took the port back, before its own connections end.
const TAKEN: &str = "the shared forwarder took the port";

struct Ports {
    procs: Vec<Proc>,
    tcp: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

/// `n` ports (half TCP, half UDP; every third with -use-listen-fd) to the echo servers.
fn start_ports(socket: &Path, n: usize) -> Ports {
    let (tcp_echo, udp_echo) = (echo_server("127.0.0.1"), udp_echo_server("127.0.0.1"));
    let mut ports = Ports { procs: Vec::new(), tcp: Vec::new(), udp: Vec::new() };
    for i in 0..n {
        let udp = i % 2 == 1;
        let passed = i % 3 == 0;
        let (proto, backend) = if udp { ("udp", udp_echo) } else { ("tcp", tcp_echo) };
        let (fd, host) = match (udp, passed) {
            (false, true) => {
                let (fd, a) = tcp_listen_fd();
                (Some(fd), a)
            }
            (true, true) => {
                let (fd, a) = udp_listen_fd();
                (Some(fd), a)
            }
            (false, false) => {
                (None, SocketAddr::from(([127, 0, 0, 1], peers::free_tcp_port().unwrap())))
            }
            (true, false) => (None, free_udp()),
        };
        ports.procs.push(port_process(socket, proto, host, backend, fd.as_ref(), None));
        if udp { ports.udp.push(host) } else { ports.tcp.push(host) }
    }
    ports
}

fn all_forward(ports: &Ports, round: &str) {
    for (i, &addr) in ports.tcp.iter().enumerate() {
        let msg = format!("{round} tcp {i}");
        assert_eq!(echo_via(addr, msg.as_bytes()), msg.as_bytes());
    }
    for (i, &addr) in ports.udp.iter().enumerate() {
        let msg = format!("{round} udp {i}");
        assert_eq!(udp_echo_retried(addr, msg.as_bytes()), msg.as_bytes());
    }
}

fn all_served(ports: &Ports) -> BTreeSet<(String, String)> {
    let tcp = ports.tcp.iter().map(|a| ("tcp".to_string(), a.to_string()));
    tcp.chain(ports.udp.iter().map(|a| ("udp".to_string(), a.to_string()))).collect()
}

fn socket_in(dir: &TempDir) -> PathBuf {
    dir.path().join("forwarder.sock")
}

#[test]
fn twenty_ports_share_one_forwarder_that_one_stats_shows() {
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let _forwarder = forwarder(&socket, None);
    let ports = start_ports(&socket, 20);
    // `0\n` comes once the forwarder has the port: all of them are there at once.
    assert_eq!(served(&socket), all_served(&ports));
    all_forward(&ports, "first");
    // The forwarder counted every connection and datagram: the processes forwarded nothing.
    for &addr in &ports.tcp {
        assert_eq!(counter(&socket, addr, "accepted"), 1, "{addr}");
    }
    for &addr in &ports.udp {
        assert!(counter(&socket, addr, "datagrams_to_backend") >= 1, "{addr}");
    }
    for p in &ports.procs {
        assert_eq!(p.threads(), 1, "a process that handed its port over waits on one thread");
        assert_eq!(p.program(), "cproxy-lease", "it waits as the small program: {}", p.log());
    }
}

#[test]
fn a_killed_forwarder_loses_no_port_and_its_return_takes_them_back() {
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let mut forwarder1 = forwarder(&socket, None);
    let ports = start_ports(&socket, 6);
    all_forward(&ports, "before");
    // A transfer in flight through the forwarder when it is killed.
    let sink = peers::tcp_sink_server("127.0.0.1").unwrap();
    let (fd, host) = tcp_listen_fd();
    let busy = port_process(&socket, "tcp", host, sink, Some(&fd), None);
    let mut conn = TcpStream::connect(host).unwrap();
    let writer = thread::spawn(move || {
        let chunk = vec![7u8; 64 << 10];
        while conn.write_all(&chunk).is_ok() {}
    });
    until("the transfer is under way", || counter(&socket, host, "bytes_to_backend") > 0);

    forwarder1.signal(libc::SIGKILL);
    forwarder1.wait_exit();
    // The transfer the forwarder held is lost with it; every port still forwards.
    writer.join().unwrap();
    all_forward(&ports, "alone");
    echo_via_sink(host);
    for p in &ports.procs {
        assert!(p.log().contains("forwarding by itself"), "{}", p.log());
        assert_eq!(p.program(), "cproxy", "cproxy-lease ran cproxy again: {}", p.log());
    }

    // Back, from the smaller program: each process hands its port over again within its
    // retry period.
    let _forwarder2 = lean_forwarder(&socket);
    let mut want = all_served(&ports);
    want.insert(("tcp".to_string(), host.to_string()));
    until("the new forwarder has every port", || served(&socket) == want);
    // Each process has stopped accepting once it says the forwarder serves its port again.
    for p in ports.procs.iter().chain([&busy]) {
        until("the process hands over", || p.log().matches(HANDED).count() == 2);
    }
    all_forward(&ports, "after");
    for &addr in &ports.tcp {
        assert_eq!(counter(&socket, addr, "accepted"), 1, "{addr} served by the forwarder");
    }
    for p in ports.procs.iter().chain([&busy]) {
        until("the process is back to one thread", || p.threads() == 1);
        until("the process waits as cproxy-lease again", || p.program() == "cproxy-lease");
    }
}

/// A connection to a sink through `host` that is accepted and takes bytes.
fn echo_via_sink(host: SocketAddr) {
    let mut c = TcpStream::connect(host).unwrap();
    c.write_all(b"still forwarding").unwrap();
}

/// One TCP port handed to a forwarder: the forwarder's scratch directory, its socket, the
/// forwarder, the port's process and its address.
fn one_handed_port() -> (TempDir, PathBuf, Proc, Proc, SocketAddr) {
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let forwarder = forwarder(&socket, None);
    let backend = echo_server("127.0.0.1");
    let host = SocketAddr::from(([127, 0, 0, 1], peers::free_tcp_port().unwrap()));
    let p = port_process(&socket, "tcp", host, backend, None, None);
    (dir, socket, forwarder, p, host)
}

#[test]
fn sigterm_removes_the_binding_from_the_forwarder_and_frees_the_port() {
    let (_dir, socket, _forwarder, mut p, host) = one_handed_port();
    assert_eq!(echo_via(host, b"x"), b"x");
    p.signal(libc::SIGTERM);
    assert!(p.wait_exit().success());
    assert!(served(&socket).is_empty(), "the binding is gone from the forwarder");
    TcpListener::bind(host).expect("the port is free again");
}

#[test]
fn a_process_killed_outright_loses_its_lease() {
    let (_dir, socket, _forwarder, mut p, host) = one_handed_port();
    p.signal(libc::SIGKILL);
    p.wait_exit();
    until("the forwarder drops the binding", || served(&socket).is_empty());
    TcpListener::bind(host).expect("the port is free again");
}

#[test]
fn without_a_forwarder_a_process_forwards_by_itself_then_hands_over() {
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let backend = echo_server("127.0.0.1");
    let host = SocketAddr::from(([127, 0, 0, 1], peers::free_tcp_port().unwrap()));
    let p = port_process(&socket, "tcp", host, backend, None, None);
    assert_eq!(echo_via(host, b"alone"), b"alone");
    // One of its own connections open across the handover: it finishes there.
    let mut open = TcpStream::connect(host).unwrap();
    open.write_all(b"1").unwrap();
    let mut one = [0u8; 1];
    open.read_exact(&mut one).unwrap();
    let _forwarder = forwarder(&socket, None);
    until("the process hands its port over", || p.log().contains(TAKEN));
    assert_eq!(echo_via(host, b"shared"), b"shared");
    assert_eq!(counter(&socket, host, "accepted"), 1);
    open.write_all(b"2").unwrap();
    open.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"2", "the process's own connection goes on after the handover");
    open.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = open.read_to_end(&mut Vec::new());
    until("the process is back to one thread", || p.threads() == 1);
}

/// The data path across a veth pair: the forwarder and the per-port process in `near`, the
/// backend in `far`, 16 MiB each way, checksummed.
#[test]
fn the_forwarder_relays_across_a_veth_pair() {
    let path = VethPath::new(1500);
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let _forwarder = forwarder(&socket, Some(&path.near));
    let backend_addr = SocketAddr::new(VethPath::FAR, 80);
    let backend = path.far.run(move || TcpListener::bind(backend_addr).expect("bind backend"));
    let host = SocketAddr::new(VethPath::NEAR, 8080);
    let _p = port_process(&socket, "tcp", host, backend_addr, None, Some(&path.near));
    assert_eq!(served(&socket).len(), 1);
    let len = 16 << 20;
    let server = thread::spawn(move || {
        let (conn, _) = backend.accept().unwrap();
        common::exchange(conn, 2, len).unwrap()
    });
    let client = path.near.run(move || TcpStream::connect(host).unwrap());
    let (sent, got) = common::exchange(client, 1, len).unwrap();
    let (server_sent, server_got) = server.join().unwrap();
    assert_eq!(sent, server_got, "client to container");
    assert_eq!(server_sent, got, "container to client");
    assert_eq!(counter(&socket, host, "accepted"), 1, "the forwarder relayed it");
}

/// dockerd gone while the port is handed over: the waiting process (`cproxy-lease` by then)
/// sees its parent exit, removes the binding from the forwarder and exits, as the process did
/// before it became the waiter.
#[test]
fn a_waiting_process_stops_when_the_runtime_that_started_it_exits() {
    let dir = TempDir::new("cproxy-shared").unwrap();
    let socket = socket_in(&dir);
    let _forwarder = forwarder(&socket, None);
    let backend = echo_server("127.0.0.1");
    let host = SocketAddr::from(([127, 0, 0, 1], peers::free_tcp_port().unwrap()));
    // A shell stands in for dockerd: it passes the status pipe down, says the pid, and waits.
    let args = spawn::docker_proxy_args("tcp", Some(host.port()), backend).join(" ");
    let (mut status, write) = spawn::status_pipe().unwrap();
    let mut runtime = Command::new("sh");
    runtime.arg("-c").arg(format!("{} {args} & echo $!; wait", cproxy()));
    runtime.env("CPROXY_FORWARDER", &socket).env("CPROXY_SETTINGS", "/dev/null");
    runtime.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut runtime = spawn::spawn_with_fds(runtime, &[Some(write.as_fd())]).unwrap();
    drop(write);
    // Two bytes, not to the end: the shell holds the pipe too.
    let mut ready = [0u8; 2];
    status.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"0\n");
    let mut pid = String::new();
    BufReader::new(runtime.stdout.take().unwrap()).read_line(&mut pid).unwrap();
    let pid: u32 = pid.trim().parse().unwrap();
    until("the process waits as cproxy-lease", || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "cproxy-lease"))
    });
    assert_eq!(echo_via(host, b"leased"), b"leased");
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    until("the waiting process exits", || procfs::exited(pid));
    until("the forwarder drops the binding", || served(&socket).is_empty());
    TcpListener::bind(host).expect("the port is free again");
}
