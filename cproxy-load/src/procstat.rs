//! What the kernel says about a peer process: memory (`/proc/PID/status`), CPU time
//! (`/proc/PID/stat`, summed over the process and its descendants), and whether a port is
//! bound (`/proc/net/{tcp,udp}`), which is how peers without a status pipe are seen to be ready.

use std::collections::HashSet;
use std::fs;

/// Resident memory of one process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; `None` if the process is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&status)
}

/// The memory lines of a `/proc/PID/status` text.
fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    Some(Memory { rss_kib: field("VmRSS")?, hwm_kib: field("VmHWM")? })
}

/// One line of `/proc/PID/stat`, the fields this tool uses.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks: the process's own time and that of
    /// its children already reaped.
    ticks: u64,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
    let num = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
    let ppid = u32::try_from(num(4)?).ok()?;
    Some(Stat { ppid, ticks: num(14)? + num(15)? + num(16)? + num(17)? })
}

/// CPU seconds used so far by `pid` and every live descendant (socat forks one child per
/// connection; a child's time moves into its parent's `cutime` when it is reaped, so the sum
/// stays continuous). `None` if `pid` is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let own = parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut all: Vec<(u32, Stat)> = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if p == pid {
            continue;
        }
        if let Some(s) = fs::read_to_string(format!("/proc/{p}/stat")).ok().and_then(|l| {
            parse_stat(&l) // A process may exit between listing and reading; skip it.
        }) {
            all.push((p, s));
        }
    }
    let mut tree = HashSet::from([pid]);
    let mut ticks = own.ticks;
    // Children are listed after their parents only by chance; repeat until nothing is added.
    loop {
        let before = tree.len();
        for (p, s) in &all {
            if !tree.contains(p) && tree.contains(&s.ppid) {
                tree.insert(*p);
                ticks += s.ticks;
            }
        }
        if tree.len() == before {
            break;
        }
    }
    Some(ticks as f64 / clock_ticks_per_second())
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `/proc/PID/stat` times.
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Transport of a socket looked up in `/proc/net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP socket in LISTEN state.
    TcpListen,
    /// A bound UDP socket.
    Udp,
}

/// True if some socket on this host (IPv4 or IPv6) listens on TCP `port`, or is bound to UDP
/// `port`.
pub fn port_bound(transport: Transport, port: u16) -> bool {
    let files: &[&str] = match transport {
        Transport::TcpListen => &["/proc/net/tcp", "/proc/net/tcp6"],
        Transport::Udp => &["/proc/net/udp", "/proc/net/udp6"],
    };
    files
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .any(|table| table_has_port(&table, transport, port))
}

/// Scans a `/proc/net/{tcp,udp}[6]` table for a local `port` (in LISTEN state for TCP).
fn table_has_port(table: &str, transport: Transport, port: u16) -> bool {
    const TCP_LISTEN: &str = "0A";
    table.lines().skip(1).any(|line| {
        let mut f = line.split_whitespace();
        let (Some(local), Some(_remote), Some(state)) = (f.nth(1), f.next(), f.next()) else {
            return false;
        };
        let bound = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            .is_some_and(|p| p == port);
        bound && (transport == Transport::Udp || state == TCP_LISTEN)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_memory_lines_are_read_in_kib() {
        let status = "Name:\tcproxy\nVmHWM:\t    9000 kB\nVmRSS:\t    4321 kB\nThreads:\t3\n";
        assert_eq!(parse_status(status), Some(Memory { rss_kib: 4321, hwm_kib: 9000 }));
    }

    #[test]
    fn stat_fields_are_counted_after_a_name_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 3 0 1 2 3";
        assert_eq!(parse_stat(line), Some(Stat { ppid: 7, ticks: 11 + 22 + 33 + 44 }));
    }

    #[test]
    fn a_truncated_stat_line_is_not_a_stat() {
        assert_eq!(parse_stat("42 (x) S 7 42"), None);
    }

    #[test]
    fn only_listening_tcp_sockets_count_as_bound() {
        let table = "  sl  local_address rem_address   st\n\
                     0: 0100007F:1F90 00000000:0000 0A\n\
                     1: 0100007F:1F91 0100007F:9C40 01\n";
        assert!(table_has_port(table, Transport::TcpListen, 0x1F90));
        assert!(!table_has_port(table, Transport::TcpListen, 0x1F91));
        assert!(table_has_port(table, Transport::Udp, 0x1F91));
    }

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let me = std::process::id();
        assert!(memory(me).is_some_and(|m| m.rss_kib > 0 && m.hwm_kib >= m.rss_kib));
        assert!(cpu_seconds(me).is_some_and(|s| s >= 0.0));
    }
}
