//! `cproxy forward`: many bindings in one process, described in Docker's `-p` syntax, and a
//! control socket through which bindings are added and removed while traffic flows.
//!
//! Control protocol (one command per line on a unix stream socket; each reply is zero or more
//! lines, then `ok` or `error: <reason>`):
//!
//! ```text
//! add [IP] SPEC [source-ip-transparent[=false]]
//!                 publish SPEC to the container at IP (default: --to); prints "ID PUBLISHED";
//!                 the option turns transparent mode on (or off) for these bindings alone
//! adopt PROTO CONTAINER [KEY=VALUE]...
//!                 serve the listening socket sent with this line (SCM_RIGHTS) for PROTO (tcp or
//!                 udp), forwarding to CONTAINER (IP:PORT); prints "ID PUBLISHED". The
//!                 connection is then the binding's lease: when it closes, the binding is
//!                 removed (with the usual drain). KEY=VALUE: the binding's own settings
//!                 (`crate::handoff::AdoptSettings`). How docker-proxy mode hands its port to
//!                 a shared forwarder (`crate::handoff`)
//! remove ID       stop a binding: its port is freed at once, its connections drain
//! list            every binding as "ID PUBLISHED", where PUBLISHED is `docker port`'s line
//! stats           every binding's counters: "id=ID proto=P host=ADDR container=ADDR name=N …"
//! ```
//!
//! A client that holds a lease is not closed when idle and does not count against
//! `--control-max-clients`; every lease of the forwarder is closed when it stops, so that the
//! processes that gave their listeners forward by themselves again.
//!
//! The socket is the keys to the host's ports, so it is guarded: created mode 0600 (0660 with
//! `--control-group`) whatever the umask, each client's credentials checked (`SO_PEERCRED`),
//! never put in place of a file that is not a stale socket, and clients are capped in number
//! and closed when idle.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::cli::ForwardArgs;
use crate::compat::StatusPipe;
use crate::error::AppError;
use crate::ports::PortAllocator;
use crate::proxy::{BindingId, BindingInfo, BindingOptions, Proto, Proxy, ProxyError};
use crate::serve;
use crate::spec::{HostPort, PortMapping, PortSpec, PublishedPort, pair_halves};

/// Longest control command accepted, so a misbehaving client cannot grow a line without bound.
const MAX_LINE: usize = 4096;

/// What publishing needs: where new bindings go and how free host ports are found.
struct Publisher {
    proxy: Proxy,
    allocator: PortAllocator,
    /// `--to`, if given.
    default_backend: Option<IpAddr>,
}

impl Publisher {
    /// Publishes every mapping of `spec` to `backend`, for each of `protos` on one host port,
    /// all or nothing: on failure, what was added so far is left in `added` for the caller to
    /// roll back ([`Publisher::roll_back`]).
    fn publish(
        &self,
        spec: &PortSpec,
        protos: &[Proto],
        backend: IpAddr,
        options: BindingOptions,
        added: &mut Vec<BindingInfo>,
    ) -> Result<(), AppError> {
        for mapping in spec.mappings() {
            let to = SocketAddr::new(backend, mapping.container_port);
            self.check_not_allocated(&mapping, protos)?;
            for socket in self.allocator.bind_mapping_for(&mapping, protos)? {
                let (proto, fd) = (socket.proto(), socket.into_fd());
                added.push(self.proxy.add_socket_with(proto, fd, to, options)?);
            }
        }
        Ok(())
    }

    /// A fixed host port that a binding of this forwarder already holds is refused as dockerd's
    /// allocator refuses a port another container holds; one held by anything else fails to
    /// bind, in docker-proxy's words.
    fn check_not_allocated(
        &self,
        mapping: &PortMapping,
        protos: &[Proto],
    ) -> Result<(), ProxyError> {
        let HostPort::Fixed(port) = mapping.host_port else {
            return Ok(());
        };
        let ips = match mapping.host_ip {
            Some(ip) => vec![ip.to_canonical()],
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
        };
        let bindings = self.proxy.list();
        for &proto in protos {
            for &ip in &ips {
                let addr = SocketAddr::new(ip, port);
                let held = |b: &BindingInfo| {
                    b.binding.proto == proto
                        && b.local.port() == port
                        && b.local.ip().to_canonical() == ip
                };
                if bindings.iter().any(held) {
                    return Err(ProxyError::PortAllocated { proto, addr });
                }
            }
        }
        Ok(())
    }

    /// Removes bindings added for a spec that failed part-way, and waits until they are gone:
    /// their ports are free and their connections closed when this returns (a client that got
    /// in meanwhile has the grace period, as on any removal).
    async fn roll_back(&self, added: Vec<BindingInfo>) {
        self.proxy.remove_all(added.iter().map(|info| info.id)).await;
    }
}

/// A binding as `docker port` prints it.
pub fn published(info: &BindingInfo) -> PublishedPort {
    PublishedPort {
        container_port: info.binding.backend.port(),
        proto: info.binding.proto,
        host: info.local,
    }
}

/// Runs `cproxy forward`.
pub fn run(mut args: ForwardArgs, status: StatusPipe) -> ExitCode {
    // As `docker run -P`: exposed ports are published only when asked, on picked host ports.
    if args.publish_all {
        args.publish.append(&mut args.expose);
    }
    let group = match args.control_group.as_deref().map(resolve_group).transpose() {
        Ok(g) => g,
        Err(e) => return AppError::Usage(e).report(status),
    };
    let mut control =
        match args.control.as_deref().map(|p| ControlSocket::bind(p, group)).transpose() {
            Ok(c) => c,
            Err(e) => return AppError::Control(e).report(status),
        };
    if !args.publish.is_empty() && args.to.is_none() {
        let e = "-p needs --to IP: the container address the published ports forward to";
        return AppError::Usage(e.to_string()).report(status);
    }
    if args.publish.is_empty() && control.is_none() {
        let e = "nothing to forward: give -p SPEC or --expose PORT -P (and/or --control PATH to \
                 add bindings later)";
        return AppError::Usage(e.to_string()).report(status);
    }
    let allocator = match args.port_range {
        Some(range) => PortAllocator::new(range),
        None => PortAllocator::from_kernel(),
    };
    // The control server owns the listener: when the proxy stops, it stops accepting and the
    // socket closes, while the file is removed only when the process is done.
    let listener = control.as_mut().and_then(|c| c.listener.take());
    let metrics_addr = args.metrics_addr;
    let limits = ControlLimits {
        access: Access { uid: nix::unistd::geteuid().as_raw(), group },
        max_clients: args.control_max_clients as usize,
        idle: args.control_idle_timeout,
    };
    let start = move |proxy: &Proxy| -> Result<Vec<BindingInfo>, AppError> {
        // Many bindings share one process's descriptors: none may starve the others or the
        // control socket.
        if let Ok((limit, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            proxy.limit_descriptors(limit);
        }
        let publisher =
            Arc::new(Publisher { proxy: proxy.clone(), allocator, default_backend: args.to });
        // A failure here ends the process, which frees every port: nothing to roll back.
        let mut all = Vec::new();
        if let (Some(to), false) = (args.to, args.publish.is_empty()) {
            for (spec, protos) in pair_halves(&args.publish) {
                publisher.publish(&spec, &protos, to, BindingOptions::default(), &mut all)?;
            }
        }
        if let Some(addr) = metrics_addr {
            let listener = std::net::TcpListener::bind(addr)
                .and_then(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)
                })
                .map_err(|e| AppError::io(format!("cannot serve metrics on {addr}"), e))?;
            let registry = Arc::new(crate::metrics::registry(proxy));
            tracing::info!(%addr, "serving metrics at /metrics");
            tokio::spawn(crate::metrics::serve(listener, registry));
        }
        for info in &all {
            println!("{}", published(info));
        }
        if let Some(listener) = listener {
            let listener =
                tokio_listener(listener).map_err(|e| AppError::io("control socket", e))?;
            tokio::spawn(serve_control(listener, publisher, limits));
        }
        Ok(all)
    };
    let code = serve::run(&args.tuning, serve::Threads::PerCpu, status, start);
    drop(control);
    code
}

/// A std listener as a tokio one.
fn tokio_listener(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
    l.set_nonblocking(true)?;
    UnixListener::from_std(l)
}

/// A group given by name or number, as `--control-group` takes it.
fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("--control-group: no such group: {group}")),
        Err(e) => Err(format!("--control-group: cannot look up group {group}: {e}")),
    }
}

/// The control socket's file, removed again when cproxy stops (if it is still the one this
/// process made).
struct ControlSocket {
    path: PathBuf,
    /// Taken by the control server when it starts.
    listener: Option<std::os::unix::net::UnixListener>,
    /// Device and inode of the socket file, so that only this file is ever removed.
    file: (u64, u64),
}

impl ControlSocket {
    /// Creates the socket at `path`, mode 0600, or 0660 owned by `group` if given. A socket
    /// left by a cproxy that died is replaced; anything else at `path` is an error.
    fn bind(path: &Path, group: Option<u32>) -> Result<ControlSocket, String> {
        let shown = path.display();
        match clear_socket_path(path, "control socket") {
            Ok(()) => {}
            Err(SocketPathError::InUse) => {
                return Err(format!(
                    "control socket {shown} is in use by another cproxy: stop it or choose \
                     another path"
                ));
            }
            Err(SocketPathError::Refused(e)) => return Err(e),
        }
        // The socket file takes its mode from the umask at bind(2); no umask may leave it open
        // to other users even for a moment. The process has a single thread here, so changing
        // the umask briefly cannot affect a file created elsewhere.
        use nix::sys::stat::{Mode, umask};
        let saved = umask(Mode::from_bits_truncate(0o177));
        let bound = std::os::unix::net::UnixListener::bind(path);
        umask(saved);
        let listener = bound.map_err(|e| format!("cannot create control socket {shown}: {e}"))?;
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot create control socket {shown}: {e}"))?;
        let socket = ControlSocket {
            path: path.to_path_buf(),
            listener: Some(listener),
            file: (meta.dev(), meta.ino()),
        };
        if let Some(gid) = group {
            std::os::unix::fs::chown(path, None, Some(gid))
                .and_then(|()| {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                })
                .map_err(|e| format!("cannot give group {gid} the control socket {shown}: {e}"))?;
        }
        Ok(socket)
    }
}

/// Why a unix socket cannot be created at a path ([`clear_socket_path`]).
#[derive(Debug)]
pub(crate) enum SocketPathError {
    /// A socket is there and something listens on it.
    InUse,
    /// Anything else, in words that name the path.
    Refused(String),
}

/// Makes `path` ready for a new unix socket, called `what` in errors ("control socket", "API
/// socket"): nothing there, or a stale socket nobody listens on (left by a process that died),
/// which is removed. A socket in use, and anything that is not a socket (a regular file, a
/// directory, a symbolic link), are left alone and refused: `cproxy forward --control` and
/// `cproxy daemon --host` never delete a file to put their socket in its place.
pub(crate) fn clear_socket_path(path: &Path, what: &str) -> Result<(), SocketPathError> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => Err(SocketPathError::InUse),
                // Nobody listens: a stale socket from a process that died.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::fs::remove_file(path)
                    .map_err(|e| {
                        SocketPathError::Refused(format!(
                            "cannot replace stale {what} {shown}: {e}"
                        ))
                    }),
                Err(e) => {
                    Err(SocketPathError::Refused(format!("cannot check {what} {shown}: {e}")))
                }
            }
        }
        Ok(_) => Err(SocketPathError::Refused(format!(
            "{shown} exists and is not a socket: not replacing it with the {what} (remove it or \
             choose another path)"
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SocketPathError::Refused(format!("cannot create {what} {shown}: {e}"))),
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Who may use the control socket: root, this process's user, and members of the
/// `--control-group`.
#[derive(Clone, Copy, Debug)]
struct Access {
    uid: u32,
    group: Option<u32>,
}

impl Access {
    /// Checks the credentials the kernel gives for the peer of `stream` (`SO_PEERCRED`, and
    /// `SO_PEERGROUPS` for its supplementary groups).
    fn allows(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = stream.peer_cred().map_err(|e| format!("cannot read credentials: {e}"))?;
        let uid = cred.uid();
        if uid == 0 || uid == self.uid {
            return Ok(());
        }
        if let Some(gid) = self.group
            && (cred.gid() == gid || peer_groups(stream).contains(&gid))
        {
            return Ok(());
        }
        Err(format!("permission denied: uid {uid} may not use this control socket"))
    }
}

/// The peer's supplementary groups as of its connect (`SO_PEERGROUPS`); empty if unknown.
fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    crate::sys::peer_groups(stream.as_fd())
}

/// The control socket's limits on its clients.
#[derive(Clone, Copy, Debug)]
struct ControlLimits {
    access: Access,
    /// Clients served at once; more are told so and closed.
    max_clients: usize,
    /// A client that sends no complete command for this long is closed.
    idle: Duration,
}

/// Serves the control socket until the proxy stops, like every task of the proxy: then the
/// listener closes (a client is refused by the kernel, as by a cproxy that is gone); sessions
/// already open go on while the bindings drain, and a binding they add is refused.
async fn serve_control(listener: UnixListener, publisher: Arc<Publisher>, limits: ControlLimits) {
    // One permit per connected client; dropped when its session ends.
    let clients = Arc::new(Semaphore::new(limits.max_clients));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = publisher.proxy.stopping() => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = limits.access.allows(&stream) {
            tracing::warn!(error = %e, "control client refused");
            refuse(stream, format!("error: {e}\n"));
            continue;
        }
        let Ok(permit) = clients.clone().try_acquire_owned() else {
            let max = limits.max_clients;
            refuse(
                stream,
                format!("error: too many control clients ({max} connected); try again later\n"),
            );
            continue;
        };
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let mut session = Session { leases: Vec::new(), permit: Some(permit) };
            if let Err(e) = session.serve(&stream, &publisher, limits.idle).await {
                tracing::debug!(error = %e, "control session ended");
            }
            // A lease whose holder is gone (stopped without `remove`, killed) ends with it.
            if !session.leases.is_empty() {
                tracing::info!(bindings = ?session.leases, "lease closed: removing its bindings");
                publisher.proxy.remove_all(session.leases).await;
            }
        });
    }
}

/// How long a refused client's input is read and dropped before its connection closes.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Tells a refused client why, then closes its connection without resetting it. Closing a
/// unix socket with unread input resets the peer, which could then fail on that reset before
/// it reads the reason: so what it sends is read and dropped for a moment (at most 64 KiB).
fn refuse(stream: UnixStream, reason: String) {
    // The reason fits in an empty socket buffer: `try_write` cannot block the accept loop.
    let _ = stream.try_write(reason.as_bytes());
    tokio::spawn(async move {
        let (mut read, mut write) = stream.into_split();
        let _ = write.shutdown().await;
        let mut sink = [0u8; 4096];
        let drain = async {
            let mut total = 0;
            while let Ok(n @ 1..) = read.read(&mut sink).await {
                total += n;
                if total > 64 * 1024 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
    });
}

/// Most descriptors a client may have sent and not yet used in an `adopt`; more are closed.
const MAX_PENDING_FDS: usize = 4;

/// One control client: what it holds.
struct Session {
    /// Bindings adopted through this connection and not removed: removed when it closes.
    leases: Vec<BindingId>,
    /// Its place among `--control-max-clients`, given back once it holds a lease.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Session {
    /// Reads commands (and the descriptors sent with them) and answers each, until the client
    /// closes, idles out (unless it holds a lease), or, holding a lease, the proxy stops.
    async fn serve(
        &mut self,
        stream: &UnixStream,
        publisher: &Publisher,
        idle: Duration,
    ) -> io::Result<()> {
        let mut reader = FdLineReader::default();
        loop {
            let leased = !self.leases.is_empty();
            let next = async {
                if leased {
                    tokio::select! {
                        r = reader.read_line(stream) => Ok(r),
                        _ = publisher.proxy.stopping() => Ok(Ok(None)),
                    }
                } else {
                    tokio::time::timeout(idle, reader.read_line(stream)).await
                }
            };
            let line = match next.await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) if e.kind() == ErrorKind::InvalidData => {
                    return write_all(stream, b"error: command too long\n").await;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    let reply = format!("error: no command for {idle:?}: closing the connection\n");
                    return write_all(stream, reply.as_bytes()).await;
                }
            };
            let reply = match std::str::from_utf8(&line) {
                Ok(command) => self.execute(command.trim(), publisher, &mut reader.fds).await,
                Err(_) => format!("error: command is not valid UTF-8; {USAGE}\n"),
            };
            write_all(stream, reply.as_bytes()).await?;
        }
    }

    /// Runs one control command; returns the whole reply, ending in `ok` or `error: …`.
    async fn execute(
        &mut self,
        command: &str,
        publisher: &Publisher,
        fds: &mut std::collections::VecDeque<OwnedFd>,
    ) -> String {
        let result = match command.parse::<ControlCommand>() {
            Ok(ControlCommand::Adopt { proto, backend, settings }) => match fds.pop_front() {
                Some(fd) => self.adopt(publisher, proto, fd, backend, &settings),
                None => Err("adopt needs the listening socket sent with it (SCM_RIGHTS)".into()),
            },
            Ok(ControlCommand::Remove(id)) => {
                self.leases.retain(|&l| l != id);
                run_command(ControlCommand::Remove(id), publisher).await
            }
            Ok(command) => run_command(command, publisher).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(lines) => lines.into_iter().map(|l| l + "\n").collect::<String>() + "ok\n",
            Err(e) => format!("error: {e}\n"),
        }
    }

    /// Serves a listener a client sent, as its settings say, under this session's lease.
    fn adopt(
        &mut self,
        publisher: &Publisher,
        proto: Proto,
        fd: OwnedFd,
        backend: SocketAddr,
        settings: &crate::handoff::AdoptSettings,
    ) -> Result<Vec<String>, String> {
        let config = settings.over(publisher.proxy.config());
        let info = publisher
            .proxy
            .add_socket_configured(proto, fd, backend, BindingOptions::default(), Some(config))
            .map_err(|e| e.to_string())?;
        tracing::info!(binding = %info.binding, local = %info.local, id = %info.id, "adopted");
        self.leases.push(info.id);
        self.permit = None;
        Ok(vec![format!("{} {}", info.id, published(&info))])
    }
}

/// Lines of a control connection, and the descriptors that came with them (`SCM_RIGHTS`).
#[derive(Default)]
struct FdLineReader {
    buf: Vec<u8>,
    fds: std::collections::VecDeque<OwnedFd>,
}

impl FdLineReader {
    /// The next line, without its `\n`; `None` at the end of the stream (a last line without
    /// `\n` is a line). An `InvalidData` error for a line longer than [`MAX_LINE`].
    async fn read_line(&mut self, stream: &UnixStream) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                if end > MAX_LINE {
                    return Err(io::Error::new(ErrorKind::InvalidData, "command too long"));
                }
                let line = self.buf.drain(..=end).take(end).collect();
                return Ok(Some(line));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(ErrorKind::InvalidData, "command too long"));
            }
            let mut chunk = [0u8; 1024];
            let n = loop {
                stream.readable().await?;
                match stream.try_io(tokio::io::Interest::READABLE, || {
                    recv_with_fds(stream, &mut chunk, &mut self.fds)
                }) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Ok((!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf)));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One `recvmsg`: bytes into `buf`, descriptors onto `fds` (close-on-exec; past
/// [`MAX_PENDING_FDS`], closed).
fn recv_with_fds(
    stream: &UnixStream,
    buf: &mut [u8],
    fds: &mut std::collections::VecDeque<OwnedFd>,
) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_PENDING_FDS]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let n = msg.bytes;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            for raw in received {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                if fds.len() < MAX_PENDING_FDS {
                    fds.push_back(fd);
                }
            }
        }
    }
    Ok(n)
}

/// Writes all of `bytes` to `stream`.
async fn write_all(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One line of the control protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// `add [IP] SPEC [source-ip-transparent[=false]]`: publish `spec` to `backend` (the
    /// `--to` address if `None`).
    Add {
        /// Where to forward (the `--to` address if `None`).
        backend: Option<IpAddr>,
        /// The ports, in `docker run -p` syntax.
        spec: PortSpec,
        /// Transparent mode for these bindings (`None`: as `--source-ip-transparent` says).
        transparent: Option<bool>,
    },
    /// `adopt PROTO CONTAINER [KEY=VALUE]...`, with the listening socket attached.
    Adopt {
        /// What the socket is: TCP (listening) or UDP.
        proto: Proto,
        /// Where to forward.
        backend: SocketAddr,
        /// The binding's own settings.
        settings: crate::handoff::AdoptSettings,
    },
    /// `remove ID`
    Remove(BindingId),
    /// `list`
    List,
    /// `stats`
    Stats,
}

const USAGE: &str = "commands are: add [IP] SPEC [source-ip-transparent[=false]], adopt PROTO \
                     IP:PORT [KEY=VALUE]... (with a socket), remove ID, list, stats";

/// The option word of `add` that sets transparent mode.
const TRANSPARENT: &str = "source-ip-transparent";

/// Reads `add`'s option word: `source-ip-transparent` (on), `=true` or `=false`.
fn transparent_option(word: &str) -> Result<bool, String> {
    match word.strip_prefix(TRANSPARENT) {
        Some("" | "=true") => Ok(true),
        Some("=false") => Ok(false),
        _ => {
            Err(format!("invalid option {word:?} of add: use {TRANSPARENT} or {TRANSPARENT}=false"))
        }
    }
}

impl std::str::FromStr for ControlCommand {
    type Err = String;

    fn from_str(line: &str) -> Result<ControlCommand, String> {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let spec = |s: &str| PortSpec::parse(s).map_err(|e| e.to_string());
        // `add`'s option comes last; no spec or address starts with its name.
        let mut transparent = None;
        if words.first() == Some(&"add")
            && words.len() > 2
            && let Some(last) = words.last()
            && last.starts_with(TRANSPARENT)
        {
            transparent = Some(transparent_option(last)?);
            words.pop();
        }
        match words.as_slice() {
            ["add", s] => Ok(ControlCommand::Add { backend: None, spec: spec(s)?, transparent }),
            ["add", ip, s] => {
                let ip = ip.parse().map_err(|_| format!("invalid IP address: {ip}"))?;
                Ok(ControlCommand::Add { backend: Some(ip), spec: spec(s)?, transparent })
            }
            ["remove", id] => id
                .parse::<u64>()
                .map(|id| ControlCommand::Remove(BindingId::from(id)))
                .map_err(|_| format!("invalid binding id: {id}")),
            ["adopt", proto, backend, settings @ ..] => {
                let proto = Proto::from_name(proto)
                    .ok_or_else(|| format!("invalid protocol {proto:?}: use tcp or udp"))?;
                let backend = backend
                    .parse()
                    .map_err(|_| format!("invalid container address {backend:?}: use IP:PORT"))?;
                let settings = settings.join(" ").parse()?;
                Ok(ControlCommand::Adopt { proto, backend, settings })
            }
            ["list"] => Ok(ControlCommand::List),
            ["stats"] => Ok(ControlCommand::Stats),
            [] => Err(format!("empty command; {USAGE}")),
            [other, ..] => Err(format!("invalid command {other:?}; {USAGE}")),
        }
    }
}

impl std::fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlCommand::Add { backend, spec, transparent } => {
                f.write_str("add")?;
                if let Some(ip) = backend {
                    write!(f, " {ip}")?;
                }
                write!(f, " {spec}")?;
                match transparent {
                    Some(true) => write!(f, " {TRANSPARENT}"),
                    Some(false) => write!(f, " {TRANSPARENT}=false"),
                    None => Ok(()),
                }
            }
            ControlCommand::Adopt { proto, backend, settings } => {
                write!(f, "adopt {proto} {backend}")?;
                if *settings != crate::handoff::AdoptSettings::default() {
                    write!(f, " {settings}")?;
                }
                Ok(())
            }
            ControlCommand::Remove(id) => write!(f, "remove {id}"),
            ControlCommand::List => f.write_str("list"),
            ControlCommand::Stats => f.write_str("stats"),
        }
    }
}

/// Runs a command that needs no descriptor; the reply's lines, or why it failed.
async fn run_command(
    command: ControlCommand,
    publisher: &Publisher,
) -> Result<Vec<String>, String> {
    let line = |info: &BindingInfo| format!("{} {}", info.id, published(info));
    match command {
        ControlCommand::Adopt { .. } => Err("adopt needs its listening socket".into()),
        ControlCommand::Add { backend, spec, transparent } => {
            let backend = backend.or(publisher.default_backend).ok_or(
                "no container address: give add IP SPEC (this cproxy forward has no --to)",
            )?;
            let options = BindingOptions { transparent, ..BindingOptions::default() };
            let mut added = Vec::new();
            match publisher.publish(&spec, &[spec.proto()], backend, options, &mut added) {
                Ok(()) => Ok(added.iter().map(line).collect()),
                Err(e) => {
                    // Replied only once the partial bindings are gone, so that the client
                    // never sees (or races) a half-published spec.
                    publisher.roll_back(added).await;
                    Err(e.to_string())
                }
            }
        }
        ControlCommand::Remove(id) => match publisher.proxy.remove(id).await {
            true => Ok(vec![]),
            false => Err(format!("no such binding: {id}")),
        },
        ControlCommand::List => Ok(publisher.proxy.list().iter().map(line).collect()),
        ControlCommand::Stats => Ok(publisher.proxy.all_stats().iter().map(stats_line).collect()),
    }
}

/// A binding's counters as the `stats` reply gives them: `key=value` words, no spaces inside.
fn stats_line((info, stats): &(BindingInfo, Arc<crate::proxy::Stats>)) -> String {
    let mut line = format!(
        "id={} proto={} host={} container={}",
        info.id, info.binding.proto, info.local, info.binding.backend
    );
    for (name, value) in stats.snapshot().fields() {
        line.push_str(&format!(" {name}={value}"));
    }
    line
}

/// Sends one command to a control socket: the reply's lines, and `Err` with the reason if it
/// ended in `error: …` (or did not end in `ok`).
fn request(socket: &Path, command: &str) -> io::Result<(Vec<String>, Result<(), String>)> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    // A refused client is answered and closed at once, maybe before the command is written:
    // the answer is still there to be read.
    let sent =
        writeln!(stream, "{command}").and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    let (mut lines, mut end) = (Vec::new(), None);
    for line in io::BufReader::new(stream).lines() {
        // A reset after the answer (the server closed with our command unread) ends the
        // reading, not the answer.
        let line = match line {
            Ok(line) => line,
            Err(_) if end.is_some() => break,
            Err(e) => return Err(e),
        };
        match line.as_str() {
            "ok" => end = Some(Ok(())),
            l if l.starts_with("error: ") => end = Some(Err(l[7..].to_string())),
            _ => lines.push(line),
        }
    }
    match (sent, end) {
        (_, Some(end)) => Ok((lines, end)),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Ok((lines, Err("the control socket closed without a reply".into()))),
    }
}

/// Reports a control socket that could not be used.
fn unreachable(socket: &Path, e: io::Error) -> AppError {
    if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::ConnectionRefused {
        AppError::Control(format!(
            "cannot reach {}: is `cproxy forward --control` running?",
            socket.display()
        ))
    } else {
        AppError::io(socket.display().to_string(), e)
    }
}

/// `cproxy stats`: every binding's counters from a control socket, as a table or as JSON.
pub fn stats(socket: &Path, format: &str) -> Result<(), AppError> {
    let lines = match request(socket, "stats") {
        Ok((lines, Ok(()))) => lines,
        Ok((_, Err(e))) => return Err(AppError::Failed(e)),
        Err(e) => return Err(unreachable(socket, e)),
    };
    let rows: Vec<Vec<(String, String)>> = lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    let text = if format == "json" { stats_json(&rows) } else { stats_table(&rows) };
    print!("{text}");
    Ok(())
}

/// Rows of `key=value` pairs as a JSON array of objects; numbers stay numbers.
fn stats_json(rows: &[Vec<(String, String)>]) -> String {
    let quote = |s: &str| {
        let escaped: String = s
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    };
    let objects: Vec<String> = rows
        .iter()
        .map(|row| {
            let fields: Vec<String> = row
                .iter()
                .map(|(k, v)| {
                    let value = if v.parse::<u64>().is_ok() { v.clone() } else { quote(v) };
                    format!("{}:{value}", quote(k))
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!("[{}]\n", objects.join(",\n "))
}

/// The table `cproxy stats` prints: the counters a person looks at first.
fn stats_table(rows: &[Vec<(String, String)>]) -> String {
    const COLUMNS: [(&str, &str); 12] = [
        ("ID", "id"),
        ("PROTO", "proto"),
        ("HOST", "host"),
        ("CONTAINER", "container"),
        ("ACCEPTED", "accepted"),
        ("ACTIVE", "active"),
        ("REFUSED", "refused"),
        ("DIAL-FAILED", "dial_failures"),
        ("TO-CONTAINER", "bytes_to_backend"),
        ("TO-CLIENT", "bytes_to_client"),
        ("SESSIONS", "sessions"),
        ("DROPPED", "datagrams_dropped"),
    ];
    let cell = |row: &[(String, String)], key: &str| {
        row.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| COLUMNS.iter().map(|(_, key)| cell(r, key)).collect()).collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (title, _))| cells.iter().map(|r| r[i].len()).fold(title.len(), usize::max))
        .collect();
    let mut out = String::new();
    let mut push_row = |row: Vec<&str>| {
        let words: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(
                |(i, (w, &width))| {
                    if i < 4 { format!("{w:<width$}") } else { format!("{w:>width$}") }
                },
            )
            .collect();
        out.push_str(words.join("  ").trim_end());
        out.push('\n');
    };
    push_row(COLUMNS.iter().map(|(title, _)| *title).collect());
    for row in &cells {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

/// `cproxy ctl`: sends one command to a control socket and prints the reply. Exits 1 when the
/// reply is an error.
pub fn ctl(socket: &Path, command: &[String]) -> Result<(), AppError> {
    let (lines, end) = request(socket, &command.join(" ")).map_err(|e| unreachable(socket, e))?;
    for line in lines {
        println!("{line}");
    }
    end.map_err(AppError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ControlCommand, String> {
        line.parse()
    }

    #[test]
    fn tcp_and_udp_halves_with_allocated_host_ports_are_published_together() {
        let specs: Vec<PortSpec> = ["53/tcp", "8080:80", "53/udp", "127.0.0.1::53/udp", "53/tcp"]
            .iter()
            .map(|s| PortSpec::parse(s).unwrap())
            .collect();
        let groups: Vec<(String, Vec<Proto>)> =
            pair_halves(&specs).into_iter().map(|(s, p)| (s.to_string(), p)).collect();
        let want = [
            ("53/tcp", vec![Proto::Tcp, Proto::Udp]),
            // A fixed host port is the user's choice, and another IP another port.
            ("8080:80/tcp", vec![Proto::Tcp]),
            ("127.0.0.1::53/udp", vec![Proto::Udp]),
            // The same half twice is two ports, as in Docker.
            ("53/tcp", vec![Proto::Tcp]),
        ];
        let want: Vec<(String, Vec<Proto>)> =
            want.into_iter().map(|(s, p)| (s.to_string(), p)).collect();
        assert_eq!(groups, want);
    }

    #[test]
    fn commands_parse_and_display_back() {
        for line in ["add 127.0.0.1:8080:80/tcp", "add ::1 [::1]::80/udp", "remove 7", "list"] {
            let cmd = parse(line).unwrap();
            assert_eq!(parse(&cmd.to_string()).unwrap(), cmd, "{line}");
        }
        assert_eq!(parse("  list  "), Ok(ControlCommand::List));
    }

    #[test]
    fn bad_commands_are_explained() {
        assert_eq!(parse("remove x").unwrap_err(), "invalid binding id: x");
        assert_eq!(parse("add nope 80").unwrap_err(), "invalid IP address: nope");
        assert!(parse("add 80:99999").unwrap_err().starts_with("invalid containerPort"));
        assert!(parse("").unwrap_err().starts_with("empty command"));
        assert!(parse("list extra").unwrap_err().starts_with("invalid command"));
        assert!(parse("frob").unwrap_err().contains("add [IP] SPEC"));
    }

    #[test]
    fn adopt_names_the_protocol_the_container_and_the_settings() {
        let cmd = parse("adopt UDP [::1]:53 max_conns=3 grace_ns=5").unwrap();
        let settings = crate::handoff::AdoptSettings {
            grace: Some(Duration::from_nanos(5)),
            max_conns: Some(3),
            ..Default::default()
        };
        let want = ControlCommand::Adopt {
            proto: Proto::Udp,
            backend: "[::1]:53".parse().unwrap(),
            settings,
        };
        assert_eq!(cmd, want);
        assert_eq!(cmd.to_string(), "adopt udp [::1]:53 grace_ns=5 max_conns=3");
        assert_eq!(parse("adopt tcp 10.0.0.2:80").unwrap().to_string(), "adopt tcp 10.0.0.2:80");
        assert!(parse("adopt sctp 10.0.0.2:80").unwrap_err().contains("use tcp or udp"));
        assert!(parse("adopt tcp 10.0.0.2").unwrap_err().contains("use IP:PORT"));
        assert!(parse("adopt tcp").unwrap_err().starts_with("invalid command"));
        assert!(parse("adopt tcp 10.0.0.2:80 bogus=1").unwrap_err().contains("unknown setting"));
    }

    #[test]
    fn add_takes_transparent_mode_as_its_last_word() {
        let add = |backend: Option<&str>, spec: &str, transparent| ControlCommand::Add {
            backend: backend.map(|ip| ip.parse().unwrap()),
            spec: PortSpec::parse(spec).unwrap(),
            transparent,
        };
        for (line, want) in [
            ("add 8080:80 source-ip-transparent", add(None, "8080:80", Some(true))),
            ("add 8080:80 source-ip-transparent=true", add(None, "8080:80", Some(true))),
            (
                "add 10.0.0.2 53/udp source-ip-transparent=false",
                add(Some("10.0.0.2"), "53/udp", Some(false)),
            ),
            ("add 10.0.0.2 fd00::1:8080:80", add(Some("10.0.0.2"), "fd00::1:8080:80", None)),
        ] {
            let cmd = parse(line).unwrap();
            assert_eq!(cmd, want, "{line}");
            assert_eq!(parse(&cmd.to_string()).unwrap(), cmd, "{line}");
        }
        for bad in ["add 80 source-ip-transparent=yes", "add 80 source-ip-transparentx"] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.starts_with("invalid option") && e.contains("source-ip-transparent=false"),
                "{bad}: {e}"
            );
        }
        assert!(parse("add source-ip-transparent").unwrap_err().starts_with("invalid"));
    }
}
