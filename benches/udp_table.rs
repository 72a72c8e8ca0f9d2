//! The UDP session table at its default capacity of 4096 sessions: what a datagram from a known
//! client costs (lookup hit, then touch), what one from a new client costs (lookup miss, then
//! evicting the least recently used session and inserting), without any socket.
//!
//! Run with `cargo bench --bench udp_table` (add `-- --quick` for a rough figure in seconds).

mod common;

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use cproxy::proxy::udp_table::{SessionTable, Token};
use criterion::{Criterion, criterion_group, criterion_main};

/// `--udp-max-sessions`' default.
const CAPACITY: usize = 4096;

/// The `i`th client: distinct addresses spread over IPs and ports, as NATed clients are.
fn client(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000 + (i as u32 / 64));
    SocketAddr::new(ip.into(), 40000 + (i % 64) as u16)
}

/// A full table of clients `0..CAPACITY`, and their tokens.
fn full_table(now: Instant) -> (SessionTable<u64>, Vec<Token>) {
    let mut table = SessionTable::new(CAPACITY);
    let tokens = (0..CAPACITY)
        .map(|i| table.insert(client(i), i as u64, now).unwrap_or_else(|_| panic!("room for {i}")))
        .collect();
    (table, tokens)
}

fn lookup(c: &mut Criterion) {
    let now = Instant::now();
    let (table, _) = full_table(now);
    let clients: Vec<SocketAddr> = (0..CAPACITY).map(client).collect();
    let strangers: Vec<SocketAddr> = (CAPACITY..2 * CAPACITY).map(client).collect();
    let mut i = 0;
    c.bench_function("lookup hit", |b| {
        b.iter(|| {
            i = (i + 1) % CAPACITY;
            table.lookup(black_box(&clients[i]))
        })
    });
    c.bench_function("lookup miss", |b| {
        b.iter(|| {
            i = (i + 1) % CAPACITY;
            table.lookup(black_box(&strangers[i]))
        })
    });
}

fn touch(c: &mut Criterion) {
    let now = Instant::now();
    let (mut table, tokens) = full_table(now);
    // Round-robin in order of insertion, so each touch takes the least recently used session,
    // at the far end of the recency list, and moves it to the front.
    let mut i = 0;
    c.bench_function("touch", |b| {
        b.iter(|| {
            table.touch(black_box(tokens[i]), now);
            i = (i + 1) % CAPACITY;
        })
    });
}

fn insert_evicting(c: &mut Criterion) {
    let now = Instant::now();
    let (mut table, _) = full_table(now);
    // Clients come round every 2 × CAPACITY, so the next one has always been evicted already.
    let mut next = CAPACITY;
    c.bench_function("insert at capacity (evict + insert)", |b| {
        b.iter(|| {
            let evicted = table.pop_lru();
            let token = table.insert(client(next), next as u64, now);
            next = (next + 1) % (2 * CAPACITY);
            (evicted, token.is_ok())
        })
    });
    assert_eq!(table.len(), CAPACITY);
}

criterion_group! {
    name = benches;
    config = common::short_runs();
    targets = lookup, touch, insert_evicting
}
criterion_main!(benches);
