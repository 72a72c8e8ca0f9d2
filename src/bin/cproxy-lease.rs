//! `cproxy-lease`: the few pages a docker-proxy-mode process keeps once the shared forwarder
//! serves its port (see the library's `lease` module). Started by cproxy, not by hand.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    cproxy::lease::main(&args)
}
