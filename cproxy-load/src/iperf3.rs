//! iperf3 on the direct path, one stream: the cross-check that the tool's own direct figure
//! is the physical limit and not the tool's.

use testkit::procfs::Transport;

use crate::load::Window;
use crate::process::{Process, Readiness, TempDir};

/// Runs iperf3 against its own server on loopback for `window`; its receiver's Gbit/s.
pub fn direct_1stream(window: Window, dir: &TempDir) -> Result<f64, String> {
    let iperf3 = testkit::spawn::find_program("iperf3").ok_or("iperf3 is not installed")?;
    let port =
        testkit::peers::free_tcp_port().map_err(|e| format!("cannot find a free port: {e}"))?;
    let mut server = std::process::Command::new(&iperf3);
    server.args(["-s", "-1", "-B", "127.0.0.1", "-p", &port.to_string()]);
    let _server = Process::start(
        "iperf3 server",
        server,
        &dir.path().join("iperf3-server.log"),
        Readiness::Port(Transport::TcpListen, port),
    )?;
    let seconds = window.duration.as_secs().max(1);
    let omit = window.warmup.as_secs_f64().ceil().max(1.0) as u64;
    let out = std::process::Command::new(&iperf3)
        .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-J", "--connect-timeout", "2000"])
        .args(["-t", &seconds.to_string(), "-O", &omit.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run iperf3: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    received_bits_per_second(&text).map(|bps| bps / 1e9).ok_or_else(|| {
        format!("no result in iperf3's output: {}", text.chars().take(200).collect::<String>())
    })
}

/// The receiver's bits per second in iperf3's JSON (`end.sum_received.bits_per_second`).
fn received_bits_per_second(json: &str) -> Option<f64> {
    let report: serde_json::Value = serde_json::from_str(json).ok()?;
    report.pointer("/end/sum_received/bits_per_second")?.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_receiver_rate_is_read_from_its_json() {
        let json = r#"{"end": {"sum_sent": {"bits_per_second": 1.0},
                       "sum_received": {"seconds": 3, "bits_per_second": 4.25e10, "sender": true}}}"#;
        assert_eq!(received_bits_per_second(json), Some(4.25e10));
        assert_eq!(received_bits_per_second("{}"), None);
    }
}
