//! How a TCP connection ends other than by its peers: closed when it is no longer wanted (the
//! idle timeout, or its binding stopping while it has nothing in flight), given up while still
//! dialing a backend that does not answer at stop, or cut with a reset.
//!
//! Stopping must not make the runtime wait (dockerd stops its proxies one port at a time and
//! waits for each): a connection with nothing in flight is closed at once, with a FIN, as a
//! server closes an idle keep-alive connection and as docker-proxy closes it; nothing was lost.
//! One still moving bytes is waited for, up to the grace period. What is cut then, by a second
//! signal or by a removal's end of grace, is reset, so that neither peer takes a cut transfer
//! for a complete one.

use std::io;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::reset;
use crate::proxy::BindingCtx;
use crate::proxy::relay::{self, Traffic};
use crate::proxy::sock::Sock;

/// How long a connection must have moved no byte, with nothing held in its buffers, to be
/// closed at once when its binding stops: long enough not to cut an exchange between two of its
/// segments, short enough that stopping a proxy with idle keep-alive clients takes no time.
const STOP_QUIET: Duration = Duration::from_millis(200);

/// Relays until both directions end, or until the connection is no longer wanted: it moved no
/// byte for the idle timeout, or its binding is stopping and it has nothing in flight (no byte
/// moved for [`STOP_QUIET`] and nothing buffered). Either way it is closed as an idle server
/// closes a keep-alive connection, with a FIN: nothing was lost. Connections still moving bytes
/// at stop go on until they go quiet, or until the grace period ends and they are reset.
pub(super) async fn relay_while_wanted(
    client: &Sock,
    backend: &Sock,
    stages: relay::Stages,
    ctx: &BindingCtx,
    traffic: &Traffic,
) -> Result<(), relay::RelayError> {
    let relay = relay::relay(client, backend, stages, &ctx.pipes, traffic);
    tokio::pin!(relay);
    let idle_timeout = ctx.config.tcp_idle_timeout;
    // The connection's own token, as for `kill`: no lock shared with other connections.
    let stop = ctx.stop.child_token();
    let mut stopping = stop.is_cancelled();
    loop {
        let check = next_check(traffic, stopping, idle_timeout);
        tokio::select! {
            r = &mut relay => return r,
            _ = stop.cancelled(), if !stopping => stopping = true,
            _ = tokio::time::sleep_until(check.unwrap_or_else(far_future)), if check.is_some() => {
                let quiet = traffic.quiet_for();
                if stopping && quiet >= STOP_QUIET && traffic.buffered() == 0 {
                    tracing::debug!("stopping: closing a connection with nothing in flight");
                    return Ok(());
                }
                if idle_timeout.is_some_and(|idle| quiet >= idle) {
                    tracing::debug!("idle timeout");
                    return Ok(());
                }
            }
        }
    }
}

/// When [`relay_while_wanted`] should look at the connection's traffic next, if at all.
fn next_check(
    traffic: &Traffic,
    stopping: bool,
    idle_timeout: Option<Duration>,
) -> Option<tokio::time::Instant> {
    let now = tokio::time::Instant::now();
    let quiet = traffic.quiet_for();
    let at_stop = stopping.then(|| match STOP_QUIET.checked_sub(quiet) {
        Some(left) if !left.is_zero() => now + left,
        // Quiet long enough: close now if nothing is buffered, else look again later (a
        // reader that stalls with bytes still owed to it is waited for, up to the grace).
        _ if traffic.buffered() == 0 => now,
        _ => now + STOP_QUIET,
    });
    let at_idle = idle_timeout.map(|idle| now + idle.saturating_sub(quiet));
    match (at_stop, at_idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

/// Resets its socket when it is closed because the binding's connections were cut (the grace
/// period ended, a second stop signal, a removal): a transfer that was cut must not end with
/// an orderly end of stream, which would look complete. Declared after the socket, so that it
/// is dropped, and acts, first.
pub(super) struct ResetIfCut<'a> {
    pub(super) sock: &'a Sock,
    pub(super) kill: &'a CancellationToken,
}

impl Drop for ResetIfCut<'_> {
    fn drop(&mut self) {
        if self.kill.is_cancelled() {
            reset(self.sock);
        }
    }
}

/// Dials, but gives up [`STOP_QUIET`] after the binding stops: a client whose backend does not
/// answer by then (gone, as with a container disconnected from its network) has had nothing
/// in flight, and must not hold up the stop for the grace period.
pub(super) async fn unless_stopped(
    dialing: impl Future<Output = io::Result<Sock>>,
    stop: &CancellationToken,
) -> io::Result<Sock> {
    tokio::pin!(dialing);
    tokio::select! {
        r = &mut dialing => return r,
        _ = stop.cancelled() => {}
    }
    match tokio::time::timeout(STOP_QUIET, dialing).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the binding stopped while dialing")),
    }
}
