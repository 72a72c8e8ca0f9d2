//! `cproxy-lease`: what a docker-proxy-mode process becomes once the shared forwarder serves
//! its port. A program of a few pages that holds the binding's lease and waits, so that a
//! thousand published ports cost a thousand small processes, not a thousand copies of cproxy's
//! relocated data and heap (BENCHMARKS.md, "N processes as dockerd runs them").
//!
//! The process that handed its socket over ([`crate::handoff`]) `exec`s this program (found
//! beside its own) with, by contract:
//!
//! - fd 3: the control connection to the forwarder (the lease);
//! - fd 4: the port's socket, kept so the port is never dead;
//! - fd 5: the program that handed it over, opened `O_PATH` (it is `exec`ed again from that
//!   descriptor, so a package upgrade that replaced the file meanwhile changes nothing);
//! - the stop signals still blocked (the mask survives `exec`), so none is lost in between;
//! - `argv`: [`Waiter::to_args`]: the binding's ID, its grace period, the parent to follow
//!   (dockerd), the log format, and the program's own command line.
//!
//! It waits in `poll(2)` for a stop signal (read from a `signalfd`), the parent's exit (a
//! pidfd) or the forwarder's end. On a stop it sends `remove ID` and waits for the
//! forwarder's answer (the drain), as the process did before the `exec`. When the forwarder is
//! gone, it `exec`s the program again with its command line and [`RESUMED_FLAG`]: the program
//! takes the socket from fd 4, forwards by itself at once, and offers the port to the
//! forwarder again until one takes it (then it becomes this program again).

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::signals;

/// The waiter program's file name, looked for beside the program that hands over.
pub const PROGRAM: &str = "cproxy-lease";

/// The first argument: the contract's version, so that a waiter and a program from different
/// releases refuse each other in words instead of misreading the numbers.
const VERSION: &str = "lease-v1";

/// The control connection.
pub const CONTROL_FD: RawFd = 3;
/// The port's socket.
pub const SOCKET_FD: RawFd = 4;
/// The program to resume, `O_PATH`.
pub const PROGRAM_FD: RawFd = 5;

/// The flag the waiter adds to the program's command line when it resumes it, with the pid of
/// the parent to follow (0: none): the socket is on fd 4, the status was reported, and the
/// forwarder has just gone.
pub const RESUMED_FLAG: &str = "--resumed-from-lease";

/// How long the forwarder may take to answer a `remove`, beyond the grace period.
const ANSWER: Duration = Duration::from_secs(5);

/// Without a pidfd, the parent is looked at this often.
const PARENT_POLL_MS: u16 = 500;

/// What the waiter is told on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// The binding's ID in the forwarder.
    pub id: u64,
    /// The binding's grace period: how long a `remove` may take to drain.
    pub grace: Duration,
    /// The parent to follow (dockerd): its exit is a stop. `None`: no parent to follow.
    pub parent: Option<i32>,
    /// Logs as JSON lines.
    pub json_logs: bool,
    /// The program's command line, `argv[0]` first, without [`RESUMED_FLAG`].
    pub program_args: Vec<OsString>,
}

impl Waiter {
    /// The waiter's `argv` after its own name.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            VERSION.into(),
            self.id.to_string().into(),
            self.grace.as_millis().to_string().into(),
            self.parent.unwrap_or(0).to_string().into(),
            if self.json_logs { "json" } else { "text" }.into(),
            "--".into(),
        ];
        args.extend(self.program_args.iter().cloned());
        args
    }

    /// Reads [`Waiter::to_args`]'s words back (`args` without the waiter's own name).
    pub fn from_args(args: &[OsString]) -> Result<Waiter, String> {
        let word = |i: usize, what: &str| -> Result<&str, String> {
            args.get(i)
                .ok_or_else(|| format!("missing {what}"))?
                .to_str()
                .ok_or_else(|| format!("{what} is not UTF-8"))
        };
        let version = word(0, "the contract's version")?;
        if version != VERSION {
            return Err(format!("contract {version:?}, this waiter speaks {VERSION:?}"));
        }
        let number = |i: usize, what: &str| -> Result<u64, String> {
            let w = word(i, what)?;
            w.parse().map_err(|_| format!("{what} {w:?} is not a number"))
        };
        let id = number(1, "the binding's ID")?;
        let grace = Duration::from_millis(number(2, "the grace period")?);
        let parent = number(3, "the parent's pid")?;
        let parent = match i32::try_from(parent) {
            Ok(0) => None,
            Ok(pid) => Some(pid),
            Err(_) => return Err(format!("the parent's pid {parent} is out of range")),
        };
        let json_logs = match word(4, "the log format")? {
            "json" => true,
            "text" => false,
            other => return Err(format!("log format {other:?} is neither json nor text")),
        };
        if word(5, "--")? != "--" {
            return Err("the program's command line must follow --".to_string());
        }
        let program_args = args[6..].to_vec();
        if program_args.is_empty() {
            return Err("the program's command line is empty".to_string());
        }
        Ok(Waiter { id, grace, parent, json_logs, program_args })
    }
}

/// A command line without [`RESUMED_FLAG`] and its value (a program resumed twice hands over
/// its command line as dockerd gave it).
pub fn without_resumed_flag(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == RESUMED_FLAG.as_bytes() {
            args.next();
        } else if !bytes.starts_with(format!("{RESUMED_FLAG}=").as_bytes()) {
            out.push(arg);
        }
    }
    out
}

/// The waiter's `main`: `args` is its `argv` without its own name.
pub fn main(args: &[OsString]) -> ExitCode {
    let waiter = match Waiter::from_args(args) {
        Ok(w) => w,
        Err(e) => {
            // Started by hand or by another release: nothing here to serve.
            eprintln!(
                "{PROGRAM}: {e}\n{PROGRAM} is started by cproxy in docker-proxy mode once the \
                 shared forwarder serves the port; it is not meant to be run by hand"
            );
            return ExitCode::from(2);
        }
    };
    let log = Log { json: waiter.json_logs };
    // Fds 3 and 4 are the contract's: nothing in this process opened them.
    let control = match owned_socket(CONTROL_FD) {
        Some(fd) => fd,
        None => {
            log.line("ERROR", "fd 3 is not the control connection: nothing to wait on", &[]);
            return ExitCode::FAILURE;
        }
    };
    let Some(_socket) = owned_socket(SOCKET_FD) else {
        log.line("ERROR", "fd 4 is not the port's socket: nothing to hold", &[]);
        return ExitCode::FAILURE;
    };
    // Blocked already (the mask survives `exec`); blocking again costs nothing.
    let stop = match signals::SignalFd::block() {
        Ok(fd) => fd,
        Err(e) => {
            // Cannot wait for dockerd's signal: the program, resumed, can.
            let e = e.to_string();
            log.line("WARN", "cannot read signals: resuming the program", &[("error", &e)]);
            return resume(&waiter, &log);
        }
    };
    let parent = waiter.parent.map(|pid| {
        let pidfd = crate::sys::pidfd_open(pid).ok();
        (pid, pidfd)
    });
    match wait(&control, &stop, parent.as_ref().map(|(pid, fd)| (*pid, fd.as_ref()))) {
        Woke::Stop(why) => {
            log.line(
                "INFO",
                "stopping: the forwarder removes the binding and drains it",
                &[("why", &why), ("id", &waiter.id.to_string())],
            );
            remove(&control, waiter.id, waiter.grace);
            ExitCode::SUCCESS
        }
        Woke::ForwarderGone => {
            log.line(
                "WARN",
                "the shared forwarder is gone: forwarding by itself (the connections it held are \
                 lost)",
                &[],
            );
            drop(control);
            resume(&waiter, &log)
        }
    }
}

/// Takes the contract's descriptor `fd` if it is a socket.
fn owned_socket(fd: RawFd) -> Option<OwnedFd> {
    crate::sys::claim_inherited(fd, crate::sys::FdKind::Socket)
}

/// What ended the wait.
enum Woke {
    /// A stop signal, or the parent's exit.
    Stop(String),
    /// The forwarder closed the connection.
    ForwarderGone,
}

/// True when the forwarder closed `control`; bytes it sent unasked are dropped (it sends
/// nothing unasked).
pub fn closed(control: impl AsFd) -> bool {
    let control = control.as_fd();
    let mut buf = [0u8; 64];
    loop {
        match nix::sys::socket::recv(
            control.as_raw_fd(),
            &mut buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(nix::errno::Errno::EAGAIN) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Waits for a stop signal, the parent's exit or the forwarder's end.
fn wait(
    control: &OwnedFd,
    stop: &signals::SignalFd,
    parent: Option<(i32, Option<&OwnedFd>)>,
) -> Woke {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let parent_gone = |pid: i32| crate::sys::parent_pid() != pid;
    loop {
        if let Some((pid, _)) = parent
            && parent_gone(pid)
        {
            return Woke::Stop("the runtime that started cproxy exited".to_string());
        }
        let mut fds = vec![
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.fd(), PollFlags::POLLIN),
        ];
        let pidfd = parent.and_then(|(_, fd)| fd);
        if let Some(fd) = pidfd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        let timeout = match (parent, pidfd) {
            (Some(_), None) => PollTimeout::from(PARENT_POLL_MS),
            _ => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return Woke::ForwarderGone,
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        if ready(1)
            && let Some(sig) = stop.try_recv()
        {
            return Woke::Stop(format!("signal {}", signals::name(sig)));
        }
        if ready(2) {
            return Woke::Stop("the runtime that started cproxy exited".to_string());
        }
        if ready(0) && closed(control) {
            return Woke::ForwarderGone;
        }
    }
}

/// Sends `remove ID` and waits for the answer's end (one line), or the grace period and a
/// margin, or the connection's end.
fn remove(control: &OwnedFd, id: u64, grace: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    if nix::unistd::write(control, format!("remove {id}\n").as_bytes()).is_err() {
        return;
    }
    let deadline = Instant::now() + grace + ANSWER;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        match nix::unistd::read(control, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) if buf[..n].contains(&b'\n') => return,
            Ok(_) => {}
        }
    }
}

/// `exec`s the program again from fd 5 with its command line and [`RESUMED_FLAG`]; returns
/// only if that failed (the port then has no one to serve it: said, and the waiter ends).
fn resume(waiter: &Waiter, log: &Log) -> ExitCode {
    let parent = waiter.parent.unwrap_or(0).to_string();
    let mut argv: Vec<OsString> = waiter.program_args.clone();
    argv.push(RESUMED_FLAG.into());
    argv.push(parent.into());
    // The socket stays open across the `exec`: the program takes it from fd 4.
    // SAFETY: F_SETFD on the contract's number, held by `main` until this returns.
    unsafe { libc::fcntl(SOCKET_FD, libc::F_SETFD, 0) };
    let error = exec_fd(PROGRAM_FD, &argv);
    log.line(
        "ERROR",
        "cannot resume the program: the port is not served any more",
        &[("error", &error.to_string())],
    );
    ExitCode::FAILURE
}

/// `argv` as C strings.
fn c_strings<'a>(words: impl IntoIterator<Item = &'a OsStr>) -> io::Result<Vec<CString>> {
    words
        .into_iter()
        .map(|w| CString::new(w.as_bytes().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "an argument holds a NUL byte"))
}

/// `execveat(fd, "", argv, this environment, AT_EMPTY_PATH)`, with `fd` closed by the `exec`
/// itself. Returns the error when it fails.
pub fn exec_fd(fd: RawFd, argv: &[OsString]) -> io::Error {
    let args = match c_strings(argv.iter().map(OsString::as_os_str)) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let env: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    let env = match c_strings(env.iter().map(OsString::as_os_str)) {
        Ok(e) => e,
        Err(e) => return e,
    };
    // The program does not inherit its own descriptor.
    // SAFETY: F_SETFD on a number; a closed one fails with EBADF, which execveat reports too.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the contract's number, open for the call (or execveat fails with EBADF).
    let dir = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = nix::fcntl::AtFlags::AT_EMPTY_PATH;
    match nix::unistd::execveat(dir, c"", &args, &env, flags) {
        Err(e) => io::Error::from(e),
        Ok(never) => match never {},
    }
}

/// `execv(path, argv)`; returns the error when it fails.
pub fn exec_path(path: &OsStr, argv: &[OsString]) -> io::Error {
    let words = std::iter::once(path).chain(argv.iter().map(OsString::as_os_str));
    let mut words = match c_strings(words) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let path = words.remove(0);
    match nix::unistd::execv(&path, &words) {
        Err(e) => io::Error::from(e),
        Ok(never) => match never {},
    }
}

/// Log lines in the format the program's own logs have (tracing's `fmt`, text or JSON), on
/// stderr, without the logging crates.
struct Log {
    json: bool,
}

impl Log {
    fn line(&self, level: &str, message: &str, fields: &[(&str, &str)]) {
        let now = timestamp();
        let line = if self.json {
            let mut f = format!("\"message\":{}", json_string(message));
            for (k, v) in fields {
                f.push_str(&format!(",{}:{}", json_string(k), json_string(v)));
            }
            format!(
                "{{\"timestamp\":\"{now}\",\"level\":\"{level}\",\"fields\":{{{f}}},\"target\":\"cproxy::lease\"}}"
            )
        } else {
            let mut l = format!("{now} {level:>5} cproxy::lease: {message}");
            for (k, v) in fields {
                l.push_str(&format!(" {k}={v}"));
            }
            l
        };
        let _ = writeln!(io::stderr().lock(), "{line}");
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Now, as tracing prints it: `2026-12-07T05:00:25.919983Z`.
fn timestamp() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    civil(now.as_secs(), now.subsec_micros())
}

/// A UTC time from seconds since the epoch, to the microsecond.
fn civil(secs: u64, micros: u32) -> String {
    let (year, month, day) =
        crate::supervisor::rules::format::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line_goes_there_and_back() {
        let w = Waiter {
            id: 42,
            grace: Duration::from_millis(2500),
            parent: Some(1234),
            json_logs: true,
            program_args: os(&["/usr/bin/cproxy", "-proto", "tcp", "-host-port", "80"]),
        };
        assert_eq!(Waiter::from_args(&w.to_args()), Ok(w.clone()));
        let none = Waiter { parent: None, json_logs: false, ..w };
        assert_eq!(Waiter::from_args(&none.to_args()), Ok(none));
    }

    #[test]
    fn a_bad_command_line_is_refused_in_words() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing the contract's version"),
            (&["lease-v0", "1", "0", "0", "text", "--", "x"], "this waiter speaks"),
            (&["lease-v1", "x", "0", "0", "text", "--", "x"], "the binding's ID \"x\""),
            (&["lease-v1", "1", "-5", "0", "text", "--", "x"], "the grace period"),
            (&["lease-v1", "1", "0", "99999999999", "text", "--", "x"], "out of range"),
            (&["lease-v1", "1", "0", "0", "xml", "--", "x"], "neither json nor text"),
            (&["lease-v1", "1", "0", "0", "text", "x"], "must follow --"),
            (&["lease-v1", "1", "0", "0", "text", "--"], "is empty"),
        ];
        for (args, want) in cases {
            let e = Waiter::from_args(&os(args)).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_resumed_flag_is_dropped_from_a_command_line() {
        let args = os(&["cproxy", "-proto", "tcp", RESUMED_FLAG, "77", "-host-port", "80"]);
        assert_eq!(
            without_resumed_flag(args),
            os(&["cproxy", "-proto", "tcp", "-host-port", "80"])
        );
        let joined = os(&["cproxy", "--resumed-from-lease=5", "-proto", "udp"]);
        assert_eq!(without_resumed_flag(joined), os(&["cproxy", "-proto", "udp"]));
    }

    #[test]
    fn timestamps_read_as_tracings() {
        assert_eq!(civil(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(civil(1_796_621_825, 919_983), "2026-12-07T05:37:05.919983Z");
        assert_eq!(civil(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
