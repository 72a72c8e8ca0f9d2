//! The daemon survives its users (issue 19): a port's idle clients cannot take the other ports'
//! or the API's descriptors, idle and slow API clients cannot lock the API out, SIGHUP stops
//! nothing, and `--host` never deletes a file. Each test runs its daemon in a network namespace
//! of its own (`supervisor_support`), removed even when the test fails.

mod supervisor_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use supervisor_support::{BIN, Daemon, Netns, Start, eventually, http_get, python};

/// `cproxy run -d --name NAME -p 127.0.0.1:HOST:CTR CMD…`, answered within `limit`; its ID.
fn run(
    d: &Daemon,
    name: &str,
    cmd: &[String],
    host_port: u16,
    ctr_port: u16,
    limit: Duration,
) -> String {
    let publish = format!("127.0.0.1:{host_port}:{ctr_port}");
    let mut args = vec!["run", "--rootfs", "/", "-d", "--name", name, "-p", &publish];
    args.extend(cmd.iter().map(String::as_str));
    let (out, _) = d.cli_within(&args, limit);
    let out = out.unwrap_or_else(|| panic!("run {name} did not answer within {limit:?}"));
    assert!(out.status.success(), "run {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn web_server(port: u16) -> Vec<String> {
    vec![python(), "-m".into(), "http.server".into(), port.to_string()]
}

/// A server that completes every TCP handshake (its backlog) and never accepts: its clients'
/// connections stay open and idle.
fn black_hole(port: u16) -> Vec<String> {
    let script = format!(
        "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',{port}))\ns.listen(4096)\n\
         time.sleep(3600)\n"
    );
    vec![python(), "-c".into(), script]
}

/// The value of a daemon metric of the binding on `127.0.0.1:host_port`, if it can be scraped.
fn metric(ns: &Netns, metrics: &str, name: &str, host_port: u16) -> Option<u64> {
    let addr: SocketAddr = metrics.parse().unwrap();
    let text = ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(text)
    })?;
    let series = format!("{name}{{proto=\"tcp\",host=\"127.0.0.1:{host_port}\",");
    let line = text.lines().find(|l| l.starts_with(&series))?;
    line.rsplit(' ').next()?.parse().ok()
}

fn container_ip(d: &Daemon, name: &str) -> Ipv4Addr {
    d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", name]).trim().parse().unwrap()
}

/// `ps` answers within a second and lists `name`.
fn ps_answers(d: &Daemon, name: &str) {
    let (out, took) = d.cli_within(&["ps"], Duration::from_secs(10));
    let out = out.unwrap_or_else(|| panic!("ps did not answer within 10 s"));
    assert!(out.status.success(), "ps: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(name));
    assert!(took < Duration::from_secs(1), "ps took {took:?}");
}

/// Two requests on one connection, as Docker's client sends them: both answered; the
/// connection, still open.
fn pings_on_one_connection(d: &Daemon) -> UnixStream {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: cproxy\r\n\r\n").unwrap();
        let mut buf = [0; 512];
        let n = s.read(&mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]);
        assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("OK"), "{reply}");
    }
    s
}

/// At a descriptor limit of 1024 (systemd's soft default), 600 idle clients of one port whose
/// container never answers are held up to that port's share and the rest reset and counted;
/// another container's port still forwards, and `ps` and a new container still work.
#[test]
fn one_ports_idle_clients_leave_the_other_ports_and_the_api_their_descriptors() {
    testkit::rlimit::raise_fd_limit(8192);
    let ns = Netns::new();
    let metrics = "127.0.0.1:9180";
    let d = ns.daemon_with(
        &["--metrics-addr", metrics],
        Start { nofile: Some(1024), log: false, cgroups: false, ..Default::default() },
    );
    run(&d, "stuck", &black_hole(5000), 7000, 5000, Duration::from_secs(10));
    run(&d, "web", &web_server(8000), 8081, 8000, Duration::from_secs(10));
    let stuck = SocketAddr::from((container_ip(&d, "stuck"), 5000));
    eventually(15, || ns.run(|| TcpStream::connect_timeout(&stuck, Duration::from_secs(1)).ok()));
    let status = eventually(15, || http_get(&ns, "127.0.0.1:8081"));
    assert!(status.contains("200"), "{status}");

    let clients: Vec<TcpStream> =
        ns.run(|| (0..600).map(|_| TcpStream::connect("127.0.0.1:7000").unwrap()).collect());
    // The daemon has taken them all (held or reset), if its metrics can tell.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut accepted = None;
    while Instant::now() < deadline {
        accepted = metric(&ns, metrics, "cproxy_connections_accepted_total", 7000);
        if accepted.is_some_and(|n| n >= 600) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Another container's port still forwards, one new connection after another.
    for _ in 0..3 {
        let status = http_get(&ns, "127.0.0.1:8081");
        assert!(status.as_deref().is_some_and(|s| s.contains("200")), "{status:?}");
    }
    ps_answers(&d, "stuck");
    // A new container starts, and its port forwards.
    run(&d, "late", &web_server(8000), 8082, 8000, Duration::from_secs(1));
    let status = eventually(15, || http_get(&ns, "127.0.0.1:8082"));
    assert!(status.contains("200"), "{status}");
    // The busy port kept its share: the clients beyond it were reset at once, and counted.
    assert_eq!(accepted, Some(600), "the daemon took every client of the busy port");
    let refused = metric(&ns, metrics, "cproxy_connections_refused_total", 7000).unwrap();
    let active = metric(&ns, metrics, "cproxy_connections_active", 7000).unwrap();
    assert!(refused > 0 && active < 200, "refused {refused}, active {active}");
    assert_eq!(refused + active, 600);
    drop(clients);
}

/// 1,100 API connections that send nothing, at a descriptor limit of 1024: `ps` and a new
/// container still answer within a second, the daemon holds no more connections than its cap
/// (a quarter of its descriptors), and a real client's keep-alive connection works.
#[test]
fn idle_api_connections_cannot_lock_the_api_out() {
    testkit::rlimit::raise_fd_limit(8192);
    let ns = Netns::new();
    let d = ns.daemon_with(
        &[],
        Start { nofile: Some(1024), log: false, cgroups: false, ..Default::default() },
    );
    run(&d, "web", &web_server(8000), 8081, 8000, Duration::from_secs(10));
    let idle: Vec<UnixStream> =
        (0..1100).map(|_| UnixStream::connect(d.socket()).unwrap()).collect();
    for _ in 0..3 {
        ps_answers(&d, "web");
    }
    run(&d, "late", &web_server(8000), 8082, 8000, Duration::from_secs(1));
    let fds = testkit::procfs::fds(d.pid() as u32).unwrap().total();
    assert!(fds < 600, "the daemon holds {fds} descriptors");

    pings_on_one_connection(&d);
    drop(idle);
}

/// Reads until the daemon closes `s`: how long that took from `since` (`None`: still open
/// after 10 s), and what it sent.
fn closed_after(s: &mut UnixStream, since: Instant) -> (Option<Duration>, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (Some(since.elapsed()), String::from_utf8_lossy(&got).into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (Some(since.elapsed()), String::from_utf8_lossy(&got).into());
            }
            Err(_) => return (None, String::from_utf8_lossy(&got).into()),
        }
    }
}

/// A client that sends nothing, one that never finishes its headers, one that never finishes
/// its body, and a keep-alive connection left idle are each closed after their timeout (made
/// short here by the daemon's hidden flags).
#[test]
fn silent_slow_and_idle_api_clients_are_closed_after_their_timeouts() {
    let ns = Netns::new();
    let d = ns.daemon(&[
        "--api-header-timeout",
        "1s",
        "--api-body-timeout",
        "1s",
        "--api-idle-timeout",
        "2s",
    ]);
    let second = Duration::from_secs(1);

    let since = Instant::now();
    let mut silent = UnixStream::connect(d.socket()).unwrap();
    let (took, _) = closed_after(&mut silent, since);
    let took = took.expect("a silent client is closed");
    assert!(took >= second - Duration::from_millis(100) && took < 3 * second, "{took:?}");

    // A header line every 200 ms, never the blank line that ends them (at most 5 s of it).
    let since = Instant::now();
    let mut slow = UnixStream::connect(d.socket()).unwrap();
    slow.write_all(b"GET /_ping HTTP/1.1\r\nHost: cproxy\r\n").unwrap();
    let mut cut = None;
    for i in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        if slow.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).is_err() {
            cut = Some(since.elapsed());
            break;
        }
    }
    let cut = cut.or_else(|| closed_after(&mut slow, since).0.filter(|t| *t < 5 * second));
    let cut = cut.expect("a client that never finishes its headers is closed");
    assert!(cut < 3 * second, "{cut:?}");

    // A head that promises 100 bytes of body, and 10 of them.
    let mut body = UnixStream::connect(d.socket()).unwrap();
    body.write_all(
        b"POST /networks/create HTTP/1.1\r\nHost: cproxy\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"Name\":",
    )
    .unwrap();
    let since = Instant::now();
    let (took, reply) = closed_after(&mut body, since);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(took.is_some_and(|t| t < 3 * second), "{took:?}");

    // Keep-alive: a second request on the connection is answered; left idle, it is closed after
    // the idle timeout (2 s), not the header timeout (1 s).
    let mut keep = pings_on_one_connection(&d);
    let since = Instant::now();
    let (took, _) = closed_after(&mut keep, since);
    let took = took.expect("an idle keep-alive connection is closed");
    assert!(took >= 2 * second - Duration::from_millis(100) && took < 4 * second, "{took:?}");

    // Meanwhile the API answered everyone else.
    assert_eq!(d.api("GET", "/_ping", None), Some((200, "OK".to_string())));
}

/// Waits until the daemon's log has `n` lines containing `needle`; fails at once if it exits.
fn logged(d: &mut Daemon, needle: &str, n: usize) -> String {
    eventually(10, || {
        if let Some(status) = d.exited() {
            panic!("the daemon exited ({status}) before logging {needle:?}:\n{}", d.log());
        }
        let log = d.log();
        (log.matches(needle).count() >= n).then_some(log)
    })
}

/// SIGHUP (a terminal closing, a log rotation), and the signals dockerd ignores, stop neither
/// the daemon nor its containers: the port still forwards and the socket is still there;
/// SIGTERM still stops all.
#[test]
fn sighup_leaves_the_daemon_and_its_containers_running() {
    let ns = Netns::new();
    let mut d = ns
        .daemon_with(&[], Start { nofile: None, log: true, cgroups: false, ..Default::default() });
    run(&d, "web", &web_server(8000), 8081, 8000, Duration::from_secs(10));
    eventually(15, || http_get(&ns, "127.0.0.1:8081"));
    for n in 1..=2 {
        d.signal(Signal::SIGHUP);
        logged(&mut d, "SIGHUP", n);
    }
    // Nor do the signals dockerd ignores.
    for (n, sig) in [Signal::SIGUSR2, Signal::SIGALRM, Signal::SIGPWR].into_iter().enumerate() {
        d.signal(sig);
        logged(&mut d, "signal ignored", n + 1);
    }
    assert!(d.exited().is_none());
    assert!(d.socket().exists());
    let status = http_get(&ns, "127.0.0.1:8081");
    assert!(status.as_deref().is_some_and(|s| s.contains("200")), "{status:?}");
    assert!(d.ok(&["ps"]).contains("Up "));
    assert_eq!(d.terminate().code(), Some(0));
    assert!(!d.socket().exists());
}

/// SIGUSR1 writes the daemon's state to its log and goes on, as dockerd's stack dump; SIGQUIT
/// writes it and exits 2 at once, as dockerd (Go) does, taking its containers with it.
#[test]
fn sigusr1_dumps_the_state_and_sigquit_dumps_it_and_exits_2() {
    let ns = Netns::new();
    let mut d = ns
        .daemon_with(&[], Start { nofile: None, log: true, cgroups: false, ..Default::default() });
    let id = run(&d, "web", &web_server(8000), 8081, 8000, Duration::from_secs(10));
    eventually(15, || http_get(&ns, "127.0.0.1:8081"));
    d.signal(Signal::SIGUSR1);
    let log = logged(&mut d, "=== END cproxy daemon state dump ===", 1);
    assert!(log.contains(&id), "{log}");
    assert!(log.contains("127.0.0.1:8081"), "{log}");
    assert!(http_get(&ns, "127.0.0.1:8081").is_some_and(|s| s.contains("200")));

    d.signal(Signal::SIGQUIT);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{}", d.log());
    assert_eq!(d.log().matches("=== END cproxy daemon state dump ===").count(), 2);
    // Its containers died with it.
    eventually(10, || ns.pids().is_empty().then_some(()));
}

/// `--host unix://PATH` on a regular file refuses, in `forward --control`'s words, and leaves
/// the file; a stale socket there is replaced.
/// `cproxy daemon` in the test's namespace, on its data root, serving `socket`, its stderr
/// piped: for the starts that must fail, which the harness's `daemon` would wait on.
fn daemon_by_hand(ns: &Netns, socket: &std::path::Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, BIN, "daemon", "--dns", "127.0.0.1", "--data-root"])
        .arg(ns.dir.join("data"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn host_on_a_regular_file_is_refused_and_the_file_kept() {
    let ns = Netns::new();
    let path = ns.dir.join("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    let mut child = daemon_by_hand(&ns, &path).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let kept = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    assert!(kept, "{} was replaced", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "cproxy daemon: {} exists and is not a socket: not replacing it with the API socket \
             (remove it or choose another path)\n",
            path.display()
        )
    );

    // A socket nobody listens on (a daemon that was killed) is replaced.
    drop(std::os::unix::net::UnixListener::bind(ns.dir.join("cproxy.sock")).unwrap());
    let d = ns.daemon(&[]);
    assert_eq!(d.api("GET", "/_ping", None), Some((200, "OK".to_string())));
}

/// Starts exec `id` hijacked (`101`) on a connection of its own, which it returns.
fn hijacked_exec(d: &Daemon, id: &str) -> UnixStream {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"Detach":false,"Tty":false}"#;
    let head = format!(
        "POST /v1.41/exec/{id}/start HTTP/1.1\r\nHost: cproxy\r\nConnection: Upgrade\r\n\
         Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "{}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let reply = String::from_utf8_lossy(&got);
    assert!(reply.starts_with("HTTP/1.1 101"), "{reply}");
    s
}

/// A connection upgraded to a raw stream (`attach`, `exec`) keeps its place among the API's
/// connections until the stream closes: past the cap, a newcomer gets `503` rather than the
/// daemon holding descriptors the cap does not count; once a session ends, its place is free.
#[test]
fn upgraded_streams_count_against_the_api_connection_cap() {
    let ns = Netns::new();
    let d = ns.daemon(&["--api-max-connections", "2"]);
    d.ok(&["run", "-d", "--rootfs", "/", "--name", "sl", "sleep", "600"]);
    let exec = || {
        let body = r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["cat"]}"#;
        let (status, reply) = d.api("POST", "/v1.41/containers/sl/exec", Some(body)).unwrap();
        assert_eq!(status, 201, "{reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        v["Id"].as_str().unwrap().to_string()
    };
    let (a, b) = (exec(), exec());
    let mut first = hijacked_exec(&d, &a);
    let second = hijacked_exec(&d, &b);
    // The cat of the first echoes: its session is live.
    first.write_all(b"live\n").unwrap();
    let mut frame = [0u8; 13];
    first.read_exact(&mut frame).unwrap();
    assert_eq!(&frame[8..], b"live\n");
    let (status, body) = d.api("GET", "/_ping", None).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("too many API connections"), "{body}");
    // The client goes: its exec's stdin closes, cat exits, the session ends, the place is free.
    drop(second);
    eventually(10, || (d.api("GET", "/_ping", None).map(|r| r.0) == Some(200)).then_some(()));
    drop(first);
}

/// A running container costs the daemon no thread: its output pipes are read and its end is
/// awaited by tasks of the daemon's runtime (a pidfd), not by threads of their own (three per
/// container before, so 200 containers were 600 threads). The threads are counted with none
/// running and with ten, which print as they run; every line reaches the logs.
#[test]
fn running_containers_cost_the_daemon_no_threads() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let threads = || std::fs::read_dir(format!("/proc/{}/task", d.pid())).unwrap().count();
    d.ok(&["run", "--rootfs", "/", "--name", "warm", "true"]);
    let idle = threads();
    let script = "echo start; echo start-err >&2; while :; do sleep 1; done";
    for i in 0..10 {
        d.ok(&["run", "-d", "--rootfs", "/", "--name", &format!("c{i}"), "sh", "-c", script]);
    }
    for i in 0..10 {
        let name = format!("c{i}");
        eventually(10, || {
            let out = d.cli(&["logs", &name]);
            (out.stdout == b"start\n" && out.stderr == b"start-err\n").then_some(())
        });
    }
    let busy = threads();
    assert!(busy <= idle + 2, "{idle} threads idle, {busy} with ten containers running");
    d.ok(&["rm", "-f", "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]);
}

/// One data root, one daemon: a second daemon on it is refused before it takes anything (its
/// socket is not made, the first one's containers are untouched), with Docker's words for a
/// pid file in use; the pid file says the first daemon's PID and is gone once it stopped.
/// Also while the first is still stopping its containers after a SIGTERM (its API already
/// closed): a daemon started then used to replace its socket and restore the same containers.
#[test]
fn a_second_daemon_on_one_data_root_is_refused() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    d.ok(&["run", "-d", "--rootfs", "/", "--name", "first", "sleep", "600"]);
    let pid_file = ns.dir.join("data/cproxy.pid");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), d.pid().to_string());
    let second = |socket: &std::path::Path| daemon_by_hand(&ns, socket).output().unwrap();
    let other = ns.dir.join("other.sock");
    let out = second(&other);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "cproxy daemon: pid file found, ensure cproxy daemon is not running or delete {} \
             (the data root {} is in use by PID {})\n",
            pid_file.display(),
            ns.dir.join("data").display(),
            d.pid()
        )
    );
    assert!(!other.exists(), "the refused daemon made no socket");
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.Running}}", "first"]), "true\n");

    // A container that ignores SIGTERM keeps the first daemon stopping for its 10 s; a daemon
    // started meanwhile on the same socket is refused, and the socket is not replaced.
    d.ok(&[
        "run",
        "-d",
        "--rootfs",
        "/",
        "--name",
        "stubborn",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), Signal::SIGTERM).unwrap();
    eventually(10, || d.api("GET", "/_ping", None).is_none().then_some(()));
    let out = second(&d.socket());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pid file found"));
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!pid_file.exists(), "the pid file is removed at a clean exit");
}
