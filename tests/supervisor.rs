//! The supervisor end to end, as root: every test starts `cproxy daemon` inside a network
//! namespace of its own (the bridge, veths and ports exist only there) and drives it with the
//! `cproxy` client, comparing with Docker's output and behaviour.

mod supervisor_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use supervisor_support::{Netns, bindable, eventually, http_get, python};

/// Host PIDs of the inits of every running container.
fn container_pids(d: &supervisor_support::Daemon) -> Vec<String> {
    let ids = d.ok(&["ps", "-q"]);
    ids.lines()
        .map(|id| d.ok(&["inspect", "-f", "{{.State.Pid}}", id]).trim().to_string())
        .collect()
}

fn web_server(port: u16) -> Vec<String> {
    vec![python(), "-m".into(), "http.server".into(), port.to_string()]
}

fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter().copied().chain(tail.iter().map(String::as_str)).collect()
}

#[test]
fn published_port_reaches_the_commands_server() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let server = web_server(8000);
    let id = d.ok(&args(
        &["run", "--rootfs", "/", "-d", "--name", "web", "-p", "127.0.0.1:8080:8000"],
        &server,
    ));
    assert_eq!(id.trim().len(), 64);
    let status = eventually(15, || http_get(&ns, "127.0.0.1:8080"));
    assert!(status.contains("200"), "{status}");
    assert_eq!(d.ok(&["port", "web"]), "8000/tcp -> 127.0.0.1:8080\n");
    assert_eq!(d.ok(&["port", "web", "8000"]), "127.0.0.1:8080\n");
    // The server logs a request after answering it: wait for the line to reach the log.
    eventually(10, || {
        let logs = d.cli(&["logs", "web"]);
        String::from_utf8_lossy(&logs.stderr).contains("\"GET / HTTP/1.0\" 200").then_some(())
    });
}

#[test]
fn publish_all_maps_exposed_ports_into_the_port_range() {
    let ns = Netns::new();
    let d = ns.daemon(&["--port-range", "40000-40009"]);
    d.ok(&args(
        &["run", "--rootfs", "/", "-d", "-P", "--expose", "8000", "--name", "pub"],
        &web_server(8000),
    ));
    let lines = d.ok(&["port", "pub", "8000/tcp"]);
    let first = lines.lines().next().unwrap();
    assert!(first.starts_with("0.0.0.0:"), "{lines}");
    let port: u16 = first.rsplit(':').next().unwrap().parse().unwrap();
    assert!((40000..=40009).contains(&port), "{port}");
    let status = eventually(15, || http_get(&ns, &format!("127.0.0.1:{port}")));
    assert!(status.contains("200"));
    let err = d.cli(&["port", "pub", "5000"]);
    assert_eq!(err.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&err.stderr),
        "Error: No public port '5000/tcp' published for pub\n"
    );
}

#[test]
fn ps_prints_dockers_columns() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "p_ip_host_ctr",
        "-p",
        "127.0.0.1:5001:5000",
        "/bin/sleep",
        "3600",
    ]);
    let exited = d.cli(&["run", "--rootfs", "/", "--name", "p_exited", "/bin/sh", "-c", "exit 3"]);
    assert_eq!(exited.status.code(), Some(3));
    let ps = d.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(lines.len(), 2, "{ps}");
    let header = lines[0];
    assert!(
        header.starts_with("CONTAINER ID   IMAGE        COMMAND             CREATED"),
        "{header}"
    );
    let col = |name: &str| header.find(name).unwrap();
    let row = lines[1];
    assert_eq!(&row[col("IMAGE")..col("COMMAND")], "/bin/sleep   ");
    assert_eq!(&row[col("COMMAND")..col("CREATED")], "\"/bin/sleep 3600\"   ");
    assert!(row[col("STATUS")..].starts_with("Up "));
    assert_eq!(&row[col("PORTS")..], "127.0.0.1:5001->5000/tcp   p_ip_host_ctr");

    let all = d.ok(&["ps", "-a"]);
    let exited = all.lines().nth(1).unwrap();
    assert!(exited.contains("\"/bin/sh -c 'exit 3'\""), "{all}");
    assert!(exited.contains("Exited (3) "), "{all}");
    assert!(exited.ends_with("p_exited"));
    let quiet = d.ok(&["ps", "-a", "-q"]);
    assert!(quiet.lines().all(|l| l.len() == 12) && quiet.lines().count() == 2, "{quiet}");
    let full = d.ok(&["ps", "-q", "--no-trunc"]);
    assert_eq!(full.trim().len(), 64);
}

#[test]
fn inspect_format_shows_state_address_and_ports() {
    let ns = Netns::new();
    let d = ns.daemon(&["--bip", "172.29.0.1/16"]);
    let id = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "db",
        "-p",
        "127.0.0.1:15000:5000",
        "/bin/sleep",
        "3600",
    ]);
    let out = d.ok(&[
        "inspect",
        "-f",
        "{{.Id}} {{.Name}} {{.State.Status}} {{.NetworkSettings.IPAddress}} {{json .NetworkSettings.Ports}}",
        "db",
    ]);
    assert_eq!(
        out,
        format!(
            "{} /db running 172.29.0.2 {{\"5000/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"15000\"}}]}}\n",
            id.trim()
        )
    );
    let pid: i32 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "db"]).trim().parse().unwrap();
    assert!(pid > 1);
    // The prefix of an ID selects, as a name does.
    let by_prefix = d.ok(&["inspect", "-f", "{{.Name}}", &id[..8]]);
    assert_eq!(by_prefix, "/db\n");
}

#[test]
fn containers_on_the_bridge_reach_each_other_by_address() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&args(&["run", "--rootfs", "/", "-d", "--name", "srv"], &web_server(8000)));
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"]).trim().to_string();
    let script = format!(
        "import socket,time\n\
         for _ in range(100):\n\
         \x20   try:\n\
         \x20       s=socket.create_connection(('{ip}',8000),timeout=2); break\n\
         \x20   except OSError: time.sleep(0.1)\n\
         s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.recv(100).split(b'\\r\\n')[0].decode())"
    );
    let out = d.cli(&["run", "--rootfs", "/", "--rm", &python(), "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("200"));
}

#[test]
fn network_modes_show_the_interfaces_they_promise() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let list = "import socket; print(' '.join(sorted(n for _, n in socket.if_nameindex())))";
    let links = |mode: &str| {
        d.ok(&["run", "--rootfs", "/", "--rm", "--network", mode, &python(), "-c", list])
    };
    assert_eq!(links("bridge"), "eth0 lo\n");
    assert_eq!(links("none"), "lo\n");
    // As Docker's: IPv4 only inside, so `ip addr` reads as in Docker's transcripts.
    let addrs = d.ok(&["run", "--rootfs", "/", "--rm", "--network", "none", "ip", "-o", "addr"]);
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    assert!(addrs.contains("inet 127.0.0.1/8 scope host lo"), "{addrs}");
    let host = links("host");
    assert!(host.contains("cproxy0") && host.contains("lo"), "{host}");
    // container:NAME shares NAME's interfaces and address.
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "db", "/bin/sleep", "3600"]);
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]);
    let addr = "import socket,fcntl,struct; s=socket.socket(); print(socket.inet_ntoa(fcntl.ioctl(s.fileno(),0x8915,struct.pack('256s',b'eth0'))[20:24]))";
    assert_eq!(
        d.ok(&["run", "--rootfs", "/", "--rm", "--network", "container:db", &python(), "-c", addr]),
        ip
    );
    let refused = d.cli(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "--network",
        "container:db",
        "-p",
        "9999:80",
        "/bin/true",
    ]);
    assert_eq!(refused.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("conflicting options: port publishing and the container type network mode")
    );
}

#[test]
fn hostname_and_hosts_file_are_the_containers_own() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let out = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-h",
        "myhost.example.com",
        "/bin/sh",
        "-c",
        "hostname; cat /etc/hosts",
    ]);
    let expected_tail = "ff02::2\tip6-allrouters\n172.17.0.2\tmyhost.example.com myhost\n";
    assert!(out.starts_with("myhost.example.com\n127.0.0.1\tlocalhost\n"), "{out}");
    assert!(out.ends_with(expected_tail), "{out}");
    let id = d.ok(&["run", "--rootfs", "/", "-d", "/bin/sleep", "3600"]);
    let short = &id[..12];
    assert_eq!(
        d.ok(&["run", "--rootfs", "/", "--rm", "--network", "none", "/bin/hostname"]).len(),
        13
    );
    // container:NAME shares NAME's hostname and files, as Docker.
    let cat = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "--network",
        &format!("container:{short}"),
        "/bin/cat",
        "/etc/hostname",
    ]);
    assert_eq!(cat, format!("{short}\n"));
    let hostname = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "--network",
        &format!("container:{short}"),
        "/bin/hostname",
    ]);
    assert_eq!(hostname, format!("{short}\n"));
}

#[test]
fn a_taken_name_is_refused_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let id = d.ok(&["run", "--rootfs", "/", "-d", "--name", "web", "/bin/sleep", "3600"]);
    let out = d.cli(&["run", "--rootfs", "/", "-d", "--name", "web", "/bin/sleep", "3600"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "cproxy: Error response from daemon: Conflict. The container name \"/web\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.\nSee 'cproxy run --help'.\n",
            id.trim()
        )
    );
    let missing = d.cli(&["stop", "nosuch"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "Error response from daemon: No such container: nosuch\n"
    );
    let bad = d.cli(&["run", "--rootfs", "/", "-d", "-p", "80:webapp", "/bin/true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "cproxy: Invalid containerPort: webapp.\nSee 'cproxy run --help'.\n"
    );
}

#[test]
fn a_taken_port_fails_the_run_and_leaves_nothing_behind() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "alloc1",
        "-p",
        "127.0.0.1:5100:80",
        "/bin/sleep",
        "3600",
    ]);
    let links_before = ns.links();
    let out = d.cli(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "alloc2",
        "-p",
        "127.0.0.1:5100:80",
        "/bin/sleep",
        "3600",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("cproxy: Error response from daemon: driver failed programming external connectivity on endpoint alloc2 ("), "{err}");
    assert!(
        err.ends_with("): Bind for 127.0.0.1:5100 failed: port is already allocated.\n"),
        "{err}"
    );
    // As Docker: the container exists, created, with nothing of its own running.
    let ps = d.ok(&["ps", "-a"]);
    let row = ps.lines().find(|l| l.ends_with("alloc2")).unwrap();
    assert!(row.contains("   Created   "), "{ps}");
    assert_eq!(ns.links(), links_before);
    assert!(
        d.ok(&["inspect", "-f", "{{.State.Pid}} {{json .NetworkSettings.Ports}}", "alloc2"])
            == "0 {}\n"
    );
    // In the foreground too, without waiting for a container that never ran; --rm removes it.
    let fg = d.cli(&["run", "--rootfs", "/", "--rm", "-p", "127.0.0.1:5100:80", "/bin/true"]);
    assert_eq!(fg.status.code(), Some(125));
    assert_eq!(d.ok(&["ps", "-a", "-q"]).lines().count(), 2);
    // A port held by something else is the userland proxy's bind error.
    let _held = ns.run(|| TcpListener::bind("127.0.0.1:5200").unwrap());
    let out = d.cli(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "busyport",
        "-p",
        "127.0.0.1:5200:80",
        "/bin/true",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "Error starting userland proxy: listen tcp4 127.0.0.1:5200: bind: address already in use."
    ));
}

#[test]
fn a_run_whose_second_port_fails_answers_after_the_first_is_free_again() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let _held = ns.run(|| TcpListener::bind("127.0.0.1:5311").unwrap());
    for i in 0..5 {
        let name = format!("half{i}");
        let out = d.cli(&[
            "run",
            "--rootfs",
            "/",
            "-d",
            "--name",
            &name,
            "-p",
            "127.0.0.1:5310:80",
            "-p",
            "127.0.0.1:5311:81",
            "/bin/true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        // The first port was bound and handed to the forwarder before the second failed: the
        // answer comes only once it is free again, so it can be bound at once.
        let first = ns.run(|| TcpListener::bind("127.0.0.1:5310"));
        assert!(first.is_ok(), "try {i}: 127.0.0.1:5310 still held after the run failed");
        drop(first);
        d.ok(&["rm", &name]);
    }
}

#[test]
fn stop_frees_the_ports_and_start_takes_them_again() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&args(
        &["run", "--rootfs", "/", "-d", "--name", "web", "-p", "127.0.0.1:8080:8000"],
        &web_server(8000),
    ));
    eventually(15, || http_get(&ns, "127.0.0.1:8080"));
    assert!(!bindable(&ns, "127.0.0.1:8080"));
    assert_eq!(d.ok(&["stop", "-t", "2", "web"]), "web\n");
    assert!(bindable(&ns, "127.0.0.1:8080"));
    assert!(!ns.links().iter().any(|l| l.starts_with("cpveth")));
    assert_eq!(d.ok(&["port", "web"]), "");
    assert_eq!(d.ok(&["start", "web"]), "web\n");
    let status = eventually(15, || http_get(&ns, "127.0.0.1:8080"));
    assert!(status.contains("200"));
    assert_eq!(d.ok(&["rm", "-f", "web"]), "web\n");
    assert!(bindable(&ns, "127.0.0.1:8080"));
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn foreground_run_streams_output_and_returns_the_exit_code() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let out =
        d.cli(&["run", "--rootfs", "/", "--rm", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "", "--rm removed it");
    let missing = d.cli(&["run", "--rootfs", "/", "--rm", "nosuchcommand"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("executable file not found in $PATH")
    );
    let env = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "-e",
        "GREETING=hi",
        "/bin/sh",
        "-c",
        "echo $GREETING",
    ]);
    assert_eq!(env, "hi\n");
}

#[test]
fn daemon_sigterm_leaves_no_veth_bridge_listener_or_process() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    d.ok(&["run", "--rootfs", "/", "-d", "-p", "127.0.0.1:8080:80", "/bin/sleep", "3600"]);
    d.ok(&["run", "--rootfs", "/", "-d", "-p", "127.0.0.1:8081:80/udp", "/bin/sleep", "3600"]);
    assert_eq!(ns.links().iter().filter(|l| l.starts_with("cpveth")).count(), 2);
    assert!(ns.links().contains(&"cproxy0".to_string()));
    let pids = container_pids(&d);
    assert!(d.terminate().success());
    assert!(pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()));
    assert_eq!(ns.links(), vec!["lo".to_string()]);
    assert!(bindable(&ns, "127.0.0.1:8080"));
    assert!(ns.pids().is_empty(), "{:?}", ns.pids());
    assert!(!ns.dir.join("cproxy.sock").exists());
}

#[test]
fn a_killed_daemon_is_cleaned_up_by_the_next_and_lists_everything_stopped() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "one",
        "-p",
        "127.0.0.1:8080:80",
        "/bin/sleep",
        "3600",
    ]);
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "two", "/bin/sleep", "3600"]);
    let pids = container_pids(&d);
    d.kill();
    // Its containers die with it.
    eventually(10, || {
        pids.iter().all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()).then_some(())
    });
    let d2 = ns.daemon(&[]);
    let ps = d2.ok(&["ps", "-a"]);
    assert_eq!(ps.lines().count(), 3, "{ps}");
    assert!(ps.lines().skip(1).all(|l| l.contains("Exited (137) ")), "{ps}");
    let links = ns.links();
    assert!(!links.iter().any(|l| l.starts_with("cpveth")), "{links:?}");
    d2.ok(&["start", "one"]);
    assert_eq!(d2.ok(&["port", "one"]), "80/tcp -> 127.0.0.1:8080\n");
}

#[test]
fn unreachable_or_forbidden_daemons_get_dockers_messages() {
    let ns = Netns::new();
    let socket = ns.dir.join("nothing.sock");
    let out = std::process::Command::new(supervisor_support::BIN)
        .args(["-H", &format!("unix://{}", socket.display()), "ps"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Cannot connect to the cproxy daemon at unix://{}. Is the cproxy daemon running?\n",
            socket.display()
        )
    );
    let d = ns.daemon(&[]);
    let as_nobody = |args: &[&str]| {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(supervisor_support::BIN)
            .env("CPROXY_HOST", &d.host)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let client = as_nobody(&["ps"]);
    assert_eq!(client.status.code(), Some(1));
    let text = String::from_utf8_lossy(&client.stderr);
    assert!(
        text.starts_with(
            "permission denied while trying to connect to the cproxy daemon socket at unix://"
        ),
        "{text}"
    );
    let daemon = as_nobody(&["daemon", "--data-root", "/nonexistent"]);
    assert_eq!(daemon.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&daemon.stderr)
            .contains("needs to be started with root privileges")
    );
}

#[test]
fn exec_enters_the_containers_namespaces() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "db",
        "-h",
        "dbhost",
        "-e",
        "K=V",
        "/bin/sleep",
        "3600",
    ]);
    assert_eq!(d.ok(&["exec", "db", "/bin/hostname"]), "dbhost\n");
    assert_eq!(d.ok(&["exec", "db", "/bin/sh", "-c", "echo $K"]), "V\n");
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]);
    let addrs = d.ok(&["exec", "db", "ip", "-o", "-4", "addr", "show"]);
    assert!(addrs.contains("eth0") && addrs.contains(&format!("inet {}/16", ip.trim())), "{addrs}");
    let routes = d.ok(&["exec", "db", "ip", "route"]);
    assert!(routes.starts_with("default via 172.17.0.1 dev eth0 \n"), "{routes}");
    let init = d.ok(&["exec", "db", "/bin/cat", "/proc/1/cmdline"]);
    assert!(init.contains("__init"), "PID 1 is the container's init: {init:?}");
    assert_eq!(d.cli(&["exec", "db", "/bin/sh", "-c", "exit 4"]).status.code(), Some(4));
    d.ok(&["stop", "-t", "1", "db"]);
    let stopped = d.cli(&["exec", "db", "/bin/true"]);
    assert_eq!(stopped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("is not running"));
}

#[test]
fn udp_is_published_as_tcp_is() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let echo = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',53))\nwhile True:\n    m,a=s.recvfrom(100); s.sendto(m,a)";
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "p_udp",
        "-p",
        "127.0.0.1:5353:53/udp",
        &python(),
        "-c",
        echo,
    ]);
    assert_eq!(d.ok(&["port", "p_udp"]), "53/udp -> 127.0.0.1:5353\n");
    let ps = d.ok(&["ps"]);
    assert!(ps.contains("   127.0.0.1:5353->53/udp   p_udp"), "{ps}");
    let reply = eventually(15, || {
        ns.run(|| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
            s.send_to(b"ping", "127.0.0.1:5353").ok()?;
            let mut buf = [0u8; 16];
            let n = s.recv(&mut buf).ok()?;
            Some(buf[..n].to_vec())
        })
    });
    assert_eq!(reply, b"ping");
}

#[test]
fn restart_keeps_fixed_ports_and_the_container() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&args(
        &["run", "--rootfs", "/", "-d", "--name", "web", "-p", "127.0.0.1:8080:8000"],
        &web_server(8000),
    ));
    let pid1 = d.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    assert_eq!(d.ok(&["restart", "-t", "1", "web"]), "web\n");
    assert_ne!(d.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]), pid1);
    let status = eventually(15, || http_get(&ns, "127.0.0.1:8080"));
    assert!(status.contains("200"));
}

#[test]
fn fifty_concurrent_containers_get_distinct_addresses_and_leak_no_descriptor() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let daemon_fds = || std::fs::read_dir(format!("/proc/{}/fd", d.child.id())).unwrap().count();
    // One container first, so lazily opened descriptors are in the baseline.
    d.ok(&["run", "--rootfs", "/", "--rm", "-p", "127.0.0.1::80", "/bin/true"]);
    let baseline = daemon_fds();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    d.ok(&[
                        "run",
                        "--rootfs",
                        "/",
                        "-d",
                        "-p",
                        "127.0.0.1::80",
                        "/bin/sleep",
                        "3600",
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().trim().to_string()).collect()
    });
    let mut ips: Vec<String> = ids
        .iter()
        .map(|id| d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]).trim().to_string())
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 50, "every container has an address of its own");
    std::thread::scope(|s| {
        for chunk in ids.chunks(10) {
            s.spawn(|| {
                let mut argv = vec!["rm", "-f"];
                argv.extend(chunk.iter().map(String::as_str));
                d.ok(&argv);
            });
        }
    });
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
    assert!(!ns.links().iter().any(|l| l.starts_with("cpveth")));
    eventually(10, || (daemon_fds() <= baseline).then_some(()));
}

#[test]
fn volumes_workdir_and_env_file_are_applied_inside_only() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let src = ns.dir.join("src");
    let dst = ns.dir.join("dst");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::write(src.join("greeting"), "hello\n").unwrap();
    let env_file = ns.dir.join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n\n").unwrap();
    let vol = format!("{}:{}:ro", src.display(), dst.display());
    let script =
        "cat greeting; echo $FROM_FILE; touch new 2>/dev/null && echo writable || echo read-only";
    let out = d.ok(&[
        "run",
        "--rootfs",
        "/",
        "--rm",
        "-v",
        &vol,
        "-w",
        dst.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
        "/bin/sh",
        "-c",
        script,
    ]);
    assert_eq!(out, "hello\nyes\nread-only\n");
    assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 0, "the host's directory is untouched");
    let bad =
        d.cli(&["run", "--rootfs", "/", "--rm", "-v", "/nonexistent-cproxy:/mnt", "/bin/true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bind source path does not exist"));
}

#[test]
fn stop_kills_what_ignores_sigterm_after_the_timeout() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    // The shell ignores SIGTERM and waits on a child; init passes SIGTERM to the shell only.
    // Each says "ready" once its trap is set: a SIGTERM before that would end it at once.
    let ready =
        |name: &str| eventually(10, || d.ok(&["logs", name]).contains("ready").then_some(()));
    // `stop ARGS… NAME`: how long it took; then `inspect -f TEMPLATE NAME`.
    let stop = |args: &[&str], template: &str| -> (Duration, String) {
        let name = *args.last().unwrap();
        let started = std::time::Instant::now();
        assert_eq!(d.ok(&[&["stop"], args].concat()), format!("{name}\n"));
        let took = started.elapsed();
        (took, d.ok(&["inspect", "-f", template, name]))
    };
    let within = |took: Duration, from: u64, to: u64| {
        assert!(took >= Duration::from_secs(from) && took < Duration::from_secs(to), "{took:?}");
    };
    let stubborn = "trap '' TERM; echo ready; sleep 100 & wait";
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "stubborn", "/bin/sh", "-c", stubborn]);
    ready("stubborn");
    let (took, state) = stop(&["-t", "1", "stubborn"], "{{.State.Status}} {{.State.ExitCode}}");
    within(took, 1, 5);
    assert_eq!(state, "exited 137\n");
    // A command that handles SIGTERM stops at once, with its own status.
    let polite = "trap 'exit 0' TERM; echo ready; sleep 100 & wait";
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "polite", "/bin/sh", "-c", polite]);
    ready("polite");
    let (took, state) = stop(&["polite"], "{{.State.ExitCode}}");
    within(took, 0, 5);
    assert_eq!(state, "0\n");

    // A command with no handler is as PID 1 under Docker: SIGTERM does not reach it, so
    // `stop -t 2` waits the 2 s and kills it (3e-restart-policies.txt: "docker stop -t 2 took
    // 2.13 s", Exited (137)).
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "stopme", "sleep", "3600"]);
    let init = "{{.State.ExitCode}} {{.HostConfig.Init}}";
    let (took, state) = stop(&["-t", "2", "stopme"], init);
    within(took, 2, 6);
    assert_eq!(state, "137 <no value>\n");
    // With --init (docker run --init) the command is not PID 1 and SIGTERM ends it at once.
    d.ok(&["run", "--rootfs", "/", "-d", "--init", "--name", "inited", "sleep", "3600"]);
    let (took, state) = stop(&["-t", "20", "inited"], init);
    within(took, 0, 10);
    assert_eq!(state, "143 true\n");

    // --stop-signal: what stop sends first; --stop-timeout: its wait when stop has no -t.
    let usr1 = "trap 'exit 7' USR1; echo ready; sleep 100 & wait";
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "SIGUSR1",
        "/bin/sh",
        "-c",
        usr1,
    ]);
    ready("usr1");
    let (_, state) = stop(&["usr1"], "{{.State.ExitCode}} {{.Config.StopSignal}}");
    assert_eq!(state, "7 SIGUSR1\n");
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "quick",
        "--stop-timeout",
        "1",
        "sleep",
        "3600",
    ]);
    let (took, state) = stop(&["quick"], "{{.State.ExitCode}} {{.Config.StopTimeout}}");
    within(took, 1, 5);
    assert_eq!(state, "137 1\n");
    let bad = d.cli(&["run", "--rootfs", "/", "-d", "--stop-signal", "FOO", "sleep", "1"]);
    assert_eq!(bad.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("cproxy: Error response from daemon: Invalid signal: FOO."),
        "{stderr}"
    );
}

#[test]
fn logs_keep_both_streams_and_tail_cuts_them() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let out = d.cli(&[
        "run",
        "--rootfs",
        "/",
        "--name",
        "talker",
        "/bin/sh",
        "-c",
        "echo one; echo two >&2; echo three",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let logs = d.cli(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "one\nthree\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "two\n");
    // Lines of one stream keep their order (the two streams are two pipes, as in Docker).
    d.ok(&["run", "--rootfs", "/", "--name", "counter", "/bin/sh", "-c", "echo a; echo b; echo c"]);
    assert_eq!(d.ok(&["logs", "--tail", "2", "counter"]), "b\nc\n");
    // The log file is Docker's json-file format, with timestamps.
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "counter"]);
    let path = d.ok(&["inspect", "-f", "{{.LogPath}}", "counter"]);
    assert!(path.trim().ends_with(&format!("{}-json.log", id.trim())));
    let first = std::fs::read_to_string(path.trim()).unwrap();
    let first = first.lines().next().unwrap().to_string();
    assert!(first.starts_with("{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"20"), "{first}");
}

#[test]
fn exposed_ports_show_in_ps_and_the_socket_is_group_only() {
    use std::os::unix::fs::PermissionsExt;
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let mode = std::fs::metadata(ns.dir.join("cproxy.sock")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "exposed",
        "--expose",
        "80",
        "/bin/sleep",
        "3600",
    ]);
    let ps = d.ok(&["ps"]);
    assert!(ps.lines().nth(1).unwrap().ends_with("   80/tcp    exposed"), "{ps}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "exposed"]),
        "{\"80/tcp\":null}\n"
    );
}

#[test]
fn logs_follow_streams_until_the_container_stops() {
    use std::io::BufRead;
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let script = "trap 'echo bye; exit 0' TERM; echo ready; sleep 100 & wait";
    d.ok(&["run", "--rootfs", "/", "-d", "--name", "chatty", "/bin/sh", "-c", script]);
    let mut follow = std::process::Command::new(supervisor_support::BIN)
        .env("CPROXY_HOST", &d.host)
        .args(["logs", "-f", "chatty"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    d.ok(&["stop", "chatty"]);
    assert_eq!(lines.next().unwrap().unwrap(), "bye");
    assert!(lines.next().is_none(), "the stream ends with the container");
    assert!(follow.wait().unwrap().success());
}

#[test]
fn proxy_protocol_gives_the_container_the_clients_address_and_metrics_count_it() {
    let ns = Netns::new();
    let d = ns.daemon(&["--metrics-addr", "127.0.0.1:9180"]);
    // The container answers each connection with the first line it received.
    let script = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',7000))\ns.listen()\nwhile True:\n c,_=s.accept()\n c.sendall(c.makefile('rb').readline())\n c.close()\n";
    d.ok(&[
        "run",
        "--rootfs",
        "/",
        "-d",
        "--name",
        "pp",
        "--proxy-protocol",
        "v1",
        "-p",
        "127.0.0.1:7100:7000",
        &python(),
        "-c",
        script,
    ]);
    let (line, local) = eventually(15, || {
        ns.run(|| {
            let mut s = TcpStream::connect("127.0.0.1:7100").ok()?;
            let local = s.local_addr().ok()?;
            let mut line = String::new();
            s.read_to_string(&mut line).ok()?;
            (!line.is_empty()).then_some((line, local))
        })
    });
    assert_eq!(line, format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} 7100\r\n", local.port()));
    let ip = d.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "pp"]);
    let metrics = ns.run(|| {
        let mut s = TcpStream::connect("127.0.0.1:9180").unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    });
    let count = |name: &str| -> u64 {
        let series = format!(
            "{name}{{proto=\"tcp\",host=\"127.0.0.1:7100\",container=\"{}:7000\"}} ",
            ip.trim()
        );
        let line = metrics.lines().find(|l| l.starts_with(&series));
        line.unwrap_or_else(|| panic!("{series} not in:\n{metrics}"))[series.len()..]
            .parse()
            .unwrap()
    };
    // Tries made before the server listened were accepted and failed to dial; one got through.
    assert_eq!(
        count("cproxy_connections_accepted_total"),
        count("cproxy_backend_dial_failures_total") + 1
    );
    let bad = d.cli(&["run", "--rootfs", "/", "-d", "--proxy-protocol", "v3", "/bin/true"]);
    assert_eq!(bad.status.code(), Some(125), "{bad:?}");
}
