//! Container records under `--data-root`: one `containers/<id>/config.json` each, written
//! atomically (a temporary file, fsync, rename), read back when the daemon starts.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::supervisor::rules::format::{parse_rfc3339, rfc3339};

use crate::proxy::proxy_proto::Version;
use crate::supervisor::rules::restart::RestartPolicy;

/// Writes `data` to `path` so a reader sees the old file or the new one, never a part.
/// A failure (a full disk) leaves nothing behind: the temporary file is removed.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

pub use crate::supervisor::api::types::ContainerStatus as Status;

/// A container's network: Docker's `--network` values. A record keeps it as Docker's text
/// (`bridge`, `container:ID`, a network's name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum NetworkMode {
    /// The default bridge (`docker0`'s equivalent).
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// A namespace with loopback only.
    None,
    /// Another container's namespace, by its full ID once created.
    Container(String),
    /// A user-defined network, by its name.
    User(String),
}

impl NetworkMode {
    /// Reads `--network`'s value; empty and `default` are the bridge, as Docker's.
    pub fn parse(text: &str) -> NetworkMode {
        match text {
            "" | "default" | "bridge" => NetworkMode::Bridge,
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            t => match t.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c.to_string()),
                None => NetworkMode::User(t.to_string()),
            },
        }
    }

    /// Whether it is the default bridge.
    pub fn is_bridge(&self) -> bool {
        *self == NetworkMode::Bridge
    }

    /// Whether it shares another container's namespace.
    pub fn is_container(&self) -> bool {
        matches!(self, NetworkMode::Container(_))
    }

    /// Whether it is one of the predefined networks (`bridge`, `host`, `none`).
    pub fn is_predefined(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Host | NetworkMode::None)
    }
}

impl From<String> for NetworkMode {
    fn from(s: String) -> Self {
        NetworkMode::parse(&s)
    }
}

impl From<NetworkMode> for String {
    fn from(m: NetworkMode) -> Self {
        m.to_string()
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Container(id) => write!(f, "container:{id}"),
            NetworkMode::User(name) => f.write_str(name),
        }
    }
}

/// A moment in a record, kept as RFC 3339 text with nanoseconds; `Time::ZERO` (never) is
/// Docker's zero time, `0001-01-01T00:00:00Z`. Formatted only where it is shown or stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Option<SystemTime>);

impl Time {
    /// Never (Docker's zero time).
    pub const ZERO: Time = Time(None);

    /// Now.
    pub fn now() -> Time {
        Time(Some(SystemTime::now()))
    }

    /// The moment, unless it is the zero time.
    pub fn get(self) -> Option<SystemTime> {
        self.0
    }

    /// How long ago it was at `now` (zero for the zero time or a time after `now`).
    pub fn elapsed_at(self, now: SystemTime) -> Duration {
        self.0.and_then(|t| now.duration_since(t).ok()).unwrap_or_default()
    }

    /// Seconds since the epoch (0 for the zero time).
    pub fn unix_seconds(self) -> i64 {
        self.0
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Self {
        Time(Some(t))
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(t) => f.write_str(&rfc3339(t)),
            None => f.write_str(ZERO_TIME),
        }
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() || text == ZERO_TIME {
            return Ok(Time::ZERO);
        }
        parse_rfc3339(&text)
            .map(|t| Time(Some(t).filter(|t| *t > UNIX_EPOCH)))
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
    }
}

/// Docker's zero time, for times that have not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The lifecycle state of a container, as `docker inspect` shows `.State`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunState {
    /// Where it is in its life.
    pub status: Status,
    /// Host PID of the container's init while running, else 0.
    pub pid: i32,
    /// The command's exit code once exited.
    pub exit_code: i32,
    /// Its last run ended with a process killed by its memory limit (`OOMKilled`).
    #[serde(default)]
    pub oom_killed: bool,
    /// Frozen by `pause` (its status stays `running`, as Docker's `Running` does).
    #[serde(default)]
    pub paused: bool,
    /// Why the last start failed, if it did.
    pub error: String,
    /// When it last started.
    pub started_at: Time,
    /// When it last stopped.
    pub finished_at: Time,
}

/// A published port while the container runs: `docker port`'s line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Host address as Docker prints it (`0.0.0.0`, `::`, `127.0.0.1`).
    pub host_ip: String,
    /// The host port bound.
    pub host_port: u16,
}

/// Everything the daemon knows about one container; what `config.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits.
    pub id: String,
    /// Without Docker's leading slash.
    pub name: String,
    /// When it was created.
    pub created: Time,
    /// The program (Docker's IMAGE column shows it).
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs given with `-e`.
    pub env: Vec<String>,
    /// The container's hostname.
    pub hostname: String,
    /// Its network.
    pub network_mode: NetworkMode,
    /// `-p` specs in their canonical form.
    pub publish: Vec<String>,
    /// `--expose` specs.
    pub expose: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--rm` with `-d`: the daemon removes the container when it exits.
    pub auto_remove: bool,
    /// `--init`: signals always reach the command, which is not PID 1.
    #[serde(default)]
    pub init: bool,
    /// `--stop-signal`: what `stop` sends first (empty: SIGTERM).
    #[serde(default)]
    pub stop_signal: String,
    /// `--stop-timeout`: `stop`'s wait before SIGKILL when the client gives none, seconds.
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    /// `.State`.
    pub state: RunState,
    /// The address on the bridge while running.
    pub ip: Option<Ipv4Addr>,
    /// Published ports while running.
    pub ports: Vec<Published>,
    /// `-v SRC:DST[:MODE]` as given (`HostConfig.Binds`).
    #[serde(default)]
    pub binds: Vec<String>,
    /// What is mounted in it, resolved at create: binds, volumes (anonymous ones named then),
    /// tmpfs; by destination. Empty in records of before volumes (their `binds` are read).
    #[serde(default)]
    pub mounts: Vec<Mounted>,
    /// What create was asked for beyond `binds`, as `inspect` shows it again.
    #[serde(default)]
    pub mount_request: MountRequest,
    /// `-w`: the command's working directory (empty: `/`).
    #[serde(default)]
    pub working_dir: String,
    /// `--proxy-protocol`: the header sent to the container on each connection to a published
    /// TCP port.
    #[serde(default, with = "version_text")]
    pub proxy_protocol: Option<Version>,
    /// `--source-ip-transparent`: connections and datagrams to its published ports come
    /// from the client's own address.
    #[serde(default)]
    pub source_ip_transparent: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The create named no policy (`inspect` shows `""` as dockerd does, not `no`).
    #[serde(default)]
    pub restart_policy_unnamed: bool,
    /// Restarts since the last explicit start (Docker's `RestartCount`).
    #[serde(default)]
    pub restart_count: u32,
    /// Stopped through the API since its last explicit start (Docker's
    /// `HasBeenManuallyStopped`): `unless-stopped` stays down when the daemon starts.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// `--link`s as `NAME:ALIAS`, NAME the source's name.
    #[serde(default)]
    pub links: Vec<String>,
    /// The user-defined networks it is on (`run --network NAME` first, then `network
    /// connect`s), each with its aliases and, while running, its address there.
    #[serde(default)]
    pub networks: Vec<Attachment>,
    /// The image it is made from; `None` for a host command (`rootfs`).
    #[serde(default)]
    pub image: Option<ImageUse>,
    /// `--rootfs PATH`: a host directory as its root (`/`: the host's files). Empty with an
    /// image, and in records of before images (the host's files, unconfined).
    #[serde(default)]
    pub rootfs: String,
    /// `--runtime`, by name (empty in records of before runtimes: the default).
    #[serde(default)]
    pub runtime: String,
    /// `Config.Entrypoint` and `Config.Cmd` merged with the image's, as `inspect` shows them
    /// (`path` and `args` are the two joined): `entrypoint` is `None` for none (`null`), and
    /// `Some([])` only for a request's `[]`; `cmd` is `None` in records of before images.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// See `entrypoint`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `-u USER[:GROUP]`, else the image's `User` (empty: root).
    #[serde(default)]
    pub user: String,
    /// What Docker's confinement was asked to change.
    #[serde(default)]
    pub security: Security,
    /// `-i`, `-t` and what the client attached.
    #[serde(default)]
    pub stdio: StdioConfig,
    /// The resource limits (`HostConfig`'s), checked, with Docker's create defaults.
    #[serde(default)]
    pub resources: crate::supervisor::rules::resources::Resources,
    /// The container's cgroup (`/docker/<id>`) from its start until it is removed after the
    /// container stopped; empty when it has none. The daemon's start sweeps what is left.
    #[serde(default)]
    pub cgroup: String,
    /// `Config.Labels`: the create's with the image's merged in (`None`: neither had any and
    /// the client sent `null`).
    #[serde(default)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `HostConfig.LogConfig` with the daemon's default merged in (an empty driver, in records
    /// of before log drivers: `json-file`, unbounded).
    #[serde(default)]
    pub log_config: crate::supervisor::api::types::LogConfig,
}

/// How a container's stdin, stdout and stderr are set up (`Config`'s `Tty`, `OpenStdin`, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StdioConfig {
    /// `-t`: the command runs on a terminal; its output is one raw stream.
    pub tty: bool,
    /// `-i`: the command's stdin is open to attached clients (else /dev/null).
    pub open_stdin: bool,
    /// The command's stdin is closed when the first attached client's stdin ends (`docker
    /// run -i` sets it).
    pub stdin_once: bool,
    /// What the creating client attached (`Config.AttachStdin` …), shown by `inspect`.
    pub attach_stdin: bool,
    /// See `attach_stdin`.
    pub attach_stdout: bool,
    /// See `attach_stdin`.
    pub attach_stderr: bool,
}

impl Record {
    /// Its mounts; for a record of before volumes, its `binds` read.
    pub fn all_mounts(&self) -> std::borrow::Cow<'_, [Mounted]> {
        if !self.mounts.is_empty() || self.binds.is_empty() {
            return std::borrow::Cow::Borrowed(&self.mounts);
        }
        std::borrow::Cow::Owned(
            self.binds
                .iter()
                .filter_map(|b| crate::supervisor::rules::mounts::parse_bind(b).ok())
                .map(|spec| Mounted { spec, anonymous: false })
                .collect(),
        )
    }

    /// Its status as Docker shows it: `paused` for a running container `pause` froze.
    pub fn shown_status(&self) -> Status {
        if self.state.paused && self.state.status == Status::Running {
            Status::Paused
        } else {
            self.state.status
        }
    }

    /// True if the container is confined as Docker confines one (an image or `--rootfs`);
    /// false for a record of before images, which ran host commands as they are.
    pub fn confined(&self) -> bool {
        self.image.is_some() || !self.rootfs.is_empty()
    }
}

/// One mount of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mounted {
    /// What and where; a volume's `source` is its name.
    #[serde(flatten)]
    pub spec: crate::supervisor::rules::mounts::Spec,
    /// A volume made for this container (`-v /path`, an image's `VOLUME`): `rm -v` and
    /// `--rm` remove it.
    #[serde(default)]
    pub anonymous: bool,
}

/// `--mount`, `--tmpfs`, `--volumes-from`, `--shm-size` and `Config.Volumes` as given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRequest {
    /// `HostConfig.Mounts`.
    #[serde(default)]
    pub mounts: Vec<crate::supervisor::rules::mounts::ApiMount>,
    /// `HostConfig.Tmpfs`.
    #[serde(default)]
    pub tmpfs: std::collections::BTreeMap<String, String>,
    /// `HostConfig.VolumesFrom`.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// `Config.Volumes` with the image's.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `HostConfig.ShmSize` (0: 64 MiB).
    #[serde(default)]
    pub shm_size: i64,
    /// `HostConfig.Ulimits`.
    #[serde(default)]
    pub ulimits: Vec<crate::supervisor::rules::mounts::Ulimit>,
}

/// The image a container is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUse {
    /// As the client named it (`busybox`), what `ps` shows and `Config.Image`.
    pub name: String,
    /// Its ID, `sha256:<hex>`.
    pub id: String,
    /// Its layers' diff IDs, bottom first: the container's lower directories.
    pub layers: Vec<String>,
}

/// `--cap-add`, `--cap-drop`, `--privileged`, `--security-opt`, `--read-only` as given at
/// create (checked there).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// `--cap-add`, as given.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `--cap-drop`, as given.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--security-opt`, as given.
    #[serde(default)]
    pub security_opt: Vec<String>,
    /// `--read-only`.
    #[serde(default)]
    pub read_only: bool,
}

/// A container's place on a user-defined network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// `--network-alias` (or `network connect --alias`) names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Its address on the network while running.
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// The address asked for (`run --ip`), on a network with a `--subnet` of its own.
    #[serde(default)]
    pub ipv4_address: Option<Ipv4Addr>,
    /// Links for this network alone (`EndpointSettings.Links`, `NAME:ALIAS`, NAME the
    /// source's name): names its DNS answers to this container.
    #[serde(default)]
    pub links: Vec<String>,
}

/// A PROXY protocol version kept as `"v1"`/`"v2"` (or nothing) in a record.
mod version_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::proxy::proxy_proto::Version;

    pub fn serialize<S: Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Version>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

/// The container records' directory layout under a data root.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Uses (and creates, mode 0700) `root/containers`.
    pub fn open(root: &Path) -> io::Result<Store> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(root.join("containers"))?;
        Ok(Store { root: root.to_path_buf() })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id` (hosts files, log, record).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Saves a record atomically.
    pub fn save(&self, record: &Record) -> io::Result<()> {
        let dir = self.dir(&record.id);
        fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        write_atomic(&dir.join("config.json"), &json)
    }

    /// Removes a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match fs::remove_dir_all(self.dir(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Saves a user-defined network's record atomically (`networks/<id>.json`).
    pub fn save_network(
        &self,
        net: &crate::supervisor::rules::networks::Network,
    ) -> io::Result<()> {
        let dir = self.root.join("networks");
        fs::create_dir_all(&dir)?;
        let json = serde_json::to_vec_pretty(net).map_err(io::Error::other)?;
        write_atomic(&dir.join(format!("{}.json", net.id)), &json)
    }

    /// Removes a network's record.
    pub fn remove_network(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.root.join("networks").join(format!("{id}.json"))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every network record that can be read, oldest first.
    pub fn load_networks(&self) -> Vec<crate::supervisor::rules::networks::Network> {
        let Ok(entries) = fs::read_dir(self.root.join("networks")) else {
            return Vec::new();
        };
        let mut nets: Vec<crate::supervisor::rules::networks::Network> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") || path.ends_with("predefined.json") {
                continue;
            }
            match fs::read(&path).map(|b| serde_json::from_slice(&b)) {
                Ok(Ok(n)) => nets.push(n),
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "bad network"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable network"),
            }
        }
        nets.sort_by(|a, b| a.created.cmp(&b.created));
        nets
    }

    /// The daemon's ID (`docker info`'s `ID`), made once and kept.
    pub fn engine_id(&self) -> io::Result<String> {
        let path = self.root.join("engine-id");
        if let Ok(id) = fs::read_to_string(&path)
            && !id.trim().is_empty()
        {
            return Ok(id.trim().to_string());
        }
        let id = crate::supervisor::rules::names::new_id()?;
        write_atomic(&path, id.as_bytes())?;
        Ok(id)
    }

    /// The IDs of the predefined networks (`bridge`, `host`, `none`), made once and kept.
    pub fn predefined_ids(&self) -> io::Result<Vec<(String, String)>> {
        let dir = self.root.join("networks");
        fs::create_dir_all(&dir)?;
        let path = dir.join("predefined.json");
        if let Ok(Ok(ids)) =
            fs::read(&path).map(|b| serde_json::from_slice::<Vec<(String, String)>>(&b))
        {
            return Ok(ids);
        }
        let mut ids = Vec::new();
        for name in crate::supervisor::rules::networks::PREDEFINED {
            ids.push((name.to_string(), crate::supervisor::rules::names::new_id()?));
        }
        write_atomic(&path, &serde_json::to_vec(&ids).map_err(io::Error::other)?)?;
        Ok(ids)
    }

    /// When the predefined networks' IDs were made (their file's time): `host`'s and `none`'s
    /// `Created`, as dockerd keeps the time it first made them.
    pub fn predefined_made(&self) -> Option<SystemTime> {
        fs::metadata(self.root.join("networks").join("predefined.json")).ok()?.modified().ok()
    }

    /// Every record that can be read; unreadable ones are logged and skipped. A directory
    /// with no record at all is what a create that never finished left (a daemon killed
    /// mid-write): it is removed, and said once.
    pub fn load_all(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(self.root.join("containers")) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        let mut swept = 0;
        for entry in entries.flatten() {
            let path = entry.path().join("config.json");
            if entry.path().is_dir() && !path.exists() {
                match fs::remove_dir_all(entry.path()) {
                    Ok(()) => swept += 1,
                    Err(e) => {
                        tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an unfinished create")
                    }
                }
                continue;
            }
            match fs::read(&path).map(|b| serde_json::from_slice::<Record>(&b)) {
                Ok(Ok(r)) => records.push(r),
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "bad record"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable record"),
            }
        }
        if swept > 0 {
            tracing::info!(count = swept, "removed what creates that never finished left");
        }
        records
    }
}
