//! The embedded DNS server's sockets and task: what answers at `127.0.0.11:53` inside every
//! container on a user-defined network. The messages themselves are handled by [`dns`] (pure);
//! this module opens the sockets, reads queries, sends answers and forwards what is not for
//! containers to the host's resolvers.
//!
//! # The interface
//!
//! ```text
//! let server = DnsServer::new(upstreams(&dns_flags, Path::new("/etc/resolv.conf")), lookup);
//! server.attach(&id, init_pid).await?;   // after the container's network is set up
//! server.detach(&id);                    // when it stops (its namespace goes with it anyway)
//! server.shutdown().await;               // when the daemon stops
//! ```
//!
//! - [`Lookup`] is how the server learns names: given the asking container's ID and a name
//!   (lower-cased, no trailing dot) it returns that name's addresses among the asker's peers, or
//!   `None`. It is called on the serving task for every A/AAAA query, so it must be quick (a
//!   map lookup under a lock, no I/O). A closure `Fn(&str, &str) -> Option<Vec<IpAddr>>` is
//!   one.
//! - [`DnsServer::attach`] opens the sockets inside the network namespace of the container's
//!   process and returns when they are bound: a query sent right after is answered. One
//!   attachment per container (not per network); attaching an ID again for another process
//!   replaces the first, and for the same process (a `network connect`) keeps it.
//! - [`DnsServer::detach`] closes that container's sockets before it returns (or, if the task
//!   is in the middle of answering that very container, as soon as it is done) and ends its TCP
//!   connections and forwarded queries.
//! - [`upstreams`] chooses where forwarded queries go: the daemon's `--dns` addresses, else the
//!   nameservers of its own `/etc/resolv.conf`, port 53, at most three (Docker's `maxExtDNS`,
//!   and glibc's limit), leaving out addresses that cannot work (unspecified, multicast,
//!   broadcast, an IPv6 link-local one without a known zone). Any `SocketAddr` works as an
//!   upstream (tests use loopback ports). With none, forwarded queries get SERVFAIL at once.
//!
//! # What Docker does, and what we do
//!
//! Docker 20.10 (libnetwork `resolver.go`) binds its resolver inside the container's namespace
//! to `127.0.0.11` on *random* ports, UDP and TCP, and adds iptables DNAT rules there that send
//! `127.0.0.11:53` to them, and runs one Go server per container. Queries it forwards go out
//! from the container's namespace, except to resolvers on the host's loopback (those from the
//! host's).
//!
//! Here there is no iptables: the sockets are bound to `127.0.0.11:53` directly inside the
//! container's namespace (nothing else in a fresh namespace holds that port), by a dedicated
//! thread that `setns`es into it (via [`netlink::in_netns`], which also makes sure `lo` is up), and
//! are then handed to tokio. Sockets keep the namespace they were made in, so **one task**
//! serves every container's sockets: a `FuturesUnordered` of per-socket receive/accept futures,
//! forwarded queries and TCP connections, each woken on its own. Forwarded queries are sent
//! from the daemon's own namespace, always, so a resolver on the host's loopback (systemd-
//! resolved's `127.0.0.53`, dnsmasq) works as it does for the host, and a container cannot use
//! the forwarder to reach anything the daemon's namespace cannot.
//!
//! # Forwarding (Docker's "extDNS")
//!
//! A query [`dns`] says to forward is sent to the upstreams in order, over the transport it came
//! by (UDP, or TCP on a fresh connection); each upstream gets [`FORWARD_TIMEOUT`]. The query
//! goes out under a random ID (so an answer cannot be guessed by its ID from inside the
//! container), and a UDP answer is only taken from the upstream's address (a connected
//! socket). As Docker, an answer that is SERVFAIL, REFUSED, a non-authoritative NXDOMAIN or
//! another error moves on to the next upstream; NOERROR or an authoritative NXDOMAIN is final.
//! The client gets the final answer with its own ID, else the last answer any upstream gave,
//! else SERVFAIL ([`dns::servfail`]; Docker sends nothing and the client times out). A
//! truncated UDP answer is relayed as it is, so that the client asks again over TCP.
//!
//! # Bounds
//!
//! - Forwarded UDP queries in flight: [`MAX_FORWARDS`] in all and
//!   [`MAX_FORWARDS_PER_CONTAINER`] per container, so a noisy container cannot take the slots of
//!   the others; a query beyond that gets SERVFAIL at once (Docker 20.10 drops it).
//!   Forwarding never holds up answering: the serving task only pushes a future.
//! - TCP connections: [`MAX_TCP`] in all and [`MAX_TCP_PER_CONTAINER`] per container; one
//!   beyond is accepted and closed. A connection carries any number of queries (RFC 1035
//!   length-prefixed, answered in order) and is closed after [`TCP_IDLE`] without a query, when
//!   a started message or an answer takes longer than 2 s, or on a message [`dns`] drops.
//! - Memory: a 4 KiB receive buffer per container, at most one message (≤ 64 KiB) per TCP
//!   connection and one query and answer (≤ 4 KiB each) per forwarded UDP query.
//!
//! Nothing that arrives can panic the task: every slice is bounds-checked and malformed
//! messages get what [`dns`] says (FORMERR, NOTIMP, or nothing).

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::supervisor::os::netlink;
use crate::supervisor::rules::dns::{self, Response, SingleLabel, Transport};

/// Where the server answers inside each container (Docker's `DefaultResolverName`).
pub const ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)), 53);
/// How many upstreams are tried, in order (Docker's `maxExtDNS`).
pub const MAX_UPSTREAMS: usize = 3;
/// How long one upstream has to answer a forwarded query (connect, send and receive).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded UDP queries in flight, all containers together.
pub const MAX_FORWARDS: usize = 256;
/// Forwarded UDP queries in flight for one container.
pub const MAX_FORWARDS_PER_CONTAINER: usize = 64;
/// Open TCP connections, all containers together.
pub const MAX_TCP: usize = 128;
/// Open TCP connections of one container.
pub const MAX_TCP_PER_CONTAINER: usize = 16;
/// How long a TCP connection may wait for its next query.
pub const TCP_IDLE: Duration = Duration::from_secs(8);
/// How long the rest of a started TCP message, or the writing of an answer, may take.
const TCP_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// A UDP query's receive buffer; a bigger datagram arrives cut and gets FORMERR.
const QUERY_BUF: usize = 4096;
/// The biggest UDP answer relayed from an upstream.
const MAX_UDP_ANSWER: usize = 4096;
/// How long a socket rests after a receive or accept error (EMFILE), so an error that
/// How often `attach` binds again when the port is taken, and how long it waits between: an
/// attachment being closed by the serving task lets go within microseconds.
const BIND_RETRIES: u32 = 20;
const BIND_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// persists cannot spin the task.
const ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Least time between two warnings about full forwarding slots.
const WARN_INTERVAL: Duration = Duration::from_secs(2);

/// Answers names for containers.
pub trait Lookup: Send + Sync + 'static {
    /// Given the asking container's ID and a name (lower-cased, no trailing dot), the addresses
    /// of that name among the asker's peers, or `None` if it is none of theirs.
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>>;
}

impl<F> Lookup for F
where
    F: Fn(&str, &str) -> Option<Vec<IpAddr>> + Send + Sync + 'static,
{
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        self(asker, name)
    }
}

/// The embedded DNS server of every container; clones share it. Dropping the last clone stops
/// it and closes every socket.
#[derive(Clone)]
pub struct DnsServer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The only long-lived strong references to the containers' sockets: removing one closes
    /// them.
    containers: Mutex<HashMap<String, Arc<Member>>>,
    task: Mutex<Option<Running>>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the serving task and its futures read.
struct Shared {
    upstreams: Vec<SocketAddr>,
    lookup: Arc<dyn Lookup>,
}

struct Running {
    /// New containers for the task to watch.
    tx: mpsc::UnboundedSender<Weak<Member>>,
    handle: Option<JoinHandle<()>>,
}

/// One served container: its sockets, by its ID.
struct Member {
    id: String,
    /// The process whose namespace the sockets were opened in.
    pid: u32,
    udp: UdpSocket,
    tcp: TcpListener,
    /// Cancelled when the container is detached (dropped), ending its connections and
    /// forwarded queries; a child of the server's.
    cancel: CancellationToken,
    forwards: Arc<AtomicUsize>,
    conns: Arc<AtomicUsize>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shut_down() -> io::Error {
    io::Error::other("the embedded DNS server is shut down")
}

impl DnsServer {
    /// A server that forwards what is not for containers to `upstreams` (see [`upstreams`]) and
    /// asks `lookup` about names. Its task starts with the first [`attach`](Self::attach).
    pub fn new(upstreams: Vec<SocketAddr>, lookup: Arc<dyn Lookup>) -> DnsServer {
        DnsServer {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared { upstreams, lookup }),
                containers: Mutex::new(HashMap::new()),
                task: Mutex::new(None),
                stop: CancellationToken::new(),
            }),
        }
    }

    /// Opens a UDP socket and a TCP listener on `127.0.0.11:53` inside the network namespace of
    /// process `pid` (bringing `lo` up there) and serves them as container `id` until
    /// [`detach`](Self::detach) or shutdown. Returns once they are bound: a query sent after it
    /// returns is answered. Attaching an `id` again replaces its first attachment.
    pub async fn attach(&self, id: &str, pid: u32) -> io::Result<()> {
        let tx = self.sender()?;
        // `network connect` of a container already served: its sockets are in place (binding
        // again in the same namespace would fail with EADDRINUSE).
        if lock(&self.inner.containers).get(id).is_some_and(|c| c.pid == pid) {
            return Ok(());
        }
        // An attachment just replaced or detached in this same namespace may still hold the
        // port for a moment: if the serving task was answering it, its sockets close when that
        // answer is sent (see `detach`). A few short retries cover that, and only that.
        let mut tries = 0;
        let (udp, tcp) = loop {
            match netlink::in_netns(pid, |h| async move {
                netlink::lo_up(&h).await?;
                let udp = std::net::UdpSocket::bind(ADDRESS)?;
                udp.set_nonblocking(true)?;
                let tcp = std::net::TcpListener::bind(ADDRESS)?;
                tcp.set_nonblocking(true)?;
                Ok((udp, tcp))
            })
            .await
            {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && tries < BIND_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(BIND_RETRY_PAUSE).await;
                }
                got => break got,
            }
        }
        .map_err(|e| io::Error::new(e.kind(), format!("embedded DNS server at {ADDRESS}: {e}")))?;
        let container = Arc::new(Member {
            id: id.to_string(),
            pid,
            udp: UdpSocket::from_std(udp)?,
            tcp: TcpListener::from_std(tcp)?,
            cancel: self.inner.stop.child_token(),
            forwards: Arc::default(),
            conns: Arc::default(),
        });
        let watch = Arc::downgrade(&container);
        let replaced = lock(&self.inner.containers).insert(id.to_string(), container);
        drop(replaced);
        if self.inner.stop.is_cancelled() || tx.send(watch).is_err() {
            let _ = lock(&self.inner.containers).remove(id);
            return Err(shut_down());
        }
        tracing::debug!(id, pid, "embedded DNS server attached");
        Ok(())
    }

    /// Stops serving container `id`: its sockets are closed, its TCP connections and forwarded
    /// queries end. Nothing happens for an ID that is not attached.
    pub fn detach(&self, id: &str) {
        let gone = lock(&self.inner.containers).remove(id);
        if gone.is_some() {
            tracing::debug!(id, "embedded DNS server detached");
        }
    }

    /// Stops serving every container and waits for the serving task to end; every socket is
    /// closed when it returns. Later attachments fail.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let gone = std::mem::take(&mut *lock(&self.inner.containers));
        drop(gone);
        let handle = lock(&self.inner.task).as_mut().and_then(|r| r.handle.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// The serving task's inbox, starting the task on the current runtime the first time.
    fn sender(&self) -> io::Result<mpsc::UnboundedSender<Weak<Member>>> {
        let mut task = lock(&self.inner.task);
        if self.inner.stop.is_cancelled() {
            return Err(shut_down());
        }
        if let Some(running) = task.as_ref() {
            return Ok(running.tx.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let serving = Serving::new(self.inner.shared.clone());
        let handle = tokio::spawn(serving.run(rx, self.inner.stop.clone()));
        *task = Some(Running { tx: tx.clone(), handle: Some(handle) });
        Ok(tx)
    }
}

/// Where forwarded queries go: `dns` (the daemon's `--dns` addresses) if any, else the
/// nameservers of `resolv_conf`; port 53, at most [`MAX_UPSTREAMS`], those that cannot work
/// left out. An unreadable file gives none.
pub fn upstreams(dns: &[IpAddr], resolv_conf: &Path) -> Vec<SocketAddr> {
    if !dns.is_empty() {
        return dns.iter().filter_map(|ip| usable(*ip, None)).take(MAX_UPSTREAMS).collect();
    }
    std::fs::read_to_string(resolv_conf).map(|t| parse_resolv_conf(&t)).unwrap_or_default()
}

/// The `nameserver` lines of a resolv.conf, as [`upstreams`] takes them.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let word = words.next()?;
            let (addr, zone) = match word.split_once('%') {
                Some((addr, zone)) => (addr, Some(zone)),
                None => (word, None),
            };
            usable(addr.parse().ok()?, zone)
        })
        .take(MAX_UPSTREAMS)
        .collect()
}

/// `ip` on port 53, if a query could reach it; `zone` is an IPv6 address's `%` suffix.
fn usable(ip: IpAddr, zone: Option<&str>) -> Option<SocketAddr> {
    if ip.is_unspecified() || ip.is_multicast() {
        return None;
    }
    match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => None,
        IpAddr::V4(_) => Some(SocketAddr::new(ip, 53)),
        IpAddr::V6(v6) => {
            let scope = match zone {
                Some(zone) => zone
                    .parse()
                    .ok()
                    .or_else(|| nix::net::if_::if_nametoindex(zone).ok())
                    .filter(|&i| i != 0)?,
                // A link-local address means nothing without its interface.
                None if v6.is_unicast_link_local() => return None,
                None => 0,
            };
            Some(SocketAddr::V6(SocketAddrV6::new(v6, 53, 0, scope)))
        }
    }
}

type Work = Pin<Box<dyn Future<Output = Event> + Send>>;

/// Something the serving task must act on.
enum Event {
    /// A container's UDP socket received a datagram (or an error).
    Datagram { c: Weak<Member>, buf: Box<[u8]>, got: io::Result<(usize, SocketAddr)> },
    /// A container's listener accepted a connection (or failed to).
    Accepted { c: Weak<Member>, got: io::Result<TcpStream> },
    /// A forwarded UDP query's answer for `client`.
    Forwarded { c: Weak<Member>, client: SocketAddr, answer: Vec<u8> },
    /// Something ended (a detached container's future, a TCP connection, a cut forward).
    Done,
}

/// A taken place among a bounded number; given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()?;
        Some(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The serving task's state: everything it waits on is a future in `work`.
struct Serving {
    shared: Arc<Shared>,
    forwards: Arc<AtomicUsize>,
    conns: Arc<AtomicUsize>,
    work: FuturesUnordered<Work>,
    last_warning: Option<Instant>,
}

impl Serving {
    fn new(shared: Arc<Shared>) -> Serving {
        Serving {
            shared,
            forwards: Arc::default(),
            conns: Arc::default(),
            work: FuturesUnordered::new(),
            last_warning: None,
        }
    }

    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Weak<Member>>,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                new = inbox.recv() => match new {
                    Some(c) => {
                        self.work.push(receive(c.clone(), vec![0; QUERY_BUF].into(), false));
                        self.work.push(accept(c, false));
                    }
                    None => return,
                },
                Some(event) = self.work.next(), if !self.work.is_empty() => self.handle(event),
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Datagram { c, buf, got } => {
                let Some(container) = c.upgrade() else { return };
                let pause = match got {
                    Ok((n, client)) => {
                        self.datagram(&container, &c, buf.get(..n).unwrap_or_default(), client);
                        false
                    }
                    Err(e) => {
                        tracing::debug!(id = container.id, error = %e, "embedded DNS: receive");
                        true
                    }
                };
                self.work.push(receive(c, buf, pause));
            }
            Event::Accepted { c, got } => {
                let Some(container) = c.upgrade() else { return };
                let pause = match got {
                    Ok(stream) => {
                        self.connection(&container, stream);
                        false
                    }
                    Err(e) => {
                        tracing::debug!(id = container.id, error = %e, "embedded DNS: accept");
                        true
                    }
                };
                self.work.push(accept(c, pause));
            }
            Event::Forwarded { c, client, answer } => {
                if let Some(container) = c.upgrade() {
                    let _ = container.udp.try_send_to(&answer, client);
                }
            }
            Event::Done => {}
        }
    }

    /// Answers one UDP query, or starts forwarding it.
    fn datagram(&mut self, c: &Member, weak: &Weak<Member>, query: &[u8], client: SocketAddr) {
        let reply = match dns::answer(query, |name| self.shared.lookup.lookup(&c.id, name)) {
            Response::Reply(bytes) => bytes,
            Response::Drop => return,
            Response::Forward => {
                let slots = Slot::take(&c.forwards, MAX_FORWARDS_PER_CONTAINER)
                    .and_then(|mine| Some((mine, Slot::take(&self.forwards, MAX_FORWARDS)?)));
                match slots {
                    Some(slots) => {
                        self.work.push(forward_udp(
                            self.shared.clone(),
                            weak.clone(),
                            c.cancel.clone(),
                            query.to_vec(),
                            client,
                            slots,
                        ));
                        return;
                    }
                    None => {
                        self.warn_full(&c.id);
                        match dns::servfail(query) {
                            Some(bytes) => bytes,
                            None => return,
                        }
                    }
                }
            }
        };
        // A full send buffer loses the answer, as the network could; the client asks again.
        let _ = c.udp.try_send_to(&reply, client);
    }

    fn warn_full(&mut self, id: &str) {
        let now = Instant::now();
        if self.last_warning.is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL) {
            self.last_warning = Some(now);
            tracing::warn!(
                id,
                "embedded DNS: more than {MAX_FORWARDS_PER_CONTAINER} forwarded queries of one container, or {MAX_FORWARDS} in all, in flight; answering SERVFAIL"
            );
        }
    }

    /// Serves an accepted connection if there is room for it, else closes it.
    fn connection(&mut self, c: &Member, stream: TcpStream) {
        let Some(slots) = Slot::take(&c.conns, MAX_TCP_PER_CONTAINER)
            .and_then(|mine| Some((mine, Slot::take(&self.conns, MAX_TCP)?)))
        else {
            tracing::debug!(id = c.id, "embedded DNS: too many TCP connections, one closed");
            return;
        };
        let shared = self.shared.clone();
        let id = c.id.clone();
        let cancel = c.cancel.clone();
        self.work.push(Box::pin(async move {
            let _slots = slots;
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = serve_tcp(stream, &id, &shared) => {}
            }
            Event::Done
        }));
    }
}

/// The next datagram of `c`'s UDP socket into `buf` (after a pause if the last receive failed).
fn receive(c: Weak<Member>, mut buf: Box<[u8]>, pause: bool) -> Work {
    Box::pin(async move {
        let got = next_on(&c, pause, |c, cx| {
            let mut rb = ReadBuf::new(&mut buf);
            c.udp.poll_recv_from(cx, &mut rb).map(|r| r.map(|from| (rb.filled().len(), from)))
        })
        .await;
        match got {
            Some(got) => Event::Datagram { c, buf, got },
            None => Event::Done,
        }
    })
}

/// The next connection of `c`'s listener (after a pause if the last accept failed).
fn accept(c: Weak<Member>, pause: bool) -> Work {
    Box::pin(async move {
        let got =
            next_on(&c, pause, |c, cx| c.tcp.poll_accept(cx).map(|r| r.map(|(stream, _)| stream)))
                .await;
        match got {
            Some(got) => Event::Accepted { c, got },
            None => Event::Done,
        }
    })
}

/// What `poll` gives on `c`'s sockets (after [`ERROR_PAUSE`] if `pause`), or `None` once `c`
/// is detached or cancelled. `c` is upgraded only while polled, so detaching closes its sockets.
async fn next_on<T>(
    c: &Weak<Member>,
    pause: bool,
    mut poll: impl FnMut(&Member, &mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    let cancel = c.upgrade().map(|c| c.cancel.clone())?;
    tokio::select! {
        _ = cancel.cancelled() => None,
        got = async {
            if pause {
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            poll_fn(|cx| match c.upgrade() {
                Some(c) => poll(&c, cx).map(Some),
                None => Poll::Ready(None),
            })
            .await
        } => got,
    }
}

/// Forwards one UDP query; the answer (or SERVFAIL) comes back to the task as an event.
fn forward_udp(
    shared: Arc<Shared>,
    c: Weak<Member>,
    cancel: CancellationToken,
    query: Vec<u8>,
    client: SocketAddr,
    slots: (Slot, Slot),
) -> Work {
    Box::pin(async move {
        let _slots = slots;
        tokio::select! {
            _ = cancel.cancelled() => Event::Done,
            answer = forward(&shared.upstreams, query, Transport::Udp) => match answer {
                Some(answer) => Event::Forwarded { c, client, answer },
                None => Event::Done,
            },
        }
    })
}

/// Serves one TCP connection: length-prefixed queries, answered in order, until the client
/// closes, idles or errs.
async fn serve_tcp(mut stream: TcpStream, id: &str, shared: &Shared) {
    loop {
        let len = match timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            _ => return,
        };
        let mut query = vec![0; usize::from(len)];
        if !matches!(timeout(TCP_IO_TIMEOUT, stream.read_exact(&mut query)).await, Ok(Ok(_))) {
            return;
        }
        let lookup = |name: &str| shared.lookup.lookup(id, name);
        let reply = match dns::answer_over(&query, lookup, SingleLabel::NxDomain, Transport::Tcp) {
            Response::Reply(bytes) => bytes,
            Response::Forward => match forward(&shared.upstreams, query, Transport::Tcp).await {
                Some(bytes) => bytes,
                None => return,
            },
            Response::Drop => return,
        };
        let Ok(len) = u16::try_from(reply.len()) else { return };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(timeout(TCP_IO_TIMEOUT, stream.write_all(&framed)).await, Ok(Ok(()))) {
            return;
        }
    }
}

/// Sends `query` to the upstreams in turn (Docker's rules, in the module's documentation) and
/// returns the answer to relay, with the client's ID: the first final one, else the last one,
/// else SERVFAIL. `None` only for a query [`dns::servfail`] would not answer.
async fn forward(
    upstreams: &[SocketAddr],
    mut query: Vec<u8>,
    transport: Transport,
) -> Option<Vec<u8>> {
    let client_id = [*query.first()?, *query.get(1)?];
    let mut last = None;
    for &upstream in upstreams.iter().take(MAX_UPSTREAMS) {
        let id = random_id().unwrap_or(client_id);
        query[..2].copy_from_slice(&id);
        let exchange = async {
            match transport {
                Transport::Udp => exchange_udp(upstream, &query, id).await,
                Transport::Tcp => exchange_tcp(upstream, &query, id).await,
            }
        };
        let mut answer = match timeout(FORWARD_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(%upstream, error = %e, "embedded DNS: upstream failed");
                continue;
            }
            Err(_) => {
                tracing::debug!(%upstream, "embedded DNS: upstream did not answer in time");
                continue;
            }
        };
        answer[..2].copy_from_slice(&client_id);
        if is_final(&answer) {
            return Some(answer);
        }
        last = Some(answer);
    }
    query[..2].copy_from_slice(&client_id);
    last.or_else(|| dns::servfail(&query))
}

/// A fresh random message ID.
fn random_id() -> Option<[u8; 2]> {
    let mut id = [0; 2];
    getrandom::fill(&mut id).ok()?;
    Some(id)
}

/// Whether an upstream's answer ends the search: NOERROR, or an authoritative NXDOMAIN (RFC
/// 8020), as Docker decides.
fn is_final(answer: &[u8]) -> bool {
    let (Some(flags), Some(rcode)) = (answer.get(2), answer.get(3)) else { return false };
    match rcode & 0x0f {
        0 => true,
        3 => flags & 0x04 != 0,
        _ => false,
    }
}

/// Whether `message` answers the query sent with `id`: a header's worth, that ID, QR set.
fn answers(message: &[u8], id: [u8; 2]) -> bool {
    message.len() >= 12 && message[..2] == id && message[2] & 0x80 != 0
}

/// One query over UDP, from a fresh socket connected to `upstream` (so only its datagrams
/// arrive); datagrams that are not the answer are skipped.
async fn exchange_udp(upstream: SocketAddr, query: &[u8], id: [u8; 2]) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0; MAX_UDP_ANSWER + 1];
    loop {
        let n = socket.recv(&mut buf).await?;
        if n > MAX_UDP_ANSWER {
            return Err(io::Error::other("answer too big"));
        }
        if answers(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One query over a fresh TCP connection to `upstream`.
async fn exchange_tcp(upstream: SocketAddr, query: &[u8], id: [u8; 2]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too big"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut answer = vec![0; usize::from(len)];
    stream.read_exact(&mut answer).await?;
    if !answers(&answer, id) {
        return Err(io::Error::other("not an answer to the query"));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_on_port_53_at_most_three() {
        let text = "# generated\nsearch example.com\nnameserver 127.0.0.53\n\
                    nameserver   10.0.0.2  # comment\n; another comment\noptions ndots:1\n\
                    nameserver 0.0.0.0\nnameserver ff02::1\nnameserver fe80::1\n\
                    nameserver garbage\nnameserver\nnameserver ::1\nnameserver 10.0.0.3\n\
                    nameserver 10.0.0.4\n";
        let got = parse_resolv_conf(text);
        let want: Vec<SocketAddr> = ["127.0.0.53:53", "10.0.0.2:53", "[::1]:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_link_local_nameserver_needs_a_known_zone() {
        assert_eq!(parse_resolv_conf("nameserver fe80::1%nosuchif0\n"), []);
        let got = parse_resolv_conf("nameserver fe80::1%lo\nnameserver fe80::2%7\n");
        assert_eq!(got.len(), 2);
        assert!(matches!(got[0], SocketAddr::V6(a) if a.scope_id() != 0 && a.port() == 53));
        assert!(matches!(got[1], SocketAddr::V6(a) if a.scope_id() == 7));
    }

    #[test]
    fn dns_flags_come_before_resolv_conf() {
        let dns = ["10.1.1.1".parse().unwrap(), "0.0.0.0".parse().unwrap()];
        let got = upstreams(&dns, Path::new("/nonexistent/resolv.conf"));
        assert_eq!(got, ["10.1.1.1:53".parse::<SocketAddr>().unwrap()]);
        assert_eq!(upstreams(&[], Path::new("/nonexistent/resolv.conf")), []);
    }

    #[test]
    fn final_answers_follow_docker() {
        let header =
            |flags: u8, rcode: u8| [0, 1, 0x80 | flags, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(is_final(&header(0, 0)));
        assert!(is_final(&header(0x04, 3)), "authoritative NXDOMAIN");
        assert!(!is_final(&header(0, 3)), "non-authoritative NXDOMAIN");
        assert!(!is_final(&header(0, 2)), "SERVFAIL");
        assert!(!is_final(&header(0, 5)), "REFUSED");
        assert!(!is_final(&[0, 1]));
    }

    #[test]
    fn only_answers_with_the_id_count() {
        let mut m = [0xab, 0xcd, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(answers(&m, [0xab, 0xcd]));
        assert!(!answers(&m, [0xab, 0xce]));
        assert!(!answers(&m[..11], [0xab, 0xcd]));
        m[2] = 0x01;
        assert!(!answers(&m, [0xab, 0xcd]), "a query is no answer");
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let count = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&count, 2).unwrap();
        let _b = Slot::take(&count, 2).unwrap();
        assert!(Slot::take(&count, 2).is_none());
        drop(a);
        assert!(Slot::take(&count, 2).is_some());
    }
}
