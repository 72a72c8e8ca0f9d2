//! `docker commit` end to end, as root: Docker's 20.10 CLI against `cproxy daemon` in a network
//! namespace of its own (cgroups mounted there, for the freezer), on the busybox test image.
//! What it prints, the new image's config, history, layer and events are compared with what
//! dockerd 20.10 did for the same commands (tests/fixtures/docker-20.10-commit/, recorded by
//! its record.sh).

mod supervisor_support;

use serde_json::Value;
use supervisor_support::{Daemon, Netns, Start, rootfs_tar};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker-20.10-commit");

/// A daemon with cgroups and the test image `bb`.
fn daemon(ns: &Netns) -> Daemon {
    let d = ns.daemon_with(&[], Start { cgroups: true, ..Start::default() });
    let tar = rootfs_tar(true, &ns.dir, false);
    d.ok(&["import", tar.to_str().unwrap(), "bb"]);
    d
}

/// Docker's CLI, which must succeed; its stdout.
fn docker(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = d.docker(args, None);
    assert_eq!(code, 0, "docker {args:?}: {err}");
    out
}

/// A fixture file.
fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// `image inspect`'s object, what differs from run to run blanked: IDs, times, the host name,
/// sizes, the version and storage driver.
fn normalized(inspect: &str) -> Value {
    let mut v: Value = serde_json::from_str(inspect).unwrap();
    let v = v[0].take();
    let mut out = serde_json::Map::new();
    for key in ["Comment", "Author", "Config", "ContainerConfig", "Os", "Architecture"] {
        let mut field = v[key].clone();
        if let Some(h) = field.get_mut("Hostname") {
            *h = Value::String(if h.as_str() == Some("") { "" } else { "ID" }.into());
        }
        out.insert(key.into(), field);
    }
    let layers = v["RootFS"]["Layers"].as_array().map_or(0, Vec::len);
    out.insert("layers".into(), layers.into());
    let hex = |s: &Value| s.as_str().is_some_and(|s| s.starts_with("sha256:") && s.len() == 71);
    out.insert("Parent is an ID".into(), hex(&v["Parent"]).into());
    out.insert("Container is an ID".into(), (v["Container"].as_str().unwrap().len() == 64).into());
    Value::Object(out)
}

/// Now, as `docker events --since` takes it (seconds and nanoseconds).
fn now() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The events' lines, times and IDs dropped (`container pause`, …).
fn actions(events: &str) -> Vec<String> {
    events
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split(' ').skip(1);
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect()
}

#[test]
fn commit_makes_the_image_dockerd_makes() {
    let ns = Netns::new();
    let d = daemon(&ns);
    let base = d.ok(&["image", "inspect", "-f", "{{.Id}}", "bb"]).trim().to_string();
    docker(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "cm-c1",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "--label",
            "l=v",
            "--expose",
            "80",
            "bb",
            "sh",
            "-c",
            "echo hi > /x; rm /bin/vi; rm -rf /tmp; mkdir /tmp; echo t > /tmp/t; \
             echo me:x:1:1::/:/bin/sh >> /etc/passwd; sleep 1000",
        ],
    );
    supervisor_support::eventually(10, || {
        let diff = docker(&d, &["diff", "cm-c1"]);
        diff.contains("A /x").then_some(()).filter(|()| diff.contains("D /bin/vi"))
    });
    let since = now();
    let id = docker(
        &d,
        &["commit", "-c", r#"CMD ["cat","/x"]"#, "-m", "msg", "-a", "me", "cm-c1", "me/img:v1"],
    );
    let until = now();
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    // The image's config and history as dockerd's.
    let got = normalized(&docker(&d, &["image", "inspect", "me/img:v1"]));
    assert_eq!(got, normalized(&fixture("inspect.json")));
    let parent = docker(&d, &["image", "inspect", "-f", "{{.Parent}}", "me/img:v1"]);
    assert_eq!(parent.trim(), base);
    let (status, listed) = d.api("GET", "/images/json", None).unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let ours = listed.as_array().unwrap().iter().find(|i| i["Id"] == id).unwrap();
    assert_eq!((status, ours["ParentId"].as_str()), (200, Some(base.as_str())));
    let history = docker(
        &d,
        &["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "me/img:v1"],
    );
    let want: Vec<String> = fixture("transcript.txt")
        .lines()
        .skip_while(|l| !l.starts_with("$ docker history --no-trunc"))
        .skip(1)
        .take(2)
        .map(|l| {
            let (by, rest) = l.split_once('|').unwrap();
            format!("{by}|{}", rest.split_once('|').unwrap().1)
        })
        .collect();
    assert_eq!(history.lines().collect::<Vec<_>>(), want);
    let ids = docker(&d, &["history", "-q", "--no-trunc", "me/img:v1"]);
    assert_eq!(ids.lines().collect::<Vec<_>>(), [id, base.as_str()]);

    // Run: the changes are there, the deleted file and the whiteouts are not.
    assert_eq!(docker(&d, &["run", "--rm", "me/img:v1"]), "hi\n");
    let out = docker(
        &d,
        &[
            "run",
            "--rm",
            "me/img:v1",
            "sh",
            "-c",
            r"ls -a /tmp /bin | grep -c '^\.wh\.'; ls -a /tmp; ls /bin/vi 2>&1; tail -1 /etc/passwd",
        ],
    );
    assert_eq!(out, "0\n.\n..\nt\nls: /bin/vi: No such file or directory\nme:x:1:1::/:/bin/sh\n");

    // The layer as moby's overlay2 writes it: the same entries as dockerd's layer.
    let saved = {
        let (code, tar, err) = d.docker_bytes(&["save", "me/img:v1"], None);
        assert_eq!(code, 0, "{err}");
        tar
    };
    let dir = ns.dir.join("saved");
    std::fs::create_dir_all(&dir).unwrap();
    tar::Archive::new(&saved[..]).unpack(&dir).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let layer = manifest[0]["Layers"][1].as_str().unwrap();
    let mut entries = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(dir.join(layer)).unwrap());
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        // Python's tarfile (the fixture's lister) drops a directory's trailing `/`.
        let path = e.path().unwrap().display().to_string().trim_end_matches('/').to_string();
        let mtime = if h.mtime().unwrap() == 0 { "mtime0" } else { "mtime" };
        // The test image's /etc/passwd is not the fixture's: its size is left out.
        entries.push(format!(
            "{path} {:#o} {} {} {} {mtime}",
            h.mode().unwrap(),
            h.entry_type().as_byte() as char,
            h.uid().unwrap(),
            h.username().unwrap().unwrap_or_default(),
        ));
    }
    let want: Vec<String> = fixture("layer.txt")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mode = u32::from_str_radix(f[1].trim_start_matches("0o"), 8).unwrap();
            format!("{} {mode:#o} {} {} {} {}", f[0], f[2], f[3], f[5], f[7])
        })
        .collect();
    // tar's mode keeps the permission bits only (dockerd's Go header also has the type's).
    let perm = |s: &String| {
        let f: Vec<&str> = s.split(' ').collect();
        let mode = u32::from_str_radix(f[1].trim_start_matches("0o"), 8).unwrap() & 0o7777;
        format!("{} {mode:o} {}", f[0], f[2..].join(" "))
    };
    assert_eq!(
        entries.iter().map(perm).collect::<Vec<_>>(),
        want.iter().map(perm).collect::<Vec<_>>()
    );

    // The events of the commit: dockerd's, in its order.
    let events = docker(&d, &["events", "--since", &since, "--until", &until]);
    let got = actions(&events);
    let fixture_events = fixture("events.txt");
    let want: Vec<String> = actions(
        &fixture_events.lines().take_while(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(got, want, "{events}");
    let commit = events.lines().find(|l| l.contains("container commit")).unwrap();
    assert!(
        commit.contains(&format!("imageID={id}, imageRef=me/img:v1, l=v, name=cm-c1)")),
        "{commit}"
    );
    assert!(commit.contains("(comment=msg, image=bb,"), "{commit}");

    // Thawed after: the container runs on, and a commit without pausing leaves it be.
    assert_eq!(
        docker(&d, &["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "cm-c1"]),
        "running false\n"
    );
    let since = now();
    let out = d.ok(&["commit", "-p=false", "-m", "again", "cm-c1"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let events = docker(&d, &["events", "--since", &since, "--until", &now()]);
    assert_eq!(actions(&events), ["container commit"], "{events}");
    let tmp = std::fs::read_dir(d.data_root.join("image/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "the staging directory is left empty");
}

#[test]
fn a_stopped_container_commits_and_refusals_are_dockerds() {
    let ns = Netns::new();
    let d = daemon(&ns);
    docker(&d, &["run", "--name", "cm-c2", "bb", "true"]);
    let id = docker(&d, &["commit", "cm-c2"]);
    let id = id.trim();
    // Nothing changed: no layer, an empty step, the container's config.
    let history = docker(&d, &["history", "--format", "{{.CreatedBy}}|{{.Size}}|{{.Comment}}", id]);
    let first = history.lines().next().unwrap();
    assert_eq!(first, "true|0B|");
    assert_eq!(
        normalized(&docker(&d, &["image", "inspect", id])),
        normalized(&fixture("inspect2.json"))
    );
    let events =
        docker(&d, &["events", "--since", "0", "--until", &now(), "--filter", "event=commit"]);
    assert!(events.contains("(comment=, image=bb, imageID="), "{events}");
    assert!(events.contains(", imageRef=, name=cm-c2)"), "{events}");

    // The refusals as dockerd worded them (the transcript's), through Docker's CLI and cproxy's.
    let transcript = fixture("transcript.txt");
    let said = |cmd: &str| -> String {
        let at = transcript.find(&format!("$ docker commit {cmd} >/dev/null\n")).unwrap();
        transcript[at..].lines().nth(1).unwrap().to_string()
    };
    for (args, cmd) in [
        (&["nosuch"][..], "nosuch"),
        (&["cm-c2", "Bad:x"][..], "cm-c1 Bad:x"),
        (&["cm-c2", "a:b:c"][..], "cm-c1 a:b:c"),
        (&["-c", "RUN=x", "cm-c2"][..], "-c RUN=x cm-c1"),
        (&["-c", "FROM x", "cm-c2"][..], "-c 'FROM x' cm-c1"),
    ] {
        let mut full = vec!["commit"];
        full.extend_from_slice(args);
        let (code, _, err) = d.docker(&full, None);
        assert_eq!((code, err.trim()), (1, said(cmd).as_str()), "{args:?}");
        let out = d.cli(&full);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        // cproxy's reference parser words a capital as dockerd does, not as the 20.10 CLI's
        // newer vendored one (`repository name (library/Bad) must be lowercase`).
        if cmd.contains("Bad") {
            assert_eq!(err.trim(), "invalid reference format: repository name must be lowercase");
        } else {
            assert_eq!(err.trim(), said(cmd), "{args:?}");
        }
    }
    // The API's, with dockerd's codes.
    let api = fixture("api.txt");
    for (query, key) in [
        ("container=cm-c2&repo=Bad", "repo=Bad"),
        ("container=cm-c2&repo=bb&tag=a:b", "tag=a:b"),
        ("container=", "commit?container=\n"),
        ("container=cm-c2&changes=EXPOSE%20abc", "EXPOSE"),
    ] {
        let at = api.find(key).unwrap();
        let mut lines = api[at..].lines().skip(1);
        let body = lines.next().unwrap().to_string();
        let code: u16 = lines.next().unwrap().trim().trim_matches(['[', ']']).parse().unwrap();
        let (status, got) = d.api("POST", &format!("/v1.41/commit?{query}"), None).unwrap();
        assert_eq!((status, got.trim()), (code, body.as_str()), "{query}");
    }
    // Nothing was made by a refusal: the base image and the one commit.
    let images = docker(&d, &["images", "-q"]);
    assert_eq!(images.lines().count(), 2, "{images}");
}

/// An image committed from is another's parent, as in dockerd 20.10 here: untagging it keeps
/// it (hidden from `images`, listed by `images -a`, never dangling), deleting it is refused
/// (`image has dependent child images`, whatever `-f`), and deleting the child deletes the
/// untagged parent after it, each with its layer, in dockerd's order.
#[test]
fn a_parent_image_stays_while_its_child_does() {
    let ns = Netns::new();
    let d = daemon(&ns);
    let commit = |from: &str, name: &str, file: &str| {
        docker(&d, &["run", "--name", "cm", from, "sh", "-c", &format!("echo x > /{file}")]);
        docker(&d, &["commit", "cm", name]);
        docker(&d, &["rm", "cm"]);
    };
    commit("bb", "par:1", "x");
    commit("par:1", "child:2", "y");
    let parent = docker(&d, &["inspect", "-f", "{{.Id}}", "par:1"]).trim().to_string();
    let child = docker(&d, &["inspect", "-f", "{{.Id}}", "child:2"]).trim().to_string();
    assert_eq!(docker(&d, &["rmi", "par:1"]), "Untagged: par:1\n");
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"];
        all.extend(args);
        docker(&d, &all).lines().map(String::from).collect()
    };
    assert!(!listed(&[]).iter().any(|l| l.contains(&parent)), "{:?}", listed(&[]));
    assert!(listed(&["-a"]).contains(&format!("<none>:<none> {parent}")), "{:?}", listed(&["-a"]));
    assert_eq!(listed(&["-a", "-f", "dangling=true"]), Vec::<String>::new());
    let (code, _, err) = d.docker(&["rmi", "-f", &parent], None);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "Error response from daemon: conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            &parent["sha256:".len().."sha256:".len() + 12]
        )
    );
    let out = docker(&d, &["rmi", "child:2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "Untagged: child:2");
    assert_eq!(lines[1], format!("Deleted: {child}"));
    assert_eq!(lines[3], format!("Deleted: {parent}"));
    assert!(lines[2].starts_with("Deleted: sha256:") && lines[4].starts_with("Deleted: sha256:"));
    assert_eq!(listed(&["-a"]).len(), 1, "only bb is left");
}
