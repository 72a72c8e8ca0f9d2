//! Applying a container's confinement to the calling process, in runc's order, right before
//! the command is executed: the capability bounding set, `no_new_privs`, the seccomp filter
//! (installed while `CAP_SYS_ADMIN` is still held, so it needs no `no_new_privs`), the user
//! and groups, then the capabilities themselves. The sets are decided by
//! [`crate::supervisor::rules::confine`].

use std::io;

use crate::supervisor::rules::confine::CapSet;
use crate::supervisor::rules::user::ExecUser;

/// The kernel's last capability (`/proc/sys/kernel/cap_last_cap`).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Drops from the bounding set every capability up to `last` not in `keep`.
pub fn drop_bounding(keep: CapSet, last: u8) -> io::Result<()> {
    for n in 0..=last {
        if !keep.has(n) {
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(n), 0, 0, 0) };
            // EINVAL: the kernel does not know this one.
            if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Sets the effective and permitted capabilities to `keep` (what this process holds of it)
/// and the inheritable ones to none, as Docker 20.10.14 and later do.
pub fn set_capabilities(keep: CapSet) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut now = [Data::default(); 2];
    // SAFETY: capget(2) fills two `Data` for version 3; both live across the call.
    check(unsafe { libc::syscall(libc::SYS_capget, &mut header, now.as_mut_ptr()) as i32 })?;
    let held = u64::from(now[0].permitted) | (u64::from(now[1].permitted) << 32);
    let want = keep.0 & held;
    let data = [
        Data { effective: want as u32, permitted: want as u32, inheritable: 0 },
        Data { effective: (want >> 32) as u32, permitted: (want >> 32) as u32, inheritable: 0 },
    ];
    let mut header = Header { version: VERSION_3, pid: 0 };
    // SAFETY: capset(2) reads two `Data` for version 3; both live across the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) as i32 })
}

/// `no_new_privs`: no exec gains privileges (set-user-ID, file capabilities).
pub fn no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
}

/// Keeps other processes of the same user (the container's) from tracing or reading this one:
/// the container's init is not dumpable.
pub fn not_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })
}

/// Becomes `user`: supplementary groups, group, then user (which clears the capabilities of a
/// user other than root, as the kernel does on `setuid`).
pub fn become_user(user: &ExecUser) -> io::Result<()> {
    let groups: Vec<nix::unistd::Gid> =
        user.groups.iter().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups)?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(user.gid))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(user.uid))?;
    Ok(())
}
