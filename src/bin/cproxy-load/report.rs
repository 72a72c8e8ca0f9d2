//! The results as people read them (one table, each figure beside its ratio of direct, then
//! the goals) and as machines do (JSON).

use crate::goals::{Goal, goals};
use crate::json::Json;
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
        Figure::ConnRate => ("conn/s", 0, Compare::Ratio),
        Figure::P50 | Figure::P99 | Figure::P999 => ("µs", 1, Compare::RatioAndAdded),
        Figure::UdpRate => ("tx/s", 0, Compare::Ratio),
        Figure::UdpLoss => ("%", 2, Compare::None),
        Figure::RssIdle | Figure::RssPeak => ("MiB", 1, Compare::None),
        Figure::CpuPerGb => ("s/GB", 3, Compare::None),
    }
}

/// The JSON key of a figure.
fn key(f: Figure) -> &'static str {
    match f {
        Figure::Tcp1 => "tcp_1stream_gbit_s",
        Figure::TcpN => "tcp_nstream_gbit_s",
        Figure::ConnRate => "tcp_connections_per_s",
        Figure::P50 => "latency_p50_us",
        Figure::P99 => "latency_p99_us",
        Figure::P999 => "latency_p999_us",
        Figure::UdpRate => "udp_transactions_per_s",
        Figure::UdpLoss => "udp_loss_percent",
        Figure::RssIdle => "rss_idle_mib",
        Figure::RssPeak => "rss_peak_mib",
        Figure::CpuPerGb => "cpu_seconds_per_gb",
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

/// The results as JSON.
pub fn json(r: &Results) -> Json {
    let s = &r.settings;
    let direct = direct(r);
    let peers = r.peers.iter().map(|p| {
        let figures = Figure::ALL.iter().map(|&f| {
            let base = direct.and_then(|d| d.value(f)).filter(|_| p.kind != PeerKind::Direct);
            let (unit, _, compare) = shape(f);
            let mut fields: Vec<(String, Json)> = vec![("unit".into(), Json::str(unit))];
            match p.cell(f) {
                Cell::Value(v) => {
                    fields.push(("value".into(), Json::Num(v)));
                    if let Some(b) = base.filter(|b| *b > 0.0 && compare != Compare::None) {
                        fields.push(("ratio_of_direct".into(), Json::Num(v / b)));
                        if compare == Compare::RatioAndAdded {
                            fields.push(("added_over_direct".into(), Json::Num(v - b)));
                        }
                    }
                }
                Cell::NoReplies => fields.push(("no_replies".into(), Json::Bool(true))),
                Cell::NotApplicable(why) => fields.push(("not_applicable".into(), Json::str(why))),
                Cell::Failed(why) => fields.push(("error".into(), Json::str(why))),
            }
            if let Some(rounds) = p.rounds.get(&f) {
                fields.push((
                    "rounds".into(),
                    Json::Arr(rounds.iter().map(|&v| Json::Num(v)).collect()),
                ));
            }
            (key(f).to_string(), Json::Obj(fields))
        });
        let (status, reason) = match &p.status {
            PeerStatus::Measured => ("measured", Json::Null),
            PeerStatus::Skipped(why) => ("skipped", Json::str(why)),
            PeerStatus::Failed(why) => ("failed", Json::str(why)),
        };
        Json::obj([
            ("name", Json::str(p.kind.name())),
            ("status", Json::str(status)),
            ("reason", reason),
            ("version", p.version.clone().map_or(Json::Null, Json::Str)),
            ("figures", Json::Obj(figures.collect())),
            ("notes", Json::Arr(p.notes.iter().map(|n| Json::str(n.clone())).collect())),
        ])
    });
    let goals = goals(r).into_iter().map(|g| {
        Json::obj([
            ("goal", Json::str(g.what)),
            ("got", Json::opt(g.value)),
            ("met", g.met.map_or(Json::Null, Json::Bool)),
        ])
    });
    let iperf3 = match &r.iperf3 {
        Some(Ok(g)) => Json::Num(*g),
        Some(Err(e)) => Json::obj([("error", Json::str(e.clone()))]),
        None => Json::Null,
    };
    Json::obj([
        ("tool", Json::str(format!("cproxy-load {}", env!("CARGO_PKG_VERSION")))),
        ("quick", Json::Bool(s.quick)),
        (
            "settings",
            Json::obj([
                ("warmup_s", Json::Num(s.window.warmup.as_secs_f64())),
                ("duration_s", Json::Num(s.window.duration.as_secs_f64())),
                ("throughput_rounds", Json::Num(s.rounds as f64)),
                ("streams", Json::Num(s.streams as f64)),
                ("clients", Json::Num(s.clients as f64)),
                ("cproxy", Json::str(s.cproxy.describe())),
            ]),
        ),
        (
            "machine",
            Json::obj([
                ("cores", Json::Num(r.machine.cores as f64)),
                ("kernel", Json::str(r.machine.kernel.clone())),
                ("cpu", Json::str(r.machine.cpu.clone())),
                ("loadavg_start", Json::str(r.machine.load_start.clone())),
                ("loadavg_end", Json::str(r.machine.load_end.clone())),
            ]),
        ),
        ("elapsed_s", Json::Num(r.elapsed.as_secs_f64())),
        ("interrupted", Json::Bool(r.interrupted)),
        ("iperf3_direct_1stream_gbit_s", iperf3),
        ("peers", Json::Arr(peers.collect())),
        ("goals", Json::Arr(goals.collect())),
    ])
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
