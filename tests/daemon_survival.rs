//! The daemon survives its users (issue 19): `--host` never deletes a file. Each test runs its
//! daemon in a network namespace of its own (`supervisor_support`), removed even when the test
//! fails.

mod supervisor_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use supervisor_support::{BIN, Netns};

/// `--host unix://PATH` on a regular file refuses, in `forward --control`'s words, and leaves
/// the file; a stale socket there is replaced.
#[test]
fn host_on_a_regular_file_is_refused_and_the_file_kept() {
    let ns = Netns::new();
    let path = ns.dir.join("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, BIN, "daemon", "--dns", "127.0.0.1", "--data-root"])
        .arg(ns.dir.join("data"))
        .arg("-H")
        .arg(format!("unix://{}", path.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let kept = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    assert!(kept, "{} was replaced", path.display());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "cproxy daemon: {} exists and is not a socket: not replacing it with the API socket \
             (remove it or choose another path)\n",
            path.display()
        )
    );

    // A socket nobody listens on (a daemon that was killed) is replaced.
    drop(std::os::unix::net::UnixListener::bind(ns.dir.join("cproxy.sock")).unwrap());
    let d = ns.daemon(&[]);
    assert_eq!(d.api("GET", "/_ping", None), Some((200, "OK".to_string())));
}
