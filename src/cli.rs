//! The command line: docker-proxy's flags at the top level (what dockerd passes), and cproxy's
//! own subcommands. Parsing only; [`crate::serve`] runs what was asked for.

use std::net::IpAddr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::duration;
use crate::proxy::{Config, RelayMode};

/// cproxy forwards host ports to containers, like Docker's docker-proxy, with zero-copy TCP.
#[derive(Debug, Parser)]
#[command(
    name = "cproxy",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    after_help = "\
As docker-proxy (dockerd runs it this way through \"userland-proxy-path\"):
  cproxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80

Flags may be written Go-style with one dash (-host-ip X, -host-ip=X) or with two (--host-ip X).
A runtime may pass a pipe on fd 3: cproxy writes \"0\\n\" when it forwards, or \"1\\n<error>\".
SIGINT or SIGTERM stops accepting and lets open connections finish for -grace; a second one cuts them."
)]
pub struct Cli {
    /// Subcommand; without one, cproxy runs a single binding as docker-proxy does.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// docker-proxy's flags.
    #[command(flatten)]
    pub docker_proxy: DockerProxyArgs,
}

/// cproxy's own subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {}

/// docker-proxy's command line, flag for flag, plus cproxy's tuning flags.
#[derive(Debug, Args)]
pub struct DockerProxyArgs {
    /// Protocol to forward: tcp or udp
    #[arg(long, value_name = "PROTO", default_value = "tcp")]
    pub proto: String,
    /// Host address to listen on
    #[arg(long = "host-ip", value_name = "IP", default_value = "0.0.0.0")]
    pub host_ip: IpAddr,
    /// Host port to listen on (0 lets the kernel pick one)
    #[arg(long = "host-port", value_name = "PORT")]
    pub host_port: Option<u16>,
    /// Container address to forward to
    #[arg(long = "container-ip", value_name = "IP", default_value = "0.0.0.0")]
    pub container_ip: IpAddr,
    /// Container port to forward to
    #[arg(long = "container-port", value_name = "PORT")]
    pub container_port: Option<u16>,
    /// Use the socket the runtime already bound, passed on fd 4, instead of binding
    #[arg(long = "use-listen-fd", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set)]
    pub use_listen_fd: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Tuning.
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Flags that tune the forwarder; shared by every way of running it.
#[derive(Debug, Args, Clone)]
pub struct Tuning {
    /// How long open connections may finish after SIGINT/SIGTERM (docker-proxy: none)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub grace: Duration,
    /// Give up connecting to the container after this long and close the client
    #[arg(long = "connect-timeout", value_name = "DURATION", default_value = "10s",
          value_parser = duration::parse)]
    pub connect_timeout: Duration,
    /// Most concurrent TCP connections per binding; more are reset at once
    #[arg(long = "max-conns", value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_conns: u32,
    /// Close TCP connections idle this long (default: never, as docker-proxy)
    #[arg(long = "tcp-idle-timeout", value_name = "DURATION", value_parser = duration::parse)]
    pub tcp_idle_timeout: Option<Duration>,
    /// Close UDP sessions idle this long (docker-proxy: 90s)
    #[arg(long = "udp-idle-timeout", value_name = "DURATION", default_value = "90s",
          value_parser = duration::parse)]
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
    /// Worker threads (default: one per CPU)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl Tuning {
    /// The forwarder configuration these flags describe.
    pub fn config(&self) -> Config {
        Config {
            connect_timeout: self.connect_timeout,
            grace: self.grace,
            max_connections: self.max_conns as usize,
            tcp_idle_timeout: self.tcp_idle_timeout.filter(|d| !d.is_zero()),
            udp_idle_timeout: self.udp_idle_timeout,
            udp_max_sessions: self.udp_max_sessions as usize,
            pipe_size: self.pipe_size as usize,
            relay: if self.no_splice { RelayMode::Copy } else { RelayMode::Splice },
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
            &["-host-port", "70000"][..],
            &["-host-ip", "not-an-ip"],
            &["-bogus"],
            &["-grace", "5"],
            &["-max-conns", "0"],
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
        assert_eq!(c.relay, RelayMode::Splice);
    }
}
