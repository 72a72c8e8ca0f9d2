//! The supervisor: `cproxy daemon` runs host commands as containers in their own namespaces
//! and publishes their ports through the in-process forwarder; `cproxy run/ps/port/stop/start/
//! rm/logs/inspect/exec/network/compose` talk to it over its unix socket.
//!
//! Laid out by layer, each depending only on those below it:
//!
//! - [`client`]: the command lines (clap, Docker's flags) and what each command prints, over
//!   the API; `compose` runs a compose file's services through the same client.
//! - [`http`]: the daemon's HTTP layer (routes, bodies, the one place an engine error becomes a
//!   status code). [`daemon`] is the process around it: socket, runtime, signals.
//! - [`api`]: Docker's Engine API types and stream framing, shared by [`client`] and [`http`].
//! - [`engine`]: containers, networks, links and publishing; knows nothing of HTTP; typed
//!   errors, state as enums.
//! - [`image`]: local images, content-addressed (import, load/save of Docker's and OCI's
//!   archives, tags); running containers from them is the next step.
//! - [`rules`]: Docker's rules as pure functions (filters, templates, formats, link
//!   variables, restart decisions, compose files, DNS messages, signal names); no I/O.
//! - [`os`]: what talks to the kernel for containers: netlink, the shim-forking thread, the
//!   container's init, the mount swap of hosts files.
//!
//! The supervisor depends on the proxy, never the reverse: a container's published ports are
//! `Binding`s of one [`crate::proxy::Proxy`] in the daemon's process, their host ports bound by
//! [`crate::ports::PortAllocator`].

pub mod api;
pub mod client;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod image;
pub mod os;
pub mod rules;

use std::path::PathBuf;

/// Where clients and the daemon meet unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/cproxy/cproxy.sock";
/// Where the daemon keeps its records unless told otherwise.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/cproxy";

/// The socket path in `unix:///PATH` (or plain `PATH`) form.
pub fn socket_path(host: &str) -> Result<PathBuf, String> {
    if let Some(p) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(p));
    }
    if host.contains("://") {
        return Err(format!("unsupported protocol in {host}: only unix:// sockets are served"));
    }
    Ok(PathBuf::from(host))
}
