//! UDP sessions and their descriptors, counted in /proc/self/fd. A test binary of its own, and
//! its tests take turns, because the count is process-wide.

mod udp_common;

use std::io;
use std::time::Duration;

use std::sync::Mutex;

use cproxy::proxy::{Config, Stats};
use udp_common::{Backend, client, exchange, forward, stats, wait_for};

/// Held by each test for its whole run, runtime included, so no other test's descriptors come
/// or go while it counts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of its own, alone.
fn alone(test: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = rt.block_on(test);
    drop(rt);
    result
}

fn open_fds() -> io::Result<usize> {
    testkit::procfs::own_fd_count()
}

#[test]
fn an_expired_session_closes_its_socket() -> io::Result<()> {
    alone(async {
        let backend = Backend::start("127.0.0.1").await?;
        let config = Config { udp_idle_timeout: Duration::from_millis(200), ..Config::default() };
        let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
        let s = stats(&proxy, &info);
        let before = open_fds()?;
        let mut clients = Vec::new();
        for _ in 0..20 {
            let c = client("127.0.0.1").await?;
            exchange(&c, info.local, b"hi").await?;
            clients.push(c);
        }
        // Each client holds one descriptor, and the proxy one per session.
        assert_eq!(open_fds()?, before + 20 + 20);
        assert_eq!(wait_for(&s.sessions_expired, |n| n == 20).await, 20);
        assert_eq!(Stats::get(&s.sessions), 0);
        assert_eq!(open_fds()?, before + 20);
        Ok(())
    })
}

#[test]
fn evicted_sessions_close_their_sockets_so_the_cap_bounds_descriptors() -> io::Result<()> {
    alone(async {
        let backend = Backend::start("127.0.0.1").await?;
        let config = Config { udp_max_sessions: 5, ..Config::default() };
        let (proxy, info) = forward(config, "127.0.0.1", backend.addr);
        let s = stats(&proxy, &info);
        let before = open_fds()?;
        let mut clients = Vec::new();
        for _ in 0..20 {
            let c = client("127.0.0.1").await?;
            exchange(&c, info.local, b"hi").await?;
            clients.push(c);
            assert!(open_fds()? <= before + clients.len() + 5);
        }
        assert_eq!(Stats::get(&s.sessions_evicted), 15);
        assert_eq!(open_fds()?, before + 20 + 5);
        Ok(())
    })
}

#[test]
fn removing_a_binding_closes_all_its_descriptors() -> io::Result<()> {
    alone(async {
        let backend = Backend::start("127.0.0.1").await?;
        let before = open_fds()?;
        let (proxy, info) = forward(Config::default(), "127.0.0.1", backend.addr);
        let c = client("127.0.0.1").await?;
        for _ in 0..3 {
            exchange(&client("127.0.0.1").await?, info.local, b"hi").await?;
        }
        exchange(&c, info.local, b"hi").await?;
        assert!(proxy.remove(info.id).await);
        // Only the test's own client is left: no session socket, no host socket, no epoll set.
        assert_eq!(open_fds()?, before + 1);
        Ok(())
    })
}
