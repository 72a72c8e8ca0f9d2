//! `kill -s SIGNAL`'s signal names, as Docker 20.10 reads them (moby's `pkg/signal`,
//! `ParseSignal` over Linux's `SignalMap`): a number (not 0), or a name with or without `SIG`,
//! in any case. Pure.

/// Linux's signal names as Docker's `SignalMap` has them, with their numbers (x86-64 and
/// arm64 share them).
const NAMES: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// The lowest and highest real-time signal numbers Docker names (`RTMIN` is 34 in its map,
/// glibc's own 32 and 33 being taken by the threads library).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// The signal `raw` names, or Docker's words for one it does not (`Invalid signal: FOO`).
/// Numbers are taken as they are (Docker passes any on, and the kernel refuses what it does
/// not know), except 0 and negative ones.
pub fn parse(raw: &str) -> Result<i32, String> {
    let invalid = || format!("Invalid signal: {raw}");
    if let Ok(n) = raw.parse::<i64>() {
        return match i32::try_from(n) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid()),
        };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    // RTMIN, RTMIN+1 … RTMIN+15, RTMAX-14 … RTMAX-1, RTMAX.
    let offset = |rest: &str, sign: char| -> Option<i32> {
        let digits = rest.strip_prefix(sign)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|n| (1..=15).contains(n))
    };
    let rt = match name {
        "RTMIN" => Some(RTMIN),
        "RTMAX" => Some(RTMAX),
        _ => {
            name.strip_prefix("RTMIN").and_then(|r| offset(r, '+')).map(|n| RTMIN + n).or_else(
                || name.strip_prefix("RTMAX").and_then(|r| offset(r, '-')).map(|n| RTMAX - n),
            )
        }
    };
    rt.filter(|n| (RTMIN..=RTMAX).contains(n)).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_or_without_sig_in_any_case_and_numbers() {
        for (raw, want) in [
            ("KILL", libc::SIGKILL),
            ("SIGKILL", libc::SIGKILL),
            ("kill", libc::SIGKILL),
            ("sigHup", libc::SIGHUP),
            ("USR1", libc::SIGUSR1),
            ("9", 9),
            ("15", 15),
            ("RTMIN", 34),
            ("RTMIN+3", 37),
            ("RTMAX-1", 63),
            ("RTMAX", 64),
        ] {
            assert_eq!(parse(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn what_docker_refuses_is_refused_in_its_words() {
        for raw in ["", "0", "-9", "FOO", "SIG", "SIGSIGKILL", "RTMIN+16", "RTMIN+-1", "RTMAX+1"] {
            assert_eq!(parse(raw), Err(format!("Invalid signal: {raw}")), "{raw:?}");
        }
        assert_eq!(parse("99999999999"), Err("Invalid signal: 99999999999".into()));
    }
}
