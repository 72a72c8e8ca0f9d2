//! A container's output as its log driver keeps it: Docker's json-file records, one JSON
//! object per line of output (`{"log":"hi\n","stream":"stdout","time":"…"}`), written by a pump
//! per stream into a file that rotates as the driver's options say (`max-size`, `max-file`,
//! `compress`; [`crate::supervisor::rules::logging`]), and read back by `logs`, the rotated
//! files first. A line longer than [`MAX_RECORD`] is cut into records of that size, as
//! Docker's log driver does, so a container writing without newlines costs the daemon a
//! bounded buffer, not its whole output.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::engine::Container;
use crate::supervisor::engine::store::Record;
use crate::supervisor::rules::format::rfc3339;
use crate::supervisor::rules::logging::{self, Driver, Rotation};

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
    /// What json-file adds to each record (`--log-opt labels`, `env`, `tag`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// When the daemon read it, RFC 3339.
    pub time: String,
}

impl LogRecord {
    /// Which stream it came from.
    pub fn kind(&self) -> StreamKind {
        StreamKind::from_name(&self.stream)
    }
}

/// The file a container's log driver writes, in the container's directory `dir`: json-file's
/// `<id>-json.log` (`inspect`'s `LogPath`), or `local-logs/container.log`.
pub fn log_file(dir: &Path, r: &Record) -> PathBuf {
    match Driver::parse(&r.log_config.kind) {
        Ok(Driver::Local) => dir.join("local-logs").join("container.log"),
        _ => dir.join(format!("{}-json.log", r.id)),
    }
}

/// The `n`th rotated file beside `path` (`<path>.n`, with `.gz` once compressed).
fn rotated(path: &Path, n: usize, gz: bool) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(name)
}

/// How a container's driver rotates (`None`: `none`, nothing kept), or why its options
/// cannot be used.
pub fn rotation_of(r: &Record) -> Result<Option<Rotation>, String> {
    let driver = Driver::parse(&r.log_config.kind)?;
    logging::rotation(driver, &r.log_config.config)
}

/// What json-file adds to each record of container `r` (labels, variables, its `tag`), or
/// why its options cannot be used.
fn attributes(r: &Record) -> Result<std::collections::BTreeMap<String, String>, String> {
    let config = &r.log_config.config;
    if Driver::parse(&r.log_config.kind)? != Driver::JsonFile {
        return Ok(Default::default());
    }
    let tag = match config.get("tag").filter(|t| !t.is_empty()) {
        None => String::new(),
        Some(template) => {
            logging::check_tag(template)?;
            let image = r.image.as_ref();
            let image_id = image.map_or("", |i| i.id.as_str());
            let hostname = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            let info = serde_json::json!({
                "ID": &r.id[..r.id.len().min(12)],
                "FullID": r.id,
                "Name": r.name,
                "ImageID": &image_id[..image_id.len().min(12)],
                "ImageFullID": image_id,
                "ImageName": image.map_or("", |i| i.name.as_str()),
                "Hostname": hostname,
                "DaemonName": "docker",
                "ContainerID": r.id,
                "ContainerName": format!("/{}", r.name),
                "ContainerImageID": image_id,
                "ContainerImageName": image.map_or("", |i| i.name.as_str()),
                "LogPath": "",
            });
            crate::supervisor::rules::template::render_template(template, &info)
        }
    };
    logging::attributes(config, r.labels.as_ref().unwrap_or(&Default::default()), &r.env, &tag)
}

/// A container's log as its pumps and readers share it.
#[derive(Debug, Default)]
pub struct Log {
    /// The file written while the container runs (`None` when stopped, or with `none`).
    pub(super) writer: Option<LogWriter>,
    /// Rotations so far: the file current at generation `g` is `.1` at `g + 1`, `.k` at
    /// `g + k`. A reader that falls behind finds the files it has not read by it.
    generation: u64,
    /// The gzip a stopped writer left running: the next writer's first rotation, or the
    /// container's removal, waits for it (never under this lock).
    compressing: Option<std::thread::JoinHandle<()>>,
}

impl Log {
    /// Starts writing with `writer` (`None`: a driver that keeps nothing); a gzip the last
    /// writer left running is the new one's to wait for before it rotates.
    pub(super) fn start_writing(&mut self, writer: Option<LogWriter>) {
        self.writer = writer;
        if let Some(w) = self.writer.as_mut()
            && w.compressing.is_none()
        {
            w.compressing = self.compressing.take();
        }
    }

    /// Stops writing (the container stopped, or did not start): the file is closed at once; a
    /// gzip still running is kept, not waited for, so that this lock is not held meanwhile.
    pub(super) fn stop_writing(&mut self) {
        if let Some(mut w) = self.writer.take()
            && let Some(gzip) = w.compressing.take()
        {
            self.compressing = Some(gzip);
        }
    }
}

impl Container {
    /// Waits (off the runtime's workers) for a gzip of the container's log still running, so
    /// that nothing writes in its directory once it is removed.
    pub(super) async fn log_settled(&self) {
        let gzip = self.log.lock().ok().and_then(|mut log| log.compressing.take());
        if let Some(gzip) = gzip {
            let _ = tokio::task::spawn_blocking(move || gzip.join()).await;
        }
    }
}

/// The file a running container's records are appended to, rotated before a record once it
/// holds `max-size` bytes: `<file>.1` … `<file>.<max-file − 1>` keep the older ones (gzipped
/// with `compress`), as moby's `LogFile` keeps them.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    /// Bytes in `file`.
    size: u64,
    rotation: Rotation,
    /// The gzip of the newest rotated file while it runs: the next rotation waits for it.
    compressing: Option<std::thread::JoinHandle<()>>,
    /// What each record carries beside its text (json-file's `attrs`), encoded; empty: none.
    attrs: String,
}

impl LogWriter {
    /// Opens (appending) the file of a container `r` whose directory is `dir`, as its driver
    /// starts (`None` for `none`), or the driver's refusal, in its words.
    pub(super) fn open(dir: &Path, r: &Record) -> Result<Option<LogWriter>, String> {
        let Some(rotation) = rotation_of(r)? else { return Ok(None) };
        let path = log_file(dir, r);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let attrs = logging::encode_attrs(&attributes(r)?);
        let file = open_log(&path, false).map_err(|e| e.to_string())?;
        let size = file.metadata().map_err(|e| e.to_string())?.len();
        Ok(Some(LogWriter { file, path, size, rotation, compressing: None, attrs }))
    }

    /// Appends records (lines), the file rotated before a record whenever it is full; how
    /// many rotations that took. The records between two rotations go in one write, so a
    /// reader never sees half of one (and a chatty container costs a write per read, not per
    /// line).
    fn append(&mut self, lines: &[Vec<u8>]) -> u64 {
        let mut rotations = 0;
        let mut out = Vec::with_capacity(lines.iter().map(Vec::len).sum());
        for line in lines {
            let full =
                self.rotation.max_size.is_some_and(|max| self.size + out.len() as u64 >= max);
            if full {
                self.write(&mut out);
                match self.rotate() {
                    Ok(()) => rotations += 1,
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot rotate a log");
                    }
                }
            }
            out.extend_from_slice(line);
        }
        self.write(&mut out);
        rotations
    }

    /// Writes out what `out` holds, and empties it.
    fn write(&mut self, out: &mut Vec<u8>) {
        if !out.is_empty() && self.file.write_all(out).is_ok() {
            self.size += out.len() as u64;
        }
        out.clear();
    }

    /// Moves each rotated file one number up (the oldest goes), the current one to `.1`, and
    /// starts an empty current one; `.1` is gzipped beside it with `compress`. A reader that
    /// holds the old current file reads it to its end, then opens the new one.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(gzip) = self.compressing.take() {
            let _ = gzip.join();
        }
        let keep = self.rotation.max_files;
        let gz = self.rotation.compress;
        if keep >= 2 {
            remove_if_there(&rotated(&self.path, keep - 1, gz))?;
            for n in (1..keep - 1).rev() {
                match std::fs::rename(rotated(&self.path, n, gz), rotated(&self.path, n + 1, gz)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        // With one file kept, the old one waits as `.1` (replaced at each rotation, never read
        // back), so a reader of it is not cut short.
        std::fs::rename(&self.path, rotated(&self.path, 1, false))?;
        self.file = open_log(&self.path, true)?;
        self.size = 0;
        if gz {
            let (from, to) = (rotated(&self.path, 1, false), rotated(&self.path, 1, true));
            self.compressing = Some(std::thread::spawn(move || {
                if let Err(e) = gzip(&from, &to) {
                    tracing::warn!(path = %from.display(), error = %e, "cannot compress a log");
                }
            }));
        }
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Some(gzip) = self.compressing.take() {
            let _ = gzip.join();
        }
    }
}

/// Opens a log file for appending, as moby makes them (0640), emptied if `truncate`.
fn open_log(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .mode(0o640)
        .open(path)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gzips `from` into `to` (whole, or not at all: through a temporary file), then removes
/// `from`.
fn gzip(from: &Path, to: &Path) -> io::Result<()> {
    let mut tmp = to.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut input = File::open(from)?;
        let out =
            OpenOptions::new().create(true).write(true).truncate(true).mode(0o640).open(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.sync_all()?;
        std::fs::rename(&tmp, to)
    })();
    match result {
        Ok(()) => std::fs::remove_file(from),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

impl Container {
    /// Appends records of output read at one time to the log (nothing with the `none`
    /// driver).
    fn log_records(&self, stream: StreamKind, texts: &[String]) {
        if texts.is_empty() {
            return;
        }
        // The time is read under the log's lock, so the stdout and stderr pumps append records
        // in the order of their times: `--tail` (the file's order) and `--since` (the times)
        // agree about which record came last.
        if let Ok(mut log) = self.log.lock()
            && let Some(w) = log.writer.as_mut()
        {
            let time = rfc3339(SystemTime::now());
            let lines: Vec<Vec<u8>> = texts
                .iter()
                .map(|text| logging::record_line(text, stream.name(), &w.attrs, &time))
                .collect();
            let rotations = w.append(&lines);
            log.generation += rotations;
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
        let mut ended = Vec::new();
        let mut rest = read;
        while !rest.is_empty() {
            let room = &rest[..rest.len().min(MAX_RECORD - self.line.len())];
            let take = room.iter().position(|b| *b == b'\n').map_or(room.len(), |i| i + 1);
            self.line.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.line.ends_with(b"\n") || self.line.len() == MAX_RECORD {
                ended.push(String::from_utf8_lossy(&self.line).into_owned());
                self.line.clear();
            }
        }
        c.log_records(stream, &ended);
    }

    /// Logs an unended last line.
    fn end(self, c: &Container, stream: StreamKind) {
        if !self.line.is_empty() {
            c.log_records(stream, &[String::from_utf8_lossy(&self.line).into_owned()]);
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
        // A pipe that is always readable never makes `readable` wait: without this, a
        // container that writes without pause would hold its worker for ever, and the tasks
        // queued behind it (a `kill`, a `rm -f`) with it.
        tokio::task::coop::consume_budget().await;
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
    /// Each record after its attributes (`k=v,…`, see [`logging::details`]) and a space, after
    /// its time if `timestamps`.
    pub details: bool,
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
        let text = match (self.timestamps, self.details) {
            (false, false) => std::borrow::Cow::Borrowed(record.log.as_str()),
            (true, false) => std::borrow::Cow::Owned(format!("{} {}", record.time, record.log)),
            (false, true) => std::borrow::Cow::Owned(format!(
                "{} {}",
                logging::details(&record.attrs),
                record.log
            )),
            (true, true) => std::borrow::Cow::Owned(format!(
                "{} {} {}",
                record.time,
                logging::details(&record.attrs),
                record.log
            )),
        };
        if tty {
            text.as_bytes().to_vec()
        } else {
            crate::supervisor::api::stream::encode(record.kind(), text.as_bytes())
        }
    }
}

impl crate::supervisor::engine::Daemon {
    /// `logs`: the container's log as `opts` selects it (the rotated files first, oldest
    /// first), then (with `follow`) what it writes while it runs, as chunks of the wire's
    /// bytes; the receiver's end drops the reader. Refused for the `none` driver.
    pub fn logs(
        &self,
        c: Arc<Container>,
        opts: LogOptions,
    ) -> crate::supervisor::engine::error::Result<tokio::sync::mpsc::Receiver<Vec<u8>>> {
        let record = c.record();
        let keep = match rotation_of(&record) {
            Ok(None) => {
                return Err(crate::supervisor::engine::Error::new(
                    crate::supervisor::engine::ErrorKind::NotImplemented,
                    "configured logging driver does not support reading",
                ));
            }
            Ok(Some(r)) => r.max_files,
            // Options its start refuses: what an older start of it wrote, if anything.
            Err(_) => 1,
        };
        let mut rx = c.watch();
        let (tx, out) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let reader =
            Reader { c, path: self.log_path_of(&record), keep, opts, tty: record.stdio.tty, tx };
        tokio::spawn(async move {
            let reader = Arc::new(reader);
            let kept = {
                let reader = reader.clone();
                tokio::task::spawn_blocking(move || reader.read_kept()).await
            };
            let Ok(Some(at)) = kept else { return };
            if reader.opts.follow {
                reader.follow(&mut rx, at).await;
            }
        });
        Ok(out)
    }
}

impl crate::supervisor::engine::Daemon {
    /// The whole records a container's log holds now, oldest first, the rotated files first
    /// (`attach?logs=1` replays them); nothing for a driver that keeps none. Reads files: call
    /// it off the runtime's workers.
    pub fn kept_records(&self, c: &Container) -> Vec<LogRecord> {
        let record = c.record();
        let keep = match rotation_of(&record) {
            Ok(None) => return Vec::new(),
            Ok(Some(r)) => r.max_files,
            Err(_) => 1,
        };
        let Some((older, file, _)) = open_kept(c, &self.log_path_of(&record), keep) else {
            return Vec::new();
        };
        let current = file.map(|f| Box::new(BufReader::new(f)) as Box<dyn BufRead + Send>);
        let mut records = Vec::new();
        for reader in older.into_iter().chain(current) {
            for line in reader.split(b'\n') {
                let Ok(line) = line else { break };
                // The current file's last line may be a record still being written: it
                // does not parse, and is left out.
                if let Ok(r) = serde_json::from_slice::<LogRecord>(&line) {
                    records.push(r);
                }
            }
        }
        records
    }
}

/// The `n`th rotated file, as it is now: plain, or gzipped.
fn open_rotated(path: &Path, n: usize) -> Option<Box<dyn BufRead + Send>> {
    if let Ok(f) = File::open(rotated(path, n, false)) {
        return Some(Box::new(BufReader::new(f)));
    }
    let f = File::open(rotated(path, n, true)).ok()?;
    Some(Box::new(BufReader::new(flate2::read::GzDecoder::new(BufReader::new(f)))))
}

/// The files a log of `keep` files holds now, opened under the writer's lock (so that no
/// rotation comes between): the rotated ones, oldest first, the current one (if any), and the
/// generation that one is current at.
#[allow(clippy::type_complexity)]
fn open_kept(
    c: &Container,
    path: &Path,
    keep: usize,
) -> Option<(Vec<Box<dyn BufRead + Send>>, Option<File>, u64)> {
    let log = c.log.lock().ok()?;
    let older = (1..keep).rev().filter_map(|n| open_rotated(path, n)).collect();
    Some((older, File::open(path).ok(), log.generation))
}

/// Where a follower is: the current file it holds (`None`: there was none yet), the
/// generation that file was current at, and the bytes of a record not yet whole in it.
struct At {
    file: Option<File>,
    generation: u64,
    pending: Vec<u8>,
}

/// One `logs` request's reading of a container's log.
struct Reader {
    c: Arc<Container>,
    path: PathBuf,
    /// How many files the driver keeps, the current one included.
    keep: usize,
    opts: LogOptions,
    tty: bool,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

/// What a follower that fell behind opens next.
enum Next {
    /// The file of the generation it asked for, now rotated.
    Rotated(Box<dyn BufRead + Send>),
    /// The current file (of this generation).
    Current(Option<File>, u64),
    /// The generation asked for was rotated out of what is kept: this one is the oldest left.
    Gone(u64),
}

impl Reader {
    /// A record (a line of a log file) as it goes on the wire, if the request shows it.
    fn shown(&self, line: &[u8]) -> Option<Vec<u8>> {
        let record = serde_json::from_slice::<LogRecord>(line).ok()?;
        self.opts.shows(&record).then(|| self.opts.encode(&record, self.tty))
    }

    /// Sends a record if shown, from a thread of the blocking pool; false once the receiver
    /// is gone.
    fn send_blocking(&self, line: &[u8]) -> bool {
        self.shown(line).is_none_or(|bytes| self.tx.blocking_send(bytes).is_ok())
    }

    /// Reads the records the log holds now, on a thread of the blocking pool: the rotated
    /// files, oldest first, then the current one, all opened under the writer's lock (so no
    /// rotation comes between), `tail` applied over them all. Where it stopped; `None` once
    /// the receiver is gone.
    fn read_kept(&self) -> Option<At> {
        let wanted = self.opts.tail != Some(0);
        let (older, file, generation) =
            open_kept(&self.c, &self.path, if wanted { self.keep } else { 1 })?;
        let mut last: VecDeque<Vec<u8>> = VecDeque::new();
        let mut emit = |line: Vec<u8>| -> bool {
            match self.opts.tail {
                Some(0) => true,
                Some(n) => {
                    if last.len() == n {
                        last.pop_front();
                    }
                    last.push_back(line);
                    true
                }
                None => self.send_blocking(&line),
            }
        };
        for reader in older {
            for line in reader.split(b'\n') {
                let Ok(line) = line else { break };
                if !line.is_empty() && !emit(line) {
                    return None;
                }
            }
        }
        let mut pending = Vec::new();
        if let Some(f) = file.as_ref() {
            let mut reader = BufReader::new(f);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.ends_with(b"\n") => {
                        line.pop();
                        if !line.is_empty() && !emit(line) {
                            return None;
                        }
                    }
                    Ok(_) => {
                        pending = line;
                        break;
                    }
                }
            }
        }
        for line in last {
            if !self.send_blocking(&line) {
                return None;
            }
        }
        Some(At { file, generation, pending })
    }

    /// The file of generation `g`, opened under the writer's lock (the rotation it is at
    /// cannot change meanwhile).
    fn open_generation(&self, g: u64) -> Option<Next> {
        let log = self.c.log.lock().ok()?;
        let now = log.generation;
        let back = now.saturating_sub(g);
        Some(if back == 0 {
            Next::Current(File::open(&self.path).ok(), now)
        } else if back >= self.keep as u64 {
            Next::Gone(now - (self.keep as u64 - 1))
        } else {
            match open_rotated(&self.path, back as usize) {
                Some(r) => Next::Rotated(r),
                None => Next::Gone(g + 1),
            }
        })
    }

    /// After the file of `generation` was rotated (and read to its end): the files rotated
    /// since, read whole in order on a thread of the blocking pool, then the current one
    /// opened. What the driver no longer keeps is skipped (it was rotated out, as Docker's
    /// reader loses it too). `None` once the receiver is gone.
    fn catch_up(&self, generation: u64) -> Option<At> {
        let mut g = generation + 1;
        loop {
            match self.open_generation(g)? {
                Next::Current(file, generation) => {
                    return Some(At { file, generation, pending: Vec::new() });
                }
                Next::Gone(oldest) => g = oldest.max(g + 1),
                Next::Rotated(reader) => {
                    for line in reader.split(b'\n') {
                        let Ok(line) = line else { break };
                        if !line.is_empty() && !self.send_blocking(&line) {
                            return None;
                        }
                    }
                    g += 1;
                }
            }
        }
    }

    /// Sends the whole records `pending` holds, keeping the rest; false once the receiver is
    /// gone.
    async fn send_whole(&self, pending: &mut Vec<u8>) -> bool {
        let complete = pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let text: Vec<u8> = pending.drain(..complete).collect();
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(bytes) = self.shown(line)
                && self.tx.send(bytes).await.is_err()
            {
                return false;
            }
        }
        true
    }

    /// Follows the log while the container runs: what is added to the current file, and after
    /// rotations, the rest of it, the files rotated since, and the new current one.
    async fn follow(self: &Arc<Self>, rx: &mut tokio::sync::watch::Receiver<u64>, at: At) {
        use tokio::io::AsyncReadExt;
        let At { file, mut generation, mut pending } = at;
        let mut file = file.map(tokio::fs::File::from_std);
        // `until` has come: one last read, then the end.
        let mut last = false;
        loop {
            let running = {
                rx.borrow_and_update();
                self.c.record().state.status == crate::supervisor::engine::store::Status::Running
            };
            loop {
                if file.is_none() {
                    // Not started when the request came: its first file.
                    file = tokio::fs::File::open(&self.path).await.ok();
                }
                let Some(f) = file.as_mut() else { break };
                let _ = f.read_to_end(&mut pending).await;
                if !self.send_whole(&mut pending).await {
                    return;
                }
                let now = self.c.log.lock().map_or(generation, |l| l.generation);
                if now == generation {
                    break;
                }
                // Rotated: nothing more is written to it; what came before the rotation is
                // read, then the files after it.
                let _ = f.read_to_end(&mut pending).await;
                if !self.send_whole(&mut pending).await {
                    return;
                }
                let me = self.clone();
                let Ok(Some(next)) =
                    tokio::task::spawn_blocking(move || me.catch_up(generation)).await
                else {
                    return;
                };
                file = next.file.map(tokio::fs::File::from_std);
                generation = next.generation;
                pending = next.pending;
            }
            if last || !running {
                return;
            }
            let next = rx.changed();
            match self.opts.until.map(nanos_from_now) {
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
    }
}

/// How long until a time (nanoseconds since the epoch); nothing once it has passed.
fn nanos_from_now(at: i64) -> std::time::Duration {
    let now = crate::supervisor::rules::format::now_nanos();
    std::time::Duration::from_nanos(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}
