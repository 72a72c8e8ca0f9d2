//! Test support for the supervisor: a network namespace the test owns (removed on drop, even
//! when the test fails), a `cproxy daemon` started inside it with its own data root and
//! socket, the client run against it, and code run inside the namespace on a thread.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The cproxy binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_cproxy");

/// A network namespace made for one test (`testkit::netns::Netns`: processes left in it are
/// killed and it is deleted on drop, orphans of killed test runs swept), and a scratch
/// directory, removed on drop.
pub struct Netns {
    ns: Option<testkit::netns::Netns>,
    /// `ip netns` name.
    pub name: String,
    /// Scratch directory for the daemon's socket and data root.
    pub dir: PathBuf,
}

impl Netns {
    /// Creates `cpx-sv-<pid>-<n>` with `lo` up.
    pub fn new() -> Netns {
        let ns = testkit::netns::Netns::new("sv");
        let name = ns.name().to_string();
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Netns { ns: Some(ns), name, dir }
    }

    fn inner(&self) -> &testkit::netns::Netns {
        self.ns.as_ref().expect("the namespace lives until drop")
    }

    /// Runs `ip ARGS` inside the namespace and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        self.inner().ip(args)
    }

    /// Names of the links in the namespace.
    pub fn links(&self) -> Vec<String> {
        self.ip(&["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// PIDs of processes in the namespace.
    pub fn pids(&self) -> Vec<String> {
        self.inner().pids().iter().map(i32::to_string).collect()
    }

    /// A command whose process starts inside the namespace (descriptors handed down kept).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.inner().command(program)
    }

    /// Runs `f` on a thread that has entered the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.inner().run(f)
    }

    /// Starts a daemon inside the namespace.
    pub fn daemon(&self, extra: &[&str]) -> Daemon {
        Daemon::start(self, extra, Start::default())
    }

    /// Starts a daemon inside the namespace, as `start` says.
    pub fn daemon_with(&self, extra: &[&str], start: Start) -> Daemon {
        Daemon::start(self, extra, start)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The namespace first (its processes killed), then the directory they wrote in.
        drop(self.ns.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a test daemon is started, beyond its flags.
#[derive(Debug, Default, Clone, Copy)]
pub struct Start {
    /// Its descriptor limit, soft and hard alike (systemd gives services 1024 soft).
    pub nofile: Option<u64>,
    /// Its stderr to a file ([`Daemon::log`]), with `CPROXY_LOG=info`, instead of the test's.
    pub log: bool,
    /// The host's cgroup hierarchies mounted again where they are, in the daemon's mount
    /// namespace: `ip netns exec` mounts a fresh /sys there, hiding them.
    pub cgroups: bool,
    /// The daemon inherits a descriptor besides its stdio (the test's stderr again, as fd
    /// 77, not close-on-exec), as a daemon started by a careless parent does.
    pub stray_fd: bool,
}

/// The host's cgroup mounts under /sys/fs/cgroup as `(fstype, mount point, super options)`,
/// the tmpfs holding them first (from /proc/self/mountinfo).
pub fn cgroup_mounts() -> Vec<(String, String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, _, opts) = (r.next()?, r.next()?, r.next()?);
            (point.starts_with("/sys/fs/cgroup")
                && matches!(fstype, "tmpfs" | "cgroup" | "cgroup2"))
            .then(|| (fstype.to_string(), point.to_string(), opts.to_string()))
        })
        .collect()
}

/// A client host: a namespace of its own, `10.231.0.2/24` on a veth pair (MTU 1500) whose
/// other end is `10.231.0.1/24` in `ns`.
pub fn client_host(ns: &Netns) -> testkit::netns::Netns {
    let client = testkit::netns::Netns::new("svcl");
    client.ip(&["link", "add", "eth0", "mtu", "1500", "type", "veth", "peer", "name", "cl0"]);
    client.ip(&["link", "set", "cl0", "netns", &ns.name]);
    client.ip(&["addr", "add", "10.231.0.2/24", "dev", "eth0"]);
    client.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", "10.231.0.1/24", "dev", "cl0"]);
    ns.ip(&["link", "set", "cl0", "up"]);
    client
}

/// A shell script that mounts [`cgroup_mounts`] again, then execs its arguments.
pub fn remount_cgroups_script() -> String {
    let mut script = String::new();
    for (fstype, point, opts) in cgroup_mounts() {
        let opts = if fstype == "tmpfs" { "mode=755".to_string() } else { opts };
        script.push_str(&format!(
            "mkdir -p {point} && mount -t {fstype} -o {opts} cgroup {point} && "
        ));
    }
    script.push_str("exec \"$0\" \"$@\"");
    script
}

/// A `cproxy daemon` in a test's namespace; killed on drop if still running.
pub struct Daemon {
    /// The daemon process (`ip netns exec` has exec'd into it).
    pub child: Child,
    /// Its socket, as `unix://PATH`.
    pub host: String,
    /// Its data root.
    pub data_root: PathBuf,
    /// Where its stderr goes, if not to the test's.
    log: Option<PathBuf>,
}

impl Daemon {
    fn start(ns: &Netns, extra: &[&str], start: Start) -> Daemon {
        let socket = ns.dir.join("cproxy.sock");
        let data_root = ns.dir.join("data");
        let host = format!("unix://{}", socket.display());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name]);
        if start.cgroups {
            cmd.args(["sh", "-c", &remount_cgroups_script()]);
        }
        cmd.args([BIN, "daemon", "-H", &host, "--data-root"])
            .arg(&data_root)
            .args(extra)
            // Names the embedded DNS server forwards go to the namespace's own loopback, never
            // to the host's resolvers, unless the test names an upstream of its own.
            .args(if extra.contains(&"--dns") { &[][..] } else { &["--dns", "127.0.0.1"][..] })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(n) = start.nofile {
            // `ip netns exec` execs the daemon, which keeps the limit.
            testkit::rlimit::limit_child_fds(&mut cmd, n);
        }
        if start.stray_fd {
            use std::os::unix::process::CommandExt;
            // SAFETY: dup2 is async-signal-safe and touches no memory of the process.
            unsafe {
                cmd.pre_exec(|| match libc::dup2(2, 77) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                });
            }
        }
        let log = start.log.then(|| ns.dir.join("daemon.log"));
        if let Some(path) = &log {
            cmd.env("CPROXY_LOG", "info").stderr(std::fs::File::create(path).unwrap());
        }
        let mut child = cmd.spawn().unwrap();
        // It prints "cproxy daemon listening on …" once the API socket accepts.
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "daemon did not start: {line:?}");
        Daemon { child, host, data_root, log }
    }

    /// Its PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Its API socket.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(self.host.strip_prefix("unix://").unwrap())
    }

    /// What it wrote to stderr so far (started with [`Start::log`]).
    pub fn log(&self) -> String {
        let path = self.log.as_ref().expect("started with Start { log: true }");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Sends it `sig`.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Its exit status if it has exited, without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// One API request on a connection of its own: the status and the body, `None` if no
    /// answer came within 10 s.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: cproxy\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        let status = reply.split(' ').nth(1)?.parse().ok()?;
        let (_, body) = reply.split_once("\r\n\r\n")?;
        Some((status, body.to_string()))
    }

    /// `cproxy ARGS` with a deadline: its output if it finished within `limit` (else it is
    /// killed), and how long it took.
    pub fn cli_within(&self, args: &[&str], limit: Duration) -> (Option<Output>, Duration) {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .env("CPROXY_HOST", &self.host)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while started.elapsed() < limit {
            if child.try_wait().unwrap().is_some() {
                return (Some(child.wait_with_output().unwrap()), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        (None, started.elapsed())
    }

    /// Runs `cproxy ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN).env("CPROXY_HOST", &self.host).args(args).output().unwrap()
    }

    /// Runs Docker's own CLI against this daemon, `stdin` piped in (else /dev/null): its exit
    /// code, stdout and stderr. Killed after 60 s (the code is then -1).
    pub fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        let (code, out, err) = self.docker_bytes(args, stdin);
        (code, String::from_utf8_lossy(&out).into_owned(), err)
    }

    /// [`Daemon::docker`] with stdout as it came (a tar).
    pub fn docker_bytes(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
        let mut cmd = Command::new(docker_bin());
        cmd.env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_API_VERSION")
            .env("DOCKER_CONFIG", std::env::temp_dir().join("cproxy-test-docker-config"))
            .args(args);
        output_within_a_minute(cmd, stdin)
    }

    /// Runs `cproxy ARGS` against this daemon as [`Daemon::docker`] runs Docker's CLI: `stdin`
    /// piped in (else /dev/null), killed after 60 s (the code is then -1).
    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.env("CPROXY_HOST", &self.host).args(args);
        let (code, out, err) = output_within_a_minute(cmd, stdin);
        (code, String::from_utf8_lossy(&out).into_owned(), err)
    }
}

/// `cmd`'s exit code, stdout and stderr, `stdin` piped in (else /dev/null); killed after 60 s
/// (the code is then -1).
fn output_within_a_minute(mut cmd: Command, stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

impl Daemon {
    /// Runs `cproxy ARGS`, asserts it succeeded, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "cproxy {args:?} exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM, then waits for the daemon to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.child.wait().unwrap()
    }

    /// SIGKILL, then waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real python3 (a command run in a container gets Docker's default PATH).
pub fn python() -> String {
    for p in ["/usr/bin/python3", "/usr/local/bin/python3"] {
        if std::path::Path::new(p).exists() {
            return p.to_string();
        }
    }
    panic!("python3 is needed by the supervisor tests (apt-get install python3)");
}

/// `GET /` through `addr` from inside the namespace: the status line, if anything answered.
pub fn http_get(ns: &Netns, addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.lines().next().map(str::to_string).filter(|l| l.starts_with("HTTP/"))
    })
}

/// Can `addr` be bound in the namespace (nothing holds it)?
pub fn bindable(ns: &Netns, addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    ns.run(move || TcpListener::bind(addr).is_ok())
}

/// A root filesystem tarball of busybox (Debian's busybox-static) under `dir`, gzip-compressed
/// if `gzip`. `full`: every applet, users `root`, `app` (1000, in group `staff`) and `nobody`,
/// and `/tmp`, as a test image for running containers; else a few applets and root only.
pub fn rootfs_tar(full: bool, dir: &std::path::Path, gzip: bool) -> PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("busybox is needed (apt-get install busybox-static)");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let applets = if full {
        let list = Command::new(busybox).arg("--list").output().unwrap();
        String::from_utf8(list.stdout).unwrap()
    } else {
        "sh\nls\necho\ncat\n".to_string()
    };
    for applet in applets.lines().filter(|a| *a != "busybox") {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    let mut passwd = "root:x:0:0:root:/root:/bin/sh\n".to_string();
    if full {
        passwd.push_str("app:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n");
        std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for d in ["tmp", "root", "home/app"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::os::unix::fs::chown(root.join("home/app"), Some(1000), Some(1000)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), passwd).unwrap();
    let out = dir.join(if gzip { "rootfs.tar.gz" } else { "rootfs.tar" });
    let status = Command::new("tar")
        .args([if gzip { "-czf" } else { "-cf" }])
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// A daemon in `ns` with the test image `bb` (a [`rootfs_tar`] of every applet) imported,
/// `changes` given to `import --change`.
pub fn with_image(ns: &Netns, changes: &[&str]) -> Daemon {
    image_on(ns.daemon(&[]), ns, changes)
}

/// Imports the test image `bb` into daemon `d` (started in `ns`), `changes` given to `import
/// --change`.
pub fn image_on(d: Daemon, ns: &Netns, changes: &[&str]) -> Daemon {
    let tar = rootfs_tar(true, &ns.dir, false);
    let mut args = vec!["import"];
    for c in changes {
        args.extend(["--change", c]);
    }
    args.extend([tar.to_str().unwrap(), "bb"]);
    d.ok(&args);
    d
}

/// Docker's CLI on this machine: Debian's 20.10 (`apt-get install docker.io`), else the
/// preinstalled newer one; `CPROXY_TEST_DOCKER` names another.
pub fn docker_bin() -> String {
    if let Ok(path) = std::env::var("CPROXY_TEST_DOCKER") {
        return path;
    }
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a docker CLI is needed (apt-get install docker.io, or the preinstalled client)")
        .to_string()
}
