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

/// The root to make.
#[derive(Debug, Clone)]
pub struct Root {
    /// Where the root is (the overlay's mount point, or the host directory).
    pub target: PathBuf,
    /// What it is made of.
    pub source: Source,
    /// The directory with `hosts`, `hostname`, `resolv.conf` to bind over `/etc`'s.
    pub files: Option<PathBuf>,
    /// `(host path, container path, read-only)` bind mounts.
    pub volumes: Vec<(PathBuf, PathBuf, bool)>,
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

/// Makes the container's root at `root.target` and moves into it (the caller is in its own
/// mount namespace, with its mounts private).
pub fn enter(root: &Root) -> Result<()> {
    let target = &root.target;
    match &root.source {
        Source::Overlay { lower, upper, work } => {
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
            // No device node on it can be opened: without a devices cgroup, this is what keeps
            // a node made with CAP_MKNOD (Docker keeps it) from reaching the host's devices.
            mount_at(Some("overlay"), target, Some("overlay"), MsFlags::MS_NODEV, Some(&data))?;
        }
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
    make_dev(target, root.privileged)?;
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
    if let Some(files) = &root.files {
        for name in ["hosts", "hostname", "resolv.conf"] {
            let inside = sub(&format!("/etc/{name}"));
            file(&inside)?;
            bind(&files.join(name), &inside, false)?;
        }
    }
    for (src, dst, ro) in &root.volumes {
        let inside = under(target, dst);
        if src.is_dir() {
            dir(&inside)?
        } else {
            file(&inside)?
        }
        bind(src, &inside, *ro)?;
    }
    std::env::set_current_dir(target).map_err(|e| format!("{}: {e}", target.display()))?;
    if target == Path::new("/") {
        return Ok(());
    }
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))
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
fn make_dev(root: &Path, privileged: bool) -> Result<()> {
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
        Some("mode=1777,size=65536k"),
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
