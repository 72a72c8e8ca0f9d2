//! `docker cp` and `docker export` with Docker's own CLI against `cproxy daemon`, both ways, on
//! running, stopped and never-started containers, a volume and a read-only root; the bytes
//! that arrive, Docker's words and exit codes (recorded from dockerd 20.10 in
//! tests/fixtures/docker-20.10-archive/), and nothing left mounted.

mod supervisor_support;

use std::path::Path;

use supervisor_support::{Daemon, Netns, with_image};

/// Docker's CLI with stdout as bytes (a tar).
fn docker_bytes(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
    d.docker_bytes(args, stdin)
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = d.docker(args, None);
    assert_eq!(code, 0, "docker {args:?}: {err}");
    out
}

/// A tar's entries: name, mode, size, content.
fn entries(tar: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mode = e.header().mode().unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (name, mode, data)
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|e| e.0).collect()
}

/// A running container `c1` with a volume at /vol and a tree at /dir (times fixed).
fn setup(d: &Daemon) {
    ok(d, &["run", "-d", "--name", "c1", "-v", "vol1:/vol", "bb", "sleep", "300"]);
    ok(
        d,
        &[
            "exec",
            "c1",
            "sh",
            "-c",
            "mkdir -p /dir/sub && echo hello > /dir/a && echo deep > /dir/sub/b && \
             ln -s /dir /link && echo v > /vol/v && chmod 4755 /dir/a && \
             touch -d @946684800 /dir /dir/a /dir/sub /dir/sub/b",
        ],
    );
}

/// Mounts of the daemon's namespace under its data root (none may be left).
fn leftover_mounts(d: &Daemon, ns: &Netns) -> Vec<String> {
    let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid())).unwrap();
    let root = ns.dir.to_string_lossy().into_owned();
    info.lines().filter(|l| l.contains(&root)).map(str::to_string).collect()
}

#[test]
fn cp_out_of_a_running_container_as_dockerd() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    setup(&d);
    let id = ok(&d, &["inspect", "-f", "{{.Id}}", "c1"]);
    // A file to stdout: one entry, Go's header (recorded: the mode with its type bits, the
    // owner's names, the checksum as `%06o\0 `).
    let (code, tar, err) = docker_bytes(&d, &["cp", "c1:/dir/a", "-"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tar.len(), 2048);
    assert_eq!(&tar[..2], b"a\0");
    assert_eq!(&tar[100..148], b"0104755\x000000000\x000000000\x0000000000006\x0007033241600\x00");
    assert!(tar[148..154].iter().all(u8::is_ascii_digit) && &tar[154..157] == b"\x00 0");
    assert_eq!(&tar[257..270], b"ustar\x0000root\x00");
    assert_eq!(&tar[512..518], b"hello\n");
    // The hosts files are the container's (bound over its root, as dockerd binds them).
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/etc/hostname", "-"], None);
    assert_eq!(
        entries(&tar),
        [("hostname".to_string(), 0o100644, format!("{}\n", &id[..12]).into_bytes())]
    );
    // Directories: `dir`, `dir/.` (its content as `./`), a link and a link with `/`.
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/dir", "-"], None);
    assert_eq!(names(&tar), ["dir/", "dir/a", "dir/sub/", "dir/sub/b"]);
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/dir/.", "-"], None);
    assert_eq!(names(&tar), ["./", "./a", "./sub/", "./sub/b"]);
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/link", "-"], None);
    assert_eq!(names(&tar), ["link"]);
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/link/", "-"], None);
    assert_eq!(names(&tar), ["link/", "link/a", "link/sub/", "link/sub/b"]);
    // The volume is seen, as in the container.
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/vol/v", "-"], None);
    assert_eq!(entries(&tar)[0].2, b"v\n");
    // Into local paths, as Docker's CLI extracts them.
    let out = ns.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let at = |p: &str| out.join(p).to_string_lossy().into_owned();
    ok(&d, &["cp", "c1:/dir", &at("out1")]);
    assert_eq!(std::fs::read(out.join("out1/sub/b")).unwrap(), b"deep\n");
    ok(&d, &["cp", "c1:/dir/.", &at("out3")]);
    assert!(out.join("out3/a").is_file());
    ok(&d, &["cp", "-L", "c1:/link", &at("out6")]);
    assert!(out.join("out6/sub/b").is_file());
    // Errors in Docker's words and codes.
    let (code, _, err) = d.docker(&["cp", "c1:/nope", &at("x")], None);
    assert_eq!((code, err.as_str()), (1, "Error: No such container:path: c1:/nope\n"));
    let (code, _, err) = d.docker(&["cp", "nosuch:/x", &at("x")], None);
    assert_eq!((code, err.as_str()), (1, "Error: No such container:path: nosuch:/x\n"));
    // The raw API: the stat header of `dir/.` and the missing path.
    let (status, _) = d.api("GET", "/containers/c1/archive?path=", None).unwrap();
    assert_eq!(status, 400);
    let (status, body) = d.api("GET", "/containers/c1/archive?path=/nope", None).unwrap();
    assert_eq!(
        (status, body.trim()),
        (404, r#"{"message":"Could not find the file /nope in container c1"}"#)
    );
    assert!(leftover_mounts(&d, &ns).is_empty(), "{:?}", leftover_mounts(&d, &ns));
}

#[test]
fn cp_into_running_stopped_and_read_only_containers() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    setup(&d);
    let src = ns.dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("f"), "one\n").unwrap();
    std::fs::write(src.join("sub/g"), "two\n").unwrap();
    let file = ns.dir.join("file");
    std::fs::write(&file, "x\n").unwrap();
    let (src_s, file_s) = (src.to_string_lossy().into_owned(), file.to_string_lossy().into_owned());
    ok(&d, &["cp", &src_s, "c1:/tmp"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/src/sub/g"]), "two\n");
    ok(&d, &["cp", &format!("{src_s}/."), "c1:/tmp/new"]);
    assert_eq!(
        ok(&d, &["exec", "c1", "find", "/tmp/new"]),
        "/tmp/new\n/tmp/new/f\n/tmp/new/sub\n/tmp/new/sub/g\n"
    );
    ok(&d, &["cp", &file_s, "c1:/tmp/renamed"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/renamed"]), "x\n");
    // Through a link to a directory, into the volume, and a tar on stdin.
    ok(&d, &["cp", &file_s, "c1:/link"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/dir/file"]), "x\n");
    ok(&d, &["cp", &file_s, "c1:/vol/"]);
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &src).unwrap();
    let tar = b.into_inner().unwrap();
    let (code, _, err) = docker_bytes(&d, &["cp", "-", "c1:/tmp"], Some(&tar));
    assert_eq!(code, 0, "{err}");
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/f"]), "one\n");
    // Docker's words.
    let cases: [(&[&str], &str); 5] = [
        (
            &["cp", &file_s, "c1:/nonexistentdir/x"],
            "Error: No such container:path: c1:/nonexistentdir\n",
        ),
        (
            &["cp", &file_s, "c1:/etc/hostname/x"],
            "Error response from daemon: extraction point is not a directory\n",
        ),
        (&["cp", &file_s, "c1:/tmp/nodir/"], "no such directory\n"),
        (&["cp", &src_s, "c1:/etc/hostname"], "cannot copy directory\n"),
        (&["cp", &file_s, "nosuch:/tmp"], "Error: No such container:path: nosuch:/\n"),
    ];
    for (args, words) in cases {
        let (code, _, err) = d.docker(args, None);
        assert_eq!((code, err.as_str()), (1, words), "{args:?}");
    }
    let (code, _, err) = docker_bytes(&d, &["cp", "-", "c1:/tmp/fromtar"], Some(&tar));
    assert_eq!((code, err.as_str()), (1, "destination \"c1:/tmp/fromtar\" must be a directory\n"));
    // A tar entry out of the directory is refused, nothing written.
    let mut evil = tar.clone();
    evil[..9].copy_from_slice(b"../../../");
    let mut h = tar::Header::from_byte_slice(&evil[..512]).clone();
    h.set_cksum();
    evil[..512].copy_from_slice(h.as_bytes());
    let (code, _, err) = docker_bytes(&d, &["cp", "-", "c1:/tmp"], Some(&evil));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error response from daemon: Error processing tar file(exit status 1): "),
        "{err}"
    );
    // Stopped: both ways, and the next start sees it.
    ok(&d, &["stop", "-t", "0", "c1"]);
    ok(&d, &["cp", &file_s, "c1:/tmp/stopped"]);
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/dir/a", "-"], None);
    assert_eq!(entries(&tar)[0].2, b"hello\n");
    let (_, tar, _) = docker_bytes(&d, &["cp", "c1:/vol/file", "-"], None);
    assert_eq!(entries(&tar)[0].2, b"x\n");
    ok(&d, &["start", "c1"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/stopped"]), "x\n");
    // Never started.
    ok(&d, &["create", "--name", "c2", "bb", "cat", "/in"]);
    ok(&d, &["cp", &file_s, "c2:/in"]);
    assert_eq!(d.docker(&["start", "-a", "c2"], None).1, "x\n");
    // A read-only root: refused in Docker's words, its writable volume taken, a read-only
    // volume refused.
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "ro",
            "--read-only",
            "-v",
            "vol1:/vol",
            "-v",
            "vol1:/rovol:ro",
            "bb",
            "sleep",
            "300",
        ],
    );
    let (code, _, err) = d.docker(&["cp", &file_s, "ro:/tmp"], None);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: container rootfs is marked read-only\n")
    );
    ok(&d, &["cp", &file_s, "ro:/vol/fromro"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/vol/fromro"]), "x\n");
    let (code, _, err) = d.docker(&["cp", &file_s, "ro:/rovol"], None);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: mounted volume is marked read-only\n")
    );
    assert!(leftover_mounts(&d, &ns).is_empty(), "{:?}", leftover_mounts(&d, &ns));
}

#[test]
fn export_and_the_events() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    setup(&d);
    let (code, tar, err) = docker_bytes(&d, &["export", "c1"], None);
    assert_eq!(code, 0, "{err}");
    let all = names(&tar);
    for want in ["bin/", "bin/busybox", "dir/", "dir/a", "dir/sub/b", "etc/passwd", "vol/", "link"]
    {
        assert!(all.iter().any(|n| n == want), "{want} missing from {all:?}");
    }
    // The volume's content is not the container's layer: not exported (as dockerd).
    assert!(!all.iter().any(|n| n == "vol/v"));
    assert!(!all.iter().any(|n| n.starts_with("proc/") && n != "proc/"));
    let out = ns.dir.join("exp.tar");
    ok(&d, &["export", "-o", &out.to_string_lossy(), "c1"]);
    assert_eq!(names(&std::fs::read(&out).unwrap()), all);
    // Stopped, the same root.
    ok(&d, &["stop", "-t", "0", "c1"]);
    let (_, stopped, _) = docker_bytes(&d, &["export", "c1"], None);
    assert!(names(&stopped).iter().any(|n| n == "dir/sub/b"));
    let (code, _, err) = d.docker(&["export", "nosuch"], None);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: No such container: nosuch\n")
    );
    let (code, _, err) = d.docker(&["export", "-o", "/nonexistent/x.tar", "c1"], None);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "failed to export container: invalid output path: directory \"/nonexistent\" does not exist\n"
        )
    );
    ok(&d, &["cp", &ns.dir.join("exp.tar").to_string_lossy(), "c1:/tmp"]);
    let events = ok(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &format!("{}", now() + 1),
            "--format",
            "{{.Action}}",
            "--filter",
            "event=archive-path",
            "--filter",
            "event=extract-to-dir",
            "--filter",
            "event=export",
        ],
    );
    assert_eq!(events, "export\nexport\nexport\nextract-to-dir\n");
    assert!(leftover_mounts(&d, &ns).is_empty());
    assert!(!Path::new(&format!("/proc/{}/root/{}/x", d.pid(), ns.dir.display())).exists());
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn cproxy_cp_and_export_as_dockers_cli() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    setup(&d);
    let out = ns.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let at = |p: &str| out.join(p).to_string_lossy().into_owned();
    let cli = |args: &[&str]| {
        let o = d.cli(args);
        (o.status.code().unwrap_or(-1), o.stdout, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // To stdout: the daemon's tar as it came, the same bytes Docker's CLI gets.
    for path in ["c1:/dir", "c1:/dir/.", "c1:/etc/hostname"] {
        let (code, ours, err) = cli(&["cp", path, "-"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(ours, docker_bytes(&d, &["cp", path, "-"], None).1, "{path}");
    }
    // Into local paths, as Docker's CLI extracts them.
    let (code, _, err) = cli(&["cp", "c1:/dir", &at("out1")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(out.join("out1/sub/b")).unwrap(), b"deep\n");
    d.ok(&["cp", "c1:/dir/.", &at("out2")]);
    assert!(out.join("out2/a").is_file());
    d.ok(&["cp", "-L", "c1:/link", &at("out6")]);
    assert!(out.join("out6/sub/b").is_file());
    d.ok(&["cp", "c1:/link", &at("out5")]);
    assert_eq!(std::fs::read_link(out.join("out5")).unwrap(), Path::new("/dir"));
    // Into the container: a file renamed, a directory's content, a tar on stdin.
    let file = at("out1/a");
    d.ok(&["cp", &file, "c1:/tmp/renamed"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/renamed"]), "hello\n");
    d.ok(&["cp", &format!("{}/.", at("out1")), "c1:/tmp/new"]);
    assert_eq!(ok(&d, &["exec", "c1", "cat", "/tmp/new/sub/b"]), "deep\n");
    // The CLI's words and codes.
    let cases: [(&[&str], &str); 5] = [
        (&["cp", "c1:/nope", &at("x")], "Error: No such container:path: c1:/nope\n"),
        (
            &["cp", &file, "c1:/nonexistentdir/x"],
            "Error: No such container:path: c1:/nonexistentdir\n",
        ),
        (
            &["cp", &file, "c1:/etc/hostname/x"],
            "Error response from daemon: extraction point is not a directory\n",
        ),
        (&["cp", &at("out1"), "c1:/etc/hostname"], "cannot copy directory\n"),
        (&["cp", "c1:/a", "c1:/b"], "copying between containers is not supported\n"),
    ];
    for (args, words) in cases {
        let (code, _, err) = cli(args);
        assert_eq!((code, err.as_str()), (1, words), "{args:?}");
    }
    // export: the same entries as Docker's CLI gets, to a file or stdout.
    d.ok(&["export", "-o", &at("exp.tar"), "c1"]);
    let (_, theirs, _) = docker_bytes(&d, &["export", "c1"], None);
    assert_eq!(names(&std::fs::read(out.join("exp.tar")).unwrap()), names(&theirs));
    let (code, ours, _) = cli(&["export", "c1"]);
    assert_eq!((code, names(&ours)), (0, names(&theirs)));
    let (code, _, err) = cli(&["export", "nosuch"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: No such container: nosuch\n")
    );
    assert!(leftover_mounts(&d, &ns).is_empty());
}
