//! What a comparison found: per peer, a [`Cell`] for every [`Figure`], and where it was run.

use std::collections::HashMap;
use std::time::Duration;

use crate::compare::Settings;
use crate::machine::Machine;
use crate::peer::PeerKind;

/// The figures of the table, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Figure {
    /// TCP bulk throughput, one stream (Gbit/s).
    Tcp1,
    /// TCP bulk throughput, `streams` streams (Gbit/s).
    TcpN,
    /// TCP connect + 1-byte echo + close, per second, `clients` clients.
    ConnRate,
    /// The same with `many_clients` clients.
    ConnRateMany,
    /// 64-byte request/response round trip, median (µs).
    P50,
    /// … 99th percentile (µs).
    P99,
    /// … 99.9th percentile (µs).
    P999,
    /// UDP 64-byte request/response transactions per second.
    UdpRate,
    /// UDP requests unanswered (%).
    UdpLoss,
    /// UDP bulk throughput, one sender of `udp_size`-byte datagrams (Gbit/s).
    UdpBulk,
    /// CPU seconds the UDP forwarding process used per GB that arrived in the UDP bulk run.
    UdpBulkCpu,
    /// Resident memory of the TCP forwarding process after start (MiB).
    RssIdle,
    /// Its proportional share of resident memory after start, shared pages divided among
    /// the processes sharing them (MiB).
    PssIdle,
    /// Its peak resident memory over the run (MiB).
    RssPeak,
    /// Its proportional share of resident memory after every load (MiB).
    PssEnd,
    /// CPU seconds it used per GB forwarded in the bulk runs.
    CpuPerGb,
    /// CPU µs it used per connection in the connection-rate runs.
    CpuPerConn,
    /// Threads of the TCP forwarding process after start.
    ThreadsIdle,
    /// The most threads it was seen with at the end of a TCP load.
    ThreadsBusy,
}

impl Figure {
    /// Every figure, in table order.
    pub const ALL: [Figure; 19] = [
        Figure::Tcp1,
        Figure::TcpN,
        Figure::ConnRate,
        Figure::ConnRateMany,
        Figure::P50,
        Figure::P99,
        Figure::P999,
        Figure::UdpRate,
        Figure::UdpLoss,
        Figure::UdpBulk,
        Figure::UdpBulkCpu,
        Figure::RssIdle,
        Figure::PssIdle,
        Figure::RssPeak,
        Figure::PssEnd,
        Figure::CpuPerGb,
        Figure::CpuPerConn,
        Figure::ThreadsIdle,
        Figure::ThreadsBusy,
    ];
}

/// What one figure came to for one peer.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Measured.
    Value(f64),
    /// UDP: the peer took the datagrams and answered none. A measurement (of a forwarder that
    /// does not forward), not a failure of the tool.
    NoReplies,
    /// Could not be measured, and why.
    Failed(String),
    /// Means nothing for this peer (memory of the direct path, UDP through HAProxy), and why.
    NotApplicable(String),
}

/// How a peer fared.
#[derive(Clone, Debug)]
pub enum PeerStatus {
    /// Started and measured (some figures may still have failed).
    Measured,
    /// Not installed.
    Skipped(String),
    /// Installed but would not start.
    Failed(String),
}

/// One peer's column.
#[derive(Clone, Debug)]
pub struct PeerResult {
    /// Which peer.
    pub kind: PeerKind,
    /// Whether it ran.
    pub status: PeerStatus,
    /// Its version, if it says.
    pub version: Option<String>,
    /// Its figures.
    pub cells: HashMap<Figure, Cell>,
    /// The throughput of every round, for the JSON.
    pub rounds: HashMap<Figure, Vec<f64>>,
    /// Things worth knowing that are not a figure (connection failures, lost rounds).
    pub notes: Vec<String>,
}

impl PeerResult {
    /// The figure, or "not measured" if it never ran.
    pub fn cell(&self, f: Figure) -> Cell {
        self.cells.get(&f).cloned().unwrap_or_else(|| Cell::Failed("not measured".into()))
    }

    /// The figure's value, if measured.
    pub fn value(&self, f: Figure) -> Option<f64> {
        match self.cells.get(&f) {
            Some(Cell::Value(v)) => Some(*v),
            _ => None,
        }
    }
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Results {
    /// What was asked for.
    pub settings: Settings,
    /// Where.
    pub machine: Machine,
    /// One per peer asked for, in order.
    pub peers: Vec<PeerResult>,
    /// iperf3's direct single-stream figure (Gbit/s), if it was run.
    pub iperf3: Option<Result<f64, String>>,
    /// How long the run took.
    pub elapsed: Duration,
    /// True if Ctrl-C cut it short.
    pub interrupted: bool,
}

/// The row label of a figure.
pub fn label(f: Figure, s: &Settings) -> String {
    match f {
        Figure::Tcp1 => "TCP 1-stream".into(),
        Figure::TcpN => format!("TCP {}-stream", s.streams),
        Figure::ConnRate => format!("TCP connection rate, {} clients", s.clients),
        Figure::ConnRateMany => format!("TCP connection rate, {} clients", s.many_clients),
        Figure::P50 => "latency p50".into(),
        Figure::P99 => "latency p99".into(),
        Figure::P999 => "latency p99.9".into(),
        Figure::UdpRate => "UDP request/response".into(),
        Figure::UdpLoss => "UDP loss".into(),
        Figure::UdpBulk => format!("UDP bulk, {} B datagrams", s.udp_size),
        Figure::UdpBulkCpu => "UDP bulk CPU per GB".into(),
        Figure::RssIdle => "RSS idle".into(),
        Figure::PssIdle => "PSS idle".into(),
        Figure::RssPeak => "RSS peak".into(),
        Figure::PssEnd => "PSS after the loads".into(),
        Figure::CpuPerGb => "CPU per GB".into(),
        Figure::CpuPerConn => "CPU per connection".into(),
        Figure::ThreadsIdle => "threads idle".into(),
        Figure::ThreadsBusy => "threads busy (most seen)".into(),
    }
}
