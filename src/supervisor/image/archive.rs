//! `docker save` and `docker load`: Docker's image archive (`manifest.json`, `repositories`,
//! `<config>.json`, `<layer>/layer.tar`, as Docker 20.10 writes it) and the OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`), both read by `load` and both written by
//! `save` in one tar (the OCI blobs are symlinks to the Docker archive's files, so nothing
//! is there twice).
//!
//! `load` reads the tar as a stream, never extracting it: each file is kept (small ones in
//! memory, the rest in the staging directory) with its sha256, links are resolved inside the
//! archive, and every config and layer is checked against the digests that name it before
//! anything is stored; then all the images are committed at once.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::image::{
    Descriptor, Digest, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, OciLayoutBuilder,
};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::config::{ImageConfig, go_arch};
use crate::supervisor::image::layer::{LayerInfo, digest_of, hex_digest, read_layer};
use crate::supervisor::image::reference::{AnyReference, Reference};
use crate::supervisor::image::store::{
    ImageStore, LayerRecord, NewImage, Staging, chain_ids, no_such_image,
};

/// Files up to this size are kept in memory while the archive is read.
const IN_MEMORY: u64 = 1 << 20;
/// At most this much is kept in memory in all; the rest goes to the staging directory.
const MEMORY_BUDGET: u64 = 64 << 20;
/// The largest JSON file (manifest, index, config) read.
const MAX_JSON: u64 = 16 << 20;
/// Links followed from one name at most.
const MAX_LINKS: usize = 32;

/// One item of `manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The config's file.
    #[serde(rename = "Config")]
    pub config: String,
    /// `busybox:latest`, …
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layers' tar files, bottom first.
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

/// A file of the archive.
enum Content {
    Memory(Vec<u8>),
    File(PathBuf, u64),
}

/// What the archive holds: files by their normalized path, with their sha256, and links.
#[derive(Default)]
struct Entries {
    files: HashMap<String, (Content, String)>,
    /// Symlinks and hard links, to the normalized path they name.
    links: HashMap<String, String>,
}

/// A path inside the archive without `./`, `.` and `..` (`..` past the top is refused).
fn normalize(path: &str) -> std::result::Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("invalid archive: {path:?} points outside the archive"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::invalid(e.to_string())
}

impl Entries {
    /// Reads the whole tar from `input`.
    fn read(input: impl Read, staging: &Staging) -> Result<Entries> {
        let mut out = Entries::default();
        let mut in_memory = 0u64;
        let mut archive = tar::Archive::new(input);
        let bad = |e: io::Error| Error::invalid(format!("Error processing tar file: {e}"));
        let mut any = false;
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            any = true;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize(&raw).map_err(Error::invalid)?;
            let kind = entry.header().entry_type();
            let link = || -> Result<String> {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    Error::invalid(format!("invalid archive: link {raw:?} has no target"))
                })?;
                Ok(String::from_utf8_lossy(&target).into_owned())
            };
            match kind {
                tar::EntryType::Symlink => {
                    let target = link()?;
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    let joined =
                        if target.starts_with('/') { target } else { format!("{dir}/{target}") };
                    out.links.insert(path, normalize(&joined).map_err(Error::invalid)?);
                }
                tar::EntryType::Link => {
                    let target = normalize(&link()?).map_err(Error::invalid)?;
                    out.links.insert(path, target);
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    out.links.remove(&path);
                    let content = if size <= IN_MEMORY && in_memory + size <= MEMORY_BUDGET {
                        let mut data = Vec::with_capacity(size as usize);
                        entry.read_to_end(&mut data).map_err(bad)?;
                        in_memory += size;
                        let d = digest_of(&data);
                        (Content::Memory(data), d)
                    } else {
                        let p = staging.file();
                        let mut f = File::create(&p).map_err(Error::internal)?;
                        let mut h = sha2::Sha256::new();
                        let mut buf = vec![0u8; 256 * 1024];
                        let mut n = 0u64;
                        loop {
                            let k = entry.read(&mut buf).map_err(bad)?;
                            if k == 0 {
                                break;
                            }
                            h.update(&buf[..k]);
                            f.write_all(&buf[..k]).map_err(|e| {
                                Error::internal(format!("cannot stage the archive: {e}"))
                            })?;
                            n += k as u64;
                        }
                        if n != size {
                            return Err(bad(io::ErrorKind::UnexpectedEof.into()));
                        }
                        (Content::File(p, n), hex_digest(h))
                    };
                    out.files.insert(path, content);
                }
                _ => {}
            }
        }
        if !any {
            return Err(Error::invalid(
                "invalid archive: it is empty (no manifest.json, no index.json)",
            ));
        }
        Ok(out)
    }

    /// The file at `path`, links followed.
    fn get(&self, path: &str) -> Option<&(Content, String)> {
        let mut p = normalize(path).ok()?;
        for _ in 0..MAX_LINKS {
            if let Some(f) = self.files.get(&p) {
                return Some(f);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    fn missing(path: &str) -> Error {
        Error::invalid(format!("invalid archive: {path} is not in the archive"))
    }

    /// A small file's bytes.
    fn bytes(&self, path: &str) -> Result<Vec<u8>> {
        match self.get(path).ok_or_else(|| Entries::missing(path))? {
            (Content::Memory(d), _) => Ok(d.clone()),
            (Content::File(p, n), _) => {
                if *n > MAX_JSON {
                    return Err(Error::invalid(format!("invalid archive: {path} is too large")));
                }
                std::fs::read(p).map_err(Error::internal)
            }
        }
    }

    /// Reads the layer at `path` (compressed or not), checks it and stages its uncompressed
    /// tar; what it found and where the tar is.
    fn layer(&self, path: &str, staging: &Staging) -> Result<(LayerInfo, PathBuf)> {
        let layer_error = |e: Error| e.context(format!("{path}: "));
        match self.get(path).ok_or_else(|| Entries::missing(path))? {
            (Content::Memory(d), _) => {
                let out = staging.file();
                let info = read_layer(&d[..], Some(&out)).map_err(layer_error)?;
                Ok((info, out))
            }
            (Content::File(p, _), _) => {
                let open = || File::open(p).map_err(Error::internal);
                let info = read_layer(open()?, None).map_err(layer_error)?;
                if info.digest == info.diff_id {
                    // Not compressed: the staged file is the layer's tar.
                    return Ok((info, p.clone()));
                }
                let out = staging.file();
                let info = read_layer(open()?, Some(&out)).map_err(layer_error)?;
                Ok((info, out))
            }
        }
    }

    /// An OCI blob by its descriptor, checked against the descriptor's digest and size.
    fn blob(&self, d: &Descriptor) -> Result<(String, &(Content, String))> {
        let digest = d.digest().to_string();
        let (alg, hex) = digest.split_once(':').unwrap_or(("", ""));
        let path = format!("blobs/{alg}/{hex}");
        let entry = self.get(&path).ok_or_else(|| Entries::missing(&path))?;
        let size = match &entry.0 {
            Content::Memory(b) => b.len() as u64,
            Content::File(_, n) => *n,
        };
        if entry.1 != digest || size != d.size() {
            return Err(Error::invalid(format!(
                "invalid archive: {path} does not match its digest ({} bytes, {})",
                size, entry.1
            )));
        }
        Ok((path, entry))
    }
}

/// An image read from the archive, before it is stored.
struct Loaded {
    image: NewImage,
}

/// Reads config and layers named by a manifest, checking them against each other.
fn read_image(
    store: &ImageStore,
    entries: &Entries,
    staging: &Staging,
    config: Vec<u8>,
    layers: &[String],
    tags: Vec<Reference>,
) -> Result<Loaded> {
    let parsed = ImageConfig::parse(&config).map_err(Error::invalid)?;
    let want = &parsed.rootfs.diff_ids;
    if want.len() != layers.len() {
        return Err(Error::invalid(format!(
            "invalid manifest, layers length mismatch: expected {}, got {}",
            want.len(),
            layers.len()
        )));
    }
    let mut out = Vec::new();
    for (i, (path, expected)) in layers.iter().zip(want).enumerate() {
        if store.has_blob(expected) {
            // Stored already (Docker skips a layer it has, too); its size is the store's.
            let size = store_size(store, expected);
            let info = LayerInfo {
                digest: expected.clone(),
                compressed_length: 0,
                diff_id: expected.clone(),
                length: 0,
                size,
            };
            out.push((info, None));
            continue;
        }
        let (info, staged) = entries.layer(path, staging)?;
        if &info.diff_id != expected {
            return Err(Error::invalid(format!(
                "invalid diffID for layer {i}: expected {expected:?}, got {:?}",
                info.diff_id
            )));
        }
        out.push((info, Some(staged)));
    }
    Ok(Loaded { image: NewImage { config, layers: out, tags } })
}

/// The size the store recorded for a layer it has.
fn store_size(store: &ImageStore, diff_id: &str) -> u64 {
    store
        .all()
        .iter()
        .flat_map(|(id, ..)| store.layers(id))
        .find(|l| l.diff_id == diff_id)
        .map_or(0, |l| l.size)
}

/// A tag of `manifest.json` (`busybox:latest`).
fn parse_tag(t: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(t).map_err(invalid)?;
    if r.tag().is_none() {
        return Err(Error::invalid(format!("invalid tag {t:?}")));
    }
    Ok(r)
}

/// `POST /images/load`: reads an archive (Docker's, or an OCI layout) from `input` and
/// stores its images; the lines Docker prints (`Loaded image: busybox:latest`).
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<String>> {
    let staging = store.stage()?;
    let entries = Entries::read(input, &staging)?;
    let mut images = Vec::new();
    if entries.get("manifest.json").is_some() {
        let manifest: Vec<ManifestItem> = serde_json::from_slice(&entries.bytes("manifest.json")?)
            .map_err(|e| Error::invalid(format!("invalid archive: manifest.json: {e}")))?;
        for item in manifest {
            let tags =
                item.repo_tags.iter().flatten().map(|t| parse_tag(t)).collect::<Result<_>>()?;
            let config = entries.bytes(&item.config)?;
            images.push(read_image(store, &entries, &staging, config, &item.layers, tags)?);
        }
    } else if entries.get("index.json").is_some() {
        let index = ImageIndex::from_reader(&entries.bytes("index.json")?[..])
            .map_err(|e| Error::invalid(format!("invalid archive: index.json: {e}")))?;
        for d in index.manifests() {
            let tags = oci_names(d).into_iter().collect();
            let manifest = oci_manifest(&entries, d, 0)?;
            let (_, config) = entries.blob(manifest.config())?;
            let config = match &config.0 {
                Content::Memory(b) => b.clone(),
                Content::File(p, _) => std::fs::read(p).map_err(Error::internal)?,
            };
            let mut layers = Vec::new();
            for l in manifest.layers() {
                layers.push(entries.blob(l)?.0);
            }
            images.push(read_image(store, &entries, &staging, config, &layers, tags)?);
        }
    } else {
        return Err(Error::invalid(
            "invalid archive: neither a Docker image archive (manifest.json) nor an OCI image \
             layout (index.json)",
        ));
    }
    let committed = store.commit(&staging, images.into_iter().map(|l| l.image).collect())?;
    let mut lines = Vec::new();
    for c in committed {
        if c.tags.is_empty() {
            lines.push(format!("Loaded image ID: {}", c.id));
        }
        for (tag, old) in c.tags {
            if let Some(old) = old {
                lines.push(format!(
                    "The image {tag} already exists, renaming the old one with ID {old} to empty \
                     string"
                ));
            }
            lines.push(format!("Loaded image: {tag}"));
        }
    }
    Ok(lines)
}

/// The name an OCI index entry gives its image: containerd's `io.containerd.image.name`, or
/// a full reference in `org.opencontainers.image.ref.name` (a bare tag names no repository).
fn oci_names(d: &Descriptor) -> Option<Reference> {
    let ann = d.annotations().as_ref()?;
    if let Some(n) = ann.get("io.containerd.image.name") {
        return Reference::parse_normalized(n).ok().map(Reference::with_default_tag);
    }
    let n = ann.get("org.opencontainers.image.ref.name")?;
    if !n.contains([':', '/']) {
        return None;
    }
    Reference::parse_normalized(n).ok().map(Reference::with_default_tag)
}

/// The image manifest an index entry names: itself, or, for an index (a multi-platform
/// image), the entry for this machine's platform.
fn oci_manifest(entries: &Entries, d: &Descriptor, depth: usize) -> Result<ImageManifest> {
    if depth > 4 {
        return Err(Error::invalid("invalid archive: indexes nested too deep"));
    }
    let (path, _) = entries.blob(d)?;
    let bytes = entries.bytes(&path)?;
    match d.media_type().as_ref() {
        "application/vnd.oci.image.index.v1+json"
        | "application/vnd.docker.distribution.manifest.list.v2+json" => {
            let index = ImageIndex::from_reader(&bytes[..])
                .map_err(|e| Error::invalid(format!("invalid archive: {path}: {e}")))?;
            let arch = go_arch();
            let pick = index.manifests().iter().find(|m| {
                m.platform().as_ref().is_none_or(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == arch
                })
            });
            let m = pick.ok_or_else(|| {
                Error::invalid(format!("invalid archive: no image for linux/{arch} in {path}"))
            })?;
            oci_manifest(entries, m, depth + 1)
        }
        _ => ImageManifest::from_reader(&bytes[..])
            .map_err(|e| Error::invalid(format!("invalid archive: {path}: {e}"))),
    }
}

/// The images `save` writes, each with the tags to write: resolved before a byte is written,
/// so a missing image is an error answer, not a broken archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavePlan {
    images: Vec<(String, Vec<String>)>,
}

impl SavePlan {
    /// Docker's `parseNames`: `busybox` is every tag of the repository, `busybox:1` that tag,
    /// an ID (or prefix) the image without tags.
    pub fn new(store: &ImageStore, names: &[String]) -> Result<SavePlan> {
        let mut plan = SavePlan::default();
        let mut add = |id: String, tag: Option<String>| {
            let i = match plan.images.iter().position(|(i, _)| *i == id) {
                Some(i) => i,
                None => {
                    plan.images.push((id, Vec::new()));
                    plan.images.len() - 1
                }
            };
            if let Some(t) = tag
                && !plan.images[i].1.contains(&t)
            {
                plan.images[i].1.push(t);
            }
        };
        for name in names {
            let not_found = |e: Error| {
                if e.kind == crate::supervisor::engine::ErrorKind::NotFound {
                    no_such_image(name)
                } else {
                    e
                }
            };
            match AnyReference::parse(name).map_err(invalid)? {
                AnyReference::Id(_) => add(store.resolve(name).map_err(not_found)?, None),
                AnyReference::Named(r) if r.tag().is_none() && r.digest().is_none() => {
                    let tags = store.repository(&r);
                    if tags.is_empty() {
                        add(store.resolve(name).map_err(not_found)?, None);
                    }
                    for (t, id) in tags {
                        add(id, Some(t));
                    }
                }
                AnyReference::Named(r) => {
                    let id = store.tagged(&r).ok_or_else(|| no_such_image(name))?;
                    add(id, Some(r.familiar_string()));
                }
            }
        }
        Ok(plan)
    }
}

/// A v1 layer ID (the Docker archive's directory of a layer): a digest of its chain ID, its
/// parent's v1 ID, and for the top layer the image's ID.
fn v1_id(chain: &str, parent: Option<&str>, image: Option<&str>) -> String {
    let v = serde_json::json!({"layer_id": chain, "parent": parent, "image": image});
    digest_of(v.to_string().as_bytes())[7..].to_string()
}

/// Writes the plan's images as one tar to `out`: Docker 20.10's layout and the OCI layout.
pub fn save(store: &ImageStore, plan: &SavePlan, out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index_entries = Vec::new();
    let mut layer_dirs: BTreeMap<String, ()> = BTreeMap::new();
    // diff ID → the layer.tar that holds it.
    let mut layer_files: HashMap<String, String> = HashMap::new();
    // The OCI blobs already linked.
    let mut linked = std::collections::HashSet::new();
    for (id, tags) in &plan.images {
        let hex = &id[7..];
        let config_bytes = std::fs::read(store.blob_path(id))?;
        let config = ImageConfig::parse(&config_bytes).map_err(io::Error::other)?;
        let mtime = config
            .created_time()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        file(&mut tar, &format!("{hex}.json"), &config_bytes, mtime)?;
        let layers: Vec<LayerRecord> = store.layers(id);
        let chains = chain_ids(&layers);
        let mut parent: Option<String> = None;
        let mut paths = Vec::new();
        for (i, (layer, chain)) in layers.iter().zip(&chains).enumerate() {
            let top = i + 1 == layers.len();
            let v1 = v1_id(chain, parent.as_deref(), top.then_some(id.as_str()));
            let tar_path = format!("{v1}/layer.tar");
            if layer_dirs.insert(v1.clone(), ()).is_none() {
                dir(&mut tar, &format!("{v1}/"), mtime)?;
                file(&mut tar, &format!("{v1}/VERSION"), b"1.0", mtime)?;
                let mut legacy = serde_json::json!({"id": v1});
                if let Some(p) = &parent {
                    legacy["parent"] = p.clone().into();
                }
                legacy["created"] = "1970-01-01T00:00:00Z".into();
                if top {
                    legacy["created"] = config.created.clone().unwrap_or_default().into();
                    legacy["architecture"] = config.architecture.clone().into();
                    if let Some(c) = &config.config {
                        legacy["config"] = serde_json::to_value(c).unwrap_or_default();
                    }
                }
                legacy["os"] = config.os.clone().into();
                file(&mut tar, &format!("{v1}/json"), legacy.to_string().as_bytes(), mtime)?;
                match layer_files.get(&layer.diff_id) {
                    Some(existing) => {
                        symlink(&mut tar, &tar_path, &format!("../{existing}"), mtime)?
                    }
                    None => {
                        let blob = File::open(store.blob_path(&layer.diff_id))?;
                        let len = blob.metadata()?.len();
                        let mut h = header(tar::EntryType::Regular, 0o644, len, mtime);
                        tar.append_data(&mut h, &tar_path, blob)?;
                        layer_files.insert(layer.diff_id.clone(), tar_path.clone());
                    }
                }
            }
            paths.push(tar_path);
            parent = Some(v1);
        }
        for t in tags {
            if let Ok(r) = Reference::parse_normalized(t) {
                let tag = r.tag().unwrap_or("latest").to_string();
                repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(tag, parent.clone().unwrap_or_default());
            }
        }
        manifest.push(ManifestItem {
            config: format!("{hex}.json"),
            repo_tags: (!tags.is_empty()).then(|| tags.clone()),
            layers: paths,
        });
        // The OCI side: a manifest blob, and the config and layers as links to the files above.
        let oci = oci_manifest_for(id, config_bytes.len() as u64, &layers, store)?;
        let oci_bytes = oci.to_string().map_err(io::Error::other)?.into_bytes();
        let oci_digest = digest_of(&oci_bytes);
        file(&mut tar, &format!("blobs/sha256/{}", &oci_digest[7..]), &oci_bytes, mtime)?;
        index_entries.push((oci_digest, oci_bytes.len() as u64, tags.clone()));
        blob_link(&mut tar, id, &format!("{hex}.json"), mtime)?;
        for l in &layers {
            if let Some(f) = layer_files.get(&l.diff_id).cloned()
                && linked.insert(l.diff_id.clone())
            {
                blob_link(&mut tar, &l.diff_id, &f, mtime)?;
            }
        }
    }
    let manifest = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    file(&mut tar, "manifest.json", &manifest, 0)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories).map_err(io::Error::other)?;
        file(&mut tar, "repositories", &repos, 0)?;
    }
    let index = oci_index(index_entries)?;
    file(&mut tar, "index.json", index.to_string().map_err(io::Error::other)?.as_bytes(), 0)?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(io::Error::other)?;
    file(&mut tar, "oci-layout", layout.to_string().map_err(io::Error::other)?.as_bytes(), 0)?;
    tar.into_inner()?.flush()
}

fn oci_manifest_for(
    id: &str,
    config_len: u64,
    layers: &[LayerRecord],
    store: &ImageStore,
) -> io::Result<ImageManifest> {
    let digest = |d: &str| Digest::from_str(d).map_err(io::Error::other);
    let config = Descriptor::new(MediaType::ImageConfig, config_len, digest(id)?);
    let mut descs = Vec::new();
    for l in layers {
        let len = std::fs::metadata(store.blob_path(&l.diff_id))?.len();
        descs.push(Descriptor::new(MediaType::ImageLayer, len, digest(&l.diff_id)?));
    }
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(descs)
        .build()
        .map_err(io::Error::other)
}

/// `index.json`: one entry per tag (named as containerd and Docker 25 name them), one for an
/// image saved without a tag.
fn oci_index(entries: Vec<(String, u64, Vec<String>)>) -> io::Result<ImageIndex> {
    let mut manifests = Vec::new();
    for (digest, len, tags) in entries {
        let d = Digest::from_str(&digest).map_err(io::Error::other)?;
        if tags.is_empty() {
            manifests.push(Descriptor::new(MediaType::ImageManifest, len, d.clone()));
        }
        for t in tags {
            let Ok(r) = Reference::parse_normalized(&t) else { continue };
            let mut desc = Descriptor::new(MediaType::ImageManifest, len, d.clone());
            let ann = HashMap::from([
                ("io.containerd.image.name".to_string(), r.to_string()),
                (
                    "org.opencontainers.image.ref.name".to_string(),
                    r.tag().unwrap_or("latest").to_string(),
                ),
            ]);
            desc.set_annotations(Some(ann));
            manifests.push(desc);
        }
    }
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .map_err(io::Error::other)
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64, mtime);
    tar.append_data(&mut h, path, data)
}

fn dir<W: Write>(tar: &mut tar::Builder<W>, path: &str, mtime: u64) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
    tar.append_data(&mut h, path, io::empty())
}

fn symlink<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    target: &str,
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
    tar.append_link(&mut h, path, target)
}

/// `blobs/sha256/<hex>` as a link to the file of the Docker archive that holds it (once).
fn blob_link<W: Write>(
    tar: &mut tar::Builder<W>,
    digest: &str,
    target: &str,
    mtime: u64,
) -> io::Result<()> {
    symlink(tar, &format!("blobs/sha256/{}", &digest[7..]), &format!("../../{target}"), mtime)
}
