//! The `cproxy` binary driven as dockerd drives docker-proxy: flags, the fd-3 status pipe,
//! `-use-listen-fd` on fd 4, SIGINT/SIGTERM, and parent death.

mod common;

/// The program under test.
const CPROXY: &str = env!("CARGO_BIN_EXE_cproxy");

include!("docker_proxy_contract/contract.rs");
