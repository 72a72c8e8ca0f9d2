//! `cproxy-docker-proxy`: cproxy's docker-proxy mode alone, the program to name in dockerd's
//! `userland-proxy-path`. The same forwarder, flags, settings file and shared-forwarder
//! handoff as `cproxy` without a subcommand, in a program that leaves out the supervisor and
//! cproxy's other commands: each of the processes dockerd starts, one per published port,
//! maps and relocates a fraction of what `cproxy` would (BENCHMARKS.md).

use std::process::ExitCode;

use cproxy::cli::DockerProxyCli;
use cproxy::compat::StatusPipe;

fn main() -> ExitCode {
    // First, before anything can open a file and take fd 3.
    let status = StatusPipe::from_fd3();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match cproxy::cli::parse::<DockerProxyCli>(argv, status) {
        Ok((cli, status)) => cproxy::serve::docker_proxy(cli.docker_proxy, status),
        Err(code) => code,
    }
}
