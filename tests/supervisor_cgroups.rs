//! Resource limits through cgroups, tested as root on the host's own hierarchies: each test
//! starts `cproxy daemon` in a network namespace of its own, with the host's cgroup mounts made
//! visible to it again and a cgroup parent of its own (`/cproxy-test-<netns>`), runs busybox
//! containers with Docker's flags and reads the cgroup files from the host, as Docker 20.10
//! writes them (tests/fixtures/docker-20.10-cgroups/). Every cgroup a test made is removed
//! when it ends, failed or not.

mod supervisor_support;

use std::path::PathBuf;
use std::process::Output;

use supervisor_support::{Daemon, Netns, Start, cgroup_mounts, eventually, rootfs_tar};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A test's cgroup parent, removed (with whatever is left under it) on drop.
struct Parent {
    /// `/cproxy-test-<netns>`.
    path: String,
}

impl Parent {
    fn new(ns: &Netns) -> Parent {
        Parent { path: format!("/cproxy-test-{}", ns.name) }
    }

    /// The directory of the container `id`'s cgroup in the v1 hierarchy of `controller` (or
    /// the unified one).
    fn dir(&self, controller: &str, id: &str) -> PathBuf {
        let (_, point, _) = cgroup_mounts()
            .into_iter()
            .find(|(t, p, o)| {
                (t == "cgroup" && o.split(',').any(|x| x == controller))
                    || (t == "cgroup2" && p == "/sys/fs/cgroup")
            })
            .unwrap_or_else(|| panic!("no {controller} hierarchy"));
        PathBuf::from(point).join(self.path.trim_start_matches('/')).join(id)
    }

    /// A file of the container's cgroup, trimmed.
    fn read(&self, controller: &str, id: &str, file: &str) -> String {
        let path = self.dir(controller, id).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// The cgroups left under the parent, in any hierarchy.
    fn left(&self) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for (t, point, _) in cgroup_mounts() {
            if t == "tmpfs" {
                continue;
            }
            let dir = PathBuf::from(point).join(self.path.trim_start_matches('/'));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                left.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        left
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let left = self.left();
        // Every process killed and thawed first (a frozen one dies only once thawed), then
        // each directory removed as its last process goes.
        for dir in &left {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        }
        for dir in &left {
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        for (t, point, _) in cgroup_mounts() {
            if t != "tmpfs" {
                let dir = PathBuf::from(point).join(self.path.trim_start_matches('/'));
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// A test's world; bound as `let World { ns, parent, d }` it drops the daemon, then the
/// cgroups left, then the namespace.
struct World {
    d: Daemon,
    parent: Parent,
    ns: Netns,
}

/// A daemon that sees the host's cgroups, with a parent of its own and the image `bb`.
fn world() -> World {
    let ns = Netns::new();
    let parent = Parent::new(&ns);
    let d = start(&ns, &parent);
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    World { d, parent, ns }
}

fn start(ns: &Netns, parent: &Parent) -> Daemon {
    ns.daemon_with(&["--cgroup-parent", &parent.path], Start { cgroups: true, ..Start::default() })
}

fn run_detached(d: &Daemon, args: &[&str]) -> String {
    let mut all = vec!["run", "-d", "--network", "none"];
    all.extend(args);
    d.ok(&all).trim().to_string()
}

#[test]
fn limits_land_in_the_containers_cgroup_files() {
    let World { ns: _ns, parent, d } = world();
    let id = run_detached(
        &d,
        &["-m", "64m", "--cpus", "0.5", "--pids-limit", "50", "bb", "sleep", "1000"],
    );
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "67108864");
    assert_eq!(parent.read("memory", &id, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(parent.read("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(parent.read("cpu", &id, "cpu.cfs_period_us"), "100000");
    assert_eq!(parent.read("pids", &id, "pids.max"), "50");
    // The container's processes are there, and the daemon is not.
    let procs = parent.read("pids", &id, "cgroup.procs");
    assert!(!procs.is_empty());
    assert!(!procs.lines().any(|p| p == d.pid().to_string()), "{procs}");
    let inspect = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.OomKillDisable}}",
        &id,
    ]);
    assert_eq!(inspect.trim(), "67108864 134217728 500000000 50 false");
    d.ok(&["rm", "-f", &id]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new(), "nothing is left after rm");
}

/// The container sees its own cgroup where Docker shows it: `/sys/fs/cgroup` a tmpfs, each
/// v1 hierarchy the container's directory of it, read-only, in the order of Docker 20.10's
/// `mount` lines (tests/fixtures/docker-20.10-confinement/01-default.txt); its limit is read
/// there, a write refused; `--privileged` may write. On cgroup v2 the one directory.
#[test]
fn the_container_sees_its_own_cgroup_as_in_docker() {
    let World { ns: _ns, parent, d } = world();
    let script = "mount | grep cgroup; echo; cat /sys/fs/cgroup/memory/memory.limit_in_bytes \
                  /sys/fs/cgroup/memory.max 2>/dev/null; f=/sys/fs/cgroup/pids.max; \
                  if [ -d /sys/fs/cgroup/pids ]; then f=/sys/fs/cgroup/pids/pids.max; fi; \
                  (echo 5 > $f) 2>&1; echo written=$?";
    let id = run_detached(&d, &["-m", "64m", "bb", "sh", "-c", &format!("{script}; sleep 1000")]);
    let out = eventually(10, || {
        let logs = d.ok(&["logs", &id]);
        logs.contains("written=").then_some(logs)
    });
    let (mounts, rest) = out.split_once("\n\n").unwrap();
    let v2 = cgroup_mounts().iter().all(|(t, _, _)| t != "cgroup");
    if v2 {
        assert_eq!(mounts.lines().count(), 1, "{mounts}");
        assert!(mounts.starts_with("cgroup2 on /sys/fs/cgroup type cgroup2 (ro,"), "{mounts}");
    } else {
        let fixture = include_str!("fixtures/docker-20.10-confinement/01-default.txt")
            .lines()
            .filter(|l| l.contains(" on /sys/fs/cgroup") && !l.contains("name=systemd"));
        let ours: Vec<&str> = mounts.lines().collect();
        let docker: Vec<&str> = fixture.collect();
        // The hierarchies this host has, in Docker's order and with Docker's options.
        let have: Vec<&str> =
            docker.iter().copied().filter(|l| l.starts_with("tmpfs") || ours.contains(l)).collect();
        assert_eq!(ours, have, "as Docker's mount lines");
        assert!(ours.len() >= 2, "{mounts}");
        // Its own cgroup is the root: the limit is the container's.
        assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "67108864");
    }
    assert!(rest.starts_with("67108864\n"), "{rest}");
    assert!(rest.contains("Read-only file system"), "{rest}");
    assert!(rest.ends_with("written=1\n"), "{rest}");
    d.ok(&["rm", "-f", &id]);
    // `--privileged`: writable, as Docker mounts it.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--privileged",
        "bb",
        "sh",
        "-c",
        "mount | grep -c 'on /sys/fs/cgroup.* (rw'",
    ]);
    assert_ne!(out.trim(), "0", "{out}");
}

#[test]
fn every_flag_lands_as_dockers_did() {
    let World { ns: _ns, parent, d } = world();
    let id = run_detached(
        &d,
        &[
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--memory-reservation",
            "32m",
            "--cpu-shares",
            "512",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "25000",
            "--cpuset-cpus",
            "0",
            "--cpuset-mems",
            "0",
            "--pids-limit",
            "50",
            "--oom-kill-disable",
            "bb",
            "sleep",
            "1000",
        ],
    );
    // 01-flags.txt: the files of Docker's container `all`.
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "67108864");
    assert_eq!(parent.read("memory", &id, "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(parent.read("memory", &id, "memory.soft_limit_in_bytes"), "33554432");
    assert!(parent.read("memory", &id, "memory.oom_control").starts_with("oom_kill_disable 1"));
    assert_eq!(parent.read("cpu", &id, "cpu.shares"), "512");
    assert_eq!(parent.read("cpu", &id, "cpu.cfs_period_us"), "50000");
    assert_eq!(parent.read("cpu", &id, "cpu.cfs_quota_us"), "25000");
    assert_eq!(parent.read("cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(parent.read("cpuset", &id, "cpuset.mems"), "0");
    assert_eq!(parent.read("pids", &id, "pids.max"), "50");
    let host = d.ok(&["inspect", "-f", "{{json .HostConfig}}", &id]);
    let v: serde_json::Value = serde_json::from_str(&host).unwrap();
    for (k, want) in [
        ("CpuShares", serde_json::json!(512)),
        ("Memory", serde_json::json!(67108864)),
        ("NanoCpus", serde_json::json!(0)),
        ("CgroupParent", serde_json::json!("")),
        ("BlkioWeight", serde_json::json!(0)),
        ("CpuPeriod", serde_json::json!(50000)),
        ("CpuQuota", serde_json::json!(25000)),
        ("CpusetCpus", serde_json::json!("0")),
        ("CpusetMems", serde_json::json!("0")),
        ("KernelMemory", serde_json::json!(0)),
        ("MemoryReservation", serde_json::json!(33554432)),
        ("MemorySwap", serde_json::json!(134217728)),
        ("MemorySwappiness", serde_json::Value::Null),
        ("OomKillDisable", serde_json::json!(true)),
        ("PidsLimit", serde_json::json!(50)),
    ] {
        assert_eq!(v[k], want, "{k} in {host}");
    }
    d.ok(&["rm", "-f", &id]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

#[test]
fn bad_values_are_refused_in_dockers_words() {
    let World { ns: _ns, parent, d } = world();
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (flags, words) in [
        (&["-m", "4m"][..], "Minimum memory limit allowed is 6MB".to_string()),
        (&["-m", "1x"][..], "invalid argument \"1x\" for \"-m, --memory\" flag: invalid size: '1x'".into()),
        (&["--memory-swap", "100m"][..], "You should always set the Memory limit when using Memoryswap limit, see usage".into()),
        (&["-m", "64m", "--memory-swap", "32m"][..], "Minimum memoryswap limit should be larger than memory limit, see usage".into()),
        (&["--cpus", "99"][..], format!("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")),
        (&["--cpus", "abc"][..], "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number".into()),
        (&["--cpus", "0.5", "--cpu-period", "100000"][..], "Conflicting options: Nano CPUs and CPU Period cannot both be set".into()),
        (&["--cpu-quota", "500"][..], "CPU cfs quota can not be less than 1ms (i.e. 1000)".into()),
        (&["--cpuset-cpus", "abc"][..], "Invalid value abc for cpuset cpus: invalid format: abc".into()),
        (&["--pids-limit", "abc"][..], "invalid argument \"abc\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax".into()),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags);
        args.extend(["bb", "true"]);
        let out = d.cli(&args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        assert!(stderr(&out).contains(&words), "{flags:?}: {}", stderr(&out));
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "", "nothing was created");
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported() {
    let World { ns: _ns, parent, d } = world();
    let out = d.cli(&[
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "bb",
        "sh",
        "-c",
        "tail /dev/zero",
    ]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let state = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.OOMKilled}} {{.State.ExitCode}}",
        "hog",
    ]);
    assert_eq!(state.trim(), "exited true 137");
    // A hog in a child whose shell survives: still OOMKilled, as Docker reports it (hog3).
    let out = d.cli(&[
        "run",
        "--name",
        "hog3",
        "--network",
        "none",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "bb",
        "sh",
        "-c",
        "tail /dev/zero; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let state = d.ok(&["inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog3"]);
    assert_eq!(state.trim(), "true 3");
    // A container that was not killed is not.
    d.ok(&["run", "--name", "fine", "--network", "none", "-m", "8m", "bb", "true"]);
    assert_eq!(d.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "fine"]).trim(), "false");
    assert_eq!(parent.left(), Vec::<PathBuf>::new(), "stopped containers keep no cgroup");
}

#[test]
fn a_fork_loop_stops_at_the_pids_limit() {
    let World { ns: _ns, parent, d } = world();
    // Bounded: 30 tries, each a sleeping child, in a subshell that busybox ends at its first
    // failed fork; then the shell waits to be removed.
    let id = run_detached(
        &d,
        &[
            "--pids-limit",
            "10",
            "bb",
            "sh",
            "-c",
            "(for i in $(seq 1 30); do sleep 1000 & done); echo forked; exec sleep 1000",
        ],
    );
    let logs = eventually(30, || {
        let out = d.cli(&["logs", &id]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        all.contains("forked").then_some(all)
    });
    assert!(logs.contains("can't fork"), "{logs}");
    assert_eq!(parent.read("pids", &id, "pids.max"), "10");
    let current: u32 = parent.read("pids", &id, "pids.current").parse().unwrap();
    assert!((2..=10).contains(&current), "{current} processes");
    let events: u32 =
        parent.read("pids", &id, "pids.events").trim_start_matches("max ").parse().unwrap();
    assert!(events >= 1, "the limit refused a fork");
    d.ok(&["rm", "-f", &id]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

#[test]
fn nothing_is_left_after_a_killed_daemon_starts_again() {
    let World { ns, parent, mut d } = world();
    let id = run_detached(&d, &["-m", "64m", "bb", "sleep", "1000"]);
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "67108864");
    d.kill();
    drop(d);
    let d = start(&ns, &parent);
    assert_eq!(parent.left(), Vec::<PathBuf>::new(), "the new daemon swept the old cgroup");
    let state = d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", &id]);
    assert_eq!(state.trim(), "exited 137");
    // It starts again with its limits.
    d.ok(&["start", &id]);
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "67108864");
    let mut d = d;
    d.terminate();
    assert_eq!(parent.left(), Vec::<PathBuf>::new(), "a daemon stop removes them");
}

#[test]
fn update_changes_a_running_containers_limits() {
    let World { ns: _ns, parent, d } = world();
    let id = run_detached(&d, &["--name", "up", "-m", "64m", "bb", "sleep", "1000"]);
    let out = d.ok(&[
        "update",
        "--cpus",
        "0.5",
        "-m",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "40",
        "up",
    ]);
    assert_eq!(out, "up\n");
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), "134217728");
    assert_eq!(parent.read("memory", &id, "memory.memsw.limit_in_bytes"), "268435456");
    assert_eq!(parent.read("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(parent.read("pids", &id, "pids.max"), "40");
    let shown = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
        "up",
    ]);
    assert_eq!(shown.trim(), "134217728 268435456 500000000 40");
    // 04-update-pause.txt's refusals.
    let out = d.cli(&["update", "-m", "300m", "up"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "Error response from daemon: Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        )
    );
    let out = d.cli(&["update", "-m", "4m", "up"]);
    assert_eq!(
        stderr(&out).trim(),
        "Error response from daemon: Minimum memory limit allowed is 6MB"
    );
    let out = d.cli(&["update", "up"]);
    assert_eq!(stderr(&out).trim(), "you must provide one or more flags when using this command");
    assert_eq!(d.ok(&["update", "--restart", "always", "up"]), "up\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "up"]).trim(),
        "always"
    );
    // The limits stay with the container across a restart.
    d.ok(&["restart", "-t", "0", "up"]);
    assert_eq!(parent.read("pids", &id, "pids.max"), "40");
    d.ok(&["rm", "-f", "up"]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

#[test]
fn pause_freezes_every_process_until_unpause() {
    let World { ns: _ns, parent, d } = world();
    let id = run_detached(&d, &["--name", "pz", "bb", "sleep", "1000"]);
    assert_eq!(d.ok(&["pause", "pz"]), "pz\n");
    assert_eq!(parent.read("freezer", &id, "freezer.state"), "FROZEN");
    let status = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.trim().starts_with("Up ") && status.trim().ends_with(" (Paused)"), "{status}");
    assert_eq!(d.ok(&["ps", "--filter", "status=paused", "--format", "{{.Names}}"]), "pz\n");
    let state =
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "pz"]);
    assert_eq!(state.trim(), "paused true true");
    for (args, words) in [
        (
            &["pause", "pz"][..],
            format!("Error response from daemon: Container {id} is already paused"),
        ),
        (
            &["exec", "pz", "true"][..],
            "Error response from daemon: Container pz is paused, unpause the container before exec"
                .to_string(),
        ),
        (
            &["rm", "pz"][..],
            format!(
                "Error response from daemon: You cannot remove a paused container {id}. Unpause and then stop the container before attempting removal or force remove"
            ),
        ),
    ] {
        let out = d.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&out).trim(), words, "{args:?}");
    }
    assert_eq!(d.ok(&["unpause", "pz"]), "pz\n");
    assert_eq!(parent.read("freezer", &id, "freezer.state"), "THAWED");
    let state = d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz"]);
    assert_eq!(state.trim(), "running false");
    let out = d.cli(&["unpause", "pz"]);
    assert_eq!(
        stderr(&out).trim(),
        format!("Error response from daemon: Container {id} is not paused")
    );
    // A paused container is killed as Docker kills one: thawed to take its signal.
    d.ok(&["pause", "pz"]);
    d.ok(&["kill", "pz"]);
    let state =
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}", "pz"]);
    assert_eq!(state.trim(), "exited false 137");
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

/// A measurement, not an assertion (the machine is shared): `--cpus 0.5` against a busy loop,
/// its CPU time over 5 s of wall time from `cpuacct.usage`. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn measure_cpus_half_against_a_busy_loop() {
    let World { ns: _ns, parent, d } = world();
    for cpus in ["0.5", "1.5"] {
        let id = run_detached(&d, &["--cpus", cpus, "bb", "sh", "-c", "while :; do :; done"]);
        let usage = || -> u64 { parent.read("cpuacct", &id, "cpuacct.usage").parse().unwrap() };
        let (u0, t0) = (usage(), std::time::Instant::now());
        std::thread::sleep(std::time::Duration::from_secs(5));
        let (u1, t1) = (usage(), std::time::Instant::now());
        let cores = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
        println!("--cpus {cpus}: a busy loop used {cores:.3} of a core over 5 s");
        d.ok(&["rm", "-f", &id]);
    }
}

#[test]
fn stats_shows_dockers_columns_from_the_cgroup() {
    let World { ns: _ns, parent: _parent, d } = world();
    let id = run_detached(&d, &["--name", "st", "-m", "64m", "bb", "sleep", "1000"]);
    let out = d.ok(&["stats", "--no-stream", "st"]);
    let lines: Vec<&str> = out.lines().collect();
    let cells = |l: &str| -> Vec<String> {
        l.split("   ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
    };
    assert_eq!(
        cells(lines[0]),
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    let row = cells(lines[1]);
    assert_eq!(row[0], id[..12]);
    assert_eq!(row[1], "st");
    assert!(row[2].ends_with('%'), "{out}");
    assert!(row[3].ends_with(" / 64MiB"), "{out}");
    assert_eq!(row[5], "0B / 0B", "no network: {out}");
    assert!(row[7].parse::<u32>().unwrap() >= 1, "{out}");
    // --format as docker/cli's statsContext: `.Container` is the container as named (its
    // short ID when none is), each template's output what Docker's CLI prints.
    let format = "table {{.Container}}\t{{.Name}}\t{{.ID}}\t{{.PIDs}}";
    let out = d.ok(&["stats", "--no-stream", "--format", format]);
    let want =
        format!("CONTAINER      NAME      CONTAINER ID   PIDS\n{0}   st        {0}   ", &id[..12]);
    assert!(out.starts_with(&want), "{out}");
    let json = d.ok(&["stats", "--no-stream", "--format", "{{json .}}", "st"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["Container"].as_str(), v["Name"].as_str()), (Some("st"), Some("st")), "{json}");
    assert!(v["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{json}");
    let plain = "{{.Name}} {{.ID}}";
    assert_eq!(
        d.ok(&["stats", "--no-stream", "--format", plain, "st"]),
        format!("st {}\n", &id[..12])
    );
    let (code, docker, err) = d.docker(&["stats", "--no-stream", "--format", plain, "st"], None);
    assert_eq!((code, docker), (0, format!("st {}\n", &id[..12])), "{err}");
    let (status, body) =
        d.api("GET", "/containers/st/stats?stream=false&one-shot=true", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["memory_stats"]["limit"], 67108864);
    assert_eq!(v["name"], "/st");
    assert_eq!(v["id"], id.as_str());
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1, "{body}");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0, "{body}");
    let out = d.cli(&["stats", "--no-stream", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "Error response from daemon: No such container: nosuch");
    assert!(out.stdout.is_empty());
    d.ok(&["rm", "-f", "st"]);
}

/// An exec's process is in its container's cgroups, as runc's exec puts it: the container's
/// limits, `stats` and `pause` count it. Through cproxy's exec and Docker's CLI (the API's).
#[test]
fn an_exec_runs_in_its_containers_cgroups() {
    let World { ns: _ns, parent, d } = world();
    let id = run_detached(&d, &["-m", "64m", "--pids-limit", "20", "bb", "sleep", "1000"]);
    let init = d.ok(&["exec", &id, "cat", "/proc/1/cgroup"]);
    let mine = d.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert!(init.contains(&id), "the container's PID 1 is in its cgroup: {init}");
    let of_memory = |text: &str| {
        text.lines()
            .find(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "memory")))
            .map(str::to_string)
    };
    assert_eq!(of_memory(&mine), of_memory(&init), "{mine}");
    let (code, out, err) = d.docker(&["exec", &id, "cat", "/proc/self/cgroup"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(of_memory(&out), of_memory(&init), "{out}");
    // Counted where the container's processes are counted: a sleeping exec adds to them.
    let count = || parent.read("pids", &id, "pids.current").parse::<u32>().unwrap();
    let before = count();
    let (code, _, err) = d.docker(&["exec", "-d", &id, "sleep", "1000"], None);
    assert_eq!(code, 0, "{err}");
    eventually(10, || (count() > before).then_some(()));
    d.ok(&["rm", "-f", &id]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

/// `cproxy compose` takes compose's resource keys (`mem_limit`, `cpus`, `pids_limit`) and
/// `deploy.resources` as `run`'s flags: they land in `HostConfig` and the cgroup's files.
#[test]
fn compose_resource_keys_land_as_runs_flags() {
    let World { ns, parent, d } = world();
    let file = ns.dir.join("compose.yml");
    std::fs::write(
        &file,
        "services:
  limited:
    image: bb
    command: sleep 1000
    network_mode: none
    mem_limit: 64m
    cpus: 0.5
  deployed:
    image: bb
    command: sleep 1000
    network_mode: none
    deploy:
      resources:
        limits: {memory: 32m, pids: 20}
",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let up = d.cli(&["compose", "-f", file, "-p", "res", "up", "-d"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let inspect = |name: &str| -> serde_json::Value {
        let out = d.ok(&["inspect", name]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
    };
    let limited = inspect("res_limited_1");
    assert_eq!(limited["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(limited["HostConfig"]["NanoCpus"], 500_000_000);
    let id = limited["Id"].as_str().unwrap().to_string();
    assert_eq!(parent.read("memory", &id, "memory.limit_in_bytes"), (64u64 << 20).to_string());
    let deployed = inspect("res_deployed_1");
    assert_eq!(deployed["HostConfig"]["Memory"], 32 << 20);
    assert_eq!(deployed["HostConfig"]["PidsLimit"], 20);
    let id = deployed["Id"].as_str().unwrap().to_string();
    assert_eq!(parent.read("pids", &id, "pids.max"), "20");
    let down = d.cli(&["compose", "-f", file, "-p", "res", "down", "-t", "1"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

/// A block device of the host (`/dev/NAME`, `MAJOR:MINOR`), the first `/sys/block` lists
/// with a node in /dev (loop and RAM disks last).
fn block_device() -> Option<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| (n.starts_with("loop") || n.starts_with("ram"), n.clone()));
    names.into_iter().find_map(|n| {
        let node = format!("/dev/{n}");
        let numbers = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        std::path::Path::new(&node).exists().then(|| (node, numbers.trim().to_string()))
    })
}

#[test]
fn device_limits_land_as_dockers_did() {
    let World { ns: _ns, parent, d } = world();
    let Some((dev, numbers)) = block_device() else {
        panic!("this test needs a block device in /sys/block with its node in /dev");
    };
    let flag = |v: &str| format!("{dev}:{v}");
    let (rbps, wbps, riops, wiops, weight) =
        (flag("1mb"), flag("2mb"), flag("100"), flag("200"), flag("300"));
    let mut args = vec!["run", "-d", "--network", "none"];
    args.extend(["--device-read-bps", &rbps, "--device-write-bps", &wbps]);
    args.extend(["--device-read-iops", &riops, "--device-write-iops", &wiops]);
    args.extend(["--blkio-weight-device", &weight, "bb", "sleep", "1000"]);
    let out = d.cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v1 = parent.dir("blkio", &id).join("blkio.throttle.read_bps_device").exists();
    if v1 {
        // Docker 20.10 here: `254:0 1048576` in each file, the weight discarded with a
        // warning where the kernel has no blkio.weight_device (since 5.0).
        for (file, rate) in [
            ("read_bps_device", "1048576"),
            ("write_bps_device", "2097152"),
            ("read_iops_device", "100"),
            ("write_iops_device", "200"),
        ] {
            let got = parent.read("blkio", &id, &format!("blkio.throttle.{file}"));
            assert_eq!(got, format!("{numbers} {rate}"), "{file}");
        }
        let weight_file = parent.dir("blkio", &id).join("blkio.weight_device").exists();
        let warned = stderr(&out).contains("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
        assert_eq!(warned, !weight_file, "{}", stderr(&out));
    } else {
        let max = parent.read("io", &id, "io.max");
        assert!(
            max.contains(&format!("{numbers} rbps=1048576 wbps=2097152 riops=100 wiops=200")),
            "{max}"
        );
    }
    let shown = d.ok(&[
        "inspect",
        "-f",
        "{{json .HostConfig.BlkioDeviceReadBps}} {{json .HostConfig.BlkioDeviceWriteIOps}}",
        &id,
    ]);
    assert_eq!(
        shown.trim(),
        format!(r#"[{{"Path":"{dev}","Rate":1048576}}] [{{"Path":"{dev}","Rate":200}}]"#)
    );
    d.ok(&["rm", "-f", &id]);

    // Docker's words: the CLI's for a bad value (125), the daemon's at start for a device
    // that is not there (docker run's 127 for "no such file or directory").
    let bad_path = "/dev/cproxy-test-none:1mb";
    for (flags, code, words) in [
        (vec!["--device-read-bps", &dev], 125, format!("bad format: {dev}")),
        (
            vec!["--device-write-bps", "/tmp:1mb"],
            125,
            "bad format for device path: /tmp:1mb".into(),
        ),
        (
            vec!["--device-read-iops", &rbps],
            125,
            format!(
                "invalid rate for device: {rbps}. The correct format is <device-path>:<number>. Number must be a positive integer"
            ),
        ),
        (
            vec!["--blkio-weight-device", &flag("5")],
            125,
            format!("invalid weight for device: {dev}:5"),
        ),
        (
            vec!["--device-read-bps", bad_path],
            127,
            "stat /dev/cproxy-test-none: no such file or directory".into(),
        ),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(&flags);
        args.extend(["bb", "true"]);
        let out = d.cli(&args);
        assert_eq!(out.status.code(), Some(code), "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&words), "{flags:?}: {}", stderr(&out));
    }
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}

#[test]
fn info_shows_what_the_hosts_cgroups_offer() {
    let World { ns: _ns, parent: _parent, d } = world();
    let (code, out, err) = d.docker(
        &[
            "info",
            "--format",
            "{{.CgroupDriver}} {{.CgroupVersion}} {{.MemoryLimit}} {{.CPUCfsQuota}} {{.CPUShares}} {{.PidsLimit}} {{.Images}} {{.Driver}} {{json .Warnings}}",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let fields: Vec<&str> = out.trim().splitn(9, ' ').collect();
    let mounts = cgroup_mounts();
    let v1 = mounts.iter().any(|(t, _, o)| t == "cgroup" && o.split(',').any(|x| x == "memory"));
    assert_eq!(fields[..2], ["cgroupfs", if v1 { "1" } else { "2" }], "{out}");
    // This machine's hierarchies have every controller the fields name.
    assert_eq!(fields[2..6], ["true"; 4], "{out}");
    assert_eq!(fields[6..8], ["1", "overlay2"], "{out}");
    let warnings: Vec<String> = serde_json::from_str(fields[8]).unwrap_or_default();
    assert!(!warnings.iter().any(|w| w.contains("memory limit") || w.contains("cpu")), "{out}");
}

/// The devices cgroup (cgroup v1): a container from an image may open Docker's list of
/// device nodes and no other, as runc sets moby's default spec; `--privileged` keeps them all.
/// A node made with CAP_MKNOD (which Docker keeps) on a bind mount, where `nodev` does not
/// stop it, cannot be opened: Docker's `Operation not permitted`.
#[test]
fn a_container_opens_only_dockers_devices() {
    let World { ns, parent, d } = world();
    let v1 = cgroup_mounts()
        .iter()
        .any(|(t, _, o)| t == "cgroup" && o.split(',').any(|x| x == "devices"));
    if !v1 {
        eprintln!("no devices hierarchy (cgroup v2 has an eBPF program instead): skipped");
        return;
    }
    let id = run_detached(&d, &["bb", "sleep", "1000"]);
    let mut list: Vec<String> =
        parent.read("devices", &id, "devices.list").lines().map(String::from).collect();
    list.sort();
    // Docker 20.10's container here, sorted.
    let docker = [
        "b *:* m",
        "c *:* m",
        "c 10:200 rwm",
        "c 136:* rwm",
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm",
        "c 1:8 rwm",
        "c 1:9 rwm",
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",
    ];
    assert_eq!(list, docker);
    let privileged = run_detached(&d, &["--privileged", "bb", "sleep", "1000"]);
    assert_eq!(parent.read("devices", &privileged, "devices.list"), "a *:* rwm");

    // /dev/kmsg's numbers, made where the mount allows device nodes.
    let bind = ns.dir.join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    let volume = format!("{}:/data", bind.display());
    let script =
        "mknod /data/k c 1 11 && head -c 1 /data/k >/dev/null && echo opened; rm -f /data/k";
    let out = d.cli(&["run", "--rm", "--network", "none", "-v", &volume, "bb", "sh", "-c", script]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(stderr(&out).contains("head: /data/k: Operation not permitted"), "{}", stderr(&out));
    let out = d.ok(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        "-v",
        &volume,
        "bb",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out, "opened\n");
    d.ok(&["rm", "-f", &id, &privileged]);
    assert_eq!(parent.left(), Vec::<PathBuf>::new());
}
