//! Docker's Engine API request and response bodies, with Docker's field names and JSON types
//! (moby's `api/types`), written once: the daemon's HTTP layer deserializes requests and
//! serializes answers with them, cproxy's client commands and compose do the reverse, so a
//! misspelt field is a compile error on both sides.
//!
//! Unknown fields are ignored and `null` reads as empty, as dockerd's Go decoder does; the few
//! fields that are cproxy's own (not Docker's) say so.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::supervisor::rules::restart::RestartPolicy;

/// Reads `null` as the type's default, as Go's JSON decoder leaves a nil slice or map.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A list of strings as Go reads a `[]string`: a `null` element is `""` (serde refuses it);
/// `null` is kept apart from `[]`.
fn opt_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<Vec<Option<String>>>::deserialize(d)?
        .map(|v| v.into_iter().map(Option::unwrap_or_default).collect()))
}

/// Docker's `strslice.StrSlice` (`Cmd`, `Entrypoint`): a list of strings (a `null` element is
/// `""`), or one string (`"Cmd": "echo hi"` is `["echo hi"]`); `null` is none. What is neither
/// is refused as Go's fallback to a string refuses it (`cannot unmarshal array into … of type
/// string` for `["a", 5]`).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    use serde::de::{Error, SeqAccess, Unexpected, Visitor};
    struct StrSlice;
    impl<'de> Visitor<'de> for StrSlice {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(StrSlice)
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![s.to_string()]))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            loop {
                match seq.next_element::<Option<String>>() {
                    Ok(Some(s)) => all.push(s.unwrap_or_default()),
                    Ok(None) => return Ok(Some(all)),
                    Err(_) => return Err(A::Error::invalid_type(Unexpected::Seq, &self)),
                }
            }
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(A::Error::invalid_type(Unexpected::Map, &self))
        }
    }
    d.deserialize_option(StrSlice)
}

/// [`str_slice`] where `null` is empty.
fn str_slice_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(str_slice(d)?.unwrap_or_default())
}

/// A list written as Go writes a nil slice when it is empty: `null` (`Env` and `Cmd` of a
/// container that has none, as dockerd's `inspect` shows them).
fn null_if_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    match v.is_empty() {
        true => s.serialize_none(),
        false => s.collect_seq(v),
    }
}

/// An empty JSON object, the value of a port set's keys (`{"80/tcp": {}}`). Read as Go reads
/// its `struct{}`: any object (its fields ignored), or `null`, which leaves the key there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Empty, D::Error> {
        Option::<BTreeMap<String, serde::de::IgnoredAny>>::deserialize(d).map(|_| Empty {})
    }
}

/// Docker's `nat.PortSet`: `{"80/tcp": {}}`. cproxy's client sends `--expose` values as keys
/// as given (`7000-7002/udp` stays one key, a range); Docker's clients send one port a key.
pub type PortSet = BTreeMap<String, Empty>;

/// Docker's `nat.PortMap`: container port (`80/tcp`) to its host bindings.
pub type PortMap = BTreeMap<String, Vec<PortBinding>>;

/// One host binding of a container port (`nat.PortBinding`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    /// Host address (empty: every address).
    pub host_ip: String,
    /// Host port, a range `8000-8010`, or empty for one the daemon picks.
    pub host_port: String,
}

/// The container's settings in `POST /containers/create` and `inspect`'s `Config`
/// (`container.Config`, the parts cproxy has).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    /// `-h`.
    pub hostname: String,
    /// `-e` and `--env-file`, `KEY=VALUE`.
    /// `null` in `inspect` for none, `[]` in a request as Docker's CLI sends it.
    #[serde(deserialize_with = "opt_strings")]
    pub env: Option<Vec<String>>,
    /// The command and its arguments (with an image: its `CMD` when empty).
    #[serde(deserialize_with = "str_slice_or_empty", serialize_with = "null_if_empty")]
    pub cmd: Vec<String>,
    /// `--entrypoint`: `null` when not given (the image's is used), `[""]` resets it, `[]`
    /// takes neither the image's entrypoint nor, with a command, its command.
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// The image as the client named it; empty for a host command under `--rootfs` (whose
    /// program `inspect` shows here).
    pub image: String,
    /// `-u USER[:GROUP]` (empty: the image's, else root).
    pub user: String,
    /// The client attaches to stdin (`docker run -i` in the foreground).
    pub attach_stdin: bool,
    /// The client attaches to stdout (`docker run` in the foreground).
    pub attach_stdout: bool,
    /// The client attaches to stderr (`docker run` in the foreground).
    pub attach_stderr: bool,
    /// `-t`: a terminal.
    pub tty: bool,
    /// `-i`: stdin kept open.
    pub open_stdin: bool,
    /// Stdin closed once the first attached client's stdin ends.
    pub stdin_once: bool,
    /// `-w`.
    pub working_dir: String,
    /// `--expose` (and, in `inspect`, the published container ports); `null` when none.
    pub exposed_ports: Option<PortSet>,
    /// `--stop-signal`; `null` when not given.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, seconds; `null` when not given.
    pub stop_timeout: Option<i64>,
    /// Anonymous volumes: `-v /path` (the docker CLI sends a value without a source here)
    /// and, in `inspect`, the image's `VOLUME`s; `null` when none.
    pub volumes: Option<PortSet>,
    /// `--label`, with the image's labels beside them in `inspect`; `null` when neither has
    /// any and the client sent none (the docker CLI sends `{}`).
    pub labels: Option<BTreeMap<String, String>>,
}

/// `HostConfig.RestartPolicy` as sent: `{"Name":"on-failure","MaximumRetryCount":3}`. The
/// daemon checks it in Docker's words ([`RestartPolicySpec::value`] is the unchecked text).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicySpec {
    /// `no`, `always`, `unless-stopped`, `on-failure` (empty: `no`).
    pub name: String,
    /// `on-failure`'s limit (0: none).
    pub maximum_retry_count: i64,
}

impl RestartPolicySpec {
    /// The `--restart` text it stands for (`on-failure:3`, `always`).
    pub fn value(&self) -> String {
        if self.maximum_retry_count == 0 {
            self.name.clone()
        } else {
            format!("{}:{}", self.name, self.maximum_retry_count)
        }
    }
}

impl From<RestartPolicy> for RestartPolicySpec {
    fn from(p: RestartPolicy) -> Self {
        RestartPolicySpec {
            name: p.name().to_string(),
            maximum_retry_count: p.maximum_retry_count().into(),
        }
    }
}

/// `HostConfig` of create and `inspect` (`container.HostConfig`, the parts cproxy has).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `bridge` (default), `host`, `none`, `container:NAME` or a user-defined network.
    pub network_mode: String,
    /// Docker's published ports. Docker's clients send these; in `inspect`, every published
    /// container port with its host bindings.
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: PortMap,
    /// cproxy's own: `-p` specs in `docker run -p` syntax, as cproxy's client sends them (a
    /// range stays one spec). Taken before `PortBindings`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub port_specs: Vec<String>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--rm` with `-d`.
    pub auto_remove: bool,
    /// `-v SRC:DST[:MODE]`: a host path or a volume's name; `null` when none.
    pub binds: Option<Vec<String>>,
    /// `--mount` values, as the docker CLI sends them; `null` when none.
    pub mounts: Option<Vec<crate::supervisor::rules::mounts::ApiMount>>,
    /// `--tmpfs DST[:OPTIONS]`; `null` when none.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--volumes-from CONTAINER[:ro|rw]`; `null` when none.
    pub volumes_from: Option<Vec<String>>,
    /// `--shm-size` in bytes (0: 64 MiB).
    pub shm_size: i64,
    /// `--ulimit`; `null` when none.
    pub ulimits: Option<Vec<crate::supervisor::rules::mounts::Ulimit>>,
    /// The resource limits (`-m`, `--cpus`, `--pids-limit`, …), Docker's fields inline.
    #[serde(flatten)]
    pub resources: crate::supervisor::rules::resources::Resources,
    /// cproxy's own: `--proxy-protocol` (`v1`, `v2`; empty: none).
    pub proxy_protocol: String,
    /// cproxy's own: `--source-ip-transparent`, the container sees each client's own address
    /// on its published ports (left out when off).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub source_ip_transparent: bool,
    /// `--restart`.
    pub restart_policy: RestartPolicySpec,
    /// `--link NAME[:ALIAS]` as sent; `inspect` shows Docker's `/db:/web/db` form, `null`
    /// when none.
    pub links: Option<Vec<String>>,
    /// `--init`: `null` unless given.
    pub init: Option<bool>,
    /// `--cap-add`: `null` unless given.
    pub cap_add: Option<Vec<String>>,
    /// `--cap-drop`: `null` unless given.
    pub cap_drop: Option<Vec<String>>,
    /// `--privileged`: every capability, every device, no seccomp, no masked paths.
    pub privileged: bool,
    /// `--security-opt` (`seccomp=unconfined|PROFILE`, `no-new-privileges`); `null` unless
    /// given.
    pub security_opt: Option<Vec<String>>,
    /// `--read-only`: the container's root filesystem is mounted read-only.
    pub readonly_rootfs: bool,
    /// `--runtime`: empty for the daemon's default; `inspect` shows the one the container has.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// cproxy's own: `--rootfs PATH`, a host directory as the container's root (`/`: the
    /// host's own files) instead of an image.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rootfs: String,
    /// The log driver and its options (`--log-driver`, `--log-opt`): create's, with the
    /// daemon's default merged in, as `inspect` shows it (docker-py reads it to know whether
    /// it can read the logs back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
}

/// `HostConfig.LogConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    /// The driver: `json-file`, `local` or `none` (empty: the daemon's).
    #[serde(rename = "Type")]
    pub kind: String,
    /// Its options.
    pub config: BTreeMap<String, String>,
}

/// A container's settings on one network (`network.EndpointSettings`): what create's
/// `NetworkingConfig` and `network connect` send, and what `inspect` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// `--ip` as sent.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// Always `null` here.
    pub links: Option<Vec<String>>,
    /// Network-scoped aliases (`--network-alias`); `null` on the predefined networks.
    pub aliases: Option<Vec<String>>,
    /// The network's ID.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's ID while running.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The network's gateway while running.
    pub gateway: String,
    /// The container's address there while running.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length while running.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// Always empty here.
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    /// Always empty here.
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    /// Always 0 here.
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// The interface's MAC address while running.
    pub mac_address: String,
}

/// `IPAMConfig` of [`EndpointSettings`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    /// The address asked for.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

/// `NetworkingConfig` of create: `{"EndpointsConfig": {"my-bridge": {"Aliases": ["a"]}}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    /// Per network, the endpoint's settings.
    #[serde(deserialize_with = "nullable")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// `POST /containers/create`'s body: the container's config with its host and network
/// settings beside it, as Docker's `ContainerCreateConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateRequest {
    /// Everything but the host and network settings.
    #[serde(flatten)]
    pub config: ContainerConfig,
    /// Host settings.
    #[serde(default, deserialize_with = "nullable")]
    pub host_config: HostConfig,
    /// Network settings.
    #[serde(default, deserialize_with = "nullable")]
    pub networking_config: NetworkingConfig,
}

/// `201` of `POST /containers/create`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateResponse {
    /// The new container's ID.
    pub id: String,
    /// Docker's warnings (a limit the host cannot apply, discarded).
    #[serde(deserialize_with = "nullable")]
    pub warnings: Vec<String>,
}

/// `POST /containers/{id}/update`'s body (Docker's `UpdateConfig`): the resource fields to
/// change, and a restart policy (an empty name keeps the container's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateRequest {
    /// The limits to change (zero, empty and `null` fields are kept).
    #[serde(flatten)]
    pub resources: crate::supervisor::rules::resources::Resources,
    /// `--restart`.
    #[serde(deserialize_with = "nullable")]
    pub restart_policy: RestartPolicySpec,
}

/// `POST /containers/{id}/update`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerUpdateResponse {
    /// Docker's warnings; `null` when none.
    pub warnings: Option<Vec<String>>,
}

/// `GET /containers/{id}/stats`'s answer (Docker's `types.StatsJSON`, the parts cproxy has).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStats {
    /// When it was read (RFC 3339; Docker's zero time for a container that does not run).
    pub read: String,
    /// When `precpu_stats` was read.
    pub preread: String,
    /// Processes in its cgroup.
    pub pids_stats: PidsStats,
    /// Bytes read and written, per device and operation.
    pub blkio_stats: BlkioStats,
    /// Always 0 on Linux.
    pub num_procs: u32,
    /// Always empty on Linux.
    pub storage_stats: BTreeMap<String, u64>,
    /// CPU time now.
    pub cpu_stats: CpuStats,
    /// CPU time at `preread`.
    pub precpu_stats: CpuStats,
    /// Memory use and limit.
    pub memory_stats: MemoryStats,
    /// `/NAME`.
    pub name: String,
    /// The full ID.
    pub id: String,
    /// Per interface inside the container (`eth0`), while it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

/// `pids_stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PidsStats {
    /// How many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// `--pids-limit`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// One `blkio_stats` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    /// The device's major number.
    pub major: u64,
    /// Its minor number.
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`.
    pub op: String,
    /// Bytes.
    pub value: u64,
}

/// `blkio_stats` (cgroup v1's names; `null` lists for a container that does not run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioStats {
    /// Bytes per device and operation.
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    /// Operations per device and operation.
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub io_queue_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub io_service_time_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub io_wait_time_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub io_merged_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub io_time_recursive: Option<Vec<BlkioEntry>>,
    /// Not kept: empty.
    pub sectors_recursive: Option<Vec<BlkioEntry>>,
}

/// `cpu_stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuStats {
    /// The container's CPU time.
    pub cpu_usage: CpuUsage,
    /// The host's CPU time (all CPUs), nanoseconds; absent when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    /// CPUs online; absent when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    /// CFS throttling.
    pub throttling_data: Throttling,
}

/// `cpu_usage`, nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    /// In all.
    pub total_usage: u64,
    /// Per CPU (cgroup v1); absent when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    /// In the kernel.
    pub usage_in_kernelmode: u64,
    /// In user space.
    pub usage_in_usermode: u64,
}

/// `throttling_data`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttling {
    /// Periods with the quota in force.
    pub periods: u64,
    /// Periods it was throttled in.
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    pub throttled_time: u64,
}

/// `memory_stats`: absent fields for a container that does not run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStats {
    /// Bytes in use (page cache included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    /// The most in use (cgroup v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    /// `memory.stat`'s counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<BTreeMap<String, u64>>,
    /// The limit (the host's memory when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// One interface's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// `POST /containers/{id}/wait`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerWaitResponse {
    /// Why waiting failed; `null` (Docker 20.10 writes it first).
    pub error: Option<WaitError>,
    /// The command's exit code.
    pub status_code: i64,
}

/// An error answer: `{"message": "..."}`, the sentence Docker's client prints after "Error
/// response from daemon: ".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    /// Docker's words.
    pub message: String,
}

/// One published (or only exposed) port in `GET /containers/json`'s `Ports` (`types.Port`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// Host address; empty for a port that is exposed but not published.
    #[serde(rename = "IP", default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The container port.
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    /// The host port; 0 when not published.
    #[serde(rename = "PublicPort", default, skip_serializing_if = "is_zero")]
    pub public_port: u16,
    /// `tcp` or `udp`.
    #[serde(rename = "Type")]
    pub proto: String,
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

/// A mount in `GET /containers/json`'s `Mounts` (`types.MountPoint`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// `bind`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// A volume's name (none here: binds only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path.
    pub source: String,
    /// The path inside.
    pub destination: String,
    /// A volume's driver (none here).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// `ro`, `rw` or empty, as given.
    pub mode: String,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// `rprivate`.
    pub propagation: String,
}

/// The network mode part of a summary's `HostConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryHostConfig {
    /// As in `inspect`.
    pub network_mode: String,
}

/// A summary's `NetworkSettings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SummaryNetworkSettings {
    /// Per network, as in `inspect`.
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// One container of `GET /containers/json` (`types.Container`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSummary {
    /// The full ID.
    pub id: String,
    /// `/name`, then the names links give it (`/web/db`).
    #[serde(deserialize_with = "nullable")]
    pub names: Vec<String>,
    /// The image as the container was created from it, or its ID (`sha256:…`) once that
    /// name stands for another image or none; the program for a host command (`--rootfs`).
    pub image: String,
    /// The image's ID (`sha256:…`; empty for a host command).
    #[serde(rename = "ImageID")]
    pub image_id: String,
    /// The command line, Go-quoted where needed.
    pub command: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// Published and exposed ports while running.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<Port>,
    /// `Config.Labels`.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// `created`, `running`, `restarting`, `exited`.
    pub state: ContainerStatus,
    /// Docker's STATUS text (`Up 5 seconds`).
    pub status: String,
    /// The network mode.
    pub host_config: SummaryHostConfig,
    /// Per network.
    pub network_settings: SummaryNetworkSettings,
    /// Bind mounts.
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<MountPoint>,
    /// With `size=1`: the bytes of its writable layer (left out when 0, as Go's `omitempty`).
    #[serde(skip_serializing_if = "is_zero")]
    pub size_rw: i64,
    /// With `size=1`: its writable layer's bytes and its image's.
    #[serde(skip_serializing_if = "is_zero")]
    pub size_root_fs: i64,
}

/// Where a container is in its life, as Docker's word (`running`) in the API and in records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Made, never started.
    #[default]
    Created,
    /// Its command runs.
    Running,
    /// Its command exited and its restart policy brings it back after a back-off.
    Restarting,
    /// Its command exited (or never started after a failed start).
    Exited,
    /// Frozen by `pause`: only shown (a record keeps `running` with `paused` set).
    Paused,
}

impl ContainerStatus {
    /// Docker's word for it, as `ps` and `inspect` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Paused => "paused",
        }
    }

    /// Whether its command runs now.
    pub fn is_running(self) -> bool {
        self == ContainerStatus::Running
    }

    /// Running as Docker counts it (`State.Running`, a network in use): running or waiting
    /// to restart.
    pub fn is_up(self) -> bool {
        matches!(
            self,
            ContainerStatus::Running | ContainerStatus::Restarting | ContainerStatus::Paused
        )
    }

    /// `start` has something to do: it is not running.
    pub fn can_start(self) -> bool {
        !matches!(self, ContainerStatus::Running | ContainerStatus::Paused)
    }

    /// `kill` and `exec` need a running command.
    pub fn can_kill(self) -> bool {
        self == ContainerStatus::Running
    }

    /// `rm` without `--force` is refused for a running or restarting container.
    pub fn can_remove(self) -> bool {
        !self.is_up()
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `inspect`'s `State`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    /// `created`, `running`, `restarting`, `exited`.
    pub status: ContainerStatus,
    /// Running or restarting, as Docker counts it.
    pub running: bool,
    /// Frozen by `pause`.
    pub paused: bool,
    /// Waiting out its restart back-off.
    pub restarting: bool,
    /// Its last run ended with a process killed by its memory limit.
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    /// Always false here.
    pub dead: bool,
    /// Host PID of the container's init while running, else 0.
    pub pid: i32,
    /// The last exit code.
    pub exit_code: i32,
    /// Why the last start failed.
    pub error: String,
    /// RFC 3339, or Docker's zero time.
    pub started_at: String,
    /// RFC 3339, or Docker's zero time.
    pub finished_at: String,
}

/// `inspect`'s `NetworkSettings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    /// Exposed container ports (`null`) and published ones (their bindings), while running.
    #[serde(deserialize_with = "nullable")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// The address on the default bridge while running.
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    /// Its prefix length.
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    /// The default bridge's gateway.
    pub gateway: String,
    /// The interface's MAC address.
    pub mac_address: String,
    /// Per network.
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// `GET /containers/{id}/json` (`types.ContainerJSON`, the parts cproxy has).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerInspect {
    /// The full ID.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// The program.
    pub path: String,
    /// Its arguments.
    #[serde(deserialize_with = "nullable")]
    pub args: Vec<String>,
    /// Lifecycle state.
    pub state: ContainerState,
    /// The program (there is no image).
    pub image: String,
    /// The container's resolv.conf on the host.
    pub resolv_conf_path: String,
    /// Its hostname file.
    pub hostname_path: String,
    /// Its hosts file.
    pub hosts_path: String,
    /// Its json-file log.
    pub log_path: String,
    /// `/name`.
    pub name: String,
    /// cproxy's own: the link variables `exec` gives, from the sources as they are now.
    #[serde(deserialize_with = "nullable")]
    pub cproxy_link_env: Vec<String>,
    /// Restarts since the last explicit start.
    pub restart_count: u32,
    /// Host settings.
    pub host_config: HostConfig,
    /// Binds, volumes and tmpfs mounts, by destination.
    pub mounts: Vec<MountPoint>,
    /// The container's settings.
    pub config: ContainerConfig,
    /// Addresses and ports.
    pub network_settings: NetworkSettings,
}

/// `IPAM.Config` entry of a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfig {
    /// `--subnet`.
    pub subnet: String,
    /// `--gateway`.
    pub gateway: String,
}

/// A network's `IPAM` (`network.IPAM`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipam {
    /// `default`.
    pub driver: String,
    /// `null` on the predefined networks, `{}` on user-defined ones.
    pub options: Option<BTreeMap<String, String>>,
    /// At most one entry here.
    #[serde(deserialize_with = "nullable")]
    pub config: Vec<IpamConfig>,
}

/// `POST /networks/create`'s body (`types.NetworkCreateRequest`, the parts cproxy has).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateRequest {
    /// The name.
    pub name: String,
    /// `bridge` or empty.
    pub driver: String,
    /// `--subnet`/`--gateway`.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// Refuse a name in use (compose sends it; a name is always unique here).
    pub check_duplicate: bool,
    /// `--internal`: refused (no network here is cut off from the outside).
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--ipv6`: refused (no IPv6 on networks here).
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// `-o`, the driver's options; `null` when none.
    pub options: Option<BTreeMap<String, String>>,
    /// `--label`; `null` when none.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `201` of `POST /networks/create`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreateResponse {
    /// The new network's ID.
    pub id: String,
    /// Always empty here.
    pub warning: String,
}

/// `POST /networks/{id}/connect`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConnectRequest {
    /// The container.
    pub container: String,
    /// Its settings there (aliases).
    pub endpoint_config: EndpointSettings,
}

/// `POST /networks/{id}/disconnect`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkDisconnectRequest {
    /// The container.
    pub container: String,
    /// Disconnect even if it is not running (accepted; nothing differs here).
    pub force: bool,
}

/// A container on a network, in `network inspect`'s `Containers` (`types.EndpointResource`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointResource {
    /// The container's name.
    pub name: String,
    /// The endpoint's ID.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// Its MAC address.
    pub mac_address: String,
    /// `ADDRESS/PREFIX`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Always empty here.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// `ConfigFrom` of a network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConfigReference {
    /// Always empty here.
    pub network: String,
}

/// `GET /networks` and `GET /networks/{id}` (`types.NetworkResource`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkResource {
    /// The name.
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// `local`.
    pub scope: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    /// Always false here.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Subnet and gateway.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// Always false here.
    pub internal: bool,
    /// `--attachable` as given.
    pub attachable: bool,
    /// Always false here.
    pub ingress: bool,
    /// Always empty here.
    pub config_from: ConfigReference,
    /// Always false here.
    pub config_only: bool,
    /// The running containers on it, by ID.
    #[serde(deserialize_with = "nullable")]
    pub containers: BTreeMap<String, EndpointResource>,
    /// The driver's options as given at create.
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// The labels given at create.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// The platform in [`SystemVersion`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Platform {
    /// The product's name.
    pub name: String,
}

/// One component in [`SystemVersion`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ComponentVersion {
    /// `Engine`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `ApiVersion`, `MinAPIVersion`, `Os`, `Arch`, `KernelVersion`, …
    #[serde(deserialize_with = "nullable")]
    pub details: BTreeMap<String, String>,
}

/// `GET /version` (`types.Version`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemVersion {
    /// The product.
    pub platform: Platform,
    /// The engine, with its details.
    #[serde(deserialize_with = "nullable")]
    pub components: Vec<ComponentVersion>,
    /// cproxy's version.
    pub version: String,
    /// The newest API version served (`1.41`).
    pub api_version: String,
    /// The oldest API version served.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// The commit it was built from, if known.
    pub git_commit: String,
    /// Docker's clients show it; cproxy is built with Rust, and says so.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// Go's name for the architecture (`amd64`, `arm64`).
    pub arch: String,
    /// The running kernel's release.
    pub kernel_version: String,
}

/// One of `GET /info`'s `Runtimes` (`types.Runtime`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeInfo {
    /// The program that runs it.
    pub path: String,
}

/// `GET /info` (`types.Info`, the fields Docker's clients read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemInfo {
    /// The daemon's ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers in every state.
    pub containers: usize,
    /// Running ones.
    pub containers_running: usize,
    /// Paused ones (none here).
    pub containers_paused: usize,
    /// Stopped ones.
    pub containers_stopped: usize,
    /// Images, tagged or not.
    pub images: usize,
    /// The storage driver.
    pub driver: String,
    /// Memory limits can be set.
    pub memory_limit: bool,
    /// Swap limits can be set.
    pub swap_limit: bool,
    /// Kernel memory limits exist (cgroup v1).
    pub kernel_memory: bool,
    /// Kernel TCP buffer limits exist (cgroup v1).
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: bool,
    /// The CFS period can be set.
    pub cpu_cfs_period: bool,
    /// The CFS quota can be set.
    pub cpu_cfs_quota: bool,
    /// CPU shares can be set.
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    /// Cpusets can be set.
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    /// A pids limit can be set.
    pub pids_limit: bool,
    /// The OOM killer can be disabled.
    pub oom_kill_disable: bool,
    /// `net.ipv4.ip_forward` in the daemon's namespace.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// `net.bridge.bridge-nf-call-iptables`.
    pub bridge_nf_iptables: bool,
    /// `net.bridge.bridge-nf-call-ip6tables`.
    pub bridge_nf_ip6tables: bool,
    /// The log driver.
    pub logging_driver: String,
    /// The cgroup driver (`cgroupfs`; `none` without cgroups).
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// The host's name.
    pub name: String,
    /// cproxy's version.
    pub server_version: String,
    /// The running kernel's release.
    pub kernel_version: String,
    /// The host's OS, from os-release.
    pub operating_system: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `x86_64`, `aarch64`.
    pub architecture: String,
    /// CPUs available.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// Bytes of memory.
    pub mem_total: u64,
    /// `--data-root`.
    pub docker_root_dir: String,
    /// What a Docker user should know (Docker's warnings).
    #[serde(deserialize_with = "nullable")]
    pub warnings: Vec<String>,
    /// The runtimes `--runtime` can name, each with its program.
    #[serde(deserialize_with = "nullable")]
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    /// The runtime of a create that names none.
    pub default_runtime: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_reads_dockers_body_with_nulls_and_unknown_fields() {
        let body = r#"{"Hostname":"","Cmd":["sh","-c","true"],"Env":null,"Image":"busybox",
            "Tty":false,"ExposedPorts":{"80/tcp":{}},"Labels":{},
            "HostConfig":{"NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},
                          "RestartPolicy":{"Name":"","MaximumRetryCount":0},"Binds":null,"Init":null},
            "NetworkingConfig":{"EndpointsConfig":null}}"#;
        let req: ContainerCreateRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.config.cmd, ["sh", "-c", "true"]);
        assert_eq!(req.config.env, None);
        assert_eq!(req.config.image, "busybox");
        assert!(req.config.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(req.host_config.network_mode, "default");
        assert_eq!(req.host_config.port_bindings["80/tcp"][0].host_port, "8080");
        assert_eq!(req.host_config.init, None);
        assert!(req.networking_config.endpoints_config.is_empty());
    }

    #[test]
    fn a_create_request_survives_a_round_trip() {
        let mut req = ContainerCreateRequest::default();
        req.config.cmd = vec!["sleep".into(), "1".into()];
        req.config.stop_timeout = Some(3);
        req.host_config.port_specs = vec!["127.0.0.1:8080:80/tcp".into()];
        req.host_config.restart_policy =
            RestartPolicySpec { name: "on-failure".into(), maximum_retry_count: 2 };
        req.networking_config.endpoints_config.insert(
            "n".into(),
            EndpointSettings { aliases: Some(vec!["a".into()]), ..EndpointSettings::default() },
        );
        let text = serde_json::to_string(&req).unwrap();
        assert!(text.contains(r#""Cmd":["sleep","1"]"#), "{text}");
        assert!(text.contains(r#""HostConfig":{"#), "{text}");
        assert_eq!(serde_json::from_str::<ContainerCreateRequest>(&text).unwrap(), req);
        assert_eq!(req.host_config.restart_policy.value(), "on-failure:2");
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_refused() {
        assert!(serde_json::from_str::<ContainerCreateRequest>(r#"{"Cmd":5}"#).is_err());
        assert!(serde_json::from_str::<ContainerCreateRequest>("[]").is_err());
        assert!(serde_json::from_str::<NetworkConnectRequest>(r#"{"Container":1}"#).is_err());
    }

    #[test]
    fn ports_leave_out_what_is_not_published() {
        let p = Port { ip: String::new(), private_port: 80, public_port: 0, proto: "tcp".into() };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"PrivatePort":80,"Type":"tcp"}"#);
    }
}

/// `container.Config` as an image carries it: `Config` and `ContainerConfig` of `docker image
/// inspect`, every field in Go's order, `null` where Docker writes `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageRunConfig {
    /// Always empty in an image.
    pub hostname: String,
    /// Always empty in an image.
    pub domainname: String,
    /// `USER`.
    pub user: String,
    /// A container's setting; false in an image.
    pub attach_stdin: bool,
    /// A container's setting; false in an image.
    pub attach_stdout: bool,
    /// A container's setting; false in an image.
    pub attach_stderr: bool,
    /// `EXPOSE`: `{"80/tcp": {}}`, left out when none.
    #[serde(skip_serializing_if = "port_set_empty")]
    pub exposed_ports: Option<PortSet>,
    /// A container's setting; false in an image.
    pub tty: bool,
    /// A container's setting; false in an image.
    pub open_stdin: bool,
    /// A container's setting; false in an image.
    pub stdin_once: bool,
    /// `ENV`, `KEY=VALUE`.
    pub env: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `HEALTHCHECK`, as written (kept, not used by cproxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    /// Windows' escaping of a shell-form command.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// The image a build started from.
    pub image: String,
    /// `VOLUME`: `{"/data": {}}`.
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// `WORKDIR`.
    pub working_dir: String,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// A container's setting.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    /// A container's setting.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `ONBUILD` triggers.
    pub on_build: Option<Vec<String>>,
    /// `LABEL`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// A container's setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `SHELL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

fn port_set_empty(p: &Option<PortSet>) -> bool {
    p.as_ref().is_none_or(|p| p.is_empty())
}

/// One image of `GET /images/json` (`types.ImageSummary`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    /// Containers using it; -1 (not counted), as dockerd without `?shared-size`.
    pub containers: i64,
    /// Unix seconds.
    pub created: i64,
    /// `sha256:…`.
    pub id: String,
    /// The config's labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// The image a commit was made from; empty for an imported, loaded or pulled one.
    pub parent_id: String,
    /// `["<none>@<none>"]` for an untagged image, as dockerd.
    #[serde(deserialize_with = "nullable")]
    pub repo_digests: Vec<String>,
    /// `busybox:latest`; `["<none>:<none>"]` for an untagged image.
    #[serde(deserialize_with = "nullable")]
    pub repo_tags: Vec<String>,
    /// -1, as dockerd without `?shared-size`.
    pub shared_size: i64,
    /// Bytes of the layers' files.
    pub size: i64,
    /// The same as `Size`.
    pub virtual_size: i64,
}

/// `GraphDriver` of `docker image inspect`: where the layers are unpacked (nowhere yet).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GraphDriverData {
    /// Driver-specific paths.
    pub data: Option<BTreeMap<String, String>>,
    /// The driver.
    pub name: String,
}

/// `RootFS` of `docker image inspect`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageRootFs {
    /// `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The layers' diff IDs, bottom first.
    #[serde(deserialize_with = "nullable")]
    pub layers: Vec<String>,
}

/// `Metadata` of `docker image inspect`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageMetadata {
    /// When it was last tagged (Docker's zero time if never).
    pub last_tag_time: String,
}

/// `GET /images/{name}/json` (`types.ImageInspect`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageInspect {
    /// `sha256:…`, the digest of its config.
    pub id: String,
    /// `busybox:latest`, …
    #[serde(deserialize_with = "nullable")]
    pub repo_tags: Vec<String>,
    /// Registry digests (none: nothing is pulled yet).
    #[serde(deserialize_with = "nullable")]
    pub repo_digests: Vec<String>,
    /// The parent image (always empty here).
    pub parent: String,
    /// `docker import -m`, or `Imported from -`.
    pub comment: String,
    /// RFC 3339.
    pub created: String,
    /// The container a commit was made from.
    pub container: String,
    /// That container's config.
    pub container_config: ImageRunConfig,
    /// The Docker version that made it.
    pub docker_version: String,
    /// `MAINTAINER`.
    pub author: String,
    /// What a container of it runs by default.
    pub config: Option<ImageRunConfig>,
    /// `amd64`, …
    pub architecture: String,
    /// `v8`, … when there is one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `linux`.
    pub os: String,
    /// The OS's version when the config names one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Bytes of its layers' files.
    pub size: i64,
    /// The same as `Size`.
    pub virtual_size: i64,
    /// Where its layers are unpacked.
    pub graph_driver: GraphDriverData,
    /// Its layers.
    #[serde(rename = "RootFS")]
    pub root_fs: ImageRootFs,
    /// Tag times.
    pub metadata: ImageMetadata,
}

/// One line of `GET /images/{name}/history` (`image.HistoryResponseItem`), newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    /// The image's ID on its own line, `<missing>` on the lines below it.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The instruction that made it.
    pub created_by: String,
    /// The image's tags, on its own line.
    pub tags: Option<Vec<String>>,
    /// Bytes of the layer's files (0 for a line that made no layer).
    pub size: i64,
    /// The comment (`Imported from -`).
    pub comment: String,
}

/// One item of `DELETE /images/{name}` and of a prune's report
/// (`types.ImageDeleteResponseItem`): a tag removed, or an image or layer deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDeleteItem {
    /// `busybox:latest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    /// `sha256:…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

/// A volume (`types.Volume`), as `GET /volumes/{name}` and the list show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    /// When it was made (RFC 3339, seconds).
    pub created_at: String,
    /// `local`.
    pub driver: String,
    /// `null` for a volume a container made.
    pub labels: Option<BTreeMap<String, String>>,
    /// Where its content is on the host.
    pub mountpoint: String,
    /// Its name.
    pub name: String,
    /// The driver's options; `null` for a volume a container made.
    pub options: Option<BTreeMap<String, String>>,
    /// `local`.
    pub scope: String,
    /// What it holds and how many containers use it: only in `GET /system/df`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<VolumeUsageData>,
}

/// `volume.UsageData`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeUsageData {
    /// Containers (any state) that mount it.
    pub ref_count: i64,
    /// The bytes of its files.
    pub size: i64,
}

/// `GET /system/df` (`types.DiskUsage`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DiskUsage {
    /// The bytes of every image layer, each once.
    pub layers_size: i64,
    /// The images, with `Containers` and `SharedSize` counted.
    #[serde(deserialize_with = "nullable")]
    pub images: Vec<ImageSummary>,
    /// Every container, with `SizeRw` and `SizeRootFs`.
    #[serde(deserialize_with = "nullable")]
    pub containers: Vec<ContainerSummary>,
    /// Every volume, with `UsageData`.
    #[serde(deserialize_with = "nullable")]
    pub volumes: Vec<Volume>,
    /// Nothing is built here: `null`.
    pub build_cache: Option<Vec<serde_json::Value>>,
    /// 0.
    pub builder_size: i64,
}

/// `POST /volumes/create`'s body (`volume.VolumeCreateBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreateBody {
    /// Empty: a generated name.
    pub name: String,
    /// Empty or `local`.
    pub driver: String,
    /// `-o` options.
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// `--label`.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `GET /volumes`'s answer (`volume.VolumeListOKBody`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeList {
    /// The volumes.
    pub volumes: Option<Vec<Volume>>,
    /// Always `null` here.
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/prune`'s answer (`types.VolumesPruneReport`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumesPruneReport {
    /// The names removed.
    pub volumes_deleted: Option<Vec<String>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// `POST /images/prune`'s answer (`types.ImagesPruneReport`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagesPruneReport {
    /// What was untagged and deleted.
    pub images_deleted: Option<Vec<ImageDeleteItem>>,
    /// Bytes freed.
    pub space_reclaimed: u64,
}

/// `errorDetail` of a [`JsonMessage`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonError {
    /// Docker's words.
    pub message: String,
}

/// One line of the JSON stream `load` and `import` answer with (`jsonmessage.JSONMessage`):
/// `{"stream":"Loaded image: busybox:latest\n"}`, `{"status":"sha256:…"}`, or an error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonMessage {
    /// Text to print as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A status line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `{}` on a pull's per-layer messages (`progressDetail`).
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<Empty>,
    /// What the status is about: a pull's tag, or a layer's short digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A failure after the answer began.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<JsonError>,
    /// The failure's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /containers/{id}/exec`'s body (`types.ExecConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    /// `-u USER[:GROUP]` (empty: the container's user).
    pub user: String,
    /// `--privileged`: every capability.
    pub privileged: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub attach_stdin: bool,
    /// The client reads stderr.
    pub attach_stderr: bool,
    /// The client reads stdout.
    pub attach_stdout: bool,
    /// `-d`.
    pub detach: bool,
    /// `--detach-keys` (kept, not used).
    pub detach_keys: String,
    /// `-e`, `KEY=VALUE`.
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    /// `-w` (empty: the container's).
    pub working_dir: String,
    /// The command and its arguments.
    #[serde(deserialize_with = "nullable")]
    pub cmd: Vec<String>,
}

/// `POST /exec/{id}/start`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartConfig {
    /// Start it and answer at once, without streams.
    pub detach: bool,
    /// `-t` (the exec's own setting decides).
    pub tty: bool,
}

/// `POST /containers/{id}/exec`'s answer: `{"Id": …}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IdResponse {
    /// 64 hex digits.
    pub id: String,
}

/// `ProcessConfig` of an exec's inspect (Go's lower-case names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecProcessConfig {
    /// `-t`.
    pub tty: bool,
    /// The program.
    pub entrypoint: String,
    /// Its arguments.
    pub arguments: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `-u`, left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
}

/// `GET /exec/{id}/json`, in Docker 20.10's field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    /// 64 hex digits.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its process runs.
    pub running: bool,
    /// `null` until it has exited.
    pub exit_code: Option<i32>,
    /// What it runs.
    pub process_config: ExecProcessConfig,
    /// `-i`.
    pub open_stdin: bool,
    /// The client reads stderr.
    pub open_stderr: bool,
    /// The client reads stdout.
    pub open_stdout: bool,
    /// Always false (Docker's own bookkeeping).
    pub can_remove: bool,
    /// The container's ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// `--detach-keys`.
    pub detach_keys: String,
    /// Its process's PID on the host (0 before it starts).
    pub pid: i32,
}

/// `POST /containers/{id}/wait`'s error part (`null` when none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WaitError {
    /// What went wrong.
    pub message: String,
}

/// An event's actor: what it happened to, and its attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EventActor {
    /// The container's, network's or volume's ID, the image's name or ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// `name`, `image`, `exitCode`, `container`, …
    pub attributes: BTreeMap<String, String>,
}

/// One event of `GET /events` (`events.Message`), in dockerd 20.10's field order; `status`,
/// `id` and `from` are the old fields, left out where dockerd leaves them out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventMessage {
    /// The action (containers and images).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The actor's ID (containers and images).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The container's image.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `network`, `image`, `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `connect`, …
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    /// Always `local`.
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}
