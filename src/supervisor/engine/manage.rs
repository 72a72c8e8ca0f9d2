//! `restart`, `rename`, `top` and `container prune`, as dockerd answers them.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::supervisor::engine::create::check_name;
use crate::supervisor::engine::store::{Record, Status};
use crate::supervisor::engine::{Container, Daemon, Error};

/// `GET /containers/{id}/top`'s answer.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    /// `ps`'s column titles.
    pub titles: Vec<String>,
    /// One row per process of the container.
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/prune`'s answer.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    /// The IDs removed (`null` when none, as dockerd writes it).
    pub containers_deleted: Option<Vec<String>>,
    /// Bytes given back (their writable layers).
    pub space_reclaimed: u64,
}

impl Daemon {
    /// `docker restart`: stop (its timeout, else the container's, else 10 s), then start.
    pub async fn restart(
        self: &Arc<Self>,
        c: &Arc<Container>,
        t: Option<u64>,
    ) -> Result<(), Error> {
        self.stop(c, t).await?;
        self.start(c).await?;
        self.events.container(&c.record(), "restart", &[]);
        Ok(())
    }

    /// `docker rename`: Docker's words for the same name, a bad one or one in use.
    pub fn rename(&self, c: &Arc<Container>, new: &str) -> Result<(), Error> {
        let old = c.record();
        let new = new.strip_prefix('/').unwrap_or(new);
        if new.is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        if new == old.name {
            return Err(Error::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        let all = self.containers.lock().map_err(Error::internal)?;
        let others: Vec<Record> = all.iter().filter(|x| x.id != c.id).map(|x| x.record()).collect();
        let name = check_name(new, &others).map_err(|e| match e.kind {
            crate::supervisor::engine::ErrorKind::Conflict => {
                Error::conflict(format!("Error when allocating new name: {}", e.message))
            }
            _ => e,
        })?;
        let r = c.update(|r| r.name = name);
        drop(all);
        self.store.save(&r).map_err(Error::internal)?;
        self.events.container(&r, "rename", &[("oldName", format!("/{}", old.name))]);
        Ok(())
    }

    /// `docker top`: `ps` (with `ps_args`, Docker's default `-ef`) on the host, the rows of
    /// the container's processes (those in its PID namespace, cproxy's own init left out
    /// unless asked for with `--init`, as Docker's PID 1 is the command).
    pub async fn top(&self, c: &Arc<Container>, ps_args: &str) -> Result<Top, Error> {
        let r = c.record();
        if r.state.status != Status::Running || r.state.pid <= 0 {
            return Err(Error::conflict(format!("Container {} is not running", r.id)));
        }
        let ns =
            std::fs::read_link(format!("/proc/{}/ns/pid", r.state.pid)).map_err(Error::internal)?;
        let mut pids = BTreeSet::new();
        for entry in std::fs::read_dir("/proc").map_err(Error::internal)?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if std::fs::read_link(entry.path().join("ns/pid")).is_ok_and(|l| l == ns) {
                pids.insert(pid.to_string());
            }
        }
        if !r.init {
            pids.remove(&r.state.pid.to_string());
        }
        let args: Vec<String> =
            match ps_args.split_whitespace().map(String::from).collect::<Vec<_>>() {
                a if a.is_empty() => vec!["-ef".into()],
                a => a,
            };
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("ps").args(&args).output()
        })
        .await
        .map_err(Error::internal)?
        .map_err(|e| Error::internal(format!("Error running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `docker container prune`: every container not running removed.
    pub async fn prune_containers(&self) -> PruneReport {
        let mut deleted = Vec::new();
        for c in self.all() {
            if matches!(c.record().state.status, Status::Exited | Status::Created)
                && self.remove(&c, false, false).await.is_ok()
            {
                deleted.push(c.id.clone());
            }
        }
        PruneReport {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: 0,
        }
    }
}

/// `ps`'s output, the rows whose `PID` column is in `pids` (moby's `parsePSOutput`): the
/// last column takes the rest of its line.
pub fn parse_ps(text: &str, pids: &BTreeSet<String>) -> Result<Top, Error> {
    let mut lines = text.lines();
    let titles: Vec<String> =
        lines.next().unwrap_or_default().split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::internal("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        if fields.get(pid_col).is_some_and(|p| pids.contains(p)) {
            processes.push(fields);
        }
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_containers_pids_with_the_command_whole() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 10 1 0 10:00 ? 00:00:00 /sbin/init splash\n\
                    root 42 10 0 10:01 ? 00:00:00 sleep 100\n";
        let pids = BTreeSet::from(["42".to_string()]);
        let top = parse_ps(text, &pids).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(
            top.processes,
            vec![vec!["root", "42", "10", "0", "10:01", "?", "00:00:00", "sleep 100"]]
        );
        assert!(parse_ps("USER CMD\nroot x\n", &pids).is_err());
    }
}
