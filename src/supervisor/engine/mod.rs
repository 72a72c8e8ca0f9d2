//! The daemon's model: containers and their lifecycle (create, start, stop, wait, remove) and
//! logs. The API ([`crate::supervisor::http`]) calls into it; it calls [`crate::supervisor::engine::publish`] (ports through the
//! forwarder, [`crate::proxy::Proxy`]), [`crate::supervisor::os::netlink`] and [`crate::supervisor::os::process`]; what the API
//! shows of a container is in [`crate::supervisor::engine::view`].

pub mod archive;
pub mod attach;
pub mod changes;
pub mod commit;
pub mod create;
pub mod df;
pub mod dns_server;
pub mod error;
pub mod events;
pub mod exec;
pub mod ipam;
pub mod links;
pub mod logs;
pub mod manage;
pub mod networks;
pub mod publish;
pub mod resources;
pub mod start;
pub mod stop;
pub mod store;
pub mod view;
pub mod volumes;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtnetlink::Handle;
use tokio::sync::watch;

use crate::ports::PortAllocator;
use crate::proxy::{BindingId, Proxy};
pub use error::{Error, ErrorKind};

use crate::supervisor::engine::dns_server::{DnsServer, Lookup};
use crate::supervisor::engine::networks::{Endpoint, UserNet};
use crate::supervisor::engine::store::{Record, Status, Store, Time};
use crate::supervisor::image::store::{ImageStore, User, Users};
use crate::supervisor::os::cgroups::Cgroups;
use crate::supervisor::os::netlink::{self, Bridge};
use crate::supervisor::os::process::Spawner;
use crate::supervisor::rules::resources::HostLimits;
use crate::supervisor::rules::restart::{self, Backoff};

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
    /// Its cgroup, removed once its processes are gone.
    pub(super) cgroup: Option<PathBuf>,
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
    /// The log's file while it runs (writes are serialised by the lock), and how often it
    /// was rotated.
    pub(super) log: Mutex<logs::Log>,
    /// Its attached clients and the current run's stdin.
    attached: attach::Attached,
    /// Exits so far (each run's end, restarts included): `wait`'s `next-exit` counts them.
    exits: AtomicU64,
    /// Set once it is removed: `wait`'s `removed`.
    removed: AtomicBool,
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
            log: Mutex::default(),
            attached: attach::Attached::default(),
            exits: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            backoff: Mutex::new(Backoff::default()),
            restart_generation: AtomicU64::new(0),
        })
    }

    /// Its name, without copying the rest of its record.
    pub fn name(&self) -> String {
        self.record.lock().map(|r| r.name.clone()).unwrap_or_else(|p| p.into_inner().name.clone())
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
    /// The `Created` of `bridge` (this daemon's start: dockerd makes it at each start) and of
    /// `host` and `none` (when their IDs were first made), RFC 3339.
    pub(super) predefined_created: (String, String),
    /// `docker info`'s `ID`, kept under the data root.
    engine_id: String,
    /// The embedded DNS server of the containers on user-defined networks.
    pub(super) dns: DnsServer,
    /// What the DNS server asks names of: this daemon, once it is shared.
    names: Arc<DaemonNames>,
    spawner: Spawner,
    containers: Mutex<Vec<Arc<Container>>>,
    /// Set by [`Daemon::shutdown`]: exits from then on are not restarted.
    stopping: AtomicBool,
    /// The local images, under `--data-root`/image.
    pub images: Arc<ImageStore>,
    /// The local driver's volumes.
    pub volumes: volumes::Volumes,
    /// Where images are pulled from (`--insecure-registry`).
    pub registries: crate::supervisor::image::pull::Registries,
    /// The execs of running containers, oldest first.
    execs: Mutex<Vec<Arc<exec::Exec>>>,
    /// What happened, for `docker events`.
    pub events: Arc<events::Events>,
    /// The host's cgroups (`None`: none mounted, and containers run without limits).
    pub(super) cgroups: Option<Cgroups>,
    /// What the host offers for resource limits (moby's `sysinfo`).
    pub(super) host_limits: HostLimits,
    /// Where containers' cgroups go unless they name theirs (`--cgroup-parent`).
    cgroup_parent: String,
    /// The log driver and options of containers that name none (`--log-driver`, `--log-opt`).
    pub(super) log_config: crate::supervisor::api::types::LogConfig,
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
        registries: crate::supervisor::image::pull::Registries,
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
        let now = std::time::SystemTime::now();
        let predefined_created = (
            crate::supervisor::rules::format::rfc3339(now),
            crate::supervisor::rules::format::rfc3339(store.predefined_made().unwrap_or(now)),
        );
        let engine_id = store.engine_id()?;
        let mut networks = Vec::new();
        for n in store.load_networks() {
            match UserNet::up(&handle, n.clone()).await {
                Ok(u) => networks.push(Arc::new(u)),
                Err(e) => tracing::warn!(network = %n.name, error = %e, "cannot recreate network"),
            }
        }
        let cgroups = Cgroups::detect();
        if cgroups.is_none() {
            tracing::warn!("no cgroup mounted: containers run without resource limits");
        }
        let mut containers = Vec::new();
        for mut record in store.load_all() {
            // A killed daemon's containers died with it (PR_SET_PDEATHSIG); their cgroups
            // are what is left of them.
            if let Some(cg) = &cgroups
                && !record.cgroup.is_empty()
                && let Err(e) = cg.remove(std::path::Path::new(&record.cgroup))
            {
                tracing::warn!(id = %record.id, error = %e, "cannot remove a container's cgroup");
            }
            record.state.paused = false;
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
        let images = ImageStore::open(&store.root().join("image"), &image_users(&containers))?;
        let volumes = volumes::Volumes::open(store.root().join("volumes"))?;
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
            predefined_created,
            engine_id,
            dns: DnsServer::new(upstreams, names.clone()),
            names,
            spawner: Spawner::new()?,
            containers: Mutex::new(containers),
            stopping: AtomicBool::new(false),
            images: Arc::new(images),
            volumes,
            registries,
            execs: Mutex::default(),
            events: Arc::default(),
            host_limits: Cgroups::host_limits(cgroups.as_ref()),
            cgroups,
            cgroup_parent: "/docker".into(),
            log_config: crate::supervisor::api::types::LogConfig {
                kind: crate::supervisor::rules::logging::DEFAULT_DRIVER.into(),
                config: Default::default(),
            },
        })
    }

    /// Sets the log driver and options of containers that name none (dockerd's `--log-driver`
    /// and `--log-opt`, checked by [`crate::supervisor::rules::logging::check_daemon_default`]).
    pub fn with_log_config(mut self, config: crate::supervisor::api::types::LogConfig) -> Daemon {
        self.log_config = config;
        self
    }

    /// The log driver and options of containers that name none.
    pub fn default_log_config(&self) -> &crate::supervisor::api::types::LogConfig {
        &self.log_config
    }

    /// Sets where containers' cgroups go unless they name theirs (dockerd's
    /// `--cgroup-parent`; `/docker` by default).
    pub fn with_cgroup_parent(mut self, parent: &str) -> Daemon {
        self.cgroup_parent = parent.to_string();
        self
    }

    /// The cgroup a container's processes go in: `PARENT/ID`, PARENT its `--cgroup-parent`
    /// or the daemon's (a relative one is taken from the hierarchy's root).
    pub(super) fn cgroup_path(&self, r: &Record) -> PathBuf {
        let parent = Some(r.resources.cgroup_parent.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.cgroup_parent);
        let parent = parent.trim_start_matches('/');
        PathBuf::from("/").join(parent).join(&r.id)
    }

    /// The containers whose mounts name volume `name` (full IDs), oldest first.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.volumes_in_use().remove(name).unwrap_or_default()
    }

    /// Every volume some container names, with those containers (full IDs, oldest first):
    /// each record read once, for a listing or a prune over many volumes.
    pub fn volumes_in_use(&self) -> std::collections::HashMap<String, Vec<String>> {
        use crate::supervisor::rules::mounts::Kind;
        let mut users: std::collections::HashMap<String, Vec<String>> = Default::default();
        for c in self.all() {
            for m in c.record().mounts.iter().filter(|m| m.spec.kind == Kind::Volume) {
                let ids = users.entry(m.spec.source.clone()).or_default();
                if !ids.contains(&c.id) {
                    ids.push(c.id.clone());
                }
            }
        }
        users
    }

    /// What the containers hold of the image store, for removals of images and layers.
    pub fn image_users(&self) -> Users {
        image_users(&self.all())
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

    /// The daemon's ID, stable across restarts on one data root.
    pub fn daemon_id(&self) -> String {
        self.engine_id.clone()
    }

    /// The data root.
    pub fn data_root(&self) -> &std::path::Path {
        self.store.root()
    }

    /// Every container, oldest first.
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers.lock().map(|c| c.clone()).unwrap_or_default()
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

    /// The file a container's log driver writes, by its record (rotated ones beside it: `.1`,
    /// `.2.gz`, …).
    fn log_path_of(&self, r: &Record) -> PathBuf {
        logs::log_file(&self.store.dir(&r.id), r)
    }
}

/// Each container made from an image: the image, whether it runs, its root's layers.
fn image_users(containers: &[Arc<Container>]) -> Users {
    Users(
        containers
            .iter()
            .filter_map(|c| {
                let r = c.record();
                let image = r.image.as_ref()?;
                Some(User {
                    container: r.id.clone(),
                    image: image.id.clone(),
                    running: matches!(r.state.status, Status::Running | Status::Restarting),
                    layers: image.layers.clone(),
                })
            })
            .collect(),
    )
}
