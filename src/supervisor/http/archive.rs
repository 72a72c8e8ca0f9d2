//! The archive and export routes, as dockerd 20.10 answers them (recorded:
//! tests/fixtures/docker-20.10-archive/):
//!
//! | request | answer |
//! |---|---|
//! | `HEAD /containers/{id}/archive?path=P` | `200`, `X-Docker-Container-Path-Stat: base64({"name","size","mode","mtime","linkTarget"})` |
//! | `GET /containers/{id}/archive?path=P` | the same header, `application/x-tar`: P (a file, or a directory with its content) |
//! | `PUT /containers/{id}/archive?path=P[&noOverwriteDirNonDir=1&copyUIDGID=1]` | the body (a tar) extracted into directory P; `200`, empty |
//! | `GET /containers/{id}/export` | the container's root as a tar (`application/octet-stream`) |
//!
//! A missing path is `404 Could not find the file P in container NAME`, an empty one `400
//! bad parameter: pathcannot be empty`. A tar of at most 2048 bytes is sent with its length,
//! a longer one chunked, as Go's server does.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::supervisor::engine::archive::{Chunks, ExtractOptions};
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::rules::archive::{PathStat, STAT_HEADER, path_param};

use super::{Answer, ApiError, Params, flag};

/// The routes, merged into the daemon's router.
pub(super) fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/archive", get(archive).head(stat).put(extract))
        .route("/containers/{id}/export", get(export))
}

/// The query's path (dockerd's 400 if empty), then the container.
fn target(d: &Daemon, id: &str, q: &HashMap<String, String>) -> Answer<(String, Arc<Container>)> {
    let path =
        path_param(q.get("path").map(String::as_str)).map_err(|e| ApiError(Error::invalid(e)))?;
    Ok((path.to_string(), d.find(id)?))
}

async fn stat(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<Response> {
    let (path, c) = target(&d, &id, &q)?;
    let s = d.stat_path(&c, &id, &path).await?;
    answer(StatusCode::OK, Some(&s), None, Body::empty())
}

async fn archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<Response> {
    let (path, c) = target(&d, &id, &q)?;
    let (s, chunks) = d.archive_path(&c, &id, &path).await?;
    let body = sized_or_streamed(chunks).await;
    answer(StatusCode::OK, Some(&s), Some("application/x-tar"), body)
}

async fn extract(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
    body: Body,
) -> Answer<Response> {
    let mut reader = Box::new(super::images::body_reader(body));
    let (path, c) = match target(&d, &id, &q) {
        Ok(begun) => begun,
        Err(e) => {
            // The body read to its end first, so the client, still sending, gets the answer.
            let _ = tokio::task::spawn_blocking(move || {
                std::io::copy(&mut reader, &mut std::io::sink())
            })
            .await;
            return Err(e);
        }
    };
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"),
        copy_uid_gid: flag(&q, "copyUIDGID"),
    };
    d.extract_to_dir(&c, &id, &path, opts, reader).await?;
    answer(StatusCode::OK, None, None, Body::empty())
}

async fn export(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Answer<Response> {
    let c = d.find(&id)?;
    let chunks = d.export(&c).await?;
    answer(StatusCode::OK, None, Some("application/octet-stream"), streamed(chunks, Vec::new()))
}

fn answer(
    status: StatusCode,
    s: Option<&PathStat>,
    content_type: Option<&str>,
    body: Body,
) -> Answer<Response> {
    let mut b = Response::builder().status(status);
    if let Some(s) = s {
        b = b.header(STAT_HEADER, s.header());
    }
    if let Some(t) = content_type {
        b = b.header("Content-Type", t);
    }
    b.body(body).map_err(|e| ApiError(Error::internal(e)))
}

/// The tar whole (so with its length) if it ends within 2048 bytes, else streamed (chunked),
/// what was read first leading.
async fn sized_or_streamed(mut chunks: Chunks) -> Body {
    let mut head = Vec::new();
    while head.len() <= 2048 {
        match chunks.recv().await {
            Some(Ok(data)) => head.extend(data),
            Some(Err(e)) => {
                return Body::from_stream(futures_util::stream::iter([
                    Ok(Bytes::from(head)),
                    Err(e),
                ]));
            }
            None => return Body::from(head),
        }
    }
    streamed(chunks, head)
}

/// A body of `head`, then the chunks as they come (chunked).
pub(super) fn streamed(chunks: Chunks, head: Vec<u8>) -> Body {
    let first = futures_util::stream::iter((!head.is_empty()).then(|| Ok(Bytes::from(head))));
    let rest = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Bytes::from), rx))
    });
    Body::from_stream(futures_util::StreamExt::chain(first, rest))
}
