//! The command line: docker-proxy's flags at the top level (what dockerd passes), and cproxy's
//! own subcommands. Parsing only; [`crate::serve`] runs what was asked for.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::compat::{self, StatusPipe};
use crate::duration;
use crate::proxy::{Config, RelayMode};
use crate::spec::{PortRange, PortSpec};

/// What `--help` says after the flags in docker-proxy mode, for both programs.
macro_rules! docker_proxy_help {
    () => {
        "\
As docker-proxy (dockerd runs it this way through \"userland-proxy-path\"):
  cproxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80

Flags may be written Go-style with one dash (-host-ip X, -host-ip=X) or with two (--host-ip X).
A runtime may pass a pipe on fd 3: cproxy writes \"0\\n\" when it forwards, or \"1\\n<error>\".
SIGINT or SIGTERM (dockerd stops a proxy with SIGINT) stops accepting, closes idle connections
and lets busy ones finish for -grace, then resets what is left; a second signal resets them at
once; cproxy exits 0. Every other signal that would end the process stops it the same way
(SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR,
real-time ones), so none ends a cut transfer in order, as if it were complete.

Settings dockerd cannot pass (PROXY protocol, -grace, -max-conns, timeouts, -threads, logs) come
from /etc/cproxy/settings.toml, or the file CPROXY_SETTINGS names, read at start: [defaults] and
[[binding]] tables selected by -proto, -host-ip, -host-port, -container-ip, -container-port
(the first that matches applies). A flag given here wins over the file. A bad file stops the
start with its line on fd 3. See docs/SETTINGS.md.

With a shared forwarder (cproxy forward --control /run/cproxy/forwarder.sock; CPROXY_FORWARDER or
the settings file's forwarder name another path), each such process hands its socket to it and
waits; while none is there, or if it dies, the process forwards by itself."
    };
}

/// cproxy forwards host ports to containers, like Docker's docker-proxy, with zero-copy TCP.
#[derive(Debug, Parser)]
#[command(
    name = "cproxy",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    // Go's `flag`: a flag given twice is not an error, the last value wins.
    args_override_self = true,
    after_help = concat!(docker_proxy_help!(), "
cproxy-docker-proxy, installed beside cproxy, is this mode alone in a smaller program: the one
to name in dockerd's userland-proxy-path.

As a container supervisor (each has its own --help, with docker's flags):
  cproxy daemon                       run containers and publish their ports (as root)
  cproxy run [OPTIONS] IMAGE [CMD]    run a container from an image
  cproxy ps | port | inspect | logs | exec | stop | start | restart | kill | wait | rm
  cproxy network create | ls | inspect | rm | connect | disconnect
  cproxy compose [-f FILE] [-p NAME] up [-d] | down | ps")
)]
pub struct Cli {
    /// Subcommand; without one, cproxy runs a single binding as docker-proxy does.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// docker-proxy's flags.
    #[command(flatten)]
    pub docker_proxy: DockerProxyArgs,
}

/// `cproxy-docker-proxy`: docker-proxy's command line alone, the program dockerd's
/// `userland-proxy-path` names (cproxy's other commands and the supervisor are not in it, so
/// each of the hundreds of processes dockerd may start maps and relocates less).
#[derive(Debug, Parser)]
#[command(
    name = "cproxy-docker-proxy",
    disable_version_flag = true,
    args_override_self = true,
    after_help = docker_proxy_help!()
)]
pub struct DockerProxyCli {
    /// docker-proxy's flags.
    #[command(flatten)]
    pub docker_proxy: DockerProxyArgs,
}

/// `cproxy-forward`: `cproxy forward` alone, for the shared forwarder of dockerd's ports, which
/// then maps half the pages `cproxy` would (the supervisor is not in it).
#[derive(Debug, Parser)]
#[command(
    name = "cproxy-forward",
    version,
    args_override_self = true,
    after_help = "\
The shared forwarder of dockerd's ports (README, \"one forwarder for every published port\"):
  cproxy-forward --control /run/cproxy/forwarder.sock
Forward many ports to a container from one process:
  cproxy-forward --to 172.17.0.2 -p 127.0.0.1:5001:5000 -p 8080:80/udp"
)]
pub struct ForwardCli {
    /// `cproxy forward`'s flags.
    #[command(flatten)]
    pub forward: ForwardArgs,
}

/// Parses a command line as docker-proxy mode does: Go-style flags normalized first; an error
/// in Go's `flag` words on the status pipe (as docker-proxy) or clap's own (its first line on
/// the pipe, then clap prints it and exits 2); `--help` printed, exit 0. `Err` is the exit
/// code to return.
pub fn parse<P: Parser>(
    argv: Vec<std::ffi::OsString>,
    status: StatusPipe,
) -> Result<(P, StatusPipe), std::process::ExitCode> {
    let args = compat::normalize_args(argv);
    let docker_proxy_mode = compat::is_docker_proxy_mode(&args);
    match P::try_parse_from(args) {
        Ok(parsed) => Ok((parsed, status)),
        Err(e) => {
            if !e.use_stderr() {
                e.exit(); // --help: not an error.
            }
            if docker_proxy_mode && let Some(go) = compat::go_flag_error(&e) {
                return Err(crate::error::AppError::GoFlag(go).report(status));
            }
            let text = e.to_string();
            status.fail(text.lines().next().unwrap_or("usage error"));
            e.exit();
        }
    }
}

/// cproxy's own subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Forward many ports to a container from one process, given in docker run's -p syntax
    #[command(after_help = "\
Examples:
  cproxy forward --to 172.17.0.2 -p 127.0.0.1:5001:5000 -p 8080:80/udp -p 127.0.0.1::5000
  cproxy forward --to 172.17.0.2 -p 7000-7010:7000-7010 --control /run/cproxy.sock
  cproxy forward --to 172.17.0.2 --expose 80 --expose 53/udp -P

Prints each published port as `docker port` does (5000/tcp -> 127.0.0.1:5001), then forwards
until SIGINT, SIGTERM or any other signal that would end the process (SIGHUP, SIGQUIT, SIGUSR1,
SIGUSR2, SIGALRM, ...): it stops accepting, closes idle connections, lets busy ones finish for
--grace, then resets what is left (a second signal: at once), and exits 0. With --control,
`cproxy ctl` adds and removes bindings at run time.")]
    Forward(ForwardArgs),
    /// Add, remove or list bindings of a running `cproxy forward --control PATH`
    #[command(after_help = "\
Commands:
  add [IP] SPEC   publish SPEC (docker run -p syntax) to the container at IP (default: --to)
  remove ID       stop the binding ID; its port is freed at once, its connections drain
  list            list bindings as ID and `docker port` line

Example:
  cproxy ctl --control /run/cproxy.sock add 127.0.0.1:8081:81")]
    Ctl(CtlArgs),
    /// Show the counters of every binding of a running `cproxy forward --control PATH`
    #[command(after_help = "\
Columns: connections accepted, open and refused (over --max-conns), backend dial failures,
bytes to the container and to clients, UDP sessions open, datagrams dropped.
--format json prints every counter.")]
    Stats(StatsArgs),
}

/// `cproxy stats`' arguments.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The control socket of a running `cproxy forward`
    #[arg(long, value_name = "PATH")]
    pub control: PathBuf,
    /// table (for people) or json (every counter, for programs)
    #[arg(long, value_name = "FORMAT", default_value = "table",
          value_parser = ["table", "json"])]
    pub format: String,
}

/// `cproxy forward`'s flags.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Container address the published ports forward to (needed by -p, and by `add` without
    /// an IP; a shared forwarder that only adopts listeners needs none)
    #[arg(long, value_name = "IP")]
    pub to: Option<IpAddr>,
    /// Ports to publish, as `docker run -p` writes them.
    #[arg(
        help = "Publish a container port: [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], ranges allowed"
    )]
    #[arg(short = 'p', long = "publish", value_name = "SPEC", value_parser = PortSpec::parse)]
    pub publish: Vec<PortSpec>,
    /// Publish every --expose'd port on a host port picked from --port-range, all addresses
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Container ports that `-P` publishes.
    #[arg(help = "A container port (or range) that -P publishes: PORT[-END][/tcp|/udp]")]
    #[arg(long, value_name = "PORT", value_parser = crate::spec::parse_expose)]
    pub expose: Vec<PortSpec>,
    /// Host ports to pick from when a spec leaves the host port empty (default: the kernel's
    /// ephemeral range, as Docker)
    #[arg(long = "port-range", value_name = "START-END", value_parser = PortRange::from_str)]
    pub port_range: Option<PortRange>,
    /// Unix socket on which to accept add/remove/list commands (see `cproxy ctl`). It is
    /// created mode 0600: only root and this process's user may use it
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Also let members of GROUP (a name or a gid) use the control socket (mode 0660)
    #[arg(long = "control-group", value_name = "GROUP", requires = "control")]
    pub control_group: Option<String>,
    /// Most control clients connected at once; more are answered with an error and closed
    #[arg(long = "control-max-clients", value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub control_max_clients: u32,
    /// Serve Prometheus metrics of every binding at http://ADDR/metrics (e.g. 127.0.0.1:9100)
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Close a control client that sends no complete command for this long
    #[arg(long = "control-idle-timeout", value_name = "DURATION", default_value = "30s",
          value_parser = positive_duration)]
    pub control_idle_timeout: Duration,
    /// Tuning.
    #[command(flatten)]
    pub tuning: Tuning,
}

/// `cproxy ctl`'s arguments.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket of a running `cproxy forward`
    #[arg(long, value_name = "PATH")]
    pub control: PathBuf,
    /// The control command and its arguments.
    #[arg(help = "The command and its arguments: add [IP] SPEC | remove ID | list")]
    #[arg(required = true, num_args = 1.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// docker-proxy's command line, flag for flag, plus cproxy's tuning flags.
#[derive(Debug, Args)]
pub struct DockerProxyArgs {
    /// Protocol to forward: tcp or udp
    #[arg(long, value_name = "PROTO", default_value = "tcp", allow_hyphen_values = true)]
    pub proto: String,
    /// Host address to listen on
    #[arg(
        long = "host-ip",
        value_name = "IP",
        default_value = "0.0.0.0",
        allow_hyphen_values = true
    )]
    pub host_ip: IpAddr,
    /// Host port to listen on (0 lets the kernel pick one). A Go `int`, as docker-proxy's: a
    /// number outside 0-65535 parses, and fails to bind as it does there.
    #[arg(long = "host-port", value_name = "PORT", allow_hyphen_values = true,
          value_parser = go_int)]
    pub host_port: Option<i64>,
    /// Container address to forward to
    #[arg(
        long = "container-ip",
        value_name = "IP",
        default_value = "0.0.0.0",
        allow_hyphen_values = true
    )]
    pub container_ip: IpAddr,
    /// Container port to forward to (a Go `int`, as `-host-port`)
    #[arg(long = "container-port", value_name = "PORT", allow_hyphen_values = true,
          value_parser = go_int)]
    pub container_port: Option<i64>,
    /// Use the socket the runtime already bound, passed on fd 4, instead of binding
    #[arg(long = "use-listen-fd", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    pub use_listen_fd: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Set by cproxy-lease when the shared forwarder has gone: the socket is on fd 4, the
    /// status was reported; the value is the runtime's pid to follow (0: none). Not for users.
    #[arg(long = "resumed-from-lease", value_name = "PID", hide = true)]
    pub resumed_from_lease: Option<i32>,
    /// Tuning.
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Flags that tune the forwarder; shared by every way of running it.
#[derive(Debug, Args, Clone)]
pub struct Tuning {
    /// How long connections still moving bytes may finish after a stop signal (SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT, SIGUSR1, …); idle ones are closed at once (docker-proxy: none)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub grace: Duration,
    /// Give up connecting to the container after this long and close the client
    #[arg(long = "connect-timeout", value_name = "DURATION", default_value = "10s",
          value_parser = positive_duration)]
    pub connect_timeout: Duration,
    /// Most concurrent TCP connections per binding; more are reset at once
    #[arg(long = "max-conns", value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: u32,
    /// Close TCP connections idle this long (default: never, as docker-proxy)
    #[arg(long = "tcp-idle-timeout", value_name = "DURATION", value_parser = duration::parse)]
    pub tcp_idle_timeout: Option<Duration>,
    /// TCP keepalive on both sides of every connection: idle time before the first probe and
    /// between probes, as Go's 15s (docker-proxy's); 0 turns it off
    #[arg(long = "tcp-keepalive", value_name = "DURATION", default_value = "15s",
          value_parser = duration::parse)]
    pub tcp_keepalive: Duration,
    /// Close UDP sessions idle this long (docker-proxy: 90s); must be more than 0
    #[arg(long = "udp-idle-timeout", value_name = "DURATION", default_value = "90s",
          value_parser = positive_duration)]
    pub udp_idle_timeout: Duration,
    /// Most UDP sessions per binding; the least recently used is evicted past it
    #[arg(long = "udp-max-sessions", value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub udp_max_sessions: u32,
    /// Capacity of each splice pipe in bytes
    #[arg(long = "pipe-size", value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u32).range(4096..))]
    pub pipe_size: u32,
    /// Copy through user space instead of splice(2) (for comparison)
    #[arg(long = "no-splice")]
    pub no_splice: bool,
    /// Start each TCP connection to the container with a PROXY protocol header (v1 text or v2
    /// binary, as HAProxy's `send-proxy`), so it sees the client's address; the container must
    /// expect it. UDP bindings are not affected
    #[arg(long = "proxy-protocol", value_name = "v1|v2", allow_hyphen_values = true,
          value_parser = crate::proxy::proxy_proto::Version::from_str)]
    pub proxy_protocol: Option<crate::proxy::proxy_proto::Version>,
    /// Connect to the container from the client's own address and port (IP_TRANSPARENT, TCP
    /// and UDP), so it sees the real client without a PROXY header. Needs CAP_NET_ADMIN;
    /// cproxy routes the replies back (a rule and a local route, and an iptables mark rule,
    /// shared by every cproxy of the network namespace, gone with the last). Clients on
    /// loopback, or of another address family than the container, are forwarded from cproxy's
    /// address, logged once and counted
    #[arg(long = "source-ip-transparent", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", value_parser = BoolishValueParser::new(),
          action = ArgAction::Set)]
    pub source_ip_transparent: bool,
    /// Log lines as text or as JSON objects, one per line (for log shippers); CPROXY_LOG (or
    /// RUST_LOG) sets what is logged, e.g. `info` or `debug`
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text",
          value_parser = ["text", "json"])]
    pub log_format: String,
    /// Worker threads, 1 to 1024 (default: for a single binding as docker-proxy, 1 while idle
    /// and up to one per CPU while connections overlap; one per CPU for `cproxy forward`; 1
    /// runs everything on one thread, the least memory)
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS as i64))]
    pub threads: Option<u16>,
}

/// Most worker threads `-threads` accepts: far more than any host has cores, and few enough
/// that the runtime can always start them (a thread limit would otherwise abort the process
/// before it could report anything on the status pipe).
pub const MAX_THREADS: u16 = 1024;

/// Parses an integer as Go's `flag.Int` does (`strconv.ParseInt(s, 0, 64)`: an optional sign,
/// then decimal, `0x` hex, `0o`/`0` octal or `0b` binary), in the words Go's `flag` package
/// uses for a bad value.
pub fn go_int(s: &str) -> Result<i64, GoIntError> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (8, oct)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (2, bin)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return Err(GoIntError::Syntax);
    }
    let magnitude = u64::from_str_radix(body, radix).map_err(|_| GoIntError::Range)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude).ok_or(GoIntError::Range)
    } else {
        i64::try_from(magnitude).map_err(|_| GoIntError::Range)
    }
}

/// Why [`go_int`] refused a value: Go's `flag` package's two reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoIntError {
    /// Not a number.
    Syntax,
    /// A number too large for 64 bits.
    Range,
}

impl std::fmt::Display for GoIntError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GoIntError::Syntax => "parse error",
            GoIntError::Range => "value out of range",
        })
    }
}

impl std::error::Error for GoIntError {}

/// A Go duration that is more than zero: a zero UDP idle timeout would expire every session as
/// it opens, and a zero connect timeout would fail every dial.
fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration::parse(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0 (e.g. 90s)".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

impl Tuning {
    /// True when logs are to be JSON lines.
    pub fn json_logs(&self) -> bool {
        self.log_format == "json"
    }

    /// The forwarder configuration these flags describe.
    pub fn config(&self) -> Config {
        Config {
            connect_timeout: self.connect_timeout,
            grace: self.grace,
            max_connections: self.max_conns as usize,
            tcp_idle_timeout: self.tcp_idle_timeout.filter(|d| !d.is_zero()),
            tcp_keepalive: Some(self.tcp_keepalive).filter(|d| !d.is_zero()),
            udp_idle_timeout: self.udp_idle_timeout,
            udp_max_sessions: self.udp_max_sessions as usize,
            pipe_size: self.pipe_size as usize,
            relay: if self.no_splice { RelayMode::Copy } else { RelayMode::Splice },
            proxy_protocol: self.proxy_protocol,
            transparent: self.source_ip_transparent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::normalize_args;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("cproxy").chain(args.iter().copied()).map(Into::into);
        Cli::try_parse_from(normalize_args(argv.collect()))
    }

    #[test]
    fn dockerd_command_line_parses() {
        let cli = parse(&[
            "-proto",
            "tcp",
            "-host-ip",
            "0.0.0.0",
            "-host-port",
            "8080",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
            "-use-listen-fd",
        ])
        .unwrap();
        let a = cli.docker_proxy;
        assert_eq!((a.host_port, a.container_port, a.use_listen_fd), (Some(8080), Some(80), true));
        assert_eq!(a.container_ip.to_string(), "172.17.0.2");
    }

    #[test]
    fn go_bool_forms_are_accepted() {
        assert!(!parse(&["-use-listen-fd=false"]).unwrap().docker_proxy.use_listen_fd);
        assert!(parse(&["-use-listen-fd=true"]).unwrap().docker_proxy.use_listen_fd);
        assert!(parse(&["-v"]).unwrap().docker_proxy.version);
        assert!(parse(&["-version"]).unwrap().docker_proxy.version);
    }

    #[test]
    fn bad_values_and_unknown_flags_are_usage_errors() {
        for args in [
            &["-host-port", "0x"][..],
            &["-host-ip", "not-an-ip"],
            &["-bogus"],
            &["-grace", "5"],
            &["-max-conns", "0"],
            &["-threads", "0"],
            &["-threads", "65535"],
            &["-udp-idle-timeout", "0"],
            &["-connect-timeout", "0s"],
            &["-proxy-protocol", "v3"],
            &["-proxy-protocol"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn tuning_defaults_match_docker_proxy_where_it_has_one() {
        let c = parse(&[]).unwrap().docker_proxy.tuning.config();
        assert_eq!(c.udp_idle_timeout, Duration::from_secs(90));
        assert_eq!(c.tcp_idle_timeout, None);
        assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(15)), "Go's keepalive period");
        assert_eq!(c.relay, RelayMode::Splice);
    }

    #[test]
    fn tcp_keepalive_is_tuned_or_turned_off_in_both_forms() {
        let c = parse(&["-tcp-keepalive", "1m"]).unwrap().docker_proxy.tuning.config();
        assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(60)));
        let c = parse(&["-tcp-keepalive=0"]).unwrap().docker_proxy.tuning.config();
        assert_eq!(c.tcp_keepalive, None, "0 turns keepalive off");
        let cli = parse(&["forward", "--to", "10.0.0.2", "-p", "80", "--tcp-keepalive", "30s"]);
        let Some(Command::Forward(f)) = cli.unwrap().command else { panic!("not forward") };
        assert_eq!(f.tuning.config().tcp_keepalive, Some(Duration::from_secs(30)));
        assert!(parse(&["-tcp-keepalive", "15"]).is_err(), "a duration needs its unit");
    }

    #[test]
    fn proxy_protocol_is_off_unless_asked_for_in_either_flag_form() {
        use crate::proxy::proxy_proto::Version;
        assert_eq!(parse(&[]).unwrap().docker_proxy.tuning.config().proxy_protocol, None);
        for (args, want) in [
            (&["-proxy-protocol", "v1"][..], Version::V1),
            (&["-proxy-protocol=v2"], Version::V2),
            (&["--proxy-protocol", "v2"], Version::V2),
        ] {
            let config = parse(args).unwrap().docker_proxy.tuning.config();
            assert_eq!(config.proxy_protocol, Some(want), "{args:?}");
        }
        let cli = parse(&["forward", "--to", "127.0.0.1", "-p", "80", "--proxy-protocol", "v1"]);
        let Some(Command::Forward(f)) = cli.unwrap().command else { panic!("not forward") };
        assert_eq!(f.tuning.config().proxy_protocol, Some(Version::V1));
    }

    #[test]
    fn source_ip_transparent_is_a_go_bool_flag_off_by_default() {
        let transparent =
            |args: &[&str]| parse(args).unwrap().docker_proxy.tuning.config().transparent;
        assert!(!transparent(&[]));
        assert!(transparent(&["-source-ip-transparent"]));
        assert!(transparent(&["--source-ip-transparent=true"]));
        assert!(!transparent(&["-source-ip-transparent=false"]));
        assert!(parse(&["-source-ip-transparent=maybe"]).is_err());
        let cli = parse(&["forward", "--to", "10.0.0.2", "-p", "80", "--source-ip-transparent"]);
        let Some(Command::Forward(f)) = cli.unwrap().command else { panic!("not forward") };
        assert!(f.tuning.config().transparent);
    }

    /// Go's `flag`: the last of a repeated flag wins, and a value may start with a dash.
    #[test]
    fn repeated_flags_take_the_last_value_as_go_flag_does() {
        let a = parse(&["-host-port", "1", "-proto", "udp", "-host-port=2", "-proto", "tcp"])
            .unwrap()
            .docker_proxy;
        assert_eq!((a.host_port, a.proto.as_str()), (Some(2), "tcp"));
        let a = parse(&["-use-listen-fd", "-use-listen-fd=false"]).unwrap().docker_proxy;
        assert!(!a.use_listen_fd);
    }

    #[test]
    fn ports_are_go_ints_so_out_of_range_ports_parse_as_in_docker_proxy() {
        let a = parse(&["-host-port", "-1", "-container-port", "70000"]).unwrap().docker_proxy;
        assert_eq!((a.host_port, a.container_port), (Some(-1), Some(70000)));
    }

    #[test]
    fn go_ints_take_gos_bases_and_refuse_in_gos_words() {
        assert_eq!(go_int("8080"), Ok(8080));
        assert_eq!(go_int("-1"), Ok(-1));
        assert_eq!(go_int("+7"), Ok(7));
        assert_eq!(go_int("0x1F90"), Ok(8080));
        assert_eq!(go_int("017"), Ok(15));
        assert_eq!(go_int("0o17"), Ok(15));
        assert_eq!(go_int("0b11"), Ok(3));
        assert_eq!(go_int("0"), Ok(0));
        assert_eq!(go_int("-9223372036854775808"), Ok(i64::MIN));
        for bad in ["", "-", "http", "80a", "0x", "1.5", " 80"] {
            assert_eq!(go_int(bad), Err(GoIntError::Syntax), "{bad:?}");
        }
        assert_eq!(go_int("9223372036854775808"), Err(GoIntError::Range));
        assert_eq!(GoIntError::Syntax.to_string(), "parse error");
    }
}
