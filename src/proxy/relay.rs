//! The hot path: moves bytes between two connected TCP sockets.
//!
//! Each direction owns a `Stage`, the only buffer between its two sockets. Normally that is a
//! kernel pipe and bytes go `splice(src → pipe)` then `splice(pipe → dst)` without ever being
//! copied into user space. Where the kernel refuses to splice (`EINVAL`/`ENOSYS`), the direction
//! switches, once, to a small user-space buffer. Either way the stage has a fixed capacity, so a
//! slow reader stalls its writer instead of making the proxy buffer without bound.
//!
//! The pump is driven by tokio's readiness: it tries both ends until neither makes progress,
//! and only then waits for the end it needs. An edge is only waited for after the kernel said
//! `EAGAIN` for it, so no wake-up is lost and none is spent on a socket known to be idle.
//!
//! One `EAGAIN` says nothing about the socket: `splice(socket → pipe)` also fails with it when
//! the pipe has no free *buffer slot* (a pipe has capacity/4096 slots and every received
//! segment takes one, so over a real link with 1448-byte segments the slots run out long before
//! the bytes do). Taking that for "socket drained" clears the socket's readiness, and if the
//! peer has already sent everything no new edge ever comes: the connection stalls, and once the
//! peer's FIN makes readiness stick, the pump spins. So an `EAGAIN` into a pipe that holds bytes
//! is taken as "stage full": the pump waits to drain the pipe, and only an `EAGAIN` into an
//! empty pipe is taken as the socket's state.
//!
//! Urgent data (`MSG_OOB`) is kept in line (`SO_OOBINLINE`, set by the caller), but splice
//! still stops at the urgent mark; the byte at the mark is moved with `recv` and `write`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::Interest;

use super::lanes::Lane;
use super::sock::Sock;
use crate::sys;

/// How a connection's bytes are moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RelayMode {
    /// `splice(2)` through a pipe; falls back to copying per direction if the kernel refuses.
    #[default]
    Splice,
    /// Always copy through a user-space buffer (for comparison, and for tests of the fallback).
    Copy,
}

/// One end of a relayed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The peer that connected to the binding.
    Client,
    /// The container (the backend the proxy dialed).
    Backend,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Backend => "backend",
        })
    }
}

/// Why a relay ended in error, and on which side: so that a client's reset is told from a
/// backend's in the counters and the logs.
#[derive(Debug)]
pub(crate) struct RelayError {
    /// The side whose socket failed.
    pub(crate) side: Side,
    /// What its socket said.
    pub(crate) source: io::Error,
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} side: {}", self.side, self.source)
    }
}

impl std::error::Error for RelayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Which socket of a direction an error of its pump came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The socket read from.
    Src,
    /// The socket written to.
    Dst,
}

/// Size of the user-space buffer of a copying direction.
const COPY_BUF: usize = 64 * 1024;

/// A non-blocking kernel pipe used as a splice buffer, with the number of bytes it holds.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    len: usize,
    /// The count of its pool's pipes out on loan, while this one is (see [`PipePool`]).
    lent: Option<Arc<AtomicUsize>>,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            lent.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Pipe {
    /// Opens a pipe and asks the kernel for `size` bytes of capacity. If the kernel says no (the
    /// user's pipe quota in `/proc/sys/fs/pipe-user-pages-soft` is used up), the pipe keeps its
    /// default size: smaller, but still correct.
    pub(crate) fn new(size: usize) -> io::Result<Pipe> {
        let (read, write, capacity) = sys::pipe(size)?;
        Ok(Pipe { read, write, capacity, len: 0, lent: None })
    }

    /// Bytes the kernel granted.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.capacity
    }

    /// Moves the bytes at and after `src`'s urgent mark, where splice stops, through a small
    /// buffer. Called only on an empty pipe, so that `write` has room for all it is given.
    fn fill_past_urgent_mark(&mut self, src: BorrowedFd<'_>) -> io::Result<Fill> {
        debug_assert_eq!(self.len, 0);
        let mut buf = [0u8; URGENT_BUF];
        let want = buf.len().min(self.capacity);
        let n = sys::recv(src, &mut buf[..want])?;
        if n == 0 {
            return Ok(Fill::Eof);
        }
        let mut written = 0;
        while written < n {
            written += sys::write(self.write.as_fd(), &buf[written..n])?;
        }
        self.len += n;
        Ok(Fill::Read(n))
    }
}

/// Bytes moved by `recv` past an urgent mark at a time: splice resumes after them.
const URGENT_BUF: usize = 4096;

/// What one attempt to fill a stage did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Moved this many bytes.
    Read(usize),
    /// The source has ended.
    Eof,
    /// The stage can take nothing more until it is drained (says nothing about the source).
    Full,
}

/// Keeps empty pipes for reuse, so that connections do not pay for a pipe each (`pipe2`, the
/// resize, `close`, and the kernel's allocations). It keeps up to twice as many idle pipes as
/// are out on loan, at least `min_idle`: a busy binding's connections come and go (64 clients
/// that reconnect at once make the count swing by half) without making or closing a pipe, and
/// once they have ended its idle pipes are back to `min_idle`, so an idle proxy holds few
/// descriptors. No more pipes are ever open than were once lent at the same time. A pipe that
/// still holds bytes is never reused; it is closed.
#[derive(Debug)]
pub(crate) struct PipePool {
    idle: Mutex<Vec<Pipe>>,
    size: usize,
    min_idle: usize,
    lent: Arc<AtomicUsize>,
}

impl PipePool {
    /// A pool of pipes of `size` bytes, keeping at least `min_idle` of them open while unused.
    pub(crate) fn new(size: usize, min_idle: usize) -> PipePool {
        PipePool { idle: Mutex::new(Vec::new()), size, min_idle, lent: Arc::default() }
    }

    fn get(&self) -> io::Result<Pipe> {
        let reused = self.parked().pop();
        let mut pipe = match reused {
            Some(pipe) => pipe,
            None => Pipe::new(self.size)?,
        };
        self.lent.fetch_add(1, Ordering::Relaxed);
        pipe.lent = Some(self.lent.clone());
        Ok(pipe)
    }

    fn put(&self, mut pipe: Pipe) {
        if let Some(lent) = pipe.lent.take() {
            lent.fetch_sub(1, Ordering::Relaxed);
        }
        if pipe.len != 0 {
            return;
        }
        let keep = self.min_idle.max(2 * self.lent.load(Ordering::Relaxed));
        let surplus = {
            let mut idle = self.parked();
            if idle.len() < keep {
                idle.push(pipe);
                return;
            }
            idle.split_off(keep)
        };
        // Closed outside the lock.
        drop((pipe, surplus));
    }

    /// The parked pipes. A poisoned lock is recovered: its critical sections are one push or
    /// pop of an empty pipe, so the list is consistent whatever panicked, and ignoring the
    /// poison (as before) would only have leaked every pipe returned from then on.
    fn parked(&self) -> std::sync::MutexGuard<'_, Vec<Pipe>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pipes currently parked in the pool.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.parked().len()
    }
}

/// The buffer of one direction.
enum Stage {
    Pipe(Pipe),
    Copy { buf: Box<[u8]>, start: usize, end: usize },
}

impl Stage {
    fn copy() -> Stage {
        Stage::Copy { buf: vec![0; COPY_BUF].into_boxed_slice(), start: 0, end: 0 }
    }

    fn is_empty(&self) -> bool {
        match self {
            Stage::Pipe(p) => p.len == 0,
            Stage::Copy { start, end, .. } => start == end,
        }
    }

    fn has_room(&self) -> bool {
        match self {
            Stage::Pipe(p) => p.len < p.capacity,
            Stage::Copy { buf, end, .. } => *end < buf.len(),
        }
    }

    /// Reads from `src` into the stage. `Err(WouldBlock)` is returned only when `src` itself
    /// has nothing to read, so that the caller may clear its readiness.
    fn fill(&mut self, sock: &Sock) -> io::Result<Fill> {
        let src = sock.as_fd();
        match self {
            Stage::Pipe(p) => match sys::splice(src, p.write.as_fd(), p.capacity - p.len) {
                // Splice reads nothing at an urgent mark, which looks like the end of stream.
                Ok(0) if !sock.at_urgent_mark(true) => Ok(Fill::Eof),
                Ok(0) if p.len > 0 => Ok(Fill::Full),
                Ok(0) => p.fill_past_urgent_mark(src),
                Ok(n) => {
                    p.len += n;
                    Ok(Fill::Read(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if p.len > 0 {
                        // Out of bytes or out of slots: either way the pipe must drain first,
                        // and the socket may well hold more.
                        Ok(Fill::Full)
                    } else if sock.at_urgent_mark(false) {
                        p.fill_past_urgent_mark(src)
                    } else {
                        Err(e)
                    }
                }
                Err(e) => Err(e),
            },
            Stage::Copy { buf, end, .. } => match sys::recv(src, &mut buf[*end..])? {
                0 => Ok(Fill::Eof),
                n => {
                    *end += n;
                    Ok(Fill::Read(n))
                }
            },
        }
    }

    /// Writes from the stage to `dst`.
    fn drain(&mut self, dst: BorrowedFd<'_>) -> io::Result<usize> {
        match self {
            Stage::Pipe(p) => {
                let n = sys::splice(p.read.as_fd(), dst, p.len)?;
                p.len -= n;
                Ok(n)
            }
            Stage::Copy { buf, start, end } => {
                let n = sys::send(dst, &buf[*start..*end])?;
                *start += n;
                if start == end {
                    (*start, *end) = (0, 0);
                }
                Ok(n)
            }
        }
    }

    /// Switches a pipe stage to copying, carrying over whatever the pipe holds.
    fn fall_back_to_copy(&mut self) -> io::Result<Option<Pipe>> {
        let Stage::Pipe(pipe) = self else { return Ok(None) };
        let mut buf = vec![0u8; COPY_BUF.max(pipe.len)].into_boxed_slice();
        let mut end = 0;
        while end < pipe.len {
            end += sys::read(pipe.read.as_fd(), &mut buf[end..pipe.len])?;
        }
        pipe.len = 0;
        let Stage::Pipe(pipe) = std::mem::replace(self, Stage::Copy { buf, start: 0, end }) else {
            return Ok(None);
        };
        Ok(Some(pipe))
    }
}

/// True for the errors with which the kernel says "this fd cannot be spliced".
fn splice_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

/// Byte counters a relay adds to as data moves, so callers can watch live connections: how much
/// went each way, how much is held in the relay's buffers now, and how long ago a byte last
/// moved (what stopping and the idle timeout go by).
#[derive(Debug)]
pub(crate) struct Traffic {
    /// Bytes written to the backend.
    pub(crate) to_backend: AtomicU64,
    /// Bytes written to the client.
    pub(crate) to_client: AtomicU64,
    /// Directions that had to fall back from splice to copying.
    pub(crate) fallbacks: AtomicU64,
    /// Times a direction was found waking up again and again without moving a byte (a bug
    /// guard: it is paused each time, so it cannot take a core).
    pub(crate) spins: AtomicU64,
    /// Bytes read from one side and not yet written to the other (held in the pipes or copy
    /// buffers).
    buffered: AtomicU64,
    /// When a byte last moved either way, in milliseconds since `since`.
    moved_ms: AtomicU64,
    /// When the counters were made (the connection was set up).
    since: Instant,
    /// The thread the connection runs on, stamped as bytes move, if the proxy spreads.
    lane: Option<Arc<Lane>>,
}

impl Traffic {
    /// Counters of a connection served on `lane`.
    pub(crate) fn new(lane: Option<Arc<Lane>>) -> Traffic {
        Traffic {
            to_backend: AtomicU64::new(0),
            to_client: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            spins: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            moved_ms: AtomicU64::new(0),
            since: Instant::now(),
            lane,
        }
    }

    /// Bytes read from one side and not yet written to the other.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }

    /// How long since a byte last moved either way (since the counters were made, if none has).
    pub(crate) fn quiet_for(&self) -> Duration {
        let moved = Duration::from_millis(self.moved_ms.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(moved)
    }

    fn moved(&self) {
        let now = self.since.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        self.moved_ms.store(now, Ordering::Relaxed);
        if let Some(lane) = &self.lane {
            lane.stamp();
        }
    }
}

/// Wake-ups in a row that moved nothing before a pump is deemed to be spinning. Readiness is
/// only awaited after the kernel said `EAGAIN`, so a healthy pump wastes one now and then at most.
const SPIN_LIMIT: u32 = 64;

/// Moves one direction until `src` ends and everything read has been written to `dst`, then
/// half-closes `dst` so its peer sees end of stream while the other direction goes on. The
/// direction that ends last (`ended` was already set by the other) leaves `dst` as it is: the
/// relay is over, and the caller's `close` sends the same FIN without a `shutdown` call.
async fn pump(
    src: &Sock,
    dst: &Sock,
    stage: &mut Stage,
    counter: &AtomicU64,
    traffic: &Traffic,
    ended: &AtomicBool,
) -> Result<(), (End, io::Error)> {
    let at = |end: End| move |e: io::Error| (end, e);
    let mut eof = false;
    // The stage said it can take nothing more until drained: do not wait for `src`.
    let mut full = false;
    let mut futile = 0u32;
    loop {
        let mut progressed = false;
        if !eof && !full && stage.has_room() {
            match src.try_io(Interest::READABLE, || stage.fill(src)) {
                Ok(Fill::Eof) => eof = true,
                Ok(Fill::Read(n)) => {
                    traffic.buffered.fetch_add(n as u64, Ordering::Relaxed);
                    progressed = true;
                }
                Ok(Fill::Full) => full = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if splice_unsupported(&e) => {
                    // A failure to fall back (no memory) is charged to the socket being read.
                    fall_back(stage, &traffic.fallbacks, &e).map_err(at(End::Src))?;
                    continue;
                }
                Err(e) => return Err((End::Src, e)),
            }
        }
        if !stage.is_empty() {
            match dst.try_io(Interest::WRITABLE, || stage.drain(dst.as_fd())) {
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    traffic.buffered.fetch_sub(n as u64, Ordering::Relaxed);
                    progressed = true;
                    full = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if splice_unsupported(&e) => {
                    fall_back(stage, &traffic.fallbacks, &e).map_err(at(End::Dst))?;
                    continue;
                }
                Err(e) => return Err((End::Dst, e)),
            }
        }
        if eof && stage.is_empty() {
            if ended.swap(true, Ordering::Relaxed) {
                return Ok(());
            }
            return sys::shutdown_write(dst.as_fd()).map_err(at(End::Dst));
        }
        if progressed {
            traffic.moved();
            futile = 0;
            continue;
        }
        futile += 1;
        if futile > SPIN_LIMIT {
            // A bug, not a state of the network: say so loudly in tests, and never let it
            // take the process's CPU in production.
            traffic.spins.fetch_add(1, Ordering::Relaxed);
            debug_assert!(false, "relay pump woke {futile} times in a row without moving a byte");
            tracing::error!(futile, eof, full, "relay pump spinning without progress; pausing it");
            tokio::time::sleep(SPIN_PAUSE).await;
            futile = 0;
        }
        let want_read = !eof && !full && stage.has_room();
        let want_write = !stage.is_empty();
        tokio::select! {
            r = src.readable(), if want_read => r.map_err(at(End::Src))?,
            r = dst.writable(), if want_write => r.map_err(at(End::Dst))?,
        }
    }
}

/// How long a pump found spinning is paused, so that the rest of the process keeps serving.
const SPIN_PAUSE: Duration = Duration::from_millis(100);

/// Switches a direction whose splice the kernel refused (`e`) to copying, once, and counts it.
fn fall_back(stage: &mut Stage, fallbacks: &AtomicU64, e: &io::Error) -> io::Result<()> {
    tracing::debug!(error = %e, "splice refused, copying instead");
    stage.fall_back_to_copy()?;
    fallbacks.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The buffers of a connection's two directions, acquired before relaying so that a lack of
/// descriptors shows before any byte is moved.
pub(crate) struct Stages {
    up: Stage,
    down: Stage,
}

impl Stages {
    /// Two pipes from `pool` (or two copy buffers in [`RelayMode::Copy`]).
    pub(crate) fn new(mode: RelayMode, pool: &PipePool) -> io::Result<Stages> {
        Ok(match mode {
            RelayMode::Splice => {
                let up = pool.get()?;
                let down = match pool.get() {
                    Ok(p) => p,
                    Err(e) => {
                        pool.put(up);
                        return Err(e);
                    }
                };
                Stages { up: Stage::Pipe(up), down: Stage::Pipe(down) }
            }
            RelayMode::Copy => Stages { up: Stage::copy(), down: Stage::copy() },
        })
    }
}

/// Relays between `client` and `backend` until both directions have ended.
///
/// End of stream on one side is passed on as a half-close of the other; the opposite direction
/// keeps flowing. The second end of stream is passed on by the caller, which closes both
/// sockets once this returns `Ok` (both receive queues are then empty, so `close` sends a FIN,
/// not a reset). A finished direction gives its pipe back to `pool` at once, and its source is
/// still watched: a peer that half-closed and then reset or vanished ends the connection, even
/// if the other side never sends again. An error in either direction ends both.
pub(crate) async fn relay(
    client: &Sock,
    backend: &Sock,
    stages: Stages,
    pool: &PipePool,
    traffic: &Traffic,
) -> Result<(), RelayError> {
    let Stages { up, down } = stages;
    let (c, b) = ((client, Side::Client), (backend, Side::Backend));
    let ended = AtomicBool::new(false);
    let up = direction(c, b, up, (&traffic.to_backend, &ended), traffic, pool);
    let down = direction(b, c, down, (&traffic.to_client, &ended), traffic, pool);
    let failed = |side| move |source| RelayError { side, source };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => {
                r?;
                up_done = true;
            }
            r = &mut down, if !down_done => {
                r?;
                down_done = true;
            }
            e = failure(client), if up_done => return Err(failed(Side::Client)(e)),
            e = failure(backend), if down_done => return Err(failed(Side::Backend)(e)),
        }
    }
    Ok(())
}

/// One direction: pumps until its source ends, then returns its pipe to the pool. Each socket
/// comes with the side it is, which an error is charged to.
async fn direction(
    (src, src_side): (&Sock, Side),
    (dst, dst_side): (&Sock, Side),
    mut stage: Stage,
    (counter, ended): (&AtomicU64, &AtomicBool),
    traffic: &Traffic,
    pool: &PipePool,
) -> Result<(), RelayError> {
    let result = pump(src, dst, &mut stage, counter, traffic, ended).await;
    if let Stage::Pipe(p) = stage {
        pool.put(p);
    }
    result.map_err(|(end, source)| {
        let side = match end {
            End::Src => src_side,
            End::Dst => dst_side,
        };
        RelayError { side, source }
    })
}

/// Resolves when `s` reports an error (a reset after its end of stream, say): the socket's
/// pending error, taken.
async fn failure(s: &Sock) -> io::Error {
    loop {
        if let Err(e) = s.ready(Interest::ERROR).await {
            return e;
        }
        match s.take_error() {
            Ok(Some(e)) | Err(e) => return e,
            // Someone else took the error first: forget this readiness and wait for the next.
            Ok(None) => {
                let _ =
                    s.try_io(Interest::ERROR, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_gets_requested_capacity_or_default() {
        let p = Pipe::new(1 << 20).unwrap();
        assert!(p.capacity() >= 4096);
        assert_eq!(p.len, 0);
    }

    #[test]
    fn pool_keeps_only_empty_pipes_up_to_its_limit() {
        let pool = PipePool::new(65536, 1);
        let a = pool.get().unwrap();
        let mut b = pool.get().unwrap();
        b.len = 10;
        pool.put(b);
        assert_eq!(pool.idle(), 0, "a pipe holding bytes must not be reused");
        pool.put(a);
        pool.put(Pipe::new(65536).unwrap());
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn pool_keeps_twice_as_many_idle_pipes_as_are_lent_then_shrinks_back() {
        let pool = PipePool::new(65536, 1);
        let mut lent: Vec<_> = (0..6).map(|_| pool.get().unwrap()).collect();
        // A connection cut mid-relay drops its pipe: no longer counted as lent.
        drop(lent.pop());
        for _ in 0..3 {
            pool.put(lent.pop().unwrap());
        }
        assert_eq!(pool.idle(), 3, "kept while two are still lent");
        pool.put(lent.pop().unwrap());
        assert_eq!(pool.idle(), 2, "twice as many as are still lent");
        lent.push(pool.get().unwrap());
        assert_eq!(pool.idle(), 1, "reused, not made");
        for p in lent.drain(..) {
            pool.put(p);
        }
        assert_eq!(pool.idle(), 1, "all back: down to the floor");
    }

    #[test]
    fn fallback_carries_pipe_contents_into_the_copy_buffer() {
        let mut pipe = Pipe::new(65536).unwrap();
        assert_eq!(sys::write(pipe.write.as_fd(), b"hello").unwrap(), 5);
        pipe.len = 5;
        let mut stage = Stage::Pipe(pipe);
        assert!(stage.fall_back_to_copy().unwrap().is_some());
        match &stage {
            Stage::Copy { buf, start, end } => assert_eq!(&buf[*start..*end], b"hello"),
            Stage::Pipe(_) => panic!("stage should be copying"),
        }
    }
}
