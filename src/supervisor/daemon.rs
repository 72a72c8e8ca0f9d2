//! The `cproxy daemon` process: root check, descriptors, the API socket (directory 0700, socket
//! 0660), the runtime, the engine over its records, the API server, and signals.
//!
//! Descriptors: the soft `RLIMIT_NOFILE` is raised to the hard limit, as `cproxy forward` (and
//! Go, so dockerd) does, and shared out (`Descriptors`): a quarter at most for the API's
//! connections, a quarter for the process itself (containers' pipes and log files, netlink,
//! the embedded DNS, the runtime), the rest for the published ports, through the forwarder's
//! budget ([`Proxy::limit_descriptors`]: a reserve per binding, the rest shared, a connection
//! with none left reset at once and counted as refused). One port's clients cannot take
//! another port's descriptors or the API's.
//!
//! Signals, as dockerd's: SIGTERM and SIGINT stop every container, then the daemon. SIGHUP
//! (dockerd's configuration reload) is logged and ignored: the daemon has no configuration
//! file, and its flags (`--dns`, the nameservers of `/etc/resolv.conf`) are read once at
//! start; a closing terminal or a log rotation never stops it or a container. SIGUSR1 (dockerd's
//! stack dump) writes the daemon's state to stderr and goes on. SIGQUIT writes that state too
//! and exits at once with status 2, without the orderly stop, as dockerd (Go's runtime) does;
//! the containers, the daemon's children, are killed with it (`PR_SET_PDEATHSIG`) and the
//! socket file is left for the next daemon, which cleans up as after any crash. The other
//! signals Go catches and ignores (SIGUSR2, SIGALRM, the real-time ones, …) are ignored too;
//! SIGSTKFLT, on which Go dumps and exits, is a SIGQUIT.

use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::ports::PortAllocator;
use crate::proxy::{Config, Proxy};
use crate::supervisor::http::server::Limits;
use crate::supervisor::{engine, http};

/// `cproxy daemon`'s settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The API socket.
    pub socket: PathBuf,
    /// Records, hosts files and logs.
    pub data_root: PathBuf,
    /// The bridge's address and prefix (`--bip`).
    pub bip: Option<(Ipv4Addr, u8)>,
    /// Host ports for `-P` and empty host ports.
    pub port_range: Option<crate::spec::PortRange>,
    /// Where to serve Prometheus metrics (`--metrics-addr`), if anywhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `--dns`: where the embedded DNS forwards (empty: the daemon's `/etc/resolv.conf`).
    pub dns: Vec<std::net::IpAddr>,
    /// `--insecure-registry`: the registries pulled from over plain HTTP (besides loopback).
    pub registries: crate::supervisor::image::pull::Registries,
    /// The API server's limits; `max_connections` is further bounded by the descriptor limit.
    pub api: Limits,
    /// `--cgroup-parent`: where containers' cgroups go (`/docker`).
    pub cgroup_parent: String,
    /// `--log-driver` and `--log-opt`s, checked: the log driver of containers that name none.
    pub log_config: crate::supervisor::api::types::LogConfig,
}

/// Runs the daemon until SIGTERM/SIGINT, then stops every container and removes what it made.
pub fn run_daemon(cfg: DaemonConfig) -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "cproxy daemon needs to be started with root privileges: it creates network \
             namespaces, a bridge and veth pairs (CAP_NET_ADMIN) and mounts inside containers \
             (CAP_SYS_ADMIN). Run it as root, e.g. with sudo."
        );
        return ExitCode::from(1);
    }
    // What started the daemon may have left it descriptors (a journal's stream, a terminal,
    // a pipe): the daemon keeps them, but nothing it starts (shims, containers' inits, execs)
    // inherits them. Its own are close-on-exec already.
    crate::sys::cloexec_from(3);
    let limit = raise_fd_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cproxy daemon: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(cfg, limit)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cproxy daemon: {e}");
            ExitCode::from(1)
        }
    }
}

/// Raises the soft descriptor limit to the hard one (systemd gives services 1024 soft and
/// 524288 hard) and returns the limit the daemon has.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// How the daemon's descriptor limit is shared out.
#[derive(Debug, PartialEq, Eq)]
struct Descriptors {
    /// API connections open at once.
    api_connections: usize,
    /// What the published ports' budget is made of ([`Proxy::limit_descriptors`]).
    bindings: u64,
}

impl Descriptors {
    /// At most a quarter of `limit` for the API's connections (and no more than `max_api`), a
    /// quarter for the process itself, the rest for the bindings.
    fn plan(limit: u64, max_api: usize) -> Descriptors {
        let api = (max_api as u64).min(limit / 4).max(1);
        let process = limit / 4;
        Descriptors {
            api_connections: usize::try_from(api).unwrap_or(usize::MAX),
            bindings: limit.saturating_sub(api + process),
        }
    }
}

/// The API socket at `path`, and the device and inode of its file (so that only that file is
/// removed at exit). A stale socket is replaced; anything else there is refused in
/// `forward --control`'s words.
fn bind_socket(path: &Path) -> Result<(std::os::unix::net::UnixListener, (u64, u64)), String> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    use crate::forward::{SocketPathError, clear_socket_path};
    match clear_socket_path(path, "API socket") {
        Ok(()) => {}
        Err(SocketPathError::InUse) => {
            return Err(format!(
                "a daemon is already listening on unix://{}; stop it first",
                path.display()
            ));
        }
        Err(SocketPathError::Refused(e)) => return Err(e),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on unix://{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot listen on unix://{}: {e}", path.display()))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok((listener, (meta.dev(), meta.ino())))
}

async fn serve(cfg: DaemonConfig, limit: u64) -> Result<(), String> {
    let store = engine::store::Store::open(&cfg.data_root)
        .map_err(|e| format!("cannot use data root {}: {e}", cfg.data_root.display()))?;
    // Before the socket: a second daemon must neither take the first one's socket nor touch
    // its containers.
    let pid_file = lock_data_root(&cfg.data_root)?;
    let (listener, socket_file) = bind_socket(&cfg.socket)?;
    let descriptors = Descriptors::plan(limit, cfg.api.max_connections);
    let proxy = Proxy::new(Config { grace: Duration::from_secs(1), ..Config::default() });
    proxy.limit_descriptors(descriptors.bindings);
    // `run --source-ip-transparent`: what a killed daemon left of the reply routing goes
    // first; the routing is made with the first transparent binding, gone with the last.
    let routing = crate::transparent::HostRouting::new();
    routing.sweep();
    proxy.route_replies_with(Arc::new(routing));
    if let Some(addr) = cfg.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        let registry = Arc::new(crate::metrics::registry(&proxy));
        tracing::info!(%addr, "serving metrics at /metrics");
        tokio::spawn(crate::metrics::serve(listener, registry));
    }
    let allocator = match cfg.port_range {
        Some(r) => PortAllocator::new(r),
        None => PortAllocator::from_kernel(),
    };
    let upstreams = engine::dns_server::upstreams(&cfg.dns, Path::new("/etc/resolv.conf"));
    let daemon = engine::Daemon::new(
        store,
        proxy.clone(),
        allocator,
        cfg.bip,
        upstreams,
        cfg.registries.clone(),
    )
    .await
    .map_err(|e| format!("cannot set up networking: {e}"))?;
    let daemon = Arc::new(
        daemon.with_cgroup_parent(&cfg.cgroup_parent).with_log_config(cfg.log_config.clone()),
    );
    daemon.answer_names();
    daemon.restore().await;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = http::router(daemon.clone());
    let mut signals = Signals::install().map_err(|e| e.to_string())?;
    let limits = Limits { max_connections: descriptors.api_connections, ..cfg.api };
    let stop_api = tokio_util::sync::CancellationToken::new();
    tokio::spawn(http::server::serve(listener, app, limits, stop_api.clone()));
    tracing::info!(
        socket = %cfg.socket.display(),
        nofile = limit,
        api_connections = limits.max_connections,
        bindings_descriptors = descriptors.bindings,
        "API listening"
    );
    println!("cproxy daemon listening on unix://{}", cfg.socket.display());
    loop {
        match signals.next().await {
            Signal::Stop(name) => {
                tracing::info!(signal = name, "stopping every container");
                break;
            }
            Signal::Hangup => tracing::info!(
                "SIGHUP: nothing to reload (the daemon has no configuration file; its flags and \
                 /etc/resolv.conf are read at start); ignored"
            ),
            Signal::Dump => dump_state(&daemon, &proxy, limit),
            Signal::Quit => {
                dump_state(&daemon, &proxy, limit);
                eprintln!("cproxy daemon: SIGQUIT: exiting without stopping the containers");
                std::process::exit(2);
            }
        }
    }
    stop_api.cancel();
    daemon.shutdown(Duration::from_secs(10)).await;
    let ours =
        std::fs::symlink_metadata(&cfg.socket).is_ok_and(|m| (m.dev(), m.ino()) == socket_file);
    if ours {
        let _ = std::fs::remove_file(&cfg.socket);
    }
    // Removed while still held, as dockerd removes its pid file.
    let _ = std::fs::remove_file(cfg.data_root.join(PID_FILE));
    drop(pid_file);
    Ok(())
}

/// The daemon's pid file in its data root, locked (`flock`) for as long as it runs.
const PID_FILE: &str = "cproxy.pid";

/// Takes the data root for this daemon: an exclusive lock on its pid file, which then says
/// this daemon's PID. Refused while another daemon holds it, also one still stopping its
/// containers after a SIGTERM (two daemons on one data root would each restore and save the
/// same containers). The lock goes with the process, so a killed daemon leaves none behind.
fn lock_data_root(root: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    use std::io::{Read, Write};
    let path = root.join(PID_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let flock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock);
    let mut file = match flock {
        Ok(locked) => locked,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(format!(
                "pid file found, ensure cproxy daemon is not running or delete {} (the data \
                 root {} is in use by PID {})",
                path.display(),
                root.display(),
                pid.trim()
            ));
        }
        Err((_, e)) => return Err(format!("cannot lock {}: {e}", path.display())),
    };
    // Opened at offset 0 and not appending: emptied, then written from the start.
    file.set_len(0).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    write!(file, "{}", std::process::id())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(file)
}

/// What a signal asks of the daemon.
enum Signal {
    /// SIGTERM, SIGINT: stop every container, then exit 0.
    Stop(&'static str),
    /// SIGHUP: reload (nothing to reload).
    Hangup,
    /// SIGUSR1: write the state to stderr.
    Dump,
    /// SIGQUIT (and SIGSTKFLT): write the state to stderr and exit 2 at once.
    Quit,
}

/// The handlers of the signals the daemon answers: from their installation on, none of them
/// ends the process by itself.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    /// Go's runtime ends with a stack dump on it, as on SIGQUIT.
    stkflt: tokio::signal::unix::Signal,
}

/// The terminating signals ([`crate::signals::terminating`]) the daemon handles itself; every
/// other one dockerd (Go's runtime) catches and ignores, and so does the daemon.
const HANDLED: [libc::c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1, libc::SIGQUIT, libc::SIGSTKFLT];

impl Signals {
    /// Installs the handlers; the terminating signals not [`HANDLED`] are logged and
    /// otherwise ignored.
    fn install() -> std::io::Result<Signals> {
        let ignored = crate::signals::terminating().into_iter().filter(|s| !HANDLED.contains(s));
        for sig in ignored {
            let mut stream = signal(SignalKind::from_raw(sig))?;
            let name = crate::signals::name(sig);
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    tracing::info!(signal = %name, "signal ignored");
                }
            });
        }
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            quit: signal(SignalKind::quit())?,
            stkflt: signal(SignalKind::from_raw(libc::SIGSTKFLT))?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop("SIGTERM"),
            _ = self.int.recv() => Signal::Stop("SIGINT"),
            _ = self.hup.recv() => Signal::Hangup,
            _ = self.usr1.recv() => Signal::Dump,
            _ = self.quit.recv() => Signal::Quit,
            _ = self.stkflt.recv() => Signal::Quit,
        }
    }
}

/// Writes what the daemon holds to stderr, whatever the log level (as Go writes its goroutine
/// dump): descriptors and tasks, every container as `ps --all` lists it, every published port
/// with its counters.
fn dump_state(daemon: &engine::Daemon, proxy: &Proxy, limit: u64) {
    use std::fmt::Write;
    let mut out = String::from("=== BEGIN cproxy daemon state dump ===\n");
    let fds = std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0);
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let _ = writeln!(out, "descriptors: {fds} open of {limit}; tasks: {tasks}");
    let everything = crate::supervisor::rules::filters::ListOptions {
        all: true,
        limit: 0,
        filters: Default::default(),
        size: false,
    };
    match daemon.list(&everything) {
        Ok(containers) => {
            let _ = writeln!(out, "containers: {}", containers.len());
            for c in containers {
                let _ =
                    writeln!(out, "container {}", serde_json::to_string(&c).unwrap_or_default());
            }
        }
        Err(e) => {
            let _ = writeln!(out, "containers: cannot list: {}", e.message);
        }
    }
    let bindings = proxy.all_stats();
    let _ = writeln!(out, "published ports: {}", bindings.len());
    for (info, stats) in bindings {
        let b = info.binding;
        let _ = write!(out, "port {} {} -> {}", b.proto, info.local, b.backend);
        for (name, value) in stats.snapshot().fields() {
            let _ = write!(out, " {name}={value}");
        }
        out.push('\n');
    }
    out.push_str("=== END cproxy daemon state dump ===");
    eprintln!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_shared_out_by_quarters_with_the_api_capped() {
        let plan = Descriptors::plan(1024, 512);
        assert_eq!(plan, Descriptors { api_connections: 256, bindings: 512 });
        let plan = Descriptors::plan(1 << 20, 512);
        assert_eq!(
            plan,
            Descriptors { api_connections: 512, bindings: (1 << 20) - 512 - (1 << 18) }
        );
        assert_eq!(Descriptors::plan(3, 512).api_connections, 1);
    }
}
