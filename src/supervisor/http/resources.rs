//! A running container's resources: Docker's `pause`, `unpause` and `update` endpoints.
//!
//! | request | answer |
//! |---|---|
//! | `POST /containers/{id}/pause` | `204`; `409 Container ID is not running` / `is already paused` |
//! | `POST /containers/{id}/unpause` | `204`; `409 Container ID is not paused` |
//! | `POST /containers/{id}/update` | body: `Memory`, `NanoCpus`, `PidsLimit`, … and `RestartPolicy`; `{"Warnings": null}` |
//! | `GET /containers/{id}/stats[?stream=0&one-shot=1]` | a reading a second (Docker's `StatsJSON`, one JSON a line); `stream=0`: one, its `precpu_stats` a second before; `one-shot=1`: one at once |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::supervisor::api::types::{ContainerUpdateRequest, ContainerUpdateResponse};
use crate::supervisor::engine::Daemon;

use super::{Answer, Params, body_of, flag};

pub(super) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/stats", get(stats))
}

/// The time between readings, as dockerd's collector.
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Params,
) -> Answer<Response> {
    let c = d.find(&id)?;
    let stream = q.get("stream").is_none_or(|_| flag(&q, "stream"));
    let one_shot = flag(&q, "one-shot");
    if !stream {
        let mut now = d.stats(&c);
        if !one_shot && c.record().state.status.is_running() {
            tokio::time::sleep(INTERVAL).await;
            let before = now;
            now = d.stats(&c);
            now.precpu_stats = before.cpu_stats;
            now.preread = before.read;
        }
        return Ok(super::json(StatusCode::OK, now));
    }
    // A reading a second, each with the one before as its `precpu_stats`, while it runs.
    let first = Some((d, c, None::<crate::supervisor::api::types::ContainerStats>));
    let lines = futures_util::stream::unfold(first, |state| async move {
        let (d, c, before) = state?;
        if before.is_some() {
            tokio::time::sleep(INTERVAL).await;
        }
        let mut now = d.stats(&c);
        if let Some(b) = before {
            now.precpu_stats = b.cpu_stats;
            now.preread = b.read;
        }
        let mut line = serde_json::to_vec(&now).unwrap_or_default();
        line.push(b'\n');
        let next = c.record().state.status.is_running().then_some((d, c, Some(now)));
        Some((Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line)), next))
    });
    let mut r = Response::new(axum::body::Body::from_stream(lines));
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
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
    super::JsonBody(body): super::JsonBody,
) -> Answer<axum::Json<ContainerUpdateResponse>> {
    let req: ContainerUpdateRequest =
        body_of(&body, "container.UpdateConfig", super::go_json::Reader::Runconfig)?;
    let c = d.find(&id)?;
    let warnings = d.update(&c, req).await?;
    Ok(axum::Json(ContainerUpdateResponse { warnings: Some(warnings).filter(|w| !w.is_empty()) }))
}
