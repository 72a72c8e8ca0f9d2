//! A running container's cgroup, after its start: `pause` and `unpause` (the freezer),
//! `update` (new limits, kept in the record and applied at once), and what `stop`, `kill` and
//! `rm` do about a frozen container.

use std::path::PathBuf;
use std::sync::Arc;

use crate::supervisor::api::types::ContainerUpdateRequest;
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
        Ok(())
    }

    /// `unpause`: the container's processes run again.
    pub async fn unpause(&self, c: &Arc<Container>) -> Result<(), Error> {
        let _op = c.op.lock().await;
        let r = c.record();
        if r.state.status != Status::Running || !r.state.paused {
            return Err(Error::conflict(format!("Container {} is not paused", r.id)));
        }
        self.thaw(c).await
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
            }
        });
        self.store.save(&r).map_err(Error::internal)?;
        Ok(checked.warnings)
    }
}
