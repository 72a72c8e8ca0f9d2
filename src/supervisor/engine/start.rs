//! Starting a container: explicitly (`start`, `run`, the daemon's restore) or after its
//! restart back-off. Address, hosts files, ports, namespaces, network, then the command; a
//! failure undoes every step before it. What a running container holds is given back by
//! `Daemon::release`.

use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::engine::attach::RunIo;
use crate::supervisor::engine::store::{NetworkMode, Record, Status, Time};
use crate::supervisor::engine::{Container, Daemon, Error, Held, logs};
use crate::supervisor::os::process::{Confined, Launch, Layers};
use crate::supervisor::os::{hosts_files, netlink, rootfs};
use crate::supervisor::rules::confine::{self, Seccomp};
use crate::supervisor::rules::env::container_env;
use crate::supervisor::rules::mounts::Kind;
use crate::supervisor::rules::restart::Backoff;

impl Daemon {
    /// Starts a container explicitly (`start`, `run`, the daemon's restore): any pending
    /// restart is called off, and RestartCount and the back-off start over.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), Error> {
        let _op = c.op.lock().await;
        if c.is_running() {
            return Ok(());
        }
        c.restart_generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut b) = c.backoff.lock() {
            *b = Backoff::default();
        }
        c.update(|r| {
            r.restart_count = 0;
            r.stopped_by_user = false;
        });
        self.start_locked(c).await
    }

    /// Starts a container (its `op` lock held): address, hosts files, ports, namespaces,
    /// network, then the command. A failure undoes every step before it.
    ///
    /// Boxed: a restart starts a container from the task that saw it exit, a cycle the
    /// compiler cannot see through to know the future is `Send`.
    pub(super) fn start_locked<'a>(
        self: &'a Arc<Self>,
        c: &'a Arc<Container>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(self.start_unboxed(c))
    }

    async fn start_unboxed(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), Error> {
        let record = c.record();
        if record.state.status == Status::Running {
            return Ok(());
        }
        let dir = self.store.dir(&c.id);
        let mode = record.network_mode.clone();
        let mut held = Held::default();
        let mut join_netns = None;
        let mut files = Some(dir.clone());
        // In another container's network namespace, its hosts files and hostname are used.
        let mut hostname = record.hostname.clone();
        match &mode {
            NetworkMode::Bridge => {
                let ip = self
                    .bridge
                    .ipam
                    .lease()
                    .ok_or_else(|| Error::internal("no address left on the bridge's subnet"))?;
                held.ip = Some(ip);
            }
            NetworkMode::Host => files = None,
            NetworkMode::None | NetworkMode::User(_) => {}
            NetworkMode::Container(target_id) => {
                let target = self.find(target_id)?;
                let t = target.record();
                if t.state.status != Status::Running {
                    return Err(Error::conflict(format!(
                        "cannot join network of a non running container: {}",
                        t.id
                    )));
                }
                join_netns = Some(
                    File::open(format!("/proc/{}/ns/net", t.state.pid)).map_err(Error::internal)?,
                );
                files = Some(self.store.dir(&t.id));
                hostname = t.hostname;
            }
        }
        let leased = self.lease_endpoints(&record, &mut held);
        let result = match leased {
            Ok(()) => self.start_with(c, &record, &mut held, (join_netns, files, hostname)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.release(held).await;
            let msg = e.message.clone();
            self.dns.detach(&c.id);
            // moby's exit code for a start that failed.
            let code =
                crate::supervisor::rules::exit_codes::start_failure(&msg).map_or(128, i32::from);
            let r = c.update(|r| {
                r.state.error = msg;
                r.state.exit_code = code;
                r.networks.iter_mut().for_each(|a| a.ip = None);
            });
            // As dockerd does, `--rm` removes a container that could not start: `docker run
            // --rm` waits for that (`condition=removed`).
            if r.auto_remove {
                let _ = self.forget(c, true).await;
            } else {
                let _ = self.store.save(&r);
            }
        }
        result
    }

    async fn start_with(
        self: &Arc<Self>,
        c: &Arc<Container>,
        record: &Record,
        held: &mut Held,
        (join_netns, files, hostname): (Option<File>, Option<PathBuf>, String),
    ) -> Result<(), Error> {
        let dir = self.store.dir(&c.id);
        // The log driver first, as its options are read (dockerd's start fails on them).
        let log = super::logs::LogWriter::open(&dir, record)
            .map_err(|e| Error::internal(format!("failed to initialize logging driver: {e}")))?;
        // On a user-defined network a link is a name for the DNS only (Docker's rule).
        let sources =
            if record.network_mode.is_bridge() { self.link_sources(record)? } else { Vec::new() };
        let user_ips: Vec<Ipv4Addr> = held.endpoints.iter().map(|e| e.ip).collect();
        if !user_ips.is_empty() {
            let ips: Vec<Ipv4Addr> = held.ip.into_iter().chain(user_ips.iter().copied()).collect();
            hosts_files::write_files_internal(&dir, &ips, &record.hostname)
                .map_err(Error::internal)?;
        } else if !record.network_mode.is_container() && (record.network_mode != NetworkMode::Host)
        {
            hosts_files::write_files(&dir, held.ip, &record.hostname).map_err(Error::internal)?;
            Daemon::write_linked_hosts(&dir, record, held.ip, &sources).map_err(Error::internal)?;
        }
        let mut published = Vec::new();
        if let Some(ip) = held.ip.or_else(|| {
            held.endpoints.first().filter(|_| !record.network_mode.is_bridge()).map(|e| e.ip)
        }) {
            for (id, p) in self.publish(record, ip).await? {
                held.bindings.push(id);
                published.push(p);
            }
        }
        let link_env = sources
            .iter()
            .flat_map(|(l, s)| crate::supervisor::rules::links::link_env(&record.name, l, s));
        let env = container_env(&hostname, link_env.chain(record.env.iter().cloned()));
        // `-i` without `-t`: a pipe, whose write end attached clients write to.
        let (stdin_r, stdin_w) = match record.stdio.open_stdin && !record.stdio.tty {
            true => {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| Error::internal(format!("stdin pipe: {e}")))?;
                (Some(r), Some(w))
            }
            false => (None, None),
        };
        let mut command = vec![record.path.clone()];
        command.extend(record.args.iter().cloned());
        // Its own cgroup under /sys/fs/cgroup, as runc mounts it (made before the init mounts
        // it: the init waits for the daemon's go, which comes once the cgroup is made).
        let cgroup_view = match (&self.cgroups, record.confined()) {
            (Some(cg), true) => cg.layout.container_view(&self.cgroup_path(record)),
            _ => Vec::new(),
        };
        let launch = Launch {
            cgroup_view,
            command,
            env,
            hostname,
            files,
            host_network: (record.network_mode == NetworkMode::Host),
            disable_ipv6: (record.network_mode != NetworkMode::Host)
                && !record.network_mode.is_container(),
            mounts: self.launch_mounts(record)?,
            shm_size: u64::try_from(record.mount_request.shm_size).unwrap_or(0),
            ulimits: record
                .mount_request
                .ulimits
                .iter()
                .map(|u| format!("{}={}:{}", u.name, u.soft, u.hard))
                .collect(),
            working_dir: Some(record.working_dir.clone()).filter(|w| !w.is_empty()),
            join_netns,
            init: record.init,
            confined: self.confined(record, &dir)?,
            stdin: stdin_r,
            tty: record.stdio.tty,
        };
        let mut started = self.spawner.spawn(launch).await.map_err(Error::internal)?;
        let shim = started.child.id();
        // The shim (the container's PID 1) goes in the container's cgroup before it runs the
        // command: every process the command makes is born there.
        if let Some(cg) = &self.cgroups {
            let path = self.cgroup_path(record);
            let r = c.update(|r| r.cgroup = path.display().to_string());
            let _ = self.store.save(&r);
            // Docker's device list for a container with a root of its own; `--privileged` and
            // a host command (the host's /dev) keep the parent's (all).
            let devices = match record.confined() && !record.security.privileged {
                true => crate::supervisor::os::cgroups::Devices::Docker,
                false => crate::supervisor::os::cgroups::Devices::Unchanged,
            };
            let made = cg.create(&path, shim as i32, &record.resources, devices);
            if let Err(e) = made {
                let _ = started.child.kill();
                let _ = started.child.wait();
                return Err(Error::internal(e));
            }
            held.cgroup = Some(path);
        }
        let mut net_result = match (&record.network_mode, held.ip) {
            (NetworkMode::Bridge, Some(ip)) => {
                held.veth = Some(netlink::veth_name(&c.id));
                netlink::attach(&self.handle, &self.bridge, &c.id, shim, ip, 0).await
            }
            (NetworkMode::Bridge, None) | (NetworkMode::Host | NetworkMode::Container(_), _) => {
                Ok(())
            }
            (NetworkMode::None | NetworkMode::User(_), _) => netlink::loopback_only(shim).await,
        };
        for e in &mut held.endpoints {
            if net_result.is_err() {
                break;
            }
            net_result =
                netlink::attach(&self.handle, &e.network.bridge, &c.id, shim, e.ip, e.slot).await;
        }
        if net_result.is_ok() && !held.endpoints.is_empty() {
            net_result = self.dns.attach(&c.id, shim).await;
        }
        if let Err(e) = net_result {
            let _ = started.child.kill();
            let _ = started.child.wait();
            self.dns.detach(&c.id);
            return Err(Error::internal(format!("cannot set up the container's network: {e}")));
        }
        // The addresses on user-defined networks are answered by the DNS (`resolve`) from
        // before the command runs: it may ask at once.
        c.update(|r| {
            for a in &mut r.networks {
                a.ip =
                    held.endpoints.iter().find(|e| e.network.net.name == a.network).map(|e| e.ip);
            }
        });
        // The log is there before the command can write.
        if let Ok(mut kept) = c.log.lock() {
            kept.start_writing(log);
        }
        let stdout = started.child.stdout.take();
        let stderr = started.child.stderr.take();
        let mut control = started.control;
        let tty = record.stdio.tty;
        let handshake =
            tokio::task::spawn_blocking(move || -> io::Result<(i32, Option<OwnedFd>)> {
                control.write_all(b"g")?;
                // `t` and the terminal's master first with `-t`; then the init's PID.
                let (line, mut fds) = crate::supervisor::os::tty::recv_line(&control)?;
                let (line, master) = match line.strip_prefix('t') {
                    Some(rest) if tty => (rest.to_string(), fds.pop()),
                    _ => (line, None),
                };
                if let Some(why) = line.trim().strip_prefix("error ") {
                    return Err(io::Error::other(why.to_string()));
                }
                let pid = line
                    .trim()
                    .parse()
                    .map_err(|_| io::Error::other("the container's init did not start"))?;
                if tty && master.is_none() {
                    return Err(io::Error::other("the container's init sent no terminal"));
                }
                Ok((pid, master))
            })
            .await
            .map_err(io::Error::other)
            .and_then(|r| r);
        let (pid, master) = match handshake {
            Ok(pid) => pid,
            Err(e) => {
                let _ = started.child.kill();
                let _ = started.child.wait();
                if let Ok(mut log) = c.log.lock() {
                    log.stop_writing();
                }
                // A command that cannot run is the request's fault (moby's 400), not the
                // daemon's.
                let why = e.to_string();
                return Err(match crate::supervisor::rules::exit_codes::start_failure(&why) {
                    Some(_) => Error::invalid(why),
                    None => Error::internal(why),
                });
            }
        };
        let now = Time::now();
        let ip = held.ip;
        let r = c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.oom_killed = false;
            r.state.paused = false;
            r.state.error.clear();
            r.state.started_at = now;
            r.state.finished_at = Time::ZERO;
            r.ip = ip;
            r.ports = published;
        });
        let _ = self.store.save(&r);
        for (id, name) in self.network_ids(&r) {
            self.events.network(&id, &name, &r.id, "connect");
        }
        self.events.volumes_of(&r, true);
        self.events.container(&r, "start", &[]);
        if let Ok(mut h) = c.held.lock() {
            *h = std::mem::take(held);
        }
        self.update_recipients(&r).await;
        // Pumps and the waiter: the container is stopped once the shim has exited and all
        // its output is in the log.
        // With `-t` the command's output is the terminal's; the pipes carry only what the
        // init itself says.
        let terminal = match &master {
            Some(m) => Some(m.try_clone().map_err(Error::internal)?),
            None => None,
        };
        let stdin = match (record.stdio.open_stdin, &master) {
            (true, Some(m)) => Some(m.try_clone().map_err(Error::internal)?),
            _ => stdin_w,
        };
        c.set_run_io(RunIo::new(stdin, master));
        // The pipes are read by tasks of the runtime; a terminal's master, which the writer of
        // the container's input shares and needs blocking, by a thread.
        let mut pumps = Vec::new();
        if let Some(t) = terminal {
            let (c, (done, pumped)) = (c.clone(), tokio::sync::oneshot::channel::<()>());
            std::thread::spawn(move || {
                logs::pump(&c, StreamKind::Stdout, Box::new(File::from(t)));
                let _ = done.send(());
            });
            pumps.push(tokio::spawn(async move {
                let _ = pumped.await;
            }));
        }
        for (stream, pipe) in [
            (StreamKind::Stdout, stdout.map(OwnedFd::from)),
            (StreamKind::Stderr, stderr.map(OwnedFd::from)),
        ] {
            if let Some(pipe) = pipe {
                pumps.push(tokio::spawn(logs::pump_pipe(c.clone(), stream, pipe)));
            }
        }
        let child = started.child;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let status = exited(child).await;
            for p in pumps {
                let _ = p.await;
            }
            let code = crate::supervisor::rules::exit_codes::of_status(status);
            let _ = done_tx.send(code);
        });
        let daemon = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let code = done_rx.await.unwrap_or(255);
            c.end_attached();
            daemon.finish(&c, code).await;
        });
        Ok(())
    }

    /// What the container's init mounts: each bind's host path (made if missing, as Docker
    /// makes a `-v` source), each volume's directory, each tmpfs. Records of before volumes
    /// have their `binds` read.
    pub(super) fn launch_mounts(&self, r: &Record) -> Result<Vec<rootfs::Mount>, Error> {
        r.all_mounts()
            .iter()
            .map(|m| {
                let spec = &m.spec;
                let source = match spec.kind {
                    Kind::Bind => {
                        let p = PathBuf::from(&spec.source);
                        if !p.exists() {
                            std::fs::create_dir_all(&p).map_err(|e| {
                                Error::internal(format!(
                                    "error while creating mount source path '{}': {e}",
                                    p.display()
                                ))
                            })?;
                        }
                        p
                    }
                    Kind::Volume => self.volumes.source(&spec.source),
                    Kind::Tmpfs => PathBuf::new(),
                };
                Ok(rootfs::Mount {
                    kind: if spec.kind == Kind::Tmpfs { Kind::Tmpfs } else { Kind::Bind },
                    source,
                    destination: PathBuf::from(&spec.destination),
                    read_only: spec.read_only,
                    copy_up: spec.kind == Kind::Volume && !spec.nocopy,
                    tmpfs: spec.tmpfs_options.clone(),
                })
            })
            .collect()
    }

    /// A confined container's root and confinement, its directories made; `None` for a
    /// record of before images.
    fn confined(&self, r: &Record, dir: &std::path::Path) -> Result<Option<Confined>, Error> {
        if !r.confined() {
            return Ok(None);
        }
        let s = &r.security;
        let opts = confine::security_opts(&s.security_opt, s.privileged).map_err(Error::invalid)?;
        // Docker 20.10 knows the capabilities up to CAP_AUDIT_READ (37): its `ALL`.
        let last = crate::supervisor::os::confine::last_cap().min(37);
        let seccomp = match opts.seccomp {
            Seccomp::Unconfined => None,
            Seccomp::Default => Some("default".to_string()),
            Seccomp::Profile(json) => {
                let path = dir.join("seccomp.json");
                std::fs::write(&path, json).map_err(Error::internal)?;
                Some(path.display().to_string())
            }
        };
        let (root, layers) = match &r.image {
            Some(image) => {
                self.images.unpack(&image.layers)?;
                let fs = dir.join("fs");
                let (upper, work, merged) = (fs.join("diff"), fs.join("work"), fs.join("merged"));
                for d in [&upper, &work, &merged] {
                    std::fs::create_dir_all(d).map_err(Error::internal)?;
                }
                let lower = image.layers.iter().rev().map(|l| self.images.layer_dir(l)).collect();
                (merged, Some(Layers { lower, upper, work }))
            }
            None => (PathBuf::from(&r.rootfs), None),
        };
        Ok(Some(Confined {
            root,
            layers,
            caps: confine::effective(&s.cap_add, &s.cap_drop, s.privileged, last),
            no_new_privs: opts.no_new_privileges,
            privileged: s.privileged,
            read_only: s.read_only,
            seccomp,
            user: r.user.clone(),
            set_home: !r.env.iter().any(|kv| kv.split('=').next() == Some("HOME")),
        }))
    }

    /// Gives back what a container held: bindings (ports free at once), veth, address,
    /// cgroup.
    pub(super) async fn release(&self, held: Held) {
        if let (Some(cg), Some(path)) = (self.cgroups.clone(), held.cgroup) {
            // Its removal waits for the last process to go (runc's retries): off the workers.
            let removed = tokio::task::spawn_blocking(move || cg.remove(&path)).await;
            if let Ok(Err(e)) = removed {
                tracing::warn!(error = %e, "could not remove a container's cgroup");
            }
        }
        self.proxy.remove_all(held.bindings).await;
        if let Some(veth) = held.veth
            && let Err(e) = netlink::delete_link(&self.handle, &veth).await
        {
            tracing::warn!(%veth, error = %e, "could not remove veth");
        }
        if let Some(ip) = held.ip {
            self.bridge.ipam.release(ip);
        }
        for e in held.endpoints {
            self.release_endpoint(e).await;
        }
    }
}

/// Waits for the shim to exit, without a thread: its pidfd, watched by the runtime, reads as
/// readable once it has exited, and the wait then reaps it at once. Where the kernel has no
/// pidfd (before 5.3), a blocking wait on the runtime's pool.
async fn exited(mut child: std::process::Child) -> io::Result<std::process::ExitStatus> {
    use tokio::io::{Interest, unix::AsyncFd};
    let pidfd = crate::sys::pidfd_open(child.id() as i32);
    // SAFETY: the `AsyncFd` owns the pidfd, whose descriptor stays open (and is the one
    // `as_raw_fd` returns) for as long as it is registered.
    let watched =
        pidfd.map(|fd| unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) });
    if let Ok(Ok(pidfd)) = watched {
        let ended = pidfd.readable().await;
        if ended.is_ok() {
            return child.wait();
        }
    }
    tokio::task::spawn_blocking(move || child.wait()).await.map_err(io::Error::other)?
}
