//! Child processes of the benchmark: started in their own process group with their output in
//! a log file, seen to be ready (by the fd-3 status pipe of the docker-proxy contract, or by
//! their port showing up in `/proc/net`), and killed, group and all, when their guard drops,
//! whether the run ended well or not. If this process dies without unwinding, the kernel
//! kills them (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use testkit::procfs::{self, Transport};
use testkit::spawn;
pub use testkit::tempdir::TempDir;

/// How long a peer may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the rest of a failure report once it has begun.
const FAIL_TEXT_WAIT: Duration = Duration::from_millis(200);

/// How long a peer may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// How a started process shows that it is ready.
#[derive(Clone, Copy, Debug)]
pub enum Readiness {
    /// It writes `0\n` (or `1\n<error>`) on fd 3, as cproxy and docker-proxy do.
    StatusPipe,
    /// It binds this port (a TCP listener, or a UDP socket).
    Port(Transport, u16),
}

/// A running child; dropping it stops it and every process it forked.
pub struct Process {
    /// What it is, for messages (`socat tcp`).
    what: String,
    /// The child, whose pid is also its process group.
    child: Child,
    /// Where its stdout and stderr go.
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` as `what`, its output to `log`, and waits until it is ready; the error
    /// says why it is not (its own words when it gave any).
    pub fn start(
        what: &str,
        mut cmd: Command,
        log: &Path,
        readiness: Readiness,
    ) -> Result<Process, String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot log {what}: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let status = match readiness {
            Readiness::StatusPipe => Some(
                spawn::status_pipe()
                    .map_err(|e| format!("cannot make a status pipe for {what}: {e}"))?,
            ),
            Readiness::Port(..) => None,
        };
        spawn::die_with_parent(&mut cmd);
        let fd3 = status.as_ref().map(|(_, write)| write.as_fd());
        let child =
            spawn::spawn_with_fds(cmd, &[fd3]).map_err(|e| format!("cannot start {what}: {e}"))?;
        let mut process = Process { what: what.to_string(), child, log: log.to_path_buf() };
        if let Some((read, write)) = status {
            drop(write); // Else the pipe never reads EOF.
            process.await_status(read)?;
        } else if let Readiness::Port(transport, port) = readiness {
            process.await_port(transport, port)?;
        }
        Ok(process)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the status pipe until it says ready or failed, the child exits, or time is up.
    fn await_status(&mut self, mut pipe: File) -> Result<(), String> {
        let mut end = Instant::now() + START_TIMEOUT;
        let mut said = Vec::new();
        loop {
            if said.starts_with(b"0\n") {
                return Ok(());
            }
            if said.starts_with(b"1\n") {
                // The error may come in pieces; the pipe closes when the child exits.
                end = end.min(Instant::now() + FAIL_TEXT_WAIT);
            }
            if Instant::now() >= end && said.starts_with(b"1\n") {
                break;
            }
            if Instant::now() >= end {
                return Err(format!("{} did not report ready within {START_TIMEOUT:?}", self.what));
            }
            let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, 100u16) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(format!("cannot read the status of {}: {e}", self.what)),
            }
            let mut chunk = [0u8; 512];
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => said.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("cannot read the status of {}: {e}", self.what)),
            }
        }
        if said.starts_with(b"0\n") {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&said);
        Err(match text.strip_prefix("1\n") {
            Some(error) => format!("{} failed: {error}", self.what),
            None => format!("{} exited without reporting ready{}", self.what, self.log_tail()),
        })
    }

    /// Waits until `port` is bound, failing early if the child exits.
    fn await_port(&mut self, transport: Transport, port: u16) -> Result<(), String> {
        let end = Instant::now() + START_TIMEOUT;
        while !procfs::port_bound(transport, port) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited ({status}){}", self.what, self.log_tail()));
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{} did not bind port {port} within {START_TIMEOUT:?}",
                    self.what
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The end of the child's log, as `: <text>`, or nothing if it is empty.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(400)));
            let _ = f.read_to_string(&mut text);
        }
        let text = text.trim();
        if text.is_empty() { String::new() } else { format!(": {}", text.replace('\n', " | ")) }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else { return };
        let group = Pid::from_raw(pid);
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(group, Signal::SIGTERM);
            let end = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < end {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Forked children (socat's) may outlive their parent: the group goes in any case.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::fd::{FromRawFd, OwnedFd};

    use testkit::spawn::shell;

    use super::*;

    #[test]
    fn a_child_that_writes_0_on_fd_3_is_ready() {
        let dir = TempDir::new("cproxy-load").unwrap();
        let p = Process::start(
            "child",
            shell("echo 0 >&3; exec sleep 30"),
            &dir.path().join("log"),
            Readiness::StatusPipe,
        );
        assert!(p.is_ok(), "{:?}", p.err());
    }

    #[test]
    fn a_child_that_writes_1_on_fd_3_fails_with_its_words() {
        let dir = TempDir::new("cproxy-load").unwrap();
        let e = Process::start(
            "child",
            shell("printf '1\\nport is taken' >&3; sleep 30"),
            &dir.path().join("log"),
            Readiness::StatusPipe,
        )
        .err()
        .unwrap();
        assert_eq!(e, "child failed: port is taken");
    }

    #[test]
    fn a_child_that_exits_before_binding_fails_with_its_log() {
        let dir = TempDir::new("cproxy-load").unwrap();
        let e = Process::start(
            "child",
            shell("echo no such option >&2; exit 3"),
            &dir.path().join("log"),
            Readiness::Port(Transport::TcpListen, 1),
        )
        .err()
        .unwrap();
        assert!(e.starts_with("child exited") && e.ends_with(": no such option"), "{e}");
    }

    #[test]
    fn dropping_a_process_kills_its_forked_children_too() {
        let dir = TempDir::new("cproxy-load").unwrap();
        let pidfile = dir.path().join("grandchild");
        let script = format!("sleep 30 & echo $! > {}; echo 0 >&3; wait", pidfile.display());
        let p =
            Process::start("child", shell(&script), &dir.path().join("log"), Readiness::StatusPipe)
                .unwrap();
        let grandchild: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // A pidfd turns readable when its process exits, parent or not.
        // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, grandchild, 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        // SAFETY: the descriptor was just opened and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        drop(p);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, 5000u16), Ok(1), "the grandchild outlived its group's stop");
    }
}
