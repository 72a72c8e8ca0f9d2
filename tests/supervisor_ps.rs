//! `cproxy ps --filter` and `--format` end to end, as root: each test starts `cproxy daemon`
//! inside a network namespace of its own, makes containers running, exited and restarting on a
//! user-defined network and on the default bridge, and compares `ps`'s output with Docker
//! 20.10's (shared/docker-reference 3c-links.txt, 3d-hosts-netmodes.txt, 3e-restart-policies.txt,
//! 3f-user-networks.txt, 4-userland-proxy-docker-proxy.txt).

mod supervisor_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use supervisor_support::{Daemon, Netns, eventually};

/// `ps ARGS`: (stdout, stderr, exit code).
fn ps(d: &Daemon, args: &[&str]) -> (String, String, i32) {
    let mut argv = vec!["ps"];
    argv.extend_from_slice(args);
    let out = d.cli(&argv);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// `ps ARGS`, which must succeed: its stdout.
fn ok(d: &Daemon, args: &[&str]) -> String {
    let (out, err, code) = ps(d, args);
    assert_eq!(code, 0, "ps {args:?}: {err}");
    assert_eq!(err, "", "ps {args:?}");
    out
}

fn state(d: &Daemon, name: &str) -> String {
    d.ok(&["inspect", "-f", "{{.State.Status}}", name]).trim().to_string()
}

/// The scene, oldest first: `web` on my-bridge publishing 127.0.0.1:8080->80, `myweb` on the
/// default bridge, `db` exited with 3, `hostnet` on the host's network, `sidecar` in web's.
fn scene(d: &Daemon) {
    d.ok(&["network", "create", "my-bridge"]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "web",
        "--network",
        "my-bridge",
        "-p",
        "127.0.0.1:8080:80",
        "sleep",
        "3600",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "myweb", "sleep", "3600"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "db", "--expose", "5432", "sh", "-c", "exit 3"]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "hostnet",
        "--network",
        "host",
        "sleep",
        "3600",
    ]);
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
        "3600",
    ]);
    eventually(20, || (state(d, "db") == "exited").then_some(()));
}

#[test]
fn filters_select_as_dockers_daemon() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    scene(&d);
    let names = ["--format", "{{.Names}}"];
    let with = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend_from_slice(&names);
        ok(&d, &v)
    };
    // Without -a: the running ones, newest first.
    assert_eq!(with(&[]), "sidecar\nhostnet\nmyweb\nweb\n");
    assert_eq!(with(&["-a"]), "sidecar\nhostnet\ndb\nmyweb\nweb\n");
    // name: a regexp on the container's own name (`/web` too), not on names links give.
    assert_eq!(with(&["--filter", "name=web"]), "myweb\nweb\n");
    assert_eq!(with(&["--filter", "name=^web$"]), "web\n");
    assert_eq!(with(&["-f", "name=^/web"]), "web\n");
    // The same key twice ORs, different keys AND.
    assert_eq!(with(&["-a", "-f", "name=^web$", "-f", "name=db"]), "db\nweb\n");
    assert_eq!(with(&["-a", "-f", "name=web", "-f", "status=exited"]), "");
    // status implies -a; exited wants -a to see anything.
    assert_eq!(with(&["--filter", "status=exited"]), "db\n");
    assert_eq!(
        with(&["--filter", "status=running", "-f", "name=e"]),
        "sidecar\nhostnet\nmyweb\nweb\n"
    );
    assert_eq!(with(&["-a", "--filter", "exited=3"]), "db\n");
    assert_eq!(with(&["-a", "--filter", "exited=0"]), "");
    assert_eq!(with(&["--filter", "exited=3"]), "");
    // id: an unambiguous prefix.
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "web"]).trim().to_string();
    assert_eq!(with(&["--filter", &format!("id={}", &id[..12])]), "web\n");
    assert_eq!(with(&["--filter", &format!("id={id}")]), "web\n");
    // network: a name or an ID prefix.
    assert_eq!(with(&["-a", "--filter", "network=bridge"]), "db\nmyweb\n");
    assert_eq!(with(&["--filter", "network=my-bridge"]), "web\n");
    assert_eq!(with(&["--filter", "network=host"]), "hostnet\n");
    let net = d.ok(&["network", "inspect", "-f", "{{.Id}}", "my-bridge"]).trim().to_string();
    assert_eq!(with(&["--filter", &format!("network={}", &net[..6])]), "web\n");
    // publish: container ports published; expose: exposed (published ones included).
    assert_eq!(with(&["--filter", "publish=80"]), "web\n");
    assert_eq!(with(&["--filter", "publish=80/udp"]), "");
    assert_eq!(with(&["-a", "--filter", "expose=5000-6000"]), "db\n");
    assert_eq!(with(&["-a", "--filter", "expose=80/tcp"]), "web\n");
    // before/since: by name or ID, in creation order.
    assert_eq!(with(&["-a", "--filter", "since=db"]), "sidecar\nhostnet\n");
    assert_eq!(with(&["-a", "--filter", "before=db"]), "myweb\nweb\n");
    // No container has labels here.
    assert_eq!(with(&["-a", "--filter", "label=a"]), "");
    // -l: the newest of those the filters keep; -q: their IDs.
    assert_eq!(with(&["-l", "--filter", "name=web"]), "myweb\n");
    // -n N: the N newest, in every state; -l is -n 1.
    assert_eq!(with(&["-n", "1"]), with(&["-l"]));
    assert_eq!(
        with(&["-n", "2"]),
        with(&["-a"]).lines().take(2).map(|l| format!("{l}\n")).collect::<String>()
    );
    assert_eq!(with(&["-n", "2", "--filter", "name=web"]), "myweb\nweb\n");
    assert_eq!(ok(&d, &["-q", "--filter", "name=^web$"]), format!("{}\n", &id[..12]));
    assert_eq!(ok(&d, &["-q", "--no-trunc", "--filter", "name=^web$"]), format!("{id}\n"));
}

#[test]
fn a_restarting_container_is_listed_and_filtered_by_status() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "flappy",
        "--restart",
        "always",
        "sh",
        "-c",
        "exit 1",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "steady", "sleep", "3600"]);
    // The back-off doubles from 100 ms: before long it spends most of its time restarting.
    let line = eventually(20, || {
        let out = ok(&d, &["--filter", "status=restarting", "--format", "{{.Names}}\t{{.Status}}"]);
        out.starts_with("flappy\tRestarting (1) ").then_some(out)
    });
    assert!(line.ends_with(" ago\n"), "{line:?}");
    assert_eq!(line.lines().count(), 1, "{line:?}");
    // Restarting counts as running: listed without -a, and `exited` does not take it.
    eventually(20, || {
        let out = ok(&d, &["--format", "{{.Names}} {{.State}}"]);
        (out == "steady running\nflappy restarting\n").then_some(())
    });
    assert_eq!(ok(&d, &["-a", "--filter", "exited=1", "--format", "{{.Names}}"]), "");
    d.ok(&["stop", "flappy"]);
    // 1, or 143 if the stop caught one of its brief runs.
    let code = d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "flappy"]).trim().to_string();
    let filter = format!("exited={code}");
    assert_eq!(ok(&d, &["-a", "--filter", &filter, "--format", "{{.Names}}"]), "flappy\n");
    assert_eq!(ok(&d, &["--filter", &filter, "--format", "{{.Names}}"]), "", "exited wants -a");
}

#[test]
fn formats_print_as_docker() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    scene(&d);
    // 3d-hosts-netmodes.txt, 3f-user-networks.txt, 4-userland-proxy-docker-proxy.txt.
    let fmt = "{{.Names}}\\t{{.Networks}}\\t{{.Ports}}";
    assert_eq!(ok(&d, &["--filter", "name=hostnet", "--format", fmt]), "hostnet\thost\t\n");
    assert_eq!(ok(&d, &["--filter", "name=sidecar", "--format", fmt]), "sidecar\t\t\n");
    assert_eq!(
        ok(&d, &["--filter", "name=^web", "--format", fmt]),
        "web\tmy-bridge\t127.0.0.1:8080->80/tcp\n"
    );
    assert_eq!(ok(&d, &["--filter", "name=myweb", "--format", fmt]), "myweb\tbridge\t\n");
    let status = ok(&d, &["-a", "--filter", "name=db", "--format", "{{.Names}}\\t{{.Status}}"]);
    assert!(status.starts_with("db\tExited (3) ") && status.ends_with(" ago\n"), "{status:?}");
    let up = ok(&d, &["--filter", "name=^web$", "--format", "{{.Status}}\t{{.State}}"]);
    assert!(up.starts_with("Up ") && up.ends_with("\trunning\n"), "{up:?}");
    // table: Docker's header words, tabwriter's columns (min width 10, padding 3).
    assert_eq!(
        ok(
            &d,
            &["--filter", "name=web", "--format", "table {{.Names}}\\t{{.Networks}}\\t{{.Ports}}"]
        ),
        "NAMES     NETWORKS    PORTS\n\
         myweb     bridge      \n\
         web       my-bridge   127.0.0.1:8080->80/tcp\n"
    );
    assert_eq!(
        ok(&d, &["--filter", "name=nothing", "--format", "table {{.ID}}\t{{.Image}}"]),
        "CONTAINER ID   IMAGE\n"
    );
    // The default table is the same path.
    let table = ok(&d, &["--filter", "name=^web$"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>().join(" "),
        "CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES"
    );
    let row = lines.next().unwrap();
    assert!(row.contains("   sleep     \"sleep 3600\"   "), "{row:?}");
    assert!(row.ends_with("   127.0.0.1:8080->80/tcp   web"), "{row:?}");
    // -q with a format: the format wins (20.10); -q with `table`: the IDs.
    assert_eq!(ok(&d, &["-q", "--filter", "name=^web$", "--format", "{{.Names}}"]), "web\n");
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "web"]).trim().to_string();
    assert_eq!(
        ok(&d, &["-q", "--filter", "name=^web$", "--format", "table"]),
        format!("{}\n", &id[..12])
    );
    // {{json .}}: every field of Docker's ContainerContext, as strings.
    let json = ok(&d, &["--filter", "name=^web$", "--format", "{{json .}}"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Labels",
            "LocalVolumes",
            "Mounts",
            "Names",
            "Networks",
            "Ports",
            "RunningFor",
            "Size",
            "State",
            "Status"
        ]
    );
    assert_eq!(v["ID"], id[..12]);
    assert_eq!(v["Command"], "\"sleep 3600\"");
    assert_eq!(v["Networks"], "my-bridge");
    assert_eq!(v["Ports"], "127.0.0.1:8080->80/tcp");
    assert_eq!(v["Size"], "0B");
    assert!(v["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"), "{v}");
    assert!(v["RunningFor"].as_str().unwrap().ends_with(" ago"), "{v}");
    assert_eq!(
        ok(&d, &["--filter", "name=^web$", "--format", "{{json .Names}} {{.Label \"x\"}}|"]),
        "\"web\" |\n"
    );
    // --no-trunc: the whole ID.
    assert_eq!(
        ok(&d, &["--no-trunc", "--filter", "name=^web$", "--format", "{{.ID}}"]),
        format!("{id}\n")
    );
}

#[test]
fn bad_filters_and_templates_fail_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "one", "sleep", "3600"]);
    let cases: [(&[&str], &str, i32); 8] = [
        (&["--filter", "foo=bar"], "Error response from daemon: invalid filter 'foo'\n", 1),
        (&["--filter", "status=up"], "Error response from daemon: Invalid filter 'status=up'\n", 1),
        (
            &["--filter", "exited=x"],
            "Error response from daemon: strconv.Atoi: parsing \"x\": invalid syntax\n",
            1,
        ),
        (&["--filter", "before=nope"], "Error response from daemon: No such container: nope\n", 1),
        (
            &["--filter", "publish=80:80"],
            "Error response from daemon: filter for 'publish' should not contain ':': 80:80\n",
            1,
        ),
        (
            &["--filter", "foo"],
            "invalid argument \"foo\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\nSee 'cproxy ps --help'.\n",
            125,
        ),
        (
            &["--format", "{{.Foo}}"],
            "failed to execute template: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext\n",
            1,
        ),
        (&["--format", "{{.Names"], "failed to parse template: template: :1: unclosed action\n", 1),
    ];
    for (args, want, code) in cases {
        let (out, err, got) = ps(&d, args);
        assert_eq!((out.as_str(), err.as_str(), got), ("", want, code), "{args:?}");
    }
}

#[test]
fn api_users_get_the_filters_too() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "web", "sleep", "3600"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "other", "sleep", "3600"]);
    let get = |query: &str| {
        let path = d.host.trim_start_matches("unix://");
        let mut s = UnixStream::connect(path).unwrap();
        write!(s, "GET /v1.41/containers/json?{query} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    };
    // The legacy list form, percent-encoded: {"name":["^web$"]}.
    let (status, body) = get("filters=%7B%22name%22%3A%5B%22%5Eweb%24%22%5D%7D");
    assert!(status.ends_with(" 200 OK"), "{status}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|c| c["Names"][0].as_str().unwrap()).collect();
    assert_eq!(names, ["/web"]);
    assert_eq!(list[0]["NetworkSettings"]["Networks"].as_object().unwrap().len(), 1);
    // An unknown key: 400 and Docker's message.
    let (status, body) = get("filters=%7B%22foo%22%3A%7B%22x%22%3Atrue%7D%7D");
    assert!(status.ends_with(" 400 Bad Request"), "{status}");
    assert_eq!(body, "{\"message\":\"invalid filter 'foo'\"}\n");
}
