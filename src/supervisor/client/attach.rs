//! The client's end of a hijacked connection, as Docker's CLI holds it for `run -i`/`-t` and
//! `exec -i`/`-t`: our stdin goes to the process (the connection half-closed at its end), its
//! output comes back as Docker's multiplexed frames put on our stdout and stderr, or as a
//! terminal's raw bytes; with `-t` and a terminal on our stdin, that terminal is raw
//! meanwhile, so keys reach the container's terminal as typed.

use std::io::{IsTerminal, Read, Write};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::supervisor::api::stream::{Decoder, StreamKind};
use crate::supervisor::client::transport::{Failure, Result, fail};

/// What a session carries and how.
#[derive(Clone, Copy, Debug)]
pub(super) struct Streams {
    /// `-i`: our stdin goes to the process.
    pub(super) stdin: bool,
    /// `-t`: the process is on a terminal; its output is raw bytes, not frames.
    pub(super) tty: bool,
}

impl Streams {
    /// Docker's refusal of `-it` when our stdin is no terminal (`the input device is not a
    /// TTY`, exit 1), before anything is asked of the daemon.
    pub(super) fn check(self) -> Result<()> {
        if self.tty && self.stdin && !std::io::stdin().is_terminal() {
            return Err(Failure { bare: true, ..fail("the input device is not a TTY", 1) });
        }
        Ok(())
    }

    /// Our terminal made raw for the session, with `-it` (put back when the guard drops).
    pub(super) fn raw_terminal(self) -> Option<RawTerminal> {
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

/// Carries the session over `conn` until the daemon ends the output: stdin (when asked) sent
/// as it is read and the connection's write side closed at its end, as Docker's CLI
/// `CloseWrite`s; the output put on stdout and stderr.
pub(super) async fn carry(conn: TokioIo<Upgraded>, streams: Streams) {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let input = streams.stdin.then(|| {
        let mut chunks = stdin_chunks();
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        })
    });
    let mut decoder = if streams.tty { Decoder::raw() } else { Decoder::default() };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
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
