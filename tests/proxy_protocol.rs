//! The PROXY protocol on real loopback connections: a backend that parses the header learns
//! the client's address (v1 and v2, IPv4 and IPv6), the stream after it is untouched, and
//! HAProxy itself (`accept-proxy`), a receiver no one here wrote, accepts cproxy's headers.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::TestProxy;
use cproxy::proxy::proxy_proto::{self, Addresses, ParseError, Transport, Version};
use cproxy::proxy::{Binding, BindingOptions, Config, Proto, ProxyError};

/// What the backend got on one connection: the header it parsed, and the bytes after it.
struct Received {
    addresses: Addresses,
    version: Version,
    payload: Vec<u8>,
}

/// Accepts one connection on `listener`, reads it to its end and parses the PROXY header at
/// its start.
fn receive_one(listener: TcpListener) -> thread::JoinHandle<Received> {
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).expect("read the proxied stream");
        let header = match proxy_proto::parse(&bytes) {
            Ok(h) => h,
            Err(e @ ParseError::Incomplete { .. }) | Err(e @ ParseError::Invalid(_)) => {
                panic!("{e}: {:?}", String::from_utf8_lossy(&bytes))
            }
        };
        Received {
            addresses: header.addresses.clone(),
            version: header.version,
            payload: bytes[header.len..].to_vec(),
        }
    })
}

/// Connects to a binding with PROXY protocol `version` on `ip` forwarding to a parsing backend
/// on `ip`; checks the backend got the client's address and the binding's, then the payload.
fn backend_learns_the_client(version: Version, ip: &str) {
    let tp = TestProxy::new(Config { proxy_protocol: Some(version), ..Config::default() });
    let backend = common::listen(ip);
    let info = tp.add(Proto::Tcp, ip, backend.local_addr().unwrap());
    let received = receive_one(backend);
    let mut client = TcpStream::connect(info.local).expect("connect to the proxy");
    client.write_all(b"hello through the proxy").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = received.join().expect("backend");
    let want = Addresses::Inet {
        transport: Transport::Stream,
        source: client.local_addr().unwrap(),
        destination: info.local,
    };
    assert_eq!((got.version, got.addresses), (version, want));
    assert_eq!(got.payload, b"hello through the proxy", "the stream after the header");
}

#[test]
fn v1_header_gives_the_backend_the_ipv4_client() {
    backend_learns_the_client(Version::V1, "127.0.0.1");
}

#[test]
fn v1_header_gives_the_backend_the_ipv6_client() {
    backend_learns_the_client(Version::V1, "::1");
}

#[test]
fn v2_header_gives_the_backend_the_ipv4_client() {
    backend_learns_the_client(Version::V2, "127.0.0.1");
}

#[test]
fn v2_header_gives_the_backend_the_ipv6_client() {
    backend_learns_the_client(Version::V2, "::1");
}

#[test]
fn without_the_option_the_backend_gets_the_bare_stream() {
    let tp = TestProxy::new(Config::default());
    let backend = common::listen("127.0.0.1");
    let backend_addr = backend.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = backend.accept().unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let addr = tp.forward("127.0.0.1", backend_addr);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"PROXY is not here").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"PROXY is not here");
}

#[test]
fn a_binding_option_overrides_the_proxy_default() {
    let tp = TestProxy::new(Config::default());
    let backend = common::listen("127.0.0.1");
    let backend_addr = backend.local_addr().unwrap();
    let received = receive_one(backend);
    let info = {
        let _enter = tp.rt.enter();
        let binding = Binding {
            proto: Proto::Tcp,
            host: "127.0.0.1:0".parse().unwrap(),
            backend: backend_addr,
        };
        let options =
            BindingOptions { proxy_protocol: Some(Some(Version::V2)), ..BindingOptions::default() };
        tp.proxy.add_with(binding, options).unwrap()
    };
    let client = TcpStream::connect(info.local).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = received.join().unwrap();
    assert_eq!(got.version, Version::V2);
    assert!(
        matches!(got.addresses, Addresses::Inet { source, .. } if source == client.local_addr().unwrap())
    );
}

#[test]
fn a_udp_binding_refuses_the_proxy_protocol() {
    let tp = TestProxy::new(Config::default());
    let _enter = tp.rt.enter();
    let binding = Binding {
        proto: Proto::Udp,
        host: "127.0.0.1:0".parse().unwrap(),
        backend: "127.0.0.1:9".parse().unwrap(),
    };
    let options =
        BindingOptions { proxy_protocol: Some(Some(Version::V2)), ..BindingOptions::default() };
    let err = tp.proxy.add_with(binding, options).unwrap_err();
    assert!(matches!(err, ProxyError::Unsupported(_)));
    assert!(err.to_string().contains("TCP connections only"), "{err}");
}

#[test]
fn forward_flag_sends_the_header_on_its_tcp_bindings() {
    let backend = common::listen("127.0.0.1");
    let port = backend.local_addr().unwrap().port();
    let received = receive_one(backend);
    let spec = format!("127.0.0.1::{port}");
    let args = ["--to", "127.0.0.1", "-p", &spec, "--proxy-protocol", "v1"];
    let proxy = common::process::ProxyProcess::forward(&args, 1);
    let client = TcpStream::connect(proxy.host(0)).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let got = received.join().unwrap();
    let want = Addresses::Inet {
        transport: Transport::Stream,
        source: client.local_addr().unwrap(),
        destination: proxy.host(0),
    };
    assert_eq!((got.version, got.addresses), (Version::V1, want));
}

#[test]
fn docker_proxy_form_refuses_the_header_for_udp_in_words() {
    let out = Command::new(common::process::CPROXY)
        .args(["-proto", "udp", "-host-ip", "127.0.0.1", "-host-port", "0"])
        .args(["-container-ip", "127.0.0.1", "-container-port", "9", "-proxy-protocol", "v2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("-proxy-protocol is for TCP"), "{stderr}");
}

/// HAProxy serving the listening socket it is handed on fd 3 (so it needs no free port and
/// connections wait in the backlog until it is up); killed when dropped.
struct Haproxy {
    child: Child,
    dir: testkit::tempdir::TempDir,
}

impl Haproxy {
    /// HAProxy on `listener` with `accept-proxy`, answering every HTTP request with the
    /// addresses it took from the PROXY header: `SRC SRC_PORT DST DST_PORT`. `None` if haproxy
    /// is not installed.
    fn start(listener: &TcpListener) -> Option<Haproxy> {
        let Some(program) = testkit::spawn::find_program("haproxy") else {
            if std::env::var_os("CI").is_some() {
                panic!("haproxy is not installed, and CI must run the HAProxy tests");
            }
            eprintln!("SKIPPED: haproxy is not installed (apt-get install haproxy)");
            return None;
        };
        let dir = testkit::tempdir::TempDir::new("cproxy-haproxy").unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            "\
global
    maxconn 64

defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend proxied
    bind fd@3 accept-proxy
    http-request return status 200 content-type text/plain lf-string \"%[src] %[src_port] %[dst] %[dst_port]\"
",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let mut cmd = Command::new(program);
        cmd.arg("-f").arg(&cfg).arg("-db").stdout(Stdio::null()).stderr(log);
        let child =
            testkit::spawn::spawn_with_fds(cmd, &[Some(listener.as_fd())]).expect("start haproxy");
        Some(Haproxy { child, dir })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP request through a binding with PROXY protocol `version` on `ip` to HAProxy; checks
/// HAProxy saw the client's and the binding's addresses.
fn haproxy_accepts(version: Version, ip: &str) {
    let listener = common::listen(ip);
    let Some(haproxy) = Haproxy::start(&listener) else { return };
    let tp = TestProxy::new(Config { proxy_protocol: Some(version), ..Config::default() });
    let info = tp.add(Proto::Tcp, ip, listener.local_addr().unwrap());
    drop(listener);
    let mut client = TcpStream::connect(info.local).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut reply = String::new();
    let read = client.read_to_string(&mut reply);
    assert!(
        read.is_ok() && reply.starts_with("HTTP/1.1 200 "),
        "{read:?} {reply:?}\n{}",
        haproxy.log()
    );
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [src, sport, dst, dport] = fields.as_slice() else { panic!("body {body:?}") };
    let seen_src = SocketAddr::new(src.parse::<IpAddr>().unwrap(), sport.parse().unwrap());
    let seen_dst = SocketAddr::new(dst.parse::<IpAddr>().unwrap(), dport.parse().unwrap());
    assert_eq!((seen_src, seen_dst), (client.local_addr().unwrap(), info.local), "{version} {ip}");
}

#[test]
fn haproxy_accepts_v1_over_ipv4() {
    haproxy_accepts(Version::V1, "127.0.0.1");
}

#[test]
fn haproxy_accepts_v1_over_ipv6() {
    haproxy_accepts(Version::V1, "::1");
}

#[test]
fn haproxy_accepts_v2_over_ipv4() {
    haproxy_accepts(Version::V2, "127.0.0.1");
}

#[test]
fn haproxy_accepts_v2_over_ipv6() {
    haproxy_accepts(Version::V2, "::1");
}
