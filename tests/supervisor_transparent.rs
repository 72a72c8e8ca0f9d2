//! `run --source-ip-transparent` under `cproxy daemon`: across a client host the test makes
//! (a namespace joined to the daemon's by a veth pair, MTU 1500), a container's web server logs
//! the client's own address and port, while a container without the flag logs its gateway, and
//! a client on the daemon's loopback comes from the gateway too (transparent mode's fallback).
//! The reply routing the first transparent container made is gone with the last one, and a
//! daemon killed with it in place leaves nothing once started again.

mod supervisor_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use supervisor_support::{Daemon, Netns, client_host, eventually, rootfs_tar};

/// busybox's httpd in the foreground, logging each request's peer (`[::ffff:IP]:PORT:
/// response:200`).
const WEB: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -v -p 80 -h /www";

/// One HTTP request to `target` from the current namespace: the client's own address.
fn get(target: SocketAddr) -> SocketAddr {
    let mut conn =
        TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect("connect to the port");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).expect("the answer");
    assert!(answer.starts_with("HTTP/1.") && answer.ends_with("hello\n"), "{answer}");
    conn.local_addr().unwrap()
}

/// Waits until `container`'s httpd listens on port 80 (a LISTEN socket in its
/// `/proc/net/tcp6`): `run -d` returns once the command has started, not once it serves, and a
/// connection before that is reset by the proxy (the backend refused it).
fn serving(d: &Daemon, container: &str) {
    eventually(10, || {
        let out = d.cli(&["exec", container, "cat", "/proc/net/tcp6"]);
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .any(|f| f.len() > 3 && f[1].ends_with(":0050") && f[3] == "0A")
            .then_some(())
    });
}

/// The peers the container's httpd logged (`IP:PORT`), once it has logged `count` requests.
fn logged_peers(d: &Daemon, container: &str, count: usize) -> Vec<String> {
    eventually(10, || {
        // httpd logs on its stderr, which `logs` prints on its own.
        let logs = String::from_utf8_lossy(&d.cli(&["logs", container]).stderr).into_owned();
        let peers: Vec<String> = logs
            .lines()
            .filter_map(|l| l.strip_prefix("[::ffff:"))
            .filter_map(|l| l.split_once(": response"))
            .map(|(peer, _)| peer.replacen("]", "", 1))
            .collect();
        (peers.len() >= count).then_some(peers)
    })
}

/// What the daemon's namespace holds of transparent mode's routing (rules, routes, marks).
fn leftovers(ns: &Netns) -> Vec<String> {
    let run = |program: &str, args: &[&str]| -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, program])
            .args(args)
            .output()
            .expect(program);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut lines = Vec::new();
    for family in ["-4", "-6"] {
        lines
            .extend(run("ip", &[family, "rule", "show", "pref", "1717"]).lines().map(String::from));
        lines.extend(
            run("ip", &[family, "route", "show", "table", "1717"]).lines().map(String::from),
        );
    }
    for tool in ["iptables", "ip6tables"] {
        let rules = run(tool, &["-w", "-t", "mangle", "-S", "PREROUTING"]);
        lines.extend(rules.lines().filter(|l| l.contains("cproxy")).map(String::from));
    }
    lines
}

#[test]
fn a_transparent_containers_web_server_logs_the_clients_address() {
    let ns = Netns::new();
    let client = client_host(&ns);
    let mut d = ns.daemon(&[]);
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    assert_eq!(leftovers(&ns), Vec::<String>::new());

    d.ok(&[
        "run",
        "-d",
        "--name",
        "tw",
        "-p",
        "8080:80",
        "--source-ip-transparent",
        "bb",
        "sh",
        "-c",
        WEB,
    ]);
    d.ok(&["run", "-d", "--name", "tn", "-p", "8081:80", "bb", "sh", "-c", WEB]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.HostConfig.SourceIpTransparent}}", "tw"]), "true\n");
    let gateway = d.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "tn"]).trim().to_string();
    assert!(!gateway.is_empty());
    assert!(!leftovers(&ns).is_empty(), "the reply routing is made with the first binding");
    serving(&d, "tw");
    serving(&d, "tn");

    // From the client host: the transparent container sees the client, the other the gateway.
    let seen = |port: u16| client.run(move || get(SocketAddr::from(([10, 231, 0, 1], port))));
    let from = seen(8080);
    assert_eq!(from.ip().to_string(), "10.231.0.2");
    assert_eq!(logged_peers(&d, "tw", 1), [from.to_string()], "the client's address and port");
    seen(8081);
    let peers = logged_peers(&d, "tn", 1);
    assert!(peers[0].starts_with(&format!("{gateway}:")), "{peers:?}");
    // From the daemon's loopback: no address to keep, forwarded from the gateway.
    ns.run(|| get(SocketAddr::from(([127, 0, 0, 1], 8080))));
    let peers = logged_peers(&d, "tw", 2);
    assert!(peers[1].starts_with(&format!("{gateway}:")), "{peers:?}");

    // The routing goes with the last transparent container.
    d.ok(&["rm", "-f", "tw"]);
    assert_eq!(leftovers(&ns), Vec::<String>::new(), "rm removes the routing");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tw2",
        "-p",
        "8082:80",
        "--source-ip-transparent",
        "bb",
        "sh",
        "-c",
        WEB,
    ]);
    serving(&d, "tw2");
    let from = client.run(|| get(SocketAddr::from(([10, 231, 0, 1], 8082))));
    assert_eq!(logged_peers(&d, "tw2", 1), [from.to_string()]);
    assert!(!leftovers(&ns).is_empty());
    // Killed without a word, it leaves the routing; the next daemon sweeps it.
    d.kill();
    drop(d);
    assert!(!leftovers(&ns).is_empty(), "a killed daemon cannot clean up");
    let d = ns.daemon(&[]);
    assert_eq!(leftovers(&ns), Vec::<String>::new(), "swept at start");
    d.ok(&["rm", "-f", "tw2", "tn"]);
}
