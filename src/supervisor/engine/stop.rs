//! A container's end: its command's exit (kept exited, or restarted after a back-off as its
//! policy decides), `wait`, `kill`, `stop` and `rm`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::supervisor::engine::store::Status;
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::rules::restart::{self, Decision};

/// What `wait` waits for (Docker's `condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    /// Not running now (a created or exited container answers at once).
    NotRunning,
    /// The end of the next run (or the current one).
    NextExit,
    /// Its removal.
    Removed,
}

impl WaitCondition {
    /// Docker's query value (empty: `not-running`).
    pub fn parse(s: &str) -> Result<WaitCondition, Error> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

impl Daemon {
    /// The container's command has exited with `code`: it stays exited, or (its restart
    /// policy says) waits out its back-off as `restarting` and is started again.
    pub(super) async fn finish(self: &Arc<Self>, c: &Arc<Container>, code: i32) {
        self.dns.detach(&c.id);
        let held = c.held.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        // Read before the cgroup goes: did its memory limit kill a process?
        let oom_killed = match (&self.cgroups, &held.cgroup) {
            (Some(cg), Some(path)) => cg.oom_kills(path) > 0,
            _ => false,
        };
        self.release(held).await;
        if let Ok(mut log) = c.log.lock() {
            log.stop_writing();
        }
        let now = SystemTime::now();
        let before = c.record();
        let ran_for = before.state.started_at.elapsed_at(now);
        let exit = restart::Exit {
            code,
            ran_for,
            restart_count: before.restart_count,
            stopped_by_user: before.stopped_by_user,
            daemon_stopping: self.stopping.load(Ordering::SeqCst),
        };
        let decision = match c.backoff.lock() {
            Ok(mut b) if !before.auto_remove => {
                restart::on_exit(before.restart_policy, &mut b, exit)
            }
            _ => Decision::Stay,
        };
        let restart = match decision {
            Decision::RestartAfter(delay) => Some(delay),
            _ => None,
        };
        // Taken before the record says `restarting`, so a `stop` in between calls it off.
        let generation = restart.map(|_| c.restart_generation.fetch_add(1, Ordering::SeqCst) + 1);
        c.exits.fetch_add(1, Ordering::SeqCst);
        self.exec_forget(&c.id);
        self.events.container(&before, "die", &[("exitCode", code.to_string())]);
        for (id, name) in self.network_ids(&before) {
            self.events.network(&id, &name, &before.id, "disconnect");
        }
        self.events.volumes_of(&before, false);
        let r = c.update(|r| {
            r.state.status = if restart.is_some() { Status::Restarting } else { Status::Exited };
            r.state.exit_code = code;
            r.state.oom_killed = oom_killed;
            r.state.paused = false;
            r.state.pid = 0;
            r.state.finished_at = now.into();
            r.ip = None;
            r.ports.clear();
            r.networks.iter_mut().for_each(|a| a.ip = None);
            r.restart_count += u32::from(restart.is_some());
        });
        if let (Some(delay), Some(generation)) = (restart, generation) {
            let _ = self.store.save(&r);
            tracing::info!(id = %c.id, code, ?delay, "container exited; restarting");
            let daemon = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                daemon.restart_after_backoff(&c, generation).await;
            });
            return;
        }
        tracing::info!(id = %c.id, code, "container exited");
        if r.auto_remove {
            let _ = self.forget(c, true).await;
        } else {
            let _ = self.store.save(&r);
        }
    }

    /// Starts a `restarting` container once its back-off is over, unless the restart was
    /// called off meanwhile. A failed start leaves it `exited` with the error.
    async fn restart_after_backoff(self: &Arc<Self>, c: &Arc<Container>, generation: u64) {
        let _op = c.op.lock().await;
        if c.restart_generation.load(Ordering::SeqCst) != generation
            || self.stopping.load(Ordering::SeqCst)
            || c.record().state.status != Status::Restarting
        {
            return;
        }
        if let Err(e) = self.start_locked(c).await {
            tracing::warn!(id = %c.id, error = %e.message, "restart failed");
            let r = c.update(|r| r.state.status = Status::Exited);
            let _ = self.store.save(&r);
        }
    }

    /// Calls off a pending restart and marks the container stopped through the API (its
    /// `op` lock held); a `restarting` one is `exited` from here on.
    pub(super) fn stopped_by_user(&self, c: &Container) {
        c.restart_generation.fetch_add(1, Ordering::SeqCst);
        let r = c.update(|r| {
            r.stopped_by_user = true;
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
        });
        let _ = self.store.save(&r);
    }

    /// Waits until the container is `exited` (a restart in between does not count).
    async fn wait_exited(&self, c: &Arc<Container>) -> i32 {
        let mut rx = c.watch();
        loop {
            let r = c.record();
            if r.state.status == Status::Exited || rx.changed().await.is_err() {
                return r.state.exit_code;
            }
        }
    }

    /// `POST /containers/{id}/wait?condition=…`: a future of the exit code, registered now
    /// (so an exit between this call and the future's first poll is not missed, as the
    /// client asks before it starts the container).
    pub fn waiter(
        &self,
        c: &Arc<Container>,
        condition: WaitCondition,
    ) -> impl std::future::Future<Output = i32> + Send + 'static {
        let mut rx = c.watch();
        let exits = c.exits.load(Ordering::SeqCst);
        let c = c.clone();
        async move {
            loop {
                let r = c.record();
                let done = match condition {
                    WaitCondition::NotRunning => {
                        !matches!(r.state.status, Status::Running | Status::Restarting)
                    }
                    WaitCondition::NextExit => c.exits.load(Ordering::SeqCst) > exits,
                    WaitCondition::Removed => c.removed.load(Ordering::SeqCst),
                };
                if done || rx.changed().await.is_err() {
                    return r.state.exit_code;
                }
            }
        }
    }

    /// `docker kill -s SIG`: SIGKILL ends the container (and returns once it has); any other
    /// signal goes to its init, which passes it to the command only if the command handles it
    /// (as the kernel does for Docker's PID 1) or the container runs with `--init`. Either way
    /// the container counts as stopped by the user, so its restart policy leaves it be (moby
    /// 20.10's `killWithSignal` sets `HasBeenManuallyStopped`; 3e-restart-policies.txt's
    /// `always_kill` stays `Exited (137)`).
    pub async fn kill(&self, c: &Arc<Container>, sig: i32) -> Result<(), Error> {
        let _op = c.op.lock().await;
        let r = c.record();
        if r.state.status != Status::Running || r.state.pid <= 0 {
            return Err(Error::conflict(format!("Container {} is not running", r.id)));
        }
        let signal =
            Signal::try_from(sig).map_err(|_| Error::invalid(format!("Invalid signal: {sig}")))?;
        self.stopped_by_user(c);
        self.events.container(&r, "kill", &[("signal", sig.to_string())]);
        kill(Pid::from_raw(r.state.pid), signal)
            .map_err(|e| Error::internal(format!("Cannot kill container {}: {e}", r.id)))?;
        // A frozen container takes its signal once thawed (Docker's kill of a paused one).
        self.thaw(c).await?;
        if signal == Signal::SIGKILL {
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wait_exited(c)).await;
        }
        Ok(())
    }

    /// The stop signal (`--stop-signal`, else SIGTERM), then SIGKILL after `timeout` (the
    /// client's `-t`; else `--stop-timeout`, where a negative one waits for ever, as Docker's;
    /// else 10 s); returns once the container has stopped.
    pub async fn stop(&self, c: &Arc<Container>, timeout: Option<u64>) -> Result<(), Error> {
        let _op = c.op.lock().await;
        self.stopped_by_user(c);
        let timeout = match (timeout, c.record().stop_timeout) {
            (Some(t), _) => Some(t),
            (None, Some(t)) => u64::try_from(t).ok(),
            (None, None) => Some(10),
        };
        let was_running = c.is_running();
        self.stop_locked(c, timeout.map(Duration::from_secs)).await;
        if was_running {
            self.events.container(&c.record(), "stop", &[]);
        }
        Ok(())
    }

    /// The stop signal, then SIGKILL after `timeout` (`None`: no SIGKILL, wait for ever).
    pub(super) async fn stop_locked(&self, c: &Arc<Container>, timeout: Option<Duration>) {
        let r = c.record();
        if r.state.status != Status::Running || r.state.pid <= 0 {
            return;
        }
        let pid = Pid::from_raw(r.state.pid);
        let first = crate::supervisor::rules::signal::parse(&r.stop_signal)
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .unwrap_or(Signal::SIGTERM);
        self.events.container(&r, "kill", &[("signal", (first as i32).to_string())]);
        let _ = kill(pid, first);
        if let Err(e) = self.thaw(c).await {
            tracing::warn!(id = %c.id, error = %e.message, "could not thaw a paused container");
        }
        let Some(timeout) = timeout else {
            self.wait_exited(c).await;
            return;
        };
        if tokio::time::timeout(timeout, self.wait_exited(c)).await.is_err() {
            self.events.container(&r, "kill", &[("signal", "9".to_string())]);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wait_exited(c)).await;
        }
    }

    /// Removes a container; a running one only with `force` (it is killed first).
    /// `rm`; with `volumes` (`-v`, and `--rm`) its anonymous volumes go too, unless another
    /// container still names them.
    pub async fn remove(
        &self,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), Error> {
        let _op = c.op.lock().await;
        if !force && c.record().state.status == Status::Restarting {
            return Err(Error::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if force {
            self.stopped_by_user(c);
        } else if c.record().state.paused {
            return Err(Error::conflict(format!(
                "You cannot remove a paused container {}. Unpause and then stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if c.is_running() {
            if !force {
                return Err(Error::conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            self.stop_locked(c, Some(Duration::ZERO)).await;
        }
        self.forget(c, volumes).await
    }

    pub(super) async fn forget(&self, c: &Arc<Container>, volumes: bool) -> Result<(), Error> {
        if let Ok(mut all) = self.containers.lock() {
            all.retain(|x| x.id != c.id);
        }
        c.log_settled().await;
        let removed = self.store.remove(&c.id).map_err(Error::internal);
        self.events.container(&c.record(), "destroy", &[]);
        c.end_attached();
        self.exec_forget(&c.id);
        c.removed.store(true, Ordering::SeqCst);
        c.events.send_modify(|n| *n += 1);
        if volumes {
            let r = c.record();
            for m in r.mounts.iter().filter(|m| m.anonymous) {
                let users = self.volume_users(&m.spec.source);
                if !users.is_empty() {
                    continue;
                }
                match self.volumes.remove(&m.spec.source, true, &users) {
                    Ok(()) => self.events.volume(&m.spec.source, "destroy", &[]),
                    Err(e) => {
                        tracing::warn!(volume = %m.spec.source, error = %e, "cannot remove a volume")
                    }
                }
            }
        }
        // The layers of an image deleted while this container used it go with it.
        if let Some(image) = &c.record().image {
            self.images.release(&image.layers, &self.image_users());
        }
        removed
    }
}
