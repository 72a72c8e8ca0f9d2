//! A container's output in Docker's json-file format: one JSON record per line of output
//! (`{"log":"hi\n","stream":"stdout","time":"…"}`), written by a pump per stream, read back by
//! `logs`. A line longer than [`MAX_RECORD`] is cut into records of that size, as Docker's
//! log driver does, so a container writing without newlines costs the daemon a bounded
//! buffer, not its whole output.

use std::io::{Read, Write};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

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
        let record = LogRecord {
            log: text.to_string(),
            stream: stream.name().to_string(),
            time: rfc3339(SystemTime::now()),
        };
        if let Ok(mut line) = serde_json::to_vec(&record)
            && let Ok(mut log) = self.log.lock()
            && let Some(f) = log.as_mut()
        {
            line.push(b'\n');
            // One write per record, so a reader never sees half of one.
            let _ = f.write_all(&line);
        }
        self.events.send_modify(|n| *n += 1);
    }
}

/// Reads a pipe (or a terminal's master) into the log, a record per line or per
/// [`MAX_RECORD`] bytes of a longer one, and gives each read, as it comes, to the attached
/// clients.
pub(super) fn pump(c: &Container, stream: StreamKind, mut pipe: Box<dyn Read + Send>) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut line: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A terminal's master reads EIO once the command's side is closed.
            Err(_) => break,
        };
        c.broadcast(stream, &buf[..n]);
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let room = &rest[..rest.len().min(MAX_RECORD - line.len())];
            let take = room.iter().position(|b| *b == b'\n').map_or(room.len(), |i| i + 1);
            line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if line.ends_with(b"\n") || line.len() == MAX_RECORD {
                c.log_record(stream, &String::from_utf8_lossy(&line));
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        c.log_record(stream, &String::from_utf8_lossy(&line));
    }
}
