//! The `cproxy daemon` process: root check, the API socket (directory 0700, socket 0660), the
//! runtime, the engine over its records, and SIGTERM/SIGINT → stop every container.

use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::ports::PortAllocator;
use crate::proxy::{Config, Proxy};
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
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cproxy daemon: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cproxy daemon: {e}");
            ExitCode::from(1)
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

async fn serve(cfg: DaemonConfig) -> Result<(), String> {
    let store = engine::store::Store::open(&cfg.data_root)
        .map_err(|e| format!("cannot use data root {}: {e}", cfg.data_root.display()))?;
    let (listener, socket_file) = bind_socket(&cfg.socket)?;
    let proxy = Proxy::new(Config { grace: Duration::from_secs(1), ..Config::default() });
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
    let daemon = engine::Daemon::new(store, proxy, allocator, cfg.bip, upstreams)
        .await
        .map_err(|e| format!("cannot set up networking: {e}"))?;
    let daemon = Arc::new(daemon);
    daemon.answer_names();
    daemon.restore().await;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = http::router(daemon.clone());
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tracing::info!(socket = %cfg.socket.display(), "API listening");
    println!("cproxy daemon listening on unix://{}", cfg.socket.display());
    let server = axum::serve(listener, app.into_make_service());
    tokio::select! {
        r = server => r.map_err(|e| e.to_string())?,
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping every container");
    daemon.shutdown(Duration::from_secs(10)).await;
    let ours =
        std::fs::symlink_metadata(&cfg.socket).is_ok_and(|m| (m.dev(), m.ino()) == socket_file);
    if ours {
        let _ = std::fs::remove_file(&cfg.socket);
    }
    Ok(())
}
