//! `cproxy-load`: cproxy's load tool and side-by-side benchmark. It runs its own backends on
//! loopback, puts each peer (no proxy, cproxy, cproxy's copy fallback, socat, HAProxy) in front
//! of them, measures throughput, connection rate, latency, UDP rate, memory and CPU, and prints
//! each figure beside its ratio of the direct path. Every load targets loopback only, is
//! bounded in time and count, and stops by itself.

mod backend;
mod bindings;
mod bulk;
mod compare;
mod connect;
mod datagram;
mod goals;
mod iperf3;
mod latency;
mod load;
mod machine;
mod peer;
mod process;
mod report;
mod results;
mod stats;
mod udp_bulk;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cproxy::cli::DockerProxyArgs;
use cproxy::compat::{self, StatusPipe};
use cproxy::duration;

use crate::compare::Settings;
use crate::load::Window;
use crate::peer::{CproxyBin, PeerKind};
use crate::results::{Cell, Figure, PeerStatus, Results};

/// First argument that makes this binary run cproxy's forwarder instead (see
/// [`CproxyBin::BuiltIn`]).
pub(crate) const BUILTIN_CPROXY: &str = "__cproxy";

/// Exit code when a figure of direct or cproxy could not be measured.
const EXIT_UNMEASURED: u8 = 1;
/// Exit code when Ctrl-C cut the run short.
const EXIT_INTERRUPTED: u8 = 130;

/// Load generator and side-by-side benchmark for cproxy (loopback only).
#[derive(Debug, Parser)]
#[command(name = "cproxy-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure direct, cproxy, cproxy -no-splice, docker-proxy, socat and HAProxy side by side
    Compare(CompareArgs),
    /// Memory and threads of N bindings in one cproxy process, next to N single-binding
    /// processes as dockerd runs docker-proxy
    Bindings(BindingsArgs),
}

/// Flags of `bindings`.
#[derive(Debug, Args)]
struct BindingsArgs {
    /// Binding counts to measure, comma-separated
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1,1000,10000",
          value_parser = clap::value_parser!(u32).range(1..=20000))]
    counts: Vec<u32>,
    /// cproxy binary to measure [default: the cproxy next to cproxy-load]
    #[arg(long, value_name = "PATH")]
    cproxy: Option<PathBuf>,
    /// docker-proxy binary to measure beside it [default: docker-proxy in PATH, /usr/sbin or
    /// /usr/libexec/docker]
    #[arg(long = "docker-proxy", value_name = "PATH")]
    docker_proxy: Option<PathBuf>,
    /// Numbers of single-binding processes to run at once as dockerd runs them (cproxy alone,
    /// cproxy with a shared forwarder, docker-proxy), measured by PSS; comma-separated
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1,100",
          value_parser = clap::value_parser!(u32).range(1..=5000))]
    processes: Vec<u32>,
}

/// Flags of `compare`.
#[derive(Debug, Args)]
#[command(after_help = "\
Peers that are not installed are skipped, and the table says so. The exit code is 1 only if a \
figure of direct or cproxy could not be measured (a peer would not start, a load failed), never \
because of a speed; cproxy's UDP answering nothing reads \"no replies\" and passes unless \
--require-udp-replies is given.")]
struct CompareArgs {
    /// Smoke run for CI: 1 s per figure, one round, no iperf3; under 60 s in all
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to PATH
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// cproxy binary to measure [default: the cproxy next to cproxy-load, else the forwarder
    /// built into cproxy-load]
    #[arg(long, value_name = "PATH")]
    cproxy: Option<PathBuf>,
    /// docker-proxy binary to measure [default: docker-proxy in PATH, /usr/sbin or
    /// /usr/libexec/docker]
    #[arg(long = "docker-proxy", value_name = "PATH")]
    docker_proxy: Option<PathBuf>,
    /// Peers to measure, comma-separated [default: all]; direct is always measured, being the
    /// yardstick
    #[arg(long, value_enum, value_delimiter = ',')]
    peers: Vec<PeerKind>,
    /// Another cproxy build to measure beside the first, as the peer cproxy-baseline (e.g.
    /// main's, for a change's before and after in one run)
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Counted time of each load [default: 3s, 1s with --quick]
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    duration: Option<Duration>,
    /// Throughput rounds per peer, the median is reported [default: 3, 1 with --quick]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=20))]
    rounds: Option<u16>,
    /// Streams of the multi-stream throughput figure
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(2..=64))]
    streams: u16,
    /// Concurrent clients of the connection-rate and UDP loads
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    clients: u16,
    /// Concurrent clients of the second connection-rate figure
    #[arg(long = "many-clients", value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    many_clients: u16,
    /// Bytes of each datagram of the UDP bulk figure (one sender) [default: 1472, the most an
    /// Ethernet frame carries unfragmented]
    #[arg(long = "udp-size", value_name = "BYTES",
          value_parser = clap::value_parser!(u16).range(1..=udp_bulk::MAX_SIZE as i64))]
    udp_size: Option<u16>,
    /// Skip the iperf3 cross-check of the direct 1-stream figure
    #[arg(long = "no-iperf3")]
    no_iperf3: bool,
    /// Count cproxy's UDP answering nothing as unmeasured (exit 1)
    #[arg(long = "require-udp-replies")]
    require_udp_replies: bool,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == BUILTIN_CPROXY) {
        return builtin_cproxy();
    }
    match Cli::parse().command {
        Command::Compare(args) => compare(args),
        Command::Bindings(args) => {
            let result = cproxy_bin(args.cproxy.as_deref()).and_then(|cproxy| {
                let docker_proxy =
                    args.docker_proxy.or_else(|| testkit::spawn::find_program("docker-proxy"));
                let counts: Vec<usize> = args.counts.iter().map(|&n| n as usize).collect();
                let processes: Vec<usize> = args.processes.iter().map(|&n| n as usize).collect();
                bindings::run(&cproxy, docker_proxy.as_deref(), &counts, &processes)
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cproxy-load bindings: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `cproxy-load compare`.
fn compare(args: CompareArgs) -> ExitCode {
    load::catch_interrupts();
    let cproxy = match cproxy_bin(args.cproxy.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cproxy-load: {e}");
            return ExitCode::from(2);
        }
    };
    let peers = selected_peers(&args.peers, args.baseline.is_some());
    let (warmup, duration, rounds) = if args.quick {
        (Duration::from_millis(200), Duration::from_secs(1), 1)
    } else {
        (Duration::from_millis(500), Duration::from_secs(3), 3)
    };
    let settings = Settings {
        peers,
        window: Window { warmup, duration: args.duration.unwrap_or(duration) },
        rounds: args.rounds.map_or(rounds, usize::from),
        streams: args.streams.into(),
        clients: args.clients.into(),
        many_clients: args.many_clients.into(),
        udp_size: args.udp_size.map_or(udp_bulk::DEFAULT_SIZE, usize::from),
        iperf3: !args.quick && !args.no_iperf3,
        cproxy,
        docker_proxy: args.docker_proxy.or_else(|| testkit::spawn::find_program("docker-proxy")),
        baseline: args.baseline,
        quick: args.quick,
    };
    eprintln!("cproxy-load: cproxy is {}", settings.cproxy.describe());
    let results = match compare::run(&settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cproxy-load: {e}");
            return ExitCode::from(EXIT_UNMEASURED);
        }
    };
    print!("{}", header(&results));
    print!("{}", report::text(&results));
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.json
        && let Err(e) = std::fs::write(path, format!("{}\n", report::json(&results)))
    {
        eprintln!("cproxy-load: cannot write {}: {e}", path.display());
        code = ExitCode::from(EXIT_UNMEASURED);
    }
    let unmeasured = unmeasured(&results, args.require_udp_replies);
    if results.interrupted {
        eprintln!("cproxy-load: interrupted");
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if !unmeasured.is_empty() {
        eprintln!("cproxy-load: could not measure, for direct/cproxy:");
        for u in &unmeasured {
            eprintln!("  {u}");
        }
        return ExitCode::from(EXIT_UNMEASURED);
    }
    code
}

/// The peers to run, in table order: direct first, then those asked for (all if none were),
/// and the baseline after cproxy if there is one.
fn selected_peers(asked: &[PeerKind], baseline: bool) -> Vec<PeerKind> {
    let asked = if asked.is_empty() { &PeerKind::ALL[..] } else { asked };
    let mut peers = vec![PeerKind::Direct];
    for &p in asked {
        if !peers.contains(&p) {
            peers.push(p);
        }
        if p == PeerKind::Cproxy && baseline && !asked.contains(&PeerKind::CproxyBaseline) {
            peers.push(PeerKind::CproxyBaseline);
        }
    }
    peers
}

/// The lines above the table: where and how the run was made.
fn header(r: &Results) -> String {
    let m = &r.machine;
    let s = &r.settings;
    format!(
        "cproxy-load compare{}: {} cores, {}, kernel {}, load average {} -> {}\n\
         each load {:.1}s after {:.1}s warmup; throughput: median of {} round(s); {} clients \
         ({} for the second connection rate); {:.0}s in all\n\n",
        if s.quick { " --quick" } else { "" },
        m.cores,
        m.cpu,
        m.kernel,
        m.load_start,
        m.load_end,
        s.window.duration.as_secs_f64(),
        s.window.warmup.as_secs_f64(),
        s.rounds,
        s.clients,
        s.many_clients,
        r.elapsed.as_secs_f64(),
    )
}

/// The figures of direct and cproxy that could not be measured, as lines. A peer's UDP giving
/// no replies counts only for direct (whose backend must answer), or with `require_udp`.
fn unmeasured(r: &Results, require_udp: bool) -> Vec<String> {
    let mut out = Vec::new();
    for p in r.peers.iter().filter(|p| p.kind.required()) {
        let name = p.kind.name();
        match &p.status {
            PeerStatus::Measured => {}
            PeerStatus::Skipped(why) | PeerStatus::Failed(why) => {
                out.push(format!("{name}: {why}"));
                continue;
            }
        }
        for f in Figure::ALL {
            match p.cell(f) {
                Cell::Failed(why) => {
                    out.push(format!("{name} {}: {why}", results::label(f, &r.settings)))
                }
                Cell::NoReplies if p.kind == PeerKind::Direct || require_udp => {
                    out.push(format!("{name} {}: no replies", results::label(f, &r.settings)));
                }
                _ => {}
            }
        }
    }
    out
}

/// The cproxy to measure: `flag` if given; else the `cproxy` built next to this executable;
/// else this executable's built-in forwarder (`cargo run -p cproxy-load` builds only
/// cproxy-load, so on a fresh checkout there is no cproxy beside it).
fn cproxy_bin(flag: Option<&Path>) -> Result<CproxyBin, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(CproxyBin::Path(p.to_path_buf()))
        } else {
            Err(format!("--cproxy {}: no such file", p.display()))
        };
    }
    let sibling = me.with_file_name("cproxy");
    if !sibling.is_file() {
        return Ok(CproxyBin::BuiltIn(me));
    }
    // `cargo run -p cproxy-load` rebuilds the library but does not relink cproxy: a cproxy
    // older than the library beside it predates the forwarder's last change.
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(binary), Some(library)) =
        (modified(&sibling), modified(&me.with_file_name("libcproxy.rlib")))
        && binary < library
    {
        eprintln!(
            "cproxy-load: warning: {} is older than the cproxy library built beside it, so it may \
             not be the current forwarder; `cargo build --release --workspace` relinks it",
            sibling.display()
        );
    }
    Ok(CproxyBin::Path(sibling))
}

/// cproxy's forwarder as its own binary runs it in docker-proxy mode: claims fd 3 first,
/// takes docker-proxy's flags (Go style), logs to stderr under `CPROXY_LOG`.
fn builtin_cproxy() -> ExitCode {
    /// docker-proxy's command line, as the cproxy binary takes it.
    #[derive(Debug, Parser)]
    #[command(name = "cproxy", disable_version_flag = true)]
    struct Builtin {
        #[command(flatten)]
        docker_proxy: DockerProxyArgs,
    }
    let status = StatusPipe::from_fd3();
    let argv: Vec<OsString> =
        std::iter::once(OsString::from("cproxy")).chain(std::env::args_os().skip(2)).collect();
    let cli = match Builtin::try_parse_from(compat::normalize_args(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                status.fail(e.to_string().lines().next().unwrap_or("usage error"));
            }
            e.exit();
        }
    };
    cproxy::serve::init_logging(false, None);
    cproxy::serve::docker_proxy(cli.docker_proxy, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `compare`'s flags from `args`.
    fn compare_args(args: &[&str]) -> CompareArgs {
        let argv = ["cproxy-load", "compare"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Compare(a) => a,
            Command::Bindings(_) => panic!("parsed as bindings"),
        }
    }

    #[test]
    fn compare_defaults_to_every_peer_and_eight_streams() {
        let a = compare_args(&[]);
        assert_eq!(selected_peers(&a.peers, false), PeerKind::ALL);
        assert_eq!((a.streams, a.quick, a.json), (8, false, None));
    }

    #[test]
    fn peers_are_chosen_by_comma_separated_names_after_direct() {
        let a = compare_args(&["--peers", "socat,cproxy,socat"]);
        assert_eq!(
            selected_peers(&a.peers, false),
            [PeerKind::Direct, PeerKind::Socat, PeerKind::Cproxy]
        );
    }

    #[test]
    fn a_baseline_is_measured_right_after_cproxy() {
        let a = compare_args(&["--peers", "socat,cproxy", "--baseline", "/bin/true"]);
        let peers = selected_peers(&a.peers, a.baseline.is_some());
        let expected =
            [PeerKind::Direct, PeerKind::Socat, PeerKind::Cproxy, PeerKind::CproxyBaseline];
        assert_eq!(peers, expected);
    }

    #[test]
    fn unknown_peers_and_bad_counts_are_usage_errors() {
        for args in [&["--peers", "nginx"][..], &["--streams", "1"], &["--duration", "3"]] {
            let argv = ["cproxy-load", "compare"].iter().chain(args);
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }

    #[test]
    fn bindings_counts_default_to_1_1000_10000_and_refuse_0() {
        match Cli::try_parse_from(["cproxy-load", "bindings"]).unwrap().command {
            Command::Bindings(b) => assert_eq!(b.counts, [1, 1000, 10000]),
            Command::Compare(_) => panic!("parsed as compare"),
        }
        assert!(Cli::try_parse_from(["cproxy-load", "bindings", "--counts", "1,0"]).is_err());
    }

    #[test]
    fn an_explicit_cproxy_that_does_not_exist_is_refused() {
        assert!(cproxy_bin(Some(Path::new("/nonexistent/cproxy"))).is_err());
    }
}
