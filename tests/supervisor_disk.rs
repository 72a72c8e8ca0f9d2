//! The daemon on a full data root: a create that cannot write its record leaves nothing
//! behind, and what a create killed mid-write left is swept once at the next start.

mod supervisor_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use supervisor_support::Netns;

/// A small tmpfs mounted on a directory for the life of a test, unmounted on drop (even when
/// the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Fills it: a file takes every free byte.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn container_dirs(data_root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_root.join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_create_on_a_full_data_root_fails_and_leaves_nothing_behind() {
    let ns = Netns::new();
    let disk = Tmpfs::mount(&ns.dir.join("data"), "512k");
    let mut d = ns.daemon(&[]);
    let kept = d.ok(&["run", "--rootfs", "/", "-d", "--name", "kept", "/bin/true"]);
    let before = container_dirs(&d.data_root);
    assert_eq!(before, [kept.trim()]);
    disk.fill();
    for _ in 0..3 {
        let out = d.cli(&["run", "--rootfs", "/", "-d", "/bin/true"]);
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        assert_eq!(container_dirs(&d.data_root), before, "a failed create left a directory");
    }
    disk.free();
    // A create killed mid-write: a directory with a temporary file and no record.
    let leftover = d.data_root.join("containers").join("f".repeat(64));
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("config.tmp4242"), b"").unwrap();
    d.terminate();
    let d = ns.daemon(&[]);
    assert_eq!(container_dirs(&d.data_root), before, "the next start sweeps the leftover");
    assert!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]).contains("kept"));
}
