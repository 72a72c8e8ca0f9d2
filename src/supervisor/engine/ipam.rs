//! Address management on the bridge's subnet: the gateway is the first host address, every
//! container gets a free one; an address is never handed out twice while leased.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// An IPv4 subnet as address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// Prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// The subnet containing `ip`/`prefix`.
    pub fn containing(ip: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet { network: Ipv4Addr::from(u32::from(ip) & Self::mask(prefix)), prefix }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) }
    }

    /// True if the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        let m = Self::mask(p);
        u32::from(self.network) & m == u32::from(other.network) & m
    }

    /// True if `ip` is one of the subnet's addresses.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Subnet::containing(ip, self.prefix) == *self
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !Self::mask(self.prefix))
    }
}

/// Leases addresses of one subnet.
#[derive(Debug)]
pub struct Ipam {
    subnet: Subnet,
    gateway: Ipv4Addr,
    leased: Mutex<BTreeSet<u32>>,
}

impl Ipam {
    /// An allocator for `subnet` whose gateway (never leased) is `gateway`.
    pub fn new(subnet: Subnet, gateway: Ipv4Addr) -> Ipam {
        Ipam { subnet, gateway, leased: Mutex::new(BTreeSet::new()) }
    }

    /// The subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The gateway address (the bridge's).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The lowest free address, or `None` when the subnet is full.
    pub fn lease(&self) -> Option<Ipv4Addr> {
        let first = u32::from(self.subnet.network) + 1;
        let last = u32::from(self.subnet.broadcast()).checked_sub(1)?;
        let mut leased = self.leased.lock().ok()?;
        let gw = u32::from(self.gateway);
        let free = (first..=last).find(|a| *a != gw && !leased.contains(a))?;
        leased.insert(free);
        Some(Ipv4Addr::from(free))
    }

    /// Leases `ip` itself, if it is a free host address of the subnet other than the gateway.
    pub fn lease_exact(&self, ip: Ipv4Addr) -> Option<Ipv4Addr> {
        let a = u32::from(ip);
        if !self.subnet.contains(ip)
            || ip == self.gateway
            || ip == self.subnet.network
            || ip == self.subnet.broadcast()
        {
            return None;
        }
        self.leased.lock().ok()?.insert(a).then_some(ip)
    }

    /// Gives an address back.
    pub fn release(&self, ip: Ipv4Addr) {
        if let Ok(mut leased) = self.leased.lock() {
            leased.remove(&u32::from(ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_skip_the_gateway_and_are_never_shared() {
        let net = Subnet::containing(Ipv4Addr::new(172, 17, 0, 1), 16);
        let ipam = Ipam::new(net, Ipv4Addr::new(172, 17, 0, 1));
        let a = ipam.lease().unwrap();
        let b = ipam.lease().unwrap();
        assert_eq!((a, b), (Ipv4Addr::new(172, 17, 0, 2), Ipv4Addr::new(172, 17, 0, 3)));
        ipam.release(a);
        assert_eq!(ipam.lease(), Some(a));
        assert_eq!(net.broadcast(), Ipv4Addr::new(172, 17, 255, 255));
    }

    #[test]
    fn a_full_subnet_has_no_lease() {
        let ipam = Ipam::new(
            Subnet::containing(Ipv4Addr::new(10, 0, 0, 0), 30),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        assert_eq!(ipam.lease(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ipam.lease(), None);
    }

    #[test]
    fn overlap() {
        let a = Subnet::containing(Ipv4Addr::new(172, 17, 0, 0), 16);
        assert!(a.overlaps(&Subnet::containing(Ipv4Addr::new(172, 17, 3, 0), 24)));
        assert!(a.overlaps(&Subnet::containing(Ipv4Addr::new(172, 0, 0, 0), 8)));
        assert!(!a.overlaps(&Subnet::containing(Ipv4Addr::new(172, 18, 0, 0), 16)));
    }
}
