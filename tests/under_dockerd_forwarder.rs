//! The shared forwarder under real dockerd (issue #23): Debian's dockerd 20.10 runs cproxy as
//! its `userland-proxy-path` in a namespace the test makes, with `CPROXY_FORWARDER` in its
//! environment (which it passes to the proxies) naming the control socket of a
//! `cproxy forward --control SOCK --metrics-addr ADDR` the test runs in the same namespace.
//!
//! - One container published on 200 ports (dockerd starts one proxy each): one scrape of the
//!   forwarder's metrics and one `cproxy stats --control` list all 200; the proxies' and the
//!   forwarder's PSS (anonymous and file-backed) and RSS are printed, from `smaps_rollup`.
//! - The forwarder killed (SIGKILL) in the middle of a transfer through it: the transfer ends
//!   (it does not hang), and a new connection to every one of the 200 ports is answered.
//! - The forwarder started again on the same path takes every port back (polled: the
//!   processes retry after 1 s, doubling to 10 s) and serves the next connections itself.
//! - `docker rm -f`: no proxy left, no binding left in the forwarder.
//!
//! Without dockerd the test says so and passes, except in CI (`CI=true`), where it fails.
//! `CPROXY_UNDER_TEST=PATH` runs another cproxy build (proxies and forwarder alike), e.g. the
//! release build for its memory figures: `-- --nocapture` shows them.

mod dockerd_support;
mod supervisor_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dockerd_support::{Dockerd, exchange, have_dockerd, proxy_bin, try_exchange};
use supervisor_support::{Netns, eventually, rootfs_tar};
use testkit::{procfs, spawn};

/// How many host ports the container is published on, from [`FIRST`].
const PORTS: u16 = 200;
const FIRST: u16 = 20000;
/// The port the long transfer goes through.
const TRANSFER_PORT: u16 = FIRST + 7;
/// The forwarder's metrics, in the namespace.
const METRICS: &str = "127.0.0.1:19999";
/// The size of the file the transfer fetches, in MiB: far more than the sockets buffer.
const BIG_MIB: usize = 64;

/// The container: busybox httpd on 8080 serving `hello` at `/` and [`BIG_MIB`] MiB at `/big`.
fn web_command() -> String {
    format!(
        "mkdir -p /www && echo hello > /www/index.html && \
         dd if=/dev/zero of=/www/big bs=1M count={BIG_MIB} 2>/dev/null && \
         exec httpd -f -p 8080 -h /www"
    )
}

/// `cproxy forward --control SOCK --metrics-addr METRICS` in the namespace, started as an init
/// system would (its readiness: `0\n` on the status pipe); killed on drop.
struct Forwarder {
    child: Child,
    log: PathBuf,
}

impl Forwarder {
    fn start(ns: &Netns, socket: &Path, n: u32) -> Forwarder {
        let log = ns.dir.join(format!("forwarder-{n}.log"));
        let (status, write) = spawn::status_pipe().expect("status pipe");
        let mut cmd = ns.command(proxy_bin());
        cmd.arg("forward").arg("--control").arg(socket).args(["--metrics-addr", METRICS]);
        cmd.env("CPROXY_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(std::fs::File::create(&log).unwrap());
        spawn::die_with_parent(&mut cmd);
        let child = spawn::spawn_with_fds(cmd, &[Some(write.as_fd())]).expect("spawn forwarder");
        drop(write);
        let f = Forwarder { child, log };
        let status = spawn::read_status(status).expect("status pipe");
        assert_eq!(status, "0\n", "the forwarder did not start: {}", f.log());
        f
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL by its PID, and reaped.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the forwarder");
        self.child.wait().expect("reap the forwarder");
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cproxy stats --control SOCK`: each binding's host address and accepted connections; empty
/// if nothing answers there.
fn stats(socket: &Path) -> BTreeMap<String, u64> {
    let out = Command::new(proxy_bin()).arg("stats").arg("--control").arg(socket).output().unwrap();
    if !out.status.success() {
        return BTreeMap::new();
    }
    let table = String::from_utf8(out.stdout).unwrap();
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().map_or(Vec::new(), |h| h.split_whitespace().collect());
    let column = |name: &str| head.iter().position(|&c| c == name);
    let (Some(proto), Some(host), Some(accepted)) =
        (column("PROTO"), column("HOST"), column("ACCEPTED"))
    else {
        panic!("a table with PROTO, HOST and ACCEPTED: {table}");
    };
    lines
        .map(|l| {
            let row: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(row[proto], "tcp", "{l}");
            (row[host].to_string(), row[accepted].parse().unwrap())
        })
        .collect()
}

/// The host addresses of the published ports.
fn published() -> BTreeSet<String> {
    (FIRST..FIRST + PORTS).map(|p| format!("127.0.0.1:{p}")).collect()
}

/// One scrape of the forwarder's metrics: the `host` labels of its
/// `cproxy_connections_accepted_total` series.
fn scraped_hosts(ns: &Netns) -> BTreeSet<String> {
    let (_, reply) =
        ns.run(|| exchange(METRICS.parse().unwrap(), b"GET /metrics HTTP/1.0\r\n\r\n"));
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply
        .lines()
        .filter(|l| l.starts_with("cproxy_connections_accepted_total{"))
        .map(|l| {
            let host = l.split("host=\"").nth(1).and_then(|r| r.split('"').next());
            host.unwrap_or_else(|| panic!("no host label: {l}")).to_string()
        })
        .collect()
}

/// The processes dockerd started as its userland proxy: its children running cproxy, or
/// `cproxy-lease` beside it (what a process becomes once the forwarder serves its port).
fn proxies(dockerd: u32) -> Vec<u32> {
    let bin = PathBuf::from(proxy_bin());
    let lease = bin.with_file_name("cproxy-lease");
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| procfs::stat(pid).is_some_and(|s| s.ppid == dockerd && s.state != 'Z'))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|exe| exe == bin || exe == lease)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The file name of the program process `pid` runs.
fn program(pid: u32) -> String {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `/proc/PID/smaps_rollup`'s fields `names`, in KiB (0 for a process gone).
fn smaps_rollup(pid: u32, names: &[&str]) -> Vec<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    names.iter().map(|n| field(n)).collect()
}

/// Prints the summed PSS (its anonymous and file-backed parts) and RSS of `pids` (`what`), from
/// their `smaps_rollup`, and per process.
fn print_memory(what: &str, pids: &[u32]) {
    const FIELDS: [&str; 4] = ["Pss", "Pss_Anon", "Pss_File", "Rss"];
    let mut sums = [0u64; 4];
    for &pid in pids {
        for (sum, v) in sums.iter_mut().zip(smaps_rollup(pid, &FIELDS)) {
            *sum += v;
        }
    }
    let n = pids.len().max(1) as u64;
    let [pss, anon, file, rss] = sums;
    eprintln!(
        "{what}: {} processes, PSS {pss} KiB ({} KiB each: {} anonymous, {} file), \
         RSS {rss} KiB ({} KiB each)",
        pids.len(),
        pss / n,
        anon / n,
        file / n,
        rss / n
    );
}

/// `GET /` through `port` from inside the namespace, answered by the container (one try).
fn get_hello(ns: &Netns, port: u16) {
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let (_, answer) = ns.run(|| exchange(target, b"GET / HTTP/1.0\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.") && answer.ends_with("hello\n"), "{port}: {answer:?}");
}

/// `GET /` through every published port, once each.
fn every_port_answers(ns: &Netns) {
    for port in FIRST..FIRST + PORTS {
        get_hello(ns, port);
    }
}

#[test]
fn two_hundred_ports_share_one_forwarder_that_survives_its_own_death() {
    if !have_dockerd() {
        return;
    }
    let ns = Netns::new();
    let socket = ns.dir.join("forwarder.sock");
    let mut forwarder = Forwarder::start(&ns, &socket, 1);
    let env = [("CPROXY_FORWARDER", socket.as_os_str()), ("CPROXY_SETTINGS", "/dev/null".as_ref())];
    let d = Dockerd::start(&ns, false, &env);
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);

    // One `-p` per host port, all to the server's 8080 (a host range to one container port,
    // `-p 127.0.0.1:20000-20199:8080`, would publish one port picked from the range).
    let specs: Vec<String> =
        (FIRST..FIRST + PORTS).map(|p| format!("127.0.0.1:{p}:8080")).collect();
    let mut args = vec!["run", "-d", "--name", "web"];
    for spec in &specs {
        args.extend(["-p", spec]);
    }
    let web = web_command();
    args.extend(["bb", "sh", "-c", &web]);
    let started = Instant::now();
    d.ok(&args);
    eprintln!("docker run -d with {PORTS} published ports: {:?}", started.elapsed());

    // Each proxy wrote `0\n` for dockerd once the forwarder had its port: all are there.
    let procs = proxies(d.pid());
    assert_eq!(procs.len(), PORTS as usize, "one proxy per port: {procs:?}");
    let all = published();
    assert_eq!(stats(&socket).keys().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(scraped_hosts(&ns), all, "one scrape shows every port");
    // Each one drops its runtime just after its `0\n`: it waits on one thread.
    let one_thread = || procs.iter().all(|&p| procfs::threads(p) == Some(1)).then_some(());
    eventually(10, one_thread);
    // ... as `cproxy-lease`, the small program a handed-over port waits in.
    let waiting = || procs.iter().all(|&p| program(p) == "cproxy-lease").then_some(());
    eventually(10, waiting);
    print_memory("proxies, port handed to the forwarder", &procs);
    print_memory("the forwarder, serving them", &[forwarder.pid()]);

    // The container's server may still be starting: the first port is tried until it answers.
    let first = SocketAddr::from(([127, 0, 0, 1], FIRST));
    eventually(20, || {
        let got = ns.run(|| try_exchange(first, b"GET / HTTP/1.0\r\n\r\n"));
        got.ok().filter(|(_, answer)| answer.ends_with("hello\n")).map(drop)
    });
    every_port_answers(&ns);
    let counts = stats(&socket);
    assert!(counts.values().all(|&n| n >= 1), "the forwarder served every port: {counts:?}");

    // A transfer through the forwarder, its client reading slowly (not at all, for now).
    let target = SocketAddr::from(([127, 0, 0, 1], TRANSFER_PORT));
    let mut transfer = ns.run(|| TcpStream::connect(target).expect("connect for the transfer"));
    transfer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    transfer.write_all(b"GET /big HTTP/1.0\r\n\r\n").unwrap();
    let mut head = vec![0u8; 256 << 10];
    transfer.read_exact(&mut head).expect("the transfer's first 256 KiB");
    let host = target.to_string();
    assert_eq!(stats(&socket)[&host], counts[&host] + 1, "the forwarder holds the transfer");

    forwarder.kill();
    // The transfer the forwarder held ends with it (what the sockets buffered arrives first);
    // it does not hang.
    let mut rest = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let end = loop {
        match transfer.read(&mut buf) {
            Ok(0) => break "end of stream".to_string(),
            Ok(n) => rest += n,
            Err(e) => {
                let hung = matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                assert!(!hung, "the transfer hangs after the forwarder's death: {e}");
                break e.to_string();
            }
        }
    };
    eprintln!(
        "transfer of {BIG_MIB} MiB: {} KiB received when the forwarder was killed ({end})",
        (head.len() + rest) >> 10
    );
    // No port is lost: every one answers a new connection, forwarded by its own process.
    every_port_answers(&ns);
    assert!(stats(&socket).is_empty(), "nothing answers on the dead forwarder's socket");
    assert_eq!(proxies(d.pid()), procs, "the proxies live on");
    print_memory("proxies, forwarding by themselves", &procs);

    // Back on the same path: every process hands its port over again.
    let restarted = Instant::now();
    forwarder = Forwarder::start(&ns, &socket, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats(&socket).len() < all.len() {
        assert!(Instant::now() < deadline, "not all ports taken back: {:?}", stats(&socket).len());
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the restarted forwarder had all {PORTS} ports after {:?}", restarted.elapsed());
    assert_eq!(stats(&socket).keys().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(scraped_hosts(&ns), all, "one scrape shows every port again");
    // New connections are the forwarder's once each process has stopped its own accept loop
    // (just after it handed the socket over): each port is tried until the forwarder counts one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = stats(&socket);
        let own: Vec<u16> = counts
            .iter()
            .filter(|&(_, &n)| n == 0)
            .map(|(h, _)| h.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        if own.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "ports the forwarder does not serve: {own:?}");
        for port in own {
            get_hello(&ns, port);
        }
    }
    every_port_answers(&ns);
    assert_eq!(proxies(d.pid()), procs, "the same proxies, still one per port");
    eventually(10, one_thread);
    print_memory("proxies, port handed to the restarted forwarder", &procs);
    print_memory("the restarted forwarder", &[forwarder.pid()]);

    d.ok(&["rm", "-f", "web"]);
    assert_eq!(proxies(d.pid()), Vec::<u32>::new(), "no proxy left after docker rm -f");
    assert_eq!(stats(&socket), BTreeMap::new(), "no binding left in the forwarder");
    assert!(scraped_hosts(&ns).is_empty());
}
