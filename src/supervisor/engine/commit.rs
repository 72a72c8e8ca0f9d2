//! `docker commit` in the daemon, as dockerd 20.10's `CreateImageFromContainer` and
//! `CommitImage` do it: a running container frozen meanwhile (unless asked not to, thawed
//! after whatever happens), its writable layer written as a layer tar the way moby's overlay2
//! `Diff` writes one (whiteouts as `.wh.NAME`, opaque directories as `.wh..wh..opq`), stored
//! content-addressed beside its image's layers as an imported layer is, and a new image of
//! those layers whose config is the container's merged with the request's (moby's `merge`),
//! its history the parent's and one step more. What cproxy itself mounts over in the root
//! (`/etc/hosts`, `/dev`, mount points, …: what `diff` leaves out) is not in the layer.
//! Events as dockerd's: `pause`, `tag` (the image), `commit`, `unpause`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::supervisor::api::types::{ContainerConfig, ImageRunConfig};
use crate::supervisor::engine::changes::Change;
use crate::supervisor::engine::store::Status;
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::image::commit::CommitRequest;
use crate::supervisor::image::config::{Commit, ImageConfig};
use crate::supervisor::image::layer::{LayerInfo, read_layer};
use crate::supervisor::image::store::{ImageStore, NewImage, no_such_image};
use crate::supervisor::os::archive::{Names, TarWriter};

impl Daemon {
    /// `POST /commit`: the new image's ID (`sha256:…`).
    pub async fn commit(&self, c: &Arc<Container>, req: CommitRequest) -> Result<String, Error> {
        let r = c.record();
        // dockerd pauses a running container not paused yet, and unpauses it after.
        let frozen = req.pause
            && r.state.status == Status::Running
            && !r.state.paused
            && self.pause(c).await.is_ok();
        let result = self.commit_container(c, req).await;
        if frozen && let Err(e) = self.unpause(c).await {
            tracing::warn!(container = %c.id, error = %e, "could not unpause after the commit");
        }
        result
    }

    async fn commit_container(
        &self,
        c: &Arc<Container>,
        req: CommitRequest,
    ) -> Result<String, Error> {
        // No start, stop or removal while the layer is read.
        let _op = c.op.lock().await;
        let r = c.record();
        let Some(image) = r.image.clone() else {
            return Err(Error::invalid(format!(
                "cannot commit container {}: a --rootfs container has no layer of its own",
                r.id
            )));
        };
        let container_config = image_run_config(self.inspect(c).config);
        let config = req.config(&container_config)?;
        let reference = req.reference()?;
        let parent = self.images.config(&image.id).ok_or_else(|| no_such_image(&image.id))?;
        let (upper, changes) = self.layer_changes(&r).unwrap_or_default();
        let commit = Commit {
            container: r.id.clone(),
            container_config,
            config,
            author: req.author.clone(),
            comment: req.comment.clone(),
            diff_id: String::new(),
        };
        let store = self.images.clone();
        let tag = reference.clone();
        let parent_id = image.id.clone();
        let committed = tokio::task::spawn_blocking(move || {
            store_commit(&store, &parent, &parent_id, commit, &upper, &changes, tag)
        })
        .await
        .map_err(Error::internal)??;
        let image_ref = match &reference {
            Some(t) => {
                let name = t.familiar_string();
                self.image_event(&committed, "tag", &name);
                name
            }
            None => String::new(),
        };
        self.events.container(
            &r,
            "commit",
            &[
                ("comment", req.comment.clone()),
                ("imageID", committed.clone()),
                ("imageRef", image_ref),
            ],
        );
        Ok(committed)
    }
}

/// Writes the layer, stores the image over `parent` (its layers already stored) and records
/// the parent; the image's ID.
fn store_commit(
    store: &ImageStore,
    parent: &ImageConfig,
    parent_id: &str,
    mut commit: Commit,
    upper: &Path,
    changes: &[Change],
    reference: Option<crate::supervisor::image::reference::Reference>,
) -> Result<String, Error> {
    let staging = store.stage()?;
    let path = staging.file();
    write_layer(upper, changes, &path)
        .map_err(|e| Error::internal(format!("cannot write the container's layer: {e}")))?;
    let file = File::open(&path).map_err(Error::internal)?;
    let info = read_layer(std::io::BufReader::new(file), None)?;
    commit.diff_id = info.diff_id.clone();
    let config = ImageConfig::committed(parent, commit, SystemTime::now());
    let mut layers: Vec<(LayerInfo, Option<std::path::PathBuf>)> = store
        .layers(parent_id)
        .into_iter()
        .map(|l| {
            let stored = LayerInfo {
                digest: l.diff_id.clone(),
                compressed_length: 0,
                diff_id: l.diff_id,
                length: 0,
                size: l.size,
            };
            (stored, None)
        })
        .collect();
    if config.rootfs.diff_ids.len() > layers.len() {
        layers.push((info, Some(path)));
    }
    let image =
        NewImage { config: config.to_bytes(), layers, tags: reference.into_iter().collect() };
    let id = store.commit(&staging, vec![image])?.remove(0).id;
    store.set_parent(&id, parent_id)?;
    Ok(id)
}

/// The changes under `upper` as a layer tar at `dest`, as moby's overlay2 `Diff`: each
/// change's entry (whiteouts and opaque directories converted), Go's headers, names relative
/// (`etc/`, `etc/passwd`), owners named by the daemon's own user database as moby's are.
fn write_layer(upper: &Path, changes: &[Change], dest: &Path) -> std::io::Result<()> {
    let out = BufWriter::new(File::create(dest)?);
    let mut tar = TarWriter::new(out, Names::read());
    for ch in changes {
        let rel = ch.path.trim_start_matches('/');
        tar.add_overlay(&upper.join(rel), rel)?;
    }
    let mut out = tar.finish()?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// The container's config as an image records it (`container_config`, and what the new
/// image's `config` starts from): `inspect`'s `Config`, `null` where dockerd has `null`.
fn image_run_config(c: ContainerConfig) -> ImageRunConfig {
    ImageRunConfig {
        hostname: c.hostname,
        user: c.user,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: c.exposed_ports,
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env.filter(|e| !e.is_empty()),
        cmd: Some(c.cmd).filter(|e| !e.is_empty()),
        image: c.image,
        volumes: c.volumes,
        working_dir: c.working_dir,
        entrypoint: c.entrypoint,
        labels: c.labels,
        stop_signal: c.stop_signal.unwrap_or_default(),
        stop_timeout: c.stop_timeout,
        ..ImageRunConfig::default()
    }
}
