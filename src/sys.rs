//! The product's system calls, each behind a safe function: pipes and splice for the relay,
//! datagrams received several at a time, socket options the standard library and socket2 do not
//! cover, inherited descriptors, and the parent process. Callers never touch `libc` themselves;
//! where nix or socket2 wraps a call safely it is used, and the few calls neither wraps are here
//! with their `SAFETY` reasoning.
//!
//! Errors come back as [`io::Error`], so that `ErrorKind::WouldBlock` and raw OS codes read the
//! same whatever made the call.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, SpliceFFlags, fcntl};
use nix::sys::socket::{self, MsgFlags, sockopt};

/// A non-blocking, close-on-exec pipe of about `size` bytes: `(read end, write end, capacity)`.
/// If the kernel refuses the size (the user's pipe quota in
/// `/proc/sys/fs/pipe-user-pages-soft` is used up) the pipe keeps its default one.
pub fn pipe(size: usize) -> io::Result<(OwnedFd, OwnedFd, usize)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    // F_SETPIPE_SZ answers with the size granted; only a refusal needs asking.
    let capacity = match fcntl(&write, FcntlArg::F_SETPIPE_SZ(size)) {
        Ok(granted) => granted,
        Err(_) => fcntl(&write, FcntlArg::F_GETPIPE_SZ)?,
    };
    Ok((read, write, usize::try_from(capacity).unwrap_or(0)))
}

/// Moves up to `len` bytes from `from` to `to` inside the kernel, without blocking (one of the
/// two must be a pipe).
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    Ok(nix::fcntl::splice(from, None, to, None, len, flags)?)
}

/// Reads from a socket; `Ok(0)` is end of stream.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(socket::recv(sock.as_raw_fd(), buf, MsgFlags::empty())?)
}

/// Writes to a socket, with an error instead of SIGPIPE when the peer is gone.
pub fn send(sock: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(socket::send(sock.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)?)
}

/// Reads from a pipe or file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::unistd::read(fd, buf)?)
}

/// Makes reads and writes of a descriptor (of its open file, shared with its duplicates) return
/// `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Writes to a pipe or file.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, buf)?)
}

/// Half-closes a socket: its peer reads end of stream, reading goes on. A socket whose peer is
/// already fully gone (`ENOTCONN`) has nobody left to tell, which is not an error.
pub fn shutdown_write(sock: BorrowedFd<'_>) -> io::Result<()> {
    match socket::shutdown(sock.as_raw_fd(), socket::Shutdown::Write) {
        Err(nix::errno::Errno::ENOTCONN) => Ok(()),
        r => Ok(r?),
    }
}

/// Makes the socket close with a RST instead of a FIN (`SO_LINGER` 0), so that its peer learns
/// the stream was cut rather than complete.
pub fn reset_on_close(sock: BorrowedFd<'_>) -> io::Result<()> {
    socket2::SockRef::from(&sock).set_linger(Some(Duration::ZERO))
}

/// `ioctl` request: is the socket's read pointer at the urgent mark (`<linux/sockios.h>`;
/// libc does not export it).
const SIOCATMARK: libc::Ioctl = 0x8905;

/// True if the next byte to read from `sock` is TCP urgent data, where splice stops.
pub fn at_urgent_mark(sock: BorrowedFd<'_>) -> bool {
    let mut at: libc::c_int = 0;
    // SAFETY: SIOCATMARK writes one int through a pointer to a live local int.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCATMARK, &mut at) };
    rc == 0 && at != 0
}

/// True if `sock` is a listening socket (`SO_ACCEPTCONN`).
pub fn is_listening(sock: BorrowedFd<'_>) -> bool {
    socket::getsockopt(&sock, sockopt::AcceptConn).unwrap_or(false)
}

/// The supplementary groups of a unix socket's peer as of its connect (`SO_PEERGROUPS`); empty
/// if the kernel cannot say.
pub fn peer_groups(sock: BorrowedFd<'_>) -> Vec<u32> {
    let mut groups = vec![0u32; 64];
    for _ in 0..2 {
        let mut len = (groups.len() * size_of::<u32>()) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `groups`, which has that many.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / size_of::<u32>();
        if rc == 0 {
            groups.truncate(n);
            return groups;
        }
        // ERANGE: `len` now says how much room the list needs.
        if io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) || n <= groups.len() {
            break;
        }
        groups.resize(n, 0);
    }
    Vec::new()
}

/// The parent process's pid.
pub fn parent_pid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// A descriptor that becomes readable when process `pid` exits (`pidfd_open`).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative return is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What an inherited descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A pipe (or FIFO).
    Pipe,
    /// A socket.
    Socket,
    /// A namespace (`/proc/PID/ns/*`, which `fstat` shows as a regular file).
    Namespace,
}

/// Takes ownership of descriptor `fd`, inherited from the process that started this one, if it
/// is open and of `kind`, and marks it close-on-exec so that no child inherits it in turn.
///
/// Call it only for descriptors numbered by a contract with the parent (dockerd's fd 3 and 4)
/// and before anything in this process could have opened that number itself.
pub fn claim_inherited(fd: RawFd, kind: FdKind) -> Option<OwnedFd> {
    // SAFETY: borrowing only to ask fstat; a number that is not open makes fstat fail (EBADF)
    // and is never used again.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let st = nix::sys::stat::fstat(borrowed).ok()?;
    let want = match kind {
        FdKind::Pipe => libc::S_IFIFO,
        FdKind::Socket => libc::S_IFSOCK,
        FdKind::Namespace => libc::S_IFREG,
    };
    if st.st_mode & libc::S_IFMT != want {
        return None;
    }
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).ok()?;
    // SAFETY: the descriptor is open and was inherited, so nothing in this process owns it yet;
    // from here the returned OwnedFd is its only owner.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// True if `fd` was opened for writing (or reading and writing).
pub fn is_writable(fd: impl AsFd) -> bool {
    fcntl(fd.as_fd(), FcntlArg::F_GETFL)
        .map(|flags| OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE != OFlag::O_RDONLY)
        .unwrap_or(false)
}

/// Gives `sig` a handler that does nothing. A process that blocks the signal and takes it with
/// `sigwait` then sees it even as PID 1 of a PID namespace, which drops signals left at their
/// default disposition.
pub fn catch_with_noop(sig: nix::sys::signal::Signal) -> io::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    extern "C" fn noop(_: libc::c_int) {}
    let action = SigAction::new(SigHandler::Handler(noop), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handler does nothing, which is async-signal-safe, and replaces no handler
    // that Rust code relies on.
    unsafe { sigaction(sig, &action) }?;
    Ok(())
}

/// The number of threads of this process, if `/proc/self` answers (it does not in a process
/// that has entered a mount namespace whose `/proc` belongs to another PID namespace).
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok())
}

/// Forks this process, which must be single-threaded: with other threads the child could
/// inherit a lock held forever, so a process that `/proc` shows with more than one thread gets
/// an error instead of a child. Processes of the supervisor call it before starting any thread
/// (the container's shim and init, `cproxy __nsexec`).
pub fn fork_single_threaded() -> io::Result<nix::unistd::ForkResult> {
    if thread_count().is_some_and(|n| n > 1) {
        return Err(io::Error::other("fork: this process has more than one thread"));
    }
    // SAFETY: the process is single-threaded (checked above where /proc answers, and by the
    // callers' contract otherwise), so the child inherits no lock another thread holds.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Marks every descriptor from `low` up close-on-exec, so that a command about to be executed
/// gets only its stdio (runc's `CloseExecFrom(3)`): whatever the daemon inherited from what
/// started it (a journal's stream, a terminal, a harness's pipe) must not reach a container.
/// `close_range(2)` where the kernel has it (5.11), else each descriptor up to the process's
/// limit (at most 65,536 of them). Makes only system calls: safe in a forked child.
pub fn cloexec_from(low: u32) {
    // SAFETY: close_range takes two descriptor numbers and flags; it touches no memory.
    let rc =
        unsafe { libc::syscall(libc::SYS_close_range, low, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return;
    }
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes an rlimit through a pointer to a live local one.
    let high = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur.min(65_536) as i32,
        _ => 1024,
    };
    for fd in low as i32..high {
        // SAFETY: F_SETFD on a descriptor number; one that is not open fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Ends this process at once with `code`, without running destructors or `atexit` handlers:
/// what a forked child whose exec failed must do, so as not to flush or free its parent's state.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) only ends the process; it touches no memory of it.
    unsafe { libc::_exit(code) }
}

/// Makes the child that `cmd` spawns, between fork and exec, join each namespace in `join`
/// (`(descriptor, type)`: an empty type accepts any), then leave for new namespaces of the
/// kinds in `unshare` (none if empty), then, if `die_with_parent`, ask for SIGKILL when its
/// parent dies. A failure fails the spawn with its error.
///
/// The descriptors in `join` must stay open until `cmd` has been spawned: one closed by then
/// fails the spawn (`EBADF`).
pub fn enter_namespaces_on_spawn(
    cmd: &mut std::process::Command,
    join: Vec<(RawFd, nix::sched::CloneFlags)>,
    unshare: nix::sched::CloneFlags,
    die_with_parent: bool,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls (setns,
    // unshare, prctl) and allocates nothing: every value was prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, nstype) in &join {
                if libc::setns(*fd, nstype.bits()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if !unshare.is_empty() && libc::unshare(unshare.bits()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `open_tree(2)` relative to the working directory: a descriptor for the mount at `path`, or
/// with `OPEN_TREE_CLONE` in `flags` for a detached copy of it, to attach with [`move_mount`].
pub fn open_tree(path: &std::ffi::CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: open_tree(2) with a valid NUL-terminated path; the returned fd is owned here.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `move_mount(2)` of the mount `tree` (from [`open_tree`]; the caller puts
/// `MOVE_MOUNT_F_EMPTY_PATH` in `flags`) onto `target`, relative to the working directory.
pub fn move_mount(
    tree: BorrowedFd<'_>,
    target: &std::ffi::CStr,
    flags: libc::c_uint,
) -> io::Result<()> {
    let empty = c"";
    // SAFETY: move_mount(2) with an open mount fd and valid NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            flags,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Datagrams [`recv_batch`] takes with one call at most.
pub const RECV_BATCH: usize = 16;

/// Room for one datagram's ancillary data: its pktinfo, of either family (an IPv6 socket may
/// have both on).
const CONTROL: usize = 128;

/// A datagram's ancillary data, aligned as `cmsghdr` needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuf([u8; CONTROL]);

/// One datagram [`recv_batch`] received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Datagram {
    /// Its real length: more than its slot if it did not fit.
    pub len: usize,
    /// It did not fit its slot, which holds its beginning.
    pub truncated: bool,
    /// Who sent it, if the kernel said (an IP socket address).
    pub source: Option<SocketAddr>,
    /// The local address it was sent to, with the interface it came in on, on a socket that
    /// asked for pktinfo (`IP_PKTINFO`'s `ipi_spec_dst`, `IPV6_RECVPKTINFO`'s address).
    pub dest: Option<(IpAddr, u32)>,
}

/// Receives datagrams from `sock` without waiting, with one `recvmmsg`: up to
/// [`RECV_BATCH`], as many as `got` has room for and as many `slot`-byte slots as `slots`
/// holds, the `i`th into the `i`th slot. Fills `got[..n]` and returns `n`; `WouldBlock` when
/// none is waiting. Fewer than asked for means none was left.
pub fn recv_batch(
    sock: BorrowedFd<'_>,
    slots: &mut [u8],
    slot: usize,
    got: &mut [Datagram],
) -> io::Result<usize> {
    let slot = slot.max(1);
    let n = got.len().min(RECV_BATCH).min(slots.len() / slot);
    // SAFETY: all zeroes is a valid value of these C structs (null pointers, zero lengths).
    let (mut headers, mut names, mut iovs): (
        [libc::mmsghdr; RECV_BATCH],
        [libc::sockaddr_storage; RECV_BATCH],
        [libc::iovec; RECV_BATCH],
    ) = unsafe { std::mem::zeroed() };
    let mut control = [ControlBuf([0; CONTROL]); RECV_BATCH];
    let buffers =
        iovs.iter_mut().zip(&mut names).zip(&mut control).zip(slots.chunks_exact_mut(slot));
    for (header, (((iov, name), control), buf)) in headers.iter_mut().zip(buffers).take(n) {
        *iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let h = &mut header.msg_hdr;
        h.msg_name = (name as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = iov;
        h.msg_iovlen = 1;
        h.msg_control = control.0.as_mut_ptr().cast();
        h.msg_controllen = CONTROL as _;
    }
    let flags = libc::MSG_TRUNC | libc::MSG_DONTWAIT;
    // SAFETY: the first `n` headers point at buffers that live until the call returns: a name,
    // an iovec over one `slot`-byte chunk of `slots`, and a control buffer, each of the size
    // stated beside it, which bounds what the kernel writes; it reads only those `n` headers.
    let rc = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            headers.as_mut_ptr(),
            n as _,
            flags as _,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = usize::try_from(rc).unwrap_or(0).min(n);
    for ((datagram, header), name) in got.iter_mut().zip(&headers).zip(&names).take(received) {
        let h = &header.msg_hdr;
        let len = header.msg_len as usize;
        let source = socket_addr(name, h.msg_namelen);
        let truncated = h.msg_flags & libc::MSG_TRUNC != 0 || len > slot;
        *datagram = Datagram { len, truncated, source, dest: pktinfo(h) };
    }
    Ok(received)
}

/// The IP socket address the kernel wrote into `name` (`len` bytes of it), if it is one.
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(name.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is large and aligned enough for any socket address,
            // and its family says that it holds a `sockaddr_in`.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// The destination a received message's pktinfo says (the last one, if there are two).
fn pktinfo(h: &libc::msghdr) -> Option<(IpAddr, u32)> {
    let mut found = None;
    // SAFETY: `h` was filled by `recvmsg`: its control buffer is ours and `msg_controllen` says
    // how much of it the kernel wrote, which `CMSG_FIRSTHDR` and `CMSG_NXTHDR` stay within; a
    // header's data is read only when its `cmsg_len` covers the structure read, unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let (level, kind, len) = ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize);
            let data = libc::CMSG_DATA(c);
            let fits = |size: usize| len >= libc::CMSG_LEN(size as u32) as usize;
            if level == libc::IPPROTO_IP
                && kind == libc::IP_PKTINFO
                && fits(size_of::<libc::in_pktinfo>())
            {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(data.cast());
                let ip = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
                found = Some((IpAddr::V4(ip), info.ipi_ifindex as u32));
            } else if level == libc::IPPROTO_IPV6
                && kind == libc::IPV6_PKTINFO
                && fits(size_of::<libc::in6_pktinfo>())
            {
                let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                found =
                    Some((IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)), info.ipi6_ifindex));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    found
}

/// Gives free heap pages back to the kernel (glibc's `malloc_trim`): what starting took
/// (parsing, settings, the runtime's setup) and freed is not kept by an idle process.
pub fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_pipe_gets_the_asked_capacity_or_the_default_one() {
        let (_r, _w, capacity) = pipe(1 << 20).unwrap();
        assert!(capacity >= 4096);
    }

    #[test]
    fn splice_moves_socket_bytes_into_a_pipe_and_out_again() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        a.write_all(b"spliced").unwrap();
        let (r, w, _) = pipe(65536).unwrap();
        b.set_nonblocking(false).unwrap();
        assert_eq!(splice(b.as_fd(), w.as_fd(), 1024).unwrap(), 7);
        let mut buf = [0u8; 16];
        assert_eq!(read(r.as_fd(), &mut buf).unwrap(), 7);
        assert_eq!(&buf[..7], b"spliced");
    }

    #[test]
    fn empty_nonblocking_pipe_says_would_block() {
        let (r, w, _) = pipe(4096).unwrap();
        let (r2, _w2, _) = pipe(4096).unwrap();
        let e = splice(r2.as_fd(), w.as_fd(), 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(!is_listening(r.as_fd()));
    }

    #[test]
    fn datagrams_waiting_come_in_one_call_each_in_its_slot_with_its_sender() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let to = sock.local_addr().unwrap();
        let mut got = [Datagram::default(); RECV_BATCH];
        let mut slots = vec![0u8; RECV_BATCH * 8];
        let empty = recv_batch(sock.as_fd(), &mut slots, 8, &mut got).map_err(|e| e.kind());
        assert_eq!(empty, Err(io::ErrorKind::WouldBlock));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for d in [&b"one"[..], b"two", b"longer than eight"] {
            client.send_to(d, to).unwrap();
        }
        assert_eq!(recv_batch(sock.as_fd(), &mut slots, 8, &mut got).unwrap(), 3);
        let from = Some(client.local_addr().unwrap());
        assert_eq!(got[0], Datagram { len: 3, truncated: false, source: from, dest: None });
        assert_eq!(&slots[..3], b"one");
        assert_eq!(&slots[8..11], b"two");
        assert_eq!(got[2], Datagram { len: 17, truncated: true, source: from, dest: None });
        assert_eq!(&slots[16..24], b"longer t");
    }

    #[test]
    fn listening_sockets_are_told_apart() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(listener.as_fd()));
    }

    #[test]
    fn claim_refuses_a_descriptor_of_another_kind() {
        let (r, _w, _) = pipe(4096).unwrap();
        // A pipe is not a socket: nothing is claimed (and so nothing is closed twice).
        assert!(claim_inherited(r.as_raw_fd(), FdKind::Socket).is_none());
        assert!(is_writable(_w.as_fd()));
        assert!(!is_writable(r.as_fd()));
    }
}
