//! The signals whose default action ends a process and that a process may catch: what the
//! forwarder drains on (as SIGTERM) and what the daemon must not die of. One list, so the two
//! modes and their tests cannot drift apart.
//!
//! Not among them: SIGKILL (cannot be caught); the signals the kernel sends for a fault of the
//! process itself (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) and SIGABRT (`abort`),
//! whose core dump is worth more than a drain; SIGPIPE, which Rust ignores.

/// The named ones.
pub const TERMINATING_NAMED: [libc::c_int; 14] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSTKFLT,
];

/// Every one: [`TERMINATING_NAMED`] and the real-time signals this process may use (glibc
/// keeps the first two or three for itself, `SIGRTMIN()` is past them; tokio cannot register
/// SIGRTMAX).
pub fn terminating() -> Vec<libc::c_int> {
    TERMINATING_NAMED.into_iter().chain(libc::SIGRTMIN()..libc::SIGRTMAX()).collect()
}

/// A signal's name, as `kill -l` spells it (`SIGRTMIN+3` for a real-time one).
pub fn name(sig: libc::c_int) -> String {
    if let Ok(named) = nix::sys::signal::Signal::try_from(sig) {
        return named.as_str().to_string();
    }
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) {
        return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN());
    }
    format!("signal {sig}")
}

/// The stop signals ([`terminating`]), blocked and read from a `signalfd`: one descriptor
/// serves a blocking `poll(2)` and a runtime alike, with no handler, no self-pipe and no
/// registry per signal. Two of one kind that come before they are read are one; two of
/// different kinds are two.
pub struct SignalFd {
    fd: std::os::fd::OwnedFd,
}

impl SignalFd {
    /// Blocks the signals (in this thread, and in the threads it starts later) and opens the
    /// descriptor they are read from. Call before any thread starts: a thread started earlier
    /// would take a signal with its default action, and end the process. The mask survives
    /// `exec` (so a signal sent meanwhile waits for the program `exec`ed); `std::process`'s
    /// children start with an empty one.
    pub fn block() -> std::io::Result<SignalFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signals are valid numbers.
        unsafe {
            libc::sigemptyset(&mut set);
            for sig in terminating() {
                libc::sigaddset(&mut set, sig);
            }
        }
        // SAFETY: `set` is initialised; the old mask is not asked for.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r));
        }
        // SAFETY: a new signalfd (-1) for an initialised mask.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        Ok(SignalFd { fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) } })
    }

    /// The descriptor, to wait on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The next pending signal, without waiting.
    pub fn try_recv(&self) -> Option<libc::c_int> {
        use std::os::fd::AsRawFd;
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into `info`, which has that size.
        let n = unsafe {
            libc::read(self.fd.as_raw_fd(), (&mut info as *mut libc::signalfd_siginfo).cast(), size)
        };
        (n as usize == size).then_some(info.ssi_signo as libc::c_int)
    }

    /// Registers the descriptor with the current runtime, to [`SignalFd::recv`] on.
    pub fn register(
        &self,
    ) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::BorrowedFd<'_>>> {
        // SAFETY: the registration borrows the signalfd, which stays open (and the same) for
        // as long as `self` lives, longer than the borrow.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                self.fd(),
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(std::io::Error::from)
    }

    /// The next signal, in the runtime `registered` (from [`SignalFd::register`]) belongs to.
    pub async fn recv(
        &self,
        registered: &tokio::io::unix::AsyncFd<std::os::fd::BorrowedFd<'_>>,
    ) -> libc::c_int {
        loop {
            let Ok(mut ready) = registered.readable().await else {
                return std::future::pending().await;
            };
            if let Some(sig) = self.try_recv() {
                return sig;
            }
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kill_ls_names() {
        assert_eq!(name(libc::SIGHUP), "SIGHUP");
        assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        assert!(terminating().contains(&libc::SIGRTMIN()));
        assert!(!terminating().contains(&libc::SIGKILL));
    }
}
