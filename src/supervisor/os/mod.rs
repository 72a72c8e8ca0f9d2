//! The supervisor's OS layer: the only place that talks to the kernel for containers —
//! netlink (bridges, veth pairs, routes), the process that forks shims into new namespaces,
//! the container's init, the root filesystem it makes ([`rootfs`]) and the confinement it
//! applies ([`confine`], with its seccomp filter from [`seccomp`]).

pub mod archive;
pub mod cgroups;
pub mod confine;
pub mod exec;
pub mod hosts_files;
pub mod init;
pub mod netlink;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod tty;
