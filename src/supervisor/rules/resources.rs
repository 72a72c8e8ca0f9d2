//! A container's resource limits as Docker reads and checks them, pure: `HostConfig`'s resource
//! fields (moby's `container.Resources`, the ones cproxy applies), the CLI's value parsers
//! (docker/cli's `opts.NanoCPUs`, `MemBytes`, `MemSwapBytes`) and the daemon's checks in its
//! words and order (moby 20.10 `verifyPlatformContainerResources`), given what the host has.

use serde::{Deserialize, Deserializer, Serialize};

/// The least memory limit Docker accepts (`linuxMinMemory`, 6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The CFS period Docker uses with `--cpus` (100 ms).
pub const DEFAULT_CPU_PERIOD: i64 = 100_000;

/// `null` reads as the type's default, as a Docker client may send it.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `HostConfig`'s resource fields, with Docker's names and types; `inspect` shows them as
/// Docker does (`PidsLimit` and `MemorySwappiness` `null` unless set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// `--cpu-shares`: relative CPU weight (0: the kernel's 1024).
    #[serde(deserialize_with = "nullable")]
    pub cpu_shares: i64,
    /// `-m/--memory` in bytes (0: none).
    #[serde(deserialize_with = "nullable")]
    pub memory: i64,
    /// `--cpus` in billionths of a CPU (0: none).
    #[serde(deserialize_with = "nullable")]
    pub nano_cpus: i64,
    /// `--cgroup-parent`: the cgroup the container's goes under (empty: the daemon's).
    #[serde(deserialize_with = "nullable")]
    pub cgroup_parent: String,
    /// `--blkio-weight`, 10 to 1000 (0: none).
    #[serde(deserialize_with = "nullable")]
    pub blkio_weight: u16,
    /// `--blkio-weight-device`: a weight per device (`null` unless given).
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    /// `--device-read-bps`: bytes per second read from a device.
    #[serde(rename = "BlkioDeviceReadBps")]
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    /// `--device-write-bps`: bytes per second written to a device.
    #[serde(rename = "BlkioDeviceWriteBps")]
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    /// `--device-read-iops`: read operations per second from a device.
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    /// `--device-write-iops`: write operations per second to a device.
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    /// `--cpu-period`, microseconds (0: the kernel's).
    #[serde(deserialize_with = "nullable")]
    pub cpu_period: i64,
    /// `--cpu-quota`, microseconds per period (0: none).
    #[serde(deserialize_with = "nullable")]
    pub cpu_quota: i64,
    /// `--cpuset-cpus`: `0-3`, `0,1` (empty: all).
    #[serde(deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    /// `--cpuset-mems`: memory nodes (empty: all).
    #[serde(deserialize_with = "nullable")]
    pub cpuset_mems: String,
    /// `--kernel-memory`: kept and shown, never applied (deprecated in Docker 20.10, gone from
    /// the kernel since 6.1).
    #[serde(deserialize_with = "nullable")]
    pub kernel_memory: i64,
    /// `--memory-reservation`: the soft limit in bytes (0: none).
    #[serde(deserialize_with = "nullable")]
    pub memory_reservation: i64,
    /// `--memory-swap`: memory plus swap in bytes (-1: unlimited; 0: twice `Memory`).
    #[serde(deserialize_with = "nullable")]
    pub memory_swap: i64,
    /// `--memory-swappiness` 0 to 100; `null` (or -1): the host's.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: Option<bool>,
    /// `--pids-limit` (`null`: none; 0 and -1 read as none, as Docker keeps them).
    pub pids_limit: Option<i64>,
}

/// One `BlkioWeightDevice` entry (moby's `blkiodev.WeightDevice`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WeightDevice {
    /// The device node (`/dev/sda`).
    pub path: String,
    /// Its weight, 10 to 1000.
    pub weight: u16,
}

/// One throttle entry (moby's `blkiodev.ThrottleDevice`): bytes or operations per second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    /// The device node (`/dev/sda`).
    pub path: String,
    /// The rate (0: no limit).
    pub rate: u64,
}

/// Which of a device's limits a throttle entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// `--device-read-bps`.
    ReadBps,
    /// `--device-write-bps`.
    WriteBps,
    /// `--device-read-iops`.
    ReadIops,
    /// `--device-write-iops`.
    WriteIops,
}

impl Throttle {
    /// All four, in the order moby checks them.
    pub const ALL: [Throttle; 4] =
        [Throttle::ReadBps, Throttle::WriteBps, Throttle::ReadIops, Throttle::WriteIops];

    /// The flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Throttle::ReadBps => "--device-read-bps",
            Throttle::WriteBps => "--device-write-bps",
            Throttle::ReadIops => "--device-read-iops",
            Throttle::WriteIops => "--device-write-iops",
        }
    }

    /// moby's warning when the host cannot apply it.
    fn discarded(self) -> &'static str {
        match self {
            Throttle::ReadBps => {
                "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."
            }
            Throttle::WriteBps => {
                "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."
            }
            Throttle::ReadIops => {
                "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."
            }
            Throttle::WriteIops => {
                "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."
            }
        }
    }

    /// Whether it counts bytes (a size with a unit) rather than operations.
    pub fn is_bps(self) -> bool {
        matches!(self, Throttle::ReadBps | Throttle::WriteBps)
    }
}

impl Resources {
    /// The entries of one kind of throttle.
    pub fn throttles(&self, kind: Throttle) -> &[ThrottleDevice] {
        self.throttle_list(kind).as_deref().unwrap_or_default()
    }

    fn throttle_list(&self, kind: Throttle) -> &Option<Vec<ThrottleDevice>> {
        match kind {
            Throttle::ReadBps => &self.blkio_device_read_bps,
            Throttle::WriteBps => &self.blkio_device_write_bps,
            Throttle::ReadIops => &self.blkio_device_read_iops,
            Throttle::WriteIops => &self.blkio_device_write_iops,
        }
    }

    /// The entries of one kind of throttle, to set.
    pub fn throttle_list_mut(&mut self, kind: Throttle) -> &mut Option<Vec<ThrottleDevice>> {
        match kind {
            Throttle::ReadBps => &mut self.blkio_device_read_bps,
            Throttle::WriteBps => &mut self.blkio_device_write_bps,
            Throttle::ReadIops => &mut self.blkio_device_read_iops,
            Throttle::WriteIops => &mut self.blkio_device_write_iops,
        }
    }

    /// The CFS period and quota to write, microseconds: `--cpus` as Docker turns it into
    /// them (a 100 ms period), else `--cpu-period`/`--cpu-quota` (0: leave the kernel's).
    pub fn cfs(&self) -> (i64, i64) {
        if self.nano_cpus > 0 {
            let quota = i128::from(self.nano_cpus) * i128::from(DEFAULT_CPU_PERIOD) / 1_000_000_000;
            (DEFAULT_CPU_PERIOD, i64::try_from(quota).unwrap_or(i64::MAX))
        } else {
            (self.cpu_period, self.cpu_quota)
        }
    }

    /// `--pids-limit` as the kernel takes it: `None` for none.
    pub fn pids_max(&self) -> Option<i64> {
        self.pids_limit.filter(|n| *n > 0)
    }
}

/// What the host offers for the checks: controllers and files found, CPUs, memory nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostLimits {
    /// The memory controller (`memory.limit_in_bytes` / `memory.max`).
    pub memory: bool,
    /// Swap limits (`memory.memsw.limit_in_bytes` / `memory.swap.max`).
    pub swap: bool,
    /// `memory.swappiness` (cgroup v1 only).
    pub swappiness: bool,
    /// The OOM killer can be disabled (`memory.oom_control`, cgroup v1 only).
    pub oom_kill_disable: bool,
    /// The pids controller.
    pub pids: bool,
    /// CPU shares (`cpu.shares` / `cpu.weight`).
    pub cpu_shares: bool,
    /// The CFS bandwidth files (`cpu.cfs_quota_us` / `cpu.max`).
    pub cpu_cfs: bool,
    /// The cpuset controller.
    pub cpuset: bool,
    /// A block I/O weight file (`blkio.weight` / `io.weight`, `io.bfq.weight`).
    pub blkio_weight: bool,
    /// Per-device weights (`blkio.weight_device` / the io controller).
    pub blkio_weight_device: bool,
    /// The throttles, in [`Throttle::ALL`]'s order (`blkio.throttle.*_device` / `io.max`).
    pub blkio_throttle: [bool; 4],
    /// Kernel memory limits (`memory.kmem.limit_in_bytes`, cgroup v1 only).
    pub kernel_memory: bool,
    /// Kernel TCP buffer limits (`memory.kmem.tcp.limit_in_bytes`, cgroup v1 only).
    pub kernel_memory_tcp: bool,
    /// 2 on a unified (v2 only) host, else 1, as `docker info`'s `CgroupVersion`.
    pub cgroup_version: u8,
    /// The number of CPUs online.
    pub cpus: usize,
    /// The CPUs a cpuset may name (`0-1`).
    pub cpu_list: String,
    /// The memory nodes a cpuset may name (`0`).
    pub mem_list: String,
}

/// A `Resources` checked as the daemon checks it: the warnings to show (Docker's words) and
/// the values with what the host lacks discarded, as Docker discards them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// What was discarded or risky, one sentence each.
    pub warnings: Vec<String>,
    /// What is kept (and shown by `inspect`).
    pub resources: Resources,
}

/// Checks resource limits as moby 20.10's `verifyPlatformContainerResources` (same words,
/// same order), `update` telling apart the one check it skips. Values the host cannot apply
/// are dropped with Docker's warning; an unusable value is refused.
pub fn check(r: &Resources, host: &HostLimits, update: bool) -> Result<Checked, String> {
    let mut w = Vec::new();
    let mut r = r.clone();
    if r.memory_swappiness == Some(-1) {
        r.memory_swappiness = None;
    }
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return Err("Minimum memory limit allowed is 6MB".into());
    }
    if r.memory > 0 && !host.memory {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !host.swap {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err("Minimum memoryswap limit should be larger than memory limit, see usage".into());
    }
    if r.memory == 0 && r.memory_swap > 0 && !update {
        return Err(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if r.memory_swappiness.is_some() && !host.swappiness {
        w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
        r.memory_swappiness = None;
    }
    if let Some(s) = r.memory_swappiness
        && !(0..=100).contains(&s)
    {
        return Err(format!("Invalid value: {s}, valid memory swappiness range is 0-100"));
    }
    if r.memory_reservation > 0 && !host.memory {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
        r.memory_reservation = 0;
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err("Minimum memory reservation allowed is 6MB".into());
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }
    if r.kernel_memory > 0 {
        w.push(
            "Specifying a kernel memory limit is deprecated and will be removed in a future release."
                .into(),
        );
    }
    if r.kernel_memory > 0 && r.kernel_memory < MIN_MEMORY {
        return Err("Minimum kernel memory limit allowed is 6MB".into());
    }
    if r.oom_kill_disable.is_some() && !host.oom_kill_disable {
        if r.oom_kill_disable == Some(true) {
            w.push("Your kernel does not support OomKillDisable. OomKillDisable discarded.".into());
        }
        r.oom_kill_disable = None;
    }
    if r.oom_kill_disable == Some(true) && r.memory == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    if r.pids_limit.is_some() && !host.pids {
        if r.pids_limit.is_some_and(|n| n > 0) {
            w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".into());
        }
        r.pids_limit = None;
    }
    if r.pids_limit.is_some_and(|n| n <= 0) {
        r.pids_limit = None;
    }
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    if r.nano_cpus > 0 && !host.cpu_cfs {
        return Err("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted".into());
    }
    let n = host.cpus;
    if r.nano_cpus < 0
        || r.nano_cpus > i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(1_000_000_000)
    {
        return Err(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        ));
    }
    if r.cpu_shares > 0 && !host.cpu_shares {
        w.push(
            "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
                .into(),
        );
        r.cpu_shares = 0;
    }
    if (r.cpu_period != 0 || r.cpu_quota != 0) && !host.cpu_cfs {
        w.push(
            "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.".into(),
        );
        r.cpu_period = 0;
        r.cpu_quota = 0;
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    // What runc refuses when it writes the files, said before anything starts.
    if r.cpu_shares < 0 {
        return Err("shares: invalid argument".into());
    }
    if r.cpu_shares == 1 {
        return Err("the minimum allowed cpu-shares is 2".into());
    }
    if r.nano_cpus > 0 && r.cfs().1 < 1000 {
        return Err(format!(
            "failed to write \"{}\": cpu.cfs_quota_us: invalid argument",
            r.cfs().1
        ));
    }
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !host.cpuset {
        w.push(
            "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
                .into(),
        );
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    check_cpuset(&r.cpuset_cpus, &host.cpu_list, "cpus", "CPUs")?;
    check_cpuset(&r.cpuset_mems, &host.mem_list, "mems", "memory nodes")?;
    if r.blkio_weight > 0 && !host.blkio_weight {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into());
        r.blkio_weight = 0;
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return Err("Range of blkio weight is from 10 to 1000".into());
    }
    if r.blkio_weight_device.as_ref().is_some_and(|d| !d.is_empty()) && !host.blkio_weight_device {
        w.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".into());
        r.blkio_weight_device = Some(Vec::new());
    }
    for (kind, supported) in Throttle::ALL.into_iter().zip(host.blkio_throttle) {
        let list = r.throttle_list_mut(kind);
        if list.as_ref().is_some_and(|d| !d.is_empty()) && !supported {
            w.push(kind.discarded().into());
            *list = Some(Vec::new());
        }
    }
    Ok(Checked { warnings: w, resources: r })
}

/// `--cpuset-cpus`/`--cpuset-mems` against what the host has, in moby's words.
fn check_cpuset(asked: &str, available: &str, what: &str, plural: &str) -> Result<(), String> {
    if asked.is_empty() {
        return Ok(());
    }
    let want =
        parse_list(asked).map_err(|e| format!("Invalid value {asked} for cpuset {what}: {e}"))?;
    // An unreadable host list refuses nothing the kernel would not refuse itself.
    let Ok(have) = parse_list(available) else {
        return Ok(());
    };
    if want.iter().any(|n| !have.contains(n)) {
        return Err(format!(
            "Requested {plural} are not available - requested {asked}, available: {available}"
        ));
    }
    Ok(())
}

/// Docker's `parsers.ParseUintList`: `0-3,5`, no spaces, ranges low to high; at most 8192
/// numbers in all (a cpuset has no more).
pub fn parse_list(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("invalid format: {text}");
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(lo) || !digits(hi) {
            return Err(bad());
        }
        let lo: u32 = lo.parse().map_err(|_| bad())?;
        let hi: u32 = hi.parse().map_err(|_| bad())?;
        if hi < lo || out.len() + (hi - lo) as usize >= 8192 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// `--cpus` as docker/cli's `opts.ParseCPUs`: a decimal (`0.5`, `1.25`, `2e-1`) or a fraction
/// (`1/2`), in billionths; anything finer is `value is too precise`.
pub fn parse_cpus(text: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {text} as a rational number");
    // (numerator, denominator) as exact integers, then times 1e9.
    let (num, den): (i128, i128) = if let Some((a, b)) = text.split_once('/') {
        let a: i128 = parse_int(a).ok_or_else(bad)?;
        let b: i128 = parse_int(b).ok_or_else(bad)?;
        if b == 0 {
            return Err(bad());
        }
        (a, b)
    } else {
        parse_decimal(text).ok_or_else(bad)?
    };
    let scaled = num.checked_mul(1_000_000_000).ok_or_else(bad)?;
    if scaled % den != 0 {
        return Err("value is too precise".into());
    }
    i64::try_from(scaled / den).map_err(|_| bad())
}

/// A signed integer of at most 30 digits.
fn parse_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 30 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal with an optional exponent as an exact fraction (numerator, power of ten).
fn parse_decimal(s: &str) -> Option<(i128, i128)> {
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, parse_int(e)?),
        None => (s, 0),
    };
    let (neg, m) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = m.split_once('.').unwrap_or((m, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all = format!("{int}{frac}");
    if all.len() > 30 || !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut num: i128 = all.parse().ok()?;
    let scale = i128::try_from(frac.len()).ok()? - exp;
    if !(-30..=30).contains(&scale) {
        return None;
    }
    let mut den: i128 = 1;
    if scale >= 0 {
        den = 10i128.pow(u32::try_from(scale).ok()?);
    } else {
        num = num.checked_mul(10i128.pow(u32::try_from(-scale).ok()?))?;
    }
    Some((if neg { -num } else { num }, den))
}

/// `docker info`'s warnings about what the host's cgroups lack, in moby 20.10's words and
/// order (`fillPlatformInfo`): v1's kernel memory and OOM lines and v2's io lines only where
/// the user could act on them.
pub fn info_warnings(h: &HostLimits, net: &NetSysctls) -> Vec<String> {
    let v2 = h.cgroup_version == 2;
    let mut w = Vec::new();
    let mut lack = |missing: bool, what: &str| {
        if missing {
            w.push(format!("WARNING: No {what} support"));
        }
    };
    lack(!h.memory, "memory limit");
    lack(!h.swap, "swap limit");
    lack(!h.kernel_memory_tcp && !v2, "kernel memory TCP limit");
    lack(!h.oom_kill_disable && !v2, "oom kill disable");
    lack(!h.cpu_cfs, "cpu cfs quota");
    lack(!h.cpu_cfs, "cpu cfs period");
    lack(!h.cpu_shares, "cpu shares");
    lack(!h.cpuset, "cpuset");
    lack(!h.blkio_weight && v2, "io.weight");
    lack(!h.blkio_weight_device && v2, "io.weight (per device)");
    let names = if v2 {
        ["io.max (rbps)", "io.max (wbps)", "io.max (riops)", "io.max (wiops)"]
    } else {
        [
            "blkio throttle.read_bps_device",
            "blkio throttle.write_bps_device",
            "blkio throttle.read_iops_device",
            "blkio throttle.write_iops_device",
        ]
    };
    for (supported, name) in h.blkio_throttle.into_iter().zip(names) {
        lack(!supported, name);
    }
    for (on, name) in [
        (net.ipv4_forwarding, "IPv4 forwarding"),
        (net.bridge_nf_iptables, "bridge-nf-call-iptables"),
        (net.bridge_nf_ip6tables, "bridge-nf-call-ip6tables"),
    ] {
        if !on {
            w.push(format!("WARNING: {name} is disabled"));
        }
    }
    w
}

/// The daemon's namespace's forwarding switches, as `docker info` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetSysctls {
    /// `net.ipv4.ip_forward`: containers reach past the host.
    pub ipv4_forwarding: bool,
    /// `net.bridge.bridge-nf-call-iptables` (br_netfilter loaded and on).
    pub bridge_nf_iptables: bool,
    /// `net.bridge.bridge-nf-call-ip6tables`.
    pub bridge_nf_ip6tables: bool,
}

/// The `<device-path>:<value>` halves of a device flag, in docker/cli's words.
fn device_value(text: &str) -> Result<(&str, &str), String> {
    let (path, value) = text.split_once(':').ok_or_else(|| format!("bad format: {text}"))?;
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {text}"));
    }
    Ok((path, value))
}

/// `--device-read-bps` and the other throttles as docker/cli's `ValidateThrottleBpsDevice`
/// and `ValidateThrottleIOpsDevice` read them: `/dev/sda:1mb`, `/dev/sda:100`.
pub fn parse_throttle(kind: Throttle, text: &str) -> Result<ThrottleDevice, String> {
    let (path, value) = device_value(text)?;
    let rate = if kind.is_bps() {
        super::mounts::ram_in_bytes(value).ok().and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
            format!("invalid rate for device: {text}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
        })?
    } else {
        go_uint(value).ok_or_else(|| {
            format!("invalid rate for device: {text}. The correct format is <device-path>:<number>. Number must be a positive integer")
        })?
    };
    Ok(ThrottleDevice { path: path.into(), rate })
}

/// `--blkio-weight-device` as docker/cli's `ValidateWeightDevice`: `/dev/sda:300`, a weight
/// of 10 to 1000 (0: none).
pub fn parse_weight_device(text: &str) -> Result<WeightDevice, String> {
    let (path, value) = device_value(text)?;
    let weight = go_uint(value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n == 0 || (10..=1000).contains(n))
        .ok_or_else(|| format!("invalid weight for device: {text}"))?;
    Ok(WeightDevice { path: path.into(), weight })
}

/// Go's `strconv.ParseUint(s, 10, 64)`, `None` where it fails.
fn go_uint(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `--memory-swap` as docker/cli's `MemSwapBytes`: `-1` (unlimited) or a size.
pub fn parse_memory_swap(text: &str) -> Result<i64, String> {
    if text == "-1" {
        return Ok(-1);
    }
    super::mounts::ram_in_bytes(text)
}

/// An integer flag as Go's `strconv.ParseInt(s, 10, 64)` reads it, with its words.
pub fn go_int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {text:?}: invalid syntax"));
    }
    text.parse().map_err(|_| format!("strconv.ParseInt: parsing {text:?}: value out of range"))
}

/// A `uint16` flag as Go's `strconv.ParseUint(s, 10, 16)` reads it, with its words.
pub fn go_u16(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {text:?}: invalid syntax"));
    }
    text.parse().map_err(|_| format!("strconv.ParseUint: parsing {text:?}: value out of range"))
}

/// Docker's create defaults: `MemorySwap` twice `Memory` when not given, `OomKillDisable`
/// false (moby's `adaptContainerSettings`).
pub fn with_defaults(mut r: Resources) -> Resources {
    if r.memory > 0 && r.memory_swap == 0 {
        r.memory_swap = r.memory.saturating_mul(2);
    }
    if r.oom_kill_disable.is_none() {
        r.oom_kill_disable = Some(false);
    }
    r
}

/// `update`'s values over a container's: each field given (non-zero, non-empty, non-null)
/// replaces the one kept, refused in moby 20.10's words (`UpdateContainer`) where the new
/// values would conflict with the kept ones.
pub fn merge(old: &Resources, new: &Resources) -> Result<Resources, String> {
    let conflict = |what: &str| {
        Err(format!(
            "Conflicting options: {what} cannot be updated as NanoCPUs has already been set"
        ))
    };
    if new.nano_cpus > 0 && old.cpu_period > 0 {
        return conflict("CPU Period");
    }
    if new.nano_cpus > 0 && old.cpu_quota > 0 {
        return conflict("CPU Quota");
    }
    if new.cpu_period > 0 && old.nano_cpus > 0 {
        return conflict("CPU Period");
    }
    if new.cpu_quota > 0 && old.nano_cpus > 0 {
        return conflict("CPU Quota");
    }
    let mut r = old.clone();
    let set = |o: &mut i64, n: i64| {
        if n != 0 {
            *o = n;
        }
    };
    if new.blkio_weight != 0 {
        r.blkio_weight = new.blkio_weight;
    }
    set(&mut r.cpu_shares, new.cpu_shares);
    set(&mut r.nano_cpus, new.nano_cpus);
    set(&mut r.cpu_period, new.cpu_period);
    set(&mut r.cpu_quota, new.cpu_quota);
    if !new.cpuset_cpus.is_empty() {
        r.cpuset_cpus = new.cpuset_cpus.clone();
    }
    if !new.cpuset_mems.is_empty() {
        r.cpuset_mems = new.cpuset_mems.clone();
    }
    if new.memory != 0 {
        if new.memory > old.memory_swap && new.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        r.memory = new.memory;
    }
    set(&mut r.memory_swap, new.memory_swap);
    set(&mut r.memory_reservation, new.memory_reservation);
    set(&mut r.kernel_memory, new.kernel_memory);
    if new.pids_limit.is_some() {
        r.pids_limit = new.pids_limit.filter(|n| *n > 0);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostLimits {
        HostLimits {
            memory: true,
            swap: true,
            swappiness: true,
            oom_kill_disable: true,
            pids: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpuset: true,
            blkio_weight: false,
            blkio_weight_device: false,
            blkio_throttle: [false; 4],
            kernel_memory: true,
            kernel_memory_tcp: true,
            cgroup_version: 1,
            cpus: 2,
            cpu_list: "0-1".into(),
            mem_list: "0".into(),
        }
    }

    fn err(r: Resources) -> String {
        check(&r, &host(), false).unwrap_err()
    }

    #[test]
    fn cpus_read_as_docker_cli_reads_them() {
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("1.25"), Ok(1_250_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("1/2"), Ok(500_000_000));
        assert_eq!(parse_cpus("2e-1"), Ok(200_000_000));
        assert_eq!(parse_cpus("-1"), Ok(-1_000_000_000));
        assert_eq!(parse_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_cpus("abc"), Err("failed to parse abc as a rational number".into()));
        assert_eq!(parse_cpus(""), Err("failed to parse  as a rational number".into()));
        assert_eq!(parse_cpus("1/0"), Err("failed to parse 1/0 as a rational number".into()));
        assert_eq!(parse_cpus("0.0000000001"), Err("value is too precise".into()));
        assert!(parse_cpus("1e999").is_err());
        assert!(parse_cpus("99999999999999999999999999999").is_err());
    }

    #[test]
    fn integer_flags_fail_in_gos_words() {
        assert_eq!(go_int("-1"), Ok(-1));
        assert_eq!(go_int("abc"), Err("strconv.ParseInt: parsing \"abc\": invalid syntax".into()));
        assert!(go_int("99999999999999999999").unwrap_err().ends_with("value out of range"));
        assert_eq!(go_u16("500"), Ok(500));
        assert!(go_u16("70000").unwrap_err().ends_with("value out of range"));
        assert!(go_u16("-1").unwrap_err().ends_with("invalid syntax"));
    }

    #[test]
    fn device_flags_read_as_docker_cli_reads_them() {
        let t = |k, s| parse_throttle(k, s);
        assert_eq!(
            t(Throttle::ReadBps, "/dev/vda:1mb"),
            Ok(ThrottleDevice { path: "/dev/vda".into(), rate: 1 << 20 })
        );
        assert_eq!(t(Throttle::WriteBps, "/dev/vda:1.5mb").unwrap().rate, 1_572_864);
        assert_eq!(t(Throttle::ReadBps, "/dev/vda:0").unwrap().rate, 0);
        assert_eq!(t(Throttle::ReadIops, "/dev/vda:100").unwrap().rate, 100);
        assert_eq!(t(Throttle::ReadBps, "/dev/vda"), Err("bad format: /dev/vda".into()));
        assert_eq!(
            t(Throttle::ReadBps, "/tmp:1mb"),
            Err("bad format for device path: /tmp:1mb".into())
        );
        assert_eq!(
            t(Throttle::ReadBps, "/dev/vda:x"),
            Err("invalid rate for device: /dev/vda:x. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb".into())
        );
        assert!(t(Throttle::WriteBps, "/dev/vda:-1").is_err());
        assert_eq!(
            t(Throttle::WriteIops, "/dev/vda:1mb"),
            Err("invalid rate for device: /dev/vda:1mb. The correct format is <device-path>:<number>. Number must be a positive integer".into())
        );
        assert_eq!(parse_weight_device("/dev/vda:300").unwrap().weight, 300);
        assert_eq!(parse_weight_device("/dev/vda:0").unwrap().weight, 0);
        for bad in ["/dev/vda:5", "/dev/vda:x", "/dev/vda:1001", "/dev/vda:70000"] {
            assert_eq!(parse_weight_device(bad), Err(format!("invalid weight for device: {bad}")));
        }
        assert_eq!(parse_weight_device("/dev/vda"), Err("bad format: /dev/vda".into()));
    }

    #[test]
    fn device_limits_the_host_lacks_are_discarded_with_dockers_warnings() {
        let one = || Some(vec![ThrottleDevice { path: "/dev/vda".into(), rate: 5 }]);
        let r = Resources {
            blkio_weight_device: Some(vec![WeightDevice { path: "/dev/vda".into(), weight: 300 }]),
            blkio_device_read_bps: one(),
            blkio_device_write_iops: one(),
            ..Default::default()
        };
        let c = check(&r, &host(), false).unwrap();
        assert_eq!(
            c.warnings,
            [
                "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.",
                "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
                "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
            ]
        );
        assert_eq!(c.resources.blkio_weight_device, Some(vec![]));
        assert_eq!(c.resources.blkio_device_read_bps, Some(vec![]));
        assert_eq!(c.resources.blkio_device_write_bps, None);
        let v1 = HostLimits { blkio_throttle: [true; 4], ..host() };
        let c = check(&r, &v1, false).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.resources.blkio_device_read_bps, one());
    }

    #[test]
    fn info_warns_of_what_the_host_lacks_as_dockerd_does() {
        let on = NetSysctls {
            ipv4_forwarding: true,
            bridge_nf_iptables: true,
            bridge_nf_ip6tables: true,
        };
        let info_warnings = |h: &HostLimits| info_warnings(h, &on);
        let full = HostLimits { blkio_weight_device: true, blkio_throttle: [true; 4], ..host() };
        assert_eq!(info_warnings(&full), Vec::<String>::new());
        // This machine's v1: no weight files (gone since kernel 5.0) and no warning for them.
        let v1 = HostLimits { blkio_throttle: [true; 4], ..host() };
        assert_eq!(info_warnings(&v1), Vec::<String>::new());
        assert_eq!(
            info_warnings(&host())[..2],
            [
                "WARNING: No blkio throttle.read_bps_device support",
                "WARNING: No blkio throttle.write_bps_device support"
            ]
        );
        let bare = HostLimits { cgroup_version: 1, ..HostLimits::default() };
        assert_eq!(info_warnings(&bare).len(), 12);
        assert_eq!(info_warnings(&bare)[0], "WARNING: No memory limit support");
        let v2 = HostLimits { cgroup_version: 2, ..HostLimits::default() };
        let w = info_warnings(&v2);
        assert!(!w.iter().any(|l| l.contains("oom kill") || l.contains("kernel memory")));
        assert_eq!(w.last().unwrap(), "WARNING: No io.max (wiops) support");
        assert!(w.contains(&"WARNING: No io.weight (per device) support".to_string()));
        let off = NetSysctls { bridge_nf_ip6tables: true, ..NetSysctls::default() };
        let full = HostLimits { blkio_weight_device: true, blkio_throttle: [true; 4], ..host() };
        assert_eq!(
            super::info_warnings(&full, &off),
            [
                "WARNING: IPv4 forwarding is disabled",
                "WARNING: bridge-nf-call-iptables is disabled"
            ]
        );
    }

    #[test]
    fn memory_below_six_megabytes_is_refused_in_dockers_words() {
        let r = Resources { memory: 4 << 20, ..Default::default() };
        assert_eq!(err(r), "Minimum memory limit allowed is 6MB");
    }

    #[test]
    fn swap_checks_are_dockers() {
        let r = Resources { memory_swap: 100 << 20, ..Default::default() };
        assert_eq!(
            err(r.clone()),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        // `update` may set the swap alone.
        assert!(check(&r, &host(), true).is_ok());
        let r = Resources { memory: 64 << 20, memory_swap: 32 << 20, ..Default::default() };
        assert_eq!(
            err(r),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        let r = Resources { memory: 64 << 20, memory_swap: -1, ..Default::default() };
        assert!(check(&r, &host(), false).is_ok());
    }

    #[test]
    fn reservation_checks_are_dockers() {
        let r = Resources { memory_reservation: 1 << 20, ..Default::default() };
        assert_eq!(err(r), "Minimum memory reservation allowed is 6MB");
        let r = Resources { memory: 64 << 20, memory_reservation: 128 << 20, ..Default::default() };
        assert_eq!(
            err(r),
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        );
    }

    #[test]
    fn kernel_memory_is_kept_with_a_warning() {
        let r = Resources { kernel_memory: 10 << 20, ..Default::default() };
        let c = check(&r, &host(), false).unwrap();
        assert_eq!(
            c.warnings,
            [
                "Specifying a kernel memory limit is deprecated and will be removed in a future release."
            ]
        );
        let r = Resources { kernel_memory: 1 << 20, ..Default::default() };
        assert_eq!(err(r), "Minimum kernel memory limit allowed is 6MB");
    }

    #[test]
    fn cpu_checks_are_dockers() {
        let r = Resources { nano_cpus: 3_000_000_000, ..Default::default() };
        assert_eq!(
            err(r),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        let r = Resources { nano_cpus: -1_000_000_000, ..Default::default() };
        assert_eq!(
            err(r),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        let r = Resources { nano_cpus: 500_000_000, cpu_period: 100_000, ..Default::default() };
        assert_eq!(err(r), "Conflicting options: Nano CPUs and CPU Period cannot both be set");
        let r = Resources { nano_cpus: 500_000_000, cpu_quota: 50_000, ..Default::default() };
        assert_eq!(err(r), "Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        for p in [500, 2_000_000] {
            let r = Resources { cpu_period: p, ..Default::default() };
            assert_eq!(
                err(r),
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
            );
        }
        let r = Resources { cpu_quota: 500, ..Default::default() };
        assert_eq!(err(r), "CPU cfs quota can not be less than 1ms (i.e. 1000)");
        let r = Resources { cpu_quota: -1, ..Default::default() };
        assert!(check(&r, &host(), false).is_ok());
        let r = Resources { cpu_shares: 1, ..Default::default() };
        assert_eq!(err(r), "the minimum allowed cpu-shares is 2");
    }

    #[test]
    fn cpus_become_a_quota_over_a_100ms_period() {
        let r = Resources { nano_cpus: 500_000_000, ..Default::default() };
        assert_eq!(r.cfs(), (100_000, 50_000));
        let r = Resources { cpu_period: 50_000, cpu_quota: 25_000, ..Default::default() };
        assert_eq!(r.cfs(), (50_000, 25_000));
    }

    #[test]
    fn cpusets_are_checked_against_the_host() {
        let r = Resources { cpuset_cpus: "5".into(), ..Default::default() };
        assert_eq!(err(r), "Requested CPUs are not available - requested 5, available: 0-1");
        let r = Resources { cpuset_cpus: "abc".into(), ..Default::default() };
        assert_eq!(err(r), "Invalid value abc for cpuset cpus: invalid format: abc");
        let r = Resources { cpuset_cpus: "1-0".into(), ..Default::default() };
        assert_eq!(err(r), "Invalid value 1-0 for cpuset cpus: invalid format: 1-0");
        let r = Resources { cpuset_mems: "3".into(), ..Default::default() };
        assert_eq!(err(r), "Requested memory nodes are not available - requested 3, available: 0");
        let r =
            Resources { cpuset_cpus: "0-1".into(), cpuset_mems: "0".into(), ..Default::default() };
        assert!(check(&r, &host(), false).is_ok());
        assert_eq!(parse_list("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_list("0-99999999").is_err());
    }

    #[test]
    fn what_the_host_lacks_is_discarded_with_dockers_warning() {
        let r = Resources { blkio_weight: 5, ..Default::default() };
        let c = check(&r, &host(), false).unwrap();
        assert_eq!(c.resources.blkio_weight, 0);
        assert_eq!(
            c.warnings,
            [
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
            ]
        );
        let with_blkio = HostLimits { blkio_weight: true, ..host() };
        assert_eq!(
            check(&r, &with_blkio, false).unwrap_err(),
            "Range of blkio weight is from 10 to 1000"
        );
        let no_pids = HostLimits { pids: false, ..host() };
        let r = Resources { pids_limit: Some(50), ..Default::default() };
        let c = check(&r, &no_pids, false).unwrap();
        assert_eq!(c.resources.pids_limit, None);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn oom_kill_disable_without_memory_warns() {
        let r = Resources { oom_kill_disable: Some(true), ..Default::default() };
        let c = check(&r, &host(), false).unwrap();
        assert_eq!(
            c.warnings,
            [
                "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
            ]
        );
    }

    #[test]
    fn pids_limit_zero_or_negative_is_none() {
        for n in [0, -1] {
            let r = Resources { pids_limit: Some(n), ..Default::default() };
            assert_eq!(check(&r, &host(), false).unwrap().resources.pids_limit, None);
        }
    }

    #[test]
    fn create_defaults_are_dockers() {
        let r = with_defaults(Resources { memory: 64 << 20, ..Default::default() });
        assert_eq!(r.memory_swap, 128 << 20);
        assert_eq!(r.oom_kill_disable, Some(false));
        let r =
            with_defaults(Resources { memory: 64 << 20, memory_swap: -1, ..Default::default() });
        assert_eq!(r.memory_swap, -1);
    }

    #[test]
    fn update_replaces_what_is_given_in_mobys_words() {
        let old = with_defaults(Resources { memory: 64 << 20, ..Default::default() });
        let new = Resources {
            nano_cpus: 500_000_000,
            memory: 128 << 20,
            memory_swap: 256 << 20,
            pids_limit: Some(40),
            ..Default::default()
        };
        let m = merge(&old, &new).unwrap();
        assert_eq!((m.nano_cpus, m.memory, m.memory_swap), (500_000_000, 128 << 20, 256 << 20));
        assert_eq!(m.pids_limit, Some(40));
        // 04-update-pause.txt: a memory above the swap kept needs the swap too.
        let more = Resources { memory: 300 << 20, ..Default::default() };
        assert_eq!(
            merge(&m, &more).unwrap_err(),
            "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        );
        let created = with_defaults(Resources::default());
        let some = Resources { memory: 32 << 20, ..Default::default() };
        assert!(merge(&created, &some).is_err());
        let period = Resources { cpu_period: 50_000, ..Default::default() };
        assert_eq!(
            merge(&m, &period).unwrap_err(),
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        );
        let unlimited = Resources { pids_limit: Some(-1), ..Default::default() };
        assert_eq!(merge(&m, &unlimited).unwrap().pids_limit, None);
    }

    #[test]
    fn the_api_fields_are_dockers() {
        let r = with_defaults(Resources {
            memory: 67_108_864,
            nano_cpus: 500_000_000,
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["Memory"], 67_108_864);
        assert_eq!(v["MemorySwap"], 134_217_728);
        assert_eq!(v["NanoCpus"], 500_000_000);
        assert_eq!(v["PidsLimit"], serde_json::Value::Null);
        assert_eq!(v["OomKillDisable"], false);
        let back: Resources =
            serde_json::from_str(r#"{"Memory": null, "PidsLimit": 50, "CpusetCpus": null}"#)
                .unwrap();
        assert_eq!(back.pids_limit, Some(50));
        assert_eq!(back.memory, 0);
    }
}
