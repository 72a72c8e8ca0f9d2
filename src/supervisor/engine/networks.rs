//! User-defined networks in the daemon: each is a bridge of its own (`br-` and 12 digits of
//! its ID) with its own subnet and address pool, kept as a record under the data root
//! (`networks/<id>.json`) and set up again when the daemon starts; `network rm` and the
//! daemon's shutdown remove the bridge. The rules (names, subnets, Docker's words) are in
//! [`crate::supervisor::rules::networks`]; this is what the API's `/networks` endpoints call.
//!
//! A container on such a network has an interface there (`eth0` for `run --network NAME`,
//! `eth1`, `eth2`… for `network connect`), and [`Daemon::resolve`] answers the names of the
//! containers it shares a network with, from live state.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::SystemTime;

use rtnetlink::Handle;

use crate::supervisor::api::types::{
    EndpointResource, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest, NetworkResource,
};

use crate::supervisor::engine::store::{Attachment, Record};
use crate::supervisor::engine::store::{NetworkMode, Status};
use crate::supervisor::engine::{Container, Daemon, Error, ErrorKind};
use crate::supervisor::os::netlink::{self, Bridge};
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format::rfc3339;
use crate::supervisor::rules::links::{Link, LinkError};
use crate::supervisor::rules::networks::{self, Network, NetworkError, NetworkOptions};

/// A user-defined network that is up: its record and its bridge.
#[derive(Debug)]
pub struct UserNet {
    /// The record.
    pub net: Network,
    /// Its bridge and address pool.
    pub bridge: Bridge,
}

impl UserNet {
    /// Creates the network's bridge (replacing one a killed daemon left) with its gateway,
    /// isolated from the other networks: forwarding off for what arrives on it, and a rule
    /// that drops what arrives on the default bridge for its subnet.
    pub async fn up(handle: &Handle, net: Network) -> std::io::Result<UserNet> {
        let name = net.bridge_name();
        let bridge = netlink::create_bridge(handle, &name, net.gateway, net.subnet.prefix).await?;
        let isolated = match netlink::no_forwarding_from(&name) {
            Ok(()) => netlink::isolate_from_default_bridge(handle, net.subnet).await,
            Err(e) => Err(e),
        };
        let up = UserNet { net, bridge };
        if let Err(e) = isolated {
            let _ = up.down(handle).await;
            return Err(e);
        }
        Ok(up)
    }

    /// Removes the network's bridge and its isolation rule.
    pub async fn down(&self, handle: &Handle) -> std::io::Result<()> {
        let rule = netlink::remove_isolation(handle, Some(self.net.subnet)).await;
        netlink::delete_link(handle, &self.net.bridge_name()).await?;
        rule
    }
}

/// A running container's interface on a user-defined network.
#[derive(Debug)]
pub struct Endpoint {
    /// The network.
    pub network: Arc<UserNet>,
    /// The container's address there.
    pub ip: Ipv4Addr,
    /// `eth<slot>` inside the container.
    pub slot: usize,
    /// The host end of its veth pair.
    pub veth: String,
}

fn network_error(e: NetworkError) -> Error {
    let kind = match e {
        NetworkError::Exists(_) => ErrorKind::Conflict,
        NetworkError::NotFound(_) | NetworkError::NoSuchNetwork(_) | NetworkError::Driver(_) => {
            ErrorKind::NotFound
        }
        NetworkError::Predefined(_) | NetworkError::ActiveEndpoints { .. } => ErrorKind::Forbidden,
        _ => ErrorKind::InvalidArgument,
    };
    Error::new(kind, e.to_string())
}

fn mac_text(ip: Ipv4Addr) -> String {
    netlink::mac_for(ip).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A container's endpoint ID on a network (Docker's are random; this one is stable).
fn endpoint_id(container: &str, network: &str) -> String {
    let a = container.get(..32).unwrap_or(container);
    let b = network.get(32..).unwrap_or(network);
    format!("{a}{b}")
}

impl Daemon {
    /// The user-defined network a name, ID or unambiguous ID prefix names.
    pub fn user_network(&self, key: &str) -> Option<Arc<UserNet>> {
        let nets = self.networks.lock().ok()?;
        let plain: Vec<Network> = nets.iter().map(|n| n.net.clone()).collect();
        let id = networks::find(&plain, key)?.id.clone();
        nets.iter().find(|n| n.net.id == id).cloned()
    }

    /// [`user_network`](Self::user_network), or Docker's `network KEY not found` (404).
    fn user_network_or_not_found(&self, key: &str) -> Result<Arc<UserNet>, Error> {
        self.user_network(key).ok_or_else(|| network_error(NetworkError::NotFound(key.to_string())))
    }

    pub(super) fn user_networks(&self) -> Vec<Arc<UserNet>> {
        self.networks.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// `network create`: plans the network, brings its bridge up, keeps its record.
    pub async fn network_create(&self, req: NetworkCreateRequest) -> Result<String, Error> {
        let _op = self.net_op.lock().await;
        if req.name.is_empty() {
            return Err(Error::invalid("network name is empty"));
        }
        // What a bridge here cannot be; refused rather than made without it.
        if req.internal {
            return Err(Error::invalid("internal networks are not supported by cproxy daemon"));
        }
        if req.enable_ipv6 {
            return Err(Error::invalid("IPv6 networks are not supported by cproxy daemon"));
        }
        let ipam = req.ipam.config.first();
        let plan = NetworkOptions {
            name: req.name.clone(),
            driver: req.driver.clone(),
            subnet: ipam.map(|c| c.subnet.clone()).filter(|s| !s.is_empty()),
            gateway: ipam.map(|c| c.gateway.clone()).filter(|s| !s.is_empty()),
        };
        let existing: Vec<Network> = self.user_networks().iter().map(|n| n.net.clone()).collect();
        let routed = netlink::routed_subnets(&self.handle).await.map_err(Error::internal)?;
        let id = crate::supervisor::rules::names::new_id().map_err(Error::internal)?;
        let mut network = networks::plan(&plan, &existing, &routed, id).map_err(network_error)?;
        network.created = rfc3339(SystemTime::now());
        network.labels = req.labels.unwrap_or_default();
        network.options = req.options.unwrap_or_default();
        network.attachable = req.attachable;
        let up = UserNet::up(&self.handle, network.clone())
            .await
            .map_err(|e| Error::internal(format!("cannot create the network's bridge: {e}")))?;
        if let Err(e) = self.store.save_network(&network) {
            let _ = up.down(&self.handle).await;
            return Err(Error::internal(e));
        }
        if let Ok(mut nets) = self.networks.lock() {
            nets.push(Arc::new(up));
        }
        tracing::info!(network = %network.name, subnet = ?network.subnet, "network created");
        let attributes = [("name", network.name.clone()), ("type", "bridge".to_string())];
        let attributes = attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        self.events.emit("network", "create", &network.id, attributes);
        Ok(network.id)
    }

    /// Whether a running (or restarting) container is on the network named `name`.
    fn network_in_use(&self, name: &str) -> bool {
        self.all()
            .iter()
            .map(|c| c.record())
            .any(|r| r.state.status.is_up() && r.networks.iter().any(|a| a.network == name))
    }

    /// `network rm KEY`: refused for predefined networks, unknown ones and ones with running
    /// containers (Docker's words); the bridge and the record go.
    pub async fn network_remove(&self, key: &str) -> Result<(), Error> {
        let _op = self.net_op.lock().await;
        let nets = self.user_networks();
        let plain: Vec<Network> = nets.iter().map(|n| n.net.clone()).collect();
        let id = networks::check_remove(&plain, key, |n| self.network_in_use(n))
            .map_err(network_error)?
            .id
            .clone();
        let Some(n) = nets.into_iter().find(|n| n.net.id == id) else {
            return Err(network_error(NetworkError::NoSuchNetwork(key.to_string())));
        };
        n.down(&self.handle).await.map_err(Error::internal)?;
        self.store.remove_network(&id).map_err(Error::internal)?;
        if let Ok(mut all) = self.networks.lock() {
            all.retain(|x| x.net.id != id);
        }
        let attributes = [("name", n.net.name.clone()), ("type", "bridge".to_string())];
        let attributes = attributes.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        self.events.emit("network", "destroy", &id, attributes);
        Ok(())
    }

    /// Removes every user-defined network's bridge and isolation rule (the records stay): the
    /// daemon's shutdown.
    pub(super) async fn remove_network_bridges(&self) {
        for n in self.user_networks() {
            if let Err(e) = n.down(&self.handle).await {
                let bridge = n.net.bridge_name();
                tracing::warn!(%bridge, error = %e, "could not remove a network's bridge");
            }
        }
    }

    /// The networks a container is on, `(ID, name)`: the default bridge or those it joined
    /// (for its `connect` and `disconnect` events).
    pub(super) fn network_ids(&self, r: &Record) -> Vec<(String, String)> {
        if r.network_mode.is_bridge() {
            return self
                .predefined_ids
                .iter()
                .filter(|(n, _)| n == "bridge")
                .map(|(n, id)| (id.clone(), n.clone()))
                .collect();
        }
        let nets = self.user_networks();
        r.networks
            .iter()
            .filter_map(|a| nets.iter().find(|n| n.net.name == a.network))
            .map(|n| (n.net.id.clone(), n.net.name.clone()))
            .collect()
    }

    /// `GET /networks`: Docker's summaries, predefined first.
    pub fn network_list(&self, f: &Filters) -> Result<Vec<NetworkResource>, Error> {
        networks::check_list_filters(f).map_err(Error::invalid)?;
        let mut out: Vec<NetworkResource> = self
            .predefined_ids
            .iter()
            .filter_map(|(name, _)| self.network_inspect(name).ok())
            .collect();
        out.extend(self.user_networks().iter().map(|n| self.user_network_resource(n)));
        out.retain(|n| {
            let predefined = networks::PREDEFINED.contains(&n.name.as_str());
            let seen = networks::Listed {
                name: &n.name,
                id: &n.id,
                driver: &n.driver,
                labels: Some(&n.labels),
                predefined,
                in_use: !n.containers.is_empty(),
            };
            networks::listed(f, &seen)
        });
        Ok(out)
    }

    /// `GET /networks/{id}`: Docker's inspect object.
    pub fn network_inspect(&self, key: &str) -> Result<NetworkResource, Error> {
        // Names and full IDs first, then a user-defined network, then an ID prefix.
        let predefined =
            self.predefined_ids.iter().find(|(n, id)| n == key || id == key).or_else(|| {
                self.user_network(key)
                    .is_none()
                    .then(|| self.predefined_ids.iter().find(|(_, id)| id.starts_with(key)))
                    .flatten()
            });
        if let Some((name, id)) = predefined {
            let subnet = self.bridge.ipam.subnet();
            let (driver, config) = match name.as_str() {
                "bridge" => (
                    "bridge",
                    vec![IpamConfig {
                        subnet: format!("{}/{}", subnet.network, subnet.prefix),
                        gateway: self.bridge.ipam.gateway().to_string(),
                    }],
                ),
                "host" => ("host", Vec::new()),
                _ => ("null", Vec::new()),
            };
            let mut containers = BTreeMap::new();
            if name == "bridge" {
                for r in self.all().iter().map(|c| c.record()) {
                    if r.network_mode.is_bridge()
                        && r.state.status == Status::Running
                        && let Some(ip) = r.ip
                    {
                        containers
                            .insert(r.id.clone(), endpoint_resource(&r, id, ip, subnet.prefix));
                    }
                }
            }
            return Ok(NetworkResource {
                name: name.clone(),
                id: id.clone(),
                created: match name.as_str() {
                    "bridge" => self.predefined_created.0.clone(),
                    _ => self.predefined_created.1.clone(),
                },
                driver: driver.into(),
                ipam: Ipam { driver: "default".into(), options: None, config },
                containers,
                ..network_resource()
            });
        }
        let n = self
            .user_network(key)
            .ok_or_else(|| network_error(NetworkError::NoSuchNetwork(key.to_string())))?;
        Ok(self.user_network_resource(&n))
    }

    fn user_network_resource(&self, n: &UserNet) -> NetworkResource {
        let subnet = n.net.subnet;
        let mut containers = BTreeMap::new();
        for r in self.all().iter().map(|c| c.record()) {
            if r.state.status != Status::Running {
                continue;
            }
            for a in r.networks.iter().filter(|a| a.network == n.net.name) {
                if let Some(ip) = a.ip {
                    containers
                        .insert(r.id.clone(), endpoint_resource(&r, &n.net.id, ip, subnet.prefix));
                }
            }
        }
        NetworkResource {
            name: n.net.name.clone(),
            id: n.net.id.clone(),
            created: n.net.created.clone(),
            driver: "bridge".into(),
            ipam: Ipam {
                driver: "default".into(),
                options: Some(BTreeMap::new()),
                config: vec![IpamConfig {
                    subnet: format!("{}/{}", subnet.network, subnet.prefix),
                    gateway: n.net.gateway.to_string(),
                }],
            },
            containers,
            labels: n.net.labels.clone(),
            options: n.net.options.clone(),
            attachable: n.net.attachable,
            ..network_resource()
        }
    }

    /// Leases an address on each of a starting container's user-defined networks, in order:
    /// `eth0` for the first unless the container is on the default bridge (which has `eth0`).
    pub(super) fn lease_endpoints(
        &self,
        r: &Record,
        held: &mut crate::supervisor::engine::Held,
    ) -> Result<(), Error> {
        let first = usize::from(r.network_mode.is_bridge());
        for (i, a) in r.networks.iter().enumerate() {
            let n = self
                .user_network(&a.network)
                .ok_or_else(|| Error::not_found(format!("network {} not found", a.network)))?;
            let ip = match a.ipv4_address {
                Some(want) => n
                    .bridge
                    .ipam
                    .lease_exact(want)
                    .ok_or_else(|| Error::conflict("Address already in use"))?,
                None => n.bridge.ipam.lease().ok_or_else(|| {
                    Error::internal(format!("no address left on network {}", a.network))
                })?,
            };
            let slot = first + i;
            let veth = netlink::slot_veth_name(&r.id, slot);
            held.endpoints.push(Endpoint { network: n, ip, slot, veth });
        }
        Ok(())
    }

    /// Gives an endpoint back: its veth (the pair goes with it) and its address.
    pub(super) async fn release_endpoint(&self, e: Endpoint) {
        if let Err(err) = netlink::delete_link(&self.handle, &e.veth).await {
            tracing::warn!(veth = %e.veth, error = %err, "could not remove veth");
        }
        e.network.bridge.ipam.release(e.ip);
    }

    /// `network connect [--alias A] NET CONTAINER`: the container joins the network (now, on
    /// a new `eth<N>`, if it runs) and keeps it for its next starts.
    pub async fn network_connect(
        &self,
        key: &str,
        container: &Arc<Container>,
        aliases: Vec<String>,
        links: Vec<String>,
    ) -> Result<(), Error> {
        let n = self.user_network_or_not_found(key)?;
        // Each link by its source's name, as create stores them; Docker's words for a bad one.
        let mut stored = Vec::new();
        for value in &links {
            let link = Link::parse(value).map_err(|e| Error::invalid(e.to_string()))?;
            let source = self.find(&link.name).map_err(|_| {
                Error::not_found(LinkError::NoSuchContainer { name: link.name.clone() }.to_string())
            })?;
            stored.push(Link { name: source.name(), alias: link.alias }.to_string());
        }
        let _op = container.op.lock().await;
        let r = container.record();
        match &r.network_mode {
            NetworkMode::Host => {
                return Err(Error::invalid(
                    "container cannot be disconnected from host network or connected to host network",
                ));
            }
            NetworkMode::None => {
                return Err(Error::invalid(
                    "container cannot be connected to multiple networks with one of the networks in private (none) mode",
                ));
            }
            NetworkMode::Container(_) => {
                return Err(Error::invalid(
                    "container sharing network namespace with another container or host cannot be connected to any other network",
                ));
            }
            _ => {}
        }
        if r.networks.iter().any(|a| a.network == n.net.name) {
            return Err(Error::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name, n.net.name
            )));
        }
        let attachment = Attachment {
            network: n.net.name.clone(),
            aliases,
            links: stored,
            ..Attachment::default()
        };
        if r.state.status != Status::Running || r.state.pid <= 0 {
            let r = container.update(|r| r.networks.push(attachment));
            return self.store.save(&r).map_err(Error::internal);
        }
        let ip =
            n.bridge.ipam.lease().ok_or_else(|| {
                Error::internal(format!("no address left on network {}", n.net.name))
            })?;
        let slot = {
            let held = container.held.lock().map_err(Error::internal)?;
            let used: Vec<usize> = held
                .endpoints
                .iter()
                .map(|e| e.slot)
                .chain(held.veth.as_ref().map(|_| 0))
                .collect();
            (0..).find(|s| !used.contains(s)).unwrap_or(0)
        };
        let pid = u32::try_from(r.state.pid).unwrap_or(0);
        if let Err(e) = netlink::attach(&self.handle, &n.bridge, &container.id, pid, ip, slot).await
        {
            n.bridge.ipam.release(ip);
            return Err(Error::internal(format!("cannot connect the container: {e}")));
        }
        if let Ok(mut held) = container.held.lock() {
            let veth = netlink::slot_veth_name(&container.id, slot);
            held.endpoints.push(Endpoint { network: n.clone(), ip, slot, veth });
        }
        // Attaching again replaces the first attachment; the DNS answers from live state.
        if let Err(e) = self.dns.attach(&container.id, pid).await {
            tracing::warn!(container = %r.name, error = %e, "no embedded DNS for the container");
        }
        let r = container.update(|r| r.networks.push(Attachment { ip: Some(ip), ..attachment }));
        if r.state.pid != container.record().state.pid || !container.is_running() {
            // It exited meanwhile, and its exit may have given back what it held before this
            // endpoint was added: give it back here, the network stays for its next start.
            let late = container.held.lock().ok().and_then(|mut h| {
                let i = h.endpoints.iter().position(|e| e.network.net.id == n.net.id)?;
                Some(h.endpoints.remove(i))
            });
            if let Some(e) = late {
                self.release_endpoint(e).await;
            }
            let r = container.update(|r| {
                if r.state.status != Status::Running {
                    r.networks.iter_mut().for_each(|a| a.ip = None);
                }
            });
            let _ = self.store.save(&r);
            return Ok(());
        }
        let _ = self.store.save(&r);
        self.rewrite_network_files(&r).await;
        self.events.network(&n.net.id, &n.net.name, &r.id, "connect");
        Ok(())
    }

    /// `network disconnect NET CONTAINER`: its interface there goes, and the network is
    /// forgotten for its next starts.
    pub async fn network_disconnect(
        &self,
        key: &str,
        container: &Arc<Container>,
    ) -> Result<(), Error> {
        let n = self.user_network_or_not_found(key)?;
        let _op = container.op.lock().await;
        let r = container.record();
        if !r.networks.iter().any(|a| a.network == n.net.name) {
            return Err(Error::forbidden(format!(
                "container {} is not connected to network {}",
                r.id, n.net.name
            )));
        }
        let (endpoint, none_left) = container
            .held
            .lock()
            .ok()
            .map(|mut h| {
                let e = h
                    .endpoints
                    .iter()
                    .position(|e| e.network.net.id == n.net.id)
                    .map(|i| h.endpoints.remove(i));
                (e, h.endpoints.is_empty())
            })
            .unwrap_or((None, false));
        if none_left {
            self.dns.detach(&container.id);
        }
        if let Some(e) = endpoint {
            self.release_endpoint(e).await;
        }
        let r = container.update(|r| r.networks.retain(|a| a.network != n.net.name));
        let _ = self.store.save(&r);
        if r.state.status == Status::Running {
            self.rewrite_network_files(&r).await;
        }
        self.events.network(&n.net.id, &n.net.name, &r.id, "disconnect");
        Ok(())
    }

    /// After a connect or disconnect: a running container's `/etc/hosts` (its hostname on each
    /// address) and `/etc/resolv.conf` (the embedded DNS while it is on a user-defined
    /// network, the host's otherwise) rewritten and swapped in whole.
    async fn rewrite_network_files(&self, r: &Record) {
        let dir = self.store.dir(&r.id);
        let user: Vec<Ipv4Addr> = r.networks.iter().filter_map(|a| a.ip).collect();
        let ips: Vec<Ipv4Addr> = r.ip.into_iter().chain(user.iter().copied()).collect();
        let hostname = r.hostname.clone();
        let pids = self.sharing_files(r);
        let on_user = !user.is_empty();
        let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let (hosts, resolv) = if on_user {
                (
                    crate::supervisor::rules::hosts::render_hosts_multi(&ips, &hostname),
                    crate::supervisor::rules::hosts::render_internal_resolv_conf(&host),
                )
            } else {
                (
                    crate::supervisor::rules::hosts::render_hosts(ips.first().copied(), &hostname),
                    crate::supervisor::rules::hosts::render_resolv_conf(&host),
                )
            };
            for (file, text) in [("hosts", hosts), ("resolv.conf", resolv)] {
                let path = dir.join(file);
                if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
                    continue;
                }
                crate::supervisor::engine::store::write_atomic(&path, text.as_bytes())?;
                crate::supervisor::os::hosts_files::swap_in_each(
                    &pids,
                    &path,
                    &format!("/etc/{file}"),
                )?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        if let Err(e) = result {
            tracing::warn!(container = %r.name, error = %e, "could not rewrite the network files");
        }
    }

    /// The addresses `name` stands for, asked from inside container `asker` (its ID): the
    /// names (container name, hostname, 12-digit ID, network aliases, `NAME.NETWORK`) of the
    /// containers that share a user-defined network with it, each with its address there
    /// (set from just before a container's command runs until it has exited), and its own links' aliases on those networks. Nothing for a container on the
    /// default bridge alone (Docker's legacy rule). Read from live state at every call, so a
    /// restarted container's new address is answered at once.
    pub fn resolve(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        let all: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        resolve_in(&all, asker, name)
    }

    /// `inspect`'s `NetworkSettings.Networks`: the default bridge (if on it) and each
    /// user-defined network with its aliases (then the 12-digit ID, as Docker lists them).
    pub(super) fn endpoints_of(&self, r: &Record) -> BTreeMap<String, EndpointSettings> {
        let mut map = BTreeMap::new();
        let running = r.state.status == Status::Running;
        let entry = |ip: Option<Ipv4Addr>, prefix: u8, gateway: String, net_id: &str| {
            let ip = ip.filter(|_| running);
            EndpointSettings {
                network_id: net_id.to_string(),
                endpoint_id: if ip.is_some() { endpoint_id(&r.id, net_id) } else { String::new() },
                gateway: if ip.is_some() { gateway } else { String::new() },
                ip_address: ip.map(|i| i.to_string()).unwrap_or_default(),
                ip_prefix_len: if ip.is_some() { prefix } else { 0 },
                mac_address: ip.map(mac_text).unwrap_or_default(),
                ..EndpointSettings::default()
            }
        };
        let id_of = |name: &str| {
            self.predefined_ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone())
        };
        if r.network_mode.is_predefined() {
            let mode = r.network_mode.to_string();
            let id = id_of(&mode).unwrap_or_default();
            let e = entry(
                r.ip.filter(|_| r.network_mode.is_bridge()),
                self.bridge.ipam.subnet().prefix,
                self.bridge.ipam.gateway().to_string(),
                &id,
            );
            map.insert(mode, e);
        }
        for a in &r.networks {
            let n = self.user_network(&a.network);
            let (prefix, gateway, id) = n
                .map(|n| (n.net.subnet.prefix, n.net.gateway.to_string(), n.net.id.clone()))
                .unwrap_or((0, String::new(), String::new()));
            let mut e = entry(a.ip, prefix, gateway, &id);
            // The short ID joins the aliases once the container has started on the network,
            // unless given among them (moby's `connectToNetwork`); compose reconnects a
            // created container whose aliases lack it, with the aliases and links it wants.
            let mut aliases = a.aliases.clone();
            let short = r.id.get(..12).unwrap_or(&r.id).to_string();
            if r.state.started_at.get().is_some() && !aliases.contains(&short) {
                aliases.push(short);
            }
            e.aliases = Some(aliases).filter(|a| !a.is_empty());
            e.links = Some(a.links.clone()).filter(|l| !l.is_empty());
            map.insert(a.network.clone(), e);
        }
        map
    }
}

/// What every network answer has in common here.
fn network_resource() -> NetworkResource {
    NetworkResource { scope: "local".into(), ..NetworkResource::default() }
}

/// A running container on a network, as `network inspect` lists it.
fn endpoint_resource(r: &Record, net_id: &str, ip: Ipv4Addr, prefix: u8) -> EndpointResource {
    EndpointResource {
        name: r.name.clone(),
        endpoint_id: endpoint_id(&r.id, net_id),
        mac_address: mac_text(ip),
        ipv4_address: format!("{ip}/{prefix}"),
        ipv6_address: String::new(),
    }
}

/// [`Daemon::resolve`] over the containers' records: `asker` is an ID (or a prefix of one).
pub fn resolve_in(all: &[Record], asker: &str, name: &str) -> Option<Vec<IpAddr>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let me =
        all.iter().find(|r| r.id == asker || (!asker.is_empty() && r.id.starts_with(asker)))?;
    let mine: Vec<&str> =
        me.networks.iter().filter(|a| a.ip.is_some()).map(|a| a.network.as_str()).collect();
    if mine.is_empty() {
        return None;
    }
    // The sources `name` is a link alias of: the container's links, and those given for one
    // network (there only).
    let aliased = |l: &Link| l.alias.to_ascii_lowercase() == name;
    let link_targets: Vec<String> = crate::supervisor::engine::links::record_links(me)
        .into_iter()
        .filter(aliased)
        .map(|l| l.name)
        .collect();
    let network_link_targets = |network: &str| -> Vec<String> {
        me.networks
            .iter()
            .filter(|a| a.network == network)
            .flat_map(|a| a.links.iter().filter_map(|l| Link::parse(l).ok()))
            .filter(aliased)
            .map(|l| l.name)
            .collect()
    };
    let mut out = Vec::new();
    // An address is set from just before a container's command runs until it has exited.
    for r in all {
        for a in &r.networks {
            let Some(ip) = a.ip else { continue };
            if !mine.contains(&a.network.as_str()) {
                continue;
            }
            let net_suffix = format!(".{}", a.network.to_ascii_lowercase());
            let bare = name.strip_suffix(&net_suffix).unwrap_or(&name);
            let short = r.id.get(..12).unwrap_or(&r.id);
            let hit = [r.name.as_str(), r.hostname.as_str(), short]
                .into_iter()
                .chain(a.aliases.iter().map(String::as_str))
                .any(|n| n.to_ascii_lowercase() == bare)
                || link_targets.contains(&r.name)
                || network_link_targets(&a.network).contains(&r.name);
            if hit && !out.contains(&IpAddr::V4(ip)) {
                out.push(IpAddr::V4(ip));
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::api::types::ContainerCreateRequest;
    use crate::supervisor::engine::create::{Known, plan};
    use crate::supervisor::engine::store::Time;

    /// A network's name, the container's aliases there, its address.
    type Net<'a> = (&'a str, &'a [&'a str], Option<[u8; 4]>);

    fn record(id: char, name: &str, status: Status, nets: &[Net<'_>]) -> Record {
        let id: String = std::iter::repeat_n(id, 64).collect();
        let mut req = ContainerCreateRequest::default();
        req.config.cmd = vec!["sleep".into()];
        let known = Known { containers: &[], networks: &[], image: None };
        let mut r = plan(None, req, &known, id, Time::ZERO).unwrap();
        r.name = name.to_string();
        r.network_mode = NetworkMode::parse(nets.first().map_or("bridge", |n| n.0));
        r.state.status = status;
        r.networks = nets
            .iter()
            .map(|(n, aliases, ip)| Attachment {
                network: n.to_string(),
                aliases: aliases.iter().map(|a| a.to_string()).collect(),
                ip: ip.map(Ipv4Addr::from),
                ..Attachment::default()
            })
            .collect();
        r
    }

    fn v4(a: [u8; 4]) -> Option<Vec<IpAddr>> {
        Some(vec![IpAddr::V4(Ipv4Addr::from(a))])
    }

    #[test]
    fn names_aliases_ids_and_hostnames_resolve_on_a_shared_network_only() {
        let all = vec![
            record('a', "c1", Status::Running, &[("my-bridge", &[], Some([172, 18, 0, 2]))]),
            record(
                'b',
                "c2",
                Status::Running,
                &[("my-bridge", &["c2alias"], Some([172, 18, 0, 3]))],
            ),
            record('c', "c3", Status::Running, &[]),
            record('d', "d1", Status::Running, &[("other", &[], Some([172, 19, 0, 2]))]),
            record('e', "gone", Status::Exited, &[("my-bridge", &["old"], None)]),
        ];
        let c1 = "a".repeat(64);
        assert_eq!(resolve_in(&all, &c1, "c2"), v4([172, 18, 0, 3]));
        assert_eq!(resolve_in(&all, &c1, "C2Alias."), v4([172, 18, 0, 3]));
        assert_eq!(resolve_in(&all, &c1, "c2.my-bridge"), v4([172, 18, 0, 3]));
        assert_eq!(resolve_in(&all, &c1, "bbbbbbbbbbbb"), v4([172, 18, 0, 3]));
        assert_eq!(resolve_in(&all, &c1, "c1"), v4([172, 18, 0, 2]));
        assert_eq!(resolve_in(&all, &c1, "d1"), None, "another network");
        assert_eq!(resolve_in(&all, &c1, "c3"), None, "the default bridge");
        assert_eq!(resolve_in(&all, &c1, "old"), None, "not running");
        assert_eq!(resolve_in(&all, &"c".repeat(64), "c1"), None, "asked from the default bridge");
        assert_eq!(resolve_in(&all, &"d".repeat(64), "c1"), None);
        assert_eq!(resolve_in(&all, "", "c1"), None);
    }

    #[test]
    fn a_link_alias_names_its_source_on_a_shared_network() {
        let mut web =
            record('f', "web", Status::Running, &[("my-bridge", &[], Some([172, 18, 0, 4]))]);
        web.links = vec!["c1:dbalias".into()];
        let all = vec![
            record('a', "c1", Status::Running, &[("my-bridge", &[], Some([172, 18, 0, 2]))]),
            web,
        ];
        assert_eq!(resolve_in(&all, &"f".repeat(64), "dbalias"), v4([172, 18, 0, 2]));
        assert_eq!(resolve_in(&all, &"a".repeat(64), "dbalias"), None);
    }

    #[test]
    fn a_link_given_for_one_network_names_its_source_there_only() {
        let mut web = record(
            'f',
            "web",
            Status::Running,
            &[("n1", &[], Some([10, 0, 1, 4])), ("n2", &[], Some([10, 0, 2, 4]))],
        );
        web.networks[1].links = vec!["c1:webhost".into()];
        let all = vec![
            record('a', "c1", Status::Running, &[("n1", &[], Some([10, 0, 1, 2]))]),
            web.clone(),
        ];
        // c1 is not on n2, where the link was given: the alias names nothing.
        assert_eq!(resolve_in(&all, &"f".repeat(64), "webhost"), None);
        let all =
            vec![record('a', "c1", Status::Running, &[("n2", &[], Some([10, 0, 2, 2]))]), web];
        assert_eq!(resolve_in(&all, &"f".repeat(64), "webhost"), v4([10, 0, 2, 2]));
    }

    #[test]
    fn a_container_on_two_networks_answers_with_the_shared_ones_address() {
        let all = vec![
            record('a', "a", Status::Running, &[("n1", &[], Some([10, 0, 1, 2]))]),
            record(
                'b',
                "b",
                Status::Running,
                &[("n2", &[], Some([10, 0, 2, 2])), ("n1", &[], Some([10, 0, 1, 3]))],
            ),
        ];
        assert_eq!(resolve_in(&all, &"a".repeat(64), "b"), v4([10, 0, 1, 3]));
    }
}
