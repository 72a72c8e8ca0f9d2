//! Docker's exit codes for a container that could not start, read from the runtime's words
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
