//! The `cproxy` binary with `-proto udp`, driven as dockerd drives docker-proxy: the fd-3 status
//! pipe, `-use-listen-fd` with a bound UDP socket on fd 4, and SIGTERM.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use common::process::CPROXY;
use common::{udp_echo_server, udp_echo_via};
use testkit::spawn::{docker_proxy_args, read_status, spawn_with_fds, status_pipe};

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts cproxy with `inherit` installed as its fds 3, 4, … in order.
fn spawn(args: &[String], inherit: &[&OwnedFd]) -> io::Result<Child> {
    let mut cmd = Command::new(CPROXY);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let fds: Vec<_> = inherit.iter().map(|fd| Some(fd.as_fd())).collect();
    spawn_with_fds(cmd, &fds)
}

fn udp_args(host_port: Option<u16>, backend: SocketAddr) -> Vec<String> {
    docker_proxy_args("udp", host_port, backend)
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
    let port = testkit::peers::free_udp_port()?;
    let (read, write) = status_pipe()?;
    let child = spawn(&udp_args(Some(port), backend), &[&write])?;
    drop(write);
    assert_eq!(read_status(read)?, "0\n");
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
    assert_eq!(read_status(read)?, "0\n");
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
    let reported = read_status(read)?;
    assert_eq!(reported, format!("1\nlisten udp4 127.0.0.1:{port}: bind: address already in use"));
    assert!(!child.wait_with_output()?.status.success());
    Ok(())
}
