//! UDP bulk throughput: one sender writes datagrams of one size into the backend's UDP sink as
//! fast as it can, counted by what the sink receives, in Gbit/s. Nothing paces the sender, so
//! what a forwarder cannot take in time is lost (as with `iperf3 -u -b 0`): the figure is what
//! arrives, and the loss is reported beside it.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use testkit::procfs;

use crate::backend::{Backends, SINK};
use crate::load::{self, LoadError, Window};

/// The datagram size of the figure: the largest that crosses a 1500-byte Ethernet link without
/// fragments (1500 less the IPv4 and UDP headers), which is what a container's UDP traffic
/// (QUIC, VPNs, media) is made of.
pub const DEFAULT_SIZE: usize = 1472;

/// The largest datagram over IPv4.
pub const MAX_SIZE: usize = 65507;

/// One UDP bulk run.
#[derive(Clone, Copy, Debug)]
pub struct UdpBulk {
    /// Throughput over the counted window, in Gbit/s (10⁹ bits).
    pub gbit_per_s: f64,
    /// Fraction of the bytes sent in the counted window that did not arrive in it.
    pub loss: f64,
    /// CPU seconds the proxy process used in the counted window, per GB that arrived (`None`
    /// without a proxy).
    pub proxy_cpu_per_gb: Option<f64>,
}

/// Runs one sender of `size`-byte datagrams to `target` for `window`, reading the sink's
/// counter off `backends` and the CPU time of `proxy` (the forwarding process, if there is one)
/// around the window.
pub fn run(
    target: SocketAddr,
    size: usize,
    window: Window,
    backends: &Backends,
    proxy: Option<u32>,
) -> Result<UdpBulk, LoadError> {
    load::check_loopback(target)?;
    let sock = UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| LoadError::io("cannot bind a sender for", target, &e))?;
    sock.connect(target).map_err(|e| LoadError::io("cannot connect to", target, &e))?;
    let datagram = vec![SINK; size.clamp(1, MAX_SIZE)];
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (start, end) = window.starting_now();
    let (sampled, sending) = std::thread::scope(|s| {
        let sender = s.spawn(|| -> Result<(), LoadError> {
            while !stop.load(Ordering::Relaxed) {
                match sock.send(&datagram) {
                    Ok(n) => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    // A full queue somewhere on the way: the datagram is lost, as it would be.
                    Err(e)
                        if e.kind() == ErrorKind::WouldBlock
                            || e.raw_os_error() == Some(libc::ENOBUFS) => {}
                    Err(e) => return Err(LoadError::io("cannot send to", target, &e)),
                }
            }
            Ok(())
        });
        let cpu = || proxy.and_then(procfs::tree_cpu_seconds);
        let sample = || (backends.udp_sunk(), sent.load(Ordering::Relaxed), Instant::now(), cpu());
        load::sleep_until(start);
        let first = sample();
        load::sleep_until(end);
        let last = sample();
        stop.store(true, Ordering::Relaxed);
        let sending =
            sender.join().unwrap_or_else(|_| Err(LoadError("the UDP sender panicked".into())));
        ((first, last), sending)
    });
    sending?;
    if load::interrupted() {
        return Err(LoadError("interrupted".into()));
    }
    let ((sunk0, sent0, t0, cpu0), (sunk1, sent1, t1, cpu1)) = sampled;
    let (bytes, offered) = (sunk1 - sunk0, sent1 - sent0);
    if bytes == 0 {
        return Err(LoadError(format!("no datagram reached the sink through {target}")));
    }
    Ok(UdpBulk {
        gbit_per_s: bytes as f64 * 8.0 / (t1 - t0).as_secs_f64() / 1e9,
        loss: if offered == 0 { 0.0 } else { 1.0 - (bytes as f64 / offered as f64).min(1.0) },
        proxy_cpu_per_gb: cpu0.zip(cpu1).map(|(a, b)| (b - a) / (bytes as f64 / 1e9)),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SHORT: Window =
        Window { warmup: Duration::from_millis(50), duration: Duration::from_millis(200) };

    #[test]
    fn direct_datagrams_reach_the_sink_and_report_a_rate() {
        let b = Backends::start(1).unwrap();
        let r = run(b.udp, DEFAULT_SIZE, SHORT, &b, Some(std::process::id())).unwrap();
        assert!(r.gbit_per_s > 0.0);
        assert!(r.proxy_cpu_per_gb.is_some_and(|c| c > 0.0), "this process's sender's CPU");
        assert!((0.0..=1.0).contains(&r.loss), "{}", r.loss);
    }

    #[test]
    fn a_port_nobody_listens_on_is_an_error() {
        let b = Backends::start(1).unwrap();
        let free = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(run(free, 100, SHORT, &b, None).is_err());
    }
}
