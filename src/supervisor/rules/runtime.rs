//! The runtimes a container can be made with: Docker's `--runtime` (`HostConfig.Runtime`) and
//! what `GET /info` lists as `Runtimes` and `DefaultRuntime`.
//!
//! There is one: cproxy's own. The daemon forks its shim, which starts the container's process
//! through cproxy's init (`os::init`), confined as Docker's default profile confines it:
//! namespaces, capabilities, seccomp, masked and read-only paths, `pivot_root`. It is named
//! `cproxy`, not `runc`: a request for `runc`, or for a sandboxing runtime (`runsc`, `kata`), is
//! refused in dockerd's words instead of being served by something else without a word.

/// A runtime the daemon can make containers with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// cproxy's own shim and init.
    #[default]
    Own,
}

impl Runtime {
    /// Every runtime the daemon has, the default first.
    pub const ALL: [Runtime; 1] = [Runtime::Own];

    /// Its name, as `--runtime` takes it and `inspect` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Own => "cproxy",
        }
    }

    /// The runtime a create request names (empty: the default), or dockerd's words for one
    /// the daemon does not have.
    pub fn parse(name: &str) -> Result<Runtime, String> {
        if name.is_empty() {
            return Ok(Runtime::default());
        }
        Runtime::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| format!("Unknown runtime specified {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_is_the_default_or_one_by_name_else_refused_in_dockerds_words() {
        assert_eq!(Runtime::parse(""), Ok(Runtime::Own));
        assert_eq!(Runtime::parse("cproxy"), Ok(Runtime::Own));
        // As dockerd 20.10.24 answers `docker run --runtime foo`.
        assert_eq!(Runtime::parse("foo").unwrap_err(), "Unknown runtime specified foo");
        assert!(Runtime::parse("runc").is_err(), "not runc: nothing would run it");
        assert!(Runtime::parse("CPROXY").is_err(), "names are exact, as in dockerd");
    }
}
