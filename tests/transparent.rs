//! Transparent mode (`--source-ip-transparent`) across three hosts the test makes: a client
//! host, the host running cproxy, and a container behind a veth pair. The container's
//! `getpeername`/`recvfrom` shows the client's own address and port, TCP and UDP, IPv4 and IPv6;
//! replies reach the client; the container's other traffic is unaffected; loopback clients and
//! IPv6 clients of an IPv4 container are forwarded from cproxy's address and counted; and no
//! rule, route or mark rule of cproxy's is left once the last cproxy stops, even after one was
//! killed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::time::Duration;

use common::process::spawn_in_netns;
use testkit::netns::{Netns, RoutedHosts};

const TCP_PORT: u16 = 80;
const UDP_PORT: u16 = 53;
const WAIT: Duration = Duration::from_secs(5);

/// A TCP server in the container that answers each connection with the address it sees as
/// its peer, then closes; and a UDP one that answers each datagram with its source.
fn who_am_i_servers(container: &Netns, ip: IpAddr) {
    let (tcp, udp) = container.run(move || {
        let tcp = TcpListener::bind((ip, TCP_PORT)).expect("tcp server in the container");
        let udp = UdpSocket::bind((ip, UDP_PORT)).expect("udp server in the container");
        (tcp, udp)
    });
    std::thread::spawn(move || {
        for mut conn in tcp.incoming().flatten() {
            let peer = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            let _ = conn.write_all(peer.as_bytes());
        }
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(from.to_string().as_bytes(), from);
        }
    });
}

/// Connects from `ns` to `target`: the client's own address, and the one the container saw.
fn tcp_seen(ns: &Netns, target: SocketAddr) -> (SocketAddr, SocketAddr) {
    ns.run(move || {
        let mut conn = TcpStream::connect_timeout(&target, WAIT).expect("connect through cproxy");
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut seen = String::new();
        conn.read_to_string(&mut seen).expect("the container's answer");
        (conn.local_addr().unwrap(), seen.parse().expect("an address"))
    })
}

/// Sends a datagram from `ns` (from `source`'s address, any port) to `target`: the client's
/// own address, and the one the container saw; resent a few times, as UDP may lose one.
fn udp_seen(ns: &Netns, source: IpAddr, target: SocketAddr) -> (SocketAddr, SocketAddr) {
    ns.run(move || {
        let sock = UdpSocket::bind((source, 0)).expect("client socket");
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..5 {
            sock.send_to(b"?", target).expect("send");
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                assert_eq!(from, target, "the reply comes from the address the client sent to");
                let seen = std::str::from_utf8(&buf[..n]).unwrap().parse().expect("an address");
                return (sock.local_addr().unwrap(), seen);
            }
        }
        panic!("no UDP reply through {target}");
    })
}

/// A cproxy in the proxy host: stopped (SIGTERM) when dropped, as when a test fails, so that
/// it removes its routing and lock file.
struct Running(Child);

impl Running {
    fn start(ns: &Netns, args: &[&str]) -> Running {
        Running(spawn_in_netns(ns, args))
    }

    /// Stops it as dockerd does (SIGTERM) and waits until it exited.
    fn stop(mut self) {
        assert!(self.terminate().is_some_and(|s| s.success()), "cproxy exited in error");
    }

    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // Never a signal to a process that was reaped already (its PID may be another's now).
        if let Ok(Some(status)) = self.0.try_wait() {
            return Some(status);
        }
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.0.wait().ok()
    }

    /// Kills it without a word, as the OOM killer would.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Idle connections close at once; busy ones within the 5 s grace period.
        self.terminate();
    }
}

/// docker-proxy mode's arguments for one binding.
fn docker_proxy(proto: &str, host: SocketAddr, backend: SocketAddr) -> Vec<String> {
    let args = format!(
        "-proto {proto} -host-ip {} -host-port {} -container-ip {} -container-port {} \
         -source-ip-transparent",
        host.ip(),
        host.port(),
        backend.ip(),
        backend.port()
    );
    args.split_whitespace().map(String::from).collect()
}

fn start_docker_proxy(ns: &Netns, proto: &str, host: SocketAddr, backend: SocketAddr) -> Running {
    let args = docker_proxy(proto, host, backend);
    Running::start(ns, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// What cproxy's transparent mode puts in the proxy host's network namespace and is still
/// there: its rules, its table's routes, its mark rules; each as a line.
fn leftovers(ns: &Netns) -> Vec<String> {
    let run = |program: &str, args: &[&str]| -> String {
        let out = ns.command(program).args(args).output().expect(program);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut lines = Vec::new();
    for family in ["-4", "-6"] {
        lines
            .extend(run("ip", &[family, "rule", "show", "pref", "1717"]).lines().map(String::from));
        let routes = run("ip", &[family, "route", "show", "table", "1717"]);
        lines.extend(routes.lines().map(String::from));
    }
    for tool in ["iptables", "ip6tables"] {
        let rules = run(tool, &["-w", "-t", "mangle", "-S", "PREROUTING"]);
        lines.extend(rules.lines().filter(|l| l.contains("cproxy")).map(String::from));
    }
    lines
}

/// The lock file cproxy processes of `ns` share.
fn lock_file(ns: &Netns) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/run/netns/{}", ns.name())).unwrap().ino();
    format!("/run/cproxy/transparent-net{ino}.lock").into()
}

/// The counter `name` of every binding, from `cproxy forward`'s control socket.
fn counters(control: &std::path::Path, name: &str) -> Vec<u64> {
    let mut conn = UnixStream::connect(control).expect("control socket");
    conn.write_all(b"stats\n").unwrap();
    let mut values = Vec::new();
    for line in BufReader::new(conn).lines() {
        let line = line.unwrap();
        if line == "ok" {
            break;
        }
        let value = line.split(' ').find_map(|w| w.strip_prefix(&format!("{name}=")));
        values.push(value.expect("the counter").parse().unwrap());
    }
    values
}

/// Sends one command to the control socket; its reply's lines, the last being `ok`.
fn control(path: &std::path::Path, command: &str) -> Vec<String> {
    let mut conn = UnixStream::connect(path).expect("control socket");
    conn.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(conn).lines() {
        let line = line.unwrap();
        let done = line == "ok" || line.starts_with("error");
        lines.push(line);
        if done {
            break;
        }
    }
    assert_eq!(lines.last().map(String::as_str), Some("ok"), "{command}: {lines:?}");
    lines
}

#[test]
fn the_container_sees_the_clients_address_and_port_tcp_and_udp_ipv4_and_ipv6() {
    let hosts = RoutedHosts::new();
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V4);
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V6);
    let v4 = |port| SocketAddr::new(RoutedHosts::PROXY_V4, port);
    let v6 = |port| SocketAddr::new(RoutedHosts::PROXY_V6, port);
    let to_v4 = |port| SocketAddr::new(RoutedHosts::CONTAINER_V4, port);
    let to_v6 = |port| SocketAddr::new(RoutedHosts::CONTAINER_V6, port);
    // Four cproxy processes, as dockerd starts them, sharing the namespace's routing.
    let proxies = [
        start_docker_proxy(&hosts.proxy, "tcp", v4(8080), to_v4(TCP_PORT)),
        start_docker_proxy(&hosts.proxy, "udp", v4(5353), to_v4(UDP_PORT)),
        start_docker_proxy(&hosts.proxy, "tcp", v6(8080), to_v6(TCP_PORT)),
        start_docker_proxy(&hosts.proxy, "udp", v6(5353), to_v6(UDP_PORT)),
    ];
    for _ in 0..2 {
        let (client, seen) = tcp_seen(&hosts.client, v4(8080));
        assert_eq!(seen, client, "TCP over IPv4");
        let (client, seen) = tcp_seen(&hosts.client, v6(8080));
        assert_eq!(seen, client, "TCP over IPv6");
        let (client, seen) = udp_seen(&hosts.client, RoutedHosts::CLIENT_V4, v4(5353));
        assert_eq!(seen, client, "UDP over IPv4");
        let (client, seen) = udp_seen(&hosts.client, RoutedHosts::CLIENT_V6, v6(5353));
        assert_eq!(seen, client, "UDP over IPv6");
    }
    assert!(!leftovers(&hosts.proxy).is_empty(), "the routing is in place while they serve");
    let [a, b, c, d] = proxies;
    // The routing stays while any of them serves.
    a.stop();
    b.stop();
    c.stop();
    let (client, seen) = udp_seen(&hosts.client, RoutedHosts::CLIENT_V6, v6(5353));
    assert_eq!(seen, client, "the last one still has its routing");
    d.stop();
    assert_eq!(leftovers(&hosts.proxy), Vec::<String>::new(), "the last one removed it all");
    assert!(!lock_file(&hosts.proxy).exists(), "and its lock file");
}

#[test]
fn the_containers_other_traffic_is_unaffected() {
    let hosts = RoutedHosts::new();
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V4);
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V6);
    who_am_i_servers(&hosts.client, RoutedHosts::CLIENT_V4);
    let proxy = start_docker_proxy(
        &hosts.proxy,
        "tcp",
        SocketAddr::new(RoutedHosts::PROXY_V4, 8080),
        SocketAddr::new(RoutedHosts::CONTAINER_V4, TCP_PORT),
    );
    let through = tcp_seen(&hosts.client, SocketAddr::new(RoutedHosts::PROXY_V4, 8080));
    assert_eq!(through.1, through.0);
    // The container reaches the client's side through the proxy host, as the internet.
    for proto in ["tcp", "udp"] {
        let target = SocketAddr::new(RoutedHosts::CLIENT_V4, if proto == "tcp" { 80 } else { 53 });
        let (me, seen) = match proto {
            "tcp" => tcp_seen(&hosts.container, target),
            _ => udp_seen(&hosts.container, RoutedHosts::CONTAINER_V4, target),
        };
        assert_eq!(seen, me, "{proto} from the container to the client side");
    }
    // A client routed straight to the container's published port (no cproxy) gets its replies:
    // only packets of cproxy's own transparent sockets are taken in, not all from that port.
    for target in [
        SocketAddr::new(RoutedHosts::CONTAINER_V4, TCP_PORT),
        SocketAddr::new(RoutedHosts::CONTAINER_V6, TCP_PORT),
    ] {
        let (client, seen) = tcp_seen(&hosts.client, target);
        assert_eq!(seen, client, "straight to {target}");
    }
    let (client, seen) = udp_seen(
        &hosts.client,
        RoutedHosts::CLIENT_V4,
        SocketAddr::new(RoutedHosts::CONTAINER_V4, UDP_PORT),
    );
    assert_eq!(seen, client, "UDP straight to the container");
    proxy.stop();
    assert_eq!(leftovers(&hosts.proxy), Vec::<String>::new());
}

#[test]
fn after_cproxy_is_killed_the_next_one_leaves_nothing_of_its_routing() {
    let hosts = RoutedHosts::new();
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V4);
    let host = SocketAddr::new(RoutedHosts::PROXY_V4, 8080);
    let backend = SocketAddr::new(RoutedHosts::CONTAINER_V4, TCP_PORT);
    let killed = start_docker_proxy(&hosts.proxy, "tcp", host, backend);
    let (client, seen) = tcp_seen(&hosts.client, host);
    assert_eq!(seen, client);
    killed.kill();
    assert!(!leftovers(&hosts.proxy).is_empty(), "SIGKILL leaves the routing");
    // Started again (without transparent mode, even): what was left goes at its start.
    let args = docker_proxy("tcp", host, backend);
    let plain: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| *a != "-source-ip-transparent").collect();
    let again = Running::start(&hosts.proxy, &plain);
    assert_eq!(leftovers(&hosts.proxy), Vec::<String>::new(), "swept at start");
    let (client, seen) = tcp_seen(&hosts.client, host);
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4, "not transparent: {client}");
    again.stop();
    // Killed again, and started again transparent: it makes the routing, and removes it.
    let killed = start_docker_proxy(&hosts.proxy, "tcp", host, backend);
    killed.kill();
    let again = start_docker_proxy(&hosts.proxy, "tcp", host, backend);
    let (client, seen) = tcp_seen(&hosts.client, host);
    assert_eq!(seen, client);
    again.stop();
    assert_eq!(leftovers(&hosts.proxy), Vec::<String>::new());
    assert!(!lock_file(&hosts.proxy).exists());
}

#[test]
fn loopback_ipv6_to_ipv4_and_backend_side_clients_are_forwarded_from_cproxys_address() {
    let hosts = RoutedHosts::new();
    who_am_i_servers(&hosts.container, RoutedHosts::CONTAINER_V4);
    let dir = testkit::tempdir::TempDir::new("cproxy-transparent").unwrap();
    let socket = dir.path().join("control.sock");
    let to = RoutedHosts::CONTAINER_V4.to_string();
    let args = ["forward", "--to", &to, "--control", socket.to_str().unwrap()];
    let forward = Running::start(&hosts.proxy, &args);
    // Per binding, through the control socket: transparent for these, as the option says.
    control(&socket, "add 127.0.0.1:8080:80 source-ip-transparent");
    control(&socket, "add [fd79:1::1]:8080:80 source-ip-transparent");
    control(&socket, "add 10.79.1.1:8081:80 source-ip-transparent");
    control(&socket, "add 10.79.1.1:8082:80");
    let on_loopback = SocketAddr::new("127.0.0.1".parse().unwrap(), 8080);
    let (_, seen) = tcp_seen(&hosts.proxy, on_loopback);
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4, "a loopback client: cproxy's address");
    let (_, seen) = tcp_seen(&hosts.client, SocketAddr::new(RoutedHosts::PROXY_V6, 8080));
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4, "an IPv6 client of IPv4: cproxy's address");
    let (client, seen) = tcp_seen(&hosts.client, SocketAddr::new(RoutedHosts::PROXY_V4, 8081));
    assert_eq!(seen, client, "transparent");
    let (_, seen) = tcp_seen(&hosts.client, SocketAddr::new(RoutedHosts::PROXY_V4, 8082));
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4, "a binding added without the option");
    let (_, seen) = tcp_seen(&hosts.proxy, on_loopback);
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4);
    // The container through its own published port: it is on the container's side.
    let (_, seen) = tcp_seen(&hosts.container, SocketAddr::new(RoutedHosts::PROXY_V4, 8081));
    assert_eq!(seen.ip(), RoutedHosts::GATEWAY_V4, "the container itself: cproxy's address");
    assert_eq!(counters(&socket, "transparent_fallbacks"), [2, 1, 1, 0]);
    forward.stop();
    assert_eq!(leftovers(&hosts.proxy), Vec::<String>::new());
}
