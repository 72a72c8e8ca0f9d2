//! What cproxy's tests, benches, demo and load tool share, so that each exists once: children
//! started as a container runtime starts a proxy (descriptors handed down at 3, 4, …), readers
//! of `/proc`, loopback peers (echo and sink servers), descriptor limits, checksummed streams
//! and temporary directories. Nothing here depends on cproxy itself: the product's tests take
//! this crate as a dev-dependency, and a dependency back would link two copies of cproxy.
//!
//! The peers bind where they are told; the tests and the load tool tell them 127.0.0.0/8 or ::1,
//! or an address inside a network namespace the test made itself ([`netns`]).

pub mod netns;
pub mod pattern;
pub mod peers;
pub mod procfs;
pub mod rlimit;
pub mod spawn;
pub mod tempdir;
