//! What every load shares: its time window, its error, and the Ctrl-C flag that cuts it short.
//!
//! Each load runs for `warmup` (not counted: connections ramp up, caches warm), then for
//! `duration` (counted), then stops by itself. Every blocking call a load makes has a timeout,
//! so a peer that wedges costs seconds, never a hang.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest any connect, read or write of a load may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Set by SIGINT/SIGTERM: loads end their window early and peers are stopped as usual.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long a load runs.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Run, not counted, before counting starts.
    pub warmup: Duration,
    /// Counted.
    pub duration: Duration,
}

impl Window {
    /// When counting starts and when the load ends, for a load that starts now.
    pub fn starting_now(&self) -> (Instant, Instant) {
        let start = Instant::now() + self.warmup;
        (start, start + self.duration)
    }
}

/// A load that could not be measured, in a sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl LoadError {
    /// An error about `what` at `target`, with the system's words for why.
    pub fn io(what: &str, target: SocketAddr, e: &std::io::Error) -> LoadError {
        LoadError(format!("{what} {target}: {e}"))
    }
}

/// Only loopback is ever a target (the tool's network rule): anything else is refused before
/// a packet is sent.
pub fn check_loopback(target: SocketAddr) -> Result<(), LoadError> {
    if target.ip().is_loopback() {
        Ok(())
    } else {
        Err(LoadError(format!("refusing to send load to {target}: only loopback is allowed")))
    }
}

/// Connects to a loopback `target` with the load timeouts set.
pub fn connect(target: SocketAddr) -> Result<TcpStream, LoadError> {
    check_loopback(target)?;
    let c = TcpStream::connect_timeout(&target, IO_TIMEOUT)
        .map_err(|e| LoadError::io("cannot connect to", target, &e))?;
    let set = |r: std::io::Result<()>| r.map_err(|e| LoadError::io("cannot set up", target, &e));
    set(c.set_read_timeout(Some(IO_TIMEOUT)))?;
    set(c.set_write_timeout(Some(IO_TIMEOUT)))?;
    set(c.set_nodelay(true))?;
    Ok(c)
}

/// True once SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps until `deadline` or an interrupt, whichever is first.
pub fn sleep_until(deadline: Instant) {
    while !interrupted() {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Makes SIGINT and SIGTERM end loads early instead of killing the process, so that peers
/// are stopped and temporary files removed on the way out.
pub fn catch_interrupts() {
    extern "C" fn on_signal(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::Relaxed);
    }
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { signal(sig, SigHandler::Handler(on_signal)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_off_loopback_are_refused() {
        assert!(check_loopback("127.0.0.1:80".parse().unwrap()).is_ok());
        assert!(check_loopback("127.9.9.9:80".parse().unwrap()).is_ok());
        assert!(check_loopback("[::1]:80".parse().unwrap()).is_ok());
        assert!(check_loopback("10.0.0.1:80".parse().unwrap()).is_err());
        assert!(check_loopback("0.0.0.0:80".parse().unwrap()).is_err());
    }
}
