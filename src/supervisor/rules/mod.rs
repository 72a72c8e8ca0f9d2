//! Docker's rules as pure functions over plain data, with no I/O: what the engine and the
//! client decide by, each unit-tested and fuzzed apart from sockets, namespaces and files.

pub mod archive;
pub mod compose;
pub mod confine;
pub mod detach;
pub mod dns;
pub mod env;
pub mod exit_codes;
pub mod filters;
pub mod format;
pub mod hosts;
pub mod links;
pub mod logging;
pub mod mounts;
pub mod names;
pub mod networks;
pub mod ps_format;
pub mod resources;
pub mod restart;
pub mod runtime;
pub mod signal;
pub mod template;
pub mod timestamps;
pub mod user;
