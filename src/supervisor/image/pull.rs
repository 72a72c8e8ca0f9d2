//! `docker pull`: an image fetched from a registry with the OCI distribution client
//! (`oci-client`: token auth, manifests, blobs), verified and stored as `load` stores one.
//!
//! The manifest is read first (an index or a manifest list resolved to this machine's
//! platform), so that a name the registry does not know is an error answer before any
//! progress is sent, in Docker's words. Then, as moby's `pullSchema2`: an image whose config
//! is stored already is only tagged; else the config, then each layer not stored yet, each
//! blob's sha256 checked as it arrives into `image/tmp`, then read through (gzip, zstd or
//! plain) into its uncompressed tar, whose diff ID must be the config's. The image and its
//! tags are committed only when everything is verified: a failed pull leaves no blob, no
//! image and no tag.
//!
//! Registries are reached over HTTPS, except those `--insecure-registry` names and the
//! loopback ones (127.0.0.0/8, `::1`, `localhost`), which dockerd treats as insecure by
//! default; those are reached over plain HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use tokio::sync::mpsc::Sender;

use crate::supervisor::api::types::JsonMessage;
use crate::supervisor::engine::error::{Error, Result};
use crate::supervisor::image::config::{ImageConfig, go_arch};
use crate::supervisor::image::layer::{LayerInfo, read_layer};
use crate::supervisor::image::reference::{DEFAULT_DOMAIN, Reference};
use crate::supervisor::image::store::{ImageStore, NewImage, short_id};

/// Docker Hub's registry endpoint, for names under `docker.io`.
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// Where images are pulled from: which registries are spoken to over plain HTTP.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    insecure: Vec<String>,
}

impl Registries {
    /// `--insecure-registry HOST[:PORT]`, each checked as dockerd checks them.
    pub fn new(insecure: &[String]) -> std::result::Result<Registries, String> {
        for r in insecure {
            if r.contains("://") {
                return Err(format!("insecure registry {r} should not contain '://'"));
            }
            if r.is_empty() || r.contains(['/', ' ']) {
                return Err(format!("insecure registry {r} is not a valid HOST[:PORT]"));
            }
        }
        Ok(Registries { insecure: insecure.to_vec() })
    }

    /// Whether `domain` (`HOST[:PORT]`) is spoken to over plain HTTP: named by
    /// `--insecure-registry` (with or without its port), or a loopback host.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        if self.insecure.iter().any(|r| r == domain || r == host) {
            return true;
        }
        host == "localhost"
            || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(
                |ip| match ip {
                    IpAddr::V4(v4) => v4.is_loopback(),
                    IpAddr::V6(v6) => v6.is_loopback(),
                },
            )
    }
}

/// The host of `HOST[:PORT]` (`[::1]:5000` → `[::1]`).
fn host_of(domain: &str) -> &str {
    if domain.starts_with('[') {
        return domain.split_once(']').map_or(domain, |(h, _)| &domain[..h.len() + 1]);
    }
    match domain.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => domain,
    }
}

/// What `POST /images/create?fromImage=NAME&tag=TAG` asks: a reference with a tag or a
/// digest.
#[derive(Clone, Debug)]
pub struct PullRequest {
    /// The name, with its tag (`latest` if none was given) or digest.
    pub reference: Reference,
}

impl PullRequest {
    /// Docker's `postImagesCreate`: `tag` is a digest if it parses as one, else a tag.
    pub fn new(from_image: &str, tag: &str) -> Result<PullRequest> {
        let invalid =
            |e: crate::supervisor::image::reference::RefError| Error::invalid(e.to_string());
        let mut r = Reference::parse_normalized(from_image).map_err(invalid)?;
        if !tag.is_empty() {
            if crate::supervisor::image::config::is_sha256(tag) {
                let s = format!("{}@{tag}", r.name());
                r = Reference::parse_normalized(&s).map_err(invalid)?;
            } else {
                r = r.with_tag(tag).map_err(invalid)?;
            }
        }
        Ok(PullRequest { reference: r.with_default_tag() })
    }

    /// The tag or digest Docker's messages name it by.
    fn tag_or_digest(&self) -> &str {
        self.reference.digest().or(self.reference.tag()).unwrap_or("latest")
    }
}

/// A pull whose manifest was read: what is left is to fetch what it names.
pub struct Resolved {
    client: oci_client::Client,
    remote: oci_client::Reference,
    request: PullRequest,
    manifest: OciImageManifest,
    /// The digest Docker prints: the index's if the name was an index, else the manifest's.
    digest: String,
}

impl Resolved {
    /// The reference pulled, with its tag (`latest` if none was given) or digest.
    pub fn reference(&self) -> &Reference {
        &self.request.reference
    }
}

/// One message of the progress stream.
fn status(text: impl Into<String>, id: Option<&str>, detail: bool) -> JsonMessage {
    JsonMessage {
        status: Some(text.into()),
        progress_detail: detail.then(Default::default),
        id: id.map(str::to_string),
        ..JsonMessage::default()
    }
}

/// Reads the manifest `req` names (an index resolved to this platform): the first step of a
/// pull, whose failure is the answer's status.
pub async fn resolve(registries: &Registries, req: PullRequest) -> Result<Resolved> {
    let r = &req.reference;
    let endpoint =
        if r.domain() == DEFAULT_DOMAIN { DOCKER_HUB_ENDPOINT } else { r.domain() }.to_string();
    let protocol = if registries.is_insecure(r.domain()) {
        ClientProtocol::HttpsExcept(vec![endpoint.clone()])
    } else {
        ClientProtocol::Https
    };
    // ring's provider lacks the post-quantum key exchange (hence deprecated); aws-lc-rs has
    // it but is a C build. Installed once per process; a later call is a no-op.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        ..ClientConfig::default()
    });
    let remote = match r.digest() {
        Some(d) => oci_client::Reference::with_digest(endpoint, r.path().into(), d.into()),
        None => oci_client::Reference::with_tag(
            endpoint,
            r.path().into(),
            r.tag().unwrap_or("latest").into(),
        ),
    };
    let auth = RegistryAuth::Anonymous;
    let fail = |e| registry_error(e, r, None);
    let (manifest, digest) = client.pull_manifest(&remote, &auth).await.map_err(fail)?;
    let manifest = match manifest {
        OciManifest::Image(m) => m,
        OciManifest::ImageIndex(index) => {
            let arch = go_arch();
            let entry = index
                .manifests
                .iter()
                .find(|e| {
                    e.platform.as_ref().is_some_and(|p| {
                        p.os.to_string() == "linux" && p.architecture.to_string() == arch
                    })
                })
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "no matching manifest for linux/{arch} in the manifest list entries"
                    ))
                })?;
            let by_digest = remote.clone_with_digest(entry.digest.clone());
            match client.pull_manifest(&by_digest, &auth).await.map_err(fail)? {
                (OciManifest::Image(m), _) => m,
                (OciManifest::ImageIndex(_), _) => {
                    return Err(Error::invalid(format!(
                        "manifest list entry {} is itself a manifest list",
                        entry.digest
                    )));
                }
            }
        }
    };
    Ok(Resolved { client, remote, request: req, manifest, digest })
}

/// Fetches what the manifest names into `store`, sending progress on `tx` as dockerd does;
/// nothing is stored unless everything is verified.
pub async fn fetch(store: Arc<ImageStore>, p: Resolved, tx: &Sender<JsonMessage>) -> Result<()> {
    let send = |m: JsonMessage| async move {
        // A client gone away does not stop the pull: its image is still wanted.
        let _ = tx.send(m).await;
    };
    let r = p.request.reference.clone();
    send(status(format!("Pulling from {}", r.path()), Some(p.request.tag_or_digest()), false))
        .await;
    let id = p.manifest.config.digest.clone();
    if !crate::supervisor::image::config::is_sha256(&id) {
        return Err(Error::invalid(format!("unsupported config digest {id}")));
    }
    let repo_digest = Reference::parse_normalized(&format!("{}@{}", r.name(), p.digest)).ok();
    let mut refs: Vec<Reference> = vec![r.clone()];
    refs.extend(repo_digest.filter(|d| *d != r));
    let before = store.tagged(&r);
    if store.resolve(&id).is_ok() {
        let s2 = store.clone();
        let refs2 = refs.clone();
        let id2 = id.clone();
        blocking(move || refs2.iter().try_for_each(|t| s2.set_reference(&id2, t))).await?;
    } else {
        pull_new(&store, &p, &refs, tx).await?;
    }
    send(status(format!("Digest: {}", p.digest), None, false)).await;
    let words = if before.as_deref() == Some(id.as_str()) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    send(status(format!("Status: {words} {}", r.familiar_string()), None, false)).await;
    Ok(())
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(Error::internal)?
}

/// The config and the layers not stored yet, verified, then committed with `refs`.
async fn pull_new(
    store: &Arc<ImageStore>,
    p: &Resolved,
    refs: &[Reference],
    tx: &Sender<JsonMessage>,
) -> Result<()> {
    let r = &p.request.reference;
    let staging = Arc::new(store.stage()?);
    let mut config = Vec::new();
    p.client
        .pull_blob(&p.remote, &p.manifest.config, &mut config)
        .await
        .map_err(|e| registry_error(e, r, Some(Blob::Config(&p.manifest.config))))?;
    let parsed = ImageConfig::parse(&config).map_err(Error::invalid)?;
    let layers: Vec<&OciDescriptor> = p.manifest.layers.iter().collect();
    if parsed.rootfs.diff_ids.len() != layers.len() {
        return Err(Error::invalid("layers from manifest don't match image configuration"));
    }
    let wanted: Vec<bool> = parsed.rootfs.diff_ids.iter().map(|d| !store.has_blob(d)).collect();
    for (layer, want) in layers.iter().zip(&wanted) {
        let words = if *want { "Pulling fs layer" } else { "Already exists" };
        let _ = tx.send(status(words, Some(&short_id(&layer.digest)), true)).await;
    }
    let mut downloaded = Vec::new();
    for (layer, _) in layers.iter().zip(&wanted).filter(|(_, w)| **w) {
        let path = staging.file();
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::internal(format!("cannot stage a layer: {e}")))?;
        p.client
            .pull_blob(&p.remote, *layer, file)
            .await
            .map_err(|e| registry_error(e, r, Some(Blob::Layer(layer))))?;
        let short = short_id(&layer.digest);
        let _ = tx.send(status("Verifying Checksum", Some(&short), true)).await;
        let _ = tx.send(status("Download complete", Some(&short), true)).await;
        downloaded.push(path);
    }
    let mut stored: Vec<(LayerInfo, Option<std::path::PathBuf>)> = Vec::new();
    let mut files = downloaded.into_iter();
    for ((layer, want), diff_id) in layers.iter().zip(&wanted).zip(&parsed.rootfs.diff_ids) {
        if !*want {
            stored.push((
                LayerInfo {
                    digest: layer.digest.clone(),
                    compressed_length: layer.size.max(0) as u64,
                    diff_id: diff_id.clone(),
                    length: 0,
                    size: store.layer_size(diff_id).unwrap_or(0),
                },
                None,
            ));
            continue;
        }
        let Some(compressed) = files.next() else {
            return Err(Error::internal("a downloaded layer went missing"));
        };
        let out = staging.file();
        let out2 = out.clone();
        let info = blocking(move || {
            let f = std::fs::File::open(&compressed)
                .map_err(|e| Error::internal(format!("cannot read a staged layer: {e}")))?;
            let info = read_layer(std::io::BufReader::with_capacity(256 * 1024, f), Some(&out2));
            let _ = std::fs::remove_file(&compressed);
            info
        })
        .await?;
        if &info.diff_id != diff_id {
            return Err(Error::invalid("layers from manifest don't match image configuration"));
        }
        let _ = tx.send(status("Pull complete", Some(&short_id(&layer.digest)), true)).await;
        stored.push((info, Some(out)));
    }
    let image = NewImage { config, layers: stored, tags: refs.to_vec() };
    let s2 = store.clone();
    blocking(move || s2.commit(&staging, vec![image]).map(drop)).await
}

/// Which blob a failure was about.
enum Blob<'a> {
    Config(&'a OciDescriptor),
    Layer(&'a OciDescriptor),
}

/// A registry's failure in moby's words (`translatePullError`, the verifiers' messages, Go's
/// `url.Error` for a registry that cannot be reached).
fn registry_error(e: OciDistributionError, r: &Reference, blob: Option<Blob<'_>>) -> Error {
    match e {
        OciDistributionError::DigestError(DigestError::VerificationError { .. }) => match blob {
            Some(Blob::Config(d)) => {
                Error::invalid(format!("image config verification failed for digest {}", d.digest))
            }
            Some(Blob::Layer(d)) => Error::invalid(format!(
                "filesystem layer verification failed for digest {}",
                d.digest
            )),
            None => Error::invalid("manifest verification failed"),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let Some(first) = envelope.errors.first() else {
                return Error::internal("the registry answered an empty error");
            };
            let (code, words) = code_words(&first.code);
            let cause = format!("{words}: {}", first.message);
            match code {
                Code::ManifestUnknown => Error::not_found(format!(
                    "manifest for {} not found: {cause}",
                    r.familiar_string()
                )),
                Code::NameUnknown => {
                    Error::not_found(format!("repository {} not found: {cause}", r.familiar_name()))
                }
                Code::Denied => Error::not_found(format!(
                    "pull access denied for {}, repository does not exist or may require 'docker \
                     login': {cause}",
                    r.familiar_name()
                )),
                Code::Other => Error::internal(cause),
            }
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Error::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': \
             denied: requested access to the resource is denied",
            r.familiar_name()
        )),
        OciDistributionError::RequestError(e) => Error::internal(request_words(&e)),
        OciDistributionError::ServerError { code, url, message } => Error::internal(format!(
            "received unexpected HTTP status: {code} {} ({url}: {message})",
            http_reason(code)
        )),
        other => Error::internal(other.to_string()),
    }
}

enum Code {
    ManifestUnknown,
    NameUnknown,
    Denied,
    Other,
}

/// The class of an OCI error code and distribution's description of it (`manifest unknown`).
fn code_words(c: &OciErrorCode) -> (Code, &'static str) {
    match c {
        OciErrorCode::ManifestUnknown => (Code::ManifestUnknown, "manifest unknown"),
        OciErrorCode::NameUnknown => (Code::NameUnknown, "name unknown"),
        OciErrorCode::Denied => (Code::Denied, "denied"),
        OciErrorCode::Unauthorized => (Code::Other, "unauthorized"),
        OciErrorCode::BlobUnknown => (Code::Other, "blob unknown"),
        OciErrorCode::NameInvalid => (Code::Other, "name invalid"),
        OciErrorCode::ManifestInvalid => (Code::Other, "manifest invalid"),
        OciErrorCode::Toomanyrequests => (Code::Other, "toomanyrequests"),
        OciErrorCode::Unsupported => (Code::Other, "unsupported"),
        _ => (Code::Other, "unknown"),
    }
}

/// The reason phrase of a status.
fn http_reason(code: u16) -> &'static str {
    axum::http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
}

/// A request that failed before an answer, as Go's `url.Error` words it:
/// `Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused`.
fn request_words(e: &reqwest::Error) -> String {
    // dockerd's first request is its ping of `/v2/`: that is what it could not reach.
    let url = e
        .url()
        .map(|u| {
            let mut u = u.clone();
            if e.is_connect() {
                u.set_path("/v2/");
                u.set_query(None);
            }
            u.to_string()
        })
        .unwrap_or_default();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(n) = io.raw_os_error()
        {
            let text = nix::errno::Errno::from_raw(n).desc();
            let mut chars = text.chars();
            let text: String =
                chars.next().map(|f| f.to_lowercase().chain(chars).collect()).unwrap_or_default();
            let host = e.url().map(|u| {
                let h = u.host_str().unwrap_or_default();
                format!("{h}:{}", u.port_or_known_default().unwrap_or(0))
            });
            let op = if e.is_connect() { "dial tcp" } else { "read tcp" };
            return format!("Get \"{url}\": {op} {}: connect: {text}", host.unwrap_or_default());
        }
        cause = c.source();
    }
    let mut text = e.to_string();
    let mut c = std::error::Error::source(e);
    while let Some(s) = c {
        text.push_str(&format!(": {s}"));
        c = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_registries_are_insecure() {
        let r = Registries::new(&["reg.example:5000".into(), "other.example".into()]).unwrap();
        for d in ["127.0.0.1:5000", "127.3.4.5", "localhost:5000", "[::1]:5000", "localhost"] {
            assert!(r.is_insecure(d), "{d}");
        }
        assert!(r.is_insecure("reg.example:5000"));
        assert!(r.is_insecure("other.example:443"), "a host named without a port: any port");
        assert!(!r.is_insecure("reg.example:5001"));
        assert!(!r.is_insecure("docker.io"));
        assert!(!r.is_insecure("10.0.0.1:5000"));
        assert_eq!(
            Registries::new(&["http://x".into()]).unwrap_err(),
            "insecure registry http://x should not contain '://'"
        );
    }

    #[test]
    fn a_tag_that_is_a_digest_is_a_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = PullRequest::new("127.0.0.1:5000/bb", &d).unwrap();
        assert_eq!(p.reference.digest(), Some(d.as_str()));
        assert_eq!(p.tag_or_digest(), d);
        let p = PullRequest::new("busybox", "").unwrap();
        assert_eq!(p.reference.to_string(), "docker.io/library/busybox:latest");
        let p = PullRequest::new("busybox", "1.36").unwrap();
        assert_eq!(p.tag_or_digest(), "1.36");
        assert!(PullRequest::new("Busybox", "").is_err());
        assert!(PullRequest::new("busybox", "bad tag").is_err());
    }
}
