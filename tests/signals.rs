//! Every signal that would end the process stops cproxy as SIGTERM does, in docker-proxy mode
//! and in `cproxy forward`: accepting ends, transfers still moving get the grace period, and
//! what is cut then (or by a second signal of any of them) is reset. The kernel's default
//! action would close the sockets in order instead, so that a cut download ends in a clean
//! end of stream that looks complete.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::process::ProxyProcess;
use common::{Sum, send_pattern};

/// What the backend sends: far more than the paced reader takes in the grace period.
const LEN: u64 = 256 << 20;
/// How fast the client reads: the transfer would take 8 s.
const PACE: u64 = 32 << 20;
/// Read before the signal, so that it comes in the middle of the transfer.
const BEFORE: usize = 4 << 20;

/// How cproxy is run.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// As dockerd runs it: docker-proxy's flags, the status pipe on fd 3.
    DockerProxy,
    /// `cproxy forward -p 127.0.0.1::PORT`.
    Forward,
}

impl Mode {
    /// cproxy forwarding a port on 127.0.0.1 to `backend`, ready, with `-grace grace`.
    fn start(self, backend: SocketAddr, grace: &str) -> (ProxyProcess, SocketAddr) {
        match self {
            Mode::DockerProxy => {
                let proxy = ProxyProcess::docker_proxy(backend, &["-grace", grace]);
                let front = SocketAddr::from(([127, 0, 0, 1], proxy.port));
                (proxy, front)
            }
            Mode::Forward => {
                let spec = format!("127.0.0.1::{}", backend.port());
                let args = ["--to", "127.0.0.1", "--grace", grace, "-p", &spec];
                let proxy = ProxyProcess::forward(&args, 1);
                let front = proxy.host(0);
                (proxy, front)
            }
        }
    }
}

/// A backend that sends [`LEN`] bytes of a pattern on the one connection it accepts; what it
/// sent, or the error that cut it.
fn download_backend(listener: TcpListener) -> thread::JoinHandle<std::io::Result<Sum>> {
    thread::spawn(move || {
        let (mut conn, _) = listener.accept()?;
        send_pattern(&mut conn, 7, LEN)
    })
}

/// Reads at [`PACE`] until the connection ends: how it ended (Ok: an orderly end of stream)
/// and what was read, counting `sum` as read before.
fn paced_read(conn: &mut TcpStream, mut sum: Sum) -> (std::io::Result<()>, Sum) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let start_len = sum.len;
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (Ok(()), sum),
            Ok(n) => sum.update(&buf[..n]),
            Err(e) => return (Err(e), sum),
        }
        let due = Duration::from_secs_f64((sum.len - start_len) as f64 / PACE as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            thread::sleep(wait);
        }
    }
}

/// A download in the middle of its transfer through a proxy in `mode` when `signals` are sent
/// to the proxy, one after the other: the client sees it whole or reset, never a clean end
/// short of its length, and the proxy exits 0 (as on SIGTERM) within `limit`.
fn a_download_cut_by(mode: Mode, signals: &[i32], grace: &str, limit: Duration) {
    let listener = common::listen("127.0.0.1");
    let backend = download_backend(listener.try_clone().unwrap());
    let (mut proxy, front) = mode.start(listener.local_addr().unwrap(), grace);
    let mut client = TcpStream::connect(front).expect("connect to the proxy");
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut first = vec![0u8; BEFORE];
    client.read_exact(&mut first).expect("the start of the download");
    let mut sum = Sum::default();
    sum.update(&first);
    let reader = thread::spawn(move || paced_read(&mut client, sum));

    let started = Instant::now();
    for &sig in signals {
        proxy.signal(sig);
    }
    let status = proxy.wait_exit(limit);
    let took = started.elapsed();
    let (end, got) = reader.join().unwrap();
    match end {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(()) if got.len == LEN => {
            let sent = backend.join().unwrap().expect("the backend sent it all");
            assert_eq!(got, sent, "a download that ends in order must be the one sent");
        }
        other => panic!(
            "{mode:?}, signals {signals:?}: the download ended with {other:?} after {} of {LEN} \
             bytes: a cut that looks complete",
            got.len
        ),
    }
    assert!(status.success(), "{mode:?}, signals {signals:?}: cproxy exited with {status}");
    eprintln!("{mode:?}, signals {signals:?}: got {} bytes, exited after {took:?}", got.len);
}

/// One signal: the download goes on for the grace period, then is reset.
fn one_signal(mode: Mode, sig: i32) {
    a_download_cut_by(mode, &[sig], "1s", Duration::from_secs(30));
}

#[test]
fn docker_proxy_mode_on_sighup_drains_then_resets() {
    one_signal(Mode::DockerProxy, libc::SIGHUP);
}

#[test]
fn docker_proxy_mode_on_sigquit_drains_then_resets() {
    one_signal(Mode::DockerProxy, libc::SIGQUIT);
}

#[test]
fn docker_proxy_mode_on_sigusr1_drains_then_resets() {
    one_signal(Mode::DockerProxy, libc::SIGUSR1);
}

#[test]
fn forward_on_sighup_drains_then_resets() {
    one_signal(Mode::Forward, libc::SIGHUP);
}

#[test]
fn forward_on_sigquit_drains_then_resets() {
    one_signal(Mode::Forward, libc::SIGQUIT);
}

#[test]
fn forward_on_sigusr1_drains_then_resets() {
    one_signal(Mode::Forward, libc::SIGUSR1);
}

/// A second signal, of another kind than the first, resets at once as a second SIGTERM does:
/// the grace period (60 s) is not waited for. Two kinds are two events, so the second cannot
/// be merged into the first however soon it follows.
fn a_second_signal_resets_at_once(mode: Mode) {
    a_download_cut_by(mode, &[libc::SIGHUP, libc::SIGUSR1], "60s", Duration::from_secs(10));
}

#[test]
fn docker_proxy_mode_resets_at_once_on_a_second_signal_of_another_kind() {
    a_second_signal_resets_at_once(Mode::DockerProxy);
}

#[test]
fn forward_resets_at_once_on_a_second_signal_of_another_kind() {
    a_second_signal_resets_at_once(Mode::Forward);
}

/// Every other catchable signal whose default action would end the process stops an idle
/// proxy as SIGTERM does: it exits 0.
fn every_terminating_signal_stops_it(mode: Mode) {
    // HUP, QUIT and USR1 have tests of their own, with a transfer under way.
    let tested_apart = [libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1];
    let signals: Vec<libc::c_int> =
        cproxy::signals::terminating().into_iter().filter(|s| !tested_apart.contains(s)).collect();
    // Never connected to: the proxies stay idle.
    let listener = common::listen("127.0.0.1");
    for sig in signals {
        let (mut proxy, _) = mode.start(listener.local_addr().unwrap(), "5s");
        proxy.signal(sig);
        let status = proxy.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "{mode:?}: on signal {sig} cproxy exited with {status}");
    }
}

#[test]
fn docker_proxy_mode_stops_on_every_terminating_signal() {
    every_terminating_signal_stops_it(Mode::DockerProxy);
}

#[test]
fn forward_stops_on_every_terminating_signal() {
    every_terminating_signal_stops_it(Mode::Forward);
}
