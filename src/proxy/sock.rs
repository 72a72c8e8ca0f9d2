//! A connected TCP socket of a relayed connection, watched by the runtime for reading, writing
//! and urgent data.
//!
//! tokio's `TcpStream` is registered for reading and writing only, so the relay could not know
//! whether urgent data (`MSG_OOB`, telnet's and FTP's interrupts) was waiting, and asked the
//! kernel (`ioctl(SIOCATMARK)`) every time a read found nothing, about four times per
//! connection. Registered here for `EPOLLPRI` too, the kernel's own readiness says when urgent
//! data has arrived, and the question is asked only then.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::sys;

/// A connected, non-blocking TCP socket registered with the runtime of the thread that made it.
#[derive(Debug)]
pub(crate) struct Sock(AsyncFd<std::net::TcpStream>);

impl Sock {
    /// Registers a connected (or connecting), non-blocking socket with the current runtime.
    pub(crate) fn new(stream: std::net::TcpStream) -> io::Result<Sock> {
        let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
        // SAFETY: the `AsyncFd` owns the stream, whose descriptor stays open, and is the one
        // `as_raw_fd` returns, for as long as it is registered.
        let watched = unsafe { AsyncFd::register_with_interest(stream, interest) };
        watched.map(Sock).map_err(io::Error::from)
    }

    /// Connects `sock` (non-blocking, not yet connected) to `addr`, as tokio's `connect` does:
    /// the socket is writable once the handshake is over, and its pending error says how.
    pub(crate) async fn connect(sock: socket2::Socket, addr: SocketAddr) -> io::Result<Sock> {
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let sock = Sock::new(sock.into())?;
        sock.writable().await?;
        match sock.take_error()? {
            Some(e) => Err(e),
            None => Ok(sock),
        }
    }

    /// Runs `f` if the runtime last saw the socket ready for `interest`; a `WouldBlock` from
    /// it forgets that readiness (see `AsyncFd::try_io`).
    pub(crate) fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        self.0.try_io(interest, |_| f())
    }

    /// Waits until the socket may be readable (or has ended, or failed).
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.0.readable().await.map(drop)
    }

    /// Waits until the socket may be writable (or has failed).
    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.0.writable().await.map(drop)
    }

    /// Waits until the runtime sees `interest`.
    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<()> {
        self.0.ready(interest).await.map(drop)
    }

    /// The socket's pending error, taken (`SO_ERROR`).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get_ref().take_error()
    }

    /// The address the socket is bound to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// Whether the next byte to read is at the urgent mark, where splice stops. `ended`: a read
    /// has just returned end of stream (which it also does at the mark, once the peer has sent
    /// its FIN). The kernel is asked only when urgent data may be there: the runtime saw
    /// `EPOLLPRI`, or, for an end of stream, it has not yet seen the FIN (which comes after the
    /// urgent byte, so its event carries `EPOLLPRI` too if that byte is still unread).
    pub(crate) fn at_urgent_mark(&self, ended: bool) -> bool {
        let (urgent, closed) = self.seen();
        if !urgent && (!ended || closed) {
            return false;
        }
        let at = sys::at_urgent_mark(self.as_fd());
        if urgent && !at {
            // Read past (or never there): until the kernel says `EPOLLPRI` again. A newer
            // event than the one looked at is kept (tokio compares its tick).
            let _ = self
                .0
                .try_io(Interest::PRIORITY, |_| Err::<(), _>(io::ErrorKind::WouldBlock.into()));
        }
        at
    }

    /// Whether the runtime has seen urgent data (`EPOLLPRI`), and the end of the stream
    /// (`EPOLLRDHUP`), looked at without waiting.
    fn seen(&self) -> (bool, bool) {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(self.0.ready(Interest::PRIORITY)).poll(&mut cx) {
            Poll::Ready(Ok(guard)) => (guard.ready().is_priority(), guard.ready().is_read_closed()),
            // The runtime is shutting down: ask the kernel.
            Poll::Ready(Err(_)) => (true, false),
            Poll::Pending => (false, false),
        }
    }
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
