//! Restart policies and links end to end, as root: every test starts `cproxy daemon` inside a
//! network namespace of its own and drives it with the client, comparing with Docker 20.10's
//! behaviour (shared/docker-reference 3c-links.txt, 3e-restart-policies.txt,
//! 3e-dockerd-restart.txt).

mod supervisor_support;

use std::time::{Duration, Instant};

use supervisor_support::{Daemon, Netns, eventually};

/// `inspect -f TEMPLATE NAME`, trimmed.
fn inspect(d: &Daemon, template: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", template, name]).trim().to_string()
}

/// The STATUS column of `ps -a` for `name`.
fn status(d: &Daemon, name: &str) -> String {
    let out = d.ok(&["ps", "-a"]);
    let header = out.lines().next().unwrap_or("");
    let (from, to) = (header.find("STATUS").unwrap(), header.find("PORTS").unwrap());
    let line = out.lines().find(|l| l.ends_with(&format!(" {name}"))).unwrap_or("");
    line.get(from..to).unwrap_or("").trim().to_string()
}

/// Waits until `name`'s `.State.Status` is `want`.
fn wait_state(d: &Daemon, name: &str, want: &str) {
    eventually(20, || (inspect(d, "{{.State.Status}}", name) == want).then_some(()));
}

/// Asserts that `name` stays `exited` with RestartCount `count` for a while (longer than the
/// first back-off delays): there is no signal for "nothing happened".
fn stays_exited(d: &Daemon, name: &str, count: u32) {
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(
            inspect(d, "{{.State.Status}} {{.RestartCount}}", name),
            format!("exited {count}")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_restart_policies_are_refused_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let cases: [(&[&str], &str); 6] = [
        (
            &["--restart", "foo"],
            "cproxy: Error response from daemon: invalid restart policy 'foo'.",
        ),
        (
            &["--restart", "always:3"],
            "cproxy: Error response from daemon: maximum retry count cannot be used with restart policy 'always'.",
        ),
        (
            &["--restart", "on-failure:-1"],
            "cproxy: Error response from daemon: maximum retry count cannot be negative.",
        ),
        (&["--restart", "on-failure:x"], "cproxy: maximum retry count must be an integer."),
        (&["--rm", "--restart", "always"], "cproxy: Conflicting options: --restart and --rm."),
        (
            &["--restart", "unless-stopped:2"],
            "cproxy: Error response from daemon: maximum retry count cannot be used with restart policy 'unless-stopped'.",
        ),
    ];
    for (flags, want) in cases {
        let mut argv = vec!["run", "--rootfs", "/", "-d"];
        argv.extend_from_slice(flags);
        argv.push("true");
        let out = d.cli(&argv);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{want}\nSee 'cproxy run --help'.\n"),
            "{flags:?}"
        );
    }
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "", "a refused run creates nothing");
}

#[test]
fn always_restarts_after_exit_0_until_stopped() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let id = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "always0",
        "--restart",
        "always",
        "sh",
        "-c",
        "exit 0",
    ]);
    assert_eq!(inspect(&d, "{{.HostConfig.RestartPolicy.Name}}", "always0"), "always");
    // The back-off doubles from 100 ms: by the fourth restart it waits long enough to be seen.
    let seen = eventually(20, || {
        let s = status(&d, "always0");
        s.starts_with("Restarting (0) ").then_some(s)
    });
    assert!(seen.ends_with(" ago"), "{seen}");
    let count: u32 = inspect(&d, "{{.RestartCount}}", "always0").parse().unwrap();
    assert!(count >= 1, "{count}");
    // ID and name are kept across restarts; `ps` lists a restarting container without -a.
    assert_eq!(inspect(&d, "{{.Id}}", "always0"), id.trim());
    assert!(d.ok(&["ps"]).contains("always0"));
    d.ok(&["stop", "always0"]);
    let count: u32 = inspect(&d, "{{.RestartCount}}", "always0").parse().unwrap();
    wait_state(&d, "always0", "exited");
    stays_exited(&d, "always0", count);
}

/// 3e-restart-policies.txt's `always_kill`: `kill` ends an `always` container for good
/// (Exited (137), RestartCount 0); other signals reach the command only if it handles them, as
/// Docker's PID 1; `wait` prints the exit code; errors in Docker's words.
#[test]
fn kill_ends_an_always_container_for_good_and_passes_other_signals_as_to_pid_1() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "always_kill",
        "--restart",
        "always",
        "sleep",
        "3600",
    ]);
    // A plain sleep has no handler for HUP: as PID 1 it does not see it.
    assert_eq!(d.ok(&["kill", "-s", "HUP", "always_kill"]), "always_kill\n");
    assert_eq!(inspect(&d, "{{.State.Status}}", "always_kill"), "running");
    assert_eq!(d.ok(&["kill", "always_kill"]), "always_kill\n");
    assert_eq!(d.ok(&["wait", "always_kill"]), "137\n");
    assert!(
        status(&d, "always_kill").starts_with("Exited (137) "),
        "{}",
        status(&d, "always_kill")
    );
    stays_exited(&d, "always_kill", 0);

    // A shell that traps USR1 gets it, and exits as its trap says.
    let trapping = "trap 'echo got USR1; exit 3' USR1; echo ready; while :; do sleep 0.1; done";
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "trapper", "sh", "-c", trapping]);
    eventually(10, || d.ok(&["logs", "trapper"]).contains("ready").then_some(()));
    assert_eq!(d.ok(&["kill", "--signal", "SIGUSR1", "trapper"]), "trapper\n");
    assert_eq!(d.ok(&["wait", "trapper"]), "3\n");
    assert_eq!(d.ok(&["logs", "trapper"]), "ready\ngot USR1\n");

    let id = inspect(&d, "{{.Id}}", "trapper");
    let refused = |args: &[&str], stderr: String| {
        let out = d.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), stderr, "{args:?}");
    };
    let from_daemon = "Error response from daemon:";
    refused(
        &["kill", "trapper"],
        format!("{from_daemon} Cannot kill container: trapper: Container {id} is not running\n"),
    );
    refused(
        &["kill", "nosuch"],
        format!("{from_daemon} Cannot kill container: nosuch: No such container: nosuch\n"),
    );
    refused(&["kill", "-s", "FOO", "trapper"], format!("{from_daemon} Invalid signal: FOO\n"));
    refused(&["wait", "nosuch"], format!("{from_daemon} No such container: nosuch\n"));
}

#[test]
fn on_failure_restarts_a_failing_command_at_most_n_times() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "onfail",
        "--restart",
        "on-failure:3",
        "sh",
        "-c",
        "exit 1",
    ]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "onfail_ok",
        "--restart",
        "on-failure:3",
        "sh",
        "-c",
        "exit 0",
    ]);
    assert_eq!(
        inspect(
            &d,
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "onfail"
        ),
        "on-failure 3"
    );
    // 100 + 200 + 400 ms of back-off, then it stays down: four runs in all.
    eventually(20, || {
        (inspect(&d, "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "onfail")
            == "exited 3 1")
            .then_some(())
    });
    stays_exited(&d, "onfail", 3);
    assert!(status(&d, "onfail").starts_with("Exited (1) "), "{}", status(&d, "onfail"));
    // A command that succeeds is not restarted.
    wait_state(&d, "onfail_ok", "exited");
    stays_exited(&d, "onfail_ok", 0);
}

#[test]
fn unless_stopped_restarts_after_failure_and_no_never_does() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "us",
        "--restart",
        "unless-stopped",
        "sh",
        "-c",
        "exit 1",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "never", "sh", "-c", "exit 1"]);
    eventually(20, || {
        let n: u32 = inspect(&d, "{{.RestartCount}}", "us").parse().ok()?;
        (n >= 2).then_some(())
    });
    assert_eq!(inspect(&d, "{{.HostConfig.RestartPolicy.Name}}", "never"), "no");
    wait_state(&d, "never", "exited");
    stays_exited(&d, "never", 0);
    d.ok(&["stop", "us"]);
    let count: u32 = inspect(&d, "{{.RestartCount}}", "us").parse().unwrap();
    wait_state(&d, "us", "exited");
    stays_exited(&d, "us", count);
}

#[test]
fn a_stopped_container_is_not_restarted_whatever_its_policy() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    for (name, policy) in
        [("no", "no"), ("al", "always"), ("us", "unless-stopped"), ("of", "on-failure")]
    {
        d.ok(&["run", "--rootfs", "/", "-d", "--name", name, "--restart", policy, "sleep", "1000"]);
    }
    d.ok(&["stop", "-t", "1", "no", "al", "us", "of"]);
    for name in ["no", "al", "us", "of"] {
        stays_exited(&d, name, 0);
    }
    // An explicit start brings it back.
    d.ok(&["start", "al"]);
    wait_state(&d, "al", "running");
}

#[test]
fn always_comes_back_after_a_daemon_restart() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    let policies = [
        ("us_running", "unless-stopped"),
        ("us_stopped", "unless-stopped"),
        ("al_running", "always"),
        ("al_stopped", "always"),
        ("of_running", "on-failure:3"),
        ("no_running", "no"),
    ];
    for (name, policy) in policies {
        d.ok(&[
            "run",
            "--rootfs",
            "/",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "-p",
            "127.0.0.1::80",
            "sleep",
            "1000",
        ]);
    }
    d.ok(&["stop", "-t", "1", "us_stopped", "al_stopped"]);
    let id = inspect(&d, "{{.Id}}", "al_running");
    assert!(d.terminate().success());
    let d = ns.daemon(&[]);
    for (name, want) in [
        ("us_running", "running"),
        ("us_stopped", "exited"),
        ("al_running", "running"),
        ("al_stopped", "running"),
        ("of_running", "running"),
        ("no_running", "exited"),
    ] {
        assert_eq!(
            inspect(&d, "{{.State.Status}} {{.RestartCount}}", name),
            format!("{want} 0"),
            "{name}"
        );
    }
    assert_eq!(inspect(&d, "{{.Id}}", "al_running"), id);
    // Its published port is bound again.
    let port = d.ok(&["port", "al_running", "80"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
}

/// The tutorials' database: answers every TCP connection on 5432 with a line.
const DB_SERVER: &str = "import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 5432))
s.listen()
while True:
    c, _ = s.accept()
    c.sendall(b'db here\\n')
    c.close()
";

/// Docker's fixed hosts lines, before the links' and the container's own.
const BASE_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// `db` as the tutorials run it, and `web` linked to it.
fn db_and_web(d: &Daemon) {
    let py = supervisor_support::python();
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "db",
        "-e",
        "PG_VERSION=9.3",
        "--expose",
        "5432",
        &py,
        "-c",
        DB_SERVER,
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "web", "--link", "db:db", "sleep", "1000"]);
}

/// Docker's variables for `--link db:db` to a `db` at `ip`.
fn link_vars(ip: &str) -> Vec<String> {
    vec![
        "DB_ENV_PG_VERSION=9.3".into(),
        "DB_NAME=/web/db".into(),
        format!("DB_PORT=tcp://{ip}:5432"),
        format!("DB_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("DB_PORT_5432_TCP_ADDR={ip}"),
        "DB_PORT_5432_TCP_PORT=5432".into(),
        "DB_PORT_5432_TCP_PROTO=tcp".into(),
    ]
}

#[test]
fn the_tutorials_web_reaches_its_linked_db_by_docker_variables_and_hosts_line() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    db_and_web(&d);
    let db_ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", "db");
    let db_host = inspect(&d, "{{.Config.Hostname}}", "db");
    let web_ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", "web");
    let web_host = inspect(&d, "{{.Config.Hostname}}", "web");
    assert_eq!(inspect(&d, "{{.HostConfig.Links}}", "web"), "[/db:/web/db]");
    let names = d.ok(&["ps", "--no-trunc"]);
    assert!(names.lines().any(|l| l.ends_with("   db,web/db")), "{names}");
    assert!(d.ok(&["ps"]).lines().any(|l| l.ends_with("   db")));

    let mut env: Vec<String> = d.ok(&["exec", "web", "env"]).lines().map(String::from).collect();
    env.sort();
    let mut want = link_vars(&db_ip);
    want.extend([
        "HOME=/root".to_string(),
        format!("HOSTNAME={web_host}"),
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ]);
    assert_eq!(env, want);
    assert_eq!(
        d.ok(&["exec", "web", "cat", "/etc/hosts"]),
        format!("{BASE_HOSTS}{db_ip}\tdb {db_host}\n{web_ip}\t{web_host}\n")
    );

    // From web, by the variables' address and by the hosts file's name.
    let py = supervisor_support::python();
    let dial = "import os, socket, sys
for host in (os.environ['DB_PORT_5432_TCP_ADDR'], 'db'):
    c = socket.create_connection((host, int(os.environ['DB_PORT_5432_TCP_PORT'])), timeout=5)
    sys.stdout.write(c.makefile().readline())
";
    let answer = eventually(15, || {
        let out = d.cli(&["exec", "web", &py, "-c", dial]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(answer, "db here\ndb here\n");

    // The link published nothing: 5432 is free on the host side.
    assert!(ns.run(|| std::net::TcpListener::bind("0.0.0.0:5432").is_ok()));
    assert_eq!(d.ok(&["port", "db"]), "");

    // A container in web's network namespace shares web's hosts file, as in Docker.
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "sidecar",
        "--network",
        "container:web",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        d.ok(&["exec", "sidecar", "cat", "/etc/hosts"]),
        d.ok(&["exec", "web", "cat", "/etc/hosts"])
    );

    // db comes back at another address (a filler takes its old one): web's hosts file (and
    // so its sidecar's) and what exec sees follow it.
    d.ok(&["stop", "-t", "1", "db"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "filler", "sleep", "1000"]);
    assert_eq!(inspect(&d, "{{.NetworkSettings.IPAddress}}", "filler"), db_ip);
    d.ok(&["start", "db"]);
    let new_ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", "db");
    assert_ne!(new_ip, db_ip);
    let rewritten = format!("{BASE_HOSTS}{new_ip}\tdb {db_host}\n{web_ip}\t{web_host}\n");
    assert_eq!(d.ok(&["exec", "web", "cat", "/etc/hosts"]), rewritten);
    assert_eq!(d.ok(&["exec", "sidecar", "cat", "/etc/hosts"]), rewritten, "the sidecar's");
    let env = d.ok(&["exec", "web", "env"]);
    assert!(env.contains(&format!("DB_PORT=tcp://{new_ip}:5432\n")), "{env}");
}

#[test]
fn a_link_to_a_missing_or_stopped_container_is_refused_and_starts_nothing() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let out = d.cli(&["run", "--rootfs", "/", "-d", "--link", "nosuchdb:db", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cproxy: Error response from daemon: could not get container for nosuchdb: No such container: nosuchdb.\nSee 'cproxy run --help'.\n"
    );
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "exiteddb", "sh", "-c", "exit 0"]);
    wait_state(&d, "exiteddb", "exited");
    let out =
        d.cli(&["run", "--rootfs", "/", "--rm", "--name", "rr", "--link", "exiteddb:db", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cproxy: Error response from daemon: Cannot link to a non running container: /exiteddb AS /rr/db.\n"
    );
    let out = d.cli(&["run", "--rootfs", "/", "-d", "--link", "a:b:c", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cproxy: invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c.\nSee 'cproxy run --help'.\n"
    );
    assert_eq!(d.ok(&["ps", "-q"]), "", "nothing runs");
    assert_eq!(d.ok(&["ps", "-a", "-q"]).lines().count(), 1, "only exiteddb exists");
}

#[test]
fn a_reader_inside_never_sees_a_partial_hosts_file_across_rewrites() {
    const REWRITES: usize = 200;
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "db", "sleep", "1000"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "web", "--link", "db:db", "sleep", "1000"]);
    let web_ip = inspect(&d, "{{.NetworkSettings.IPAddress}}", "web");
    let web_host = inspect(&d, "{{.Config.Hostname}}", "web");
    let stop = ns.dir.join("stop-reading");
    // Reads /etc/hosts (path lookup and all) as fast as it can; a read is good if it is a whole
    // file: Docker's first line, a db line, and web's own line last.
    let reader = format!(
        "import os, sys
own = '{web_ip}\\t{web_host}\\n'
reads = bad = swaps = 0
last = None
print('ready', flush=True)
while not os.path.exists('{stop}'):
    with open('/etc/hosts') as f:
        ino = os.fstat(f.fileno()).st_ino
        text = f.read()
    reads += 1
    if ino != last:
        swaps += 1
        last = ino
    if not (text.startswith('127.0.0.1\\tlocalhost\\n') and '\\tdb ' in text and text.endswith(own)):
        bad += 1
        sys.stderr.write(repr(text) + '\\n')
print(reads, bad, swaps, flush=True)
",
        stop = stop.display()
    );
    let mut child = std::process::Command::new(supervisor_support::BIN)
        .env("CPROXY_HOST", &d.host)
        .args(["exec", "web", &supervisor_support::python(), "-c", &reader])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // One client call restarts db REWRITES times; each start rewrites web's hosts file.
    let mut argv = vec!["restart", "-t", "0"];
    argv.extend(std::iter::repeat_n("db", REWRITES));
    d.ok(&argv);
    std::fs::write(&stop, "").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(child.wait().unwrap().success());
    let counts: Vec<usize> = line.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let [reads, bad, swaps] = counts[..] else { panic!("{line}") };
    assert_eq!(bad, 0, "{reads} reads, {bad} partial");
    // A freed inode number may come back for the next file, so not every swap is told apart.
    assert!(swaps > REWRITES / 10, "only {swaps} swaps seen in {reads} reads");
    assert!(reads > swaps);
    // Each swap replaced the mount on /etc/hosts rather than piling one on it.
    let mounts = d.ok(&["exec", "web", "grep", "-c", " /etc/hosts ", "/proc/self/mountinfo"]);
    assert_eq!(mounts, "1\n");
}
