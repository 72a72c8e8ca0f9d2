//! `docker diff`: what a container changed in its root, read from its writable layer as
//! moby's overlay driver reads it (`archive.OverlayChanges`): an entry of the upper directory
//! that a lower layer has is changed (`C`), one it has not is added (`A`), an overlay whiteout
//! (a 0/0 character device) is deleted (`D`). What cproxy itself puts in the root to mount
//! over (`/etc/hosts`, `/dev`, volume mount points, …) is not the container's change and is
//! left out, as Docker keeps those in its `-init` layer; a directory is listed when something
//! under it is.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

impl crate::supervisor::engine::Daemon {
    /// `GET /containers/{id}/changes`: the changes in its writable layer (none for a
    /// `--rootfs` container, which has no layer of its own).
    pub fn changes(&self, c: &crate::supervisor::engine::Container) -> Vec<Change> {
        self.layer_changes(&c.record()).map(|(_, changes)| changes).unwrap_or_default()
    }

    /// The container's writable layer (its overlay's upper directory) and its changes, which
    /// `diff` lists and `commit` writes; `None` for a `--rootfs` container.
    pub(super) fn layer_changes(
        &self,
        r: &crate::supervisor::engine::store::Record,
    ) -> Option<(PathBuf, Vec<Change>)> {
        let image = r.image.as_ref()?;
        let upper = self.store.dir(&r.id).join("fs").join("diff");
        let lowers: Vec<PathBuf> =
            image.layers.iter().rev().map(|l| self.images.layer_dir(l)).collect();
        let skip: Vec<String> = r.all_mounts().iter().map(|m| m.spec.destination.clone()).collect();
        let found = changes(&upper, &lowers, &skip);
        Some((upper, found))
    }
}

/// One change (`container.ContainerChangeResponseItem`): `Kind` 0 changed, 1 added, 2 deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    /// The path inside the container.
    pub path: String,
    /// 0 `C`, 1 `A`, 2 `D`.
    pub kind: u8,
}

/// Paths the runtime makes to mount over, never the container's own change.
const RUNTIME_PATHS: [&str; 6] =
    ["/dev", "/proc", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The changes in `upper` over `lowers` (top first), sorted by path; `skip`: the mount points
/// the container's own mounts made.
pub fn changes(upper: &Path, lowers: &[PathBuf], skip: &[String]) -> Vec<Change> {
    let mut out = Vec::new();
    walk(upper, Path::new("/"), lowers, skip, &mut out);
    out
}

fn in_lower(lowers: &[PathBuf], inside: &Path) -> bool {
    let rel = inside.strip_prefix("/").unwrap_or(inside);
    lowers.iter().any(|l| {
        fs::symlink_metadata(l.join(rel))
            .map(|m| !(m.file_type().is_char_device() && m.rdev() == 0))
            .unwrap_or(false)
    })
}

/// Walks `dir` (at `inside` in the container); true if it listed anything under it.
fn walk(
    dir: &Path,
    inside: &Path,
    lowers: &[PathBuf],
    skip: &[String],
    out: &mut Vec<Change>,
) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    let mut any = false;
    for name in names {
        let path = dir.join(&name);
        let at = inside.join(&name);
        let at_text = at.to_string_lossy().into_owned();
        let ours = RUNTIME_PATHS.contains(&at_text.as_str()) || skip.contains(&at_text);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            out.push(Change { path: at_text, kind: 2 });
            any = true;
            continue;
        }
        let lower = in_lower(lowers, &at);
        if meta.is_dir() {
            let mark = out.len();
            out.push(Change { path: at_text, kind: if lower { 0 } else { 1 } });
            let below = walk(&path, &at, lowers, skip, out);
            // A directory only there to hold a mount point (or copied up for one) is not
            // the container's change; an opaque one (made anew over the layers' own) is.
            let opaque = lower && crate::supervisor::os::archive::is_opaque(&path);
            if ours || (!below && !opaque && (lower || is_mount_parent(&at, skip))) {
                out.remove(mark);
            } else {
                any = true;
            }
        } else if !ours {
            out.push(Change { path: at_text, kind: if lower { 0 } else { 1 } });
            any = true;
        }
    }
    any
}

/// Whether `dir` holds one of the mount points.
fn is_mount_parent(dir: &Path, skip: &[String]) -> bool {
    let prefix = format!("{}/", dir.to_string_lossy());
    skip.iter().map(String::as_str).chain(RUNTIME_PATHS).any(|p| p.starts_with(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_deleted_as_mobys_overlay_changes() {
        let root = std::env::temp_dir().join(format!("cproxy-changes-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let (lower, upper) = (root.join("lower"), root.join("upper"));
        for d in ["bin", "etc", "data/sub", "tmp"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("bin/vi"), "").unwrap();
        fs::write(lower.join("etc/passwd"), "").unwrap();
        for d in ["bin", "etc", "newdir/sub", "tmp", "dev", "mnt/vol"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/passwd"), "x").unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("newdir/sub/f"), "x").unwrap();
        fs::write(upper.join("newfile"), "x").unwrap();
        nix::sys::stat::mknod(
            &upper.join("bin/vi"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let got: Vec<String> = changes(&upper, &[lower], &["/mnt/vol".into()])
            .into_iter()
            .map(|c| format!("{} {}", ["C", "A", "D"][c.kind as usize], c.path))
            .collect();
        assert_eq!(
            got,
            [
                "C /bin",
                "D /bin/vi",
                "C /etc",
                "C /etc/passwd",
                "A /newdir",
                "A /newdir/sub",
                "A /newdir/sub/f",
                "A /newfile"
            ]
        );
        let _ = fs::remove_dir_all(&root);
    }
}
