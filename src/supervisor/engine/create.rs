//! `POST /containers/create`: the request checked in Docker's words and turned into a record.
//! The checks are [`plan`], a pure function of the request and what the daemon knows
//! ([`Known`]), so they are unit-tested without root, namespaces or files.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::proxy::proxy_proto::Version;
use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::api::types::{
    ContainerConfig, ContainerCreateRequest, ImageRunConfig, LogConfig, PortMap,
};
use crate::supervisor::engine::error::Result;
use crate::supervisor::engine::store::{
    Attachment, ImageUse, MountRequest, Mounted, NetworkMode, Record, RunState, Security, Status,
    StdioConfig, Time,
};
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::rules::confine;
use crate::supervisor::rules::format;
use crate::supervisor::rules::links::{self, Link, LinkError};
use crate::supervisor::rules::mounts::{self, Kind};
use crate::supervisor::rules::names;
use crate::supervisor::rules::networks::Network;
use crate::supervisor::rules::resources;
use crate::supervisor::rules::restart::RestartPolicy;
use crate::supervisor::rules::runtime::Runtime;

/// What a create is checked against: the containers and user-defined networks there are.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    /// Every container's record, oldest first.
    pub containers: &'a [Record],
    /// Every user-defined network.
    pub networks: &'a [Network],
    /// The image the request names, found (`None`: a host command, `--rootfs`).
    pub image: Option<&'a FoundImage>,
}

/// The image a create names, as the image store has it.
#[derive(Clone, Debug)]
pub struct FoundImage {
    /// Its name as given, ID and layers.
    pub image: ImageUse,
    /// Its `config`: the defaults of a container made from it.
    pub config: ImageRunConfig,
}

/// moby's `merge` of an image's config into a create request's: the image's variables the
/// request does not set, its exposed ports, and its working directory, user and stop signal
/// when the request has none; its `CMD` when the request has neither a command nor an
/// entrypoint, and its `ENTRYPOINT` when the request has none (`[""]` is then none, below).
pub fn merge_image(config: &mut ContainerConfig, image: &ImageRunConfig) {
    let name = |kv: &str| kv.split('=').next().unwrap_or_default().to_string();
    let env = config.env.get_or_insert_default();
    let set: BTreeSet<String> = env.iter().map(|kv| name(kv)).collect();
    for kv in image.env.iter().flatten() {
        if !set.contains(&name(kv)) {
            env.push(kv.clone());
        }
    }
    if let Some(ports) = &image.exposed_ports {
        let mine = config.exposed_ports.get_or_insert_with(Default::default);
        for p in ports.keys() {
            mine.entry(p.clone()).or_default();
        }
    }
    if let Some(volumes) = &image.volumes {
        let mine = config.volumes.get_or_insert_with(Default::default);
        for v in volumes.keys() {
            mine.entry(v.clone()).or_default();
        }
    }
    // moby's `merge`: the image's labels where the container has none of that key; `null`
    // stays `null` without image labels.
    if let Some(labels) = &image.labels {
        let mine = config.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            mine.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if config.working_dir.is_empty() {
        config.working_dir = image.working_dir.clone();
    }
    if config.user.is_empty() {
        config.user = image.user.clone();
    }
    if config.stop_signal.as_deref().unwrap_or_default().is_empty() && !image.stop_signal.is_empty()
    {
        config.stop_signal = Some(image.stop_signal.clone());
    }
    // moby's `merge`: a request without an entrypoint (none, or an empty list) takes the
    // image's command when it has none; only one with none takes the image's entrypoint.
    if config.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if config.cmd.is_empty() {
            config.cmd = image.cmd.clone().unwrap_or_default();
        }
        if config.entrypoint.is_none() {
            config.entrypoint.clone_from(&image.entrypoint);
        }
    }
}

/// The entrypoint a container is made with (after [`merge_image`]): the request's, except that
/// `[""]` (`--entrypoint ""`) is none, as in moby's `mergeAndVerifyConfig`. `None` and `[]`
/// start the same command; `inspect` shows them apart (`null`, `[]`).
fn entrypoint_of(config: &ContainerConfig) -> Option<Vec<String>> {
    config.entrypoint.clone().filter(|e| *e != [""])
}

impl Known<'_> {
    /// The container a name, full ID or unambiguous ID prefix names, in Docker's words.
    pub fn container(&self, key: &str) -> Result<&Record> {
        let keys: Vec<(&str, &str)> =
            self.containers.iter().map(|r| (r.id.as_str(), r.name.as_str())).collect();
        find_in(&keys, key).map(|i| &self.containers[i])
    }
}

/// The index among `ids_and_names` of the container `key` names: a name (with or without its
/// leading `/`), a full ID, or an unambiguous ID prefix; else dockerd's words (`No such
/// container`, and its 400 for an empty key and its 500 for an ambiguous prefix).
pub fn find_in(ids_and_names: &[(&str, &str)], key: &str) -> Result<usize> {
    if key.is_empty() {
        return Err(Error::invalid("invalid name or ID supplied: \"\""));
    }
    let asked = key;
    let key = key.strip_prefix('/').unwrap_or(key);
    if key.is_empty() {
        return Err(Error::no_such_container(asked));
    }
    if let Some(i) = ids_and_names.iter().position(|(id, name)| *id == key || *name == key) {
        return Ok(i);
    }
    let mut matches = ids_and_names.iter().enumerate().filter(|(_, (id, _))| id.starts_with(key));
    match (matches.next(), matches.next()) {
        (Some((i, _)), None) => Ok(i),
        (None, _) => Err(Error::no_such_container(key)),
        // dockerd's truncindex error, which it passes on as a system error.
        _ => Err(Error::internal(format!("Multiple IDs found with provided prefix: {key}"))),
    }
}

/// `-p` specs from Docker's `PortBindings` (what Docker's clients send): one spec per host
/// binding, `HOSTIP:HOSTPORT:PORT/PROTO`.
fn specs_of_bindings(bindings: &PortMap) -> Vec<String> {
    let mut specs = Vec::new();
    for (port, list) in bindings {
        let port = if port.contains('/') { port.clone() } else { format!("{port}/tcp") };
        for b in list {
            let ip = if b.host_ip.contains(':') && !b.host_ip.starts_with('[') {
                format!("[{}]", b.host_ip)
            } else {
                b.host_ip.clone()
            };
            specs.push(match (ip.is_empty(), b.host_port.is_empty()) {
                (true, true) => port.clone(),
                (true, false) => format!("{}:{port}", b.host_port),
                (false, _) => format!("{ip}:{}:{port}", b.host_port),
            });
        }
    }
    specs
}

/// The mounts a create asks for, resolved as moby's `registerMountPoints` and
/// `createContainerOSSpecificSettings`: `--volumes-from` first (the last one wins a path),
/// then `-v` and `--mount` over them (twice one path is refused), `--tmpfs`, then the
/// anonymous volumes of `Config.Volumes` where nothing is mounted yet. Anonymous volumes
/// have no name yet: [`Daemon::create`] makes them.
fn resolve_mounts(
    binds: &[String],
    request: &MountRequest,
    known: &Known<'_>,
) -> Result<Vec<Mounted>> {
    use std::collections::btree_map::Entry;
    let invalid = |e: String| Error::invalid(e);
    let mut by_dst: BTreeMap<String, Mounted> = BTreeMap::new();
    for spec in &request.volumes_from {
        let (name, read_only) = mounts::parse_volumes_from(spec).map_err(invalid)?;
        let source = known.container(name)?;
        for m in source.mounts.iter().filter(|m| m.spec.kind != Kind::Tmpfs) {
            let mut m = m.clone();
            if let Some(ro) = read_only {
                m.spec.read_only = ro;
            }
            m.spec.mode = String::new();
            by_dst.insert(m.spec.destination.clone(), m);
        }
    }
    let duplicate = |dst: &str| Error::invalid(format!("Duplicate mount point: {dst}"));
    let mut given: BTreeSet<String> = BTreeSet::new();
    let binds = binds.iter().map(|b| mounts::parse_bind(b));
    let api = request.mounts.iter().map(|m| {
        let spec = mounts::from_api(m)?;
        if spec.kind == Kind::Bind && !std::path::Path::new(&spec.source).exists() {
            return Err(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                spec.source
            ));
        }
        Ok(spec)
    });
    for spec in binds.chain(api) {
        let spec = spec.map_err(invalid)?;
        if spec.kind == Kind::Volume && !spec.source.is_empty() {
            mounts::check_volume_name(&spec.source)
                .map_err(|e| Error::invalid(format!("create {}: {e}", spec.source)))?;
        }
        if !given.insert(spec.destination.clone()) {
            return Err(duplicate(&spec.destination));
        }
        let anonymous = spec.kind == Kind::Volume && spec.source.is_empty();
        by_dst.insert(spec.destination.clone(), Mounted { spec, anonymous });
    }
    for (dst, options) in &request.tmpfs {
        let spec = mounts::tmpfs(dst, options).map_err(invalid)?;
        match by_dst.entry(spec.destination.clone()) {
            Entry::Occupied(o) if given.contains(o.key()) && o.get().spec.kind != Kind::Tmpfs => {
                return Err(duplicate(o.key()));
            }
            Entry::Occupied(mut o) => {
                o.insert(Mounted { spec, anonymous: false });
            }
            Entry::Vacant(v) => {
                v.insert(Mounted { spec, anonymous: false });
            }
        }
    }
    for dst in &request.volumes {
        let clean = mounts::clean(dst);
        if dst.is_empty() || by_dst.contains_key(&clean) {
            continue;
        }
        let spec = mounts::Spec {
            kind: Kind::Volume,
            destination: if dst.starts_with('/') { clean } else { format!("/{dst}") },
            ..mounts::Spec::default()
        };
        by_dst.insert(spec.destination.clone(), Mounted { spec, anonymous: true });
    }
    Ok(by_dst.into_values().collect())
}

/// Checks a create request against what is `known` and makes the new container's record
/// (`id`, created `now`), in Docker's words and order for each refusal.
pub fn plan(
    name: Option<&str>,
    req: ContainerCreateRequest,
    known: &Known<'_>,
    id: String,
    now: Time,
) -> Result<Record> {
    let ContainerCreateRequest { mut config, host_config: hc, networking_config } = req;
    if let Some(found) = known.image {
        merge_image(&mut config, &found.config);
    }
    let entrypoint = entrypoint_of(&config);
    // moby's validateContainerConfig comes first: the working directory, the stop signal,
    // each variable's name; then the command.
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    }
    let stop_signal = config.stop_signal.unwrap_or_default();
    if !stop_signal.is_empty() {
        crate::supervisor::rules::signal::parse(&stop_signal).map_err(Error::invalid)?;
    }
    let env = config.env.take().unwrap_or_default();
    check_env_names(&env)?;
    let command: Vec<String> = entrypoint.iter().flatten().chain(&config.cmd).cloned().collect();
    if command.is_empty() {
        return Err(Error::invalid("No command specified"));
    }
    let port_specs =
        if hc.port_specs.is_empty() { specs_of_bindings(&hc.port_bindings) } else { hc.port_specs };
    for spec in &port_specs {
        PortSpec::parse(spec).map_err(|e| Error::invalid(e.to_string()))?;
    }
    let exposed: Vec<String> = config.exposed_ports.unwrap_or_default().into_keys().collect();
    for spec in &exposed {
        parse_expose(spec).map_err(|e| Error::invalid(e.to_string()))?;
    }
    let endpoints = &networking_config.endpoints_config;
    let mut mode = NetworkMode::parse(&hc.network_mode);
    let mut attachments = Vec::new();
    match &mode {
        NetworkMode::Container(target) => {
            if !config.hostname.is_empty() {
                return Err(Error::invalid("conflicting options: hostname and the network mode"));
            }
            if !port_specs.is_empty() || hc.publish_all_ports {
                return Err(Error::invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            mode = NetworkMode::Container(known.container(target)?.id.clone());
        }
        NetworkMode::User(wanted) => {
            let net = crate::supervisor::rules::networks::find(known.networks, wanted)
                .ok_or_else(|| Error::not_found(format!("network {wanted} not found")))?;
            mode = NetworkMode::User(net.name.clone());
            let aliases =
                endpoints.values().flat_map(|e| e.aliases.iter().flatten().cloned()).collect();
            let asked = endpoints
                .values()
                .filter_map(|e| e.ipam_config.as_ref())
                .map(|c| c.ipv4_address.as_str())
                .find(|a| !a.is_empty());
            let ipv4_address = match asked {
                None => None,
                Some(_) if !net.user_subnet => {
                    return Err(Error::invalid(
                        "user specified IP address is supported only when connecting to networks with user configured subnets",
                    ));
                }
                Some(a) => match a.parse::<Ipv4Addr>() {
                    Ok(ip) if net.subnet.contains(ip) => Some(ip),
                    _ => {
                        return Err(Error::invalid(format!(
                            "Invalid address {a}: It does not belong to any of this network's subnets"
                        )));
                    }
                },
            };
            // Links given for the network itself (compose and the docker CLI send them there):
            // names for its DNS, as `HostConfig.Links` are on a user-defined network.
            let endpoint_links: Vec<String> =
                endpoints.values().flat_map(|e| e.links.iter().flatten().cloned()).collect();
            attachments.push(Attachment {
                network: net.name.clone(),
                aliases,
                ip: None,
                ipv4_address,
                links: check_links(&mode, &endpoint_links, known)?,
            });
        }
        NetworkMode::Bridge | NetworkMode::Host | NetworkMode::None => {}
    }
    if attachments.is_empty() {
        if endpoints
            .values()
            .filter_map(|e| e.ipam_config.as_ref())
            .any(|c| !c.ipv4_address.is_empty())
        {
            return Err(Error::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if endpoints.values().any(|e| e.aliases.as_ref().is_some_and(|a| !a.is_empty())) {
            return Err(Error::invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
    }
    let binds = hc.binds.unwrap_or_default();
    let mount_request = MountRequest {
        mounts: hc.mounts.unwrap_or_default(),
        tmpfs: hc.tmpfs.unwrap_or_default(),
        volumes_from: hc.volumes_from.unwrap_or_default(),
        volumes: config.volumes.take().unwrap_or_default().into_keys().collect(),
        shm_size: hc.shm_size,
        ulimits: hc.ulimits.unwrap_or_default(),
    };
    for u in &mount_request.ulimits {
        let text = format!("{}={}:{}", u.name, u.soft, u.hard);
        mounts::parse_ulimit(&text).map_err(Error::invalid)?;
    }
    if mount_request.shm_size < 0 {
        return Err(Error::invalid("SHM size can not be less than 0"));
    }
    let mounts = resolve_mounts(&binds, &mount_request, known)?;
    let proxy_protocol = match hc.proxy_protocol.as_str() {
        "" => None,
        v => Some(v.parse::<Version>().map_err(Error::invalid)?),
    };
    let restart_policy = RestartPolicy::parse(&hc.restart_policy.value())
        .map_err(|e| Error::invalid(e.to_string()))?;
    let mut links = check_links(&mode, &hc.links.unwrap_or_default(), known)?;
    // On a user-defined network a link is the network's (a name for its DNS, no variables
    // or hosts lines): kept with the endpoint's, as the docker CLI copies them there, and
    // `HostConfig.Links` stays empty, as dockerd shows it.
    if let (NetworkMode::User(_), Some(first)) = (&mode, attachments.first_mut()) {
        for link in links.drain(..) {
            if !first.links.contains(&link) {
                first.links.push(link);
            }
        }
    }
    restart_policy.check_auto_remove(hc.auto_remove).map_err(|e| Error::invalid(e.to_string()))?;
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) => check_name(n, known.containers)?,
        None => {
            let taken: BTreeSet<String> = known.containers.iter().map(|c| c.name.clone()).collect();
            names::random_name(&taken)
        }
    };
    let hostname = if config.hostname.is_empty() {
        id.get(..12).unwrap_or(&id).to_string()
    } else {
        config.hostname
    };
    check_startable(&hostname, &env, &command)?;
    let publish = if mode.is_bridge() || !attachments.is_empty() { port_specs } else { Vec::new() };
    let security = Security {
        cap_add: hc.cap_add.unwrap_or_default(),
        cap_drop: hc.cap_drop.unwrap_or_default(),
        privileged: hc.privileged,
        security_opt: hc.security_opt.unwrap_or_default(),
        read_only: hc.readonly_rootfs,
    };
    confine::check(&security.cap_add, &security.cap_drop).map_err(Error::invalid)?;
    confine::security_opts(&security.security_opt, security.privileged).map_err(Error::invalid)?;
    let image = known.image.map(|f| f.image.clone());
    if image.is_none() && hc.rootfs.is_empty() && !config.image.is_empty() {
        return Err(crate::supervisor::image::store::no_such_image(&config.image));
    }
    if !hc.rootfs.is_empty() {
        if image.is_some() {
            return Err(Error::invalid("conflicting options: --rootfs and an image"));
        }
        if !hc.rootfs.starts_with('/') || !std::path::Path::new(&hc.rootfs).is_dir() {
            return Err(Error::invalid(format!(
                "invalid --rootfs {:?}: it must be the absolute path of a directory",
                hc.rootfs
            )));
        }
    }
    // moby's mergeAndVerifyLogConfig, after the image is found (the daemon's default is merged
    // in by `Daemon::create`).
    let log_config = hc.log_config.unwrap_or_default();
    crate::supervisor::rules::logging::check(&log_config.kind, &log_config.config)
        .map_err(Error::invalid)?;
    let entrypoint = image.as_ref().and(entrypoint);
    let cmd_kept = image.as_ref().map(|_| config.cmd.clone());
    let mut cmd = command.into_iter();
    let stdio = StdioConfig {
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
    };
    Ok(Record {
        id,
        name,
        created: now,
        path: cmd.next().unwrap_or_default(),
        args: cmd.collect(),
        env,
        hostname,
        network_mode: mode,
        publish,
        expose: exposed,
        publish_all: hc.publish_all_ports,
        auto_remove: hc.auto_remove,
        init: hc.init.unwrap_or(false),
        stop_signal,
        stop_timeout: config.stop_timeout,
        binds,
        mounts,
        mount_request,
        proxy_protocol,
        source_ip_transparent: hc.source_ip_transparent,
        working_dir: config.working_dir,
        state: RunState {
            status: Status::Created,
            started_at: Time::ZERO,
            finished_at: Time::ZERO,
            ..RunState::default()
        },
        ip: None,
        ports: Vec::new(),
        restart_policy,
        restart_policy_unnamed: hc.restart_policy.name.is_empty(),
        restart_count: 0,
        stopped_by_user: false,
        links,
        networks: attachments,
        image,
        rootfs: hc.rootfs,
        runtime: hc.runtime,
        entrypoint,
        cmd: cmd_kept,
        user: config.user,
        security,
        stdio,
        resources: hc.resources,
        cgroup: String::new(),
        labels: config.labels,
        log_config,
    })
}

/// A name asked for (a leading `/` allowed), checked as moby checks it at create and rename:
/// Docker's words for one it refuses, or one another container has.
pub(super) fn check_name(n: &str, containers: &[Record]) -> Result<String> {
    let n = n.strip_prefix('/').unwrap_or(n);
    if !names::valid(n) {
        return Err(Error::invalid(format!(
            "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    if let Some(other) = containers.iter().find(|c| c.name == n) {
        return Err(Error::conflict(format!(
            "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
            other.id
        )));
    }
    Ok(n.to_string())
}

/// moby's `opts.ValidateEnv` at create: a variable needs a name, so `""` and `=x` are
/// refused (a bare `NAME` is not: it unsets).
fn check_env_names(env: &[String]) -> Result<()> {
    match env.iter().find(|kv| kv.split('=').next().is_none_or(str::is_empty)) {
        Some(kv) => Err(Error::invalid(format!("invalid environment variable: {kv}"))),
        None => Ok(()),
    }
}

/// The longest hostname `sethostname(2)` takes, in bytes (the kernel's `__NEW_UTS_LEN`).
pub const HOSTNAME_MAX: usize = 64;

/// What Docker 20.10 accepts at create and runc refuses only at start, refused at create in
/// runc's words (without Docker's `failed to create shim task: OCI runtime create failed: …`
/// prefix) and in the order runc meets them: a NUL in a variable (`HOSTNAME` first, then the
/// ones given), a hostname longer than [`HOSTNAME_MAX`] bytes, a NUL in the command. For a NUL
/// in an argument Docker's container starts and its `exec` fails with the resolved path
/// (`exec /bin/echo: invalid argument`); the command is named here as given.
fn check_startable(hostname: &str, env: &[String], cmd: &[String]) -> Result<()> {
    let hostname_var = format!("HOSTNAME={hostname}");
    for kv in std::iter::once(&hostname_var).chain(env) {
        let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
        let part = if name.contains('\0') {
            "name"
        } else if value.contains('\0') {
            "value"
        } else {
            continue;
        };
        return Err(Error::invalid(format!(
            "environment variable {part} can't contain null(\\x00): {}",
            format::go_quote(kv)
        )));
    }
    if hostname.len() > HOSTNAME_MAX {
        return Err(Error::invalid("sethostname: invalid argument"));
    }
    if let Some((program, args)) = cmd.split_first() {
        if program.contains('\0') {
            return Err(Error::invalid(format!(
                "exec: {}: executable file not found in $PATH",
                format::go_quote(program)
            )));
        }
        if args.iter().any(|a| a.contains('\0')) {
            return Err(Error::invalid(format!("exec {program}: invalid argument")));
        }
    }
    Ok(())
}

/// Parses `--link` values at create time: each source must exist (Docker's `could not get
/// container for NAME: …`); links are stored by the source's name.
fn check_links(mode: &NetworkMode, values: &[String], known: &Known<'_>) -> Result<Vec<String>> {
    let mut parsed = Vec::new();
    for value in values {
        parsed.push(Link::parse(value).map_err(|e| Error::invalid(e.to_string()))?);
    }
    links::check_network_mode(&mode.to_string(), &parsed)
        .map_err(|e| Error::invalid(e.to_string()))?;
    let mut stored = Vec::new();
    for link in parsed {
        let source = known.container(&link.name).map_err(|_| {
            Error::not_found(LinkError::NoSuchContainer { name: link.name.clone() }.to_string())
        })?;
        stored.push(Link { name: source.name.clone(), alias: link.alias }.to_string());
    }
    Ok(stored)
}

impl Daemon {
    /// Creates a container (not started). Returns its ID and Docker's warnings (resource
    /// limits the host cannot apply, dropped as Docker drops them).
    pub fn create(
        &self,
        name: Option<&str>,
        mut req: ContainerCreateRequest,
    ) -> Result<(String, Vec<String>)> {
        let checked = resources::check(&req.host_config.resources, &self.host_limits, false)
            .map_err(Error::invalid)?;
        req.host_config.resources = resources::with_defaults(checked.resources);
        // Last of moby's checks of the host config, before the image is looked for.
        let runtime = Runtime::parse(&req.host_config.runtime).map_err(Error::invalid)?;
        req.host_config.runtime = runtime.name().into();
        let asked = req.host_config.log_config.take().unwrap_or_default();
        let (kind, config) = crate::supervisor::rules::logging::merge(
            &asked.kind,
            &asked.config,
            &self.log_config.kind,
            &self.log_config.config,
        );
        req.host_config.log_config = Some(LogConfig { kind, config });
        let id = names::new_id().map_err(Error::internal)?;
        let image = match req.config.image.as_str() {
            "" => None,
            _ if !req.host_config.rootfs.is_empty() => None,
            name => Some(self.find_image(name)?),
        };
        let networks: Vec<Network> = self.user_networks().iter().map(|n| n.net.clone()).collect();
        // Held from the checks to the push, so two creates cannot take one name.
        let mut containers = self.containers.lock().map_err(Error::internal)?;
        let records: Vec<Record> = containers.iter().map(|c| c.record()).collect();
        let known = Known { containers: &records, networks: &networks, image: image.as_ref() };
        let mut record = plan(name, req, &known, id.clone(), Time::now())?;
        let made = self.make_volumes(&mut record)?;
        if let Err(e) = self.store.save(&record) {
            // Nothing of a failed create stays: its directory goes (a full disk leaves one),
            // and the volumes made for it.
            let _ = self.store.remove(&id);
            self.unmake_volumes(&made);
            return Err(Error::internal(e));
        }
        self.events.container(&record, "create", &[]);
        containers.push(Container::new(record));
        Ok((id, checked.warnings))
    }

    /// The volumes a new container's mounts name, made where missing; anonymous ones get
    /// their names. The names of the volumes made (removed again if the create fails).
    fn make_volumes(&self, record: &mut Record) -> Result<Vec<String>> {
        let mut made = Vec::new();
        for m in record.mounts.iter_mut().filter(|m| m.spec.kind == Kind::Volume) {
            let name = Some(m.spec.source.as_str()).filter(|n| !n.is_empty());
            let existed = name.is_some_and(|n| self.volumes.get(n).is_ok());
            let v = match self.volumes.create(name, "", None, None) {
                Ok(v) => v,
                Err(e) => {
                    self.unmake_volumes(&made);
                    return Err(e);
                }
            };
            if !existed {
                made.push(v.name.clone());
            }
            // dockerd's local driver announces each volume a create names, made or not.
            self.events.volume(&v.name, "create", &[]);
            m.spec.source = v.name;
        }
        Ok(made)
    }

    fn unmake_volumes(&self, names: &[String]) {
        for name in names {
            if self.volumes.remove(name, true, &[]).is_ok() {
                self.events.volume(name, "destroy", &[]);
            }
        }
    }

    /// The image a create names: its ID, layers and config, its layers unpacked for the
    /// container's filesystem.
    fn find_image(&self, name: &str) -> Result<FoundImage> {
        let id = self.images.resolve(name)?;
        let config = self
            .images
            .config(&id)
            .ok_or_else(|| crate::supervisor::image::store::no_such_image(name))?;
        let layers: Vec<String> = self.images.layers(&id).into_iter().map(|l| l.diff_id).collect();
        self.images.unpack(&layers)?;
        Ok(FoundImage {
            image: ImageUse { name: name.to_string(), id, layers },
            config: config.config.clone().unwrap_or_default(),
        })
    }

    /// The container a name, full ID or unambiguous ID prefix names.
    /// Asked on every request that names a container: it reads each one's name without
    /// copying its record.
    pub fn find(&self, key: &str) -> Result<Arc<Container>> {
        let all = self.all();
        let names: Vec<String> = all.iter().map(|c| c.name()).collect();
        let keys: Vec<(&str, &str)> =
            all.iter().zip(&names).map(|(c, n)| (c.id.as_str(), n.as_str())).collect();
        find_in(&keys, key).map(|i| all[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::api::types::{
        EndpointIpamConfig, EndpointSettings, PortBinding, RestartPolicySpec,
    };
    use crate::supervisor::engine::ErrorKind;
    use crate::supervisor::engine::ipam::Subnet;

    fn record(id: char, name: &str) -> Record {
        let req = request(&["sleep", "1"]);
        let empty = Known { containers: &[], networks: &[], image: None };
        plan(Some(name), req, &empty, std::iter::repeat_n(id, 64).collect(), Time::now()).unwrap()
    }

    /// As moby's `merge` then `mergeAndVerifyConfig`, each checked against dockerd 20.10:
    /// `Entrypoint: []` is kept (`inspect` shows `[]`) and takes the image's command; `[""]`
    /// takes neither and is then none; `["", ""]` is kept as given; none takes both.
    #[test]
    fn an_image_s_command_and_entrypoint_as_moby_merges_them() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let image = ImageRunConfig {
            cmd: Some(strings(&["-c", "echo hi"])),
            entrypoint: Some(strings(&["sh"])),
            ..Default::default()
        };
        let merged = |entrypoint: Option<&[&str]>, cmd: &[&str]| {
            let mut config = ContainerConfig {
                entrypoint: entrypoint.map(strings),
                cmd: strings(cmd),
                ..Default::default()
            };
            merge_image(&mut config, &image);
            (entrypoint_of(&config), config.cmd)
        };
        let (sh, echo) = (Some(strings(&["sh"])), strings(&["-c", "echo hi"]));
        assert_eq!(merged(None, &[]), (sh.clone(), echo.clone()));
        assert_eq!(merged(None, &["x"]), (sh, strings(&["x"])));
        assert_eq!(merged(Some(&[]), &[]), (Some(vec![]), echo));
        assert_eq!(merged(Some(&[]), &["x"]), (Some(vec![]), strings(&["x"])));
        assert_eq!(merged(Some(&[""]), &[]), (None, vec![]));
        assert_eq!(merged(Some(&["", ""]), &[]), (Some(strings(&["", ""])), vec![]));
        assert_eq!(merged(Some(&["env"]), &[]), (Some(strings(&["env"])), vec![]));
    }

    fn request(cmd: &[&str]) -> ContainerCreateRequest {
        let mut req = ContainerCreateRequest::default();
        req.config.cmd = cmd.iter().map(|s| s.to_string()).collect();
        req
    }

    fn network(name: &str, user_subnet: bool) -> Network {
        Network {
            id: "9".repeat(64),
            name: name.into(),
            subnet: Subnet { network: Ipv4Addr::new(10, 9, 0, 0), prefix: 16 },
            gateway: Ipv4Addr::new(10, 9, 0, 1),
            user_subnet,
            created: String::new(),
            labels: Default::default(),
            attachable: false,
            options: Default::default(),
        }
    }

    fn id() -> String {
        "e".repeat(64)
    }

    fn now() -> Time {
        Time::now()
    }

    fn refused(req: ContainerCreateRequest, name: Option<&str>, known: &Known<'_>) -> Error {
        plan(name, req, known, "f".repeat(64), Time::now()).unwrap_err()
    }

    #[test]
    fn a_command_is_needed() {
        let known = Known { containers: &[], networks: &[], image: None };
        let e = refused(request(&[]), None, &known);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "No command specified")
        );
    }

    #[test]
    fn a_name_in_use_is_a_conflict_in_dockers_words() {
        let web = record('a', "web");
        let known = Known { containers: std::slice::from_ref(&web), networks: &[], image: None };
        let e = refused(request(&["true"]), Some("/web"), &known);
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(
            e.message.starts_with(
                "Conflict. The container name \"/web\" is already in use by container \"aaaa"
            ),
            "{e}"
        );
        let e = refused(request(&["true"]), Some("-bad"), &known);
        assert_eq!(
            e.message,
            "Invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn names_ids_and_prefixes_find_a_container_and_an_ambiguous_prefix_does_not() {
        let all = [record('a', "one"), record('b', "two")];
        let mut ab = record('a', "three");
        ab.id = format!("ab{}", "c".repeat(62));
        let all = [all[0].clone(), all[1].clone(), ab];
        let all: Vec<(&str, &str)> = all.iter().map(|r| (r.id.as_str(), r.name.as_str())).collect();
        assert_eq!(find_in(&all, "two").unwrap(), 1);
        assert_eq!(find_in(&all, "/two").unwrap(), 1);
        assert_eq!(find_in(&all, "bbb").unwrap(), 1);
        assert_eq!(find_in(&all, &"a".repeat(64)).unwrap(), 0);
        let e = find_in(&all, "a").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Internal, "Multiple IDs found with provided prefix: a")
        );
        assert_eq!(find_in(&all, "zz").unwrap_err().message, "No such container: zz");
        let e = find_in(&all, "").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "invalid name or ID supplied: \"\"")
        );
        assert_eq!(find_in(&all, "/").unwrap_err().message, "No such container: /");
    }

    #[test]
    fn a_random_name_avoids_the_names_taken_and_the_hostname_is_the_short_id() {
        let r = record('a', "web");
        let known = Known { containers: std::slice::from_ref(&r), networks: &[], image: None };
        let new = plan(None, request(&["true"]), &known, "b".repeat(64), Time::now()).unwrap();
        assert_ne!(new.name, "web");
        assert!(names::valid(&new.name));
        assert_eq!(new.hostname, "bbbbbbbbbbbb");
        assert_eq!(new.state.status, Status::Created);
        assert_eq!(new.network_mode, NetworkMode::Bridge);
    }

    #[test]
    fn container_mode_joins_by_full_id_and_refuses_ports_and_hostname() {
        let db = record('d', "db");
        let known = Known { containers: std::slice::from_ref(&db), networks: &[], image: None };
        let mut req = request(&["true"]);
        req.host_config.network_mode = "container:db".into();
        let r = plan(None, req.clone(), &known, "e".repeat(64), Time::now()).unwrap();
        assert_eq!(r.network_mode, NetworkMode::Container(db.id.clone()));
        let mut with_port = req.clone();
        with_port.host_config.port_specs = vec!["80".into()];
        assert_eq!(
            refused(with_port, None, &known).message,
            "conflicting options: port publishing and the container type network mode"
        );
        let mut with_host = req;
        with_host.config.hostname = "h".into();
        assert_eq!(
            refused(with_host, None, &known).message,
            "conflicting options: hostname and the network mode"
        );
        let mut missing = request(&["true"]);
        missing.host_config.network_mode = "container:nope".into();
        assert_eq!(refused(missing, None, &known).message, "No such container: nope");
    }

    #[test]
    fn user_networks_take_aliases_and_addresses_of_their_own_subnet_only() {
        let nets = [network("mine", true), network("auto", false)];
        let known = Known { containers: &[], networks: &nets, image: None };
        let endpoint = |ip: &str| EndpointSettings {
            aliases: Some(vec!["a1".into()]),
            ipam_config: Some(EndpointIpamConfig { ipv4_address: ip.into() }),
            ..EndpointSettings::default()
        };
        let mut req = request(&["true"]);
        req.host_config.network_mode = "mine".into();
        req.networking_config.endpoints_config.insert("mine".into(), endpoint("10.9.0.7"));
        let r = plan(None, req.clone(), &known, "e".repeat(64), Time::now()).unwrap();
        assert_eq!(r.network_mode, NetworkMode::User("mine".into()));
        assert_eq!(r.networks[0].aliases, ["a1"]);
        assert_eq!(r.networks[0].ipv4_address, Some(Ipv4Addr::new(10, 9, 0, 7)));
        let mut outside = req.clone();
        outside.networking_config.endpoints_config.insert("mine".into(), endpoint("10.8.0.7"));
        assert_eq!(
            refused(outside, None, &known).message,
            "Invalid address 10.8.0.7: It does not belong to any of this network's subnets"
        );
        let mut auto = req.clone();
        auto.host_config.network_mode = "auto".into();
        assert_eq!(
            refused(auto, None, &known).message,
            "user specified IP address is supported only when connecting to networks with user configured subnets"
        );
        let mut bridge = req.clone();
        bridge.host_config.network_mode = String::new();
        assert_eq!(
            refused(bridge, None, &known).message,
            "user specified IP address is supported on user defined networks only"
        );
        let mut gone = req;
        gone.host_config.network_mode = "gone".into();
        let e = refused(gone, None, &known);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NotFound, "network gone not found"));
    }

    #[test]
    fn bad_ports_policies_signals_and_directories_are_refused_in_dockers_words() {
        let known = Known { containers: &[], networks: &[], image: None };
        let mut req = request(&["true"]);
        req.host_config.port_specs = vec!["8080:99999".into()];
        assert_eq!(refused(req, None, &known).kind, ErrorKind::InvalidArgument);
        let mut req = request(&["true"]);
        req.host_config.restart_policy =
            RestartPolicySpec { name: "sometimes".into(), maximum_retry_count: 0 };
        assert_eq!(refused(req, None, &known).message, "invalid restart policy 'sometimes'");
        let mut req = request(&["true"]);
        req.host_config.restart_policy =
            RestartPolicySpec { name: "always".into(), maximum_retry_count: 0 };
        req.host_config.auto_remove = true;
        assert_eq!(refused(req, None, &known).kind, ErrorKind::InvalidArgument);
        let mut req = request(&["true"]);
        req.config.stop_signal = Some("SIGNOPE".into());
        assert_eq!(refused(req, None, &known).kind, ErrorKind::InvalidArgument);
        let mut req = request(&["true"]);
        req.config.working_dir = "srv".into();
        assert_eq!(
            refused(req, None, &known).message,
            "the working directory 'srv' is invalid, it needs to be an absolute path"
        );
        let mut req = request(&["true"]);
        req.host_config.links = Some(vec!["nope:db".into()]);
        assert_eq!(refused(req, None, &known).kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_variable_without_a_name_is_refused_in_dockers_words_and_order() {
        // Docker 20.10 (POST /containers/create): 400 "invalid environment variable: =x",
        // after the working directory and the stop signal, before the command and HostConfig.
        let known = Known { containers: &[], networks: &[], image: None };
        let with_env = |cmd: &[&str], env: &[&str]| {
            let mut req = request(cmd);
            req.config.env = Some(env.iter().map(|s| s.to_string()).collect());
            req
        };
        let e = refused(with_env(&["true"], &["A=1", "=x", ""]), None, &known);
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "invalid environment variable: =x")
        );
        assert_eq!(
            refused(with_env(&["true"], &[""]), None, &known).message,
            "invalid environment variable: "
        );
        let ok = plan(None, with_env(&["true"], &[" =x", "BARE", "A=b=c"]), &known, id(), now());
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(
            refused(with_env(&[], &["=x"]), None, &known).message,
            "invalid environment variable: =x"
        );
        let mut req = with_env(&["true"], &["=x"]);
        req.config.working_dir = "rel".into();
        assert_eq!(
            refused(req, None, &known).message,
            "the working directory 'rel' is invalid, it needs to be an absolute path"
        );
        let mut req = with_env(&["true"], &["=x"]);
        req.config.stop_signal = Some("SIGNOPE".into());
        assert_ne!(refused(req, None, &known).message, "invalid environment variable: =x");
        let mut req = with_env(&["true"], &["=x"]);
        req.host_config.restart_policy =
            RestartPolicySpec { name: "sometimes".into(), maximum_retry_count: 0 };
        req.host_config.port_specs = vec!["8080:99999".into()];
        req.host_config.network_mode = "container:nope".into();
        assert_eq!(refused(req, Some("-bad"), &known).message, "invalid environment variable: =x");
    }

    #[test]
    fn what_runc_refuses_at_start_is_refused_at_create_in_its_words() {
        let known = Known { containers: &[], networks: &[], image: None };
        let req = |cmd: &[&str], env: &[&str], hostname: &str| {
            let mut req = request(cmd);
            req.config.env = Some(env.iter().map(|s| s.to_string()).collect());
            req.config.hostname = hostname.into();
            req
        };
        let words = |r: ContainerCreateRequest| {
            let e = refused(r, None, &known);
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            e.message
        };
        assert_eq!(
            words(req(&["true"], &["A=a\0b"], "")),
            r#"environment variable value can't contain null(\x00): "A=a\x00b""#
        );
        assert_eq!(
            words(req(&["true"], &["A\0=b"], "")),
            r#"environment variable name can't contain null(\x00): "A\x00=b""#
        );
        assert_eq!(
            words(req(&["true"], &["A=a\0b"], "h\0")),
            r#"environment variable value can't contain null(\x00): "HOSTNAME=h\x00""#
        );
        // sethostname(2) takes 64 bytes: 65 ASCII or 33 two-byte characters are too many.
        for long in ["a".repeat(65), "é".repeat(33)] {
            assert_eq!(words(req(&["true"], &[], &long)), "sethostname: invalid argument");
        }
        for fits in ["a".repeat(64), "é".repeat(32), "a b_c".into()] {
            let r = plan(None, req(&["true"], &[], &fits), &known, id(), now()).unwrap();
            assert_eq!(r.hostname, fits);
        }
        assert_eq!(
            words(req(&["a\0b"], &[], "")),
            r#"exec: "a\x00b": executable file not found in $PATH"#
        );
        assert_eq!(words(req(&["/bin/echo", "a\0b"], &[], "")), "exec /bin/echo: invalid argument");
        // runc's order: the environment, the hostname, the command; create's checks before.
        let long = "a".repeat(65);
        assert!(words(req(&["a\0b"], &["A=\0"], &long)).starts_with("environment variable value"));
        assert_eq!(words(req(&["a\0b"], &[], &long)), "sethostname: invalid argument");
        assert_eq!(words(req(&["a\0b"], &["A=\0", "=x"], "")), "invalid environment variable: =x");
    }

    #[test]
    fn dockers_port_bindings_become_specs_and_host_mode_publishes_nothing() {
        let known = Known { containers: &[], networks: &[], image: None };
        let mut req = request(&["true"]);
        let b = |ip: &str, port: &str| PortBinding { host_ip: ip.into(), host_port: port.into() };
        req.host_config.port_bindings.insert("80/tcp".into(), vec![b("", "8080"), b("::1", "")]);
        req.host_config.port_bindings.insert("53/udp".into(), vec![b("127.0.0.1", "53")]);
        req.host_config.port_bindings.insert("81".into(), vec![b("", "")]);
        let r = plan(None, req.clone(), &known, "e".repeat(64), Time::now()).unwrap();
        assert_eq!(r.publish, ["127.0.0.1:53:53/udp", "8080:80/tcp", "[::1]::80/tcp", "81/tcp"]);
        req.host_config.network_mode = "host".into();
        let r = plan(None, req, &known, "e".repeat(64), Time::now()).unwrap();
        assert!(r.publish.is_empty());
        assert_eq!(r.network_mode, NetworkMode::Host);
    }

    #[test]
    fn links_are_stored_by_the_sources_name() {
        let db = record('d', "db");
        let known = Known { containers: std::slice::from_ref(&db), networks: &[], image: None };
        let mut req = request(&["true"]);
        req.host_config.links = Some(vec![format!("{}:alias", &db.id[..10])]);
        let r = plan(None, req, &known, "e".repeat(64), Time::now()).unwrap();
        assert_eq!(r.links, ["db:alias"]);
    }

    #[test]
    fn links_on_a_user_network_are_the_endpoints() {
        let db = record('d', "db");
        let nets = [network("front", false)];
        let known = Known { containers: std::slice::from_ref(&db), networks: &nets, image: None };
        let mut req = request(&["true"]);
        req.host_config.network_mode = "front".into();
        req.host_config.links = Some(vec!["db:alias".into()]);
        let endpoint = EndpointSettings {
            links: Some(vec!["db:alias".into(), "db:other".into()]),
            ..EndpointSettings::default()
        };
        req.networking_config.endpoints_config.insert("front".into(), endpoint);
        let r = plan(None, req, &known, id(), now()).unwrap();
        assert!(r.links.is_empty(), "HostConfig.Links stays empty, as dockerd shows it");
        assert_eq!(r.networks[0].links, ["db:alias", "db:other"]);
    }
}
