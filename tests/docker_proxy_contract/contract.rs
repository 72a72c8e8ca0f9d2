// The docker-proxy contract's tests, included by tests/docker_proxy_contract.rs (for `cproxy`)
// and tests/docker_proxy_contract_lean.rs (for `cproxy-docker-proxy`), each with its `CPROXY`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{echo_server, recv_into, send_pattern};
use testkit::{peers, procfs, spawn};

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
/// take it in between; cproxy then reports "address already in use" and the start is retried on
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
        assert!(last.contains("address already in use"), "unexpected status {last:?}");
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
fn reports_bind_failure_on_fd3_in_docker_proxys_words_and_exits_nonzero() {
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
        format!("1\nlisten tcp4 127.0.0.1:{port}: bind: address already in use"),
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind: address already in use"));
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
fn missing_ports_are_explained() {
    let out = Command::new(CPROXY).args(["-container-port", "80"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-host-port"));
}

/// Spawns cproxy with a fresh status pipe on fd 3 and returns what it reported there and its
/// exit code.
fn status_and_exit(args: &[&str]) -> (String, Option<i32>) {
    let (r, w) = pipe();
    let child = spawn(args, Some(&w), None);
    drop(w);
    let status = read_status(r);
    if status == "0\n" {
        // It started when it should have refused: stop it, so the test fails rather than hangs.
        signal(&child, libc::SIGKILL);
    }
    (status, wait_output(child).status.code())
}

fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

/// The CPUs cproxy may use (it inherits this process's affinity), and so its most threads.
fn cpus() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// Waits until `pid` has `n` threads; false if it still has not after a minute (a worker ends
/// 2 s after its last connection).
fn threads_become(pid: u32, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while thread_count(pid) != n {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A connection to the proxy at `port` that echoes 16 KiB blocks there and back, each checked,
/// until `stop` is set (or a minute has passed); returns once its first block came back, so
/// that it is established and moving bytes.
fn busy_connection(port: u16, stop: &Arc<AtomicBool>) -> thread::JoinHandle<()> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (started, first) = std::sync::mpsc::channel();
    let stop = Arc::clone(stop);
    let thread = thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        let mut back = vec![0u8; 16 << 10];
        for round in 0u32.. {
            let block = vec![round as u8; 16 << 10];
            conn.write_all(&block).unwrap();
            conn.read_exact(&mut back).unwrap();
            assert!(back == block, "round {round}: the echo differs");
            let _ = started.send(());
            if stop.load(Ordering::Relaxed) || Instant::now() > until {
                break;
            }
        }
    });
    first.recv().expect("the first block never came back");
    thread
}

/// docker-proxy mode serves one binding on one thread while idle, however many CPUs the host
/// has (100 proxies on a 64-CPU host would otherwise be 6,500 threads); connections that
/// overlap while it is busy get worker threads, up to one per CPU, which end once idle.
/// `-threads` still decides, and then nothing changes with the load.
#[test]
fn docker_proxy_mode_runs_on_one_thread_while_idle_and_more_while_busy() {
    let (child, port) = start_ready(echo_server("127.0.0.1"), &[]);
    assert_eq!(echo_once(port, b"one thread"), b"one thread");
    assert_eq!(thread_count(child.id()), 1, "threads of an idle docker-proxy mode cproxy");
    let idle_fds = procfs::fds(child.id()).unwrap();
    // Connections kept busy, bytes flowing both ways, and more coming while they are, until
    // the proxy has started a worker (one connection at a time never does).
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cpus() > 1 && thread_count(child.id()) == 1 && busy.len() < 32 {
        assert!(Instant::now() < deadline, "no worker thread with {} busy connections", busy.len());
        busy.push(busy_connection(port, &stop));
    }
    let busy_threads = thread_count(child.id());
    assert!(busy_threads <= cpus(), "{busy_threads} threads for {} CPUs", cpus());
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
    // Idle again: back to one thread (each worker ends 2 s after its last connection).
    assert!(threads_become(child.id(), 1), "still {} threads once idle", thread_count(child.id()));
    // The workers' runtimes (an epoll and an event descriptor each) and the connections' sockets
    // are closed; the relay's pipes may stay pooled. (At most as many as when idle before: the
    // first echo's sockets may still have been closing then.)
    let fds = procfs::fds(child.id()).unwrap();
    let (now, before) = ((fds.sockets, fds.other), (idle_fds.sockets, idle_fds.other));
    assert!(now.0 <= before.0 && now.1 <= before.1, "descriptors left: {now:?}, idle {before:?}");
    assert_eq!(echo_once(port, b"still one"), b"still one");
    assert_eq!(thread_count(child.id()), 1, "a lone connection started a worker");
    signal(&child, libc::SIGTERM);
    assert!(wait_output(child).status.success());
    let (child, port) = start_ready(echo_server("127.0.0.1"), &["-threads", "2"]);
    assert_eq!(echo_once(port, b"two"), b"two");
    assert!(thread_count(child.id()) >= 3, "main thread and 2 workers");
    signal(&child, libc::SIGTERM);
    assert!(wait_output(child).status.success());
}

/// Transfers on every thread are drained on SIGTERM, each to its last byte.
#[test]
fn sigterm_drains_the_transfers_of_every_thread() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let (child, port) = start_ready(backend.local_addr().unwrap(), &["-grace", "60s"]);
    // Connections that overlap: all but the first are placed while another is fresh.
    let transfers: Vec<_> = (0..8u64)
        .map(|seed| {
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut server, _) = backend.accept().unwrap();
            let sender = thread::spawn(move || {
                let sum = send_pattern(&mut server, seed, 8 << 20).unwrap();
                server.shutdown(Shutdown::Write).unwrap();
                sum
            });
            (client, sender)
        })
        .collect();
    let threads = thread_count(child.id());
    if cpus() > 1 {
        assert!(threads > 1, "8 connections at once on {threads} thread(s)");
    }
    signal(&child, libc::SIGTERM);
    for (mut client, sender) in transfers {
        client.shutdown(Shutdown::Write).unwrap();
        let got = recv_into(&mut client, common::Sum::default()).unwrap();
        assert_eq!(got, sender.join().unwrap(), "bytes lost or changed in the drain");
    }
    assert!(wait_output(child).status.success());
}

/// A thread count the runtime cannot start is refused up front, on the status pipe, rather
/// than aborting the process with nothing reported.
#[test]
fn thread_counts_out_of_range_are_usage_errors_on_the_status_pipe() {
    let backend = echo_server("127.0.0.1");
    for threads in ["0", "65535"] {
        let mut args = proxy_args(free_port(), backend);
        args.extend(["-threads".to_string(), threads.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, code) = status_and_exit(&args);
        assert_eq!(code, Some(2), "-threads {threads}: {status:?}");
        assert!(
            status.starts_with(&format!("1\ninvalid value \"{threads}\" for flag -threads: ")),
            "-threads {threads}: {status:?}"
        );
    }
}

/// A zero UDP idle timeout would expire every session as it opens.
#[test]
fn a_zero_udp_idle_timeout_is_a_usage_error() {
    let mut args = proxy_args(free_port(), echo_server("127.0.0.1"));
    args[1] = "udp".into();
    args.extend(["-udp-idle-timeout".to_string(), "0".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, code) = status_and_exit(&args);
    assert_eq!(code, Some(2), "{status:?}");
    assert!(
        status.starts_with("1\ninvalid value \"0\" for flag -udp-idle-timeout: "),
        "{status:?}"
    );
}

/// A binding forwarding to its own address would feed itself its own datagrams (or
/// connections) at full speed: refused, on the status pipe.
#[test]
fn a_binding_whose_backend_is_its_own_address_is_refused() {
    for proto in ["udp", "tcp"] {
        let port = free_port();
        let own = SocketAddr::from(([127, 0, 0, 1], port));
        let mut args = proxy_args(port, own);
        args[1] = proto.into();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, code) = status_and_exit(&args);
        assert_eq!(code, Some(1), "{proto}: {status:?}");
        assert!(
            status.starts_with(&format!("1\nrefusing to forward 127.0.0.1:{port}/{proto} to ")),
            "{proto}: {status:?}"
        );
    }
}

/// IPv6 as IPv4: a port held by another process is docker-proxy's Go bind error.
#[test]
fn a_taken_ipv6_port_is_reported_as_docker_proxy_reports_it() {
    let taken = TcpListener::bind("[::1]:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut args = proxy_args(port, echo_server("127.0.0.1"));
    args[3] = "::1".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, code) = status_and_exit(&args);
    assert_eq!(status, format!("1\nlisten tcp6 [::1]:{port}: bind: address already in use"));
    assert_eq!(code, Some(1));
}

/// docker-proxy passes on what the kernel says to an SCTP socket; so does cproxy (and where
/// the kernel has SCTP, says that cproxy does not).
#[test]
fn sctp_gets_the_kernels_answer_as_from_docker_proxy() {
    // SAFETY: socket and close on a descriptor this test owns.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP) };
    let kernel = if fd < 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::EPROTONOSUPPORT), "{e}");
        "protocol not supported"
    } else {
        // SAFETY: fd was just opened by this test.
        unsafe { libc::close(fd) };
        "sctp is not supported by cproxy"
    };
    let mut args = proxy_args(free_port(), echo_server("127.0.0.1"));
    args[1] = "sctp".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, code) = status_and_exit(&args);
    assert_eq!(status, format!("1\n{kernel}"));
    assert_eq!(code, Some(1));
}

/// Go's `flag`: a repeated flag is no error and its last value wins.
#[test]
fn a_repeated_flag_takes_its_last_value() {
    let backend = echo_server("127.0.0.1");
    let first = free_port();
    let last = std::iter::repeat_with(free_port).find(|&p| p != first).unwrap();
    let mut args = proxy_args(first, backend);
    args.extend(["-host-port".to_string(), last.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, w) = pipe();
    let child = spawn(&args, Some(&w), None);
    drop(w);
    assert_eq!(read_status(r), "0\n");
    assert_eq!(echo_once(last, b"last wins"), b"last wins");
    assert!(TcpStream::connect(("127.0.0.1", first)).is_err(), "the first -host-port was bound");
    signal(&child, libc::SIGTERM);
    assert!(wait_output(child).status.success());
}

/// As Go's `net.ParseIP(..).To4()`: an IPv4-mapped IPv6 host IP is the IPv4 address.
#[test]
fn an_ipv4_mapped_host_ip_binds_the_ipv4_address() {
    let port = free_port();
    let mut args = proxy_args(port, echo_server("127.0.0.1"));
    args[3] = "::ffff:127.0.0.1".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, w) = pipe();
    let child = spawn(&args, Some(&w), None);
    drop(w);
    assert_eq!(read_status(r), "0\n");
    assert_eq!(echo_once(port, b"mapped"), b"mapped");
    signal(&child, libc::SIGTERM);
    assert!(wait_output(child).status.success());
}

/// Go's `flag.Int` takes -1, so docker-proxy fails at the bind, in Go's words, exit 1.
#[test]
fn host_port_minus_one_fails_to_bind_as_in_docker_proxy() {
    let mut args = proxy_args(0, echo_server("127.0.0.1"));
    args[5] = "-1".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, code) = status_and_exit(&args);
    assert_eq!(status, "1\nlisten tcp4 127.0.0.1:-1: bind: invalid argument");
    assert_eq!(code, Some(1));
}

/// What Go's `flag` package says of a value it cannot parse or a flag it does not know.
#[test]
fn flag_errors_are_in_go_flag_words_with_exit_2() {
    for (args, want) in [
        (&["-host-port", "http"][..], "invalid value \"http\" for flag -host-port: parse error"),
        (&["-bogus"], "flag provided but not defined: -bogus"),
    ] {
        let (status, code) = status_and_exit(args);
        assert_eq!(status, format!("1\n{want}"), "{args:?}");
        assert_eq!(code, Some(2), "{args:?}");
    }
}

/// Set in the helper process of `follows_the_runtime_process_not_the_thread_that_started_it`
/// to the cproxy arguments it runs.
const RUNTIME_HELPER: &str = "CPROXY_TEST_RUNTIME_HELPER";

/// Not a test: the "runtime" of the test below, run in its own process. It starts cproxy from
/// a thread, as a runtime with a worker pool may, waits for it to be ready, lets the thread
/// exit, then lives on until it is killed.
#[test]
#[ignore = "run by follows_the_runtime_process_not_the_thread_that_started_it"]
#[allow(clippy::zombie_processes)] // cproxy outlives this process, which is killed.
fn runtime_helper_starting_cproxy_from_a_thread() {
    let Ok(args) = std::env::var(RUNTIME_HELPER) else { return };
    let (pid, status, tid) = thread::spawn(move || {
        let (r, w) = pipe();
        let args: Vec<&str> = args.split(' ').collect();
        let child = spawn(&args, Some(&w), None);
        drop(w);
        // SAFETY: gettid has no preconditions.
        (child.id(), read_status(r), unsafe { libc::gettid() })
    })
    .join()
    .unwrap();
    // Once the thread is gone from /proc, the kernel is done with its exit, parent-death
    // signal included.
    while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
        thread::yield_now();
    }
    println!("cproxy {pid} {}", status.trim());
    loop {
        thread::park();
    }
}

#[test]
fn follows_the_runtime_process_not_the_thread_that_started_it() {
    let port = free_port();
    let args = proxy_args(port, echo_server("127.0.0.1")).join(" ");
    let mut runtime = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["runtime_helper_starting_cproxy_from_a_thread", "--exact", "--ignored"])
            .arg("--nocapture")
            .env(RUNTIME_HELPER, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(runtime.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("cproxy ") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0, "helper ended");
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "0", "cproxy did not report ready: {line:?}");
    let pid: i32 = fields[1].parse().unwrap();
    // The thread that started cproxy has exited; the runtime process lives on, so must the
    // proxy. (Nothing signals "nothing happened": this watches for a while.)
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        assert_eq!(echo_once(port, b"still here"), b"still here");
    }
    assert!(!testkit::procfs::exited(pid as u32), "cproxy exited with the thread that started it");
    drop(runtime);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !testkit::procfs::exited(pid as u32) {
        if Instant::now() > deadline {
            // SAFETY: kill on the cproxy this test had started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("cproxy outlived its runtime process");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A child process killed (and reaped) when dropped, so that a failing test leaves none behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
