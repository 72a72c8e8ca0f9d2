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

/// `--runtime`: the one runtime, by name, where `info` and `inspect` show it; another is refused
/// in dockerd's words (a sandboxing runtime asked for is not quietly replaced) and nothing is
/// made.
#[test]
fn the_runtime_is_named_and_another_is_refused_as_dockerd_refuses_it() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    let (ok, out, err) = docker_cli(&d, &["info"]);
    assert!(ok, "{err}");
    assert!(out.contains("\n Runtimes: cproxy\n Default Runtime: cproxy\n"), "{out}");
    let (code, _, err) = d.docker(&["run", "--runtime", "runsc", "bb", "echo", "no"], None);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.starts_with("docker: Error response from daemon: Unknown runtime specified runsc.\n"),
        "{err}"
    );
    let (code, out, err) =
        d.docker(&["run", "--name", "rt", "--runtime", "cproxy", "bb", "echo", "ok"], None);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{err}");
    let (_, out, _) = docker_cli(&d, &["inspect", "-f", "{{.HostConfig.Runtime}}", "rt"]);
    assert_eq!(out.trim(), "cproxy");
    let (_, out, _) = docker_cli(&d, &["ps", "-aq"]);
    assert_eq!(out.lines().count(), 1, "only rt was made: {out}");
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

/// `docker system df` (`-v` too) and `ps -s` add up what dockerd 20.10 adds up: the image's
/// layers once, each container's writable layer, each volume's files and its users.
#[test]
fn system_df_and_ps_sizes_add_up_the_disk_as_dockerd_does() {
    let ns = Netns::new();
    let d = supervisor_support::with_image(&ns, &[]);
    let script = "head -c 5000 /dev/zero > /data/x; head -c 1234 /dev/zero > /tmp/y; touch /ready; \
                  exec sleep 600";
    let (code, _, err) = d.docker(
        &["run", "-d", "--name", "c1", "-v", "dfvol:/data", "bb", "sh", "-c", script],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.docker(&["run", "--name", "c2", "bb", "true"], None);
    assert_eq!(code, 0, "{err}");
    d.docker(&["volume", "create", "empty"], None);
    supervisor_support::eventually(10, || {
        (d.docker(&["exec", "c1", "test", "-e", "/ready"], None).0 == 0).then_some(())
    });

    let (status, body) = d.api("GET", "/v1.41/system/df", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let image = &df["Images"][0];
    assert_eq!(df["LayersSize"], image["Size"], "one image: its layers are all there is");
    assert_eq!((image["Containers"].as_i64(), image["SharedSize"].as_i64()), (Some(2), Some(0)));
    assert!(df["BuildCache"].is_null() && df["BuilderSize"] == 0);
    let by_name = |n: &str| {
        df["Containers"].as_array().unwrap().iter().find(|c| c["Names"][0] == n).unwrap().clone()
    };
    let (c1, c2) = (by_name("/c1"), by_name("/c2"));
    // The file under the volume is the volume's, not the container's.
    assert_eq!(c1["SizeRw"], 1234);
    assert_eq!(c1["SizeRootFs"].as_i64(), Some(1234 + image["Size"].as_i64().unwrap()));
    assert!(c2.get("SizeRw").is_none(), "0 is left out, as Go's omitempty: {c2}");
    assert_eq!(c2["SizeRootFs"], image["Size"]);
    let volume = |n: &str| {
        df["Volumes"].as_array().unwrap().iter().find(|v| v["Name"] == n).unwrap()["UsageData"]
            .clone()
    };
    assert_eq!(volume("dfvol"), serde_json::json!({"RefCount": 1, "Size": 5000}));
    assert_eq!(volume("empty"), serde_json::json!({"RefCount": 0, "Size": 0}));

    // Docker's CLI renders it.
    let (code, out, err) = d.docker(&["system", "df"], None);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(rows[2][..4], ["Containers", "2", "1", "1.234kB"]);
    assert_eq!(rows[3][..5], ["Local", "Volumes", "2", "1", "5kB"]);
    let (code, out, err) = d.docker(&["system", "df", "-v"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.split_whitespace().eq(["dfvol", "1", "5kB"])), "{out}");
    let c1_row = out.lines().find(|l| l.ends_with(" c1")).unwrap();
    assert!(c1_row.contains(" 1.23kB "), "{c1_row}");
    let (code, out, err) = d.docker(&["ps", "-as", "--format", "{{.Names}} {{.Size}}"], None);
    assert_eq!(code, 0, "{err}");
    let mut sizes: Vec<&str> = out.lines().collect();
    sizes.sort();
    // (The virtual size is the image's, busybox's size on this machine.)
    assert!(sizes[0].starts_with("c1 1.23kB (virtual ") && sizes[0].ends_with("MB)"), "{out}");
    assert!(sizes[1].starts_with("c2 0B (virtual ") && sizes[1].ends_with("MB)"), "{out}");
    d.docker(&["rm", "-f", "c1"], None);
}

/// The status line's code, the headers (names in lower case) and the body of a raw answer.
fn parts(answer: &str) -> (u16, Vec<(String, String)>, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status.unwrap_or(0), headers, body.to_string())
}

/// One request on a connection of its own, `Connection: close`.
fn request(
    host: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    parts(&raw(host, &req))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Every handler that reads a JSON body checks its `Content-Type` first, as dockerd's
/// `CheckForJSON` does (before it looks the container up), and `start` refuses a body.
#[test]
fn content_types_as_dockerd_checks_them() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let fixture = include_str!("fixtures/docker-20.10-errors/content-types.txt");
    let mut replayed = 0;
    for line in fixture.lines().filter(|l| !l.starts_with('#')) {
        let [path, content_type, body, status, answer] =
            line.split('\t').collect::<Vec<_>>().try_into().unwrap();
        let content_type = match content_type {
            "-" => String::new(),
            t => format!("Content-Type: {t}\r\n"),
        };
        let req = format!(
            "POST /v1.41/{path} HTTP/1.1\r\nHost: x\r\n{content_type}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let (code, _, got) = parts(&raw(&d.host, &req));
        assert_eq!((code, got.trim_end()), (status.parse().unwrap(), answer), "{line}");
        replayed += 1;
    }
    assert!(replayed >= 50, "the fixture was read: {replayed} cases");
}

/// Recorded against dockerd 20.10 (tests/fixtures/docker-20.10-errors/answers.txt): every error is
/// `application/json`, `{"message":…}` and a newline (Go's `json.Encoder`, HTML left alone),
/// a method a path does not take is `page not found` as an unknown path is.
#[test]
fn error_answers_are_dockerds_bytes() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let cases = [
        ("GET", "/v1.41/containers/nope/json", 404, "{\"message\":\"No such container: nope\"}\n"),
        ("GET", "/v1.41/nosuchroute", 404, "{\"message\":\"page not found\"}\n"),
        ("GET", "/nosuch", 404, "{\"message\":\"page not found\"}\n"),
        ("PUT", "/v1.41/_ping", 404, "{\"message\":\"page not found\"}\n"),
        (
            "GET",
            "/v1.41/containers/a%3Cb%26%22/json",
            404,
            "{\"message\":\"No such container: a<b&\\\"\"}\n",
        ),
        (
            "GET",
            "/v1.99/version",
            400,
            "{\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.41\"}\n",
        ),
    ];
    for (method, path, status, body) in cases {
        let (code, headers, got) = request(&d.host, method, path, "");
        assert_eq!((code, got.as_str()), (status, body), "{method} {path}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"), "{method} {path}");
        assert_eq!(header(&headers, "content-length"), Some(&*body.len().to_string()));
    }
    // A whole answer that is not an error ends so too.
    let (code, headers, got) = request(&d.host, "GET", "/v1.41/containers/json", "");
    assert_eq!((code, got.as_str()), (200, "[]\n"));
    assert_eq!(header(&headers, "content-length"), Some("3"));
    // A body that is no JSON: Docker's 400, in Go's parser's words.
    let (code, headers, got) = request(&d.host, "POST", "/v1.41/networks/create", "{bad");
    assert_eq!(code, 400, "{got}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(
        got,
        "{\"message\":\"invalid character 'b' looking for beginning of object key string\"}\n"
    );
}

/// Bodies dockerd refuses, replayed from what dockerd 20.10 answered
/// (tests/fixtures/docker-20.10-errors/bodies.txt): Go's `encoding/json` words, `EOF` or `got EOF
/// while reading request body` for an empty body, and the status of the handler (500 from
/// `containers/create`'s decoder, 400 from the others). The first JSON value is read, as Go's
/// decoder does, and the rest ignored. Every answer of a route carries dockerd's headers, a
/// refused version three of them, an unknown path none.
#[test]
fn bad_bodies_get_dockerds_words() {
    // Where the words still differ, and why: Go names the Go type holding a nested field
    // (`PortBinding`, `IPAMConfig`) where cproxy names the field above it, and a `[]string`
    // type its own (`nat.PortSet`).
    const DIFFERENT: [&str; 3] =
        ["containers/create n", "containers/create o", "networks/create f"];
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let fixture = include_str!("fixtures/docker-20.10-errors/bodies.txt");
    let mut replayed = 0;
    for line in fixture.lines().filter(|l| !l.starts_with('#')) {
        let (asked, answered) = line.split_once(" => ").unwrap();
        let (path, rest) = asked.split_once(' ').unwrap();
        let (label, body) = rest.split_once(' ').unwrap_or((rest, ""));
        if DIFFERENT.contains(&format!("{path} {label}").as_str()) {
            continue;
        }
        let (message, status) = answered.trim_end().rsplit_once(' ').unwrap();
        let (code, headers, got) = request(&d.host, "POST", &format!("/v1.41/{path}"), body);
        assert_eq!((code, got.trim_end()), (status.parse().unwrap(), message.trim_end()), "{line}");
        assert_eq!(header(&headers, "api-version"), Some("1.41"), "{line}");
        replayed += 1;
    }
    assert!(replayed >= 20, "the fixture was read: {replayed} cases");

    let (_, headers, _) = request(&d.host, "GET", "/v1.41/containers/json", "");
    for (name, value) in
        [("api-version", "1.41"), ("ostype", "linux"), ("docker-experimental", "false")]
    {
        assert_eq!(header(&headers, name), Some(value), "a route's answer: {name}");
    }
    assert!(header(&headers, "server").is_some_and(|s| s.ends_with(" (linux)")));
    let (_, headers, _) = request(&d.host, "GET", "/v1.99/version", "");
    assert_eq!(header(&headers, "api-version"), Some("1.41"));
    assert_eq!(header(&headers, "docker-experimental"), None, "the version refused first");
    let (_, headers, _) = request(&d.host, "GET", "/nosuch", "");
    assert_eq!((header(&headers, "api-version"), header(&headers, "server")), (None, None));
}
