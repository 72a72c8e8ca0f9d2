//! UDP bindings: one host socket, and a bounded table of sessions, one per client, each with its
//! own socket connected to the backend so that every reply goes back to the client it answers.
//!
//! A binding is served by a single task that owns everything: the host socket, the session
//! table and the epoll set of the session sockets. Nothing is shared, so nothing is locked, and
//! closing a session closes its descriptor then and there: the binding never holds more than
//! `udp_max_sessions` session sockets (plus its host socket and epoll descriptor).
//!
//! - A datagram from a client without a session opens one; when the table is full the least
//!   recently used session is evicted first. If descriptors run out, one more is evicted to make
//!   room, so new clients are still served.
//! - A session with no datagram either way for `udp_idle_timeout` is closed; the table is kept
//!   in order of last use, so one timer for the oldest session serves them all.
//! - Replies leave from the address the client sent to (see [`host`]).
//! - Errors concern one datagram (dropped and counted) or one session, never the binding; an
//!   ICMP error from a backend that is down is consumed and the session carries on.
//! - `stop` or `kill` ends the task: UDP has nothing to drain, so both close everything at once.

mod backend;
mod host;
pub mod table;

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Instant;

use nix::sys::epoll::EpollEvent;

use self::backend::{Poller, Segmenting, SessionSocket};
use self::host::{BATCH, Host, MAX_DATAGRAM, Received, ReplySource};
use self::table::{SessionTable, Token};
use super::transparent::{self, Fallback};
use super::{BindingCtx, Proto, ProxyError, Stats, exhausted};

/// Datagrams taken from the host socket in one go, before other work gets a turn.
const CLIENT_BATCH: usize = 64;
/// Sessions with replies handled in one go.
const SESSION_BATCH: usize = 64;

/// The host side of a UDP binding, ready to be served: its socket, and the (empty) epoll set its
/// sessions will join. Both are made up front so that a lack of descriptors fails the binding
/// when it is added rather than later.
pub(crate) struct HostSocket {
    host: Host,
    poller: Poller,
}

impl HostSocket {
    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.host.local_addr()
    }

    fn new(socket: socket2::Socket) -> io::Result<HostSocket> {
        Ok(HostSocket { host: Host::new(socket)?, poller: Poller::new()? })
    }
}

/// Binds `addr` as docker-proxy does: no `SO_REUSEADDR` (two sockets on one UDP port would
/// split its traffic), and IPv6 sockets are IPv6-only (Docker runs one proxy per family).
pub(crate) fn bind(addr: SocketAddr) -> Result<HostSocket, ProxyError> {
    let err = |e| ProxyError::listen(Proto::Udp, addr, e);
    HostSocket::new(bound(addr)?).map_err(err)
}

/// As [`bind`], registered with no runtime.
pub(crate) fn bound(addr: SocketAddr) -> Result<socket2::Socket, ProxyError> {
    let err = |e| ProxyError::listen(Proto::Udp, addr, e);
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM.nonblocking().cloexec(),
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true).map_err(err)?;
    }
    sock.bind(&addr.into()).map_err(err)?;
    Ok(sock)
}

/// Takes a UDP socket someone else bound (dockerd's `-use-listen-fd`).
pub(crate) fn adopt(sock: socket2::Socket) -> Result<HostSocket, ProxyError> {
    HostSocket::new(sock).map_err(|e| ProxyError::BadSocket(e.to_string()))
}

/// Serves a UDP binding until its `stop` or `kill` token is cancelled; the host socket and all
/// sessions close on return.
pub(crate) async fn serve(socket: HostSocket, ctx: BindingCtx) {
    let mut binding = ServedBinding::new(socket, ctx);
    let idle = binding.ctx.config.udp_idle_timeout;
    // Armed at or before the oldest session's expiry; disarmed while there are no sessions.
    let mut expiry = pin!(tokio::time::sleep(idle));
    let mut armed = false;
    // Made once rather than on every turn of the loop: waiting on a token registers with it.
    let (stop, kill) = (binding.ctx.accept.clone(), binding.ctx.kill.clone());
    let mut stopped = pin!(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = kill.cancelled() => {}
        }
    });
    loop {
        let event = tokio::select! {
            _ = stopped.as_mut() => break,
            r = binding.host.readable() => Event::Requests(r),
            r = binding.poller.readable() => Event::Replies(r),
            _ = expiry.as_mut(), if armed => Event::Expiry,
        };
        match event {
            Event::Requests(Ok(())) => binding.forward_requests(),
            Event::Replies(Ok(())) => binding.forward_replies(),
            Event::Expiry => {
                binding.expire(Instant::now());
                armed = false;
            }
            Event::Requests(Err(e)) | Event::Replies(Err(e)) => {
                // Only a runtime going away fails a readiness wait.
                tracing::warn!(error = %e, "udp binding cannot wait for datagrams, stopping");
                break;
            }
        }
        // Expiry only moves later as sessions are used or removed, so the timer needs setting
        // only when it is not running: after it fired, or when the first session opens.
        if !armed && let Some(due) = binding.table.next_expiry(idle) {
            expiry.as_mut().reset(due.into());
            armed = true;
        }
    }
    binding.close_all();
}

/// What woke the binding's task.
enum Event {
    Requests(io::Result<()>),
    Replies(io::Result<()>),
    Expiry,
}

/// Clients' datagrams as [`Host::try_recv_batch`] takes them.
struct Batch {
    /// [`BATCH`] slots of [`MAX_DATAGRAM`] bytes. Allocated zeroed, which for this size the
    /// allocator maps fresh from the kernel, so pages no datagram reached take no memory.
    slots: Box<[u8]>,
    /// Each datagram received: its slot and what it is.
    got: Vec<(usize, Received)>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            slots: vec![0; BATCH * MAX_DATAGRAM].into_boxed_slice(),
            got: Vec::with_capacity(BATCH),
        }
    }
}

/// What the binding keeps per session besides its client's address.
struct Session {
    socket: SessionSocket,
    /// Where replies leave from: the local address the client last sent to.
    reply_from: Option<ReplySource>,
}

/// The state of a binding, owned by its task.
struct ServedBinding {
    host: Host,
    poller: Poller,
    table: SessionTable<Session>,
    ctx: BindingCtx,
    /// One datagram, either way; one task, so one buffer.
    buf: Box<[u8]>,
    /// Buffers for clients' datagrams taken several at a time: made when the first datagram
    /// comes, dropped when the last session closes.
    batch: Option<Batch>,
    /// What sizes of datagram the backend's route lets one buffer carry several of.
    segmenting: Segmenting,
    events: Box<[EpollEvent]>,
    /// True while descriptors are exhausted, so that is logged once per episode.
    exhausted: bool,
}

impl ServedBinding {
    fn new(socket: HostSocket, ctx: BindingCtx) -> ServedBinding {
        ServedBinding {
            host: socket.host,
            poller: socket.poller,
            table: SessionTable::new(ctx.config.udp_max_sessions),
            ctx,
            buf: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            batch: None,
            segmenting: Segmenting::default(),
            events: vec![EpollEvent::empty(); SESSION_BATCH].into_boxed_slice(),
            exhausted: false,
        }
    }

    /// Forwards what clients sent, up to [`CLIENT_BATCH`] datagrams, taken [`BATCH`] at a time
    /// with one system call and sent to each backend as runs (consecutive datagrams of one
    /// client) with one system call each.
    fn forward_requests(&mut self) {
        let now = Instant::now();
        let mut batch = self.batch.take().unwrap_or_else(Batch::new);
        for _ in 0..CLIENT_BATCH.div_ceil(BATCH) {
            let received = match self.host.try_recv_batch(&mut batch.slots, &mut batch.got) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "receiving from clients failed");
                    continue;
                }
            };
            self.forward_batch(&batch, now);
            if received < BATCH {
                // The socket is drained: the next datagram comes with a readiness event.
                break;
            }
        }
        self.batch = Some(batch);
    }

    /// Forwards the datagrams of `batch`, each run of one client's with one system call. A run
    /// is sent before the next session is looked up or opened, since opening one may evict
    /// another.
    fn forward_batch(&mut self, batch: &Batch, now: Instant) {
        // The session and the datagrams (a range of `batch.got`) of the run being gathered.
        let mut run: Option<(Token, std::ops::Range<usize>)> = None;
        for (i, (_, r)) in batch.got.iter().enumerate() {
            if !r.truncated
                && let Some((token, datagrams)) = &mut run
                && self.table.lookup(&r.client) == Some(*token)
            {
                if let Some(entry) = self.table.get_mut(*token) {
                    entry.value.reply_from = r.dest;
                }
                datagrams.end = i + 1;
                continue;
            }
            if let Some((token, datagrams)) = run.take() {
                self.send_run(token, batch, datagrams);
            }
            if r.truncated {
                Stats::add(&self.ctx.stats.datagrams_dropped, 1);
                tracing::debug!(client = %r.client, "datagram too large, dropped");
                continue;
            }
            match self.session_for(r, now) {
                Some(token) => run = Some((token, i..i + 1)),
                None => Stats::add(&self.ctx.stats.datagrams_dropped, 1),
            }
        }
        if let Some((token, datagrams)) = run {
            self.send_run(token, batch, datagrams);
        }
    }

    /// The session of the client that sent `r` (touched, and replying from where `r` went), or
    /// a new one.
    fn session_for(&mut self, r: &Received, now: Instant) -> Option<Token> {
        match self.table.lookup(&r.client) {
            Some(t) => {
                self.table.touch(t, now);
                if let Some(entry) = self.table.get_mut(t) {
                    entry.value.reply_from = r.dest;
                }
                Some(t)
            }
            None => self.open(r.client, r.dest, now),
        }
    }

    /// Sends the datagrams `run` of `batch`, all from one client, to its session's backend.
    fn send_run(&mut self, token: Token, batch: &Batch, run: std::ops::Range<usize>) {
        let Some(entry) = self.table.get(token) else { return };
        let mut datagrams: [&[u8]; BATCH] = [&[]; BATCH];
        let n = run.len();
        for (d, (slot, r)) in datagrams.iter_mut().zip(&batch.got[run]) {
            *d = &batch.slots[slot * MAX_DATAGRAM..][..r.len];
        }
        let datagrams = &datagrams[..n];
        let sent = match datagrams {
            [one] => entry.value.socket.send(one).map(|_| 1),
            many => entry.value.socket.send_many(many, &mut self.segmenting),
        };
        let sent = sent.unwrap_or_else(|e| {
            tracing::debug!(client = %entry.client, error = %e,
                "sending to backend failed, datagram dropped");
            0
        });
        let bytes: usize = datagrams[..sent].iter().map(|d| d.len()).sum();
        Stats::add(&self.ctx.stats.bytes_to_backend, bytes as u64);
        Stats::add(&self.ctx.stats.datagrams_to_backend, sent as u64);
        Stats::add(&self.ctx.stats.datagrams_dropped, (datagrams.len() - sent) as u64);
    }

    /// Opens a session for `client`, evicting the least recently used one if the table is
    /// full, or if descriptors have run out.
    fn open(
        &mut self,
        client: SocketAddr,
        reply_from: Option<ReplySource>,
        now: Instant,
    ) -> Option<Token> {
        if self.table.is_full() {
            self.evict();
        }
        let socket = match self.session_socket(client) {
            Ok(s) => s,
            Err(e) if exhausted(&e) && self.evict() => match self.session_socket(client) {
                Ok(s) => s,
                Err(e) => return self.open_failed(client, e),
            },
            Err(e) => return self.open_failed(client, e),
        };
        if self.exhausted {
            self.exhausted = false;
            tracing::warn!(local = ?self.host.local_addr().ok(), "udp sessions open again");
        }
        let token = self.table.insert(client, Session { socket, reply_from }, now).ok()?;
        let registered = match self.table.get(token) {
            Some(entry) => self.poller.add(&entry.value.socket, token),
            None => return None,
        };
        if let Err(e) = registered {
            self.table.remove(token);
            return self.open_failed(client, e);
        }
        Stats::add(&self.ctx.stats.sessions, 1);
        Stats::add(&self.ctx.stats.sessions_opened, 1);
        tracing::debug!(%client, backend = %self.ctx.backend, "udp session opened");
        Some(token)
    }

    /// A new session socket for `client`, connected to the backend: bound to the client's
    /// address and port if the binding is transparent and that can be done.
    fn session_socket(&self, client: SocketAddr) -> io::Result<SessionSocket> {
        let backend = self.ctx.backend;
        let Some(t) = &self.ctx.transparency else { return SessionSocket::connect(backend) };
        let source = match t.source(client, backend) {
            Ok(source) => source,
            Err(why) => {
                t.fell_back(why, &self.ctx.stats, None);
                return SessionSocket::connect(backend);
            }
        };
        match transparent::bound_socket(socket2::Type::DGRAM, source) {
            Ok(sock) => SessionSocket::connect_from(sock, backend),
            Err(e) if exhausted(&e) => Err(e),
            Err(e) => {
                t.fell_back(Fallback::Refused, &self.ctx.stats, Some(&e));
                SessionSocket::connect(backend)
            }
        }
    }

    fn open_failed(&mut self, client: SocketAddr, e: io::Error) -> Option<Token> {
        if exhausted(&e) {
            if !self.exhausted {
                self.exhausted = true;
                Stats::add(&self.ctx.stats.exhaustion_episodes, 1);
                tracing::warn!(error = %e, local = ?self.host.local_addr().ok(),
                    "cannot open udp sessions, dropping datagrams of new clients");
            }
        } else {
            tracing::debug!(%client, backend = %self.ctx.backend, error = %e,
                "cannot open udp session");
        }
        None
    }

    /// Closes the least recently used session; false if there was none.
    fn evict(&mut self) -> bool {
        match self.table.pop_lru() {
            Some((client, session)) => {
                self.close(session);
                Stats::add(&self.ctx.stats.sessions_evicted, 1);
                tracing::debug!(%client, "udp session evicted");
                true
            }
            None => false,
        }
    }

    /// Forwards the backends' replies to their clients, for up to a batch of sessions.
    fn forward_replies(&mut self) {
        let n = match self.poller.try_ready(&mut self.events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::debug!(error = %e, "waiting for backend replies failed");
                return;
            }
        };
        let now = Instant::now();
        for i in 0..n {
            let token = Token::from_u64(self.events[i].data());
            self.session_reply(token, now);
        }
    }

    /// Forwards one datagram (or error) that a session's backend sent. One only: the poller is
    /// level-triggered, so a session with more waiting is reported again on the next turn, and
    /// reading until `EAGAIN` would cost a system call per reply for nothing (a backend that
    /// answers a request sends one datagram). Taking one per turn also keeps a chatty backend
    /// from starving the others.
    fn session_reply(&mut self, token: Token, now: Instant) {
        let Some(entry) = self.table.get(token) else { return };
        let len = match entry.value.socket.recv(&mut self.buf) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // An ICMP error for a datagram sent earlier: that datagram is lost, the
                // session is not.
                Stats::add(&self.ctx.stats.datagrams_dropped, 1);
                tracing::debug!(client = %entry.client, error = %e, "backend unreachable");
                return;
            }
        };
        if len > self.buf.len() {
            Stats::add(&self.ctx.stats.datagrams_dropped, 1);
            tracing::debug!(client = %entry.client, len, "reply too large, dropped");
        } else {
            match self.host.send(&self.buf[..len], entry.client, entry.value.reply_from) {
                Ok(n) => {
                    Stats::add(&self.ctx.stats.bytes_to_client, n as u64);
                    Stats::add(&self.ctx.stats.datagrams_to_client, 1);
                }
                Err(e) => {
                    Stats::add(&self.ctx.stats.datagrams_dropped, 1);
                    tracing::debug!(client = %entry.client, error = %e,
                        "sending to client failed, datagram dropped");
                }
            }
        }
        self.table.touch(token, now);
    }

    /// Closes the sessions idle for the timeout at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some((client, session)) =
            self.table.pop_expired(now, self.ctx.config.udp_idle_timeout)
        {
            self.close(session);
            Stats::add(&self.ctx.stats.sessions_expired, 1);
            tracing::debug!(%client, "udp session expired");
        }
        if self.table.is_empty() {
            // Idle: give the batch's memory back.
            self.batch = None;
        }
    }

    fn close(&mut self, session: Session) {
        self.poller.remove(&session.socket);
        Stats::sub(&self.ctx.stats.sessions, 1);
    }

    fn close_all(&mut self) {
        let n = self.table.drain().map(|(_, session)| drop(session)).count();
        Stats::sub(&self.ctx.stats.sessions, n as u64);
        tracing::debug!(local = ?self.host.local_addr().ok(), sessions = n, "udp binding closed");
    }
}
