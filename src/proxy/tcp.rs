//! TCP bindings: the accept loop (connection limit, descriptor budget, back-off on descriptor
//! exhaustion) and the per-connection task (keepalive on both sockets, bounded backend dial,
//! then the relay until the connection ends or is no longer wanted, see [`ending`]).
//!
//! The accept loop never ends on an error: docker-proxy's did on `EMFILE` and left the port dead
//! (moby #6402). When the process is out of descriptors it sleeps with exponential back-off,
//! logs once per episode, and resumes by itself when descriptors free up.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Semaphore;

use super::lanes::Seat;
use super::proxy_proto;
use super::relay;
use super::sock::Sock;
use super::transparent::{self, Fallback};
use super::{BindingCtx, Proto, ProxyError, Stats, exhausted};
use crate::sys;

mod ending;
use ending::{ResetIfCut, relay_while_wanted, unless_stopped};

/// Backlog asked of `listen(2)`; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;
/// First and longest pause of the accept loop while descriptors are exhausted.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listening socket registered with the runtime that accepts on it. Connections are accepted
/// without the runtime (see [`accept`]), so that each registers only with the runtime of the
/// thread that serves it.
pub(crate) struct Listener {
    socket: AsyncFd<std::net::TcpListener>,
    /// Its connections have their socket options from it: they were set on it before it
    /// listened (Linux copies a listener's socket and TCP options into each connection it
    /// accepts), which saves five system calls per connection.
    inherited: bool,
}

impl Listener {
    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }
}

/// Binds and listens on `addr` as docker-proxy does: `SO_REUSEADDR`, and IPv6 sockets are
/// IPv6-only (Docker runs a separate proxy per address family). Its connections inherit their
/// socket options, `keepalive` among them.
pub(crate) fn listen(
    addr: SocketAddr,
    keepalive: Option<Duration>,
) -> Result<Listener, ProxyError> {
    let err = |e| ProxyError::listen(Proto::Tcp, addr, e);
    let (sock, inherited) = listen_unwatched(addr, keepalive)?;
    let socket = watch(sock.into()).map_err(err)?;
    Ok(Listener { socket, inherited })
}

/// As [`listen`], registered with no runtime: the socket, and whether the connections it
/// accepts inherit their options from it.
pub(crate) fn listen_unwatched(
    addr: SocketAddr,
    keepalive: Option<Duration>,
) -> Result<(socket2::Socket, bool), ProxyError> {
    let err = |e| ProxyError::listen(Proto::Tcp, addr, e);
    let sock = bound_socket(addr).map_err(err)?;
    // Before it listens: a connection the kernel completed earlier would have none of them.
    let inherited = socket_options(&sock, keepalive).is_ok();
    sock.listen(BACKLOG).map_err(err)?;
    Ok((sock, inherited))
}

/// Serves a listening socket someone else made (dockerd's `-use-listen-fd`, the port
/// allocator's). Connections may have queued before cproxy had it, so each gets its socket
/// options.
pub(crate) fn adopt(listener: std::net::TcpListener) -> io::Result<Listener> {
    Ok(Listener { socket: watch(listener)?, inherited: false })
}

/// Registers a listening socket with the current runtime, for [`accept`].
fn watch(listener: std::net::TcpListener) -> io::Result<AsyncFd<std::net::TcpListener>> {
    // SAFETY: the `AsyncFd` owns the listener, whose descriptor stays open, and is the one
    // `as_raw_fd` returns, for as long as it is registered.
    let watched = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) };
    watched.map_err(io::Error::from)
}

/// A socket as [`listen`] serves it: non-blocking, close-on-exec, bound and listening. Shared
/// with the port allocator, whose sockets end up served the same way.
pub(crate) fn listening_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let sock = bound_socket(addr)?;
    sock.listen(BACKLOG)?;
    Ok(sock)
}

/// A TCP socket for `addr`'s family: non-blocking and close-on-exec from the start.
fn stream_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )
}

/// A non-blocking, close-on-exec TCP socket bound to `addr`, not yet listening.
fn bound_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let sock = stream_socket(addr)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// Tracks one binding's descriptor-exhaustion episode. It starts when accept, the backend dial
/// or a pipe fails for lack of descriptors. The accept loop stops backing off as soon as an
/// attempt gets the descriptors it asks for: a connection set up, or a dial that had its socket
/// even if the backend refused it (so a binding whose backend is down goes back to resetting
/// its clients at once). The episode is declared over, and logged so, after a quiet second
/// with no such failure, so that it is logged once per episode, not once per attempt (a burst
/// of concurrent setups interleaves successes and failures).
struct Exhaustion {
    /// The latest attempt failed for lack of descriptors: the accept loop backs off.
    failing: AtomicBool,
    /// An episode has been logged and not yet declared over.
    logged: AtomicBool,
    /// When the latest failure happened, in ms since `epoch`.
    last_hit_ms: AtomicU64,
    epoch: Instant,
    /// Where episodes are counted.
    stats: Arc<Stats>,
}

/// How long without exhaustion before an episode is declared over.
const EPISODE_QUIET: Duration = Duration::from_secs(1);

impl Exhaustion {
    fn new(stats: Arc<Stats>) -> Exhaustion {
        Exhaustion {
            stats,
            failing: AtomicBool::new(false),
            logged: AtomicBool::new(false),
            last_hit_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Records `e` if it means exhaustion; returns whether it did.
    fn hit(&self, e: &io::Error) -> bool {
        if !exhausted(e) {
            return false;
        }
        self.failing.store(true, Ordering::Relaxed);
        self.last_hit_ms.store(self.now_ms(), Ordering::Relaxed);
        if !self.logged.swap(true, Ordering::Relaxed) {
            Stats::add(&self.stats.exhaustion_episodes, 1);
            tracing::warn!(error = %e, "out of descriptors, backing off until they free up");
        }
        true
    }

    /// An attempt got every descriptor it asked for.
    fn descriptors_available(&self) {
        self.failing.store(false, Ordering::Relaxed);
        let quiet = self.now_ms().saturating_sub(self.last_hit_ms.load(Ordering::Relaxed));
        if quiet >= EPISODE_QUIET.as_millis() as u64 && self.logged.swap(false, Ordering::Relaxed) {
            tracing::warn!("descriptors available again");
        }
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

/// Serves a TCP binding until its `stop` token is cancelled; the listener closes on return.
/// Runs in its binding's span (`binding{proto, host, backend}`, entered by the caller); each
/// connection runs in a `conn{client}` span under it.
pub(crate) async fn serve(listener: Listener, ctx: BindingCtx) {
    let inherited = listener.inherited;
    let ctx = Arc::new(ctx);
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections.min(Semaphore::MAX_PERMITS)));
    let exhaustion = Arc::new(Exhaustion::new(ctx.stats.clone()));
    let mut pause = BACKOFF_MIN;
    loop {
        // While out of descriptors, each attempt would only reset a waiting client: leave
        // them in the backlog and retry at a falling rate instead.
        if exhaustion.failing() {
            tokio::select! {
                _ = ctx.accept.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(BACKOFF_MAX);
        } else {
            pause = BACKOFF_MIN;
        }
        let accepted = tokio::select! {
            biased;
            _ = ctx.accept.cancelled() => break,
            r = accept(&listener) => r,
        };
        let (client, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                Stats::add(&ctx.stats.accept_errors, 1);
                if !exhaustion.hit(&e) {
                    // ECONNABORTED and friends concern one connection, not the listener.
                    tracing::debug!(error = %e, "accept failed");
                }
                continue;
            }
        };
        admit(client, peer, &ctx, &limit, &exhaustion, inherited);
    }
    // Clients the kernel already completed a handshake with believe they are connected:
    // serve them rather than reset them with the listener. No more than the backlog can hold:
    // clients still connecting at full speed would otherwise keep the port open for ever.
    let mut drained = 0usize;
    for (client, peer) in queued(&listener).take(QUEUED_AT_STOP) {
        admit(client, peer, &ctx, &limit, &exhaustion, inherited);
        drained += 1;
    }
    if drained > 0 {
        tracing::debug!(drained, "served connections queued at stop");
    }
}

/// Connections served from the accept queue once a binding stops: as many as its backlog holds.
const QUEUED_AT_STOP: usize = BACKLOG as usize;

/// The connections waiting in `listener`'s accept queue, taken without waiting on the
/// runtime's readiness (which may not have seen them yet); ends when the queue is empty.
fn queued(listener: &Listener) -> impl Iterator<Item = (std::net::TcpStream, SocketAddr)> + '_ {
    std::iter::from_fn(move || accept_now(listener.socket.get_ref()).ok())
}

/// The next connection: non-blocking and close-on-exec, and registered with no runtime yet.
async fn accept(listener: &Listener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    loop {
        let mut ready = listener.socket.readable().await?;
        if let Ok(accepted) = ready.try_io(|l| accept_now(l.get_ref())) {
            return accepted;
        }
    }
}

/// One `accept4`, without waiting: `WouldBlock` when the queue is empty.
fn accept_now(listener: &std::net::TcpListener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    let (sock, peer) = socket2::SockRef::from(listener).accept4(flags)?;
    let peer = peer.as_socket().ok_or_else(|| io::Error::other("a peer without an IP address"))?;
    Ok((sock.into(), peer))
}

/// Starts serving an accepted client, or resets it if the binding is at its connection limit
/// or out of its share of descriptors. `inherited`: the client's socket has its options from
/// its listener.
fn admit(
    client: std::net::TcpStream,
    peer: SocketAddr,
    ctx: &Arc<BindingCtx>,
    limit: &Arc<Semaphore>,
    exhaustion: &Arc<Exhaustion>,
    inherited: bool,
) {
    Stats::add(&ctx.stats.accepted, 1);
    let Ok(permit) = limit.clone().try_acquire_owned() else {
        Stats::add(&ctx.stats.refused, 1);
        tracing::debug!(client = %peer, "connection limit reached, resetting");
        reset(&client);
        return;
    };
    let descriptors = match &ctx.descriptors {
        Some(share) => match share.lease() {
            Some(lease) => Some(lease),
            None => {
                Stats::add(&ctx.stats.refused, 1);
                tracing::debug!(client = %peer, "the binding's share of descriptors is used up, resetting");
                reset(&client);
                return;
            }
        },
        None => None,
    };
    let (conn_ctx, exhaustion) = (ctx.clone(), exhaustion.clone());
    // Entered when the task is polled (per wake-up, never per byte). At DEBUG; where that is
    // disabled (the default), the binding's span stands in for it, so that the connection's
    // warnings (out of descriptors at a dial, say) still name their binding.
    let span = tracing::debug_span!("conn", client = %peer).or_current();
    let seat = ctx.lanes.as_ref().map(|lanes| lanes.place());
    let handle = seat.as_ref().and_then(Seat::handle).cloned();
    let task = async move {
        Stats::add(&conn_ctx.stats.active, 1);
        // A token of the connection's own: polled at every wake-up, it must not share a lock
        // with every other connection of the binding.
        let kill = conn_ctx.kill.child_token();
        // Registered with the runtime of the thread it runs on, so its readiness wakes no other.
        if !inherited {
            let _ = socket_options(&client, conn_ctx.config.tcp_keepalive);
        }
        match Sock::new(client) {
            Ok(client) => tokio::select! {
                _ = connection(client, peer, &conn_ctx, &exhaustion, seat.as_ref()) => {}
                _ = kill.cancelled() => {}
            },
            Err(e) => {
                exhaustion.hit(&e);
                tracing::debug!(error = %e, "cannot watch the accepted connection, closing it");
            }
        }
        Stats::sub(&conn_ctx.stats.active, 1);
        drop((permit, descriptors, seat));
    };
    let task = tracing::Instrument::instrument(task, span);
    match handle {
        Some(worker) => ctx.tasks.spawn_on(task, &worker),
        None => ctx.tasks.spawn(task),
    };
}

/// Dials the backend within the connect timeout and relays; a client whose backend cannot be
/// reached is reset at once rather than left hanging.
async fn connection(
    client: Sock,
    peer: SocketAddr,
    ctx: &BindingCtx,
    exhaustion: &Exhaustion,
    seat: Option<&Seat>,
) {
    let _cut_client = ResetIfCut { sock: &client, kill: &ctx.kill };
    let dialing = unless_stopped(dial(ctx, peer), &ctx.stop);
    let backend = match tokio::time::timeout(ctx.config.connect_timeout, dialing).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            if !exhaustion.hit(&e) {
                exhaustion.descriptors_available();
            }
            Stats::add(&ctx.stats.dial_failures, 1);
            tracing::debug!(error = %e, "backend dial failed");
            reset(&client);
            return;
        }
        Err(_) => {
            exhaustion.descriptors_available();
            Stats::add(&ctx.stats.dial_failures, 1);
            Stats::add(&ctx.stats.dial_timeouts, 1);
            tracing::debug!("backend dial timed out");
            reset(&client);
            return;
        }
    };
    if let Some(version) = ctx.proxy_protocol
        && let Err(e) = proxy_proto::send(&backend, version, peer, client.local_addr().ok()).await
    {
        Stats::add(&ctx.stats.dial_failures, 1);
        tracing::debug!(error = %e, "sending the PROXY header failed");
        reset(&client);
        reset(&backend);
        return;
    }
    let _cut_backend = ResetIfCut { sock: &backend, kill: &ctx.kill };
    // Live, so that a scrape counts the bytes of connections still open; its totals move to
    // the binding's counters when it ends.
    let traffic = ctx.stats.track(seat.map(|s| s.lane().clone()));
    let stages = match relay::Stages::new(ctx.config.relay, &ctx.pipes) {
        Ok(stages) => stages,
        Err(e) => {
            exhaustion.hit(&e);
            tracing::debug!(error = %e, "no pipe for the connection");
            reset(&client);
            reset(&backend);
            return;
        }
    };
    exhaustion.descriptors_available();
    let result = relay_while_wanted(&client, &backend, stages, ctx, &traffic).await;
    if let Err(e) = result {
        // One side failed (typically a reset): make sure the other side learns of it as a
        // reset too, instead of an orderly end of stream that would look like success.
        let counter = match e.side {
            relay::Side::Client => &ctx.stats.client_resets,
            relay::Side::Backend => &ctx.stats.backend_resets,
        };
        Stats::add(counter, 1);
        tracing::debug!(error = %e, "connection ended with error");
        reset(&client);
        reset(&backend);
    }
}

/// Connects to the binding's backend for `client`: from the client's address and port if the
/// binding is transparent and that can be done, else from the proxy's.
async fn dial(ctx: &BindingCtx, client: SocketAddr) -> io::Result<Sock> {
    let addr = ctx.backend;
    let sock = match &ctx.transparency {
        Some(t) => match t.source(client, addr) {
            Ok(source) => match transparent::bound_socket(socket2::Type::STREAM, source) {
                Ok(sock) => Some(sock),
                Err(e) if exhausted(&e) => return Err(e),
                Err(e) => {
                    t.fell_back(Fallback::Refused, &ctx.stats, Some(&e));
                    None
                }
            },
            Err(why) => {
                t.fell_back(why, &ctx.stats, None);
                None
            }
        },
        None => None,
    };
    let sock = match sock {
        Some(sock) => sock,
        None => stream_socket(addr)?,
    };
    let _ = socket_options(&sock, ctx.config.tcp_keepalive);
    Sock::connect(sock, addr).await
}

/// The options of both sockets of a connection. Best effort: a socket that refuses one still
/// carries its connection.
/// - Go (and so docker-proxy) sets `TCP_NODELAY` on every connection; a relay must not add
///   Nagle delays to small writes either.
/// - Urgent data (telnet, FTP) stays in the byte stream (`SO_OOBINLINE`), so the relay passes it
///   on in place instead of losing it or stopping at it.
/// - TCP keepalive, as [`keep_alive`].
fn socket_options(sock: &impl AsFd, keepalive: Option<Duration>) -> io::Result<()> {
    let sock = socket2::SockRef::from(sock);
    let set = [
        sock.set_tcp_nodelay(true),
        sock.set_out_of_band_inline(true),
        keep_alive(&sock, keepalive),
    ];
    set.into_iter().collect()
}

/// Turns on TCP keepalive with `period` as both the idle time before the first probe and the
/// time between probes, as Go sets it (the number of probes is the kernel's, 9 by default).
fn keep_alive(sock: &socket2::SockRef<'_>, period: Option<Duration>) -> io::Result<()> {
    let Some(period) = period else { return Ok(()) };
    let keepalive = socket2::TcpKeepalive::new().with_time(period).with_interval(period);
    sock.set_tcp_keepalive(&keepalive).inspect_err(|e| {
        tracing::debug!(error = %e, "cannot turn on TCP keepalive");
    })
}

/// Arranges for `s` to be closed with a RST when it is dropped.
fn reset(s: &impl AsFd) {
    let _ = sys::reset_on_close(s.as_fd());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_at_stop_is_taken_only_as_far_as_asked() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        // All three handshakes are complete (connect returned): they wait in the queue.
        assert_eq!(queued(&listener).take(2).count(), 2);
        assert_eq!(queued(&listener).count(), 1, "the rest stay queued");
        drop(clients);
    }

    /// What `serve` relies on to skip setting them on every connection.
    #[tokio::test]
    async fn the_listeners_socket_options_reach_the_connections_it_accepts() {
        let period = Duration::from_secs(7);
        let listener = listen("127.0.0.1:0".parse().unwrap(), Some(period)).unwrap();
        assert!(listener.inherited);
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = queued(&listener).next().unwrap();
        let sock = socket2::SockRef::from(&accepted);
        assert!(sock.tcp_nodelay().unwrap(), "TCP_NODELAY");
        assert!(sock.out_of_band_inline().unwrap(), "SO_OOBINLINE");
        assert!(sock.keepalive().unwrap(), "SO_KEEPALIVE");
        assert_eq!(sock.tcp_keepalive_time().unwrap(), period);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), period);
    }
}
