//! Transparent mode (`--source-ip-transparent`): a binding's backend connections and UDP
//! sessions are made from the client's own address and port, so the container sees the real
//! client in `getpeername`/`recvfrom`, with no change to the application.
//!
//! The backend socket gets `IP_TRANSPARENT` (`IPV6_TRANSPARENT`), which lets it bind an
//! address that is not this host's, and is bound to the client's address before it connects.
//! The container's replies are addressed to the client, so the host would route them on to the
//! client's side; they reach this socket only because the host delivers packets that belong to
//! a local transparent socket locally (a mark and a `local` route, set up once per network
//! namespace by whoever embeds the proxy: [`SourceRouting`]).
//!
//! Where it cannot work the binding forwards as it would without it (from the proxy's own
//! address), counts the connection or session (`transparent_fallbacks`) and logs each reason
//! once per binding:
//! - a client on a loopback address (127/8, ::1): such an address cannot be a source on
//!   another link (the kernel drops it as a martian);
//! - a client of another family than the backend (an IPv6 client of an IPv4 container): there
//!   is no address of the client's that the backend's family can carry;
//! - a client on the backend's side of this host (another container on its bridge, or the
//!   container itself through its own published port): this host reaches it from the address
//!   it reaches the backend from, and the backend's replies would go to it straight, past this
//!   host, and be refused;
//! - the host's routing for replies could not be set up ([`SourceRouting::acquire`] failed), or
//!   the kernel refuses the socket (no `CAP_NET_ADMIN`: `EPERM`; the client's address and port
//!   held by a local socket, as a client on this host: `EADDRINUSE`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Stats;

/// What makes the container's replies to a transparent socket come back to this host's socket
/// rather than be routed on to the client. Held while any transparent binding of the proxy is
/// served: acquired when the first starts, released when the last is gone.
pub trait SourceRouting: Send + Sync {
    /// Makes sure replies to transparent sockets are delivered locally; `Err` says why they
    /// cannot be (the bindings then fall back).
    fn acquire(&self) -> Result<(), String>;
    /// No transparent binding is left: undo what `acquire` did, unless another holder still
    /// needs it.
    fn release(&self);
}

/// Why a connection or session of a transparent binding was made from the proxy's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// The client is on a loopback address.
    Loopback,
    /// The client's family is not the backend's.
    Family,
    /// The client is on the backend's side of this host.
    BackendSide,
    /// The host cannot route replies back ([`SourceRouting::acquire`] failed).
    NoRouting,
    /// The kernel refused the transparent socket or its bind.
    Refused,
}

impl Fallback {
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A transparent binding's state: whether the host routes replies back, and which fallbacks
/// it has logged.
#[derive(Debug)]
pub(crate) struct Transparency {
    /// `Err`: why the host cannot route replies back (every connection falls back).
    routing: Result<(), String>,
    /// The [`Fallback`]s logged so far, one bit each.
    logged: AtomicU8,
    /// This host's address towards the backend, found when first needed.
    towards_backend: OnceLock<Option<IpAddr>>,
}

impl Transparency {
    pub(crate) fn new(routing: Result<(), String>) -> Transparency {
        Transparency { routing, logged: AtomicU8::new(0), towards_backend: OnceLock::new() }
    }

    /// The address a backend socket for `client` is to be bound to, or why there is none.
    pub(crate) fn source(
        &self,
        client: SocketAddr,
        backend: SocketAddr,
    ) -> Result<SocketAddr, Fallback> {
        self.source_by(client, backend, local_towards)
    }

    /// [`Transparency::source`], with `towards` telling this host's address towards an address.
    fn source_by(
        &self,
        client: SocketAddr,
        backend: SocketAddr,
        towards: impl Fn(IpAddr) -> Option<IpAddr>,
    ) -> Result<SocketAddr, Fallback> {
        let ip = client.ip().to_canonical();
        if ip.is_loopback() {
            return Err(Fallback::Loopback);
        }
        if ip.is_ipv4() != backend.ip().to_canonical().is_ipv4() {
            return Err(Fallback::Family);
        }
        if self.routing.is_err() {
            return Err(Fallback::NoRouting);
        }
        let backend_side = *self.towards_backend.get_or_init(|| towards(backend.ip()));
        if backend_side.is_some() && towards(ip) == backend_side {
            return Err(Fallback::BackendSide);
        }
        Ok(SocketAddr::new(ip, client.port()))
    }

    /// Counts a connection or session made from the proxy's address, and logs `why` the first
    /// time it happens to this binding.
    pub(crate) fn fell_back(&self, why: Fallback, stats: &Stats, detail: Option<&io::Error>) {
        Stats::add(&stats.transparent_fallbacks, 1);
        if self.logged.fetch_or(why.bit(), Ordering::Relaxed) & why.bit() != 0 {
            return;
        }
        let reason = match why {
            Fallback::Loopback => "the client is on a loopback address, which cannot be a \
                                   source on another link"
                .to_string(),
            Fallback::Family => "the client's address family is not the container's: there \
                                 is no address of the client's to keep"
                .to_string(),
            Fallback::BackendSide => "the client is on the container's side of this host (this \
                                      host reaches both from one address): the container's \
                                      replies would go to it straight"
                .to_string(),
            Fallback::NoRouting => format!(
                "replies cannot be routed back to cproxy: {}",
                self.routing.as_ref().err().map_or("", String::as_str)
            ),
            Fallback::Refused => match detail {
                Some(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    format!("the kernel refused a transparent socket ({e}): it needs CAP_NET_ADMIN")
                }
                Some(e) => format!("the kernel refused a socket from the client's address ({e})"),
                None => "the kernel refused a socket from the client's address".to_string(),
            },
        };
        tracing::warn!(
            "source-ip-transparent: {reason}; forwarding from cproxy's own address instead \
             (logged once per binding and reason, counted in transparent_fallbacks)"
        );
    }
}

/// The address this host sends from towards `ip` (its route's source), if it has a route: a
/// UDP `connect`, which sends nothing.
fn local_towards(ip: IpAddr) -> Option<IpAddr> {
    let target = SocketAddr::new(ip, 9);
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::DGRAM.cloexec(),
        None,
    )
    .ok()?;
    sock.connect(&target.into()).ok()?;
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

/// A non-blocking, close-on-exec socket of `ty` for `backend`'s family, transparent and bound
/// to `source` (an address that need not be this host's). `SO_REUSEADDR` lets one client
/// address and port be the source of connections to several backends (one client of two
/// bindings): the kernel still refuses two connections with the same four addresses.
pub(crate) fn bound_socket(ty: socket2::Type, source: SocketAddr) -> io::Result<socket2::Socket> {
    let protocol =
        if ty == socket2::Type::STREAM { socket2::Protocol::TCP } else { socket2::Protocol::UDP };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(source),
        ty.nonblocking().cloexec(),
        Some(protocol),
    )?;
    if source.is_ipv4() {
        sock.set_ip_transparent_v4(true)?;
    } else {
        sock.set_ip_transparent_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.bind(&source.into())?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// This host's address towards `ip` on a host with a bridge (172.17/16, fd00::/64) and
    /// everything else behind its default route.
    fn routes(ip: IpAddr) -> Option<IpAddr> {
        let bridge = match ip {
            IpAddr::V4(v4) => v4.octets()[..2] == [172, 17],
            IpAddr::V6(v6) => v6.segments()[..4] == [0xfd00, 0, 0, 0],
        };
        let from = match (ip.is_ipv4(), bridge) {
            (true, true) => "172.17.0.1",
            (true, false) => "198.51.100.1",
            (false, true) => "fd00::1",
            (false, false) => "2001:db8:1::1",
        };
        Some(from.parse().unwrap())
    }

    fn source(
        t: &Transparency,
        client: SocketAddr,
        backend: SocketAddr,
    ) -> Result<SocketAddr, Fallback> {
        t.source_by(client, backend, routes)
    }

    #[test]
    fn the_source_is_the_clients_address_and_port() {
        let t = Transparency::new(Ok(()));
        let backend = addr("172.17.0.2:80");
        assert_eq!(source(&t, addr("192.0.2.7:41000"), backend), Ok(addr("192.0.2.7:41000")));
        let backend6 = addr("[fd00::2]:80");
        assert_eq!(source(&t, addr("[2001:db8::7]:5"), backend6), Ok(addr("[2001:db8::7]:5")));
    }

    #[test]
    fn loopback_clients_and_other_families_fall_back() {
        let t = Transparency::new(Ok(()));
        let v4 = addr("172.17.0.2:80");
        assert_eq!(source(&t, addr("127.0.0.1:5"), v4), Err(Fallback::Loopback));
        assert_eq!(source(&t, addr("127.8.9.1:5"), v4), Err(Fallback::Loopback));
        assert_eq!(source(&t, addr("[::ffff:127.0.0.1]:5"), v4), Err(Fallback::Loopback));
        assert_eq!(source(&t, addr("[::1]:5"), addr("[fd00::2]:80")), Err(Fallback::Loopback));
        assert_eq!(source(&t, addr("[2001:db8::7]:5"), v4), Err(Fallback::Family));
        assert_eq!(source(&t, addr("192.0.2.7:5"), addr("[fd00::2]:80")), Err(Fallback::Family));
    }

    #[test]
    fn without_routing_for_replies_every_client_falls_back() {
        let t = Transparency::new(Err("no CAP_NET_ADMIN".into()));
        let got = source(&t, addr("192.0.2.7:41000"), addr("172.17.0.2:80"));
        assert_eq!(got, Err(Fallback::NoRouting));
    }

    #[test]
    fn a_client_on_the_backends_side_of_this_host_falls_back() {
        let t = Transparency::new(Ok(()));
        let another_container = source(&t, addr("172.17.0.3:40000"), addr("172.17.0.2:80"));
        assert_eq!(another_container, Err(Fallback::BackendSide));
        let itself = source(&t, addr("172.17.0.2:40000"), addr("172.17.0.2:80"));
        assert_eq!(itself, Err(Fallback::BackendSide));
        // A binding has one backend: another is another binding.
        let t = Transparency::new(Ok(()));
        let v6 = source(&t, addr("[fd00::3]:40000"), addr("[fd00::2]:80"));
        assert_eq!(v6, Err(Fallback::BackendSide));
    }

    #[test]
    fn each_fallback_is_counted_every_time_and_logged_once() {
        let t = Transparency::new(Ok(()));
        let stats = Stats::default();
        for _ in 0..3 {
            t.fell_back(Fallback::Loopback, &stats, None);
        }
        t.fell_back(Fallback::Family, &stats, None);
        assert_eq!(Stats::get(&stats.transparent_fallbacks), 4);
        let bits = Fallback::Loopback.bit() | Fallback::Family.bit();
        assert_eq!(t.logged.load(Ordering::Relaxed), bits);
    }
}
