//! A container's output without newlines, as root, with a `cproxy daemon` in a network
//! namespace of its own: the log cuts it into records of 16 KiB as Docker's json-file driver
//! does, so the daemon's memory (its peak too) stays bounded, and `logs` gives the pieces
//! back joined.

mod supervisor_support;

use supervisor_support::Netns;

/// A memory figure of process `pid` from /proc/PID/status (`VmRSS`, `VmHWM`), in bytes.
fn mem(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn sixty_four_mib_without_a_newline_cost_the_daemon_less_than_16_mib() {
    const SIZE: usize = 64 << 20;
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let pid = d.child.id();
    // One container's life first, so what any container costs is counted before.
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--name",
        "warm",
        "sh",
        "-c",
        "head -c 65536 /dev/zero | tr '\\000' x",
    ]);
    let before = mem(pid, "VmRSS:");
    // The peak is what counts: a buffer of the whole output is freed (and given back) once
    // the container has exited. Writing 5 to clear_refs sets the peak (VmHWM) to the RSS now.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let script = format!("head -c {SIZE} /dev/zero | tr '\\000' x");
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "big", "sh", "-c", &script]);
    assert_eq!(d.ok(&["wait", "big"]), "0\n");
    let (peak, after) = (mem(pid, "VmHWM:"), mem(pid, "VmRSS:"));
    eprintln!(
        "daemon RSS {} KiB before, peak {} KiB, {} KiB after",
        before >> 10,
        peak >> 10,
        after >> 10
    );
    let grown = peak.max(after).saturating_sub(before);
    assert!(grown < 16 << 20, "the daemon grew by {} KiB", grown >> 10);
    // Docker's `logs` shows a 40 KiB line without newline as it was written (records of
    // 16384, 16384 and 8192 bytes in its json-file log, joined, nothing added).
    let out = d.cli(&["logs", "big"]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), SIZE);
    assert!(out.stdout.iter().all(|b| *b == b'x'), "only x, no newline added");
    assert!(out.stderr.is_empty());
    let path = d.ok(&["inspect", "-f", "{{.LogPath}}", "big"]);
    let log = std::fs::read_to_string(path.trim()).unwrap();
    let sizes: Vec<usize> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["log"].as_str().unwrap().len()
        })
        .collect();
    assert_eq!(sizes.len(), SIZE / 16384);
    assert!(sizes.iter().all(|n| *n == 16384), "every record 16 KiB");
}
