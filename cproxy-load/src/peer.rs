//! The peers a benchmark compares: the direct path (no proxy, the physical limit), cproxy with
//! splice and with its copy fallback, and the proxies people would otherwise use, socat and
//! HAProxy, and docker-proxy itself when a binary is at hand. Each forwarding peer runs as one process per protocol on free loopback ports, as
//! docker-proxy does, and forwards to the shared [`Backends`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::ValueEnum;
use testkit::peers;
use testkit::procfs::Transport;
use testkit::spawn::docker_proxy_args;

use crate::backend::Backends;
use crate::process::{Process, Readiness, TempDir};

/// Which peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum PeerKind {
    /// No proxy: the loads go straight to the backends.
    Direct,
    /// cproxy, splice(2) relay.
    Cproxy,
    /// cproxy with -no-splice: the copy fallback.
    CproxyCopy,
    /// socat, one forked child per connection (per datagram for UDP).
    Socat,
    /// HAProxy in TCP mode with splice (it does not forward UDP).
    Haproxy,
    /// Docker's own docker-proxy, the program cproxy replaces.
    DockerProxy,
    /// `cproxy forward` with one thread and `--metrics-addr`, scraped every 100 ms throughout
    /// (not in the default set: `--peers cproxy,cproxy-metrics` puts metrics on against off
    /// in one run).
    CproxyMetrics,
    /// Another cproxy build (`--baseline PATH`, e.g. main's), run as `cproxy` is: before and
    /// after a change in one run.
    CproxyBaseline,
}

impl PeerKind {
    /// Every peer, in table order.
    pub const ALL: [PeerKind; 6] = [
        PeerKind::Direct,
        PeerKind::Cproxy,
        PeerKind::CproxyCopy,
        PeerKind::DockerProxy,
        PeerKind::Socat,
        PeerKind::Haproxy,
    ];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Direct => "direct",
            PeerKind::Cproxy => "cproxy",
            PeerKind::CproxyCopy => "cproxy-copy",
            PeerKind::Socat => "socat",
            PeerKind::Haproxy => "haproxy-splice",
            PeerKind::DockerProxy => "docker-proxy",
            PeerKind::CproxyMetrics => "cproxy-metrics",
            PeerKind::CproxyBaseline => "cproxy-baseline",
        }
    }

    /// True for the peers whose figures must all be measured for a run to pass.
    pub fn required(self) -> bool {
        matches!(self, PeerKind::Direct | PeerKind::Cproxy | PeerKind::CproxyCopy)
    }
}

/// How to run cproxy.
#[derive(Clone, Debug)]
pub enum CproxyBin {
    /// This binary.
    Path(PathBuf),
    /// cproxy-load itself, which links the same forwarder and serves it when its first argument
    /// is [`crate::BUILTIN_CPROXY`] (used when no cproxy binary was built next to it).
    BuiltIn(PathBuf),
}

impl CproxyBin {
    /// A command that runs cproxy with docker-proxy's flags to follow.
    fn command(&self) -> Command {
        match self {
            CproxyBin::Path(p) => Command::new(p),
            CproxyBin::BuiltIn(me) => {
                let mut c = Command::new(me);
                c.arg(crate::BUILTIN_CPROXY);
                c
            }
        }
    }

    /// What it is, for the report.
    pub fn describe(&self) -> String {
        match self {
            CproxyBin::Path(p) => p.display().to_string(),
            CproxyBin::BuiltIn(me) => {
                format!("{} (built-in forwarder: no cproxy binary next to it)", me.display())
            }
        }
    }
}

/// What starting a peer needs.
pub struct Setup<'a> {
    /// Where peers forward to.
    pub backends: &'a Backends,
    /// How to run cproxy.
    pub cproxy: &'a CproxyBin,
    /// docker-proxy's binary, if one was given or found.
    pub docker_proxy: Option<&'a Path>,
    /// Another cproxy binary to measure beside the first, if one was given.
    pub baseline: Option<&'a Path>,
    /// Configs and logs.
    pub dir: &'a TempDir,
}

/// A peer that is up.
pub struct Peer {
    /// Which.
    pub kind: PeerKind,
    /// Where the TCP loads connect.
    pub tcp: SocketAddr,
    /// Where the UDP load sends, or why there is none.
    pub udp: Result<SocketAddr, &'static str>,
    /// The process forwarding TCP, whose memory and CPU are measured (`None` for direct).
    pub tcp_pid: Option<u32>,
    /// The process forwarding UDP, whose CPU the UDP bulk load measures (`None` for direct
    /// and a peer without UDP).
    pub udp_pid: Option<u32>,
    /// Its version, for the report.
    pub version: Option<String>,
    /// Its processes, stopped when the peer drops.
    _processes: Vec<Process>,
    /// A metrics scraper, stopped when the peer drops.
    _scraper: Option<Scraper>,
}

/// A peer that is not measured: skipped (not installed) or failed to start.
#[derive(Debug)]
pub enum NotStarted {
    /// Not installed here; the reason says what is missing.
    Skipped(String),
    /// Installed but could not start; the reason says why.
    Failed(String),
}

/// Starts `kind`, forwarding to the backends.
pub fn start(kind: PeerKind, setup: &Setup) -> Result<Peer, NotStarted> {
    let b = setup.backends;
    match kind {
        PeerKind::Direct => Ok(Peer {
            kind,
            tcp: b.tcp,
            udp: Ok(b.udp),
            tcp_pid: None,
            udp_pid: None,
            version: None,
            _scraper: None,
            _processes: Vec::new(),
        }),
        PeerKind::Cproxy => start_docker_proxy_like(kind, &|| setup.cproxy.command(), &[], setup),
        PeerKind::CproxyCopy => {
            start_docker_proxy_like(kind, &|| setup.cproxy.command(), &["-no-splice"], setup)
        }
        PeerKind::DockerProxy => {
            let path = setup.docker_proxy.ok_or_else(|| {
                NotStarted::Skipped(
                    "docker-proxy is not installed (--docker-proxy PATH names one)".to_string(),
                )
            })?;
            start_docker_proxy_like(kind, &|| Command::new(path), &[], setup)
        }
        PeerKind::CproxyMetrics => start_cproxy_metrics(setup),
        PeerKind::CproxyBaseline => {
            let path = setup.baseline.ok_or_else(|| {
                NotStarted::Skipped("no baseline cproxy (--baseline PATH names one)".to_string())
            })?;
            start_docker_proxy_like(kind, &|| Command::new(path), &[], setup)
        }
        PeerKind::Socat => start_socat(setup),
        PeerKind::Haproxy => start_haproxy(setup),
    }
}

/// cproxy or docker-proxy (`program` makes the command) as dockerd runs it, one process per
/// protocol, with `extra` flags, ready when it writes "0" on fd 3.
fn start_docker_proxy_like(
    kind: PeerKind,
    program: &dyn Fn() -> Command,
    extra: &[&str],
    setup: &Setup,
) -> Result<Peer, NotStarted> {
    let (tcp_port, udp_port) = free_ports().map_err(NotStarted::Failed)?;
    let run = |proto: &str, port: u16, backend: SocketAddr| {
        let mut cmd = program();
        cmd.args(docker_proxy_args(proto, Some(port), backend)).args(extra);
        let what = format!("{} {proto}", kind.name());
        let log = setup.dir.path().join(format!("{}-{proto}.log", kind.name()));
        Process::start(&what, cmd, &log, Readiness::StatusPipe).map_err(NotStarted::Failed)
    };
    let tcp = run("tcp", tcp_port, setup.backends.tcp)?;
    let udp = run("udp", udp_port, setup.backends.udp)?;
    // docker-proxy has no version flag before Docker 25; it then prints its usage, no version.
    let mut version = program();
    version.arg("-v");
    Ok(Peer {
        kind,
        tcp: loopback(tcp_port),
        udp: Ok(loopback(udp_port)),
        tcp_pid: Some(tcp.pid()),
        udp_pid: Some(udp.pid()),
        version: output_line(version).filter(|v| !v.starts_with("Usage")),
        _processes: vec![tcp, udp],
        _scraper: None,
    })
}

/// `cproxy forward` serving both protocols on one thread (as one docker-proxy-style cproxy
/// has), with its metrics endpoint scraped every 100 ms while it runs.
fn start_cproxy_metrics(setup: &Setup) -> Result<Peer, NotStarted> {
    let CproxyBin::Path(program) = setup.cproxy else {
        return Err(NotStarted::Skipped("the built-in forwarder has no metrics endpoint".into()));
    };
    let (tcp_port, udp_port) = free_ports().map_err(NotStarted::Failed)?;
    let metrics_port = peers::free_tcp_port().map_err(|e| NotStarted::Failed(e.to_string()))?;
    let (b_tcp, b_udp) = (setup.backends.tcp, setup.backends.udp);
    if b_tcp.ip() != b_udp.ip() {
        return Err(NotStarted::Failed("the backends are on two addresses".into()));
    }
    let mut cmd = Command::new(program);
    cmd.args(["forward", "--threads", "1", "--to", &b_tcp.ip().to_string()])
        .args(["-p", &format!("127.0.0.1:{tcp_port}:{}", b_tcp.port())])
        .args(["-p", &format!("127.0.0.1:{udp_port}:{}/udp", b_udp.port())])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")]);
    let log = setup.dir.path().join("cproxy-metrics.log");
    let process = Process::start("cproxy-metrics", cmd, &log, Readiness::StatusPipe)
        .map_err(NotStarted::Failed)?;
    Ok(Peer {
        kind: PeerKind::CproxyMetrics,
        tcp: loopback(tcp_port),
        udp: Ok(loopback(udp_port)),
        tcp_pid: Some(process.pid()),
        udp_pid: Some(process.pid()),
        version: output_line({
            let mut v = Command::new(program);
            v.arg("-v");
            v
        }),
        _processes: vec![process],
        _scraper: Some(Scraper::start(loopback(metrics_port))),
    })
}

/// Scrapes `GET /metrics` every 100 ms until dropped, as a Prometheus would (more often).
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    fn start(addr: SocketAddr) -> Scraper {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Ok(mut c) = std::net::TcpStream::connect(addr) {
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                    let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n");
                    let _ = c.read_to_end(&mut Vec::new());
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        Scraper { stop, thread: Some(thread) }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// socat, one process per protocol.
fn start_socat(setup: &Setup) -> Result<Peer, NotStarted> {
    let socat = installed("socat")?;
    let (tcp_port, udp_port) = free_ports().map_err(NotStarted::Failed)?;
    let run = |proto: &str, args: [String; 2], ready: Readiness| {
        let log = setup.dir.path().join(format!("socat-{proto}.log"));
        Process::start(&format!("socat {proto}"), command(&socat, &args), &log, ready)
            .map_err(NotStarted::Failed)
    };
    let tcp = run(
        "tcp",
        socat_tcp_args(tcp_port, setup.backends.tcp),
        Readiness::Port(Transport::TcpListen, tcp_port),
    )?;
    let udp = run(
        "udp",
        socat_udp_args(udp_port, setup.backends.udp),
        Readiness::Port(Transport::Udp, udp_port),
    )?;
    Ok(Peer {
        kind: PeerKind::Socat,
        tcp: loopback(tcp_port),
        udp: Ok(loopback(udp_port)),
        tcp_pid: Some(tcp.pid()),
        udp_pid: Some(udp.pid()),
        version: version_line(&socat, &["-V"], "socat version"),
        _processes: vec![tcp, udp],
        _scraper: None,
    })
}

/// HAProxy, TCP only.
fn start_haproxy(setup: &Setup) -> Result<Peer, NotStarted> {
    let haproxy = installed("haproxy")?;
    let (tcp_port, _) = free_ports().map_err(NotStarted::Failed)?;
    let cfg = setup.dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_config(tcp_port, setup.backends.tcp, haproxy_maxconn()))
        .map_err(|e| NotStarted::Failed(format!("cannot write {}: {e}", cfg.display())))?;
    let tcp = Process::start(
        "haproxy",
        command(&haproxy, &["-f".to_string(), cfg.display().to_string(), "-db".to_string()]),
        &setup.dir.path().join("haproxy.log"),
        Readiness::Port(Transport::TcpListen, tcp_port),
    )
    .map_err(NotStarted::Failed)?;
    Ok(Peer {
        kind: PeerKind::Haproxy,
        tcp: loopback(tcp_port),
        udp: Err("HAProxy does not forward UDP"),
        tcp_pid: Some(tcp.pid()),
        udp_pid: None,
        version: version_line(&haproxy, &["-v"], "HAProxy version"),
        _processes: vec![tcp],
        _scraper: None,
    })
}

/// socat forwarding TCP from 127.0.0.1:`port` to `backend`, a child per connection.
fn socat_tcp_args(port: u16, backend: SocketAddr) -> [String; 2] {
    [format!("TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"), format!("TCP4:{backend}")]
}

/// socat forwarding UDP from 127.0.0.1:`port` to `backend`, a child per datagram.
fn socat_udp_args(port: u16, backend: SocketAddr) -> [String; 2] {
    [format!("UDP4-RECVFROM:{port},bind=127.0.0.1,fork"), format!("UDP4:{backend}")]
}

/// HAProxy's connection limit: ample for the loads (which hold a few dozen connections at a
/// time), and within the descriptor limit it inherits (two per connection and some), past
/// which it refuses to start.
fn haproxy_maxconn() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(_, hard)| hard);
    (hard.saturating_sub(200) / 2).clamp(64, 4000)
}

/// HAProxy in TCP mode, splicing both ways.
fn haproxy_config(port: u16, backend: SocketAddr, maxconn: u64) -> String {
    format!(
        "\
global
    maxconn {maxconn}

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option splice-request
    option splice-response

frontend load
    bind 127.0.0.1:{port}
    default_backend backends

backend backends
    server backend {backend}
"
    )
}

/// The program's path, or why the peer is skipped.
fn installed(name: &str) -> Result<PathBuf, NotStarted> {
    testkit::spawn::find_program(name)
        .ok_or_else(|| NotStarted::Skipped(format!("{name} is not installed")))
}

/// A command for `program` with `args`.
fn command(program: &Path, args: &[String]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// The first line `cmd` prints.
fn output_line(mut cmd: Command) -> Option<String> {
    let out = cmd.stdin(std::process::Stdio::null()).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
}

/// The line of `program args`'s output that starts with `prefix`, without the build date
/// that follows the version.
fn version_line(program: &Path, args: &[&str], prefix: &str) -> Option<String> {
    let out = Command::new(program).args(args).stdin(std::process::Stdio::null()).output().ok()?;
    let text = [out.stdout, out.stderr].concat();
    let line = String::from_utf8_lossy(&text).lines().find(|l| l.starts_with(prefix))?.to_string();
    let words: Vec<&str> = line.split_whitespace().take(3).collect();
    Some(words.join(" "))
}

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A free TCP port and a free UDP port on 127.0.0.1, found by binding port 0. The sockets are
/// closed before the peer binds them; on a machine busy enough to take the same port in that
/// moment, the peer fails to start and says so.
fn free_ports() -> Result<(u16, u16), String> {
    peers::free_tcp_port()
        .and_then(|tcp| Ok((tcp, peers::free_udp_port()?)))
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socat_listens_on_loopback_only_and_forks() {
        let backend = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            socat_tcp_args(4000, backend),
            ["TCP4-LISTEN:4000,bind=127.0.0.1,reuseaddr,fork", "TCP4:127.0.0.1:5000"]
        );
        assert_eq!(
            socat_udp_args(4000, backend),
            ["UDP4-RECVFROM:4000,bind=127.0.0.1,fork", "UDP4:127.0.0.1:5000"]
        );
    }

    #[test]
    fn haproxy_listens_on_loopback_in_tcp_mode_with_splice() {
        let cfg = haproxy_config(4000, "127.0.0.1:5000".parse().unwrap(), 100);
        for line in [
            "maxconn 100",
            "mode tcp",
            "option splice-request",
            "option splice-response",
            "bind 127.0.0.1:4000",
            "server backend 127.0.0.1:5000",
        ] {
            assert!(cfg.contains(line), "{line} missing from:\n{cfg}");
        }
    }

    #[test]
    fn a_missing_program_is_skipped_not_failed() {
        assert!(matches!(installed("no-such-proxy-here"), Err(NotStarted::Skipped(_))));
    }

    #[test]
    fn docker_proxy_without_a_binary_is_skipped_not_failed() {
        let b = Backends::start(1).unwrap();
        let dir = TempDir::new("cproxy-load").unwrap();
        let bin = CproxyBin::Path(PathBuf::from("/nonexistent"));
        let setup =
            Setup { backends: &b, cproxy: &bin, docker_proxy: None, baseline: None, dir: &dir };
        assert!(matches!(start(PeerKind::DockerProxy, &setup), Err(NotStarted::Skipped(_))));
    }

    #[test]
    fn the_direct_peer_is_the_backends_themselves() {
        let b = Backends::start(1).unwrap();
        let dir = TempDir::new("cproxy-load").unwrap();
        let bin = CproxyBin::Path(PathBuf::from("/nonexistent"));
        let setup =
            Setup { backends: &b, cproxy: &bin, docker_proxy: None, baseline: None, dir: &dir };
        let p = start(PeerKind::Direct, &setup).unwrap();
        assert_eq!((p.tcp, p.udp, p.tcp_pid), (b.tcp, Ok(b.udp), None));
    }
}
