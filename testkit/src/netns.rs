//! A real network path for tests: two network namespaces joined by a veth pair.
//!
//! Loopback hides bugs: its 64 KiB segments behave nothing like the MSS-1448 segments that come
//! over a veth from a container. [`VethPath`] makes namespaces `near` (where the proxy and its
//! clients run) and `far` (where the backend runs), joined by a veth pair with the MTU asked
//! for, and deletes both when dropped, even when the test panicked. Sockets keep the namespace
//! they were created in, so a socket made by [`Netns::run`] can be used from any thread, and a
//! process started by [`Netns::command`] lives in the namespace.
//!
//! Addresses come from 10.77.0.0/24 inside the test's own namespaces; nothing is ever routed to
//! the host's network.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with `lo` up, named after the test process and a counter so that
    /// tests running in parallel never share one.
    pub fn new(tag: &str) -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        if NEXT.load(Ordering::Relaxed) == 0 {
            remove_orphans();
        }
        let name =
            format!("cpx-{}-{}-{}", tag, std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip ARGS` inside the namespace and returns its output; panics with ip's message if
    /// it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// PIDs of the processes in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        let out = Command::new("ip").args(["netns", "pids", &self.name]).output();
        let out = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        out.split_whitespace().filter_map(|p| p.parse().ok()).collect()
    }

    /// A command whose process starts inside the namespace (it enters it between fork and
    /// exec, so descriptors handed down to it are kept, unlike with `ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let ns = File::open(self.path()).unwrap_or_else(|e| panic!("open {}: {e}", self.path()));
        let mut cmd = Command::new(program);
        // SAFETY: between fork and exec only setns runs, which is async-signal-safe, on a
        // descriptor the closure owns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `f` on a fresh thread that has entered the namespace; sockets it creates belong to
    /// the namespace for their whole life.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                enter(&path);
                f()
            })
            .join()
            .expect("thread inside the namespace panicked")
        })
    }

    /// A closure that moves the calling thread into the namespace: for a runtime's
    /// `on_thread_start`, so that every worker dials from inside it.
    pub fn enterer(&self) -> impl Fn() + Send + Sync + 'static {
        let path = self.path();
        move || enter(&path)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still running in the namespace was started by this test.
        for pid in self.pids() {
            // SAFETY: kill(2) takes plain numbers and touches no memory of this process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Deleting a namespace also deletes the veth end inside it, and so its peer.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Deletes the namespaces of test processes that were killed before their guards ran (a
/// timeout, SIGKILL): their names end in `-PID-N` with a PID that no longer runs.
fn remove_orphans() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let mut parts = name.rsplit('-');
        let (Some(_), Some(pid)) = (parts.next(), parts.next()) else { continue };
        let dead = pid
            .parse::<u32>()
            .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if name.starts_with("cpx-") && dead {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// Moves the calling thread into the namespace at `path`; panics if it cannot (a test fixture).
fn enter(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns on a descriptor this function owns; it changes only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        panic!("setns {path}: {}", io::Error::last_os_error());
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: `near` (10.77.0.1) for the proxy and its clients,
/// `far` (10.77.0.2) for the backend.
pub struct VethPath {
    /// Where the proxy and the clients run.
    pub near: Netns,
    /// Where the backend runs.
    pub far: Netns,
}

impl VethPath {
    /// The address of `near`'s end of the veth.
    pub const NEAR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    /// The address of `far`'s end of the veth.
    pub const FAR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));

    /// Makes both namespaces and the veth pair between them, with `mtu` on both ends.
    pub fn new(mtu: u32) -> VethPath {
        let near = Netns::new("near");
        let far = Netns::new("far");
        let mtu = mtu.to_string();
        near.ip(&[
            "link", "add", "veth0", "mtu", &mtu, "type", "veth", "peer", "name", "veth1", "mtu",
            &mtu, "netns", &far.name,
        ]);
        near.ip(&["addr", "add", "10.77.0.1/24", "dev", "veth0"]);
        far.ip(&["addr", "add", "10.77.0.2/24", "dev", "veth1"]);
        near.ip(&["link", "set", "veth0", "up"]);
        far.ip(&["link", "set", "veth1", "up"]);
        VethPath { near, far }
    }
}

/// Three hosts, as a client reaches a published port: `client` (10.79.1.2, fd79:1::2) routed
/// through `proxy` (10.79.1.1 and 10.79.2.1, fd79:1::1 and fd79:2::1), which forwards to
/// `container` (10.79.2.2, fd79:2::2) across a second veth pair, as a host to a container on its
/// bridge. Both ends route everything through `proxy`, whose forwarding is on (a container's own
/// traffic to the client side crosses it as it crosses a Docker host). MTU 1500. All three are
/// deleted when dropped, even when the test panicked.
pub struct RoutedHosts {
    /// Where clients run.
    pub client: Netns,
    /// Where cproxy runs.
    pub proxy: Netns,
    /// Where the backend runs.
    pub container: Netns,
}

impl RoutedHosts {
    /// `client`'s IPv4 address.
    pub const CLIENT_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 79, 1, 2));
    /// `proxy`'s IPv4 address on the client side.
    pub const PROXY_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 79, 1, 1));
    /// `proxy`'s IPv4 address on the container side (the container's gateway).
    pub const GATEWAY_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 79, 2, 1));
    /// `container`'s IPv4 address.
    pub const CONTAINER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 79, 2, 2));
    /// `client`'s IPv6 address.
    pub const CLIENT_V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfd79, 1, 0, 0, 0, 0, 0, 2));
    /// `proxy`'s IPv6 address on the client side.
    pub const PROXY_V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfd79, 1, 0, 0, 0, 0, 0, 1));
    /// `proxy`'s IPv6 address on the container side.
    pub const GATEWAY_V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::new(0xfd79, 2, 0, 0, 0, 0, 0, 1));
    /// `container`'s IPv6 address.
    pub const CONTAINER_V6: IpAddr =
        IpAddr::V6(std::net::Ipv6Addr::new(0xfd79, 2, 0, 0, 0, 0, 0, 2));

    /// Makes the three namespaces, both veth pairs, addresses and routes.
    pub fn new() -> RoutedHosts {
        let (client, proxy, container) =
            (Netns::new("client"), Netns::new("proxy"), Netns::new("ctr"));
        for (a, a_if, b, b_if, net) in
            [(&client, "eth0", &proxy, "ethc", 1), (&proxy, "ethk", &container, "eth0", 2)]
        {
            a.ip(&[
                "link", "add", a_if, "mtu", "1500", "type", "veth", "peer", "name", b_if, "mtu",
                "1500", "netns", &b.name,
            ]);
            let (a_end, b_end) = if net == 1 { (2, 1) } else { (1, 2) };
            a.ip(&["addr", "add", &format!("10.79.{net}.{a_end}/24"), "dev", a_if]);
            b.ip(&["addr", "add", &format!("10.79.{net}.{b_end}/24"), "dev", b_if]);
            // No duplicate address detection: the addresses are usable at once.
            a.ip(&["addr", "add", &format!("fd79:{net}::{a_end}/64"), "dev", a_if, "nodad"]);
            b.ip(&["addr", "add", &format!("fd79:{net}::{b_end}/64"), "dev", b_if, "nodad"]);
            a.ip(&["link", "set", a_if, "up"]);
            b.ip(&["link", "set", b_if, "up"]);
        }
        client.ip(&["route", "add", "default", "via", "10.79.1.1"]);
        client.ip(&["-6", "route", "add", "default", "via", "fd79:1::1"]);
        container.ip(&["route", "add", "default", "via", "10.79.2.1"]);
        container.ip(&["-6", "route", "add", "default", "via", "fd79:2::1"]);
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            let ok = proxy.command("sysctl").args(["-qw", key]).status();
            assert!(ok.is_ok_and(|s| s.success()), "sysctl {key} in {}", proxy.name);
        }
        RoutedHosts { client, proxy, container }
    }
}

impl Default for RoutedHosts {
    fn default() -> RoutedHosts {
        RoutedHosts::new()
    }
}
