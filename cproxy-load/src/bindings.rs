//! Memory of many bindings: one `cproxy forward` process serving N bindings on 127.0.0.1, next
//! to what N single-binding processes cost, the way dockerd runs docker-proxy (and cproxy in its
//! place): one such process is started and measured, and its memory counted N times.
//!
//! Every binding of the big process is checked to be listening (it printed its `docker port`
//! line), and a sample of them carries an echo, so the memory is that of bindings that work.
//!
//! Then N processes as dockerd runs them, all at once ([`dockerd`]), measured by PSS (each
//! shared page divided among the processes that map it: what N processes really cost, which
//! RSS counts N times): cproxy alone, cproxy handing its port to a shared forwarder (the
//! forwarder's own PSS reported beside it and counted in the per-port figure), docker-proxy.
//! The per-port program is `cproxy-docker-proxy` where it was built beside cproxy (what the
//! README names in dockerd's `userland-proxy-path`), else cproxy.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::procfs;
use testkit::spawn::docker_proxy_args;

use crate::backend::{Backends, ECHO};
use crate::load;
use crate::peer::CproxyBin;
use crate::process::{Process, Readiness, TempDir};

/// Bindings of the big process that carry an echo, spread evenly over all of them.
const SAMPLED: usize = 25;

/// What one process serving some bindings costs.
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Of which anonymous (`RssAnon`: heap, stacks; the rest is the program's and libraries'
    /// file pages, shared with every other process that maps them), KiB.
    pub anon_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Proportional set size (`Pss` of smaps_rollup), KiB.
    pub pss_kib: u64,
}

/// Measures `cproxy forward` with each of `counts` bindings, and one single-binding cproxy and
/// docker-proxy (if given) as dockerd runs them; prints a table.
pub fn run(
    cproxy: &CproxyBin,
    docker_proxy: Option<&Path>,
    counts: &[usize],
    processes: &[usize],
) -> Result<(), String> {
    let CproxyBin::Path(cproxy) = cproxy else {
        return Err(needs_cproxy());
    };
    let backends = Backends::start(4).map_err(|e| format!("cannot start the backends: {e}"))?;
    let dir = TempDir::new("cproxy-load")
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    if !counts.is_empty() {
        one_process(cproxy, docker_proxy, counts, &backends, &dir)?;
    }
    if !processes.is_empty() {
        dockerd(cproxy, docker_proxy, processes, &backends, &dir)?;
    }
    Ok(())
}

fn needs_cproxy() -> String {
    "`bindings` runs `cproxy forward`, which the forwarder built into cproxy-load lacks: \
     `cargo build --release --workspace` builds cproxy next to it"
        .to_string()
}

/// `cproxy forward` with each of `counts` bindings, beside single-binding processes counted N
/// times.
fn one_process(
    cproxy: &Path,
    docker_proxy: Option<&Path>,
    counts: &[usize],
    backends: &Backends,
    dir: &TempDir,
) -> Result<(), String> {
    let single = |what: &str, program: &Path| -> Result<Footprint, String> {
        let mut cmd = Command::new(program);
        cmd.args(docker_proxy_args("tcp", Some(0), backends.tcp));
        let log = dir.path().join(format!("{what}.log"));
        let p = Process::start(what, cmd, &log, Readiness::StatusPipe)?;
        footprint(p.pid())
    };
    let one_cproxy = single("cproxy", cproxy)?;
    let one_docker_proxy = docker_proxy.map(|p| single("docker-proxy", p)).transpose()?;
    println!(
        "{:>9}  {:>38}  {:>27}  {:>27}",
        "bindings", "cproxy forward, 1 process", "N cproxy processes", "N docker-proxy processes"
    );
    for &n in counts {
        let f = forward(cproxy, n, backends.tcp, dir)?;
        let per_process = |one: &Footprint| {
            format!("{:.1} MiB, {} threads", mib(one.rss_kib * n as u64), one.threads * n as u64)
        };
        println!(
            "{:>9}  {:>38}  {:>27}  {:>27}",
            n,
            format!(
                "{:.1} MiB ({:.1} anonymous), {} threads",
                mib(f.rss_kib),
                mib(f.anon_kib),
                f.threads
            ),
            per_process(&one_cproxy),
            one_docker_proxy.as_ref().map_or("(no docker-proxy)".to_string(), per_process),
        );
    }
    println!(
        "one single-binding process: cproxy {:.1} MiB ({:.1} anonymous), {} threads; \
         docker-proxy {}",
        mib(one_cproxy.rss_kib),
        mib(one_cproxy.anon_kib),
        one_cproxy.threads,
        one_docker_proxy.map_or("not measured (--docker-proxy PATH)".to_string(), |d| format!(
            "{:.1} MiB, {} threads",
            mib(d.rss_kib),
            d.threads
        )),
    );
    println!(
        "(RSS; N processes share their program's and libc's pages, so they take somewhat less \
         than N times one)"
    );
    Ok(())
}

/// What N processes, one per port, cost as dockerd runs them: per process, on average.
struct Fleet {
    /// Average PSS per process, KiB.
    pss_kib: f64,
    /// Average RSS per process, KiB.
    rss_kib: f64,
    /// Threads per process (the most of any).
    threads: u64,
}

/// N single-binding processes at once, for each of `processes`: cproxy without a forwarder,
/// cproxy with a shared forwarder, docker-proxy; a sample of each carries an echo.
fn dockerd(
    cproxy: &Path,
    docker_proxy: Option<&Path>,
    processes: &[usize],
    backends: &Backends,
    dir: &TempDir,
) -> Result<(), String> {
    let socket = dir.path().join("forwarder.sock");
    // The program the README names in dockerd's userland-proxy-path, where it was built.
    let lean = cproxy.with_file_name("cproxy-docker-proxy");
    let per_port = if lean.exists() { lean.as_path() } else { cproxy };
    // And the program it names for the shared forwarder, else `cproxy forward`.
    let lean_forwarder = cproxy.with_file_name("cproxy-forward");
    let forwarder = match lean_forwarder.exists() {
        true => lean_forwarder.display().to_string(),
        false => format!("{} forward", cproxy.display()),
    };
    println!();
    println!(
        "N processes as dockerd runs them, one per port (PSS per process, KiB; RSS; threads), \
         each {}; the shared forwarder {forwarder}:",
        per_port.display()
    );
    println!(
        "{:>9}  {:>30}  {:>30}  {:>22}  {:>30}",
        "processes",
        "cproxy alone",
        "cproxy, shared forwarder",
        "forwarder (1 process)",
        "docker-proxy"
    );
    let cell =
        |f: &Fleet| format!("{:.0} PSS ({:.0} RSS), {} thr", f.pss_kib, f.rss_kib, f.threads);
    for &n in processes {
        let alone = fleet(per_port, n, backends.tcp, dir, &[("CPROXY_FORWARDER", "")], "alone")?;
        let mut cmd = match lean_forwarder.exists() {
            true => Command::new(&lean_forwarder),
            false => {
                let mut cmd = Command::new(cproxy);
                cmd.arg("forward");
                cmd
            }
        };
        cmd.arg("--control").arg(&socket);
        let log = dir.path().join(format!("shared-forwarder-{n}.log"));
        let forwarder = Process::start("the shared forwarder", cmd, &log, Readiness::StatusPipe)?;
        let env = [("CPROXY_FORWARDER", socket.to_str().ok_or("a non-UTF-8 temporary path")?)];
        let shared = fleet(per_port, n, backends.tcp, dir, &env, "shared")?;
        let f = footprint(forwarder.pid())?;
        drop(forwarder);
        let per_port = shared.pss_kib + f.pss_kib as f64 / n as f64;
        let docker = match docker_proxy {
            Some(p) => cell(&fleet(p, n, backends.tcp, dir, &[], "docker-proxy")?),
            None => "(no docker-proxy)".to_string(),
        };
        println!(
            "{:>9}  {:>30}  {:>30}  {:>22}  {:>30}",
            n,
            cell(&alone),
            cell(&shared),
            format!("{} PSS, {} thr", f.pss_kib, f.threads),
            docker
        );
        println!(
            "{:>9}  with the shared forwarder, per port counting its share: {per_port:.0} KiB PSS",
            ""
        );
    }
    Ok(())
}

/// Starts `n` single-binding processes of `program` at once (docker-proxy's flags, a status
/// pipe each, `env` added), checks an echo through a sample, and measures them together.
fn fleet(
    program: &Path,
    n: usize,
    backend: SocketAddr,
    dir: &TempDir,
    env: &[(&str, &str)],
    what: &str,
) -> Result<Fleet, String> {
    let mut procs = Vec::with_capacity(n);
    let mut hosts = Vec::with_capacity(n);
    for i in 0..n {
        let port = testkit::peers::free_tcp_port().map_err(|e| format!("no free port: {e}"))?;
        let mut cmd = Command::new(program);
        cmd.args(docker_proxy_args("tcp", Some(port), backend));
        cmd.envs(env.iter().copied());
        let log = dir.path().join(format!("{what}-{n}-{i}.log"));
        procs.push(Process::start(
            &format!("{what} process {i}"),
            cmd,
            &log,
            Readiness::StatusPipe,
        )?);
        hosts.push(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    for host in hosts.iter().step_by(n.div_ceil(SAMPLED).max(1)) {
        echo(*host)?;
    }
    // Settled: what a waiting process holds, not what starting took.
    std::thread::sleep(Duration::from_millis(200));
    let (mut pss, mut rss, mut threads) = (0u64, 0u64, 0u64);
    for p in &procs {
        let f = footprint(p.pid())?;
        pss += f.pss_kib;
        rss += f.rss_kib;
        threads = threads.max(f.threads);
    }
    Ok(Fleet { pss_kib: pss as f64 / n as f64, rss_kib: rss as f64 / n as f64, threads })
}

/// Starts `cproxy forward` with `n` bindings from free ports of 127.0.0.1 to `backend`, checks
/// a sample of them, and measures it.
fn forward(
    cproxy: &Path,
    n: usize,
    backend: SocketAddr,
    dir: &TempDir,
) -> Result<Footprint, String> {
    let spec = format!("127.0.0.1::{}", backend.port());
    let mut cmd = Command::new(cproxy);
    cmd.args(["forward", "--to", "127.0.0.1"]);
    for _ in 0..n {
        cmd.args(["-p", &spec]);
    }
    let log = dir.path().join(format!("forward-{n}.log"));
    let what = format!("cproxy forward with {n} bindings");
    let p = Process::start(&what, cmd, &log, Readiness::StatusPipe)?;
    let text =
        std::fs::read_to_string(&log).map_err(|e| format!("cannot read {what}'s output: {e}"))?;
    let hosts: Vec<SocketAddr> = text.lines().filter_map(published_host).collect();
    if hosts.len() != n {
        return Err(format!("{what} printed {} bindings, not {n}", hosts.len()));
    }
    for host in hosts.iter().step_by(n.div_ceil(SAMPLED).max(1)) {
        echo(*host)?;
    }
    footprint(p.pid())
}

/// The host address of a `docker port` line (`5000/tcp -> 127.0.0.1:49153`).
fn published_host(line: &str) -> Option<SocketAddr> {
    line.split_once(" -> ")?.1.parse().ok()
}

/// One echo through `host`.
fn echo(host: SocketAddr) -> Result<(), String> {
    let mut c = load::connect(host).map_err(|e| e.0)?;
    let out = [ECHO, 1, 2, 3];
    let mut back = [0u8; 4];
    c.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    c.write_all(&out)
        .and_then(|()| c.read_exact(&mut back))
        .map_err(|e| format!("echo through {host}: {e}"))?;
    if back == out { Ok(()) } else { Err(format!("echo through {host} came back wrong")) }
}

/// Resident memory and threads of `pid`.
fn footprint(pid: u32) -> Result<Footprint, String> {
    let rss_kib = procfs::memory(pid).ok_or(format!("process {pid} is gone"))?.rss_kib;
    let anon_kib = procfs::status_kib(pid, "RssAnon").unwrap_or(0);
    let threads = procfs::threads(pid).ok_or(format!("process {pid} is gone"))?;
    let pss_kib = procfs::pss_kib(pid).ok_or(format!("process {pid} is gone"))?;
    Ok(Footprint { rss_kib, anon_kib, threads, pss_kib })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_port_lines_give_the_host_address() {
        assert_eq!(
            published_host("5000/tcp -> 127.0.0.1:49153"),
            Some("127.0.0.1:49153".parse().unwrap())
        );
        assert_eq!(published_host("5000/tcp -> [::]:80"), Some("[::]:80".parse().unwrap()));
        assert_eq!(published_host("cproxy: warning"), None);
    }
}
