//! Many bindings in one process: the library API at scale, and `cproxy forward` with its
//! control socket driven as a user (or a supervisor) would.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
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

    /// Starts `cproxy forward ARGS --control PATH` as `setup` prepares it (a umask, say).
    fn start_with(args: &[&str], n: usize, setup: impl FnOnce(&mut Command)) -> Forward {
        let dir = TempDir::new("cproxy-test").unwrap();
        let control = dir.path().join("control.sock");
        let mut cmd = Command::new(CPROXY);
        cmd.arg("forward").args(args).arg("--control").arg(&control);
        setup(&mut cmd);
        let process = ProxyProcess::forward_command(cmd, n);
        Forward { process, control, _dir: dir }
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
    let fixed = testkit::peers::free_tcp_port().unwrap();
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
    // Held by another process: the bind fails, in docker-proxy's words.
    let reply = fwd.ctl(&format!("add 127.0.0.1:{port}:80"));
    assert_eq!(
        reply,
        [format!("error: listen tcp4 127.0.0.1:{port}: bind: address already in use")]
    );
    // Held by a binding of this forwarder: dockerd's allocator's words.
    let held = host_of(&fwd.ctl(&format!("add 127.0.0.1::{}", backend.port()))[0]);
    let reply = fwd.ctl(&format!("add 127.0.0.1:{}:80", held.port()));
    assert_eq!(reply, [format!("error: Bind for {held} failed: port is already allocated")]);
    assert!(fwd.ctl("add 80:99999")[0].starts_with("error: invalid containerPort"));
    assert!(fwd.ctl("frobnicate")[0].starts_with("error: invalid command"));
    assert_eq!(fwd.ctl("list").len(), 3);
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

/// A backend and a `-p` spec for it, for tests that need one binding to start with.
fn one_binding() -> Vec<String> {
    let backend = echo_server("127.0.0.1");
    ["--to", "127.0.0.1", "-p", &format!("127.0.0.1::{}", backend.port())]
        .map(String::from)
        .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `cproxy ctl --control PATH list` run as `uid`:`gid` (no supplementary groups).
fn ctl_list_as(control: &Path, uid: u32, gid: u32) -> Output {
    Command::new(CPROXY)
        .args(["ctl", "--control"])
        .arg(control)
        .arg("list")
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_control_socket_is_private_to_its_user_whatever_the_umask() {
    let args = one_binding();
    let fwd = Forward::start_with(&strs(&args), 1, |cmd| {
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
    });
    let meta = std::fs::symlink_metadata(&fwd.control).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "control socket mode under umask 000");
    assert_eq!(fwd.ctl("list").last().map(String::as_str), Some("ok"));
}

/// `--control-group`: mode 0660 and that group, whose members may use it; other users may not.
#[test]
fn a_control_group_lets_its_members_in_and_no_one_else() {
    if !is_root() {
        eprintln!("skipped: needs root to act as other users");
        return;
    }
    let mut args = one_binding();
    args.extend(["--control-group".to_string(), "65534".to_string()]);
    let (fwd, _) = Forward::start(&strs(&args), 1);
    let meta = std::fs::symlink_metadata(&fwd.control).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.gid()), (0o660, 65534));
    let member = ctl_list_as(&fwd.control, 65533, 65534);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
    assert!(!ctl_list_as(&fwd.control, 65533, 65533).status.success(), "a non-member got in");
}

/// The peer's credentials are checked, not only the file's mode: a socket file opened up to
/// everyone (by mistake, or a directory's ACL) still refuses other users.
#[test]
fn control_clients_of_other_users_are_refused_by_their_credentials() {
    if !is_root() {
        eprintln!("skipped: needs root to act as other users");
        return;
    }
    let (fwd, _) = Forward::start(&strs(&one_binding()), 1);
    std::fs::set_permissions(&fwd.control, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = ctl_list_as(&fwd.control, 65533, 65533);
    assert_eq!(other.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("permission denied: uid 65533"), "{stderr}");
    assert_eq!(fwd.ctl("list").last().map(String::as_str), Some("ok"), "root is refused too");
}

/// Runs `cproxy forward --control PATH`, which is expected to refuse and exit; killed if it is
/// still running after 10 s, so that a test fails rather than hangs.
fn forward_with_control_at(path: &Path) -> Output {
    let mut child = Command::new(CPROXY)
        .arg("forward")
        .args(one_binding())
        .arg("--control")
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_file_at_the_control_path_is_left_alone_and_refused() {
    let dir = TempDir::new("cproxy-test").unwrap();
    let path = dir.path().join("precious");
    std::fs::write(&path, b"not a socket").unwrap();
    let out = forward_with_control_at(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists and is not a socket"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

#[test]
fn a_control_socket_that_answers_belongs_to_another_instance_and_is_refused() {
    let dir = TempDir::new("cproxy-test").unwrap();
    let path = dir.path().join("control.sock");
    let _other = UnixListener::bind(&path).unwrap();
    let out = forward_with_control_at(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another cproxy"), "{stderr}");
    assert!(UnixStream::connect(&path).is_ok(), "the other instance's socket was replaced");
}

#[test]
fn a_stale_control_socket_is_replaced() {
    let dir = TempDir::new("cproxy-test").unwrap();
    let path = dir.path().join("control.sock");
    drop(UnixListener::bind(&path).unwrap()); // The file stays; nobody listens.
    let mut cmd = Command::new(CPROXY);
    cmd.arg("forward").args(one_binding()).arg("--control").arg(&path);
    let _fwd = ProxyProcess::forward_command(cmd, 1);
    let mut s = UnixStream::connect(&path).unwrap();
    writeln!(s, "list").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let reply: Vec<String> = BufReader::new(s).lines().map(Result::unwrap).collect();
    assert_eq!(reply.last().map(String::as_str), Some("ok"), "{reply:?}");
}

/// Reads one reply line.
fn reply_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

/// A control connection that has had a `list` answered: the server holds its session.
fn session(control: &Path) -> BufReader<UnixStream> {
    let mut s = UnixStream::connect(control).unwrap();
    s.write_all(b"list\n").unwrap();
    let mut r = BufReader::new(s);
    while reply_line(&mut r) != "ok" {}
    r
}

#[test]
fn control_clients_are_capped_and_idle_ones_are_closed() {
    let mut args = one_binding();
    args.extend(["--control-max-clients", "2", "--control-idle-timeout", "1s"].map(String::from));
    let (fwd, _) = Forward::start(&strs(&args), 1);
    let mut first = session(&fwd.control);
    let _second = session(&fwd.control);
    // Told at once, without a command: it may not send one.
    let third = UnixStream::connect(&fwd.control).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut third = BufReader::new(third);
    let refused = reply_line(&mut third);
    assert!(refused.starts_with("error: too many control clients"), "{refused}");
    // An idle client is told why and closed, which frees its place.
    first.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let closed = reply_line(&mut first);
    assert!(closed.starts_with("error: no command for 1s"), "{closed}");
    assert_eq!(reply_line(&mut first), "", "idle client not closed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fwd.ctl("list").last().map(String::as_str) != Some("ok") {
        assert!(Instant::now() < deadline, "no place freed by idle clients");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_command_that_is_not_utf8_gets_an_error_and_the_session_goes_on() {
    let (fwd, _) = Forward::start(&strs(&one_binding()), 1);
    let mut s = UnixStream::connect(&fwd.control).unwrap();
    s.write_all(b"li\xffst\nlist\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let reply: Vec<String> = BufReader::new(s).lines().map(Result::unwrap).collect();
    assert!(reply[0].starts_with("error: command is not valid UTF-8"), "{reply:?}");
    assert_eq!(reply.len(), 3, "the list after the bad line was not answered: {reply:?}");
    assert_eq!(reply[2], "ok");
}

/// Three consecutive ports free on 127.0.0.1, the middle one then held by the caller.
fn ports_around_a_taken_one() -> (u16, TcpListener) {
    let start = testkit::peers::free_tcp_ports(3).unwrap();
    (start, TcpListener::bind(("127.0.0.1", start + 1)).unwrap())
}

/// A range `add` that fails part-way replies only once the bindings it did add are removed:
/// the next command on the same connection sees none of them, and their ports are free. One
/// worker thread makes any removal left to run later visible.
#[test]
fn a_failed_range_add_replies_only_after_rolling_back_and_can_be_retried_at_once() {
    let mut args = one_binding();
    args.extend(["--threads", "1"].map(String::from));
    let (fwd, _) = Forward::start(&strs(&args), 1);
    let (start, _middle) = ports_around_a_taken_one();
    let mut s = UnixStream::connect(&fwd.control).unwrap();
    let end = start + 2;
    write!(s, "add 127.0.0.1:{start}-{end}:7000-7002\nlist\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let reply: Vec<String> = BufReader::new(s).lines().map(Result::unwrap).collect();
    let middle = start + 1;
    let failed = format!("error: listen tcp4 127.0.0.1:{middle}: bind: address already in use");
    assert_eq!(reply[0], failed, "{reply:?}");
    // The list: the binding started with, then ok; nothing of the failed range.
    assert_eq!(reply.len(), 3, "a rolled-back binding is still listed: {reply:?}");
    assert!(TcpListener::bind(("127.0.0.1", start)).is_ok(), "rolled-back port still bound");
    // Adding the free part of the range again, right away, succeeds: nothing of the failed
    // add is left to hold its ports.
    let again = fwd.ctl(&format!("add 127.0.0.1:{start}:7000"));
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(again[0].ends_with(&format!(" 7000/tcp -> 127.0.0.1:{start}")), "{again:?}");
    assert_eq!(again[1], "ok");
}

#[test]
fn the_same_fixed_port_twice_is_already_allocated_as_in_docker() {
    let port = testkit::peers::free_tcp_port().unwrap();
    let spec = format!("127.0.0.1:{port}:80");
    let out = Command::new(CPROXY)
        .args(["forward", "--to", "127.0.0.1", "-p", &spec, "-p", &spec])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("Bind for 127.0.0.1:{port} failed: port is already allocated");
    assert!(stderr.contains(&want), "{stderr}");
}

/// While `forward` drains after SIGTERM, its control socket takes no new client (its listener
/// stopped with the proxy), and an `add` on a session opened before is refused in words
/// instead of answered `ok` for a binding stopped at birth.
#[test]
fn an_add_while_draining_is_refused_and_new_control_clients_are_not_taken() {
    let backend = common::listen("127.0.0.1");
    let spec = format!("127.0.0.1::{}", backend.local_addr().unwrap().port());
    let (fwd, lines) = Forward::start(&["--to", "127.0.0.1", "-p", &spec, "--grace", "30s"], 1);
    let mut open = session(&fwd.control);
    // A connection with bytes in flight (its backend never reads) keeps the drain going.
    let mut client = TcpStream::connect(host_of(&lines[0])).unwrap();
    let (_server, _) = backend.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    let chunk = [7u8; 64 * 1024];
    while client.write(&chunk).is_ok() {}
    // SAFETY: kill on our own child.
    unsafe { libc::kill(fwd.process.pid() as i32, libc::SIGTERM) };
    // Stopping has begun once the control socket refuses new clients.
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&fwd.control).is_ok() {
        assert!(Instant::now() < deadline, "the control socket still takes clients while stopping");
        thread::sleep(Duration::from_millis(10));
    }
    open.get_mut().write_all(b"add 127.0.0.1::7000\n").unwrap();
    assert_eq!(reply_line(&mut open), "error: cproxy is stopping: no bindings can be added");
}
