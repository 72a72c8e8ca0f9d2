//! Seccomp filters in a real kernel: a forked child applies a compiled profile, then makes
//! syscalls and reports each one's errno through a pipe. Run as root (as the suite runs): the
//! child applies Docker's default without `no_new_privs`, holding CAP_SYS_ADMIN as runc does.
//!
//! Test threads run beside the fork, so the child only makes syscalls: the program is compiled
//! before the fork, [`seccomp::apply`] allocates nothing, and the child ends with `_exit`.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use cproxy::supervisor::os::seccomp::{self, DOCKER_DEFAULT_CAPS as DOCKER_CAPS, Profile};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;

/// A syscall made in the child: its errno, 0 when it worked.
type Check = fn() -> i32;

/// The errno of a syscall that returned `rc`.
fn errno(rc: libc::c_long) -> i32 {
    if rc < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(-1) } else { 0 }
}

fn unshare_mount_namespace() -> i32 {
    // SAFETY: a new mount namespace for this (child) process only.
    errno(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into())
}

/// A mount onto a path that does not exist: ENOENT past the filter, so nothing is mounted
/// whatever the filter says.
fn mount_nowhere() -> i32 {
    let target = c"/nonexistent/cproxy-seccomp-test";
    // SAFETY: NUL-terminated strings; the target does not exist.
    errno(
        unsafe {
            libc::mount(c"none".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null())
        }
        .into(),
    )
}

/// `clone(flags)` as fork does it; a child that comes of it exits at once and is reaped.
fn clone_with(flags: libc::c_int) -> i32 {
    // SAFETY: no CLONE_VM: the child has a copy of this memory, as after fork, and only exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) };
    match pid {
        // SAFETY: the child ends at once.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => {
            let mut status = 0;
            // SAFETY: our own child.
            unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            0
        }
        rc => errno(rc),
    }
}

fn clone_new_user_namespace() -> i32 {
    clone_with(libc::CLONE_NEWUSER)
}

fn plain_fork() -> i32 {
    // SAFETY: the child only exits.
    match unsafe { libc::fork() } {
        // SAFETY: the child ends at once.
        0 => unsafe { libc::_exit(0) },
        pid if pid > 0 => {
            let mut status = 0;
            // SAFETY: our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 { 0 } else { -1 }
        }
        rc => errno(rc.into()),
    }
}

/// `clone3` without its arguments: EINVAL past the filter, so no child comes of it.
fn clone3_without_arguments() -> i32 {
    // SAFETY: a null pointer of size 0, which the kernel refuses.
    errno(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) })
}

/// ENOKEY past the filter (no process keyring yet, and none made).
fn keyctl_process_keyring() -> i32 {
    // SAFETY: KEYCTL_GET_KEYRING_ID of KEY_SPEC_PROCESS_KEYRING, without creating it.
    errno(unsafe { libc::syscall(libc::SYS_keyctl, 0, -2, 0) })
}

fn personality_query() -> i32 {
    // SAFETY: 0xffffffff only asks for the current persona.
    errno(unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffff_u64) })
}

fn personality_no_randomize() -> i32 {
    // SAFETY: ADDR_NO_RANDOMIZE for this (child) process only.
    errno(unsafe { libc::syscall(libc::SYS_personality, 0x0040000_u64) })
}

fn getpid() -> i32 {
    // SAFETY: no arguments.
    errno(unsafe { libc::syscall(libc::SYS_getpid) })
}

/// PTRACE_ATTACH to pid 0, which no process has: ESRCH past the filter.
fn ptrace_nobody() -> i32 {
    // SAFETY: attaching to no process.
    errno(unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_ATTACH, 0, 0, 0) })
}

/// `dup` of descriptors that do not exist: EBADF past the filter.
fn dup_million() -> i32 {
    // SAFETY: duplicates nothing.
    errno(unsafe { libc::syscall(libc::SYS_dup, 1_000_000) })
}

fn dup_minus_one() -> i32 {
    // SAFETY: duplicates nothing.
    errno(unsafe { libc::syscall(libc::SYS_dup, -1) })
}

fn getppid() -> i32 {
    // SAFETY: no arguments.
    errno(unsafe { libc::syscall(libc::SYS_getppid) })
}

/// Forks a child that sets `no_new_privs` if asked, applies `prog` and makes each check; each
/// gets its errno (0: it worked).
fn expect_in_child(
    prog: &[seccompiler::sock_filter],
    no_new_privs: bool,
    checks: &[(&str, Check, i32)],
) {
    assert!(checks.len() < 16);
    let mut fds = [0; 2];
    // SAFETY: two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are new and ours.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child makes only syscalls (no allocation, no lock) and ends with _exit.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            // [0]: applying; then one errno per check.
            let mut report = [0i32; 16];
            if no_new_privs {
                // SAFETY: prctl with integer arguments.
                report[0] =
                    errno(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into());
            }
            if report[0] == 0 {
                report[0] = match seccomp::apply(prog) {
                    Ok(()) => 0,
                    Err(e) => e.raw_os_error().unwrap_or(-1),
                };
            }
            if report[0] == 0 {
                for (slot, (_, check, _)) in report[1..].iter_mut().zip(checks) {
                    *slot = check();
                }
            }
            let bytes = std::mem::size_of_val(&report);
            // SAFETY: writes `report`'s bytes to the pipe; then ends this process.
            unsafe {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&write_end);
                let written = libc::write(fd, report.as_ptr().cast(), bytes);
                libc::_exit(if written == bytes as isize { 0 } else { 1 });
            }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut bytes = Vec::new();
            File::from(read_end).read_to_end(&mut bytes).unwrap();
            assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            let report: Vec<i32> =
                bytes.chunks(4).map(|b| i32::from_ne_bytes(b.try_into().unwrap())).collect();
            assert_eq!(report.len(), 16, "the child's report");
            assert_eq!(report[0], 0, "applying the filter: errno {}", report[0]);
            let got: Vec<_> =
                checks.iter().zip(&report[1..]).map(|((name, ..), e)| (*name, *e)).collect();
            let expected: Vec<_> = checks.iter().map(|(name, _, errno)| (*name, *errno)).collect();
            assert_eq!(got, expected);
        }
    }
}

fn kernel() -> (u32, u32) {
    seccomp::kernel_version().unwrap()
}

#[test]
fn the_default_profile_confines_a_container_with_dockers_capabilities() {
    let prog = seccomp::compile(&Profile::docker_default(), DOCKER_CAPS, kernel()).unwrap();
    let checks: [(&str, Check, i32); 10] = [
        ("unshare(CLONE_NEWNS)", unshare_mount_namespace, libc::EPERM),
        ("mount", mount_nowhere, libc::EPERM),
        ("clone(CLONE_NEWUSER)", clone_new_user_namespace, libc::EPERM),
        ("clone3", clone3_without_arguments, libc::ENOSYS),
        ("keyctl", keyctl_process_keyring, libc::EPERM),
        ("personality(ADDR_NO_RANDOMIZE)", personality_no_randomize, libc::EPERM),
        ("personality(0xffffffff)", personality_query, 0),
        ("getpid", getpid, 0),
        ("fork", plain_fork, 0),
        // Docker allows ptrace from kernel 4.8 on (this test's kernel).
        ("ptrace", ptrace_nobody, if kernel() >= (4, 8) { libc::ESRCH } else { libc::EPERM }),
    ];
    expect_in_child(&prog, false, &checks);
}

#[test]
fn cap_sys_admin_lets_namespaces_and_mounts_through() {
    let mut caps = DOCKER_CAPS.to_vec();
    caps.push("CAP_SYS_ADMIN");
    let prog = seccomp::compile(&Profile::docker_default(), &caps, kernel()).unwrap();
    let checks: [(&str, Check, i32); 5] = [
        ("unshare(CLONE_NEWNS)", unshare_mount_namespace, 0),
        ("mount", mount_nowhere, libc::ENOENT),
        ("clone3", clone3_without_arguments, libc::EINVAL),
        ("keyctl", keyctl_process_keyring, libc::EPERM),
        ("getpid", getpid, 0),
    ];
    expect_in_child(&prog, false, &checks);
}

#[test]
fn an_old_kernel_keeps_ptrace_out() {
    let prog = seccomp::compile(&Profile::docker_default(), DOCKER_CAPS, (4, 4)).unwrap();
    expect_in_child(&prog, false, &[("ptrace", ptrace_nobody, libc::EPERM), ("getpid", getpid, 0)]);
}

#[test]
fn a_json_profile_with_no_new_privs() {
    let profile = Profile::from_json(
        br#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
                 "args": [{"index": 0, "value": 1000000, "op": "SCMP_CMP_GE"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO",
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        }"#,
    )
    .unwrap();
    let prog = seccomp::compile(&profile, &["CAP_SYS_ADMIN"], kernel()).unwrap();
    let checks: [(&str, Check, i32); 6] = [
        ("getppid", getppid, libc::EXDEV),
        ("dup(1000000)", dup_million, libc::EOPNOTSUPP),
        ("dup(-1)", dup_minus_one, libc::EOPNOTSUPP),
        ("mount", mount_nowhere, libc::ENOENT),
        ("keyctl", keyctl_process_keyring, libc::ENOKEY),
        ("getpid", getpid, 0),
    ];
    expect_in_child(&prog, true, &checks);
}
