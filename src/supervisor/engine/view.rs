//! What the API shows of containers: `GET /containers/json` summaries (with Docker's STATUS
//! text and Ports list) and the `docker inspect` object, as the API's types.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::spec::{HostPort, PortSpec, parse_expose};
use crate::supervisor::api::types::{
    ContainerConfig, ContainerInspect, ContainerState, ContainerSummary, Empty, EndpointSettings,
    HostConfig, MountPoint, NetworkSettings, Port, PortBinding, PortMap, SummaryHostConfig,
    SummaryNetworkSettings,
};
use crate::supervisor::engine::store::{Record, Status};
use crate::supervisor::engine::{Container, Daemon, Error, ErrorKind};
use crate::supervisor::os::netlink;
use crate::supervisor::rules::filters::{self as ps, Candidate, FilterFault, ListOptions};
use crate::supervisor::rules::format;
use crate::supervisor::rules::logging;
use crate::supervisor::rules::mounts::Kind;
use crate::supervisor::rules::runtime::Runtime;

impl Daemon {
    /// `GET /containers/json`: newest first, running only unless `all` (or a limit, or a
    /// `status` filter), through Docker's filters ([`ps::select`]).
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>, Error> {
        let now = SystemTime::now();
        let records: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        let newest_first: Vec<&Record> = records.iter().rev().collect();
        // Port sets are made only for a `publish`/`expose` filter: a container exposing a
        // wide range would otherwise cost every listing a string per port.
        let ports = opts.filters.contains("publish") || opts.filters.contains("expose");
        // Each record's networks, read once for the filters and the answer.
        let mut endpoints: Vec<_> = newest_first.iter().map(|r| self.endpoints_of(r)).collect();
        let candidates: Vec<Candidate> = newest_first
            .iter()
            .zip(&endpoints)
            .map(|(r, e)| candidate(r, e, &records, ports))
            .collect();
        let chosen = ps::select(opts, &candidates).map_err(|e| {
            let kind = match e.fault {
                FilterFault::Invalid => ErrorKind::InvalidArgument,
                FilterFault::NotFound => ErrorKind::NotFound,
                FilterFault::Other => ErrorKind::Internal,
            };
            Error::new(kind, e.message)
        })?;
        Ok(chosen
            .into_iter()
            .map(|i| {
                // `select` gives each index once: its networks can move into the answer.
                let (r, c) = (newest_first[i], &candidates[i]);
                ContainerSummary {
                    id: r.id.clone(),
                    names: c.names.iter().map(|n| format!("/{n}")).collect(),
                    image: self.listed_image(r),
                    image_id: r.image.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
                    command: format::command_line(&r.path, &r.args),
                    created: r.created.unix_seconds(),
                    ports: api_ports(r),
                    labels: r.labels.clone().unwrap_or_default(),
                    state: r.shown_status(),
                    status: status_text(r, now),
                    host_config: SummaryHostConfig { network_mode: r.network_mode.to_string() },
                    network_settings: SummaryNetworkSettings {
                        networks: std::mem::take(&mut endpoints[i]),
                    },
                    mounts: mounts(r, &self.volumes),
                    size_rw: 0,
                    size_root_fs: 0,
                }
            })
            .map(|mut summary| {
                if opts.size {
                    (summary.size_rw, summary.size_root_fs) = self.sizes(&summary.id);
                }
                summary
            })
            .collect())
    }

    /// `GET /containers/{id}/json`: Docker's inspect shape, the parts cproxy has.
    pub fn inspect(&self, c: &Arc<Container>) -> ContainerInspect {
        let r = c.record();
        let dir = self.store.dir(&r.id);
        let running = r.state.status == Status::Running;
        let mut ports: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
        if running {
            for key in exposed_keys(&r) {
                ports.insert(key, None);
            }
            for p in &r.ports {
                let key = format!("{}/{}", p.container_port, p.proto);
                let entry =
                    PortBinding { host_ip: p.host_ip.clone(), host_port: p.host_port.to_string() };
                ports.entry(key).or_default().get_or_insert_with(Vec::new).push(entry);
            }
        }
        let bridge = r.network_mode.is_bridge() && running;
        let (ip, prefix, gateway, mac) = match r.ip.filter(|_| bridge) {
            Some(ip) => {
                let m = netlink::mac_for(ip);
                (
                    ip.to_string(),
                    self.bridge.ipam.subnet().prefix,
                    self.bridge.ipam.gateway().to_string(),
                    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
                )
            }
            None => (String::new(), 0, String::new(), String::new()),
        };
        let exposed: BTreeMap<String, Empty> =
            exposed_keys(&r).into_iter().map(|k| (k, Empty {})).collect();
        let path = |name: &str| dir.join(name).display().to_string();
        ContainerInspect {
            id: r.id.clone(),
            created: r.created.to_string(),
            path: r.path.clone(),
            args: r.args.clone(),
            state: ContainerState {
                status: r.shown_status(),
                paused: r.state.paused,
                // Docker counts a restarting container as running too.
                running: r.state.status.is_up(),
                restarting: r.state.status == Status::Restarting,
                pid: r.state.pid,
                exit_code: r.state.exit_code,
                error: r.state.error.clone(),
                oom_killed: r.state.oom_killed,
                started_at: r.state.started_at.to_string(),
                finished_at: r.state.finished_at.to_string(),
                ..ContainerState::default()
            },
            image: r.image.as_ref().map_or_else(|| r.path.clone(), |i| i.id.clone()),
            resolv_conf_path: path("resolv.conf"),
            hostname_path: path("hostname"),
            hosts_path: path("hosts"),
            // Only json-file's file is for others to read (dockerd names none for `local`).
            log_path: match logging::Driver::parse(&r.log_config.kind) {
                Ok(logging::Driver::JsonFile) => path(&format!("{}-json.log", r.id)),
                _ => String::new(),
            },
            name: format!("/{}", r.name),
            cproxy_link_env: self.link_env(&r),
            restart_count: r.restart_count,
            mounts: mounts(&r, &self.volumes),
            host_config: HostConfig {
                resources: crate::supervisor::rules::resources::with_defaults(r.resources.clone()),
                network_mode: r.network_mode.to_string(),
                port_bindings: port_bindings(&r),
                port_specs: r.publish.clone(),
                publish_all_ports: r.publish_all,
                auto_remove: r.auto_remove,
                binds: Some(r.binds.clone()).filter(|b| !b.is_empty()),
                mounts: Some(r.mount_request.mounts.clone()).filter(|m| !m.is_empty()),
                tmpfs: Some(r.mount_request.tmpfs.clone()).filter(|t| !t.is_empty()),
                volumes_from: Some(r.mount_request.volumes_from.clone()).filter(|v| !v.is_empty()),
                ulimits: Some(r.mount_request.ulimits.clone()).filter(|u| !u.is_empty()),
                shm_size: match r.mount_request.shm_size {
                    0 if r.confined() => crate::supervisor::os::rootfs::SHM_DEFAULT as i64,
                    n => n,
                },
                proxy_protocol: r.proxy_protocol.map(|v| v.to_string()).unwrap_or_default(),
                source_ip_transparent: r.source_ip_transparent,
                restart_policy: match r.restart_policy_unnamed {
                    // As sent: dockerd keeps an empty name (docker-py sends none).
                    true => Default::default(),
                    false => r.restart_policy.into(),
                },
                links: (!r.links.is_empty())
                    .then(|| crate::supervisor::engine::links::host_config_links(&r)),
                init: r.init.then_some(true),
                cap_add: Some(r.security.cap_add.clone()).filter(|c| !c.is_empty()),
                cap_drop: Some(r.security.cap_drop.clone()).filter(|c| !c.is_empty()),
                privileged: r.security.privileged,
                security_opt: Some(r.security.security_opt.clone()).filter(|c| !c.is_empty()),
                readonly_rootfs: r.security.read_only,
                runtime: match r.runtime.as_str() {
                    "" => Runtime::default().name().into(),
                    name => name.into(),
                },
                rootfs: r.rootfs.clone(),
                log_config: Some(crate::supervisor::api::types::LogConfig {
                    kind: logging::Driver::parse(&r.log_config.kind)
                        .map_or(r.log_config.kind.as_str(), |d| d.name())
                        .into(),
                    config: r.log_config.config.clone(),
                }),
            },
            config: ContainerConfig {
                hostname: r.hostname.clone(),
                env: Some(r.env.clone()).filter(|e| !e.is_empty()),
                cmd: r.cmd.clone().unwrap_or_else(|| {
                    std::iter::once(r.path.clone()).chain(r.args.iter().cloned()).collect()
                }),
                entrypoint: r.entrypoint.clone(),
                image: image_name(&r),
                user: r.user.clone(),
                attach_stdin: r.stdio.attach_stdin,
                attach_stdout: r.stdio.attach_stdout,
                attach_stderr: r.stdio.attach_stderr,
                tty: r.stdio.tty,
                open_stdin: r.stdio.open_stdin,
                stdin_once: r.stdio.stdin_once,
                working_dir: r.working_dir.clone(),
                exposed_ports: (!exposed.is_empty()).then_some(exposed),
                stop_signal: Some(r.stop_signal.clone()).filter(|s| !s.is_empty()),
                stop_timeout: r.stop_timeout,
                volumes: Some(
                    r.mount_request
                        .volumes
                        .iter()
                        .map(|v| (v.clone(), Default::default()))
                        .collect(),
                )
                .filter(|v: &crate::supervisor::api::types::PortSet| !v.is_empty()),
                labels: r.labels.clone(),
            },
            network_settings: NetworkSettings {
                ports,
                ip_address: ip,
                ip_prefix_len: prefix,
                gateway,
                mac_address: mac,
                networks: self.endpoints_of(&r),
            },
        }
    }
}

impl Daemon {
    /// The image as the list shows it (moby's `refreshImage`): the name it was created
    /// from while that name still stands for its image, else the image's ID.
    fn listed_image(&self, r: &Record) -> String {
        match &r.image {
            Some(i) if self.images.resolve(&i.name).ok().as_deref() != Some(i.id.as_str()) => {
                i.id.clone()
            }
            _ => image_name(r),
        }
    }
}

/// The image as `ps` and `Config.Image` show it: its name as given, else (`--rootfs`) the
/// program.
fn image_name(r: &Record) -> String {
    r.image.as_ref().map_or_else(|| r.path.clone(), |i| i.name.clone())
}

/// A record as the list's filters see it (its port sets only if `ports`).
fn candidate(
    r: &Record,
    endpoints: &BTreeMap<String, EndpointSettings>,
    records: &[Record],
    ports: bool,
) -> Candidate {
    let mut exposed = BTreeSet::new();
    let mut port_bindings = BTreeSet::new();
    if ports {
        for spec in r.expose.iter().filter_map(|e| parse_expose(e).ok()) {
            exposed.extend(spec.container_ports().ports().map(|p| format!("{p}/{}", spec.proto())));
        }
        for spec in r.publish.iter().filter_map(|p| PortSpec::parse(p).ok()) {
            port_bindings
                .extend(spec.container_ports().ports().map(|p| format!("{p}/{}", spec.proto())));
        }
        exposed.extend(port_bindings.iter().cloned());
    }
    Candidate {
        id: r.id.clone(),
        names: crate::supervisor::engine::links::names_with_links(r, records)
            .into_iter()
            .map(|n| n.trim_start_matches('/').to_string())
            .collect(),
        state: r.shown_status().to_string(),
        exit_code: i64::from(r.state.exit_code),
        started: r.state.started_at.get().is_some(),
        image: image_name(r),
        networks: endpoints.iter().map(|(name, e)| (name.clone(), e.network_id.clone())).collect(),
        port_bindings,
        exposed,
        mounts: r
            .all_mounts()
            .iter()
            .map(|m| (m.spec.source.clone(), m.spec.destination.clone()))
            .collect(),
        labels: r.labels.clone().unwrap_or_default(),
    }
}

/// The `--expose` ports of a record, one `PORT/PROTO` key each.
fn exposed_keys(r: &Record) -> Vec<String> {
    r.expose
        .iter()
        .filter_map(|e| parse_expose(e).ok())
        .flat_map(|s| s.container_ports().ports().map(move |p| format!("{p}/{}", s.proto())))
        .collect()
}

/// `HostConfig.PortBindings` as Docker shows it: each published container port with the
/// host bindings its `-p` specs ask for.
fn port_bindings(r: &Record) -> PortMap {
    let mut map = PortMap::new();
    for spec in r.publish.iter().filter_map(|p| PortSpec::parse(p).ok()) {
        for m in spec.mappings() {
            let host_ip = m.host_ip.map(|ip| ip.to_string()).unwrap_or_default();
            let host_port = match m.host_port {
                HostPort::Fixed(port) => port.to_string(),
                HostPort::Any => String::new(),
                HostPort::OneOf(range) => range.to_string(),
            };
            map.entry(format!("{}/{}", m.container_port, m.proto))
                .or_default()
                .push(PortBinding { host_ip, host_port });
        }
    }
    map
}

/// The `Mounts` of `inspect` and the list, as Docker shows them (by destination).
fn mounts(r: &Record, volumes: &crate::supervisor::engine::volumes::Volumes) -> Vec<MountPoint> {
    r.all_mounts()
        .iter()
        .map(|m| {
            let s = &m.spec;
            let (name, source, driver) = match s.kind {
                Kind::Volume => (
                    s.source.clone(),
                    volumes.data(&s.source).to_string_lossy().into_owned(),
                    "local".to_string(),
                ),
                Kind::Bind => (String::new(), s.source.clone(), String::new()),
                Kind::Tmpfs => Default::default(),
            };
            MountPoint {
                kind: s.kind.as_str().into(),
                name,
                source,
                destination: s.destination.clone(),
                driver,
                mode: s.mode.clone(),
                rw: !s.read_only,
                propagation: s.propagation.clone(),
            }
        })
        .collect()
}

/// The `Ports` list of `GET /containers/json`: each published binding, then each exposed port
/// not published, as Docker 20.10 lists them (every port of a range: `--expose 1-65535` gives
/// 65,535 entries). Linear in the ports: what is listed already is a bit per protocol and
/// port, not a search of the list (which made one listing of such a container take seconds).
fn api_ports(r: &Record) -> Vec<Port> {
    if r.state.status != Status::Running {
        return Vec::new();
    }
    let exposed: Vec<PortSpec> = r.expose.iter().filter_map(|e| parse_expose(e).ok()).collect();
    let wanted = exposed.iter().map(|s| s.container_ports().ports().len()).sum::<usize>();
    let mut ports = Vec::with_capacity(r.ports.len() + wanted);
    let mut listed = Listed::default();
    for p in &r.ports {
        listed.insert(&p.proto, p.container_port);
        ports.push(Port {
            ip: p.host_ip.clone(),
            private_port: p.container_port,
            public_port: p.host_port,
            proto: p.proto.clone(),
        });
    }
    for spec in &exposed {
        let proto = spec.proto().to_string();
        for p in spec.container_ports().ports() {
            if listed.insert(&proto, p) {
                ports.push(Port {
                    ip: String::new(),
                    private_port: p,
                    public_port: 0,
                    proto: proto.clone(),
                });
            }
        }
    }
    ports
}

/// Ports already in a `Ports` list: a bitmap of the 65,536 ports per protocol.
#[derive(Default)]
struct Listed(Vec<(String, Vec<u64>)>);

impl Listed {
    /// Marks `port/proto`; whether it was not marked before.
    fn insert(&mut self, proto: &str, port: u16) -> bool {
        let i = match self.0.iter().position(|(p, _)| p == proto) {
            Some(i) => i,
            None => {
                self.0.push((proto.to_string(), vec![0; 1 << 10]));
                self.0.len() - 1
            }
        };
        let (word, bit) = (usize::from(port >> 6), 1u64 << (port & 63));
        let words = &mut self.0[i].1;
        let new = words[word] & bit == 0;
        words[word] |= bit;
        new
    }
}

/// Docker's STATUS column: "Up 5 seconds", "Restarting (1) 2 seconds ago", "Exited (3) 2
/// minutes ago", "Created".
fn status_text(r: &Record, now: SystemTime) -> String {
    let ago = |t: crate::supervisor::engine::store::Time| format::human_duration(t.elapsed_at(now));
    match r.state.status {
        Status::Running if r.state.paused => {
            format!("Up {} (Paused)", ago(r.state.started_at))
        }
        Status::Running | Status::Paused => format!("Up {}", ago(r.state.started_at)),
        Status::Restarting => {
            format!("Restarting ({}) {} ago", r.state.exit_code, ago(r.state.finished_at))
        }
        Status::Exited => {
            format!("Exited ({}) {} ago", r.state.exit_code, ago(r.state.finished_at))
        }
        Status::Created => "Created".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::api::types::ContainerCreateRequest;
    use crate::supervisor::engine::create::{Known, plan};
    use crate::supervisor::engine::store::{Published, Time};

    fn running(expose: &[&str], published: &[(u16, &str, &str)]) -> Record {
        let mut req = ContainerCreateRequest::default();
        req.config.cmd = vec!["true".into()];
        req.config.exposed_ports = Some(expose.iter().map(|e| (e.to_string(), Empty {})).collect());
        let known = Known { containers: &[], networks: &[], image: None };
        let mut r = plan(None, req, &known, "a".repeat(64), Time::now()).unwrap();
        r.state.status = Status::Running;
        r.ports = published
            .iter()
            .map(|&(port, proto, ip)| Published {
                container_port: port,
                proto: proto.into(),
                host_ip: ip.into(),
                host_port: 8000 + port,
            })
            .collect();
        r
    }

    fn listed(ports: &[Port]) -> Vec<String> {
        ports
            .iter()
            .map(|p| format!("{}:{}->{}/{}", p.ip, p.public_port, p.private_port, p.proto))
            .collect()
    }

    #[test]
    fn ports_list_each_binding_then_each_exposed_port_not_published_once() {
        let r = running(
            &["80", "80-82", "53/udp", "81/udp"],
            &[(80, "tcp", "0.0.0.0"), (80, "tcp", "::"), (53, "udp", "127.0.0.1")],
        );
        assert_eq!(
            listed(&api_ports(&r)),
            [
                "0.0.0.0:8080->80/tcp",
                ":::8080->80/tcp",
                "127.0.0.1:8053->53/udp",
                ":0->81/tcp",
                ":0->82/tcp",
                ":0->81/udp",
            ]
        );
        let mut stopped = r;
        stopped.state.status = Status::Exited;
        assert!(api_ports(&stopped).is_empty());
    }

    #[test]
    fn a_range_of_every_port_is_every_port_once() {
        // Docker 20.10 lists the 65,535 of `--expose 1-65535` one by one.
        let r = running(&["1-65535", "100-200"], &[(443, "tcp", "0.0.0.0")]);
        let ports = api_ports(&r);
        assert_eq!(ports.len(), 65_535);
        assert_eq!((ports[0].private_port, ports[0].public_port), (443, 8443));
        let mut seen: Vec<u16> = ports.iter().map(|p| p.private_port).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=65_535).collect::<Vec<u16>>());
    }
}
