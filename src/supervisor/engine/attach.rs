//! A container's live stdio, for attached clients (`docker run` in the foreground, `docker
//! attach`, `docker start -a`, compose's `up`).
//!
//! Each attached client gets its own bounded queue of the container's output, filled by the
//! pumps that also write the log. As Docker's stream copier does, a full queue makes the pump
//! wait: an attached client sees every byte, and one that reads slowly slows the container's
//! output rather than losing it. The queue ends ([`Output::End`]) when the run it was
//! attached to ends (a client attached before `start` gets the next run), or when the
//! container is removed. Input goes to the run's stdin ([`RunIo`]): the pipe that is the
//! command's stdin (`-i`), or the terminal's master (`-t`).

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::engine::{Container, Error};
use crate::supervisor::os::tty;

/// How many pieces of output an attached client may have waiting before the container's
/// output waits for it.
const QUEUE: usize = 64;

/// A piece of a container's output, or the end of the run.
#[derive(Clone, Debug)]
pub enum Output {
    /// Bytes the command wrote, as read (a terminal's output is all `Stdout`).
    Data(StreamKind, Bytes),
    /// The run ended (or the container was removed): nothing more comes.
    End,
}

/// The current run's stdin and terminal.
#[derive(Debug, Default)]
pub struct RunIo {
    /// Where attached clients' input goes; `None` once closed (`StdinOnce`) or without `-i`.
    stdin: Mutex<Option<Arc<File>>>,
    /// The terminal's master (`-t`), for `resize`.
    tty: Option<OwnedFd>,
}

impl RunIo {
    /// A run's stdio: `stdin` (the pipe's write end, or the master's copy) and the master.
    pub fn new(stdin: Option<OwnedFd>, tty: Option<OwnedFd>) -> RunIo {
        RunIo { stdin: Mutex::new(stdin.map(|fd| Arc::new(File::from(fd)))), tty }
    }

    /// Writes `data` to the command's stdin, off the runtime's workers; false once it is
    /// closed (or the command stopped reading for good).
    pub async fn write(&self, data: Bytes) -> bool {
        let Some(w) = self.stdin.lock().ok().and_then(|s| s.clone()) else {
            return false;
        };
        tokio::task::spawn_blocking(move || (&*w).write_all(&data).is_ok()).await.unwrap_or(false)
    }

    /// Closes the command's stdin: it reads end-of-file (a terminal's stays: closing it would
    /// hang up the command).
    pub fn close_stdin(&self) {
        if self.tty.is_none()
            && let Ok(mut s) = self.stdin.lock()
        {
            s.take();
        }
    }

    /// Sets the terminal's size; an error without one.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        let master = self.tty.as_ref().ok_or_else(|| Error::invalid("the container has no tty"))?;
        tty::resize(master, rows, cols).map_err(Error::internal)
    }
}

/// What a container keeps for its attached clients.
#[derive(Debug)]
pub(super) struct Attached {
    /// One queue per attached client.
    queues: Mutex<Vec<mpsc::Sender<Output>>>,
    /// The current run's stdio (`None` between runs).
    io: tokio::sync::watch::Sender<Option<Arc<RunIo>>>,
}

impl Default for Attached {
    fn default() -> Attached {
        Attached { queues: Mutex::default(), io: tokio::sync::watch::channel(None).0 }
    }
}

impl Container {
    /// Attaches a client: the output of the current run, or of the next one if none runs.
    pub fn attach_output(&self) -> mpsc::Receiver<Output> {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Ok(mut q) = self.attached.queues.lock() {
            q.push(tx);
        }
        rx
    }

    /// The stdio of the current run, waiting for the next run if none is running.
    pub async fn run_io(&self) -> Arc<RunIo> {
        let mut rx = self.attached.io.subscribe();
        loop {
            if let Some(io) = rx.borrow_and_update().clone() {
                return io;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as the container: this is not reached.
                return Arc::default();
            }
        }
    }

    /// The stdio of the current run, if one is running.
    pub fn current_io(&self) -> Option<Arc<RunIo>> {
        self.attached.io.borrow().clone()
    }

    /// A run starts with this stdio.
    pub(super) fn set_run_io(&self, io: RunIo) {
        self.attached.io.send_replace(Some(Arc::new(io)));
    }

    /// Gives `data` to every attached client, waiting while a client's queue is full (from a
    /// pump's thread, never a runtime worker).
    pub(super) fn broadcast(&self, stream: StreamKind, data: &[u8]) {
        let Some(queues) = self.attached_queues() else { return };
        let data = Bytes::copy_from_slice(data);
        let mut gone = false;
        for tx in &queues {
            gone |= tx.blocking_send(Output::Data(stream, data.clone())).is_err();
        }
        self.forget_gone(gone);
    }

    /// [`Container::broadcast`] from a task of the runtime.
    pub(super) async fn send_to_attached(&self, stream: StreamKind, data: &[u8]) {
        let Some(queues) = self.attached_queues() else { return };
        let data = Bytes::copy_from_slice(data);
        let mut gone = false;
        for tx in &queues {
            gone |= tx.send(Output::Data(stream, data.clone())).await.is_err();
        }
        self.forget_gone(gone);
    }

    /// The queues of the clients attached now, if any.
    fn attached_queues(&self) -> Option<Vec<tokio::sync::mpsc::Sender<Output>>> {
        match self.attached.queues.lock() {
            Ok(q) if !q.is_empty() => Some(q.clone()),
            _ => None,
        }
    }

    /// Drops the queues of clients that are gone, if a send found one.
    fn forget_gone(&self, gone: bool) {
        if gone && let Ok(mut q) = self.attached.queues.lock() {
            q.retain(|tx| !tx.is_closed());
        }
    }

    /// The run ended (its output is all given) or the container is removed: every attached
    /// client is told, and the run's stdio is dropped.
    pub(super) fn end_attached(&self) {
        self.attached.io.send_replace(None);
        let queues = match self.attached.queues.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        for tx in queues {
            // A full queue: the client gets the end once it has read; a gone one, never.
            tokio::spawn(async move {
                let _ = tx.send(Output::End).await;
            });
        }
    }
}
