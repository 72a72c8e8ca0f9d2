//! `docker import`: a root filesystem tarball (plain or gzip/zstd-compressed) becomes a
//! one-layer image, its config saying `Imported from -` (or the `-m` message) and carrying
//! what `--change` set.

use std::io::Read;
use std::time::SystemTime;

use crate::supervisor::api::types::ImageRunConfig;
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::config::{ImageConfig, apply_changes};
use crate::supervisor::image::layer::read_layer;
use crate::supervisor::image::reference::Reference;
use crate::supervisor::image::store::{ImageStore, NewImage};

/// What `POST /images/create?fromSrc=-` asks, checked before the tarball is read.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The tag to give it, if any.
    pub reference: Option<Reference>,
    /// The config's comment.
    pub comment: String,
    /// The defaults `--change` set.
    pub run: ImageRunConfig,
}

impl ImportRequest {
    /// Checks the query's `repo`, `tag`, `message` and `changes` as Docker's `ImportImage`
    /// does, in its words.
    pub fn new(repo: &str, tag: &str, message: &str, changes: &[String]) -> Result<ImportRequest> {
        let reference = if repo.is_empty() {
            None
        } else {
            let mut r =
                Reference::parse_normalized(repo).map_err(|e| Error::invalid(e.to_string()))?;
            if r.digest().is_some() {
                return Err(Error::invalid("cannot import digest reference"));
            }
            if !tag.is_empty() {
                r = r.with_tag(tag).map_err(|e| Error::invalid(e.to_string()))?;
            }
            Some(r.with_default_tag())
        };
        let mut run = ImageRunConfig::default();
        apply_changes(&mut run, changes).map_err(Error::invalid)?;
        let comment =
            if message.is_empty() { "Imported from -".to_string() } else { message.to_string() };
        Ok(ImportRequest { reference, comment, run })
    }
}

/// Reads the tarball from `input` into a new image; its ID.
pub fn import(store: &ImageStore, req: ImportRequest, input: impl Read) -> Result<String> {
    let staging = store.stage()?;
    let path = staging.file();
    let info = read_layer(input, Some(&path))?;
    let config = ImageConfig::imported(&info.diff_id, &req.comment, req.run, SystemTime::now());
    let image = NewImage {
        config: config.to_bytes(),
        layers: vec![(info, Some(path))],
        tags: req.reference.into_iter().collect(),
    };
    let mut done = store.commit(&staging, vec![image])?;
    Ok(done.remove(0).id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_in_dockers_words() {
        let r = ImportRequest::new("busybox", "", "", &[]).unwrap();
        assert_eq!(r.reference.unwrap().familiar_string(), "busybox:latest");
        assert_eq!(r.comment, "Imported from -");
        let r = ImportRequest::new("me/bb:1", "", "msg", &["CMD [\"sh\"]".into()]).unwrap();
        assert_eq!(r.reference.unwrap().familiar_string(), "me/bb:1");
        assert_eq!((r.comment.as_str(), r.run.cmd), ("msg", Some(vec!["sh".to_string()])));
        let r = ImportRequest::new("me/bb", "v2", "", &[]).unwrap();
        assert_eq!(r.reference.unwrap().familiar_string(), "me/bb:v2");
        assert!(ImportRequest::new("", "", "", &[]).unwrap().reference.is_none());
        let e = ImportRequest::new("Bad", "", "", &[]).unwrap_err();
        assert_eq!(e.message, "invalid reference format: repository name must be lowercase");
        let d = format!("bb@sha256:{}", "a".repeat(64));
        assert_eq!(
            ImportRequest::new(&d, "", "", &[]).unwrap_err().message,
            "cannot import digest reference"
        );
        let e = ImportRequest::new("bb", "", "", &["RUN x".into()]).unwrap_err();
        assert_eq!(e.message, "run is not a valid change command");
    }
}
