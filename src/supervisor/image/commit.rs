//! `docker commit`'s request, the pure part: `POST /commit`'s query and body read as dockerd
//! 20.10's `postCommit` reads them, checked in its words before anything is written. The
//! engine ([`crate::supervisor::engine::commit`]) makes the image.

use crate::supervisor::api::types::ImageRunConfig;
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::config::{apply_changes, merge};
use crate::supervisor::image::reference::Reference;

/// `POST /commit`'s query, as given.
#[derive(Clone, Debug, Default)]
pub struct CommitQuery<'a> {
    /// `container`.
    pub container: &'a str,
    /// `repo`.
    pub repo: &'a str,
    /// `tag`.
    pub tag: &'a str,
    /// `author`.
    pub author: &'a str,
    /// `comment`.
    pub comment: &'a str,
    /// `pause`, if given.
    pub pause: Option<&'a str>,
    /// Each `changes`, Dockerfile instructions.
    pub changes: Vec<String>,
}

/// A commit asked for, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitRequest {
    /// The container, as named.
    pub container: String,
    /// `repo`: the name to give the image, if not empty ([`CommitRequest::reference`]).
    pub repo: String,
    /// `tag`: its tag (`latest` if neither this nor `repo` names one).
    pub tag: String,
    /// `-a`.
    pub author: String,
    /// `-m`.
    pub comment: String,
    /// Whether to freeze a running container meanwhile (dockerd's default since API 1.13).
    pub pause: bool,
    /// The `--change` instructions, as given: applied (and refused) once the container is
    /// found and paused, as dockerd applies them.
    pub changes: Vec<String>,
    /// The body's config, which replaces the container's before the changes (`None`: the
    /// body was empty, `null`, or named no config field).
    pub config: Option<ImageRunConfig>,
}

/// Keys of a create body that are not the config's (moby's `ContainerConfigWrapper`).
const NOT_CONFIG: [&str; 2] = ["HostConfig", "NetworkingConfig"];

impl CommitRequest {
    /// Reads the query and body in dockerd's order and words: a `Content-Type` other than
    /// JSON (400), a body that is not JSON (500). The container is looked up by the caller;
    /// the changes and [`CommitRequest::reference`] are checked after it, as dockerd does.
    pub fn new(q: &CommitQuery, body: &[u8]) -> Result<CommitRequest> {
        let config = body_config(body)?;
        // httputils.BoolValue, with API 1.13's default of true when not given.
        let pause = match q.pause.map(|p| p.trim().to_ascii_lowercase()) {
            None => true,
            Some(p) if p.is_empty() => true,
            Some(p) => !matches!(p.as_str(), "0" | "no" | "false" | "none"),
        };
        Ok(CommitRequest {
            container: q.container.to_string(),
            repo: q.repo.to_string(),
            tag: q.tag.to_string(),
            author: q.author.to_string(),
            comment: q.comment.to_string(),
            pause,
            changes: q.changes.clone(),
            config,
        })
    }

    /// The new image's config: the body's, else the container's (`container`), with the
    /// changes applied (dockerd's `BuildFromConfig`, its refusals 400), then what it leaves
    /// unset taken from the container's ([`merge`]).
    pub fn config(&self, container: &ImageRunConfig) -> Result<ImageRunConfig> {
        let mut config = self.config.clone().unwrap_or_else(|| container.clone());
        apply_changes(&mut config, &self.changes).map_err(Error::invalid)?;
        merge(&mut config, container);
        Ok(config)
    }

    /// The tag `repo` and `tag` name (`latest` if none), as dockerd's `TagImage` reads them:
    /// its parse errors are 500s, a digest a 400. dockerd tags once the image is made, so
    /// its image stays untagged after such a refusal; here the engine asks first and makes
    /// nothing.
    pub fn reference(&self) -> Result<Option<Reference>> {
        if self.repo.is_empty() {
            return Ok(None);
        }
        let internal =
            |e: crate::supervisor::image::reference::RefError| Error::internal(e.to_string());
        let mut r = Reference::parse_normalized(&self.repo).map_err(internal)?;
        if !self.tag.is_empty() {
            r = r.with_tag(&self.tag).map_err(internal)?;
        }
        if r.digest().is_some() {
            return Err(Error::invalid("refusing to create a tag with a digest reference"));
        }
        Ok(Some(r.with_default_tag()))
    }
}

/// `application/json`, with parameters or not (moby's `matchesContentType`).
/// The body's config: none for an empty body, `null`, or an object of only host or
/// networking settings.
fn body_config(body: &[u8]) -> Result<Option<ImageRunConfig>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(Error::internal)?;
    let named = match &value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Object(m) => m.keys().any(|k| !NOT_CONFIG.contains(&k.as_str())),
        _ => true,
    };
    if !named {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::engine::ErrorKind;

    fn query<'a>(repo: &'a str, tag: &'a str) -> CommitQuery<'a> {
        CommitQuery { container: "c1", repo, tag, ..CommitQuery::default() }
    }

    fn reference(q: &CommitQuery) -> Result<Option<Reference>> {
        CommitRequest::new(q, b"").unwrap().reference()
    }

    #[test]
    fn requests_read_as_dockerd_reads_them() {
        let r = CommitRequest::new(&query("me/img", "v1"), b"").unwrap();
        assert_eq!(r.reference().unwrap().unwrap().familiar_string(), "me/img:v1");
        assert!(r.pause && r.config.is_none());
        let r = CommitRequest::new(&query("bb", ""), b"null").unwrap();
        assert_eq!(r.reference().unwrap().unwrap().familiar_string(), "bb:latest");
        let r = CommitRequest::new(&query("", "x"), b"{}").unwrap();
        assert!(r.config.is_none() && r.reference().unwrap().is_none());
        let q = CommitQuery { pause: Some("0"), ..query("", "") };
        assert!(!CommitRequest::new(&q, b"").unwrap().pause);
        let q = CommitQuery { pause: Some(""), ..query("", "") };
        assert!(CommitRequest::new(&q, b"").unwrap().pause);
        let body = br#"{"Cmd":["echo","body"],"Env":["A=1"],"HostConfig":{}}"#;
        let r = CommitRequest::new(&query("", ""), body).unwrap();
        assert_eq!(r.config.unwrap().cmd.unwrap(), ["echo", "body"]);
        let r = CommitRequest::new(&query("", ""), br#"{"HostConfig":{}}"#).unwrap();
        assert!(r.config.is_none());
    }

    #[test]
    fn refusals_are_dockerds() {
        // Each as dockerd 20.10 answered it (tests/fixtures/docker-20.10-commit/api.txt).
        let e = reference(&query("Bad", "")).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Internal, "invalid reference format: repository name must be lowercase")
        );
        let e = reference(&query("bb", "a:b")).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Internal, "invalid tag format"));
        let d = format!("bb@sha256:{}", "a".repeat(64));
        let e = reference(&query(&d, "")).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "refusing to create a tag with a digest reference")
        );
        let config = |change: &str| {
            let q = CommitQuery { changes: vec![change.into()], ..query("", "") };
            CommitRequest::new(&q, b"").unwrap().config(&ImageRunConfig::default())
        };
        let e = config("BOGUS x").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "bogus is not a valid change command")
        );
        assert_eq!(config("EXPOSE abc").unwrap_err().message, "Invalid containerPort: abc");
        // A bare CMD is taken (an empty command), as dockerd took it.
        assert!(config("CMD").is_ok());
        let e = CommitRequest::new(&query("", ""), b"{bad").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
    }
}
