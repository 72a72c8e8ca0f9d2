//! Many bindings in one process: the library API at scale, and `cproxy forward` with its
//! control socket driven as a user (or a supervisor) would.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::process::{CPROXY, ProxyProcess, host_of};
use common::{TestProxy, echo_server, echo_via, recv_sum, send_pattern};
use cproxy::proxy::{Config, Proto};
use testkit::tempdir::TempDir;

#[test]
fn a_thousand_bindings_in_one_process_each_forward_to_their_own_backend() {
    let tp = TestProxy::new(Config::default());
    // Ten backends, so a binding that forwards to the wrong one is caught.
    let backends: Vec<SocketAddr> = (0..10).map(|_| echo_server("127.0.0.1")).collect();
    let bindings: Vec<_> =
        (0..1000).map(|i| tp.add(Proto::Tcp, "127.0.0.1", backends[i % 10])).collect();
    assert_eq!(tp.proxy.list().len(), 1000);
    for (i, b) in bindings.iter().enumerate().step_by(37) {
        assert_eq!(b.binding.backend, backends[i % 10]);
        let msg = format!("binding {i}");
        assert_eq!(echo_via(b.local, msg.as_bytes()), msg.as_bytes());
    }
}

#[test]
fn removing_one_binding_leaves_transfers_on_others_undisturbed() {
    let tp = TestProxy::new(Config { grace: Duration::from_millis(100), ..Config::default() });
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy: Vec<_> =
        (0..4).map(|_| tp.add(Proto::Tcp, "127.0.0.1", backend.local_addr().unwrap())).collect();
    let doomed = tp.add(Proto::Tcp, "127.0.0.1", echo_server("127.0.0.1"));
    // Start a 32 MiB transfer on each busy binding.
    let mut transfers = Vec::new();
    for b in &busy {
        let mut client = TcpStream::connect(b.local).unwrap();
        let (mut server, _) = backend.accept().unwrap();
        let sender = thread::spawn(move || {
            let sum = send_pattern(&mut client, 11, 32 << 20).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            sum
        });
        let receiver = thread::spawn(move || recv_sum(&mut server).unwrap());
        transfers.push((sender, receiver));
    }
    assert_eq!(echo_via(doomed.local, b"before"), b"before");
    assert!(tp.rt.block_on(tp.proxy.remove(doomed.id)));
    assert!(TcpStream::connect(doomed.local).is_err(), "removed binding still accepts");
    for (sender, receiver) in transfers {
        assert_eq!(receiver.join().unwrap(), sender.join().unwrap());
    }
}

/// A `cproxy forward` process with a control socket; killed on drop.
struct Forward {
    process: ProxyProcess,
    control: std::path::PathBuf,
    _dir: TempDir,
}

impl Forward {
    /// Starts `cproxy forward` and reads the `docker port` lines it prints for `n` mappings.
    fn start(args: &[&str], n: usize) -> (Forward, Vec<String>) {
        let dir = TempDir::new("cproxy-test").unwrap();
        let control = dir.path().join("control.sock");
        let control_arg = control.to_str().unwrap();
        let all: Vec<&str> = args.iter().copied().chain(["--control", control_arg]).collect();
        let process = ProxyProcess::forward(&all, n);
        let lines = process.published.clone();
        (Forward { process, control, _dir: dir }, lines)
    }

    /// Sends one control command; returns the reply lines (the final `ok`/`error` included).
    fn ctl(&self, command: &str) -> Vec<String> {
        // The control socket is bound before the mappings are printed, so it is there now.
        let mut s = UnixStream::connect(&self.control).unwrap();
        writeln!(s, "{command}").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        BufReader::new(s).lines().map(Result::unwrap).collect()
    }
}

#[test]
fn forward_prints_docker_port_lines_and_serves_every_spec() {
    let backend = echo_server("127.0.0.1");
    let p = backend.port();
    let fixed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spec_fixed = format!("127.0.0.1:{fixed}:{p}");
    let spec_any = format!("127.0.0.1::{p}/tcp");
    let (fwd, lines) =
        Forward::start(&["--to", "127.0.0.1", "-p", &spec_fixed, "-p", &spec_any], 2);
    assert_eq!(lines[0], format!("{p}/tcp -> 127.0.0.1:{fixed}"));
    assert!(lines[1].starts_with(&format!("{p}/tcp -> 127.0.0.1:")), "{}", lines[1]);
    for line in &lines {
        assert_eq!(echo_via(host_of(line), b"spec"), b"spec");
    }
    drop(fwd);
}

/// `-P` publishes the `--expose`d ports, as `docker run -P` does: each on a host port picked
/// from the range, on 0.0.0.0 and [::] alike; `--expose` alone publishes nothing.
#[test]
fn publish_all_puts_exposed_ports_on_picked_host_ports() {
    let backends = [echo_server("127.0.0.1"), echo_server("127.0.0.1")];
    let [a, b] = backends.map(|s| s.port().to_string());
    // A range of its own, so that parallel tests cannot take its ports.
    let range = "47100-47199";
    let (fwd, lines) = Forward::start(
        &["--to", "127.0.0.1", "--port-range", range, "--expose", &a, "--expose", &b, "-P"],
        4,
    );
    for (pair, port) in lines.chunks(2).zip([&a, &b]) {
        let (v4, v6) = (host_of(&pair[0]), host_of(&pair[1]));
        assert_eq!(pair[0], format!("{port}/tcp -> 0.0.0.0:{}", v4.port()));
        assert_eq!(pair[1], format!("{port}/tcp -> [::]:{}", v4.port()), "one port, both families");
        assert!((47100..=47199).contains(&v4.port()), "{pair:?}");
        for local in [
            SocketAddr::from(([127, 0, 0, 1], v4.port())),
            format!("[::1]:{}", v6.port()).parse().unwrap(),
        ] {
            assert_eq!(echo_via(local, b"published"), b"published");
        }
    }
    drop(fwd);
    let out = Command::new(CPROXY).args(["forward", "--to", "127.0.0.1", "--expose", &a]).output();
    assert_eq!(out.unwrap().status.code(), Some(2), "--expose without -P publishes nothing");
}

/// `-p IP::PORT/tcp -p IP::PORT/udp`: both halves on one picked host port.
#[test]
fn tcp_and_udp_halves_get_one_host_port() {
    let backend = echo_server("127.0.0.1");
    let p = backend.port();
    let (tcp, udp) = (format!("127.0.0.1::{p}/tcp"), format!("127.0.0.1::{p}/udp"));
    let (fwd, lines) = Forward::start(&["--to", "127.0.0.1", "-p", &tcp, "-p", &udp], 2);
    let host = host_of(&lines[0]);
    assert_eq!(lines, [format!("{p}/tcp -> {host}"), format!("{p}/udp -> {host}")]);
    assert_eq!(echo_via(host, b"both"), b"both");
    drop(fwd);
}

#[test]
fn control_socket_adds_lists_and_removes_bindings_at_run_time() {
    let backend = echo_server("127.0.0.1");
    let p = backend.port();
    let (fwd, lines) = Forward::start(&["--to", "127.0.0.1", "-p", &format!("127.0.0.1::{p}")], 1);
    let first = host_of(&lines[0]);
    let mut live = TcpStream::connect(first).unwrap();
    live.write_all(b"1").unwrap();

    let added = fwd.ctl(&format!("add 127.0.0.1::{p}"));
    assert_eq!(added.last().map(String::as_str), Some("ok"), "{added:?}");
    let (id, line) = added[0].split_once(' ').unwrap();
    let second = host_of(line);
    assert_eq!(echo_via(second, b"added"), b"added");

    let listed = fwd.ctl("list");
    assert_eq!(listed.len(), 3, "{listed:?}");

    assert_eq!(fwd.ctl(&format!("remove {id}")), ["ok"]);
    assert!(TcpStream::connect(second).is_err(), "removed binding still accepts");
    assert!(fwd.ctl(&format!("remove {id}"))[0].starts_with("error: no such binding"));

    // The first binding's open connection never noticed.
    live.write_all(b"2").unwrap();
    live.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    live.read_to_string(&mut got).unwrap();
    assert_eq!(got, "12");
}

#[test]
fn control_errors_are_docker_worded_and_keep_the_session_usable() {
    let backend = echo_server("127.0.0.1");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (fwd, _) =
        Forward::start(&["--to", "127.0.0.1", "-p", &format!("127.0.0.1::{}", backend.port())], 1);
    let reply = fwd.ctl(&format!("add 127.0.0.1:{port}:80"));
    assert_eq!(
        reply,
        [format!("error: Bind for 127.0.0.1:{port} failed: port is already allocated")]
    );
    assert!(fwd.ctl("add 80:99999")[0].starts_with("error: invalid containerPort"));
    assert!(fwd.ctl("frobnicate")[0].starts_with("error: invalid command"));
    assert_eq!(fwd.ctl("list").len(), 2);
}

#[test]
fn forward_without_specs_or_control_is_a_usage_error() {
    let out = Command::new(CPROXY).args(["forward", "--to", "127.0.0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out =
        Command::new(CPROXY).args(["forward", "--to", "127.0.0.1", "-p", "80:"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid"));
}

#[test]
fn forward_drains_on_sigterm_and_removes_its_control_socket() {
    let backend = echo_server("127.0.0.1");
    let (mut fwd, lines) =
        Forward::start(&["--to", "127.0.0.1", "-p", &format!("127.0.0.1::{}", backend.port())], 1);
    let mut c = TcpStream::connect(host_of(&lines[0])).unwrap();
    c.write_all(b"a").unwrap();
    // SAFETY: kill on our own child.
    unsafe { libc::kill(fwd.process.pid() as i32, libc::SIGTERM) };
    c.write_all(b"b").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "ab");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = fwd.process.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "forward did not exit after draining");
        thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    assert!(!fwd.control.exists(), "control socket file left behind");
}
