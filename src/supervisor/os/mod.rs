//! The supervisor's OS layer: the only place that talks to the kernel for containers —
//! netlink (bridges, veth pairs, routes), the process that forks shims into new namespaces,
//! the container's init, and its seccomp filter.

pub mod hosts_files;
pub mod init;
pub mod netlink;
pub mod process;
pub mod seccomp;
