//! The `cproxy` binary: claims inherited descriptors, parses the command line, dispatches.

use std::process::ExitCode;

use clap::Parser;
use cproxy::cli::{Cli, Command};
use cproxy::compat::{self, StatusPipe};

fn main() -> ExitCode {
    // First, before anything can open a file and take fd 3.
    let status = StatusPipe::from_fd3();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Container commands (daemon, run, ps, …) have docker's flags, not docker-proxy's.
    if let Some(code) = cproxy::supervisor::cli::dispatch(&argv) {
        return code;
    }
    let args = compat::normalize_args(argv);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                let text = e.to_string();
                status.fail(text.lines().next().unwrap_or("usage error"));
            }
            e.exit();
        }
    };
    cproxy::serve::init_logging();
    match cli.command {
        None => cproxy::serve::docker_proxy(cli.docker_proxy, status),
        Some(Command::Forward(args)) => cproxy::forward::run(args, status),
        Some(Command::Ctl(args)) => cproxy::forward::ctl(&args.control, &args.command),
    }
}
