//! Runs the forwarder as a process: builds the runtime, starts the bindings, reports readiness,
//! and stops by draining (idle connections close at once, busy ones get the grace period; a
//! second signal resets them) on any signal that would otherwise end the process
//! (`crate::signals`), or when the runtime that started it dies.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::process::ExitCode;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing_subscriber::filter::Targets;

use crate::cli::{DockerProxyArgs, Tuning};
use crate::compat::{self, StatusPipe};
use crate::error::AppError;
use crate::proxy::{Binding, BindingInfo, Proto, Proxy};
use crate::settings::{self, Settings, Target, Values};
use crate::{signals, sys};

/// docker-proxy mode: one binding described by docker-proxy's flags.
pub fn docker_proxy(args: DockerProxyArgs, status: StatusPipe) -> ExitCode {
    if args.version {
        println!("cproxy version {} (docker-proxy compatible)", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let resumed = args.resumed_from_lease.map(|pid| (pid > 0).then_some(pid));
    let listen_fd = if args.use_listen_fd || resumed.is_some() {
        match compat::take_listen_fd() {
            Ok(fd) => Some(fd),
            Err(e) => return AppError::Failed(e).report(status),
        }
    } else {
        None
    };
    let (tuning, forwarder) = match with_settings(&args) {
        Ok((tuning, level, forwarder)) => {
            init_logging(tuning.json_logs(), level.as_deref());
            (tuning, forwarder)
        }
        Err(e) => {
            init_logging(args.tuning.json_logs(), None);
            return e.report(status);
        }
    };
    let proxy_protocol = tuning.proxy_protocol;
    if let Some(path) = crate::handoff::forwarder_path(forwarder.as_deref(), resumed.is_some()) {
        let plan = match Plan::of(&args, proxy_protocol) {
            Ok(plan) => plan,
            Err(e) => return e.report(status),
        };
        let socket = match listen_fd {
            Some(fd) => fd,
            None => {
                let keepalive = tuning.config().tcp_keepalive;
                match plan.host.map(|host| crate::proxy::bind_socket(plan.proto, host, keepalive)) {
                    Some(Ok(fd)) => fd,
                    Some(Err(e)) => return AppError::from(e).report(status),
                    None => return AppError::Failed(plan.host_error.clone()).report(status),
                }
            }
        };
        let start = match resumed {
            Some(parent) => crate::handoff::Start::Resumed { parent },
            None => crate::handoff::Start::Fresh(status),
        };
        return crate::handoff::serve(&tuning, plan.proto, socket, plan.backend, &path, start);
    }
    let start = move |proxy: &Proxy| -> Result<Vec<BindingInfo>, AppError> {
        let plan = Plan::of(&args, proxy_protocol)?;
        let info = match listen_fd {
            Some(fd) => proxy.add_socket(plan.proto, fd, plan.backend),
            None => match plan.host {
                Some(host) => proxy.add(Binding { proto: plan.proto, host, backend: plan.backend }),
                None => return Err(AppError::Failed(plan.host_error)),
            },
        };
        Ok(vec![info?])
    };
    // One thread while idle (a hundred proxies on a big host would otherwise be thousands of
    // threads), as many as there are CPUs while connections overlap.
    run(&tuning, Threads::FollowLoad, status, start)
}

/// What docker-proxy's flags ask for, checked as docker-proxy checks them.
struct Plan {
    proto: Proto,
    backend: SocketAddr,
    /// Where to bind, unless `-host-port` is missing or out of range (`host_error` says so).
    host: Option<SocketAddr>,
    host_error: String,
}

impl Plan {
    fn of(
        args: &DockerProxyArgs,
        proxy_protocol: Option<crate::proxy::proxy_proto::Version>,
    ) -> Result<Plan, AppError> {
        let failed = |words: &str| AppError::Failed(words.to_string());
        if args.proto == "sctp" {
            return Err(AppError::Failed(sctp_error()));
        }
        let proto: Proto = args.proto.parse()?;
        if proto == Proto::Udp && proxy_protocol.is_some() {
            return Err(failed(
                "-proxy-protocol is for TCP: a UDP binding cannot carry the header",
            ));
        }
        // As Go's `net.ParseIP(..).To4()`: an IPv4-mapped address is the IPv4 address.
        let host_ip = args.host_ip.to_canonical();
        let container_ip = args.container_ip.to_canonical();
        let container_port =
            args.container_port.ok_or_else(|| failed("flag -container-port is required"))?;
        let container_port = u16::try_from(container_port).map_err(|_| {
            failed(&format!(
                "invalid value \"{container_port}\" for flag -container-port: not a port"
            ))
        })?;
        let backend = SocketAddr::new(container_ip, container_port);
        let (host, host_error) = match args.host_port {
            None => (None, "flag -host-port is required".to_string()),
            Some(port) => match u16::try_from(port) {
                Ok(p) => (Some(SocketAddr::new(host_ip, p)), String::new()),
                Err(_) => (None, invalid_port(proto, host_ip, port)),
            },
        };
        Ok(Plan { proto, backend, host, host_error })
    }
}

/// How many threads serve a proxy when `-threads` does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// One, and worker threads up to one per CPU while TCP connections overlap, which end
    /// once idle ([`Proxy::spread`]).
    FollowLoad,
    /// A worker per CPU, started at once.
    PerCpu,
}

/// The tuning of a docker-proxy mode process: the command line's, with what the settings file
/// ([`settings`]) says for its binding where no flag was given; and the file's `log_level`.
/// Read before logging starts, so logging is set up once, as the file says.
fn with_settings(
    args: &DockerProxyArgs,
) -> Result<(Tuning, Option<String>, Option<String>), AppError> {
    let mut tuning = args.tuning.clone();
    let file = Settings::load().map_err(AppError::Settings)?;
    let forwarder = file.forwarder.clone();
    // A protocol cproxy cannot serve selects nothing: starting the binding says why.
    let Some(proto) = Proto::from_name(&args.proto) else {
        return Ok((tuning, None, forwarder));
    };
    let values = file.resolve(&Target {
        proto,
        host_ip: args.host_ip,
        host_port: args.host_port,
        container_ip: args.container_ip,
        container_port: args.container_port,
    });
    if values == Values::default() {
        return Ok((tuning, None, forwarder));
    }
    let given = settings::given_flags(std::env::args_os().collect());
    values.apply(proto, &mut tuning, &|flag| given.contains(flag));
    Ok((tuning, values.log_level.map(|l| l.0), forwarder))
}

/// What docker-proxy reports for a host port outside 0-65535: Go's `flag` takes any int, and
/// the bind is what fails (`listen tcp4 127.0.0.1:-1: bind: invalid argument`).
fn invalid_port(proto: Proto, ip: IpAddr, port: i64) -> String {
    let family = if ip.is_ipv4() { 4 } else { 6 };
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("listen {proto}{family} {host}:{port}: bind: invalid argument")
}

/// docker-proxy passes on the kernel's answer to an SCTP socket (`protocol not supported` where
/// the kernel has no SCTP); where the kernel has it, cproxy still cannot forward it.
fn sctp_error() -> String {
    match socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::from(libc::IPPROTO_SCTP)),
    ) {
        Err(e) => crate::proxy::os_error_text(&e),
        Ok(_) => "sctp is not supported by cproxy".to_string(),
    }
}

/// Runs a proxy configured by `tuning` whose bindings `start` creates; reports on `status`,
/// then serves until stopped. `start` runs inside the runtime. The runtime has `-threads`
/// workers (one runs it on the calling thread, and so does [`Threads::FollowLoad`], which
/// starts more while busy), or as `default_threads` says.
///
/// With a status pipe, cproxy was started by a runtime, and it stops (as on SIGTERM) when the
/// runtime's process exits.
pub fn run<F>(tuning: &Tuning, default_threads: Threads, status: StatusPipe, start: F) -> ExitCode
where
    F: FnOnce(&Proxy) -> Result<Vec<BindingInfo>, AppError>,
{
    // The runtime already gone: nobody wants the port any more.
    let Some(parent) = Parent::of(&status) else { return ExitCode::SUCCESS };
    raise_fd_limit();
    // Blocked before the runtime starts a thread, so a signal sent right after "ready" is
    // never lost, and none reaches a thread that would die of it.
    let stop = match signals::SignalFd::block() {
        Ok(s) => s,
        Err(e) => return AppError::io("cannot handle signals", e).report(status),
    };
    let (runtime, spread) = match runtime(tuning, default_threads) {
        Ok(rt) => rt,
        Err(e) => return AppError::io("cannot start runtime", e).report(status),
    };
    runtime.block_on(async move {
        let proxy = Proxy::new(tuning.config());
        proxy.spread(spread);
        // Before any binding: what a killed cproxy left of transparent mode's routing goes
        // (if no other cproxy of this namespace holds it), and bindings that ask for it get it.
        let routing = crate::transparent::HostRouting::new();
        routing.sweep();
        proxy.route_replies_with(std::sync::Arc::new(routing));
        let registered = match stop.register() {
            Ok(fd) => fd,
            Err(e) => return AppError::io("cannot handle signals", e).report(status),
        };
        let bindings = match start(&proxy) {
            Ok(b) => b,
            Err(e) => return e.report(status),
        };
        for b in &bindings {
            tracing::info!(binding = %b.binding, local = %b.local, "forwarding");
        }
        status.ready();
        crate::sys::trim_heap();
        let parent_exited = async {
            match parent {
                Some(parent) => parent.exited().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            sig = stop.recv(&registered) => tracing::info!(signal = %signals::name(sig), "stop signal"),
            _ = parent_exited => tracing::info!("the runtime that started cproxy exited"),
        }
        tracing::info!(
            grace = ?proxy.config().grace,
            "stopping: no new connections; idle ones close now, busy ones get the grace period"
        );
        tokio::select! {
            _ = proxy.shutdown() => {}
            sig = stop.recv(&registered) => {
                tracing::info!(
                    signal = %signals::name(sig),
                    "second stop signal: resetting open connections"
                );
                proxy.kill();
                proxy.shutdown().await;
            }
        }
        ExitCode::SUCCESS
    })
}

/// The runtime `-threads` (else `default_threads`) asks for, and how many threads the proxy
/// may spread its connections over ([`Proxy::spread`]).
pub(crate) fn runtime(
    tuning: &Tuning,
    default_threads: Threads,
) -> std::io::Result<(tokio::runtime::Runtime, usize)> {
    // Threads the proxy may spread its connections over, beyond the runtime's own.
    let mut spread = 1;
    let mut builder = match (tuning.threads, default_threads) {
        (Some(1), _) => tokio::runtime::Builder::new_current_thread(),
        (Some(n), _) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.into());
            b
        }
        (None, Threads::FollowLoad) => {
            spread = std::thread::available_parallelism().map_or(1, usize::from);
            tokio::runtime::Builder::new_current_thread()
        }
        (None, Threads::PerCpu) => tokio::runtime::Builder::new_multi_thread(),
    };
    Ok((builder.enable_all().build()?, spread))
}

/// The process that started this one, followed until it exits.
///
/// Not `PR_SET_PDEATHSIG`: that fires when the *thread* that forked exits, so a runtime that
/// starts proxies from a pool thread would lose them while it lives on. A pidfd of the parent
/// process becomes readable only when the whole process has exited.
pub(crate) struct Parent {
    pid: libc::pid_t,
    /// `None` where the kernel has no `pidfd_open` (before 5.3): the parent is then polled.
    pidfd: Option<OwnedFd>,
}

/// How often the parent is checked where there is no pidfd to wait on.
const PARENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

impl Parent {
    /// Starts following the parent; `None` if it has already exited (this process has been
    /// handed to a reaper).
    pub(crate) fn follow() -> Option<Parent> {
        let pid = sys::parent_pid();
        let pidfd = sys::pidfd_open(pid).ok();
        // If the parent died before the pidfd was opened, the pid may even have been reused:
        // the parent is still ours only if getppid has not changed.
        (sys::parent_pid() == pid).then_some(Parent { pid, pidfd })
    }

    /// The parent to follow: `Some(None)` when no runtime started this process (no status
    /// pipe), `None` when the one that did has already exited.
    pub(crate) fn of(status: &StatusPipe) -> Option<Option<Parent>> {
        if status.is_present() { Parent::follow().map(Some) } else { Some(None) }
    }

    /// The parent's pid.
    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The pidfd that polls readable once the parent has exited, where the kernel has them.
    pub(crate) fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// True once the parent has exited (checked without waiting).
    pub(crate) fn is_gone(&self) -> bool {
        sys::parent_pid() != self.pid
    }

    /// Resolves when the parent process has exited.
    pub(crate) async fn exited(&self) {
        use std::os::fd::AsFd;
        // SAFETY: the AsyncFd borrows the pidfd, which stays open (and is not replaced) for as
        // long as `self` lives, longer than the registration.
        let registered = self
            .pidfd
            .as_ref()
            .map(|fd| unsafe { AsyncFd::register_with_interest(fd.as_fd(), Interest::READABLE) });
        if let Some(Ok(fd)) = registered {
            // A pidfd polls readable once its process has exited; an error is as final.
            let _ = fd.readable().await;
            return;
        }
        let mut tick = tokio::time::interval(PARENT_POLL);
        while sys::parent_pid() == self.pid {
            tick.tick().await;
        }
    }
}

/// Raises the soft descriptor limit to the hard one, as Go does at startup (docker-proxy has
/// it that way), so that thousands of bindings and connections fit.
pub(crate) fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Logs go to stderr, as text or (`json`) one JSON object per line; `CPROXY_LOG`, else
/// `RUST_LOG`, sets the filter (e.g. `debug`, `cproxy=trace,warn`); else `level` (the settings
/// file's `log_level`, already checked); else warnings.
pub fn init_logging(json: bool, level: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // libcgroups warns of every v1 controller the host does not mount, at each container's
    // start: only its errors are worth a line.
    let default = || {
        Targets::new()
            .with_default(tracing::Level::WARN)
            .with_target("libcgroups", tracing::Level::ERROR)
    };
    let (var, spec) = match (std::env::var("CPROXY_LOG"), std::env::var("RUST_LOG")) {
        (Ok(spec), _) => ("CPROXY_LOG", Some(spec)),
        (Err(_), Ok(spec)) => ("RUST_LOG", Some(spec)),
        _ => ("", None),
    };
    let filter = match spec {
        Some(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("cproxy: ignoring {var}={spec:?}: {e}");
            default()
        }),
        None => level.and_then(|l| l.parse::<Targets>().ok()).unwrap_or_else(default),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if json {
        tracing_subscriber::registry().with(fmt.json()).with(filter).init();
    } else {
        tracing_subscriber::registry().with(fmt).with(filter).init();
    }
}
