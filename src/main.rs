//! The `cproxy` binary: claims inherited descriptors, parses the command line, dispatches.

use std::process::ExitCode;

use cproxy::cli::{Cli, Command};
use cproxy::compat::StatusPipe;

fn main() -> ExitCode {
    // First, before anything can open a file and take fd 3.
    let status = StatusPipe::from_fd3();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Container commands (daemon, run, ps, …) have docker's flags, not docker-proxy's.
    if let Some(code) = cproxy::supervisor::client::cli::dispatch(&argv) {
        return code;
    }
    let (cli, status) = match cproxy::cli::parse::<Cli>(argv, status) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    // docker-proxy mode starts its logging once it has read the settings file.
    match &cli.command {
        None => {}
        Some(Command::Forward(args)) => cproxy::serve::init_logging(args.tuning.json_logs(), None),
        Some(_) => cproxy::serve::init_logging(false, None),
    }
    match cli.command {
        None => cproxy::serve::docker_proxy(cli.docker_proxy, status),
        Some(Command::Forward(args)) => cproxy::forward::run(args, status),
        Some(Command::Ctl(args)) => cproxy::forward::ctl(&args.control, &args.command)
            .map_or_else(|e| e.report(status), |()| ExitCode::SUCCESS),
        Some(Command::Stats(args)) => cproxy::forward::stats(&args.control, &args.format)
            .map_or_else(|e| e.report(status), |()| ExitCode::SUCCESS),
    }
}
