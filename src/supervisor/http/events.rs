//! `GET /events?since=&until=&filters=`: the events kept since `since`, then those to come
//! until `until` (for ever without it), one JSON object per line, as dockerd streams them.
//! Times are Unix seconds, with a fraction (`1700000000.5`) as Docker's client sends them.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;

use super::{Answer, Params};
use crate::supervisor::api::types::EventMessage;
use crate::supervisor::engine::events::matches;
use crate::supervisor::engine::{Daemon, Error};
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format::now_nanos;

/// The events route.
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new().route("/events", get(events))
}

/// A time of the query in nanoseconds since the epoch; moby's words (and its 500) for one it
/// cannot read.
fn parse_time(text: &str) -> Result<i64, Error> {
    crate::supervisor::rules::timestamps::parse_api(text).map_err(Error::internal)
}

fn line(m: &EventMessage) -> Bytes {
    let mut text = serde_json::to_vec(m).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

async fn events(State(d): State<Arc<Daemon>>, Query(q): Params) -> Answer<Response> {
    let since = q.get("since").filter(|s| !s.is_empty()).map(|s| parse_time(s)).transpose()?;
    let until = q.get("until").filter(|s| !s.is_empty()).map(|s| parse_time(s)).transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(Error::invalid(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            q["since"], q["until"]
        ))
        .into());
    }
    let filters = Filters::from_json(q.get("filters").map(String::as_str).unwrap_or_default())
        .map_err(Error::invalid)?;
    // Without `since`, only what is to come (taken now, so nothing falls between).
    let (past, mut live) = d.events.since(since.unwrap_or(i64::MAX));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let until = until.unwrap_or(i64::MAX);
        for m in past.iter().filter(|m| m.time_nano <= until && matches(&filters, m)) {
            if tx.send(Ok(line(m))).await.is_err() {
                return;
            }
        }
        loop {
            let left = until.saturating_sub(now_nanos());
            if left <= 0 {
                return;
            }
            let wait = std::time::Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX));
            let m = tokio::select! {
                m = live.recv() => m,
                _ = tokio::time::sleep(wait) => return,
                _ = tx.closed() => return,
            };
            match m {
                Ok(m) if m.time_nano <= until && matches(&filters, &m) => {
                    if tx.send(Ok(line(&m))).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        );
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}
