//! cproxy: a userspace port-forwarding proxy, a drop-in replacement for Docker's `docker-proxy`.
//!
//! - [`proxy`]: the forwarder. A [`proxy::Proxy`] serves many [`proxy::Binding`]s; TCP relays
//!   with `splice(2)`, UDP through a bounded session table.
//! - [`spec`] and [`ports`]: Docker's `-p` syntax and host-port allocation.
//! - [`compat`], `cli`, `serve`: docker-proxy's command-line contract (Go-style flags, the
//!   fd-3 status pipe, `-use-listen-fd`, signals) and the process around the forwarder;
//!   `settings`: the TOML file that sets what dockerd's command line cannot (docs/SETTINGS.md);
//!   `transparent`: the host routing that brings replies back to transparent bindings.
//!
//! The `cli` feature (on by default) holds what the `cproxy` program needs beyond the
//! forwarder: clap's command lines, `serve`, `settings`, `forward` and `supervisor`. Without it
//! (`default-features = false`) the library builds without clap.

#[cfg(feature = "cli")]
pub mod cli;
pub mod compat;
pub mod duration;
pub mod error;
#[cfg(feature = "cli")]
pub mod forward;
#[cfg(feature = "cli")]
pub mod handoff;
#[cfg(feature = "cli")]
pub mod lease;
pub mod metrics;
pub mod ports;
pub mod proxy;
#[cfg(feature = "cli")]
pub mod serve;
#[cfg(feature = "cli")]
pub mod settings;
pub mod signals;
pub mod spec;
#[cfg(feature = "cli")]
pub mod supervisor;
pub mod sys;
#[cfg(feature = "cli")]
pub mod transparent;
