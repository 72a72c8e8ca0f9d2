//! The `cproxy` binary with `-proto udp`, driven as dockerd drives docker-proxy: the fd-3 status
//! pipe, `-use-listen-fd` with a bound UDP socket on fd 4, and SIGTERM.

mod common;

use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use common::process::CPROXY;
use common::{udp_echo_server, udp_echo_via};

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The read end (ours) and write end (the child's fd 3) of a close-on-exec pipe.
fn status_pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and belong to nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts cproxy with `inherit` installed as its fds 3, 4, … in order.
fn spawn(args: &[String], inherit: &[&OwnedFd]) -> io::Result<Child> {
    // Copies above the targets first, so installing one cannot overwrite another.
    let mut high = Vec::new();
    for fd in inherit {
        // SAFETY: F_DUPFD_CLOEXEC on an open descriptor returns a new one (>= 64) we own.
        let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 64) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` was just created and belongs to nothing else.
        high.push(unsafe { OwnedFd::from_raw_fd(dup) });
    }
    let raw: Vec<RawFd> = high.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(CPROXY);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: between fork and exec only dup2 runs, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for (i, &fd) in raw.iter().enumerate() {
                if libc::dup2(fd, 3 + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// What the child wrote on its status pipe, read to the end as dockerd does.
fn status(mut read: File) -> io::Result<String> {
    let mut s = String::new();
    read.read_to_string(&mut s)?;
    Ok(s)
}

fn udp_args(host_port: Option<u16>, backend: SocketAddr) -> Vec<String> {
    let mut args = vec!["-proto", "udp", "-host-ip", "127.0.0.1"];
    let port = host_port.map(|p| p.to_string());
    if let Some(p) = &port {
        args.extend(["-host-port", p.as_str()]);
    }
    let (ip, bport) = (backend.ip().to_string(), backend.port().to_string());
    args.extend(["-container-ip", ip.as_str(), "-container-port", bport.as_str()]);
    args.into_iter().map(String::from).collect()
}

/// Sends SIGTERM and waits; true if the child exited with success.
fn terminate(mut child: Child) -> io::Result<bool> {
    // SAFETY: kill with the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    Ok(child.wait()?.success())
}

#[test]
fn reports_ready_on_fd3_forwards_udp_and_exits_0_on_sigterm() -> io::Result<()> {
    let backend = udp_echo_server("127.0.0.1");
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let (read, write) = status_pipe()?;
    let child = spawn(&udp_args(Some(port), backend), &[&write])?;
    drop(write);
    assert_eq!(status(read)?, "0\n");
    assert_eq!(udp_echo_via(localhost(port), b"over udp")?, b"over udp");
    assert!(terminate(child)?);
    Ok(())
}

#[test]
fn serves_the_udp_socket_passed_on_fd4_with_use_listen_fd() -> io::Result<()> {
    let backend = udp_echo_server("127.0.0.1");
    let bound = UdpSocket::bind("127.0.0.1:0")?;
    let port = bound.local_addr()?.port();
    let bound = OwnedFd::from(bound);
    let (read, write) = status_pipe()?;
    let mut args = udp_args(None, backend);
    args.push("-use-listen-fd".into());
    let child = spawn(&args, &[&write, &bound])?;
    drop((write, bound));
    assert_eq!(status(read)?, "0\n");
    assert_eq!(udp_echo_via(localhost(port), b"adopted")?, b"adopted");
    assert!(terminate(child)?);
    Ok(())
}

#[test]
fn reports_a_taken_udp_port_on_fd3_in_docker_proxys_words() -> io::Result<()> {
    let taken = UdpSocket::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let (read, write) = status_pipe()?;
    let backend = SocketAddr::from(([127, 0, 0, 1], 9));
    let child = spawn(&udp_args(Some(port), backend), &[&write])?;
    drop(write);
    let reported = status(read)?;
    assert_eq!(reported, format!("1\nlisten udp4 127.0.0.1:{port}: bind: address already in use"));
    assert!(!child.wait_with_output()?.status.success());
    Ok(())
}
