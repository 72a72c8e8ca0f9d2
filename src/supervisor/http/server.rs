//! The API's HTTP server: hyper's HTTP/1 connections on the daemon's unix socket, with the
//! limits `axum::serve` has no knobs for, so that idle or slow clients cannot lock the API out
//! or take the daemon's descriptors:
//!
//! - **At most [`Limits::max_connections`] connections.** One more is taken in place of the
//!   connection that has been waiting longest without a request in progress (an idle
//!   keep-alive connection, or one still sending its request head), which is closed, as nginx
//!   reuses its idle connections: the newest client is answered, and a client whose request is
//!   being served is never cut. When every connection has a request in progress (long `logs
//!   -f` or `wait` calls), the newcomer gets `503` and is closed at once. A connection upgraded
//!   to a raw stream (`attach`, `exec` start: `101`) counts, never evicted, until that stream
//!   is closed.
//! - **A request head within [`Limits::header_timeout`]** of its first byte (of the connection,
//!   for the first request); else the connection is closed.
//! - **A request body that never stalls for [`Limits::body_timeout`]** (`408`, then closed).
//!   Bodies stream through to the handlers, so an image upload (`import`, `load`) may be any
//!   size and take as long as its bytes keep coming; a handler that buffers its body (the JSON
//!   ones) takes at most [`MAX_BODY`] (`413`, axum's `DefaultBodyLimit`).
//! - **Keep-alive connections closed after [`Limits::idle_timeout`]** without a request.
//!
//! Handlers are the router's ([`super::router`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The biggest body a handler buffers (`axum`'s `Bytes` extractor, through the router's
/// `DefaultBodyLimit`): create bodies are a few KiB. Streamed bodies have no such bound.
pub const MAX_BODY: usize = 2 << 20;

/// The API server's limits on its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// From a request's first byte (a connection's first request: from its accept) to the end
    /// of its head.
    pub header_timeout: Duration,
    /// The longest a request body may go without a byte.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Receiving a request head, since then (a new connection is in this phase).
    Head(Instant),
    /// Waiting for a next request, since then.
    Idle(Instant),
    /// This many requests in progress (their bodies read, handled, answered).
    Busy(usize),
    /// Hijacked by a `101` answer: a raw stream now, open until its session drops it.
    Upgraded,
}

/// One connection, as the accept loop and its own task see it.
struct Conn {
    phase: Mutex<Phase>,
    /// Told of phase changes, so the connection's task moves its deadline.
    changed: Notify,
    /// Cancelled to close the connection in favour of a newer one.
    evicted: CancellationToken,
}

impl Conn {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        *phase = f(*phase);
        drop(phase);
        self.changed.notify_one();
    }

    /// Bytes came in: an idle connection has started a request.
    fn received(&self) {
        if matches!(self.phase(), Phase::Idle(_)) {
            self.set(|p| if let Phase::Idle(_) = p { Phase::Head(Instant::now()) } else { p });
        }
    }

    /// A request head is complete; the connection is busy until the returned guard (kept by
    /// the response body) is dropped.
    fn busy(self: &Arc<Conn>) -> BusyGuard {
        self.set(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
        BusyGuard(self.clone())
    }

    /// When the connection is closed if nothing happens meanwhile; `None` while busy.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match self.phase() {
            Phase::Head(since) => Some(since + limits.header_timeout),
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Busy(_) | Phase::Upgraded => None,
        }
    }

    /// Since when a connection that may be closed for a newer one has waited; `None` if it
    /// has a request in progress.
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Head(since) | Phase::Idle(since) => Some(since),
            Phase::Busy(_) | Phase::Upgraded => None,
        }
    }
}

/// Ends a request's busy phase when dropped (with the response body, once it is sent).
struct BusyGuard(Arc<Conn>);

impl BusyGuard {
    /// The request was answered `101`: the connection stays taken while its stream is open.
    fn upgraded(&self) {
        self.0.set(|_| Phase::Upgraded);
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(|p| match p {
            Phase::Upgraded => Phase::Upgraded,
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// Every open connection, by number.
#[derive(Default)]
struct Conns {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Conns {
    /// Registers a new connection, closing the longest-waiting one without a request in
    /// progress if `max` are open; `None` if all of them have one.
    fn admit(&self, max: usize) -> Option<(u64, Arc<Conn>)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= max {
            let oldest = open
                .iter()
                .filter_map(|(id, c)| c.waiting_since().map(|since| (since, *id)))
                .min()
                .map(|(_, id)| id)?;
            if let Some(c) = open.remove(&oldest) {
                c.evicted.cancel();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
            evicted: CancellationToken::new(),
        });
        open.insert(id, conn.clone());
        Some((id, conn))
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// Serves `app` on `listener` until `stop` is cancelled; connections accepted by then go on
/// (a `wait` gets its answer while the daemon stops its containers).
pub async fn serve(listener: UnixListener, app: Router, limits: Limits, stop: CancellationToken) {
    let conns = Arc::new(Conns::default());
    let max = limits.max_connections.max(1);
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSING));
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, typically: the connections' timeouts free some.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some((id, conn)) = conns.admit(max) else {
            refuse(stream, max, &refusing);
            continue;
        };
        let seat = Seat { conns: conns.clone(), id };
        let app = app.clone();
        tokio::spawn(serve_connection(stream, conn, seat, app, limits));
    }
}

/// How many refused clients at once are given [`REFUSE_LINGER`] to read their `503`; more
/// are closed at once.
const REFUSING: usize = 32;

/// How long a refused client's request is read (and dropped) after its `503`: closing a unix
/// socket with unread bytes resets it, and the client would see the reset, not the answer.
const REFUSE_LINGER: Duration = Duration::from_secs(2);

/// Tells a client that came when every connection had a request in progress to try again.
fn refuse(stream: UnixStream, max: usize, refusing: &Arc<tokio::sync::Semaphore>) {
    let body = format!(
        "{{\"message\":\"too many API connections ({max} with requests in progress); try again \
         later\"}}"
    );
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \
         {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // A new socket's send buffer takes this whole; if not, the client only sees the close.
    let _ = stream.try_write(reply.as_bytes());
    tracing::warn!(max, "API connection refused: every connection has a request in progress");
    let Ok(permit) = refusing.clone().try_acquire_owned() else { return };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = stream;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(REFUSE_LINGER, async {
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        drop(permit);
    });
}

/// A connection's place among the open ones, given up when its stream is dropped: when hyper
/// is done with it, or when an upgraded stream's session ends.
struct Seat {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}

async fn serve_connection(
    stream: UnixStream,
    conn: Arc<Conn>,
    seat: Seat,
    app: Router,
    limits: Limits,
) {
    let io = TokioIo::new(Watched { inner: stream, conn: conn.clone(), _seat: seat });
    let service = {
        let conn = conn.clone();
        let app = TowerToHyperService::new(app);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = conn.busy();
            let app = app.clone();
            async move { answer(req, app, guard, limits.body_timeout).await }
        })
    };
    let http =
        hyper::server::conn::http1::Builder::new().serve_connection(io, service).with_upgrades();
    tokio::pin!(http);
    loop {
        // Registered before the deadline is read, so that no phase change is missed.
        let changed = conn.changed.notified();
        let deadline = conn.deadline(&limits);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = http.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "API connection ended");
                }
                return;
            }
            _ = conn.evicted.cancelled() => {
                tracing::debug!("API connection closed for a newer one");
                return;
            }
            _ = changed => {}
            _ = expired => {
                if conn.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!("API connection timed out");
                    return;
                }
            }
        }
    }
}

/// Lets the router answer `req`, its body streamed through [`Stalling`]: a body that stalls
/// for `body_timeout` is cut, and the answer is then `408`. The response body keeps the
/// connection busy until it is sent.
async fn answer(
    req: Request<Incoming>,
    app: TowerToHyperService<Router>,
    guard: BusyGuard,
    body_timeout: Duration,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let stalled = Arc::new(AtomicBool::new(false));
    let body = Body::new(Stalling {
        inner: body,
        limit: body_timeout,
        timer: Box::pin(tokio::time::sleep(body_timeout)),
        stalled: stalled.clone(),
    });
    let resp = match app.call(Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    if stalled.load(Ordering::Relaxed) {
        let m = format!("request body not received: no byte for {body_timeout:?}");
        return Ok(error(StatusCode::REQUEST_TIMEOUT, &m));
    }
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        guard.upgraded();
    }
    Ok(resp.map(|b| {
        Body::new(b.map_frame(move |frame| {
            let _busy = &guard;
            frame
        }))
    }))
}

/// A request body that fails once no byte has come for `limit` (and says so in `stalled`).
struct Stalling {
    inner: Incoming,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    stalled: Arc<AtomicBool>,
}

impl hyper::body::Body for Stalling {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.as_mut().reset(Instant::now() + this.limit);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending if this.timer.as_mut().poll(cx).is_ready() => {
                this.stalled.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err("request body stalled".into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Docker's error body, and the connection closed after it (its request was not read whole).
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = super::error_response(status, message);
    resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    resp
}

/// A connection's socket, telling its [`Conn`] when bytes arrive.
struct Watched {
    inner: UnixStream,
    conn: Arc<Conn>,
    /// Kept as long as the stream: an upgraded one's session holds it.
    _seat: Seat,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
