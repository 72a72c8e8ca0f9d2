//! The daemon's model: containers and their lifecycle (create, start, stop, wait, remove) and
//! logs. The API ([`crate::supervisor::http`]) calls into it; it calls [`crate::supervisor::engine::publish`] (ports through the
//! forwarder, [`crate::proxy::Proxy`]), [`crate::supervisor::os::netlink`] and [`crate::supervisor::os::process`]; what the API
//! shows of a container is in [`crate::supervisor::engine::view`].

pub mod create;
pub mod dns_server;
pub mod error;
pub mod ipam;
pub mod links;
pub mod logs;
pub mod networks;
pub mod publish;
pub mod store;
pub mod view;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rtnetlink::Handle;
use tokio::sync::watch;

use crate::ports::PortAllocator;
use crate::proxy::{BindingId, Proxy};
pub use error::{Error, ErrorKind};

use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::engine::dns_server::{DnsServer, Lookup};
use crate::supervisor::engine::networks::{Endpoint, UserNet};
use crate::supervisor::engine::store::{NetworkMode, Record, Status, Store, Time};
use crate::supervisor::os::netlink::{self, Bridge};
use crate::supervisor::os::process::{Launch, Spawner};
use crate::supervisor::rules::hosts;
use crate::supervisor::rules::restart::{self, Backoff, Decision};

/// The PATH a container gets, as Docker images set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The embedded DNS server's view of the daemon: [`Daemon::resolve`], through a weak reference
/// (the daemon owns the server).
#[derive(Default)]
struct DaemonNames {
    daemon: std::sync::OnceLock<std::sync::Weak<Daemon>>,
}

impl Lookup for DaemonNames {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.daemon.get()?.upgrade()?.resolve(asker, name)
    }
}

/// What a running container holds, given back when it stops.
#[derive(Debug, Default)]
pub(super) struct Held {
    bindings: Vec<BindingId>,
    pub(super) ip: Option<Ipv4Addr>,
    pub(super) veth: Option<String>,
    /// Its interfaces on user-defined networks.
    pub(super) endpoints: Vec<Endpoint>,
}

/// One container.
#[derive(Debug)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    record: Mutex<Record>,
    /// Serialises start, stop and remove.
    pub(super) op: tokio::sync::Mutex<()>,
    pub(super) held: Mutex<Held>,
    /// Bumped on every log line and state change; `logs -f` and `wait` watch it.
    pub(super) events: watch::Sender<u64>,
    /// Serialises writes to the log file.
    pub(super) log: Mutex<Option<File>>,
    /// The delay before the next restart, carried from exit to exit.
    backoff: Mutex<Backoff>,
    /// Bumped when a restart is scheduled and when one is called off (`stop`, `rm`, an
    /// explicit `start`): a waiting restart goes ahead only if nothing bumped it meanwhile.
    restart_generation: AtomicU64,
}

impl Container {
    fn new(record: Record) -> Arc<Container> {
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            held: Mutex::new(Held::default()),
            events: watch::channel(0).0,
            log: Mutex::new(None),
            backoff: Mutex::new(Backoff::default()),
            restart_generation: AtomicU64::new(0),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.record.lock().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut Record)) -> Record {
        let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut r);
        let copy = r.clone();
        drop(r);
        self.events.send_modify(|n| *n += 1);
        copy
    }

    pub(super) fn is_running(&self) -> bool {
        self.record().state.status == Status::Running
    }

    /// Subscribes to changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.events.subscribe()
    }
}

/// The daemon: every container and what they share.
pub struct Daemon {
    pub(super) store: Store,
    pub(super) proxy: Proxy,
    pub(super) allocator: PortAllocator,
    pub(super) handle: Handle,
    pub(super) bridge: Bridge,
    /// The user-defined networks, oldest first.
    pub(super) networks: Mutex<Vec<Arc<UserNet>>>,
    /// Serialises network create and remove.
    pub(super) net_op: tokio::sync::Mutex<()>,
    /// The IDs of `bridge`, `host` and `none`.
    pub(super) predefined_ids: Vec<(String, String)>,
    /// The embedded DNS server of the containers on user-defined networks.
    pub(super) dns: DnsServer,
    /// What the DNS server asks names of: this daemon, once it is shared.
    names: Arc<DaemonNames>,
    spawner: Spawner,
    containers: Mutex<Vec<Arc<Container>>>,
    /// Set by [`Daemon::shutdown`]: exits from then on are not restarted.
    stopping: AtomicBool,
}

impl Daemon {
    /// Loads the records under `store` (every container stopped), cleans what a killed daemon
    /// left, and sets up the bridge.
    pub async fn new(
        store: Store,
        proxy: Proxy,
        allocator: PortAllocator,
        bip: Option<(Ipv4Addr, u8)>,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> io::Result<Daemon> {
        let handle = netlink::connect()?;
        for leftover in netlink::links_with_prefix(&handle, netlink::VETH_PREFIX).await? {
            tracing::info!(link = %leftover, "removing a veth a previous daemon left");
            netlink::delete_link(&handle, &leftover).await?;
        }
        let bridge = netlink::setup_bridge(&handle, bip).await?;
        // A killed daemon's isolation rules; those of the networks below are made again.
        netlink::remove_isolation(&handle, None).await?;
        let predefined_ids = store.predefined_ids()?;
        let mut networks = Vec::new();
        for n in store.load_networks() {
            match UserNet::up(&handle, n.clone()).await {
                Ok(u) => networks.push(Arc::new(u)),
                Err(e) => tracing::warn!(network = %n.name, error = %e, "cannot recreate network"),
            }
        }
        let mut containers = Vec::new();
        for mut record in store.load_all() {
            if record.state.status == Status::Restarting {
                // Its restart died with the daemon; [`Daemon::restore`] decides.
                record.state.status = Status::Exited;
                store.save(&record)?;
            }
            if record.state.status == Status::Running {
                record.state.status = Status::Exited;
                // It was SIGKILLed with its daemon (PR_SET_PDEATHSIG), as Docker reports it.
                record.state.exit_code = 137;
                record.state.pid = 0;
                record.state.finished_at = Time::now();
                record.ip = None;
                record.ports.clear();
                for a in &mut record.networks {
                    a.ip = None;
                }
                store.save(&record)?;
            }
            containers.push(Container::new(record));
        }
        containers.sort_by_key(|c| c.record().created);
        let names = Arc::new(DaemonNames::default());
        Ok(Daemon {
            store,
            proxy,
            allocator,
            handle,
            bridge,
            networks: Mutex::new(networks),
            net_op: tokio::sync::Mutex::new(()),
            predefined_ids,
            dns: DnsServer::new(upstreams, names.clone()),
            names,
            spawner: Spawner::new()?,
            containers: Mutex::new(containers),
            stopping: AtomicBool::new(false),
        })
    }

    /// Lets the embedded DNS server ask this daemon about names ([`Daemon::resolve`]); called
    /// once the daemon is shared.
    pub fn answer_names(self: &Arc<Self>) {
        let _ = self.names.daemon.set(Arc::downgrade(self));
    }

    /// Starts the containers whose restart policy says they come back when the daemon starts
    /// (Docker's restore): `always`, `unless-stopped` unless stopped through the API, and
    /// `on-failure` after a failure with retries left. Each start is an explicit one.
    pub async fn restore(self: &Arc<Self>) {
        for c in self.all() {
            let r = c.record();
            if r.state.status != Status::Exited
                || !restart::on_daemon_start(
                    r.restart_policy,
                    r.state.exit_code,
                    r.restart_count,
                    r.stopped_by_user,
                )
            {
                continue;
            }
            if let Err(e) = self.start(&c).await {
                tracing::warn!(id = %c.id, error = %e.message, "could not restart a container");
            }
        }
    }

    pub(super) fn all(&self) -> Vec<Arc<Container>> {
        self.containers.lock().map(|c| c.clone()).unwrap_or_default()
    }

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
    fn start_locked<'a>(
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
            let r = c.update(|r| {
                r.state.error = msg;
                r.networks.iter_mut().for_each(|a| a.ip = None);
            });
            let _ = self.store.save(&r);
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
        // On a user-defined network a link is a name for the DNS only (Docker's rule).
        let sources =
            if record.network_mode.is_bridge() { self.link_sources(record)? } else { Vec::new() };
        let user_ips: Vec<Ipv4Addr> = held.endpoints.iter().map(|e| e.ip).collect();
        if !user_ips.is_empty() {
            let ips: Vec<Ipv4Addr> = held.ip.into_iter().chain(user_ips.iter().copied()).collect();
            hosts::write_files_internal(&dir, &ips, &record.hostname).map_err(Error::internal)?;
        } else if !record.network_mode.is_container() && (record.network_mode != NetworkMode::Host)
        {
            hosts::write_files(&dir, held.ip, &record.hostname).map_err(Error::internal)?;
            Daemon::write_linked_hosts(&dir, record, held.ip, &sources).map_err(Error::internal)?;
        }
        let mut published = Vec::new();
        if let Some(ip) = held.ip.or_else(|| {
            held.endpoints.first().filter(|_| !record.network_mode.is_bridge()).map(|e| e.ip)
        }) {
            for (id, p) in self.publish(record, ip)? {
                held.bindings.push(id);
                published.push(p);
            }
        }
        let mut env = vec![
            ("PATH".to_string(), DEFAULT_PATH.to_string()),
            ("HOSTNAME".to_string(), hostname.clone()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let link_env = sources
            .iter()
            .flat_map(|(l, s)| crate::supervisor::rules::links::link_env(&record.name, l, s));
        for kv in link_env.chain(record.env.iter().cloned()) {
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut command = vec![record.path.clone()];
        command.extend(record.args.iter().cloned());
        let launch = Launch {
            command,
            env,
            hostname,
            files,
            host_network: (record.network_mode == NetworkMode::Host),
            disable_ipv6: (record.network_mode != NetworkMode::Host)
                && !record.network_mode.is_container(),
            binds: record.binds.iter().filter_map(|b| create::parse_bind(b).ok()).collect(),
            working_dir: Some(record.working_dir.clone()).filter(|w| !w.is_empty()),
            join_netns,
            init: record.init,
        };
        let mut started = self.spawner.spawn(launch).await.map_err(Error::internal)?;
        let shim = started.child.id();
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
        // Open the log before the command can write.
        {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}-json.log", c.id)))
                .map_err(Error::internal)?;
            if let Ok(mut log) = c.log.lock() {
                *log = Some(file);
            }
        }
        let stdout = started.child.stdout.take();
        let stderr = started.child.stderr.take();
        let mut control = started.control;
        let handshake = tokio::task::spawn_blocking(move || -> io::Result<i32> {
            control.write_all(b"g")?;
            let mut line = String::new();
            BufReader::new(&mut control).read_line(&mut line)?;
            line.trim().parse().map_err(|_| io::Error::other("the container's init did not start"))
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        let pid = match handshake {
            Ok(pid) => pid,
            Err(e) => {
                let _ = started.child.kill();
                let _ = started.child.wait();
                if let Ok(mut log) = c.log.lock() {
                    *log = None;
                }
                return Err(Error::internal(e));
            }
        };
        let now = Time::now();
        let ip = held.ip;
        let r = c.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.started_at = now;
            r.state.finished_at = Time::ZERO;
            r.ip = ip;
            r.ports = published;
        });
        let _ = self.store.save(&r);
        if let Ok(mut h) = c.held.lock() {
            *h = std::mem::take(held);
        }
        self.update_recipients(&r).await;
        // Pumps and the waiter: the container is stopped once the shim has exited and all
        // its output is in the log.
        let mut pumps = Vec::new();
        for (stream, pipe) in [
            (StreamKind::Stdout, stdout.map(|p| Box::new(p) as Box<dyn Read + Send>)),
            (StreamKind::Stderr, stderr.map(|p| Box::new(p) as Box<dyn Read + Send>)),
        ] {
            if let Some(pipe) = pipe {
                let c = c.clone();
                pumps.push(std::thread::spawn(move || logs::pump(&c, stream, pipe)));
            }
        }
        let mut child = started.child;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            for p in pumps {
                let _ = p.join();
            }
            let code = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(255)
                }
                Err(_) => 255,
            };
            let _ = done_tx.send(code);
        });
        let daemon = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let code = done_rx.await.unwrap_or(255);
            daemon.finish(&c, code).await;
        });
        Ok(())
    }

    /// Gives back what a container held: bindings (ports free at once), veth, address.
    async fn release(&self, held: Held) {
        for id in held.bindings {
            self.proxy.remove(id).await;
        }
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

    /// The container's command has exited with `code`: it stays exited, or (its restart
    /// policy says) waits out its back-off as `restarting` and is started again.
    async fn finish(self: &Arc<Self>, c: &Arc<Container>, code: i32) {
        self.dns.detach(&c.id);
        let held = c.held.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
        self.release(held).await;
        if let Ok(mut log) = c.log.lock() {
            *log = None;
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
        let r = c.update(|r| {
            r.state.status = if restart.is_some() { Status::Restarting } else { Status::Exited };
            r.state.exit_code = code;
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
            let _ = self.forget(c);
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
    fn stopped_by_user(&self, c: &Container) {
        c.restart_generation.fetch_add(1, Ordering::SeqCst);
        let r = c.update(|r| {
            r.stopped_by_user = true;
            if r.state.status == Status::Restarting {
                r.state.status = Status::Exited;
            }
        });
        let _ = self.store.save(&r);
    }

    /// Waits until the container is no longer running (after it has started, if it has not
    /// yet) and returns its exit code.
    pub async fn wait(&self, c: &Arc<Container>) -> i32 {
        let mut rx = c.watch();
        loop {
            let r = c.record();
            if r.state.status == Status::Exited {
                return r.state.exit_code;
            }
            if rx.changed().await.is_err() {
                return r.state.exit_code;
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
        kill(Pid::from_raw(r.state.pid), signal)
            .map_err(|e| Error::internal(format!("Cannot kill container {}: {e}", r.id)))?;
        if signal == Signal::SIGKILL {
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wait(c)).await;
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
        self.stop_locked(c, timeout.map(Duration::from_secs)).await;
        Ok(())
    }

    /// The stop signal, then SIGKILL after `timeout` (`None`: no SIGKILL, wait for ever).
    async fn stop_locked(&self, c: &Arc<Container>, timeout: Option<Duration>) {
        let r = c.record();
        if r.state.status != Status::Running || r.state.pid <= 0 {
            return;
        }
        let pid = Pid::from_raw(r.state.pid);
        let first = crate::supervisor::rules::signal::parse(&r.stop_signal)
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .unwrap_or(Signal::SIGTERM);
        let _ = kill(pid, first);
        let Some(timeout) = timeout else {
            self.wait(c).await;
            return;
        };
        if tokio::time::timeout(timeout, self.wait(c)).await.is_err() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wait(c)).await;
        }
    }

    /// Removes a container; a running one only with `force` (it is killed first).
    pub async fn remove(&self, c: &Arc<Container>, force: bool) -> Result<(), Error> {
        let _op = c.op.lock().await;
        if !force && c.record().state.status == Status::Restarting {
            return Err(Error::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id
            )));
        }
        if force {
            self.stopped_by_user(c);
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
        self.forget(c)
    }

    fn forget(&self, c: &Arc<Container>) -> Result<(), Error> {
        if let Ok(mut all) = self.containers.lock() {
            all.retain(|x| x.id != c.id);
        }
        self.store.remove(&c.id).map_err(Error::internal)
    }

    /// Stops every container (SIGTERM, SIGKILL after `timeout`), then removes the bridge:
    /// what the daemon does on SIGTERM.
    pub async fn shutdown(&self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let running: Vec<_> = self.all().into_iter().filter(|c| c.is_running()).collect();
        // Not a stop through the API: `unless-stopped` comes back with the next daemon.
        let stops = running.iter().map(|c| async move {
            let _op = c.op.lock().await;
            self.stop_locked(c, Some(timeout)).await;
        });
        futures_util::future::join_all(stops).await;
        self.proxy.shutdown().await; // The daemon's proxy has a grace of 1 s.
        if let Err(e) = netlink::delete_link(&self.handle, netlink::BRIDGE).await {
            tracing::warn!(error = %e, "could not remove the bridge");
        }
        self.dns.shutdown().await;
        self.remove_network_bridges().await;
    }

    /// The log file of a container.
    pub fn log_path(&self, c: &Container) -> PathBuf {
        self.store.dir(&c.id).join(format!("{}-json.log", c.id))
    }
}
