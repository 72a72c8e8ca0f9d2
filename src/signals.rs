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
