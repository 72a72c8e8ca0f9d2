//! Starting a container's shim (`cproxy __init`) in new namespaces, from one dedicated thread
//! that lives as long as the daemon: the shim dies with the thread that forked it
//! (`PR_SET_PDEATHSIG`), so that thread must never be a pool thread that comes and goes.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use nix::sched::CloneFlags;

use crate::supervisor::rules::confine::CapSet;

/// What to start.
#[derive(Debug)]
pub struct Launch {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The environment, `KEY=VALUE`.
    pub env: Vec<(String, String)>,
    /// Hostname inside.
    pub hostname: String,
    /// Directory with the hosts files to bind-mount (`None`: the host's are kept).
    pub files: Option<PathBuf>,
    /// `None`: a new network namespace; `Some(fd)`: join that one (`container:NAME`); the
    /// daemon's own is joined with `host_network`.
    pub join_netns: Option<File>,
    /// Stay in the daemon's network namespace (`--network host`).
    pub host_network: bool,
    /// Binds, volumes and tmpfs mounts.
    pub mounts: Vec<crate::supervisor::os::rootfs::Mount>,
    /// `/dev/shm`'s size in bytes (0: 64 MiB).
    pub shm_size: u64,
    /// The container's cgroup directories to mount under `/sys/fs/cgroup`, by name
    /// ([`crate::supervisor::os::cgroups::Layout::container_view`]).
    pub cgroup_view: Vec<(String, PathBuf)>,
    /// `--ulimit` values, `NAME=SOFT:HARD`.
    pub ulimits: Vec<String>,
    /// The command's working directory.
    pub working_dir: Option<String>,
    /// Turn IPv6 off in the container's own network namespace, as Docker's default bridge does.
    pub disable_ipv6: bool,
    /// `--init`: signals always reach the command (else only those it handles,
    /// as for Docker's PID 1).
    pub init: bool,
    /// Its own root and Docker's confinement; `None` for a record of before images (the
    /// host's files, unconfined).
    pub confined: Option<Confined>,
    /// `-i` without `-t`: the read end of the pipe that is the command's stdin.
    pub stdin: Option<OwnedFd>,
    /// `-t`: the command runs on a terminal, whose master the init sends on `control`.
    pub tty: bool,
}

/// A container with a root of its own, confined as Docker confines one.
#[derive(Debug, Clone)]
pub struct Confined {
    /// The root: the overlay's mount point, or a host directory (`--rootfs`).
    pub root: PathBuf,
    /// The image's layers, if the root is an overlay of them.
    pub layers: Option<Layers>,
    /// The capability set.
    pub caps: CapSet,
    /// `no-new-privileges`.
    pub no_new_privs: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// The seccomp filter: `default`, or a file with a profile; `None`: unconfined.
    pub seccomp: Option<String>,
    /// `-u`, else the image's user (empty: root).
    pub user: String,
    /// `HOME` comes from the user's passwd entry.
    pub set_home: bool,
}

/// An overlay of an image's layers.
#[derive(Debug, Clone)]
pub struct Layers {
    /// The layers' directories, top first.
    pub lower: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs's work directory.
    pub work: PathBuf,
}

/// A started shim, waiting for the go byte on `control`.
#[derive(Debug)]
pub struct Started {
    /// The shim process.
    pub child: Child,
    /// The daemon's end of the shim's stdin socket.
    pub control: UnixStream,
}

type Request = (Launch, mpsc::Sender<io::Result<Started>>);

/// The thread that forks every container.
#[derive(Debug, Clone)]
pub struct Spawner {
    tx: mpsc::Sender<Request>,
}

impl Spawner {
    /// Starts the spawning thread.
    pub fn new() -> io::Result<Spawner> {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new().name("spawner".into()).spawn(move || {
            for (launch, reply) in rx {
                let _ = reply.send(spawn(launch));
            }
        })?;
        Ok(Spawner { tx })
    }

    /// Starts a shim; the calling task waits off the runtime's workers.
    pub async fn spawn(&self, launch: Launch) -> io::Result<Started> {
        let (reply, rx) = mpsc::channel();
        self.tx.send((launch, reply)).map_err(|_| io::Error::other("the spawner thread died"))?;
        tokio::task::spawn_blocking(move || rx.recv())
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the spawner thread died"))?
    }
}

fn spawn(launch: Launch) -> io::Result<Started> {
    let (ours, theirs) = UnixStream::pair()?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("cproxy-init").arg("__init").arg("--hostname").arg(&launch.hostname);
    if let Some(files) = &launch.files {
        cmd.arg("--files").arg(files);
    }
    for m in &launch.mounts {
        cmd.arg("--mount").arg(serde_json::to_string(m).map_err(io::Error::other)?);
    }
    for u in &launch.ulimits {
        cmd.arg("--ulimit").arg(u);
    }
    if launch.shm_size != 0 {
        cmd.arg("--shm-size").arg(launch.shm_size.to_string());
    }
    for (name, dir) in &launch.cgroup_view {
        let mut value = std::ffi::OsString::from(format!("{name}="));
        value.push(dir);
        cmd.arg("--cgroup").arg(value);
    }
    if launch.disable_ipv6 {
        cmd.arg("--disable-ipv6");
    }
    if launch.init {
        cmd.arg("--init");
    }
    if launch.tty {
        cmd.arg("--tty");
    }
    if let Some(pipe) = &launch.stdin {
        cmd.arg("--stdin");
        let fd = pipe.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; the descriptor stays open (in `launch`) until
        // the child has been spawned.
        unsafe {
            cmd.pre_exec(move || {
                let target = crate::supervisor::os::init::STDIN_FD;
                // Already there: only its close-on-exec flag goes.
                let r = if fd == target {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, target)
                };
                if r < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    if let Some(w) = &launch.working_dir {
        cmd.arg("--workdir").arg(w);
    }
    if let Some(c) = &launch.confined {
        cmd.arg("--root").arg(&c.root).arg("--caps").arg(c.caps.to_string());
        if let Some(l) = &c.layers {
            let lower: Vec<String> = l.lower.iter().map(|p| p.display().to_string()).collect();
            cmd.arg("--lower").arg(lower.join(":"));
            cmd.arg("--upper").arg(&l.upper).arg("--work").arg(&l.work);
        }
        if let Some(profile) = &c.seccomp {
            cmd.arg("--seccomp").arg(profile);
        }
        if !c.user.is_empty() {
            cmd.arg("--user").arg(&c.user);
        }
        for (on, flag) in [
            (c.no_new_privs, "--no-new-privs"),
            (c.privileged, "--privileged"),
            (c.read_only, "--read-only"),
            (c.set_home, "--set-home"),
        ] {
            if on {
                cmd.arg(flag);
            }
        }
    }
    cmd.arg("--").args(&launch.command);
    cmd.env_clear().envs(launch.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::from(OwnedFd::from(theirs))).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if launch.join_netns.is_none() && !launch.host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // `launch.join_netns` stays open until the child has been spawned.
    let join = launch.join_netns.as_ref().map(|f| (f.as_raw_fd(), CloneFlags::CLONE_NEWNET));
    crate::sys::enter_namespaces_on_spawn(&mut cmd, join.into_iter().collect(), flags, true);
    let child = cmd.spawn()?;
    drop(launch.join_netns);
    drop(launch.stdin);
    Ok(Started { child, control: ours })
}
