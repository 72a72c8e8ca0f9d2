//! Create's and list's validation end to end, as root, each test with a `cproxy daemon` in a
//! network namespace of its own, against Docker 20.10.24's answers (captured on a dockerd run
//! in a network namespace here; the words are in `engine::create` and `rules::filters`).

mod supervisor_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use supervisor_support::{Daemon, Netns};

/// One request on the daemon's socket (HTTP/1.0, so the answer ends with the connection):
/// its status code and body.
fn api(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(d.host.trim_start_matches("unix://")).unwrap();
    write!(
        s,
        "{method} /v1.41{path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    (code, body.to_string())
}

/// `POST /containers/create` with `config` (Docker's `Config` fields): the status and, for a
/// refusal, Docker's message.
fn create(d: &Daemon, config: &str) -> (u16, String) {
    let (code, body) = api(d, "POST", "/containers/create", config);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    (code, answer["message"].as_str().unwrap_or_default().to_string())
}

/// The names `GET /containers/json?QUERY` lists, after a 200.
fn listed(d: &Daemon, query: &str) -> Vec<String> {
    let (code, body) = api(d, "GET", &format!("/containers/json?{query}"), "");
    assert_eq!(code, 200, "{query}: {body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list.as_array().unwrap().iter().map(|c| c["Names"][0].as_str().unwrap().to_string()).collect()
}

#[test]
fn nameless_variables_and_nul_bytes_are_refused_at_create_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let refusals = [
        // Docker refuses these at create: 400.
        (r#"{"Cmd":["true"],"Env":["A=1","=x"]}"#, "invalid environment variable: =x"),
        (r#"{"Cmd":["true"],"Env":[""]}"#, "invalid environment variable: "),
        (r#"{"Env":["=x"]}"#, "invalid environment variable: =x"),
        // Docker accepts these at create and its start fails in runc's words.
        (
            r#"{"Cmd":["true"],"Env":["A=a\u0000b"]}"#,
            r#"environment variable value can't contain null(\x00): "A=a\x00b""#,
        ),
        (
            r#"{"Cmd":["true"],"Env":["A\u0000=b"]}"#,
            r#"environment variable name can't contain null(\x00): "A\x00=b""#,
        ),
        (
            r#"{"Cmd":["true"],"Hostname":"h\u0000"}"#,
            r#"environment variable value can't contain null(\x00): "HOSTNAME=h\x00""#,
        ),
        (r#"{"Cmd":["a\u0000b"]}"#, r#"exec: "a\x00b": executable file not found in $PATH"#),
        (r#"{"Cmd":["/bin/echo","a\u0000b"]}"#, "exec /bin/echo: invalid argument"),
    ];
    for (config, words) in refusals {
        assert_eq!(create(&d, config), (400, words.to_string()), "{config}");
    }
    assert_eq!(listed(&d, "all=1"), Vec::<String>::new(), "nothing was created");
    // A bare name unsets and a name with a space is a name: both are taken, as by Docker.
    let (code, _) = create(&d, r#"{"Cmd":["true"],"Env":[" =x","BARE"]}"#);
    assert_eq!(code, 201);
}

#[test]
fn a_hostname_over_64_bytes_is_refused_at_create_and_one_of_64_runs() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    // Docker 20.10 creates it and `docker run` then fails with exit 125: "docker: Error
    // response from daemon: failed to create shim task: … sethostname: invalid argument: …".
    for long in ["a".repeat(65), "é".repeat(33)] {
        let out = d.cli(&["run", "--rootfs", "/", "-d", "--name", "long", "-h", &long, "true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        assert!(stderr.contains("sethostname: invalid argument"), "{stderr}");
    }
    assert_eq!(listed(&d, "all=1"), Vec::<String>::new(), "nothing was created");
    for fits in ["a".repeat(64), "é".repeat(32)] {
        assert_eq!(
            d.ok(&["run", "--rootfs", "/", "--rm", "-h", &fits, "hostname"]),
            format!("{fits}\n")
        );
    }
}

#[test]
fn a_filter_value_that_is_no_regexp_lists_nothing_and_is_no_error() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "web", "sleep", "3600"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "db", "sleep", "3600"]);
    // {"name":{"[":true}}: Docker 20.10.24 answers 200 and [].
    assert_eq!(
        listed(&d, "filters=%7B%22name%22%3A%7B%22%5B%22%3Atrue%7D%7D"),
        Vec::<String>::new()
    );
    // {"name":{"web":true,"[":true}}: the bad value is skipped, the other one matches.
    let both = "filters=%7B%22name%22%3A%7B%22web%22%3Atrue%2C%22%5B%22%3Atrue%7D%7D";
    assert_eq!(listed(&d, both), ["/web"]);
    let out = d.cli(&["ps", "--filter", "name=(", "--format", "{{.Names}}"]);
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), &b""[..]));
}

#[test]
fn listing_a_container_that_exposes_every_port_is_quick() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "wide", "--expose", "1-65535", "sleep", "3600"]);
    // Docker 20.10 lists each of the 65,535 ports in `Ports`; so does cproxy. One listing
    // took 3.1 s in a release build when each exposed port searched the list.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let (code, body) = api(&d, "GET", "/containers/json", "");
        slowest = slowest.max(t.elapsed());
        assert_eq!(code, 200);
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let ports = list[0]["Ports"].as_array().unwrap();
        assert_eq!(ports.len(), 65_535);
        assert_eq!(ports[0], serde_json::json!({"PrivatePort": 1, "Type": "tcp"}));
    }
    assert!(slowest < Duration::from_millis(750), "a listing took {slowest:?}");
    assert_eq!(d.ok(&["ps", "--format", "{{.Ports}}"]), "1-65535/tcp\n");
}
