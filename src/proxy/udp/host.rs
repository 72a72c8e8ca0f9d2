//! The host-side socket of a UDP binding: receives client datagrams together with the local
//! address each was sent to, and sends replies from that same address.
//!
//! On a socket bound to a wildcard address the kernel would otherwise pick a reply's source by
//! routing, which on a host with several addresses can differ from the address the client sent
//! to; clients that check where a reply comes from (DNS resolvers, for one) then drop it.
//! `IP_PKTINFO` / `IPV6_RECVPKTINFO` tell each datagram's destination, and a pktinfo control
//! message on the reply sets its source. docker-proxy does the same.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The largest datagram UDP can carry: 65535 less the UDP header (8) over IPv6, and less the
/// IPv4 header (20) too over IPv4 (65507). Only an IPv6 jumbogram is larger; it is dropped as
/// truncated.
pub(crate) const MAX_DATAGRAM: usize = 65535 - 8;

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

/// Room for the pktinfo control messages of one datagram (an adopted IPv6 socket may have both
/// options on).
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

/// A UDP socket bound on the host, asking the kernel for each datagram's destination address.
pub(crate) struct Host {
    socket: UdpSocket,
    cmsg: CmsgBuf,
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
        Ok(Host { socket, cmsg: CmsgBuf([0; 128]) })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits until a datagram may be waiting.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Receives one datagram into `buf` without waiting; `WouldBlock` when there is none (and
    /// then [`readable`](Self::readable) waits for the next).
    pub(crate) fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<Received> {
        let cmsg = &mut self.cmsg.0;
        let capacity = buf.len();
        self.socket.try_io(Interest::READABLE, || {
            let fd = self.socket.as_fd().as_raw_fd();
            let mut iov = [IoSliceMut::new(buf)];
            let msg = socket::recvmsg::<SockaddrStorage>(
                fd,
                &mut iov,
                Some(&mut cmsg[..]),
                MsgFlags::MSG_TRUNC,
            )?;
            let client = msg.address.as_ref().and_then(socket_addr).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
            })?;
            let mut dest = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::Ipv4PacketInfo(info) => {
                            let ip = Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr));
                            dest = Some(ReplySource::V4(ip));
                        }
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            let addr = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                            dest = Some(ReplySource::V6 { addr, ifindex: info.ipi6_ifindex });
                        }
                        _ => {}
                    }
                }
            }
            // With MSG_TRUNC asked for, `bytes` is the datagram's real length.
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC) || msg.bytes > capacity;
            Ok(Received { len: msg.bytes.min(capacity), client, dest, truncated })
        })
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

/// The IP socket address in `addr`, if it holds one.
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddrV4::from(*v4).into());
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddrV6::from(*v6).into())
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

    /// Receives on `host`, waiting for readiness (a signal, not a sleep).
    async fn recv(host: &mut Host, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            host.readable().await?;
            match host.try_recv(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    #[tokio::test]
    async fn a_datagram_reports_its_sender_and_the_address_it_was_sent_to() -> io::Result<()> {
        let mut host = host("0.0.0.0:0".parse().map_err(io::Error::other)?)?;
        let port = host.local_addr()?.port();
        let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
        client.send_to(b"hi", ("127.0.0.2", port))?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let r = recv(&mut host, &mut buf).await?;
        assert_eq!(&buf[..r.len], b"hi");
        assert_eq!(r.client, client.local_addr()?);
        assert_eq!(r.dest, Some(ReplySource::V4(Ipv4Addr::new(127, 0, 0, 2))));
        assert!(!r.truncated);
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
        let mut buf = [0u8; 64];
        let r = recv(&mut host, &mut buf).await?;
        assert!(r.truncated);
        assert_eq!(r.len, 64);
        Ok(())
    }

    #[tokio::test]
    async fn ipv6_datagrams_report_their_destination_too() -> io::Result<()> {
        let mut host = host("[::1]:0".parse().map_err(io::Error::other)?)?;
        let port = host.local_addr()?.port();
        let client = std::net::UdpSocket::bind("[::1]:0")?;
        client.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        client.send_to(b"six", ("::1", port))?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let r = recv(&mut host, &mut buf).await?;
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
