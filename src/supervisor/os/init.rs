//! The container's init, `cproxy __init` (hidden), in two stages as docker's shim and
//! docker-init (tini) are:
//!
//! 1. the **shim** is what the daemon spawns, already in the container's new mount, UTS, IPC
//!    and (unless shared) network namespaces, with a new PID namespace for its children. It
//!    waits on stdin (a socket to the daemon) for the go byte the daemon sends once the
//!    network is ready, forks the init, tells the daemon the init's PID, then waits for it,
//!    passes signals on, and exits with its status;
//! 2. the **init** is PID 1 of the new PID namespace: it makes the mounts private, bind-mounts
//!    the container's own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, mounts a fresh
//!    `/proc`, sets the hostname, runs the command as its child, reaps every orphan, passes
//!    signals to the command as Docker's PID 1 gets them and exits with the command's status
//!    (128+N for signal N).
//!
//! Both die with their parent (`PR_SET_PDEATHSIG`), so a killed daemon leaves no container.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, pipe2};

use crate::supervisor::os::{confine, rootfs, seccomp, tty};
use crate::supervisor::rules::confine::CapSet;
use crate::supervisor::rules::user::{ExecUser, resolve as resolve_user};
use crate::sys::{self, FdKind};

/// What the command's child writes on the exec-error pipe when confining it failed (it has
/// said why on stderr).
const CONFINE_FAILED: i32 = -1;

/// The descriptor the daemon gives the shim as the command's stdin (`-i`).
pub const STDIN_FD: i32 = 3;

/// `CAP_KILL`: what the container's PID 1 keeps, to pass signals on.
const CAP_KILL: u8 = 5;

/// `cproxy __init`'s arguments (written by the daemon, not by people).
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Hostname to set in the new UTS namespace.
    #[arg(long)]
    pub hostname: String,
    /// Directory holding `hosts`, `hostname`, `resolv.conf` to bind-mount over /etc's.
    #[arg(long)]
    pub files: Option<PathBuf>,
    /// A mount, as JSON (`rootfs::Mount`, resolved by the daemon).
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// `/dev/shm`'s size in bytes (0: 64 MiB).
    #[arg(long = "shm-size", default_value_t = 0)]
    pub shm_size: u64,
    /// `NAME=DIR`: the container's cgroup directory of one hierarchy, mounted at
    /// `/sys/fs/cgroup/NAME` (an empty NAME: at `/sys/fs/cgroup`, cgroup v2).
    #[arg(long = "cgroup")]
    pub cgroups: Vec<String>,
    /// `NAME=SOFT:HARD` resource limits for the command (`-1`: unlimited).
    #[arg(long = "ulimit", allow_hyphen_values = true)]
    pub ulimits: Vec<String>,
    /// Directory to run the command in.
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Turn IPv6 off in this (new) network namespace.
    #[arg(long = "disable-ipv6")]
    pub disable_ipv6: bool,
    /// `docker run --init`: signals always reach the command. Without it the command
    /// gets them only if it handles them, as it would as PID 1.
    #[arg(long = "init")]
    pub init: bool,
    /// The container's root: the overlay's mount point, or a host directory (`--rootfs`).
    /// Without it the command sees the host's files as they are.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The image's layers, top first, `:`-separated: `root` is an overlay of them.
    #[arg(long)]
    pub lower: Option<String>,
    /// The overlay's writable directory.
    #[arg(long)]
    pub upper: Option<PathBuf>,
    /// The overlay's work directory.
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Confine as Docker does: the capability set (hex, as `/proc/PID/status` shows it).
    #[arg(long)]
    pub caps: Option<String>,
    /// The seccomp filter: a file with a profile in Docker's JSON, or `default`.
    #[arg(long)]
    pub seccomp: Option<String>,
    /// `--security-opt no-new-privileges`.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// `--privileged`: the host's devices, nothing masked.
    #[arg(long)]
    pub privileged: bool,
    /// `--read-only`.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// `-u USER[:GROUP]`, resolved in the container's /etc/passwd and /etc/group.
    #[arg(long)]
    pub user: Option<String>,
    /// Set `HOME` from the user's passwd entry (the container does not set it).
    #[arg(long = "set-home")]
    pub set_home: bool,
    /// `-i`: the command's stdin is descriptor 3, a pipe from the daemon (else /dev/null).
    #[arg(long)]
    pub stdin: bool,
    /// `-t`: the command runs on a terminal made inside the container, whose master is sent
    /// to the daemon on stdin (the daemon's socket) before PID 1 says it is ready.
    #[arg(long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// The signals passed on to the command (`stop`'s SIGTERM, Ctrl-C's SIGINT, and what `kill -s`
/// sends): those a process can catch, except SIGCHLD (the init's own) and those the kernel
/// raises at the init itself for what it does (a fault, SIGPIPE on a closed pipe, SIGXFSZ and
/// SIGXCPU at a limit), which must neither be blocked there nor passed on as if sent.
const PASSED: [Signal; 16] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGURG,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGPWR,
];

/// Gives SIGCHLD and the [`PASSED`] signals a handler (PID 1 drops signals left at their
/// default) and blocks them, so [`SigSet::wait`] takes them one at a time.
fn take_signals() -> std::io::Result<SigSet> {
    let mut set = SigSet::empty();
    for sig in PASSED.into_iter().chain([Signal::SIGCHLD]) {
        sys::catch_with_noop(sig)?;
        set.add(sig);
    }
    set.thread_block()?;
    Ok(set)
}

/// A wait status as a shell reports it.
fn exit_code(status: WaitStatus) -> Option<u8> {
    match status {
        WaitStatus::Exited(_, code) => Some(code as u8),
        WaitStatus::Signaled(_, sig, _) => Some(128u8.wrapping_add(sig as u8)),
        _ => None,
    }
}

/// Which signals the supervisor passes to its child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Every one (the shim to the init, `exec`, and `run --init` to the command).
    All,
    /// Only those the child has a handler for: Docker runs the command as PID 1 of its PID
    /// namespace, and the kernel drops signals that PID 1 leaves at their default action. So a
    /// plain `sleep` outlives `docker stop`'s SIGTERM and is killed after the timeout
    /// (`Exited (137)`, 3e-restart-policies.txt), while a shell with a `trap` gets it.
    Handled,
}

/// True if process `pid` has a handler for `sig` (its `SigCgt` mask in `/proc`, as seen from
/// the caller's PID namespace).
fn handles(pid: Pid, sig: Signal) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig as u32 - 1)) != 0)
}

/// Waits for signals: the [`PASSED`] ones go to `child` as `pass` says; returns `child`'s exit
/// code once it has ended, reaping any other child on the way.
fn supervise(set: &SigSet, child: Pid, pass: Pass) -> u8 {
    loop {
        match set.wait() {
            Ok(sig) if sig != Signal::SIGCHLD => {
                if pass == Pass::All || handles(child, sig) {
                    let _ = kill(child, sig);
                }
            }
            Ok(_) => loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(status) if status.pid() == Some(child) => {
                        if let Some(code) = exit_code(status) {
                            return code;
                        }
                    }
                    Ok(_) => {}
                }
            },
            Err(_) => {}
        }
    }
}

/// Runs `cproxy __init`.
pub fn run(args: InitArgs) -> ExitCode {
    match shim(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cproxy init: {e}");
            ExitCode::from(127)
        }
    }
}

fn shim(args: InitArgs) -> Result<u8, String> {
    let set = take_signals().map_err(|e| format!("signals: {e}"))?;
    // fd 0 is the daemon's socket, given to this process to own.
    let mut control = File::from(
        sys::claim_inherited(0, FdKind::Socket).ok_or("stdin is not the daemon's socket")?,
    );
    // `-i`: descriptor 3 is the command's stdin, PID 1's to hand on.
    let stdin = match args.stdin {
        true => Some(sys::claim_inherited(STDIN_FD, FdKind::Pipe).ok_or("no stdin pipe")?),
        false => None,
    };
    let mut go = [0u8; 1];
    if control.read(&mut go).map_err(|e| format!("waiting for the daemon: {e}"))? == 0 {
        return Err("the daemon gave up on this container".into());
    }
    // PID 1 writes a byte here once its mounts and hostname are in place (or closes it when
    // they fail), so the daemon does not call the container started, and `exec` cannot enter
    // it, before the container is what it should be.
    let (ready_r, ready_w) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // This process is single-threaded (nothing has started a thread yet).
    let init = match sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            // With `-t`, PID 1 sends the terminal's master on it: moved off descriptor 0,
            // which becomes the command's stdin.
            let moved = match args.tty {
                true => control.try_clone().ok(),
                false => None,
            };
            drop(control);
            drop(ready_r);
            let stdio = Stdio { stdin, control: moved };
            std::process::exit(i32::from(pid1(&args, &set, ready_w, stdio)));
        }
        ForkResult::Parent { child } => child,
    };
    drop(stdin);
    drop(ready_w);
    let mut said = Vec::new();
    let _ = File::from(ready_r).read_to_end(&mut said);
    if said.first() == Some(&b'r') {
        let _ = control.write_all(format!("{init}\n").as_bytes());
    } else {
        // PID 1 could not make the container: the daemon fails the start with its reason.
        let why = String::from_utf8_lossy(said.get(1..).unwrap_or_default()).replace('\n', " ");
        let why = if why.is_empty() { "the container's init did not start".into() } else { why };
        let _ = control.write_all(format!("error {why}\n").as_bytes());
    }
    drop(control);
    Ok(supervise(&set, init, Pass::All))
}

/// What PID 1 is given for the command's stdio.
struct Stdio {
    /// `-i`: the pipe that becomes the command's stdin.
    stdin: Option<OwnedFd>,
    /// `-t`: the daemon's socket, to send the terminal's master on.
    control: Option<File>,
}

/// PID 1 of the container.
fn pid1(args: &InitArgs, set: &SigSet, ready: OwnedFd, stdio: Stdio) -> u8 {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // The confinement first: a seccomp profile's file is the host's, out of sight once the
    // container's root is made.
    let prepared = confinement(args).and_then(|c| Ok((prepare(args, stdio.stdin)?, c)));
    let prepared = prepared.and_then(|(user, c)| {
        // The terminal is the container's: made once its /dev/pts is mounted.
        let slave = match &stdio.control {
            Some(control) => Some(terminal(control)?),
            None => None,
        };
        Ok((user, c, slave))
    });
    drop(stdio.control);
    let (user, confine, slave) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = File::from(ready).write_all(format!("e{e}").as_bytes());
            return 127;
        }
    };
    run_command(args, set, user.as_ref(), confine.as_ref(), slave, Some(ready))
}

/// Opens the command's terminal and sends its master on `control` (a `t` with it); the slave.
fn terminal(control: &File) -> Result<OwnedFd, String> {
    let (master, slave) = tty::open_pty().map_err(|e| format!("opening a terminal: {e}"))?;
    tty::send_fd(control, b"t", &master)
        .map_err(|e| format!("sending the terminal to the daemon: {e}"))?;
    Ok(slave)
}

/// What the command is confined by, decided before it is forked.
struct Confinement {
    caps: CapSet,
    last: u8,
    no_new_privs: bool,
    /// The seccomp filter, compiled for `caps` and this kernel.
    filter: Option<seccompiler::BpfProgram>,
}

/// The confinement `args` ask for (`--caps`), if any.
fn confinement(args: &InitArgs) -> Result<Option<Confinement>, String> {
    let Some(hex) = &args.caps else {
        return Ok(None);
    };
    let caps =
        CapSet(u64::from_str_radix(hex, 16).map_err(|_| format!("bad capability set {hex}"))?);
    let filter = match args.seccomp.as_deref() {
        None => None,
        Some(which) => {
            let profile = match which {
                "default" => seccomp::Profile::docker_default(),
                file => {
                    let json = std::fs::read(file)
                        .map_err(|e| format!("opening seccomp profile ({file}) failed: {e}"))?;
                    seccomp::Profile::from_json(&json)
                        .map_err(|e| format!("decoding seccomp profile failed: {e}"))?
                }
            };
            let names = caps.names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let kernel = seccomp::kernel_version().map_err(|e| format!("kernel version: {e}"))?;
            Some(seccomp::compile(&profile, &names, kernel)?)
        }
    };
    Ok(Some(Confinement {
        caps,
        last: confine::last_cap(),
        no_new_privs: args.no_new_privs,
        filter,
    }))
}

/// Applies `c` and becomes `user` in the command's process, in runc's order; the error says
/// which step failed.
fn confine_command(c: &Confinement, user: Option<&ExecUser>) -> Result<(), String> {
    confine::drop_bounding(c.caps, c.last).map_err(|e| format!("bounding set: {e}"))?;
    if c.no_new_privs {
        confine::no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }
    // Still root with every capability: the filter needs no `no_new_privs`.
    if let Some(filter) = &c.filter {
        seccomp::apply(filter).map_err(|e| format!("seccomp: {e}"))?;
    }
    if let Some(u) = user {
        confine::become_user(u).map_err(|e| format!("user {}:{}: {e}", u.uid, u.gid))?;
    }
    if user.is_none_or(|u| u.uid == 0) {
        confine::set_capabilities(c.caps).map_err(|e| format!("capabilities: {e}"))?;
    }
    Ok(())
}

/// runc's words for a command that could not be run, and Docker's exit code for it (127 not
/// found, 126 cannot run).
fn exec_failure(name: &str, errno: Errno) -> (String, u8) {
    let why = match errno {
        Errno::ENOENT if !name.contains('/') => {
            return (format!("exec: \"{name}\": executable file not found in $PATH"), 127);
        }
        Errno::ENOENT => format!("stat {name}: no such file or directory"),
        Errno::EACCES => "permission denied".to_string(),
        e => e.desc().to_lowercase(),
    };
    (format!("exec: \"{name}\": {why}"), if errno == Errno::ENOENT { 127 } else { 126 })
}

/// Runs the command as a child and supervises it. With `ready` (a container's PID 1), the
/// daemon hears once the command runs, or why it could not be run, as Docker's start fails
/// (`OCI runtime create failed: …`); without (an exec), that is said on stdout as Docker's
/// exec says it, exit 126.
fn run_command(
    args: &InitArgs,
    set: &SigSet,
    user: Option<&ExecUser>,
    confine: Option<&Confinement>,
    tty: Option<OwnedFd>,
    ready: Option<OwnedFd>,
) -> u8 {
    let argv: Vec<CString> =
        args.command.iter().filter_map(|a| CString::new(a.as_bytes()).ok()).collect();
    if argv.len() != args.command.len() || argv.is_empty() {
        eprintln!("cproxy init: the command contains a NUL byte");
        return 127;
    }
    // Reports an exec failure's errno; closed by a successful exec.
    let Ok((err_r, err_w)) = pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return 127;
    };
    // Single-threaded; the child only calls exec, write and _exit.
    let child = match sys::fork_single_threaded() {
        Err(e) => {
            eprintln!("cproxy init: fork: {e}");
            return 127;
        }
        Ok(ForkResult::Child) => {
            let _ = set.thread_unblock();
            if let Some(slave) = &tty
                && let Err(e) = tty::make_controlling(slave.as_raw_fd())
            {
                eprintln!("cproxy init: the command's terminal: {e}");
                sys::exit_now(127)
            }
            let confined = match confine {
                Some(c) => confine_command(c, user),
                None => user.map_or(Ok(()), |u| {
                    confine::become_user(u).map_err(|e| format!("user {}: {e}", u.uid))
                }),
            };
            if let Err(e) = confined {
                eprintln!("cproxy init: confining the command: {e}");
                let mut w = File::from(err_w);
                let _ = w.write_all(&CONFINE_FAILED.to_ne_bytes());
                sys::exit_now(127)
            }
            // Only stdio goes on to the command (`err_w` is close-on-exec already).
            sys::cloexec_from(3);
            let Err(errno) = execvp(&argv[0], &argv);
            let mut w = File::from(err_w);
            let _ = w.write_all(&(errno as i32).to_ne_bytes());
            sys::exit_now(127)
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(err_w);
    drop(tty);
    if confine.is_some() {
        // PID 1 keeps only what it needs to pass signals on, and cannot be traced.
        let kill = CapSet(0).with(CAP_KILL);
        let _ = confine::not_dumpable();
        let _ = confine::drop_bounding(kill, confine::last_cap());
        let _ = confine::set_capabilities(kill);
    }
    let mut buf = [0u8; 4];
    if File::from(err_r).read_exact(&mut buf).is_ok() {
        let _ = waitpid(child, None);
        let name = args.command[0].to_string_lossy();
        let code = i32::from_ne_bytes(buf);
        let (why, status) = match code {
            // The child said why on stderr.
            CONFINE_FAILED => ("confining the command failed".to_string(), 127),
            errno => exec_failure(&name, Errno::from_raw(errno)),
        };
        let why = format!("unable to start container process: {why}");
        match ready {
            Some(ready) => {
                let said = format!(
                    "efailed to create shim task: OCI runtime create failed: runc create failed: {why}: unknown"
                );
                let _ = File::from(ready).write_all(said.as_bytes());
            }
            None => {
                print!("OCI runtime exec failed: exec failed: {why}: unknown\r\n");
                let _ = std::io::stdout().flush();
                return 126;
            }
        }
        return status;
    }
    if let Some(ready) = ready {
        let _ = File::from(ready).write_all(b"r");
    }
    supervise(set, child, if args.init { Pass::All } else { Pass::Handled })
}

/// Mounts and hostname, inside the container's own mount and UTS namespaces; the user the
/// command runs as, if one is asked for or the container is confined.
fn prepare(args: &InitArgs, stdin: Option<OwnedFd>) -> Result<Option<ExecUser>, String> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("making mounts private: {e}"))?;
    let mounts = parse_mounts(&args.mounts)?;
    let root = args.root.as_ref().map(|target| rootfs::Root {
        target: target.clone(),
        source: match &args.lower {
            Some(lower) => rootfs::Source::Overlay {
                lower: lower.split(':').map(PathBuf::from).collect(),
                upper: args.upper.clone().unwrap_or_default(),
                work: args.work.clone().unwrap_or_default(),
            },
            None => rootfs::Source::Host,
        },
        files: args.files.clone(),
        mounts: mounts.clone(),
        shm_size: args.shm_size,
        cgroups: args
            .cgroups
            .iter()
            .filter_map(|c| c.split_once('=').map(|(n, d)| (n.to_string(), PathBuf::from(d))))
            .collect(),
        privileged: args.privileged,
        read_only: args.read_only,
    });
    match &root {
        Some(root) => rootfs::enter(root)?,
        None => host_mounts(args, &mounts)?,
    }
    if args.disable_ipv6 {
        // Absent when the kernel has no IPv6: then there is nothing to turn off.
        for scope in ["all", "default"] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"), "1");
        }
    }
    nix::unistd::sethostname(&args.hostname).map_err(|e| format!("sethostname: {e}"))?;
    set_ulimits(&args.ulimits)?;
    let cwd = args.workdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    if let Some(root) = &root {
        // Docker makes the working directory if the image has none (root's, whatever -u).
        let _ = std::fs::create_dir_all(&cwd);
        rootfs::finish(root)?;
    }
    let user = match (&args.user, args.caps.is_some() || args.root.is_some()) {
        (Some(spec), _) => Some(spec.as_str()),
        (None, true) => Some(""),
        (None, false) => None,
    };
    let user = match user {
        Some(spec) => {
            let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
            Some(resolve_user(spec, &read("/etc/passwd"), &read("/etc/group"))?)
        }
        None => None,
    };
    if let (Some(u), true) = (&user, args.set_home) {
        // SAFETY: PID 1 is single-threaded.
        unsafe { std::env::set_var("HOME", &u.home) };
    }
    std::env::set_current_dir(&cwd).map_err(|e| {
        format!("chdir to cwd ({:?}) set in config.json failed: {e}", cwd.display().to_string())
    })?;
    if let Some(pipe) = stdin {
        // `-i`: the daemon's pipe (the descriptor is close-on-exec, its copy on 0 is not).
        nix::unistd::dup2_stdin(&pipe).map_err(|e| format!("stdin: {e}"))?;
    } else if let Ok(null) = File::open("/dev/null") {
        // The command reads nothing: stdin is /dev/null, as under `docker run -d`.
        if null.as_raw_fd() == 0 {
            // It took the free fd 0 and is stdin already, but close-on-exec: the command
            // would find no stdin at all.
            let _ = nix::fcntl::fcntl(
                &null,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
            std::mem::forget(null);
        } else {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }
    Ok(user)
}

/// `--ulimit` values set on this process, inherited by the command (runc sets them in the
/// container's init too).
fn set_ulimits(values: &[String]) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    for v in values {
        let u = crate::supervisor::rules::mounts::parse_ulimit(v)?;
        let resource = match u.name.as_str() {
            "core" => Resource::RLIMIT_CORE,
            "cpu" => Resource::RLIMIT_CPU,
            "data" => Resource::RLIMIT_DATA,
            "fsize" => Resource::RLIMIT_FSIZE,
            "locks" => Resource::RLIMIT_LOCKS,
            "memlock" => Resource::RLIMIT_MEMLOCK,
            "msgqueue" => Resource::RLIMIT_MSGQUEUE,
            "nice" => Resource::RLIMIT_NICE,
            "nofile" => Resource::RLIMIT_NOFILE,
            "nproc" => Resource::RLIMIT_NPROC,
            "rss" => Resource::RLIMIT_RSS,
            "rtprio" => Resource::RLIMIT_RTPRIO,
            "rttime" => Resource::RLIMIT_RTTIME,
            "sigpending" => Resource::RLIMIT_SIGPENDING,
            _ => Resource::RLIMIT_STACK,
        };
        let limit = |n: i64| u64::try_from(n).unwrap_or(nix::sys::resource::RLIM_INFINITY);
        setrlimit(resource, limit(u.soft), limit(u.hard))
            .map_err(|e| format!("error setting rlimit type {}: {e}", u.name))?;
    }
    Ok(())
}

/// The daemon's `--mount` values.
fn parse_mounts(values: &[String]) -> Result<Vec<rootfs::Mount>, String> {
    values
        .iter()
        .map(|m| serde_json::from_str(m).map_err(|e| format!("bad mount {m}: {e}")))
        .collect()
}

/// The mounts of a container that sees the host's files (a record of before images): its
/// hosts files over /etc's, its volumes, a fresh /proc.
fn host_mounts(args: &InitArgs, mounts: &[rootfs::Mount]) -> Result<(), String> {
    let none: Option<&str> = None;
    if let Some(dir) = &args.files {
        for name in ["hosts", "hostname", "resolv.conf"] {
            let target = PathBuf::from("/etc").join(name);
            if !target.exists() {
                continue;
            }
            mount(Some(&dir.join(name)), &target, none, MsFlags::MS_BIND, none)
                .map_err(|e| format!("mounting {}: {e}", target.display()))?;
        }
    }
    for m in mounts {
        rootfs::mount_one(std::path::Path::new("/"), m)?;
    }
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| format!("mounting /proc: {e}"))
}

/// `cproxy __nsexec`: started by `cproxy exec` already inside a container's mount, UTS, IPC
/// and network namespaces, with its PID namespace for children; runs the command as a child
/// (so it is inside the PID namespace too), passes signals on, exits with its status.
pub fn nsexec(args: crate::supervisor::client::cli::NsExecArgs) -> ExitCode {
    let Ok(set) = take_signals() else {
        return ExitCode::from(126);
    };
    let (mnt_fd, workdir) = (args.mnt_fd, args.workdir.clone());
    let init_args = InitArgs {
        hostname: String::new(),
        files: None,
        mounts: Vec::new(),
        shm_size: 0,
        cgroups: Vec::new(),
        ulimits: Vec::new(),
        workdir: None,
        disable_ipv6: false,
        init: true,
        root: None,
        lower: None,
        upper: None,
        work: None,
        caps: args.caps,
        seccomp: args.seccomp,
        no_new_privs: args.no_new_privs,
        privileged: false,
        read_only: false,
        user: args.user,
        set_home: args.set_home,
        stdin: false,
        tty: false,
        command: args.command,
    };
    // `-t`: stdin is the daemon's socket, for the terminal's master.
    let control = match args.tty {
        true => match sys::claim_inherited(0, FdKind::Socket) {
            Some(fd) => Some(File::from(fd)),
            None => {
                eprintln!("cproxy exec: stdin is not the daemon's socket");
                return ExitCode::from(126);
            }
        },
        false => None,
    };
    // Before the container's mount namespace: a seccomp profile's file is the host's.
    let confine = match confinement(&init_args) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return ExitCode::from(126);
        }
    };
    if let Some(fd) = mnt_fd {
        let Some(ns) = sys::claim_inherited(fd, FdKind::Namespace) else {
            eprintln!("cproxy exec: descriptor {fd} is not the container's mount namespace");
            return ExitCode::from(126);
        };
        if let Err(e) = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS) {
            eprintln!("cproxy exec: entering the container's mount namespace: {e}");
            return ExitCode::from(126);
        }
    }
    if let Err(e) = std::env::set_current_dir(&workdir) {
        eprintln!("cproxy exec: chdir to {}: {e}", workdir.display());
        return ExitCode::from(126);
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let user = match (&init_args.user, init_args.caps.is_some()) {
        (Some(spec), _) => Some(spec.as_str()),
        (None, true) => Some(""),
        (None, false) => None,
    }
    .map(|spec| resolve_user(spec, &read("/etc/passwd"), &read("/etc/group")))
    .transpose();
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            // runc's words, on stdout as Docker's exec prints them.
            print!("{e}\r\n");
            return ExitCode::from(126);
        }
    };
    if let (Some(u), true) = (&user, init_args.set_home) {
        // SAFETY: this process is single-threaded.
        unsafe { std::env::set_var("HOME", &u.home) };
    }
    // The terminal is the container's: made in its mount namespace.
    let slave = match control.as_ref().map(terminal).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cproxy exec: {e}");
            return ExitCode::from(126);
        }
    };
    if let Some(mut c) = control {
        // Its line ends here; a failure shows as no terminal.
        let _ = c.write_all(b"\n");
    }
    // Single-threaded, as in the shim.
    match sys::fork_single_threaded() {
        Ok(ForkResult::Child) => std::process::exit(i32::from(run_command(
            &init_args,
            &set,
            user.as_ref(),
            confine.as_ref(),
            slave,
            None,
        ))),
        Ok(ForkResult::Parent { child }) => {
            drop(slave);
            ExitCode::from(supervise(&set, child, Pass::All))
        }
        Err(e) => {
            eprintln!("cproxy exec: fork: {e}");
            ExitCode::from(126)
        }
    }
}
