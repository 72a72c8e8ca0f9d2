//! `/volumes`: Docker's volume endpoints over the local driver's volumes.
//!
//! | request | answer |
//! |---|---|
//! | `GET /volumes[?filters=JSON]` | `{"Volumes": [...], "Warnings": null}`; filters `name` (a part of it), `driver`, `label` (`KEY` or `KEY=VALUE`), `dangling` |
//! | `POST /volumes/create` | `{"Name", "Driver", "DriverOpts", "Labels"}`; `201` and the volume |
//! | `GET /volumes/{name}` | the volume (`CreatedAt`, `Driver`, `Labels`, `Mountpoint`, `Name`, `Options`, `Scope`) |
//! | `DELETE /volumes/{name}[?force=1]` | `204`; `409 remove NAME: volume is in use - [IDs]` |
//! | `POST /volumes/prune[?filters=JSON]` | `{"VolumesDeleted": [...], "SpaceReclaimed": N}`; filter `label` |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::supervisor::api::types::{Volume, VolumeCreateBody, VolumeList, VolumesPruneReport};
use crate::supervisor::engine::{Daemon, Error};
use crate::supervisor::rules::filters::Filters;

use super::{Answer, ApiError, Params, body_of, flag, json};

pub(super) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// The `filters` query, each key one of `allowed`, in Docker's words.
fn filters(q: &Params, allowed: &[&str]) -> Answer<Filters> {
    let text = q.get("filters").map(String::as_str).unwrap_or_default();
    let f = Filters::from_json(text).map_err(Error::invalid)?;
    if let Some(k) = f.0.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError(Error::invalid(format!("Invalid filter '{k}'"))));
    }
    Ok(f)
}

/// Whether `v` has each label the `label` filter asks for (`KEY` or `KEY=VALUE`).
fn labelled(f: &Filters, v: &Volume) -> bool {
    f.match_kv("label", v.labels.as_ref().unwrap_or(&Default::default()))
}

async fn list(State(d): State<Arc<Daemon>>, q: Params) -> Answer<axum::Json<VolumeList>> {
    let f = filters(&q, &["name", "driver", "label", "dangling"])?;
    let dangling = match f.get("dangling").next() {
        None => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(v) => {
            return Err(ApiError(Error::invalid(format!("Invalid filter 'dangling=[{v}]'"))));
        }
    };
    let in_use = d.volumes_in_use();
    let volumes = d
        .volumes
        .list()
        .into_iter()
        .filter(|v| f.get("name").all(|n| v.name.contains(n)))
        .filter(|v| f.get("driver").all(|n| v.driver == n))
        .filter(|v| labelled(&f, v))
        .filter(|v| dangling.is_none_or(|dangling| in_use.contains_key(&v.name) != dangling))
        .collect();
    Ok(axum::Json(VolumeList { volumes: Some(volumes), warnings: None }))
}

async fn create(
    State(d): State<Arc<Daemon>>,
    super::JsonBody(body): super::JsonBody,
) -> Answer<Response> {
    let req: VolumeCreateBody =
        body_of(&body, "volume.VolumeCreateBody", super::go_json::Reader::ReadJson)?;
    let v = d.volumes.create(
        Some(req.name.as_str()),
        &req.driver,
        Some(req.labels.unwrap_or_default()),
        Some(req.driver_opts.unwrap_or_default()),
    )?;
    d.events.volume(&v.name, "create", &[]);
    Ok(json(StatusCode::CREATED, v))
}

async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> Answer<axum::Json<Volume>> {
    Ok(axum::Json(d.volumes.get(&name)?))
}

async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: Params,
) -> Answer<StatusCode> {
    let users = d.volume_users(&name);
    let existed = d.volumes.get(&name).is_ok();
    d.volumes.remove(&name, flag(&q, "force"), &users)?;
    if existed {
        d.events.volume(&name, "destroy", &[]);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(d): State<Arc<Daemon>>, q: Params) -> Answer<axum::Json<VolumesPruneReport>> {
    let f = filters(&q, &["label", "label!"])?;
    let in_use = d.volumes_in_use();
    let keep = |name: &str| {
        in_use.contains_key(name) || d.volumes.get(name).map(|v| !labelled(&f, &v)).unwrap_or(true)
    };
    let (deleted, bytes) = d.volumes.prune(&keep);
    for name in &deleted {
        d.events.volume(name, "destroy", &[]);
    }
    Ok(axum::Json(VolumesPruneReport {
        volumes_deleted: Some(deleted).filter(|d| !d.is_empty()),
        space_reclaimed: bytes,
    }))
}
