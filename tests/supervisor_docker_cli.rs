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
