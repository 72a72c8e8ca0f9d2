//! Runs the forwarder as a process: builds the runtime, starts the bindings, reports readiness,
//! and stops on SIGINT/SIGTERM by draining (a second signal cuts), or when the runtime that
//! started it dies.

use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{DockerProxyArgs, Tuning};
use crate::compat::{self, StatusPipe};
use crate::proxy::{Binding, BindingInfo, Proto, Proxy, ProxyError};

/// Exit code for a forwarder that could not start (docker-proxy's).
const EXIT_FAILED: u8 = 1;

/// docker-proxy mode: one binding described by docker-proxy's flags.
pub fn docker_proxy(args: DockerProxyArgs, status: StatusPipe) -> ExitCode {
    if args.version {
        println!("cproxy version {} (docker-proxy compatible)", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let listen_fd = if args.use_listen_fd {
        match compat::take_listen_fd() {
            Ok(fd) => Some(fd),
            Err(e) => return fail(status, &e),
        }
    } else {
        None
    };
    if status.is_present() {
        die_with_parent();
    }
    let start = move |proxy: &Proxy| -> Result<Vec<BindingInfo>, String> {
        let proto: Proto = args.proto.parse().map_err(|e: ProxyError| e.to_string())?;
        let container_port = args.container_port.ok_or("flag -container-port is required")?;
        let backend = SocketAddr::new(args.container_ip, container_port);
        let info = match listen_fd {
            Some(fd) => proxy.add_socket(proto, fd, backend),
            None => {
                let host_port = args.host_port.ok_or("flag -host-port is required")?;
                let host = SocketAddr::new(args.host_ip, host_port);
                proxy.add(Binding { proto, host, backend })
            }
        };
        info.map(|i| vec![i]).map_err(|e| e.to_string())
    };
    run(&args.tuning, status, start)
}

/// Reports `error` to the runtime and stderr; the exit code docker-proxy uses for it.
fn fail(status: StatusPipe, error: &str) -> ExitCode {
    eprintln!("cproxy: {error}");
    status.fail(error);
    ExitCode::from(EXIT_FAILED)
}

/// Runs a proxy configured by `tuning` whose bindings `start` creates; reports on `status`,
/// then serves until stopped. `start` runs inside the runtime.
pub fn run<F>(tuning: &Tuning, status: StatusPipe, start: F) -> ExitCode
where
    F: FnOnce(&Proxy) -> Result<Vec<BindingInfo>, String>,
{
    raise_fd_limit();
    let mut builder = match tuning.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.into());
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(status, &format!("cannot start runtime: {e}")),
    };
    runtime.block_on(async move {
        let proxy = Proxy::new(tuning.config());
        // Signal handlers go in before readiness is reported, so a stop sent right after
        // "ready" is never lost.
        let (mut int, mut term) =
            match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(i), Ok(t)) => (i, t),
                (Err(e), _) | (_, Err(e)) => {
                    return fail(status, &format!("cannot handle signals: {e}"));
                }
            };
        let bindings = match start(&proxy) {
            Ok(b) => b,
            Err(e) => return fail(status, &e),
        };
        for b in &bindings {
            tracing::info!(binding = %b.binding, local = %b.local, "forwarding");
        }
        status.ready();
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!(grace = ?tuning.grace, "stopping: no new connections, draining open ones");
        tokio::select! {
            _ = proxy.shutdown(tuning.grace) => {}
            _ = async { tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} } } => {
                tracing::info!("second stop signal: closing open connections");
                proxy.kill();
                proxy.shutdown(std::time::Duration::ZERO).await;
            }
        }
        ExitCode::SUCCESS
    })
}

/// Asks the kernel for SIGTERM when the parent (the runtime) dies, so the port is not held by
/// an orphan. If the parent is already gone, stops now.
fn die_with_parent() {
    let parent = std::os::unix::process::parent_id();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    if std::os::unix::process::parent_id() != parent {
        std::process::exit(0);
    }
}

/// Raises the soft descriptor limit to the hard one, as Go does at startup (docker-proxy has
/// it that way), so that thousands of bindings and connections fit.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Logs go to stderr; `CPROXY_LOG` sets the filter (e.g. `debug`, `cproxy=trace,warn`).
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = || Targets::new().with_default(tracing::Level::WARN);
    let filter = match std::env::var("CPROXY_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("cproxy: ignoring CPROXY_LOG={spec:?}: {e}");
            default()
        }),
        Err(_) => default(),
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    tracing_subscriber::registry().with(fmt).with(filter).init();
}
