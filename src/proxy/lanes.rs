//! Threads that follow the load. A proxy that may spread ([`Proxy::spread`]) runs on the
//! thread that serves it (its *home* lane) until TCP connections overlap there; it then starts
//! worker threads, each with a current-thread runtime of its own, up to a maximum (one per
//! CPU), and places each new connection on a lane with nothing going on, or else on the least
//! loaded one. A worker whose last connection closed [`IDLE_EXIT`] ago ends, so a process with
//! no traffic is back to its one thread, and one connection at a time never leaves home.
//!
//! Why placement at accept and not migration: a connection's sockets are registered with the
//! reactor of the runtime that serves them, and moving a live relay (its pipes, its readiness,
//! its timers) between runtimes would put work on the hot path of every connection for the rare
//! one that moves. A busy port is busy with many connections, and new ones keep coming, so
//! placing each where there is room spreads the load; a long transfer stays where it began.
//!
//! What "going on" means: a lane is busy while it holds connections of which one was placed
//! there, or moved a byte, within the last [`BUSY_WINDOW`] (the relay stamps its lane as it
//! stamps its own traffic). A lane holding only quiet connections (idle keep-alives) counts as
//! free, so a pool of idle connections does not keep new threads coming; the workers it already
//! holds stay until their connections close (they sleep in `epoll_wait`, costing no CPU).
//!
//! Accepted sockets are handed over unregistered (accepted without the runtime's reactor), and
//! each registers with the runtime of the lane that serves it, so a connection's readiness
//! wakes only its own thread. Stopping reaches every lane through the binding's tokens, and
//! the binding's task tracker counts the connections of every lane, so a drain waits for all.
//! Workers end as soon as they are empty once the proxy is stopping.
//!
//! [`Proxy::spread`]: super::Proxy::spread

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::lock;

/// How long after its last connection closed a worker thread ends.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(2);

/// How recently a lane must have taken a connection or moved a byte to count as busy.
pub(crate) const BUSY_WINDOW: Duration = Duration::from_millis(100);

/// The lanes of one proxy: its home (the thread serving the proxy) and the workers running now.
pub(crate) struct Lanes {
    /// Most lanes at once, home included.
    max: usize,
    home: Arc<Lane>,
    workers: Mutex<Vec<Arc<Lane>>>,
    /// What every lane's clock counts from.
    epoch: Instant,
    /// Cancelled when the proxy stops: workers then end as soon as they are empty.
    stopping: CancellationToken,
    /// Workers started so far (for the logs and tests).
    started: AtomicU64,
    /// Weak, so that workers do not keep their proxy's lanes alive.
    me: Weak<Lanes>,
}

/// One thread serving connections: its open connections and when it last did anything.
#[derive(Debug)]
pub(crate) struct Lane {
    /// Where its connections run; `None` for home (the runtime that places them).
    handle: Option<Handle>,
    /// Connections placed on it and not yet ended.
    open: AtomicUsize,
    /// When it last took a connection or moved a byte, in ms since the lanes' epoch.
    active_ms: AtomicU64,
    epoch: Instant,
    /// Notified when its last connection ends.
    emptied: Notify,
}

impl Lane {
    fn new(handle: Option<Handle>, epoch: Instant) -> Lane {
        Lane {
            handle,
            open: AtomicUsize::new(0),
            active_ms: AtomicU64::new(0),
            epoch,
            emptied: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
    }

    /// Records that one of its connections moved bytes now.
    pub(crate) fn stamp(&self) {
        self.active_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn busy(&self, now_ms: u64) -> bool {
        self.open.load(Ordering::Relaxed) > 0
            && now_ms.saturating_sub(self.active_ms.load(Ordering::Relaxed))
                < BUSY_WINDOW.as_millis() as u64
    }

    fn load(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// A connection's place on a lane, held for as long as the connection lives.
#[derive(Debug)]
pub(crate) struct Seat {
    lane: Arc<Lane>,
}

impl Seat {
    /// The runtime to run the connection on; `None`: the current one (home).
    pub(crate) fn handle(&self) -> Option<&Handle> {
        self.lane.handle.as_ref()
    }

    /// The lane, for the relay to stamp as it moves bytes.
    pub(crate) fn lane(&self) -> &Arc<Lane> {
        &self.lane
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if self.lane.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.lane.emptied.notify_one();
        }
    }
}

impl Lanes {
    /// Lanes for a proxy served by the calling runtime, up to `max` threads in all; workers end
    /// once `stopping` is cancelled and they are empty.
    pub(crate) fn new(max: usize, stopping: CancellationToken) -> Arc<Lanes> {
        let epoch = Instant::now();
        Arc::new_cyclic(|me| Lanes {
            max: max.max(1),
            home: Arc::new(Lane::new(None, epoch)),
            workers: Mutex::new(Vec::new()),
            epoch,
            stopping,
            started: AtomicU64::new(0),
            me: me.clone(),
        })
    }

    /// Lanes serving connections now, home included.
    pub(crate) fn running(&self) -> usize {
        1 + lock(&self.workers).len()
    }

    /// Workers started so far.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// A seat for a new connection: home if nothing is going on there; else a worker with
    /// nothing going on; else a new worker if there is room for one; else the least loaded lane.
    pub(crate) fn place(&self) -> Seat {
        self.place_at(self.home.now_ms())
    }

    /// [`Lanes::place`] at `now` (ms since the epoch).
    fn place_at(&self, now: u64) -> Seat {
        let mut workers = lock(&self.workers);
        let lane = if !self.home.busy(now) {
            self.home.clone()
        } else if let Some(free) = workers.iter().filter(|w| !w.busy(now)).min_by_key(|w| w.load())
        {
            free.clone()
        } else if let Some(new) = (1 + workers.len() < self.max && !self.stopping.is_cancelled())
            .then(|| self.start_worker())
            .and_then(|started| started.ok())
        {
            workers.push(new.clone());
            new
        } else {
            // Ties go to home, which needs no hand-over.
            let least = workers.iter().min_by_key(|w| w.load());
            match least {
                Some(w) if w.load() < self.home.load() => w.clone(),
                _ => self.home.clone(),
            }
        };
        lane.open.fetch_add(1, Ordering::AcqRel);
        lane.active_ms.store(now, Ordering::Relaxed);
        drop(workers);
        Seat { lane }
    }

    /// Starts a worker thread with a runtime of its own. A failure (no memory, a thread limit)
    /// only means the connection stays on a lane that exists.
    fn start_worker(&self) -> io::Result<Arc<Lane>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let lane = Arc::new(Lane::new(Some(runtime.handle().clone()), self.epoch));
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let (lanes, served, stopping) = (self.me.clone(), lane.clone(), self.stopping.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("cproxy-worker-{n}"))
            .spawn(move || runtime.block_on(serve_lane(lanes, served, stopping)));
        match spawned {
            Ok(_) => {
                tracing::debug!(worker = n, "busy: started a worker thread");
                Ok(lane)
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot start a worker thread");
                Err(e)
            }
        }
    }

    /// Takes `lane` out of service if it is still empty and has been idle long enough (or the
    /// proxy is stopping); true if it did, and its thread may end.
    fn retire(&self, lane: &Arc<Lane>) -> bool {
        let mut workers = lock(&self.workers);
        let idle_ms = lane.now_ms().saturating_sub(lane.active_ms.load(Ordering::Relaxed));
        let idle = self.stopping.is_cancelled() || idle_ms >= IDLE_EXIT.as_millis() as u64;
        if lane.open.load(Ordering::Acquire) == 0 && idle {
            workers.retain(|w| !Arc::ptr_eq(w, lane));
            return true;
        }
        false
    }
}

/// A worker's own task: waits for the lane to be empty and idle, then retires it, which ends
/// the thread (its connections run as tasks of the same runtime meanwhile).
async fn serve_lane(lanes: Weak<Lanes>, lane: Arc<Lane>, stopping: CancellationToken) {
    loop {
        while lane.open.load(Ordering::Acquire) > 0 {
            // A permit is stored if the last connection ends between the check and the wait.
            lane.emptied.notified().await;
        }
        let idle_ms = lane.now_ms().saturating_sub(lane.active_ms.load(Ordering::Relaxed));
        let left = IDLE_EXIT.saturating_sub(Duration::from_millis(idle_ms));
        tokio::select! {
            _ = tokio::time::sleep(left) => {}
            _ = stopping.cancelled() => {}
        }
        match lanes.upgrade() {
            Some(lanes) if !lanes.retire(&lane) => continue,
            _ => {
                tracing::debug!("idle: a worker thread ends");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places `n` connections at once, all looking busy (just placed).
    fn place_many(lanes: &Lanes, n: usize) -> Vec<Seat> {
        (0..n).map(|_| lanes.place()).collect()
    }

    #[tokio::test]
    async fn one_connection_at_a_time_stays_home() {
        let lanes = Lanes::new(4, CancellationToken::new());
        for _ in 0..10 {
            let seat = lanes.place();
            assert!(seat.handle().is_none(), "a lone connection left home");
        }
        assert_eq!((lanes.running(), lanes.started()), (1, 0));
    }

    #[tokio::test]
    async fn overlapping_connections_spread_up_to_the_maximum_and_no_further() {
        let lanes = Lanes::new(3, CancellationToken::new());
        let seats = place_many(&lanes, 9);
        assert_eq!(lanes.running(), 3);
        let home = seats.iter().filter(|s| s.handle().is_none()).count();
        assert_eq!(home, 3, "9 connections over 3 lanes, home's share");
    }

    #[tokio::test]
    async fn a_maximum_of_one_never_starts_a_worker() {
        let lanes = Lanes::new(1, CancellationToken::new());
        let seats = place_many(&lanes, 5);
        assert!(seats.iter().all(|s| s.handle().is_none()));
        assert_eq!(lanes.started(), 0);
    }

    #[tokio::test]
    async fn quiet_connections_do_not_make_a_lane_busy() {
        let lanes = Lanes::new(4, CancellationToken::new());
        let quiet = lanes.place_at(0);
        assert!(quiet.handle().is_none());
        // Later, with nothing moved since it was placed.
        let next = lanes.place_at(BUSY_WINDOW.as_millis() as u64);
        assert!(next.handle().is_none(), "a quiet home was taken for busy");
        assert_eq!(lanes.started(), 0);
    }

    #[tokio::test]
    async fn an_empty_worker_retires_once_the_proxy_stops() {
        let stopping = CancellationToken::new();
        let lanes = Lanes::new(2, stopping.clone());
        let seats = place_many(&lanes, 2);
        assert_eq!(lanes.running(), 2);
        let worker = seats.iter().find(|s| s.handle().is_some()).unwrap().lane().clone();
        stopping.cancel();
        assert!(!lanes.retire(&worker), "a worker holding a connection retired");
        drop(seats);
        assert!(lanes.retire(&worker));
        assert_eq!(lanes.running(), 1);
    }
}
