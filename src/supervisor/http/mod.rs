//! The daemon's API: HTTP/1.1 and JSON over its unix socket, shaped like the matching subset
//! of Docker's Engine API, so `curl --unix-socket /run/cproxy/cproxy.sock http://x/...` works.
//!
//! | request | answer |
//! |---|---|
//! | `GET\|HEAD /_ping` | `OK`; it, as every answer of a route, with `Api-Version: 1.41`, `Ostype`, `Docker-Experimental`, `Server` |
//! | `GET /version`, `GET /info` | Docker's `types.Version` and the `types.Info` fields its clients read |
//! | `GET /containers/json[?all=1&limit=N&filters=JSON]` | `[{Id, Names, Image, Command, Created, Ports, Labels, State, Status, HostConfig, NetworkSettings, Mounts}]`, newest first; `filters` as Docker's (`{"name":{"web":true}}` or `{"name":["web"]}`; keys `name`, `id`, `status`, `exited`, `network`, `publish`, `expose`, `before`, `since`, `volume`, `ancestor`, `label`, `health`, `isolation`, `is-task`) |
//! | `POST /containers/create[?name=NAME]` | body below; `201 {"Id": ID, "Warnings": []}` |
//! | `POST /containers/{id}/start` | `204` |
//! | `POST /containers/{id}/stop[?t=SECS]` | `204` after it stopped (its stop signal, SIGTERM by default; SIGKILL after t, default its `StopTimeout`, else 10) |
//! | `POST /containers/{id}/wait` | `{"StatusCode": N}` once it has exited |
//! | `POST /containers/{id}/kill[?signal=SIG]` | `204`; SIGKILL by default, as Docker's names or numbers |
//! | `DELETE /containers/{id}[?force=1&v=1]` | `204`; `v`: its anonymous volumes too |
//! | `GET /containers/{id}/changes` | `[{"Path": "/etc/passwd", "Kind": 0}]`: 0 changed, 1 added, 2 deleted |
//! | `GET /containers/{id}/json` | `docker inspect`'s object (Id, Name, State, Config, HostConfig, NetworkSettings, …) |
//! | `GET /containers/{id}/logs[?follow=1&stdout=1&stderr=1&tail=N]` | Docker's multiplexed stream: per frame 1 byte stream (1 stdout, 2 stderr), 3 zero bytes, a u32 big-endian length, the bytes |
//! | `GET /networks` | `[network inspect's object]`, predefined first |
//! | `POST /networks/create` | `{"Name", "Driver", "IPAM": {"Config": [{"Subnet", "Gateway"}]}}`; `201 {"Id": ID, "Warning": ""}` |
//! | `GET /networks/{id}` | `docker network inspect`'s object (Name, Id, Driver, Scope, IPAM, Containers, …) |
//! | `DELETE /networks/{id}` | `204` |
//! | `POST /networks/{id}/connect` | `{"Container": C, "EndpointConfig": {"Aliases": [A]}}`; `200` |
//! | `POST /networks/{id}/disconnect` | `{"Container": C}`; `200` |
//! | `/images/…` | [`images`]: list, import, load, save, inspect, history, tag, remove, prune |
//! | `POST /commit?container=C[&repo=R&tag=T&comment=M&author=A&pause=0&changes=…]` | [`images`]: a container's layer as a new image; `201 {"Id": "sha256:…"}` |
//! | `/volumes/…` | [`volumes`]: list, create, inspect, remove, prune |
//! | `/containers/{id}/pause`, `unpause`, `update` | [`resources`]: the freezer, new limits |
//! | `/containers/{id}/archive`, `export` | [`archive`]: `docker cp`'s stat, tar and extraction; `docker export` |
//!
//! Every path also answers under `/v1.12/` … `/v1.41/`; a newer or older version gets Docker's
//! `client version X is too new`/`too old` (400), an unknown route `page not found` (404). `{id}` is a name, an ID, or an unambiguous ID
//! prefix. Bodies are the types of [`crate::supervisor::api::types`]; the create body:
//!
//! ```json
//! {"Cmd": ["python3", "-m", "http.server"], "Env": ["K=V"], "Hostname": "",
//!  "ExposedPorts": {"5000/tcp": {}}, "WorkingDir": "/srv",
//!  "HostConfig": {"NetworkMode": "bridge",
//!                 "PortBindings": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
//!                 "PublishAllPorts": false, "AutoRemove": false,
//!                 "Binds": ["/srv/data:/mnt:ro"]}}
//! ```
//!
//! Beside Docker's `PortBindings`, cproxy's client sends `docker run -p` specs as they were
//! given (`HostConfig.PortSpecs`, taken first), and `ExposedPorts` keys may be ranges
//! (`7000-7002/udp`). Errors are `{"message": "..."}`; this layer alone maps the engine's error
//! kinds to Docker's codes: 400 (invalid), 403 (forbidden), 404 (no such container or
//! network), 409 (conflict) or 500, the message in Docker's words.
//!
//! [`server`] serves the router on the daemon's socket, with limits on connections, request
//! deadlines and idle keep-alive connections.

pub mod go_json;
pub mod go_value;
pub mod server;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::supervisor::api::types::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerSummary,
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkResource,
};
use crate::supervisor::engine::logs::LogOptions;
use crate::supervisor::engine::{Daemon, Error, ErrorKind};
use crate::supervisor::rules::filters::{Filters, ListOptions};
use crate::supervisor::rules::format::go_json_quote;

pub mod archive;
pub mod attach;
pub mod events;
pub mod images;
pub mod resources;
pub mod system;
pub mod volumes;

type Params = Query<HashMap<String, String>>;

/// An engine error as Docker's client reads it: the status its kind stands for, and
/// `{"message": …}`.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of each kind of engine error, as dockerd's `errdefs` map them.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(status_of(self.0.kind), &self.0.message)
    }
}

/// Every error answer of the API, as dockerd's `MakeErrorHandler` writes it (`WriteJSON`: a Go
/// `json.Encoder` that leaves HTML alone): `{"message":"…"}` and a newline, as
/// `application/json`.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    let mut body = String::with_capacity(message.len() + 16);
    body.push_str("{\"message\":");
    go_json_quote(message, false, &mut body);
    body.push_str("}\n");
    let length = axum::http::HeaderValue::from(body.len());
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    // Go's server, like hyper, gives a small answer its length; said here, as the layer that
    // rewrites axum's own answers would otherwise send them chunked.
    headers.insert(axum::http::header::CONTENT_LENGTH, length);
    response
}

/// Answers in dockerd's form: a whole JSON answer ends with a newline, as Go's `json.Encoder`
/// ends what `WriteJSON` writes; what axum answers by itself too: a method a path does not
/// take is dockerd's 404 `page not found` (its router knows routes by method and path), and an
/// extractor's refusal (a body over [`server::MAX_BODY`], a path that is not UTF-8) keeps its
/// status with its words as the message, where axum would send them as text.
async fn as_dockerd(response: Response) -> Response {
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return error_response(StatusCode::NOT_FOUND, "page not found");
    }
    let json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        return ended_by_a_newline(response).await;
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, server::MAX_BODY).await.unwrap_or_default();
    let mut answer = error_response(status, String::from_utf8_lossy(&text).trim_end());
    // The route's headers (`Api-Version`, …) stay; the body's own go with it.
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    answer
}

/// A JSON answer whose length is known (not a stream: those end each message themselves)
/// with the newline Go's `json.Encoder` ends it with, its `Content-Length` said again.
async fn ended_by_a_newline(response: Response) -> Response {
    use hyper::body::Body as _;
    let whole = response.body().size_hint().exact();
    if !whole.is_some_and(|n| n > 0 && n <= server::MAX_BODY as u64) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, server::MAX_BODY).await else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "answer could not be read");
    };
    let mut bytes = bytes.to_vec();
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    parts.headers.insert(axum::http::header::CONTENT_LENGTH, bytes.len().into());
    Response::from_parts(parts, Body::from(bytes))
}

type Answer<T> = Result<T, ApiError>;

fn json<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, axum::Json(body)).into_response()
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

/// A request body that dockerd reads as JSON, taken only under a JSON `Content-Type` (or none,
/// with no body): dockerd's `httputils.CheckForJSON`, which its handlers call before they look
/// at anything else (so a wrong type is said before `No such container`).
struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        check_for_json(req.headers()).map_err(IntoResponse::into_response)?;
        let body = Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(JsonBody(body))
    }
}

/// dockerd's `CheckForJSON`: no `Content-Type` is taken only when there is no body (no length,
/// or a length of 0, and not chunked); any other must be JSON ([`go_json::is_json_media_type`]).
fn check_for_json(headers: &axum::http::HeaderMap) -> Answer<()> {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
    let given = headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
    let content_type = given.as_deref().unwrap_or_default();
    let no_body = match headers.get(CONTENT_LENGTH) {
        Some(length) => length.as_bytes() == b"0",
        None => !headers.contains_key(TRANSFER_ENCODING),
    };
    if (content_type.is_empty() && no_body) || go_json::is_json_media_type(content_type) {
        return Ok(());
    }
    Err(ApiError(Error::invalid(format!(
        "Content-Type specified ({content_type}) must be 'application/json'"
    ))))
}

/// A request body as the API's type (the first JSON value, as Go's decoder takes it), or
/// dockerd's refusal in its words and with its status: `root` is the Go type dockerd decodes
/// into, `reader` how its handler reads ([`go_json`]).
fn body_of<T: DeserializeOwned>(body: &Bytes, root: &str, reader: go_json::Reader) -> Answer<T> {
    go_json::decode(body, root, reader).map_err(|r| {
        ApiError(if r.client_error {
            Error::invalid(r.message)
        } else {
            Error::internal(r.message)
        })
    })
}

/// The router over a daemon; every route also answers under `/vX.Y` for each API version
/// served ([`system::versioned`]), as Docker clients address it.
pub fn router(daemon: Arc<Daemon>) -> Router {
    // What a handler buffers (`Bytes`) is capped; streamed bodies (image uploads) are not.
    let routes = routes(daemon).layer(axum::middleware::map_response(system::route_headers));
    let routed = system::versioned(routes).layer(DefaultBodyLimit::max(server::MAX_BODY));
    // Outside the routes, so that it sees their answers as axum finished them (a 405's `Allow`).
    Router::new().fallback_service(routed).layer(axum::middleware::map_response(as_dockerd))
}

fn routes(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::disk_usage))
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/restart", post(stop))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/top", get(top))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}", axum::routing::delete(remove))
        .route("/networks", get(network_list))
        .route("/networks/create", post(network_create))
        .route("/networks/{id}", get(network_inspect).delete(network_remove))
        .route("/networks/{id}/connect", post(network_connect))
        .route("/networks/{id}/disconnect", post(network_disconnect))
        .merge(archive::routes())
        .merge(attach::routes())
        .merge(events::routes())
        .merge(images::routes())
        .merge(volumes::routes())
        .merge(resources::routes())
        .with_state(daemon)
}

async fn list(
    State(d): State<Arc<Daemon>>,
    Query(q): Params,
) -> Answer<axum::Json<Vec<ContainerSummary>>> {
    let filters = q.get("filters").map(String::as_str).unwrap_or_default();
    let opts = ListOptions {
        all: flag(&q, "all"),
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        filters: Filters::from_json(filters).map_err(Error::invalid)?,
        size: flag(&q, "size"),
    };
    // Sizes walk the writable layers: off the runtime's workers.
    let list = tokio::task::spawn_blocking(move || d.list(&opts)).await.map_err(Error::internal)?;
    Ok(axum::Json(list?))
}

async fn create(
    State(d): State<Arc<Daemon>>,
    Query(q): Params,
    JsonBody(body): JsonBody,
) -> Answer<Response> {
    let req: ContainerCreateRequest =
        body_of(&body, "runconfig.ContainerConfigWrapper", go_json::Reader::Runconfig)?;
    if !names_a_config_field(&body) {
        return Err(ApiError(Error::invalid(
            "Config cannot be empty in order to create a container",
        )));
    }
    let name = q.get("name").cloned();
    // A first container of an image unpacks its layers: off the runtime's workers.
    let (id, warnings) = tokio::task::spawn_blocking(move || d.create(name.as_deref(), req))
        .await
        .map_err(Error::internal)??;
    Ok(json(StatusCode::CREATED, ContainerCreateResponse { id, warnings }))
}

/// The fields of Go's `container.Config`, which dockerd's create body embeds by pointer.
const CONFIG_FIELDS: [&str; 25] = [
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// Whether a create body (already read) names a field of the container's config, in any case
/// as Go matches keys: one that names none (`{}`, only `HostConfig`) leaves dockerd's config
/// nil, which it refuses.
fn names_a_config_field(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    // Keys only: the values are skipped, not built (this runs on every create).
    let mut values = serde_json::Deserializer::from_str(&text)
        .into_iter::<Option<HashMap<String, serde::de::IgnoredAny>>>();
    match values.next() {
        Some(Ok(Some(object))) => {
            object.keys().any(|k| CONFIG_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)))
        }
        _ => false,
    }
}

async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Answer<StatusCode> {
    // Host settings at start went with API 1.24: dockerd refuses a body longer than 7 bytes
    // (an empty object and some room), or of no stated length (chunked).
    let length = match headers.get(axum::http::header::CONTENT_LENGTH) {
        Some(l) => l.to_str().ok().and_then(|l| l.parse::<i64>().ok()).unwrap_or(-1),
        None if headers.contains_key(axum::http::header::TRANSFER_ENCODING) => -1,
        None => 0,
    };
    if length > 7 || length == -1 {
        return Err(ApiError(Error::invalid(
            "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24",
        )));
    }
    let c = d.find(&id)?;
    d.start(&c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `stop` and `restart` (`t`: the seconds before SIGKILL).
async fn stop(
    State(d): State<Arc<Daemon>>,
    uri: axum::http::Uri,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    let t = q.get("t").and_then(|t| t.parse::<u64>().ok());
    match uri.path().ends_with("/restart") {
        true => d.restart(&c, t).await?,
        false => d.stop(&c, t).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `docker kill`: Docker's words for each failure, `Cannot kill container: NAME: …` (moby's
/// `postContainersKill`).
async fn kill(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let sig = match q.get("signal").filter(|s| !s.is_empty()) {
        Some(raw) => crate::supervisor::rules::signal::parse(raw).map_err(Error::invalid)?,
        None => libc::SIGKILL,
    };
    let cannot = |e: Error| e.context(format!("Cannot kill container: {id}: "));
    let c = d.find(&id).map_err(cannot)?;
    d.kill(&c, sig).await.map_err(cannot)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    d.remove(&c, flag(&q, "force"), flag(&q, "v")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    d.rename(&c, q.get("name").map(String::as_str).unwrap_or_default())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<axum::Json<crate::supervisor::engine::manage::Top>> {
    let c = d.find(&id)?;
    let args = q.get("ps_args").map(String::as_str).unwrap_or_default();
    Ok(axum::Json(d.top(&c, args).await?))
}

async fn prune(
    State(d): State<Arc<Daemon>>,
) -> axum::Json<crate::supervisor::engine::manage::PruneReport> {
    axum::Json(d.prune_containers().await)
}

async fn changes(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Answer<axum::Json<Vec<crate::supervisor::engine::changes::Change>>> {
    let c = d.find(&id)?;
    Ok(axum::Json(d.changes(&c)))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Answer<axum::Json<ContainerInspect>> {
    let c = d.find(&id)?;
    Ok(axum::Json(d.inspect(&c)))
}

async fn network_list(
    State(d): State<Arc<Daemon>>,
    Query(q): Params,
) -> Answer<axum::Json<Vec<NetworkResource>>> {
    let filters = q.get("filters").map(String::as_str).unwrap_or_default();
    let f = Filters::from_json(filters).map_err(Error::invalid)?;
    Ok(axum::Json(d.network_list(&f)?))
}

async fn network_create(
    State(d): State<Arc<Daemon>>,
    JsonBody(body): JsonBody,
) -> Answer<Response> {
    let req: NetworkCreateRequest =
        body_of(&body, "types.NetworkCreateRequest", go_json::Reader::ReadJson)?;
    let id = d.network_create(req).await?;
    Ok(json(StatusCode::CREATED, NetworkCreateResponse { id, warning: String::new() }))
}

async fn network_inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Answer<axum::Json<NetworkResource>> {
    Ok(axum::Json(d.network_inspect(&id)?))
}

async fn network_remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    d.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn network_connect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer<StatusCode> {
    let req: NetworkConnectRequest =
        body_of(&body, "types.NetworkConnect", go_json::Reader::ReadJson)?;
    let c = d.find(&req.container)?;
    let e = req.endpoint_config;
    d.network_connect(&id, &c, e.aliases.unwrap_or_default(), e.links.unwrap_or_default()).await?;
    Ok(StatusCode::OK)
}

async fn network_disconnect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Answer<StatusCode> {
    let req: NetworkDisconnectRequest =
        body_of(&body, "types.NetworkDisconnect", go_json::Reader::ReadJson)?;
    let c = d.find(&req.container)?;
    d.network_disconnect(&id, &c).await?;
    Ok(StatusCode::OK)
}

async fn logs(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<Response> {
    let c = d.find(&id)?;
    let time = |key: &str| {
        q.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| crate::supervisor::rules::timestamps::parse_api(v))
            .transpose()
            .map_err(|e| ApiError(Error::internal(e)))
    };
    let opts = LogOptions {
        follow: flag(&q, "follow"),
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        // moby takes 0 (its default) as no bound.
        since: time("since")?.filter(|t| *t != 0),
        until: time("until")?.filter(|t| *t != 0),
        timestamps: flag(&q, "timestamps"),
        details: flag(&q, "details"),
        // `all`, a negative number or anything else unreadable: every record, as moby.
        tail: q.get("tail").and_then(|t| t.parse::<usize>().ok()),
    };
    if !opts.stdout && !opts.stderr {
        return Err(Error::invalid("Bad parameters: you must choose at least one stream").into());
    }
    let chunks = d.logs(c, opts)?;
    let stream = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|item| (Ok::<_, std::io::Error>(Bytes::from(item)), rx))
    });
    Response::builder()
        .header("Content-Type", "application/vnd.docker.raw-stream")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError(Error::internal(e)))
}
