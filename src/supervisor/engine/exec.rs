//! `docker exec` through the API: an exec is created (its configuration kept), started once
//! (its process spawned into the container, its output given to the client that started it),
//! and inspected (`ExitCode` once it has ended, which Docker's client reads as its own exit
//! code as soon as the stream ends: the code is recorded before the stream's end is sent).
//!
//! A container's execs are forgotten when it stops or is removed, as moby forgets them; at
//! most [`MAX_EXECS`] are kept in all, the oldest ended ones given up first.

use std::io::Read;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::api::types::{ExecConfig, ExecInspect, ExecProcessConfig};
use crate::supervisor::engine::attach::{Output, RunIo};
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::os::{exec, tty};

/// The most execs kept at once.
pub const MAX_EXECS: usize = 4096;

/// One exec.
#[derive(Debug)]
pub struct Exec {
    /// 64 hex digits.
    pub id: String,
    /// The container it runs in.
    pub container: Arc<Container>,
    /// What it runs.
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Debug, Default)]
struct ExecState {
    started: bool,
    running: bool,
    pid: i32,
    exit_code: Option<i32>,
    /// Its stdin and terminal, once started.
    io: Option<Arc<RunIo>>,
}

/// A started exec's streams: its output (ending with [`Output::End`] once the exit code is
/// recorded) and its stdin.
pub struct ExecStreams {
    /// The output.
    pub output: mpsc::Receiver<Output>,
    /// Where the client's input goes (nowhere without `-i`).
    pub io: Arc<RunIo>,
}

impl Exec {
    fn state<T>(&self, f: impl FnOnce(&mut ExecState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Daemon {
    /// `POST /containers/{id}/exec` (`asked`: the container as the client named it).
    pub fn exec_create(
        &self,
        c: &Arc<Container>,
        asked: &str,
        config: ExecConfig,
    ) -> Result<String, Error> {
        check_exec(&config)?;
        if !c.is_running() {
            return Err(Error::conflict(format!("Container {} is not running", c.id)));
        }
        if c.record().state.paused {
            return Err(Error::conflict(format!(
                "Container {asked} is paused, unpause the container before exec"
            )));
        }
        check_detach_keys(&config)?;
        let id = crate::supervisor::rules::names::new_id().map_err(Error::internal)?;
        let mut execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        if execs.len() >= MAX_EXECS {
            let ended: Vec<usize> = (0..execs.len())
                .filter(|i| execs[*i].state(|s| s.exit_code.is_some() || !s.started))
                .take(execs.len() + 1 - MAX_EXECS)
                .collect();
            for i in ended.into_iter().rev() {
                execs.remove(i);
            }
            if execs.len() >= MAX_EXECS {
                return Err(Error::conflict("too many execs running; try again later"));
            }
        }
        let action = format!("exec_create: {}", exec_command(&config.cmd));
        self.events.container(&c.record(), &action, &[("execID", id.clone())]);
        execs.push(Arc::new(Exec {
            id: id.clone(),
            container: c.clone(),
            config,
            state: Mutex::default(),
        }));
        Ok(id)
    }

    /// An exec by ID (Docker's words when there is none).
    pub fn exec_find(&self, id: &str) -> Result<Arc<Exec>, Error> {
        let execs = self.execs.lock().unwrap_or_else(|p| p.into_inner());
        execs
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// Forgets the execs of container `id` (it stopped or is removed).
    pub(super) fn exec_forget(&self, id: &str) {
        if let Ok(mut execs) = self.execs.lock() {
            execs.retain(|e| e.container.id != id);
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, e: &Exec) -> ExecInspect {
        let (running, exit_code, pid) = e.state(|s| (s.running, s.exit_code, s.pid));
        let mut cmd = e.config.cmd.iter().cloned();
        ExecInspect {
            id: e.id.clone(),
            running,
            exit_code,
            process_config: ExecProcessConfig {
                tty: e.config.tty,
                entrypoint: cmd.next().unwrap_or_default(),
                arguments: cmd.collect(),
                privileged: e.config.privileged,
                user: e.config.user.clone(),
            },
            open_stdin: e.config.attach_stdin,
            open_stderr: e.config.attach_stderr,
            open_stdout: e.config.attach_stdout,
            can_remove: false,
            container_id: e.container.id.clone(),
            detach_keys: e.config.detach_keys.clone(),
            pid,
        }
    }

    /// The client of an exec's terminal typed the detach keys: the exec runs on (dockerd's
    /// `exec_detach` event).
    pub fn exec_detached(&self, e: &Exec) {
        let record = e.container.record();
        self.events.container(&record, "exec_detach", &[("execID", e.id.clone())]);
    }

    /// `POST /exec/{id}/start`: spawns the exec's process. Docker's words for an exec that
    /// has run or a container that stopped meanwhile.
    pub async fn exec_start(&self, e: &Arc<Exec>) -> Result<ExecStreams, Error> {
        if e.state(|s| std::mem::replace(&mut s.started, true)) {
            return Err(Error::conflict(format!("Exec command {} has already run", e.id)));
        }
        let v = self.inspect(&e.container);
        let cfg = &e.config;
        let mut prepared = exec::prepare(&v, cfg).map_err(|exec::Refused(why)| {
            e.state(|s| s.exit_code = Some(126));
            Error::conflict(why)
        })?;
        let cmd = &mut prepared.command;
        let mut terminal_sock = None;
        if cfg.tty {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(Error::internal)?;
            cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
            terminal_sock = Some(ours);
        } else if cfg.attach_stdin {
            cmd.stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        // With `-t` only `__nsexec`'s own errors come this way.
        let pipe = |on: bool| if on || cfg.tty { Stdio::piped() } else { Stdio::null() };
        cmd.stdout(pipe(cfg.attach_stdout)).stderr(pipe(cfg.attach_stderr));
        let spawned = cmd.spawn();
        drop(prepared);
        let mut child = spawned.map_err(|err| {
            e.state(|s| s.exit_code = Some(126));
            Error::internal(format!("cannot run in the container: {err}"))
        })?;
        e.state(|s| {
            s.running = true;
            s.pid = i32::try_from(child.id()).unwrap_or(0);
        });
        let record = e.container.record();
        let action = format!("exec_start: {}", exec_command(&cfg.cmd));
        self.events.container(&record, &action, &[("execID", e.id.clone())]);
        let events = self.events.clone();
        let master = match terminal_sock {
            Some(sock) => tokio::task::spawn_blocking(move || tty::recv_line(&sock))
                .await
                .map_err(Error::internal)?
                .ok()
                .and_then(|(_, mut fds)| fds.pop()),
            None => None,
        };
        let (tx, rx) = mpsc::channel(64);
        let mut sources: Vec<(StreamKind, Box<dyn Read + Send>)> = Vec::new();
        let stdin = match &master {
            Some(m) => {
                let copy = m.try_clone().map_err(Error::internal)?;
                sources.push((StreamKind::Stdout, Box::new(std::fs::File::from(copy))));
                match cfg.attach_stdin {
                    true => Some(m.try_clone().map_err(Error::internal)?),
                    false => None,
                }
            }
            None => child.stdin.take().map(std::os::fd::OwnedFd::from),
        };
        if let Some(out) = child.stdout.take() {
            sources.push((StreamKind::Stdout, Box::new(out)));
        }
        if let Some(err) = child.stderr.take() {
            sources.push((StreamKind::Stderr, Box::new(err)));
        }
        let readers: Vec<_> = sources
            .into_iter()
            .map(|(kind, src)| {
                let tx = tx.clone();
                std::thread::spawn(move || copy_out(kind, src, &tx))
            })
            .collect();
        let exec = e.clone();
        std::thread::spawn(move || {
            for r in readers {
                let _ = r.join();
            }
            let code = crate::supervisor::rules::exit_codes::of_status(child.wait());
            exec.state(|s| {
                s.running = false;
                s.exit_code = Some(code);
                s.io = None;
            });
            let extra = [("execID", exec.id.clone()), ("exitCode", code.to_string())];
            events.container(&record, "exec_die", &extra);
            let _ = tx.blocking_send(Output::End);
        });
        let io = Arc::new(RunIo::new(stdin, master));
        e.state(|s| s.io = Some(io.clone()));
        Ok(ExecStreams { output: rx, io })
    }

    /// `POST /exec/{id}/resize`: the exec's terminal (Docker's words when it is not running).
    pub fn exec_resize(&self, e: &Exec, rows: u16, cols: u16) -> Result<(), Error> {
        match e.state(|s| s.io.clone().filter(|_| s.running)) {
            Some(io) if e.config.tty => io.resize(rows, cols),
            Some(_) => Ok(()),
            None => Err(Error::conflict(format!("Exec {} is not running", e.id))),
        }
    }
}

/// Gives what `src` reads to `tx` until its end (or the client is gone).
fn copy_out(kind: StreamKind, mut src: Box<dyn Read + Send>, tx: &mpsc::Sender<Output>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tx.blocking_send(Output::Data(kind, Bytes::copy_from_slice(&buf[..n]))).is_err()
                {
                    // Nobody reads: drain, so the process is not stopped on a full pipe.
                    while matches!(src.read(&mut buf), Ok(n) if n > 0) {}
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The command as dockerd names it in an exec's events: the program, a space, the arguments
/// joined by spaces (`exec_create: true ` for a bare `true`).
fn exec_command(cmd: &[String]) -> String {
    format!(
        "{} {}",
        cmd.first().map_or("", String::as_str),
        cmd.get(1..).unwrap_or_default().join(" ")
    )
}

/// What dockerd checks of an exec's config before it looks for the container.
pub fn check_exec(config: &ExecConfig) -> Result<(), Error> {
    if config.cmd.is_empty() {
        return Err(Error::invalid("No exec command specified"));
    }
    Ok(())
}

/// What dockerd checks of an exec's config once it found the container: the detach keys
/// (its words, and a 500, as it does not mark the error as the client's).
fn check_detach_keys(config: &ExecConfig) -> Result<(), Error> {
    match crate::supervisor::rules::detach::parse(&config.detach_keys) {
        Ok(_) => Ok(()),
        Err(_) => {
            Err(Error::internal(format!("Invalid escape keys ({}) provided", config.detach_keys)))
        }
    }
}
