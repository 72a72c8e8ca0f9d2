//! A container's output without newlines, as root, with a `cproxy daemon` in a network
//! namespace of its own: the log cuts it into records of 16 KiB as Docker's json-file driver
//! does, so the daemon's memory (its peak too) stays bounded, and `logs` gives the pieces
//! back joined.

mod supervisor_support;

use std::io::{Read, Write};

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

/// The payloads of a stream of Docker's frames (8-byte headers), joined.
fn unframe(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while wire.len() >= 8 {
        let len = u32::from_be_bytes(wire[4..8].try_into().unwrap()) as usize;
        out.extend_from_slice(&wire[8..8 + len]);
        wire = &wire[8 + len..];
    }
    assert!(wire.is_empty(), "a frame cut short: {:?}", String::from_utf8_lossy(wire));
    out
}

/// The files of a container's log beside `path` (its `LogPath`), with their sizes.
fn log_files(path: &str) -> Vec<(String, u64)> {
    let path = std::path::Path::new(path);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let mut files: Vec<(String, u64)> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().into_string().ok()?;
            // A file may go while this reads the directory (a rotation, a gzip's end).
            let size = e.metadata().ok()?.len();
            n.starts_with(&name).then_some((n, size))
        })
        .collect();
    files.sort();
    files
}

/// `--log-driver` and `--log-opt` checked in dockerd 20.10's words and at its moments (the
/// names at create, the values at start, which fails and leaves the container `created`), then
/// `max-size`, `max-file` and `compress` as json-file rotates; `logs` reads the rotated files
/// back, gzipped ones too, and `none` keeps nothing and refuses `logs` (501).
#[test]
fn log_options_as_dockerd_checks_them_and_files_that_rotate() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    // At create (recorded from dockerd 20.10.24).
    for (flags, words) in [
        (&["--log-opt", "foo=bar"][..], "unknown log opt 'foo' for json-file log driver"),
        (
            &["--log-driver", "local", "--log-opt", "tag=x"],
            "unknown log opt 'tag' for log driver local",
        ),
        (&["--log-driver", "foo"], "error looking up logging plugin foo: plugin \"foo\" not found"),
    ] {
        let mut args = vec!["create"];
        args.extend(flags);
        args.extend(["bb", "true"]);
        let (code, _, err) = d.docker(&args, None);
        assert_eq!(
            (code, err.trim()),
            (1, format!("Error response from daemon: {words}").as_str())
        );
    }
    let (code, _, err) = d.docker(
        &["create", "--log-driver", "none", "--log-opt", "max-size=1k", "bb", "true"],
        None,
    );
    assert_eq!(code, 125);
    assert!(err.starts_with("docker: invalid logging opts for driver none"), "{err}");
    // At start.
    for (opts, words) in [
        (&["max-size=abc"][..], "invalid size: 'abc'"),
        (&["max-size=0"], "max-size must be a positive number"),
        (&["max-file=0"], "max-file cannot be less than 1"),
        (&["max-file=x"], "strconv.Atoi: parsing \"x\": invalid syntax"),
        (&["compress=maybe"], "strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        (
            &["compress=true", "max-size=1k"],
            "compress cannot be true when max-file is less than 2 or max-size is not set",
        ),
    ] {
        let mut args = vec!["create"];
        for o in opts {
            args.extend(["--log-opt", o]);
        }
        args.extend(["bb", "true"]);
        let id = d.ok(&args);
        let (code, _, err) = d.docker(&["start", id.trim()], None);
        let words = format!("failed to initialize logging driver: {words}");
        assert_eq!(
            (code, err.lines().next().unwrap_or_default()),
            (1, format!("Error response from daemon: {words}").as_str())
        );
        let state = d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
            id.trim(),
        ]);
        assert_eq!(state.trim(), format!("created 128 {words}"));
    }

    // 1000 lines in files of 1 KiB (a record past it), three kept: the last of them read back
    // in order, the newest last.
    let (code, _, err) = d.docker(
        &[
            "run",
            "--name",
            "rot",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "bb",
            "seq",
            "1000",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let path = d.ok(&["inspect", "-f", "{{.LogPath}}", "rot"]);
    let files = log_files(path.trim());
    let names: Vec<&str> = files.iter().map(|(n, _)| n.rsplit('.').next().unwrap()).collect();
    assert_eq!(names, ["log", "1", "2"], "{files:?}");
    assert!(files.iter().all(|(_, size)| *size < 1024 + 80), "{files:?}");
    let kept: usize = files
        .iter()
        .map(|(n, _)| {
            let dir = std::path::Path::new(path.trim()).parent().unwrap();
            std::fs::read_to_string(dir.join(n)).unwrap().lines().count()
        })
        .sum();
    let (code, out, _) = d.docker(&["logs", "rot"], None);
    assert_eq!(code, 0);
    let lines: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(lines.len(), kept);
    assert_eq!(*lines.last().unwrap(), 1000);
    assert!(lines.windows(2).all(|w| w[1] == w[0] + 1), "in order, none missing");
    let (_, tail, _) = d.docker(&["logs", "--tail", "2", "rot"], None);
    assert_eq!(tail, "999\n1000\n");
    // `attach?logs=1` replays the same records, the rotated files' first.
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /v1.41/containers/rot/attach?logs=1&stdout=1&stderr=1 HTTP/1.1\r\n\
          Host: cproxy\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let at = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(reply.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&reply));
    assert_eq!(String::from_utf8_lossy(&unframe(&reply[at..])), out);
    // `compress`: the rotated files gzipped, read back the same.
    let (code, _, err) = d.docker(
        &[
            "run",
            "--name",
            "gz",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "--log-opt",
            "compress=true",
            "bb",
            "seq",
            "1000",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let zpath = d.ok(&["inspect", "-f", "{{.LogPath}}", "gz"]);
    let names = supervisor_support::eventually(10, || {
        let names: Vec<String> = log_files(zpath.trim()).into_iter().map(|(n, _)| n).collect();
        let plain = |n: &String| n.ends_with(".1") || n.ends_with(".2") || n.ends_with(".tmp");
        (!names.iter().any(plain)).then_some(names)
    });
    assert!(names[1].ends_with(".log.1.gz") && names[2].ends_with(".log.2.gz"), "{names:?}");
    let (_, zout, _) = d.docker(&["logs", "gz"], None);
    assert_eq!(zout, out, "the same records as without compress");

    // `none`: nothing kept; attached clients still get the output.
    let (code, out, _) =
        d.docker(&["run", "--name", "nolog", "--log-driver", "none", "bb", "echo", "hi"], None);
    assert_eq!((code, out.as_str()), (0, "hi\n"));
    let (code, _, err) = d.docker(&["logs", "nolog"], None);
    assert_eq!(
        (code, err.trim()),
        (1, "Error response from daemon: configured logging driver does not support reading")
    );
    let (status, _) = d.api("GET", "/v1.41/containers/nolog/logs?stdout=1", None).unwrap();
    assert_eq!(status, 501);
    let shown = d
        .docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}} [{{.LogPath}}]", "nolog"], None)
        .1;
    assert_eq!(shown.trim(), r#"{"Type":"none","Config":{}} []"#);
    // `local`: rotated by default (its options are not shown), no `LogPath`, readable.
    let (code, _, _) =
        d.docker(&["run", "--name", "loc", "--log-driver", "local", "bb", "echo", "hi"], None);
    assert_eq!(code, 0);
    let shown = d
        .docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}} [{{.LogPath}}]", "loc"], None)
        .1;
    assert_eq!(shown.trim(), r#"{"Type":"local","Config":{}} []"#);
    assert_eq!(d.docker(&["logs", "loc"], None).1, "hi\n");
}

/// A follower (`logs -f`) that falls behind a fast writer catches up through every file rotated
/// since, in order, gzipped ones too; and a container that writes without pause (`yes`) keeps
/// no more than its files' bound on disk and is removed at once (its pump once held its
/// runtime worker for ever, and the `rm -f` queued behind it).
#[test]
fn a_follower_catches_up_through_rotations_and_a_chatty_container_stays_bounded() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    for compress in ["false", "true"] {
        let name = format!("f{compress}");
        let script =
            "echo ready; while [ ! -e /go ]; do usleep 10000; done; seq 2 20000; sleep 1000";
        let (code, _, err) = d.docker(
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--log-opt",
                "max-size=4k",
                "--log-opt",
                "max-file=1000",
                "--log-opt",
                &format!("compress={compress}"),
                "bb",
                "sh",
                "-c",
                script,
            ],
            None,
        );
        assert_eq!(code, 0, "{err}");
        let out_path = ns.dir.join(format!("{name}.out"));
        let mut follower = std::process::Command::new(supervisor_support::docker_bin())
            .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
            .env_remove("DOCKER_API_VERSION")
            .args(["logs", "-f", &name])
            .stdout(std::fs::File::create(&out_path).unwrap())
            .spawn()
            .unwrap();
        // Following once it has read the first line.
        supervisor_support::eventually(20, || {
            std::fs::read_to_string(&out_path).ok().filter(|o| o.starts_with("ready\n"))
        });
        let go = ns.dir.join("go");
        std::fs::write(&go, "").unwrap();
        let (code, _, err) = d.docker(&["cp", go.to_str().unwrap(), &format!("{name}:/go")], None);
        assert_eq!(code, 0, "{err}");
        let out = supervisor_support::eventually(60, || {
            std::fs::read_to_string(&out_path).ok().filter(|o| o.ends_with("\n20000\n"))
        });
        let expected: String = std::iter::once("ready".to_string())
            .chain((2..=20000).map(|n| n.to_string()))
            .map(|l| l + "\n")
            .collect();
        assert!(out == expected, "every line once, in order (compress={compress})");
        let path = d.ok(&["inspect", "-f", "{{.LogPath}}", &name]);
        assert!(log_files(path.trim()).len() > 100, "it rotated");
        d.ok(&["rm", "-f", &name]);
        let _ = follower.wait();
    }

    let (code, _, err) = d.docker(
        &[
            "run",
            "-d",
            "--name",
            "yy",
            "--log-opt",
            "max-size=256k",
            "--log-opt",
            "max-file=2",
            "bb",
            "yes",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let path = d.ok(&["inspect", "-f", "{{.LogPath}}", "yy"]);
    // Rotated several times over.
    supervisor_support::eventually(30, || {
        let files = log_files(path.trim());
        (files.len() == 2 && files[0].1 > 128 << 10).then_some(())
    });
    for _ in 0..20 {
        let total: u64 = log_files(path.trim()).iter().map(|(_, s)| s).sum();
        assert!(total <= 2 * ((256 << 10) + 32 * 1024 * 40), "{total} bytes on disk");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, out, _) = d.docker(&["logs", "--tail", "3", "yy"], None);
    assert_eq!((code, out.as_str()), (0, "y\ny\ny\n"));
    // A hang, not a speed, is what the limit catches.
    let (done, _) = d.cli_within(&["rm", "-f", "yy"], std::time::Duration::from_secs(30));
    assert!(done.is_some_and(|o| o.status.success()), "rm -f of a chatty container returns");
}

/// dockerd's `--log-driver` and `--log-opt`: the default of containers that name no driver
/// (their options merged under a container's own), shown by `info` and `inspect`; a bad one
/// stops the daemon at its start, in words.
#[test]
fn the_daemon_s_log_options_are_the_default() {
    let ns = Netns::new();
    let dir = ns.dir.join("bad");
    let out = ns
        .command(env!("CARGO_BIN_EXE_cproxy"))
        .arg("daemon")
        .arg("--data-root")
        .arg(&dir)
        .arg("-H")
        .arg(format!("unix://{}", dir.join("s.sock").display()))
        .args(["--log-opt", "max-size=abc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "cproxy daemon: failed to set log opts: invalid size: 'abc'"
    );
    assert!(!dir.join("s.sock").exists());
    let d = supervisor_support::image_on(
        ns.daemon(&["--log-opt", "max-size=2k", "--log-opt", "max-file=2"]),
        &ns,
        &[],
    );
    assert_eq!(d.docker(&["info", "--format", "{{.LoggingDriver}}"], None).1.trim(), "json-file");
    d.ok(&["run", "--name", "a1", "--log-opt", "max-file=3", "bb", "seq", "2000"]);
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "a1"], None).1;
    assert_eq!(shown.trim(), r#"{"Type":"json-file","Config":{"max-file":"3","max-size":"2k"}}"#);
    let path = d.ok(&["inspect", "-f", "{{.LogPath}}", "a1"]);
    assert_eq!(log_files(path.trim()).len(), 3);
    // Another driver does not take the daemon's options.
    d.ok(&["run", "--name", "b1", "--log-driver", "local", "bb", "true"]);
    let shown = d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "b1"], None).1;
    assert_eq!(shown.trim(), r#"{"Type":"local","Config":{}}"#);
}

/// json-file's `attrs` (`labels`, `labels-regex`, `env`, `env-regex`, `tag`) and the record's
/// text escaped as dockerd 20.10.24 wrote them here, byte for byte but the times and IDs;
/// `logs --details` shows them before each record; a bad template or regexp stops the start.
#[test]
fn record_attributes_and_details_as_dockerd_writes_them() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    let record = |name: &str| {
        let path = d.ok(&["inspect", "-f", "{{.LogPath}}", name]);
        let text = std::fs::read_to_string(path.trim()).unwrap();
        // The time differs from run to run: cut it off.
        text.split(",\"time\":").next().unwrap().to_string()
    };
    let (code, _, err) = d.docker(
        &[
            "run",
            "--name",
            "att1",
            "-l",
            "com.a=1",
            "-l",
            "b=two",
            "-e",
            "E1=x",
            "-e",
            "E2=y=z",
            "--log-opt",
            "labels=com.a,nope",
            "--log-opt",
            "env=E2",
            "--log-opt",
            "env-regex=^E1$",
            "--log-opt",
            "tag={{.Name}}/{{.DaemonName}}",
            "bb",
            "echo",
            "hi",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        record("att1"),
        r#"{"log":"hi\n","stream":"stdout","attrs":{"E1":"x","E2":"y=z","com.a":"1","tag":"att1/docker"}"#
    );
    let (_, out, _) = d.docker(&["logs", "--details", "att1"], None);
    assert_eq!(out, "E1=x,E2=y%3Dz,com.a=1,tag=att1%2Fdocker hi\n");
    let (_, out, _) = d.docker(&["logs", "--details", "-t", "att1"], None);
    let (time, rest) = out.split_once(' ').unwrap();
    assert!(time.ends_with('Z'), "{out}");
    assert_eq!(rest, "E1=x,E2=y%3Dz,com.a=1,tag=att1%2Fdocker hi\n");
    // Go's escaping: `&` in an attribute, control characters, `<>&`, U+2028 and a byte that
    // is not UTF-8 in the text; no attributes: `--details` shows a space before the text.
    let (code, _, err) = d.docker(
        &[
            "run",
            "--name",
            "esc",
            "-l",
            "ky=v&w a,b",
            "--log-opt",
            "labels-regex=^k",
            "bb",
            "sh",
            "-c",
            r#"echo -e "<a&b>\t\001\xff\xe2\x80\xa8\"\\\\x""#,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        record("esc"),
        r#"{"log":"\u003ca\u0026b\u003e\u0009\u0001\ufffd\u2028\"\\x\n","stream":"stdout","attrs":{"ky":"v\u0026w a,b"}"#
    );
    assert!(d.docker(&["logs", "--details", "esc"], None).1.starts_with("ky=v%26w+a%2Cb <a&b>"));
    d.ok(&["run", "--name", "plain", "bb", "echo", "plain"]);
    assert_eq!(record("plain"), r#"{"log":"plain\n","stream":"stdout""#);
    assert_eq!(d.docker(&["logs", "--details", "plain"], None).1, " plain\n");
    for (opt, words) in [
        (
            "tag={{.Nope}}",
            "template: log-tag:1:2: executing \"log-tag\" at <.Nope>: can't evaluate field Nope in type *logger.Info",
        ),
        ("tag={{", "template: log-tag:1: unclosed action"),
        ("env-regex=(", "error parsing regexp: "),
    ] {
        let (code, _, err) = d.docker(&["run", "--log-opt", opt, "bb", "true"], None);
        let want =
            format!("Error response from daemon: failed to initialize logging driver: {words}");
        assert!(code != 0 && err.contains(&want), "{opt}: {err}");
    }
}
