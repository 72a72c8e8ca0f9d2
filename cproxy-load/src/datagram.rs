//! UDP request/response: clients that each send a 64-byte datagram (which starts with the
//! backend's [`ECHO`] byte) and wait for it to come back (or time out, which counts as lost) before sending the next; transactions per second
//! and loss.
//!
//! A forwarder that accepts datagrams but returns none is measured, not failed: the figure is
//! "no replies", found within a few timeouts rather than after the whole window.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::ECHO;
use crate::latency::MESSAGE;
use crate::load::{self, LoadError, Window};

/// A request not answered within this long is lost.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(250);

/// A client whose first this many requests all go unanswered stops: nothing is coming back.
const GIVE_UP_AFTER: u64 = 4;

/// Most requests one client sends in one run, whatever its duration.
const MAX_REQUESTS: u64 = 5_000_000;

/// One UDP run.
#[derive(Clone, Copy, Debug)]
pub struct Datagrams {
    /// Answered requests per second in the counted window; 0 with no replies.
    pub per_second: f64,
    /// Requests sent (in the counted window, or in all if no reply ever came).
    pub sent: u64,
    /// Requests answered in the counted window.
    pub answered: u64,
    /// Fraction of the requests sent that were not answered in time.
    pub loss: f64,
}

impl Datagrams {
    /// True if not a single reply came back.
    pub fn no_replies(&self) -> bool {
        self.answered == 0
    }
}

/// Counters shared by the clients.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    sent_ever: AtomicU64,
    answered_ever: AtomicU64,
    refused: AtomicBool,
}

/// Runs `clients` clients, each on its own socket, against `target` for `window`.
pub fn run(target: SocketAddr, clients: usize, window: Window) -> Result<Datagrams, LoadError> {
    load::check_loopback(target)?;
    let (start, end) = window.starting_now();
    let tally = Tally::default();
    let errors: Vec<Result<(), LoadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients.max(1) as u64)
            .map(|id| {
                let tally = &tally;
                s.spawn(move || client(id, target, start, end, tally))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(LoadError("a UDP client panicked".into()))))
            .collect()
    });
    errors.into_iter().collect::<Result<(), LoadError>>()?;
    let answered_ever = tally.answered_ever.load(Ordering::Relaxed);
    if answered_ever == 0 {
        if tally.refused.load(Ordering::Relaxed) {
            return Err(LoadError(format!("nothing listens on udp {target} (connection refused)")));
        }
        let sent = tally.sent_ever.load(Ordering::Relaxed);
        return Ok(Datagrams { per_second: 0.0, sent, answered: 0, loss: 1.0 });
    }
    let sent = tally.sent.load(Ordering::Relaxed);
    let answered = tally.answered.load(Ordering::Relaxed);
    let seconds = (Instant::now().min(end) - start).as_secs_f64();
    if sent == 0 || seconds <= 0.0 {
        return Err(LoadError(format!("the UDP run through {target} was cut short")));
    }
    Ok(Datagrams {
        per_second: answered as f64 / seconds,
        sent,
        answered,
        loss: 1.0 - answered as f64 / sent as f64,
    })
}

/// One client: request, wait for its answer or time out, repeat.
fn client(
    id: u64,
    target: SocketAddr,
    start: Instant,
    end: Instant,
    tally: &Tally,
) -> Result<(), LoadError> {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .map_err(|e| LoadError::io("cannot bind a client for", target, &e))?;
    sock.connect(target).map_err(|e| LoadError::io("cannot connect to", target, &e))?;
    let mut out = [0u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    // The first byte asks the backend for an echo, the rest tells the requests apart.
    out[0] = ECHO;
    out[9..17].copy_from_slice(&id.to_le_bytes());
    let (mut lost_ever, mut answered_ever) = (0u64, 0u64);
    for seq in 0..MAX_REQUESTS {
        if Instant::now() >= end || load::interrupted() {
            break;
        }
        if answered_ever == 0 && lost_ever >= GIVE_UP_AFTER {
            break;
        }
        out[1..9].copy_from_slice(&seq.to_le_bytes());
        let counted = Instant::now() >= start;
        let answered = match sock.send(&out) {
            Ok(_) => wait_reply(&sock, &out, &mut back, tally)?,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tally.refused.store(true, Ordering::Relaxed);
                false
            }
            Err(e) => return Err(LoadError::io("cannot send to", target, &e)),
        };
        tally.sent_ever.fetch_add(1, Ordering::Relaxed);
        if answered {
            answered_ever += 1;
            tally.answered_ever.fetch_add(1, Ordering::Relaxed);
        } else {
            lost_ever += 1;
        }
        if counted {
            tally.sent.fetch_add(1, Ordering::Relaxed);
            tally.answered.fetch_add(u64::from(answered), Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Waits up to [`REPLY_TIMEOUT`] for the answer to `out`; late answers to earlier requests are
/// skipped. True if it came.
fn wait_reply(
    sock: &UdpSocket,
    out: &[u8; MESSAGE],
    back: &mut [u8; MESSAGE],
    tally: &Tally,
) -> Result<bool, LoadError> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| LoadError(format!("cannot set a UDP timeout: {e}")))?;
        match sock.recv(back) {
            Ok(n) if n == MESSAGE && back[..] == out[..] => return Ok(true),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tally.refused.store(true, Ordering::Relaxed);
                return Ok(false);
            }
            Err(e) => return Err(LoadError(format!("cannot receive UDP replies: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backends;

    const SHORT: Window =
        Window { warmup: Duration::from_millis(20), duration: Duration::from_millis(200) };

    #[test]
    fn direct_requests_are_answered_without_loss() {
        let b = Backends::start(1).unwrap();
        let r = run(b.udp, 2, SHORT).unwrap();
        assert!(r.answered > 0 && r.per_second > 0.0 && !r.no_replies());
        assert_eq!(r.loss, 0.0);
    }

    #[test]
    fn a_socket_that_never_answers_reads_as_no_replies_quickly() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let long = Window { warmup: Duration::ZERO, duration: Duration::from_secs(30) };
        let started = Instant::now();
        let r = run(silent.local_addr().unwrap(), 2, long).unwrap();
        assert!(r.no_replies() && r.loss == 1.0 && r.per_second == 0.0);
        assert!(started.elapsed() < REPLY_TIMEOUT * (GIVE_UP_AFTER as u32 + 2));
    }

    #[test]
    fn a_port_nobody_listens_on_is_an_error() {
        let free = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = run(free, 1, SHORT).unwrap_err();
        assert!(e.0.contains("connection refused"), "{e}");
    }
}
