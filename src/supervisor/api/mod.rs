//! Docker's Engine API types, shared by the daemon's HTTP layer ([`super::http`]), cproxy's own
//! client commands and compose ([`super::client`]).

pub mod stream;
pub mod types;
