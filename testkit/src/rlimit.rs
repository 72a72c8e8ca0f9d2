//! Descriptor limits (`RLIMIT_NOFILE`): raising this process's, so a test that holds thousands
//! of sockets does not depend on the shell's limit, and lowering a child's, so that a proxy can
//! be driven into descriptor exhaustion.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Lets this process hold `want` descriptors: the soft limit up to the hard one, and the hard
/// one up to `want` where that is allowed (as for root). Best effort: a limit it cannot raise
/// is left as high as it can be.
pub fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read or fill a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let wanted =
            libc::rlimit { rlim_cur: lim.rlim_max.max(want), rlim_max: lim.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Makes `cmd`'s child start with at most `n` descriptors (soft and hard limit alike).
pub fn limit_child_fds(cmd: &mut Command, n: u64) {
    let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
    // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe, on a
    // struct the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_starts_with_the_limit_it_was_given() {
        let mut cmd = crate::spawn::shell("ulimit -n");
        limit_child_fds(&mut cmd, 77);
        let out = cmd.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "77");
    }
}
