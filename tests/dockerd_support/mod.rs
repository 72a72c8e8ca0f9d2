//! Real dockerd (Debian's 20.10) for the tests that run cproxy as its `userland-proxy-path`:
//! started in a namespace the test makes, with the host's cgroup hierarchies mounted again
//! there and `--iptables=false` unless asked (so that every published port goes through the
//! proxy); its containers removed and itself stopped on drop. A test crate using it declares
//! `mod supervisor_support;` too.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::supervisor_support::{self, BIN, Netns, eventually, remount_cgroups_script};

/// Debian's dockerd.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// The cproxy dockerd runs as its userland proxy: [`BIN`], or the build `CPROXY_UNDER_TEST`
/// names (a release build, for its memory figures; an older commit's, to see a test fail).
pub fn proxy_bin() -> String {
    std::env::var("CPROXY_UNDER_TEST").unwrap_or_else(|_| BIN.into())
}

/// dockerd in `ns`, stopped (its containers removed first) on drop.
pub struct Dockerd<'a> {
    child: Child,
    socket: PathBuf,
    ns: &'a Netns,
}

impl<'a> Dockerd<'a> {
    /// Starts dockerd in `ns` with cproxy as its userland proxy and `env` in its environment
    /// (which it passes to the proxies), and waits until it answers.
    pub fn start(ns: &'a Netns, iptables: bool, env: &[(&str, &OsStr)]) -> Dockerd<'a> {
        let socket = ns.dir.join("docker.sock");
        let log = std::fs::File::create(ns.dir.join("dockerd.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "sh", "-c", &remount_cgroups_script(), DOCKERD])
            .arg("--data-root")
            .arg(ns.dir.join("data"))
            .arg("--exec-root")
            .arg(ns.dir.join("exec"))
            .arg("--pidfile")
            .arg(ns.dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!("--iptables={iptables}"))
            .args(["--ip6tables=false", "--dns", "127.0.0.1"])
            .args(["--userland-proxy=true", "--userland-proxy-path", &proxy_bin()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        let d = Dockerd { child, socket, ns };
        eventually(60, || d.docker(&["version"]).status.success().then_some(()));
        d
    }

    /// dockerd's PID (`ip netns exec` and the shell exec it): the proxies' parent.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Docker's CLI against this dockerd.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(supervisor_support::docker_bin())
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker")
    }

    /// dockerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.ns.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// Docker's CLI, which must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\ndockerd's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd<'_> {
    fn drop(&mut self) {
        // Containers first (their shims are not in this namespace's process list), then
        // dockerd by SIGTERM, and whatever is left in the namespace with it.
        let ids = String::from_utf8_lossy(&self.docker(&["ps", "-aq"]).stdout).into_owned();
        for id in ids.split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..300 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `bytes` to `target` and half-closes: the client's own address and what came back.
pub fn exchange(target: SocketAddr, bytes: &[u8]) -> (SocketAddr, String) {
    try_exchange(target, bytes).expect("an exchange through the port")
}

/// [`exchange`], or its error: a proxy whose container is not listening yet resets the
/// client, on loopback before its `connect` has returned.
pub fn try_exchange(target: SocketAddr, bytes: &[u8]) -> std::io::Result<(SocketAddr, String)> {
    let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.write_all(bytes)?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    Ok((conn.local_addr()?, answer))
}

/// What a container printed once it holds `needle`.
pub fn logs_with(d: &Dockerd, container: &str, needle: &str) -> String {
    eventually(10, || {
        let out = d.docker(&["logs", container]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.contains(needle).then_some(text)
    })
}

/// Whether dockerd is here; without it, a failure in CI.
pub fn have_dockerd() -> bool {
    if Path::new(DOCKERD).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI needs dockerd (apt-get install docker.io)"
    );
    eprintln!("no {DOCKERD}: skipped (apt-get install docker.io)");
    false
}
