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

/// `logs --timestamps`, `--since`, `--until`, `--tail` and a terminal's raw log, through
/// Docker's own CLI and cproxy's, with dockerd 20.10's words for bad queries.
#[test]
fn logs_by_time_and_tail_and_a_terminals_raw_log() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    // "one", then (once the test has read its time) "two", then (once the test has seen it
    // logged: the stdout and stderr pumps are two readers, so "err" written right after "two"
    // may be read first) "err" on stderr.
    let script = "echo one; while [ ! -e /go ]; do usleep 10000; done; echo two; \
                  while [ ! -e /go2 ]; do usleep 10000; done; echo err >&2";
    let (code, _, err) = d.docker(&["run", "-d", "--name", "lg", "bb", "sh", "-c", script], None);
    assert_eq!(code, 0, "{err}");
    let stamped = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["logs", "-t"];
        all.extend(args);
        all.push("lg");
        let (code, out, err) = d.docker(&all, None);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .chain(err.lines())
            .map(|l| {
                let (t, text) = l.split_once(' ').unwrap();
                assert!(
                    t.len() == 30 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
                    "RFC 3339 with nanoseconds: {l}"
                );
                (t.to_string(), text.to_string())
            })
            .collect()
    };
    let first = supervisor_support::eventually(10, || {
        let lines = stamped(&[]);
        (!lines.is_empty()).then_some(lines)
    });
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "one");
    let (code, _, err) = d.docker(&["exec", "lg", "touch", "/go"], None);
    assert_eq!(code, 0, "{err}");
    supervisor_support::eventually(10, || (stamped(&[]).len() == 2).then_some(()));
    // Copied in from outside, not touched by an `exec`: the container ends as soon as it sees
    // the file, and its end kills whatever still runs in its namespace (an exec's `touch` not
    // yet exited: 137 in CI).
    let go2 = ns.dir.join("go2");
    std::fs::write(&go2, "").unwrap();
    let (code, _, err) = d.docker(&["cp", go2.to_str().unwrap(), "lg:/go2"], None);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = d.docker(&["wait", "lg"], None);
    assert_eq!(code, 0);
    let all = stamped(&[]);
    let texts: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["one", "two", "err"]);
    let two = &all[1].0;
    // `--since` a record's own time includes it; `--until` the first's time keeps only it.
    let since: Vec<String> = stamped(&["--since", two]).into_iter().map(|l| l.1).collect();
    assert_eq!(since, ["two", "err"]);
    let until: Vec<String> = stamped(&["--until", &all[0].0]).into_iter().map(|l| l.1).collect();
    assert_eq!(until, ["one"]);
    // A relative time: everything was written in the last hour, nothing in the future.
    assert_eq!(stamped(&["--since", "1h"]).len(), 3);
    assert_eq!(stamped(&["--until", "1h"]).len(), 0);
    let (code, out, _) = d.docker(&["logs", "-n", "1", "lg"], None);
    assert_eq!((code, out.as_str()), (0, ""), "the last record is stderr's");
    let (code, out, err) = d.docker(&["logs", "--tail", "2", "lg"], None);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "two\n", "err\n"));
    // cproxy's own client reads the same times.
    let out = d.cli(&["logs", "--since", two, "--timestamps", "lg"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, format!("{two} two\n"));
    let out = d.cli(&["logs", "--since", "yesterday", "lg"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "invalid value for \"since\": failed to parse value as time or duration: \"yesterday\""
    );

    // The API's words (dockerd 20.10's, 500 included) for what it cannot read.
    let (status, body) =
        d.api("GET", "/v1.41/containers/lg/logs?stdout=1&since=abc", None).unwrap();
    assert_eq!(status, 500);
    assert!(body.contains(r#"strconv.ParseInt: parsing \"abc\": invalid syntax"#), "{body}");
    let (status, body) = d.api("GET", "/v1.41/containers/lg/logs", None).unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("Bad parameters: you must choose at least one stream"), "{body}");

    // A container on a terminal: its log is the terminal's raw bytes, no frames.
    let (code, _, err) =
        d.docker(&["run", "-t", "--name", "tt", "bb", "sh", "-c", "echo tty1; echo tty2"], None);
    assert_eq!(code, 0, "{err}");
    let (status, body) = d.api("GET", "/v1.41/containers/tt/logs?stdout=1&stderr=1", None).unwrap();
    // (The body as sent, in HTTP's chunks.)
    assert_eq!(status, 200);
    assert!(body.contains("tty1\r\n") && !body.contains('\u{1}'), "{body:?}");
    let (code, out, _) = d.docker(&["logs", "tt"], None);
    assert_eq!((code, out.as_str()), (0, "tty1\r\ntty2\r\n"));
    let out = d.cli(&["logs", "tt"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tty1\r\ntty2\r\n");
}
