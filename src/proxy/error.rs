//! Errors of the forwarder, worded as Docker words them where Docker has words for them.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::Proto;

/// Why a binding could not be served.
#[derive(Debug)]
pub enum ProxyError {
    /// The host address is taken by another socket.
    PortAllocated { proto: Proto, addr: SocketAddr },
    /// Binding or listening failed for another reason.
    Listen { proto: Proto, addr: SocketAddr, source: io::Error },
    /// A socket passed in (`-use-listen-fd`) is not what was announced.
    BadSocket(String),
    /// A protocol or feature this build does not support.
    Unsupported(String),
}

impl ProxyError {
    /// Maps a bind/listen failure to Docker's wording.
    pub(crate) fn listen(proto: Proto, addr: SocketAddr, source: io::Error) -> ProxyError {
        if source.raw_os_error() == Some(libc::EADDRINUSE) {
            ProxyError::PortAllocated { proto, addr }
        } else {
            ProxyError::Listen { proto, addr, source }
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::PortAllocated { addr, .. } => {
                write!(f, "Bind for {addr} failed: port is already allocated")
            }
            ProxyError::Listen { proto, addr, source } => {
                let family = if addr.is_ipv4() { "4" } else { "6" };
                write!(
                    f,
                    "failed to listen on {addr}: listen {proto}{family} {addr}: {}",
                    os_text(source)
                )
            }
            ProxyError::BadSocket(msg) | ProxyError::Unsupported(msg) => f.write_str(msg),
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
