//! The descriptor budget of a process that serves many bindings (`cproxy forward`), so that one
//! busy binding cannot take every descriptor and leave the others, and the control socket,
//! unable to accept.
//!
//! The process's descriptor limit, less a reserve for the runtime, the control socket and its
//! clients and the pipe pool's idle pipes, is shared by the bindings. Each binding holds its
//! listening socket and a reserve of a few connections out of it that no other binding can
//! take; beyond its reserve a binding draws on what is left, first come first served. A
//! connection that finds neither is reset at once, as one past `-max-conns` is. Descriptors are
//! counted per connection (its two sockets, and its two pipes when splicing), not per call, so
//! the budget is a bound the accounting keeps, and descriptor exhaustion (EMFILE) stays the
//! last line of defence for what is not counted (UDP sessions).

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use super::relay::RelayMode;

/// Descriptors kept out of the budget for the process itself: standard streams, the runtime's
/// epoll and wake-up descriptors, the signal pipe, the status pipe and parent pidfd, the
/// control socket and its clients (16 by default).
const PROCESS_RESERVE: usize = 64;

/// Connections each binding can always open, whatever the others do.
const CONNECTIONS_RESERVED: usize = 2;

/// A proxy's descriptor budget, shared by its bindings.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Descriptors no binding holds or reserves; negative when the reserves alone exceed the
    /// limit (each binding then has only its reserve).
    free: AtomicIsize,
    /// Descriptors one connection takes.
    per_connection: usize,
}

impl Budget {
    /// A budget for a process allowed `limit` descriptors, whose connections are relayed by
    /// `mode`, and whose pipe pool keeps up to `idle_pipes` pipes open.
    pub(crate) fn new(limit: u64, mode: RelayMode, idle_pipes: usize) -> Budget {
        let per_connection = match mode {
            RelayMode::Splice => 2 + 2 * 2,
            RelayMode::Copy => 2,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let usable = limit.saturating_sub(PROCESS_RESERVE + 2 * idle_pipes);
        Budget {
            free: AtomicIsize::new(isize::try_from(usable).unwrap_or(isize::MAX)),
            per_connection,
        }
    }

    /// A binding's share: its listening socket and its reserve are taken from the budget until
    /// the share (and every connection it leased) is gone.
    pub(crate) fn share(self: &Arc<Budget>) -> Arc<Share> {
        let reserve = CONNECTIONS_RESERVED * self.per_connection;
        self.free.fetch_sub((1 + reserve) as isize, Ordering::Relaxed);
        Arc::new(Share { budget: self.clone(), reserve, reserve_used: AtomicUsize::new(0) })
    }
}

/// One binding's part of a [`Budget`].
#[derive(Debug)]
pub(crate) struct Share {
    budget: Arc<Budget>,
    /// Descriptors set aside for this binding alone.
    reserve: usize,
    /// How much of `reserve` its connections hold.
    reserve_used: AtomicUsize,
}

impl Share {
    /// The descriptors of one more connection, from the binding's reserve or else from what
    /// no binding holds; `None` if neither has them.
    pub(crate) fn lease(self: &Arc<Share>) -> Option<Lease> {
        let cost = self.budget.per_connection;
        let from_reserve = self
            .reserve_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + cost <= self.reserve).then_some(used + cost)
            })
            .is_ok();
        if !from_reserve {
            let cost = cost as isize;
            self.budget
                .free
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |free| {
                    (free >= cost).then_some(free - cost)
                })
                .ok()?;
        }
        Some(Lease { share: self.clone(), from_reserve })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.free.fetch_add((1 + self.reserve) as isize, Ordering::Relaxed);
    }
}

/// The descriptors of one connection; given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    share: Arc<Share>,
    from_reserve: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let cost = self.share.budget.per_connection;
        if self.from_reserve {
            self.share.reserve_used.fetch_sub(cost, Ordering::Relaxed);
        } else {
            self.share.budget.free.fetch_add(cost as isize, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget with room for `shared` connections beyond the reserves of `bindings` bindings.
    fn budget(bindings: usize, shared: usize) -> Arc<Budget> {
        let per = 6;
        let limit = PROCESS_RESERVE + bindings * (1 + CONNECTIONS_RESERVED * per) + shared * per;
        Arc::new(Budget::new(limit as u64, RelayMode::Splice, 0))
    }

    #[test]
    fn a_busy_binding_takes_what_is_shared_but_never_anothers_reserve() {
        let b = budget(2, 3);
        let (busy, quiet) = (b.share(), b.share());
        let held: Vec<Lease> = std::iter::from_fn(|| busy.lease()).take(100).collect();
        assert_eq!(held.len(), CONNECTIONS_RESERVED + 3, "its reserve and all that is shared");
        let quiet_held: Vec<Lease> = std::iter::from_fn(|| quiet.lease()).take(100).collect();
        assert_eq!(quiet_held.len(), CONNECTIONS_RESERVED, "the other still has its reserve");
        drop(held);
        assert!(quiet.lease().is_some(), "what the busy one gave back is shared again");
    }

    #[test]
    fn removing_a_binding_gives_back_its_listener_and_reserve() {
        let b = budget(2, 0);
        let (a, gone) = (b.share(), b.share());
        let lease = gone.lease().expect("from its reserve");
        drop(gone);
        let held: Vec<Lease> = std::iter::from_fn(|| a.lease()).take(100).collect();
        assert_eq!(held.len(), CONNECTIONS_RESERVED, "the removed binding's lease is still held");
        drop(lease);
        let more: Vec<Lease> = std::iter::from_fn(|| a.lease()).take(100).collect();
        assert_eq!(more.len(), 2, "the removed binding's reserve (13 descriptors) is shared now");
    }

    #[test]
    fn a_limit_below_the_reserves_leaves_each_binding_its_reserve_only() {
        let b = Arc::new(Budget::new(10, RelayMode::Splice, 32));
        let s = b.share();
        let held: Vec<Lease> = std::iter::from_fn(|| s.lease()).take(100).collect();
        assert_eq!(held.len(), CONNECTIONS_RESERVED);
    }
}
