//! The side-by-side run: starts the backends and every peer, runs each load against each peer
//! (throughput rounds interleaved across peers, so that a noisy neighbour hurts all of them
//! alike), and collects one [`Results`] for the report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use testkit::procfs;

use crate::backend::Backends;
use crate::load::{self, LoadError, Window};
use crate::machine::{self, Machine};
use crate::peer::{self, CproxyBin, NotStarted, Peer, PeerKind, Setup};
use crate::process::TempDir;
use crate::results::{Cell, Figure, PeerResult, PeerStatus, Results, label};
use crate::stats::median;
use crate::{bulk, connect, datagram, iperf3, latency, udp_bulk};

/// What to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Peers, in table order.
    pub peers: Vec<PeerKind>,
    /// Window of each load.
    pub window: Window,
    /// Throughput rounds per peer; the median is reported.
    pub rounds: usize,
    /// Streams of the multi-stream throughput figure.
    pub streams: usize,
    /// Concurrent clients of the connection-rate and UDP loads.
    pub clients: usize,
    /// Clients of the second connection-rate figure.
    pub many_clients: usize,
    /// Bytes of each datagram of the UDP bulk figure.
    pub udp_size: usize,
    /// Whether to run iperf3 on the direct path as a cross-check.
    pub iperf3: bool,
    /// How to run cproxy.
    pub cproxy: CproxyBin,
    /// docker-proxy's binary, if any.
    pub docker_proxy: Option<PathBuf>,
    /// Another cproxy build to measure beside the first, if any.
    pub baseline: Option<PathBuf>,
    /// The ≤ 60 s smoke mode.
    pub quick: bool,
}

/// A peer being measured and what it has come to so far.
struct Slot {
    peer: Option<Peer>,
    result: PeerResult,
    /// CPU seconds and bytes of the bulk runs, for CPU per GB.
    bulk_cpu: f64,
    bulk_bytes: u64,
    /// The most threads its process was seen with at the end of a TCP load.
    threads_seen: Option<u64>,
    /// CPU seconds and connections of the connection-rate runs, for CPU per connection.
    conn_cpu: f64,
    conns: u64,
}

/// Runs the comparison; `Err` only when the backends themselves cannot start.
pub fn run(settings: &Settings) -> Result<Results, String> {
    let began = Instant::now();
    let mut machine = Machine::read();
    let dir = TempDir::new("cproxy-load")
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let clients = settings.clients.max(settings.many_clients);
    let backends = Backends::start(settings.streams + clients + 4)
        .map_err(|e| format!("cannot start the loopback backends: {e}"))?;
    let progress = Progress { began };
    let setup = Setup {
        backends: &backends,
        cproxy: &settings.cproxy,
        docker_proxy: settings.docker_proxy.as_deref(),
        baseline: settings.baseline.as_deref(),
        dir: &dir,
    };
    let slots = settings.peers.iter().map(|&kind| start_slot(kind, &setup, &progress)).collect();
    let mut run = Run { settings, backends: &backends, progress, slots };
    run.idle_memory();
    run.throughput(Figure::Tcp1, 1);
    run.throughput(Figure::TcpN, settings.streams);
    run.connection_rate(Figure::ConnRate, settings.clients);
    run.connection_rate(Figure::ConnRateMany, settings.many_clients);
    run.cpu_figures();
    run.latency();
    run.datagrams();
    run.udp_bulk();
    run.peak_memory();
    let iperf3 = (settings.iperf3 && !load::interrupted()).then(|| {
        let r = iperf3::direct_1stream(settings.window, &dir);
        let text = match &r {
            Ok(g) => format!("{g:.2} Gbit/s"),
            Err(e) => format!("not run: {e}"),
        };
        run.progress.say(PeerKind::Direct, "iperf3 1-stream", &text);
        r
    });
    machine.load_end = machine::load_average();
    Ok(Results {
        settings: settings.clone(),
        machine,
        peers: run.slots.into_iter().map(|s| s.result).collect(),
        iperf3,
        elapsed: began.elapsed(),
        interrupted: load::interrupted(),
    })
}

/// A comparison under way: the peers and what each has come to so far. Each phase runs one
/// load against every peer in turn.
struct Run<'a> {
    settings: &'a Settings,
    backends: &'a Backends,
    progress: Progress,
    slots: Vec<Slot>,
}

impl Run<'_> {
    /// Memory and threads of each forwarding process before any load.
    fn idle_memory(&mut self) {
        for slot in &mut self.slots {
            let Some(peer) = slot.peer.as_ref() else { continue };
            let rss =
                process_figure(peer, |pid| Some(procfs::memory(pid)?.rss_kib as f64 / 1024.0));
            let pss = process_figure(peer, pss_mib);
            let threads = process_figure(peer, |pid| procfs::threads(pid).map(|n| n as f64));
            slot.result.cells.insert(Figure::RssIdle, rss);
            slot.result.cells.insert(Figure::PssIdle, pss);
            slot.result.cells.insert(Figure::ThreadsIdle, threads);
        }
    }

    /// Bulk throughput with `streams` streams: rounds interleaved across peers, the median
    /// of each peer's rounds kept.
    fn throughput(&mut self, figure: Figure, streams: usize) {
        let s = self.settings;
        for round in 0..s.rounds {
            for slot in &mut self.slots {
                let Some(peer) = measurable(&slot.peer) else { continue };
                let what = format!("{} round {}/{}", label(figure, s), round + 1, s.rounds);
                match bulk::run(peer.tcp, streams, s.window, self.backends, peer.tcp_pid) {
                    Ok(b) => {
                        self.progress.say(peer.kind, &what, &format!("{:.2} Gbit/s", b.gbit_per_s));
                        slot.saw_threads(b.proxy_threads);
                        slot.result.rounds.entry(figure).or_default().push(b.gbit_per_s);
                        if let Some(cpu) = b.proxy_cpu_seconds {
                            slot.bulk_cpu += cpu;
                            slot.bulk_bytes += b.bytes;
                        }
                    }
                    Err(e) => {
                        self.progress.say(peer.kind, &what, &format!("failed: {e}"));
                        slot.result.notes.push(format!("{what} failed: {e}"));
                    }
                }
            }
        }
        for slot in self.slots.iter_mut().filter(|s| s.peer.is_some()) {
            let rounds = slot.result.rounds.get(&figure).cloned().unwrap_or_default();
            let cell = match median(&rounds) {
                Some(m) => Cell::Value(m),
                None => Cell::Failed(format!("every {} round failed", label(figure, s))),
            };
            slot.result.cells.insert(figure, cell);
        }
    }

    /// CPU per GB over all the bulk runs, and per connection over the connection-rate runs.
    fn cpu_figures(&mut self) {
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let per = |cpu: f64, units: f64, none: &str| match peer.tcp_pid {
                None => Cell::NotApplicable("no proxy process".into()),
                Some(_) if units == 0.0 => Cell::Failed(none.into()),
                Some(_) => Cell::Value(cpu / units),
            };
            let gb = per(slot.bulk_cpu, slot.bulk_bytes as f64 / 1e9, "no bulk run succeeded");
            let conn = per(slot.conn_cpu * 1e6, slot.conns as f64, "no connection completed");
            slot.result.cells.insert(Figure::CpuPerGb, gb);
            slot.result.cells.insert(Figure::CpuPerConn, conn);
        }
    }

    /// Connections per second with `clients` clients, as `figure`.
    fn connection_rate(&mut self, figure: Figure, clients: usize) {
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let what = &label(figure, self.settings);
            let window = self.settings.window;
            let cell = match connect::run(peer.tcp, clients, window, peer.tcp_pid) {
                Ok(c) => {
                    self.progress.say(peer.kind, what, &format!("{:.0} conn/s", c.per_second));
                    slot.saw_threads(c.proxy_threads);
                    if let Some(cpu) = c.proxy_cpu_seconds {
                        slot.conn_cpu += cpu;
                        slot.conns += c.completed;
                    }
                    if c.failed > 0 {
                        let first = c.first_failure.map(|e| e.0).unwrap_or_default();
                        slot.result.notes.push(format!(
                            "{what}: {} of {} connections failed (first: {first})",
                            c.failed,
                            c.failed + c.completed
                        ));
                    }
                    Cell::Value(c.per_second)
                }
                Err(e) => self.progress.failed(peer.kind, what, e),
            };
            slot.result.cells.insert(figure, cell);
        }
    }

    /// Round-trip percentiles.
    fn latency(&mut self) {
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let cells = match latency::run(peer.tcp, self.settings.window) {
                Ok(l) => {
                    let text = format!(
                        "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs ({} round trips)",
                        l.p50_us, l.p99_us, l.p999_us, l.samples
                    );
                    self.progress.say(peer.kind, "latency", &text);
                    [l.p50_us, l.p99_us, l.p999_us].map(Cell::Value)
                }
                Err(e) => {
                    let cell = self.progress.failed(peer.kind, "latency", e);
                    [cell.clone(), cell.clone(), cell]
                }
            };
            for (f, cell) in [Figure::P50, Figure::P99, Figure::P999].into_iter().zip(cells) {
                slot.result.cells.insert(f, cell);
            }
        }
    }

    /// UDP transactions per second and loss.
    fn datagrams(&mut self) {
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let (rate, loss) = match peer.udp {
                Err(why) => (Cell::NotApplicable(why.into()), Cell::NotApplicable(why.into())),
                Ok(target) => udp_cells(peer.kind, target, self.settings, &self.progress),
            };
            slot.result.cells.insert(Figure::UdpRate, rate);
            slot.result.cells.insert(Figure::UdpLoss, loss);
        }
    }

    /// UDP bulk throughput, one sender, one size of datagram, and the forwarder's CPU per GB.
    fn udp_bulk(&mut self) {
        let s = self.settings;
        let what = &label(Figure::UdpBulk, s);
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let no_process = || Cell::NotApplicable("no proxy process".into());
            let (rate, cpu) = match peer.udp {
                Err(why) => (Cell::NotApplicable(why.into()), Cell::NotApplicable(why.into())),
                Ok(to) => {
                    match udp_bulk::run(to, s.udp_size, s.window, self.backends, peer.udp_pid) {
                        Ok(b) => {
                            let loss = b.loss * 100.0;
                            self.progress.say(
                                peer.kind,
                                what,
                                &format!("{:.2} Gbit/s, loss {loss:.1}%", b.gbit_per_s),
                            );
                            slot.result.notes.push(format!("{what}: {loss:.1}% lost"));
                            (
                                Cell::Value(b.gbit_per_s),
                                b.proxy_cpu_per_gb.map_or_else(no_process, Cell::Value),
                            )
                        }
                        Err(e) => {
                            let cell = self.progress.failed(peer.kind, what, e);
                            (cell.clone(), cell)
                        }
                    }
                }
            };
            slot.result.cells.insert(Figure::UdpBulk, rate);
            slot.result.cells.insert(Figure::UdpBulkCpu, cpu);
        }
    }

    /// Peak memory of each forwarding process, after every load, and the most threads seen.
    fn peak_memory(&mut self) {
        for slot in &mut self.slots {
            let Some(peer) = measurable(&slot.peer) else { continue };
            let threads = match (peer.tcp_pid, slot.threads_seen) {
                (None, _) => Cell::NotApplicable("no proxy process".into()),
                (Some(_), Some(n)) => Cell::Value(n as f64),
                (Some(_), None) => Cell::Failed("no TCP load counted its threads".into()),
            };
            slot.result.cells.insert(Figure::ThreadsBusy, threads);
            let hwm =
                process_figure(peer, |pid| Some(procfs::memory(pid)?.hwm_kib as f64 / 1024.0));
            slot.result.cells.insert(Figure::RssPeak, hwm);
            slot.result.cells.insert(Figure::PssEnd, process_figure(peer, pss_mib));
            if peer.kind == PeerKind::Socat {
                slot.result.notes.push(
                    "memory is socat's listening process only; each connection's forked child \
                     has its own"
                        .into(),
                );
            }
        }
    }
}

/// The peer to measure next: none if it is not up, or if the run was interrupted (what is left
/// then reads "not measured").
fn measurable(peer: &Option<Peer>) -> Option<&Peer> {
    if load::interrupted() { None } else { peer.as_ref() }
}

/// The PSS of process `pid` in MiB.
fn pss_mib(pid: u32) -> Option<f64> {
    Some(procfs::pss_kib(pid)? as f64 / 1024.0)
}

/// A figure read now off `peer`'s TCP forwarding process by `read`.
fn process_figure(peer: &Peer, read: impl Fn(u32) -> Option<f64>) -> Cell {
    match peer.tcp_pid.map(read) {
        None => Cell::NotApplicable("no proxy process".into()),
        Some(Some(v)) => Cell::Value(v),
        Some(None) => Cell::Failed("the proxy process is gone".into()),
    }
}

/// Starts one peer and makes its (so far empty) column.
fn start_slot(kind: PeerKind, setup: &Setup, progress: &Progress) -> Slot {
    let mut result = PeerResult {
        kind,
        status: PeerStatus::Measured,
        version: None,
        cells: HashMap::new(),
        rounds: HashMap::new(),
        notes: Vec::new(),
    };
    let peer = match peer::start(kind, setup) {
        Ok(p) => {
            progress.say(kind, "started", &format!("tcp {}", p.tcp));
            result.version = p.version.clone();
            Some(p)
        }
        Err(NotStarted::Skipped(why)) => {
            progress.say(kind, "skipped", &why);
            result.status = PeerStatus::Skipped(why);
            None
        }
        Err(NotStarted::Failed(why)) => {
            progress.say(kind, "failed to start", &why);
            result.status = PeerStatus::Failed(why);
            None
        }
    };
    Slot { peer, result, bulk_cpu: 0.0, bulk_bytes: 0, threads_seen: None, conn_cpu: 0.0, conns: 0 }
}

impl Slot {
    /// Keeps the most threads seen.
    fn saw_threads(&mut self, threads: Option<u64>) {
        self.threads_seen = self.threads_seen.max(threads);
    }
}

/// The UDP rate and loss of one peer.
fn udp_cells(
    kind: PeerKind,
    target: SocketAddr,
    s: &Settings,
    progress: &Progress,
) -> (Cell, Cell) {
    match datagram::run(target, s.clients, s.window) {
        Ok(d) if d.no_replies() => {
            progress.say(kind, "UDP request/response", &format!("no replies ({} sent)", d.sent));
            (Cell::NoReplies, Cell::Value(100.0))
        }
        Ok(d) => {
            let text = format!("{:.0} tx/s, loss {:.2}%", d.per_second, d.loss * 100.0);
            progress.say(kind, "UDP request/response", &text);
            (Cell::Value(d.per_second), Cell::Value(d.loss * 100.0))
        }
        Err(e) => {
            let cell = progress.failed(kind, "UDP request/response", e);
            (cell.clone(), cell)
        }
    }
}

/// Progress lines on stderr, so that stdout holds the table only.
struct Progress {
    began: Instant,
}

impl Progress {
    fn say(&self, kind: PeerKind, what: &str, text: &str) {
        let t = self.began.elapsed().as_secs();
        eprintln!("[{t:>4}s] {:<15} {what:<28} {text}", kind.name());
    }

    /// Reports a failed load and makes its cell.
    fn failed(&self, kind: PeerKind, what: &str, e: LoadError) -> Cell {
        self.say(kind, what, &format!("failed: {e}"));
        Cell::Failed(e.0)
    }
}
