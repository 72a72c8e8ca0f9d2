//! Containers from images, confined as Docker confines them, tested from inside, as root: each
//! test starts `cproxy daemon` in a network namespace of its own, imports a busybox image made
//! here, runs containers from it and reads `/proc/self/status`, `/dev`, the mounts, and tries
//! what Docker forbids. The expected values are Docker 20.10's, recorded with the same image
//! (tests/fixtures/docker-20.10-confinement/).

mod supervisor_support;

use std::process::Output;

use supervisor_support::{Netns, rootfs_tar, with_image};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A field of `/proc/self/status` as `text` shows it.
fn status_field<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

#[test]
fn a_default_container_is_confined_as_dockers() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let status = d.ok(&["run", "--rm", "bb", "cat", "/proc/self/status"]);
    for field in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(status_field(&status, field), "00000000a80425fb", "{field}");
    }
    assert_eq!(status_field(&status, "CapInh"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs"), "0");
    // Docker's default seccomp profile: a filter; what it forbids, refused.
    assert_eq!(status_field(&status, "Seccomp"), "2");
    let out = d.ok(&["run", "--rm", "bb", "sh", "-c", "unshare -n true 2>&1; echo unshare=$?"]);
    assert!(out.contains("Operation not permitted") && out.contains("unshare=1"), "{out}");
    // Docker's /dev without -t: 14 entries.
    let dev = d.ok(&["run", "--rm", "bb", "ls", "/dev"]);
    assert_eq!(
        dev.split_whitespace().collect::<Vec<_>>(),
        [
            "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero"
        ]
    );
    // The image is the root: the host's files are not there; /sys and /proc/sys are
    // read-only, /proc/keys and /proc/timer_list masked, mounting refused.
    let script = "ls /work /usr/bin/python3 2>/dev/null | wc -l; \
                  touch /sys/x 2>&1; echo sys=$?; \
                  echo 0 > /proc/sys/kernel/printk 2>&1; echo procsys=$?; \
                  wc -c < /proc/keys; \
                  mount -t tmpfs t /mnt 2>&1; echo mount=$?; \
                  mknod /tmp/sda b 8 0 && head -c1 /tmp/sda >/dev/null 2>&1; echo blk=$?; \
                  hostname other 2>&1; echo hostname=$?; \
                  touch /written; echo root=$?";
    let out = d.ok(&["run", "--rm", "bb", "sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert!(out.contains("Read-only file system\nsys=1"), "{out}");
    assert!(out.contains("procsys=1"), "{out}");
    assert!(out.contains("\n0\n"), "/proc/keys is masked: {out}");
    assert!(out.contains("mount=255") || out.contains("mount=1"), "{out}");
    assert!(out.contains("Permission denied") || out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("root=0"), "the container's own layer is writable: {out}");
    // What a container wrote is its own: a new one from the same image does not see it.
    assert_eq!(
        d.ok(&["run", "--rm", "bb", "sh", "-c", "ls /written 2>&1; true"]).trim(),
        "ls: /written: No such file or directory"
    );
}

#[test]
fn users_capabilities_and_read_only_as_docker() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let id = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend(["bb", "sh", "-c", "id; echo $HOME; grep -E 'CapEff|CapBnd' /proc/self/status"]);
        d.ok(&all)
    };
    let app = id(&["-u", "app"]);
    assert!(app.starts_with("uid=1000(app) gid=1000(app) groups=50(staff)\n/home/app\n"), "{app}");
    assert!(app.contains("CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb"), "{app}");
    let numeric = id(&["-u", "4242"]);
    assert!(numeric.starts_with("uid=4242 gid=0(root"), "{numeric}");
    assert!(numeric.contains("\n/\n"), "HOME of a user not in passwd: {numeric}");
    let out = d.cli(&["run", "--rm", "-u", "nosuchuser", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(
            "Error response from daemon: unable to find user nosuchuser: no matching entries in passwd file"
        ),
        "{}",
        stderr(&out)
    );
    let caps = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend(["bb", "grep", "CapEff", "/proc/self/status"]);
        d.ok(&all).trim().trim_start_matches("CapEff:").trim().to_string()
    };
    assert_eq!(caps(&["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"]), "0000000000001000");
    assert_eq!(caps(&["--cap-drop", "chown"]), "00000000a80425fa");
    let out = d.cli(&["run", "--rm", "--cap-add", "FOO", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("invalid CapAdd: unknown capability: \"CAP_FOO\""));
    let ro = d.ok(&["run", "--rm", "--read-only", "bb", "sh", "-c", "touch /x 2>&1; echo $?"]);
    assert_eq!(ro, "touch: /x: Read-only file system\n1\n");
    let nnp = d.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "bb",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(nnp, "NoNewPrivs:\t1\n");
    let seccomp = |opts: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(opts);
        all.extend(["bb", "sh", "-c", "grep Seccomp: /proc/self/status; ls /dev | wc -l"]);
        d.ok(&all)
    };
    assert_eq!(seccomp(&["--security-opt", "seccomp=unconfined"]), "Seccomp:\t0\n14\n");
    let privileged = seccomp(&["--privileged"]);
    assert!(privileged.starts_with("Seccomp:\t0\n"), "{privileged}");
    let devices: usize = privileged.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(devices > 14, "--privileged sees the host's devices: {privileged}");
}

#[test]
fn the_images_config_gives_the_containers_defaults_as_docker_merges_them() {
    let ns = Netns::new();
    let d = with_image(
        &ns,
        &["WORKDIR /srv", "ENV A=1 B=2", "ENTRYPOINT [\"/bin/echo\"]", "CMD [\"hi\"]"],
    );
    assert_eq!(d.ok(&["run", "--rm", "bb"]), "hi\n");
    assert_eq!(d.ok(&["run", "--rm", "bb", "there"]), "there\n");
    let out = d.ok(&["run", "--rm", "--entrypoint", "/bin/sh", "bb", "-c", "pwd; echo $A $B"]);
    assert_eq!(out, "/srv\n1 2\n");
    assert_eq!(
        d.ok(&["run", "--rm", "-e", "A=9", "--entrypoint", "/bin/sh", "bb", "-c", "echo $A$B"]),
        "92\n"
    );
    let id = d.ok(&["run", "-d", "--name", "cfgc", "bb", "x", "y"]);
    let inspect = d.ok(&[
        "inspect",
        "-f",
        "{{.Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}} {{.Config.Image}} {{.Config.WorkingDir}}",
        "cfgc",
    ]);
    assert_eq!(inspect.trim(), "/bin/echo [\"x\",\"y\"] [\"x\",\"y\"] [\"/bin/echo\"] bb /srv");
    let image = d.ok(&["inspect", "-f", "{{.Image}}", "cfgc"]);
    assert!(image.starts_with("sha256:"), "{image}");
    let ps = d.ok(&["ps", "-a", "--no-trunc", "--format", "{{.Image}} {{.Command}}"]);
    assert_eq!(ps.trim(), "bb \"/bin/echo x y\"");
    // `Entrypoint: []` is kept and takes the image's command, `[""]` takes neither, `null`
    // stays `null` and so does an empty `Env`, as dockerd 20.10 answers the same bodies.
    let shown = |body: &str| {
        let (code, created) = d.api("POST", "/containers/create", Some(body)).unwrap();
        if code != 201 {
            return format!("{code} {created}");
        }
        let id = created.split('"').nth(3).unwrap().to_string();
        let fmt = "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}} {{.Path}}";
        d.ok(&["inspect", "-f", fmt, &id]).trim_end_matches('\n').to_string()
    };
    assert_eq!(shown(r#"{"Image":"bb","Entrypoint":[]}"#), "[] [\"hi\"] [\"A=1\",\"B=2\"] hi");
    assert_eq!(
        shown(r#"{"Image":"bb","Entrypoint":[""]}"#),
        "400 {\"message\":\"No command specified\"}\n"
    );
    assert_eq!(
        shown(r#"{"Image":"bb","Entrypoint":["",""]}"#),
        "[\"\",\"\"] null [\"A=1\",\"B=2\"] "
    );
    assert_eq!(
        shown(r#"{"Cmd":["true"],"HostConfig":{"Rootfs":"/"}}"#),
        "null [\"true\"] null true"
    );
    // Its writable layer goes with it.
    let dir = d.data_root.join("containers").join(id.trim());
    assert!(dir.join("fs/diff").is_dir());
    assert_eq!(d.ok(&["wait", "cfgc"]), "0\n");
    d.ok(&["rm", "cfgc"]);
    assert!(!dir.exists());
}

#[test]
fn exec_enters_the_containers_root_with_its_confinement() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    d.ok(&["run", "-d", "--name", "ex", "bb", "sleep", "300"]);
    let script = "grep -E 'CapEff|Seccomp:' /proc/self/status; ls /work 2>&1; true";
    let out = d.ok(&["exec", "ex", "sh", "-c", script]);
    assert_eq!(
        out,
        "CapEff:\t00000000a80425fb\nSeccomp:\t2\nls: /work: No such file or directory\n"
    );
    assert_eq!(
        d.ok(&["exec", "-u", "1000", "ex", "id"]),
        "uid=1000(app) gid=1000(app) groups=50(staff)\n"
    );
    d.ok(&["rm", "-f", "ex"]);
}

#[test]
fn rootfs_shares_a_host_directory_and_is_still_confined() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--rootfs",
        "/",
        "/bin/sh",
        "-c",
        "grep CapEff /proc/self/status; test -d /usr/bin && echo host; ls /dev | wc -l",
    ]);
    assert_eq!(out, "CapEff:\t00000000a80425fb\nhost\n14\n");
    // `--pull never`: no registry is asked (none is reachable from the test's namespace).
    let out = d.cli(&["run", "--rm", "--pull", "never", "nosuchimage"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("No such image: nosuchimage"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn rmi_refuses_an_image_a_container_uses_in_dockers_words() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let id = d.ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]).trim().to_string();
    let short = &id[7..19];
    d.ok(&["run", "--name", "stopped", "bb", "true"]);
    let c = d.ok(&["inspect", "-f", "{{.Id}}", "stopped"]);
    let c12 = &c.trim()[..12];
    for name in ["bb", "bb:latest"] {
        let refused = d.cli(&["rmi", name]);
        assert_eq!(refused.status.code(), Some(1));
        assert_eq!(
            stderr(&refused),
            format!(
                "Error response from daemon: conflict: unable to remove repository reference \
                 \"{name}\" (must force) - container {c12} is using its referenced image {short}\n"
            )
        );
    }
    let refused = d.cli(&["rmi", &id]);
    assert_eq!(
        stderr(&refused),
        format!(
            "Error response from daemon: conflict: unable to delete {short} (must be forced) - \
             image is being used by stopped container {c12}\n"
        )
    );
    // Pruning keeps it; a forced rmi deletes it, and the stopped container still starts
    // from the layers its root holds, listed by the image's ID.
    d.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(d.ok(&["rmi", "-f", "bb"]), format!("Untagged: bb:latest\nDeleted: {id}\n"));
    let ps = d.ok(&["ps", "-a", "--format", "{{.Image}}"]);
    assert_eq!(ps, format!("{short}\n"));
    d.ok(&["start", "stopped"]);
    let state = d.ok(&["wait", "stopped"]);
    assert_eq!(state, "0\n");
    d.ok(&["rm", "stopped"]);
    let layers = std::fs::read_dir(d.data_root.join("image/layers")).unwrap().count();
    assert_eq!(layers, 0, "the last holder of the deleted image's layer removed it");

    // A running container: an ID cannot be forced; a forced name only untags.
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    let d2 = d;
    let id = d2.ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]).trim().to_string();
    let short = &id[7..19];
    let c = d2.ok(&["run", "-d", "--name", "running", "bb", "sleep", "300"]);
    let c12 = &c.trim()[..12];
    let refused = d2.cli(&["rmi", "-f", &id]);
    assert_eq!(
        stderr(&refused),
        format!(
            "Error response from daemon: conflict: unable to delete {short} (cannot be forced) - \
             image is being used by running container {c12}\n"
        )
    );
    assert_eq!(d2.ok(&["rmi", "-f", "bb"]), "Untagged: bb:latest\n");
    let images = d2.ok(&["images", "--format", "{{.Repository}} {{.ID}}"]);
    assert_eq!(images, format!("<none> {short}\n"));
    d2.ok(&["rm", "-f", "running"]);
}

#[test]
fn ulimits_are_set_as_dockers() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "bb",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "1024\n2048\n");
    assert_eq!(
        d.ok(&["run", "--rm", "--ulimit", "nproc=10", "bb", "sh", "-c", "ulimit -u"]),
        "10\n"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "--ulimit", "core=-1", "bb", "sh", "-c", "ulimit -c"]),
        "unlimited\n"
    );
    let bad = d.cli(&["run", "--rm", "--ulimit", "bogus=1", "bb", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        stderr(&bad).contains(
            "invalid argument \"bogus=1\" for \"--ulimit\" flag: invalid ulimit type: bogus"
        ),
        "{}",
        stderr(&bad)
    );
    d.ok(&["create", "--name", "lim", "--ulimit", "nofile=1024:2048", "bb", "true"]);
    let shown = d.ok(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", "lim"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown, serde_json::json!([{"Name": "nofile", "Hard": 2048, "Soft": 1024}]));
}

#[test]
fn diff_lists_what_the_container_changed_as_dockers() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    // Docker 20.10's scenario (tests/fixtures/docker-20.10-volumes/06-fs-cmds.txt), on this
    // image: a fresh container has no change; the runtime's own mount points are not listed.
    d.ok(&["create", "--name", "fresh", "-v", "/vol/data", "bb", "true"]);
    d.ok(&["start", "fresh"]);
    d.ok(&["wait", "fresh"]);
    assert_eq!(d.ok(&["diff", "fresh"]), "");
    let script = "echo new > /newfile; mkdir -p /newdir/sub; echo x > /newdir/sub/f; \
                  echo changed >> /etc/passwd; rm /bin/vi; touch /tmp/t; mkdir /home/app/cfg";
    d.ok(&["run", "--name", "fs1", "bb", "sh", "-c", script]);
    assert_eq!(
        d.ok(&["diff", "fs1"]),
        "C /bin\nD /bin/vi\nC /etc\nC /etc/passwd\nC /home\nC /home/app\nA /home/app/cfg\n\
         A /newdir\nA /newdir/sub\nA /newdir/sub/f\nA /newfile\nC /tmp\nA /tmp/t\n"
    );
    let missing = d.cli(&["diff", "nosuch"]);
    assert_eq!(stderr(&missing), "Error response from daemon: No such container: nosuch\n");
    assert_eq!(missing.status.code(), Some(1));
}

/// A container gets only its stdio, whatever the daemon inherited (runc's `CloseExecFrom(3)`):
/// a daemon started with a stray descriptor (fd 77, the test's stderr) passes it to none of
/// the container's init, its command, an exec through the API, or a `run` in the foreground.
#[test]
fn a_container_inherits_no_descriptor_of_the_daemons() {
    let ns = Netns::new();
    let d = ns.daemon_with(&[], supervisor_support::Start { stray_fd: true, ..Default::default() });
    let daemon_fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid())).unwrap();
    let daemon_fds: Vec<String> =
        daemon_fds.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(
        daemon_fds.contains(&"77".to_string()),
        "the daemon holds the stray fd: {daemon_fds:?}"
    );
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    d.ok(&["run", "-d", "--name", "fds", "bb", "sleep", "600"]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", "fds"]);
    let fds_of = |pid: &str| {
        let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{}/fd", pid.trim()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap().parse().unwrap())
            .collect();
        fds.sort();
        fds
    };
    assert_eq!(fds_of(&pid), [0, 1, 2], "the container's init");
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pid.trim())).unwrap();
    let command = children.split_whitespace().next().expect("the command runs under the init");
    assert_eq!(fds_of(command), [0, 1, 2], "the container's command");
    // `ls` sees its own directory's descriptor (3) besides its stdio.
    let (code, out, err) = d.docker(&["exec", "fds", "ls", "/proc/self/fd"], None);
    assert_eq!((code, out.as_str()), (0, "0\n1\n2\n3\n"), "{err}");
    assert_eq!(d.ok(&["run", "--rm", "bb", "ls", "/proc/self/fd"]), "0\n1\n2\n3\n");
    d.ok(&["rm", "-f", "fds"]);
}
