//! `docker cp` and `docker export` on the filesystem: a container's root as dockerd sees it
//! (its root filesystem, with its volumes, binds and hosts files mounted over it), entered by a
//! thread of its own; tars written as moby's `pkg/archive` writes them (Go's headers), and
//! extracted as its `Unpack` extracts them.
//!
//! The view ([`in_view`]) is made by a dedicated thread in a mount namespace of its own
//! (`unshare(CLONE_FS | CLONE_NEWNS)`, every mount private): the image's layers and the
//! container's writable layer mounted as an overlay (a stopped container), or a copy of the
//! running container's root mount taken in its own mount namespace (`open_tree`, not its
//! `/proc`, `/dev` or tmpfs mounts), or a `--rootfs` directory; then the binds. The thread
//! `chroot`s into it, so every path the work follows (a link in the container, `..`) stays
//! in the container's root, as dockerd's `docker-tar`/`docker-untar` children do. Nothing is
//! mounted in the daemon's namespace; the thread unmounts what it mounted when the work is
//! done, and its namespace goes with it whatever happens.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::supervisor::rules::archive::{clean, tar_name};

/// What the container's root is made of.
#[derive(Debug, Clone)]
pub enum RootSource {
    /// A stopped container of an image: the layers (top first) under its writable layer.
    Overlay {
        /// The layers' directories, top first.
        lower: Vec<PathBuf>,
        /// The writable layer.
        upper: PathBuf,
        /// overlayfs's work directory.
        work: PathBuf,
    },
    /// A running container: the mount at `/` in the mount namespace of process `pid`.
    Running {
        /// Its init's PID.
        pid: i32,
    },
    /// A host directory (`--rootfs PATH`).
    Host(PathBuf),
}

/// One bind over the root: a volume, a host path, a hosts file.
#[derive(Debug, Clone)]
pub struct Bind {
    /// The host path.
    pub source: PathBuf,
    /// The path inside.
    pub destination: PathBuf,
    /// Read-only.
    pub read_only: bool,
}

/// A container's filesystem as the archive routes see it.
#[derive(Debug, Clone)]
pub struct View {
    /// The root.
    pub root: RootSource,
    /// The binds, parents first.
    pub binds: Vec<Bind>,
    /// Empty files made in the root if missing, before the binds (what Docker's init layer
    /// has from create on: `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`).
    pub stubs: Vec<PathBuf>,
    /// An empty directory of the daemon's to mount on (in the thread's namespace only).
    pub mountpoint: PathBuf,
}

fn os_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Runs `work` on a thread of its own, chrooted into `view` (see the module's comment); the
/// handle gives its result, or why the view could not be made.
pub fn in_view<T: Send + 'static>(
    view: View,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_FS).map_err(|e| os_err("unshare", e))?;
        let tree = match &view.root {
            RootSource::Running { pid } => Some(clone_root_of(*pid)?),
            _ => None,
        };
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| os_err("unshare", e))?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| os_err("making the mounts private", e))?;
        let target = &view.mountpoint;
        match (&view.root, tree) {
            (RootSource::Overlay { lower, upper, work }, _) => {
                crate::supervisor::os::rootfs::mount_overlay(target, lower, upper, work)?
            }
            (RootSource::Running { .. }, Some(tree)) => {
                let c = CString::new(target.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
                crate::sys::move_mount(tree.as_fd(), &c, libc::MOVE_MOUNT_F_EMPTY_PATH)
                    .map_err(|e| os_err("attaching the container's root", e))?;
            }
            (RootSource::Host(dir), _) => {
                mount(Some(dir), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| os_err("binding the root", e))?
            }
            (RootSource::Running { .. }, None) => return Err("no root".into()),
        }
        for stub in &view.stubs {
            crate::supervisor::os::rootfs::stub_file(target, stub)?;
        }
        for b in &view.binds {
            crate::supervisor::os::rootfs::bind_over(
                target,
                &b.source,
                &b.destination,
                b.read_only,
            )?;
        }
        let host_root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| os_err("/", e))?;
        std::env::set_current_dir(target).map_err(|e| os_err("chdir", e))?;
        nix::unistd::chroot(".").map_err(|e| os_err("chroot", e))?;
        std::env::set_current_dir("/").map_err(|e| os_err("chdir", e))?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // Out of the container's root, and everything mounted here unmounted (the namespace
        // would take it with the thread anyway, a moment later).
        let _ = nix::unistd::fchdir(host_root.as_fd());
        let _ = nix::unistd::chroot(".");
        let _ = umount2(target, MntFlags::MNT_DETACH);
        result.map_err(|_| "the archive's work panicked".to_string())
    })
}

/// A detached copy of the mount at `/` in process `pid`'s mount namespace (that mount alone:
/// not what is mounted under it); the thread comes back to its own namespace.
fn clone_root_of(pid: i32) -> Result<OwnedFd, String> {
    let own = fs::File::open("/proc/thread-self/ns/mnt").map_err(|e| os_err("own namespace", e))?;
    let theirs = fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| os_err("the container's mount namespace", e))?;
    setns(theirs.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| os_err("entering the container's mount namespace", e))?;
    let tree = crate::sys::open_tree(c"/", libc::OPEN_TREE_CLONE as libc::c_uint);
    setns(own.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| os_err("leaving the container's mount namespace", e))?;
    tree.map_err(|e| os_err("cloning the container's root", e))
}

/// User and group names by ID, as Go's `os/user` reads `/etc/passwd` and `/etc/group` (the
/// names in the tar's headers).
#[derive(Debug, Default, Clone)]
pub struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    /// Reads `/etc/passwd` and `/etc/group` (of whatever root the caller is in).
    pub fn read() -> Names {
        let table = |path: &str| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let mut map = HashMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if let (Some(name), Some(id)) = (f.first(), f.get(2).and_then(|i| i.parse().ok())) {
                    map.entry(id).or_insert_with(|| (*name).to_string());
                }
            }
            map
        };
        Names { users: table("/etc/passwd"), groups: table("/etc/group") }
    }
}

/// Writes a tar as moby's `TarWithOptions` does, with Go's headers; remembers hard links.
pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    names: Names,
    seen: HashMap<(u64, u64), String>,
}

/// Go's `formatOctal`: zero-padded, NUL-terminated.
fn octal(dst: &mut [u8], v: u64) -> bool {
    let s = format!("{v:o}");
    if s.len() >= dst.len() {
        return false;
    }
    let end = dst.len() - 1;
    let pad = end - s.len();
    dst[..pad].fill(b'0');
    dst[pad..end].copy_from_slice(s.as_bytes());
    dst[end] = 0;
    true
}

/// Go's `formatString`: the bytes, NUL-terminated if shorter than the field.
fn field(dst: &mut [u8], s: &[u8]) {
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s[..n]);
    if n < dst.len() {
        dst[n] = 0;
    }
}

/// Go's `splitUSTARPath`: a long ASCII name as prefix and name.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    let len = name.len();
    if len <= 100 || !name.is_ascii() {
        return None;
    }
    let mut l = len.min(156);
    if l == len && name.as_bytes()[l - 1] == b'/' {
        l -= 1;
    }
    let i = name[..l].rfind('/')?;
    let (plen, nlen) = (i, len - i - 1);
    (i > 0 && nlen <= 100 && nlen > 0 && plen <= 155).then(|| (&name[..i], &name[i + 1..]))
}

/// One entry's header fields, as Go's `tar.FileInfoHeader` fills them for moby.
struct Entry {
    name: String,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    kind: u8,
    link: String,
    uname: String,
    gname: String,
    dev: (u64, u64),
}

/// Fills a block's common fields (the checksum last, as Go writes it: six digits, NUL,
/// space); false if a number does not fit.
fn fill(h: &mut tar::Header, e: &Entry, name: &str, prefix: &str) -> bool {
    let u = h.as_ustar_mut().expect("a ustar header");
    field(&mut u.name, name.as_bytes());
    let mut fits = octal(&mut u.mode, e.mode)
        & octal(&mut u.uid, e.uid)
        & octal(&mut u.gid, e.gid)
        & octal(&mut u.size, e.size)
        & octal(&mut u.mtime, e.mtime);
    u.typeflag = [e.kind];
    field(&mut u.linkname, e.link.as_bytes());
    field(&mut u.uname, e.uname.as_bytes());
    field(&mut u.gname, e.gname.as_bytes());
    fits &= octal(&mut u.dev_major, e.dev.0) & octal(&mut u.dev_minor, e.dev.1);
    field(&mut u.prefix, prefix.as_bytes());
    fits
}

fn checksum(h: &mut tar::Header) {
    let bytes = h.as_old_mut();
    bytes.cksum = [b' '; 8];
    let sum: u64 = h.as_bytes().iter().map(|b| u64::from(*b)).sum();
    let ck = &mut h.as_old_mut().cksum;
    octal(&mut ck[..7], sum);
    ck[7] = b' ';
}

impl<W: Write> TarWriter<W> {
    /// A writer into `out`, user and group names from `names`.
    pub fn new(out: W, names: Names) -> TarWriter<W> {
        TarWriter { builder: tar::Builder::new(out), names, seen: HashMap::new() }
    }

    /// Writes the header of `e` (USTAR when it fits, else a PAX record block first, as Go's
    /// writer chooses) and `data`.
    fn write_entry(&mut self, e: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        let fits_name = e.name.len() <= 100 && e.name.is_ascii();
        let split = if fits_name { None } else { split_ustar(&e.name) };
        let (name, prefix) = split.unwrap_or((e.name.as_str(), ""));
        let link_fits = e.link.len() <= 100 && e.link.is_ascii();
        let names_fit = [&e.uname, &e.gname].iter().all(|n| n.len() <= 32 && n.is_ascii());
        let numbers_fit = fill(&mut h, e, name, prefix);
        if (fits_name || split.is_some()) && link_fits && names_fit && numbers_fit {
            checksum(&mut h);
            return self.builder.append(&h, data);
        }
        // PAX: the records (sorted by key), in an `x` entry named as Go names it.
        let mut records: Vec<(&str, String)> = Vec::new();
        if !e.gname.is_ascii() || e.gname.len() > 32 {
            records.push(("gname", e.gname.clone()));
        }
        if e.gid > 0o7777777 {
            records.push(("gid", e.gid.to_string()));
        }
        if !link_fits {
            records.push(("linkpath", e.link.clone()));
        }
        if !fits_name {
            records.push(("path", e.name.clone()));
        }
        if e.size > 0o77777777777 {
            records.push(("size", e.size.to_string()));
        }
        if e.uid > 0o7777777 {
            records.push(("uid", e.uid.to_string()));
        }
        if !e.uname.is_ascii() || e.uname.len() > 32 {
            records.push(("uname", e.uname.clone()));
        }
        let mut body = Vec::new();
        for (k, v) in &records {
            // "%d %s=%s\n", the length counting itself.
            let rest = k.len() + v.len() + 3;
            let mut n = rest + rest.to_string().len();
            if n.to_string().len() != (n - rest) {
                n = rest + n.to_string().len();
            }
            body.extend(format!("{n} {k}={v}\n").into_bytes());
        }
        let (d, f) = crate::supervisor::rules::archive::split(&e.name);
        let mut pax_name = clean(&format!("{d}PaxHeaders.0/{f}"));
        pax_name = ascii(&pax_name);
        pax_name.truncate(100);
        let pax_name = pax_name.trim_end_matches('/').to_string();
        let mut x = tar::Header::new_ustar();
        let px = Entry {
            name: String::new(),
            mode: 0,
            uid: 0,
            gid: 0,
            size: body.len() as u64,
            mtime: 0,
            kind: b'x',
            link: String::new(),
            uname: String::new(),
            gname: String::new(),
            dev: (0, 0),
        };
        fill(&mut x, &px, &pax_name, "");
        // Go's raw file leaves the name-only fields empty (no devices, no owner names).
        let u = x.as_ustar_mut().expect("a ustar header");
        u.dev_major = [0; 8];
        u.dev_minor = [0; 8];
        checksum(&mut x);
        self.builder.append(&x, body.as_slice())?;
        let mut main = tar::Header::new_ustar();
        let size = if e.size > 0o77777777777 { 0 } else { e.size };
        let shown = Entry {
            name: String::new(),
            mode: e.mode,
            uid: if e.uid > 0o7777777 { 0 } else { e.uid },
            gid: if e.gid > 0o7777777 { 0 } else { e.gid },
            size,
            mtime: e.mtime,
            kind: e.kind,
            link: ascii(&e.link),
            uname: ascii(&e.uname),
            gname: ascii(&e.gname),
            dev: e.dev,
        };
        fill(&mut main, &shown, &ascii(&e.name), "");
        if size != e.size {
            // The real size is the record's; the header's field stays 0, the data follows.
            main.as_ustar_mut().expect("a ustar header").size = *b"00000000000\0";
        }
        checksum(&mut main);
        // `append` writes the header as it is, then the data padded to a block.
        let mut taken = data.take(e.size);
        self.builder.get_mut().write_all(main.as_bytes())?;
        let copied = io::copy(&mut taken, self.builder.get_mut())?;
        pad(self.builder.get_mut(), e.size, copied)
    }

    /// Adds the file at `path` (not followed if a link) as `name` (moby's `addTarFile`); a
    /// socket is skipped, as Go's tar cannot hold one.
    pub fn add(&mut self, path: &Path, name: &str) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        let ft = meta.file_type();
        let (kind, type_bits) = match () {
            () if ft.is_dir() => (b'5', 0o040000),
            () if ft.is_symlink() => (b'2', 0o120000),
            () if ft.is_char_device() => (b'3', 0o020000),
            () if ft.is_block_device() => (b'4', 0o060000),
            () if ft.is_fifo() => (b'6', 0o010000),
            () if ft.is_socket() => return Ok(()),
            () => (b'0', 0o100000),
        };
        let link = if ft.is_symlink() {
            fs::read_link(path)?.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let rdev = meta.rdev();
        let dev = if ft.is_char_device() || ft.is_block_device() {
            (
                u64::from(nix::sys::stat::major(rdev) as u32),
                u64::from(nix::sys::stat::minor(rdev) as u32),
            )
        } else {
            (0, 0)
        };
        let mut e = Entry {
            name: tar_name(name, ft.is_dir()),
            mode: u64::from(meta.mode() & 0o7777) | type_bits,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: if kind == b'0' { meta.len() } else { 0 },
            mtime: u64::try_from(meta.mtime()).unwrap_or(0),
            kind,
            link,
            uname: self.names.users.get(&meta.uid()).cloned().unwrap_or_default(),
            gname: self.names.groups.get(&meta.gid()).cloned().unwrap_or_default(),
            dev,
        };
        if !ft.is_dir() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match self.seen.get(&key) {
                Some(first) => {
                    e.kind = b'1';
                    e.link = first.clone();
                    e.size = 0;
                }
                None => {
                    self.seen.insert(key, e.name.clone());
                }
            }
        }
        if e.kind == b'0' && e.size > 0 {
            let mut file = fs::File::open(path)?;
            self.write_entry(&e, &mut file)
        } else {
            self.write_entry(&e, &mut io::empty())
        }
    }

    /// Adds the entry of an overlay upper directory at `path` as `name`, as moby's overlay
    /// whiteout converter writes a layer (`overlayWhiteoutConverter.ConvertWrite`): a 0/0
    /// character device (a whiteout) becomes the empty regular file `.wh.NAME` (mode 0600,
    /// the device's owner and time); an opaque directory (`trusted.overlay.opaque` = `y`) is
    /// followed by the empty file `NAME/.wh..wh..opq` with the directory's permissions and
    /// owner and a zero time. Anything else is [`TarWriter::add`].
    pub fn add_overlay(&mut self, path: &Path, name: &str) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        let ft = meta.file_type();
        let owner = |w: &Self| {
            (
                w.names.users.get(&meta.uid()).cloned().unwrap_or_default(),
                w.names.groups.get(&meta.gid()).cloned().unwrap_or_default(),
            )
        };
        let empty_file = |name: String, mode: u64, mtime: u64, (uname, gname)| Entry {
            name,
            mode,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: 0,
            mtime,
            kind: b'0',
            link: String::new(),
            uname,
            gname,
            dev: (0, 0),
        };
        if ft.is_char_device() && meta.rdev() == 0 {
            let (dir, file) = crate::supervisor::rules::archive::split(name);
            let e = empty_file(
                format!("{dir}{WHITEOUT_PREFIX}{file}"),
                0o600,
                u64::try_from(meta.mtime()).unwrap_or(0),
                owner(self),
            );
            return self.write_entry(&e, &mut io::empty());
        }
        self.add(path, name)?;
        if ft.is_dir() && is_opaque(path) {
            let marker = format!("{}/{OPAQUE_MARKER}", name.trim_end_matches('/'));
            let e = empty_file(marker, u64::from(meta.mode() & 0o777), 0, owner(self));
            self.write_entry(&e, &mut io::empty())?;
        }
        Ok(())
    }

    /// Adds `path` and, if a directory, everything under it in Go's `filepath.Walk` order
    /// (names sorted), named `top` and `top/…`; `skip_top`: the top itself is left out
    /// (`export`'s root). A file that cannot be read is skipped, as moby logs and skips it.
    pub fn add_tree(&mut self, path: &Path, top: &str, skip_top: bool) -> io::Result<()> {
        if !skip_top {
            self.add(path, top)?;
        }
        let meta = fs::symlink_metadata(path)?;
        if !meta.is_dir() {
            return Ok(());
        }
        let Ok(entries) = fs::read_dir(path) else { return Ok(()) };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let child = path.join(&n);
            let n = n.to_string_lossy();
            let name = match () {
                () if skip_top => n.into_owned(),
                () if top.is_empty() => format!("/{n}"),
                () => format!("{top}/{n}"),
            };
            match self.add_tree(&child, &name, false) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends the tar (two zero blocks) and gives the writer back.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// The prefix of a whiteout's name in a layer tar (moby's `WhiteoutPrefix`).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name of an opaque directory's marker in a layer tar (moby's `WhiteoutOpaqueDir`).
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Whether the directory at `dir` is an opaque overlay directory (`trusted.overlay.opaque`
/// is `y`): it hides what the layers below have there.
pub fn is_opaque(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 2];
    // SAFETY: both strings are NUL-terminated and live across the call; `value` is writable
    // for the length given.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// `s` with every non-ASCII byte dropped (Go's `toASCII` keeps only ASCII).
fn ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii).collect()
}

/// Pads an entry's data to its declared size and to the block.
fn pad(out: &mut dyn Write, size: u64, copied: u64) -> io::Result<()> {
    let zeros = [0u8; 512];
    let mut left = size.saturating_sub(copied) + (512 - size % 512) % 512;
    while left > 0 {
        let n = left.min(512) as usize;
        out.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Chunks of a tar on their way (to the API's client, or to the daemon).
pub type Chunks = tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>;

/// A writer into [`Chunks`] from a thread that may block: 256 KiB at a time.
pub struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    /// A writer and what it sends to.
    pub fn channel() -> (ChunkWriter, Chunks) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        (ChunkWriter { tx, buf: Vec::new() }, rx)
    }

    /// Ends the stream with an error (the reader sees a cut stream).
    pub fn fail(&self, e: io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::ErrorKind::BrokenPipe.into())
    }
}

/// How [`untar`] extracts (moby's `TarOptions`).
#[derive(Debug, Clone, Default)]
pub struct UntarOptions {
    /// Refuse to replace a directory by a non-directory or the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Leave owners as they come (the client's side: not root, or not wanted).
    pub no_lchown: bool,
    /// Every entry owned by this user and group (`copyUIDGID` with a container user).
    pub chown: Option<(u32, u32)>,
    /// The first `.0` in each name replaced by `.1` (the docker CLI's
    /// `RebaseArchiveEntries`).
    pub rebase: Option<(String, String)>,
}

/// An extraction's failure, in moby's words.
pub fn untar_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "unexpected EOF".into(),
        // The tar crate's words for a short block.
        _ if e.to_string().contains("failed to read entire block") => "unexpected EOF".into(),
        io::ErrorKind::InvalidData if e.to_string().contains("checksum") => {
            "archive/tar: invalid tar header".into()
        }
        _ => {
            let text = e.to_string();
            match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
                None => text,
            }
        }
    }
}

/// Extracts the tar read from `input` into directory `dest` as moby's `Unpack` does: every
/// name cleaned and kept under `dest`, missing parents made (0755), what is there replaced
/// unless both are directories, links kept inside `dest`, owners (`lchown`), modes and times
/// applied (directories' times last).
pub fn untar(input: &mut dyn Read, dest: &Path, opts: UntarOptions) -> Result<(), String> {
    let mut archive = tar::Archive::new(input);
    let entries = archive.entries().map_err(|e| untar_words(&e))?;
    let mut dirs: Vec<(PathBuf, u64)> = Vec::new();
    let dest_s = dest.to_string_lossy().into_owned();
    for entry in entries {
        let mut entry = entry.map_err(|e| untar_words(&e))?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let raw = match &opts.rebase {
            Some((from, to)) => crate::supervisor::rules::archive::rebase_entry(&raw, from, to),
            None => raw,
        };
        let name = clean(&raw);
        let path_s = clean(&format!("{dest_s}/{name}"));
        let rel = relative(&dest_s, &path_s);
        if rel == ".." || rel.starts_with("../") {
            return Err(format!("{name:?} is outside of {dest_s:?}"));
        }
        let path = PathBuf::from(&path_s);
        if !name.ends_with('/') {
            let parent = path.parent().unwrap_or(dest);
            if fs::symlink_metadata(parent).is_err() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("mkdir {}: {}", parent.display(), untar_words(&e)))?;
            }
        }
        if let Ok(existing) = fs::symlink_metadata(&path) {
            let is_dir_entry = kind == tar::EntryType::Directory;
            if opts.no_overwrite_dir_non_dir && existing.is_dir() && !is_dir_entry {
                return Err(format!(
                    "cannot overwrite directory {path_s:?} with non-directory {dest_s:?}"
                ));
            }
            if opts.no_overwrite_dir_non_dir && !existing.is_dir() && is_dir_entry {
                return Err(format!(
                    "cannot overwrite non-directory {path_s:?} with directory {dest_s:?}"
                ));
            }
            if existing.is_dir() && name == "." {
                continue;
            }
            if !(existing.is_dir() && is_dir_entry) {
                let removed = if existing.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| format!("unlinkat {path_s}: {}", untar_words(&e)))?;
            }
        }
        let h = entry.header().clone();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().unwrap_or(0);
        let mut link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
        if let (Some((from, to)), tar::EntryType::Link) = (&opts.rebase, kind) {
            link = link.map(|l| crate::supervisor::rules::archive::rebase_entry(&l, from, to));
        }
        let fail = |what: &str, e: io::Error| format!("{what} {path_s}: {}", untar_words(&e));
        match kind {
            tar::EntryType::Directory => {
                if fs::symlink_metadata(&path).is_err() {
                    fs::create_dir(&path).map_err(|e| fail("mkdir", e))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| fail("open", e))?;
                io::copy(&mut entry, &mut f).map_err(|e| untar_words(&e))?;
            }
            tar::EntryType::Block | tar::EntryType::Char | tar::EntryType::Fifo => {
                let sflag = match kind {
                    tar::EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    tar::EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(
                    u64::from(h.device_major().ok().flatten().unwrap_or(0)),
                    u64::from(h.device_minor().ok().flatten().unwrap_or(0)),
                );
                nix::sys::stat::mknod(
                    &path,
                    sflag,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    dev,
                )
                .map_err(|e| fail("mknod", e.into()))?;
            }
            tar::EntryType::Link => {
                let target = clean(&format!("{dest_s}/{}", link.unwrap_or_default()));
                if !target.starts_with(&dest_s) {
                    return Err(format!(
                        "invalid hardlink {:?} -> {:?}",
                        target,
                        h.path().map(|p| p.display().to_string()).unwrap_or_default()
                    ));
                }
                fs::hard_link(&target, &path).map_err(|e| fail("link", e))?;
            }
            tar::EntryType::Symlink => {
                let link = link.unwrap_or_default();
                let parent =
                    path.parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                let target = clean(&format!("{parent}/{link}"));
                if !target.starts_with(&dest_s) {
                    return Err(format!("invalid symlink {path_s:?} -> {link:?}"));
                }
                std::os::unix::fs::symlink(&link, &path).map_err(|e| fail("symlink", e))?;
            }
            tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                continue;
            }
            other => {
                return Err(format!("unhandled tar header type {}\n", other.as_byte()));
            }
        }
        if !opts.no_lchown {
            let (uid, gid) = opts.chown.unwrap_or((
                u32::try_from(h.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(h.gid().unwrap_or(0)).unwrap_or(0),
            ));
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|e| fail("lchown", e))?;
        }
        let is_link = kind == tar::EntryType::Symlink;
        if !is_link {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| fail("chmod", e))?;
        }
        if kind == tar::EntryType::Directory {
            dirs.push((path, mtime));
        } else {
            set_times(&path, mtime, is_link);
        }
    }
    for (path, mtime) in dirs {
        set_times(&path, mtime, false);
    }
    Ok(())
}

/// Go's `filepath.Rel` for two clean absolute (or two clean relative) paths.
fn relative(base: &str, target: &str) -> String {
    let b: Vec<&str> = base.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let t: Vec<&str> = target.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; b.len() - common];
    parts.extend(&t[common..]);
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

/// Access and modification time `mtime` (a link's own, not its target's).
fn set_times(path: &Path, mtime: u64, link: bool) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
    let flag = if link { UtimensatFlags::NoFollowSymlink } else { UtimensatFlags::FollowSymlink };
    let _ = utimensat(nix::fcntl::AT_FDCWD, path, &t, &t, flag);
}

/// What is read of a request body after its reader took what it wanted (a tar's zero padding
/// after its end marker), as Go's HTTP server discards up to 256 KiB of an unread body.
pub const DRAIN_AFTER: u64 = 256 << 10;

/// Reads what is left of a request body: all of it after a failure, up to [`DRAIN_AFTER`]
/// after a success, so the client, still sending, gets the answer rather than a broken pipe
/// (`docker save | docker load` and `tar c | docker cp -` write padding after the end marker).
pub fn drain_body(body: &mut dyn Read, failed: bool) {
    let limit = if failed { u64::MAX } else { DRAIN_AFTER };
    let _ = io::copy(&mut body.take(limit), &mut io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(f: impl FnOnce(&mut TarWriter<Vec<u8>>)) -> Vec<u8> {
        let mut names = Names::default();
        names.users.insert(0, "root".into());
        names.groups.insert(0, "root".into());
        let mut w = TarWriter::new(Vec::new(), names);
        f(&mut w);
        w.finish().unwrap()
    }

    #[test]
    fn headers_as_gos_writer() {
        let dir = std::env::temp_dir().join(format!("cproxy-tarw-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        fs::write(&f, "hi\n").unwrap();
        std::os::unix::fs::chown(&f, Some(0), Some(0)).unwrap_or(());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
        set_times(&f, 946_684_800, false);
        let out = tar_of(|w| w.add(&f, "f").unwrap());
        // Recorded: tests/fixtures/docker-20.10-archive/api.txt (GET path=/d/f).
        let want: &[u8] =
            b"0104755\x000000000\x000000000\x0000000000003\x0007033241600\x00011220\x00 0";
        if nix::unistd::geteuid().is_root() {
            assert_eq!(&out[100..100 + want.len()], want);
            assert_eq!(&out[257..265], b"ustar\x0000");
            assert_eq!(&out[265..270], b"root\x00");
        }
        assert_eq!(out.len(), 2048);
        // A long name goes in a PAX record, as Go's writer puts it.
        let long = "x".repeat(120);
        let out = tar_of(|w| w.add(&f, &long).unwrap());
        assert_eq!(&out[..25], b"PaxHeaders.0/xxxxxxxxxxxx");
        let mut a = tar::Archive::new(out.as_slice());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_string_lossy(), long);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn untar_keeps_entries_inside() {
        let dir = std::env::temp_dir().join(format!("cproxy-untar-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("dest/s")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h.clone(), "sub/f", &b"abc"[..]).unwrap();
        let ok = b.into_inner().unwrap();
        let dest = dir.join("dest");
        untar(&mut ok.as_slice(), &dest, UntarOptions { no_lchown: true, ..Default::default() })
            .unwrap();
        assert_eq!(fs::read(dest.join("sub/f")).unwrap(), b"abc");
        // `s` is a directory: a file over it is refused with noOverwriteDirNonDir.
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut h.clone(), "s", &b"abc"[..]).unwrap();
        let over = b.into_inner().unwrap();
        let opts =
            UntarOptions { no_lchown: true, no_overwrite_dir_non_dir: true, ..Default::default() };
        let err = untar(&mut over.as_slice(), &dest, opts).unwrap_err();
        assert!(err.starts_with("cannot overwrite directory"), "{err}");
        // `..` out of the destination.
        let mut raw = ok.clone();
        raw[..5].copy_from_slice(b"../..");
        let mut hdr = tar::Header::from_byte_slice(&raw[..512]).clone();
        hdr.set_cksum();
        raw[..512].copy_from_slice(hdr.as_bytes());
        let err = untar(&mut raw.as_slice(), &dest, UntarOptions::default()).unwrap_err();
        assert!(err.contains("is outside of"), "{err}");
        assert_eq!(
            untar(&mut &b"junk"[..], &dest, UntarOptions::default()).unwrap_err(),
            "unexpected EOF"
        );
        assert_eq!(relative("/a", "/a/b"), "b");
        assert_eq!(relative("/a/b", "/a"), "..");
        let _ = fs::remove_dir_all(&dir);
    }
}
