//! What the kernel says about a process in `/proc`: its descriptors by kind, memory, threads,
//! CPU time (its own, its threads', or its whole tree's) and state, and whether a port is
//! bound on this host (`/proc/net`), which is how a child without a status pipe is seen ready.

use std::collections::HashSet;
use std::fs;
use std::io;

/// A process's open descriptors by kind, from `/proc/PID/fd`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fds {
    /// Sockets (`socket:[…]`).
    pub sockets: usize,
    /// Pipes (`pipe:[…]`).
    pub pipes: usize,
    /// Everything else: epoll and event descriptors, /dev/null, files.
    pub other: usize,
}

impl Fds {
    /// All of them.
    pub fn total(&self) -> usize {
        self.sockets + self.pipes + self.other
    }
}

/// The open descriptors of `pid`, by kind. A descriptor closed while the directory is read is
/// not counted.
pub fn fds(pid: u32) -> io::Result<Fds> {
    let mut fds = Fds::default();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = entry.and_then(|e| fs::read_link(e.path())) else { continue };
        let target = target.to_string_lossy();
        if target.starts_with("socket:") {
            fds.sockets += 1;
        } else if target.starts_with("pipe:") {
            fds.pipes += 1;
        } else {
            fds.other += 1;
        }
    }
    Ok(fds)
}

/// How many descriptors this process has open, counted in `/proc/self/fd` (the one reading
/// the directory included).
pub fn own_fd_count() -> io::Result<usize> {
    Ok(fs::read_dir("/proc/self/fd")?.count())
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB; `None` if the process is
/// gone or has no such field.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    status_field(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?, field)
}

/// The number that follows `field:` in a `/proc/PID/status` text.
fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse::<u64>().ok()
    })
}

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
    Some(Memory {
        rss_kib: status_field(&status, "VmRSS")?,
        hwm_kib: status_field(&status, "VmHWM")?,
    })
}

/// `Pss:` of `/proc/PID/smaps_rollup` in KiB: resident memory with each page shared by N
/// processes counted 1/N, what the process costs beside others running the same program and
/// libraries. `None` if the process is gone.
pub fn pss_kib(pid: u32) -> Option<u64> {
    status_field(&fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?, "Pss")
}

/// The number of threads of `pid` (`Threads:` of `/proc/PID/status`).
pub fn threads(pid: u32) -> Option<u64> {
    status_field(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?, "Threads")
}

/// The fields of a `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) line that tests use. Times
/// are in clock ticks ([`clock_ticks_per_second`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// `R`, `S`, `Z` (zombie), …
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
    /// User time.
    pub utime: u64,
    /// System time.
    pub stime: u64,
    /// User time of children already reaped.
    pub cutime: u64,
    /// System time of children already reaped.
    pub cstime: u64,
}

impl Stat {
    /// The process's own CPU time, user and system.
    pub fn ticks(&self) -> u64 {
        self.utime + self.stime
    }

    /// Its own CPU time and that of its children already reaped.
    pub fn ticks_with_reaped_children(&self) -> u64 {
        self.utime + self.stime + self.cutime + self.cstime
    }
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
    let num = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: u32::try_from(num(4)?).ok()?,
        utime: num(14)?,
        stime: num(15)?,
        cutime: num(16)?,
        cstime: num(17)?,
    })
}

/// `/proc/PID/stat` of `pid`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// True once `pid` has exited: it is gone, or a zombie its parent has not reaped.
pub fn exited(pid: u32) -> bool {
    stat(pid).is_none_or(|s| s.state == 'Z')
}

/// CPU seconds used so far by `pid` and every live descendant (socat forks one child per
/// connection; a child's time moves into its parent's `cutime` when it is reaped, so the sum
/// stays continuous). `None` if `pid` is gone.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let own = stat(pid)?;
    let mut all: Vec<(u32, Stat)> = Vec::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between listing and reading; it is skipped.
        if p != pid
            && let Some(s) = stat(p)
        {
            all.push((p, s));
        }
    }
    let mut tree = HashSet::from([pid]);
    let mut ticks = own.ticks_with_reaped_children();
    // Children are listed after their parents only by chance; repeat until nothing is added.
    loop {
        let before = tree.len();
        for (p, s) in &all {
            if !tree.contains(p) && tree.contains(&s.ppid) {
                tree.insert(*p);
                ticks += s.ticks_with_reaped_children();
            }
        }
        if tree.len() == before {
            break;
        }
    }
    Some(ticks as f64 / clock_ticks_per_second())
}

/// CPU seconds (user and system) used by this process's threads named `name` (`comm`, e.g.
/// `tokio-rt-worker`): what a runtime in this process costs, whatever else runs beside it.
pub fn thread_cpu_seconds(name: &str) -> f64 {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else { return 0.0 };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let line = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        ticks += parse_stat(&line).map_or(0, |s| s.ticks());
    }
    ticks as f64 / clock_ticks_per_second()
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `/proc/PID/stat` times.
pub fn clock_ticks_per_second() -> f64 {
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
    fn status_fields_are_read_by_their_exact_name() {
        let status = "Name:\tcproxy\nVmHWM:\t    9000 kB\nVmRSS:\t    4321 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS"), Some(4321));
        assert_eq!(status_field(status, "VmHWM"), Some(9000));
        assert_eq!(status_field(status, "Threads"), Some(3));
        assert_eq!(status_field(status, "Vm"), None);
    }

    #[test]
    fn stat_fields_are_counted_after_a_name_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 3 0 1 2 3";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.utime, s.stime, s.cutime, s.cstime),
            ('S', 7, 11, 22, 33, 44)
        );
        assert_eq!((s.ticks(), s.ticks_with_reaped_children()), (33, 110));
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
    fn this_process_has_memory_threads_descriptors_and_cpu_time() {
        let me = std::process::id();
        let m = memory(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(pss_kib(me).is_some_and(|pss| pss > 0 && pss <= m.hwm_kib), "PSS of {m:?}");
        assert!(threads(me).is_some_and(|n| n >= 1));
        assert!(fds(me).unwrap().total() >= 3);
        assert!(tree_cpu_seconds(me).is_some_and(|s| s >= 0.0));
        assert!(!exited(me));
    }
}
