//! The backend side of a UDP binding: each session's socket, connected to the backend so that
//! the kernel delivers it the backend's replies and nothing else, and the epoll set through
//! which one task watches every session socket of the binding.
//!
//! The epoll set is itself registered with the runtime, so a binding with thousands of sessions
//! is one task and one wakeup source, and finding the sessions with replies waiting costs one
//! `epoll_wait` rather than a scan.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{self, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::table::Token;

/// Most bytes one UDP GSO send carries: what fits one IPv4 datagram's length field.
const GSO_BYTES: usize = 65507;
/// Most segments one UDP GSO send may be cut into (`UDP_MAX_SEGMENTS` of older kernels).
const GSO_SEGMENTS: usize = 64;

/// How large datagrams a binding's sessions may send as segments of one buffer (UDP GSO): the
/// kernel refuses a size above its route's MTU, and any size where the device cannot checksum
/// or the kernel has no GSO; each refusal lowers it for good.
#[derive(Debug)]
pub(crate) struct Segmenting {
    pub(crate) max: usize,
}

impl Default for Segmenting {
    fn default() -> Segmenting {
        Segmenting { max: usize::MAX }
    }
}

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
        SessionSocket::connect_from(s, backend)
    }

    /// Connects `socket` (bound already, to a client's address in transparent mode) to
    /// `backend`.
    pub(crate) fn connect_from(
        socket: socket2::Socket,
        backend: SocketAddr,
    ) -> io::Result<SessionSocket> {
        socket.connect(&backend.into())?;
        Ok(SessionSocket(socket.into()))
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

    /// Sends `datagrams` to the backend without waiting; how many went. Where the kernel can
    /// segment them (UDP GSO: all of one size but the last, which may be shorter, and
    /// `segmenting` has not seen it refuse that size) they go as one buffer per 64 KiB, which
    /// crosses the network stack once and is cut into datagrams at the far end; else with one
    /// `sendmmsg`.
    pub(crate) fn send_many(
        &self,
        datagrams: &[&[u8]],
        segmenting: &mut Segmenting,
    ) -> io::Result<usize> {
        let size = datagrams.first().map_or(0, |d| d.len());
        // An empty last datagram would vanish: a buffer of whole segments has no room for it.
        let alike = match datagrams.split_last() {
            Some((last, rest)) => {
                rest.iter().all(|d| d.len() == size) && (1..=size).contains(&last.len())
            }
            None => false,
        };
        // Datagrams too large for two to share a buffer gain nothing from it.
        let per_send = GSO_BYTES.checked_div(size).unwrap_or(0).min(GSO_SEGMENTS);
        if !alike || per_send < 2 || size > segmenting.max {
            return self.send_batch(datagrams);
        }
        let mut sent = 0;
        for chunk in datagrams.chunks(per_send) {
            match self.send_segments(chunk, size) {
                Ok(()) => sent += chunk.len(),
                // The route's MTU is smaller than `size` (EINVAL, EMSGSIZE), or its device
                // cannot checksum (EIO), or the kernel has no UDP GSO: not again for this size.
                Err(Errno::EINVAL | Errno::EMSGSIZE) => {
                    segmenting.max = size - 1;
                    return Ok(sent + self.send_batch(&datagrams[sent..])?);
                }
                Err(Errno::EIO | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP) => {
                    segmenting.max = 0;
                    return Ok(sent + self.send_batch(&datagrams[sent..])?);
                }
                Err(e) if sent == 0 => return Err(e.into()),
                Err(_) => return Ok(sent),
            }
        }
        Ok(sent)
    }

    /// Sends `datagrams`, all `size` bytes long but the last, as one buffer the kernel cuts
    /// into datagrams of `size` (`UDP_SEGMENT`); a stale ICMP error is cleared by one retry.
    fn send_segments(&self, datagrams: &[&[u8]], size: usize) -> nix::Result<()> {
        let fd = self.0.as_raw_fd();
        let iovs: Vec<IoSlice<'_>> = datagrams.iter().map(|d| IoSlice::new(d)).collect();
        let segment = u16::try_from(size).map_err(|_| Errno::EMSGSIZE)?;
        let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
        let send =
            || socket::sendmsg::<SockaddrStorage>(fd, &iovs, &cmsgs, MsgFlags::empty(), None);
        match send() {
            Err(Errno::ECONNREFUSED) => send().map(|_| ()),
            r => r.map(|_| ()),
        }
    }

    /// Sends `datagrams` to the backend with one system call, without waiting; how many went.
    /// As [`send`](Self::send), a stale ICMP error that stops the first is cleared by one retry.
    fn send_batch(&self, datagrams: &[&[u8]]) -> io::Result<usize> {
        let fd = self.0.as_raw_fd();
        let iovs: Vec<[IoSlice<'_>; 1]> = datagrams.iter().map(|d| [IoSlice::new(d)]).collect();
        let to: Vec<Option<SockaddrStorage>> = vec![None; iovs.len()];
        let send = || -> nix::Result<usize> {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(iovs.len(), None);
            let sent = socket::sendmmsg(fd, &mut headers, &iovs, &to, [], MsgFlags::empty())?;
            Ok(sent.count())
        };
        match send() {
            Err(Errno::ECONNREFUSED) => Ok(send()?),
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

    #[test]
    fn an_empty_datagram_after_a_run_of_one_size_is_not_lost() -> io::Result<()> {
        // As a tail of segments it would add no byte to the buffer, and no datagram would
        // come of it.
        let mut datagrams = numbered(4, 500);
        datagrams.push(Vec::new());
        let (sent, got, _) = send_many_and_receive(&datagrams)?;
        assert_eq!(sent, 5);
        assert_eq!(shape(&got), shape(&datagrams));
        Ok(())
    }

    #[test]
    fn a_refused_segmented_send_goes_again_datagram_by_datagram() -> io::Result<()> {
        // SO_NO_CHECK (no UDP checksum) is a setting the kernel cannot segment with: it
        // refuses UDP_SEGMENT with EINVAL, as it does a size above the route's MTU.
        let backend = std::net::UdpSocket::bind("127.0.0.1:0")?;
        backend.set_read_timeout(Some(Duration::from_secs(5)))?;
        let session = SessionSocket::connect(backend.local_addr()?)?;
        socket::setsockopt(&session.0, NoCheck, &true)?;
        let datagrams = numbered(16, 1472);
        let slices: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        let mut segmenting = Segmenting::default();
        assert_eq!(session.send_many(&slices, &mut segmenting)?, 16, "datagrams dropped");
        assert!(segmenting.max < 1472, "the refused size is still tried: {segmenting:?}");
        let mut buf = vec![0u8; 65536];
        let got: Vec<Vec<u8>> = (0..16)
            .map(|_| backend.recv(&mut buf).map(|n| buf[..n].to_vec()))
            .collect::<io::Result<_>>()?;
        assert_eq!(shape(&got), shape(&datagrams));
        // The next run of that size goes datagram by datagram at once.
        assert_eq!(session.send_many(&slices, &mut segmenting)?, 16);
        Ok(())
    }

    /// `SO_NO_CHECK`, which nix does not name.
    #[derive(Clone, Copy)]
    struct NoCheck;

    impl socket::SetSockOpt for NoCheck {
        type Val = bool;

        fn set<F: AsFd>(&self, fd: &F, val: &bool) -> nix::Result<()> {
            let on = libc::c_int::from(*val);
            // SAFETY: an int option, passed by pointer with its size, on a descriptor we own.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_fd().as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_NO_CHECK,
                    (&raw const on).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            Errno::result(rc).map(drop)
        }
    }

    /// `datagrams` sent with [`SessionSocket::send_many`] to a fresh backend on loopback: how
    /// many it said went, what the backend received (datagram by datagram), and what
    /// `Segmenting` is left with.
    fn send_many_and_receive(datagrams: &[Vec<u8>]) -> io::Result<(usize, Vec<Vec<u8>>, usize)> {
        let backend = std::net::UdpSocket::bind("127.0.0.1:0")?;
        backend.set_read_timeout(Some(Duration::from_secs(5)))?;
        let session = SessionSocket::connect(backend.local_addr()?)?;
        let mut segmenting = Segmenting::default();
        let slices: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
        let sent = session.send_many(&slices, &mut segmenting)?;
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        for _ in 0..sent {
            let n = backend.recv(&mut buf)?;
            got.push(buf[..n].to_vec());
        }
        Ok((sent, got, segmenting.max))
    }

    /// Each datagram's length and first and last bytes: what an assertion shows of them.
    fn shape(datagrams: &[Vec<u8>]) -> Vec<(usize, Option<u8>, Option<u8>)> {
        datagrams.iter().map(|d| (d.len(), d.first().copied(), d.last().copied())).collect()
    }

    /// `n` datagrams of `len` bytes, each filled with its own number.
    fn numbered(n: usize, len: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8; len]).collect()
    }

    #[test]
    fn datagrams_of_one_size_go_as_segments_and_arrive_as_they_were_sent() -> io::Result<()> {
        let mut datagrams = numbered(16, 1472);
        datagrams.push(vec![99; 100]);
        let (sent, got, max) = send_many_and_receive(&datagrams)?;
        assert_eq!(sent, 17);
        assert_eq!(shape(&got), shape(&datagrams), "datagrams split, merged, lost or reordered");
        assert!(got == datagrams, "datagrams altered");
        assert_eq!(max, usize::MAX, "loopback refused UDP GSO");
        Ok(())
    }

    #[test]
    fn segments_beyond_one_send_go_in_several() -> io::Result<()> {
        // 20,000 bytes each: three fit one IPv4 datagram's length, the fourth needs another send.
        let datagrams = numbered(4, 20_000);
        let (sent, got, _) = send_many_and_receive(&datagrams)?;
        assert_eq!(sent, 4);
        assert_eq!(shape(&got), shape(&datagrams));
        Ok(())
    }

    #[test]
    fn datagrams_of_different_sizes_go_one_by_one_in_one_call() -> io::Result<()> {
        let datagrams = vec![vec![1; 100], vec![2; 2000], vec![3; 50], vec![4; 2000]];
        let (sent, got, max) = send_many_and_receive(&datagrams)?;
        assert_eq!(sent, 4);
        assert_eq!(shape(&got), shape(&datagrams));
        assert_eq!(max, usize::MAX, "nothing was refused");
        let large = numbered(3, 40_000);
        let got = send_many_and_receive(&large)?.1;
        assert_eq!(shape(&got), shape(&large), "too large to share a buffer");
        Ok(())
    }
}
