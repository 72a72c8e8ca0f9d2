//! A container's cgroup: found from `/proc/self/mountinfo` (cgroup v1, v2 unified, or hybrid,
//! where v1 holds the controllers), made with the shim in it before the command runs, limits
//! applied, updated, frozen, read for stats and OOM kills, and removed. The file formats are
//! youki's `libcgroups` (v1 and v2 behind one `CgroupManager`, fed the OCI spec's
//! `linux.resources`); this module picks the hierarchy and reads the few files Docker reads
//! that the crate does not (OOM kill counts, the freezer's state).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt, FreezerState};
use nix_cgroups::unistd::Pid;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use crate::supervisor::rules::resources::{HostLimits, Resources, Throttle};

/// The v1 controllers a container's cgroup is made in (Docker's, as runc's cgroupfs driver).
const V1_CONTROLLERS: [&str; 8] =
    ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"];

/// How the host's cgroups are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 (legacy, or hybrid with a controller-less cgroup2 beside it).
    V1 {
        /// Each controller's mount point.
        mounts: BTreeMap<String, PathBuf>,
    },
    /// cgroup v2 only.
    V2 {
        /// The unified hierarchy's mount point.
        root: PathBuf,
    },
}

impl Layout {
    /// Reads `/proc/self/mountinfo` text: v1 if any v1 hierarchy has a controller Docker
    /// uses (hybrid hosts put them there), else the first cgroup2 mount; `None` without
    /// either.
    pub fn from_mountinfo(text: &str) -> Option<Layout> {
        let mut mounts = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER`
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let Some(point) = left.split(' ').nth(4) else { continue };
            let mut r = right.split(' ');
            let (Some(fstype), Some(_source), Some(sup)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let point = PathBuf::from(unescape(point));
            match fstype {
                "cgroup" => {
                    for opt in sup.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            mounts.entry(opt.to_string()).or_insert_with(|| point.clone());
                        }
                    }
                }
                "cgroup2" if unified.is_none() => unified = Some(point),
                _ => {}
            }
        }
        if !mounts.is_empty() {
            Some(Layout::V1 { mounts })
        } else {
            unified.map(|root| Layout::V2 { root })
        }
    }

    /// The directory of cgroup `path` (absolute, `/docker/<id>`) for `controller` (v1; v2
    /// has one directory for all).
    pub fn dir(&self, controller: &str, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Layout::V1 { mounts } => mounts.get(controller).map(|m| m.join(rel)),
            Layout::V2 { root } => Some(root.join(rel)),
        }
    }

    /// What a container sees of cgroup `path` under `/sys/fs/cgroup`, as runc mounts it: each
    /// v1 hierarchy's directory of it, by the hierarchy's name (its mount point's: `cpu`, or
    /// `cpu,cpuacct` for two controllers mounted together); on v2 the one directory, by an
    /// empty name (it is `/sys/fs/cgroup` itself).
    pub fn container_view(&self, path: &Path) -> Vec<(String, PathBuf)> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Layout::V1 { mounts } => {
                // In runc's order of the controllers (the order of Docker's `mount` lines).
                let mut points: Vec<&PathBuf> = Vec::new();
                for m in V1_CONTROLLERS.iter().filter_map(|c| mounts.get(*c)) {
                    if !points.contains(&m) {
                        points.push(m);
                    }
                }
                points
                    .into_iter()
                    .filter_map(|m| {
                        let name = m.file_name()?.to_str()?.to_string();
                        Some((name, m.join(rel)))
                    })
                    .collect()
            }
            Layout::V2 { root } => vec![(String::new(), root.join(rel))],
        }
    }

    /// Every directory cgroup `path` has (one per v1 controller; one on v2).
    pub fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        let rel = path.strip_prefix("/").unwrap_or(path);
        match self {
            Layout::V1 { mounts } => mounts.values().map(|m| m.join(rel)).collect(),
            Layout::V2 { root } => vec![root.join(rel)],
        }
    }

    /// The `cgroup.procs` files of the cgroups a process is in, from its `/proc/PID/cgroup`
    /// text (`4:memory:/docker/ID` on v1, `0::/docker/ID` on v2), one per hierarchy this
    /// layout uses: what a process joins to be in the same cgroups (an `exec`'s, as runc's).
    pub fn procs_files(&self, proc_cgroup: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = Path::new(path);
            let dirs: Vec<PathBuf> = match self {
                Layout::V1 { .. } => controllers
                    .split(',')
                    .filter(|c| V1_CONTROLLERS.contains(c))
                    .filter_map(|c| self.dir(c, path))
                    .collect(),
                Layout::V2 { .. } if controllers.is_empty() => {
                    self.dir("", path).into_iter().collect()
                }
                Layout::V2 { .. } => Vec::new(),
            };
            for d in dirs {
                let file = d.join("cgroup.procs");
                if !out.contains(&file) {
                    out.push(file);
                }
            }
        }
        out
    }

    /// Whether this is cgroup v2 (`docker info`'s `Cgroup Version: 2`).
    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `MemTotal` of /proc/meminfo, in bytes (`docker info`'s, and a limit of none in `stats`).
pub fn mem_total() -> u64 {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The host's CPU time in nanoseconds (the `cpu` line of /proc/stat, in USER_HZ ticks of
/// 10 ms), as Docker's `system_cpu_usage`.
pub fn system_cpu_usage() -> Option<u64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 =
        line.split_whitespace().skip(1).take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
    Some(ticks.saturating_mul(10_000_000))
}

/// The host's cgroups as the daemon uses them.
#[derive(Clone, Debug)]
pub struct Cgroups {
    /// Where the hierarchies are.
    pub layout: Layout,
}

/// A number out of a `key value` line file (`memory.events`, `memory.oom_control`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A device node's numbers, refused in Go's words (`stat /dev/x: no such file or
/// directory`) as dockerd refuses a device limit naming no device.
fn device_numbers(path: &str) -> io::Result<(i64, i64)> {
    let st = nix::sys::stat::stat(path)
        .map_err(|e| io::Error::other(format!("stat {path}: {}", go_errno(e))))?;
    let (major, minor) = (nix::sys::stat::major(st.st_rdev), nix::sys::stat::minor(st.st_rdev));
    Ok((i64::try_from(major).unwrap_or(i64::MAX), i64::try_from(minor).unwrap_or(i64::MAX)))
}

/// An errno as Go's `syscall.Errno` prints it: strerror, lower case.
fn go_errno(e: nix::errno::Errno) -> String {
    let text = e.desc();
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// The container's limits as the OCI spec's `linux.resources`; `v2` says a throttle's rate
/// 0 ("none", which v1 takes as removing the rule) is written as v2's unlimited.
pub fn linux_resources(r: &Resources, v2: bool) -> io::Result<LinuxResources> {
    let bad = |e: oci_spec::OciSpecError| io::Error::other(e.to_string());
    let mut b = LinuxResourcesBuilder::default();
    let (period, quota) = r.cfs();
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        any_cpu = true;
    }
    if period > 0 {
        cpu = cpu.period(period as u64);
        any_cpu = true;
    }
    if quota != 0 {
        cpu = cpu.quota(quota);
        any_cpu = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        b = b.cpu(cpu.build().map_err(bad)?);
    }
    if r.memory != 0
        || r.memory_swap != 0
        || r.memory_reservation != 0
        || r.memory_swappiness.is_some()
        || r.oom_kill_disable == Some(true)
    {
        let mut m = LinuxMemoryBuilder::default();
        if r.memory != 0 {
            m = m.limit(r.memory);
        }
        if r.memory_swap != 0 {
            m = m.swap(r.memory_swap);
        }
        if r.memory_reservation != 0 {
            m = m.reservation(r.memory_reservation);
        }
        if let Some(s) = r.memory_swappiness {
            m = m.swappiness(s as u64);
        }
        b = b.memory(m.build().map_err(bad)?);
    }
    // Always written, so an `update` that clears the limit sets `max` again.
    b = b.pids(LinuxPidsBuilder::default().limit(r.pids_max().unwrap_or(-1)).build().map_err(bad)?);
    let mut io = LinuxBlockIoBuilder::default();
    let mut any_io = false;
    if r.blkio_weight > 0 {
        io = io.weight(r.blkio_weight);
        any_io = true;
    }
    let weights = r.blkio_weight_device.as_deref().unwrap_or_default();
    if !weights.is_empty() {
        let mut list = Vec::new();
        for d in weights {
            let (major, minor) = device_numbers(&d.path)?;
            let w = LinuxWeightDeviceBuilder::default().major(major).minor(minor);
            list.push(w.weight(d.weight).build().map_err(bad)?);
        }
        io = io.weight_device(list);
        any_io = true;
    }
    for kind in Throttle::ALL {
        if r.throttles(kind).is_empty() {
            continue;
        }
        let mut list: Vec<LinuxThrottleDevice> = Vec::new();
        for d in r.throttles(kind) {
            let (major, minor) = device_numbers(&d.path)?;
            let rate = if v2 && d.rate == 0 { u64::MAX } else { d.rate };
            let t = LinuxThrottleDeviceBuilder::default().major(major).minor(minor).rate(rate);
            list.push(t.build().map_err(bad)?);
        }
        io = match kind {
            Throttle::ReadBps => io.throttle_read_bps_device(list),
            Throttle::WriteBps => io.throttle_write_bps_device(list),
            Throttle::ReadIops => io.throttle_read_iops_device(list),
            Throttle::WriteIops => io.throttle_write_iops_device(list),
        };
        any_io = true;
    }
    if any_io {
        b = b.block_io(io.build().map_err(bad)?);
    }
    b.build().map_err(bad)
}

/// Which device nodes a container's processes may open (the devices cgroup: v1's
/// `devices.allow`/`devices.deny`; cgroup v2 has no files for it, an eBPF program that cproxy
/// does not load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Devices {
    /// Docker's default list and nothing else (a container with a root of its own).
    Docker,
    /// As the parent has them (`--privileged`, and a host command, which uses the host's
    /// /dev).
    Unchanged,
}

/// cgroup v1's file for a throttle.
fn v1_throttle_file(t: Throttle) -> &'static str {
    match t {
        Throttle::ReadBps => "blkio.throttle.read_bps_device",
        Throttle::WriteBps => "blkio.throttle.write_bps_device",
        Throttle::ReadIops => "blkio.throttle.read_iops_device",
        Throttle::WriteIops => "blkio.throttle.write_iops_device",
    }
}

impl Cgroups {
    /// The host's cgroups, found from `/proc/self/mountinfo`; `None` where none is mounted.
    pub fn detect() -> Option<Cgroups> {
        let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
        Some(Cgroups { layout: Layout::from_mountinfo(&text)? })
    }

    fn manager(&self, path: &Path) -> io::Result<AnyCgroupManager> {
        let fail = |e: &dyn std::fmt::Display| io::Error::other(e.to_string());
        Ok(match &self.layout {
            Layout::V1 { .. } => {
                libcgroups::v1::manager::Manager::new(path).map_err(|e| fail(&e))?.any()
            }
            Layout::V2 { root } => {
                libcgroups::v2::manager::Manager::new(root.clone(), path.to_path_buf())
                    .map_err(|e| fail(&e))?
                    .any()
            }
        })
    }

    /// Makes cgroup `path` with `pid` (the shim, before its command runs) in it and applies
    /// the limits; a failure removes what was made. `devices` says which device nodes its
    /// processes may open.
    pub fn create(&self, path: &Path, pid: i32, r: &Resources, devices: Devices) -> io::Result<()> {
        let m = self.manager(path)?;
        let made = m
            .add_task(Pid::from_raw(pid))
            .map_err(|e| io::Error::other(format!("cannot make cgroup {}: {e}", path.display())))
            .and_then(|()| self.apply_with(&m, r, devices));
        if made.is_err() {
            let _ = self.remove(path);
        }
        made
    }

    fn apply(&self, m: &AnyCgroupManager, r: &Resources) -> io::Result<()> {
        self.apply_with(m, r, Devices::Unchanged)
    }

    fn apply_with(&self, m: &AnyCgroupManager, r: &Resources, devices: Devices) -> io::Result<()> {
        let mut resources = linux_resources(r, self.layout.is_v2())?;
        if devices == Devices::Docker {
            // Everything denied, then libcgroups allows Docker's list (`c *:* m`, `b *:* m`,
            // null, zero, full, tty, random, urandom, console, pts, ptmx, tun), as runc writes
            // moby's default spec.
            let deny = LinuxDeviceCgroupBuilder::default().allow(false).access("rwm");
            let deny = deny.build().map_err(|e| io::Error::other(e.to_string()))?;
            resources.set_devices(Some(vec![deny]));
        }
        let opt = ControllerOpt {
            resources: &resources,
            disable_oom_killer: r.oom_kill_disable == Some(true),
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(|e| io::Error::other(format!("error setting cgroup config: {e}")))
    }

    /// Applies new limits to a running container's cgroup (`update`).
    pub fn update(&self, path: &Path, r: &Resources) -> io::Result<()> {
        let m = self.manager(path)?;
        self.apply(&m, r)
    }

    /// Whether cgroup `path` exists in any hierarchy.
    pub fn exists(&self, path: &Path) -> bool {
        self.layout.dirs(path).iter().any(|d| d.is_dir())
    }

    /// Removes cgroup `path` (any process still in it is killed first, as runc does); a
    /// missing one is no error.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        if !self.exists(path) {
            return Ok(());
        }
        // Thawed first: a frozen process cannot die.
        let _ = self.freeze(path, false);
        let m = self.manager(path)?;
        m.remove().map_err(|e| {
            io::Error::other(format!("cannot remove cgroup {}: {e}", path.display()))
        })?;
        // A hierarchy libcgroups does not know (none today) would be left: say so.
        match self.layout.dirs(path).into_iter().find(|d| d.is_dir()) {
            Some(d) => fs::remove_dir(&d),
            None => Ok(()),
        }
    }

    /// Freezes (`true`) or thaws a cgroup (`pause`, `unpause`).
    pub fn freeze(&self, path: &Path, frozen: bool) -> io::Result<()> {
        let m = self.manager(path)?;
        let state = if frozen { FreezerState::Frozen } else { FreezerState::Thawed };
        m.freeze(state).map_err(|e| io::Error::other(e.to_string()))
    }

    /// How many processes of the cgroup the kernel's OOM killer killed (v1
    /// `memory.oom_control`'s `oom_kill`, v2 `memory.events`'s `oom_kill`), 0 if unknown.
    pub fn oom_kills(&self, path: &Path) -> u64 {
        let Some(dir) = self.layout.dir("memory", path) else { return 0 };
        let file = if self.layout.is_v2() { "memory.events" } else { "memory.oom_control" };
        fs::read_to_string(dir.join(file)).ok().and_then(|t| keyed(&t, "oom_kill")).unwrap_or(0)
    }

    /// The cgroup's counters (`stats`).
    pub fn stats(&self, path: &Path) -> io::Result<libcgroups::stats::Stats> {
        let m = self.manager(path)?;
        m.stats().map_err(|e| io::Error::other(e.to_string()))
    }

    /// What the host offers for the limits' checks (moby's `sysinfo`): the files under each
    /// hierarchy's root, the CPUs and memory nodes.
    pub fn host_limits(this: Option<&Cgroups>) -> HostLimits {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let read = |p: PathBuf| fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
        let online = read(PathBuf::from("/sys/devices/system/cpu/online"));
        let mut h = HostLimits { cpus, cgroup_version: 1, ..HostLimits::default() };
        match this.map(|c| &c.layout) {
            None => {}
            Some(Layout::V1 { mounts }) => {
                let has =
                    |ctl: &str, file: &str| mounts.get(ctl).is_some_and(|m| m.join(file).exists());
                h.memory = has("memory", "memory.limit_in_bytes");
                h.swap = has("memory", "memory.memsw.limit_in_bytes");
                h.swappiness = has("memory", "memory.swappiness");
                h.oom_kill_disable = has("memory", "memory.oom_control");
                h.kernel_memory = has("memory", "memory.kmem.limit_in_bytes");
                h.kernel_memory_tcp = has("memory", "memory.kmem.tcp.limit_in_bytes");
                h.pids = mounts.contains_key("pids");
                h.cpu_shares = has("cpu", "cpu.shares");
                h.cpu_cfs = has("cpu", "cpu.cfs_quota_us");
                h.cpuset = mounts.contains_key("cpuset");
                h.blkio_weight = has("blkio", "blkio.weight");
                h.blkio_weight_device = has("blkio", "blkio.weight_device");
                h.blkio_throttle = Throttle::ALL.map(|t| has("blkio", v1_throttle_file(t)));
                if let Some(m) = mounts.get("cpuset") {
                    h.cpu_list = read(m.join("cpuset.cpus")).unwrap_or_default();
                    h.mem_list = read(m.join("cpuset.mems")).unwrap_or_default();
                }
            }
            Some(Layout::V2 { root }) => {
                let controllers = read(root.join("cgroup.controllers")).unwrap_or_default();
                let has = |c: &str| controllers.split(' ').any(|x| x == c);
                h.cgroup_version = 2;
                h.memory = has("memory");
                h.swap = has("memory");
                h.pids = has("pids");
                h.cpu_shares = has("cpu");
                h.cpu_cfs = has("cpu");
                h.cpuset = has("cpuset");
                h.blkio_weight = has("io");
                h.blkio_weight_device = has("io");
                h.blkio_throttle = [has("io"); 4];
                if h.cpuset {
                    h.cpu_list = read(root.join("cpuset.cpus.effective")).unwrap_or_default();
                    h.mem_list = read(root.join("cpuset.mems.effective")).unwrap_or_default();
                }
            }
        }
        if h.cpu_list.is_empty() {
            h.cpu_list = online.unwrap_or_default();
        }
        if h.mem_list.is_empty() {
            h.mem_list = "0".into();
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_uses_its_v1_controllers() {
        let l = Layout::from_mountinfo(HYBRID).unwrap();
        let Layout::V1 { mounts } = &l else { panic!("{l:?}") };
        assert_eq!(mounts.len(), 4);
        assert_eq!(
            l.dir("memory", Path::new("/docker/abc")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/docker/abc"))
        );
        assert_eq!(l.dir("freezer", Path::new("/docker/abc")), None);
        assert!(!l.is_v2());
    }

    #[test]
    fn an_exec_joins_each_hierarchy_its_container_is_in() {
        let l = Layout::from_mountinfo(HYBRID).unwrap();
        let proc_cgroup = "\
12:pids:/docker/abc
9:memory:/docker/abc
4:cpu:/docker/abc
3:cpuacct:/docker/abc
1:name=systemd:/user.slice
0::/user.slice/x
";
        let files: Vec<String> =
            l.procs_files(proc_cgroup).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "/sys/fs/cgroup/pids/docker/abc/cgroup.procs",
                "/sys/fs/cgroup/memory/docker/abc/cgroup.procs",
                "/sys/fs/cgroup/cpu/docker/abc/cgroup.procs",
                "/sys/fs/cgroup/cpuacct/docker/abc/cgroup.procs",
            ]
        );
        let v2 = Layout::V2 { root: PathBuf::from("/sys/fs/cgroup") };
        assert_eq!(
            v2.procs_files("0::/docker/abc\n"),
            [PathBuf::from("/sys/fs/cgroup/docker/abc/cgroup.procs")]
        );
        assert_eq!(v2.procs_files("garbage\n3:memory:/x\n"), Vec::<PathBuf>::new());
    }

    #[test]
    fn co_mounted_v1_controllers_share_a_directory() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let l = Layout::from_mountinfo(text).unwrap();
        assert_eq!(l.dir("cpu", Path::new("/x")), l.dir("cpuacct", Path::new("/x")));
    }

    #[test]
    fn a_unified_host_is_v2_wherever_it_is_mounted() {
        let text = "\
25 1 0:22 / /proc rw - proc proc rw
30 22 0:26 / /run/my\\040cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
        let l = Layout::from_mountinfo(text).unwrap();
        assert_eq!(l, Layout::V2 { root: PathBuf::from("/run/my cgroup") });
        assert_eq!(l.dirs(Path::new("/docker/a")), [PathBuf::from("/run/my cgroup/docker/a")]);
    }

    #[test]
    fn no_cgroup_mount_is_none() {
        assert_eq!(Layout::from_mountinfo("25 1 0:22 / /proc rw - proc proc rw\n"), None);
        assert_eq!(Layout::from_mountinfo("garbage\n - \n"), None);
    }

    #[test]
    fn oom_kills_are_read_from_either_format() {
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(
            keyed("low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\noom_group_kill 0\n", "oom_kill"),
            Some(1)
        );
    }

    /// `-m 64m --memory-swap 128m --cpus 0.5 --pids-limit 50`.
    fn sample() -> Resources {
        Resources {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(50),
            ..Default::default()
        }
    }

    #[test]
    fn limits_become_linux_resources() {
        let r = sample();
        let l = linux_resources(&r, false).unwrap();
        let m = l.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        let c = l.cpu().as_ref().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(100_000), Some(50_000)));
        assert_eq!(l.pids().as_ref().unwrap().limit(), 50);
        let none = linux_resources(&Resources::default(), false).unwrap();
        assert!(none.memory().is_none() && none.cpu().is_none());
        assert_eq!(none.pids().as_ref().unwrap().limit(), -1);
        assert!(none.block_io().is_none());
    }

    #[test]
    fn device_limits_name_the_device_by_its_numbers() {
        use crate::supervisor::rules::resources::ThrottleDevice;
        let dev = |path: &str, rate| Some(vec![ThrottleDevice { path: path.into(), rate }]);
        let r = Resources {
            blkio_device_read_bps: dev("/dev/null", 1 << 20),
            blkio_device_write_iops: dev("/dev/zero", 0),
            ..Resources::default()
        };
        let io = linux_resources(&r, false).unwrap().block_io().clone().unwrap();
        let read = &io.throttle_read_bps_device().as_ref().unwrap()[0];
        assert_eq!((read.major(), read.minor(), read.rate()), (1, 3, 1 << 20));
        let write = &io.throttle_write_iops_device().as_ref().unwrap()[0];
        assert_eq!((write.major(), write.minor(), write.rate()), (1, 5, 0));
        // cgroup v2 refuses 0 in io.max: none is its "max".
        let io = linux_resources(&r, true).unwrap().block_io().clone().unwrap();
        assert_eq!(io.throttle_write_iops_device().as_ref().unwrap()[0].rate(), u64::MAX);
        let r = Resources { blkio_device_read_bps: dev("/dev/nonexist", 5), ..r };
        assert_eq!(
            linux_resources(&r, false).unwrap_err().to_string(),
            "stat /dev/nonexist: no such file or directory"
        );
    }

    /// A cgroup v2 tree of files (no kernel): the v2 manager writes the limits where the
    /// kernel would read them.
    #[test]
    fn v2_limits_land_in_a_tree_of_files() {
        let root = std::env::temp_dir().join(format!("cproxy-cg2-{}", std::process::id()));
        let dir = root.join("docker/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(root.join("cgroup.controllers"), "cpu memory pids").unwrap();
        for f in [
            "cgroup.procs",
            "cgroup.subtree_control",
            "memory.max",
            "memory.swap.max",
            "cpu.max",
            "pids.max",
            "cpu.weight",
            "memory.low",
        ] {
            fs::write(dir.join(f), "").unwrap();
        }
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.join("docker/cgroup.subtree_control"), "").unwrap();
        let cg = Cgroups { layout: Layout::V2 { root: root.clone() } };
        let r = sample();
        let got = cg.update(Path::new("/docker/c1"), &r);
        let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap_or_default();
        let (mem, swap, cpu, pids) =
            (read("memory.max"), read("memory.swap.max"), read("cpu.max"), read("pids.max"));
        let _ = fs::remove_dir_all(&root);
        got.unwrap();
        assert_eq!(mem, "67108864");
        // v2's swap file holds the swap alone: memory+swap less memory.
        assert_eq!(swap, "67108864");
        assert_eq!(cpu, "50000 100000");
        assert_eq!(pids, "50");
    }
}
