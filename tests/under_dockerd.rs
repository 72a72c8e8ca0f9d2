//! cproxy as real dockerd's `userland-proxy-path` (Debian's dockerd 20.10, in a namespace the
//! test makes, with the host's cgroup hierarchies mounted again there, `--iptables=false` so
//! that every published port goes through the proxy), configured by a settings file
//! (`CPROXY_SETTINGS` in dockerd's environment, which it passes to the proxies):
//! - one published port gets a PROXY v1 header before the client's bytes, the next none;
//! - a port with `source_ip_transparent = true`: the container's web server logs the address
//!   and port of a client on another host (a namespace joined by a veth pair);
//! - a broken settings file makes `docker run -p` fail with the file, line and reason;
//! - with `--iptables=true`, where dockerd's DNAT takes the other host's clients and only the
//!   host's own go through the proxy, the transparent port still logs the client's address,
//!   and a client on the host's loopback comes from the gateway (transparent mode's fallback).
//!
//! Without dockerd the test says so and passes, except in CI (`CI=true`), where it fails.

mod dockerd_support;
mod supervisor_support;

use std::net::SocketAddr;

use dockerd_support::{Dockerd, exchange, have_dockerd, logs_with};
use supervisor_support::{Netns, client_host, eventually, rootfs_tar};

const WEB: &str = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -v -p 80 -h /www";

/// An HTTP GET through `target` from `ns`, retried while the container's server starts: the
/// client's own address.
fn get(ns: &testkit::netns::Netns, target: SocketAddr) -> SocketAddr {
    let (from, answer) = eventually(10, || {
        let (from, answer) = ns.run(|| exchange(target, b"GET / HTTP/1.0\r\n\r\n"));
        answer.ends_with("hello\n").then_some((from, answer))
    });
    assert!(answer.starts_with("HTTP/1."), "{answer}");
    from
}

#[test]
fn dockerd_runs_cproxy_with_its_settings_file() {
    if !have_dockerd() {
        return;
    }
    let ns = Netns::new();
    let client = client_host(&ns);
    let settings = ns.dir.join("settings.toml");
    std::fs::write(
        &settings,
        "[defaults]\ngrace = \"1s\"\n\n[[binding]]\nhost_port = 8080\nproxy_protocol = \"v1\"\n\n\
         [[binding]]\nhost_port = 8082\nsource_ip_transparent = true\n",
    )
    .unwrap();
    let d = Dockerd::start(&ns, false, &[("CPROXY_SETTINGS", settings.as_os_str())]);
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);

    // 8080 and 8081: the first bytes the container's nc gets, printed to its log.
    for (name, port) in [("pp", "8080:80"), ("plain", "8081:80")] {
        d.ok(&["run", "-d", "--name", name, "-p", port, "bb", "nc", "-l", "-p", "80"]);
    }
    d.ok(&["run", "-d", "--name", "web", "-p", "8082:80", "bb", "sh", "-c", WEB]);
    // Each port is listening once its proxy told dockerd so: the containers' servers may
    // still be starting, so a first try may find none.
    let send = |port: u16, what: &'static [u8]| {
        client.run(move || exchange(SocketAddr::from(([10, 231, 0, 1], port)), what))
    };
    let (from, _) = send(8080, b"hello through 8080\n");
    let logs = logs_with(&d, "pp", "hello through 8080");
    let header = format!("PROXY TCP4 10.231.0.2 10.231.0.1 {} 8080\r\n", from.port());
    assert!(logs.starts_with(&header), "{logs:?} should start with {header:?}");
    send(8081, b"hello through 8081\n");
    let logs = logs_with(&d, "plain", "hello through 8081");
    assert_eq!(logs, "hello through 8081\n", "no header on a port the settings do not name");

    let from = get(&client, SocketAddr::from(([10, 231, 0, 1], 8082)));
    // httpd logs the peer it sees: the client, address and port.
    logs_with(&d, "web", &format!("[::ffff:{}]:{}: response:200", from.ip(), from.port()));

    // A broken file: the next port's proxy refuses to start, and dockerd says why.
    std::fs::write(&settings, "[defaults]\ngrace = \"1s\"\nproxy_protocol = \"v3\"\n").unwrap();
    let out = d.docker(&["run", "-d", "--name", "bad", "-p", "8083:80", "bb", "sleep", "100"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("{}", settings.display())) && err.contains("line 3"),
        "docker run's error names the file and line: {err}"
    );
}

#[test]
fn with_dockerds_iptables_the_transparent_port_still_logs_the_clients_address() {
    if !have_dockerd() {
        return;
    }
    let ns = Netns::new();
    let client = client_host(&ns);
    let settings = ns.dir.join("settings.toml");
    std::fs::write(&settings, "[defaults]\nsource_ip_transparent = true\n").unwrap();
    let d = Dockerd::start(&ns, true, &[("CPROXY_SETTINGS", settings.as_os_str())]);
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    d.ok(&["run", "-d", "--name", "web", "-p", "8082:80", "bb", "sh", "-c", WEB]);
    let gateway = d.ok(&["inspect", "-f", "{{.NetworkSettings.Gateway}}", "web"]);
    // From the other host: dockerd's DNAT, the client's address as it is.
    let from = get(&client, SocketAddr::from(([10, 231, 0, 1], 8082)));
    logs_with(&d, "web", &format!("[::ffff:{}]:{}: response:200", from.ip(), from.port()));
    // From the host's loopback: through cproxy, which has no address to keep.
    ns.run(|| exchange(SocketAddr::from(([127, 0, 0, 1], 8082)), b"GET / HTTP/1.0\r\n\r\n"));
    logs_with(&d, "web", &format!("[::ffff:{}]:", gateway.trim()));
}
