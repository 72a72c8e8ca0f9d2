//! The supervisor's command line, with `docker`'s flags: `daemon`, `run`, `ps`, `port`,
//! `stop`, `start`, `rm`, `logs`, `inspect` (and the hidden `__init`). Parsed apart from the
//! docker-proxy command line, whose Go-style flag rewriting would change `-p`/`-d` meanings.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::supervisor::os::init::InitArgs;

/// The subcommands this module handles.
pub const COMMANDS: &[&str] = &[
    "daemon", "run", "create", "pull", "ps", "port", "stop", "start", "restart", "kill", "wait",
    "pause", "unpause", "update", "stats", "rm", "logs", "inspect", "exec", "network", "volume",
    "diff", "cp", "export", "commit", "images", "image", "import", "load", "save", "tag", "rmi",
    "history", "__init", "__nsexec",
];

/// cproxy's container commands.
#[derive(Debug, Parser)]
#[command(name = "cproxy", disable_version_flag = true)]
pub struct SupervisorCli {
    /// Daemon socket to connect to (default unix:///run/cproxy/cproxy.sock, or $CPROXY_HOST)
    #[arg(short = 'H', long = "host", global = true, value_name = "unix://PATH")]
    pub host: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: SupervisorCommand,
}

/// One container command.
#[derive(Debug, Subcommand)]
pub enum SupervisorCommand {
    /// Run the daemon that owns containers (as root)
    Daemon(DaemonArgs),
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// Create a new container
    Create(Box<RunArgs>),
    /// Pull an image from a registry
    Pull(PullArgs),
    /// List containers
    Ps(PsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Start one or more stopped containers
    Start(NamesArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Return low-level information on containers
    Inspect(InspectArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Copy files/folders between a container and the local filesystem
    #[command(
        override_usage = "cproxy cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       cproxy cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        after_help = "Use '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout."
    )]
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    #[command(override_usage = "cproxy commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]")]
    Commit(CommitArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Runs a command in the namespaces the caller entered (internal, for exec)
    #[command(name = "__nsexec", hide = true)]
    NsExec(NsExecArgs),
    /// The container's init (internal)
    #[command(name = "__init", hide = true)]
    Init(InitArgs),
}

/// `cproxy daemon`.
#[derive(Debug, Args)]
#[command(after_help = "Signals (as dockerd's):\n  \
    SIGTERM, SIGINT  stop every container, then the daemon (exit 0)\n  \
    SIGHUP           accepted and ignored: nothing to reload (no configuration file; the flags \
    and /etc/resolv.conf are read at start); no container is stopped\n  \
    SIGUSR1          write the daemon's state (containers, published ports and their \
    counters, descriptors) to stderr, and go on\n  \
    SIGQUIT          write that state, then exit 2 at once without stopping the containers \
    first; they die with the daemon (SIGSTKFLT too)\n  \
    SIGUSR2, …       ignored, as are SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR \
    and the real-time signals")]
pub struct DaemonArgs {
    /// Root of the daemon's state (records, hosts files, logs)
    #[arg(long = "data-root", value_name = "DIR", default_value = crate::supervisor::DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// The bridge's address and prefix, e.g. 172.18.0.1/16 (default: the first of
    /// 172.17.0.0/16 … 172.31.0.0/16 no route uses)
    #[arg(long, value_name = "CIDR")]
    pub bip: Option<String>,
    /// Host ports for -P and empty host ports (default: the kernel's ephemeral range)
    #[arg(long = "port-range", value_name = "START-END")]
    pub port_range: Option<String>,
    /// Serve Prometheus metrics of every published port at http://ADDR/metrics
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// DNS server the embedded DNS forwards to (default: the nameservers of /etc/resolv.conf)
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// The cgroup containers' cgroups go under, as dockerd's cgroupfs driver lays them out
    /// (`/docker/<id>`); a container's `--cgroup-parent` takes its place
    #[arg(long = "cgroup-parent", value_name = "PATH", default_value = "/docker")]
    pub cgroup_parent: String,
    /// A registry (`HOST[:PORT]`) to pull from over plain HTTP; loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Default driver for container logs: json-file, local or none
    #[arg(long = "log-driver", value_name = "string", default_value = "json-file")]
    pub log_driver: String,
    /// Default log driver options for containers, e.g. max-size=10m, max-file=3 (repeatable)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Most API connections open at once (further bounded by a quarter of the descriptor limit)
    #[arg(long = "api-max-connections", value_name = "N", default_value_t = 512, hide = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub api_max_connections: u32,
    /// Close an API connection whose request head is not complete within this time
    #[arg(long = "api-header-timeout", value_name = "DURATION", default_value = "10s",
          hide = true, value_parser = crate::duration::parse)]
    pub api_header_timeout: std::time::Duration,
    /// Answer 408 to a request whose body is not complete within this time after its head
    #[arg(long = "api-body-timeout", value_name = "DURATION", default_value = "30s",
          hide = true, value_parser = crate::duration::parse)]
    pub api_body_timeout: std::time::Duration,
    /// Close a keep-alive API connection that sends no request for this long
    #[arg(long = "api-idle-timeout", value_name = "DURATION", default_value = "60s",
          hide = true, value_parser = crate::duration::parse)]
    pub api_idle_timeout: std::time::Duration,
}

/// `cproxy run`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Ports to publish, as `docker run -p` writes them.
    #[arg(
        help = "Publish a container's port(s) to the host: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"
    )]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Connect a container to a network: bridge, host, none, container:NAME, or a network's name
    #[arg(long = "network", visible_alias = "net", default_value = "bridge")]
    pub network: String,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "IP")]
    pub ip: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Bind mount a volume: a host directory (absolute), a named volume, or a path alone for
    /// an anonymous volume
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:MODE]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=…,target=…)
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs", value_name = "DST[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "CONTAINER[:ro|rw]")]
    pub volumes_from: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Ulimit options
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Resource limits (the flags `update` takes too)
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device", value_name = "list")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list")]
    pub device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list")]
    pub device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list")]
    pub device_write_iops: Vec<String>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(long = "memory-swappiness", value_name = "int", allow_hyphen_values = true)]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Logging driver for the container (json-file, local or none)
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size, max-file, compress)
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Send the client's address to the container first on each connection to a published
    /// TCP port (HAProxy's PROXY protocol, v1 or v2)
    #[arg(long = "proxy-protocol", value_name = "VERSION")]
    pub proxy_protocol: Option<crate::proxy::proxy_proto::Version>,
    /// The container sees each client's own address and port on its published ports (TCP
    /// and UDP), not the gateway's; clients on the host's loopback still come from it
    #[arg(long = "source-ip-transparent")]
    pub source_ip_transparent: bool,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop a container (default "SIGTERM")
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Add link to another container
    #[arg(long = "link", value_name = "NAME[:ALIAS]")]
    pub link: Vec<String>,
    /// The restart policy.
    #[arg(
        help = "Restart policy to apply when a container exits: no, always, unless-stopped, on-failure[:N]"
    )]
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// A host directory as the container's root instead of an image: the first argument is
    /// then the command. The container shares that directory with the host (`/`: all the
    /// host's files, writable by its root), and is otherwise confined as with an image
    #[arg(long, value_name = "PATH")]
    pub rootfs: Option<String>,
    /// Pull image before running ("always"|"missing"|"never")
    #[arg(long, value_name = "string", default_value = "missing",
          value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image, then the command and its arguments (with `--rootfs`: the command). Flags
    /// before it are `run`'s (an unknown one is refused, as docker refuses it); everything from
    /// it on is the command's, `-la` included. A command that starts with a dash goes after
    /// `--`.
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub command: Vec<String>,
}

/// `cproxy ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print containers using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

/// `cproxy port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container
    pub container: String,
    /// PORT[/PROTO]
    pub port: Option<String>,
}

/// `cproxy stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for stop before killing it (default 10, or the container's --stop-timeout)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// The resource limits `run`, `create` and `update` take, as Docker's flags.
#[derive(Debug, Default, Args)]
pub struct ResourceArgs {
    /// Memory limit: a number and a unit (b, k, m or g), at least 6m
    #[arg(short = 'm', long = "memory", value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (deprecated: kept in the container's settings, never applied)
    #[arg(long = "kernel-memory", value_name = "bytes")]
    pub kernel_memory: Option<String>,
    /// Number of CPUs (0.5: half of one CPU's time)
    #[arg(long = "cpus", value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<String>,
}

/// `stats`'s flags.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Pretty-print stats using a Go template ('table …' adds the column names)
    #[arg(long = "format", value_name = "string")]
    pub format: Option<String>,
    /// The containers (default: every running one)
    pub containers: Vec<String>,
}

/// `update`'s flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The new limits
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", value_name = "string")]
    pub restart: Option<String>,
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Containers by name or ID.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `cproxy rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `cproxy logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs (default "all")
    #[arg(short = 'n', long, value_name = "string")]
    pub tail: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    /// The container
    pub container: String,
}

/// `cproxy exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// The container
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true,
          value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `cproxy network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

/// `cproxy cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a local SRC_PATH, or - (a tar on stdin)
    #[arg(allow_hyphen_values = true)]
    pub source: String,
    /// A local DEST_PATH, - (a tar on stdout), or CONTAINER:DEST_PATH
    #[arg(allow_hyphen_values = true)]
    pub destination: String,
}

/// `cproxy export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<PathBuf>,
    /// The container
    pub container: String,
}

/// `cproxy commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Pause container during commit (default true)
    #[arg(
        short = 'p',
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        hide_default_value = true,
        hide_possible_values = true
    )]
    pub pause: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The name (and tag) to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `cproxy diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The container
    pub container: String,
}

/// `cproxy volume …`.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove all unused local volumes
    Prune(VolumePruneArgs),
}

/// `cproxy volume create`.
#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    pub name_flag: Option<String>,
    /// The volume's name (default: a generated one)
    pub name: Option<String>,
}

/// `cproxy volume ls`.
#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (e.g. 'dangling=true')
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print volumes using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

/// `cproxy volume rm`.
#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The volumes
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// `cproxy volume prune`.
#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. `label=KEY`)
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
}

/// `cproxy network create`.
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,
    /// The network's name
    pub name: String,
}

/// `cproxy network ls`.
#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

/// `cproxy network rm`.
#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// The networks
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// `cproxy network connect`.
#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "ALIAS")]
    pub alias: Vec<String>,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// `cproxy network disconnect`.
#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// `cproxy images` and `cproxy image ls`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (dangling, reference, label, before, since)
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print images using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only the images of this repository (and tag; `*` patterns as Docker's)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `cproxy pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// The image: `NAME[:TAG|@DIGEST]`
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

/// `cproxy image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
}

/// `cproxy image inspect`.
#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// Format the output using the given Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `cproxy import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// A tarball (plain, gzip or zstd), or - for STDIN
    #[arg(value_name = "file|-")]
    pub file: String,
    /// The name (and tag) to give the image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `cproxy load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `cproxy save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<PathBuf>,
    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `cproxy tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: a name (and tag), an ID or an ID prefix
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// The new name (and tag, `latest` if none)
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// `cproxy rmi` and `cproxy image rm`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// The images
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `cproxy history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (no -H: it is the daemon's address)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Pretty-print history using a Go template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// The image
    pub image: String,
}

/// `cproxy image prune`.
#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// `cproxy __nsexec`: what `exec` runs inside the container's namespaces.
#[derive(Debug, Args)]
pub struct NsExecArgs {
    /// Directory to run the command in.
    #[arg(long, default_value = "/")]
    pub workdir: PathBuf,
    /// A descriptor of the container's mount namespace, joined here (after exec: the
    /// program's path is the host's).
    #[arg(long = "mnt-fd")]
    pub mnt_fd: Option<i32>,
    /// Confine as the container is: its capability set, in hex.
    #[arg(long)]
    pub caps: Option<String>,
    /// `no-new-privileges`.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// The seccomp filter: `default`, or a file with a profile in Docker's JSON.
    #[arg(long)]
    pub seccomp: Option<String>,
    /// `-u USER[:GROUP]`, resolved in the container's /etc/passwd and /etc/group.
    #[arg(long)]
    pub user: Option<String>,
    /// Set `HOME` from the user's passwd entry.
    #[arg(long = "set-home")]
    pub set_home: bool,
    /// `-t`: run the command on a terminal made in the container, its master sent on stdin
    /// (a unix socket) with a line `t`.
    #[arg(long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// `cproxy inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// The containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs a supervisor command if `args[1]` names one; `None` leaves the command line to the
/// docker-proxy parser.
pub fn dispatch(args: &[OsString]) -> Option<ExitCode> {
    // The command follows any -H/--host given before it, as with docker.
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a {
            "-H" | "--host" => i += 2,
            a if a.starts_with("--host=") => i += 1,
            _ => break,
        }
    }
    let first = args.get(i)?.to_str()?;
    if first == "compose" {
        return Some(crate::supervisor::client::compose::dispatch(args, i));
    }
    if !COMMANDS.contains(&first) {
        return None;
    }
    // `stats --control SOCKET` is the forwarder's (a `cproxy forward`'s counters); without it,
    // `stats` is Docker's, of containers.
    let control =
        |a: &OsString| a.to_str().is_some_and(|a| a == "--control" || a.starts_with("--control="));
    if first == "stats" && args[i..].iter().any(control) {
        return None;
    }
    let cli = match SupervisorCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return Some(ExitCode::SUCCESS);
            }
            let text = e.to_string();
            let text = unknown_flag(&e, &args[i..])
                .unwrap_or_else(|| text.trim_end().trim_start_matches("error: ").to_string());
            eprintln!("cproxy: {text}\nSee 'cproxy {first} --help'.");
            return Some(ExitCode::from(125));
        }
    };
    Some(match cli.command {
        SupervisorCommand::Init(a) => crate::supervisor::os::init::run(a),
        SupervisorCommand::NsExec(a) => crate::supervisor::os::init::nsexec(a),
        SupervisorCommand::Daemon(a) => {
            crate::serve::init_logging(false, None);
            daemon(cli.host, a)
        }
        cmd => crate::supervisor::client::run(cli.host, cmd),
    })
}

/// An unknown flag in docker's (pflag's) words, `unknown flag: --privileged` or
/// `unknown shorthand flag: 'z' in -dz`, instead of clap's; `None` for any other error. `args`
/// are the command's (from its name on), where the short flag's cluster is looked for.
fn unknown_flag(e: &clap::Error, args: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    if let Some(long) = arg.strip_prefix("--") {
        let name = long.split_once('=').map_or(long, |(name, _)| name);
        return Some(format!("unknown flag: --{name}"));
    }
    let c = arg.strip_prefix('-')?.chars().next()?;
    let cluster = args
        .iter()
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with("--") && a.strip_prefix('-').is_some_and(|s| s.contains(c)))
        .unwrap_or(arg);
    Some(format!("unknown shorthand flag: '{c}' in {cluster}"))
}

fn daemon(host: Option<String>, a: DaemonArgs) -> ExitCode {
    let fail = |e: String| {
        eprintln!("cproxy daemon: {e}");
        ExitCode::from(1)
    };
    let host = host
        .or_else(|| std::env::var("CPROXY_HOST").ok())
        .unwrap_or_else(|| format!("unix://{}", crate::supervisor::DEFAULT_SOCKET));
    let socket = match crate::supervisor::socket_path(&host) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let bip = match a.bip.as_deref().map(parse_cidr).transpose() {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let port_range = match a.port_range.as_deref().map(str::parse).transpose() {
        Ok(r) => r,
        Err(e) => return fail(format!("invalid --port-range: {e}")),
    };
    let registries = match crate::supervisor::image::pull::Registries::new(&a.insecure_registry) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let log_config = crate::supervisor::api::types::LogConfig {
        kind: a.log_driver,
        config: a.log_opt.iter().map(|o| crate::supervisor::rules::logging::parse_opt(o)).collect(),
    };
    if let Err(e) = crate::supervisor::rules::logging::check_daemon_default(
        &log_config.kind,
        &log_config.config,
    ) {
        return fail(e);
    }
    crate::supervisor::daemon::run_daemon(crate::supervisor::daemon::DaemonConfig {
        log_config,
        registries,
        socket,
        data_root: a.data_root,
        bip,
        port_range,
        metrics_addr: a.metrics_addr,
        dns: a.dns,
        cgroup_parent: a.cgroup_parent,
        api: crate::supervisor::http::server::Limits {
            max_connections: a.api_max_connections as usize,
            header_timeout: a.api_header_timeout,
            body_timeout: a.api_body_timeout,
            idle_timeout: a.api_idle_timeout,
        },
    })
}

/// `172.18.0.1/16` as address and prefix.
fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let bad =
        || format!("invalid --bip {s}: expected an IPv4 address and prefix, e.g. 172.18.0.1/16");
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let ip = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&prefix) {
        return Err(bad());
    }
    Ok((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SupervisorCli, clap::Error> {
        SupervisorCli::try_parse_from(std::iter::once("cproxy").chain(args.iter().copied()))
    }

    fn run(args: &[&str]) -> RunArgs {
        match parse(args) {
            Ok(SupervisorCli { command: SupervisorCommand::Run(a), .. }) => *a,
            Ok(other) => panic!("{args:?} parsed as {other:?}"),
            Err(e) => panic!("{args:?} should parse: {e}"),
        }
    }

    /// The error `dispatch` prints for `args` (after `cproxy: `).
    fn usage_error(args: &[&str]) -> String {
        let e = parse(args).expect_err("should be refused");
        let argv: Vec<OsString> = args.iter().map(Into::into).collect();
        unknown_flag(&e, &argv).unwrap_or_else(|| e.to_string())
    }

    #[test]
    fn unknown_flag_before_the_command_is_refused_in_dockers_words() {
        for (args, want) in [
            (&["run", "--sysctl", "x"][..], "unknown flag: --sysctl"),
            (&["run", "-d", "--bogus-flag", "busybox", "ls"], "unknown flag: --bogus-flag"),
            (&["run", "--sysctl=a=b", "x"], "unknown flag: --sysctl"),
            (&["run", "--sysctl"], "unknown flag: --sysctl"),
            (&["run", "-z", "x"], "unknown shorthand flag: 'z' in -z"),
            (&["run", "-dz", "x"], "unknown shorthand flag: 'z' in -dz"),
            (&["exec", "--sysctl", "c", "ls"], "unknown flag: --sysctl"),
            (&["ps", "--bogus"], "unknown flag: --bogus"),
        ] {
            let e = parse(args).expect_err("should be refused");
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{args:?}");
            assert_eq!(usage_error(args), want, "{args:?}");
        }
    }

    #[test]
    fn flags_before_the_command_are_runs() {
        let a = run(&["run", "-d", "-p", "8080:80", "--name", "web", "busybox", "httpd"]);
        assert!(a.detach);
        assert_eq!((a.publish, a.name.as_deref()), (vec!["8080:80".to_string()], Some("web")));
        assert_eq!(a.command, ["busybox", "httpd"]);
        let a = run(&["run", "--stop-timeout", "-1", "x"]);
        assert_eq!((a.stop_timeout, a.command), (Some(-1), vec!["x".to_string()]));
    }

    #[test]
    fn everything_from_the_command_on_is_the_commands() {
        let a = run(&["run", "-d", "busybox", "ls", "-la"]);
        assert!(a.detach);
        assert_eq!(a.command, ["busybox", "ls", "-la"]);
        assert_eq!(run(&["run", "sh", "-c", "echo hi"]).command, ["sh", "-c", "echo hi"]);
        // run's own flags after the command are the command's too, as with docker.
        let a = run(&["run", "sh", "-d", "--name", "x", "--privileged", "--", "-p"]);
        assert!(!a.detach && a.name.is_none());
        assert_eq!(a.command, ["sh", "-d", "--name", "x", "--privileged", "--", "-p"]);
    }

    #[test]
    fn a_flag_like_command_goes_after_double_dash() {
        assert_eq!(run(&["run", "--", "--privileged"]).command, ["--privileged"]);
        assert_eq!(run(&["run", "-d", "--", "-x", "-y"]).command, ["-x", "-y"]);
    }

    #[test]
    fn exec_takes_everything_after_the_container_as_the_command() {
        let Ok(SupervisorCli { command: SupervisorCommand::Exec(a), .. }) =
            parse(&["exec", "c", "--bogus", "-la"])
        else {
            panic!("exec should parse");
        };
        assert_eq!((a.container.as_str(), a.command), ("c", vec!["--bogus".into(), "-la".into()]));
    }

    #[test]
    fn image_commands_take_dockers_flags() {
        let Ok(SupervisorCli { command: SupervisorCommand::Import(a), .. }) = parse(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "--change",
            "ENV A=1",
            "-m",
            "msg",
            "-",
            "bb:1",
        ]) else {
            panic!("import should parse");
        };
        assert_eq!((a.file.as_str(), a.reference.as_deref()), ("-", Some("bb:1")));
        assert_eq!((a.change.len(), a.message.as_deref()), (2, Some("msg")));
        // `commit`: `-p` alone, `-p=false`, `--pause=false` as Docker's pflag reads them.
        let commit = |args: &[&str]| match parse(args) {
            Ok(SupervisorCli { command: SupervisorCommand::Commit(a), .. }) => a,
            other => panic!("{args:?} should parse: {other:?}"),
        };
        let a = commit(&["commit", "-a", "me", "-c", "CMD [\"x\"]", "-c", "ENV A=1", "c1", "r:t"]);
        assert!(a.pause && a.change.len() == 2 && a.author.as_deref() == Some("me"));
        assert_eq!((a.container.as_str(), a.reference.as_deref()), ("c1", Some("r:t")));
        assert!(!commit(&["commit", "-p=false", "c1"]).pause);
        assert!(!commit(&["commit", "--pause=false", "-m", "m", "c1"]).pause);
        assert!(commit(&["commit", "-p", "c1"]).pause);
        let Ok(SupervisorCli { command: SupervisorCommand::Image(ImageCommand::Rm(a)), .. }) =
            parse(&["image", "rm", "-f", "a", "b"])
        else {
            panic!("image rm should parse");
        };
        assert!(a.force && a.images == ["a", "b"]);
        assert!(matches!(
            parse(&["image", "list", "-q", "busybox"]),
            Ok(SupervisorCli {
                command: SupervisorCommand::Image(ImageCommand::Ls(ImagesArgs { quiet: true, .. })),
                ..
            })
        ));
        // -H stays the daemon's address, as with docker.
        let Ok(cli) = parse(&["-H", "unix:///x.sock", "history", "--no-trunc", "bb"]) else {
            panic!("history should parse");
        };
        assert_eq!(cli.host.as_deref(), Some("unix:///x.sock"));
        assert!(parse(&["save"]).is_err() && parse(&["tag", "a"]).is_err());
    }

    #[test]
    fn other_usage_errors_keep_clap_words() {
        assert!(usage_error(&["port", "c", "80", "extra"]).contains("unexpected argument 'extra'"));
    }
}
