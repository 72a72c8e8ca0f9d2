//! Errors of the forwarder, worded as Docker words them where Docker has words for them.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::Proto;

/// Why a binding could not be served.
#[derive(Debug)]
pub enum ProxyError {
    /// The host address is taken by another socket (of this process or any other). docker-proxy
    /// says so in Go's words: `listen tcp4 127.0.0.1:8083: bind: address already in use`.
    AddrInUse {
        /// The binding's protocol.
        proto: Proto,
        /// The host address asked for.
        addr: SocketAddr,
    },
    /// The host port is held by another binding of the same forwarder: dockerd's port
    /// allocator's `Bind for 127.0.0.1:8083 failed: port is already allocated`.
    PortAllocated {
        /// The binding's protocol.
        proto: Proto,
        /// The host address asked for.
        addr: SocketAddr,
    },
    /// Binding or listening failed for another reason.
    Listen {
        /// The binding's protocol.
        proto: Proto,
        /// The host address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        source: io::Error,
    },
    /// The backend is the binding's own address: every datagram or connection would come
    /// back to the binding and be forwarded again, without end.
    ForwardsToItself {
        /// The binding's protocol.
        proto: Proto,
        /// The address the binding serves.
        local: SocketAddr,
        /// The backend asked for, which is that same address.
        backend: SocketAddr,
    },
    /// A socket passed in (`-use-listen-fd`) is not what was announced.
    BadSocket(String),
    /// A protocol or feature this build does not support.
    Unsupported(String),
    /// The proxy is shutting down: a binding added now would be stopped at birth.
    Stopping,
}

impl ProxyError {
    /// Maps a bind/listen failure to docker-proxy's wording.
    pub(crate) fn listen(proto: Proto, addr: SocketAddr, source: io::Error) -> ProxyError {
        if source.raw_os_error() == Some(libc::EADDRINUSE) {
            ProxyError::AddrInUse { proto, addr }
        } else {
            ProxyError::Listen { proto, addr, source }
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go's `*net.OpError` text: `listen tcp4 127.0.0.1:80: bind: <the kernel's words>`.
        let family = |addr: &SocketAddr| if addr.is_ipv4() { "4" } else { "6" };
        match self {
            ProxyError::AddrInUse { proto, addr } => {
                write!(f, "listen {proto}{} {addr}: bind: address already in use", family(addr))
            }
            ProxyError::PortAllocated { addr, .. } => {
                write!(f, "Bind for {addr} failed: port is already allocated")
            }
            ProxyError::Listen { proto, addr, source } => {
                // Go names the call that failed; the descriptor limits and a missing address
                // family fail socket(2), the rest fail bind(2).
                let call = match source.raw_os_error() {
                    Some(
                        libc::EMFILE | libc::ENFILE | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT,
                    ) => "socket",
                    _ => "bind",
                };
                write!(f, "listen {proto}{} {addr}: {call}: {}", family(addr), os_text(source))
            }
            ProxyError::ForwardsToItself { proto, local, backend } => write!(
                f,
                "refusing to forward {local}/{proto} to {backend}: that is the binding's own \
                 address, so everything it forwards would come back to it without end"
            ),
            ProxyError::BadSocket(msg) | ProxyError::Unsupported(msg) => f.write_str(msg),
            ProxyError::Stopping => f.write_str("cproxy is stopping: no bindings can be added"),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Listen { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The OS's text for an error without Rust's " (os error N)" suffix, as Go prints it.
pub(crate) fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}
