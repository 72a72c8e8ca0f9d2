//! Volumes of the `local` driver, as Docker keeps them: `<data-root>/volumes/NAME/_data` is
//! what containers mount, `volumes/NAME/volume.json` its creation time, labels and options.
//! A volume is in use while any container (running or not) names it in its mounts.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::supervisor::api::types::Volume;
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::engine::store::write_atomic;
use crate::supervisor::rules::mounts::check_volume_name;

/// What `volume.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    created_at: String,
    /// `null` for a volume a container made, `{}` or the labels for `volume create`.
    labels: Option<BTreeMap<String, String>>,
    /// The local driver's `-o` options, as labels.
    options: Option<BTreeMap<String, String>>,
}

/// The local driver's options (`volume create -o`): moby's `validOpts`.
const OPTIONS: [&str; 3] = ["type", "device", "o"];

/// The volumes under a data root.
pub struct Volumes {
    root: PathBuf,
    /// Serialises creation and removal.
    lock: Mutex<()>,
}

/// Docker's `No such volume: NAME` (a 404 the clients word themselves).
pub fn no_such_volume(name: &str) -> Error {
    Error::not_found(format!("get {name}: no such volume"))
}

impl Volumes {
    /// The volumes under `root` (`<data-root>/volumes`), made if missing.
    pub fn open(root: PathBuf) -> io::Result<Volumes> {
        fs::create_dir_all(&root)?;
        Ok(Volumes { root, lock: Mutex::new(()) })
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where volume `name`'s content is (its `Mountpoint`).
    pub fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// What a container mounts for volume `name`: its `_data`, or the host directory a
    /// `type=none,o=bind,device=PATH` volume names.
    pub fn source(&self, name: &str) -> PathBuf {
        let opts = self.read(name).ok().and_then(|m| m.options).unwrap_or_default();
        match opts.get("device") {
            Some(device) if opts.get("o").is_some_and(|o| o.split(',').any(|p| p == "bind")) => {
                PathBuf::from(device)
            }
            _ => self.data(name),
        }
    }

    fn read(&self, name: &str) -> Result<Meta> {
        if check_volume_name(name).is_err() {
            return Err(no_such_volume(name));
        }
        match fs::read(self.root.join(name).join("volume.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(Error::internal),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(no_such_volume(name)),
            Err(e) => Err(Error::internal(e)),
        }
    }

    fn volume(&self, name: &str, meta: Meta) -> Volume {
        Volume {
            created_at: meta.created_at,
            driver: "local".into(),
            labels: meta.labels,
            mountpoint: self.data(name).to_string_lossy().into_owned(),
            name: name.to_string(),
            options: meta.options,
            scope: "local".into(),
            usage_data: None,
        }
    }

    /// `volume create` (`explicit`: labels and options are `{}` rather than `null`), or a
    /// container's `-v NAME:…`: the volume, made unless it exists (then it is answered as
    /// it is). A name of `None` is a new anonymous volume's 64 hex digits.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        labels: Option<BTreeMap<String, String>>,
        options: Option<BTreeMap<String, String>>,
    ) -> Result<Volume> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => crate::supervisor::rules::names::new_id().map_err(Error::internal)?,
        };
        let refuse = |why: String| Error::invalid(format!("create {name}: {why}"));
        if !driver.is_empty() && driver != "local" {
            return Err(Error::not_found(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        check_volume_name(&name).map_err(refuse)?;
        if let Some(bad) =
            options.iter().flatten().map(|(k, _)| k).find(|k| !OPTIONS.contains(&k.as_str()))
        {
            return Err(refuse(format!("invalid option: \"{bad}\"")));
        }
        if let Some(opts) = &options
            && !opts.is_empty()
            && !(opts.get("o").is_some_and(|o| o.split(',').any(|p| p == "bind")))
        {
            return Err(refuse(
                "cproxy's local driver mounts bind volumes only (-o type=none -o o=bind -o device=PATH)"
                    .into(),
            ));
        }
        let _g = self.guard();
        if let Ok(meta) = self.read(&name) {
            return Ok(self.volume(&name, meta));
        }
        let meta = Meta { created_at: rfc3339_seconds(SystemTime::now()), labels, options };
        let dir = self.root.join(&name);
        let made = fs::create_dir_all(dir.join("_data"))
            .and_then(|()| write_atomic(&dir.join("volume.json"), &serde_json::to_vec(&meta)?));
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&dir);
            return Err(refuse(e.to_string()));
        }
        Ok(self.volume(&name, meta))
    }

    /// `volume inspect NAME`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.read(name).map(|m| self.volume(name, m))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names.into_iter().filter_map(|n| self.get(&n).ok()).collect()
    }

    /// `volume rm NAME`: refused while `users` (the containers naming it) is not empty, even
    /// with `force`, which only makes a missing volume no error.
    pub fn remove(&self, name: &str, force: bool, users: &[String]) -> Result<()> {
        let _g = self.guard();
        if let Err(e) = self.read(name) {
            return if force { Ok(()) } else { Err(e) };
        }
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.root.join(name);
        // The record first: a volume half removed is gone, not listed with part of its data.
        fs::remove_file(dir.join("volume.json")).map_err(Error::internal)?;
        fs::remove_dir_all(&dir).map_err(Error::internal)
    }

    /// `volume prune`: every volume no container names and made without options (moby
    /// 20.10 keeps those); the names removed and the bytes they held.
    pub fn prune(&self, in_use: &dyn Fn(&str) -> bool) -> (Vec<String>, u64) {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.list() {
            if in_use(&v.name) || v.options.as_ref().is_some_and(|o| !o.is_empty()) {
                continue;
            }
            let size = disk_usage(&self.data(&v.name));
            if self.remove(&v.name, false, &[]).is_ok() {
                removed.push(v.name);
                bytes += size;
            }
        }
        (removed, bytes)
    }
}

/// The bytes of the files under `path`, as moby's `directory.Size` adds them: directories
/// count nothing, a file with several links once.
pub fn disk_usage(path: &Path) -> u64 {
    fn walk(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            return fs::read_dir(path)
                .map(|d| d.flatten().map(|e| walk(&e.path(), seen)).sum())
                .unwrap_or(0);
        }
        if meta.len() == 0 || !seen.insert((meta.dev(), meta.ino())) {
            return 0;
        }
        meta.len()
    }
    walk(path, &mut Default::default())
}

/// RFC 3339 in whole seconds, UTC (`2026-12-06T14:47:28Z`), as the local driver stamps it.
fn rfc3339_seconds(t: SystemTime) -> String {
    let full = crate::supervisor::image::config::go_time(t);
    match full.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (Volumes, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cproxy-vol-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (Volumes::open(dir.clone()).unwrap(), dir)
    }

    #[test]
    fn create_inspect_remove_and_prune_as_the_local_driver() {
        let (v, dir) = store("cycle");
        let made = v.create(Some("v1"), "", Some(BTreeMap::new()), Some(BTreeMap::new())).unwrap();
        assert_eq!(made.mountpoint, dir.join("v1/_data").to_string_lossy());
        assert_eq!(made.labels, Some(BTreeMap::new()));
        assert!(made.created_at.ends_with('Z') && !made.created_at.contains('.'), "{made:?}");
        // Made again: the same volume.
        assert_eq!(v.create(Some("v1"), "local", None, None).unwrap().created_at, made.created_at);
        let anon = v.create(None, "", None, None).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert_eq!(anon.labels, None);
        assert_eq!(v.list().len(), 2);
        let e = v.create(Some("../x"), "", None, None).unwrap_err();
        assert!(e.message.starts_with("create ../x: \"../x\" includes invalid characters"), "{e}");
        let mut bad = BTreeMap::new();
        bad.insert("bogus".to_string(), "1".to_string());
        let e = v.create(Some("badopt"), "", None, Some(bad)).unwrap_err();
        assert_eq!(e.message, "create badopt: invalid option: \"bogus\"");
        assert_eq!(v.get("nosuch").unwrap_err().message, "get nosuch: no such volume");
        let e = v.remove("v1", true, &["abc".into()]).unwrap_err();
        assert_eq!(e.message, "remove v1: volume is in use - [abc]");
        v.remove("nosuch", true, &[]).unwrap();
        assert!(v.remove("nosuch", false, &[]).is_err());
        fs::write(v.data("v1").join("f"), vec![1u8; 10000]).unwrap();
        let (names, bytes) = v.prune(&|n| n == anon.name);
        assert_eq!(names, ["v1"]);
        assert!(bytes >= 10000, "{bytes}");
        assert_eq!(v.list().len(), 1);
        let _ = fs::remove_dir_all(dir);
    }
}
