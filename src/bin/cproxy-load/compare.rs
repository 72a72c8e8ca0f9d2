//! The side-by-side run: starts the backends and every peer, runs each load against each peer
//! (throughput rounds interleaved across peers, so that a noisy neighbour hurts all of them
//! alike), and collects one [`Results`] for the report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::backend::Backends;
use crate::load::{self, LoadError, Window};
use crate::machine::{self, Machine};
use crate::peer::{self, CproxyBin, NotStarted, Peer, PeerKind, Setup};
use crate::process::TempDir;
use crate::procstat;
use crate::results::{Cell, Figure, PeerResult, PeerStatus, Results, label};
use crate::stats::median;
use crate::{bulk, connect, datagram, iperf3, latency};

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
    /// Whether to run iperf3 on the direct path as a cross-check.
    pub iperf3: bool,
    /// How to run cproxy.
    pub cproxy: CproxyBin,
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
}

/// Runs the comparison; `Err` only when the backends themselves cannot start.
pub fn run(settings: &Settings) -> Result<Results, String> {
    let began = Instant::now();
    let mut machine = Machine::read();
    let dir = TempDir::new().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let backends = Backends::start(settings.streams + settings.clients + 4)
        .map_err(|e| format!("cannot start the loopback backends: {e}"))?;
    let progress = Progress { began };
    let setup = Setup { backends: &backends, cproxy: &settings.cproxy, dir: &dir };
    let mut slots: Vec<Slot> =
        settings.peers.iter().map(|&kind| start_slot(kind, &setup, &progress)).collect();

    for slot in &mut slots {
        let idle = slot.peer.as_ref().and_then(|p| p.tcp_pid).and_then(procstat::memory);
        if let Some(m) = idle {
            slot.result.cells.insert(Figure::RssIdle, Cell::Value(m.rss_kib as f64 / 1024.0));
        }
    }
    for (figure, streams) in [(Figure::Tcp1, 1), (Figure::TcpN, settings.streams)] {
        for round in 0..settings.rounds {
            for slot in &mut slots {
                let Some(peer) = measurable(&slot.peer) else { continue };
                let r = bulk::run(peer.tcp, streams, settings.window, &backends, peer.tcp_pid);
                let what =
                    format!("{} round {}/{}", label(figure, settings), round + 1, settings.rounds);
                match r {
                    Ok(b) => {
                        progress.say(peer.kind, &what, &format!("{:.2} Gbit/s", b.gbit_per_s));
                        slot.result.rounds.entry(figure).or_default().push(b.gbit_per_s);
                        if let Some(cpu) = b.proxy_cpu_seconds {
                            slot.bulk_cpu += cpu;
                            slot.bulk_bytes += b.bytes;
                        }
                    }
                    Err(e) => {
                        progress.say(peer.kind, &what, &format!("failed: {e}"));
                        slot.result.notes.push(format!("{what} failed: {e}"));
                    }
                }
            }
        }
        for slot in slots.iter_mut().filter(|s| s.peer.is_some()) {
            let rounds = slot.result.rounds.get(&figure).cloned().unwrap_or_default();
            let cell = match median(&rounds) {
                Some(m) => Cell::Value(m),
                None => Cell::Failed(format!("every {} round failed", label(figure, settings))),
            };
            slot.result.cells.insert(figure, cell);
        }
    }
    for slot in slots.iter_mut() {
        let Some(peer) = measurable(&slot.peer) else { continue };
        let cell = match peer.tcp_pid {
            None => Cell::NotApplicable("no proxy process".into()),
            Some(_) if slot.bulk_bytes == 0 => Cell::Failed("no bulk run succeeded".into()),
            Some(_) => Cell::Value(slot.bulk_cpu / (slot.bulk_bytes as f64 / 1e9)),
        };
        slot.result.cells.insert(Figure::CpuPerGb, cell);
    }
    for slot in &mut slots {
        let Some(peer) = measurable(&slot.peer) else { continue };
        let cell = match connect::run(peer.tcp, settings.clients, settings.window) {
            Ok(c) => {
                progress.say(peer.kind, "connection rate", &format!("{:.0} conn/s", c.per_second));
                if c.failed > 0 {
                    let first = c.first_failure.map(|e| e.0).unwrap_or_default();
                    slot.result.notes.push(format!(
                        "connection rate: {} of {} connections failed (first: {first})",
                        c.failed,
                        c.failed + c.completed
                    ));
                }
                Cell::Value(c.per_second)
            }
            Err(e) => failed(&progress, peer.kind, "connection rate", e),
        };
        slot.result.cells.insert(Figure::ConnRate, cell);
    }
    for slot in &mut slots {
        let Some(peer) = measurable(&slot.peer) else { continue };
        match latency::run(peer.tcp, settings.window) {
            Ok(l) => {
                let text = format!(
                    "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs ({} round trips)",
                    l.p50_us, l.p99_us, l.p999_us, l.samples
                );
                progress.say(peer.kind, "latency", &text);
                for (f, v) in
                    [(Figure::P50, l.p50_us), (Figure::P99, l.p99_us), (Figure::P999, l.p999_us)]
                {
                    slot.result.cells.insert(f, Cell::Value(v));
                }
            }
            Err(e) => {
                let cell = failed(&progress, peer.kind, "latency", e);
                for f in [Figure::P50, Figure::P99, Figure::P999] {
                    slot.result.cells.insert(f, cell.clone());
                }
            }
        }
    }
    for slot in &mut slots {
        let Some(peer) = measurable(&slot.peer) else { continue };
        let (rate, loss) = match peer.udp {
            Err(why) => (Cell::NotApplicable(why.into()), Cell::NotApplicable(why.into())),
            Ok(target) => udp_cells(peer.kind, target, settings, &progress),
        };
        slot.result.cells.insert(Figure::UdpRate, rate);
        slot.result.cells.insert(Figure::UdpLoss, loss);
    }
    for slot in &mut slots {
        let Some(peer) = measurable(&slot.peer) else { continue };
        let cell = match peer.tcp_pid.map(procstat::memory) {
            None => Cell::NotApplicable("no proxy process".into()),
            Some(Some(m)) => Cell::Value(m.hwm_kib as f64 / 1024.0),
            Some(None) => Cell::Failed("the proxy process is gone".into()),
        };
        slot.result.cells.insert(Figure::RssPeak, cell);
        if peer.tcp_pid.is_none() {
            slot.result
                .cells
                .insert(Figure::RssIdle, Cell::NotApplicable("no proxy process".into()));
        }
        if peer.kind == PeerKind::Socat {
            slot.result.notes.push(
                "memory is socat's listening process only; each connection's forked child has its own"
                    .into(),
            );
        }
    }
    let iperf3 = (settings.iperf3 && !load::interrupted()).then(|| {
        let r = iperf3::direct_1stream(settings.window, &dir);
        match &r {
            Ok(g) => progress.say(PeerKind::Direct, "iperf3 1-stream", &format!("{g:.2} Gbit/s")),
            Err(e) => progress.say(PeerKind::Direct, "iperf3 1-stream", &format!("not run: {e}")),
        }
        r
    });
    let peers = slots.into_iter().map(|s| s.result).collect();
    machine.load_end = machine::load_average();
    Ok(Results {
        settings: settings.clone(),
        machine,
        peers,
        iperf3,
        elapsed: began.elapsed(),
        interrupted: load::interrupted(),
    })
}

/// The peer to measure next: none if it is not up, or if the run was interrupted (what is left
/// then reads "not measured").
fn measurable(peer: &Option<Peer>) -> Option<&Peer> {
    if load::interrupted() { None } else { peer.as_ref() }
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
    Slot { peer, result, bulk_cpu: 0.0, bulk_bytes: 0 }
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
            let cell = failed(progress, kind, "UDP request/response", e);
            (cell.clone(), cell)
        }
    }
}

/// Reports a failed load and makes its cell.
fn failed(progress: &Progress, kind: PeerKind, what: &str, e: LoadError) -> Cell {
    progress.say(kind, what, &format!("failed: {e}"));
    Cell::Failed(e.0)
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
}
