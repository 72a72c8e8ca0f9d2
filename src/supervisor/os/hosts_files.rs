//! A container's hosts files on the host's side: `hosts`, `hostname` and `resolv.conf`
//! written atomically under its directory before it starts (their text is
//! [`crate::supervisor::rules::hosts`]'s), and swapped whole into running containers' mount
//! namespaces when a link's source moves or a network comes or goes.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::supervisor::engine::store::write_atomic;
use crate::supervisor::rules::hosts;

/// Writes the files of a container on user-defined networks: `hosts` with `ips`, `hostname`,
/// and the embedded DNS's `resolv.conf`.
pub fn write_files_internal(dir: &Path, ips: &[Ipv4Addr], hostname: &str) -> io::Result<()> {
    write_atomic(&dir.join("hosts"), hosts::render_hosts_multi(ips, hostname).as_bytes())?;
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(&dir.join("resolv.conf"), hosts::render_internal_resolv_conf(&host).as_bytes())
}

/// Writes `hosts`, `hostname` and `resolv.conf` into `dir`.
pub fn write_files(dir: &Path, ip: Option<Ipv4Addr>, hostname: &str) -> io::Result<()> {
    write_atomic(&dir.join("hosts"), hosts::render_hosts(ip, hostname).as_bytes())?;
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(&dir.join("resolv.conf"), hosts::render_resolv_conf(&host).as_bytes())
}

/// `MOVE_MOUNT_F_EMPTY_PATH` and `MOVE_MOUNT_BENEATH` of `<linux/mount.h>`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
const MOVE_MOUNT_BENEATH: libc::c_uint = 0x0000_0200;
/// `OPEN_TREE_CLONE` of `<linux/mount.h>`.
const OPEN_TREE_CLONE: libc::c_uint = 1;

/// [`swap_file`] into each of `pids`; all are tried, the first failure is returned.
pub fn swap_in_each(pids: &[i32], file: &Path, target: &str) -> io::Result<()> {
    let mut first = Ok(());
    for &pid in pids {
        let r = swap_file(pid, file, target);
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// Makes `target` (a file bind-mounted from the daemon's, `/etc/hosts` or `/etc/resolv.conf`)
/// inside the mount namespace of process `pid` show `file`, whole: on a thread of its own that
/// enters the namespace (`setns` is per thread, and the thread must not share its filesystem
/// attributes to enter a mount namespace).
pub fn swap_file(pid: i32, file: &Path, target: &str) -> io::Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/mnt"))?;
    let file: PathBuf = file.to_path_buf();
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).map_err(io::Error::from)?;
            // A detached copy of a bind mount of the new file, made in the daemon's namespace.
            let tree = open_tree(&file)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
            let target_c = CString::new(target).map_err(io::Error::other)?;
            let target = &target_c;
            match move_mount(&tree, target, MOVE_MOUNT_BENEATH) {
                Ok(()) => {
                    nix::mount::umount2(target_c.as_c_str(), nix::mount::MntFlags::MNT_DETACH)
                        .map_err(io::Error::from)
                }
                // Before Linux 6.5: on top.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => move_mount(&tree, target, 0),
                Err(e) => Err(e),
            }
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the hosts rewrite thread panicked")))
    })
}

fn open_tree(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    crate::sys::open_tree(&c, OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint)
}

fn move_mount(tree: &OwnedFd, target: &CString, flags: libc::c_uint) -> io::Result<()> {
    crate::sys::move_mount(tree.as_fd(), target, MOVE_MOUNT_F_EMPTY_PATH | flags)
}
