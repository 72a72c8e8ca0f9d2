//! cproxy's goals (issue 6), checked against a run. A goal is reported, never enforced: a
//! noisy machine must not fail a build on a speed.

use crate::peer::PeerKind;
use crate::results::{Cell, Figure, Results};

/// One goal and how the run did against it.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal {
    /// The goal, in words.
    pub what: String,
    /// The number compared with the goal's bound.
    pub value: Option<f64>,
    /// That number as shown.
    pub got: String,
    /// Met, missed, or `None` when a figure it needs was not measured.
    pub met: Option<bool>,
}

/// A figure of a peer; "no replies" is a UDP rate of zero.
fn figure(r: &Results, kind: PeerKind, f: Figure) -> Option<f64> {
    let p = r.peers.iter().find(|p| p.kind == kind)?;
    match p.cells.get(&f)? {
        Cell::Value(v) => Some(*v),
        Cell::NoReplies if f == Figure::UdpRate => Some(0.0),
        _ => None,
    }
}

/// `a / b` when both are there and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b)
}

/// Every goal, checked against `r`: issue 6's against direct and socat, then issue 23's against
/// the proxies a busy port is otherwise served by (a ratio ≥ 1 is not slower) and for idle
/// threads.
pub fn goals(r: &Results) -> Vec<Goal> {
    use PeerKind::{Cproxy, CproxyCopy, Direct, DockerProxy, Haproxy, Socat};
    let cproxy = |f| figure(r, Cproxy, f);
    let of = |kind, f| ratio(cproxy(f), figure(r, kind, f));
    let added = |f| cproxy(f).zip(figure(r, Direct, f)).map(|(c, d)| c - d);
    let streams = r.settings.streams;
    let mut goals = vec![
        at_least("TCP 1-stream throughput ≥ 0.85 of direct", of(Direct, Figure::Tcp1), 0.85, ""),
        at_least(
            &format!("TCP {streams}-stream throughput ≥ 0.80 of direct"),
            of(Direct, Figure::TcpN),
            0.80,
            "",
        ),
        at_least("connection rate ≥ 0.50 of direct", of(Direct, Figure::ConnRate), 0.5, ""),
        at_least("connection rate ≥ 2× socat", of(Socat, Figure::ConnRate), 2.0, "×"),
        at_most("added latency p50 ≤ 25 µs", added(Figure::P50), 25.0, " µs"),
        at_most("added latency p99 ≤ 80 µs", added(Figure::P99), 80.0, " µs"),
        at_least(
            "UDP request/response rate ≥ 0.50 of direct",
            of(Direct, Figure::UdpRate),
            0.5,
            "",
        ),
        at_least("UDP request/response rate ≥ 2× socat", of(Socat, Figure::UdpRate), 2.0, "×"),
        at_most(
            "CPU per GB, splice / copy fallback ≤ 0.50",
            ratio(cproxy(Figure::CpuPerGb), figure(r, CproxyCopy, Figure::CpuPerGb)),
            0.5,
            "",
        ),
    ];
    let (clients, many) = (r.settings.clients, r.settings.many_clients);
    let busy = [
        (format!("TCP {streams}-stream"), Figure::TcpN),
        (format!("connection rate, {clients} clients,"), Figure::ConnRate),
        (format!("connection rate, {many} clients,"), Figure::ConnRateMany),
    ];
    for (what, f) in busy {
        for (peer, name) in [(DockerProxy, "docker-proxy"), (Haproxy, "HAProxy")] {
            goals.push(at_least(&format!("{what} ≥ {name}'s"), of(peer, f), 1.0, "×"));
        }
    }
    goals.push(at_most("threads idle: 1", cproxy(Figure::ThreadsIdle), 1.0, ""));
    goals
}

/// A goal met when `value ≥ bound`.
fn at_least(what: &str, value: Option<f64>, bound: f64, unit: &str) -> Goal {
    check(what, value, unit, |v| v >= bound)
}

/// A goal met when `value ≤ bound`.
fn at_most(what: &str, value: Option<f64>, bound: f64, unit: &str) -> Goal {
    check(what, value, unit, |v| v <= bound)
}

fn check(what: &str, value: Option<f64>, unit: &str, ok: impl Fn(f64) -> bool) -> Goal {
    let got = match value {
        Some(v) if unit == " µs" => format!("{v:+.1}{unit}"),
        Some(v) => format!("{v:.2}{unit}"),
        None => "-".to_string(),
    };
    Goal { what: what.to_string(), value, got, met: value.map(ok) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goal_without_its_figures_is_not_measured_rather_than_missed() {
        let g = at_least("x", None, 0.5, "");
        assert_eq!((g.met, g.got.as_str()), (None, "-"));
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(at_least("x", Some(0.85), 0.85, "").met, Some(true));
        assert_eq!(at_most("x", Some(25.0), 25.0, " µs").met, Some(true));
        assert_eq!(at_most("x", Some(25.1), 25.0, " µs").met, Some(false));
    }

    #[test]
    fn added_latency_shows_its_sign_and_unit() {
        assert_eq!(at_most("x", Some(12.04), 25.0, " µs").got, "+12.0 µs");
    }

    #[test]
    fn ratios_need_a_nonzero_denominator() {
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(1.0), Some(4.0)), Some(0.25));
    }
}
