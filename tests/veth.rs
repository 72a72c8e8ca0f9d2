//! The relay over a real network path: a veth pair between two namespaces (MTU 1500 and 9000),
//! as between dockerd's host side and a container.
//!
//! Over loopback a segment is up to 64 KiB; over a veth it is one MSS (1448 bytes at MTU 1500),
//! and a `sendfile` backend builds each segment from page fragments. A splice pipe holds one
//! segment per buffer slot, so over a veth it runs out of slots long before it runs out of
//! bytes; that is where the relay once took "pipe full" for "socket drained" and stalled, then
//! spun a core. Every test here moves checksummed data through cproxy run as dockerd runs it,
//! then checks that nothing was left unread in any socket and that the proxy's CPU stays flat
//! while a connection waits.

mod common;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::process::spawn_in_netns;
use common::{Pattern, Sum, recv_sum};
use testkit::netns::VethPath;

/// Port the proxy listens on in `near`, and the backend in `far`.
const PROXY_PORT: u16 = 8080;
const BACKEND_PORT: u16 = 80;
/// A download as large as the one that stalled under dockerd.
const DOWNLOAD: u64 = 16 << 20;
/// How long a client waits for a byte before it declares the relay stalled.
const STALL: Duration = Duration::from_secs(10);

/// Which namespace the clients connect from.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// Beside the proxy, as a client of a port published on the host's loopback.
    Near,
    /// Across the veth, so the client's segments are MSS-sized too.
    Far,
}

/// cproxy in `near` forwarding `near:8080` to a backend at `far:80`, started as dockerd starts
/// it (docker-proxy flags, status pipe on fd 3); killed on drop.
struct Setup {
    path: VethPath,
    proxy: Child,
    /// The proxy's listening address.
    front: SocketAddr,
}

impl Setup {
    fn new(mtu: u32, extra: &[&str]) -> Setup {
        let path = VethPath::new(mtu);
        let front = SocketAddr::new(VethPath::NEAR, PROXY_PORT);
        let args = [
            "-proto",
            "tcp",
            "-host-ip",
            &VethPath::NEAR.to_string(),
            "-host-port",
            &PROXY_PORT.to_string(),
            "-container-ip",
            &VethPath::FAR.to_string(),
            "-container-port",
            &BACKEND_PORT.to_string(),
        ];
        let proxy = spawn_in_netns(&path.near, &[&args[..], extra].concat());
        Setup { path, proxy, front }
    }

    /// A listener for the backend, in `far`.
    fn backend_listener(&self) -> TcpListener {
        let addr = SocketAddr::new(VethPath::FAR, BACKEND_PORT);
        self.path.far.run(move || TcpListener::bind(addr).expect("bind backend"))
    }

    /// A client connection to the proxy from `from`.
    fn connect(&self, from: Client) -> TcpStream {
        let ns = match from {
            Client::Near => &self.path.near,
            Client::Far => &self.path.far,
        };
        let front = self.front;
        let conn = ns.run(move || TcpStream::connect(front).expect("connect to the proxy"));
        // A stalled relay fails the test instead of hanging it.
        conn.set_read_timeout(Some(STALL)).unwrap();
        conn.set_write_timeout(Some(STALL)).unwrap();
        conn
    }

    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proxy.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Bytes received but not yet read, summed over every TCP socket of `ns` (its
    /// `/proc/net/tcp` as seen by a thread inside it), waiting up to 5 s for them to go.
    fn assert_no_unread_bytes(&self) {
        for ns in [&self.path.near, &self.path.far] {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let unread = ns.run(unread_bytes);
                if unread.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "bytes left unread in {}: {unread:?}",
                    ns.name()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Asserts the proxy is alive and not burning CPU while `wait` runs.
    fn assert_quiet_while<R>(&self, what: &str, wait: impl FnOnce() -> R) -> R {
        let before = self.cpu_ticks();
        let r = wait();
        let used = self.cpu_ticks() - before;
        // 100 ticks a second; a spinning relay uses them all.
        assert!(used <= 5, "cproxy used {used} CPU ticks while {what}");
        r
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// (local address, unread bytes) of every socket in the calling thread's namespace that holds
/// received bytes nobody read.
fn unread_bytes() -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for table in ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let state = f[3];
            // A listener's "rx queue" is its accept backlog, not bytes.
            if state == "0A" {
                continue;
            }
            let rx = u64::from_str_radix(f[4].split(':').nth(1).unwrap_or("0"), 16).unwrap_or(0);
            if rx > 0 {
                found.push((f[1].to_string(), rx));
            }
        }
    }
    found
}

/// Serves one connection: sends `len` bytes of `Pattern(seed)` from a file with `sendfile(2)`,
/// as busybox httpd and nginx do, then closes at once. Returns what was sent.
fn sendfile_backend(listener: TcpListener, seed: u64, len: u64) -> thread::JoinHandle<Sum> {
    let (file, sum) = pattern_file(seed, len);
    thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let mut offset: libc::off_t = 0;
        while (offset as u64) < len {
            let left = (len - offset as u64) as usize;
            // SAFETY: sendfile between two fds we own, with a valid offset pointer.
            let n = unsafe {
                libc::sendfile(conn.as_raw_fd(), file.as_raw_fd(), &mut offset, left.min(1 << 20))
            };
            assert!(n > 0, "sendfile: {}", io::Error::last_os_error());
        }
        drop(conn);
        sum
    })
}

/// An unnamed temporary file holding `len` bytes of `Pattern(seed)`, and their checksum.
fn pattern_file(seed: u64, len: u64) -> (File, Sum) {
    let mut file = File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
        .expect("temp file");
    let sum = common::send_pattern(&mut file, seed, len).expect("write temp file");
    (file, sum)
}

/// Serves one connection with `len` bytes written `chunk` bytes at a time (no Nagle), then
/// closes. Returns what was sent.
fn small_writes_backend(
    listener: TcpListener,
    seed: u64,
    len: u64,
    chunk: usize,
) -> thread::JoinHandle<Sum> {
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_nodelay(true).unwrap();
        let mut pattern = Pattern::new(seed);
        let mut buf = vec![0u8; chunk];
        let mut sum = Sum::default();
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk as u64) as usize;
            pattern.fill(&mut buf[..n]);
            conn.write_all(&buf[..n]).expect("backend write");
            sum.update(&buf[..n]);
            left -= n as u64;
        }
        sum
    })
}

/// Reads to end of stream at about `bytes_per_sec`, in 64 KiB reads.
fn recv_slowly(conn: &mut TcpStream, bytes_per_sec: u64) -> io::Result<Sum> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sum = Sum::default();
    let start = Instant::now();
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(sum);
        }
        sum.update(&buf[..n]);
        let due = Duration::from_secs_f64(sum.len as f64 / bytes_per_sec as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
}

/// A reader that never reads for long enough to fill every buffer on the path; reading stops
/// for a second after the first MiB, while the proxy is watched.
fn recv_with_pause(setup: &Setup, conn: &mut TcpStream) -> io::Result<Sum> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sum = Sum::default();
    while sum.len < 1 << 20 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(sum);
        }
        sum.update(&buf[..n]);
    }
    setup.assert_quiet_while("the client did not read for 1 s", || {
        thread::sleep(Duration::from_secs(1))
    });
    common::recv_into(conn, sum)
}

#[derive(Clone, Copy)]
enum Reader {
    Fast,
    Slow,
    Pausing,
}

/// One download from a `sendfile` backend through the proxy, read by `reader`.
fn download(mtu: u32, extra: &[&str], client: Client, reader: Reader) {
    let setup = Setup::new(mtu, extra);
    let backend = sendfile_backend(setup.backend_listener(), 7, DOWNLOAD);
    let mut conn = setup.connect(client);
    conn.shutdown(Shutdown::Write).unwrap();
    let got = match reader {
        Reader::Fast => recv_sum(&mut conn),
        Reader::Slow => recv_slowly(&mut conn, 16 << 20),
        Reader::Pausing => recv_with_pause(&setup, &mut conn),
    }
    .expect("client read");
    let sent = backend.join().expect("backend");
    assert_eq!(got, sent, "the client must receive exactly what the backend sent");
    setup.assert_no_unread_bytes();
}

#[test]
fn sendfile_download_fast_reader_mtu_1500() {
    download(1500, &[], Client::Near, Reader::Fast);
}

#[test]
fn sendfile_download_slow_reader_mtu_1500() {
    download(1500, &[], Client::Near, Reader::Slow);
}

#[test]
fn sendfile_download_pausing_reader_leaves_the_proxy_idle() {
    download(1500, &[], Client::Near, Reader::Pausing);
}

#[test]
fn sendfile_download_pausing_reader_across_the_veth() {
    download(1500, &[], Client::Far, Reader::Pausing);
}

#[test]
fn sendfile_download_pausing_reader_mtu_9000() {
    download(9000, &[], Client::Near, Reader::Pausing);
}

#[test]
fn sendfile_download_one_page_pipes() {
    download(1500, &["-pipe-size", "4096"], Client::Near, Reader::Slow);
}

#[test]
fn sendfile_download_copy_fallback() {
    download(1500, &["-no-splice"], Client::Near, Reader::Pausing);
}

#[test]
fn small_writes_download_fast_and_slow_readers() {
    for (reader, pipe) in [(Reader::Fast, "1048576"), (Reader::Slow, "4096")] {
        let setup = Setup::new(1500, &["-pipe-size", pipe]);
        let len = 4 << 20;
        let backend = small_writes_backend(setup.backend_listener(), 11, len, 100);
        let mut conn = setup.connect(Client::Far);
        let got = match reader {
            Reader::Slow => recv_slowly(&mut conn, 8 << 20),
            _ => recv_sum(&mut conn),
        }
        .expect("client read");
        assert_eq!(got, backend.join().expect("backend"));
        setup.assert_no_unread_bytes();
    }
}

#[test]
fn four_concurrent_downloads_with_slow_and_fast_readers() {
    let setup = Setup::new(1500, &[]);
    let listener = setup.backend_listener();
    let (file, sent) = pattern_file(21, DOWNLOAD);
    let server = thread::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..4 {
            let (conn, _) = listener.accept().expect("accept");
            let file = file.try_clone().expect("dup file");
            conns.push(thread::spawn(move || {
                let mut offset: libc::off_t = 0;
                while (offset as u64) < DOWNLOAD {
                    let left = (DOWNLOAD - offset as u64) as usize;
                    // SAFETY: sendfile between two fds we own, with a valid offset pointer.
                    let n = unsafe {
                        libc::sendfile(conn.as_raw_fd(), file.as_raw_fd(), &mut offset, left)
                    };
                    assert!(n > 0, "sendfile: {}", io::Error::last_os_error());
                }
            }));
        }
        for c in conns {
            c.join().expect("sender");
        }
    });
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let mut conn = setup.connect(if i % 2 == 0 { Client::Near } else { Client::Far });
            thread::spawn(move || {
                if i < 2 { recv_slowly(&mut conn, 12 << 20) } else { recv_sum(&mut conn) }
                    .expect("client read")
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("client"), sent);
    }
    server.join().expect("server");
    setup.assert_no_unread_bytes();
}

#[test]
fn upload_across_the_veth_in_small_writes_is_intact() {
    let setup = Setup::new(1500, &["-pipe-size", "4096"]);
    let listener = setup.backend_listener();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let got = recv_sum(&mut conn).expect("backend read");
        conn.write_all(b"done").unwrap();
        got
    });
    let mut conn = setup.connect(Client::Far);
    conn.set_nodelay(true).unwrap();
    let mut pattern = Pattern::new(5);
    let mut sent = Sum::default();
    let mut buf = [0u8; 700];
    for _ in 0..6000 {
        pattern.fill(&mut buf);
        conn.write_all(&buf).unwrap();
        sent.update(&buf);
    }
    conn.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"done");
    assert_eq!(server.join().expect("backend"), sent);
    setup.assert_no_unread_bytes();
}
