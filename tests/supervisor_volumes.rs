//! Volumes, as Docker 20.10 has them (tests/fixtures/docker-20.10-volumes/): named and
//! anonymous volumes with the image's content copied up, `--volumes-from` and the tutorial's
//! backup through a data-volume container, `--mount`, `--tmpfs`, `--shm-size`, `rm -v` and
//! `--rm`, `volume create|ls|inspect|rm|prune`, each refusal in Docker's words. Each test runs
//! `cproxy daemon` in a network namespace of its own, as root.

mod supervisor_support;

use std::process::Output;

use supervisor_support::{Daemon, Netns, with_image};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn volumes(d: &Daemon) -> Vec<String> {
    d.ok(&["volume", "ls", "-q"]).lines().map(String::from).collect()
}

#[test]
fn named_and_anonymous_volumes_outlive_their_containers_as_dockers() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    // A named volume: made on first use, kept, seen by the next container.
    d.ok(&["run", "--rm", "-v", "keep:/data", "bb", "sh", "-c", "echo kept > /data/f"]);
    assert_eq!(volumes(&d), ["keep"]);
    assert_eq!(d.ok(&["run", "--rm", "-v", "keep:/x:ro", "bb", "cat", "/x/f"]), "kept\n");
    let mountpoint = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "keep"]);
    assert_eq!(mountpoint.trim(), d.data_root.join("volumes/keep/_data").to_str().unwrap());
    let out =
        d.ok(&["run", "--rm", "-v", "keep:/x:ro", "bb", "sh", "-c", "touch /x/g 2>&1; echo $?"]);
    assert_eq!(out, "touch: /x/g: Read-only file system\n1\n");

    // An anonymous volume over a directory of the image: its content, owner and mode copied
    // up; `rm` keeps it, `rm -v` removes it; `--rm` removes it too.
    d.ok(&["create", "--name", "anon", "-v", "/home/app", "bb", "true"]);
    let mounts = d.ok(&["inspect", "-f", "{{json .Mounts}}", "anon"]);
    let v: serde_json::Value = serde_json::from_str(&mounts).unwrap();
    let name = v[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    assert_eq!(v[0]["Type"], "volume");
    assert_eq!(v[0]["Destination"], "/home/app");
    assert_eq!(v[0]["Mode"], "");
    assert_eq!(v[0]["RW"], true);
    assert_eq!(v[0]["Driver"], "local");
    let volumes_json =
        d.ok(&["inspect", "-f", "{{json .Config.Volumes}} {{json .HostConfig.Binds}}", "anon"]);
    assert_eq!(volumes_json.trim(), r#"{"/home/app":{}} null"#);
    d.ok(&["start", "anon"]);
    d.ok(&["wait", "anon"]);
    let data = d.data_root.join("volumes").join(&name).join("_data");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000), "copied up with its owner");
    d.ok(&["rm", "anon"]);
    assert!(volumes(&d).contains(&name));
    d.ok(&["volume", "rm", &name]);
    d.ok(&["create", "--name", "anon2", "-v", "/data", "bb", "true"]);
    assert_eq!(volumes(&d).len(), 2);
    d.ok(&["rm", "-v", "anon2"]);
    assert_eq!(volumes(&d), ["keep"]);
    d.ok(&["run", "--rm", "-v", "/data", "bb", "true"]);
    assert_eq!(volumes(&d), ["keep"], "--rm removes anonymous volumes, not named ones");

    // In use by a stopped container: refused, even with -f.
    d.ok(&["create", "--name", "user", "-v", "keep:/data", "bb", "true"]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "user"]).trim().to_string();
    let refused = d.cli(&["volume", "rm", "-f", "keep"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        format!("Error response from daemon: remove keep: volume is in use - [{id}]\n")
    );
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert_eq!(pruned, "Total reclaimed space: 0B\n");
    d.ok(&["rm", "user"]);
    let pruned = d.ok(&["volume", "prune", "-f"]);
    assert_eq!(pruned, "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 5B\n");
    let missing = d.cli(&["volume", "inspect", "keep"]);
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "[]\n");
    assert_eq!(stderr(&missing), "Error: No such volume: keep\n");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(d.ok(&["volume", "rm", "-f", "keep"]), "keep\n");
}

#[test]
fn the_tutorials_backup_through_a_data_volume_container() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    d.ok(&["create", "-v", "/dbdata", "--name", "dbstore", "bb", "/bin/true"]);
    d.ok(&["run", "--rm", "--volumes-from", "dbstore", "bb", "sh", "-c", "echo hi > /dbdata/f"]);
    let backup = ns.dir.join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let bind = format!("{}:/backup", backup.display());
    d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "dbstore",
        "-v",
        &bind,
        "bb",
        "tar",
        "cf",
        "/backup/backup.tar",
        "/dbdata",
    ]);
    assert!(backup.join("backup.tar").is_file());
    // Restored into a new data container's volume.
    d.ok(&["run", "-v", "/dbdata", "--name", "dbstore2", "bb", "true"]);
    d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "dbstore2",
        "-v",
        &bind,
        "bb",
        "sh",
        "-c",
        "cd /dbdata && tar xf /backup/backup.tar --strip 1",
    ]);
    assert_eq!(
        d.ok(&["run", "--rm", "--volumes-from", "dbstore2", "bb", "cat", "/dbdata/f"]),
        "hi\n"
    );
    // Read-only, as asked.
    let out = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "dbstore:ro",
        "bb",
        "sh",
        "-c",
        "echo x 2>&1 > /dbdata/f; echo $?",
    ]);
    assert_eq!(out, "sh: can't create /dbdata/f: Read-only file system\n1\n");
    let inspected =
        d.ok(&["create", "--name", "user2", "--volumes-from", "dbstore:ro", "bb", "true"]);
    assert_eq!(inspected.len(), 65);
    let from = d.ok(&["inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "user2"]);
    assert_eq!(from, "[\"dbstore:ro\"]\n");
    let mounts: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "-f", "{{json .Mounts}}", "user2"])).unwrap();
    assert_eq!(mounts[0]["RW"], false);
    let name = mounts[0]["Name"].as_str().unwrap().to_string();
    let refused = d.cli(&["run", "--rm", "--volumes-from", "nosuch", "bb", "true"]);
    assert_eq!(refused.status.code(), Some(125));
    assert!(stderr(&refused).contains("No such container: nosuch."), "{}", stderr(&refused));
    // dbstore can go while user2 still uses its volume, which then cannot.
    d.ok(&["rm", "dbstore"]);
    let refused = d.cli(&["volume", "rm", &name]);
    assert!(stderr(&refused).contains("volume is in use"), "{}", stderr(&refused));
    d.ok(&["rm", "-v", "user2"]);
    d.ok(&["rm", "-v", "dbstore2"]);
    assert_eq!(volumes(&d), Vec::<String>::new());
}

#[test]
fn mounts_tmpfs_and_shm_as_docker_mounts_them() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let line = |out: &str, at: &str| {
        out.lines().find(|l| l.contains(&format!(" {at} "))).unwrap_or_default().to_string()
    };
    let out = d.ok(&["run", "--rm", "--tmpfs", "/t:size=1m", "bb", "mount"]);
    assert_eq!(
        line(&out, "/t"),
        "tmpfs on /t type tmpfs (rw,nosuid,nodev,noexec,relatime,size=1024k)"
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
        "bb",
        "mount",
    ]);
    assert_eq!(
        line(&out, "/t"),
        "tmpfs on /t type tmpfs (rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770)"
    );
    let out = d.ok(&["run", "--rm", "--shm-size", "1m", "bb", "mount"]);
    assert!(line(&out, "/dev/shm").contains("size=1024k"), "{out}");
    let out = d.ok(&["run", "--rm", "bb", "mount"]);
    assert!(line(&out, "/dev/shm").contains("size=65536k"), "{out}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mv1,dst=/a",
        "bb",
        "sh",
        "-c",
        "ls -d /a",
    ]);
    assert_eq!(out, "/a\n");
    assert_eq!(volumes(&d), ["mv1"]);
    for (args, want) in [
        (
            &["--mount", "type=volume,source=v"][..],
            "invalid argument \"type=volume,source=v\" for \"--mount\" flag: target is required",
        ),
        (
            &["--mount", "type=bogus,target=/x"],
            "invalid mount config for type \"bogus\": mount type unknown.",
        ),
        (&["-v", "/a:/b:bogus"], "invalid mode: bogus."),
        (&["-v", "mv1:/x", "-v", "mv2:/x"], "Duplicate mount point: /x."),
        (&["--tmpfs", "relative"], "invalid mount path: 'relative' mount path must be absolute."),
        (
            &["--shm-size", "abc"],
            "invalid argument \"abc\" for \"--shm-size\" flag: invalid size: 'abc'",
        ),
        (
            &["-v", "../x:/y"],
            "create ../x: \"../x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path.",
        ),
        (
            &["--mount", "type=bind,source=/nonexistent-src,target=/x"],
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-src.",
        ),
    ] {
        let mut argv = vec!["run", "--rm"];
        argv.extend_from_slice(args);
        argv.extend(["bb", "true"]);
        let out = d.cli(&argv);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(volumes(&d), ["mv1"], "a refused run makes no volume");
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}
