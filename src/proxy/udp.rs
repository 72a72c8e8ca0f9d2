//! UDP bindings (placeholder until the session table lands; see issue 2).

use std::net::SocketAddr;

use super::{BindingCtx, Proto, ProxyError};

/// The host-side socket of a UDP binding.
pub(crate) struct HostSocket(tokio::net::UdpSocket);

impl HostSocket {
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub(crate) fn bind(addr: SocketAddr) -> Result<HostSocket, ProxyError> {
    let err = |e| ProxyError::listen(Proto::Udp, addr, e);
    let s = std::net::UdpSocket::bind(addr).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    Ok(HostSocket(tokio::net::UdpSocket::from_std(s).map_err(err)?))
}

pub(crate) fn adopt(sock: socket2::Socket) -> Result<HostSocket, ProxyError> {
    sock.set_nonblocking(true).map_err(|e| ProxyError::BadSocket(e.to_string()))?;
    tokio::net::UdpSocket::from_std(sock.into())
        .map(HostSocket)
        .map_err(|e| ProxyError::BadSocket(e.to_string()))
}

pub(crate) async fn serve(socket: HostSocket, ctx: BindingCtx) {
    let _ = socket;
    ctx.stop.cancelled().await;
}
