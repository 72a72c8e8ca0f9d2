//! Terminals for `-t` and the descriptors that travel with them.
//!
//! As runc does for a container with `terminal: true`, the pseudo-terminal is made inside the
//! container (after its `/dev/pts` is mounted, so the command's terminal is `/dev/pts/0` of
//! the container's own devpts), the slave becomes the command's controlling terminal and its
//! stdin, stdout and stderr, and the master is sent to the daemon over a unix socket
//! (`SCM_RIGHTS`), which then reads the command's output from it, writes attached clients'
//! input to it and sets its size (`resize`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Opens a pseudo-terminal in this mount namespace's `/dev/ptmx`: `(master, slave)`, both
/// close-on-exec.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let name = nix::pty::ptsname_r(&master)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok((OwnedFd::from(master), slave))
}

/// In a forked child before exec: a new session whose controlling terminal is `slave`, which
/// becomes stdin, stdout and stderr. Only async-signal-safe calls; on failure the child
/// should `_exit`.
pub fn make_controlling(slave: RawFd) -> io::Result<()> {
    // SAFETY: plain system calls on descriptors this process owns; no memory is touched but
    // the errno.
    unsafe {
        if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        for target in 0..3 {
            if libc::dup2(slave, target) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
    Ok(())
}

/// Sets the terminal's size (`docker run -t`'s window, `resize`).
pub fn resize(master: &impl AsFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `winsize` the pointer refers to for the call's duration.
    if unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal's size, rows and columns (`TIOCGWINSZ`).
pub fn size(terminal: &impl AsFd) -> io::Result<(u16, u16)> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a `winsize` through a pointer to a live local one.
    if unsafe { libc::ioctl(terminal.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((size.ws_row, size.ws_col))
}

/// Sends `data` with `fd` attached over the unix socket `sock`.
pub fn send_fd(sock: &impl AsFd, data: &[u8], fd: &impl AsFd) -> io::Result<()> {
    let fds = [fd.as_fd().as_raw_fd()];
    let iov = [io::IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(sock.as_fd().as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Reads from the unix socket `sock` up to and including a newline (or to its end), with
/// every descriptor sent along: `(text without the newline, descriptors)`. Bytes after the
/// newline in the same read are dropped: the sender says nothing more.
pub fn recv_line(sock: &impl AsFd) -> io::Result<(String, Vec<OwnedFd>)> {
    let mut text = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 256];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let (n, got) = {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(
                sock.as_fd().as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut got = Vec::new();
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(list) = c {
                    got.extend(list);
                }
            }
            (msg.bytes, got)
        };
        // SAFETY: SCM_RIGHTS gave this process these new descriptors, owned by nobody else.
        fds.extend(got.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        text.extend_from_slice(&buf[..n]);
        if n == 0 || text.contains(&b'\n') {
            break;
        }
    }
    let end = text.iter().position(|b| *b == b'\n').unwrap_or(text.len());
    Ok((String::from_utf8_lossy(&text[..end]).into_owned(), fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_travels_with_its_line() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send_fd(&a, b"t", &w).unwrap();
        drop(w);
        (&a).write_all(b"42\n").unwrap();
        let (line, fds) = recv_line(&b).unwrap();
        assert_eq!(line, "t42");
        assert_eq!(fds.len(), 1);
        let mut wr = std::fs::File::from(fds.into_iter().next().unwrap());
        wr.write_all(b"via").unwrap();
        drop(wr);
        let mut got = String::new();
        std::fs::File::from(r).read_to_string(&mut got).unwrap();
        assert_eq!(got, "via");
    }

    #[test]
    fn a_line_cut_short_is_what_was_sent() {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(b"error no").unwrap();
        drop(a);
        assert_eq!(recv_line(&b).unwrap().0, "error no");
    }

    #[test]
    fn a_pty_carries_bytes_and_a_size() {
        let (master, slave) = open_pty().unwrap();
        resize(&master, 40, 120).unwrap();
        assert_eq!(size(&slave).unwrap(), (40, 120));
        std::fs::File::from(slave.try_clone().unwrap()).write_all(b"x\n").unwrap();
        let mut buf = [0u8; 8];
        let n = std::fs::File::from(master).read(&mut buf).unwrap();
        // The terminal turns a newline into CR LF, as Docker's `-t` output has it.
        assert_eq!(&buf[..n], b"x\r\n");
    }
}
