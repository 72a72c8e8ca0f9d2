//! The resource flags as docker/cli reads them (`MemBytes`, `NanoCPUs`, Go's integers, its
//! words for a bad value), for `run`, `create` and `update`; `update`, `pause`, `unpause`.

use hyper::Method;

use crate::supervisor::api::types::{ContainerUpdateRequest, ContainerUpdateResponse};
use crate::supervisor::client::cli::{ResourceArgs, UpdateArgs};
use crate::supervisor::client::transport::{Client, Result, fail, q};
use crate::supervisor::rules::mounts;
use crate::supervisor::rules::resources::{self, Resources};
use crate::supervisor::rules::restart::RestartPolicy;

/// The limits the flags give, refused in docker/cli's words; the daemon checks the values.
pub(super) fn limits(a: &ResourceArgs) -> Result<Resources> {
    let flag_error = |value: &str, flag: &str, why: String| {
        fail(format!("invalid argument \"{value}\" for \"{flag}\" flag: {why}"), 125)
    };
    let bytes = |v: &Option<String>, flag: &str| -> Result<i64> {
        v.as_deref().map_or(Ok(0), |v| mounts::ram_in_bytes(v).map_err(|e| flag_error(v, flag, e)))
    };
    let int = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        v.as_deref().map(|v| resources::go_int(v).map_err(|e| flag_error(v, flag, e))).transpose()
    };
    let mut r = Resources {
        memory: bytes(&a.memory, "-m, --memory")?,
        memory_reservation: bytes(&a.memory_reservation, "--memory-reservation")?,
        kernel_memory: bytes(&a.kernel_memory, "--kernel-memory")?,
        cpu_shares: int(&a.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0),
        cpu_period: int(&a.cpu_period, "--cpu-period")?.unwrap_or(0),
        cpu_quota: int(&a.cpu_quota, "--cpu-quota")?.unwrap_or(0),
        cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: a.cpuset_mems.clone().unwrap_or_default(),
        pids_limit: int(&a.pids_limit, "--pids-limit")?,
        ..Resources::default()
    };
    if let Some(v) = &a.memory_swap {
        r.memory_swap =
            resources::parse_memory_swap(v).map_err(|e| flag_error(v, "--memory-swap", e))?;
    }
    if let Some(v) = &a.cpus {
        r.nano_cpus = resources::parse_cpus(v).map_err(|e| flag_error(v, "--cpus", e))?;
    }
    if let Some(v) = &a.blkio_weight {
        r.blkio_weight = resources::go_u16(v).map_err(|e| flag_error(v, "--blkio-weight", e))?;
    }
    Ok(r)
}

/// `update`: each container's new limits; its name printed once updated, with the daemon's
/// warnings; exit 1 if any failed (each failure on stderr).
pub(super) async fn update(client: &Client, a: UpdateArgs) -> Result<u8> {
    let mut resources = limits(&a.resources)?;
    // The flags are read as `update` reads them: an unset one changes nothing.
    resources.oom_kill_disable = None;
    let restart_policy = match &a.restart {
        Some(p) => RestartPolicy::parse(p).map_err(|e| fail(e.to_string(), 1))?.into(),
        None => Default::default(),
    };
    let body = ContainerUpdateRequest { resources, restart_policy };
    if body == ContainerUpdateRequest::default() {
        return Err(fail("you must provide one or more flags when using this command", 1));
    }
    let mut failed = false;
    for c in &a.containers {
        let uri = format!("/containers/{}/update", q(c));
        let answer: Result<ContainerUpdateResponse> =
            client.json(Method::POST, &uri, Some(&body)).await;
        match answer {
            Ok(answer) => {
                println!("{c}");
                for w in answer.warnings.unwrap_or_default() {
                    println!("{w}");
                }
            }
            Err(e) => {
                eprintln!("{}", e.message);
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
