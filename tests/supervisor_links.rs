//! Restart policies and links end to end, as root: every test starts `cproxy daemon` inside a
//! network namespace of its own and drives it with the client, comparing with Docker 20.10's
//! behaviour (shared/docker-reference 3c-links.txt, 3e-restart-policies.txt,
//! 3e-dockerd-restart.txt).

mod supervisor_support;

use std::time::{Duration, Instant};

use supervisor_support::{Daemon, Netns, eventually};

/// `inspect -f TEMPLATE NAME`, trimmed.
fn inspect(d: &Daemon, template: &str, name: &str) -> String {
    d.ok(&["inspect", "-f", template, name]).trim().to_string()
}

/// The STATUS column of `ps -a` for `name`.
fn status(d: &Daemon, name: &str) -> String {
    let out = d.ok(&["ps", "-a"]);
    let header = out.lines().next().unwrap_or("");
    let (from, to) = (header.find("STATUS").unwrap(), header.find("PORTS").unwrap());
    let line = out.lines().find(|l| l.ends_with(&format!(" {name}"))).unwrap_or("");
    line.get(from..to).unwrap_or("").trim().to_string()
}

/// Waits until `name`'s `.State.Status` is `want`.
fn wait_state(d: &Daemon, name: &str, want: &str) {
    eventually(20, || (inspect(d, "{{.State.Status}}", name) == want).then_some(()));
}

/// Asserts that `name` stays `exited` with RestartCount `count` for a while (longer than the
/// first back-off delays): there is no signal for "nothing happened".
fn stays_exited(d: &Daemon, name: &str, count: u32) {
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(
            inspect(d, "{{.State.Status}} {{.RestartCount}}", name),
            format!("exited {count}")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_restart_policies_are_refused_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let cases: [(&[&str], &str); 6] = [
        (
            &["--restart", "foo"],
            "cproxy: Error response from daemon: invalid restart policy 'foo'.",
        ),
        (
            &["--restart", "always:3"],
            "cproxy: Error response from daemon: maximum retry count cannot be used with restart policy 'always'.",
        ),
        (
            &["--restart", "on-failure:-1"],
            "cproxy: Error response from daemon: maximum retry count cannot be negative.",
        ),
        (&["--restart", "on-failure:x"], "cproxy: maximum retry count must be an integer."),
        (&["--rm", "--restart", "always"], "cproxy: Conflicting options: --restart and --rm."),
        (
            &["--restart", "unless-stopped:2"],
            "cproxy: Error response from daemon: maximum retry count cannot be used with restart policy 'unless-stopped'.",
        ),
    ];
    for (flags, want) in cases {
        let mut argv = vec!["run", "-d"];
        argv.extend_from_slice(flags);
        argv.push("true");
        let out = d.cli(&argv);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{want}\nSee 'cproxy run --help'.\n"),
            "{flags:?}"
        );
    }
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "", "a refused run creates nothing");
}

#[test]
fn always_restarts_after_exit_0_until_stopped() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let id = d.ok(&["run", "-d", "--name", "always0", "--restart", "always", "sh", "-c", "exit 0"]);
    assert_eq!(inspect(&d, "{{.HostConfig.RestartPolicy.Name}}", "always0"), "always");
    // The back-off doubles from 100 ms: by the fourth restart it waits long enough to be seen.
    let seen = eventually(20, || {
        let s = status(&d, "always0");
        s.starts_with("Restarting (0) ").then_some(s)
    });
    assert!(seen.ends_with(" ago"), "{seen}");
    let count: u32 = inspect(&d, "{{.RestartCount}}", "always0").parse().unwrap();
    assert!(count >= 1, "{count}");
    // ID and name are kept across restarts; `ps` lists a restarting container without -a.
    assert_eq!(inspect(&d, "{{.Id}}", "always0"), id.trim());
    assert!(d.ok(&["ps"]).contains("always0"));
    d.ok(&["stop", "always0"]);
    let count: u32 = inspect(&d, "{{.RestartCount}}", "always0").parse().unwrap();
    wait_state(&d, "always0", "exited");
    stays_exited(&d, "always0", count);
}

#[test]
fn on_failure_restarts_a_failing_command_at_most_n_times() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "-d", "--name", "onfail", "--restart", "on-failure:3", "sh", "-c", "exit 1"]);
    d.ok(&["run", "-d", "--name", "onfail_ok", "--restart", "on-failure:3", "sh", "-c", "exit 0"]);
    assert_eq!(
        inspect(
            &d,
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "onfail"
        ),
        "on-failure 3"
    );
    // 100 + 200 + 400 ms of back-off, then it stays down: four runs in all.
    eventually(20, || {
        (inspect(&d, "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "onfail")
            == "exited 3 1")
            .then_some(())
    });
    stays_exited(&d, "onfail", 3);
    assert!(status(&d, "onfail").starts_with("Exited (1) "), "{}", status(&d, "onfail"));
    // A command that succeeds is not restarted.
    wait_state(&d, "onfail_ok", "exited");
    stays_exited(&d, "onfail_ok", 0);
}

#[test]
fn unless_stopped_restarts_after_failure_and_no_never_does() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    d.ok(&["run", "-d", "--name", "us", "--restart", "unless-stopped", "sh", "-c", "exit 1"]);
    d.ok(&["run", "-d", "--name", "never", "sh", "-c", "exit 1"]);
    eventually(20, || {
        let n: u32 = inspect(&d, "{{.RestartCount}}", "us").parse().ok()?;
        (n >= 2).then_some(())
    });
    assert_eq!(inspect(&d, "{{.HostConfig.RestartPolicy.Name}}", "never"), "no");
    wait_state(&d, "never", "exited");
    stays_exited(&d, "never", 0);
    d.ok(&["stop", "us"]);
    let count: u32 = inspect(&d, "{{.RestartCount}}", "us").parse().unwrap();
    wait_state(&d, "us", "exited");
    stays_exited(&d, "us", count);
}

#[test]
fn a_stopped_container_is_not_restarted_whatever_its_policy() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    for (name, policy) in
        [("no", "no"), ("al", "always"), ("us", "unless-stopped"), ("of", "on-failure")]
    {
        d.ok(&["run", "-d", "--name", name, "--restart", policy, "sleep", "1000"]);
    }
    d.ok(&["stop", "-t", "1", "no", "al", "us", "of"]);
    for name in ["no", "al", "us", "of"] {
        stays_exited(&d, name, 0);
    }
    // An explicit start brings it back.
    d.ok(&["start", "al"]);
    wait_state(&d, "al", "running");
}

#[test]
fn always_comes_back_after_a_daemon_restart() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    let policies = [
        ("us_running", "unless-stopped"),
        ("us_stopped", "unless-stopped"),
        ("al_running", "always"),
        ("al_stopped", "always"),
        ("of_running", "on-failure:3"),
        ("no_running", "no"),
    ];
    for (name, policy) in policies {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "-p",
            "127.0.0.1::80",
            "sleep",
            "1000",
        ]);
    }
    d.ok(&["stop", "-t", "1", "us_stopped", "al_stopped"]);
    let id = inspect(&d, "{{.Id}}", "al_running");
    assert!(d.terminate().success());
    let d = ns.daemon(&[]);
    for (name, want) in [
        ("us_running", "running"),
        ("us_stopped", "exited"),
        ("al_running", "running"),
        ("al_stopped", "running"),
        ("of_running", "running"),
        ("no_running", "exited"),
    ] {
        assert_eq!(
            inspect(&d, "{{.State.Status}} {{.RestartCount}}", name),
            format!("{want} 0"),
            "{name}"
        );
    }
    assert_eq!(inspect(&d, "{{.Id}}", "al_running"), id);
    // Its published port is bound again.
    let port = d.ok(&["port", "al_running", "80"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
}
