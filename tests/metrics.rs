//! Counters and metrics against a known workload: N connections that each move M bytes each
//! way, K connections refused over the limit, a dial that fails, D datagrams; read from the
//! library, from the Prometheus text (parsed by a Prometheus text parser), from the
//! `--metrics-addr` endpoint of `cproxy forward`, and from `cproxy stats`.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::TestProxy;
use cproxy::proxy::{BindingInfo, Config, Proto, Stats, StatsSnapshot};

const N: u64 = 5;
const K: u64 = 3;
const M: u64 = 100_000;
const D: u64 = 7;

/// Waits until `done` holds for `stats`, for at most 10 s (the counters are the signal).
fn wait_for(stats: &Stats, what: &str, done: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats.snapshot();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never {what}: {s:?}");
        thread::yield_now();
    }
}

/// Runs the workload against `tp`: a TCP binding limited to N connections (N served, K
/// refused), a TCP binding whose container refuses connections (one dial failure), and a UDP
/// binding (D datagrams echoed). Returns the three bindings.
fn workload(tp: &TestProxy) -> [BindingInfo; 3] {
    let echo = common::echo_server("127.0.0.1");
    let tcp = tp.add(Proto::Tcp, "127.0.0.1", echo);
    let stats = tp.proxy.stats(tcp.id).unwrap();
    let held: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(tcp.local).unwrap()).collect();
    wait_for(&stats, "N connections open", |s| s.active == N);
    for _ in 0..K {
        // The proxy resets a connection over the limit as soon as it accepts it: under load
        // the reset can come before `connect` has returned, which then says so.
        let mut c = match TcpStream::connect(tcp.local) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => continue,
            Err(e) => panic!("connecting: {e}"),
        };
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        match c.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("a connection over the limit was not reset: {other:?}"),
        }
    }
    let clients: Vec<_> = held
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let mut r = c.try_clone().unwrap();
                let reader = thread::spawn(move || {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).unwrap();
                    got.len() as u64
                });
                c.write_all(&vec![7u8; M as usize]).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                reader.join().unwrap()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), M, "echoed bytes");
    }
    wait_for(&stats, "every connection closed", |s| s.active == 0);

    let dead = tp.add(Proto::Tcp, "127.0.0.1", common::refused_addr());
    // Closed as soon as the dial fails, maybe before `connect` has returned (then reset).
    if let Ok(mut c) = TcpStream::connect(dead.local) {
        let _ = c.read(&mut [0u8; 1]);
    }
    wait_for(&tp.proxy.stats(dead.id).unwrap(), "the dial failed", |s| s.dial_failures == 1);

    let udp = tp.add(Proto::Udp, "127.0.0.1", common::udp_echo_server("127.0.0.1"));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..D {
        client.send_to(&[i as u8; 10], udp.local).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(client.recv_from(&mut buf).unwrap().0, 10);
    }
    // A reply is counted just after it is sent, so maybe after the client has it.
    let stats = tp.proxy.stats(udp.id).unwrap();
    wait_for(&stats, "D replies counted", |s| s.datagrams_to_client == D);
    [tcp, dead, udp]
}

#[test]
fn counters_match_a_known_workload_exactly() {
    let tp = TestProxy::new(Config { max_connections: N as usize, ..Config::default() });
    let [tcp, dead, udp] = workload(&tp);
    let s = tp.proxy.stats(tcp.id).unwrap().snapshot();
    assert_eq!((s.accepted, s.active, s.refused), (N + K, 0, K));
    assert_eq!((s.bytes_to_backend, s.bytes_to_client), (N * M, N * M));
    assert_eq!((s.dial_failures, s.dial_timeouts, s.exhaustion_episodes), (0, 0, 0));
    let s = tp.proxy.stats(dead.id).unwrap().snapshot();
    assert_eq!((s.accepted, s.dial_failures, s.dial_timeouts), (1, 1, 0));
    let s = tp.proxy.stats(udp.id).unwrap().snapshot();
    assert_eq!((s.datagrams_to_backend, s.datagrams_to_client), (D, D));
    assert_eq!((s.bytes_to_backend, s.bytes_to_client), (10 * D, 10 * D));
    assert_eq!((s.sessions, s.sessions_opened, s.datagrams_dropped), (1, 1, 0));
}

#[test]
fn bytes_of_open_connections_are_counted_before_they_end() {
    let tp = TestProxy::new(Config::default());
    let addr = tp.forward("127.0.0.1", common::echo_server("127.0.0.1"));
    let info = tp.proxy.list()[0];
    let stats = tp.proxy.stats(info.id).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&[1u8; 4096]).unwrap();
    let mut back = [0u8; 4096];
    c.read_exact(&mut back).unwrap();
    let s = wait_for(&stats, "4096 bytes each way", |s| s.bytes_to_client == 4096);
    assert_eq!((s.active, s.bytes_to_backend), (1, 4096));
}

/// Parses Prometheus text with `prometheus-parse`; returns each sample as
/// `name{proto,host,direction or side}` → value.
fn parse_scrape(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid Prometheus exposition");
    let mut out = HashMap::new();
    for s in scrape.samples {
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            other => panic!("{} is {other:?}", s.metric),
        };
        let label = |k: &str| s.labels.get(k).unwrap_or_default().to_string();
        // A family's own label: `direction`, or `side` for resets.
        let split = s.labels.get("side").map_or_else(|| label("direction"), str::to_string);
        let key = format!("{}{{{},{},{split}}}", s.metric, label("proto"), label("host"));
        out.insert(key, value);
    }
    out
}

fn sample(samples: &HashMap<String, f64>, name: &str, b: &BindingInfo, dir: &str) -> f64 {
    let key = format!("{name}{{{},{},{dir}}}", b.binding.proto, b.local);
    *samples.get(&key).unwrap_or_else(|| panic!("no sample {key} in {samples:?}"))
}

#[test]
fn prometheus_text_carries_the_workloads_counts() {
    let tp = TestProxy::new(Config { max_connections: N as usize, ..Config::default() });
    let [tcp, dead, udp] = workload(&tp);
    let text = cproxy::metrics::render(&cproxy::metrics::registry(&tp.proxy));
    assert!(text.contains(&format!("container=\"{}\"", tcp.binding.backend)), "{text}");
    let samples = parse_scrape(&text);
    let n = |name, b, dir| sample(&samples, name, b, dir);
    assert_eq!(n("cproxy_connections_accepted_total", &tcp, ""), (N + K) as f64);
    assert_eq!(n("cproxy_connections_refused_total", &tcp, ""), K as f64);
    assert_eq!(n("cproxy_connections_active", &tcp, ""), 0.0);
    assert_eq!(n("cproxy_bytes_total", &tcp, "to_container"), (N * M) as f64);
    assert_eq!(n("cproxy_bytes_total", &tcp, "to_client"), (N * M) as f64);
    assert_eq!(n("cproxy_backend_dial_failures_total", &dead, ""), 1.0);
    assert_eq!(n("cproxy_backend_dial_timeouts_total", &dead, ""), 0.0);
    assert_eq!(n("cproxy_datagrams_total", &udp, "to_container"), D as f64);
    assert_eq!(n("cproxy_datagrams_total", &udp, "to_client"), D as f64);
    assert_eq!(n("cproxy_udp_sessions_created_total", &udp, ""), 1.0);
    assert_eq!(n("cproxy_udp_sessions_active", &udp, ""), 1.0);
    assert_eq!(n("cproxy_descriptor_exhaustion_episodes_total", &udp, ""), 0.0);
    // TCP metrics are not given for UDP bindings.
    assert!(!samples.keys().any(|k| k.starts_with("cproxy_connections_accepted_total{udp")));
}

/// Sends `request` to `addr` and returns the whole HTTP response.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn forward_serves_metrics_and_stats_of_its_bindings() {
    let echo = common::echo_server("127.0.0.1");
    let dir = testkit::tempdir::TempDir::new("cproxy-stats").unwrap();
    let control = dir.path().join("control.sock");
    let metrics_port = testkit::peers::free_tcp_port().unwrap();
    let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics_port).into();
    let spec = format!("127.0.0.1::{}", echo.port());
    let args = [
        "--to",
        "127.0.0.1",
        "-p",
        &spec,
        "--control",
        control.to_str().unwrap(),
        "--metrics-addr",
        &metrics_addr.to_string(),
    ];
    let proxy = common::process::ProxyProcess::forward(&args, 1);
    let host = proxy.host(0);
    for _ in 0..3 {
        assert_eq!(common::echo_via(host, &[5u8; 1000]), vec![5u8; 1000]);
    }
    // The third connection's totals land when its task ends, just after the client sees EOF.
    let deadline = Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let reply = http(metrics_addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("content-type: text/plain; version=0.0.4"), "{reply}");
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
        let samples = parse_scrape(body);
        let key = format!("cproxy_bytes_total{{tcp,{host},to_client}}");
        if samples.get(&key) == Some(&3000.0) {
            break samples;
        }
        assert!(Instant::now() < deadline, "{key} never reached 3000: {body}");
        thread::sleep(Duration::from_millis(20));
    };
    let key = format!("cproxy_connections_accepted_total{{tcp,{host},}}");
    assert_eq!(samples.get(&key), Some(&3.0));
    let missing = http(metrics_addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post = http(metrics_addr, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");

    let run = |format: &str| {
        let out = Command::new(common::process::CPROXY)
            .args(["stats", "--control", control.to_str().unwrap(), "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run("table");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID  PROTO  HOST"), "{table}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[1..5], ["tcp", &host.to_string(), &echo.to_string(), "3"], "{table}");
    assert_eq!(&row[8..10], ["3000", "3000"], "{table}");
    let json = run("json");
    let want = format!("\"host\":\"{host}\"");
    assert!(json.starts_with("[{\"id\":") && json.contains(&want), "{json}");
    assert!(
        json.contains("\"accepted\":3,") && json.contains("\"bytes_to_client\":3000"),
        "{json}"
    );
    drop(proxy);
}

/// `cproxy forward` of one binding to 127.0.0.1:9, logging JSON at `level` to a piped stderr
/// (its `docker port` line goes to a piped stdout).
fn forward_to_port_9_logging_json(level: &str) -> std::process::Child {
    Command::new(common::process::CPROXY)
        .args(["forward", "--to", "127.0.0.1", "-p", "127.0.0.1::9", "--log-format", "json"])
        .env("CPROXY_LOG", level)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    use std::io::BufRead;
    let mut child = forward_to_port_9_logging_json("info");
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap();
    let line = line.trim_end();
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"level\":\"INFO\""), "{line}");
    assert!(line.contains("\"message\":\"forwarding\""), "{line}");
}

/// Each event of a connection carries its binding's and its own span: `binding{proto, host,
/// backend}` and `conn{client}`, as JSON too.
#[test]
fn log_events_carry_the_binding_and_connection_spans() {
    use std::io::BufRead;
    // Port 9 (discard) on loopback answers with a reset: the dial fails, which is logged.
    let mut child = forward_to_port_9_logging_json("debug");
    let mut published = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut published).unwrap();
    let host = published.trim_end().rsplit(" -> ").next().unwrap().to_string();
    let (lines, received) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let client = std::net::TcpStream::connect(&host).unwrap();
    let client_addr = client.local_addr().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if line.contains("backend dial failed") => break Some(line),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the failed dial was not logged");
    for want in [
        "\"name\":\"binding\"".to_string(),
        "\"proto\":\"tcp\"".to_string(),
        format!("\"host\":\"{host}\""),
        "\"backend\":\"127.0.0.1:9\"".to_string(),
        "\"name\":\"conn\"".to_string(),
        format!("\"client\":\"{client_addr}\""),
    ] {
        assert!(line.contains(&want), "{want} missing from {line}");
    }
    drop(client);
}

/// A connection that ends because one side reset is counted for that side, in `Stats` and as
/// `cproxy_tcp_resets_total{side}`; the other side learns of it by a reset too.
#[test]
fn a_backend_reset_counts_as_backend_and_a_client_reset_as_client() {
    let tp = TestProxy::new(Config::default());
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let info = tp.add(Proto::Tcp, "127.0.0.1", backend.local_addr().unwrap());
    let stats = tp.proxy.stats(info.id).unwrap();
    let reset = |s: TcpStream| {
        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    };
    let ended =
        |s: &StatsSnapshot| s.active == 0 && s.accepted == s.client_resets + s.backend_resets;

    // A byte through first: the connection is relaying (a reset that reached the proxy while
    // it still dialed would be a dial failure).
    let relaying = |client: &mut TcpStream| {
        let (mut server, _) = backend.accept().unwrap();
        client.write_all(b"x").unwrap();
        server.read_exact(&mut [0u8; 1]).unwrap();
        server
    };
    let mut client = TcpStream::connect(info.local).unwrap();
    reset(relaying(&mut client));
    let after = wait_for(&stats, "the backend's reset counted", ended);
    assert_eq!((after.client_resets, after.backend_resets), (0, 1));
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let err = client.read(&mut [0u8; 1]).expect_err("the client must learn of it by a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

    let mut client = TcpStream::connect(info.local).unwrap();
    let _server = relaying(&mut client);
    reset(client);
    let after = wait_for(&stats, "the client's reset counted", |s| s.accepted == 2 && ended(s));
    assert_eq!((after.client_resets, after.backend_resets), (1, 1));

    let samples = parse_scrape(&cproxy::metrics::render(&cproxy::metrics::registry(&tp.proxy)));
    assert_eq!(sample(&samples, "cproxy_tcp_resets_total", &info, "client"), 1.0);
    assert_eq!(sample(&samples, "cproxy_tcp_resets_total", &info, "backend"), 1.0);
}
