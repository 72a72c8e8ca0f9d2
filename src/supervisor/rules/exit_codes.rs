//! Docker's exit codes: a process's status as Docker reports it, and those of a container that
//! could not start, read from the runtime's words
//! (moby's `translateContainerdStartErr`, the CLI's `runStartContainerErr`).

/// 127 for a command that was not found, 126 for one that cannot be run; `None` otherwise.
pub fn start_failure(message: &str) -> Option<u8> {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        Some(127)
    } else if message.contains("permission denied") {
        Some(126)
    } else {
        None
    }
}

/// A process's status as Docker reports it: its exit code, or 128 + N for signal N (255 when
/// it could not be waited for).
pub fn of_status(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.map_or(255, |s| s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtimes_words_give_the_code() {
        let not_found =
            "unable to start container process: exec: \"x\": executable file not found in $PATH";
        assert_eq!(start_failure(not_found), Some(127));
        assert_eq!(start_failure("exec: \"/x\": stat /x: no such file or directory"), Some(127));
        assert_eq!(start_failure("exec: \"/etc\": permission denied"), Some(126));
        assert_eq!(start_failure("no address left on the bridge's subnet"), None);
    }
}
