//! User-defined bridge networks (`network create [--subnet CIDR] [--gateway IP] NAME`,
//! `network ls`, `network rm NAME`, `run --network NAME`) as rules over plain data: which
//! names are taken, which subnet a new network gets, when one may be removed, and Docker's
//! words for each refusal (3f-user-networks.txt). Pure; the daemon's side is in
//! [`crate::supervisor::engine::networks`].
//!
//! Each network is a bridge of its own named `br-` and the first 12 digits of its ID, as
//! Docker names them, with its own subnet: the one given, or the first of Docker's default
//! pools (172.17.0.0/16 … 172.31.0.0/16) that neither a route nor another network uses.

use std::net::Ipv4Addr;

use crate::supervisor::engine::ipam::Subnet;
use crate::supervisor::rules::filters::Filters;

/// The networks every daemon has; they cannot be created or removed.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// One user-defined network (its record under the data root's `networks/`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    /// Its name, unique among networks.
    pub name: String,
    /// Its subnet.
    pub subnet: Subnet,
    /// The bridge's address: the subnet's first host address unless `--gateway` said.
    pub gateway: Ipv4Addr,
    /// Whether the subnet was given (`--subnet`): only then may a container ask for an
    /// address of its own, as with Docker.
    pub user_subnet: bool,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// `--label`s (compose marks its networks with them).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--attachable`: shown only (every network here takes any container).
    #[serde(default)]
    pub attachable: bool,
    /// `-o`: the driver's options as given, shown only.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

impl Network {
    /// The bridge's interface name: `br-` and the ID's first 12 digits.
    pub fn bridge_name(&self) -> String {
        format!("br-{}", self.id.get(..12).unwrap_or(&self.id))
    }
}

/// Why a network command is refused, in Docker's words where it has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkError {
    /// `network create` with a name in use (a predefined one included).
    Exists(String),
    /// `run --network NAME` or `network inspect` with an unknown name.
    NotFound(String),
    /// An unknown network named by inspect, `rm`, connect: dockerd's words (the docker CLI
    /// prints its own, `Error: No such network: X`).
    NoSuchNetwork(String),
    /// `network rm bridge`.
    Predefined(String),
    /// `network rm` while containers are on it.
    ActiveEndpoints {
        /// The network's name.
        name: String,
        /// Its ID.
        id: String,
    },
    /// `-d` other than `bridge`.
    Driver(String),
    /// `--subnet` that is not a CIDR.
    Cidr(String),
    /// `--subnet` that shares addresses with another network or a route.
    Overlaps,
    /// `--gateway` that is not an address of the subnet.
    Gateway(String),
    /// No default pool is free.
    NoPool,
}

impl std::fmt::Display for NetworkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkError::Exists(n) => write!(f, "network with name {n} already exists"),
            NetworkError::NotFound(n) => write!(f, "network {n} not found"),
            NetworkError::NoSuchNetwork(n) => write!(f, "network {n} not found"),
            NetworkError::Predefined(n) => {
                write!(f, "{n} is a pre-defined network and cannot be removed")
            }
            NetworkError::ActiveEndpoints { name, id } => write!(
                f,
                "error while removing network: network {name} id {id} has active endpoints"
            ),
            NetworkError::Driver(d) => write!(f, "plugin \"{d}\" not found"),
            NetworkError::Cidr(s) => write!(f, "invalid CIDR address: {s}"),
            NetworkError::Overlaps => {
                write!(f, "Pool overlaps with other one on this address space")
            }
            NetworkError::Gateway(g) => {
                write!(f, "invalid gateway {g}: it must be a host address of the subnet")
            }
            NetworkError::NoPool => write!(
                f,
                "could not find an available, non-overlapping IPv4 address pool among the \
                 defaults to assign to the network"
            ),
        }
    }
}

impl std::error::Error for NetworkError {}

/// Docker's default address pools, in the order Docker tries them.
fn default_pools() -> impl Iterator<Item = Subnet> {
    (17..=31).map(|b| Subnet::containing(Ipv4Addr::new(172, b, 0, 0), 16))
}

/// Parses `--subnet`: `10.99.0.0/24` (host bits must be zero, as Docker requires), prefix 8–30.
pub fn parse_subnet(s: &str) -> Result<Subnet, NetworkError> {
    let bad = || NetworkError::Cidr(s.to_string());
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !(8..=30).contains(&prefix) {
        return Err(bad());
    }
    let subnet = Subnet::containing(ip, prefix);
    if subnet.network != ip {
        return Err(bad());
    }
    Ok(subnet)
}

/// What `network create` asks for.
#[derive(Clone, Debug, Default)]
pub struct NetworkOptions {
    /// The name.
    pub name: String,
    /// `-d`: empty or `bridge`.
    pub driver: String,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
}

/// Decides a new network: refuses a taken name, another driver, a bad or overlapping subnet, a
/// gateway outside it; picks the first free default pool when no subnet is given. `existing`
/// are the networks there are (the default bridge's subnet among `routed`), `routed` the
/// subnets routes use, `id` the new network's ID.
pub fn plan(
    req: &NetworkOptions,
    existing: &[Network],
    routed: &[Subnet],
    id: String,
) -> Result<Network, NetworkError> {
    if PREDEFINED.contains(&req.name.as_str()) || existing.iter().any(|n| n.name == req.name) {
        return Err(NetworkError::Exists(req.name.clone()));
    }
    if !matches!(req.driver.as_str(), "" | "bridge") {
        return Err(NetworkError::Driver(req.driver.clone()));
    }
    let taken = |s: &Subnet| {
        existing.iter().any(|n| n.subnet.overlaps(s)) || routed.iter().any(|r| r.overlaps(s))
    };
    let (subnet, user_subnet) = match req.subnet.as_deref() {
        Some(s) => {
            let subnet = parse_subnet(s)?;
            if taken(&subnet) {
                return Err(NetworkError::Overlaps);
            }
            (subnet, true)
        }
        None => (default_pools().find(|p| !taken(p)).ok_or(NetworkError::NoPool)?, false),
    };
    let first = Ipv4Addr::from(u32::from(subnet.network) + 1);
    let gateway = match req.gateway.as_deref() {
        None => first,
        Some(g) => {
            let bad = || NetworkError::Gateway(g.to_string());
            let ip: Ipv4Addr = g.parse().map_err(|_| bad())?;
            if Subnet::containing(ip, subnet.prefix) != subnet
                || ip == subnet.network
                || ip == subnet.broadcast()
            {
                return Err(bad());
            }
            ip
        }
    };
    Ok(Network {
        id,
        name: req.name.clone(),
        subnet,
        gateway,
        user_subnet,
        created: String::new(),
        labels: Default::default(),
        attachable: false,
        options: Default::default(),
    })
}

/// Finds a network by name, ID or unambiguous ID prefix, as `--network` and `network rm`
/// name one.
pub fn find<'a>(networks: &'a [Network], key: &str) -> Option<&'a Network> {
    if let Some(n) = networks.iter().find(|n| n.name == key || n.id == key) {
        return Some(n);
    }
    let mut prefixed = networks.iter().filter(|n| !key.is_empty() && n.id.starts_with(key));
    match (prefixed.next(), prefixed.next()) {
        (Some(n), None) => Some(n),
        _ => None,
    }
}

/// Checks `network rm KEY`: the network to remove, unless it is predefined, unknown, or has
/// containers on it (`in_use` says whether a container uses the network of that name).
pub fn check_remove<'a>(
    networks: &'a [Network],
    key: &str,
    in_use: impl Fn(&str) -> bool,
) -> Result<&'a Network, NetworkError> {
    if PREDEFINED.contains(&key) {
        return Err(NetworkError::Predefined(key.to_string()));
    }
    let n = find(networks, key).ok_or_else(|| NetworkError::NoSuchNetwork(key.to_string()))?;
    if in_use(&n.name) {
        return Err(NetworkError::ActiveEndpoints { name: n.name.clone(), id: n.id.clone() });
    }
    Ok(n)
}

/// A network as `GET /networks?filters=` sees it.
#[derive(Clone, Debug, Default)]
pub struct Listed<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its full ID.
    pub id: &'a str,
    /// `bridge`, `host`, `null`.
    pub driver: &'a str,
    /// Its labels.
    pub labels: Option<&'a std::collections::BTreeMap<String, String>>,
    /// `bridge`, `host` or `none`.
    pub predefined: bool,
    /// A container is on it.
    pub in_use: bool,
}

/// The keys `GET /networks` takes (moby's `acceptedNetworkFilters`).
const LIST_KEYS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// Checks `GET /networks`' filters as dockerd 20.10 does, in its words: an unknown key, a
/// `type` other than `custom`/`builtin`, a `dangling` that is not a boolean.
pub fn check_list_filters(f: &Filters) -> Result<(), String> {
    if let Some(key) = f.0.keys().find(|k| !LIST_KEYS.contains(&k.as_str())) {
        return Err(format!("Invalid filter '{key}'"));
    }
    if let Some(t) = f.get("type").find(|t| !["custom", "builtin"].contains(t)) {
        return Err(format!("invalid filter: 'type'='{t}'"));
    }
    if f.get("dangling").any(|d| !["true", "1", "false", "0"].contains(&d)) {
        return Err(
            r#"invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")"#
                .into(),
        );
    }
    Ok(())
}

/// Whether `GET /networks` lists `n` under `f` (moby's `network.FilterNetworks`): `name` and
/// `id` match as Docker's filters do (a value equal, or a regexp found in it), `driver` and
/// `scope` exactly, `label` by `KEY` or `KEY=VALUE`, `type` `builtin` the predefined networks
/// and `custom` the rest, `dangling=true` the user-defined ones no container is on.
pub fn listed(f: &Filters, n: &Listed<'_>) -> bool {
    let labels = n.labels.cloned().unwrap_or_default();
    let kind = if n.predefined { "builtin" } else { "custom" };
    let dangling = match f.get("dangling").next() {
        None => true,
        Some("true" | "1") => !n.predefined && !n.in_use,
        Some(_) => n.predefined || n.in_use,
    };
    f.matches("name", n.name)
        && f.matches("id", n.id)
        && f.exact("driver", n.driver)
        && f.exact("scope", "local")
        && f.match_kv("label", &labels)
        && f.exact("type", kind)
        && dangling
}

/// `network ls`'s rows, header first: the predefined networks (their IDs given) and the
/// user-defined ones, sorted by name as Docker sorts them, IDs cut to 12 digits.
pub fn ls_rows(predefined_ids: &[(&str, &str)], networks: &[Network]) -> Vec<Vec<String>> {
    let mut rows: Vec<(String, String, &str)> = predefined_ids
        .iter()
        .map(|(name, id)| {
            let driver = match *name {
                "none" => "null",
                "host" => "host",
                _ => "bridge",
            };
            (name.to_string(), id.to_string(), driver)
        })
        .chain(networks.iter().map(|n| (n.name.clone(), n.id.clone(), "bridge")))
        .collect();
    rows.sort();
    let mut out = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"].map(String::from).to_vec()];
    for (name, id, driver) in rows {
        let short: String = id.chars().take(12).collect();
        out.push(vec![short, name, driver.to_string(), "local".to_string()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn req(name: &str) -> NetworkOptions {
        NetworkOptions { name: name.into(), ..NetworkOptions::default() }
    }

    fn default_bridge() -> Vec<Subnet> {
        vec![Subnet::containing(Ipv4Addr::new(172, 17, 0, 1), 16)]
    }

    #[test]
    fn a_new_network_takes_the_first_default_pool_no_route_or_network_uses() {
        let a = plan(&req("my-bridge"), &[], &default_bridge(), id('a')).unwrap();
        assert_eq!(a.subnet, Subnet::containing(Ipv4Addr::new(172, 18, 0, 0), 16));
        assert_eq!(a.gateway, Ipv4Addr::new(172, 18, 0, 1));
        assert!(!a.user_subnet);
        assert_eq!(a.bridge_name(), "br-aaaaaaaaaaaa");
        let b = plan(&req("other"), &[a], &default_bridge(), id('b')).unwrap();
        assert_eq!(b.subnet, Subnet::containing(Ipv4Addr::new(172, 19, 0, 0), 16));
    }

    #[test]
    fn a_given_subnet_and_gateway_are_kept_and_checked() {
        let r = NetworkOptions {
            subnet: Some("10.99.0.0/24".into()),
            gateway: Some("10.99.0.254".into()),
            ..req("n")
        };
        let n = plan(&r, &[], &default_bridge(), id('c')).unwrap();
        assert_eq!(n.subnet, Subnet::containing(Ipv4Addr::new(10, 99, 0, 0), 24));
        assert_eq!(n.gateway, Ipv4Addr::new(10, 99, 0, 254));
        assert!(n.user_subnet);
        let outside = NetworkOptions { gateway: Some("10.98.0.1".into()), ..r.clone() };
        assert_eq!(
            plan(&outside, &[], &[], id('c')).unwrap_err().to_string(),
            "invalid gateway 10.98.0.1: it must be a host address of the subnet"
        );
        let overlapping = NetworkOptions { subnet: Some("172.17.5.0/24".into()), ..req("x") };
        assert_eq!(
            plan(&overlapping, &[], &default_bridge(), id('d')).unwrap_err().to_string(),
            "Pool overlaps with other one on this address space"
        );
        for bad in ["bogus", "10.99.0.1/24", "10.0.0.0/31", "10.0.0.0"] {
            let r = NetworkOptions { subnet: Some(bad.into()), ..req("x") };
            assert_eq!(
                plan(&r, &[], &[], id('e')).unwrap_err().to_string(),
                format!("invalid CIDR address: {bad}")
            );
        }
    }

    #[test]
    fn taken_names_and_other_drivers_are_refused_in_dockers_words() {
        let a = plan(&req("my-bridge"), &[], &[], id('a')).unwrap();
        assert_eq!(
            plan(&req("my-bridge"), &[a], &[], id('b')).unwrap_err().to_string(),
            "network with name my-bridge already exists"
        );
        assert_eq!(
            plan(&req("bridge"), &[], &[], id('b')).unwrap_err().to_string(),
            "network with name bridge already exists"
        );
        let r = NetworkOptions { driver: "nosuchdriver".into(), ..req("x") };
        assert_eq!(
            plan(&r, &[], &[], id('b')).unwrap_err().to_string(),
            "plugin \"nosuchdriver\" not found"
        );
    }

    #[test]
    fn removal_refuses_predefined_unknown_and_used_networks() {
        let nets = vec![plan(&req("my-bridge"), &[], &[], id('a')).unwrap()];
        assert_eq!(
            check_remove(&nets, "bridge", |_| false).unwrap_err().to_string(),
            "bridge is a pre-defined network and cannot be removed"
        );
        assert_eq!(
            check_remove(&nets, "nosuchnet", |_| false).unwrap_err().to_string(),
            "network nosuchnet not found"
        );
        assert_eq!(
            check_remove(&nets, "my-bridge", |n| n == "my-bridge").unwrap_err().to_string(),
            format!(
                "error while removing network: network my-bridge id {} has active endpoints",
                id('a')
            )
        );
        assert_eq!(check_remove(&nets, "aaaa", |_| false).unwrap().name, "my-bridge");
    }

    #[test]
    fn ls_lists_every_network_by_name_with_short_ids() {
        let nets = vec![plan(&req("my-bridge"), &[], &[], id('6')).unwrap()];
        let rows = ls_rows(
            &[("bridge", "d91e120f16d5ff"), ("host", "b0a2cf04aa74"), ("none", "1ac92294e529")],
            &nets,
        );
        let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(names, ["NAME", "bridge", "host", "my-bridge", "none"]);
        assert_eq!(rows[3], ["666666666666", "my-bridge", "bridge", "local"]);
        assert_eq!(rows[4][2], "null");
    }
}
