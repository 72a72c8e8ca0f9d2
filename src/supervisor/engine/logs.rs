//! A container's output in Docker's json-file format: one JSON record per line of output
//! (`{"log":"hi\n","stream":"stdout","time":"…"}`), written by a pump per stream, read back by
//! `logs`. A line longer than [`MAX_RECORD`] is cut into records of that size, as Docker's
//! log driver does, so a container writing without newlines costs the daemon a bounded
//! buffer, not its whole output.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::engine::Container;
use crate::supervisor::rules::format::rfc3339;

/// The most bytes one record carries (Docker's 16 KiB): the rest of a longer line follows in
/// the next records, only the last one ending with the newline.
pub const MAX_RECORD: usize = 16 * 1024;

/// One record of the json-file log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogRecord {
    /// The bytes of output (as text; invalid UTF-8 replaced), with its newline if it ended one.
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When the daemon read it, RFC 3339.
    pub time: String,
}

impl LogRecord {
    /// Which stream it came from.
    pub fn kind(&self) -> StreamKind {
        StreamKind::from_name(&self.stream)
    }
}

impl Container {
    /// Appends one record of output to the log.
    fn log_record(&self, stream: StreamKind, text: &str) {
        // The time is read under the log's lock, so the stdout and stderr pumps append records
        // in the order of their times: `--tail` (the file's order) and `--since` (the times)
        // agree about which record came last.
        if let Ok(mut log) = self.log.lock()
            && let Some(f) = log.as_mut()
        {
            let record = LogRecord {
                log: text.to_string(),
                stream: stream.name().to_string(),
                time: rfc3339(SystemTime::now()),
            };
            let Ok(mut line) = serde_json::to_vec(&record) else {
                return;
            };
            line.push(b'\n');
            // One write per record, so a reader never sees half of one.
            let _ = f.write_all(&line);
        }
        self.events.send_modify(|n| *n += 1);
    }
}

/// What a pump has read of a line not yet ended, and how it cuts output into records: a
/// record per line or per [`MAX_RECORD`] bytes of a longer one.
struct Records {
    line: Vec<u8>,
}

impl Records {
    fn new() -> Records {
        Records { line: Vec::with_capacity(4096) }
    }

    /// Logs the records `read` ends; keeps what is left of an unended line.
    fn add(&mut self, c: &Container, stream: StreamKind, read: &[u8]) {
        let mut rest = read;
        while !rest.is_empty() {
            let room = &rest[..rest.len().min(MAX_RECORD - self.line.len())];
            let take = room.iter().position(|b| *b == b'\n').map_or(room.len(), |i| i + 1);
            self.line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.line.ends_with(b"\n") || self.line.len() == MAX_RECORD {
                c.log_record(stream, &String::from_utf8_lossy(&self.line));
                self.line.clear();
            }
        }
    }

    /// Logs an unended last line.
    fn end(self, c: &Container, stream: StreamKind) {
        if !self.line.is_empty() {
            c.log_record(stream, &String::from_utf8_lossy(&self.line));
        }
    }
}

/// Bytes a pump reads at a time.
const PUMP_READ: usize = 32 * 1024;

/// Reads a terminal's master into the log on a thread of its own (the master is shared with
/// the writer of the container's input, which must block), and gives each read, as it comes,
/// to the attached clients.
pub(super) fn pump(c: &Container, stream: StreamKind, mut pipe: Box<dyn Read + Send>) {
    let mut buf = vec![0u8; PUMP_READ];
    let mut records = Records::new();
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A terminal's master reads EIO once the command's side is closed.
            Err(_) => break,
        };
        c.broadcast(stream, &buf[..n]);
        records.add(c, stream, &buf[..n]);
    }
    records.end(c, stream);
}

/// Reads a pipe into the log as a task of the daemon's runtime (no thread of its own), a
/// record per line, and gives each read, as it comes, to the attached clients; a slow client
/// slows the reading, as on a thread. A pipe the runtime cannot watch is read on a thread.
pub(super) async fn pump_pipe(c: Arc<Container>, stream: StreamKind, pipe: OwnedFd) {
    let watched = match crate::sys::set_nonblocking(pipe.as_fd()) {
        // SAFETY: the `AsyncFd` owns the pipe, whose descriptor stays open (and is the one
        // `as_raw_fd` returns) for as long as it is registered.
        Ok(()) => unsafe { AsyncFd::register_with_interest(pipe, Interest::READABLE) }
            .map_err(|e| e.into_parts()),
        Err(e) => Err((pipe, e)),
    };
    let pipe = match watched {
        Ok(pipe) => pipe,
        Err((pipe, e)) => {
            tracing::debug!(error = %e, "a container's pipe is read on a thread");
            let reader = Box::new(std::fs::File::from(pipe));
            let _ = tokio::task::spawn_blocking(move || pump(&c, stream, reader)).await;
            return;
        }
    };
    let mut buf = vec![0u8; PUMP_READ];
    let mut records = Records::new();
    loop {
        let read = match pipe.readable().await {
            Ok(mut ready) => match ready.try_io(|p| crate::sys::read(p.as_fd(), &mut buf)) {
                Ok(read) => read,
                Err(_would_block) => continue,
            },
            Err(_) => break,
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        c.send_to_attached(stream, &buf[..n]).await;
        records.add(&c, stream, &buf[..n]);
    }
    records.end(&c, stream);
}

/// What `logs` shows (the API's query, read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open for what the container writes next, while it runs.
    pub follow: bool,
    /// Show what it wrote to stdout.
    pub stdout: bool,
    /// Show what it wrote to stderr.
    pub stderr: bool,
    /// Only records from this time on (nanoseconds since the epoch).
    pub since: Option<i64>,
    /// Only records up to this time; a follow ends there.
    pub until: Option<i64>,
    /// Each record after its time (RFC 3339, nanoseconds) and a space.
    pub timestamps: bool,
    /// The last so many records only (before `since` and `until` apply, as moby's json-file
    /// reader does).
    pub tail: Option<usize>,
}

impl LogOptions {
    /// Whether a record is shown.
    fn shows(&self, record: &LogRecord) -> bool {
        let wanted = match record.kind() {
            StreamKind::Stderr => self.stderr,
            _ => self.stdout,
        };
        if !wanted {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let at = crate::supervisor::rules::format::parse_rfc3339(&record.time)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at <= u)
    }

    /// How a record goes on the wire: in Docker's frames, or raw for a container on a
    /// terminal (its output is one stream, as `attach` gives it).
    fn encode(&self, record: &LogRecord, tty: bool) -> Vec<u8> {
        let text = if self.timestamps {
            std::borrow::Cow::Owned(format!("{} {}", record.time, record.log))
        } else {
            std::borrow::Cow::Borrowed(record.log.as_str())
        };
        if tty {
            text.as_bytes().to_vec()
        } else {
            crate::supervisor::api::stream::encode(record.kind(), text.as_bytes())
        }
    }
}

impl crate::supervisor::engine::Daemon {
    /// `logs`: the container's log as `opts` selects it, then (with `follow`) what it writes
    /// while it runs, as chunks of the wire's bytes; the receiver's end drops the reader.
    pub fn logs(
        &self,
        c: std::sync::Arc<Container>,
        opts: LogOptions,
    ) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let path = self.log_path(&c);
        let mut rx = c.watch();
        let (tx, out) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        tokio::spawn(async move {
            let tty = c.record().stdio.tty;
            let mut file = None;
            // Bytes of a record whose end has not been written yet.
            let mut pending: Vec<u8> = Vec::new();
            let mut first = true;
            // `until` has come: one last read, then the end.
            let mut last = false;
            loop {
                let running = {
                    rx.borrow_and_update();
                    c.record().state.status == crate::supervisor::engine::store::Status::Running
                };
                if file.is_none() {
                    file = tokio::fs::File::open(&path).await.ok();
                }
                if let Some(f) = file.as_mut() {
                    let _ = f.read_to_end(&mut pending).await;
                }
                let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let text: Vec<u8> = pending.drain(..complete).collect();
                let mut batch: Vec<&[u8]> =
                    text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
                if first && let Some(n) = opts.tail {
                    batch.drain(..batch.len().saturating_sub(n));
                }
                first = false;
                for line in batch {
                    let Ok(record) = serde_json::from_slice::<LogRecord>(line) else { continue };
                    if opts.shows(&record) && tx.send(opts.encode(&record, tty)).await.is_err() {
                        return;
                    }
                }
                if last || !opts.follow || !running {
                    return;
                }
                let next = rx.changed();
                match opts.until.map(nanos_from_now) {
                    None => {
                        if next.await.is_err() {
                            return;
                        }
                    }
                    Some(left) => match tokio::time::timeout(left, next).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => last = true,
                    },
                }
            }
        });
        out
    }
}

/// How long until a time (nanoseconds since the epoch); nothing once it has passed.
fn nanos_from_now(at: i64) -> std::time::Duration {
    let now = crate::supervisor::rules::format::now_nanos();
    std::time::Duration::from_nanos(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}
