//! docker-py 7.x, Docker's Python SDK, against `cproxy daemon`: `tests/fixtures/docker-py/sdk.py`
//! drives `containers.run` (in the foreground, detached with a published port and labels, with
//! `remove=True`, a failing command), `list` with filters, `get`, `logs` (and streamed,
//! followed), `wait`, `exec_run`, `stop`, `remove`, volumes, networks (`create`, `connect` with
//! an alias a peer reaches, `disconnect`), Docker's errors, `images.load` of a `docker save`
//! archive and `images.list`, and prints what each returns. Its output must be, line for line,
//! what it prints against dockerd 20.10 (`expected.txt`, recorded from one).
//!
//! The SDK's interpreter: `CPROXY_TEST_DOCKER_PY`, else CI's venv
//! (`/opt/cproxy-ci/docker-py/bin/python`, made by `.ci/run`), else a `python3` on PATH that
//! imports docker ≥ 6. Without one the test says why and passes, except in CI (`CI=true`),
//! where it fails.

mod supervisor_support;

use std::path::Path;
use std::process::Command;

use supervisor_support::{Netns, with_image};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A python interpreter with docker-py ≥ 6, or why there is none.
fn docker_py() -> Result<String, String> {
    let candidates: Vec<String> = match std::env::var("CPROXY_TEST_DOCKER_PY") {
        Ok(path) => vec![path],
        Err(_) => vec!["/opt/cproxy-ci/docker-py/bin/python".into(), "python3".into()],
    };
    let probe =
        "import docker, sys; sys.exit(0 if int(docker.__version__.split('.')[0]) >= 6 else 1)";
    for python in &candidates {
        let ok =
            Command::new(python).args(["-c", probe]).output().is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!(
        "no python with docker-py >= 6 among {candidates:?} (CI: python3 -m venv /opt/cproxy-ci/docker-py && /opt/cproxy-ci/docker-py/bin/pip install docker)"
    ))
}

/// The interpreter, or `None` after saying why (a failure in CI).
fn docker_py_or_skip() -> Option<String> {
    match docker_py() {
        Ok(python) => Some(python),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

#[test]
fn the_sdk_prints_what_it_prints_against_dockerd() {
    let Some(python) = docker_py_or_skip() else { return };
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let script = Path::new(FIXTURES).join("docker-py/sdk.py");
    let archive = Path::new(FIXTURES).join("dockerd-20.10-save.tar");
    // Inside the namespace: the published port is on its loopback.
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, &python])
        .arg(&script)
        .arg(&archive)
        .env("DOCKER_HOST", &d.host)
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_TLS_VERIFY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sdk.py failed:\n{stdout}\n{stderr}");
    let expected =
        std::fs::read_to_string(Path::new(FIXTURES).join("docker-py/expected.txt")).unwrap();
    for (i, (got, want)) in stdout.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {} differs from dockerd's", i + 1);
    }
    assert_eq!(stdout.lines().count(), expected.lines().count(), "{stdout}");
    // Nothing of the script's is left: containers, its network, its volume.
    let (_, ps, _) = d.docker(&["ps", "-aq"], None);
    assert_eq!(ps, "");
    let (_, nets, _) = d.docker(&["network", "ls", "--format", "{{.Name}}"], None);
    assert_eq!(nets, "bridge\nhost\nnone\n");
    let (_, vols, _) = d.docker(&["volume", "ls", "-q"], None);
    assert_eq!(vols, "");
}
