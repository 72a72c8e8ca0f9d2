//! The host-side socket of a UDP binding: receives client datagrams together with the local
//! address each was sent to, and sends replies from that same address.
//!
//! On a socket bound to a wildcard address the kernel would otherwise pick a reply's source by
//! routing, which on a host with several addresses can differ from the address the client sent
//! to; clients that check where a reply comes from (DNS resolvers, for one) then drop it.
//! `IP_PKTINFO` / `IPV6_RECVPKTINFO` tell each datagram's destination, and a pktinfo control
//! message on the reply sets its source. docker-proxy does the same.

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{self, ControlMessage, MsgFlags, SockaddrStorage, sockopt};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::sys;

/// The largest datagram UDP can carry: 65535 less the UDP header (8) over IPv6, and less the
/// IPv4 header (20) too over IPv4 (65507). Only an IPv6 jumbogram is larger; it is dropped as
/// truncated.
pub(crate) const MAX_DATAGRAM: usize = 65535 - 8;

/// Datagrams [`Host::try_recv_batch`] takes with one system call at most.
pub(crate) const BATCH: usize = sys::RECV_BATCH;

/// Where a reply to a client must come from: the local address the client sent to (with the
/// interface, which an IPv6 link-local address needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplySource {
    /// An IPv4 address; the kernel picks the interface by routing.
    V4(Ipv4Addr),
    /// An IPv6 address (an IPv4 client of a dual-stack socket gets a mapped one) and the
    /// interface the datagram came in on, which a link-local address needs.
    V6 { addr: Ipv6Addr, ifindex: u32 },
}

/// One datagram as received from a client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    /// Bytes of the datagram, at the start of the buffer.
    pub(crate) len: usize,
    /// Who sent it.
    pub(crate) client: SocketAddr,
    /// The local address it was sent to, if the kernel said.
    pub(crate) dest: Option<ReplySource>,
    /// True if it did not fit the buffer; what is there is only its beginning.
    pub(crate) truncated: bool,
}

/// A UDP socket bound on the host, asking the kernel for each datagram's destination address.
pub(crate) struct Host {
    socket: UdpSocket,
}

impl Host {
    /// Takes a bound socket: makes it non-blocking, registers it with the runtime and turns on
    /// pktinfo (already on for a socket from dockerd; setting it again is harmless).
    pub(crate) fn new(socket: socket2::Socket) -> io::Result<Host> {
        socket.set_nonblocking(true)?;
        if socket.local_addr()?.is_ipv6() {
            // On a dual-stack socket this covers IPv4 clients too: their destinations come as
            // mapped addresses, and a reply's mapped source is honoured.
            socket::setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        } else {
            socket::setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)?;
        }
        let socket = UdpSocket::from_std(socket.into())?;
        Ok(Host { socket })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits until a datagram may be waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Receives up to [`BATCH`] datagrams with one system call, without waiting, the `i`th into
    /// the `i`th of the [`BATCH`] equal slots of `slots` (of [`MAX_DATAGRAM`] bytes each, so
    /// that none is cut short); fills `got` (emptied first) with each datagram's slot and what
    /// it is (one without an IP source, which cannot be answered, is left out). Returns how many
    /// it received; `WouldBlock` when there is none.
    ///
    /// Fewer than [`BATCH`] means the socket is drained: the runtime's readiness is then cleared
    /// as of before the call (a datagram that came since raised it again), which saves the
    /// `recvmmsg` that would only have said `EAGAIN`.
    pub(crate) fn try_recv_batch(
        &mut self,
        slots: &mut [u8],
        got: &mut Vec<(usize, Received)>,
    ) -> io::Result<usize> {
        got.clear();
        let slot = slots.len() / BATCH;
        let mut datagrams = [sys::Datagram::default(); BATCH];
        let mut received = 0;
        let r = self.socket.try_io(Interest::READABLE, || {
            received = sys::recv_batch(self.socket.as_fd(), slots, slot, &mut datagrams)?;
            if received < BATCH { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && received > 0 => {}
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        for (i, d) in datagrams[..received].iter().enumerate() {
            let Some(client) = d.source else {
                tracing::debug!("a datagram without an IP source, dropped");
                continue;
            };
            let dest = d.dest.map(|(ip, ifindex)| match ip {
                IpAddr::V4(ip) => ReplySource::V4(ip),
                IpAddr::V6(addr) => ReplySource::V6 { addr, ifindex },
            });
            let len = d.len.min(slot);
            got.push((i, Received { len, client, dest, truncated: d.truncated }));
        }
        Ok(received)
    }

    /// Sends `data` to `client` from `from` (or from whatever the kernel picks, if `None`),
    /// without waiting: a full send buffer is an error, as on a router.
    pub(crate) fn send(
        &self,
        data: &[u8],
        client: SocketAddr,
        from: Option<ReplySource>,
    ) -> io::Result<usize> {
        let fd = self.socket.as_fd().as_raw_fd();
        let iov = [IoSlice::new(data)];
        let to = SockaddrStorage::from(client);
        let v4;
        let v6;
        let cmsg: &[ControlMessage] = match from {
            Some(ReplySource::V4(ip)) => {
                v4 = [libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from(ip).to_be() },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                }];
                &[ControlMessage::Ipv4PacketInfo(&v4[0])]
            }
            Some(ReplySource::V6 { addr, ifindex }) => {
                // The interface only where the address needs it to mean anything; elsewhere
                // routing chooses, as it would for a reply without pktinfo.
                let ifindex = if addr.is_unicast_link_local() { ifindex } else { 0 };
                v6 = [libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: addr.octets() },
                    ipi6_ifindex: ifindex,
                }];
                &[ControlMessage::Ipv6PacketInfo(&v6[0])]
            }
            None => &[],
        };
        Ok(socket::sendmsg(fd, &iov, cmsg, MsgFlags::empty(), Some(&to))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(addr: SocketAddr) -> io::Result<Host> {
        let s = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        s.bind(&addr.into())?;
        Host::new(s)
    }

    /// The datagrams waiting on `host` (at least one: it waits for readiness, a signal, not a
    /// sleep), received into slots of `slot` bytes: each one's bytes and what it is.
    async fn recv(host: &mut Host, slot: usize) -> io::Result<Vec<(Vec<u8>, Received)>> {
        let mut slots = vec![0u8; BATCH * slot];
        let mut got = Vec::new();
        loop {
            host.readable().await?;
            match host.try_recv_batch(&mut slots, &mut got) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
                Ok(_) => break,
            }
        }
        Ok(got.into_iter().map(|(i, r)| (slots[i * slot..][..r.len].to_vec(), r)).collect())
    }

    /// The first datagram waiting on `host`, in a slot of `slot` bytes.
    async fn recv_one(host: &mut Host, slot: usize) -> io::Result<(Vec<u8>, Received)> {
        recv(host, slot).await?.into_iter().next().ok_or_else(|| io::Error::other("none"))
    }

    #[tokio::test]
    async fn a_datagram_reports_its_sender_and_the_address_it_was_sent_to() -> io::Result<()> {
        let mut host = host("0.0.0.0:0".parse().map_err(io::Error::other)?)?;
        let port = host.local_addr()?.port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
        client.send_to(b"hi", ("127.0.0.2", port))?;
        let (data, r) = recv_one(&mut host, MAX_DATAGRAM).await?;
        assert_eq!(data, b"hi");
        assert_eq!(r.client, client.local_addr()?);
        assert_eq!(r.dest, Some(ReplySource::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert!(!r.truncated);
        Ok(())
    }

    #[tokio::test]
    async fn datagrams_waiting_together_come_in_one_call_each_in_its_slot() -> io::Result<()> {
        let mut host = host("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
        let to = host.local_addr()?;
        let (a, b) =
            (std::net::UdpSocket::bind("127.0.0.1:0")?, std::net::UdpSocket::bind("127.0.0.1:0")?);
        // On loopback a datagram is in the receiver's queue when `send_to` returns.
        a.send_to(b"a1", to)?;
        b.send_to(b"b1", to)?;
        a.send_to(&[7u8; 3000], to)?;
        let got = recv(&mut host, MAX_DATAGRAM).await?;
        let seen: Vec<(Vec<u8>, SocketAddr)> =
            got.into_iter().map(|(d, r)| (d, r.client)).collect();
        let expected = vec![
            (b"a1".to_vec(), a.local_addr()?),
            (b"b1".to_vec(), b.local_addr()?),
            (vec![7u8; 3000], a.local_addr()?),
        ];
        assert_eq!(seen, expected);
        let mut slots = vec![0u8; BATCH * 64];
        let again = host.try_recv_batch(&mut slots, &mut Vec::new()).map_err(|e| e.kind());
        assert_eq!(again, Err(io::ErrorKind::WouldBlock), "the queue was left with datagrams");
        Ok(())
    }

    #[tokio::test]
    async fn a_reply_leaves_from_the_address_asked_for() -> io::Result<()> {
        let host = host("0.0.0.0:0".parse().map_err(io::Error::other)?)?;
        let port = host.local_addr()?.port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
        client.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        let from = Some(ReplySource::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(host.send(b"yo", client.local_addr()?, from)?, 2);
        let mut buf = [0u8; 16];
        let (n, source) = client.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], b"yo");
        assert_eq!(source, SocketAddr::from(([127, 0, 0, 2], port)));
        Ok(())
    }

    #[tokio::test]
    async fn a_datagram_longer_than_the_buffer_is_reported_truncated() -> io::Result<()> {
        let mut host = host("127.0.0.1:0".parse().map_err(io::Error::other)?)?;
        let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
        client.send_to(&[1u8; 100], host.local_addr()?)?;
        let (data, r) = recv_one(&mut host, 64).await?;
        assert!(r.truncated);
        assert_eq!((r.len, data), (64, vec![1u8; 64]));
        Ok(())
    }

    #[tokio::test]
    async fn ipv6_datagrams_report_their_destination_too() -> io::Result<()> {
        let mut host = host("[::1]:0".parse().map_err(io::Error::other)?)?;
        let port = host.local_addr()?.port();
        let client = std::net::UdpSocket::bind("[::1]:0")?;
        client.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        client.send_to(b"six", ("::1", port))?;
        let (_, r) = recv_one(&mut host, MAX_DATAGRAM).await?;
        let mut buf = [0u8; 16];
        assert!(
            matches!(r.dest, Some(ReplySource::V6 { addr, .. }) if addr == Ipv6Addr::LOCALHOST),
            "{:?}",
            r.dest
        );
        assert_eq!(host.send(b"back", r.client, r.dest)?, 4);
        let (n, source) = client.recv_from(&mut buf)?;
        assert_eq!((&buf[..n], source), (&b"back"[..], host.local_addr()?));
        Ok(())
    }
}
