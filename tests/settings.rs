//! The settings file, with the built binary run as dockerd runs it (docker-proxy's flags, the
//! status pipe on fd 3): one file turns the PROXY protocol on for one binding and not for
//! others; a broken file, or a `CPROXY_SETTINGS` that names nothing, stops the start with the
//! reason (and the line) on the status pipe and exit code 1.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::process::{ProxyProcess, cproxy};
use cproxy::proxy::proxy_proto::{self, Addresses, ParseError, Version};
use testkit::spawn;
use testkit::tempdir::TempDir;

const PAYLOAD: &[u8] = b"hello through the proxy";

/// A settings file holding `text` in a fresh directory (removed with the returned guard).
fn settings_file(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("cproxy-settings").unwrap();
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// A proxy started as dockerd starts it, with `CPROXY_SETTINGS=path`.
fn proxy_with(path: &Path, backend: SocketAddr, extra: &[&str]) -> ProxyProcess {
    ProxyProcess::docker_proxy_env(backend, extra, &[("CPROXY_SETTINGS", path.as_os_str())])
}

/// Sends [`PAYLOAD`] through the proxy on `port` to the backend listening on `listener`;
/// returns the PROXY header the backend got (`None`: it got the payload alone).
fn header_seen_by_backend(listener: &TcpListener, port: u16) -> Option<Version> {
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect to the proxy");
    client.write_all(PAYLOAD).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (mut conn, _) = listener.accept().expect("accept");
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).expect("read the proxied stream");
    if bytes == PAYLOAD {
        return None;
    }
    let header = match proxy_proto::parse(&bytes) {
        Ok(h) => h,
        Err(e @ (ParseError::Incomplete { .. } | ParseError::Invalid(_))) => {
            panic!("{e}: {:?}", String::from_utf8_lossy(&bytes))
        }
    };
    let Addresses::Inet { source, .. } = header.addresses else { panic!("{header:?}") };
    assert_eq!(source, client.local_addr().unwrap(), "the header names the client");
    assert_eq!(&bytes[header.len..], PAYLOAD, "the stream after the header");
    Some(header.version)
}

#[test]
fn one_file_sends_the_proxy_header_to_the_binding_it_selects_and_not_to_another() {
    let [v2, none, other] = [(); 3].map(|()| common::listen("127.0.0.1"));
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let (_dir, path) = settings_file(&format!(
        r#"# dockerd passes only docker-proxy's flags: the rest is here.
[defaults]
proxy_protocol = "v1"
grace = "1s"

[[binding]]
proto = "tcp"
container_port = {}
proxy_protocol = "v2"

[[binding]]
container_port = {}
proxy_protocol = "none"
"#,
        port(&v2),
        port(&none)
    ));
    for (backend, want) in [(&v2, Some(Version::V2)), (&none, None), (&other, Some(Version::V1))] {
        let proxy = proxy_with(&path, backend.local_addr().unwrap(), &[]);
        assert_eq!(header_seen_by_backend(backend, proxy.port), want, "{}", proxy.log());
    }
}

#[test]
fn a_flag_given_on_the_command_line_wins_over_the_file() {
    let backend = common::listen("127.0.0.1");
    let (_dir, path) = settings_file("[defaults]\nproxy_protocol = \"v2\"\n");
    let proxy = proxy_with(&path, backend.local_addr().unwrap(), &["-proxy-protocol", "v1"]);
    assert_eq!(header_seen_by_backend(&backend, proxy.port), Some(Version::V1));
}

/// Starts cproxy as dockerd does with `CPROXY_SETTINGS=settings` and no log filter in the
/// environment: what it wrote on the status pipe, its exit code (`None` while it forwards:
/// it is then stopped) and its stderr.
fn start(settings: &OsStr) -> (String, Option<i32>, String) {
    let backend = common::refused_addr();
    let port = testkit::peers::free_tcp_port().unwrap();
    let mut cmd = Command::new(cproxy());
    cmd.args(spawn::docker_proxy_args("tcp", Some(port), backend))
        .env("CPROXY_SETTINGS", settings)
        .env_remove("CPROXY_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    spawn::die_with_parent(&mut cmd);
    let (status, write) = spawn::status_pipe().unwrap();
    let mut child = spawn::spawn_with_fds(cmd, &[Some(write.as_fd())]).unwrap();
    drop(write);
    let status = spawn::read_status(status).unwrap();
    let code = if status == "0\n" {
        // SAFETY: kill with the pid of a child this process spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        None
    } else {
        Some(child.wait().unwrap().code().expect("an exit code"))
    };
    let mut stderr = String::new();
    let reader = child.stderr.take().unwrap();
    let reader = thread::spawn(move || {
        let mut reader = reader;
        reader.read_to_string(&mut stderr).map(|_| stderr)
    });
    let exit = child.wait().unwrap();
    assert!(code.is_some() || exit.success(), "a stopped proxy exits 0: {exit:?}");
    (status, code, reader.join().unwrap().unwrap())
}

#[test]
fn a_broken_file_refuses_the_start_with_its_path_and_line_on_the_status_pipe() {
    let (_dir, path) = settings_file(
        "[defaults]\ngrace = \"5s\"\n\n[[binding]]\nhost_port = 8443\nproxy_protocl = \"v2\"\n",
    );
    let (status, code, stderr) = start(path.as_os_str());
    let want = format!(
        "settings file {}, line 6, column 1: unknown field `proxy_protocl`, expected one of",
        path.display()
    );
    assert!(status.starts_with(&format!("1\n{want}")), "{status:?}");
    assert!(!status[2..].contains('\n'), "one line, as dockerd shows it: {status:?}");
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&want), "{stderr}");
    // A value of the wrong kind names its line too.
    let (_dir, path) = settings_file("[defaults]\n\ngrace = 5\n");
    let (status, code, _) = start(path.as_os_str());
    assert!(status.starts_with("1\nsettings file ") && status.contains(", line 3,"), "{status:?}");
    assert_eq!(code, Some(1));
}

#[test]
fn cproxy_settings_naming_no_file_is_an_error_not_the_defaults() {
    let dir = TempDir::new("cproxy-settings").unwrap();
    let missing = dir.path().join("nowhere.toml");
    let (status, code, _) = start(missing.as_os_str());
    assert_eq!(
        status,
        format!(
            "1\nsettings file {}: cannot read (named by CPROXY_SETTINGS): No such file or \
             directory",
            missing.display()
        )
    );
    assert_eq!(code, Some(1));
    let (status, code, _) = start(OsStr::new(""));
    assert!(status.starts_with("1\nsettings file: CPROXY_SETTINGS is set but empty"), "{status:?}");
    assert_eq!(code, Some(1));
}

#[test]
fn the_file_sets_the_log_format_and_level() {
    let (_dir, path) = settings_file("[defaults]\nlog_format = \"json\"\nlog_level = \"info\"\n");
    let (status, code, stderr) = start(path.as_os_str());
    assert_eq!((status.as_str(), code), ("0\n", None), "{stderr}");
    let forwarding = stderr.lines().find(|l| l.contains("\"forwarding\"")).expect(&stderr);
    assert!(forwarding.starts_with('{') && forwarding.contains("\"level\":\"INFO\""), "{stderr}");
}
