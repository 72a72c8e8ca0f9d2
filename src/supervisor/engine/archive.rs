//! `docker cp` and `docker export` in the daemon, as dockerd 20.10's `daemon/archive.go` and
//! `export.go` do them: a path's stat (`HEAD …/archive`), its tar (`GET`, event
//! `archive-path`), a tar extracted into a directory (`PUT`, `extract-to-dir`), the whole root
//! (`export`). Each runs on a thread of its own in the container's filesystem
//! ([`crate::supervisor::os::archive::in_view`]): its root with its volumes, binds and hosts
//! files over it (not for `export`, as dockerd's export has its layer alone), for a running
//! container and a stopped one alike, with the container's `op` lock held (no start, stop or
//! remove meanwhile, as dockerd holds the container's lock) until the tar is sent.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::supervisor::engine::store::{Record, Status};
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::os::archive::{Bind, Names, RootSource, TarWriter, UntarOptions, View};
use crate::supervisor::os::rootfs::secure_join;
use crate::supervisor::rules::archive::{self as rules, PathStat};
use crate::supervisor::rules::mounts::Kind;

pub use crate::supervisor::os::archive::{ChunkWriter, Chunks};

/// `PUT …/archive`'s query.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir`.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID`: entries owned by the container's user (`-u`), if it has one.
    pub copy_uid_gid: bool,
}

/// A path's stat in the current root (the view's), as dockerd's `StatPath`; `None` if the
/// path is not there.
fn stat_in_view(res: &rules::Resolve) -> io::Result<(PathBuf, PathStat)> {
    use std::os::unix::fs::MetadataExt;
    let dir = secure_join(Path::new("/"), Path::new(&res.dir)).map_err(io::Error::other)?;
    let resolved = PathBuf::from(format!("{}/{}", dir.display(), res.base));
    let meta = std::fs::symlink_metadata(&resolved)?;
    let link_target = if meta.file_type().is_symlink() {
        let to = secure_join(Path::new("/"), Path::new(&res.abs)).map_err(io::Error::other)?;
        rules::clean(&to.to_string_lossy())
    } else {
        String::new()
    };
    let stat = PathStat {
        name: rules::stat_name(&res.abs),
        size: meta.size() as i64,
        mode: rules::go_file_mode(meta.mode()),
        mtime: rules::go_time(meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0)),
        link_target,
    };
    Ok((PathBuf::from(rules::clean(&resolved.to_string_lossy())), stat))
}

impl Daemon {
    /// The container's filesystem as the archive routes see it (`mounts`: with its volumes,
    /// binds and hosts files).
    fn archive_view(&self, r: &Record, mounts: bool) -> Result<View, Error> {
        let dir = self.store.dir(&r.id);
        let mountpoint = dir.join("mnt");
        std::fs::create_dir_all(&mountpoint).map_err(Error::internal)?;
        let running = r.state.status == Status::Running && r.state.pid > 0;
        let root = match (&r.image, r.rootfs.as_str()) {
            (Some(_), _) if running => RootSource::Running { pid: r.state.pid },
            (Some(image), _) => {
                self.images.unpack(&image.layers)?;
                let fs = dir.join("fs");
                let (upper, work) = (fs.join("diff"), fs.join("work"));
                for d in [&upper, &work] {
                    std::fs::create_dir_all(d).map_err(Error::internal)?;
                }
                let lower = image.layers.iter().rev().map(|l| self.images.layer_dir(l)).collect();
                RootSource::Overlay { lower, upper, work }
            }
            (None, "") => RootSource::Host(PathBuf::from("/")),
            (None, path) => RootSource::Host(PathBuf::from(path)),
        };
        let mut binds = Vec::new();
        let stubs = match r.image.is_some() && !running {
            true => ["hostname", "hosts", "resolv.conf"]
                .map(|n| PathBuf::from(format!("/etc/{n}")))
                .to_vec(),
            false => Vec::new(),
        };
        if mounts {
            // The hosts files once the container has them (dockerd binds its network files).
            let own = r.network_mode == crate::supervisor::engine::store::NetworkMode::Host
                || r.network_mode.is_container();
            for name in ["hostname", "hosts", "resolv.conf"] {
                let source = dir.join(name);
                if !own && source.is_file() {
                    let destination = PathBuf::from(format!("/etc/{name}"));
                    binds.push(Bind { source, destination, read_only: false });
                }
            }
            for m in self.launch_mounts(r)? {
                if m.kind != Kind::Tmpfs {
                    let (source, destination) = (m.source, m.destination);
                    binds.push(Bind { source, destination, read_only: m.read_only });
                }
            }
        }
        Ok(View { root, binds, stubs, mountpoint })
    }

    /// Runs `work` in the container's view on a thread of its own, the container's `op` lock
    /// held; the answer says how it ended.
    fn in_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        mounts: bool,
        work: impl FnOnce(&Record) -> Result<(), Error> + Send + 'static,
    ) -> oneshot::Receiver<Result<(), Error>> {
        let (d, c) = (self.clone(), c.clone());
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let _op = c.op.blocking_lock();
            let r = c.record();
            let result = d.archive_view(&r, mounts).and_then(|view| {
                match crate::supervisor::os::archive::in_view(view, move || work(&r)).join() {
                    Ok(Ok(result)) => result,
                    Ok(Err(why)) => Err(Error::internal(why)),
                    Err(_) => Err(Error::internal("the archive's thread panicked")),
                }
            });
            let _ = tx.send(result);
        });
        rx
    }

    /// `HEAD /containers/{id}/archive?path=P`: the path's stat; `name` is the container as
    /// the request named it (dockerd's words use it).
    pub async fn stat_path(
        self: &Arc<Self>,
        c: &Arc<Container>,
        name: &str,
        path: &str,
    ) -> Result<PathStat, Error> {
        let (tx, mut rx) = oneshot::channel();
        let (name, path) = (name.to_string(), path.to_string());
        let done = self.in_container(c, true, move |_| {
            let (_, stat) =
                stat_in_view(&rules::resolve(&path)).map_err(|e| stat_error(&e, &path, &name))?;
            let _ = tx.send(stat);
            Ok(())
        });
        done.await.unwrap_or_else(|_| Err(gone()))?;
        rx.try_recv().map_err(|_| gone())
    }

    /// `GET /containers/{id}/archive?path=P`: the path's stat, then its tar as it is written
    /// (event `archive-path` once the stat is known).
    pub async fn archive_path(
        self: &Arc<Self>,
        c: &Arc<Container>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, Chunks), Error> {
        let (tx, rx) = oneshot::channel();
        let (name, path) = (name.to_string(), path.to_string());
        let events = self.events.clone();
        let done = self.in_container(c, true, move |r| {
            // The names in the headers are the container's own (dockerd's `docker-tar`
            // runs chrooted in it).
            let names = Names::read();
            let res = rules::resolve(&path);
            let (top, stat) = stat_in_view(&res).map_err(|e| stat_error(&e, &path, &name))?;
            let (out, chunks) = ChunkWriter::channel();
            events.container(r, "archive-path", &[]);
            let _ = tx.send((stat, chunks));
            write_tar(out, names, |w| w.add_tree(&top, &rules::rebase_name(&res.abs), false));
            Ok(())
        });
        match rx.await {
            Ok(begun) => Ok(begun),
            Err(_) => Err(done.await.ok().and_then(Result::err).unwrap_or_else(gone)),
        }
    }

    /// `PUT /containers/{id}/archive?path=P`: `body` (a tar) extracted into directory P, as
    /// dockerd's `containerExtractToDir` (event `extract-to-dir`).
    pub async fn extract_to_dir(
        self: &Arc<Self>,
        c: &Arc<Container>,
        name: &str,
        path: &str,
        opts: ExtractOptions,
        mut body: Box<dyn Read + Send>,
    ) -> Result<(), Error> {
        let (name, path) = (name.to_string(), path.to_string());
        let done = self.in_container(c, true, move |r| {
            let result = extract(r, &name, &path, opts, &mut body);
            // The rest of the body read (a tar's padding), so the client gets the answer.
            crate::supervisor::os::archive::drain_body(&mut body, result.is_err());
            result
        });
        done.await.unwrap_or_else(|_| Err(gone()))?;
        self.events.container(&c.record(), "extract-to-dir", &[]);
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's root (without its volumes) as a tar
    /// (event `export`).
    pub async fn export(self: &Arc<Self>, c: &Arc<Container>) -> Result<Chunks, Error> {
        let (tx, rx) = oneshot::channel();
        let events = self.events.clone();
        // dockerd writes this tar itself, outside the container: the host's names.
        let names = Names::read();
        let done = self.in_container(c, false, move |r| {
            let (out, chunks) = ChunkWriter::channel();
            events.container(r, "export", &[]);
            let _ = tx.send(chunks);
            write_tar(out, names, |w| w.add_tree(Path::new("/"), "", true));
            Ok(())
        });
        match rx.await {
            Ok(chunks) => Ok(chunks),
            Err(_) => Err(done.await.ok().and_then(Result::err).unwrap_or_else(gone)),
        }
    }
}

/// Writes a tar into `out` with `add`, the stream cut with the error if one comes.
fn write_tar(
    mut out: ChunkWriter,
    names: Names,
    add: impl FnOnce(&mut TarWriter<&mut ChunkWriter>) -> io::Result<()>,
) {
    let mut w = TarWriter::new(&mut out, names);
    let finished = add(&mut w).and_then(|()| w.finish().map(drop));
    if let Err(e) = finished.and_then(|()| out.flush()) {
        out.fail(e);
    }
}

fn gone() -> Error {
    Error::internal("the archive's thread ended without an answer")
}

/// A failed stat in dockerd's words: a missing path is `containerFileNotFound` (404).
fn stat_error(e: &io::Error, path: &str, name: &str) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            Error::not_found(rules::not_found(path, name))
        }
        _ => Error::internal(format!("lstat {path}: {e}")),
    }
}

/// dockerd's `containerExtractToDir`, in the view.
fn extract(
    r: &Record,
    name: &str,
    path: &str,
    opts: ExtractOptions,
    body: &mut dyn Read,
) -> Result<(), Error> {
    let res = rules::resolve(path);
    // The last element is followed too: a link to a directory is extracted into.
    let resolved = secure_join(Path::new("/"), Path::new(&res.abs)).map_err(Error::internal)?;
    let meta = std::fs::symlink_metadata(&resolved).map_err(|e| stat_error(&e, path, name))?;
    if !meta.is_dir() {
        return Err(Error::internal("extraction point is not a directory"));
    }
    let abs = rules::clean(&resolved.to_string_lossy());
    // In a volume, it must be a writable one; else the root must be.
    let volume = r
        .all_mounts()
        .iter()
        .filter(|m| m.spec.kind != Kind::Tmpfs)
        .filter(|m| {
            let dest = rules::clean(&m.spec.destination);
            abs == dest || abs.starts_with(&format!("{}/", dest.trim_end_matches('/')))
        })
        .max_by_key(|m| m.spec.destination.len())
        .map(|m| m.spec.read_only);
    match volume {
        Some(true) => return Err(Error::internal("mounted volume is marked read-only")),
        None if r.security.read_only => {
            return Err(Error::internal("container rootfs is marked read-only"));
        }
        _ => {}
    }
    let chown = match (opts.copy_uid_gid, r.user.as_str()) {
        (true, user) if !user.is_empty() => {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
            let u = crate::supervisor::rules::user::resolve(user, &passwd, &group)
                .map_err(Error::internal)?;
            Some((u.uid, u.gid))
        }
        _ => None,
    };
    let untar = UntarOptions {
        no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
        no_lchown: false,
        chown,
        rebase: None,
    };
    crate::supervisor::os::archive::untar(body, Path::new(&abs), untar)
        .map_err(|e| Error::internal(format!("Error processing tar file(exit status 1): {e}")))
}
