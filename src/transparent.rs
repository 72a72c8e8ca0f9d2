//! The host's side of transparent mode (`--source-ip-transparent`): what brings the container's
//! replies, which are addressed to the client, back to cproxy's transparent socket instead of
//! routing them on to the client.
//!
//! Three pieces, per network namespace, for IPv4 and IPv6 alike:
//! - a mark rule in the `mangle` table's `PREROUTING` (iptables): a packet that belongs to a
//!   local transparent socket (`-m socket --transparent`) gets the mark [`MARK`]. It is the
//!   only piece that needs netfilter: nothing else can tell a reply to one of cproxy's sockets
//!   from any other packet of the container's to the same client address (a rule on the
//!   container's address and port alone would also take the replies of connections Docker's
//!   iptables DNAT forwards, and break them);
//! - a policy routing rule, `fwmark MARK/MARK lookup TABLE` at preference [`PRIORITY`]
//!   (rtnetlink);
//! - in that table, `local default dev lo` (rtnetlink): marked packets are delivered here.
//!
//! They are made once per namespace and shared by every cproxy in it: each process that serves
//! a transparent binding holds a shared `flock` on `/run/cproxy/transparent-net<inode>.lock`
//! (the namespace's inode), and makes the pieces idempotently. The last one to go takes the
//! lock exclusively (it cannot while any other holds it), removes them, and then the lock file.
//! A cproxy killed without a word leaves them, and the lock file: the next cproxy to start in
//! the namespace finds the file there and its lock free, and removes both
//! ([`HostRouting::sweep`]). A process that got its lock on a file removed meanwhile (it opened
//! it just before) sees that the path no longer names it, and starts over.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, IpVersion, RouteMessageBuilder};

use crate::proxy::SourceRouting;

/// The packet mark (and mask: one bit) of replies to transparent sockets.
pub const MARK: u32 = 0x1000_0000;
/// The routing table that delivers marked packets locally.
pub const TABLE: u32 = 1717;
/// The preference of the rule that sends marked packets to [`TABLE`].
pub const PRIORITY: u32 = 1717;
/// Where the lock files are.
const LOCK_DIR: &str = "/run/cproxy";

/// The host routing of one network namespace (the process's), as [`SourceRouting`].
pub struct HostRouting {
    path: PathBuf,
    /// The shared lock, while this process holds the routing.
    held: Mutex<Option<Flock<File>>>,
}

impl Default for HostRouting {
    fn default() -> HostRouting {
        HostRouting::new()
    }
}

impl HostRouting {
    /// The routing of this process's network namespace.
    pub fn new() -> HostRouting {
        let netns = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
        let path = PathBuf::from(format!("{LOCK_DIR}/transparent-net{netns}.lock"));
        HostRouting { path, held: Mutex::new(None) }
    }

    /// Removes what a cproxy that was killed left in place, if no other cproxy holds it now.
    /// Costs one `stat` where transparent mode was never used.
    pub fn sweep(&self) {
        let Ok(file) = File::open(&self.path) else { return };
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else { return };
        if names(&self.path, &lock) {
            tracing::info!("source-ip-transparent: removing the routing a stopped cproxy left");
            remove_all(&self.path, &lock);
        }
    }

    /// The lock file, created if need be, with a shared lock on it.
    fn lock_shared(&self) -> io::Result<Flock<File>> {
        std::fs::create_dir_all(LOCK_DIR)?;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)?;
            // Waits only while another cproxy makes or removes the pieces.
            let lock = Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| e)?;
            if names(&self.path, &lock) {
                return Ok(lock);
            }
        }
    }
}

/// True while `path` names the file `file` is (the last holder removes it).
fn names(path: &std::path::Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

impl SourceRouting for HostRouting {
    fn acquire(&self) -> Result<(), String> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_some() {
            return Ok(());
        }
        // The file is there before the pieces: a cproxy killed half-way leaves them to be swept.
        let lock = self.lock_shared().map_err(|e| format!("{}: {e}", self.path.display()))?;
        if let Err(e) = make_all() {
            // Others may hold the lock and need the pieces: only the last takes them away.
            release(&self.path, lock);
            return Err(e);
        }
        *held = Some(lock);
        Ok(())
    }

    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(lock) = held {
            release(&self.path, lock);
        }
    }
}

impl Drop for HostRouting {
    /// A proxy that ends without draining its bindings (a failed start) still lets go.
    fn drop(&mut self) {
        self.release();
    }
}

/// Lets go of a shared lock; removes the pieces if no other cproxy holds it.
fn release(path: &std::path::Path, lock: Flock<File>) {
    // Converting drops the shared lock first: of two holders releasing at once, the second
    // finds none and removes the pieces.
    if lock.relock(FlockArg::LockExclusiveNonblock).is_ok() {
        remove_all(path, &lock);
    }
}

/// Removes every piece (what is not there is no error), then the lock file, while holding its
/// lock exclusively.
fn remove_all(path: &std::path::Path, _lock: &Flock<File>) {
    if let Err(e) = on_netlink_thread(remove_routing) {
        tracing::warn!(error = %e, "source-ip-transparent: removing the routing failed");
    }
    for family in Family::BOTH {
        // As many times as it is there (two cproxy that checked at once may both have added it).
        for _ in 0..8 {
            if !family.iptables(&["-D"]) {
                break;
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

/// Makes every piece that is not there yet.
fn make_all() -> Result<(), String> {
    on_netlink_thread(make_routing).map_err(|e| e.to_string())?;
    for family in Family::BOTH {
        if !family.iptables(&["-C"]) && !family.iptables(&["-A"]) {
            return Err(format!(
                "{} cannot add the mark rule (is {} installed, and is cproxy root?)",
                family.tool(),
                family.tool()
            ));
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    const BOTH: [Family; 2] = [Family::V4, Family::V6];

    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    /// Runs `iptables -w -t mangle ACTION PREROUTING` with the mark rule; true if it succeeded.
    fn iptables(self, action: &[&str]) -> bool {
        let mark = format!("{MARK:#x}/{MARK:#x}");
        let status = Command::new(self.tool())
            .args(["-w", "-t", "mangle"])
            .args(action)
            .args(["PREROUTING", "-m", "socket", "--transparent"])
            .args(["-m", "comment", "--comment", "cproxy source-ip-transparent"])
            .args(["-j", "MARK", "--set-xmark", &mark])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success())
    }
}

/// Runs `f` with a netlink handle on a thread of its own (in this thread's network namespace,
/// which a new thread inherits), so it can be called from inside the proxy's runtime.
fn on_netlink_thread<F, Fut>(f: F) -> io::Result<()>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let (conn, handle, _) = rtnetlink::new_connection()?;
                tokio::spawn(conn);
                f(handle).await
            })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the netlink thread panicked")))
    })
}

fn nl(what: &str, e: rtnetlink::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// True for the netlink answer `code` (`EEXIST`, `ENOENT`, …).
fn is(e: &rtnetlink::Error, code: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -code)
}

/// The `local default dev lo table TABLE` route of `ip`'s family.
fn local_route(ip: IpAddr, lo: u32) -> rtnetlink::packet_route::route::RouteMessage {
    match ip {
        IpAddr::V4(v4) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(v4, 0)
            .kind(RouteType::Local)
            .scope(RouteScope::Host)
            .table_id(TABLE)
            .output_interface(lo)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(v6, 0)
            .kind(RouteType::Local)
            .scope(RouteScope::Host)
            .table_id(TABLE)
            .output_interface(lo)
            .build(),
    }
}

const DEFAULTS: [IpAddr; 2] =
    [IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)];

async fn loopback_index(handle: &Handle) -> io::Result<u32> {
    use futures_util::TryStreamExt;
    let mut links = handle.link().get().match_name("lo".to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        Ok(None) => Err(io::Error::other("no loopback interface")),
        Err(e) => Err(nl("loopback interface", e)),
    }
}

async fn make_routing(handle: Handle) -> io::Result<()> {
    let lo = loopback_index(&handle).await?;
    for ip in DEFAULTS {
        match handle.route().add(local_route(ip, lo)).execute().await {
            Err(e) if is(&e, libc::EEXIST) => {}
            r => r.map_err(|e| nl("local route", e))?,
        }
        let rule = handle.rule().add().fw_mark(MARK).table_id(TABLE).priority(PRIORITY);
        let rule = rule.action(RuleAction::ToTable);
        let added = match ip {
            IpAddr::V4(_) => {
                let mut r = rule.v4();
                r.message_mut().attributes.push(RuleAttribute::FwMask(MARK));
                r.execute().await
            }
            IpAddr::V6(_) => {
                let mut r = rule.v6();
                r.message_mut().attributes.push(RuleAttribute::FwMask(MARK));
                r.execute().await
            }
        };
        match added {
            Err(e) if is(&e, libc::EEXIST) => {}
            r => r.map_err(|e| nl("fwmark rule", e))?,
        }
    }
    Ok(())
}

async fn remove_routing(handle: Handle) -> io::Result<()> {
    use futures_util::TryStreamExt;
    for version in [IpVersion::V4, IpVersion::V6] {
        let mut rules = handle.rule().get(version).execute();
        let mut ours = Vec::new();
        while let Some(rule) = rules.try_next().await.map_err(|e| nl("rule dump", e))? {
            let has = |want: &RuleAttribute| rule.attributes.iter().any(|a| a == want);
            if has(&RuleAttribute::Priority(PRIORITY))
                && has(&RuleAttribute::FwMark(MARK))
                && has(&RuleAttribute::Table(TABLE))
            {
                ours.push(rule);
            }
        }
        for rule in ours {
            match handle.rule().del(rule).execute().await {
                Err(e) if is(&e, libc::ENOENT) => {}
                r => r.map_err(|e| nl("fwmark rule removal", e))?,
            }
        }
    }
    let lo = loopback_index(&handle).await?;
    for ip in DEFAULTS {
        match handle.route().del(local_route(ip, lo)).execute().await {
            Err(e) if is(&e, libc::ESRCH) || is(&e, libc::ENOENT) => {}
            r => r.map_err(|e| nl("local route removal", e))?,
        }
    }
    Ok(())
}
