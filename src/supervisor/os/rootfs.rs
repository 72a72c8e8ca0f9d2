//! The container's root filesystem, made by its init inside its own mount namespace (so every
//! mount here goes with the container, whatever happens to the daemon), as runc makes
//! Docker's:
//!
//! 1. the root: an overlay of the image's layers under the container's writable directory, or
//!    a host directory (`--rootfs PATH`) bound onto itself;
//! 2. `/proc`, a minimal `/dev` (a tmpfs with `null`, `zero`, `full`, `random`, `urandom`,
//!    `tty`, `devpts`, `shm`, `mqueue` and the `fd`/`std*`/`ptmx` links; the host's `/dev`
//!    with `--privileged`), `/sys` read-only, the container's hosts files, its volumes;
//! 3. `pivot_root` into it, the old root detached;
//! 4. Docker's masked paths (`/proc/kcore`, `/proc/keys`, …: `/dev/null` or an empty
//!    read-only tmpfs over them) and read-only paths (`/proc/sys`, …), unless privileged;
//!    `--read-only` remounts the root read-only.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Docker's masked paths (moby's `oci.DefaultSpec`).
pub const MASKED: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Docker's read-only paths.
pub const READ_ONLY: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// `/dev/shm`'s size unless `--shm-size` says otherwise: Docker's 64 MiB.
pub const SHM_DEFAULT: u64 = 64 << 20;

/// The device nodes of a container's `/dev`, the host's bound there.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// What the root is made of.
#[derive(Debug, Clone)]
pub enum Source {
    /// The image's layers (top first, as overlayfs takes them) under `upper` (with `work`,
    /// overlayfs's scratch directory), mounted on the target.
    Overlay {
        /// The layers' directories, top first.
        lower: Vec<PathBuf>,
        /// The container's writable layer.
        upper: PathBuf,
        /// overlayfs's work directory, on `upper`'s file system.
        work: PathBuf,
    },
    /// A host directory, bound onto itself (`--rootfs PATH`).
    Host,
}

/// One of the container's mounts, as the daemon resolved it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// Bind (a host path or a volume's directory) or tmpfs.
    pub kind: crate::supervisor::rules::mounts::Kind,
    /// The host path bound (nothing for a tmpfs).
    pub source: PathBuf,
    /// The path inside.
    pub destination: PathBuf,
    /// Read-only.
    pub read_only: bool,
    /// A volume still empty gets the root's content at the destination first (Docker's
    /// copy-up), owner, mode and times kept.
    pub copy_up: bool,
    /// A tmpfs's options (`size=1m,mode=1770`, flag words too).
    pub tmpfs: String,
}

/// The root to make.
#[derive(Debug, Clone)]
pub struct Root {
    /// Where the root is (the overlay's mount point, or the host directory).
    pub target: PathBuf,
    /// What it is made of.
    pub source: Source,
    /// The directory with `hosts`, `hostname`, `resolv.conf` to bind over `/etc`'s.
    pub files: Option<PathBuf>,
    /// Binds, volumes and tmpfs mounts, in the order given (a parent before its children).
    pub mounts: Vec<Mount>,
    /// `/dev/shm`'s size in bytes.
    pub shm_size: u64,
    /// The container's cgroup, mounted under `/sys/fs/cgroup` (name, host directory).
    pub cgroups: Vec<(String, PathBuf)>,
    /// `--privileged`: the host's devices, `/sys` writable, nothing masked.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
}

type Result<T> = std::result::Result<T, String>;

fn none() -> Option<&'static str> {
    None
}

fn mount_at(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(source, target, fstype, flags, data)
        .map_err(|e| format!("mounting {} on {}: {e}", source.unwrap_or("?"), target.display()))
}

/// `root` + an absolute container path.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// `path` inside `root` with the image's symbolic links followed as they would be inside the
/// container (an absolute link starts again at `root`, `..` stops at it), as runc's
/// `securejoin`: a link in an image cannot send a mount or a copy-up to the host's files.
pub fn secure_join(root: &Path, path: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&done);
        here.push(&part);
        match fs::read_link(&here) {
            Ok(target) => {
                links += 1;
                if links > 40 {
                    return Err(format!("{}: too many levels of symbolic links", path.display()));
                }
                if target.is_absolute() {
                    done.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Err(_) => done.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

/// Makes the container's root at `root.target` and moves into it (the caller is in its own
/// mount namespace, with its mounts private).
pub fn enter(root: &Root) -> Result<()> {
    let target = &root.target;
    match &root.source {
        Source::Overlay { lower, upper, work } => mount_overlay(target, lower, upper, work)?,
        // The host's own root: mounted over in place (it cannot be pivoted into).
        Source::Host if target == Path::new("/") => nodev_under(target)?,
        Source::Host => {
            mount_at(
                Some(&target.to_string_lossy()),
                target,
                none(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                none(),
            )?;
            nodev_under(target)?;
        }
    }
    let sub = |p: &str| under(target, Path::new(p));
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    dir(&sub("/proc"))?;
    mount_at(Some("proc"), &sub("/proc"), Some("proc"), nosuid_nodev_noexec, none())?;
    make_dev(target, root.privileged, root.shm_size)?;
    dir(&sub("/sys"))?;
    let sys_flags = if root.privileged {
        nosuid_nodev_noexec
    } else {
        nosuid_nodev_noexec | MsFlags::MS_RDONLY
    };
    // sysfs needs a network namespace of one's own; without (`--network host`), the host's
    // /sys is bound instead, as runc does.
    if mount(Some("sysfs"), &sub("/sys"), Some("sysfs"), sys_flags, none()).is_err() {
        mount_at(Some("/sys"), &sub("/sys"), none(), MsFlags::MS_BIND | MsFlags::MS_REC, none())?;
        if !root.privileged {
            remount_read_only(&sub("/sys"))?;
        }
    }
    mount_cgroups(&sub("/sys/fs/cgroup"), &root.cgroups, root.privileged)?;
    if let Some(files) = &root.files {
        for name in ["hosts", "hostname", "resolv.conf"] {
            let inside = sub(&format!("/etc/{name}"));
            file(&inside)?;
            bind(&files.join(name), &inside, false)?;
        }
    }
    for m in &root.mounts {
        mount_one(target, m)?;
    }
    std::env::set_current_dir(target).map_err(|e| format!("{}: {e}", target.display()))?;
    if target == Path::new("/") {
        return Ok(());
    }
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Mounts the overlay of `lower` (top first) under `upper` on `target`, `nodev`: no device
/// node on it can be opened (without a devices cgroup, this is what keeps a node made with
/// CAP_MKNOD, which Docker keeps, from reaching the host's devices). Changes the working
/// directory (of the calling thread, if it has its own).
pub fn mount_overlay(target: &Path, lower: &[PathBuf], upper: &Path, work: &Path) -> Result<()> {
    // Relative lower directories keep the options short: one page holds them all.
    let base = lower.first().and_then(|l| l.parent()).unwrap_or(Path::new("/"));
    let names: Vec<String> = lower
        .iter()
        .map(|l| match l.parent() == Some(base) {
            true => l.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            false => l.display().to_string(),
        })
        .collect();
    std::env::set_current_dir(base).map_err(|e| format!("{}: {e}", base.display()))?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        names.join(":"),
        upper.display(),
        work.display()
    );
    mount_at(Some("overlay"), target, Some("overlay"), MsFlags::MS_NODEV, Some(&data))
}

/// Binds `source` over `destination` inside `root` (links followed inside the root), the
/// file or directory to mount on made if missing, read-only if asked.
pub fn bind_over(root: &Path, source: &Path, destination: &Path, read_only: bool) -> Result<()> {
    let inside = secure_join(root, destination)?;
    if source.is_dir() {
        dir(&inside)?
    } else {
        file(&inside)?
    }
    bind(source, &inside, read_only)
}

/// An empty file at `path` inside `root` (links followed inside the root), if nothing is
/// there: what the container's start makes to mount its hosts files on.
pub fn stub_file(root: &Path, path: &Path) -> Result<()> {
    file(&secure_join(root, path)?)
}

/// The container's own cgroup at `at` (its `/sys/fs/cgroup`), as runc mounts it: on cgroup v1
/// a tmpfs (`mode=755`) with each hierarchy's directory of the container's cgroup bound on
/// `at/NAME` (read-only unless privileged), and for a hierarchy of several controllers
/// (`cpu,cpuacct`) a link by each controller's name; on v2 the one directory bound on `at`.
/// The container sees its limits where programs look for them (a JVM, Go's automaxprocs, `free`
/// in some images), and no other container's cgroup.
fn mount_cgroups(at: &Path, cgroups: &[(String, PathBuf)], privileged: bool) -> Result<()> {
    if cgroups.is_empty() || !at.is_dir() {
        return Ok(());
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let bound = |host: &Path, inside: &Path| -> Result<()> {
        bind(host, inside, false)?;
        let mut again = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
        if !privileged {
            again |= MsFlags::MS_RDONLY;
        }
        mount_at(None, inside, none(), again, none())
    };
    if let [(name, host)] = cgroups
        && name.is_empty()
    {
        return bound(host, at);
    }
    mount_at(Some("tmpfs"), at, Some("tmpfs"), flags, Some("mode=755"))?;
    for (name, host) in cgroups.iter().filter(|(n, _)| !n.is_empty() && !n.contains('/')) {
        if !host.is_dir() {
            continue;
        }
        let inside = at.join(name);
        dir(&inside)?;
        bound(host, &inside)?;
        if name.contains(',') {
            for part in name.split(',').filter(|p| !p.is_empty()) {
                let link = at.join(part);
                if !link.exists() {
                    std::os::unix::fs::symlink(name, &link)
                        .map_err(|e| format!("linking {}: {e}", link.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// One mount of the container under `target`.
pub fn mount_one(target: &Path, m: &Mount) -> Result<()> {
    use crate::supervisor::rules::mounts::{Kind, tmpfs_flags};
    let inside = secure_join(target, &m.destination)?;
    if m.kind == Kind::Tmpfs {
        let (words, data) = tmpfs_flags(&m.tmpfs)?;
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        for w in &words {
            match w.as_str() {
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rw" => flags &= !MsFlags::MS_RDONLY,
                "exec" => flags &= !MsFlags::MS_NOEXEC,
                "suid" => flags &= !MsFlags::MS_NOSUID,
                "dev" => flags &= !MsFlags::MS_NODEV,
                "noatime" => flags |= MsFlags::MS_NOATIME,
                "strictatime" => flags |= MsFlags::MS_STRICTATIME,
                "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
                "dirsync" => flags |= MsFlags::MS_DIRSYNC,
                _ => {}
            }
        }
        if m.read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        // Docker's tmpfs takes the mode of a directory the image has there.
        let mut data = data.join(",");
        if !data.split(',').any(|o| o.starts_with("mode="))
            && let Ok(meta) = fs::metadata(&inside)
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = format!("mode={:o}", meta.permissions().mode() & 0o7777);
            data = if data.is_empty() { mode } else { format!("{data},{mode}") };
        }
        dir(&inside)?;
        let data = Some(data.as_str()).filter(|d| !d.is_empty());
        return mount_at(Some("tmpfs"), &inside, Some("tmpfs"), flags, data);
    }
    if m.copy_up {
        copy_up(&inside, &m.source)?;
    }
    bind_over(target, &m.source, &m.destination, m.read_only)
}

/// Docker's copy-up: a volume that is still empty gets what the root has at its path (the
/// directory's own owner, mode and times, then its content).
fn copy_up(from: &Path, volume: &Path) -> Result<()> {
    let empty = fs::read_dir(volume).map(|mut d| d.next().is_none()).unwrap_or(false);
    let Ok(meta) = fs::symlink_metadata(from) else {
        return Ok(());
    };
    if !empty || !meta.is_dir() {
        return Ok(());
    }
    copy_tree(from, volume).map_err(|e| format!("copying {} to the volume: {e}", from.display()))
}

/// Copies the content of directory `from` into `to`, then `from`'s owner, mode and times onto
/// `to`: files, directories and symbolic links (devices, fifos and sockets are skipped).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
            continue;
        }
        if kind.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        keep_owner_and_times(&dst, &meta)?;
    }
    keep_owner_and_times(to, &fs::symlink_metadata(from)?)
}

/// `meta`'s owner and times onto `path` (a link itself, not what it points to).
fn keep_owner_and_times(path: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    // chown clears set-uid bits: the mode is given again for files and directories.
    if !meta.file_type().is_symlink() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let atime = TimeSpec::new(meta.atime(), meta.atime_nsec());
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    utimensat(nix::fcntl::AT_FDCWD, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(std::io::Error::from)
}

/// Masks Docker's paths (unless privileged) and, with `--read-only`, remounts the root
/// read-only: once the container's own settings (`/proc/sys`) are written.
pub fn finish(root: &Root) -> Result<()> {
    if !root.privileged {
        mask()?;
    }
    if root.read_only {
        remount_read_only(Path::new("/"))?;
    }
    Ok(())
}

/// A directory at `path` (and its parents), if none is there.
fn dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

/// A file at `path` to mount over, if nothing is there.
fn file(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        dir(parent)?;
    }
    fs::File::create(path).map(drop).map_err(|e| format!("creating {}: {e}", path.display()))
}

fn bind(src: &Path, dst: &Path, read_only: bool) -> Result<()> {
    let src_s = src.to_string_lossy();
    mount_at(Some(&src_s), dst, none(), MsFlags::MS_BIND | MsFlags::MS_REC, none())?;
    if read_only {
        remount_read_only(dst)?;
    }
    Ok(())
}

/// The flags of the mount at `path` a bind remount must give again to keep them (and
/// read-only, which a remount would otherwise drop).
fn kept_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    let mut m = MsFlags::empty();
    for (v, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if st.flags().contains(v) {
            m |= ms;
        }
    }
    m
}

/// Remounts the bind mount at `path` read-only, keeping its other flags.
fn remount_read_only(path: &Path) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(path);
    mount(none(), path, none(), flags, none())
        .map_err(|e| format!("making {} read-only: {e}", path.display()))
}

/// The container's `/dev`: Docker's minimal one, or with `privileged` the host's.
fn make_dev(root: &Path, privileged: bool, shm_size: u64) -> Result<()> {
    let dev = under(root, Path::new("/dev"));
    dir(&dev)?;
    if privileged {
        return bind(Path::new("/dev"), &dev, false);
    }
    // The host's nodes, taken before the tmpfs goes over /dev (with `--rootfs /` it is the
    // same /dev), then put one by one on a `nodev` tmpfs: a node made there (CAP_MKNOD)
    // cannot be opened.
    let mut nodes = Vec::new();
    for name in DEVICES {
        let host = std::ffi::CString::new(format!("/dev/{name}")).unwrap_or_default();
        let tree = crate::sys::open_tree(&host, libc::OPEN_TREE_CLONE as libc::c_uint)
            .map_err(|e| format!("/dev/{name}: {e}"))?;
        nodes.push((name, tree));
    }
    mount_at(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, tree) in &nodes {
        let path = dev.join(name);
        file(&path)?;
        let target = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{}: a NUL byte", path.display()))?;
        use std::os::fd::AsFd;
        crate::sys::move_mount(tree.as_fd(), &target, libc::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| format!("/dev/{name}: {e}"))?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        symlink(to, dev.join(name)).map_err(|e| format!("/dev/{name}: {e}"))?;
    }
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    dir(&dev.join("pts"))?;
    mount_at(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        nosuid_noexec,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    dir(&dev.join("shm"))?;
    mount_at(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        nosuid_noexec | MsFlags::MS_NODEV,
        Some(
            format!("mode=1777,size={}", if shm_size == 0 { SHM_DEFAULT } else { shm_size })
                .as_str(),
        ),
    )?;
    dir(&dev.join("mqueue"))?;
    mount_at(
        Some("mqueue"),
        &dev.join("mqueue"),
        Some("mqueue"),
        nosuid_noexec | MsFlags::MS_NODEV,
        none(),
    )
}

/// Remounts every mount at or under `top` `nodev` (keeping its other flags), so no device
/// node on them can be opened; `top/dev` and what is under it are left alone.
fn nodev_under(top: &Path) -> Result<()> {
    let info = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("mountinfo: {e}"))?;
    for line in info.lines() {
        // Field 5 is the mount point (octal escapes for spaces and the like).
        let Some(point) = line.split(' ').nth(4) else { continue };
        let point = unescape(point);
        let path = Path::new(&point);
        // The host's /dev stays as it is: the container's own goes over it, its nodes taken
        // from there.
        if !path.starts_with(top) || path.starts_with(top.join("dev")) {
            continue;
        }
        let kept = kept_flags(path);
        // A mount that cannot be remounted (an overmounted one) is left as it is.
        let _ = mount(
            none(),
            path,
            none(),
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | kept,
            none(),
        );
    }
    Ok(())
}

/// A mount point as mountinfo escapes it (`\040` for a space), unescaped.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker's masked and read-only paths, inside the container (after `pivot_root`), each one
/// only if the kernel has it.
fn mask() -> Result<()> {
    for path in MASKED.iter().map(Path::new) {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                mount_at(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, none())?
            }
            Ok(_) => bind(Path::new("/dev/null"), path, false)?,
            Err(_) => {}
        }
    }
    for path in READ_ONLY.iter().map(Path::new) {
        if fs::symlink_metadata(path).is_ok() {
            bind(path, path, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_the_image_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("cproxy-sj-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("real")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../real", root.join("rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let j = |p: &str| secure_join(&root, Path::new(p));
        assert_eq!(j("/abs/x").unwrap(), root.join("etc/x"));
        assert_eq!(j("/rel/y").unwrap(), root.join("real/y"));
        assert_eq!(j("/../../z").unwrap(), root.join("z"));
        assert!(j("/loop/a").unwrap_err().contains("too many levels"));
        let _ = fs::remove_dir_all(&root);
    }
}
