//! `cproxy compose` end to end, as root: every test starts `cproxy daemon` inside a network
//! namespace of its own and brings a compose file up and down with the client.

mod supervisor_support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use supervisor_support::{BIN, Netns, bindable, eventually, http_get, python};

/// Writes `text` as `compose.yml` in a project directory named `project` under the test's
/// scratch directory.
fn compose_file(ns: &Netns, project: &str, text: &str) -> PathBuf {
    let dir = ns.dir.join(project);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The repository's example: the tutorials' web + db scenario.
fn example() -> String {
    format!("{}/examples/compose.yml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_example_comes_up_detached_answers_on_its_published_port_and_down_leaves_nothing() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let file = example();
    let up = d.cli(&["compose", "-f", &file, "up", "-d"]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert_eq!(up.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Creating examples_db_1 ... done"), "{stderr}");
    assert!(stderr.contains("Creating examples_web_1 ... done"), "{stderr}");
    // db first: web links to it.
    assert!(stderr.find("examples_db_1").unwrap() < stderr.find("examples_web_1").unwrap());

    let status = eventually(15, || http_get(&ns, "127.0.0.1:8080"));
    assert!(status.contains("200"), "{status}");

    let ps = d.ok(&["compose", "-f", &file, "ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 4, "{ps}");
    assert!(lines[0].starts_with("Name "), "{ps}");
    assert!(lines[2].starts_with("examples_db_1 ") && lines[2].contains(" Up "), "{ps}");
    assert!(lines[2].ends_with("5432/tcp"), "{ps}");
    assert!(lines[3].starts_with("examples_web_1 "), "{ps}");
    assert!(lines[3].ends_with("127.0.0.1:8080->5000/tcp"), "{ps}");
    assert_eq!(ns.links().iter().filter(|l| l.starts_with("cpveth")).count(), 2);
    let pids: Vec<String> = ["examples_db_1", "examples_web_1"]
        .iter()
        .map(|c| d.ok(&["inspect", "-f", "{{.State.Pid}}", c]).trim().to_string())
        .collect();

    let down = d.cli(&["compose", "-f", &file, "down", "-t", "2"]);
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(0), "{stderr}");
    // Reverse order: web, which depends on db, goes first.
    assert!(stderr.contains("Stopping examples_web_1 ... done\nStopping examples_db_1 ... done\n"));
    assert!(stderr.contains("Removing examples_web_1 ... done\nRemoving examples_db_1 ... done\n"));
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "", "no container is left");
    assert!(!ns.links().iter().any(|l| l.starts_with("cpveth")), "{:?}", ns.links());
    assert!(bindable(&ns, "127.0.0.1:8080"), "no listener is left");
    assert!(pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()));
    assert_eq!(ns.pids(), vec![d.child.id().to_string()], "only the daemon runs");
    assert_eq!(d.ok(&["compose", "-f", &file, "ps"]).lines().count(), 2, "ps lists nothing");
}

#[test]
fn up_in_the_foreground_streams_prefixed_output_until_sigint_then_stops_the_services() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let file = compose_file(
        &ns,
        "fg",
        "services:\n  talker:\n    command: [/bin/sh, -c, 'echo hello; exec sleep 3600']\n    \
         stop_signal: SIGUSR1\n    stop_grace_period: 1500ms\n",
    );
    let mut up = Command::new(BIN)
        .env("CPROXY_HOST", &d.host)
        .args(["compose", "-f"])
        .arg(&file)
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("no output from the service");
    assert_eq!(line, "fg_talker_1 | hello");
    assert!(d.ok(&["ps"]).contains("fg_talker_1"));
    let stop = "{{.Config.StopSignal}} {{.Config.StopTimeout}}";
    assert_eq!(d.ok(&["inspect", "-f", stop, "fg_talker_1"]), "SIGUSR1 1\n");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = up.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(d.ok(&["ps", "-q"]), "", "the service was stopped");
    let status = d.ok(&["inspect", "-f", "{{.State.Status}}", "fg_talker_1"]);
    assert_eq!(status.trim(), "exited", "stopped, not removed");
    d.ok(&["compose", "-f", file.to_str().unwrap(), "down"]);
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn a_bad_value_fails_with_the_key_and_line_and_exit_1_creating_nothing() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let file = compose_file(
        &ns,
        "bad",
        "services:\n  web:\n    command: /bin/true\n    ports:\n      - \"99999:80\"\n",
    );
    let out = d.cli(&["compose", "-f", file.to_str().unwrap(), "up", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("ERROR: The Compose file '"), "{stderr}");
    assert!(stderr.contains("line 5: services.web.ports[0]: invalid hostPort: 99999"), "{stderr}");
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn an_unknown_key_is_named_in_a_warning_and_the_rest_runs() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let python = python();
    let file = compose_file(
        &ns,
        "warned",
        &format!(
            "services:\n  app:\n    build: .\n    command: [{python}, -c, 'print(1)']\n    \
             ports:\n      - \"127.0.0.1:8090:80\"\n"
        ),
    );
    let file = file.to_str().unwrap();
    let out = d.cli(&["compose", "-f", file, "up", "-d"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "WARNING: line 3: services.app.build is not supported by cproxy compose and is ignored"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Creating warned_app_1 ... done"), "{stderr}");
    d.ok(&["compose", "-f", file, "down"]);
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}
