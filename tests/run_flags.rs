//! Usage errors of the built binary, as docker 20.10 words them: an unknown flag before `run`'s
//! command, and a `-p` that took the image (`-p training/webapp`). Both are refused before the
//! daemon is contacted; the socket named is one that cannot exist.

use std::process::{Command, Output};

use testkit::tempdir::TempDir;

/// Runs `cproxy ARGS` against a daemon socket in an empty directory.
fn cproxy(args: &[&str]) -> Output {
    let dir = TempDir::new("cproxy-run-flags").unwrap();
    let host = format!("unix://{}", dir.path().join("no-daemon.sock").display());
    Command::new(env!("CARGO_BIN_EXE_cproxy")).args(args).env("CPROXY_HOST", host).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_refuses_an_unknown_flag_and_a_port_spec_that_took_the_image() {
    for (args, want) in [
        (
            &["run", "--sysctl", "x"][..],
            "cproxy: unknown flag: --sysctl\nSee 'cproxy run --help'.\n",
        ),
        (
            &["run", "-d", "-p", "training/webapp", "python", "app.py"],
            "cproxy: Invalid containerPort: training.\nSee 'cproxy run --help'.\n",
        ),
    ] {
        let out = cproxy(args);
        assert_eq!(stderr(&out), want, "{args:?}");
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Past the flags, a dash starts the command's arguments: the error is the daemon's absence.
    for args in [&["run", "-d", "busybox", "ls", "-la"][..], &["run", "--", "--privileged"]] {
        let out = cproxy(args);
        assert!(stderr(&out).contains("Cannot connect to the cproxy daemon"), "{args:?}");
    }
}

#[test]
fn forward_refuses_a_port_spec_that_took_the_image_for_its_container_port() {
    let out = cproxy(&["forward", "--to", "127.0.0.1", "-p", "training/webapp"]);
    let err = stderr(&out);
    assert!(err.contains("invalid containerPort: training"), "{err}");
    assert!(!err.contains("proto"), "{err}");
    assert_eq!(out.status.code(), Some(2), "forward's usage errors are clap's: {err}");
}
