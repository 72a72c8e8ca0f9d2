//! User-defined networks end to end, as root: every test starts `cproxy daemon` inside a
//! network namespace of its own and drives it with the client, comparing with Docker 20.10
//! (shared/docker-reference 3f-user-networks.txt).

mod supervisor_support;

use std::process::Output;

use supervisor_support::{Daemon, Netns, eventually, python};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `inspect -f TEMPLATE NAME`, trimmed.
fn inspect(d: &Daemon, template: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", template, name]).trim().to_string()
}

/// `NAME`'s address on network `net`.
fn ip_on(d: &Daemon, name: &str, net: &str) -> String {
    inspect(d, &format!("{{{{.NetworkSettings.Networks.{net}.IPAddress}}}}"), name)
}

/// A container serving HTTP on port 8000.
fn serve(d: &Daemon, args: &[&str]) {
    let py = python();
    let mut argv = vec!["run", "--rootfs", "/", "-d"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&[&py, "-m", "http.server", "8000"]);
    d.ok(&argv);
}

/// Does a TCP connection from inside `from` to `ip:port` succeed within a second?
fn connects(d: &Daemon, from: &str, ip: &str, port: u16) -> bool {
    let script = "import socket,sys\nsocket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()";
    let out = d.cli(&["exec", from, &python(), "-c", script, ip, &port.to_string()]);
    out.status.success()
}

/// Waits until `from` reaches `ip:8000` (the server is up).
fn wait_reachable(d: &Daemon, from: &str, ip: &str) {
    eventually(20, || connects(d, from, ip, 8000).then_some(()));
}

/// Does a UDP datagram sent from inside `from` to `ip:9999` reach a receiver inside `to`? The
/// receiver waits 5 s; the sender sends one datagram every 100 ms for 3 s meanwhile (UDP has
/// no handshake: a one-way path shows only at the receiver).
fn udp_arrives(d: &Daemon, from: &str, to: &str, ip: &str) -> bool {
    let receive = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9999))\ns.settimeout(5)\ntry:\n  s.recvfrom(64)\nexcept OSError:\n  sys.exit(1)";
    let send = "import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor _ in range(30):\n  s.sendto(b'x',(sys.argv[1],9999)); time.sleep(0.1)";
    std::thread::scope(|scope| {
        let receiver = scope.spawn(|| d.cli(&["exec", to, &python(), "-c", receive]));
        d.cli(&["exec", from, &python(), "-c", send, ip]);
        receiver.join().unwrap().status.success()
    })
}

/// The daemon namespace's policy-routing rules with the isolation preference (1000).
fn isolation_rules(ns: &Netns) -> Vec<String> {
    ns.ip(&["-4", "rule", "show", "pref", "1000"]).lines().map(str::to_string).collect()
}

/// Links of the namespace whose names start with `prefix`.
fn links_named(ns: &Netns, prefix: &str) -> Vec<String> {
    ns.links().into_iter().filter(|l| l.starts_with(prefix)).collect()
}

const PREDEFINED_ROWS: [&str; 3] = ["bridge", "host", "none"];

#[test]
fn network_commands_print_and_refuse_as_docker_does() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let ls = d.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME      DRIVER    SCOPE");
    assert_eq!(lines.len(), 4);
    for (line, name) in lines[1..].iter().zip(PREDEFINED_ROWS) {
        let driver = match name {
            "none" => "null",
            n => n,
        };
        let want = format!("   {name:<10}{driver:<10}local");
        assert_eq!(line.get(12..), Some(want.as_str()), "{ls}");
    }

    let id = d.ok(&["network", "create", "-d", "bridge", "my-bridge"]);
    let id = id.trim_end();
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));

    let dup = d.cli(&["network", "create", "-d", "bridge", "my-bridge"]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(
        stderr(&dup),
        "Error response from daemon: network with name my-bridge already exists\n"
    );

    let ls = d.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME        DRIVER    SCOPE");
    assert_eq!(lines[3], format!("{}   my-bridge   bridge    local", &id[..12]));
    assert_eq!(lines.len(), 5);

    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Id}}",
            "my-bridge"
        ]),
        format!("my-bridge bridge local {id}\n")
    );
    // The transcript's command, byte for byte.
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} gw={{.Gateway}}{{end}}",
            "my-bridge"
        ]),
        "my-bridge bridge 172.18.0.0/16 gw=172.18.0.1\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "my-bridge"])).unwrap();
    assert_eq!(json[0]["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16");
    assert_eq!(json[0]["IPAM"]["Config"][0]["Gateway"], "172.18.0.1");
    assert_eq!(links_named(&ns, "br-"), [format!("br-{}", &id[..12])]);

    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "c1",
        "--network",
        "my-bridge",
        "sleep",
        "3600",
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "my-bridge"])).unwrap();
    let containers = json[0]["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    let c1 = containers.values().next().unwrap();
    assert_eq!(c1["Name"], "c1");
    assert_eq!(c1["IPv4Address"], "172.18.0.2/16");
    assert_eq!(c1["MacAddress"], "02:42:ac:12:00:02");

    let c1_id = inspect(&d, "{{.Id}}", "c1");
    assert_eq!(
        inspect(
            &d,
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} aliases={{$v.Aliases}}{{end}} legacyIP={{.NetworkSettings.IPAddress}}",
            "c1"
        ),
        format!("my-bridge=172.18.0.2 aliases=[{}] legacyIP=", &c1_id[..12])
    );
    let busy = d.cli(&["network", "rm", "my-bridge"]);
    assert_eq!(busy.status.code(), Some(1));
    assert_eq!(
        stderr(&busy),
        format!(
            "Error response from daemon: error while removing network: network my-bridge id {id} has active endpoints\n"
        )
    );
    let cases: [(&[&str], &str, i32); 5] = [
        (
            &["run", "--rootfs", "/", "--rm", "--network", "nosuchnet", "true"],
            "cproxy: Error response from daemon: network nosuchnet not found.\nSee 'cproxy run --help'.\n",
            125,
        ),
        (
            &["network", "create", "-d", "nosuchdriver", "x"],
            "Error response from daemon: plugin \"nosuchdriver\" not found\n",
            1,
        ),
        (&["network", "rm", "nosuchnet"], "Error: No such network: nosuchnet\n", 1),
        (
            &["network", "rm", "bridge"],
            "Error response from daemon: bridge is a pre-defined network and cannot be removed\n",
            1,
        ),
        (
            &["run", "--rootfs", "/", "-d", "--network-alias", "x", "true"],
            "cproxy: Error response from daemon: network-scoped alias is supported only for containers in user defined networks.\nSee 'cproxy run --help'.\n",
            125,
        ),
    ];
    for (argv, want, code) in cases {
        let out = d.cli(argv);
        assert_eq!(out.status.code(), Some(code), "{argv:?}");
        assert_eq!(stderr(&out), want, "{argv:?}");
        assert_eq!(stdout(&out), "", "{argv:?}");
    }

    d.ok(&["rm", "-f", "c1"]);
    assert_eq!(d.ok(&["network", "rm", "my-bridge"]), "my-bridge\n");
    assert_eq!(d.ok(&["network", "ls"]).lines().count(), 4);
    assert!(links_named(&ns, "br-").is_empty(), "network rm leaves no bridge");
    assert!(links_named(&ns, "cpveth").is_empty());
}

#[test]
fn containers_on_one_network_reach_each_other_and_not_another_networks() {
    let ns = Netns::new();
    // Even where the daemon's namespace forwards (a router, a Docker host), networks stay apart.
    let ok = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let d = ns.daemon(&[]);
    d.ok(&["network", "create", "net-a"]);
    d.ok(&["network", "create", "--subnet", "10.99.0.0/24", "--gateway", "10.99.0.254", "net-b"]);
    serve(&d, &["--name", "a1", "--network", "net-a"]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "a2",
        "--network",
        "net-a",
        "--network-alias",
        "a2alias",
        "sleep",
        "3600",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "b1", "--network", "net-b", "sleep", "3600"]);

    let a1 = ip_on(&d, "a1", "net-a");
    assert_eq!(a1, "172.18.0.2");
    assert_eq!(ip_on(&d, "a2", "net-a"), "172.18.0.3");
    assert_eq!(ip_on(&d, "b1", "net-b"), "10.99.0.1");
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "b2",
        "--network",
        "net-b",
        "--ip",
        "10.99.0.77",
        "sleep",
        "3600",
    ]);
    assert_eq!(ip_on(&d, "b2", "net-b"), "10.99.0.77");
    let taken =
        d.cli(&["run", "--rootfs", "/", "-d", "--network", "net-b", "--ip", "10.99.0.77", "true"]);
    assert_eq!(taken.status.code(), Some(125));
    assert_eq!(stderr(&taken), "cproxy: Error response from daemon: Address already in use.\n");
    let no_subnet =
        d.cli(&["run", "--rootfs", "/", "--rm", "--network", "net-a", "--ip", "10.99.0.5", "true"]);
    assert_eq!(no_subnet.status.code(), Some(125));
    assert_eq!(
        stderr(&no_subnet),
        "cproxy: Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets.\nSee 'cproxy run --help'.\n"
    );
    assert_eq!(
        inspect(
            &d,
            "{{.NetworkSettings.Networks.net-a.Aliases}} legacy={{.NetworkSettings.IPAddress}}",
            "a2"
        ),
        format!("[a2alias {}] legacy=", &inspect(&d, "{{.Id}}", "a2")[..12])
    );
    assert_eq!(inspect(&d, "{{.NetworkSettings.Networks.net-b.Gateway}}", "b1"), "10.99.0.254");

    wait_reachable(&d, "a2", &a1);
    assert!(!connects(&d, "b1", &a1, 8000), "another network's container is reached");
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "onbridge", "sleep", "3600"]);
    assert!(!connects(&d, "onbridge", &a1, 8000), "the default bridge reaches a user network");
    // Not even one way: with forwarding on, a datagram from the default bridge would be routed
    // to a user network (the answer is what would not come back). Within one network it goes.
    assert!(udp_arrives(&d, "a1", "a2", &ip_on(&d, "a2", "net-a")), "no datagram within net-a");
    let a2 = ip_on(&d, "a2", "net-a");
    assert!(!udp_arrives(&d, "onbridge", "a2", &a2), "the default bridge sends to a user network");
    assert_eq!(
        isolation_rules(&ns),
        [
            "1000:\tfrom all to 172.18.0.0/16 iif cproxy0 blackhole",
            "1000:\tfrom all to 10.99.0.0/24 iif cproxy0 blackhole"
        ],
        "one isolation rule per user-defined network"
    );
    // The daemon's namespace (the host) still reaches both, as Docker's host does.
    assert!(supervisor_support::http_get(&ns, &format!("{a1}:8000")).is_some());

    let short = &inspect(&d, "{{.Id}}", "a2")[..12];
    assert_eq!(
        d.ok(&["exec", "a2", "cat", "/etc/hosts"]),
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n172.18.0.3\t{short}\n"
        )
    );
    let resolv = d.ok(&["exec", "a2", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 127.0.0.11\n"), "{resolv}");
    assert!(resolv.ends_with("options ndots:0\n") || resolv.contains("ndots:"), "{resolv}");

    // A link on a user-defined network adds a name only: no variables, no hosts line.
    let out = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "--network",
        "net-a",
        "--link",
        "a1:dbalias",
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ]);
    assert!(!out.contains("DBALIAS_"), "{out}");
    assert!(!out.contains("dbalias"), "{out}");
}

#[test]
fn network_connect_adds_an_interface_and_disconnect_takes_it_away() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["network", "create", "my-bridge"]);
    serve(&d, &["--name", "peer", "--network", "my-bridge"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "c3", "sleep", "3600"]);
    let peer = ip_on(&d, "peer", "my-bridge");
    let names = "import socket\nprint(' '.join(sorted(n for _, n in socket.if_nameindex())))";
    let py = python();
    let ifaces = || d.ok(&["exec", "c3", &py, "-c", names]);
    assert_eq!(ifaces(), "eth0 lo\n");
    assert!(!connects(&d, "c3", &peer, 8000), "the default bridge reaches a user network");

    assert_eq!(d.ok(&["network", "connect", "--alias", "third", "my-bridge", "c3"]), "");
    assert_eq!(ifaces(), "eth0 eth1 lo\n");
    let c3 = ip_on(&d, "c3", "my-bridge");
    assert_eq!(c3, "172.18.0.3");
    assert_eq!(inspect(&d, "{{.NetworkSettings.Networks.bridge.IPAddress}}", "c3"), "172.17.0.2");
    let link = d.ok(&["exec", "c3", "ip", "-o", "link", "show", "eth1"]);
    assert!(link.contains("link/ether 02:42:ac:12:00:03 "), "{link}");
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.my-bridge.MacAddress}}", "c3"),
        "02:42:ac:12:00:03"
    );
    wait_reachable(&d, "c3", &peer);
    let hosts = d.ok(&["exec", "c3", "cat", "/etc/hosts"]);
    let short = &inspect(&d, "{{.Id}}", "c3")[..12];
    assert!(hosts.ends_with(&format!("172.17.0.2\t{short}\n172.18.0.3\t{short}\n")), "{hosts}");
    assert!(d.ok(&["exec", "c3", "cat", "/etc/resolv.conf"]).contains("nameserver 127.0.0.11\n"));

    let dup = d.cli(&["network", "connect", "my-bridge", "c3"]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(
        stderr(&dup),
        "Error response from daemon: endpoint with name c3 already exists in network my-bridge\n"
    );

    assert_eq!(d.ok(&["network", "disconnect", "my-bridge", "c3"]), "");
    assert_eq!(ifaces(), "eth0 lo\n");
    assert!(!connects(&d, "c3", &peer, 8000));
    assert_eq!(inspect(&d, "{{.NetworkSettings.Networks.my-bridge}}", "c3"), "<no value>");
    let hosts = d.ok(&["exec", "c3", "cat", "/etc/hosts"]);
    assert!(hosts.ends_with(&format!("ip6-allrouters\n172.17.0.2\t{short}\n")), "{hosts}");

    // Connected while stopped: the network is kept for the next start.
    d.ok(&["stop", "-t", "0", "c3"]);
    d.ok(&["network", "connect", "my-bridge", "c3"]);
    d.ok(&["start", "c3"]);
    assert_eq!(ifaces(), "eth0 eth1 lo\n");
    wait_reachable(&d, "c3", &peer);
}

#[test]
fn networks_come_back_with_the_daemon_and_nothing_is_left_behind() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    let id = d.ok(&["network", "create", "keep"]).trim().to_string();
    serve(&d, &["--name", "srv", "--network", "keep", "--restart", "always"]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "cli",
        "--network",
        "keep",
        "--restart",
        "always",
        "sleep",
        "3600",
    ]);
    let srv = ip_on(&d, "srv", "keep");
    wait_reachable(&d, "cli", &srv);
    assert_eq!(links_named(&ns, "br-").len(), 1);
    assert_eq!(links_named(&ns, "cpveth").len(), 2);

    assert_eq!(isolation_rules(&ns).len(), 1);
    assert!(d.terminate().success());
    assert!(isolation_rules(&ns).is_empty(), "the daemon's shutdown leaves a rule");
    assert!(links_named(&ns, "br-").is_empty(), "the daemon's shutdown leaves a bridge");
    assert!(links_named(&ns, "cpveth").is_empty(), "the daemon's shutdown leaves a veth");

    let d = ns.daemon(&[]);
    assert_eq!(links_named(&ns, "br-"), [format!("br-{}", &id[..12])]);
    assert!(d.ok(&["network", "ls"]).contains(&format!("{}   keep ", &id[..12])));
    let srv = eventually(20, || {
        (inspect(&d, "{{.State.Status}}", "srv") == "running"
            && inspect(&d, "{{.State.Status}}", "cli") == "running")
            .then(|| ip_on(&d, "srv", "keep"))
    });
    wait_reachable(&d, "cli", &srv);

    // A restart keeps the network (the address may change; inspect follows it).
    d.ok(&["restart", "-t", "0", "srv"]);
    let srv = ip_on(&d, "srv", "keep");
    assert!(srv.starts_with("172.18.0."), "{srv}");
    wait_reachable(&d, "cli", &srv);

    d.ok(&["rm", "-f", "srv", "cli"]);
    assert_eq!(isolation_rules(&ns).len(), 1, "the restarted daemon isolates the network");
    d.ok(&["network", "rm", "keep"]);
    assert!(isolation_rules(&ns).is_empty(), "network rm leaves its rule");
    assert!(links_named(&ns, "br-").is_empty());
    assert!(links_named(&ns, "cpveth").is_empty());
    assert!(!d.data_root.join("networks").join(format!("{id}.json")).exists());
}

#[test]
fn compose_creates_the_files_networks_and_down_removes_them() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let dir = ns.dir.join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yml");
    let py = python();
    std::fs::write(
        &file,
        format!(
            "services:\n  api:\n    command: [{py}, -m, http.server, '8000']\n    networks:\n      back:\n        aliases: [backend]\n  web:\n    command: [sleep, '3600']\n    networks: [front, back]\n  other:\n    command: [sleep, '3600']\n    networks: [front]\nnetworks:\n  front:\n  back:\n    ipam:\n      config:\n        - subnet: 10.98.0.0/24\n"
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_string();
    let up = d.cli(&["compose", "-f", &file, "up", "-d"]);
    let err = stderr(&up);
    assert!(up.status.success(), "{err}");
    assert!(err.contains("Creating network \"proj_front\" with the default driver\n"), "{err}");
    assert!(err.contains("Creating network \"proj_back\" with the default driver\n"), "{err}");
    let ls = d.ok(&["network", "ls"]);
    assert!(ls.contains("   proj_back ") && ls.contains("   proj_front "), "{ls}");
    assert_eq!(links_named(&ns, "br-").len(), 2);

    let api = ip_on(&d, "proj_api_1", "proj_back");
    assert_eq!(api, "10.98.0.2");
    assert_eq!(
        inspect(&d, "{{.NetworkSettings.Networks.proj_back.Aliases}}", "proj_api_1"),
        format!("[api backend {}]", &inspect(&d, "{{.Id}}", "proj_api_1")[..12])
    );
    assert_eq!(ip_on(&d, "proj_web_1", "proj_back"), "10.98.0.3");
    assert!(ip_on(&d, "proj_web_1", "proj_front").starts_with("172."));
    wait_reachable(&d, "proj_web_1", &api);
    assert!(!connects(&d, "proj_other_1", &api, 8000), "front reaches back");

    // A second `up` finds the networks there.
    let again = d.cli(&["compose", "-f", &file, "up", "-d"]);
    assert!(again.status.success());
    assert!(!stderr(&again).contains("Creating network"));

    let down = d.cli(&["compose", "-f", &file, "down"]);
    let err = stderr(&down);
    assert!(down.status.success(), "{err}");
    assert!(err.contains("Removing network proj_front\nRemoving network proj_back\n"), "{err}");
    assert_eq!(d.ok(&["network", "ls"]).lines().count(), 4);
    assert!(links_named(&ns, "br-").is_empty());
    assert!(links_named(&ns, "cpveth").is_empty());
}

/// `getent hosts NAME` inside `from`: the addresses it answers (empty when it does not resolve).
fn getent(d: &Daemon, from: &str, name: &str) -> Vec<String> {
    let out = d.cli(&["exec", from, "getent", "hosts", name]);
    stdout(&out).lines().filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect()
}

#[test]
fn the_embedded_dns_answers_names_and_aliases_on_shared_networks_and_follows_restarts() {
    let ns = Netns::new();
    // Forwarded queries go to loopback in the test's namespace, where nothing answers.
    let d = ns.daemon(&["--dns", "127.0.0.1"]);
    d.ok(&["network", "create", "my-bridge"]);
    d.ok(&["network", "create", "other"]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "c1",
        "--network",
        "my-bridge",
        "sleep",
        "3600",
    ]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "c2",
        "--network",
        "my-bridge",
        "--network-alias",
        "c2alias",
        "sleep",
        "3600",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "c3", "sleep", "3600"]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "o1", "--network", "other", "sleep", "3600"]);
    let c2 = ip_on(&d, "c2", "my-bridge");
    assert_eq!(getent(&d, "c1", "c2"), [c2.as_str()]);
    assert_eq!(getent(&d, "c1", "c2alias"), [c2.as_str()]);
    assert_eq!(getent(&d, "c1", "c2.my-bridge"), [c2.as_str()]);
    let hostname = inspect(&d, "{{.Config.Hostname}}", "c2");
    assert_eq!(getent(&d, "c1", &hostname), [c2.as_str()]);
    assert_eq!(getent(&d, "c2", "c1"), [ip_on(&d, "c1", "my-bridge")]);
    let out = d.cli(&["exec", "c1", "getent", "hosts", "nosuchname"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(getent(&d, "o1", "c2").is_empty(), "another network resolves c2");
    assert!(getent(&d, "c1", "o1").is_empty());
    // The default bridge has no embedded DNS (Docker's legacy behaviour): c3 is not asked
    // (its resolv.conf is the host's, whose servers this test must not send to).
    let resolv = d.ok(&["exec", "c3", "cat", "/etc/resolv.conf"]);
    assert!(!resolv.contains("127.0.0.11"), "{resolv}");

    // A link on a user-defined network is a name for the DNS.
    let out = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "--network",
        "my-bridge",
        "--link",
        "c1:dbalias",
        "getent",
        "hosts",
        "dbalias",
    ]);
    assert!(out.starts_with(&format!("{} ", ip_on(&d, "c1", "my-bridge"))), "{out}");

    // Connected to my-bridge, c3 resolves its peers there (and its resolv.conf says where).
    d.ok(&["network", "connect", "my-bridge", "c3"]);
    assert_eq!(getent(&d, "c3", "c2alias"), [c2.as_str()]);
    d.ok(&["network", "disconnect", "my-bridge", "c3"]);

    // c2 comes back at another address; the name follows at once.
    d.ok(&["stop", "-t", "0", "c2"]);
    assert!(getent(&d, "c1", "c2").is_empty(), "a stopped container still resolves");
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "c4",
        "--network",
        "my-bridge",
        "sleep",
        "3600",
    ]);
    assert_eq!(ip_on(&d, "c4", "my-bridge"), c2, "c4 took c2's old address");
    d.ok(&["start", "c2"]);
    let moved = ip_on(&d, "c2", "my-bridge");
    assert_ne!(moved, c2);
    assert_eq!(getent(&d, "c1", "c2"), [moved.as_str()]);
    assert_eq!(getent(&d, "c1", "c2alias"), [moved.as_str()]);
}
