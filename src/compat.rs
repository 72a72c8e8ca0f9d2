//! docker-proxy's process contract, which dockerd relies on when it runs cproxy through
//! `userland-proxy-path`:
//!
//! - Go `flag` syntax: `-host-ip X`, `-host-ip=X` and `--host-ip X` all mean the same
//!   ([`normalize_args`] rewrites single-dash long flags for clap);
//! - a status pipe on fd 3: `0\n` once forwarding works, `1\n<error>` if it cannot ([`StatusPipe`]);
//! - with `-use-listen-fd`, an already bound socket on fd 4 ([`take_listen_fd`]).
//!
//! Inherited descriptors must be claimed before anything else opens a file, or a fresh
//! descriptor could take number 3 or 4 and be mistaken for them.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;

use crate::sys::{self, FdKind};
use std::os::fd::{OwnedFd, RawFd};

/// Fd on which a runtime passes the write end of the status pipe.
pub const STATUS_FD: RawFd = 3;
/// Fd on which a runtime passes a bound socket with `-use-listen-fd`.
pub const LISTEN_FD: RawFd = 4;

/// Long flags of the docker-proxy contract (and cproxy's own) that take no value.
const BOOL_FLAGS: &[&str] = &["use-listen-fd", "version", "help", "no-splice"];

/// Subcommand names: their arguments are left as they are.
pub const SUBCOMMANDS: &[&str] = &["forward", "ctl", "stats", "help"];

/// Rewrites Go-style single-dash long flags (`-host-ip`, `-host-ip=X`) to `--host-ip`, so that
/// one clap definition accepts what Go's `flag` package accepts. Single-letter flags (`-v`,
/// `-h`), values, and everything after `--` or a subcommand name are left alone.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    out.extend(iter.next());
    let mut value_expected = false;
    let mut verbatim = false;
    for (i, arg) in iter.enumerate() {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            value_expected = false;
            continue;
        };
        if verbatim || value_expected {
            value_expected = false;
            out.push(arg);
            continue;
        }
        if s == "--" || (i == 0 && SUBCOMMANDS.contains(&s)) {
            verbatim = true;
            out.push(arg);
            continue;
        }
        let name = match s.strip_prefix("--").or_else(|| s.strip_prefix('-')) {
            Some(rest) if !rest.is_empty() && !rest.starts_with('-') => rest,
            _ => {
                out.push(arg);
                continue;
            }
        };
        let (flag, has_value) = match name.split_once('=') {
            Some((flag, _)) => (flag, true),
            None => (name, false),
        };
        value_expected = !has_value && flag.chars().count() > 1 && !BOOL_FLAGS.contains(&flag);
        if flag.chars().count() > 1 {
            out.push(OsString::from(format!("--{name}")));
        } else {
            out.push(arg);
        }
    }
    out
}

/// True when `args` (as normalized) run docker-proxy mode, not a subcommand.
pub fn is_docker_proxy_mode(args: &[OsString]) -> bool {
    !args.get(1).and_then(|a| a.to_str()).is_some_and(|a| SUBCOMMANDS.contains(&a))
}

/// A command-line error of docker-proxy mode in the words of Go's `flag` package, which
/// docker-proxy's errors are: `invalid value "x" for flag -host-port: parse error`,
/// `flag provided but not defined: -bogus`, `flag needs an argument: -proto`. `None` for
/// errors Go has no words for (clap's then stand).
#[cfg(feature = "cli")]
pub fn go_flag_error(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    // clap names an argument `--host-port <PORT>`; Go names it `-host-port`.
    let flag = |arg: &str| {
        let name = arg.trim_start_matches('-');
        let end = name.find([' ', '=']).unwrap_or(name.len());
        format!("-{}", &name[..end])
    };
    match e.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(ContextKind::InvalidArg)?;
            let value = context(ContextKind::InvalidValue)?;
            if value.is_empty() {
                return Some(format!("flag needs an argument: {}", flag(arg)));
            }
            let reason = std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "parse error".to_string());
            Some(format!("invalid value {value:?} for flag {}: {reason}", flag(arg)))
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg)?;
            Some(format!("flag provided but not defined: {}", flag(arg)))
        }
        _ => None,
    }
}

/// The write end of the runtime's status pipe, if the process was given one.
#[derive(Debug)]
pub struct StatusPipe(Option<File>);

impl StatusPipe {
    /// Claims fd 3 if it is a pipe open for writing; otherwise the process runs standalone and
    /// reports only through stderr and its exit code. Call first thing in `main`.
    pub fn from_fd3() -> StatusPipe {
        let Some(fd) = sys::claim_inherited(STATUS_FD, FdKind::Pipe) else {
            return StatusPipe(None);
        };
        if !sys::is_writable(&fd) {
            std::mem::forget(fd); // Not ours to write to, nor to close.
            return StatusPipe(None);
        }
        StatusPipe(Some(File::from(fd)))
    }

    /// True when a runtime is waiting on the pipe.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the runtime forwarding is up, and closes the pipe.
    pub fn ready(self) {
        if let Some(mut f) = self.0 {
            let _ = f.write_all(b"0\n");
        }
    }

    /// Tells the runtime why forwarding could not start, and closes the pipe.
    pub fn fail(self, error: &str) {
        if let Some(mut f) = self.0 {
            let _ = write!(f, "1\n{error}");
        }
    }
}

/// Claims fd 4, the socket a runtime passes with `-use-listen-fd`.
pub fn take_listen_fd() -> Result<OwnedFd, String> {
    sys::claim_inherited(LISTEN_FD, FdKind::Socket)
        .ok_or_else(|| "-use-listen-fd was given but fd 4 is not an open socket".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("cproxy").chain(args.iter().copied()).map(OsString::from);
        normalize_args(args.collect())
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn go_single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&["-proto", "tcp", "-host-ip=0.0.0.0", "--host-port", "80", "-use-listen-fd"]),
            ["--proto", "tcp", "--host-ip=0.0.0.0", "--host-port", "80", "--use-listen-fd"]
        );
    }

    #[test]
    fn values_that_look_like_flags_are_left_alone() {
        assert_eq!(norm(&["-host-ip", "-foo", "-v"]), ["--host-ip", "-foo", "-v"]);
    }

    #[test]
    fn short_flags_and_subcommands_are_left_alone() {
        assert_eq!(norm(&["-v"]), ["-v"]);
        assert_eq!(norm(&["forward", "-to", "x"]), ["forward", "-to", "x"]);
        assert_eq!(norm(&["--", "-proto"]), ["--", "-proto"]);
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        let once = norm(&["-proto=udp", "-container-ip", "::1", "-version"]);
        let refs: Vec<&str> = once.iter().map(String::as_str).collect();
        assert_eq!(norm(&refs), once);
    }

    /// The argv fuzz target's properties, over its saved corpus: normalizing is idempotent, and
    /// neither parsing nor wording an error in Go's words panics.
    #[test]
    #[cfg(feature = "cli")]
    fn the_argv_fuzz_corpus_still_holds() {
        use clap::Parser;
        use std::os::unix::ffi::OsStringExt;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/argv");
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let args: Vec<OsString> = std::iter::once(OsString::from("cproxy"))
                .chain(data.split(|&b| b == 0).map(|arg| OsString::from_vec(arg.to_vec())))
                .collect();
            let once = normalize_args(args);
            assert_eq!(normalize_args(once.clone()), once);
            if let Err(e) = crate::cli::Cli::try_parse_from(once) {
                let _ = (e.to_string(), go_flag_error(&e));
            }
        }
    }

    #[test]
    fn only_argv_naming_a_subcommand_leaves_docker_proxy_mode() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(is_docker_proxy_mode(&args(&["cproxy", "--host-port", "80"])));
        assert!(is_docker_proxy_mode(&args(&["cproxy"])));
        assert!(!is_docker_proxy_mode(&args(&["cproxy", "forward", "-p", "80"])));
    }
}
