//! Fuzzes the command line: the input is split on NUL bytes into arguments (not necessarily
//! UTF-8), normalized as `main` does and parsed by `cproxy`'s and `cproxy-forward`'s parsers.
//! Nothing may panic, and normalizing is idempotent.

#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use cproxy::cli::{Cli, ForwardCli};
use cproxy::compat::normalize_args;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = std::iter::once(OsString::from("cproxy"))
        .chain(data.split(|&b| b == 0).map(|arg| OsString::from_vec(arg.to_vec())))
        .collect();
    let once = normalize_args(args);
    let twice = normalize_args(once.clone());
    assert_eq!(twice, once, "normalizing twice differs from once");
    if let Err(e) = ForwardCli::try_parse_from(once.clone()) {
        let _ = e.to_string();
    }
    if let Err(e) = Cli::try_parse_from(once) {
        let _ = e.to_string();
    }
});
