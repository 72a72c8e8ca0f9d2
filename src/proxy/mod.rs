//! The forwarder: one [`Proxy`] serves any number of [`Binding`]s, which can be added and removed
//! while traffic flows, and shuts down by draining.
//!
//! Lifecycle of a binding: `add` binds the host socket and starts serving it. `remove` (or
//! `shutdown` for all of them) first stops accepting, which frees the port at once. Connections
//! with nothing in flight (no byte moved for a moment, nothing buffered) are then closed at once,
//! in order (a FIN, as docker-proxy closes them and as a server closes an idle keep-alive
//! connection); those still moving bytes get the grace period, each closed as soon as it goes
//! idle; what is left when the grace period ends is cut with a reset, so that a cut transfer
//! never looks complete to either peer.
//!
//! All methods that start work must be called from inside a tokio runtime.

mod budget;
mod error;
mod lanes;
pub mod proxy_proto;
mod relay;
mod sock;
mod tcp;
mod transparent;
mod udp;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::ProxyError;
#[cfg(feature = "cli")] // Only `serve` words OS errors outside the proxy.
pub(crate) use error::os_text as os_error_text;
pub use relay::RelayMode;
pub(crate) use tcp::listening_socket as tcp_listening_socket;
pub use transparent::SourceRouting;
/// The UDP session table, for `benches/udp_table.rs`: not part of the API.
#[doc(hidden)]
pub use udp::table as udp_table;

/// Transport protocol of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP: connections are accepted and relayed.
    Tcp,
    /// UDP: datagrams are forwarded through per-client sessions.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Proto, ProxyError> {
        match Proto::from_name(s) {
            Some(proto) => Ok(proto),
            None if s.eq_ignore_ascii_case("sctp") => {
                Err(ProxyError::Unsupported("sctp is not supported by cproxy".into()))
            }
            None => Err(ProxyError::Unsupported(format!("unsupported protocol {s}"))),
        }
    }
}

impl Proto {
    /// The protocol named `tcp` or `udp`, in any case (as Docker reads `-p 80/TCP`); the one
    /// place protocol names are read, each reader wording its own error.
    pub fn from_name(name: &str) -> Option<Proto> {
        [Proto::Tcp, Proto::Udp].into_iter().find(|p| name.eq_ignore_ascii_case(&p.to_string()))
    }
}

/// One forwarding rule: traffic to `host` goes to `backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// TCP or UDP.
    pub proto: Proto,
    /// Where to listen. Port 0 lets the kernel pick one; [`BindingInfo::local`] tells which.
    pub host: SocketAddr,
    /// Where to forward to.
    pub backend: SocketAddr,
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} -> {}", self.host, self.proto, self.backend)
    }
}

/// Tunables shared by all bindings of a proxy.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a backend connect may take before the client is closed.
    pub connect_timeout: Duration,
    /// How long connections still moving bytes may finish after accepting stops; idle ones
    /// are closed at once.
    pub grace: Duration,
    /// Concurrent TCP connections per binding; past it, new connections are reset at once.
    pub max_connections: usize,
    /// Close a TCP connection that moved no byte for this long (`None`: never, as docker-proxy).
    pub tcp_idle_timeout: Option<Duration>,
    /// TCP keepalive on both sides of every connection: idle time before the first probe and
    /// between probes (`None`: off). Go's default, which docker-proxy's accepted connections
    /// have, is 15 s for both, so that a peer that vanished without a word (a NAT timeout, a
    /// crash) frees its connection after about 2.5 minutes instead of holding it forever.
    pub tcp_keepalive: Option<Duration>,
    /// A UDP session with no traffic either way for this long is closed.
    pub udp_idle_timeout: Duration,
    /// UDP sessions per binding; past it, the least recently used one is evicted.
    pub udp_max_sessions: usize,
    /// Capacity asked of each splice pipe.
    pub pipe_size: usize,
    /// Splice (default) or copy.
    pub relay: RelayMode,
    /// Send every TCP backend connection a PROXY protocol header of this version first, so the
    /// backend learns the client's address (`None`: no header, as docker-proxy). A binding's
    /// [`BindingOptions`] override it; UDP bindings never carry one.
    pub proxy_protocol: Option<proxy_proto::Version>,
    /// Make every backend connection and UDP session from the client's own address and port
    /// (`IP_TRANSPARENT`), so the backend sees the real client; replies need the host's
    /// routing ([`Proxy::route_replies_with`]). A binding's [`BindingOptions`] override it.
    pub transparent: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            connect_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(5),
            max_connections: 10_000,
            tcp_idle_timeout: None,
            tcp_keepalive: Some(Duration::from_secs(15)),
            udp_idle_timeout: Duration::from_secs(90),
            udp_max_sessions: 4096,
            pipe_size: 1 << 20,
            relay: RelayMode::Splice,
            proxy_protocol: None,
            transparent: false,
        }
    }
}

/// Options of one binding that differ from the proxy's [`Config`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindingOptions {
    /// The PROXY protocol header for this binding's backend connections: `None` takes
    /// [`Config::proxy_protocol`], `Some(None)` sends none, `Some(Some(v))` sends version `v`.
    /// TCP only: asking it of a UDP binding is an error.
    pub proxy_protocol: Option<Option<proxy_proto::Version>>,
    /// Transparent mode for this binding: `None` takes [`Config::transparent`].
    pub transparent: Option<bool>,
}

/// Identifies a binding within its proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingId(u64);

impl From<u64> for BindingId {
    fn from(id: u64) -> BindingId {
        BindingId(id)
    }
}

impl From<BindingId> for u64 {
    fn from(id: BindingId) -> u64 {
        id.0
    }
}

impl fmt::Display for BindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A binding as it is being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingInfo {
    /// Its handle for `remove` and `stats`.
    pub id: BindingId,
    /// The rule as asked for.
    pub binding: Binding,
    /// The address actually bound (differs from `binding.host` when port 0 was asked for).
    pub local: SocketAddr,
}

/// Live counters of one binding.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    /// TCP connections open now.
    pub active: AtomicU64,
    /// TCP connections reset because the binding was at `max_connections` or out of its
    /// share of the process's descriptors.
    pub refused: AtomicU64,
    /// TCP connections closed because the backend could not be reached (timeouts included).
    pub dial_failures: AtomicU64,
    /// Of `dial_failures`, those where the backend did not answer within `connect_timeout`.
    pub dial_timeouts: AtomicU64,
    /// Descriptor-exhaustion episodes: each started when accept, a dial, a pipe or a UDP
    /// session failed for lack of descriptors, logged once.
    pub exhaustion_episodes: AtomicU64,
    /// Accept errors (descriptor exhaustion among them); the accept loop survives them all.
    pub accept_errors: AtomicU64,
    /// UDP sessions open now.
    pub sessions: AtomicU64,
    /// UDP sessions opened.
    pub sessions_opened: AtomicU64,
    /// UDP sessions closed for idleness.
    pub sessions_expired: AtomicU64,
    /// UDP sessions evicted to stay under `udp_max_sessions`.
    pub sessions_evicted: AtomicU64,
    /// UDP datagrams that could not be forwarded.
    pub datagrams_dropped: AtomicU64,
    /// UDP datagrams sent to backends.
    pub datagrams_to_backend: AtomicU64,
    /// UDP datagrams sent to clients.
    pub datagrams_to_client: AtomicU64,
    /// Bytes (of TCP connections that have ended) or datagram bytes (UDP) sent to backends;
    /// [`Stats::snapshot`] adds the bytes of open connections.
    pub bytes_to_backend: AtomicU64,
    /// Bytes (of TCP connections that have ended) or datagram bytes (UDP) sent to clients.
    pub bytes_to_client: AtomicU64,
    /// TCP directions that fell back from splice to copying because the kernel refused (of
    /// connections that have ended).
    pub copy_fallbacks: AtomicU64,
    /// TCP connections that ended because the client's socket failed (a reset, mostly), which
    /// the proxy passed on to the backend as a reset.
    pub client_resets: AtomicU64,
    /// TCP connections that ended because the backend's socket failed, passed on to the client
    /// as a reset.
    pub backend_resets: AtomicU64,
    /// Connections and UDP sessions of a transparent binding made from the proxy's own address
    /// instead of the client's (a loopback client, another family, a client on the backend's
    /// side of the host, no routing for replies, the kernel refusing), each reason logged once
    /// per binding.
    pub transparent_fallbacks: AtomicU64,
    /// The byte counters of open TCP connections, read by [`Stats::snapshot`]. Touched once
    /// when a connection starts relaying and once when it ends, never per byte.
    live: Mutex<LiveTraffic>,
}

/// Open connections' byte counters, by a key of their own.
#[derive(Debug, Default)]
struct LiveTraffic {
    next: u64,
    open: std::collections::HashMap<u64, Arc<relay::Traffic>>,
}

/// One open connection's byte counters (the relay adds to them as it moves bytes); when
/// dropped, its totals are moved into the binding's counters.
pub(crate) struct TrackedTraffic<'a> {
    stats: &'a Stats,
    key: u64,
    traffic: Arc<relay::Traffic>,
}

impl std::ops::Deref for TrackedTraffic<'_> {
    type Target = relay::Traffic;

    fn deref(&self) -> &relay::Traffic {
        &self.traffic
    }
}

impl Drop for TrackedTraffic<'_> {
    fn drop(&mut self) {
        // Under the lock, so that a snapshot sees these bytes either as live or as ended,
        // never both nor neither.
        let mut live = lock(&self.stats.live);
        live.open.remove(&self.key);
        let t = &self.traffic;
        Stats::add(&self.stats.bytes_to_backend, Stats::get(&t.to_backend));
        Stats::add(&self.stats.bytes_to_client, Stats::get(&t.to_client));
        Stats::add(&self.stats.copy_fallbacks, Stats::get(&t.fallbacks));
    }
}

/// The counters of one binding at one moment, as plain numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// TCP connections accepted (refused ones included).
    pub accepted: u64,
    /// TCP connections open.
    pub active: u64,
    /// TCP connections reset at `max_connections`.
    pub refused: u64,
    /// Backend dials that failed, timeouts included.
    pub dial_failures: u64,
    /// Backend dials that timed out.
    pub dial_timeouts: u64,
    /// Accept errors.
    pub accept_errors: u64,
    /// Descriptor-exhaustion episodes.
    pub exhaustion_episodes: u64,
    /// UDP sessions open.
    pub sessions: u64,
    /// UDP sessions opened.
    pub sessions_opened: u64,
    /// UDP sessions closed for idleness.
    pub sessions_expired: u64,
    /// UDP sessions evicted for room.
    pub sessions_evicted: u64,
    /// UDP datagrams sent to backends.
    pub datagrams_to_backend: u64,
    /// UDP datagrams sent to clients.
    pub datagrams_to_client: u64,
    /// UDP datagrams dropped.
    pub datagrams_dropped: u64,
    /// Bytes sent to backends, open TCP connections' included.
    pub bytes_to_backend: u64,
    /// Bytes sent to clients, open TCP connections' included.
    pub bytes_to_client: u64,
    /// TCP directions that fell back to copying, open connections' included.
    pub copy_fallbacks: u64,
    /// TCP connections ended by a failure of the client's socket.
    pub client_resets: u64,
    /// TCP connections ended by a failure of the backend's socket.
    pub backend_resets: u64,
    /// Connections and sessions of a transparent binding made from the proxy's address.
    pub transparent_fallbacks: u64,
}

impl StatsSnapshot {
    /// Every counter with its name, in a fixed order (the control socket's `stats` reply and
    /// `cproxy stats --format json` use these names).
    pub fn fields(&self) -> [(&'static str, u64); 20] {
        [
            ("accepted", self.accepted),
            ("active", self.active),
            ("refused", self.refused),
            ("dial_failures", self.dial_failures),
            ("dial_timeouts", self.dial_timeouts),
            ("accept_errors", self.accept_errors),
            ("exhaustion_episodes", self.exhaustion_episodes),
            ("sessions", self.sessions),
            ("sessions_opened", self.sessions_opened),
            ("sessions_expired", self.sessions_expired),
            ("sessions_evicted", self.sessions_evicted),
            ("datagrams_to_backend", self.datagrams_to_backend),
            ("datagrams_to_client", self.datagrams_to_client),
            ("datagrams_dropped", self.datagrams_dropped),
            ("bytes_to_backend", self.bytes_to_backend),
            ("bytes_to_client", self.bytes_to_client),
            ("copy_fallbacks", self.copy_fallbacks),
            ("client_resets", self.client_resets),
            ("backend_resets", self.backend_resets),
            ("transparent_fallbacks", self.transparent_fallbacks),
        ]
    }
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Registers a TCP connection's byte counters until the returned guard is dropped; the
    /// relay stamps `lane`, if any, as it moves bytes.
    pub(crate) fn track(&self, lane: Option<Arc<lanes::Lane>>) -> TrackedTraffic<'_> {
        let traffic = Arc::new(relay::Traffic::new(lane));
        let mut live = lock(&self.live);
        let key = live.next;
        live.next += 1;
        live.open.insert(key, traffic.clone());
        TrackedTraffic { stats: self, key, traffic }
    }

    /// Every counter now, the bytes of open TCP connections included.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = Stats::get;
        let live = lock(&self.live);
        let (mut to_backend, mut to_client, mut fallbacks) =
            (get(&self.bytes_to_backend), get(&self.bytes_to_client), get(&self.copy_fallbacks));
        for t in live.open.values() {
            to_backend += get(&t.to_backend);
            to_client += get(&t.to_client);
            fallbacks += get(&t.fallbacks);
        }
        drop(live);
        StatsSnapshot {
            accepted: get(&self.accepted),
            active: get(&self.active),
            refused: get(&self.refused),
            dial_failures: get(&self.dial_failures),
            dial_timeouts: get(&self.dial_timeouts),
            accept_errors: get(&self.accept_errors),
            exhaustion_episodes: get(&self.exhaustion_episodes),
            sessions: get(&self.sessions),
            sessions_opened: get(&self.sessions_opened),
            sessions_expired: get(&self.sessions_expired),
            sessions_evicted: get(&self.sessions_evicted),
            datagrams_to_backend: get(&self.datagrams_to_backend),
            datagrams_to_client: get(&self.datagrams_to_client),
            datagrams_dropped: get(&self.datagrams_dropped),
            bytes_to_backend: to_backend,
            bytes_to_client: to_client,
            copy_fallbacks: fallbacks,
            client_resets: get(&self.client_resets),
            backend_resets: get(&self.backend_resets),
            transparent_fallbacks: get(&self.transparent_fallbacks),
        }
    }
}

/// What the serving task of a binding needs; shared with its connections.
pub(crate) struct BindingCtx {
    pub(crate) backend: SocketAddr,
    /// The PROXY protocol header each backend connection starts with, if any.
    pub(crate) proxy_protocol: Option<proxy_proto::Version>,
    /// Transparent mode, if the binding has it: backend sockets bound to the client's address.
    pub(crate) transparency: Option<transparent::Transparency>,
    pub(crate) config: Arc<Config>,
    pub(crate) pipes: Arc<relay::PipePool>,
    pub(crate) stats: Arc<Stats>,
    /// Cancelled to stop accepting (or receiving new UDP clients); the socket closes with it.
    pub(crate) stop: CancellationToken,
    /// Ends the accept loop (a UDP binding's whole task) alone: a child of `stop`, cancelled by
    /// itself when the binding is released ([`Proxy::release`]).
    pub(crate) accept: CancellationToken,
    /// Cancelled to cut live connections and sessions.
    pub(crate) kill: CancellationToken,
    /// Every task of this binding, so removal can wait for them.
    pub(crate) tasks: TaskTracker,
    /// The binding's share of the process's descriptors, if the proxy has a budget.
    pub(crate) descriptors: Option<Arc<budget::Share>>,
    /// The threads a TCP binding's connections are spread over, if the proxy spreads.
    pub(crate) lanes: Option<Arc<lanes::Lanes>>,
}

struct Entry {
    info: BindingInfo,
    /// It holds the proxy's [`SourceRouting`] (a transparent binding whose routing was set up).
    routed: bool,
    stats: Arc<Stats>,
    /// How long its busy connections may finish when it is removed.
    grace: Duration,
    stop: CancellationToken,
    accept: CancellationToken,
    kill: CancellationToken,
    tasks: TaskTracker,
}

struct Shared {
    config: Arc<Config>,
    pipes: Arc<relay::PipePool>,
    bindings: Mutex<BTreeMap<BindingId, Entry>>,
    next_id: AtomicU64,
    /// Parent of every binding's `stop`: cancelled by `shutdown`.
    stop_all: CancellationToken,
    /// Parent of every binding's `kill`.
    kill_all: CancellationToken,
    /// The descriptors the bindings share, once [`Proxy::limit_descriptors`] set it.
    budget: Mutex<Option<Arc<budget::Budget>>>,
    /// The threads connections are spread over, once [`Proxy::spread`] set them.
    lanes: Mutex<Option<Arc<lanes::Lanes>>>,
    /// What routes replies back to transparent bindings, and how many hold it.
    routing: Mutex<Routing>,
}

/// The proxy's [`SourceRouting`] and its users.
#[derive(Default)]
struct Routing {
    /// `None`: the embedder routes replies itself (or nothing does).
    with: Option<Arc<dyn SourceRouting>>,
    /// Transparent bindings being served for which `with` was acquired.
    users: usize,
}

/// A set of bindings served in this process. Cheap to clone; clones share the bindings.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// Idle pipes a binding keeps open for reuse at least (more while more are in use): a small
/// number, so idle proxies hold few descriptors.
const IDLE_PIPES: usize = 32;

impl Proxy {
    /// A proxy with no bindings.
    pub fn new(config: Config) -> Proxy {
        let pipes = Arc::new(relay::PipePool::new(config.pipe_size, IDLE_PIPES));
        Proxy {
            shared: Arc::new(Shared {
                config: Arc::new(config),
                pipes,
                bindings: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(1),
                stop_all: CancellationToken::new(),
                kill_all: CancellationToken::new(),
                budget: Mutex::new(None),
                lanes: Mutex::new(None),
                routing: Mutex::new(Routing::default()),
            }),
        }
    }

    /// The proxy's tunables.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Shares `limit` descriptors (the process's `RLIMIT_NOFILE`) among the bindings added from
    /// now on, so that one busy binding cannot take them all: each keeps a reserve of a few
    /// connections that no other can take, a reserve is kept for the process itself (the
    /// control socket among it), and the rest goes to whichever binding needs it. A connection
    /// for which there is none is reset at once, as one past `max_connections`.
    pub fn limit_descriptors(&self, limit: u64) {
        let budget = budget::Budget::new(limit, self.shared.config.relay, IDLE_PIPES);
        *lock(&self.shared.budget) = Some(Arc::new(budget));
    }

    /// Lets the TCP bindings added from now on spread their connections over up to
    /// `max_threads` threads, this one included: worker threads start while connections overlap
    /// and end once idle (see `lanes`), so an idle proxy keeps the one thread it has. Call it
    /// from the runtime that serves the proxy (the one that `add` is called from); `1` or less
    /// changes nothing. For a proxy in a multi-thread runtime, which spreads by itself, do not.
    pub fn spread(&self, max_threads: usize) {
        if max_threads > 1 {
            let lanes = lanes::Lanes::new(max_threads, self.shared.stop_all.clone());
            *lock(&self.shared.lanes) = Some(lanes);
        }
    }

    /// Sets what makes the container's replies come back to transparent bindings' sockets:
    /// acquired when the first transparent binding starts (one whose acquisition fails falls
    /// back to forwarding from the proxy's address, and says so), released when the last one
    /// is gone. Without it, transparent bindings take the host's routing as it is.
    pub fn route_replies_with(&self, routing: Arc<dyn SourceRouting>) {
        lock(&self.shared.routing).with = Some(routing);
    }

    /// Acquires the routing for one more transparent binding: `Ok(true)` when it is held for
    /// it (to be released with it), `Ok(false)` when there is none to hold.
    fn acquire_routing(&self) -> Result<bool, String> {
        let mut routing = lock(&self.shared.routing);
        let Some(with) = routing.with.clone() else { return Ok(false) };
        if routing.users == 0 {
            with.acquire()?;
        }
        routing.users += 1;
        Ok(true)
    }

    /// Releases the routing held by `entries` (bindings that are gone).
    fn release_routing(&self, entries: &[Entry]) {
        let held = entries.iter().filter(|e| e.routed).count();
        if held == 0 {
            return;
        }
        let mut routing = lock(&self.shared.routing);
        routing.users = routing.users.saturating_sub(held);
        if routing.users == 0
            && let Some(with) = &routing.with
        {
            with.release();
        }
    }

    /// Threads serving connections now (this one and the workers started by [`Proxy::spread`]),
    /// and workers started in all; `None` if the proxy does not spread.
    pub fn lanes(&self) -> Option<(usize, u64)> {
        lock(&self.shared.lanes).as_ref().map(|l| (l.running(), l.started()))
    }

    /// Binds `binding.host` and starts forwarding to `binding.backend`.
    pub fn add(&self, binding: Binding) -> Result<BindingInfo, ProxyError> {
        self.add_with(binding, BindingOptions::default())
    }

    /// [`Proxy::add`] with options of this binding's own.
    pub fn add_with(
        &self,
        binding: Binding,
        options: BindingOptions,
    ) -> Result<BindingInfo, ProxyError> {
        check_options(binding.proto, options)?;
        match binding.proto {
            Proto::Tcp => {
                let listener = tcp::listen(binding.host, self.shared.config.tcp_keepalive)?;
                self.start(binding, Socket::Tcp(listener), options)
            }
            Proto::Udp => {
                let socket = udp::bind(binding.host)?;
                self.start(binding, Socket::Udp(socket), options)
            }
        }
    }

    /// Starts forwarding from a socket someone else bound (docker's `-use-listen-fd`): a
    /// listening TCP socket or a bound UDP socket, whichever `proto` says.
    pub fn add_socket(
        &self,
        proto: Proto,
        fd: OwnedFd,
        backend: SocketAddr,
    ) -> Result<BindingInfo, ProxyError> {
        self.add_socket_with(proto, fd, backend, BindingOptions::default())
    }

    /// [`Proxy::add_socket`] with options of this binding's own.
    pub fn add_socket_with(
        &self,
        proto: Proto,
        fd: OwnedFd,
        backend: SocketAddr,
        options: BindingOptions,
    ) -> Result<BindingInfo, ProxyError> {
        self.add_socket_configured(proto, fd, backend, options, None)
    }

    /// As [`Proxy::add_socket_with`], with a [`Config`] of the binding's own in place of the
    /// proxy's (`None`: the proxy's): its timeouts, limits, keepalive, relay mode, PROXY
    /// protocol, transparent mode and grace period. The splice pipes' size stays the proxy's
    /// (the pipes are pooled). `cproxy forward` serves an adopted listener this way, with the
    /// settings its docker-proxy mode process had.
    pub fn add_socket_configured(
        &self,
        proto: Proto,
        fd: OwnedFd,
        backend: SocketAddr,
        options: BindingOptions,
        config: Option<Config>,
    ) -> Result<BindingInfo, ProxyError> {
        check_options(proto, options)?;
        let config = config.map(Arc::new);
        let sock = socket2::Socket::from(fd);
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| ProxyError::BadSocket("the passed fd is not an IP socket".into()))?;
        let binding = Binding { proto, host: local, backend };
        let ty = sock.r#type().map_err(|e| ProxyError::BadSocket(e.to_string()))?;
        match proto {
            Proto::Tcp => {
                if ty != socket2::Type::STREAM {
                    return Err(ProxyError::BadSocket(
                        "unexpected socket type for listener fd: not tcp".into(),
                    ));
                }
                if !listening(&sock) {
                    return Err(ProxyError::BadSocket(
                        "the passed tcp socket is not listening".into(),
                    ));
                }
                sock.set_nonblocking(true).map_err(|e| ProxyError::BadSocket(e.to_string()))?;
                let listener =
                    tcp::adopt(sock.into()).map_err(|e| ProxyError::BadSocket(e.to_string()))?;
                self.start_configured(binding, Socket::Tcp(listener), options, config)
            }
            Proto::Udp => {
                if ty != socket2::Type::DGRAM {
                    return Err(ProxyError::BadSocket(
                        "unexpected socket type for listener fd: not udp".into(),
                    ));
                }
                let socket = udp::adopt(sock)?;
                self.start_configured(binding, Socket::Udp(socket), options, config)
            }
        }
    }

    fn start(
        &self,
        binding: Binding,
        socket: Socket,
        options: BindingOptions,
    ) -> Result<BindingInfo, ProxyError> {
        self.start_configured(binding, socket, options, None)
    }

    fn start_configured(
        &self,
        binding: Binding,
        socket: Socket,
        options: BindingOptions,
        config: Option<Arc<Config>>,
    ) -> Result<BindingInfo, ProxyError> {
        let config = config.unwrap_or_else(|| self.shared.config.clone());
        let local = socket.local_addr()?;
        if forwards_to_itself(local, binding.backend) {
            let (proto, backend) = (binding.proto, binding.backend);
            return Err(ProxyError::ForwardsToItself { proto, local, backend });
        }
        let id = BindingId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let info = BindingInfo { id, binding, local };
        let proxy_protocol = match binding.proto {
            Proto::Tcp => options.proxy_protocol.unwrap_or(config.proxy_protocol),
            Proto::Udp => None,
        };
        let mut routed = false;
        let transparency = options.transparent.unwrap_or(config.transparent).then(|| {
            let routing = self.acquire_routing();
            routed = routing == Ok(true);
            if let Err(e) = &routing {
                tracing::warn!(%binding, error = %e,
                    "source-ip-transparent: replies cannot be routed back to cproxy; this \
                     binding forwards from cproxy's own address");
            }
            transparent::Transparency::new(routing.map(|_| ()))
        });
        let stop = self.shared.stop_all.child_token();
        let ctx = BindingCtx {
            backend: binding.backend,
            proxy_protocol,
            transparency,
            config: config.clone(),
            pipes: self.shared.pipes.clone(),
            stats: Arc::new(Stats::default()),
            stop: stop.clone(),
            accept: stop.child_token(),
            kill: self.shared.kill_all.child_token(),
            tasks: TaskTracker::new(),
            descriptors: match binding.proto {
                // A UDP binding's descriptors are its sessions, bounded by udp_max_sessions.
                Proto::Udp => None,
                Proto::Tcp => lock(&self.shared.budget).as_ref().map(|b| b.share()),
            },
            lanes: match binding.proto {
                // A UDP binding is one task, with no connections to spread.
                Proto::Udp => None,
                Proto::Tcp => lock(&self.shared.lanes).clone(),
            },
        };
        let entry = Entry {
            info,
            routed,
            stats: ctx.stats.clone(),
            grace: config.grace,
            stop: ctx.stop.clone(),
            accept: ctx.accept.clone(),
            kill: ctx.kill.clone(),
            tasks: ctx.tasks.clone(),
        };
        {
            // Under the lock that `shutdown` takes the bindings with, so that a binding is
            // either taken (and drained) by it or refused here, never left serving nothing.
            let mut bindings = lock(&self.shared.bindings);
            if self.shared.stop_all.is_cancelled() {
                drop(bindings);
                self.release_routing(&[entry]);
                return Err(ProxyError::Stopping);
            }
            bindings.insert(id, entry);
        }
        let tasks = ctx.tasks.clone();
        // At WARN, the default level, so that the warnings of a binding (out of descriptors,
        // say) tell which one; entered per accept or datagram batch, not per byte.
        let span = tracing::warn_span!(
            "binding",
            proto = %binding.proto,
            host = %local,
            backend = %binding.backend
        );
        use tracing::Instrument;
        match socket {
            Socket::Tcp(l) => tasks.spawn(tcp::serve(l, ctx).instrument(span)),
            Socket::Udp(s) => tasks.spawn(udp::serve(s, ctx).instrument(span)),
        };
        tracing::debug!(%binding, %local, "binding started");
        Ok(info)
    }

    /// Stops a binding: its port is released at once, its idle connections are closed, the
    /// busy ones get the grace period and are then reset.
    /// Returns false if no such binding exists.
    pub async fn remove(&self, id: BindingId) -> bool {
        let entry = lock(&self.shared.bindings).remove(&id);
        match entry {
            Some(entry) => {
                let entries = drain(vec![entry]).await;
                self.release_routing(&entries);
                true
            }
            None => false,
        }
    }

    /// Stops a binding's accepting (a UDP binding's forwarding, sessions and all) and returns
    /// once its connections have ended by themselves, however long they take: the binding is
    /// listed (and counted) until then, and gone after. Its socket is closed: a process that
    /// kept a copy of the listener goes on holding the port. This is how a docker-proxy mode
    /// process hands its port back to a shared forwarder without cutting what it serves. A
    /// [`Proxy::shutdown`] or [`Proxy::kill`] meanwhile ends the connections as usual. False if
    /// no such binding exists.
    pub async fn release(&self, id: BindingId) -> bool {
        let Some((accept, tasks)) =
            lock(&self.shared.bindings).get(&id).map(|e| (e.accept.clone(), e.tasks.clone()))
        else {
            return false;
        };
        accept.cancel();
        tasks.close();
        tasks.wait().await;
        let entry = lock(&self.shared.bindings).remove(&id);
        if let Some(entry) = entry {
            self.release_routing(&[entry]);
        }
        true
    }

    /// Removes bindings all at once (as [`Proxy::remove`] each) and returns once every one of
    /// them is gone: their ports are free and their connections closed. This is how a
    /// publication that failed part-way is rolled back, so a retry right after cannot find a
    /// port still held.
    pub async fn remove_all(&self, ids: impl IntoIterator<Item = BindingId>) {
        let entries: Vec<_> = {
            let mut bindings = lock(&self.shared.bindings);
            ids.into_iter().filter_map(|id| bindings.remove(&id)).collect()
        };
        if !entries.is_empty() {
            let entries = drain(entries).await;
            self.release_routing(&entries);
        }
    }

    /// The bindings being served, in the order they were added.
    pub fn list(&self) -> Vec<BindingInfo> {
        lock(&self.shared.bindings).values().map(|e| e.info).collect()
    }

    /// Live counters of a binding.
    pub fn stats(&self, id: BindingId) -> Option<Arc<Stats>> {
        lock(&self.shared.bindings).get(&id).map(|e| e.stats.clone())
    }

    /// Every binding with its counters, in the order they were added (for metrics and
    /// `cproxy stats`).
    pub fn all_stats(&self) -> Vec<(BindingInfo, Arc<Stats>)> {
        lock(&self.shared.bindings).values().map(|e| (e.info, e.stats.clone())).collect()
    }

    /// Stops every binding: accepting stops at once, idle connections are closed, busy ones get
    /// the grace period ([`Config::grace`]; each closed as soon as it goes idle), then are
    /// reset. Bindings added from then on are refused ([`ProxyError::Stopping`]). To cut
    /// connections without a grace period, [`Proxy::kill`] first.
    pub async fn shutdown(&self) {
        self.shared.stop_all.cancel();
        let entries: Vec<Entry> =
            std::mem::take(&mut *lock(&self.shared.bindings)).into_values().collect();
        let entries = drain(entries).await;
        self.release_routing(&entries);
    }

    /// Resolves once [`Proxy::shutdown`] (or [`Proxy::kill`]) has begun: what the tasks that
    /// serve the proxy (a control socket, a metrics listener) stop on.
    pub async fn stopping(&self) {
        self.shared.stop_all.cancelled().await
    }

    /// Cuts every live connection (with a reset) and session now (a second stop signal).
    pub fn kill(&self) {
        self.shared.stop_all.cancel();
        self.shared.kill_all.cancel();
    }
}

/// Locks one of the proxy's mutexes, recovering it if a thread panicked while holding it.
///
/// Every critical section on them is a single insert, removal, read or clone of plain values
/// (the bindings map, the budget), with nothing that can panic half-way through: a poisoned
/// lock still guards consistent data. Ignoring the poison (as `lock().ok()` did) instead would
/// drop a started binding from the map, so that it served on with nobody able to stop it.
/// Binds the host socket a binding of `proto` at `host` would serve (a TCP one listening,
/// with `keepalive` for the connections it accepts), failing as [`Proxy::add`] fails, but
/// serves nothing: a docker-proxy mode process binds its port so, to hand the socket to a
/// shared forwarder while it keeps a copy. Needs no runtime.
pub fn bind_socket(
    proto: Proto,
    host: SocketAddr,
    keepalive: Option<Duration>,
) -> Result<OwnedFd, ProxyError> {
    match proto {
        Proto::Tcp => tcp::listen_unwatched(host, keepalive).map(|(sock, _)| sock.into()),
        Proto::Udp => udp::bound(host).map(OwnedFd::from),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Refuses options a binding of `proto` cannot honour.
fn check_options(proto: Proto, options: BindingOptions) -> Result<(), ProxyError> {
    if proto == Proto::Udp && matches!(options.proxy_protocol, Some(Some(_))) {
        return Err(ProxyError::Unsupported(
            "the PROXY protocol is sent on TCP connections only: a UDP binding cannot carry it"
                .into(),
        ));
    }
    Ok(())
}

/// Stops accepting on `entries`, waits up to each one's grace period for its tasks
/// (connections close by themselves as soon as they have nothing in flight), then cuts what is
/// left with resets. Gives the entries back once all their tasks are done.
async fn drain(mut entries: Vec<Entry>) -> Vec<Entry> {
    for e in &entries {
        e.stop.cancel();
        e.tasks.close();
    }
    // Shortest grace first: each waits until its own deadline, counted from the stop.
    entries.sort_by_key(|e| e.grace);
    let stopped = tokio::time::Instant::now();
    let mut logged = false;
    for e in &entries {
        if tokio::time::timeout_at(stopped + e.grace, e.tasks.wait()).await.is_err() && !logged {
            tracing::info!("grace period over, closing remaining connections");
            logged = true;
        }
        e.kill.cancel();
    }
    for e in &entries {
        e.tasks.wait().await;
    }
    entries
}

enum Socket {
    Tcp(tcp::Listener),
    Udp(udp::HostSocket),
}

impl Socket {
    fn local_addr(&self) -> Result<SocketAddr, ProxyError> {
        let r = match self {
            Socket::Tcp(l) => l.local_addr(),
            Socket::Udp(s) => s.local_addr(),
        };
        r.map_err(|e| ProxyError::BadSocket(e.to_string()))
    }
}

/// True for errors that mean "no descriptors or memory right now": they concern the process,
/// not one connection, and call for backing off rather than retrying at once.
pub(crate) fn exhausted(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// True when `backend` is an address the socket bound to `local` receives on: forwarding to it
/// would feed the binding its own output (for UDP, a datagram circling at full speed).
/// A wildcard `local` receives on every address of this host of its family (IPv6 sockets are
/// IPv6-only here, as Docker binds them); connecting to a wildcard `backend` reaches loopback.
fn forwards_to_itself(local: SocketAddr, backend: SocketAddr) -> bool {
    if local.port() != backend.port() {
        return false;
    }
    let local_ip = local.ip().to_canonical();
    let backend_ip = match backend.ip().to_canonical() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    if local_ip == backend_ip {
        return true;
    }
    local_ip.is_unspecified() && local_ip.is_ipv4() == backend_ip.is_ipv4() && is_local(backend_ip)
}

/// True when `ip` is an address of this host (in this network namespace): only those can be
/// bound without `IP_FREEBIND`.
fn is_local(ip: IpAddr) -> bool {
    if ip.is_loopback() {
        return true;
    }
    let Ok(sock) = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::DGRAM.cloexec(),
        None,
    ) else {
        return false;
    };
    sock.bind(&SocketAddr::new(ip, 0).into()).is_ok()
}

fn listening(sock: &socket2::Socket) -> bool {
    crate::sys::is_listening(sock.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A TCP backend on loopback that accepts one connection (on a thread of its own).
    fn one_shot_backend() -> (SocketAddr, std::thread::JoinHandle<std::net::TcpStream>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (addr, std::thread::spawn(move || listener.accept().unwrap().0))
    }

    fn tcp_binding(backend: SocketAddr) -> Binding {
        Binding { proto: Proto::Tcp, host: addr("127.0.0.1:0"), backend }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_direction_gives_its_pipe_back_while_the_other_goes_on() {
        let proxy = Proxy::new(Config::default());
        let (backend, accepted) = one_shot_backend();
        let info = proxy.add(tcp_binding(backend)).unwrap();
        let idle = proxy.shared.pipes.idle();
        let got = tokio::task::spawn_blocking(move || {
            let mut client = std::net::TcpStream::connect(info.local).unwrap();
            let mut server = accepted.join().unwrap();
            client.write_all(b"request").unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            (got, client, server)
        })
        .await
        .unwrap();
        assert_eq!(got.0, b"request");
        // The backend never answers: the other direction is still open, waiting.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while proxy.shared.pipes.idle() <= idle {
            assert!(std::time::Instant::now() < deadline, "the finished direction kept its pipe");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        proxy.kill();
        proxy.shutdown().await;
    }

    #[tokio::test]
    async fn a_binding_added_while_stopping_is_refused_not_left_stopped_at_birth() {
        let proxy = Proxy::new(Config::default());
        proxy.shutdown().await;
        let e = proxy.add(tcp_binding(addr("127.0.0.1:9"))).unwrap_err();
        assert!(matches!(e, ProxyError::Stopping), "{e:?}");
        assert_eq!(e.to_string(), "cproxy is stopping: no bindings can be added");
        assert!(proxy.list().is_empty());
    }

    #[tokio::test]
    async fn a_poisoned_bindings_lock_still_keeps_track_of_bindings() {
        let proxy = Proxy::new(Config::default());
        let shared = proxy.shared.clone();
        let _ = std::thread::spawn(move || {
            let _held = shared.bindings.lock();
            panic!("poisoning the bindings lock on purpose");
        })
        .join();
        assert!(proxy.shared.bindings.is_poisoned());
        let info = proxy.add(tcp_binding(addr("127.0.0.1:9"))).unwrap();
        assert_eq!(proxy.list(), [info], "a binding started under a poisoned lock was lost");
        assert!(proxy.stats(info.id).is_some());
        assert!(
            proxy.remove(info.id).await,
            "a binding added under a poisoned lock cannot be removed"
        );
        assert!(std::net::TcpListener::bind(info.local).is_ok(), "its port is still held");
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_backend_that_is_the_bindings_own_address_is_recognised() {
        for (local, backend) in [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("127.0.0.1:5000", "0.0.0.0:5000"),
            ("0.0.0.0:5000", "127.0.0.1:5000"),
            ("0.0.0.0:5000", "127.0.0.2:5000"),
            ("[::1]:5000", "[::1]:5000"),
            ("[::]:5000", "[::1]:5000"),
            ("127.0.0.1:5000", "[::ffff:127.0.0.1]:5000"),
        ] {
            assert!(forwards_to_itself(addr(local), addr(backend)), "{local} -> {backend}");
        }
    }

    #[test]
    fn other_ports_addresses_and_families_are_not_the_binding_itself() {
        for (local, backend) in [
            ("127.0.0.1:5000", "127.0.0.1:5001"),
            ("127.0.0.1:5000", "127.0.0.2:5000"),
            ("0.0.0.0:5000", "192.0.2.1:5000"),
            ("[::]:5000", "127.0.0.1:5000"),
            ("0.0.0.0:5000", "[::1]:5000"),
        ] {
            assert!(!forwards_to_itself(addr(local), addr(backend)), "{local} -> {backend}");
        }
    }
}
