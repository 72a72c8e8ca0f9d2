//! `cproxy exec`: enters a running container's namespaces (as `nsenter` does; the client runs
//! as root, as the socket's permissions require) and runs a command there with the container's
//! environment, its output straight to ours.

use hyper::Method;

use crate::supervisor::api::types::ContainerInspect;
use crate::supervisor::client::cli::ExecArgs;
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail, q};
use crate::supervisor::rules::confine;
use crate::supervisor::rules::env::container_env;

/// The namespaces `exec` joins before it runs `__nsexec`, in the order it joins them; the
/// mount namespace is joined by `__nsexec` itself, once its program (a host path) runs.
const NAMESPACES: [&str; 4] = ["ipc", "uts", "net", "pid"];

/// `exec`: runs `a.command` in the container and exits with its code.
pub(super) async fn exec(client: &Client, a: ExecArgs) -> Result<u8> {
    let uri = format!("/containers/{}/json", q(&a.container));
    let v: ContainerInspect = client.json(Method::GET, &uri, NO_BODY).await?;
    let pid = v.state.pid;
    if v.state.paused {
        return Err(fail(
            format!(
                "Error response from daemon: Container {} is paused, unpause the container before exec",
                a.container
            ),
            1,
        ));
    }
    if !v.state.status.is_running() || pid <= 0 {
        return Err(fail(
            format!("Error response from daemon: Container {} is not running", v.id),
            1,
        ));
    }
    let mut namespaces = Vec::new();
    for ns in NAMESPACES {
        let f = std::fs::File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|e| {
            fail(format!("Error: cannot enter the container's {ns} namespace: {e}"), 126)
        })?;
        namespaces.push(f);
    }
    // Not close-on-exec: `__nsexec` inherits it.
    let mnt = nix::fcntl::open(
        format!("/proc/{pid}/ns/mnt").as_str(),
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail(format!("Error: cannot enter the container's mnt namespace: {e}"), 126))?;
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string(), 126))?;
    let given: Vec<String> =
        v.cproxy_link_env.into_iter().chain(v.config.env.clone()).chain(a.env.clone()).collect();
    let given_home = given.iter().any(|kv| kv.split('=').next() == Some("HOME"));
    let env = container_env(&v.config.hostname, given);
    let fds: Vec<i32> = namespaces.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let mut cmd = std::process::Command::new(exe);
    let cwd = Some(v.config.working_dir).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    // The working directory is set inside: entering the mount namespace resets it to `/`.
    cmd.arg("__nsexec").arg("--workdir").arg(cwd);
    cmd.arg("--mnt-fd").arg(std::os::fd::AsRawFd::as_raw_fd(&mnt).to_string());
    let hc = &v.host_config;
    let confined = !hc.rootfs.is_empty() || v.image.starts_with("sha256:");
    if confined {
        // The container's own set, or every capability with `--privileged`.
        let privileged = hc.privileged || a.privileged;
        let caps = confine::effective(
            hc.cap_add.as_deref().unwrap_or_default(),
            hc.cap_drop.as_deref().unwrap_or_default(),
            privileged,
            crate::supervisor::os::confine::last_cap().min(37),
        );
        cmd.arg("--caps").arg(caps.to_string());
        let opts =
            confine::security_opts(hc.security_opt.as_deref().unwrap_or_default(), privileged)
                .map_err(|e| fail(format!("Error response from daemon: {e}"), 126))?;
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
    let user = a.user.clone().unwrap_or_else(|| v.config.user.clone());
    if !user.is_empty() {
        cmd.arg("--user").arg(user);
    }
    if confined && !given_home {
        cmd.arg("--set-home");
    }
    cmd.arg("--").args(&a.command).env_clear().envs(env);
    // The fds stay open in `namespaces` until the child has been spawned.
    let join = fds.into_iter().map(|fd| (fd, nix::sched::CloneFlags::empty())).collect();
    crate::sys::enter_namespaces_on_spawn(&mut cmd, join, nix::sched::CloneFlags::empty(), false);
    let status =
        cmd.status().map_err(|e| fail(format!("Error: cannot run in the container: {e}"), 126))?;
    drop(namespaces);
    drop(mnt);
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255);
    Ok(u8::try_from(code).unwrap_or(255))
}
