//! The `cproxy` binary driven as dockerd drives docker-proxy: flags, the fd-3 status pipe,
//! `-use-listen-fd` on fd 4, SIGINT/SIGTERM, and parent death.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{echo_server, recv_into, send_pattern};
use testkit::{peers, procfs, spawn};

const CPROXY: &str = env!("CARGO_BIN_EXE_cproxy");

/// A pipe whose ends are close-on-exec in this process.
fn pipe() -> (File, OwnedFd) {
    spawn::status_pipe().expect("pipe")
}

/// Spawns cproxy with `status` as fd 3 and `listen` as fd 4, as a runtime would.
fn spawn(args: &[&str], status: Option<&OwnedFd>, listen: Option<&OwnedFd>) -> Child {
    let mut cmd = Command::new(CPROXY);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let fds = [status.map(OwnedFd::as_fd), listen.map(OwnedFd::as_fd)];
    spawn::spawn_with_fds(cmd, &fds).expect("spawn cproxy")
}

/// Reads the status pipe to its end, as dockerd does.
fn read_status(r: File) -> String {
    spawn::read_status(r).unwrap()
}

fn proxy_args(host_port: u16, backend: SocketAddr) -> Vec<String> {
    spawn::docker_proxy_args("tcp", Some(host_port), backend)
}

fn free_port() -> u16 {
    peers::free_tcp_port().unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill with a pid we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn wait_output(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Starts cproxy forwarding a fresh port to `backend` and waits for its "ready" on fd 3.
///
/// `free_port` releases the port before cproxy binds it, so a test running in parallel can
/// take it in between; cproxy then reports "already allocated" and the start is retried on
/// another port. Any other status fails the test.
fn start_ready(backend: SocketAddr, extra: &[&str]) -> (Child, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut args = proxy_args(port, backend);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (r, w) = pipe();
        let mut child = spawn(&args, Some(&w), None);
        drop(w);
        last = read_status(r);
        if last == "0\n" {
            return (child, port);
        }
        child.wait().unwrap();
        assert!(last.contains("port is already allocated"), "unexpected status {last:?}");
    }
    panic!("no free port after 5 tries; last status {last:?}");
}

fn echo_once(port: u16, msg: &[u8]) -> Vec<u8> {
    common::echo_via(SocketAddr::from(([127, 0, 0, 1], port)), msg)
}

#[test]
fn reports_ready_on_fd3_then_forwards_and_exits_0_on_sigint() {
    let (child, port) = start_ready(echo_server("127.0.0.1"), &[]);
    assert_eq!(echo_once(port, b"hello"), b"hello");
    signal(&child, libc::SIGINT);
    assert!(wait_output(child).status.success());
}

#[test]
fn reports_bind_failure_on_fd3_in_dockers_words_and_exits_nonzero() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let args = proxy_args(port, echo_server("127.0.0.1"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, w) = pipe();
    let child = spawn(&args, Some(&w), None);
    drop(w);
    let status = read_status(r);
    assert_eq!(
        status,
        format!("1\nBind for 127.0.0.1:{port} failed: port is already allocated"),
        "status pipe"
    );
    let out = wait_output(child);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn standalone_errors_go_to_stderr_and_the_exit_code() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = proxy_args(taken.local_addr().unwrap().port(), echo_server("127.0.0.1"));
    let out = Command::new(CPROXY).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port is already allocated"));
}

#[test]
fn uses_the_listening_socket_passed_on_fd4() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = OwnedFd::from(listener);
    let backend = echo_server("127.0.0.1");
    let mut args = proxy_args(port, backend);
    args.push("-use-listen-fd".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, w) = pipe();
    let child = spawn(&args, Some(&w), Some(&fd));
    drop((w, fd));
    assert_eq!(read_status(r), "0\n");
    assert_eq!(echo_once(port, b"via fd 4"), b"via fd 4");
    signal(&child, libc::SIGTERM);
    assert!(wait_output(child).status.success());
}

#[test]
fn use_listen_fd_without_a_socket_on_fd4_fails_clearly() {
    let mut args = proxy_args(free_port(), echo_server("127.0.0.1"));
    args.push("-use-listen-fd".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, w) = pipe();
    let child = spawn(&args, Some(&w), None);
    drop(w);
    let status = read_status(r);
    assert!(status.starts_with("1\n") && status.contains("fd 4"), "{status:?}");
    assert_eq!(wait_output(child).status.code(), Some(1));
}

#[test]
fn sigterm_during_a_transfer_lets_it_finish_intact_then_exits_0() {
    drains_a_transfer_on_sigterm(&[]);
}

/// `-threads 1` runs the forwarder on the main thread alone: same forwarding, same drain.
#[test]
fn single_threaded_forwarder_drains_on_sigterm_too() {
    drains_a_transfer_on_sigterm(&["-threads", "1"]);
}

fn drains_a_transfer_on_sigterm(extra: &[&str]) {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = [&["-grace", "60s"], extra].concat();
    let (child, port) = start_ready(backend.local_addr().unwrap(), &args);
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut server, _) = backend.accept().unwrap();
    let sender = thread::spawn(move || {
        let sum = send_pattern(&mut server, 5, 64 << 20).unwrap();
        server.shutdown(Shutdown::Write).unwrap();
        sum
    });
    let mut first = [0u8; 1];
    client.read_exact(&mut first).unwrap();
    signal(&child, libc::SIGTERM);
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = common::Sum::default();
    got.update(&first);
    let got = recv_into(&mut client, got).unwrap();
    assert_eq!(got, sender.join().unwrap(), "bytes lost or changed in the drain");
    assert!(wait_output(child).status.success());
}

#[test]
fn second_signal_cuts_open_connections_and_exits_0() {
    let (child, port) = start_ready(echo_server("127.0.0.1"), &["-grace", "60s"]);
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    idle.read_exact(&mut one).unwrap();
    signal(&child, libc::SIGTERM);
    // The first signal stops the listener; wait for that before sending the second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "listener still open after SIGTERM");
        thread::yield_now();
    }
    signal(&child, libc::SIGTERM);
    let started = Instant::now();
    let out = wait_output(child);
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30), "the second signal did not cut");
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(idle.read(&mut one), Ok(0) | Err(_)), "connection survived the cut");
}

#[test]
fn exits_when_the_runtime_that_started_it_dies() {
    // A shell stands in for dockerd: it passes the status pipe down and is then killed.
    let backend = echo_server("127.0.0.1");
    let args = proxy_args(free_port(), backend).join(" ");
    let (mut r, w) = pipe();
    let mut runtime = Command::new("sh");
    runtime.arg("-c").arg(format!("{CPROXY} {args} & echo $!; wait")).stdout(Stdio::piped());
    let mut runtime = spawn::spawn_with_fds(runtime, &[Some(w.as_fd())]).unwrap();
    drop(w);
    let mut ready = [0u8; 2];
    r.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"0\n");
    let mut pid = String::new();
    let mut out = runtime.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        pid.push(byte[0] as char);
    }
    let pid: i32 = pid.trim().parse().unwrap();
    runtime.kill().unwrap();
    runtime.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only probes whether the pid exists.
    while unsafe { libc::kill(pid, 0) } == 0 && !procfs::exited(pid as u32) {
        assert!(Instant::now() < deadline, "cproxy outlived its runtime");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn version_flag_prints_a_version_line_and_exits_0() {
    for flag in ["-v", "-version", "--version"] {
        let out = Command::new(CPROXY).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("version"), "{flag}");
    }
}

#[test]
fn unknown_flags_and_bad_values_are_usage_errors_with_exit_2() {
    for args in [&["-bogus"][..], &["-host-port", "http"], &["-proto"]] {
        let out = Command::new(CPROXY).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn usage_errors_are_reported_on_fd3_too() {
    let (r, w) = pipe();
    let child = spawn(&["-host-port", "http"], Some(&w), None);
    drop(w);
    let status = read_status(r);
    assert!(status.starts_with("1\n") && status.contains("http"), "{status:?}");
    assert_eq!(wait_output(child).status.code(), Some(2));
}

#[test]
fn missing_ports_and_sctp_are_explained() {
    let out = Command::new(CPROXY).args(["-container-port", "80"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-host-port"));
    let out = Command::new(CPROXY)
        .args(["-proto", "sctp", "-host-port", "0", "-container-port", "80"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sctp"));
}
