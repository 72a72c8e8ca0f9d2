//! The session table of a UDP binding: sessions keyed by client address, kept in order of last
//! activity so that idle expiry and eviction both take the least recently used session first.
//!
//! Sessions live in a slab (a `Vec` of slots reused through a free list) threaded on an
//! intrusive doubly linked list in recency order, and a `HashMap` maps client addresses to
//! slots. Lookup, touch, insert, eviction and expiry are all O(1) (the map's expected O(1)); no
//! operation scans the table. The map keeps std's randomly keyed hasher: its keys are chosen by
//! whoever sends datagrams, and a predictable hash would let them collide on purpose.
//!
//! Public only so that `benches/udp_table.rs` can measure it (as `cproxy::proxy::udp_table`,
//! hidden from the docs); it is not part of cproxy's API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// End of the recency list.
const NIL: u32 = u32::MAX;

/// Names one session: its slot and the slot's generation, so that a stale token (say, from a
/// readiness event of a session closed since) never reaches the session that reuses the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    /// Packs the token into the 64 bits an epoll event carries.
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// Unpacks a token packed by [`Token::to_u64`].
    pub fn from_u64(v: u64) -> Token {
        Token { index: v as u32, generation: (v >> 32) as u32 }
    }
}

/// A live session as the table holds it.
pub struct Entry<V> {
    /// The client the session serves.
    pub client: SocketAddr,
    /// Last datagram in either direction.
    last_active: Instant,
    /// What the binding keeps per session (its backend socket, the reply source).
    pub value: V,
}

struct Slot<V> {
    generation: u32,
    entry: Option<Entry<V>>,
    /// Neighbour that was active more recently (towards `head`).
    newer: u32,
    /// Neighbour that was active less recently (towards `tail`).
    older: u32,
}

/// At most `capacity` sessions, by client address, in least-recently-used order.
pub struct SessionTable<V> {
    slots: Vec<Slot<V>>,
    /// Slots without a session, reused before the slab grows.
    free: Vec<u32>,
    by_client: HashMap<SocketAddr, u32>,
    /// The most recently active session.
    head: u32,
    /// The least recently active session: the next to expire or to be evicted.
    tail: u32,
    capacity: usize,
}

impl<V> SessionTable<V> {
    /// An empty table for at most `capacity` sessions (at least one). Memory grows with use.
    pub fn new(capacity: usize) -> SessionTable<V> {
        SessionTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_client: HashMap::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.clamp(1, NIL as usize),
        }
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// True when the table holds no session.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// True when a new session needs an old one evicted first.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// The session of `client`, if it has one.
    pub fn lookup(&self, client: &SocketAddr) -> Option<Token> {
        let index = *self.by_client.get(client)?;
        Some(Token { index, generation: self.slots[index as usize].generation })
    }

    /// The session `token` names, unless it has been removed since.
    pub fn get(&self, token: Token) -> Option<&Entry<V>> {
        let slot = self.slots.get(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    /// Like [`get`](Self::get), for changing the session's value.
    pub fn get_mut(&mut self, token: Token) -> Option<&mut Entry<V>> {
        let slot = self.slots.get_mut(token.index as usize)?;
        if slot.generation != token.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Records activity on a session: it becomes the most recently used.
    pub fn touch(&mut self, token: Token, now: Instant) {
        let Some(entry) = self.get_mut(token) else { return };
        entry.last_active = now;
        self.unlink(token.index);
        self.push_head(token.index);
    }

    /// Adds a session for `client` as the most recently used. Gives `value` back if the table is
    /// full (evict first) or `client` already has a session.
    pub fn insert(&mut self, client: SocketAddr, value: V, now: Instant) -> Result<Token, V> {
        if self.is_full() || self.by_client.contains_key(&client) {
            return Err(value);
        }
        let entry = Entry { client, last_active: now, value };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].entry = Some(entry);
                i
            }
            None => {
                let i = self.slots.len() as u32;
                self.slots.push(Slot { generation: 0, entry: Some(entry), newer: NIL, older: NIL });
                i
            }
        };
        self.by_client.insert(client, index);
        self.push_head(index);
        Ok(Token { index, generation: self.slots[index as usize].generation })
    }

    /// Removes the session `token` names, if it is still there.
    pub fn remove(&mut self, token: Token) -> Option<(SocketAddr, V)> {
        self.get(token)?;
        self.take(token.index)
    }

    /// Removes the least recently used session.
    pub fn pop_lru(&mut self) -> Option<(SocketAddr, V)> {
        if self.tail == NIL { None } else { self.take(self.tail) }
    }

    /// Removes the least recently used session if it has been idle for `idle` at `now`.
    pub fn pop_expired(&mut self, now: Instant, idle: Duration) -> Option<(SocketAddr, V)> {
        let due = self.next_expiry(idle)?;
        if due <= now { self.take(self.tail) } else { None }
    }

    /// When the least recently used session will have been idle for `idle`; `None` if the
    /// table is empty (or the instant is past what `Instant` can represent).
    pub fn next_expiry(&self, idle: Duration) -> Option<Instant> {
        let entry = self.slots.get(self.tail as usize)?.entry.as_ref()?;
        entry.last_active.checked_add(idle)
    }

    /// Removes every session, least recently used first.
    pub fn drain(&mut self) -> impl Iterator<Item = (SocketAddr, V)> + '_ {
        std::iter::from_fn(|| self.pop_lru())
    }

    fn take(&mut self, index: u32) -> Option<(SocketAddr, V)> {
        let entry = self.slots.get_mut(index as usize)?.entry.take()?;
        self.unlink(index);
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.by_client.remove(&entry.client);
        Some((entry.client, entry.value))
    }

    fn unlink(&mut self, index: u32) {
        let (newer, older) = {
            let slot = &self.slots[index as usize];
            (slot.newer, slot.older)
        };
        match newer {
            NIL => self.head = older,
            n => self.slots[n as usize].older = older,
        }
        match older {
            NIL => self.tail = newer,
            o => self.slots[o as usize].newer = newer,
        }
        let slot = &mut self.slots[index as usize];
        slot.newer = NIL;
        slot.older = NIL;
    }

    fn push_head(&mut self, index: u32) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[index as usize];
            slot.newer = NIL;
            slot.older = old_head;
        }
        match old_head {
            NIL => self.tail = index,
            h => self.slots[h as usize].newer = index,
        }
        self.head = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn lookup_finds_the_session_of_each_client() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(4);
        let a = table.insert(client(1), "a", t0).ok();
        let b = table.insert(client(2), "b", t0).ok();
        assert_eq!(table.lookup(&client(1)), a);
        assert_eq!(table.lookup(&client(2)), b);
        assert_eq!(table.lookup(&client(3)), None);
        let b = table.lookup(&client(2)).and_then(|t| table.get(t)).map(|e| e.value);
        assert_eq!(b, Some("b"));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_client_cannot_have_two_sessions() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(4);
        assert!(table.insert(client(1), 1, t0).is_ok());
        assert_eq!(table.insert(client(1), 2, t0), Err(2));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_until_a_session_is_evicted() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(2);
        assert!(table.insert(client(1), 1, t0).is_ok());
        assert!(table.insert(client(2), 2, t0).is_ok());
        assert!(table.is_full());
        assert_eq!(table.insert(client(3), 3, t0), Err(3));
        assert_eq!(table.pop_lru(), Some((client(1), 1)));
        assert!(table.insert(client(3), 3, t0).is_ok());
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn eviction_takes_the_least_recently_used_session() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(8);
        let tokens: Vec<Token> =
            (1..=3).filter_map(|p| table.insert(client(p), p, secs(t0, p.into())).ok()).collect();
        // Client 1, the oldest, becomes the most recent.
        table.touch(tokens[0], secs(t0, 10));
        assert_eq!(table.pop_lru(), Some((client(2), 2)));
        assert_eq!(table.pop_lru(), Some((client(3), 3)));
        assert_eq!(table.pop_lru(), Some((client(1), 1)));
        assert_eq!(table.pop_lru(), None);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn only_sessions_idle_for_the_timeout_expire() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(90);
        let mut table = SessionTable::new(8);
        let a = table.insert(client(1), 1, t0).ok();
        assert!(table.insert(client(2), 2, secs(t0, 30)).is_ok());
        assert_eq!(table.next_expiry(idle), Some(secs(t0, 90)));
        if let Some(a) = a {
            table.touch(a, secs(t0, 60));
        }
        assert_eq!(table.next_expiry(idle), Some(secs(t0, 120)));
        assert_eq!(table.pop_expired(secs(t0, 119), idle), None);
        assert_eq!(table.pop_expired(secs(t0, 120), idle), Some((client(2), 2)));
        assert_eq!(table.pop_expired(secs(t0, 120), idle), None);
        assert_eq!(table.pop_expired(secs(t0, 150), idle), Some((client(1), 1)));
        assert_eq!(table.next_expiry(idle), None);
    }

    #[test]
    fn a_stale_token_does_not_reach_the_session_reusing_its_slot() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(1);
        let Ok(old) = table.insert(client(1), 1, t0) else { panic!("insert into empty table") };
        assert_eq!(table.pop_lru(), Some((client(1), 1)));
        let Ok(new) = table.insert(client(2), 2, t0) else { panic!("insert after eviction") };
        assert_ne!(old, new);
        assert!(table.get(old).is_none());
        assert!(table.remove(old).is_none());
        table.touch(old, secs(t0, 5));
        assert_eq!(table.next_expiry(Duration::ZERO), Some(t0));
        assert_eq!(table.get(new).map(|e| e.value), Some(2));
    }

    #[test]
    fn tokens_survive_the_trip_through_an_epoll_event() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(2);
        let Ok(t) = table.insert(client(1), 1, t0) else { panic!("insert into empty table") };
        assert_eq!(Token::from_u64(t.to_u64()), t);
        assert_eq!(table.remove(Token::from_u64(t.to_u64())), Some((client(1), 1)));
    }

    #[test]
    fn removing_from_the_middle_keeps_the_order_of_the_rest() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(8);
        let tokens: Vec<Token> =
            (1..=4).filter_map(|p| table.insert(client(p), p, secs(t0, p.into())).ok()).collect();
        assert_eq!(table.remove(tokens[2]), Some((client(3), 3)));
        assert_eq!(table.remove(tokens[0]), Some((client(1), 1)));
        assert!(table.insert(client(5), 5, secs(t0, 5)).is_ok());
        let order: Vec<u16> = table.drain().map(|(c, _)| c.port()).collect();
        assert_eq!(order, vec![2, 4, 5]);
    }

    #[test]
    fn slots_are_reused_so_memory_stays_bounded_under_churn() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(10);
        for p in 0..10_000u16 {
            if table.is_full() {
                assert!(table.pop_lru().is_some());
            }
            assert!(table.insert(client(p), p, t0).is_ok());
        }
        assert_eq!(table.len(), 10);
        assert!(table.slots.len() <= 10);
        let left: Vec<u16> = table.drain().map(|(c, _)| c.port()).collect();
        assert_eq!(left, (9_990..10_000).collect::<Vec<u16>>());
    }
}
