//! Legacy links wired into the daemon: the sources a recipient's `--link`s name (checked when
//! it is created and when it starts, in Docker's words), the environment and `/etc/hosts`
//! lines it gets from them ([`crate::supervisor::rules::links`]), and the rewrite of every
//! running recipient's `/etc/hosts` when a source starts again, which no reader inside ever
//! sees half done.
//!
//! The rewrite: a `rename` over the hosts file the container's `/etc/hosts` is bind-mounted
//! from is not seen inside (the mount holds the old inode), and rewriting that inode in place
//! is seen half done. So the new file is written next to the old (renamed over it: the running
//! container's mount still holds the old inode), and a bind mount of it is put *beneath* the
//! one on `/etc/hosts` inside the container's mount namespace (`move_mount` with
//! `MOVE_MOUNT_BENEATH`, Linux 6.5), then the old one on top is unmounted: a reader opens the
//! old file or the new one, whole. On an older kernel the new mount goes on top instead (one
//! more mount per rewrite, as safe for readers). The mount work is
//! [`crate::supervisor::os::hosts_files`]'s.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::engine::store::{NetworkMode, Status};
use crate::supervisor::engine::store::{Record, write_atomic};
use crate::supervisor::engine::{Daemon, Error};
use crate::supervisor::rules::hosts;
use crate::supervisor::rules::links::{self, Link, LinkError, LinkSource};

/// Serialises hosts rewrites: two for one recipient must not interleave their mounts.
static REWRITE: Mutex<()> = Mutex::new(());

/// The links a record holds (`NAME:ALIAS` each; unreadable ones skipped).
pub fn record_links(r: &Record) -> Vec<Link> {
    r.links.iter().filter_map(|l| Link::parse(l).ok()).collect()
}

/// `HostConfig.Links` as Docker stores it: `/db:/web/db` each.
pub fn host_config_links(r: &Record) -> Vec<String> {
    record_links(r).iter().map(|l| l.host_config_entry(&r.name)).collect()
}

/// `ps`'s `Names` of `r`: its own, then `/RECIPIENT/ALIAS` for each link to it among
/// `all`, as Docker lists a linked source (`db,web/db` under `ps --no-trunc`).
pub fn names_with_links(r: &Record, all: &[Record]) -> Vec<String> {
    let mut names = vec![format!("/{}", r.name)];
    for recipient in all {
        for link in record_links(recipient).iter().filter(|l| l.name == r.name) {
            names.push(link.full_name(&recipient.name));
        }
    }
    names
}

/// What a recipient learns of a running source.
fn source_of(r: &Record) -> Option<LinkSource> {
    let ip = r.ip?;
    let mut exposed = Vec::new();
    for spec in r.expose.iter().filter_map(|e| parse_expose(e).ok()) {
        exposed.extend(spec.container_ports().ports().map(|p| (p, spec.proto())));
    }
    for spec in r.publish.iter().filter_map(|p| PortSpec::parse(p).ok()) {
        exposed.extend(spec.container_ports().ports().map(|p| (p, spec.proto())));
    }
    Some(LinkSource {
        name: r.name.clone(),
        hostname: r.hostname.clone(),
        ip: IpAddr::V4(ip),
        ipv6: None,
        exposed,
        env: r.env.clone(),
    })
}

impl Daemon {
    /// The running sources of a recipient's links, or Docker's refusal for the first one that
    /// does not run (or no longer exists).
    pub(super) fn link_sources(&self, r: &Record) -> Result<Vec<(Link, LinkSource)>, Error> {
        let mut out = Vec::new();
        for link in record_links(r) {
            let not_running = || {
                let e = LinkError::NotRunning {
                    source: link.name.clone(),
                    link: link.full_name(&r.name),
                };
                Error::conflict(e.to_string())
            };
            let source = self.find(&link.name).map_err(|_| not_running())?.record();
            if source.state.status != Status::Running {
                return Err(not_running());
            }
            let info = source_of(&source).ok_or_else(not_running)?;
            out.push((link, info));
        }
        Ok(out)
    }

    /// The link variables a recipient's processes get, from its sources as they are now (what
    /// `exec` sees, as Docker recomputes them); sources that do not run are left out.
    pub fn link_env(&self, r: &Record) -> Vec<String> {
        let mut env = Vec::new();
        if !r.network_mode.is_bridge() {
            // On a user-defined network a link is a name for the DNS only, as in Docker.
            return env;
        }
        for link in record_links(r) {
            let Ok(c) = self.find(&link.name) else { continue };
            let source = c.record();
            if source.state.status != Status::Running {
                continue;
            }
            if let Some(info) = source_of(&source) {
                env.extend(links::link_env(&r.name, &link, &info));
            }
        }
        env
    }

    /// After `source` has started: every running container linking to it gets its hosts file
    /// rewritten with the source's address, swapped in whole.
    pub(super) async fn update_recipients(&self, source: &Record) {
        let Some(info) = source_of(source) else { return };
        for c in self.all() {
            let r = c.record();
            if r.state.status != Status::Running || r.state.pid <= 0 {
                continue;
            }
            let links: Vec<Link> =
                record_links(&r).into_iter().filter(|l| l.name == source.name).collect();
            if links.is_empty() {
                continue;
            }
            let path = self.store.dir(&r.id).join("hosts");
            let pids = self.sharing_files(&r);
            let info = info.clone();
            let result = tokio::task::spawn_blocking(move || {
                let _one = REWRITE.lock().unwrap_or_else(|p| p.into_inner());
                let old = std::fs::read_to_string(&path)?;
                let new = replace_link_lines(&old, &links, &info);
                write_atomic(&path, new.as_bytes())?;
                crate::supervisor::os::hosts_files::swap_in_each(&pids, &path, "/etc/hosts")
            })
            .await
            .map_err(io::Error::other)
            .and_then(|r| r);
            if let Err(e) = result {
                tracing::warn!(recipient = %r.name, error = %e, "could not rewrite /etc/hosts");
            }
        }
    }

    /// The processes whose `/etc/hosts` and `/etc/resolv.conf` are `r`'s files: `r`'s own and
    /// those of the running containers in its network namespace (`--network container:R`,
    /// which share its files, as in Docker), so a rewrite is swapped into each.
    pub(super) fn sharing_files(&self, r: &Record) -> Vec<i32> {
        let mode = NetworkMode::Container(r.id.clone());
        let peers = self.all().into_iter().map(|c| c.record()).filter(|p| {
            p.network_mode == mode && p.state.status == Status::Running && p.state.pid > 0
        });
        std::iter::once(r.state.pid).chain(peers.map(|p| p.state.pid)).collect()
    }

    /// A started container's hosts file with its links' lines (before its own line).
    pub(super) fn write_linked_hosts(
        dir: &Path,
        r: &Record,
        ip: Option<std::net::Ipv4Addr>,
        sources: &[(Link, LinkSource)],
    ) -> io::Result<()> {
        if sources.is_empty() {
            return Ok(());
        }
        let lines: String = sources.iter().map(|(l, s)| links::hosts_lines(l, s)).collect();
        let base = hosts::render_hosts(None, &r.hostname);
        let own = hosts::render_hosts(ip, &r.hostname);
        let own_line = own.strip_prefix(&base).unwrap_or("");
        write_atomic(&dir.join("hosts"), format!("{base}{lines}{own_line}").as_bytes())
    }
}

/// `old` with each line naming one of `links` (by its names after the tab) given the source's
/// new address; lines for other links are kept.
fn replace_link_lines(old: &str, links: &[Link], source: &LinkSource) -> String {
    let mut out = String::with_capacity(old.len());
    for line in old.split_inclusive('\n') {
        let names = line.trim_end().split_once('\t').map(|(_, n)| n);
        let fresh = links
            .iter()
            .map(|l| links::hosts_lines(l, source))
            .find(|new| new.trim_end().split_once('\t').map(|(_, n)| n) == names);
        match fresh {
            Some(new) => out.push_str(&new),
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_sources_new_address_replaces_only_its_lines() {
        let link = Link::parse("db:db").unwrap();
        let source = LinkSource {
            name: "db".into(),
            hostname: "d33c8f2555e3".into(),
            ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 9)),
            ipv6: None,
            exposed: vec![],
            env: vec![],
        };
        let old = "127.0.0.1\tlocalhost\n172.17.0.2\tdb d33c8f2555e3\n172.17.0.6\tcache fcd7763232b1\n172.17.0.7\t6b3c7e29f2c9\n";
        assert_eq!(
            replace_link_lines(old, &[link], &source),
            "127.0.0.1\tlocalhost\n172.17.0.9\tdb d33c8f2555e3\n172.17.0.6\tcache fcd7763232b1\n172.17.0.7\t6b3c7e29f2c9\n"
        );
    }
}
