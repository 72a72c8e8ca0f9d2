//! The results as people read them (one table, each figure beside its ratio of direct, then
//! the goals) and as machines do (JSON).

use serde::Serialize;

use crate::goals::{Goal, goals};
use crate::peer::PeerKind;
use crate::results::{Cell, Figure, PeerResult, PeerStatus, Results, label};

/// How a figure compares with direct.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Compare {
    /// A rate: the ratio peer / direct.
    Ratio,
    /// A latency: the ratio, and the µs added over direct.
    RatioAndAdded,
    /// No comparison (direct has no memory or CPU of its own; loss is shown as is).
    None,
}

/// Unit, decimals and comparison of a figure.
fn shape(f: Figure) -> (&'static str, usize, Compare) {
    match f {
        Figure::Tcp1 | Figure::TcpN => ("Gbit/s", 2, Compare::Ratio),
        Figure::ConnRate | Figure::ConnRateMany => ("conn/s", 0, Compare::Ratio),
        Figure::P50 | Figure::P99 | Figure::P999 => ("µs", 1, Compare::RatioAndAdded),
        Figure::UdpRate => ("tx/s", 0, Compare::Ratio),
        Figure::UdpLoss => ("%", 2, Compare::None),
        Figure::UdpBulk => ("Gbit/s", 2, Compare::Ratio),
        Figure::RssIdle | Figure::PssIdle | Figure::RssPeak | Figure::PssEnd => {
            ("MiB", 1, Compare::None)
        }
        Figure::CpuPerGb | Figure::UdpBulkCpu => ("s/GB", 3, Compare::None),
        Figure::CpuPerConn => ("µs", 1, Compare::None),
        Figure::ThreadsIdle | Figure::ThreadsBusy => ("threads", 0, Compare::None),
    }
}

/// The JSON key of a figure.
fn key(f: Figure) -> &'static str {
    match f {
        Figure::Tcp1 => "tcp_1stream_gbit_s",
        Figure::TcpN => "tcp_nstream_gbit_s",
        Figure::ConnRate => "tcp_connections_per_s",
        Figure::ConnRateMany => "tcp_connections_many_clients_per_s",
        Figure::P50 => "latency_p50_us",
        Figure::P99 => "latency_p99_us",
        Figure::P999 => "latency_p999_us",
        Figure::UdpRate => "udp_transactions_per_s",
        Figure::UdpLoss => "udp_loss_percent",
        Figure::UdpBulk => "udp_bulk_gbit_s",
        Figure::UdpBulkCpu => "udp_bulk_cpu_seconds_per_gb",
        Figure::RssIdle => "rss_idle_mib",
        Figure::PssIdle => "pss_idle_mib",
        Figure::RssPeak => "rss_peak_mib",
        Figure::PssEnd => "pss_end_mib",
        Figure::CpuPerGb => "cpu_seconds_per_gb",
        Figure::CpuPerConn => "cpu_us_per_connection",
        Figure::ThreadsIdle => "threads_idle",
        Figure::ThreadsBusy => "threads_busy",
    }
}

/// The direct peer's result, if it was measured.
fn direct(r: &Results) -> Option<&PeerResult> {
    r.peers.iter().find(|p| p.kind == PeerKind::Direct)
}

/// The table, the notes and the goals, as text.
pub fn text(r: &Results) -> String {
    let shown: Vec<&PeerResult> =
        r.peers.iter().filter(|p| !matches!(p.status, PeerStatus::Skipped(_))).collect();
    let direct = direct(r);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["figure".to_string()];
    header.extend(shown.iter().map(|p| p.kind.name().to_string()));
    rows.push(header);
    let mut footnotes: Vec<String> = Vec::new();
    for f in Figure::ALL {
        let (unit, decimals, _) = shape(f);
        let mut row = vec![format!("{} ({unit})", label(f, &r.settings))];
        for p in &shown {
            let base = direct.and_then(|d| d.value(f)).filter(|_| p.kind != PeerKind::Direct);
            let cell = match (&p.status, p.cell(f)) {
                (PeerStatus::Failed(_), _) => "not started".to_string(),
                (_, Cell::Value(v)) => value_text(f, v, decimals, base),
                (_, Cell::NoReplies) => "no replies".to_string(),
                (_, Cell::NotApplicable(_)) => "n/a".to_string(),
                (_, Cell::Failed(why)) => {
                    footnotes.push(format!("{} {}: {why}", p.kind.name(), label(f, &r.settings)));
                    format!("FAILED [{}]", footnotes.len())
                }
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let mut out = table(&rows);
    out.push_str("(x.xx) = ratio of direct; latency also shows the µs added over direct; n/a = no such thing (no proxy process, no UDP)\n");
    for (i, n) in footnotes.iter().enumerate() {
        out.push_str(&format!("[{}] {n}\n", i + 1));
    }
    for p in &r.peers {
        match &p.status {
            PeerStatus::Skipped(why) => {
                out.push_str(&format!("{}: skipped ({why})\n", p.kind.name()))
            }
            PeerStatus::Failed(why) => {
                out.push_str(&format!("{}: did not start ({why})\n", p.kind.name()))
            }
            PeerStatus::Measured => {}
        }
        for n in &p.notes {
            out.push_str(&format!("{}: {n}\n", p.kind.name()));
        }
    }
    let versions: Vec<String> = r
        .peers
        .iter()
        .filter_map(|p| p.version.as_ref().map(|v| format!("{}: {v}", p.kind.name())))
        .collect();
    if !versions.is_empty() {
        out.push_str(&format!("versions: {}\n", versions.join("; ")));
    }
    match &r.iperf3 {
        Some(Ok(g)) => {
            let ours = direct.and_then(|d| d.value(Figure::Tcp1));
            let ratio =
                ours.map(|o| format!(" (cproxy-load direct: {o:.2}, {:.2} of iperf3)", o / g));
            out.push_str(&format!(
                "iperf3 direct 1-stream: {g:.2} Gbit/s{}\n",
                ratio.unwrap_or_default()
            ));
        }
        Some(Err(e)) => out.push_str(&format!("iperf3 cross-check not run: {e}\n")),
        None => {}
    }
    out.push_str("\ngoals (cproxy):\n");
    for g in goals(r) {
        out.push_str(&goal_line(&g));
    }
    out
}

/// A measured value beside its comparison with direct (`base`).
fn value_text(f: Figure, v: f64, decimals: usize, base: Option<f64>) -> String {
    let (_, _, compare) = shape(f);
    let v_text = format!("{v:.decimals$}");
    match (compare, base) {
        (Compare::Ratio, Some(b)) if b > 0.0 => format!("{v_text} ({:.2})", v / b),
        (Compare::RatioAndAdded, Some(b)) if b > 0.0 => {
            format!("{v_text} ({:.2}, {:+.1})", v / b, v - b)
        }
        _ => v_text,
    }
}

/// One goal, as a line.
fn goal_line(g: &Goal) -> String {
    let verdict = match g.met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    format!("  {:<48} {:>14}  {verdict}\n", g.what, g.got)
}

/// Lays `rows` out in left-aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> =
            row.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// The results as JSON, pretty-printed (keys in table order; a non-finite number is `null`).
pub fn json(r: &Results) -> String {
    let s = &r.settings;
    let direct = direct(r);
    let peers = r
        .peers
        .iter()
        .map(|p| {
            let figures = Figure::ALL.iter().map(|&f| {
                let base = direct.and_then(|d| d.value(f)).filter(|_| p.kind != PeerKind::Direct);
                let (unit, _, compare) = shape(f);
                let mut j = FigureJson { unit, rounds: p.rounds.get(&f), ..FigureJson::default() };
                match p.cell(f) {
                    Cell::Value(v) => {
                        j.value = Some(v);
                        if let Some(b) = base.filter(|b| *b > 0.0 && compare != Compare::None) {
                            j.ratio_of_direct = Some(v / b);
                            if compare == Compare::RatioAndAdded {
                                j.added_over_direct = Some(v - b);
                            }
                        }
                    }
                    Cell::NoReplies => j.no_replies = Some(true),
                    Cell::NotApplicable(why) => j.not_applicable = Some(why),
                    Cell::Failed(why) => j.error = Some(why),
                }
                (key(f), j)
            });
            let (status, reason) = match &p.status {
                PeerStatus::Measured => ("measured", None),
                PeerStatus::Skipped(why) => ("skipped", Some(why.as_str())),
                PeerStatus::Failed(why) => ("failed", Some(why.as_str())),
            };
            PeerJson {
                name: p.kind.name(),
                status,
                reason,
                version: p.version.as_deref(),
                figures: InOrder(figures.collect()),
                notes: &p.notes,
            }
        })
        .collect();
    let goals =
        goals(r).into_iter().map(|g| GoalJson { goal: g.what, got: g.value, met: g.met }).collect();
    let report = ReportJson {
        tool: format!("cproxy-load {}", env!("CARGO_PKG_VERSION")),
        quick: s.quick,
        settings: SettingsJson {
            warmup_s: s.window.warmup.as_secs_f64(),
            duration_s: s.window.duration.as_secs_f64(),
            throughput_rounds: s.rounds,
            streams: s.streams,
            clients: s.clients,
            many_clients: s.many_clients,
            udp_size: s.udp_size,
            cproxy: s.cproxy.describe(),
        },
        machine: MachineJson {
            cores: r.machine.cores,
            kernel: &r.machine.kernel,
            cpu: &r.machine.cpu,
            loadavg_start: &r.machine.load_start,
            loadavg_end: &r.machine.load_end,
        },
        elapsed_s: r.elapsed.as_secs_f64(),
        interrupted: r.interrupted,
        iperf3_direct_1stream_gbit_s: r.iperf3.as_ref().map(|g| match g {
            Ok(gbit) => Iperf3Json::Gbit(*gbit),
            Err(error) => Iperf3Json::Error { error },
        }),
        peers,
        goals,
    };
    // Strings, numbers, bools and sequences of them, with string keys: serde_json cannot fail
    // on these, but an error is still written as JSON rather than lost.
    serde_json::to_string_pretty(&report)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// The whole run, as [`json`] writes it.
#[derive(Serialize)]
struct ReportJson<'a> {
    /// `cproxy-load VERSION`.
    tool: String,
    /// Whether this was a `--quick` smoke run.
    quick: bool,
    /// How the run was made.
    settings: SettingsJson,
    /// Where the run was made.
    machine: MachineJson<'a>,
    /// Seconds the whole run took.
    elapsed_s: f64,
    /// Whether Ctrl-C cut the run short.
    interrupted: bool,
    /// Gbit/s, `{"error": …}`, or `null` when iperf3 was not run.
    iperf3_direct_1stream_gbit_s: Option<Iperf3Json<'a>>,
    /// Every peer, in table order.
    peers: Vec<PeerJson<'a>>,
    /// The goals, in table order.
    goals: Vec<GoalJson>,
}

/// How the run was made.
#[derive(Serialize)]
struct SettingsJson {
    warmup_s: f64,
    duration_s: f64,
    throughput_rounds: usize,
    streams: usize,
    clients: usize,
    /// Clients of the second connection-rate figure.
    many_clients: usize,
    /// Bytes of each datagram of the UDP bulk figure.
    udp_size: usize,
    /// The cproxy measured, as [`crate::peer::CproxyBin::describe`] says.
    cproxy: String,
}

/// Where the run was made.
#[derive(Serialize)]
struct MachineJson<'a> {
    cores: usize,
    kernel: &'a str,
    cpu: &'a str,
    loadavg_start: &'a str,
    loadavg_end: &'a str,
}

/// iperf3's figure, or why there is none.
#[derive(Serialize)]
#[serde(untagged)]
enum Iperf3Json<'a> {
    /// Its receiver's Gbit/s.
    Gbit(f64),
    /// Why it could not be run.
    Error { error: &'a str },
}

/// One peer and its figures.
#[derive(Serialize)]
struct PeerJson<'a> {
    name: &'static str,
    /// `measured`, `skipped` or `failed`.
    status: &'static str,
    /// Why it was skipped or failed.
    reason: Option<&'a str>,
    version: Option<&'a str>,
    figures: InOrder<FigureJson<'a>>,
    notes: &'a [String],
}

/// One figure of one peer: its unit, then its value and comparison with direct, or why it has
/// none; the throughput rounds where there were several.
#[derive(Default, Serialize)]
struct FigureJson<'a> {
    unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_of_direct: Option<f64>,
    /// Latencies: µs added over direct.
    #[serde(skip_serializing_if = "Option::is_none")]
    added_over_direct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_replies: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_applicable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rounds: Option<&'a Vec<f64>>,
}

/// One goal: met, missed, or `null` when a figure it needs is missing.
#[derive(Serialize)]
struct GoalJson {
    goal: String,
    got: Option<f64>,
    met: Option<bool>,
}

/// A JSON object whose keys keep the order given (the table's), where a map would sort them.
struct InOrder<T>(Vec<(&'static str, T)>);

impl<T: Serialize> Serialize for InOrder<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_show_their_ratio_of_direct_and_latencies_the_added_us() {
        assert_eq!(value_text(Figure::Tcp1, 36.0, 2, Some(40.0)), "36.00 (0.90)");
        assert_eq!(value_text(Figure::P50, 30.0, 1, Some(20.0)), "30.0 (1.50, +10.0)");
        assert_eq!(value_text(Figure::Tcp1, 40.0, 2, None), "40.00");
        assert_eq!(value_text(Figure::RssPeak, 3.0, 1, Some(1.0)), "3.0");
    }

    #[test]
    fn json_objects_keep_the_table_order_and_write_non_finite_numbers_as_null() {
        let figures = InOrder(vec![
            (
                "tcp_1stream_gbit_s",
                FigureJson { unit: "Gbit/s", value: Some(3.5), ..FigureJson::default() },
            ),
            (
                "latency_p50_us",
                FigureJson { unit: "µs", value: Some(f64::NAN), ..FigureJson::default() },
            ),
        ]);
        assert_eq!(
            serde_json::to_string(&figures).unwrap(),
            r#"{"tcp_1stream_gbit_s":{"unit":"Gbit/s","value":3.5},"latency_p50_us":{"unit":"µs","value":null}}"#
        );
    }

    #[test]
    fn table_columns_line_up_under_a_rule() {
        let rows = vec![
            vec!["figure".to_string(), "direct".to_string()],
            vec!["TCP 1-stream (Gbit/s)".to_string(), "40.00".to_string()],
        ];
        assert_eq!(
            table(&rows),
            "figure                 direct\n\
             ---------------------  ------\n\
             TCP 1-stream (Gbit/s)  40.00\n"
        );
    }
}
