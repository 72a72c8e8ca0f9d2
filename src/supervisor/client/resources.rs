//! The resource flags as docker/cli reads them (`MemBytes`, `NanoCPUs`, Go's integers, its
//! words for a bad value), for `run`, `create` and `update`; `update`, `pause`, `unpause`.

use hyper::Method;

use crate::supervisor::api::types::{
    ContainerStats, ContainerSummary, ContainerUpdateRequest, ContainerUpdateResponse,
};
use crate::supervisor::client::cli::{ResourceArgs, StatsArgs, UpdateArgs};
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail, q};
use crate::supervisor::rules::format::{bytes_size, human_size, table};
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

/// One `stats` row as docker/cli computes it: CPU % from the change since `precpu_stats`
/// against the host's, memory without the inactive page cache, network and block I/O summed.
pub(super) fn stats_row(s: &ContainerStats, no_trunc: bool) -> Vec<String> {
    let cpu = &s.cpu_stats;
    let pre = &s.precpu_stats;
    let cpu_delta = cpu.cpu_usage.total_usage as f64 - pre.cpu_usage.total_usage as f64;
    let system_delta =
        cpu.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let cpus = f64::from(cpu.online_cpus.unwrap_or(1));
    let cpu_percent = if cpu_delta > 0.0 && system_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    };
    let m = &s.memory_stats;
    let usage = m.usage.unwrap_or(0);
    let stat = |k: &str| m.stats.as_ref().and_then(|s| s.get(k).copied());
    let cache = stat("total_inactive_file").or_else(|| stat("inactive_file")).unwrap_or(0);
    let used = if cache < usage { usage - cache } else { usage };
    let limit = m.limit.unwrap_or(0);
    let mem_percent = if limit > 0 { used as f64 / limit as f64 * 100.0 } else { 0.0 };
    let (rx, tx) = s
        .networks
        .iter()
        .flatten()
        .fold((0u64, 0u64), |(r, t), (_, n)| (r + n.rx_bytes, t + n.tx_bytes));
    let (read, write) = s.blkio_stats.io_service_bytes_recursive.iter().flatten().fold(
        (0u64, 0u64),
        |(r, w), e| match e.op.to_ascii_lowercase().as_str() {
            "read" => (r + e.value, w),
            "write" => (r, w + e.value),
            _ => (r, w),
        },
    );
    let io = |a: u64, b: u64| format!("{} / {}", human_size(a as f64, 3), human_size(b as f64, 3));
    let id = if no_trunc { s.id.clone() } else { s.id.chars().take(12).collect() };
    vec![
        id,
        s.name.trim_start_matches('/').to_string(),
        format!("{cpu_percent:.2}%"),
        format!("{} / {}", bytes_size(used as f64), bytes_size(limit as f64)),
        format!("{mem_percent:.2}%"),
        io(rx, tx),
        io(read, write),
        s.pids_stats.current.unwrap_or(0).to_string(),
    ]
}

/// `stats`' columns' names, in [`stats_row`]'s order.
const STATS_HEADER: [&str; 8] =
    ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];

/// A row as docker/cli's `statsContext` shows it to `--format`: `.Container` (the container
/// as the command line named it), `.ID`, `.Name`, `.CPUPerc`, `.MemUsage`, `.MemPerc`,
/// `.NetIO`, `.BlockIO`, `.PIDs`.
fn stats_fields(container: &str, row: &[String]) -> serde_json::Value {
    let keys = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"];
    let mut m = serde_json::Map::new();
    m.insert("Container".into(), container.into());
    for (k, v) in keys.iter().zip(row) {
        m.insert((*k).into(), v.as_str().into());
    }
    serde_json::Value::Object(m)
}

/// `stats`: Docker's columns for each container (every running one by default), once with
/// `--no-stream`, else again each second.
pub(super) async fn stats(client: &Client, a: StatsArgs) -> Result<u8> {
    let names = if a.containers.is_empty() {
        let uri = format!("/containers/json?all={}", u8::from(a.all));
        let list: Vec<ContainerSummary> = client.json(Method::GET, &uri, NO_BODY).await?;
        // docker/cli names each by its short ID (what `.Container` shows).
        list.into_iter().map(|c| c.id.chars().take(12).collect()).collect()
    } else {
        a.containers.clone()
    };
    loop {
        let mut rows = vec![STATS_HEADER.map(String::from).to_vec()];
        // What a `--format` sees: the container as named (`.Container`), then the columns.
        let mut named = Vec::new();
        let mut failed = false;
        for c in &names {
            let uri = format!("/containers/{}/stats?stream=0", q(c));
            let s: Result<ContainerStats> = client.json(Method::GET, &uri, NO_BODY).await;
            match s {
                Ok(s) => {
                    let row = stats_row(&s, a.no_trunc);
                    named.push(stats_fields(c, &row));
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("{}", e.message);
                    failed = true;
                }
            }
        }
        let text = match &a.format {
            Some(f) => {
                let names = stats_fields("CONTAINER", &STATS_HEADER.map(String::from));
                super::image::format_rows(f, &names, named.into_iter())
            }
            None => table(&rows),
        };
        if a.no_stream {
            if rows.len() > 1 || !failed {
                print!("{text}");
            }
            return Ok(u8::from(failed));
        }
        // Docker's live view: the screen cleared, the table again.
        print!("\x1b[2J\x1b[H{text}");
    }
}
