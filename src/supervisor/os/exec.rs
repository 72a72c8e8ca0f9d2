//! The process of an `exec`: `cproxy __nsexec` entered into a running container's
//! namespaces (as `nsenter` does), confined as the container is, with the container's
//! environment. Built here for both callers: the daemon's exec API (Docker's clients) and
//! `cproxy exec`, which runs it itself.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

use crate::supervisor::api::types::{ContainerInspect, ExecConfig};
use crate::supervisor::rules::confine;
use crate::supervisor::rules::env::container_env;

/// The namespaces joined before `__nsexec` runs, in the order they are joined; the mount
/// namespace is joined by `__nsexec` itself, once its program (a host path) runs.
const NAMESPACES: [&str; 4] = ["ipc", "uts", "net", "pid"];

/// An exec's command, ready to spawn, and the descriptors it needs open until then.
pub struct Prepared {
    /// `__nsexec` with its arguments and environment; stdio is the caller's to set.
    pub command: Command,
    /// The container's namespaces, joined between fork and exec.
    _namespaces: Vec<File>,
    /// The container's mount namespace, inherited by `__nsexec`.
    _mnt: OwnedFd,
}

/// Why an exec cannot start: what Docker's client prints, and its exit code (126).
#[derive(Debug)]
pub struct Refused(pub String);

/// Builds the exec of `req` in the container `v` (running, PID `v.state.pid`).
pub fn prepare(v: &ContainerInspect, req: &ExecConfig) -> Result<Prepared, Refused> {
    let pid = v.state.pid;
    if !v.state.status.is_running() || pid <= 0 {
        return Err(Refused(format!("Container {} is not running", v.id)));
    }
    let mut namespaces = Vec::new();
    for ns in NAMESPACES {
        let f = File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| Refused(format!("cannot enter the container's {ns} namespace: {e}")))?;
        namespaces.push(f);
    }
    // Not close-on-exec: `__nsexec` inherits it.
    let mnt = nix::fcntl::open(
        format!("/proc/{pid}/ns/mnt").as_str(),
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Refused(format!("cannot enter the container's mnt namespace: {e}")))?;
    let exe = std::env::current_exe().map_err(|e| Refused(e.to_string()))?;
    let given: Vec<String> = v
        .cproxy_link_env
        .iter()
        .chain(v.config.env.iter())
        .chain(req.env.iter())
        .cloned()
        .collect();
    let given_home = given.iter().any(|kv| kv.split('=').next() == Some("HOME"));
    let env = container_env(&v.config.hostname, given);
    let mut cmd = Command::new(exe);
    let cwd = [&req.working_dir, &v.config.working_dir]
        .into_iter()
        .find(|w| !w.is_empty())
        .cloned()
        .unwrap_or_else(|| "/".into());
    // The working directory is set inside: entering the mount namespace resets it to `/`.
    cmd.arg("__nsexec").arg("--workdir").arg(cwd);
    cmd.arg("--mnt-fd").arg(mnt.as_raw_fd().to_string());
    let hc = &v.host_config;
    let confined = !hc.rootfs.is_empty() || v.image.starts_with("sha256:");
    if confined {
        // The container's own set, or every capability with `--privileged`.
        let privileged = hc.privileged || req.privileged;
        let caps = confine::effective(
            hc.cap_add.as_deref().unwrap_or_default(),
            hc.cap_drop.as_deref().unwrap_or_default(),
            privileged,
            crate::supervisor::os::confine::last_cap().min(37),
        );
        cmd.arg("--caps").arg(caps.to_string());
        let opts =
            confine::security_opts(hc.security_opt.as_deref().unwrap_or_default(), privileged)
                .map_err(Refused)?;
        if opts.no_new_privileges {
            cmd.arg("--no-new-privs");
        }
        match opts.seccomp {
            confine::Seccomp::Unconfined => {}
            confine::Seccomp::Default => {
                cmd.arg("--seccomp").arg("default");
            }
            // The daemon keeps the container's profile beside its hosts file.
            confine::Seccomp::Profile(_) => {
                let dir = std::path::Path::new(&v.hosts_path)
                    .parent()
                    .unwrap_or(std::path::Path::new("/"));
                cmd.arg("--seccomp").arg(dir.join("seccomp.json"));
            }
        }
    }
    let user = if req.user.is_empty() { &v.config.user } else { &req.user };
    if !user.is_empty() {
        cmd.arg("--user").arg(user);
    }
    if confined && !given_home {
        cmd.arg("--set-home");
    }
    if req.tty {
        cmd.arg("--tty");
    }
    cmd.arg("--").args(&req.cmd).env_clear().envs(env);
    // The fds stay open in `namespaces` until the child has been spawned.
    let join =
        namespaces.iter().map(|f| (f.as_raw_fd(), nix::sched::CloneFlags::empty())).collect();
    crate::sys::enter_namespaces_on_spawn(&mut cmd, join, nix::sched::CloneFlags::empty(), false);
    Ok(Prepared { command: cmd, _namespaces: namespaces, _mnt: mnt })
}
