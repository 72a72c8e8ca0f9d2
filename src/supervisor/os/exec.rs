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
    /// The `cgroup.procs` files of the container's cgroups, joined between fork and exec.
    _cgroups: Vec<File>,
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
        .chain(v.config.env.iter().flatten())
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
    let cgroups = container_cgroups(pid)?;
    join_cgroups_on_spawn(&mut cmd, cgroups.iter().map(File::as_raw_fd).collect());
    Ok(Prepared { command: cmd, _namespaces: namespaces, _mnt: mnt, _cgroups: cgroups })
}

/// The `cgroup.procs` files of the cgroups the container's PID 1 is in, open for writing: an
/// exec's process joins them before it runs, as runc's exec does, so the container's limits,
/// stats and freezer count it. None where no cgroup is mounted.
fn container_cgroups(pid: i32) -> Result<Vec<File>, Refused> {
    let Some(layout) = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| crate::supervisor::os::cgroups::Layout::from_mountinfo(&t))
    else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| Refused(format!("cannot read the container's cgroups: {e}")))?;
    layout
        .procs_files(&text)
        .into_iter()
        // A hierarchy mounted where this process cannot see it is not the container's.
        .filter(|f| f.exists())
        .map(|f| {
            std::fs::OpenOptions::new().write(true).open(&f).map_err(|e| {
                Refused(format!("cannot join the container's cgroup {}: {e}", f.display()))
            })
        })
        .collect()
}

/// Moves the spawned process into each cgroup of `procs` (open `cgroup.procs` files) before
/// it runs its program: `0` written there is the writer itself.
fn join_cgroups_on_spawn(cmd: &mut Command, procs: Vec<std::os::fd::RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls write(2) on descriptors opened
    // before the fork (kept open by the caller until the spawn) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for fd in &procs {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
