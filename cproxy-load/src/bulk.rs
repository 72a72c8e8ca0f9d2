//! TCP bulk throughput: streams that write as fast as they can into the sink, counted by what
//! the sink reads, in Gbit/s. This is the figure the physical limit is taken from, so the
//! client and the sink move data in large blocks with blocking calls and nothing else.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use testkit::procfs;

use crate::backend::{BULK_BUF, Backends, SINK};
use crate::load::{self, LoadError, Window};

/// One bulk run.
#[derive(Clone, Copy, Debug)]
pub struct Bulk {
    /// Throughput over the counted window, in Gbit/s (10⁹ bits).
    pub gbit_per_s: f64,
    /// Bytes the sink read in the counted window.
    pub bytes: u64,
    /// CPU seconds the proxy process used in the counted window (`None` without a proxy).
    pub proxy_cpu_seconds: Option<f64>,
    /// The proxy process's threads at the end of the counted window (`None` without a proxy).
    pub proxy_threads: Option<u64>,
}

/// Runs `streams` streams to `target` for `window`, reading the sink's counter off `backends`
/// and the CPU time of `proxy` (the forwarding process, if there is one) around the window.
pub fn run(
    target: SocketAddr,
    streams: usize,
    window: Window,
    backends: &Backends,
    proxy: Option<u32>,
) -> Result<Bulk, LoadError> {
    load::check_loopback(target)?;
    let streams = streams.max(1);
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(streams + 1);
    let failure: Mutex<Option<LoadError>> = Mutex::new(None);
    let fail = |e: LoadError| {
        if let Ok(mut f) = failure.lock() {
            f.get_or_insert(e);
        }
    };
    let sample = || -> Result<(u64, Instant, Option<f64>), LoadError> {
        let cpu = match proxy {
            Some(pid) => Some(procfs::tree_cpu_seconds(pid).ok_or_else(|| {
                LoadError(format!("the proxy process {pid} exited during the bulk run"))
            })?),
            None => None,
        };
        Ok((backends.sunk(), Instant::now(), cpu))
    };
    let measured = std::thread::scope(|s| {
        for _ in 0..streams {
            s.spawn(|| {
                let conn = load::connect(target);
                ready.wait();
                match conn {
                    Ok(mut c) => {
                        let buf = vec![SINK; BULK_BUF];
                        while !stop.load(Ordering::Relaxed) {
                            if let Err(e) = c.write_all(&buf) {
                                if !stop.load(Ordering::Relaxed) {
                                    fail(LoadError::io("bulk write to", target, &e));
                                }
                                break;
                            }
                        }
                        let _ = c.shutdown(Shutdown::Write);
                    }
                    Err(e) => fail(e),
                }
            });
        }
        ready.wait();
        let (start, end) = window.starting_now();
        load::sleep_until(start);
        let first = sample();
        load::sleep_until(end);
        let last = sample();
        let threads = proxy.and_then(procfs::threads);
        stop.store(true, Ordering::Relaxed);
        Ok::<_, LoadError>((first?, last?, threads))
    });
    // Bytes still in flight must land before the next run counts.
    backends.wait_sinks_closed(Duration::from_secs(3));
    if let Some(e) = failure.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    let ((bytes0, t0, cpu0), (bytes1, t1, cpu1), proxy_threads) = measured?;
    if load::interrupted() {
        return Err(LoadError("interrupted".into()));
    }
    let bytes = bytes1 - bytes0;
    if bytes == 0 {
        return Err(LoadError(format!("no bytes reached the sink through {target}")));
    }
    let seconds = (t1 - t0).as_secs_f64();
    Ok(Bulk {
        gbit_per_s: bytes as f64 * 8.0 / seconds / 1e9,
        bytes,
        proxy_cpu_seconds: cpu0.zip(cpu1).map(|(a, b)| b - a),
        proxy_threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Window =
        Window { warmup: Duration::from_millis(50), duration: Duration::from_millis(200) };

    #[test]
    fn direct_streams_move_bytes_and_report_a_rate() {
        let b = Backends::start(4).unwrap();
        let r = run(b.tcp, 2, SHORT, &b, None).unwrap();
        assert!(r.bytes > 0 && r.gbit_per_s > 0.0);
        assert_eq!(r.proxy_cpu_seconds, None);
    }

    #[test]
    fn a_closed_port_is_an_error_not_a_zero() {
        let b = Backends::start(1).unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = run(closed, 1, SHORT, &b, None).unwrap_err();
        assert!(e.0.contains("cannot connect"), "{e}");
    }

    #[test]
    fn the_cpu_time_of_a_given_process_is_measured() {
        let b = Backends::start(2).unwrap();
        let r = run(b.tcp, 1, SHORT, &b, Some(std::process::id())).unwrap();
        assert!(r.proxy_cpu_seconds.is_some_and(|s| s >= 0.0));
        assert!(r.proxy_threads.is_some_and(|n| n >= 1));
    }
}
