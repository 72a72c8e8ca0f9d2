//! docker-proxy mode with a shared forwarder: the process dockerd starts for one port hands its
//! listening socket to a `cproxy forward --control PATH` that serves every port, and then only
//! waits for dockerd's signal.
//!
//! - **Handoff.** Once its socket is bound (or taken from fd 4), the process connects to the
//!   forwarder's control socket ([`forwarder_path`]: `CPROXY_FORWARDER`, else the settings
//!   file's `forwarder`, else [`DEFAULT_PATH`]), checks that root or its own user serves it
//!   (`SO_PEERCRED`), and sends `adopt PROTO CONTAINER [KEY=VALUE]...` with the socket attached
//!   (`SCM_RIGHTS`) and the settings this binding has ([`AdoptSettings`]: the command line's
//!   and the settings file's). The forwarder answers with the binding's ID; the process writes
//!   `0\n` on the status pipe, drops its runtime and waits in `poll(2)` on the control
//!   connection, a `signalfd` and the parent's pidfd, on its main thread alone.
//! - **Stop.** On SIGTERM, SIGINT (or any signal that would end it) or dockerd's exit, it sends
//!   `remove ID` on the same connection: the forwarder frees the port and drains the binding's
//!   connections; the process exits once it has answered. The connection is the binding's
//!   lease: a process killed outright loses it, and the forwarder removes the binding.
//! - **Fallback, never a dead port.** The process keeps its own copy of the socket. With no
//!   forwarder there, or a forwarder that refuses the socket, it forwards by itself exactly as
//!   without one. When the forwarder dies, the control connection ends and the process starts
//!   its own accept loop at once on its copy: new connections forward, queued ones are taken
//!   from the backlog; those the forwarder held are lost with it (as UDP sessions are). While
//!   it forwards by itself, it tries the forwarder's socket after [`RETRY`], then less often
//!   while nothing is there (up to [`RETRY_MAX`] apart); once one takes the
//!   socket again, its own accept loop stops and its connections finish by themselves (a UDP
//!   binding's sessions end at once: the forwarder opens new ones).

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::cli::Tuning;
use crate::compat::StatusPipe;
use crate::error::AppError;
use crate::proxy::proxy_proto::Version;
use crate::proxy::{BindingId, Config, Proto, Proxy, RelayMode};
use crate::serve::{self, Parent, Threads};
use crate::signals;

/// The shared forwarder's control socket when neither [`PATH_ENV`] nor the settings file's
/// `forwarder` names one. Nothing there (the usual case) means each process forwards by itself.
pub const DEFAULT_PATH: &str = "/run/cproxy/forwarder.sock";

/// The environment variable that names the shared forwarder's control socket; empty turns
/// the handoff off.
pub const PATH_ENV: &str = "CPROXY_FORWARDER";

/// How soon a process that forwards by itself tries the forwarder's socket again: at first
/// (a forwarder that is restarting is back soon) and after a refusal.
pub const RETRY: Duration = Duration::from_secs(1);

/// The longest pause between tries while no forwarder is there: the wait doubles from
/// [`RETRY`] up to this: a port whose forwarder is gone (or whose named one is not there yet)
/// wakes at most 6 times a minute.
pub const RETRY_MAX: Duration = Duration::from_secs(10);

/// How long the forwarder may take to answer an `adopt` or a `remove` before the process goes
/// on without it (a `remove` waits for the drain: the grace period and a margin).
const ANSWER: Duration = Duration::from_secs(5);

/// The control socket to hand the port to: [`PATH_ENV`]'s, else `file` (the settings file's
/// `forwarder`), else [`DEFAULT_PATH`] if something is there; `None` when the one that
/// applies is empty, or when none is named and the default path holds nothing. So a host that
/// runs no forwarder keeps docker-proxy mode as it was, with no retries: a forwarder started
/// later takes the ports published from then on (and those a restart publishes again).
///
/// A process resumed by [`crate::lease`] had a forwarder until it went: it keeps offering the
/// port at the default path even when nothing is there now (`resumed`).
pub fn forwarder_path(file: Option<&str>, resumed: bool) -> Option<PathBuf> {
    let chosen = match (std::env::var_os(PATH_ENV), file) {
        (Some(path), _) => PathBuf::from(path),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => {
            let default = PathBuf::from(DEFAULT_PATH);
            return (resumed || default.exists()).then_some(default);
        }
    };
    (!chosen.as_os_str().is_empty()).then_some(chosen)
}

/// A binding's own settings as `adopt` carries them: each one given replaces the forwarder's.
/// On the wire, `KEY=VALUE` words; durations in nanoseconds (exact both ways).
///
/// ```text
/// grace_ns=N connect_timeout_ns=N max_conns=N tcp_idle_timeout_ns=N (0: never)
/// tcp_keepalive_ns=N (0: off) udp_idle_timeout_ns=N udp_max_sessions=N
/// no_splice=true|false proxy_protocol=none|v1|v2 source_ip_transparent=true|false
/// ```
///
/// The splice pipes' size is the forwarder's (they are pooled); `-threads` and the log
/// settings are the forwarder's process's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdoptSettings {
    /// `-grace`.
    pub grace: Option<Duration>,
    /// `-connect-timeout` (more than 0).
    pub connect_timeout: Option<Duration>,
    /// `-max-conns` (at least 1).
    pub max_conns: Option<u32>,
    /// `-tcp-idle-timeout`; zero: never.
    pub tcp_idle_timeout: Option<Duration>,
    /// `-tcp-keepalive`; zero: off.
    pub tcp_keepalive: Option<Duration>,
    /// `-udp-idle-timeout` (more than 0).
    pub udp_idle_timeout: Option<Duration>,
    /// `-udp-max-sessions` (at least 1).
    pub udp_max_sessions: Option<u32>,
    /// `-no-splice`.
    pub no_splice: Option<bool>,
    /// `-proxy-protocol` (`Some(None)`: none).
    pub proxy_protocol: Option<Option<Version>>,
    /// `-source-ip-transparent`.
    pub source_ip_transparent: Option<bool>,
}

impl AdoptSettings {
    /// Every setting of `tuning` (the command line's over the settings file's).
    pub fn from_tuning(tuning: &Tuning) -> AdoptSettings {
        AdoptSettings {
            grace: Some(tuning.grace),
            connect_timeout: Some(tuning.connect_timeout),
            max_conns: Some(tuning.max_conns),
            tcp_idle_timeout: Some(tuning.tcp_idle_timeout.unwrap_or(Duration::ZERO)),
            tcp_keepalive: Some(tuning.tcp_keepalive),
            udp_idle_timeout: Some(tuning.udp_idle_timeout),
            udp_max_sessions: Some(tuning.udp_max_sessions),
            no_splice: Some(tuning.no_splice),
            proxy_protocol: Some(tuning.proxy_protocol),
            source_ip_transparent: Some(tuning.source_ip_transparent),
        }
        .exact()
    }

    /// The same, each duration as the wire carries it (whole nanoseconds, at most `u64::MAX`).
    fn exact(mut self) -> AdoptSettings {
        let clamp = |d: &mut Option<Duration>| {
            if let Some(v) = d {
                *v = Duration::from_nanos(u64::try_from(v.as_nanos()).unwrap_or(u64::MAX));
            }
        };
        for d in [
            &mut self.grace,
            &mut self.connect_timeout,
            &mut self.tcp_idle_timeout,
            &mut self.tcp_keepalive,
            &mut self.udp_idle_timeout,
        ] {
            clamp(d);
        }
        self
    }

    /// `base` with these settings over it.
    pub fn over(&self, base: &Config) -> Config {
        let mut c = base.clone();
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        if let Some(v) = self.grace {
            c.grace = v;
        }
        if let Some(v) = self.connect_timeout {
            c.connect_timeout = v;
        }
        if let Some(v) = self.max_conns {
            c.max_connections = v as usize;
        }
        if let Some(v) = self.tcp_idle_timeout {
            c.tcp_idle_timeout = nonzero(v);
        }
        if let Some(v) = self.tcp_keepalive {
            c.tcp_keepalive = nonzero(v);
        }
        if let Some(v) = self.udp_idle_timeout {
            c.udp_idle_timeout = v;
        }
        if let Some(v) = self.udp_max_sessions {
            c.udp_max_sessions = v as usize;
        }
        if let Some(v) = self.no_splice {
            c.relay = if v { RelayMode::Copy } else { RelayMode::Splice };
        }
        if let Some(v) = self.proxy_protocol {
            c.proxy_protocol = v;
        }
        if let Some(v) = self.source_ip_transparent {
            c.transparent = v;
        }
        c
    }
}

impl FromStr for AdoptSettings {
    type Err = String;

    fn from_str(words: &str) -> Result<AdoptSettings, String> {
        let mut s = AdoptSettings::default();
        for word in words.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("invalid setting {word:?}: use KEY=VALUE"))?;
            let bad = |what: &str| format!("invalid value {value:?} for {key}: {what}");
            let nanos =
                || value.parse::<u64>().map(Duration::from_nanos).map_err(|_| bad("nanoseconds"));
            let positive = || match nanos()? {
                d if d.is_zero() => Err(bad("must be more than 0")),
                d => Ok(d),
            };
            let count = || match value.parse::<u32>() {
                Ok(0) | Err(_) => Err(bad("a count from 1")),
                Ok(n) => Ok(n),
            };
            let flag = || match value {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("true or false")),
            };
            match key {
                "grace_ns" => put(&mut s.grace, key, nanos()),
                "connect_timeout_ns" => put(&mut s.connect_timeout, key, positive()),
                "max_conns" => put(&mut s.max_conns, key, count()),
                "tcp_idle_timeout_ns" => put(&mut s.tcp_idle_timeout, key, nanos()),
                "tcp_keepalive_ns" => put(&mut s.tcp_keepalive, key, nanos()),
                "udp_idle_timeout_ns" => put(&mut s.udp_idle_timeout, key, positive()),
                "udp_max_sessions" => put(&mut s.udp_max_sessions, key, count()),
                "no_splice" => put(&mut s.no_splice, key, flag()),
                "proxy_protocol" => {
                    let version = match value {
                        "none" => Ok(None),
                        "v1" => Ok(Some(Version::V1)),
                        "v2" => Ok(Some(Version::V2)),
                        _ => Err(bad("none, v1 or v2")),
                    };
                    put(&mut s.proxy_protocol, key, version)
                }
                "source_ip_transparent" => put(&mut s.source_ip_transparent, key, flag()),
                _ => Err(format!("unknown setting {key:?}")),
            }?;
        }
        Ok(s)
    }
}

/// Sets a setting read as `value`, once.
fn put<T>(slot: &mut Option<T>, key: &str, value: Result<T, String>) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("setting {key} given twice"));
    }
    *slot = Some(value?);
    Ok(())
}

impl std::fmt::Display for AdoptSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut words = Vec::new();
        let nanos = |key: &str, d: Option<Duration>, words: &mut Vec<String>| {
            if let Some(d) = d {
                words.push(format!("{key}={}", d.as_nanos()));
            }
        };
        nanos("grace_ns", self.grace, &mut words);
        nanos("connect_timeout_ns", self.connect_timeout, &mut words);
        if let Some(n) = self.max_conns {
            words.push(format!("max_conns={n}"));
        }
        nanos("tcp_idle_timeout_ns", self.tcp_idle_timeout, &mut words);
        nanos("tcp_keepalive_ns", self.tcp_keepalive, &mut words);
        nanos("udp_idle_timeout_ns", self.udp_idle_timeout, &mut words);
        if let Some(n) = self.udp_max_sessions {
            words.push(format!("udp_max_sessions={n}"));
        }
        if let Some(b) = self.no_splice {
            words.push(format!("no_splice={b}"));
        }
        if let Some(v) = self.proxy_protocol {
            words.push(format!(
                "proxy_protocol={}",
                v.map_or("none".to_string(), |v| v.to_string())
            ));
        }
        if let Some(b) = self.source_ip_transparent {
            words.push(format!("source_ip_transparent={b}"));
        }
        f.write_str(&words.join(" "))
    }
}

/// Why a port was not handed to the forwarder.
#[derive(Debug)]
pub enum OfferError {
    /// No forwarder listens at the path.
    Absent,
    /// One is there but did not take the socket: the reason.
    Refused(String),
}

/// A binding the shared forwarder serves for this process, held by the control connection.
#[derive(Debug)]
pub struct Lease {
    stream: UnixStream,
    /// The binding's ID in the forwarder.
    pub id: BindingId,
}

/// Hands `socket` (a listening TCP socket or a bound UDP one) to the forwarder at `path`, to
/// serve for `proto` towards `backend` with `settings`.
pub fn offer(
    path: &Path,
    proto: Proto,
    socket: BorrowedFd<'_>,
    backend: SocketAddr,
    settings: &AdoptSettings,
) -> Result<Lease, OfferError> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let refused = |e: String| OfferError::Refused(e);
    let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => OfferError::Absent,
        _ => refused(format!("cannot connect to {}: {e}", path.display())),
    })?;
    // The socket is the port: only root or this process's own user may be given it.
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| refused(format!("cannot read the forwarder's credentials: {e}")))?;
    let uid = peer.uid();
    if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
        return Err(refused(format!(
            "{} is served by uid {uid}, neither root nor this process's user: not handing it \
             the port",
            path.display()
        )));
    }
    let command =
        crate::forward::ControlCommand::Adopt { proto, backend, settings: settings.clone() };
    let line = format!("{command}\n");
    let fds = [socket.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(line.as_bytes())];
    let sent = sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(|e| refused(format!("cannot send the socket: {e}")))?;
    if sent < line.len() {
        let mut rest = &stream;
        rest.write_all(&line.as_bytes()[sent..])
            .map_err(|e| refused(format!("cannot send the adopt command: {e}")))?;
    }
    let (lines, end) = answer(&stream).map_err(|e| refused(format!("no answer: {e}")))?;
    end.map_err(refused)?;
    let id = lines
        .first()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|id| id.parse::<u64>().ok())
        .map(BindingId::from)
        .ok_or_else(|| refused(format!("unexpected answer {lines:?}")))?;
    Ok(Lease { stream, id })
}

/// One answer from the forwarder: its lines, and `Err` with the reason for `error: …`. Waits
/// [`ANSWER`] at most, reading a byte at a time so that nothing after the answer is taken.
fn answer(stream: &UnixStream) -> io::Result<(Vec<String>, Result<(), String>)> {
    stream.set_read_timeout(Some(ANSWER))?;
    let mut reader = io::BufReader::with_capacity(1, stream);
    let mut lines = Vec::new();
    let result = loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the forwarder closed"));
        }
        let line = line.trim_end();
        match line.strip_prefix("error: ") {
            Some(e) => break Err(e.to_string()),
            None if line == "ok" => break Ok(()),
            None => lines.push(line.to_string()),
        }
    };
    stream.set_read_timeout(None)?;
    Ok((lines, result))
}

impl Lease {
    /// Asks the forwarder to remove the binding (it frees the port and drains the connections)
    /// and waits for it to say so, or for its grace period and a margin.
    pub fn remove(self, grace: Duration) {
        let mut stream = &self.stream;
        if writeln!(stream, "remove {}", self.id).is_err() {
            return;
        }
        let _ = self.stream.set_read_timeout(Some(grace + ANSWER));
        let mut reply = [0u8; 256];
        // Read until the answer's end (`ok` or `error: …`, one line) or the connection's.
        let mut got = Vec::new();
        while let Ok(n @ 1..) = stream.read(&mut reply) {
            got.extend_from_slice(&reply[..n]);
            if got.ends_with(b"\n") {
                break;
            }
        }
    }

    /// The connection, to wait on.
    fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// True when the forwarder closed the connection (it stopped or died).
    fn closed(&self) -> bool {
        crate::lease::closed(&self.stream)
    }
}

/// What ended a blocking wait on a lease.
enum Woke {
    /// A stop signal, or the parent's exit.
    Stop(String),
    /// The forwarder closed the connection.
    ForwarderGone,
}

/// Waits on the main thread alone, in `poll(2)`, for a stop signal, the parent's exit or the
/// forwarder's end.
fn wait(lease: &Lease, stop: &signals::SignalFd, parent: Option<&Parent>) -> Woke {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let pidfd = parent.and_then(Parent::pidfd);
        let mut fds = vec![
            PollFd::new(lease.fd(), PollFlags::POLLIN),
            PollFd::new(stop.fd(), PollFlags::POLLIN),
        ];
        if let Some(pidfd) = pidfd {
            fds.push(PollFd::new(pidfd, PollFlags::POLLIN));
        }
        // Without a pidfd, the parent is looked at twice a second.
        let timeout = match (parent, pidfd) {
            (Some(_), None) => PollTimeout::from(500u16),
            _ => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot wait on the forwarder: forwarding by itself");
                return Woke::ForwarderGone;
            }
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        if ready(1)
            && let Some(sig) = stop.try_recv()
        {
            return Woke::Stop(format!("signal {}", signals::name(sig)));
        }
        if ready(2) || parent.is_some_and(Parent::is_gone) {
            return Woke::Stop("the runtime that started cproxy exited".to_string());
        }
        if ready(0) && lease.closed() {
            return Woke::ForwarderGone;
        }
    }
}

/// How the runtime of a process that forwards by itself ended.
enum Alone {
    /// Stopped: the process exits with this.
    Exit(ExitCode),
    /// The forwarder took the socket back.
    Adopted(Lease),
}

/// docker-proxy mode with a shared forwarder at `path`: hands `socket` over, or forwards by
/// itself while no forwarder takes it (see the module's words). Reports on `status` once the
/// port is served, by either.
pub fn serve(
    tuning: &Tuning,
    proto: Proto,
    socket: OwnedFd,
    backend: SocketAddr,
    path: &Path,
    start: Start,
) -> ExitCode {
    let (parent, status) = match start {
        // The runtime already gone: nobody wants the port any more.
        Start::Fresh(status) => match Parent::of(&status) {
            Some(parent) => (parent, Some(status)),
            None => return ExitCode::SUCCESS,
        },
        Start::Resumed { parent: None } => (None, None),
        Start::Resumed { parent: Some(pid) } => match Parent::follow().filter(|p| p.pid() == pid) {
            Some(parent) => (Some(parent), None),
            None => return ExitCode::SUCCESS,
        },
    };
    serve::raise_fd_limit();
    let stop = match signals::SignalFd::block() {
        Ok(s) => s,
        Err(e) => {
            let e = AppError::io("cannot handle signals", e);
            return match status {
                Some(status) => e.report(status),
                None => {
                    tracing::error!(error = %e, "cannot forward");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let settings = AdoptSettings::from_tuning(tuning);
    let mut status = status;
    // Resumed: the forwarder has just gone; forward at once, offer the port again later.
    let mut lease = match status.is_some() {
        false => None,
        true => match offer(path, proto, socket.as_fd(), backend, &settings) {
            Ok(lease) => Some(lease),
            Err(OfferError::Absent) => None,
            Err(OfferError::Refused(e)) => {
                tracing::warn!(forwarder = %path.display(), error = %e, "the shared forwarder \
                               did not take the port: forwarding by itself");
                None
            }
        },
    };
    loop {
        let held = match lease.take() {
            Some(held) => held,
            None => {
                let alone = alone(
                    tuning,
                    proto,
                    &socket,
                    backend,
                    path,
                    &settings,
                    &mut status,
                    &stop,
                    parent.as_ref(),
                );
                match alone {
                    Alone::Exit(code) => return code,
                    Alone::Adopted(held) => held,
                }
            }
        };
        if let Some(status) = status.take() {
            status.ready();
        }
        tracing::info!(forwarder = %path.display(), id = %held.id, "the shared forwarder serves the port");
        let error = become_waiter(&held, &socket, tuning, parent.as_ref());
        // Still here: no waiter beside this program (or it could not be started).
        if error.kind() == io::ErrorKind::NotFound {
            tracing::debug!(error = %error, "no {} beside this program: waiting in this process", crate::lease::PROGRAM);
        } else {
            tracing::warn!(error = %error, "cannot start {}: waiting in this process", crate::lease::PROGRAM);
        }
        // Whatever the runtime left on the heap goes back to the kernel while this waits.
        crate::sys::trim_heap();
        match wait(&held, &stop, parent.as_ref()) {
            Woke::Stop(why) => {
                tracing::info!(%why, "stopping: the forwarder removes the binding and drains it");
                held.remove(tuning.grace);
                return ExitCode::SUCCESS;
            }
            Woke::ForwarderGone => {
                tracing::warn!(forwarder = %path.display(), "the shared forwarder is gone: forwarding by itself (the connections it held are lost)");
            }
        }
    }
}

/// How a docker-proxy-mode process with a shared forwarder starts.
pub enum Start {
    /// Started by the runtime (dockerd): the port is reported on the status pipe once served.
    Fresh(StatusPipe),
    /// Resumed by [`crate::lease`] because the forwarder went: the status was reported long
    /// ago; `parent` is the runtime to follow, if one started the first process.
    Resumed {
        /// The runtime's pid.
        parent: Option<i32>,
    },
}

/// Becomes [`crate::lease::PROGRAM`], found beside this program, with the lease, the socket
/// and this program itself on the descriptors the contract numbers, and this process's command
/// line (see [`crate::lease`]). Returns only if that failed: the error (`NotFound` when there
/// is no waiter to run). Call with no other thread running that holds a lock or a descriptor
/// that matters (the `exec` ends them).
fn become_waiter(
    lease: &Lease,
    socket: &OwnedFd,
    tuning: &Tuning,
    parent: Option<&Parent>,
) -> io::Error {
    use crate::lease::{CONTROL_FD, PROGRAM_FD, SOCKET_FD, Waiter};
    let waiter = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(crate::lease::PROGRAM),
        Err(e) => return e,
    };
    if let Err(e) = nix::unistd::access(&waiter, nix::unistd::AccessFlags::X_OK) {
        return io::Error::from(e);
    }
    let program = match nix::fcntl::open(
        "/proc/self/exe",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return io::Error::from(e),
    };
    let plan = Waiter {
        id: lease.id.into(),
        grace: tuning.grace,
        parent: parent.map(Parent::pid),
        json_logs: tuning.json_logs(),
        program_args: crate::lease::without_resumed_flag(std::env::args_os()),
    };
    // Out of the way first (above the contract's numbers), then onto them: `dup2` leaves the
    // new descriptors open across the `exec`, and never closes a source it still needs.
    let high =
        |fd: BorrowedFd<'_>| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10));
    let sources = [lease.fd(), socket.as_fd(), program.as_fd()];
    let mut moved = Vec::with_capacity(3);
    for fd in sources {
        match high(fd) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            Ok(raw) => moved.push(unsafe { OwnedFd::from_raw_fd(raw) }),
            Err(e) => return io::Error::from(e),
        }
    }
    let targets = [CONTROL_FD, SOCKET_FD, PROGRAM_FD];
    // What the numbers hold now (a signalfd, a socket of ours, nothing), to put back if the
    // `exec` fails, with their close-on-exec flag.
    let saved: Vec<Option<(OwnedFd, bool)>> = targets
        .iter()
        .map(|&to| {
            // SAFETY: borrowed only to copy it; a closed number fails with EBADF.
            let fd = unsafe { BorrowedFd::borrow_raw(to) };
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).ok()?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            let copy = high(fd).ok().map(|raw| unsafe { OwnedFd::from_raw_fd(raw) })?;
            Some((copy, flags & libc::FD_CLOEXEC != 0))
        })
        .collect();
    for (from, to) in moved.iter().zip(targets) {
        // SAFETY: dup2 onto a number the contract reserves; whatever was there (a closed
        // status pipe's number, or one of the sources, copied above) is replaced.
        if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
            return io::Error::last_os_error();
        }
    }
    let mut argv = vec![waiter.clone().into_os_string()];
    argv.extend(plan.to_args());
    let error = crate::lease::exec_path(waiter.as_os_str(), &argv);
    // Still here: each number gets back what it held.
    for (to, saved) in targets.into_iter().zip(saved) {
        match saved {
            // SAFETY: dup2 onto the number it was copied from; the flag as it was.
            Some((copy, cloexec)) => unsafe {
                libc::dup2(copy.as_raw_fd(), to);
                if cloexec {
                    libc::fcntl(to, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            },
            // SAFETY: a number dup2 filled above, which nothing in this process owns.
            None => unsafe {
                libc::close(to);
            },
        }
    }
    error
}

/// Forwards by itself on a copy of `socket`, as docker-proxy mode without a forwarder does,
/// trying the forwarder every [`RETRY`], until a stop (then drains and exits) or until the
/// forwarder takes the socket back (then lets its own connections finish, and returns).
#[allow(clippy::too_many_arguments)]
fn alone(
    tuning: &Tuning,
    proto: Proto,
    socket: &OwnedFd,
    backend: SocketAddr,
    path: &Path,
    settings: &AdoptSettings,
    status: &mut Option<StatusPipe>,
    stop: &signals::SignalFd,
    parent: Option<&Parent>,
) -> Alone {
    let report = |status: &mut Option<StatusPipe>, e: AppError| match status.take() {
        Some(s) => Alone::Exit(e.report(s)),
        None => {
            tracing::error!(error = %e, "cannot forward");
            Alone::Exit(ExitCode::FAILURE)
        }
    };
    let (runtime, spread) = match serve::runtime(tuning, Threads::FollowLoad) {
        Ok(rt) => rt,
        Err(e) => return report(status, AppError::io("cannot start runtime", e)),
    };
    runtime.block_on(async {
        let proxy = Proxy::new(tuning.config());
        proxy.spread(spread);
        let routing = crate::transparent::HostRouting::new();
        routing.sweep();
        proxy.route_replies_with(std::sync::Arc::new(routing));
        let signals = match stop.register() {
            Ok(fd) => fd,
            Err(e) => return report(status, AppError::io("cannot handle signals", e)),
        };
        let add = |proxy: &Proxy| -> Result<BindingId, AppError> {
            let copy = socket.try_clone().map_err(|e| AppError::io("cannot copy the socket", e))?;
            let info = proxy.add_socket(proto, copy, backend)?;
            tracing::info!(binding = %info.binding, local = %info.local, forwarder = %path.display(), "forwarding");
            Ok(info.id)
        };
        let mut own = match add(&proxy) {
            Ok(id) => id,
            Err(e) => return report(status, e),
        };
        tracing::info!(forwarder = %path.display(), "forwarding by itself");
        if let Some(s) = status.take() {
            s.ready();
        }
        let parent_exited = async {
            match parent {
                Some(parent) => parent.exited().await,
                None => std::future::pending().await,
            }
        };
        let mut parent_exited = std::pin::pin!(parent_exited);
        let mut pause = RETRY;
        let mut logged = false;
        let why = loop {
            tokio::select! {
                sig = stop.recv(&signals) => break format!("signal {}", signals::name(sig)),
                _ = parent_exited.as_mut() => break "the runtime that started cproxy exited".to_string(),
                _ = tokio::time::sleep(pause) => {}
            }
            let lease = match offer(path, proto, socket.as_fd(), backend, settings) {
                Ok(lease) => lease,
                Err(OfferError::Absent) => {
                    pause = (pause * 2).min(RETRY_MAX);
                    continue;
                }
                Err(OfferError::Refused(e)) => {
                    if !logged {
                        tracing::warn!(forwarder = %path.display(), error = %e, "the shared forwarder did not take the port");
                        logged = true;
                    }
                    continue;
                }
            };
            tracing::info!(forwarder = %path.display(), id = %lease.id, "the shared forwarder took the port: own connections finish by themselves");
            // Its own connections finish; the forwarder going again meanwhile puts the port
            // back in this process's hands at once.
            // SAFETY: the registration borrows the lease's connection, which outlives it.
            let watched = unsafe { AsyncFd::register_with_interest(lease.fd(), Interest::READABLE) };
            let gone = async {
                let Ok(watched) = &watched else { return std::future::pending().await };
                loop {
                    let Ok(mut ready) = watched.readable().await else { return };
                    if lease.closed() {
                        return;
                    }
                    ready.clear_ready();
                }
            };
            tokio::select! {
                _ = proxy.release(own) => {
                    drop(watched);
                    return Alone::Adopted(lease);
                }
                _ = gone => {
                    tracing::warn!("the shared forwarder is gone again: forwarding by itself");
                    match add(&proxy) {
                        Ok(id) => own = id,
                        Err(e) => return report(status, e),
                    }
                }
                sig = stop.recv(&signals) => {
                    drop(watched);
                    let grace = tuning.grace;
                    let removing = std::thread::spawn(move || lease.remove(grace));
                    stopping(&proxy, stop, &signals, format!("signal {}", signals::name(sig))).await;
                    let _ = removing.join();
                    return Alone::Exit(ExitCode::SUCCESS);
                }
            }
        };
        stopping(&proxy, stop, &signals, why).await;
        Alone::Exit(ExitCode::SUCCESS)
    })
}

/// Drains the proxy as docker-proxy mode does on a stop; a second signal resets what is left.
async fn stopping(
    proxy: &Proxy,
    stop: &signals::SignalFd,
    signals: &AsyncFd<BorrowedFd<'_>>,
    why: String,
) {
    tracing::info!(%why, grace = ?proxy.config().grace, "stopping: no new connections; idle ones close now, busy ones get the grace period");
    tokio::select! {
        _ = proxy.shutdown() => {}
        sig = stop.recv(signals) => {
            tracing::info!(signal = %signals::name(sig), "second stop signal: resetting open connections");
            proxy.kill();
            proxy.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_go_over_the_wire_and_back() {
        let mut tuning = crate::cli::Tuning {
            grace: Duration::from_millis(1500),
            connect_timeout: Duration::from_secs(3),
            max_conns: 7,
            tcp_idle_timeout: None,
            tcp_keepalive: Duration::ZERO,
            udp_idle_timeout: Duration::from_secs(90),
            udp_max_sessions: 9,
            pipe_size: 65536,
            no_splice: true,
            proxy_protocol: Some(Version::V2),
            source_ip_transparent: false,
            log_format: "text".into(),
            threads: None,
        };
        let s = AdoptSettings::from_tuning(&tuning);
        assert_eq!(s.to_string().parse::<AdoptSettings>(), Ok(s.clone()));
        let c = s.over(&Config::default());
        assert_eq!(c.grace, Duration::from_millis(1500));
        assert_eq!((c.max_connections, c.udp_max_sessions), (7, 9));
        assert_eq!((c.tcp_idle_timeout, c.tcp_keepalive), (None, None));
        assert_eq!(c.relay, RelayMode::Copy);
        assert_eq!(c.proxy_protocol, Some(Version::V2));
        tuning.proxy_protocol = None;
        let none = AdoptSettings::from_tuning(&tuning).to_string();
        assert!(none.contains("proxy_protocol=none"), "{none}");
        assert_eq!("".parse::<AdoptSettings>(), Ok(AdoptSettings::default()));
    }

    #[test]
    fn bad_settings_are_refused_in_words() {
        for (words, want) in [
            ("grace_ns", "use KEY=VALUE"),
            ("grace_ns=1s", "nanoseconds"),
            ("max_conns=0", "a count from 1"),
            ("connect_timeout_ns=0", "more than 0"),
            ("no_splice=yes", "true or false"),
            ("proxy_protocol=v3", "none, v1 or v2"),
            ("grace_ns=1 grace_ns=2", "given twice"),
            ("pipe_size=4096", "unknown setting"),
        ] {
            let e = words.parse::<AdoptSettings>().unwrap_err();
            assert!(e.contains(want), "{words}: {e}");
        }
    }

    #[test]
    fn the_environment_names_the_forwarder_or_turns_it_off() {
        // The variable is read, not set, here: the test process may have it set.
        match std::env::var_os(PATH_ENV) {
            None => {
                let there = std::path::Path::new(DEFAULT_PATH).exists();
                let default = Some(PathBuf::from(DEFAULT_PATH));
                assert_eq!(forwarder_path(None, false), default.clone().filter(|_| there));
                assert_eq!(forwarder_path(None, true), default);
                assert_eq!(forwarder_path(Some("/x.sock"), false), Some(PathBuf::from("/x.sock")));
                assert_eq!(forwarder_path(Some(""), true), None);
            }
            Some(v) if v.is_empty() => assert_eq!(forwarder_path(Some("/x.sock"), true), None),
            Some(v) => assert_eq!(forwarder_path(None, false), Some(PathBuf::from(v))),
        }
    }
}
