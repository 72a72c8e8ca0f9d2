//! cproxy run as a child process, as dockerd or a user runs it, so that its descriptors and
//! memory can be limited and read from /proc; killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::BorrowedFd;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use testkit::procfs::Fds;
use testkit::{peers, procfs, rlimit, spawn};

/// The binary under test.
pub const CPROXY: &str = env!("CARGO_BIN_EXE_cproxy");

/// The binary [`ProxyProcess`] runs: [`CPROXY`], or the build `CPROXY_UNDER_TEST` names (an
/// older commit's, to see a test fail on it).
pub fn cproxy() -> String {
    std::env::var("CPROXY_UNDER_TEST").unwrap_or_else(|_| CPROXY.into())
}

/// Starts [`cproxy`] inside `ns` with `args`, a status pipe on fd 3 as dockerd gives it, and
/// waits for its `0\n`. It is killed if the test's thread dies first.
pub fn spawn_in_netns(ns: &testkit::netns::Netns, args: &[&str]) -> Child {
    use std::os::fd::AsFd;
    let (status, write) = spawn::status_pipe().expect("status pipe");
    let mut cmd = ns.command(cproxy());
    cmd.args(args).env("CPROXY_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::null());
    spawn::die_with_parent(&mut cmd);
    let child = spawn::spawn_with_fds(cmd, &[Some(write.as_fd())]).expect("spawn cproxy");
    drop(write);
    assert_eq!(spawn::read_status(status).expect("status pipe"), "0\n", "cproxy did not start");
    child
}

/// A running cproxy; killed on drop.
pub struct ProxyProcess {
    pub child: Child,
    /// Host port of the first binding: what a docker-proxy style proxy serves.
    pub port: u16,
    /// The `docker port` lines `cproxy forward` printed, one per binding (none in docker-proxy
    /// mode, which prints nothing).
    pub published: Vec<String>,
    /// Kept open so that the proxy never writes to a closed pipe.
    stdout: Option<BufReader<ChildStdout>>,
    /// Everything the proxy logged, read as it comes so a chatty proxy never blocks on a full
    /// pipe.
    log: Arc<Mutex<String>>,
    log_reader: Option<JoinHandle<()>>,
}

impl ProxyProcess {
    /// Starts cproxy as docker-proxy, forwarding 127.0.0.1 (a free port) to `backend`, with at
    /// most `nofile` descriptors (soft and hard limit) if given, and waits until it accepts
    /// connections.
    pub fn start(backend: SocketAddr, nofile: Option<u64>, extra: &[&str]) -> ProxyProcess {
        let port = peers::free_tcp_port().unwrap();
        let mut cmd = Command::new(cproxy());
        cmd.args(spawn::docker_proxy_args("tcp", Some(port), backend)).args(extra);
        if let Some(n) = nofile {
            rlimit::limit_child_fds(&mut cmd, n);
        }
        let mut proxy = ProxyProcess::spawn(cmd);
        proxy.port = port;
        let deadline = Instant::now() + Duration::from_secs(10);
        // Standalone mode has no readiness pipe: the port answering is the signal.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "cproxy did not start listening");
            thread::sleep(Duration::from_millis(5));
        }
        proxy
    }

    /// Starts cproxy as dockerd does: docker-proxy's flags for 127.0.0.1 (a free port) to
    /// `backend`, a status pipe on fd 3, and waits for its `0\n` (its readiness signal).
    pub fn docker_proxy(backend: SocketAddr, extra: &[&str]) -> ProxyProcess {
        ProxyProcess::docker_proxy_env(backend, extra, &[])
    }

    /// As [`docker_proxy`](Self::docker_proxy), with `env` added to the proxy's environment
    /// (`CPROXY_SETTINGS`, say).
    pub fn docker_proxy_env(
        backend: SocketAddr,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> ProxyProcess {
        use std::os::fd::AsFd;
        let port = peers::free_tcp_port().unwrap();
        let mut cmd = Command::new(cproxy());
        cmd.args(spawn::docker_proxy_args("tcp", Some(port), backend)).args(extra);
        cmd.envs(env.iter().copied());
        let (status, write) = spawn::status_pipe().expect("status pipe");
        let mut proxy = ProxyProcess::spawn_with_fds(cmd, &[Some(write.as_fd())]);
        drop(write);
        let status = spawn::read_status(status).expect("status pipe");
        assert_eq!(status, "0\n", "cproxy did not start: {}", proxy.log());
        proxy.port = port;
        proxy
    }

    /// Starts `cproxy forward ARGS` and waits for the `bindings` lines it prints once it
    /// forwards (its readiness signal).
    pub fn forward(args: &[&str], bindings: usize) -> ProxyProcess {
        let mut cmd = Command::new(cproxy());
        cmd.arg("forward").args(args);
        ProxyProcess::forward_command(cmd, bindings)
    }

    /// As [`forward`](Self::forward), for a `cproxy forward` command the caller has set up
    /// (a umask, limits).
    pub fn forward_command(cmd: Command, bindings: usize) -> ProxyProcess {
        let mut proxy = ProxyProcess::spawn(cmd);
        let Some(stdout) = proxy.stdout.as_mut() else { unreachable!("stdout is piped") };
        for _ in 0..bindings {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "cproxy forward exited early: {}", proxy.log());
            proxy.published.push(line.trim_end().to_string());
        }
        if let Some(first) = proxy.published.first() {
            proxy.port = host_of(first).port();
        }
        proxy
    }

    fn spawn(cmd: Command) -> ProxyProcess {
        ProxyProcess::spawn_with_fds(cmd, &[])
    }

    /// Spawns `cmd` with `fds` as its descriptors 3, 4, … ([`spawn::spawn_with_fds`]).
    fn spawn_with_fds(mut cmd: Command, fds: &[Option<BorrowedFd<'_>>]) -> ProxyProcess {
        cmd.env("CPROXY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn::spawn_with_fds(cmd, fds).unwrap();
        let stdout = child.stdout.take().map(BufReader::new);
        let log = Arc::new(Mutex::new(String::new()));
        let log_reader = child.stderr.take().map(|mut stderr| {
            let log = log.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    log.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        });
        ProxyProcess { child, port: 0, published: Vec::new(), stdout, log, log_reader }
    }

    /// The host address of the `i`th binding `cproxy forward` printed.
    pub fn host(&self, i: usize) -> SocketAddr {
        host_of(&self.published[i])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the proxy.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with the pid of a child this process spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, sig) }, 0, "kill {sig}");
    }

    /// Waits for the proxy to exit, at most `limit`: how it exited.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for cproxy") {
                return status;
            }
            assert!(Instant::now() < deadline, "cproxy still running after {limit:?}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the proxy has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// CPU time (user + system) the process has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        procfs::stat(self.pid()).expect("the proxy's /proc/PID/stat").ticks()
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> u64 {
        procfs::status_kib(self.pid(), field).expect("the proxy's /proc/PID/status")
    }

    /// The process's open descriptors, by kind.
    pub fn fds(&self) -> Fds {
        procfs::fds(self.pid()).expect("the proxy's /proc/PID/fd")
    }

    /// Kills the proxy; returns everything it logged.
    pub fn stop(mut self) -> String {
        self.kill();
        self.log()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The pipe closed with the process: the reader has seen all there was.
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The host address of a `docker port` line such as `80/tcp -> 127.0.0.1:5001`.
pub fn host_of(line: &str) -> SocketAddr {
    line.rsplit(" -> ").next().unwrap().parse().unwrap()
}
