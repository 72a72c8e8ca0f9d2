//! A running container's resources: Docker's `pause`, `unpause` and `update` endpoints.
//!
//! | request | answer |
//! |---|---|
//! | `POST /containers/{id}/pause` | `204`; `409 Container ID is not running` / `is already paused` |
//! | `POST /containers/{id}/unpause` | `204`; `409 Container ID is not paused` |
//! | `POST /containers/{id}/update` | body: `Memory`, `NanoCpus`, `PidsLimit`, … and `RestartPolicy`; `{"Warnings": null}` |

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;

use crate::supervisor::api::types::{ContainerUpdateRequest, ContainerUpdateResponse};
use crate::supervisor::engine::Daemon;

use super::{Answer, body_of};

pub(super) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
}

async fn pause(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    d.pause(&c).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    d.unpause(&c).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer<axum::Json<ContainerUpdateResponse>> {
    let req: ContainerUpdateRequest = body_of(&body)?;
    let c = d.find(&id)?;
    let warnings = d.update(&c, req).await?;
    Ok(axum::Json(ContainerUpdateResponse { warnings: Some(warnings).filter(|w| !w.is_empty()) }))
}
