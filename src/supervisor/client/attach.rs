//! The client's end of a hijacked connection, as Docker's CLI holds it for `run -i`/`-t` and
//! `exec -i`/`-t`: our stdin goes to the process (the connection half-closed at its end), its
//! output comes back as Docker's multiplexed frames put on our stdout and stderr, or as a
//! terminal's raw bytes; with `-t` and a terminal on our stdin, that terminal is raw
//! meanwhile, so keys reach the container's terminal as typed.

use std::io::{IsTerminal, Read, Write};

use hyper::Method;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::supervisor::api::stream::{Decoder, StreamKind};
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, fail};
use crate::supervisor::os::tty;
use crate::supervisor::rules::detach;

/// What a session carries and how.
#[derive(Clone, Debug)]
pub(super) struct Streams {
    /// `-i`: our stdin goes to the process.
    pub(super) stdin: bool,
    /// `-t`: the process is on a terminal; its output is raw bytes, not frames.
    pub(super) tty: bool,
    /// `--detach-keys` as given (empty: Docker's `ctrl-p,ctrl-q`); watched for in our stdin
    /// with `-it`, as Docker's CLI watches.
    pub(super) detach_keys: String,
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// The daemon ended the output (the process exited).
    Output,
    /// The detach keys were typed: the process runs on.
    Detached,
}

impl Streams {
    /// The keys that detach, with `-it` (Docker's default where `--detach-keys` does not read,
    /// as Docker's CLI falls back).
    fn detach_keys(&self) -> Option<Vec<u8>> {
        (self.tty && self.stdin)
            .then(|| detach::parse(&self.detach_keys).unwrap_or_else(|_| detach::DEFAULT.to_vec()))
    }

    /// Docker's refusal of `-it` when our stdin is no terminal (`the input device is not a
    /// TTY`, exit 1), before anything is asked of the daemon.
    pub(super) fn check(&self) -> Result<()> {
        if self.tty && self.stdin && !std::io::stdin().is_terminal() {
            return Err(Failure { bare: true, ..fail("the input device is not a TTY", 1) });
        }
        Ok(())
    }

    /// Our terminal made raw for the session, with `-it` (put back when the guard drops).
    pub(super) fn raw_terminal(&self) -> Option<RawTerminal> {
        (self.tty && self.stdin).then(RawTerminal::enter).flatten()
    }
}

/// Our terminal in raw mode, as it was put back when dropped.
pub(super) struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Makes stdin's terminal raw; `None` if it cannot be.
    fn enter() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// Follows our terminal's size, as Docker's CLI does with `-t` (`MonitorTtySize`): the
/// process's terminal is given it now and again each time ours changes (`SIGWINCH`), with
/// `POST {resize}?h=ROWS&w=COLS` (`/containers/ID/resize` or `/exec/ID/resize`). Nothing
/// when our stdout is no terminal. The task is aborted when the session ends.
pub(super) fn follow_terminal_size(client: &Client, resize: String) -> Option<JoinHandle<()>> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let client = Client { socket: client.socket.clone() };
    let mut changed =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    Some(tokio::spawn(async move {
        let mut last = None;
        loop {
            if let Ok(size) = tty::size(&std::io::stdout())
                && last != Some(size)
                && size.0 > 0
                && size.1 > 0
            {
                let uri = format!("{resize}?h={}&w={}", size.0, size.1);
                // The first may come before the process has its terminal (an exec is started
                // after its `101`): tried again 5 times, 10 ms apart, as Docker's CLI does
                // (`initTtySize`). A refusal after that is no error of the session's.
                let tries = if last.is_none() { 6 } else { 1 };
                for _ in 0..tries {
                    if client.call(Method::POST, &uri, NO_BODY).await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                last = Some(size);
            }
            let Some(changed) = changed.as_mut() else { return };
            if changed.recv().await.is_none() {
                return;
            }
        }
    }))
}

/// Carries the session over `conn` until the daemon ends the output or the detach keys are
/// typed (`-it`): stdin (when asked) sent as it is read and the connection's write side closed
/// at its end, as Docker's CLI `CloseWrite`s; the output put on stdout and stderr.
pub(super) async fn carry(conn: TokioIo<Upgraded>, streams: &Streams) -> Ended {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let mut watch = streams.detach_keys().map(detach::Watch::new);
    let input = streams.stdin.then(|| {
        let mut chunks = stdin_chunks();
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                let (send, detach) = match watch.as_mut().map(|w| w.feed(&chunk)) {
                    None => (chunk, false),
                    Some(detach::Input::Send(send)) => (send, false),
                    Some(detach::Input::Detach(send)) => (send, true),
                };
                if wr.write_all(&send).await.is_err() {
                    return;
                }
                if detach {
                    // The connection stays open until the session ends, so that the
                    // process's input is not closed.
                    let _ = detached_tx.send(());
                    return std::future::pending().await;
                }
            }
            let _ = wr.shutdown().await;
        })
    });
    let mut decoder = if streams.tty { Decoder::raw() } else { Decoder::default() };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut buf = vec![0u8; 32 * 1024];
    let mut ended = Ended::Output;
    // Settled once the input ended, by the keys or otherwise (a oneshot is read once).
    let mut settled = false;
    loop {
        let read = tokio::select! {
            read = rd.read(&mut buf) => read,
            keys = &mut detached, if !settled => {
                settled = true;
                if keys.is_err() {
                    continue;
                }
                ended = Ended::Detached;
                break;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        while let Some((kind, data)) = decoder.next_frame() {
            let _ = match kind {
                StreamKind::Stderr => err.write_all(&data),
                StreamKind::Stdin | StreamKind::Stdout => out.write_all(&data),
            };
        }
        let _ = out.flush();
    }
    // The output's end is the session's: stdin still open (a terminal) is not waited for.
    if let Some(input) = input {
        input.abort();
    }
    ended
}

/// Our stdin, read on a thread of its own (a read that blocks there never holds the runtime
/// nor the process's exit), as chunks; the channel closes at its end.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    rx
}
