//! The machine a run was on, as the kernel describes it: it goes beside every table, because
//! numbers from a shared 2-core box mean little without it.

/// The machine the run was on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPUs this process may use.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// The first model name in `/proc/cpuinfo`.
    pub cpu: String,
    /// `/proc/loadavg` (1, 5, 15 min) at the start of the run.
    pub load_start: String,
    /// … and at its end.
    pub load_end: String,
}

impl Machine {
    /// What the kernel says now.
    pub fn read() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu: read("/proc/cpuinfo")
                .lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim()))
                .unwrap_or("unknown")
                .to_string(),
            load_start: load_average(),
            load_end: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
