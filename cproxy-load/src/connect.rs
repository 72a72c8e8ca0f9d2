//! TCP connection rate: clients that connect, send one byte, read it back from the echo, and
//! close, over and over; connections completed per second.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use testkit::procfs;

use crate::backend::ECHO;
use crate::load::{self, LoadError, Window};

/// Most connections one run makes, whatever its duration.
const MAX_CONNECTIONS: u64 = 2_000_000;

/// One connection-rate run.
#[derive(Clone, Debug)]
pub struct ConnectRate {
    /// Connections completed per second in the counted window.
    pub per_second: f64,
    /// Connections completed in the counted window.
    pub completed: u64,
    /// Connections that failed (refused, reset, timed out, wrong byte), counted window or not.
    pub failed: u64,
    /// The first failure, if any.
    pub first_failure: Option<LoadError>,
    /// The proxy process's threads at the end of the counted window (`None` without a proxy).
    pub proxy_threads: Option<u64>,
    /// CPU seconds the proxy process used in the counted window (`None` without a proxy).
    pub proxy_cpu_seconds: Option<f64>,
}

/// Runs `clients` clients against `target` for `window`, and measures the CPU time of `proxy`
/// (the forwarding process, if there is one) over the counted window and its threads at its end.
pub fn run(
    target: SocketAddr,
    clients: usize,
    window: Window,
    proxy: Option<u32>,
) -> Result<ConnectRate, LoadError> {
    load::check_loopback(target)?;
    let clients = clients.max(1);
    let (start, end) = window.starting_now();
    let completed = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let attempts = AtomicU64::new(0);
    let first_failure: Mutex<Option<LoadError>> = Mutex::new(None);
    let cpu = || proxy.and_then(procfs::tree_cpu_seconds);
    let (proxy_threads, proxy_cpu_seconds) = std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                while Instant::now() < end
                    && !load::interrupted()
                    && attempts.fetch_add(1, Ordering::Relaxed) < MAX_CONNECTIONS
                {
                    match one_connection(target) {
                        Ok(()) if Instant::now() >= start => {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(()) => {}
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_failure.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
        load::sleep_until(start);
        let cpu0 = cpu();
        load::sleep_until(end);
        let used = cpu().zip(cpu0).map(|(b, a)| b - a);
        (proxy.and_then(procfs::threads), used)
    });
    let seconds = (Instant::now().min(end) - start).as_secs_f64();
    let completed = completed.into_inner();
    let first_failure = first_failure.into_inner().ok().flatten();
    if completed == 0 || seconds <= 0.0 {
        return Err(first_failure
            .unwrap_or_else(|| LoadError(format!("no connection completed through {target}"))));
    }
    Ok(ConnectRate {
        per_second: completed as f64 / seconds,
        completed,
        failed: failed.into_inner(),
        first_failure,
        proxy_threads,
        proxy_cpu_seconds,
    })
}

/// Connect, one byte there and back, close.
fn one_connection(target: SocketAddr) -> Result<(), LoadError> {
    let mut c = load::connect(target)?;
    c.write_all(&[ECHO]).map_err(|e| LoadError::io("cannot write to", target, &e))?;
    let mut b = [0u8; 1];
    c.read_exact(&mut b).map_err(|e| LoadError::io("no echo from", target, &e))?;
    if b[0] != ECHO {
        return Err(LoadError(format!("wrong byte echoed through {target}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::Backends;

    #[test]
    fn direct_connections_complete_and_are_counted() {
        let b = Backends::start(4).unwrap();
        let w = Window { warmup: Duration::from_millis(20), duration: Duration::from_millis(200) };
        let r = run(b.tcp, 2, w, Some(std::process::id())).unwrap();
        assert!(r.completed > 0 && r.per_second > 0.0);
        assert_eq!(r.failed, 0, "{:?}", r.first_failure);
        assert!(r.proxy_threads.is_some_and(|n| n >= 2), "this process and its clients");
        assert!(r.proxy_cpu_seconds.is_some_and(|s| s > 0.0), "this process's clients' CPU");
    }
}
