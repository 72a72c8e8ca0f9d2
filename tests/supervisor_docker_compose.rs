//! Compose v1 (Debian's docker-compose 1.29 with its python3-docker 5.0.3) against `cproxy
//! daemon`: `tests/fixtures/docker-compose/docker-compose.yml` has a web service publishing a
//! port and serving a named volume with `restart: always`, and a client that reaches it by its
//! name, a network alias and a link alias on the project's network. `up -d`, `ps`, `logs`,
//! `exec`, `run --rm` and `down -v` must print what they print against dockerd 20.10 (recorded
//! from one, below), the port must answer on the namespace's loopback, a restart policy must
//! bring the web server back, and `down -v` must leave no container, network or volume.
//!
//! Without `/usr/bin/docker-compose` the test says why and passes, except in CI (`CI=true`),
//! where it fails (`.ci/run` installs it).

mod supervisor_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use supervisor_support::{Daemon, Netns, eventually, with_image};

const COMPOSE: &str = "/usr/bin/docker-compose";
const FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker-compose/docker-compose.yml");
const PORT: u16 = 18082;

/// `docker-compose -p cli-compose ARGS` inside the namespace: exit code, stdout, stderr. Run
/// by Debian's python with Debian's modules (Compose 1.29 breaks with docker-py 7, which a
/// python3 earlier on PATH may have).
fn compose(ns: &Netns, d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "/usr/bin/python3", COMPOSE, "-f", FILE])
        .args(["-p", "cli-compose"])
        .args(args)
        .env("DOCKER_HOST", &d.host)
        .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
        .env("WEB_PORT", PORT.to_string())
        .env("DOCKER_CONFIG", std::env::temp_dir().join("cproxy-test-docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // Its progress lines end in `\r\n` (its parallel writer's), the others in `\n`.
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace("\r\n", "\n");
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The lines of `text`, sorted (Compose's parallel steps and log threads interleave).
fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// `GET /` on the published port from inside the namespace: the body, once one answers.
fn fetch(ns: &Netns) -> Option<String> {
    ns.run(|| {
        let mut s =
            TcpStream::connect_timeout(&([127, 0, 0, 1], PORT).into(), Duration::from_secs(2))
                .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply
            .starts_with("HTTP/1.")
            .then(|| reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))?
    })
}

fn compose_or_skip() -> bool {
    if Path::new(COMPOSE).exists() {
        return true;
    }
    let why = format!("{COMPOSE} is missing (apt-get install docker-compose)");
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
    eprintln!("skipped: {why}");
    false
}

#[test]
fn compose_up_ps_logs_exec_run_and_down_as_against_dockerd() {
    if !compose_or_skip() {
        return;
    }
    let ns = Netns::new();
    let d = with_image(&ns, &[]);

    let (code, out, err) = compose(&ns, &d, &["up", "-d"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        err,
        "Creating network \"cli-compose_front\" with the default driver\n\
         Creating volume \"cli-compose_www\" with default driver\n\
         Creating cli-compose_web_1 ... \n\
         Creating cli-compose_web_1 ... done\n\
         Creating cli-compose_client_1 ... \n\
         Creating cli-compose_client_1 ... done\n"
    );
    // The port is published on the namespace's loopback; the page is on the named volume.
    assert_eq!(eventually(20, || fetch(&ns)), "hi-from-web\n");

    let (code, out, err) = compose(&ns, &d, &["ps"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "        Name                      Command               State            Ports         \n\
         ---------------------------------------------------------------------------------------\n\
         cli-compose_client_1   sh -c trap 'exit 0' TERM         Up                             \n\
        \x20                      u ...                                                           \n\
         cli-compose_web_1      sh -c echo hi-from-web > / ...   Up      127.0.0.1:18082->80/tcp\n"
    );

    // The client reached the web service by its name, its network alias and its link alias.
    let logs = eventually(20, || {
        let (_, out, _) = compose(&ns, &d, &["logs", "--no-color"]);
        out.contains("client done").then_some(out)
    });
    assert_eq!(
        sorted(&logs),
        [
            "Attaching to cli-compose_client_1, cli-compose_web_1",
            "client_1  | client done",
            "client_1  | hi-from-web",
            "client_1  | hi-from-web",
            "client_1  | hi-from-web",
            "web_1     | web ready",
        ]
    );
    let (code, out, _) = compose(&ns, &d, &["logs", "--no-color", "--tail=1", "client"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Attaching to cli-compose_client_1\nclient_1  | client done\n")
    );

    // exec and run --rm, with their exit codes.
    let (code, out, err) = compose(&ns, &d, &["exec", "-T", "web", "cat", "/www/index.html"]);
    assert_eq!((code, out.as_str()), (0, "hi-from-web\n"), "{err}");
    assert_eq!(compose(&ns, &d, &["exec", "-T", "web", "sh", "-c", "exit 5"]).0, 5);
    let (code, out, err) =
        compose(&ns, &d, &["run", "--rm", "-T", "client", "wget", "-q", "-O", "-", "http://site/"]);
    assert_eq!((code, out.as_str()), (0, "hi-from-web\n"), "{err}");
    assert_eq!(
        err,
        "Creating cli-compose_client_run ... \nCreating cli-compose_client_run ... done\n"
    );
    let (code, out, _) =
        compose(&ns, &d, &["run", "--rm", "-T", "client", "sh", "-c", "echo in run; exit 2"]);
    assert_eq!((code, out.as_str()), (2, "in run\n"));

    // restart: always brings the web server back after its command dies.
    // killall ends the container's command, and with it the container: an exec still running
    // then is killed with it (137), as in Docker, if it had not exited first.
    let (code, _, err) = d.docker(&["exec", "cli-compose_web_1", "killall", "httpd"], None);
    assert!(code == 0 || code == 137, "{code}: {err}");
    eventually(30, || {
        let (_, n, _) = d.docker(
            &["inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "cli-compose_web_1"],
            None,
        );
        (n == "1 running\n").then_some(())
    });
    assert_eq!(eventually(20, || fetch(&ns)), "hi-from-web\n");

    // The project's containers carry Compose's labels, which its filters find.
    let (_, names, _) = d.docker(
        &[
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.project=cli-compose",
            "--format",
            "{{.Names}}",
        ],
        None,
    );
    assert_eq!(sorted(&names), ["cli-compose_client_1", "cli-compose_web_1"]);

    let (code, _, err) = compose(&ns, &d, &["down", "-v"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        sorted(&err),
        [
            "Removing cli-compose_client_1 ... ",
            "Removing cli-compose_client_1 ... done",
            "Removing cli-compose_web_1    ... ",
            "Removing cli-compose_web_1    ... done",
            "Removing network cli-compose_front",
            "Removing volume cli-compose_www",
            "Stopping cli-compose_client_1 ... ",
            "Stopping cli-compose_client_1 ... done",
            "Stopping cli-compose_web_1    ... ",
            "Stopping cli-compose_web_1    ... done",
        ]
    );
    let (_, ps, _) = d.docker(&["ps", "-aq"], None);
    assert_eq!(ps, "", "down leaves no container");
    let (_, nets, _) = d.docker(&["network", "ls", "--format", "{{.Name}}"], None);
    assert_eq!(nets, "bridge\nhost\nnone\n", "down leaves no network");
    let (_, vols, _) = d.docker(&["volume", "ls", "-q"], None);
    assert_eq!(vols, "", "down -v leaves no volume");
    assert!(supervisor_support::bindable(&ns, &format!("127.0.0.1:{PORT}")), "the port is free");
}
