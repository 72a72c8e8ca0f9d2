//! Children started as a container runtime starts a proxy: docker-proxy's command line,
//! descriptors handed down at fixed numbers (the status pipe on fd 3, a listening socket on
//! fd 4), the status read to its end as dockerd reads it, and a child that dies with its parent.

use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The first descriptor a child inherits from [`spawn_with_fds`].
pub const FIRST_INHERITED_FD: RawFd = 3;

/// Where [`spawn_with_fds`] parks its copies while the child installs them: above every
/// target, so that installing one cannot overwrite another still to be installed.
const PARKED_FDS: RawFd = 64;

/// A pipe for a child's status (its write end goes to the child as fd 3): the read end as a
/// file, the write end as a descriptor. Both are close-on-exec here, so no other child
/// inherits them, and the reader sees end of file once the child and this process have closed
/// the write end.
pub fn status_pipe() -> io::Result<(File, OwnedFd)> {
    let (read, write) = io::pipe()?;
    Ok((File::from(OwnedFd::from(read)), OwnedFd::from(write)))
}

/// What a child wrote on its status pipe, read to the end, as dockerd does (`0\n` for ready,
/// `1\n<error>` for failed).
pub fn read_status(mut read: File) -> io::Result<String> {
    let mut status = String::new();
    read.read_to_string(&mut status)?;
    Ok(status)
}

/// Spawns `cmd` with `fds[i]` installed as its descriptor 3 + `i` (a `None` leaves that number
/// alone), as dockerd hands docker-proxy its status pipe on fd 3 and a bound socket on fd 4.
/// The copies the child gets are not close-on-exec; this process's descriptors are untouched.
pub fn spawn_with_fds(mut cmd: Command, fds: &[Option<BorrowedFd<'_>>]) -> io::Result<Child> {
    if fds.len() > (PARKED_FDS - FIRST_INHERITED_FD) as usize {
        return Err(io::Error::other(format!(
            "{} descriptors are more than a child gets",
            fds.len()
        )));
    }
    let mut parked: Vec<Option<OwnedFd>> = Vec::with_capacity(fds.len());
    for fd in fds {
        parked.push(fd.map(park).transpose()?);
    }
    let raw: Vec<Option<RawFd>> =
        parked.iter().map(|f| f.as_ref().map(|f| f.as_raw_fd())).collect();
    // SAFETY: between fork and exec only dup2 runs, which is async-signal-safe, on descriptors
    // that are open in the child (the parked copies live until `spawn` returns); `raw` is
    // only read, nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            for (target, fd) in (FIRST_INHERITED_FD..).zip(&raw) {
                if let Some(fd) = *fd
                    && libc::dup2(fd, target) < 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(parked);
    child
}

/// A close-on-exec copy of `fd` numbered [`PARKED_FDS`] or above.
fn park(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor returns a new one, or -1.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, PARKED_FDS) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` was just created and belongs to nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Makes `cmd`'s child be killed (SIGKILL) when the thread that started it dies, so that a
/// crashed test or load tool leaves no proxy running.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: between fork and exec only prctl runs, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `/bin/sh -c script`: a stand-in child for tests of code that starts children.
pub fn shell(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", script]);
    c
}

/// docker-proxy's command line for one binding from 127.0.0.1:`host_port` to `backend`, as
/// dockerd writes it; without a host port when the socket is passed on fd 4
/// (`-use-listen-fd`).
pub fn docker_proxy_args(proto: &str, host_port: Option<u16>, backend: SocketAddr) -> Vec<String> {
    let mut args = vec!["-proto".to_string(), proto.to_string()];
    args.extend(["-host-ip".to_string(), "127.0.0.1".to_string()]);
    if let Some(port) = host_port {
        args.extend(["-host-port".to_string(), port.to_string()]);
    }
    args.extend(["-container-ip".to_string(), backend.ip().to_string()]);
    args.extend(["-container-port".to_string(), backend.port().to_string()]);
    args
}

/// Finds `name` on `PATH`, or in the sbin directories (where Debian puts haproxy and
/// docker-proxy) that a user's `PATH` may lack, or in /usr/libexec/docker (docker-ce's place).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/libexec/docker"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// True for an executable regular file.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn the_child_gets_the_descriptors_at_3_and_4_in_order() {
        let (status, status_w) = status_pipe().unwrap();
        let (other, other_w) = status_pipe().unwrap();
        // Handed down crossed over, so that a naive dup2 would clobber one with the other.
        let child = spawn_with_fds(
            shell("printf 'on 3' >&3; printf 'on 4' >&4"),
            &[Some(status_w.as_fd()), Some(other_w.as_fd())],
        )
        .unwrap();
        drop((status_w, other_w));
        assert_eq!(read_status(status).unwrap(), "on 3");
        assert_eq!(read_status(other).unwrap(), "on 4");
        child.wait_with_output().unwrap();
    }

    #[test]
    fn docker_proxy_args_are_dockerds_on_loopback() {
        let backend = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            docker_proxy_args("udp", Some(4000), backend).join(" "),
            "-proto udp -host-ip 127.0.0.1 -host-port 4000 -container-ip 127.0.0.1 \
             -container-port 5000"
        );
        assert_eq!(
            docker_proxy_args("tcp", None, backend).join(" "),
            "-proto tcp -host-ip 127.0.0.1 -container-ip 127.0.0.1 -container-port 5000"
        );
    }

    #[test]
    fn a_program_that_is_nowhere_is_not_found() {
        assert_eq!(find_program("no-such-program-here"), None);
        assert!(find_program("sh").is_some());
    }
}
