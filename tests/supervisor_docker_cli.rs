//! Docker's own CLI against `cproxy daemon`: the API version is negotiated as with dockerd
//! (`/_ping`'s `Api-Version`, every route under `/vX.Y`), `docker version` and `docker ps` read
//! the daemon's answers, and a version outside the span served gets Docker's words.

mod supervisor_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use supervisor_support::Netns;

/// One raw HTTP/1.0 request on the daemon's socket; the whole answer.
fn raw(host: &str, request: &str) -> String {
    let path = host.strip_prefix("unix://").unwrap();
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn docker_cli(d: &supervisor_support::Daemon, args: &[&str]) -> (bool, String, String) {
    let (code, out, err) = d.docker(args, None);
    (code == 0, out, err)
}

#[test]
fn ping_announces_the_api_version_and_out_of_span_versions_get_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let ping = raw(&d.host, "HEAD /_ping HTTP/1.0\r\nHost: x\r\n\r\n").to_ascii_lowercase();
    assert!(ping.starts_with("http/1.0 200") || ping.starts_with("http/1.1 200"), "{ping}");
    assert!(ping.contains("api-version: 1.41\r\n"), "{ping}");
    assert!(ping.contains("ostype: linux\r\n"), "{ping}");
    let old = raw(&d.host, "GET /v1.24/version HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(old.contains("\"ApiVersion\":\"1.41\""), "{old}");
    let new = raw(&d.host, "GET /v1.99/version HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(new.starts_with("HTTP/1.0 400") || new.starts_with("HTTP/1.1 400"), "{new}");
    assert!(
        new.contains(
            r#"{"message":"client version 1.99 is too new. Maximum supported API version is 1.41"}"#
        ),
        "{new}"
    );
    let unknown = raw(&d.host, "GET /v1.41/nothing/here HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(unknown.contains(r#"{"message":"page not found"}"#), "{unknown}");
}

#[test]
fn the_docker_cli_negotiates_and_lists_containers() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let id = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:5480:80",
        "/bin/sleep",
        "60",
    ]);
    let (ok, out, err) = docker_cli(&d, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1.41");
    let (ok, out, err) =
        docker_cli(&d, &["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Ports}}"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("{} web 127.0.0.1:5480->80/tcp", id.trim()));
    let (ok, out, err) = docker_cli(&d, &["inspect", "-f", "{{.State.Status}}", "web"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "running");
    let (ok, out, err) = docker_cli(&d, &["info", "--format", "{{.ContainersRunning}}"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1");
}

#[test]
fn restart_rename_top_and_prune_answer_as_dockerd_does() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    let started =
        d.docker(&["run", "-d", "--name", "p1", "bb", "sh", "-c", "sleep 100 & sleep 200"], None);
    assert_eq!(started.0, 0, "{}", started.2);
    let pid = |d: &supervisor_support::Daemon| {
        d.docker(&["inspect", "-f", "{{.State.Pid}}", "p1"], None).1
    };
    let before = pid(&d);
    assert_eq!(d.docker(&["restart", "-t", "1", "p1"], None).1, "p1\n");
    assert_ne!(pid(&d), before, "a new run");
    assert_eq!(d.docker(&["rename", "p1", "p2"], None).0, 0);
    let (code, _, err) = d.docker(&["rename", "p2", "p2"], None);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error response from daemon: Renaming a container with the same name as its current name\n"), "{err}");
    assert_eq!(d.docker(&["create", "--name", "q1", "bb", "true"], None).0, 0);
    let (code, _, err) = d.docker(&["rename", "p2", "q1"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "Error when allocating new name: Conflict. The container name \"/q1\" is already in use"
        ),
        "{err}"
    );
    // `top`: the command's processes (not cproxy's init), `ps -ef`'s columns.
    let (code, out, err) = d.docker(&["top", "p2"], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].split_whitespace().eq(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]),
        "{out}"
    );
    let mut cmds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().skip(7).collect::<Vec<_>>().join(" "))
        .map(|s| if s.ends_with("100") { "sleep 100" } else { "sleep 200" })
        .collect();
    cmds.sort();
    assert_eq!(cmds, ["sleep 100", "sleep 200"], "{out}");
    let (code, _, err) = d.docker(&["top", "q1"], None);
    assert_eq!(code, 1);
    assert!(err.ends_with("is not running\n"), "{err}");
    // `container prune`: the stopped one goes, the running one stays.
    let q1 = d.docker(&["inspect", "-f", "{{.Id}}", "q1"], None).1;
    let (code, out, _) = d.docker(&["container", "prune", "-f"], None);
    assert_eq!(code, 0);
    assert!(out.contains(q1.trim()), "{out}");
    assert_eq!(d.docker(&["ps", "-a", "--format", "{{.Names}}"], None).1, "p2\n");
}
