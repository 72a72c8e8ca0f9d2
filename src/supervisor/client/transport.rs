//! The client's transport: HTTP/1.1 over the daemon's unix socket (hyper), typed request and
//! answer bodies (the API types), the daemon's log stream decoded, and Docker's words for a
//! failed call.

use std::path::{Path, PathBuf};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::supervisor::api::stream::Decoder;
use crate::supervisor::api::types::ErrorResponse;

/// A failed call: what to print, and the exit code.
#[derive(Debug)]
pub(super) struct Failure {
    /// Docker's words.
    pub(super) message: String,
    /// The exit code.
    pub(super) code: u8,
    /// `run` adds "See 'cproxy run --help'." (flag errors, and refusals at create).
    pub(super) see_help: bool,
    /// The daemon's HTTP status, when it answered with an error (0 otherwise).
    pub(super) status: u16,
    /// Printed as it is, even by `run` (an error Docker's CLI returns unwrapped, as
    /// `the input device is not a TTY`).
    pub(super) bare: bool,
}

/// A command's outcome: its exit code, or what to print and exit with.
pub(super) type Result<T> = std::result::Result<T, Failure>;

/// A failure with Docker's words and exit code (125, the client's own refusal, asks `run` for
/// its usage hint).
pub(super) fn fail(message: impl Into<String>, code: u8) -> Failure {
    Failure { message: message.into(), code, see_help: code == 125, status: 0, bare: false }
}

/// `body` as a request's JSON (none: empty).
fn json_body<T: Serialize + ?Sized>(body: Option<&T>) -> Result<BoxBody<Bytes, std::io::Error>> {
    let body = match body {
        Some(b) => serde_json::to_vec(b).map_err(|e| fail(e.to_string(), 1))?,
        None => Vec::new(),
    };
    Ok(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed())
}

/// An answer's body read as `R` (an empty one as JSON's `null`).
pub(super) async fn read_json<R: DeserializeOwned>(resp: Response<Incoming>) -> Result<R> {
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| fail(e.to_string(), 1))?;
    let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
    serde_json::from_slice(bytes).map_err(|e| fail(format!("bad answer from the daemon: {e}"), 1))
}

/// The body of a request that has none.
pub(super) const NO_BODY: Option<&()> = None;

/// The daemon at the end of a socket.
pub(super) struct Client {
    /// The daemon's socket.
    pub(super) socket: PathBuf,
}

impl Client {
    /// Sends a request with `body` as JSON; a non-2xx answer becomes Docker's "Error response
    /// from daemon: …".
    pub(super) async fn call<T: Serialize + ?Sized>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&T>,
    ) -> Result<Response<Incoming>> {
        self.send(method, uri, "application/json", json_body(body)?).await
    }

    /// Sends `body` as it comes (a tarball being read) with `content_type`; a non-2xx answer
    /// becomes Docker's "Error response from daemon: …".
    pub(super) async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: &str,
        body: BoxBody<Bytes, std::io::Error>,
    ) -> Result<Response<Incoming>> {
        let req = Request::builder().method(method).header("Content-Type", content_type);
        let resp = self.exchange(uri, req, body).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(refusal(resp).await)
    }

    /// `POST uri` with `body` as JSON, asking to take the connection over (`Upgrade: tcp`) as
    /// Docker's CLI hijacks `attach` and `exec start`: the connection, once the daemon
    /// answered `101`.
    pub(super) async fn hijack<T: Serialize + ?Sized>(
        &self,
        uri: &str,
        body: Option<&T>,
    ) -> Result<TokioIo<Upgraded>> {
        let req = Request::builder()
            .method(Method::POST)
            .header("Content-Type", "application/json")
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp");
        let resp = self.exchange(uri, req, json_body(body)?).await?;
        if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
            return Err(refusal(resp).await);
        }
        hyper::upgrade::on(resp)
            .await
            .map(TokioIo::new)
            .map_err(|e| fail(format!("cannot talk to the daemon: {e}"), 1))
    }

    /// One request on a connection of its own (which may be taken over: `hijack`), its head
    /// `req` so far; the daemon's answer, whatever its status.
    async fn exchange(
        &self,
        uri: &str,
        req: hyper::http::request::Builder,
        body: BoxBody<Bytes, std::io::Error>,
    ) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| connect_error(&self.socket, uri, &e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("cannot talk to the daemon: {e}"), 1))?;
        tokio::spawn(conn.with_upgrades());
        let req =
            req.uri(uri).header("Host", "cproxy").body(body).map_err(|e| fail(e.to_string(), 1))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| fail(format!("cannot talk to the daemon: {e}"), 1))
    }

    /// [`Client::call`], the answer read as `R` (an empty answer as JSON's `null`).
    pub(super) async fn json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&T>,
    ) -> Result<R> {
        read_json(self.call(method, uri, body).await?).await
    }

    /// `GET /containers/NAME/json` as Docker 20.10's CLI looks a container up before `exec`
    /// and `logs` (`ContainerInspect`): a 404 in its words, `Error: No such container: NAME`
    /// (`wrapResponseError`), not the daemon's.
    pub(super) async fn inspect_container<R: DeserializeOwned>(&self, name: &str) -> Result<R> {
        let uri = format!("/containers/{}/json", q(name));
        self.json(Method::GET, &uri, NO_BODY).await.map_err(|f| match f.status {
            404 => Failure { message: format!("Error: No such container: {name}"), ..f },
            _ => f,
        })
    }

    /// `GET uri`, Docker's multiplexed stream: after each read, `each` takes what the decoder
    /// holds (whole frames, or whole lines), until the daemon ends the stream.
    pub(super) async fn stream(&self, uri: &str, each: impl FnMut(&mut Decoder)) -> Result<()> {
        self.stream_with(uri, Decoder::default(), each).await
    }

    /// [`Client::stream`] with a decoder of the caller's (a raw one for a terminal's output).
    pub(super) async fn stream_with(
        &self,
        uri: &str,
        mut decoder: Decoder,
        mut each: impl FnMut(&mut Decoder),
    ) -> Result<()> {
        let resp = self.call(Method::GET, uri, NO_BODY).await?;
        let mut body = resp.into_body();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                decoder.push(&data);
            }
            each(&mut decoder);
        }
        Ok(())
    }
}

/// An answer that is not the one asked for, as Docker's client words it: "Error response from
/// daemon: " and the daemon's message (its status if it sent none).
async fn refusal(resp: Response<Incoming>) -> Failure {
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let message = serde_json::from_slice::<ErrorResponse>(&bytes)
        .ok()
        .map(|e| e.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("{status}"));
    Failure {
        message: format!("Error response from daemon: {message}"),
        code: 1,
        see_help: false,
        status: status.as_u16(),
        bare: false,
    }
}

/// Docker's words for a socket that cannot be reached.
fn connect_error(socket: &Path, uri: &str, e: &std::io::Error) -> Failure {
    let s = socket.display();
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        fail(
            format!(
                "permission denied while trying to connect to the cproxy daemon socket at unix://{s}: \
                 {uri}: dial unix {s}: connect: permission denied"
            ),
            1,
        )
    } else {
        fail(
            format!(
                "Cannot connect to the cproxy daemon at unix://{s}. Is the cproxy daemon running?"
            ),
            1,
        )
    }
}

/// Percent-encodes a query or path value.
pub(super) fn q(s: &str) -> String {
    crate::supervisor::rules::format::percent_encode(s, false)
}

/// The daemon's API as `cproxy compose` calls it: the same client, a failure as the message
/// the container commands would print.
pub(super) struct Api {
    client: Client,
}

impl Api {
    /// The daemon at `socket`.
    pub(super) fn new(socket: PathBuf) -> Api {
        Api { client: Client { socket } }
    }

    /// A request whose answer is JSON, read as `R`.
    pub(super) async fn json<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&T>,
    ) -> std::result::Result<R, String> {
        self.client.json(method, uri, body).await.map_err(|f| f.message)
    }

    /// A request whose answer does not matter.
    pub(super) async fn call<T: Serialize + ?Sized>(
        &self,
        method: Method,
        uri: &str,
        body: Option<&T>,
    ) -> std::result::Result<(), String> {
        self.client.call(method, uri, body).await.map(drop).map_err(|f| f.message)
    }

    /// [`Client::stream`].
    pub(super) async fn stream(
        &self,
        uri: &str,
        each: impl FnMut(&mut Decoder),
    ) -> std::result::Result<(), String> {
        self.client.stream(uri, each).await.map_err(|f| f.message)
    }
}

/// An I/O error as Go words it (`no such file or directory`).
pub(super) fn go_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let text = nix::errno::Errno::from_raw(n).desc();
            let mut c = text.chars();
            c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(q("web_1.a-b~"), "web_1.a-b~");
        assert_eq!(q(r#"{"name":{"x":true}}"#), "%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D");
        assert_eq!(q("a b/é"), "a%20b%2F%C3%A9");
    }
}
