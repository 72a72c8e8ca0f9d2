//! The local images under `--data-root`/image, content-addressed as Docker and OCI store them:
//!
//! ```text
//! image/blobs/sha256/<hex>   layers (uncompressed tars, named by diff ID) and configs (by ID)
//! image/index.json           {"Images": {ID: {"Layers": [...], "LastTagTime": …}},
//!                             "Repositories": {"busybox": {"busybox:latest": ID}}}
//! image/tmp/                 what an import or a load is writing; emptied at start
//! ```
//!
//! A blob is written to a temporary file, its digest computed as it is written, checked, then
//! renamed into place; the index is replaced whole (a temporary file, fsync, rename). A blob
//! appears before the index names it, and one no image names is removed (at once, or at the
//! next start after a crash), so a failed import or load leaves nothing behind. Everything here
//! runs on blocking threads (the HTTP layer's `spawn_blocking`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::supervisor::api::types::{
    GraphDriverData, HistoryItem, ImageDeleteItem, ImageInspect, ImageMetadata, ImageRootFs,
    ImageRunConfig, ImageSummary, ImagesPruneReport,
};
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::engine::store::write_atomic;
use crate::supervisor::image::config::{ImageConfig, go_time, is_sha256};
use crate::supervisor::image::layer::{LayerInfo, digest_of};
use crate::supervisor::image::reference::{AnyReference, Reference};

/// Docker's zero time, the `LastTagTime` of an image never tagged.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One layer of an image, as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Its diff ID, the name of its blob.
    #[serde(rename = "DiffID")]
    pub diff_id: String,
    /// Docker's `Size` of it.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// An image, as the index keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ImageRecord {
    #[serde(rename = "Layers", default)]
    layers: Vec<LayerRecord>,
    #[serde(rename = "LastTagTime", default)]
    last_tag_time: String,
    /// The image a commit was made from (moby's `SetParent`), if any.
    #[serde(rename = "Parent", default, skip_serializing_if = "String::is_empty")]
    parent: String,
}

/// `index.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Index {
    #[serde(rename = "Images", default)]
    images: BTreeMap<String, ImageRecord>,
    /// Familiar name → familiar reference (`busybox:latest`) → ID, as Docker's
    /// `repositories.json`.
    #[serde(rename = "Repositories", default)]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl Index {
    /// Every reference to `id`, tags and digests (`busybox@sha256:…`, which a pull records),
    /// sorted.
    fn refs_of(&self, id: &str) -> Vec<String> {
        let mut refs: Vec<String> = self
            .repositories
            .values()
            .flat_map(|tags| tags.iter())
            .filter(|(_, i)| *i == id)
            .map(|(t, _)| t.clone())
            .collect();
        refs.sort();
        refs
    }

    /// Every tag of `id`, sorted: Docker's `RepoTags`.
    fn tags_of(&self, id: &str) -> Vec<String> {
        self.refs_of(id).into_iter().filter(|r| !r.contains('@')).collect()
    }

    /// Every digest reference to `id`, sorted: Docker's `RepoDigests`.
    fn digests_of(&self, id: &str) -> Vec<String> {
        self.refs_of(id).into_iter().filter(|r| r.contains('@')).collect()
    }

    fn get_tag(&self, r: &Reference) -> Option<&String> {
        self.repositories.get(&r.familiar_name())?.get(&r.familiar_string())
    }

    fn set_tag(&mut self, r: &Reference, id: &str) -> Option<String> {
        self.repositories
            .entry(r.familiar_name())
            .or_default()
            .insert(r.familiar_string(), id.to_string())
            .filter(|old| old != id)
    }

    fn remove_tag(&mut self, r: &Reference) -> Option<String> {
        let name = r.familiar_name();
        let tags = self.repositories.get_mut(&name)?;
        let old = tags.remove(&r.familiar_string());
        if tags.is_empty() {
            self.repositories.remove(&name);
        }
        old
    }

    /// Every blob an image needs: its config and its layers.
    fn blobs(&self) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for (id, rec) in &self.images {
            set.insert(id.clone());
            set.extend(rec.layers.iter().map(|l| l.diff_id.clone()));
        }
        set
    }

    /// Every chain ID of every image.
    fn chains(&self) -> BTreeSet<String> {
        self.images.values().flat_map(|r| chain_ids(&r.layers)).collect()
    }
}

/// Docker's chain IDs of layers: the first's diff ID, then `sha256(parent + " " + diff)`.
pub fn chain_ids(layers: &[LayerRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(layers.len());
    for l in layers {
        let id = match out.last() {
            None => l.diff_id.clone(),
            Some(parent) => digest_of(format!("{parent} {}", l.diff_id).as_bytes()),
        };
        out.push(id);
    }
    out
}

/// What the store holds in memory: the index and each image's config.
#[derive(Default)]
struct State {
    index: Index,
    configs: HashMap<String, Arc<ImageConfig>>,
}

/// A new image for [`ImageStore::commit`]: its config's bytes, its layers (staged or already
/// stored), the tags it gets.
pub struct NewImage {
    /// The config's bytes, whose sha256 is the ID.
    pub config: Vec<u8>,
    /// Its layers, bottom first, each with where its staged tar is (`None`: already stored).
    pub layers: Vec<(LayerInfo, Option<PathBuf>)>,
    /// Its tags.
    pub tags: Vec<Reference>,
}

/// What [`ImageStore::commit`] did for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The image's ID.
    pub id: String,
    /// Each tag given, with the ID it was taken from if it named another image.
    pub tags: Vec<(String, Option<String>)>,
}

/// A directory under `image/tmp` for one import or load; removed with everything in it when
/// dropped, so nothing it staged outlives a failure.
pub struct Staging {
    dir: PathBuf,
    next: AtomicU64,
}

impl Staging {
    /// A fresh file name in it.
    pub fn file(&self) -> PathBuf {
        self.dir.join(format!("f{}", self.next.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The image store.
pub struct ImageStore {
    root: PathBuf,
    state: Mutex<State>,
    staged: AtomicU64,
    /// Held while layers are unpacked (`unpack`), so one layer is unpacked once.
    unpacking: Mutex<()>,
}

/// What containers hold of the store: the image each was made from and the layers under
/// its root. The engine gives it to every call that could remove an image or a layer.
#[derive(Clone, Debug, Default)]
pub struct Users(pub Vec<User>);

/// One container's hold on the store.
#[derive(Clone, Debug)]
pub struct User {
    /// The container's ID.
    pub container: String,
    /// The image's ID (`sha256:…`).
    pub image: String,
    /// Whether it is running (moby's hard conflict) or not (a soft one).
    pub running: bool,
    /// The diff IDs of the layers under its root.
    pub layers: Vec<String>,
}

impl Users {
    fn of_image<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a User> + 'a {
        self.0.iter().filter(move |u| u.image == id)
    }

    fn holds_layer(&self, diff_id: &str) -> bool {
        self.0.iter().any(|u| u.layers.iter().any(|l| l == diff_id))
    }
}

fn io_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("{what}: {e}"))
}

/// Docker's `No such image: NAME`.
pub fn no_such_image(name: &str) -> Error {
    Error::not_found(format!("No such image: {name}"))
}

impl ImageStore {
    /// Opens (or makes) the store under `root`: empties `tmp`, reads the index, forgets
    /// images whose config is missing or unreadable, removes blobs no image names.
    /// Blobs and unpacked layers that no image and no container in `held` needs are
    /// removed: what a crash between an index write and a removal left.
    pub fn open(root: &Path, held: &Users) -> io::Result<ImageStore> {
        fs::create_dir_all(root.join("blobs/sha256"))?;
        let tmp = root.join("tmp");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp)?;
        let mut index: Index = match fs::read(root.join("index.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("image/index.json: {e}"))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(e),
        };
        let store = ImageStore {
            root: root.to_path_buf(),
            state: Mutex::new(State::default()),
            staged: AtomicU64::new(0),
            unpacking: Mutex::new(()),
        };
        let mut configs = HashMap::new();
        let mut changed = false;
        for id in index.images.keys().cloned().collect::<Vec<_>>() {
            let parsed = fs::read(store.blob_path(&id))
                .map_err(|e| e.to_string())
                .and_then(|b| ImageConfig::parse(&b));
            let layers_present =
                index.images[&id].layers.iter().all(|l| store.blob_path(&l.diff_id).is_file());
            match parsed {
                Ok(c) if layers_present => {
                    configs.insert(id, Arc::new(c));
                }
                other => {
                    let why = other.err().unwrap_or_else(|| "a layer is missing".into());
                    tracing::warn!(image = %id, error = %why, "forgetting an image");
                    index.images.remove(&id);
                    for tags in index.repositories.values_mut() {
                        tags.retain(|_, i| *i != id);
                    }
                    index.repositories.retain(|_, t| !t.is_empty());
                    changed = true;
                }
            }
        }
        if changed {
            write_atomic(&root.join("index.json"), &serde_json::to_vec(&index)?)?;
        }
        let mut wanted = index.blobs();
        wanted.extend(held.0.iter().flat_map(|u| u.layers.iter().cloned()));
        for entry in fs::read_dir(root.join("blobs/sha256"))? {
            let entry = entry?;
            let name = format!("sha256:{}", entry.file_name().to_string_lossy());
            if !wanted.contains(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
        // Unpacked layers whose blob is gone (or that a crash left half-renamed) go too.
        fs::create_dir_all(store.layers_root())?;
        for entry in fs::read_dir(store.layers_root())? {
            let entry = entry?;
            let name = format!("sha256:{}", entry.file_name().to_string_lossy());
            if !wanted.contains(&name) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        *store.state.lock().unwrap_or_else(|p| p.into_inner()) = State { index, configs };
        Ok(store)
    }

    /// Where layers are unpacked.
    pub(super) fn layers_root(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Held while layers are unpacked.
    pub(super) fn unpacking(&self) -> std::sync::MutexGuard<'_, ()> {
        self.unpacking.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the blob `sha256:<hex>` is.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    /// Whether a layer with this diff ID is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        is_sha256(digest) && self.blob_path(digest).is_file()
    }

    /// A staging directory for one import or load.
    pub fn stage(&self) -> Result<Staging> {
        let n = self.staged.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join("tmp").join(format!("{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| io_error("cannot stage", e))?;
        Ok(Staging { dir, next: AtomicU64::new(0) })
    }

    /// Stores images at once: blobs renamed into place, then the index. All or nothing:
    /// if the index cannot be written, the blobs this call added are removed.
    pub fn commit(&self, staging: &Staging, images: Vec<NewImage>) -> Result<Vec<Committed>> {
        let mut st = self.state();
        let mut index = st.index.clone();
        let mut configs = Vec::new();
        let mut added: Vec<PathBuf> = Vec::new();
        let mut out = Vec::new();
        let now = go_time(SystemTime::now());
        let result = (|| {
            for img in images {
                let id = digest_of(&img.config);
                let config = ImageConfig::parse(&img.config).map_err(Error::invalid)?;
                let diff_ids: Vec<&str> =
                    img.layers.iter().map(|(l, _)| l.diff_id.as_str()).collect();
                if diff_ids != config.rootfs.diff_ids.iter().map(String::as_str).collect::<Vec<_>>()
                {
                    return Err(Error::invalid("the layers do not match the config's diff IDs"));
                }
                for (info, staged) in &img.layers {
                    let dest = self.blob_path(&info.diff_id);
                    if dest.is_file() {
                        continue;
                    }
                    let Some(src) = staged else {
                        return Err(Error::internal(format!("layer {} is missing", info.diff_id)));
                    };
                    fs::rename(src, &dest).map_err(|e| io_error("cannot store a layer", e))?;
                    added.push(dest);
                }
                let dest = self.blob_path(&id);
                if !dest.is_file() {
                    let tmp = staging.file();
                    write_atomic(&tmp, &img.config)
                        .and_then(|()| fs::rename(&tmp, &dest))
                        .map_err(|e| io_error("cannot store the image config", e))?;
                    added.push(dest);
                }
                let layers = img
                    .layers
                    .iter()
                    .map(|(l, _)| LayerRecord { diff_id: l.diff_id.clone(), size: l.size })
                    .collect();
                let rec = index.images.entry(id.clone()).or_insert_with(|| ImageRecord {
                    layers,
                    last_tag_time: ZERO_TIME.into(),
                    parent: String::new(),
                });
                let mut tags = Vec::new();
                for t in &img.tags {
                    let t = t.clone().with_default_tag();
                    rec.last_tag_time = now.clone();
                    tags.push((t.familiar_string(), None));
                }
                for (t, old) in img.tags.iter().zip(tags.iter_mut()) {
                    old.1 = index.set_tag(&t.clone().with_default_tag(), &id);
                }
                configs.push((id.clone(), Arc::new(config)));
                out.push(Committed { id, tags });
            }
            self.write_index(&index)
        })();
        if let Err(e) = result {
            for p in added {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        st.index = index;
        st.configs.extend(configs);
        Ok(out)
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(Error::internal)?;
        write_atomic(&self.root.join("index.json"), &bytes)
            .map_err(|e| io_error("cannot write the image index", e))
    }

    /// The ID an image name, ID or ID prefix stands for, as Docker's `GetImage`; Docker's
    /// `No such image: busybox:latest` when none.
    pub fn resolve(&self, name: &str) -> Result<String> {
        let st = self.state();
        resolve_in(&st.index, name)
    }

    /// The config of image `id`.
    pub fn config(&self, id: &str) -> Option<Arc<ImageConfig>> {
        self.state().configs.get(id).cloned()
    }

    /// The labels of image `id`'s config (`LABEL`), none for an image it does not hold.
    pub fn labels(&self, id: &str) -> BTreeMap<String, String> {
        let config = self.config(id);
        config.and_then(|c| c.config.as_ref()?.labels.clone()).unwrap_or_default()
    }

    /// The layers of image `id`, bottom first.
    pub fn layers(&self, id: &str) -> Vec<LayerRecord> {
        self.state().index.images.get(id).map(|r| r.layers.clone()).unwrap_or_default()
    }

    /// Every tag of image `id` (`busybox:latest`), sorted.
    pub fn tags(&self, id: &str) -> Vec<String> {
        self.state().index.tags_of(id)
    }

    /// Every tag in a repository (`busybox`), as (tag, ID).
    pub fn repository(&self, name: &Reference) -> Vec<(String, String)> {
        let st = self.state();
        st.index
            .repositories
            .get(&name.familiar_name())
            .map(|tags| tags.iter().map(|(t, i)| (t.clone(), i.clone())).collect())
            .unwrap_or_default()
    }

    /// The ID a tag names, if any.
    pub fn tagged(&self, r: &Reference) -> Option<String> {
        self.state().index.get_tag(&r.clone().with_default_tag()).cloned()
    }

    /// Every image, newest first, with its tags: what `images` filters and shows.
    pub fn all(&self) -> Vec<(String, Arc<ImageConfig>, Vec<String>, u64)> {
        let st = self.state();
        let mut out: Vec<_> = st
            .index
            .images
            .iter()
            .filter_map(|(id, rec)| {
                let c = st.configs.get(id)?.clone();
                let size = rec.layers.iter().map(|l| l.size).sum();
                Some((id.clone(), c, st.index.tags_of(id), size))
            })
            .collect();
        out.sort_by(|a, b| b.1.created_time().cmp(&a.1.created_time()).then(a.0.cmp(&b.0)));
        out
    }

    /// Records `r` (a tag or a digest reference) as naming the stored image `id`: what a pull
    /// of an image already stored does.
    pub fn set_reference(&self, id: &str, r: &Reference) -> Result<()> {
        let r = r.clone().with_default_tag();
        let mut st = self.state();
        if !st.index.images.contains_key(id) {
            return Err(no_such_image(id));
        }
        let mut index = st.index.clone();
        index.set_tag(&r, id);
        if r.digest().is_none()
            && let Some(rec) = index.images.get_mut(id)
        {
            rec.last_tag_time = go_time(SystemTime::now());
        }
        self.write_index(&index)?;
        st.index = index;
        Ok(())
    }

    /// Records `parent` as the image `id` was committed from (moby's `SetParent`): inspect's
    /// `Parent`, and the IDs `history` shows below the image's own step.
    pub fn set_parent(&self, id: &str, parent: &str) -> Result<()> {
        let mut st = self.state();
        let mut index = st.index.clone();
        let Some(rec) = index.images.get_mut(id) else {
            return Err(no_such_image(id));
        };
        rec.parent = parent.to_string();
        self.write_index(&index)?;
        st.index = index;
        Ok(())
    }

    /// Whether an image was committed from `id` (moby's `Children`): such an image is not
    /// deleted, and `images` hides it untagged unless `-a`.
    pub fn has_children(&self, id: &str) -> bool {
        self.state().index.images.values().any(|r| r.parent == id)
    }

    /// The image `id` was committed from (empty if none): `images`' `ParentId`.
    pub fn parent(&self, id: &str) -> String {
        self.state().index.images.get(id).map(|r| r.parent.clone()).unwrap_or_default()
    }

    /// Docker's `Size` of a stored layer, if an image has it.
    pub fn layer_size(&self, diff_id: &str) -> Option<u64> {
        let st = self.state();
        st.index
            .images
            .values()
            .flat_map(|r| &r.layers)
            .find(|l| l.diff_id == diff_id)
            .map(|l| l.size)
    }

    /// `POST /images/{name}/tag`: `target` (a name, its tag `latest` if none) names the image
    /// `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(Error::invalid("refusing to create a tag with a digest reference"));
        }
        let target = target.clone().with_default_tag();
        let mut st = self.state();
        let id = resolve_in(&st.index, source)?;
        let mut index = st.index.clone();
        index.set_tag(&target, &id);
        if let Some(rec) = index.images.get_mut(&id) {
            rec.last_tag_time = go_time(SystemTime::now());
        }
        self.write_index(&index)?;
        st.index = index;
        Ok(())
    }

    /// `DELETE /images/{name}` (Docker's `ImageDelete`): a tag given is untagged, and the
    /// image deleted once no tag is left; an ID deletes the image with its one tag, or, with
    /// `force`, with all of them. Containers made from the image refuse it as moby's
    /// conflicts do: a running one always (a forced untag still happens), a stopped one
    /// unless forced; the layers under any container's root stay on disk either way.
    pub fn delete(&self, name: &str, force: bool, users: &Users) -> Result<Vec<ImageDeleteItem>> {
        let mut st = self.state();
        let id = resolve_in(&st.index, name)?;
        let mut index = st.index.clone();
        let mut records = Vec::new();
        // moby's `quiet`: an image left without tags by a forced untag is kept, untagged
        // (dangling), while a container uses it.
        let mut untag_only = false;
        if !is_id_prefix(&id, name) {
            let r = Reference::parse_normalized(name)
                .map_err(|e| Error::invalid(e.to_string()))?
                .with_default_tag();
            if !force
                && index.tags_of(&id).len() <= 1
                && let Some(u) = users.of_image(&id).next()
            {
                return Err(Error::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - \
                     container {} is using its referenced image {}",
                    short_id(&u.container),
                    short_id(&id)
                )));
            }
            if index.remove_tag(&r).is_some() {
                records.push(untagged(r.familiar_string()));
            }
            if !index.tags_of(&id).is_empty() {
                self.write_index(&index)?;
                st.index = index;
                return Ok(records);
            }
            untag_only = true;
        } else if index.tags_of(&id).len() > 1 && !force {
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in \
                 multiple repositories",
                short_id(&id)
            )));
        }
        let running = users.of_image(&id).find(|u| u.running);
        let stopped = users.of_image(&id).find(|u| !u.running);
        // moby's hard conflicts first (a child image, then a running container), then the
        // soft one a force overrides.
        let conflict = if index.images.values().any(|r| r.parent == id) {
            Some(("cannot be forced", "image has dependent child images".to_string()))
        } else {
            let used = |state: &str, u: &User| {
                format!("image is being used by {state} container {}", short_id(&u.container))
            };
            match (running, stopped) {
                (Some(u), _) => Some(("cannot be forced", used("running", u))),
                (None, Some(u)) if !force => Some(("must be forced", used("stopped", u))),
                _ => None,
            }
        };
        if let Some((how, why)) = conflict {
            if untag_only {
                self.write_index(&index)?;
                st.index = index;
                return Ok(records);
            }
            return Err(Error::conflict(format!(
                "conflict: unable to delete {} ({how}) - {why}",
                short_id(&id)
            )));
        }
        let (mut removed, _) = self.remove_image(&mut index, &id, &mut records, users);
        let mut gone = vec![id.clone()];
        // moby's prune: the parent goes too once it is left untagged, with no other child and
        // no container, and so on down.
        let mut parent = st.index.images.get(&id).map(|r| r.parent.clone()).unwrap_or_default();
        while !parent.is_empty()
            && index.images.contains_key(&parent)
            && index.tags_of(&parent).is_empty()
            && !index.images.values().any(|r| r.parent == parent)
            && users.of_image(&parent).next().is_none()
        {
            let next = index.images.get(&parent).map(|r| r.parent.clone()).unwrap_or_default();
            removed.extend(self.remove_image(&mut index, &parent, &mut records, users).0);
            gone.push(std::mem::replace(&mut parent, next));
        }
        self.write_index(&index)?;
        st.index = index;
        for id in &gone {
            st.configs.remove(id);
        }
        drop(st);
        self.remove_blobs(&removed, users);
        Ok(records)
    }

    /// Once a container is gone: the layers it held that no image and no other container
    /// (`users`) needs any more are removed, blob and unpacked directory.
    pub fn release(&self, layers: &[String], users: &Users) {
        let st = self.state();
        let kept = st.index.blobs();
        let orphans: Vec<String> = layers.iter().filter(|l| !kept.contains(*l)).cloned().collect();
        drop(st);
        self.remove_blobs(&orphans, users);
    }

    /// Untags and forgets `id` in `index`, recording what Docker reports; the blobs no image
    /// needs any more and the bytes of the layers deleted.
    fn remove_image(
        &self,
        index: &mut Index,
        id: &str,
        records: &mut Vec<ImageDeleteItem>,
        users: &Users,
    ) -> (Vec<String>, u64) {
        for t in index.refs_of(id) {
            if let Ok(r) = Reference::parse_normalized(&t) {
                index.remove_tag(&r);
            }
            records.push(untagged(t));
        }
        let before = index.blobs();
        let rec = index.images.remove(id).unwrap_or_default();
        records.push(ImageDeleteItem { deleted: Some(id.to_string()), untagged: None });
        let still = index.chains();
        let mut freed = 0;
        for (chain, layer) in chain_ids(&rec.layers).iter().zip(&rec.layers).rev() {
            // A layer under a container's root is not deleted (nor reported) yet.
            if !still.contains(chain) && !users.holds_layer(&layer.diff_id) {
                records.push(ImageDeleteItem { deleted: Some(chain.clone()), untagged: None });
                freed += layer.size;
            }
        }
        let after = index.blobs();
        (before.difference(&after).cloned().collect(), freed)
    }

    /// Removes blobs and their unpacked layers, but not the layers a container's root uses.
    fn remove_blobs(&self, digests: &[String], users: &Users) {
        for d in digests.iter().filter(|d| !users.holds_layer(d)) {
            if let Err(e) = fs::remove_file(self.blob_path(d)) {
                tracing::warn!(blob = %d, error = %e, "could not remove a blob");
            }
            let unpacked = self.layer_dir(d);
            if unpacked.exists()
                && let Err(e) = fs::remove_dir_all(&unpacked)
            {
                tracing::warn!(layer = %d, error = %e, "could not remove an unpacked layer");
            }
        }
    }

    /// `POST /images/prune`: the untagged images (every image with `all`), as Docker's report.
    /// Images a container was made from are kept, as moby's prune keeps them.
    pub fn prune(&self, all: bool, users: &Users) -> Result<ImagesPruneReport> {
        let mut st = self.state();
        let mut index = st.index.clone();
        let victims: Vec<String> = index
            .images
            .keys()
            .filter(|id| all || index.refs_of(id).is_empty())
            .filter(|id| users.of_image(id).next().is_none())
            .cloned()
            .collect();
        let mut records = Vec::new();
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for id in &victims {
            let (blobs, freed) = self.remove_image(&mut index, id, &mut records, users);
            removed.extend(blobs);
            reclaimed += freed;
        }
        if !victims.is_empty() {
            self.write_index(&index)?;
            st.index = index;
            for id in &victims {
                st.configs.remove(id);
            }
        }
        drop(st);
        self.remove_blobs(&removed, users);
        Ok(ImagesPruneReport {
            images_deleted: (!records.is_empty()).then_some(records),
            space_reclaimed: reclaimed,
        })
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let st = self.state();
        let id = resolve_in(&st.index, name)?;
        let c = st.configs.get(&id).cloned().ok_or_else(|| no_such_image(name))?;
        let rec = st.index.images.get(&id).cloned().unwrap_or_default();
        let size = rec.layers.iter().map(|l| l.size).sum::<u64>() as i64;
        Ok(ImageInspect {
            id: id.clone(),
            repo_tags: st.index.tags_of(&id),
            repo_digests: st.index.digests_of(&id),
            parent: rec.parent.clone(),
            // moby's `ImageInspect`: the config's comment, else the last step's.
            comment: match c.comment.as_str() {
                "" => c.history.last().map(|h| h.comment.clone()).unwrap_or_default(),
                comment => comment.to_string(),
            },
            created: c.created.clone().unwrap_or_else(|| ZERO_TIME.into()),
            container: c.container.clone(),
            container_config: c.container_config.clone().unwrap_or_default(),
            docker_version: c.docker_version.clone(),
            author: c.author.clone(),
            config: c.config.clone().or_else(|| Some(ImageRunConfig::default())),
            architecture: c.architecture.clone(),
            variant: c.variant.clone(),
            os: c.os.clone(),
            os_version: c.os_version.clone(),
            size,
            virtual_size: size,
            graph_driver: GraphDriverData::default(),
            root_fs: ImageRootFs { kind: "layers".into(), layers: c.rootfs.diff_ids.clone() },
            metadata: ImageMetadata { last_tag_time: rec.last_tag_time },
        })
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let st = self.state();
        let id = resolve_in(&st.index, name)?;
        let c = st.configs.get(&id).cloned().ok_or_else(|| no_such_image(name))?;
        let rec = st.index.images.get(&id).cloned().unwrap_or_default();
        let mut layers = rec.layers.iter();
        let mut out: Vec<HistoryItem> = c
            .history
            .iter()
            .map(|h| HistoryItem {
                id: "<missing>".into(),
                created: unix(h.created.as_deref()),
                created_by: h.created_by.clone(),
                tags: None,
                size: if h.empty_layer { 0 } else { layers.next().map_or(0, |l| l.size as i64) },
                comment: h.comment.clone(),
            })
            .collect();
        out.reverse();
        // Each step is named by the image and then its parents, as far as they are stored
        // (moby's `ImageHistory`).
        let mut at = Some(id);
        for step in &mut out {
            let Some(id) = at.take() else { break };
            let tags = st.index.tags_of(&id);
            step.tags = (!tags.is_empty()).then_some(tags);
            at = st
                .index
                .images
                .get(&id)
                .map(|r| r.parent.clone())
                .filter(|p| !p.is_empty() && st.index.images.contains_key(p));
            step.id = id;
        }
        Ok(out)
    }

    /// The summary of one image for `GET /images/json`; `tags` are those to show.
    pub fn summary(id: &str, c: &ImageConfig, tags: Vec<String>, size: u64) -> ImageSummary {
        let (repo_tags, repo_digests) = if tags.is_empty() {
            (vec!["<none>:<none>".to_string()], vec!["<none>@<none>".to_string()])
        } else {
            (tags, Vec::new())
        };
        ImageSummary {
            containers: -1,
            created: unix(c.created.as_deref()),
            id: id.to_string(),
            labels: c.config.as_ref().and_then(|r| r.labels.clone()),
            parent_id: String::new(),
            repo_digests,
            repo_tags,
            shared_size: -1,
            size: size as i64,
            virtual_size: size as i64,
        }
    }
}

/// `Untagged: NAME`.
fn untagged(name: String) -> ImageDeleteItem {
    ImageDeleteItem { untagged: Some(name), deleted: None }
}

/// `sha256:` dropped, 12 hex digits: Docker's `TruncateID`.
pub fn short_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Docker's `isImageIDPrefix`.
fn is_id_prefix(id: &str, prefix: &str) -> bool {
    id.starts_with(prefix) || id.split_once(':').is_some_and(|(_, hex)| hex.starts_with(prefix))
}

/// Unix seconds of an RFC 3339 time (0 if absent).
fn unix(t: Option<&str>) -> i64 {
    t.and_then(crate::supervisor::image::config::parse_go_time)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's `GetImage` over an index: an ID (or `sha256:` and one), a tag (`latest` if none
/// given), or an unambiguous ID prefix.
fn resolve_in(index: &Index, name: &str) -> Result<String> {
    let any = AnyReference::parse(name).map_err(|e| Error::invalid(e.to_string()))?;
    match any {
        AnyReference::Id(id) => {
            if index.images.contains_key(&id) {
                Ok(id)
            } else {
                Err(no_such_image(&id))
            }
        }
        AnyReference::Named(r) => {
            let tagged = r.with_default_tag();
            if let Some(id) = index.get_tag(&tagged) {
                return Ok(id.clone());
            }
            search(index, name).ok_or_else(|| no_such_image(&tagged.familiar_string()))
        }
    }
}

/// The one image whose ID starts with `term` (hex, with or without `sha256:`).
fn search(index: &Index, term: &str) -> Option<String> {
    let hex = term.strip_prefix("sha256:").unwrap_or(term);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut found = index.images.keys().filter(|id| id[7..].starts_with(hex));
    let first = found.next()?;
    found.next().is_none().then(|| first.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::image::layer::read_layer;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cproxy-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        Dir(d)
    }

    fn tar_of(text: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", text).unwrap();
        b.into_inner().unwrap()
    }

    /// Imports a one-layer image of `text`, tagged `tags`.
    fn add(s: &ImageStore, text: &[u8], tags: &[&str], comment: &str) -> String {
        let staging = s.stage().unwrap();
        let path = staging.file();
        let info = read_layer(&tar_of(text)[..], Some(&path)).unwrap();
        let config =
            ImageConfig::imported(&info.diff_id, comment, Default::default(), SystemTime::now());
        let tags = tags.iter().map(|t| Reference::parse_normalized(t).unwrap()).collect();
        let img = NewImage { config: config.to_bytes(), layers: vec![(info, Some(path))], tags };
        s.commit(&staging, vec![img]).unwrap().remove(0).id
    }

    fn blobs(s: &ImageStore) -> usize {
        fs::read_dir(s.root.join("blobs/sha256")).unwrap().count()
    }

    #[test]
    fn tags_resolve_and_removal_follows_dockers_rules() {
        let d = dir("rmi");
        let s = ImageStore::open(&d.0, &Users::default()).unwrap();
        let a = add(&s, b"a", &["busybox", "other/name:v1"], "x");
        assert_eq!(blobs(&s), 2);
        assert_eq!(s.resolve("busybox").unwrap(), a);
        assert_eq!(s.resolve("busybox:latest").unwrap(), a);
        assert_eq!(s.resolve(&a).unwrap(), a);
        assert_eq!(s.resolve(&a[7..19]).unwrap(), a);
        assert_eq!(s.resolve("nosuch").unwrap_err().message, "No such image: nosuch:latest");
        assert_eq!(
            s.resolve("UP").unwrap_err().kind,
            crate::supervisor::engine::ErrorKind::InvalidArgument
        );
        let e = s.delete(&a[7..19], false, &Users::default()).unwrap_err();
        assert!(e.message.starts_with("conflict: unable to delete"), "{e}");
        let r = s.delete("busybox", false, &Users::default()).unwrap();
        assert_eq!(r, vec![untagged("busybox:latest".into())]);
        s.tag(&a, &Reference::parse_normalized("b2").unwrap()).unwrap();
        assert_eq!(s.tags(&a), ["b2:latest", "other/name:v1"]);
        let r = s.delete(&a, true, &Users::default()).unwrap();
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[2].deleted.as_deref(), Some(a.as_str()));
        assert_eq!(blobs(&s), 0);
        // The index read back says the same.
        drop(s);
        let s = ImageStore::open(&d.0, &Users::default()).unwrap();
        assert!(s.all().is_empty());
    }

    #[test]
    fn shared_layers_stay_until_the_last_image_goes_and_prune_takes_the_untagged() {
        let d = dir("prune");
        let s = ImageStore::open(&d.0, &Users::default()).unwrap();
        let a = add(&s, b"same", &["a"], "one");
        let b = add(&s, b"same", &[], "two");
        assert_ne!(a, b);
        assert_eq!(blobs(&s), 3);
        let report = s.prune(false, &Users::default()).unwrap();
        assert_eq!(
            report.images_deleted.unwrap(),
            vec![ImageDeleteItem { deleted: Some(b), untagged: None }]
        );
        assert_eq!(report.space_reclaimed, 0);
        assert_eq!(blobs(&s), 2);
        let report = s.prune(true, &Users::default()).unwrap();
        assert_eq!(report.images_deleted.unwrap().len(), 3);
        assert_eq!(report.space_reclaimed, 4);
        assert_eq!(blobs(&s), 0);
        let d2 = s.history("a").unwrap_err();
        assert_eq!(d2.message, "No such image: a:latest");
    }

    #[test]
    fn a_restart_forgets_unreferenced_blobs_and_staging() {
        let d = dir("open");
        let s = ImageStore::open(&d.0, &Users::default()).unwrap();
        let a = add(&s, b"x", &["x"], "c");
        fs::write(s.blob_path(&format!("sha256:{}", "0".repeat(64))), b"orphan").unwrap();
        let st = s.stage().unwrap();
        fs::write(st.file(), b"half").unwrap();
        std::mem::forget(st);
        drop(s);
        let s = ImageStore::open(&d.0, &Users::default()).unwrap();
        assert_eq!(blobs(&s), 2);
        assert_eq!(fs::read_dir(d.0.join("tmp")).unwrap().count(), 0);
        let h = s.history("x").unwrap();
        assert_eq!((h.len(), h[0].id.as_str(), h[0].comment.as_str()), (1, a.as_str(), "c"));
        assert_eq!(h[0].tags, Some(vec!["x:latest".to_string()]));
        let i = s.inspect("x").unwrap();
        assert_eq!((i.size, i.root_fs.layers.len()), (1, 1));
    }
}
