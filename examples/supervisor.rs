//! The Docker tutorials' scenario on cproxy's own supervisor, needing nothing but the
//! repository and root: a `cproxy daemon` in a network namespace of its own, a small web app
//! run with `-p` and with `-P --expose`, `ps` and `port` printed, the app fetched through the
//! published ports, then everything stopped and removed; then the tutorials' web + db from
//! `examples/compose.yml` (db only exposed, web linked to it and published), and a user-defined
//! network whose containers find each other by name through the embedded DNS server.
//!
//! Run with `cargo build --release && sudo cargo run --release --example supervisor`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::netns::Netns;
use testkit::tempdir::TempDir;

fn main() -> io::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(io::Error::other(
            "the supervisor demo makes a network namespace: run it as root",
        ));
    }
    let cproxy = cproxy_path()?;
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| {
            io::Error::other("the demo's web app is python3's http.server: install python3")
        })?;
    // Dropped in reverse: the namespace (and anything left running in it), then the directory.
    let dir = TempDir::new("cproxy-demo")?;
    let ns = Netns::new("demo");
    println!(
        "== cproxy supervisor demo, in network namespace {} (binary: {})\n",
        ns.name(),
        cproxy.display()
    );

    let host = format!("unix://{}/cproxy.sock", dir.path().display());
    let mut daemon = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(&cproxy)
        .args(["daemon", "-H", &host, "--data-root"])
        .arg(dir.path().join("data"))
        // The embedded DNS server forwards names it does not know to the namespace's own
        // loopback: the demo's queries never leave the namespace.
        .args(["--dns", "127.0.0.1"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = daemon.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    println!("$ cproxy daemon -H {host}\n{line}");

    let cli = |args: &[&str]| -> io::Result<String> {
        println!("$ cproxy {}", args.join(" "));
        let out = Command::new(&cproxy).env("CPROXY_HOST", &host).args(args).output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}{}", String::from_utf8_lossy(&out.stderr));
        println!();
        if !out.status.success() {
            return Err(io::Error::other(format!("cproxy {args:?} failed")));
        }
        Ok(text)
    };

    let result = (|| -> io::Result<()> {
        // An image made here from Debian's busybox-static: busybox's httpd serves a page.
        let tar = busybox_rootfs(dir.path())?;
        cli(&[
            "import",
            "--change",
            "CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]",
            &tar,
            "demo-busybox",
        ])?;
        cli(&["images"])?;
        cli(&["run", "-d", "--name", "box", "-p", "127.0.0.1:5002:80", "demo-busybox"])?;
        cli(&["exec", "box", "sh", "-c", "grep CapEff /proc/self/status; ls /; id"])?;
        let status = fetch(&ns, "127.0.0.1:5002")?;
        println!("GET http://127.0.0.1:5002/ (busybox httpd, from the image): {status}\n");
        cli(&["rm", "-f", "box"])?;

        // Host commands: `--rootfs /` gives the container the host's files (confined otherwise).
        cli(&[
            "run",
            "--rootfs",
            "/",
            "-d",
            "--name",
            "web",
            "-p",
            "127.0.0.1:5001:5000",
            python,
            "-m",
            "http.server",
            "5000",
        ])?;
        cli(&[
            "run",
            "--rootfs",
            "/",
            "-d",
            "--name",
            "webP",
            "-P",
            "--expose",
            "5000",
            python,
            "-m",
            "http.server",
            "5000",
        ])?;
        cli(&["ps"])?;
        cli(&["port", "web"])?;
        let published = cli(&["port", "webP", "5000"])?;
        let p_port =
            published.lines().next().and_then(|l| l.rsplit(':').next()).unwrap_or("0").to_string();
        cli(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.NetworkSettings.IPAddress}}",
            "web",
        ])?;
        for port in ["5001", p_port.as_str()] {
            let status = fetch(&ns, &format!("127.0.0.1:{port}"))?;
            println!("GET http://127.0.0.1:{port}/ (from inside the namespace): {status}\n");
        }
        cli(&["logs", "web"])?;
        cli(&["stop", "-t", "1", "web"])?;
        cli(&["ps", "-a"])?;
        cli(&["rm", "-f", "web", "webP"])?;

        // The tutorials' web + db from a compose file: db only exposed, web linked and published.
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/compose.yml");
        let compose = ["compose", "-f", file, "-p", "tutorial"];
        cli(&[&compose[..], &["up", "-d"]].concat())?;
        cli(&[&compose[..], &["ps"]].concat())?;
        cli(&[
            "exec",
            "tutorial_web_1",
            "sh",
            "-c",
            "env | grep ^DB_ | sort; grep -w db /etc/hosts",
        ])?;
        let status = fetch(&ns, "127.0.0.1:8080")?;
        println!("GET http://127.0.0.1:8080/ (web, published): {status}\n");
        cli(&[&compose[..], &["down", "-t", "1"]].concat())?;

        // A user-defined network: containers find each other by name and alias through the
        // embedded DNS server at 127.0.0.11.
        cli(&["network", "create", "--subnet", "10.89.0.0/24", "demo-net"])?;
        cli(&["network", "ls"])?;
        cli(&[
            "run",
            "--rootfs",
            "/",
            "-d",
            "--network",
            "demo-net",
            "--network-alias",
            "backend",
            "--name",
            "api",
            python,
            "-m",
            "http.server",
            "8000",
        ])?;
        cli(&[
            "run",
            "--rootfs",
            "/",
            "--network",
            "demo-net",
            "--name",
            "client",
            "getent",
            "hosts",
            "api",
            "backend",
        ])?;
        cli(&["rm", "-f", "api", "client"])?;
        cli(&["network", "rm", "demo-net"])?;
        Ok(())
    })();

    // SAFETY: kill on the daemon we spawned and have not reaped.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait()?;
    println!("daemon stopped ({status}); links left in the namespace: {}", links(&ns));
    result
}

/// A root filesystem tarball from Debian's busybox-static: busybox, its applets, a page.
fn busybox_rootfs(dir: &std::path::Path) -> io::Result<String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| io::Error::other("busybox is needed: apt-get install busybox-static"))?;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("www"))?;
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    let list = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(root.join("www/index.html"), "<h1>hello from an image</h1>\n")?;
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&root).arg(".").status()?;
    if !ok.success() {
        return Err(io::Error::other("tar failed"));
    }
    Ok(tar.display().to_string())
}

fn cproxy_path() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).ok_or_else(|| io::Error::other("no dir"))?;
    let path = dir.join("cproxy");
    if !path.exists() {
        return Err(io::Error::other(format!(
            "{} not found: run `cargo build --release` first",
            path.display()
        )));
    }
    Ok(path)
}

/// The names of the namespace's links (`lo` once the daemon has cleaned up).
fn links(ns: &Netns) -> String {
    let text = ns.ip(&["-o", "link"]);
    text.lines().filter_map(|l| l.split(": ").nth(1)).collect::<Vec<_>>().join(" ")
}

/// `GET /` from a thread inside the namespace, retried until the app answers (10 s).
fn fetch(ns: &Netns, addr: &str) -> io::Result<String> {
    ns.run(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = (|| -> io::Result<String> {
                let mut s = TcpStream::connect(addr)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut reply = String::new();
                s.read_to_string(&mut reply)?;
                reply
                    .lines()
                    .next()
                    .map(str::to_string)
                    .ok_or_else(|| io::Error::other("empty reply"))
            })();
            match attempt {
                Ok(status) => return Ok(status),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
}
