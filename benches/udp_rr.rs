//! UDP request/response benchmark: 64-byte transactions per second, from N concurrent clients,
//! sent straight to an echo backend, through a cproxy UDP binding (in this process), and
//! through socat if it is installed. All traffic stays on 127.0.0.1; every loop ends on a
//! deadline.
//!
//! Run with `cargo bench --bench udp_rr` (optionally `-- SECONDS CLIENTS...`, e.g. `-- 3 1 8`).
//! `UDP_RR_THREADS=N` sets the proxy runtime's workers (as `cproxy --threads`);
//! `UDP_RR_ONLY_CPROXY=1` measures the proxy alone, for profiling.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cproxy::proxy::{Binding, Config, Proto, Proxy};
use testkit::peers::{self, UdpEcho};
use testkit::procfs;

const PAYLOAD: usize = 64;
const SOCAT: &str = "/usr/bin/socat";
/// Transactions before the clock starts: sessions open, caches warm.
const WARMUP: Duration = Duration::from_millis(300);

/// Result of one run: completed transactions per second, and replies that never came.
struct Run {
    tps: f64,
    /// Transactions, warm-up included.
    all: u64,
    lost: u64,
}

/// CPU time (user + system) the proxy's runtime threads have used, in seconds: what the proxy
/// costs, whatever else the machine is doing.
fn proxy_cpu() -> f64 {
    procfs::thread_cpu_seconds("tokio-rt-worker")
}

/// `clients` threads each doing send-64-bytes/wait-for-reply against `target` for `secs`.
fn measure(target: SocketAddr, clients: usize, secs: f64) -> io::Result<Run> {
    let start = Instant::now() + WARMUP;
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || -> io::Result<(u64, u64, u64)> {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.connect(target)?;
                socket.set_read_timeout(Some(Duration::from_millis(200)))?;
                let request = [0x5au8; PAYLOAD];
                let mut reply = [0u8; 2048];
                let (mut done, mut all, mut lost) = (0u64, 0u64, 0u64);
                loop {
                    let now = Instant::now();
                    if now >= end {
                        return Ok((done, all, lost));
                    }
                    socket.send(&request)?;
                    match socket.recv(&mut reply) {
                        Ok(_) => {
                            all += 1;
                            if now >= start {
                                done += 1;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            lost += 1
                        }
                        // ICMP from a proxy not up yet, say: try again until the deadline.
                        Err(_) => lost += 1,
                    }
                }
            })
        })
        .collect();
    let (mut done, mut all, mut lost) = (0, 0, 0);
    for h in handles {
        let (d, a, l) = h.join().map_err(|_| io::Error::other("client thread panicked"))??;
        done += d;
        all += a;
        lost += l;
    }
    Ok(Run { tps: done as f64 / secs, all, lost })
}

/// Waits until `target` echoes, up to a deadline.
fn wait_ready(target: SocketAddr) -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        let _ = socket.send(b"ready?");
        if socket.recv(&mut buf).is_ok() {
            return Ok(());
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("{target} never answered")))
}

/// socat forwarding 127.0.0.1:PORT to `backend`, a process group of its own so that its
/// per-datagram children go with it.
struct Socat {
    child: Child,
    addr: SocketAddr,
}

impl Socat {
    fn start(backend: SocketAddr) -> io::Result<Socat> {
        use std::os::unix::process::CommandExt;
        let port = peers::free_udp_port()?;
        let child = Command::new(SOCAT)
            .arg(format!("UDP4-RECVFROM:{port},bind=127.0.0.1,fork"))
            .arg(format!("UDP4:{backend}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let socat = Socat { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) };
        wait_ready(socat.addr)?;
        Ok(socat)
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        // The group is the one socat was started in: socat and its children, nothing else.
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn main() -> io::Result<()> {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let mut clients: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if clients.is_empty() {
        clients = vec![1, 8];
    }

    let echo = UdpEcho::start("127.0.0.1")?;
    // The proxy's runtime, as the cproxy binary builds it (`--threads` sets the workers).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("UDP_RR_THREADS").ok().and_then(|s| s.parse().ok()) {
        builder.worker_threads(n);
    }
    let rt = builder.enable_all().build()?;
    let proxy = Proxy::new(Config::default());
    let binding = Binding {
        proto: Proto::Udp,
        host: SocketAddr::from(([127, 0, 0, 1], 0)),
        backend: echo.addr(),
    };
    let info = {
        let _enter = rt.enter();
        proxy.add(binding).map_err(io::Error::other)?
    };
    wait_ready(info.local)?;
    if std::env::var("UDP_RR_ONLY_CPROXY").is_ok() {
        for &n in &clients {
            let cpu = proxy_cpu();
            let r = measure(info.local, n, secs)?;
            let cpu_us = (proxy_cpu() - cpu) * 1e6 / r.all.max(1) as f64;
            println!(
                "{n} clients: cproxy {:.0} tps, {cpu_us:.1} us proxy CPU per transaction",
                r.tps
            );
        }
        proxy.kill();
        rt.block_on(proxy.shutdown());
        return Ok(());
    }
    let socat = if std::path::Path::new(SOCAT).exists() {
        Some(Socat::start(echo.addr())?)
    } else {
        println!("(no {SOCAT}: skipping socat)");
        None
    };

    println!("UDP request/response, {PAYLOAD}-byte datagrams, {secs} s per run, 127.0.0.1");
    println!(
        "{:>7}  {:>12}  {:>12} {:>7}  {:>12} {:>7}  {:>10}",
        "clients", "direct tps", "cproxy tps", "/direct", "socat tps", "/direct", "cproxy/socat"
    );
    for &n in &clients {
        let direct = measure(echo.addr(), n, secs)?;
        let cpu = proxy_cpu();
        let through = measure(info.local, n, secs)?;
        let cpu_us = (proxy_cpu() - cpu) * 1e6 / through.all.max(1) as f64;
        let via_socat = match &socat {
            Some(s) => Some(measure(s.addr, n, secs)?),
            None => None,
        };
        let (socat_tps, socat_ratio, vs_socat) = match &via_socat {
            Some(s) => (
                format!("{:.0}", s.tps),
                format!("{:.2}", s.tps / direct.tps),
                format!("{:.1}x", through.tps / s.tps),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{n:>7}  {:>12.0}  {:>12.0} {:>7.2}  {:>12} {:>7}  {:>10}",
            direct.tps,
            through.tps,
            through.tps / direct.tps,
            socat_tps,
            socat_ratio,
            vs_socat
        );
        println!("         cproxy CPU per transaction: {cpu_us:.1} us");
        let lost = direct.lost + through.lost + via_socat.map_or(0, |s| s.lost);
        if lost > 0 {
            println!("         ({lost} replies lost or late, retried)");
        }
    }
    drop(socat);
    proxy.kill();
    rt.block_on(proxy.shutdown());
    Ok(())
}
