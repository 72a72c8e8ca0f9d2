//! Layers unpacked for containers: each layer's tar into a directory of its own under
//! `image/layers/<hex>`, in overlayfs's form, so a container's root is an overlay mount of
//! them (lowest first) under its own writable directory:
//!
//! - a whiteout `.wh.NAME` (the layer removes `NAME` of the layers below) becomes a character
//!   device 0/0 named `NAME`, as overlayfs marks a removed file;
//! - an opaque directory `.wh..wh..opq` (the layer replaces the directory's contents) sets the
//!   directory's `trusted.overlay.opaque` to `y`.
//!
//! A layer is unpacked into a temporary directory, then renamed into place, so a directory
//! under `layers` is always whole. It goes when its blob goes. Unpacking runs as root and
//! keeps owners, modes and times; nothing is written outside the layer's directory: the tar's
//! own entries are checked by the `tar` crate (`unpack_in`), whiteouts here.

use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::store::ImageStore;

use crate::supervisor::os::archive::{OPAQUE_MARKER as OPAQUE, WHITEOUT_PREFIX as WHITEOUT};

impl ImageStore {
    /// Where layer `diff_id` is unpacked.
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.layers_root().join(diff_id.strip_prefix("sha256:").unwrap_or(diff_id))
    }

    /// Unpacks every layer of `diff_ids` not unpacked yet (one unpacking at a time).
    pub fn unpack(&self, diff_ids: &[String]) -> Result<()> {
        let _one = self.unpacking();
        for diff_id in diff_ids {
            let dir = self.layer_dir(diff_id);
            if dir.is_dir() {
                continue;
            }
            let staging = self.stage()?;
            let tmp = staging.file();
            let unpacked = File::open(self.blob_path(diff_id))
                .and_then(|f| unpack_layer(BufReader::new(f), &tmp))
                .and_then(|()| fs::rename(&tmp, &dir));
            let _ = fs::remove_dir_all(&tmp);
            unpacked.map_err(|e| {
                Error::internal(format!("failed to register layer: unpacking {diff_id}: {e}"))
            })?;
        }
        Ok(())
    }
}

/// Unpacks a layer's tar into `dst` (made here), whiteouts in overlayfs's form.
pub fn unpack_layer(tar: impl io::Read, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path.file_name().map(OsStr::as_bytes).unwrap_or_default();
        if let Some(removed) = name.strip_prefix(WHITEOUT.as_bytes()) {
            let parent = inside(dst, path.parent().unwrap_or(Path::new("")))?;
            if name == OPAQUE.as_bytes() {
                set_opaque(&parent)?;
            } else if !removed.starts_with(WHITEOUT.as_bytes()) && !removed.is_empty() {
                let target = parent.join(OsStr::from_bytes(removed));
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => fs::remove_dir_all(&target)?,
                    Ok(_) => fs::remove_file(&target)?,
                    Err(_) => {}
                }
                nix::sys::stat::mknod(
                    &target,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    nix::sys::stat::makedev(0, 0),
                )?;
            }
            // Other `.wh..wh.` names (aufs's hard-link directory) carry nothing.
            continue;
        }
        entry.unpack_in(dst)?;
    }
    Ok(())
}

/// `dst/rel`, its directories made as needed, refused if `rel` leaves `dst` (`..`, an
/// absolute path) or passes through a symbolic link the layer made.
fn inside(dst: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut at = dst.to_path_buf();
    for part in rel.components() {
        match part {
            Component::CurDir => continue,
            Component::Normal(p) => at.push(p),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a whiteout outside the layer: {}", rel.display()),
                ));
            }
        }
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a whiteout under a non-directory: {}", rel.display()),
                ));
            }
            Err(_) => fs::create_dir(&at)?,
        }
    }
    Ok(at)
}

/// Marks `dir` opaque for overlayfs.
fn set_opaque(dir: &Path) -> io::Result<()> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    let name = c"trusted.overlay.opaque";
    // SAFETY: both strings are NUL-terminated and live across the call; the value is 1 byte.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cproxy-unpack-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn whiteouts_become_overlay_markers() {
        let root = nix::unistd::geteuid().is_root();
        let dst = scratch("wh");
        let tar = tar_of(&[
            ("etc/", tar::EntryType::Directory, b"", ""),
            ("etc/hostname", tar::EntryType::Regular, b"box\n", ""),
            ("etc/.wh.passwd", tar::EntryType::Regular, b"", ""),
            ("var/.wh..wh..opq", tar::EntryType::Regular, b"", ""),
        ]);
        let result = unpack_layer(&tar[..], &dst);
        if !root {
            // mknod needs root; nothing else to see.
            let _ = fs::remove_dir_all(&dst);
            return;
        }
        result.unwrap();
        assert_eq!(fs::read(dst.join("etc/hostname")).unwrap(), b"box\n");
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = fs::symlink_metadata(dst.join("etc/passwd")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert!(!dst.join("etc/.wh.passwd").exists());
        assert!(dst.join("var").is_dir());
        fs::remove_dir_all(&dst).unwrap();
    }

    #[test]
    fn nothing_is_written_outside_the_layer() {
        let dst = scratch("escape");
        let outside = scratch("escape-target");
        fs::create_dir_all(&outside).unwrap();
        let link = outside.display().to_string();
        // A symbolic link to a directory outside, then a whiteout and a file through it.
        let tar = tar_of(&[
            ("out", tar::EntryType::Symlink, b"", &link),
            ("out/.wh.victim", tar::EntryType::Regular, b"", ""),
        ]);
        fs::write(outside.join("victim"), b"still here").unwrap();
        assert!(unpack_layer(&tar[..], &dst).is_err());
        let tar = tar_of(&[
            ("out", tar::EntryType::Symlink, b"", &link),
            ("out/planted", tar::EntryType::Regular, b"x", ""),
        ]);
        let _ = unpack_layer(&tar[..], &scratch("escape2"));
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"still here");
        assert!(!outside.join("planted").exists());
        for d in [dst, outside, scratch("escape2")] {
            let _ = fs::remove_dir_all(d);
        }
    }
}
