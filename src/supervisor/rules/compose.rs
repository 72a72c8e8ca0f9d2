//! The Compose file subset `cproxy compose` runs: `services.*.command`, `ports`, `expose`,
//! `environment`, `links`, `networks`, `network_mode`, `restart`, `init`, `stop_signal`,
//! `stop_grace_period`, `volumes` (bind mounts), `x-cproxy-source-ip-transparent` and
//! `depends_on`, and the top-level `networks`, read into plain service specs in start order.
//!
//! Pure: the file's text (and the directory relative bind mounts start from) in, a [`Project`]
//! out. Every value is checked with the parser the matching `run` flag uses ([`PortSpec`],
//! [`parse_expose`], [`Link`], [`RestartPolicy`]), so a file fails at `up` in the words the flag
//! would. A key outside the subset is a [`Warning`] naming it; a bad value a [`ComposeError`]
//! naming the key and its line. The YAML is read with saphyr, which keeps each node's position.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use saphyr::{MarkedYaml, Scalar, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::Parser;

use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::rules::links::Link;
use crate::supervisor::rules::resources::Resources;
use crate::supervisor::rules::restart::RestartPolicy;

/// A compose file, read: its services in the order they are to be started (each after what it
/// depends on), its networks, and what was ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Project {
    /// The services, dependencies first; among independent services, file order.
    pub services: Vec<Service>,
    /// The top-level `networks`, in file order.
    pub networks: Vec<ProjectNetwork>,
    /// Keys outside the subset, which are ignored.
    pub warnings: Vec<Warning>,
}

/// One service: what `cproxy run` is given for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// The service's name (the key under `services`).
    pub name: String,
    /// `image`: the image the container is made from; empty for a host command (the
    /// container's root is then the host's `/`, as `run --rootfs /`).
    pub image: String,
    /// The command and its arguments; a string is split as a shell would split it (quotes and
    /// backslashes, no expansion). Empty when not given.
    pub command: Vec<String>,
    /// `-p` specs, as the file writes them (a long-syntax entry as the equivalent short one),
    /// each valid for [`PortSpec::parse`].
    pub ports: Vec<String>,
    /// `--expose` values, each valid for [`parse_expose`].
    pub expose: Vec<String>,
    /// `-e` values in file order: `KEY=VALUE`, or `KEY` alone (a map entry without a value)
    /// for "take it from the environment `cproxy compose` runs in", as `-e KEY` does.
    pub environment: Vec<String>,
    /// `--link` values.
    pub links: Vec<Link>,
    /// The networks the service joins, with its aliases on each. Empty (and no
    /// `network_mode`) means the project's default network, as Compose does.
    pub networks: Vec<ServiceNetwork>,
    /// `network_mode`: `bridge`, `host`, `none`, `container:NAME` or `service:NAME`.
    pub network_mode: Option<String>,
    /// `restart`.
    pub restart: RestartPolicy,
    /// `init`: run with `--init`.
    pub init: bool,
    /// `x-cproxy-source-ip-transparent`: `run --source-ip-transparent` (an extension key,
    /// which Docker's compose ignores).
    pub source_ip_transparent: bool,
    /// `stop_signal`: `run --stop-signal` (checked as Docker's names).
    pub stop_signal: Option<String>,
    /// `stop_grace_period`: `run --stop-timeout`, in whole seconds (a Go duration, as Compose
    /// reads it; what is left below a second is dropped).
    pub stop_grace_period: Option<u64>,
    /// Bind mounts, `HOSTDIR:DIR[:ro]` with a relative host path made absolute.
    pub volumes: Vec<BindMount>,
    /// The services this one is started after (`depends_on`, plus those it links to or shares
    /// a network namespace with), in file order.
    pub depends_on: Vec<String>,
    /// Resource limits: `mem_limit`, `memswap_limit`, `mem_reservation`, `cpus`,
    /// `cpu_shares`, `cpu_quota`, `cpu_period`, `cpuset`, `pids_limit`, `oom_kill_disable`,
    /// `deploy.resources` (`limits.cpus/memory/pids`, `reservations.memory`) and
    /// `blkio_config`, checked by the daemon as `run`'s flags are.
    pub resources: Resources,
    /// `logging`: `driver` and `options` (`--log-driver`, `--log-opt`), the driver and the
    /// option names checked as the daemon checks them.
    pub logging: Option<crate::supervisor::api::types::LogConfig>,
}

/// A service's membership of one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// The network's key under the top-level `networks`.
    pub name: String,
    /// `--network-alias` values on it.
    pub aliases: Vec<String>,
}

/// A bind mount: `-v SOURCE:TARGET[:ro]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    /// The host path, absolute.
    pub source: PathBuf,
    /// The path inside the container, absolute.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// One top-level network: `network create [--subnet] [--gateway] NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectNetwork {
    /// Its key under `networks`.
    pub name: String,
    /// `ipam.config[0].subnet`.
    pub subnet: Option<String>,
    /// `ipam.config[0].gateway`.
    pub gateway: Option<String>,
    /// `external: true`: it exists already and is neither created nor removed.
    pub external: bool,
}

/// A key outside the supported subset; it is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The key's path, as `services.web.build`.
    pub key: String,
    /// Its line (from 1).
    pub line: usize,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {} is not supported by cproxy compose and is ignored",
            self.line, self.key
        )
    }
}

/// A file that cannot be run: the key (path, as `services.web.ports[0]`) and line of the bad
/// value, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeError {
    /// The key's path; empty for a YAML syntax error.
    pub key: String,
    /// The line (from 1).
    pub line: usize,
    /// What is wrong, in the words of the matching `run` flag where it has them.
    pub message: String,
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.key, self.message)
        }
    }
}

impl std::error::Error for ComposeError {}

type Node<'a> = MarkedYaml<'a>;

fn line(node: &Node) -> usize {
    node.span.start.line()
}

fn error(key: &str, node: &Node, message: impl fmt::Display) -> ComposeError {
    ComposeError { key: key.to_string(), line: line(node), message: message.to_string() }
}

/// A node with its tag, if any, looked through.
fn untagged<'n, 'a>(node: &'n Node<'a>) -> &'n Node<'a> {
    match &node.data {
        YamlData::Tagged(_, inner) => untagged(inner),
        _ => node,
    }
}

/// An empty value, `~` or `null` (plain, not quoted).
fn is_null(node: &Node) -> bool {
    match &untagged(node).data {
        YamlData::Representation(s, ScalarStyle::Plain, _) => {
            matches!(s.as_ref(), "" | "~" | "null" | "Null" | "NULL")
        }
        YamlData::Value(Scalar::Null) => true,
        _ => false,
    }
}

/// A scalar's text exactly as written (the file is loaded without resolving scalars, so
/// `PG_VERSION: 9.30` stays `9.30` and `restart: no` stays `no`).
fn scalar(node: &Node) -> Option<String> {
    match &untagged(node).data {
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// `true` or `false`, as YAML 1.2 writes them.
fn boolean(key: &str, node: &Node) -> Result<bool, ComposeError> {
    match string(key, node)?.as_str() {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        other => Err(error(key, node, format!("must be true or false, not {other:?}"))),
    }
}

fn string(key: &str, node: &Node) -> Result<String, ComposeError> {
    scalar(node).ok_or_else(|| error(key, node, "must be a string"))
}

/// The entries of a mapping, keys as text.
fn mapping<'n, 'a>(
    key: &str,
    node: &'n Node<'a>,
) -> Result<Vec<(String, &'n Node<'a>, &'n Node<'a>)>, ComposeError> {
    match &untagged(node).data {
        YamlData::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let name = scalar(k).ok_or_else(|| error(key, k, "keys must be strings"))?;
                Ok((name, k, v))
            })
            .collect(),
        _ => Err(error(key, node, "must be a mapping")),
    }
}

fn sequence<'n, 'a>(key: &str, node: &'n Node<'a>) -> Result<&'n [Node<'a>], ComposeError> {
    match &untagged(node).data {
        YamlData::Sequence(s) => Ok(s),
        _ => Err(error(key, node, "must be a list")),
    }
}

/// A list of strings, or a single string where Compose allows one.
fn strings(key: &str, node: &Node) -> Result<Vec<(String, usize)>, ComposeError> {
    sequence(key, node)?
        .iter()
        .enumerate()
        .map(|(i, item)| Ok((string(&format!("{key}[{i}]"), item)?, line(item))))
        .collect()
}

/// Reads a compose file. `project_dir` is where relative bind-mount sources start from (the
/// file's directory, as Compose has it).
pub fn parse(text: &str, project_dir: &Path) -> Result<Project, ComposeError> {
    let syntax = |e: &saphyr::ScanError| ComposeError {
        key: String::new(),
        line: e.marker().line(),
        message: e.info().to_string(),
    };
    let mut loader: YamlLoader<Node> = YamlLoader::default();
    loader.early_parse(false);
    Parser::new_from_str(text).load(&mut loader, true).map_err(|e| syntax(&e))?;
    if let Some(e) = loader.error() {
        return Err(syntax(e));
    }
    let docs = loader.into_documents();
    let Some(root) = docs.first() else {
        return Err(ComposeError {
            key: String::new(),
            line: 1,
            message: "empty compose file".into(),
        });
    };
    let mut project = Project::default();
    let mut services_node = None;
    let mut networks_node = None;
    for (key, k, v) in mapping("", root)? {
        match key.as_str() {
            "services" => services_node = Some(v),
            "networks" => networks_node = Some(v),
            // Compose itself ignores these (the file format has no versions any more).
            "version" | "name" => {}
            _ => project.warnings.push(Warning { key, line: line(k) }),
        }
    }
    if let Some(node) = networks_node.filter(|n| !is_null(n)) {
        for (name, _, v) in mapping("networks", node)? {
            let network = parse_network(&name, v, &mut project.warnings)?;
            project.networks.push(network);
        }
    }
    let Some(services_node) = services_node.filter(|n| !is_null(n)) else {
        return Err(error("services", root, "no services defined"));
    };
    let mut services = Vec::new();
    let mut lines = Vec::new();
    for (name, k, v) in mapping("services", services_node)? {
        // The Compose specification's pattern for service names.
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            return Err(error(
                &format!("services.{name}"),
                k,
                "invalid service name: only [a-zA-Z0-9._-] are allowed",
            ));
        }
        lines.push(line(k));
        services.push(parse_service(&name, v, project_dir, &mut project.warnings)?);
    }
    check_references(&services, &lines, &project.networks)?;
    project.services = start_order(services, &lines)?;
    Ok(project)
}

fn parse_network(
    name: &str,
    node: &Node,
    warnings: &mut Vec<Warning>,
) -> Result<ProjectNetwork, ComposeError> {
    let mut network = ProjectNetwork { name: name.to_string(), ..ProjectNetwork::default() };
    if is_null(node) {
        return Ok(network);
    }
    let key = format!("networks.{name}");
    for (field, k, v) in mapping(&key, node)? {
        let path = format!("{key}.{field}");
        match field.as_str() {
            "driver" => {
                let driver = string(&path, v)?;
                if driver != "bridge" {
                    return Err(error(&path, v, format!("plugin \"{driver}\" not found")));
                }
            }
            "external" => network.external = boolean(&path, v)?,
            "ipam" => {
                for (ipam_field, ik, iv) in mapping(&path, v)? {
                    let ipam_path = format!("{path}.{ipam_field}");
                    if ipam_field != "config" {
                        warnings.push(Warning { key: ipam_path, line: line(ik) });
                        continue;
                    }
                    for (i, entry) in sequence(&ipam_path, iv)?.iter().enumerate() {
                        let entry_path = format!("{ipam_path}[{i}]");
                        for (cfg, ck, cv) in mapping(&entry_path, entry)? {
                            let cfg_path = format!("{entry_path}.{cfg}");
                            let value = match cfg.as_str() {
                                "subnet" | "gateway" => string(&cfg_path, cv)?,
                                _ => {
                                    warnings.push(Warning { key: cfg_path, line: line(ck) });
                                    continue;
                                }
                            };
                            check_address(&cfg_path, cv, &value, cfg == "subnet")?;
                            if i > 0 {
                                return Err(error(
                                    &cfg_path,
                                    cv,
                                    "only one ipam config is supported",
                                ));
                            }
                            if cfg == "subnet" {
                                network.subnet = Some(value);
                            } else {
                                network.gateway = Some(value);
                            }
                        }
                    }
                }
            }
            _ => warnings.push(Warning { key: path, line: line(k) }),
        }
    }
    Ok(network)
}

/// An address (`gateway`) or `ADDRESS/PREFIX` (`subnet`), in Docker's words when it is not.
fn check_address(key: &str, node: &Node, value: &str, cidr: bool) -> Result<(), ComposeError> {
    let ok = if cidr {
        value.split_once('/').is_some_and(|(ip, prefix)| {
            let max = if ip.contains(':') { 128 } else { 32 };
            ip.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= max)
        })
    } else {
        value.parse::<std::net::IpAddr>().is_ok()
    };
    if ok {
        Ok(())
    } else if cidr {
        Err(error(key, node, format!("invalid CIDR address: {value}")))
    } else {
        Err(error(key, node, format!("invalid IP address: {value}")))
    }
}

fn parse_service(
    name: &str,
    node: &Node,
    project_dir: &Path,
    warnings: &mut Vec<Warning>,
) -> Result<Service, ComposeError> {
    let mut service = Service { name: name.to_string(), ..Service::default() };
    let key = format!("services.{name}");
    if is_null(node) {
        return Ok(service);
    }
    for (field, k, v) in mapping(&key, node)? {
        let path = format!("{key}.{field}");
        match field.as_str() {
            "command" => service.command = parse_command(&path, v)?,
            "image" => {
                let image = string(&path, v)?;
                crate::supervisor::image::reference::Reference::parse_normalized(&image)
                    .map_err(|e| error(&path, v, e))?;
                service.image = image;
            }
            "ports" => service.ports = parse_ports(&path, v)?,
            "expose" => {
                for (i, item) in sequence(&path, v)?.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let value = string(&item_path, item)?;
                    parse_expose(&value).map_err(|e| error(&item_path, item, e))?;
                    service.expose.push(value);
                }
            }
            "environment" => service.environment = parse_environment(&path, v)?,
            "links" => {
                for (i, item) in sequence(&path, v)?.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let value = string(&item_path, item)?;
                    let link = Link::parse(&value).map_err(|e| error(&item_path, item, e))?;
                    service.links.push(link);
                }
            }
            "networks" => service.networks = parse_service_networks(&path, v, warnings)?,
            "network_mode" => {
                let mode = string(&path, v)?;
                let known = ["bridge", "host", "none"].contains(&mode.as_str())
                    || mode.strip_prefix("container:").is_some_and(|c| !c.is_empty())
                    || mode.strip_prefix("service:").is_some_and(|s| !s.is_empty());
                if !known {
                    return Err(error(
                        &path,
                        v,
                        format!(
                            "invalid network mode {mode:?}: use bridge, host, none, \
                             container:NAME or service:NAME"
                        ),
                    ));
                }
                service.network_mode = Some(mode);
            }
            "restart" => {
                let value = string(&path, v)?;
                service.restart = RestartPolicy::parse(&value).map_err(|e| error(&path, v, e))?;
            }
            "init" => service.init = boolean(&path, v)?,
            "x-cproxy-source-ip-transparent" => service.source_ip_transparent = boolean(&path, v)?,
            "stop_signal" => {
                let value = string(&path, v)?;
                crate::supervisor::rules::signal::parse(&value).map_err(|e| error(&path, v, e))?;
                service.stop_signal = Some(value);
            }
            "stop_grace_period" => {
                let value = string(&path, v)?;
                let d = crate::duration::parse(&value).map_err(|e| error(&path, v, e))?;
                service.stop_grace_period = Some(d.as_secs());
            }
            "volumes" => service.volumes = parse_volumes(&path, v, project_dir)?,
            "depends_on" => service.depends_on = parse_depends_on(&path, v, warnings)?,
            "logging" => service.logging = Some(parse_logging(&path, v)?),
            "mem_limit" => set_once(&mut service.resources.memory, bytes(&path, v)?, &path, v)?,
            "memswap_limit" => service.resources.memory_swap = bytes(&path, v)?,
            "mem_reservation" => {
                set_once(&mut service.resources.memory_reservation, bytes(&path, v)?, &path, v)?;
            }
            "cpus" => set_once(&mut service.resources.nano_cpus, cpus(&path, v)?, &path, v)?,
            "cpu_shares" => service.resources.cpu_shares = integer(&path, v)?,
            "cpu_quota" => service.resources.cpu_quota = integer(&path, v)?,
            "cpu_period" => service.resources.cpu_period = integer(&path, v)?,
            "cpuset" => service.resources.cpuset_cpus = string(&path, v)?,
            "pids_limit" => {
                let n = integer(&path, v)?;
                set_once_opt(&mut service.resources.pids_limit, n, &path, v)?;
            }
            "oom_kill_disable" => service.resources.oom_kill_disable = Some(boolean(&path, v)?),
            "deploy" => parse_deploy(&path, v, &mut service.resources, warnings)?,
            "blkio_config" => parse_blkio(&path, v, &mut service.resources)?,
            _ => warnings.push(Warning { key: path, line: line(k) }),
        }
    }
    if service.network_mode.is_some() && !service.networks.is_empty() {
        return Err(error(
            &format!("{key}.network_mode"),
            node,
            format!("service {name} declares mutually exclusive `network_mode` and `networks`"),
        ));
    }
    Ok(service)
}

/// `deploy`: only `resources` applies to a single engine (Compose's rule); the rest is
/// swarm's and warned about.
fn parse_deploy(
    key: &str,
    node: &Node,
    r: &mut Resources,
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    for (k, kn, v) in mapping(key, node)? {
        let path = format!("{key}.{k}");
        if k != "resources" {
            warnings.push(Warning { key: path, line: line(kn) });
            continue;
        }
        for (kind, kind_node, limits) in mapping(&path, v)? {
            let path = format!("{path}.{kind}");
            for (field, field_node, value) in mapping(&path, limits)? {
                let path = format!("{path}.{field}");
                match (kind.as_str(), field.as_str()) {
                    ("limits", "memory") => {
                        set_once(&mut r.memory, bytes(&path, value)?, &path, value)?
                    }
                    ("limits", "cpus") => {
                        set_once(&mut r.nano_cpus, cpus(&path, value)?, &path, value)?
                    }
                    ("limits", "pids") => {
                        let n = integer(&path, value)?;
                        set_once_opt(&mut r.pids_limit, n, &path, value)?;
                    }
                    ("reservations", "memory") => {
                        let n = bytes(&path, value)?;
                        set_once(&mut r.memory_reservation, n, &path, value)?;
                    }
                    ("limits" | "reservations", _) => {
                        warnings.push(Warning { key: path, line: line(field_node) })
                    }
                    _ => {
                        warnings.push(Warning { key: path, line: line(kind_node) });
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `blkio_config`: `weight`, `weight_device` and the four throttles (`device_read_bps`,
/// …), each a list of `{path, weight|rate}` checked as `run`'s device flags are.
fn parse_blkio(key: &str, node: &Node, r: &mut Resources) -> Result<(), ComposeError> {
    use crate::supervisor::rules::resources::{Throttle, parse_throttle, parse_weight_device};
    for (k, _, v) in mapping(key, node)? {
        let path = format!("{key}.{k}");
        if k == "weight" {
            let n = integer(&path, v)?;
            r.blkio_weight = u16::try_from(n).map_err(|_| error(&path, v, "out of range"))?;
            continue;
        }
        let kind = match k.as_str() {
            "weight_device" => None,
            "device_read_bps" => Some(Throttle::ReadBps),
            "device_write_bps" => Some(Throttle::WriteBps),
            "device_read_iops" => Some(Throttle::ReadIops),
            "device_write_iops" => Some(Throttle::WriteIops),
            _ => return Err(error(&path, v, "is not a blkio_config key")),
        };
        let (mut weights, mut throttles) = (Vec::new(), Vec::new());
        for (i, entry) in sequence(&path, v)?.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (mut device, mut value) = (None, None);
            for (field, _, fv) in mapping(&at, entry)? {
                match field.as_str() {
                    "path" => device = Some(string(&format!("{at}.path"), fv)?),
                    "weight" | "rate" => value = Some(string(&format!("{at}.{field}"), fv)?),
                    _ => return Err(error(&format!("{at}.{field}"), fv, "is not a device key")),
                }
            }
            let (Some(device), Some(value)) = (device, value) else {
                return Err(error(&at, entry, "needs a path and a weight or rate"));
            };
            let flag = format!("{device}:{value}");
            match kind {
                None => weights.push(parse_weight_device(&flag).map_err(|e| error(&at, entry, e))?),
                Some(t) => {
                    throttles.push(parse_throttle(t, &flag).map_err(|e| error(&at, entry, e))?)
                }
            }
        }
        match kind {
            None => r.blkio_weight_device = Some(weights),
            Some(t) => *r.throttle_list_mut(t) = Some(throttles),
        }
    }
    Ok(())
}

/// A size in bytes: a number, or a string with Docker's units (`64m`, `1g`, `512k`).
fn bytes(key: &str, node: &Node) -> Result<i64, ComposeError> {
    let text = string(key, node)?;
    let n =
        crate::supervisor::rules::mounts::ram_in_bytes(&text).map_err(|e| error(key, node, e))?;
    Ok(n)
}

/// CPUs as `--cpus` takes them (`0.5`), in billionths.
fn cpus(key: &str, node: &Node) -> Result<i64, ComposeError> {
    let text = string(key, node)?;
    crate::supervisor::rules::resources::parse_cpus(&text).map_err(|e| error(key, node, e))
}

/// A whole number.
fn integer(key: &str, node: &Node) -> Result<i64, ComposeError> {
    let text = string(key, node)?;
    text.parse().map_err(|_| error(key, node, "must be an integer"))
}

/// A service's `logging`: `driver` (the daemon's when absent) and `options`.
fn parse_logging(
    key: &str,
    node: &Node,
) -> Result<crate::supervisor::api::types::LogConfig, ComposeError> {
    let mut config = crate::supervisor::api::types::LogConfig::default();
    for (field, k, v) in mapping(key, node)? {
        let path = format!("{key}.{field}");
        match field.as_str() {
            "driver" => config.kind = string(&path, v)?,
            "options" => {
                for (name, _, value) in mapping(&path, v)? {
                    let value = string(&format!("{path}.{name}"), value)?;
                    config.config.insert(name, value);
                }
            }
            _ => return Err(error(&path, k, format!("unsupported logging field {field:?}"))),
        }
    }
    crate::supervisor::rules::logging::check(&config.kind, &config.config)
        .map_err(|e| error(key, node, e))?;
    Ok(config)
}

/// Sets a limit the file may give twice (`mem_limit` and `deploy.resources.limits.memory`):
/// the same value is fine, two different ones are refused, as Compose refuses them.
fn set_once(slot: &mut i64, value: i64, key: &str, node: &Node) -> Result<(), ComposeError> {
    if *slot != 0 && *slot != value {
        return Err(error(key, node, "conflicts with the value the service's other key gives"));
    }
    *slot = value;
    Ok(())
}

/// [`set_once`] for a limit `null` when unset.
fn set_once_opt(
    slot: &mut Option<i64>,
    value: i64,
    key: &str,
    node: &Node,
) -> Result<(), ComposeError> {
    if slot.is_some_and(|s| s != value) {
        return Err(error(key, node, "conflicts with the value the service's other key gives"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_command(key: &str, node: &Node) -> Result<Vec<String>, ComposeError> {
    if is_null(node) {
        return Ok(Vec::new());
    }
    if let Some(text) = scalar(node) {
        return split_shell_words(&text).map_err(|e| error(key, node, e));
    }
    Ok(strings(key, node)?.into_iter().map(|(s, _)| s).collect())
}

/// Splits a command as a POSIX shell splits words: blanks separate, single quotes keep
/// everything, double quotes keep all but `\"`, `\\`, `\$` and `` \` ``, a backslash outside
/// quotes keeps the next character. Nothing is expanded.
pub fn split_shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in {text:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("a lone backslash ends {text:?}")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn parse_ports(key: &str, node: &Node) -> Result<Vec<String>, ComposeError> {
    let mut ports = Vec::new();
    for (i, item) in sequence(key, node)?.iter().enumerate() {
        let item_path = format!("{key}[{i}]");
        let spec = match scalar(item) {
            Some(spec) => spec,
            None => long_port(&item_path, item)?,
        };
        PortSpec::parse(&spec).map_err(|e| error(&item_path, item, e))?;
        ports.push(spec);
    }
    Ok(ports)
}

/// A long-syntax port (`target`, `published`, `host_ip`, `protocol`) as a short spec.
fn long_port(key: &str, node: &Node) -> Result<String, ComposeError> {
    let (mut target, mut published, mut host_ip, mut protocol) = (None, None, None, None);
    for (field, k, v) in mapping(key, node)? {
        let path = format!("{key}.{field}");
        let value = string(&path, v)?;
        match field.as_str() {
            "target" => target = Some(value),
            "published" => published = Some(value),
            "host_ip" => host_ip = Some(value),
            "protocol" => protocol = Some(value),
            "mode" if value == "host" || value == "ingress" => {}
            _ => return Err(error(&path, k, format!("unsupported port field {field:?}"))),
        }
    }
    let Some(target) = target else {
        return Err(error(key, node, "a port needs a target"));
    };
    let mut spec = String::new();
    if let Some(ip) = host_ip {
        if ip.contains(':') {
            spec.push_str(&format!("[{ip}]:"));
        } else {
            spec.push_str(&format!("{ip}:"));
        }
    }
    if let Some(published) = published {
        spec.push_str(&format!("{published}:"));
    } else if !spec.is_empty() {
        spec.push(':');
    }
    spec.push_str(&target);
    if let Some(proto) = protocol {
        spec.push('/');
        spec.push_str(&proto);
    }
    Ok(spec)
}

fn parse_environment(key: &str, node: &Node) -> Result<Vec<String>, ComposeError> {
    let mut env = Vec::new();
    let check_name = |name: &str, path: &str, at: &Node| {
        if name.is_empty() || name.contains('=') {
            Err(error(path, at, format!("invalid environment variable name {name:?}")))
        } else {
            Ok(())
        }
    };
    if let YamlData::Sequence(items) = &untagged(node).data {
        for (i, item) in items.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let value = string(&path, item)?;
            let name = value.split_once('=').map_or(value.as_str(), |(k, _)| k);
            check_name(name, &path, item)?;
            env.push(value);
        }
        return Ok(env);
    }
    for (name, k, v) in mapping(key, node)? {
        let path = format!("{key}.{name}");
        check_name(&name, &path, k)?;
        if is_null(v) {
            env.push(name);
        } else {
            env.push(format!("{name}={}", string(&path, v)?));
        }
    }
    Ok(env)
}

fn parse_service_networks(
    key: &str,
    node: &Node,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<ServiceNetwork>, ComposeError> {
    if let YamlData::Sequence(_) = &untagged(node).data {
        return Ok(strings(key, node)?
            .into_iter()
            .map(|(name, _)| ServiceNetwork { name, aliases: Vec::new() })
            .collect());
    }
    let mut networks = Vec::new();
    for (name, _, v) in mapping(key, node)? {
        let mut network = ServiceNetwork { name: name.clone(), aliases: Vec::new() };
        if !is_null(v) {
            let path = format!("{key}.{name}");
            for (field, fk, fv) in mapping(&path, v)? {
                let field_path = format!("{path}.{field}");
                if field == "aliases" {
                    network.aliases =
                        strings(&field_path, fv)?.into_iter().map(|(a, _)| a).collect();
                } else {
                    warnings.push(Warning { key: field_path, line: line(fk) });
                }
            }
        }
        networks.push(network);
    }
    Ok(networks)
}

fn parse_volumes(
    key: &str,
    node: &Node,
    project_dir: &Path,
) -> Result<Vec<BindMount>, ComposeError> {
    let mut mounts = Vec::new();
    for (i, item) in sequence(key, node)?.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let (source, target, read_only) = match scalar(item) {
            Some(short) => {
                let mut parts = short.split(':');
                let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
                    return Err(error(
                        &path,
                        item,
                        format!("{short}: only bind mounts HOSTDIR:DIR[:ro] are supported"),
                    ));
                };
                let read_only = match parts.next() {
                    None | Some("rw") => false,
                    Some("ro") => true,
                    Some(mode) => return Err(error(&path, item, format!("invalid mode: {mode}"))),
                };
                if parts.next().is_some() {
                    return Err(error(
                        &path,
                        item,
                        format!("invalid volume specification: '{short}'"),
                    ));
                }
                (source.to_string(), target.to_string(), read_only)
            }
            None => {
                let (mut source, mut target, mut read_only) = (None, None, false);
                for (field, fk, fv) in mapping(&path, item)? {
                    let field_path = format!("{path}.{field}");
                    let value = string(&field_path, fv)?;
                    match field.as_str() {
                        "type" if value == "bind" => {}
                        "type" => {
                            return Err(error(
                                &field_path,
                                fv,
                                format!("volume type {value:?} is not supported: use bind"),
                            ));
                        }
                        "source" => source = Some(value),
                        "target" => target = Some(value),
                        "read_only" => read_only = boolean(&field_path, fv)?,
                        _ => {
                            return Err(error(
                                &field_path,
                                fk,
                                format!("unsupported volume field {field:?}"),
                            ));
                        }
                    }
                }
                let (Some(source), Some(target)) = (source, target) else {
                    return Err(error(&path, item, "a bind mount needs a source and a target"));
                };
                (source, target, read_only)
            }
        };
        let source = bind_source(&source, project_dir)
            .ok_or_else(|| error(&path, item, format!("{source}: only bind mounts of a host path (/… or ./…) are supported, not named volumes")))?;
        if !target.starts_with('/') {
            return Err(error(
                &path,
                item,
                format!("invalid mount config: mount path must be absolute: {target}"),
            ));
        }
        mounts.push(BindMount { source, target, read_only });
    }
    Ok(mounts)
}

/// An absolute host path, or one relative to the project directory (`.` or `..` first);
/// anything else names a volume, which cproxy does not have.
fn bind_source(source: &str, project_dir: &Path) -> Option<PathBuf> {
    let path = Path::new(source);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    match path.components().next() {
        Some(Component::CurDir | Component::ParentDir) => {
            let mut joined = project_dir.to_path_buf();
            for part in path.components() {
                match part {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        joined.pop();
                    }
                    other => joined.push(other),
                }
            }
            Some(joined)
        }
        _ => None,
    }
}

fn parse_depends_on(
    key: &str,
    node: &Node,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<String>, ComposeError> {
    if let YamlData::Sequence(_) = &untagged(node).data {
        return Ok(strings(key, node)?.into_iter().map(|(s, _)| s).collect());
    }
    let mut deps = Vec::new();
    for (name, _, v) in mapping(key, node)? {
        if !is_null(v) {
            let path = format!("{key}.{name}");
            for (field, fk, fv) in mapping(&path, v)? {
                let field_path = format!("{path}.{field}");
                let started =
                    field == "condition" && scalar(fv).as_deref() == Some("service_started");
                if !started {
                    warnings.push(Warning { key: field_path, line: line(fk) });
                }
            }
        }
        deps.push(name);
    }
    Ok(deps)
}

/// Every service, link and network a service names exists; links and `service:` network
/// modes become dependencies too, as in Compose.
fn check_references(
    services: &[Service],
    lines: &[usize],
    networks: &[ProjectNetwork],
) -> Result<(), ComposeError> {
    let names: BTreeSet<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let at = |i: usize, key: String, message: String| ComposeError { key, line: lines[i], message };
    for (i, s) in services.iter().enumerate() {
        let key = format!("services.{}", s.name);
        for dep in &s.depends_on {
            if !names.contains(dep.as_str()) {
                return Err(at(
                    i,
                    format!("{key}.depends_on"),
                    format!("service {:?} depends on undefined service {dep:?}", s.name),
                ));
            }
        }
        for link in &s.links {
            if !names.contains(link.name.as_str()) {
                return Err(at(
                    i,
                    format!("{key}.links"),
                    format!("service {:?} links to undefined service {:?}", s.name, link.name),
                ));
            }
        }
        if let Some(other) = s.network_mode.as_deref().and_then(|m| m.strip_prefix("service:"))
            && !names.contains(other)
        {
            return Err(at(
                i,
                format!("{key}.network_mode"),
                format!(
                    "service {:?} uses the network stack of undefined service {other:?}",
                    s.name
                ),
            ));
        }
        for net in &s.networks {
            if !networks.iter().any(|n| n.name == net.name) {
                return Err(at(
                    i,
                    format!("{key}.networks"),
                    format!("service {:?} refers to undefined network {}", s.name, net.name),
                ));
            }
        }
    }
    Ok(())
}

/// Orders services so each comes after what it depends on (file order otherwise); a cycle is
/// an error naming it.
fn start_order(mut services: Vec<Service>, lines: &[usize]) -> Result<Vec<Service>, ComposeError> {
    for s in &mut services {
        let mut deps = std::mem::take(&mut s.depends_on);
        deps.extend(s.links.iter().map(|l| l.name.clone()));
        if let Some(other) = s.network_mode.as_deref().and_then(|m| m.strip_prefix("service:")) {
            deps.push(other.to_string());
        }
        let mut seen = BTreeSet::new();
        deps.retain(|d| seen.insert(d.clone()));
        s.depends_on = deps;
    }
    let index = |name: &str| services.iter().position(|s| s.name == name);
    let mut placed = vec![false; services.len()];
    let mut order = Vec::with_capacity(services.len());
    while order.len() < services.len() {
        let ready = (0..services.len()).find(|&i| {
            !placed[i] && services[i].depends_on.iter().all(|d| index(d).is_none_or(|j| placed[j]))
        });
        match ready {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                let (first, cycle) = find_cycle(&services, &placed);
                return Err(ComposeError {
                    key: format!("services.{}.depends_on", services[first].name),
                    line: lines[first],
                    message: format!("dependency cycle detected: {}", cycle.join(" -> ")),
                });
            }
        }
    }
    let mut slots: Vec<Option<Service>> = services.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// A cycle among the services not yet placed: walks first dependencies until a name repeats.
fn find_cycle(services: &[Service], placed: &[bool]) -> (usize, Vec<String>) {
    let index = |name: &str| services.iter().position(|s| s.name == name);
    let start = placed.iter().position(|p| !p).unwrap_or(0);
    let mut path: Vec<usize> = vec![start];
    loop {
        let current = path[path.len() - 1];
        let next =
            services[current].depends_on.iter().filter_map(|d| index(d)).find(|&j| !placed[j]);
        let Some(next) = next else {
            return (start, path.iter().map(|&i| services[i].name.clone()).collect());
        };
        if let Some(pos) = path.iter().position(|&i| i == next) {
            let mut cycle: Vec<String> =
                path[pos..].iter().map(|&i| services[i].name.clone()).collect();
            cycle.push(services[next].name.clone());
            return (next, cycle);
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> Project {
        parse(text, Path::new("/srv/app")).unwrap()
    }

    fn fails(text: &str) -> String {
        parse(text, Path::new("/srv/app")).unwrap_err().to_string()
    }

    #[test]
    fn the_example_file_is_the_tutorials_web_and_db() {
        let text = include_str!("../../../examples/compose.yml");
        let p = parse(text, Path::new("/srv/app")).unwrap();
        assert_eq!(p.warnings, []);
        let names: Vec<&str> = p.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        let (db, web) = (&p.services[0], &p.services[1]);
        assert_eq!(db.ports, Vec::<String>::new());
        assert_eq!(db.expose, ["5432"]);
        assert_eq!(db.environment, ["PG_VERSION=9.3"]);
        assert_eq!(web.links, [Link::parse("db:db").unwrap()]);
        assert_eq!(web.ports, ["127.0.0.1:8080:5000"]);
        assert_eq!(web.depends_on, ["db"]);
        assert_eq!(web.restart, RestartPolicy::UnlessStopped);
    }

    #[test]
    fn the_transparent_extension_key_is_runs_flag() {
        let p = project("services:\n  a:\n    x-cproxy-source-ip-transparent: true\n  b: {}\n");
        assert!(p.services[0].source_ip_transparent);
        assert!(!p.services[1].source_ip_transparent);
        assert!(p.warnings.is_empty());
        let e = fails("services:\n  a:\n    x-cproxy-source-ip-transparent: maybe\n");
        assert!(e.contains("x-cproxy-source-ip-transparent"), "{e}");
    }

    #[test]
    fn resource_keys_and_deploy_resources_are_runs_flags() {
        let p = project(
            "services:
  a:
    mem_limit: 64m
    memswap_limit: 128m
    mem_reservation: 32m
    cpus: 0.5
    cpu_shares: 512
    cpuset: 0-1
    pids_limit: 50
    oom_kill_disable: true
  b:
    mem_limit: 67108864
    deploy:
      replicas: 2
      resources:
        limits: {cpus: '0.25', memory: 64M, pids: 20}
        reservations: {memory: 16m, devices: []}
",
        );
        let a = &p.services[0].resources;
        assert_eq!(
            (a.memory, a.memory_swap, a.memory_reservation),
            (64 << 20, 128 << 20, 32 << 20)
        );
        assert_eq!((a.nano_cpus, a.cpu_shares, a.cpuset_cpus.as_str()), (500_000_000, 512, "0-1"));
        assert_eq!((a.pids_limit, a.oom_kill_disable), (Some(50), Some(true)));
        let b = &p.services[1].resources;
        assert_eq!((b.memory, b.nano_cpus, b.pids_limit), (64 << 20, 250_000_000, Some(20)));
        assert_eq!(b.memory_reservation, 16 << 20);
        let warned: Vec<&str> = p.warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            warned,
            ["services.b.deploy.replicas", "services.b.deploy.resources.reservations.devices"]
        );
        let e = fails(
            "services:\n  a:\n    mem_limit: 64m\n    deploy:\n      resources:\n        limits:\n          memory: 32m\n",
        );
        assert!(e.contains("deploy.resources.limits.memory") && e.contains("conflicts"), "{e}");
        assert!(fails("services:\n  a:\n    mem_limit: lots\n").contains("invalid size: 'lots'"));
        assert!(fails("services:\n  a:\n    cpus: 0.0000000001\n").contains("too precise"));
        assert!(fails("services:\n  a:\n    pids_limit: many\n").contains("must be an integer"));
    }

    #[test]
    fn blkio_config_is_runs_device_flags() {
        let p = project(
            "services:
  a:
    blkio_config:
      weight: 300
      weight_device: [{path: /dev/vda, weight: 400}]
      device_read_bps: [{path: /dev/vda, rate: 12mb}]
      device_write_iops:
        - path: /dev/vda
          rate: 120
",
        );
        let a = &p.services[0].resources;
        assert_eq!(a.blkio_weight, 300);
        assert_eq!(a.blkio_weight_device.as_ref().unwrap()[0].weight, 400);
        assert_eq!(a.blkio_device_read_bps.as_ref().unwrap()[0].rate, 12 << 20);
        assert_eq!(a.blkio_device_write_iops.as_ref().unwrap()[0].rate, 120);
        assert_eq!(a.blkio_device_write_bps, None);
        let e = fails(
            "services:\n  a:\n    blkio_config:\n      device_read_iops: [{path: /dev/vda, rate: 1mb}]\n",
        );
        assert!(e.contains("invalid rate for device: /dev/vda:1mb"), "{e}");
        let e = fails(
            "services:\n  a:\n    blkio_config:\n      device_read_bps: [{path: vda, rate: 1}]\n",
        );
        assert!(e.contains("bad format for device path"), "{e}");
        assert!(fails("services:\n  a:\n    blkio_config:\n      speed: 1\n").contains("speed"));
        assert!(
            fails(
                "services:\n  a:\n    blkio_config:\n      device_read_bps: [{path: /dev/vda}]\n"
            )
            .contains("needs a path")
        );
    }

    #[test]
    fn commands_are_strings_split_as_a_shell_would_or_lists() {
        let p = project(
            "services:\n  a:\n    command: sh -c 'echo \"hi there\"; exit 3'\n  b:\n    command: [python3, -m, http.server, 8000]\n",
        );
        assert_eq!(p.services[0].command, ["sh", "-c", "echo \"hi there\"; exit 3"]);
        assert_eq!(p.services[1].command, ["python3", "-m", "http.server", "8000"]);
        assert_eq!(split_shell_words(r#"a\ b "c\"d" '' e"#).unwrap(), ["a b", "c\"d", "", "e"]);
        assert!(
            fails("services:\n  a:\n    command: \"sh -c 'x\"\n")
                .starts_with("line 3: services.a.command: unterminated single quote")
        );
    }

    #[test]
    fn ports_take_the_short_and_the_long_syntax() {
        let p = project(
            "services:
  web:
    ports:
      - 80
      - \"8080:80\"
      - 127.0.0.1:5353:53/udp
      - target: 5000
        published: 5001
        host_ip: ::1
        protocol: tcp
      - target: 6000
",
        );
        assert_eq!(
            p.services[0].ports,
            ["80", "8080:80", "127.0.0.1:5353:53/udp", "[::1]:5001:5000/tcp", "6000"]
        );
    }

    #[test]
    fn a_bad_port_names_the_key_and_line_in_dockers_words() {
        assert_eq!(
            fails("services:\n  web:\n    ports:\n      - \"8080:80\"\n      - \"x:80\"\n"),
            "line 5: services.web.ports[1]: invalid hostPort: x"
        );
        assert_eq!(
            fails("services:\n  web:\n    expose:\n      - \"1:2\"\n"),
            "line 4: services.web.expose[0]: invalid port format for --expose: 1:2"
        );
    }

    #[test]
    fn environment_is_a_map_or_a_list() {
        let p = project(
            "services:
  a:
    environment:
      PG_VERSION: 9.3
      DEBUG: true
      FROM_HOST:
  b:
    environment:
      - PG_VERSION=9.3
      - FROM_HOST
",
        );
        assert_eq!(p.services[0].environment, ["PG_VERSION=9.3", "DEBUG=true", "FROM_HOST"]);
        assert_eq!(p.services[1].environment, ["PG_VERSION=9.3", "FROM_HOST"]);
        assert_eq!(
            fails("services:\n  a:\n    environment:\n      - =x\n"),
            "line 4: services.a.environment[0]: invalid environment variable name \"\""
        );
    }

    #[test]
    fn networks_with_aliases_and_top_level_ipam() {
        let p = project(
            "services:
  a:
    networks:
      front:
        aliases: [api, api.local]
      back:
  b:
    networks: [back]
networks:
  front:
    driver: bridge
    ipam:
      config:
        - subnet: 172.30.0.0/16
          gateway: 172.30.0.1
  back:
  outside:
    external: true
",
        );
        assert_eq!(
            p.services[0].networks,
            [
                ServiceNetwork {
                    name: "front".into(),
                    aliases: vec!["api".into(), "api.local".into()]
                },
                ServiceNetwork { name: "back".into(), aliases: vec![] },
            ]
        );
        assert_eq!(
            p.services[1].networks,
            [ServiceNetwork { name: "back".into(), aliases: vec![] }]
        );
        assert_eq!(
            p.networks,
            [
                ProjectNetwork {
                    name: "front".into(),
                    subnet: Some("172.30.0.0/16".into()),
                    gateway: Some("172.30.0.1".into()),
                    external: false
                },
                ProjectNetwork { name: "back".into(), ..ProjectNetwork::default() },
                ProjectNetwork {
                    name: "outside".into(),
                    external: true,
                    ..ProjectNetwork::default()
                },
            ]
        );
    }

    #[test]
    fn network_errors_name_the_key() {
        assert_eq!(
            fails("services:\n  a:\n    networks: [nope]\n"),
            "line 2: services.a.networks: service \"a\" refers to undefined network nope"
        );
        assert_eq!(
            fails("services:\n  a:\nnetworks:\n  x:\n    driver: nosuchdriver\n"),
            "line 5: networks.x.driver: plugin \"nosuchdriver\" not found"
        );
        assert_eq!(
            fails(
                "services:\n  a:\nnetworks:\n  x:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/33\n"
            ),
            "line 7: networks.x.ipam.config[0].subnet: invalid CIDR address: 10.0.0.0/33"
        );
        assert!(
            fails("services:\n  a:\n    network_mode: host\n    networks: [x]\nnetworks:\n  x:\n")
                .contains("mutually exclusive `network_mode` and `networks`")
        );
        assert_eq!(
            fails("services:\n  a:\n    network_mode: bogus\n"),
            "line 3: services.a.network_mode: invalid network mode \"bogus\": use bridge, host, none, container:NAME or service:NAME"
        );
    }

    #[test]
    fn stop_signal_and_grace_period_are_checked_as_run_checks_them() {
        let p =
            project("services:\n  a:\n    stop_signal: SIGUSR1\n    stop_grace_period: 1m30s\n");
        assert_eq!(p.services[0].stop_signal.as_deref(), Some("SIGUSR1"));
        assert_eq!(p.services[0].stop_grace_period, Some(90));
        assert_eq!(
            fails("services:\n  a:\n    stop_signal: FOO\n"),
            "line 3: services.a.stop_signal: Invalid signal: FOO"
        );
        assert!(
            fails("services:\n  a:\n    stop_grace_period: soon\n")
                .starts_with("line 3: services.a.stop_grace_period: "),
        );
    }

    #[test]
    fn init_is_a_boolean() {
        assert!(project("services:\n  a:\n    init: true\n").services[0].init);
        assert!(!project("services:\n  a:\n    command: x\n").services[0].init);
        assert_eq!(
            fails("services:\n  a:\n    init: maybe\n"),
            "line 3: services.a.init: must be true or false, not \"maybe\""
        );
    }

    #[test]
    fn restart_policies_fail_in_dockers_words() {
        assert_eq!(
            project("services:\n  a:\n    restart: \"on-failure:3\"\n").services[0].restart,
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            project("services:\n  a:\n    restart: no\n").services[0].restart,
            RestartPolicy::No
        );
        assert_eq!(
            fails("services:\n  a:\n    restart: always:3\n"),
            "line 3: services.a.restart: maximum retry count cannot be used with restart policy 'always'"
        );
    }

    #[test]
    fn volumes_are_bind_mounts_relative_to_the_project() {
        let p = project(
            "services:
  a:
    volumes:
      - ./data:/data
      - /etc/app:/etc/app:ro
      - ../shared:/shared:rw
      - type: bind
        source: ./www
        target: /var/www
        read_only: true
",
        );
        assert_eq!(
            p.services[0].volumes,
            [
                BindMount {
                    source: "/srv/app/data".into(),
                    target: "/data".into(),
                    read_only: false
                },
                BindMount { source: "/etc/app".into(), target: "/etc/app".into(), read_only: true },
                BindMount {
                    source: "/srv/shared".into(),
                    target: "/shared".into(),
                    read_only: false
                },
                BindMount {
                    source: "/srv/app/www".into(),
                    target: "/var/www".into(),
                    read_only: true
                },
            ]
        );
        assert!(
            fails("services:\n  a:\n    volumes:\n      - dbdata:/var/lib/db\n")
                .starts_with("line 4: services.a.volumes[0]: dbdata: only bind mounts")
        );
        assert_eq!(
            fails("services:\n  a:\n    volumes:\n      - ./x:rel\n"),
            "line 4: services.a.volumes[0]: invalid mount config: mount path must be absolute: rel"
        );
    }

    #[test]
    fn depends_on_orders_the_start_and_links_count_too() {
        let p = project(
            "services:
  web:
    depends_on: [cache]
    links: [db]
  cache:
    depends_on:
      db:
        condition: service_started
  db:
  side:
    network_mode: service:web
",
        );
        let names: Vec<&str> = p.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "cache", "web", "side"]);
        assert_eq!(p.services[2].depends_on, ["cache", "db"]);
        assert_eq!(p.warnings, []);
    }

    #[test]
    fn a_dependency_cycle_is_an_error_naming_it() {
        assert_eq!(
            fails(
                "services:\n  a:\n    depends_on: [b]\n  b:\n    depends_on: [c]\n  c:\n    links: [a]\n"
            ),
            "line 2: services.a.depends_on: dependency cycle detected: a -> b -> c -> a"
        );
        assert_eq!(
            fails("services:\n  a:\n    depends_on: [a]\n"),
            "line 2: services.a.depends_on: dependency cycle detected: a -> a"
        );
        assert_eq!(
            fails("services:\n  a:\n    depends_on: [ghost]\n"),
            "line 2: services.a.depends_on: service \"a\" depends on undefined service \"ghost\""
        );
    }

    #[test]
    fn unknown_keys_are_warnings_naming_them() {
        let p = project(
            "version: \"3.9\"
services:
  web:
    image: busybox
    build: .
    depends_on:
      db:
        condition: service_healthy
  db:
volumes:
  data:
",
        );
        let shown: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 10: volumes is not supported by cproxy compose and is ignored",
                "line 5: services.web.build is not supported by cproxy compose and is ignored",
                "line 8: services.web.depends_on.db.condition is not supported by cproxy compose and is ignored",
            ]
        );
    }

    #[test]
    fn malformed_files_are_errors_with_a_line() {
        assert!(fails("services:\n  a: [\n").starts_with("line "));
        assert_eq!(fails(""), "line 1: empty compose file");
        assert_eq!(fails("services:\n"), "line 1: services: no services defined");
        assert_eq!(fails("- a\n"), "line 1: must be a mapping");
        assert_eq!(
            fails("services:\n  a:\n    ports: 80\n"),
            "line 3: services.a.ports: must be a list"
        );
        assert_eq!(
            fails("services:\n  a b:\n"),
            "line 2: services.a b: invalid service name: only [a-zA-Z0-9._-] are allowed"
        );
        assert!(fails("services:\n  a:\n  a:\n").starts_with("line "));
        assert_eq!(
            fails("services:\n  a:\n    links: [\"x:y:z\"]\n"),
            "line 3: services.a.links[0]: bad format for links: x:y:z"
        );
    }

    #[test]
    fn logging_is_a_driver_and_its_options() {
        let p = project(
            "services:\n  a:\n    logging:\n      driver: local\n      options:\n        max-size: 10m\n        max-file: 3\n",
        );
        let logging = p.services[0].logging.clone().unwrap();
        assert_eq!(logging.kind, "local");
        assert_eq!(logging.config.get("max-file").map(String::as_str), Some("3"));
        assert_eq!(logging.config.get("max-size").map(String::as_str), Some("10m"));
        assert_eq!(project("services:\n  a:\n    image: bb\n").services[0].logging, None);
        assert_eq!(
            fails("services:\n  a:\n    logging:\n      options:\n        foo: 1\n"),
            "line 4: services.a.logging: unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            fails("services:\n  a:\n    logging:\n      drive: local\n"),
            "line 4: services.a.logging.drive: unsupported logging field \"drive\""
        );
    }
}
