//! A running container's cgroup, after its start: `pause` and `unpause` (the freezer),
//! `update` (new limits, kept in the record and applied at once), and what `stop`, `kill` and
//! `rm` do about a frozen container.

use std::path::PathBuf;
use std::sync::Arc;

use crate::supervisor::api::types::{
    BlkioEntry, BlkioStats, ContainerStats, ContainerUpdateRequest, CpuStats, CpuUsage,
    MemoryStats, NetworkStats, PidsStats, Throttling,
};
use crate::supervisor::engine::store::Status;
use crate::supervisor::engine::{Container, Daemon, Error};
use crate::supervisor::os::cgroups::Cgroups;
use crate::supervisor::rules::resources;
use crate::supervisor::rules::restart::RestartPolicy;

impl Daemon {
    /// Whether the host has cgroups the daemon uses (`docker info`'s `Cgroup Driver`).
    pub fn has_cgroups(&self) -> bool {
        self.cgroups.is_some()
    }

    /// What the host's cgroups offer (`docker info`'s booleans and warnings).
    pub fn host_limits(&self) -> &resources::HostLimits {
        &self.host_limits
    }

    /// The running container's cgroup, if it has one.
    fn cgroup_of(&self, c: &Container) -> Option<(Cgroups, PathBuf)> {
        let path = c.held.lock().ok()?.cgroup.clone()?;
        Some((self.cgroups.clone()?, path))
    }

    /// Freezes or thaws the container's cgroup, off the runtime's workers (the v1 freezer
    /// is polled until the kernel says `FROZEN`).
    async fn freeze(&self, c: &Container, frozen: bool) -> Result<(), Error> {
        let (cg, path) = self.cgroup_of(c).ok_or_else(|| {
            Error::internal("the freezer cgroup is not mounted: cannot pause or unpause")
        })?;
        tokio::task::spawn_blocking(move || cg.freeze(&path, frozen))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }

    /// `pause`: every process of the container frozen (`State.Paused`, ps's `(Paused)`).
    pub async fn pause(&self, c: &Arc<Container>) -> Result<(), Error> {
        let _op = c.op.lock().await;
        let r = c.record();
        if r.state.status != Status::Running {
            return Err(Error::conflict(format!("Container {} is not running", r.id)));
        }
        if r.state.paused {
            return Err(Error::conflict(format!("Container {} is already paused", r.id)));
        }
        self.freeze(c, true).await?;
        let r = c.update(|r| r.state.paused = true);
        let _ = self.store.save(&r);
        self.events.container(&r, "pause", &[]);
        Ok(())
    }

    /// `unpause`: the container's processes run again.
    pub async fn unpause(&self, c: &Arc<Container>) -> Result<(), Error> {
        let _op = c.op.lock().await;
        let r = c.record();
        if r.state.status != Status::Running || !r.state.paused {
            return Err(Error::conflict(format!("Container {} is not paused", r.id)));
        }
        self.thaw(c).await?;
        self.events.container(&c.record(), "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container (a signal sent to it waits for that), its record saying so.
    pub(super) async fn thaw(&self, c: &Container) -> Result<(), Error> {
        if !c.record().state.paused {
            return Ok(());
        }
        self.freeze(c, false).await?;
        let r = c.update(|r| r.state.paused = false);
        let _ = self.store.save(&r);
        Ok(())
    }

    /// `update`: new limits (each field given replaces the container's) and restart policy,
    /// checked as create checks them, kept, and applied to a running container at once.
    /// Returns Docker's warnings.
    pub async fn update(
        &self,
        c: &Arc<Container>,
        req: ContainerUpdateRequest,
    ) -> Result<Vec<String>, Error> {
        let _op = c.op.lock().await;
        let r = c.record();
        let checked =
            resources::check(&req.resources, &self.host_limits, true).map_err(Error::invalid)?;
        let cannot = |e: String| Error::invalid(format!("Cannot update container {}: {e}", r.id));
        let merged = resources::merge(&r.resources, &checked.resources).map_err(cannot)?;
        let policy = match req.restart_policy.name.as_str() {
            "" => None,
            _ => {
                let p = RestartPolicy::parse(&req.restart_policy.value())
                    .map_err(|e| Error::invalid(e.to_string()))?;
                if r.auto_remove && p != RestartPolicy::No {
                    return Err(cannot(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container"
                            .into(),
                    ));
                }
                Some(p)
            }
        };
        if r.state.status == Status::Running
            && let Some((cg, path)) = self.cgroup_of(c)
        {
            let limits = merged.clone();
            tokio::task::spawn_blocking(move || cg.update(&path, &limits))
                .await
                .map_err(Error::internal)?
                .map_err(|e| cannot(e.to_string()))?;
        }
        let r = c.update(|r| {
            r.resources = merged;
            if let Some(p) = policy {
                r.restart_policy = p;
                r.restart_policy_unnamed = false;
            }
        });
        self.store.save(&r).map_err(Error::internal)?;
        Ok(checked.warnings)
    }

    /// One reading of the container's counters (`stats`): CPU, memory, processes, block I/O
    /// from its cgroup, the network from its veth; Docker's empty answer for a container
    /// that does not run. `precpu_stats` is left for the caller.
    pub fn stats(&self, c: &Arc<Container>) -> ContainerStats {
        let r = c.record();
        let mut s = ContainerStats {
            read: crate::supervisor::engine::store::ZERO_TIME.into(),
            preread: crate::supervisor::engine::store::ZERO_TIME.into(),
            name: format!("/{}", r.name),
            id: r.id.clone(),
            ..ContainerStats::default()
        };
        let Some((cg, path)) = self.cgroup_of(c).filter(|_| r.state.status == Status::Running)
        else {
            return s;
        };
        let Ok(k) = cg.stats(&path) else { return s };
        s.read = crate::supervisor::rules::format::rfc3339(std::time::SystemTime::now());
        s.pids_stats = PidsStats {
            current: Some(k.pids.current),
            limit: Some(k.pids.limit).filter(|l| *l > 0 && *l < u64::MAX),
        };
        let entries = |list: &[libcgroups::stats::BlkioDeviceStat]| {
            list.iter()
                .map(|e| BlkioEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op_type.clone().unwrap_or_default(),
                    value: e.value,
                })
                .collect::<Vec<_>>()
        };
        s.blkio_stats = BlkioStats {
            io_service_bytes_recursive: Some(entries(&k.blkio.service_bytes)),
            io_serviced_recursive: Some(entries(&k.blkio.serviced)),
            io_queue_recursive: Some(Vec::new()),
            io_service_time_recursive: Some(Vec::new()),
            io_wait_time_recursive: Some(Vec::new()),
            io_merged_recursive: Some(Vec::new()),
            io_time_recursive: Some(Vec::new()),
            sectors_recursive: Some(Vec::new()),
        };
        let usage = &k.cpu.usage;
        s.cpu_stats = CpuStats {
            cpu_usage: CpuUsage {
                total_usage: usage.usage_total,
                percpu_usage: Some(usage.per_core_usage_total.clone()).filter(|p| !p.is_empty()),
                usage_in_kernelmode: usage.usage_kernel,
                usage_in_usermode: usage.usage_user,
            },
            system_cpu_usage: crate::supervisor::os::cgroups::system_cpu_usage(),
            online_cpus: u32::try_from(self.host_limits.cpus).ok(),
            throttling_data: Throttling {
                periods: k.cpu.throttling.periods,
                throttled_periods: k.cpu.throttling.throttled_periods,
                throttled_time: k.cpu.throttling.throttled_time,
            },
        };
        let host = crate::supervisor::os::cgroups::mem_total();
        let limit = k.memory.memory.limit;
        s.memory_stats = MemoryStats {
            usage: Some(k.memory.memory.usage),
            max_usage: Some(k.memory.memory.max_usage).filter(|m| *m > 0),
            stats: Some(k.memory.stats.into_iter().collect()),
            limit: Some(if limit == 0 || limit >= host { host } else { limit }),
        };
        let veth = c.held.lock().ok().and_then(|h| h.veth.clone());
        if let Some(veth) = veth {
            // The host's end: what it sends, the container's eth0 receives.
            let read = |f: &str| -> u64 {
                std::fs::read_to_string(format!("/sys/class/net/{veth}/statistics/{f}"))
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            let eth0 = NetworkStats {
                rx_bytes: read("tx_bytes"),
                rx_packets: read("tx_packets"),
                rx_errors: read("tx_errors"),
                rx_dropped: read("tx_dropped"),
                tx_bytes: read("rx_bytes"),
                tx_packets: read("rx_packets"),
                tx_errors: read("rx_errors"),
                tx_dropped: read("rx_dropped"),
            };
            s.networks = Some([("eth0".to_string(), eth0)].into_iter().collect());
        }
        s
    }
}
