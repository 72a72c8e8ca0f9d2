//! `cproxy-forward`: `cproxy forward` alone, the program to start the shared forwarder of
//! dockerd's ports from (README). The same bindings, control socket, settings and metrics as
//! `cproxy forward`, in a program that leaves out the supervisor and cproxy's other commands,
//! so that the one process that serves every published port maps half the pages
//! (BENCHMARKS.md, "N processes as dockerd runs them").

use std::process::ExitCode;

use cproxy::cli::ForwardCli;
use cproxy::compat::StatusPipe;

fn main() -> ExitCode {
    // First, before anything can open a file and take fd 3.
    let status = StatusPipe::from_fd3();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match cproxy::cli::parse::<ForwardCli>(argv, status) {
        Ok((cli, status)) => {
            cproxy::serve::init_logging(cli.forward.tuning.json_logs(), None);
            cproxy::forward::run(cli.forward, status)
        }
        Err(code) => code,
    }
}
