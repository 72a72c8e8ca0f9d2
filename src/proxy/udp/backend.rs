//! The backend side of a UDP binding: each session's socket, connected to the backend so that
//! the kernel delivers it the backend's replies and nothing else, and the epoll set through
//! which one task watches every session socket of the binding.
//!
//! The epoll set is itself registered with the runtime, so a binding with thousands of sessions
//! is one task and one wakeup source, and finding the sessions with replies waiting costs one
//! `epoll_wait` rather than a scan.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, MsgFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::table::Token;

/// A session's socket, connected to the backend.
pub(crate) struct SessionSocket(OwnedFd);

impl SessionSocket {
    /// Opens a socket connected to `backend` (a UDP connect: no packet is sent).
    pub(crate) fn connect(backend: SocketAddr) -> io::Result<SessionSocket> {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(backend),
            socket2::Type::DGRAM.nonblocking().cloexec(),
            Some(socket2::Protocol::UDP),
        )?;
        s.connect(&backend.into())?;
        Ok(SessionSocket(s.into()))
    }

    /// Sends one datagram to the backend without waiting.
    ///
    /// An ICMP error (port unreachable, say) that came back for an earlier datagram is reported
    /// by the next send on a connected socket, instead of sending it. Reporting it clears it, so
    /// one retry sends this datagram rather than losing it to a stale error.
    pub(crate) fn send(&self, data: &[u8]) -> io::Result<usize> {
        let fd = self.0.as_raw_fd();
        match socket::send(fd, data, MsgFlags::empty()) {
            Err(Errno::ECONNREFUSED) => Ok(socket::send(fd, data, MsgFlags::empty())?),
            r => Ok(r?),
        }
    }

    /// Receives one reply into `buf` without waiting. Returns the datagram's real length, which
    /// exceeds `buf.len()` if it was truncated. `WouldBlock` when none is waiting; an ICMP error
    /// for an earlier datagram (`ECONNREFUSED` from a backend that is down) is reported once.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(socket::recv(self.0.as_raw_fd(), buf, MsgFlags::MSG_TRUNC)?)
    }
}

impl AsFd for SessionSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// An epoll instance, as the runtime needs to see it.
struct EpollFd(Epoll);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.0.as_raw_fd()
    }
}

/// The session sockets of one binding, watched together.
pub(crate) struct Poller(AsyncFd<EpollFd>);

impl Poller {
    /// An empty set, registered with the runtime.
    pub(crate) fn new() -> io::Result<Poller> {
        let epoll = EpollFd(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        // SAFETY: registration is an epoll_ctl on the descriptor `EpollFd` owns; it stays open,
        // and `as_raw_fd` returns it, for as long as the `AsyncFd` holds the `EpollFd`.
        let registered = unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) };
        Ok(Poller(registered.map_err(io::Error::from)?))
    }

    /// Watches `socket` (level-triggered: a session with replies left waiting is reported
    /// again), reporting it as `token`.
    pub(crate) fn add(&self, socket: &SessionSocket, token: Token) -> io::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, token.to_u64());
        Ok(self.0.get_ref().0.add(socket, event)?)
    }

    /// Stops watching `socket`. Closing it would do too, unless the descriptor was duplicated
    /// (by a fork, for one), which would leave a stale registration behind.
    pub(crate) fn remove(&self, socket: &SessionSocket) {
        let _ = self.0.get_ref().0.delete(socket);
    }

    /// Waits until some session may have a reply (or an error) waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.0.readable().await.map(|_| ())
    }

    /// Fills `events` with the sessions that have something waiting, without waiting;
    /// `WouldBlock` if none has (and then [`readable`](Self::readable) waits for the next).
    pub(crate) fn try_ready(&self, events: &mut [EpollEvent]) -> io::Result<usize> {
        self.0.try_io(Interest::READABLE, |epoll| match epoll.0.wait(events, EpollTimeout::ZERO) {
            Ok(0) => Err(io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Blocks until `socket` has an error (or data) to report: POLLERR/POLLIN is the kernel's
    /// signal that the ICMP error arrived.
    fn wait_pending(socket: &SessionSocket) -> io::Result<()> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(5000u16))?;
        if n == 1 { Ok(()) } else { Err(io::ErrorKind::TimedOut.into()) }
    }

    /// A session to a port nobody listens on, whose first datagram's ICMP error is pending.
    fn session_with_a_pending_icmp_error() -> io::Result<(SessionSocket, std::net::SocketAddr)> {
        let gone = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = gone.local_addr()?;
        drop(gone);
        let session = SessionSocket::connect(port)?;
        session.send(b"lost")?;
        wait_pending(&session)?;
        Ok((session, port))
    }

    #[test]
    fn a_send_after_an_icmp_error_is_not_lost() -> io::Result<()> {
        // A port with nobody on it, then a backend that comes back on it.
        let (session, port) = session_with_a_pending_icmp_error()?;
        let backend = std::net::UdpSocket::bind(port)?;
        backend.set_read_timeout(Some(Duration::from_secs(5)))?;
        // The port-unreachable error is still pending: the first attempt reports it, the retry
        // delivers.
        assert_eq!(session.send(b"found")?, 5);
        let mut buf = [0u8; 16];
        let n = backend.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"found");
        Ok(())
    }

    #[test]
    fn an_icmp_error_is_reported_once_by_recv() -> io::Result<()> {
        let (session, _) = session_with_a_pending_icmp_error()?;
        let mut buf = [0u8; 16];
        let first = session.recv(&mut buf).map_err(|e| e.raw_os_error());
        assert_eq!(first, Err(Some(libc::ECONNREFUSED)));
        let second = session.recv(&mut buf).map_err(|e| e.kind());
        assert_eq!(second, Err(io::ErrorKind::WouldBlock));
        Ok(())
    }

    #[test]
    fn recv_reports_the_real_length_of_a_datagram_too_big_for_the_buffer() -> io::Result<()> {
        let backend = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let session = SessionSocket::connect(backend.local_addr()?)?;
        session.send(b"x")?;
        let mut buf = [0u8; 16];
        let (_, from) = backend.recv_from(&mut buf)?;
        backend.send_to(&[7u8; 100], from)?;
        wait_pending(&session)?;
        assert_eq!(session.recv(&mut buf)?, 100);
        Ok(())
    }
}
