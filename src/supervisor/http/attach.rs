//! The hijacked routes, as dockerd serves them: `attach` and `exec start` answer `101
//! UPGRADED` (`Upgrade: tcp`) and the connection then carries the container's output (Docker's
//! multiplexed frames, or the terminal's raw bytes with `-t`) one way and the client's input
//! the other; a client that does not ask to upgrade gets the output as the body of a `200`.
//! `wait` answers its head at once and its body when the condition is met, so a client may
//! ask before it starts the container (`docker run`) and miss no exit. `resize` sets a
//! terminal's size.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&logs=1` | 101, the streams |
//! | `POST /containers/{id}/wait?condition=not-running\|next-exit\|removed` | `{"Error":null,"StatusCode":3}` |
//! | `POST /containers/{id}/resize?h=24&w=80` | 200 (409 when it is not running) |
//! | `POST /containers/{id}/exec` | 201 `{"Id": …}` |
//! | `POST /exec/{id}/start` (`{"Detach":false,"Tty":false}`) | 101, the streams; 200 with `Detach` |
//! | `GET /exec/{id}/json` | `ExitCode`, `Running`, `ProcessConfig`, … |
//! | `POST /exec/{id}/resize?h=24&w=80` | 200 |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Answer, Params, body_of, flag, json};
use crate::supervisor::api::stream::{self, StreamKind};
use crate::supervisor::api::types::{
    ContainerWaitResponse, ExecConfig, ExecInspect, ExecStartConfig, IdResponse,
};
use crate::supervisor::engine::attach::{Output, RunIo};
use crate::supervisor::engine::logs::LogRecord;
use crate::supervisor::engine::stop::WaitCondition;
use crate::supervisor::engine::{Daemon, Error};
use crate::supervisor::rules::detach;

/// Docker's content type of a hijacked stream.
const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// The hijacked routes.
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/exec", post(exec_create))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/json", get(exec_inspect))
        .route("/exec/{id}/resize", post(exec_resize))
}

/// The client's stdin, once the process to write it to exists.
struct Input {
    /// The process's stdio: now (an exec), or when the container's next run starts.
    io: Pin<Box<dyn Future<Output = Arc<RunIo>> + Send>>,
    /// Close the process's stdin when the client's ends (`StdinOnce`, an exec's).
    close_on_eof: bool,
}

/// What a hijacked connection carries.
struct Session {
    /// Replayed first (`logs=1`).
    before: Vec<Output>,
    output: mpsc::Receiver<Output>,
    /// Raw bytes (a terminal), not Docker's frames.
    tty: bool,
    want_out: bool,
    want_err: bool,
    input: Option<Input>,
    /// With a terminal's input: the keys that end the session (the process runs on), and
    /// what is done then (the event).
    detach: Option<Detach>,
}

/// A terminal session's detach keys, and what a detach does besides ending the session.
struct Detach {
    keys: Vec<u8>,
    then: Box<dyn FnOnce() + Send>,
}

impl Session {
    /// The bytes of a piece of output on the wire, if wanted.
    fn frame(&self, kind: StreamKind, data: &[u8]) -> Option<Vec<u8>> {
        let wanted = if kind == StreamKind::Stderr { self.want_err } else { self.want_out };
        match (wanted, self.tty) {
            (false, _) => None,
            (true, true) => Some(data.to_vec()),
            (true, false) => Some(stream::encode(kind, data)),
        }
    }

    /// Carries the streams over `conn` until the output ends or the client goes.
    async fn run(mut self, conn: impl AsyncRead + AsyncWrite + Send + 'static) {
        let (mut rd, mut wr) = tokio::io::split(conn);
        let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
        let mut detach = self.detach.take();
        let mut watch = detach.as_ref().map(|d| detach::Watch::new(d.keys.clone()));
        let input = self.input.take().map(|input| {
            tokio::spawn(async move {
                let io = input.io.await;
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    let n = match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let (send, detaching) = match watch.as_mut().map(|w| w.feed(&buf[..n])) {
                        None => (buf[..n].to_vec(), false),
                        Some(detach::Input::Send(send)) => (send, false),
                        Some(detach::Input::Detach(send)) => (send, true),
                    };
                    if !send.is_empty() && !io.write(Bytes::from(send)).await {
                        break;
                    }
                    if detaching {
                        // The process keeps its input (a terminal's is never closed here).
                        let _ = detached_tx.send(());
                        return;
                    }
                }
                if input.close_on_eof {
                    io.close_stdin();
                }
            })
        });
        let mut gone = false;
        for o in std::mem::take(&mut self.before) {
            if let Output::Data(kind, data) = o
                && let Some(bytes) = self.frame(kind, &data)
                && wr.write_all(&bytes).await.is_err()
            {
                gone = true;
                break;
            }
        }
        // Settled once the input ended, by the keys or otherwise (a oneshot is read once).
        let mut settled = false;
        while !gone {
            let next = tokio::select! {
                next = self.output.recv() => next,
                keys = &mut detached, if !settled => {
                    settled = true;
                    if keys.is_err() {
                        continue;
                    }
                    if let Some(d) = detach.take() {
                        (d.then)();
                    }
                    break;
                }
            };
            let Some(Output::Data(kind, data)) = next else { break };
            if let Some(bytes) = self.frame(kind, &data) {
                gone = wr.write_all(&bytes).await.is_err();
            }
        }
        let _ = wr.shutdown().await;
        if let Some(task) = input {
            task.abort();
        }
    }
}

/// Answers `req` with the session: hijacked (`101`) if the client asks to upgrade, else as a
/// `200` body (output only).
fn hijack(req: Request, session: Session) -> Response {
    hijack_then(req, async move { session })
}

/// [`hijack`] with a session made only once the client has the answer's head (and, if it
/// asked, the connection is upgraded): an exec's process starts then, as dockerd starts it, so
/// that its first output never travels with the `101`. docker-py reads the head through a
/// buffered reader and the stream from the socket under it: output sent with the head would
/// be lost in that buffer.
fn hijack_then(mut req: Request, make: impl Future<Output = Session> + Send + 'static) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if upgrade {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match on.await {
                Ok(conn) => make.await.run(TokioIo::new(conn)).await,
                Err(e) => tracing::debug!(error = %e, "the client did not upgrade"),
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONTENT_TYPE, RAW_STREAM)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(Body::empty())
            .unwrap_or_default();
    }
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut session = make.await;
        session.input = None;
        session.run(ours).await;
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(theirs));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, RAW_STREAM)
        .body(body)
        .unwrap_or_default()
}

/// An engine error written into a hijacked stream, as dockerd writes one once it has
/// upgraded (`Error: Exec command … has already run`).
fn error_session(e: &Error) -> Session {
    let (tx, rx) = mpsc::channel(2);
    let text = Bytes::from(format!("Error: {}\r\n", e.message));
    let _ = tx.try_send(Output::Data(StreamKind::Stdout, text));
    let _ = tx.try_send(Output::End);
    Session {
        before: Vec::new(),
        output: rx,
        tty: false,
        want_out: true,
        want_err: true,
        input: None,
        detach: None,
    }
}

async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
    req: Request,
) -> Answer<Response> {
    let c = d.find(&id)?;
    let keys = q.get("detachKeys").map_or("", String::as_str);
    let keys = detach::parse(keys)
        .map_err(|_| Error::invalid(format!("Invalid detach keys ({keys}) provided")))?;
    let r = c.record();
    d.events.container(&r, "attach", &[]);
    // Subscribed before anything is read, so that nothing in between is lost.
    let output = c.attach_output();
    let before = match flag(&q, "logs") {
        true => {
            let (d, c) = (d.clone(), c.clone());
            tokio::task::spawn_blocking(move || past_output(d.kept_records(&c)))
                .await
                .unwrap_or_default()
        }
        false => Vec::new(),
    };
    let output = match flag(&q, "stream") {
        true => output,
        false => {
            drop(output);
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(Output::End);
            rx
        }
    };
    let input = (flag(&q, "stdin") && r.stdio.open_stdin).then(|| {
        let c = c.clone();
        Input { io: Box::pin(async move { c.run_io().await }), close_on_eof: r.stdio.stdin_once }
    });
    let detach = (r.stdio.tty && input.is_some()).then(|| {
        let (events, r) = (d.events.clone(), r.clone());
        Detach { keys, then: Box::new(move || events.container(&r, "detach", &[])) }
    });
    let session = Session {
        before,
        output,
        tty: r.stdio.tty,
        want_out: flag(&q, "stdout"),
        want_err: flag(&q, "stderr"),
        input,
        detach,
    };
    Ok(hijack(req, session))
}

/// The log's records, oldest first, as output to replay (`attach?logs=1`).
fn past_output(records: Vec<LogRecord>) -> Vec<Output> {
    records.into_iter().map(|r| Output::Data(r.kind(), Bytes::from(r.log))).collect()
}

async fn wait(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<Response> {
    let c = d.find(&id)?;
    // Docker 20.10 takes a condition it does not know for `not-running`.
    let condition = q
        .get("condition")
        .and_then(|s| WaitCondition::parse(s).ok())
        .unwrap_or(WaitCondition::NotRunning);
    let exit = d.waiter(&c, condition);
    let body = futures_util::stream::once(async move {
        let answer = ContainerWaitResponse { error: None, status_code: i64::from(exit.await) };
        let mut text = serde_json::to_vec(&answer).unwrap_or_default();
        text.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(text))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_default())
}

/// `h` and `w` of a resize, as Docker reads them (`Invalid resize …` otherwise).
fn size(q: &std::collections::HashMap<String, String>) -> Result<(u16, u16), Error> {
    let get = |k: &str| {
        q.get(k)
            .map(String::as_str)
            .unwrap_or_default()
            .parse::<u16>()
            .map_err(|e| Error::invalid(format!("strconv.Atoi: parsing {:?}: {e}", q.get(k))))
    };
    Ok((get("h")?, get("w")?))
}

async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let c = d.find(&id)?;
    let (h, w) = size(&q)?;
    let io = c
        .current_io()
        .ok_or_else(|| Error::conflict(format!("Container {} is not running", c.id)))?;
    // A container without a terminal has nothing to resize: Docker says nothing either.
    let r = c.record();
    if r.stdio.tty {
        io.resize(h, w)?;
    }
    d.events.container(&r, "resize", &[("height", h.to_string()), ("width", w.to_string())]);
    Ok(StatusCode::OK)
}

async fn exec_create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    super::JsonBody(body): super::JsonBody,
) -> Answer<Response> {
    let config: ExecConfig = body_of(&body, "types.ExecConfig", super::go_json::Reader::ReadJson)?;
    crate::supervisor::engine::exec::check_exec(&config)?;
    let c = d.find(&id)?;
    let id = d.exec_create(&c, &id, config)?;
    Ok(json(StatusCode::CREATED, IdResponse { id }))
}

async fn exec_start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    req: Request,
) -> Answer<Response> {
    // dockerd's order: the body's type, the body, then the exec.
    super::check_for_json(req.headers())?;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, super::server::MAX_BODY)
        .await
        .map_err(|e| Error::invalid(format!("invalid request body: {e}")))?;
    let start: ExecStartConfig =
        body_of(&bytes, "types.ExecStartCheck", super::go_json::Reader::ReadJson)?;
    let e = d.exec_find(&id)?;
    let req = Request::from_parts(parts, Body::empty());
    if start.detach {
        // Nobody reads its output: let it go.
        drop(d.exec_start(&e).await?);
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .body(Body::empty())
            .unwrap_or_default());
    }
    // Started once the client has the head (see `hijack_then`); a refusal is written into
    // the stream, as dockerd writes it.
    Ok(hijack_then(req, async move {
        let streams = match d.exec_start(&e).await {
            Ok(s) => s,
            Err(err) => return error_session(&err),
        };
        let cfg = &e.config;
        let input = cfg.attach_stdin.then(|| {
            let io = streams.io.clone();
            Input { io: Box::pin(async move { io }), close_on_eof: true }
        });
        let detach = (cfg.tty && input.is_some()).then(|| {
            // Checked at the exec's creation.
            let keys = detach::parse(&cfg.detach_keys).unwrap_or_else(|_| detach::DEFAULT.to_vec());
            let (daemon, exec) = (d.clone(), e.clone());
            Detach { keys, then: Box::new(move || daemon.exec_detached(&exec)) }
        });
        Session {
            before: Vec::new(),
            output: streams.output,
            tty: cfg.tty,
            want_out: cfg.attach_stdout || cfg.tty,
            want_err: cfg.attach_stderr || cfg.tty,
            input,
            detach,
        }
    }))
}

async fn exec_inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Answer<axum::Json<ExecInspect>> {
    let e = d.exec_find(&id)?;
    Ok(axum::Json(d.exec_inspect(&e)))
}

async fn exec_resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Answer<StatusCode> {
    let e = d.exec_find(&id)?;
    let (h, w) = size(&q)?;
    d.exec_resize(&e, h, w)?;
    Ok(StatusCode::OK)
}
