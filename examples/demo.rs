//! A tour of cproxy that needs nothing but the repository: a small web server stands in for a
//! container on 127.0.0.1, and cproxy is started exactly as dockerd starts docker-proxy.
//!
//! Run with `cargo build --release && cargo run --release --example demo`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::thread;
use std::time::Instant;

use testkit::{peers, spawn};

fn main() -> io::Result<()> {
    let cproxy = cproxy_path()?;
    println!("== cproxy demo (binary: {})\n", cproxy.display());

    let web = web_server()?;
    let sink = peers::tcp_sink_server("127.0.0.1")?;
    println!("A \"container\" web server listens on {web}, a byte sink on {sink}.\n");

    let port = peers::free_tcp_port()?;
    println!("dockerd-style start, with the status pipe on fd 3:");
    let args = docker_proxy_args(port, web);
    println!("  $ cproxy {}", args.join(" "));
    let (child, status) = spawn_with_status_pipe(&cproxy, &args)?;
    println!("  status pipe said: {status:?}   (\"0\\n\" = forwarding)\n");

    println!("An HTTP request to 127.0.0.1:{port} goes through cproxy:");
    let reply = http_get(port)?;
    println!("  {}\n", reply.lines().last().unwrap_or(""));

    let bulk_port = peers::free_tcp_port()?;
    let (bulk, _) = spawn_with_status_pipe(&cproxy, &docker_proxy_args(bulk_port, sink))?;
    let len = 2u64 << 30;
    let direct = throughput(sink.port(), len)?;
    let proxied = throughput(bulk_port, len)?;
    println!("Moving 2 GiB over one TCP stream (splice(2) zero-copy on cproxy's side):");
    println!("  direct        {direct:6.1} Gbit/s");
    println!("  through cproxy{proxied:6.1} Gbit/s   ({:.2} of direct)\n", proxied / direct);

    println!("SIGTERM with a download in flight: cproxy stops accepting, finishes it, exits 0.");
    let mut download = TcpStream::connect(("127.0.0.1", port))?;
    download.write_all(b"GET /big HTTP/1.0\r\n\r\n")?;
    let mut first = [0u8; 1];
    download.read_exact(&mut first)?;
    // SAFETY: kill on a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = Vec::new();
    download.read_to_end(&mut rest)?;
    let code = wait(child)?;
    println!("  received {} bytes after the signal; cproxy exited with {code}\n", rest.len() + 1);

    // SAFETY: as above.
    unsafe { libc::kill(bulk.id() as i32, libc::SIGINT) };
    wait(bulk)?;
    println!("Done. `cargo test` runs the test suite; see README.md for dockerd's daemon.json.");
    Ok(())
}

/// The release `cproxy` next to this example's directory (`target/release/examples/..`).
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

/// docker-proxy's command line, as dockerd writes it, from 127.0.0.1:`port` to `backend`.
fn docker_proxy_args(port: u16, backend: SocketAddr) -> Vec<String> {
    spawn::docker_proxy_args("tcp", Some(port), backend)
}

/// Starts cproxy with a pipe on fd 3, as dockerd does, and returns what it wrote there.
fn spawn_with_status_pipe(cproxy: &PathBuf, args: &[String]) -> io::Result<(Child, String)> {
    let (status, write) = spawn::status_pipe()?;
    let mut cmd = Command::new(cproxy);
    cmd.args(args);
    let child = spawn::spawn_with_fds(cmd, &[Some(write.as_fd())])?;
    drop(write);
    Ok((child, spawn::read_status(status)?))
}

fn wait(mut child: Child) -> io::Result<i32> {
    Ok(child.wait()?.code().unwrap_or(-1))
}

/// Answers `GET /` with a greeting and `GET /big` with 64 MiB.
fn web_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut line = String::new();
                let mut reader = BufReader::new(&conn);
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut conn = &conn;
                if line.starts_with("GET /big") {
                    let chunk = vec![b'x'; 1 << 20];
                    let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
                    for _ in 0..64 {
                        if conn.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello from the container\n");
                }
            });
        }
    });
    Ok(addr)
}

fn http_get(port: u16) -> io::Result<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

/// Sends `len` bytes to 127.0.0.1:`port` and returns Gbit/s.
fn throughput(port: u16, len: u64) -> io::Result<f64> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    let buf = vec![0u8; 256 * 1024];
    let start = Instant::now();
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        c.write_all(&buf[..n])?;
        left -= n as u64;
    }
    c.shutdown(Shutdown::Write)?;
    // Wait for the sink to finish reading: it closes after EOF.
    let _ = c.read(&mut [0u8; 1]);
    Ok(len as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9)
}
