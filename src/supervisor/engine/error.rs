//! The engine's errors: what went wrong, in Docker's words, and of which kind. Only the HTTP
//! layer turns a kind into a status code ([`crate::supervisor::http`]); the engine knows
//! nothing of HTTP.

use std::fmt;

/// What kind of failure an [`Error`] is; the HTTP layer maps each to Docker's status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: a bad value, conflicting options (Docker's 400).
    InvalidArgument,
    /// It names a container or network that does not exist (404).
    NotFound,
    /// Not allowed whatever the state (a predefined network, one in use: 403).
    Forbidden,
    /// Not possible in the current state: a name in use, a running container (409).
    Conflict,
    /// The system failed (500).
    Internal,
    /// Not something this daemon does (a log driver that cannot be read back: 501).
    NotImplemented,
}

/// An engine failure: its kind and the sentence a client prints after "Error response from
/// daemon: ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Docker's words.
    pub message: String,
}

/// The engine's results.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    /// A bad request.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// Something named that does not exist.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Docker's `No such container: NAME`.
    pub fn no_such_container(name: &str) -> Error {
        Error::not_found(format!("No such container: {name}"))
    }

    /// Not allowed.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Forbidden, message)
    }

    /// Not possible in the current state.
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    /// A failure of the system.
    pub fn internal(e: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Internal, e.to_string())
    }

    /// The same error with `prefix` before its message (`Cannot kill container: NAME: `).
    pub fn context(self, prefix: impl fmt::Display) -> Error {
        Error { message: format!("{prefix}{}", self.message), ..self }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
