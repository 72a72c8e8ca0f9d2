//! The image routes, as dockerd answers them:
//!
//! | request | answer |
//! |---|---|
//! | `GET /images/json[?filters=JSON]` | `[ImageSummary]`, newest first; filters `dangling`, `reference`, `label`, `before`, `since` |
//! | `POST /images/create?fromSrc=-[&repo=R&tag=T&message=M&changes=C…]` | the body (a tar, plain, gzip or zstd) imported; `{"status":"sha256:…"}` |
//! | `POST /images/create?fromImage=NAME[&tag=TAG\|DIGEST]` | pulled; `{"status":"Pulling from library/busybox","id":"latest"}`, per layer `Pulling fs layer`, `Download complete`, `Pull complete`, then `Digest: …`, `Status: …` |
//! | `POST /images/load[?quiet=1]` | the body (Docker's archive or an OCI layout) loaded; `{"stream":"Loaded image: busybox:latest\n"}` per line |
//! | `GET /images/get?names=A&names=B`, `GET /images/{name}/get` | the images as one tar (`application/x-tar`) |
//! | `GET /images/{name}/json` | `ImageInspect` |
//! | `GET /images/{name}/history` | `[HistoryItem]`, newest first |
//! | `POST /images/{name}/tag?repo=R[&tag=T]` | `201` |
//! | `DELETE /images/{name}[?force=1]` | `[{"Untagged": …}, {"Deleted": …}]` |
//! | `POST /images/prune[?filters={"dangling":["false"]}]` | `{"ImagesDeleted": […], "SpaceReclaimed": N}` |
//! | `POST /commit?container=C[&repo=R&tag=T&comment=M&author=A&pause=0&changes=…]` | body optional (a config replacing the container's); `201 {"Id":"sha256:…"}` |
//!
//! `{name}` is a reference (`busybox`, `me/app:1`: it may hold `/`), an ID or an ID prefix.
//! What reads or writes layers runs on a blocking thread; the request body is read as it
//! arrives and the saved tar is sent as it is written.

use std::io::{self, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::supervisor::api::types::{
    HistoryItem, IdResponse, ImageDeleteItem, ImageInspect, ImageSummary, ImagesPruneReport,
    JsonError, JsonMessage,
};
use crate::supervisor::engine::archive::ChunkWriter;
use crate::supervisor::engine::{Daemon, Error, ErrorKind};
use crate::supervisor::image::archive::{self, SavePlan};
use crate::supervisor::image::commit::{CommitQuery, CommitRequest};
use crate::supervisor::image::import::{ImportRequest, import};
use crate::supervisor::image::list;
use crate::supervisor::image::pull::{self, PullRequest};
use crate::supervisor::image::reference::Reference;
use crate::supervisor::rules::filters::Filters;

use super::{Answer, ApiError};

/// A query whose keys may repeat (`names`, `changes`).
type Pairs = Query<Vec<(String, String)>>;

fn first<'a>(q: &'a [(String, String)], key: &str) -> &'a str {
    q.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

fn all<'a>(q: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a String> {
    q.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True")
}

/// The image routes, merged into the daemon's router.
pub(super) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/images/json", get(list_images))
        .route("/images/create", post(create))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/prune", post(prune))
        .route("/commit", post(commit))
        .route("/images/{*name}", get(by_name).post(by_name_post).delete(remove))
}

/// Runs `f` on a blocking thread, its panic an internal error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(Error::internal(e)))?
        .map_err(ApiError)
}

/// The request body as a blocking reader, read as it arrives.
pub(super) fn body_reader(body: Body) -> impl io::Read + Send + 'static {
    let stream = body.into_data_stream().map(|r| r.map_err(io::Error::other));
    SyncIoBridge::new(StreamReader::new(stream))
}

/// Runs `f` over the request body on a blocking thread, then reads what is left of the body
/// (`drain_body`), so the client, still sending, gets the answer rather than a broken pipe.
async fn with_body<T: Send + 'static>(
    body: Body,
    f: impl FnOnce(&mut dyn io::Read) -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    let mut reader = body_reader(body);
    blocking(move || {
        let result = f(&mut reader);
        crate::supervisor::os::archive::drain_body(&mut reader, result.is_err());
        result
    })
    .await
}

/// A JSON stream answer (`application/json`, a message per line), as dockerd's
/// `streamformatter`.
fn messages(items: &[JsonMessage]) -> Response {
    let mut body = Vec::new();
    for m in items {
        body.extend(serde_json::to_vec(m).unwrap_or_default());
        body.extend(b"\r\n");
    }
    // Chunked, as dockerd streams them: docker-py reads an answer with a length as one JSON
    // value (its `_stream_helper`), which a second message breaks.
    let chunks = futures_util::stream::once(async move { Ok::<_, io::Error>(Bytes::from(body)) });
    ([(axum::http::header::CONTENT_TYPE, "application/json")], Body::from_stream(chunks))
        .into_response()
}

async fn list_images(
    State(d): State<Arc<Daemon>>,
    Query(q): Pairs,
) -> Answer<axum::Json<Vec<ImageSummary>>> {
    let filters = Filters::from_json(first(&q, "filters")).map_err(Error::invalid)?;
    let all = truthy(first(&q, "all"));
    Ok(axum::Json(list::list(&d.images, &filters, all)?))
}

/// `POST /images/create`: `fromImage` pulls, `fromSrc=-` imports the body.
async fn create(State(d): State<Arc<Daemon>>, Query(q): Pairs, body: Body) -> Answer<Response> {
    if !first(&q, "fromImage").is_empty() {
        return pull(d, first(&q, "fromImage"), first(&q, "tag")).await;
    }
    let src = first(&q, "fromSrc");
    if src != "-" {
        return Err(ApiError(Error::invalid(format!(
            "cproxy imports from the request body only (fromSrc=-), not from {src:?}"
        ))));
    }
    let changes: Vec<String> = all(&q, "changes").cloned().collect();
    let req =
        ImportRequest::new(first(&q, "repo"), first(&q, "tag"), first(&q, "message"), &changes);
    let store = d.images.clone();
    let id = with_body(body, move |reader| import(&store, req?, reader)).await?;
    // dockerd's order: the tag, then the import, named by the ID.
    if let Some(name) = tagged_name(first(&q, "repo"), first(&q, "tag")) {
        d.image_event(&id, "tag", &name);
    }
    d.image_event(&id, "import", &id);
    Ok(messages(&[JsonMessage { status: Some(id), ..JsonMessage::default() }]))
}

/// A pull: the manifest read before the answer begins (so an unknown name is a 404), then
/// the progress streamed as it happens, a failure as the stream's last message.
async fn pull(d: Arc<Daemon>, from_image: &str, tag: &str) -> Answer<Response> {
    let req = PullRequest::new(from_image, tag)?;
    let resolved = pull::resolve(&d.registries, req).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<JsonMessage>(64);
    let store = d.images.clone();
    let reference = resolved.reference().clone();
    tokio::spawn(async move {
        match pull::fetch(store, resolved, &tx).await {
            // dockerd names a pull by its reference (`localhost:5000/app:1`), and the
            // repository (`localhost:5000/app`).
            Ok(()) => {
                d.image_event(&reference.familiar_string(), "pull", &reference.familiar_name())
            }
            Err(e) => {
                tracing::warn!(error = %e, "pull failed");
                let _ = tx.send(error_message(e.message)).await;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let m = rx.recv().await?;
        let mut line = serde_json::to_vec(&m).unwrap_or_default();
        line.extend(b"\r\n");
        Some((Ok::<_, io::Error>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header("Content-Type", "application/json")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError(Error::internal(e)))
}

/// `{"errorDetail":{"message":M},"error":M}`.
fn error_message(message: String) -> JsonMessage {
    JsonMessage {
        error_detail: Some(JsonError { message: message.clone() }),
        error: Some(message),
        ..JsonMessage::default()
    }
}

async fn load(State(d): State<Arc<Daemon>>, body: Body) -> Answer<Response> {
    let store = d.images.clone();
    let lines = with_body(body, move |reader| archive::load(&store, reader)).await?;
    for line in &lines {
        let named = line.strip_prefix("Loaded image ID: ").or(line.strip_prefix("Loaded image: "));
        if let Some(id) = named.and_then(|n| d.images.resolve(n).ok()) {
            d.image_event(&id, "load", &id);
        }
    }
    let items: Vec<JsonMessage> = lines
        .into_iter()
        .map(|l| JsonMessage { stream: Some(format!("{l}\n")), ..JsonMessage::default() })
        .collect();
    Ok(messages(&items))
}

/// Streams the images `names` stand for as one tar; a name that stands for none is an error
/// answer before any byte is sent.
async fn save(d: Arc<Daemon>, names: Vec<String>) -> Answer<Response> {
    let store = d.images.clone();
    let ids: Vec<String> = names.iter().filter_map(|n| store.resolve(n).ok()).collect();
    let plan = {
        let store = store.clone();
        blocking(move || SavePlan::new(&store, &names)).await?
    };
    for id in ids {
        d.image_event(&id, "save", &id);
    }
    let (mut out, chunks) = ChunkWriter::channel();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = archive::save(&store, &plan, &mut out).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "save failed");
            out.fail(e);
        }
    });
    Response::builder()
        .header("Content-Type", "application/x-tar")
        .body(super::archive::streamed(chunks, Vec::new()))
        .map_err(|e| ApiError(Error::internal(e)))
}

async fn save_many(State(d): State<Arc<Daemon>>, Query(q): Pairs) -> Answer<Response> {
    let names: Vec<String> = all(&q, "names").cloned().collect();
    save(d, names).await
}

/// `GET /images/{name}/json|history|get`.
async fn by_name(State(d): State<Arc<Daemon>>, Path(path): Path<String>) -> Answer<Response> {
    let (name, action) = path.rsplit_once('/').unwrap_or((&path, ""));
    match action {
        "json" => {
            // dockerd 20.10's inspect wraps the store's words: `no such image: NAME: No such
            // image: NAME:latest`.
            let v: ImageInspect = d.images.inspect(name).map_err(|e| match e.kind {
                ErrorKind::NotFound => e.context(format!("no such image: {name}: ")),
                _ => e,
            })?;
            Ok(axum::Json(v).into_response())
        }
        "history" => {
            let v: Vec<HistoryItem> = d.images.history(name)?;
            Ok(axum::Json(v).into_response())
        }
        "get" => save(d, vec![name.to_string()]).await,
        _ => Err(ApiError(Error::not_found("page not found"))),
    }
}

/// `POST /images/{name}/tag`.
async fn by_name_post(
    State(d): State<Arc<Daemon>>,
    Path(path): Path<String>,
    Query(q): Pairs,
) -> Answer<StatusCode> {
    let Some(name) = path.strip_suffix("/tag") else {
        return Err(ApiError(Error::not_found("page not found")));
    };
    let mut target = Reference::parse_normalized(first(&q, "repo"))
        .map_err(|e| Error::invalid(e.to_string()))?;
    let tag = first(&q, "tag");
    if !tag.is_empty() {
        target = target.with_tag(tag).map_err(|e| Error::invalid(e.to_string()))?;
    }
    let store = d.images.clone();
    let name = name.to_string();
    let familiar = target.familiar_string();
    let id =
        blocking(move || store.tag(&name, &target).and_then(|()| store.resolve(&name))).await?;
    d.image_event(&id, "tag", &familiar);
    Ok(StatusCode::CREATED)
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    Query(q): Pairs,
) -> Answer<axum::Json<Vec<ImageDeleteItem>>> {
    let force = truthy(first(&q, "force"));
    let users = d.image_users();
    let store = d.images.clone();
    let id = store.resolve(&name).ok();
    // Read before the image may go: dockerd logs each untag while it still has the image.
    let labels = id.as_deref().map(|i| d.images.labels(i)).unwrap_or_default();
    let items = blocking(move || store.delete(&name, force, &users)).await?;
    if let Some(id) = id {
        image_removal_events(&d, &id, &items, &labels);
    }
    Ok(axum::Json(items))
}

/// What removing image `id` logs, as dockerd 20.10: an `untag` for each reference it lost,
/// with its `labels`, then `delete` if it went, with none (it is gone when logged); both name
/// it by its ID.
fn image_removal_events(
    d: &Daemon,
    id: &str,
    items: &[ImageDeleteItem],
    labels: &std::collections::BTreeMap<String, String>,
) {
    for _ in items.iter().filter(|i| i.untagged.is_some()) {
        d.events.image(id, "untag", id, labels);
    }
    if items.iter().any(|i| i.deleted.as_deref() == Some(id)) {
        d.events.image(id, "delete", id, &Default::default());
    }
}

/// `POST /commit`: the request read and checked (dockerd's order: its type, its body, the
/// changes, the reference), then the container named, then the image made.
async fn commit(
    State(d): State<Arc<Daemon>>,
    Query(q): Pairs,
    super::JsonBody(body): super::JsonBody,
) -> Answer<Response> {
    let query = CommitQuery {
        container: first(&q, "container"),
        repo: first(&q, "repo"),
        tag: first(&q, "tag"),
        author: first(&q, "author"),
        comment: first(&q, "comment"),
        pause: q.iter().find(|(k, _)| k == "pause").map(|(_, v)| v.as_str()),
        changes: all(&q, "changes").cloned().collect(),
    };
    let req = CommitRequest::new(&query, &body)?;
    if req.container.is_empty() {
        return Err(ApiError(Error::invalid("invalid name or ID supplied: \"\"")));
    }
    let c = d.find(&req.container)?;
    let id = d.commit(&c, req).await?;
    Ok(super::json(StatusCode::CREATED, IdResponse { id }))
}

/// The reference an import's `repo` and `tag` name, as events show it (`name:tag`).
fn tagged_name(repo: &str, tag: &str) -> Option<String> {
    let r = Reference::parse_normalized(repo).ok()?;
    let r = if tag.is_empty() { r } else { r.with_tag(tag).ok()? };
    Some(r.with_default_tag().familiar_string())
}

/// `POST /images/prune`: untagged images, or with `dangling=false` every image.
async fn prune(
    State(d): State<Arc<Daemon>>,
    Query(q): Pairs,
) -> Answer<axum::Json<ImagesPruneReport>> {
    let filters = Filters::from_json(first(&q, "filters")).map_err(Error::invalid)?;
    let keys: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&filters.to_json()).unwrap_or_default();
    if let Some(k) = keys.keys().find(|k| *k != "dangling") {
        return Err(ApiError(Error::invalid(format!("Invalid filter '{k}'"))));
    }
    let all = match filters.get("dangling").next() {
        None | Some("true" | "1") => false,
        Some("false" | "0") => true,
        Some(v) => return Err(ApiError(Error::invalid(format!("Invalid filter 'dangling={v}'")))),
    };
    let users = d.image_users();
    let store = d.images.clone();
    let before = list::list(&d.images, &Filters::default(), true)?;
    let report = blocking(move || store.prune(all, &users)).await?;
    // The report lists each image's references, then the image, then its layers.
    let mut lost = Vec::new();
    for item in report.images_deleted.iter().flatten() {
        lost.push(item.clone());
        let gone = item.deleted.as_deref();
        if let Some(image) = before.iter().find(|s| Some(s.id.as_str()) == gone) {
            let labels = image.labels.clone().unwrap_or_default();
            image_removal_events(&d, &image.id, &std::mem::take(&mut lost), &labels);
        }
    }
    let reclaimed = report.space_reclaimed.to_string();
    d.events.emit("image", "prune", "", [("reclaimed".to_string(), reclaimed)].into());
    Ok(axum::Json(report))
}
