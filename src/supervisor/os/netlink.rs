//! Container networking over rtnetlink (no `ip` command): the bridge (`cproxy0`), a veth pair
//! per container with `eth0` inside, addresses from [`crate::supervisor::engine::ipam`], the default route, `lo` up.
//!
//! Work inside a container's network namespace runs on a dedicated OS thread that `setns`es
//! into it and opens its own netlink socket there ([`in_netns`]); `setns` is per thread, so it
//! never happens on a tokio worker.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteProtocol};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::{Handle, IpVersion, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::supervisor::engine::ipam::{Ipam, Subnet};

/// The bridge's default name.
pub const BRIDGE: &str = "cproxy0";

/// Prefix of the host-side veth names, so leftovers of a killed daemon can be found.
pub const VETH_PREFIX: &str = "cpveth";

/// A netlink failure as a readable error.
fn nl(what: &str, e: rtnetlink::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Opens a netlink connection in the calling thread's network namespace; the connection is
/// driven by a task on the current runtime.
pub fn connect() -> io::Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The daemon's bridge and its address pool.
#[derive(Debug)]
pub struct Bridge {
    /// The bridge's interface index.
    pub index: u32,
    /// Addresses of its subnet.
    pub ipam: Ipam,
}

/// Docker's default address pools, in the order Docker tries them.
fn default_pools() -> impl Iterator<Item = Subnet> {
    (17..=31).map(|b| Subnet::containing(Ipv4Addr::new(172, b, 0, 0), 16))
}

/// Index of the link named `name`, if it exists.
pub async fn link_index(handle: &Handle, name: &str) -> io::Result<Option<u32>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e))
            if e.code.is_some_and(|c| c.get() == -(nix::errno::Errno::ENODEV as i32)) =>
        {
            Ok(None)
        }
        Err(e) => Err(nl("link lookup", e)),
    }
}

/// Deletes the link named `name` if it exists.
pub async fn delete_link(handle: &Handle, name: &str) -> io::Result<()> {
    if let Some(index) = link_index(handle, name).await? {
        match handle.link().del(index).execute().await {
            Ok(()) => {}
            Err(rtnetlink::Error::NetlinkError(e))
                if e.code.is_some_and(|c| c.get() == -(nix::errno::Errno::ENODEV as i32)) => {}
            Err(e) => return Err(nl(&format!("delete {name}"), e)),
        }
    }
    Ok(())
}

/// Names of every link whose name starts with `prefix`.
pub async fn links_with_prefix(handle: &Handle, prefix: &str) -> io::Result<Vec<String>> {
    use rtnetlink::packet_route::link::LinkAttribute;
    let mut links = handle.link().get().execute();
    let mut names = Vec::new();
    while let Some(link) = links.try_next().await.map_err(|e| nl("link dump", e))? {
        for attr in link.attributes {
            if let LinkAttribute::IfName(name) = attr
                && name.starts_with(prefix)
            {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// The IPv4 destinations of every route in this namespace (the default route left out).
pub async fn routed_subnets(handle: &Handle) -> io::Result<Vec<Subnet>> {
    let mut routes = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
    let mut subnets = Vec::new();
    while let Some(route) = routes.try_next().await.map_err(|e| nl("route dump", e))? {
        let prefix = route.header.destination_prefix_length;
        for attr in &route.attributes {
            if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = attr
                && prefix > 0
            {
                subnets.push(Subnet::containing(*ip, prefix));
            }
        }
    }
    Ok(subnets)
}

/// Creates the bridge (replacing one a dead daemon left) with the gateway address of `bip`
/// (`172.18.0.1/16` style), or of the first default pool no route uses.
pub async fn setup_bridge(handle: &Handle, bip: Option<(Ipv4Addr, u8)>) -> io::Result<Bridge> {
    delete_link(handle, BRIDGE).await?;
    let (gateway, prefix) = match bip {
        Some(b) => b,
        None => {
            let used = routed_subnets(handle).await?;
            let pool = default_pools().find(|p| !used.iter().any(|u| u.overlaps(p))).ok_or_else(
                || io::Error::other("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"),
            )?;
            (Ipv4Addr::from(u32::from(pool.network) + 1), pool.prefix)
        }
    };
    create_bridge(handle, BRIDGE, gateway, prefix).await
}

/// Creates bridge `name` with address `gateway`/`prefix`, up; its pool is that subnet. A
/// bridge of that name already there (a killed daemon's) is replaced.
pub async fn create_bridge(
    handle: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
) -> io::Result<Bridge> {
    delete_link(handle, name).await?;
    handle
        .link()
        .add(LinkBridge::new(name).build())
        .execute()
        .await
        .map_err(|e| nl("create bridge", e))?;
    let index = link_index(handle, name)
        .await?
        .ok_or_else(|| io::Error::other("the bridge vanished after it was created"))?;
    let result = async {
        handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
            .map_err(|e| nl("bridge address", e))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl("bridge up", e))
    }
    .await;
    if let Err(e) = result {
        let _ = delete_link(handle, name).await;
        return Err(e);
    }
    let subnet = Subnet::containing(gateway, prefix);
    tracing::info!(bridge = name, %gateway, prefix, "bridge up");
    Ok(Bridge { index, ipam: Ipam::new(subnet, gateway) })
}

/// The namespace's forwarding switches (`docker info`): a file that cannot be read (no
/// br_netfilter) is off.
pub fn net_sysctls() -> crate::supervisor::rules::resources::NetSysctls {
    let on = |p: &str| std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "1");
    crate::supervisor::rules::resources::NetSysctls {
        ipv4_forwarding: on("/proc/sys/net/ipv4/ip_forward"),
        bridge_nf_iptables: on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        bridge_nf_ip6tables: on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
    }
}

/// Turns IPv4 forwarding off for packets that arrive on interface `name` (in the daemon's
/// namespace), so a user-defined network's containers reach no other network through the
/// daemon's routing, whatever `net.ipv4.ip_forward` says.
pub fn no_forwarding_from(name: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/forwarding"), "0")
}

/// Preference of the policy-routing rules that keep the default bridge off user-defined
/// networks: after the local table's rule (0), so the daemon's own addresses on every bridge
/// stay reachable as a Docker host's are, and before the main table's (32766).
pub const ISOLATION_PREF: u32 = 1000;

/// Drops what arrives on the default bridge for `subnet` (a user-defined network's), even
/// where the daemon's namespace forwards (`ip_forward=1`): a rule `iif cproxy0 to SUBNET
/// blackhole`, which Docker does with its `DOCKER-ISOLATION` iptables chains. A user network's
/// own bridge needs none: forwarding is off for what arrives on it ([`no_forwarding_from`]).
/// Adding a rule that is already there (a killed daemon's) is not an error.
pub async fn isolate_from_default_bridge(handle: &Handle, subnet: Subnet) -> io::Result<()> {
    let mut add = handle
        .rule()
        .add()
        .v4()
        .input_interface(BRIDGE)
        .destination_prefix(subnet.network, subnet.prefix)
        .action(RuleAction::Blackhole)
        .priority(ISOLATION_PREF);
    // A blackhole rule looks up no table (what `ip rule add … blackhole` sends).
    add.message_mut().header.table = 0;
    match add.execute().await {
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
        r => r.map_err(|e| nl("isolation rule", e)),
    }
}

/// Removes the isolation rules of [`isolate_from_default_bridge`]: `subnet`'s, or all of them
/// (the daemon's start). Only rules of exactly that shape are touched (the preference, `iif
/// cproxy0`, blackhole), never another's.
pub async fn remove_isolation(handle: &Handle, subnet: Option<Subnet>) -> io::Result<()> {
    let mut rules = handle.rule().get(IpVersion::V4).execute();
    let mut ours = Vec::new();
    while let Some(rule) = rules.try_next().await.map_err(|e| nl("rule dump", e))? {
        let pref = rule
            .attributes
            .iter()
            .any(|a| matches!(a, RuleAttribute::Priority(p) if *p == ISOLATION_PREF));
        let to = rule.attributes.iter().find_map(|a| match a {
            RuleAttribute::Destination(IpAddr::V4(ip)) => {
                Some(Subnet::containing(*ip, rule.header.dst_len))
            }
            _ => None,
        });
        let from_bridge =
            rule.attributes.iter().any(|a| matches!(a, RuleAttribute::Iifname(n) if n == BRIDGE));
        if pref
            && from_bridge
            && rule.header.action == RuleAction::Blackhole
            && subnet.is_none_or(|s| to == Some(s))
        {
            ours.push(rule);
        }
    }
    for rule in ours {
        match handle.rule().del(rule).execute().await {
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENOENT => {}
            r => r.map_err(|e| nl("isolation rule removal", e))?,
        }
    }
    Ok(())
}

/// The host-side veth name of a container's `eth0`.
pub fn veth_name(id: &str) -> String {
    slot_veth_name(id, 0)
}

/// The host-side veth name of a container's `eth<slot>` (`eth0`'s has no suffix).
pub fn slot_veth_name(id: &str, slot: usize) -> String {
    let short = id.get(..7).unwrap_or(id);
    if slot == 0 { format!("{VETH_PREFIX}{short}") } else { format!("{VETH_PREFIX}{short}{slot}") }
}

/// Docker's MAC for an address: 02:42 then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Connects the container whose init has PID `pid` to the bridge at `ip`: a veth pair, the
/// host end on the bridge, the other end moved into the container and configured there as
/// `eth<slot>`, `eth0` with the default route via the gateway. Undoes what it did if a step
/// fails.
pub async fn attach(
    handle: &Handle,
    bridge: &Bridge,
    id: &str,
    pid: u32,
    ip: Ipv4Addr,
    slot: usize,
) -> io::Result<()> {
    let host = slot_veth_name(id, slot);
    let peer = format!("cptmp{}{slot}", id.get(..7).unwrap_or(id));
    handle
        .link()
        .add(LinkVeth::new(&host, &peer).build())
        .execute()
        .await
        .map_err(|e| nl("create veth pair", e))?;
    let result = async {
        let host_index =
            link_index(handle, &host).await?.ok_or_else(|| io::Error::other("veth vanished"))?;
        let peer_index =
            link_index(handle, &peer).await?.ok_or_else(|| io::Error::other("veth vanished"))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(host_index).controller(bridge.index).up().build())
            .execute()
            .await
            .map_err(|e| nl("veth onto bridge", e))?;
        let netns = File::open(format!("/proc/{pid}/ns/net"))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(peer_index).setns_by_fd(netns.as_raw_fd()).build())
            .execute()
            .await
            .map_err(|e| nl("veth into the container", e))?;
        let subnet = bridge.ipam.subnet();
        let gateway = bridge.ipam.gateway();
        in_netns(pid, move |h| async move {
            configure_inside(&h, &peer, Some((ip, subnet.prefix, gateway, slot))).await
        })
        .await
    }
    .await;
    if result.is_err() {
        let _ = delete_link(handle, &host).await;
    }
    result
}

/// Brings `lo` up in the container whose init has PID `pid` (`--network none`).
pub async fn loopback_only(pid: u32) -> io::Result<()> {
    in_netns(pid, |h| async move { configure_inside(&h, "", None).await }).await
}

/// Inside the container: `lo` up and, given an address, the veth end renamed `eth<slot>`, its
/// MAC and address set, up, and (`eth0`) the default route.
async fn configure_inside(
    h: &Handle,
    peer: &str,
    addr: Option<(Ipv4Addr, u8, Ipv4Addr, usize)>,
) -> io::Result<()> {
    lo_up(h).await?;
    let Some((ip, prefix, gateway, slot)) = addr else {
        return Ok(());
    };
    let index = link_index(h, peer).await?.ok_or_else(|| io::Error::other("veth not moved"))?;
    h.link()
        .set(
            LinkUnspec::new_with_index(index)
                .name(format!("eth{slot}"))
                .address(mac_for(ip).to_vec())
                .build(),
        )
        .execute()
        .await
        .map_err(|e| nl("rename eth0", e))?;
    h.address()
        .add(index, IpAddr::V4(ip), prefix)
        .execute()
        .await
        .map_err(|e| nl("eth0 address", e))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl("eth0 up", e))?;
    if slot > 0 {
        return Ok(());
    }
    h.route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                // "boot", as Docker's netlink library adds it (`ip route` shows no proto).
                .protocol(RouteProtocol::Boot)
                .gateway(gateway)
                .output_interface(index)
                .build(),
        )
        .execute()
        .await
        .map_err(|e| nl("default route", e))
}

/// Brings `lo` up in the namespace `h` works in.
pub async fn lo_up(h: &Handle) -> io::Result<()> {
    let lo = link_index(h, "lo").await?.ok_or_else(|| io::Error::other("no lo"))?;
    h.link()
        .set(LinkUnspec::new_with_index(lo).up().build())
        .execute()
        .await
        .map_err(|e| nl("lo up", e))
}

/// Runs `f` with a netlink handle opened inside the network namespace of process `pid`, on a
/// dedicated OS thread with its own runtime; the calling task waits without blocking a worker.
/// What `f` returns comes back: sockets it made stay in that namespace for their whole life.
pub async fn in_netns<F, Fut, T>(pid: u32, f: F) -> io::Result<T>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<T>>,
    T: Send + 'static,
{
    let netns = File::open(format!("/proc/{pid}/ns/net"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(format!("netns-{pid}")).spawn(move || {
        let run = || -> io::Result<T> {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let handle = connect()?;
                f(handle).await
            })
        };
        let _ = tx.send(run());
    })?;
    rx.await.map_err(|_| io::Error::other("the namespace thread died"))?
}
