//! The application's errors: why `cproxy` (docker-proxy mode or `cproxy forward`) could not
//! start, with the one mapping to an exit code and to what the runtime reads on the fd-3 status
//! pipe ([`AppError::report`]). The library's errors ([`ProxyError`], [`AllocError`],
//! [`SpecError`]) convert into it unchanged, so their words (docker-proxy's and Docker's) are
//! what a runtime and a user see.

use std::fmt;
use std::io;
use std::process::ExitCode;

use crate::compat::StatusPipe;
use crate::ports::AllocError;
use crate::proxy::ProxyError;
use crate::spec::SpecError;

/// Why the process could not start forwarding.
#[derive(Debug)]
pub enum AppError {
    /// A binding could not be served (docker-proxy's `listen tcp4 …: bind: …` words).
    Proxy(ProxyError),
    /// Host ports could not be allocated.
    Alloc(AllocError),
    /// A port spec is not valid (Docker's words).
    Spec(SpecError),
    /// A system call failed: what was being done, and the error.
    Io {
        /// What was being done, as the message starts (`cannot start runtime`).
        context: String,
        /// What the kernel said.
        source: io::Error,
    },
    /// The control socket cannot be made (its path is taken, say).
    Control(String),
    /// The command line asks for something that cannot be done (exit code 2, as a usage error).
    Usage(String),
    /// A command-line error in the words of Go's `flag` package (docker-proxy mode), which
    /// docker-proxy prints followed by a pointer to `--help` (exit code 2).
    GoFlag(String),
    /// docker-proxy's other words for a forwarder that cannot start (exit code 1).
    Failed(String),
    /// The settings file cannot be used: its path, line and reason (exit code 1).
    #[cfg(feature = "cli")]
    Settings(crate::settings::SettingsError),
}

impl AppError {
    /// An [`AppError::Io`] for `context`.
    pub fn io(context: impl Into<String>, source: io::Error) -> AppError {
        AppError::Io { context: context.into(), source }
    }

    /// The exit code: 2 for a command line that cannot work (as Go's `flag` and clap exit),
    /// 1 for everything that failed while starting (as docker-proxy exits).
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Usage(_) | AppError::GoFlag(_) => 2,
            _ => 1,
        }
    }

    /// The one place an error leaves the process: on stderr, on the status pipe (`1\n` and the
    /// error's text, as docker-proxy writes it), and as the exit code.
    pub fn report(&self, status: StatusPipe) -> ExitCode {
        match self {
            AppError::GoFlag(go) => eprintln!("{go}\nRun 'cproxy --help' for usage."),
            e => eprintln!("cproxy: {e}"),
        }
        status.fail(&self.to_string());
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Proxy(e) => e.fmt(f),
            AppError::Alloc(e) => e.fmt(f),
            AppError::Spec(e) => e.fmt(f),
            #[cfg(feature = "cli")]
            AppError::Settings(e) => e.fmt(f),
            AppError::Io { context, source } => write!(f, "{context}: {source}"),
            AppError::Control(s)
            | AppError::Usage(s)
            | AppError::GoFlag(s)
            | AppError::Failed(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Proxy(e) => Some(e),
            AppError::Alloc(e) => Some(e),
            AppError::Spec(e) => Some(e),
            #[cfg(feature = "cli")]
            AppError::Settings(e) => Some(e),
            AppError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ProxyError> for AppError {
    fn from(e: ProxyError) -> AppError {
        AppError::Proxy(e)
    }
}

impl From<AllocError> for AppError {
    fn from(e: AllocError) -> AppError {
        AppError::Alloc(e)
    }
}

impl From<SpecError> for AppError {
    fn from(e: SpecError) -> AppError {
        AppError::Spec(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_start_failures_exit_1() {
        assert_eq!(AppError::Usage("nothing to forward".into()).exit_code(), 2);
        assert_eq!(AppError::GoFlag("flag provided but not defined: -x".into()).exit_code(), 2);
        let in_use = ProxyError::AddrInUse {
            proto: crate::proxy::Proto::Tcp,
            addr: "127.0.0.1:80".parse().unwrap(),
        };
        let e = AppError::from(in_use);
        assert_eq!(e.exit_code(), 1);
        // The library's words, unchanged.
        assert_eq!(e.to_string(), "listen tcp4 127.0.0.1:80: bind: address already in use");
        let io = AppError::io("cannot start runtime", io::Error::other("no"));
        assert_eq!((io.exit_code(), io.to_string().as_str()), (1, "cannot start runtime: no"));
    }
}
