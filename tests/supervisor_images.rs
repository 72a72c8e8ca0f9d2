//! Local images end to end, as root: each test starts `cproxy daemon` in a network namespace of
//! its own, imports a busybox root filesystem made here (Debian's busybox-static), and checks
//! `images`, `image inspect`, `history`, `tag`, `rmi`, `save`/`load` (Docker's archive and the
//! OCI layout) against Docker 20.10's output and words, and Docker's own CLI against the
//! daemon.

mod supervisor_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use supervisor_support::{BIN, Daemon, Netns, rootfs_tar};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A table row's cells (columns are at least three spaces apart).
fn cells(line: &str) -> Vec<&str> {
    line.split("   ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

/// `cproxy ARGS` with `input` as its standard input.
fn cli_with_input(d: &Daemon, args: &[&str], input: &Path) -> Output {
    Command::new(BIN)
        .env("CPROXY_HOST", &d.host)
        .args(args)
        .stdin(Stdio::from(std::fs::File::open(input).unwrap()))
        .output()
        .unwrap()
}

/// Imports the rootfs as `name`; the image's ID.
fn import(d: &Daemon, tar: &Path, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["import"];
    args.extend_from_slice(extra);
    args.push(tar.to_str().unwrap());
    if !name.is_empty() {
        args.push(name);
    }
    let id = d.ok(&args).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    id
}

/// The files under the daemon's blobs and staging directories.
fn store_files(d: &Daemon) -> (usize, usize) {
    let count = |p: PathBuf| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    (count(d.data_root.join("image/blobs/sha256")), count(d.data_root.join("image/tmp")))
}

#[test]
fn import_lists_inspects_tags_and_removes_as_docker() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let tar = rootfs_tar(false, &ns.dir, false);
    let id = import(
        &d,
        &tar,
        "busybox",
        &[
            "--change",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV A=1 B=\"x y\"",
            "-c",
            "EXPOSE 80 53/udp",
            "-c",
            "WORKDIR /srv",
        ],
    );
    let table = d.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(cells(lines[0]), ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], "{table}");
    assert!(lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED "), "{table}");
    let row = cells(lines[1]);
    assert_eq!(row[..3], ["busybox", "latest", &id[7..19]], "{table}");
    assert!(row[3].ends_with(" ago") && row[4].ends_with("MB"), "{table}");
    assert_eq!(d.ok(&["images", "-q"]).trim(), &id[7..19]);
    let config = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.WorkingDir}} {{.Comment}} {{.Os}}",
        "busybox",
    ]);
    assert_eq!(config.trim(), r#"["sh"] ["A=1","B=x y"] /srv Imported from - linux"#);
    let ports = d.ok(&["image", "inspect", "-f", "{{json .Config.ExposedPorts}}", &id[7..19]]);
    assert_eq!(ports.trim(), r#"{"53/udp":{},"80/tcp":{}}"#);
    // The layer's diff ID is the sha256 of the tarball, as Docker computes it.
    let layer = d.ok(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "busybox"]);
    let sum = Command::new("sha256sum").arg(&tar).output().unwrap();
    assert_eq!(layer.trim(), format!("[\"sha256:{}\"]", stdout(&sum).split(' ').next().unwrap()));
    let history = d.ok(&["history", "busybox"]);
    let h: Vec<&str> = history.lines().collect();
    assert_eq!(cells(h[0]), ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], "{history}");
    let row = cells(h[1]);
    assert_eq!((row[0], row[3]), (&id[7..19], "Imported from -"), "{history}");

    d.ok(&["tag", "busybox", "me/bb:v1"]);
    let names = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert_eq!(names, format!("busybox:latest {0}\nme/bb:v1 {0}\n", &id[7..19]));
    assert_eq!(d.ok(&["images", "me/*"]).lines().count(), 2);
    let refused = d.cli(&["rmi", &id[7..19]]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused).trim(),
        format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image \
             is referenced in multiple repositories",
            &id[7..19]
        )
    );
    assert_eq!(d.ok(&["rmi", "busybox"]), "Untagged: busybox:latest\n");

    let bad = d.cli(&["tag", "me/bb:v1", "UPPER"]);
    assert_eq!(
        stderr(&bad).trim(),
        "Error parsing reference: \"UPPER\" is not a valid repository/tag: invalid reference \
         format: repository name must be lowercase"
    );
    for (args, want) in [
        (&["rmi", "nosuch"][..], "Error: No such image: nosuch"),
        (&["image", "inspect", "nosuch"], "Error: No such image: nosuch"),
        (&["history", "nosuch"], "Error response from daemon: No such image: nosuch:latest"),
        (&["tag", "nosuch", "x"], "Error response from daemon: No such image: nosuch:latest"),
    ] {
        let out = d.cli(args);
        assert_eq!((out.status.code(), stderr(&out).trim()), (Some(1), want), "{args:?}");
    }
    let forced = d.cli(&["rmi", "-f", "nosuch"]);
    assert_eq!(
        (forced.status.code(), stderr(&forced).trim()),
        (Some(0), "Error: No such image: nosuch")
    );

    let gone = d.ok(&["rmi", "me/bb:v1"]);
    assert_eq!(gone.lines().next(), Some("Untagged: me/bb:v1"));
    assert!(gone.contains(&format!("Deleted: {id}\n")), "{gone}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    assert_eq!(store_files(&d), (0, 0));
}

#[test]
fn save_then_load_gives_the_same_image_in_both_formats() {
    let ns = Netns::new();
    let mut d = ns.daemon(&[]);
    let tar = rootfs_tar(false, &ns.dir, true);
    let id = import(&d, &tar, "busybox:1", &["-m", "from a gzip"]);
    d.ok(&["tag", "busybox:1", "busybox:latest"]);
    let archive = ns.dir.join("saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let listing = Command::new("tar").arg("-tf").arg(&archive).output().unwrap();
    let listing = stdout(&listing);
    for want in
        ["manifest.json", "repositories", &format!("{}.json", &id[7..]), "index.json", "oci-layout"]
    {
        assert!(listing.lines().any(|l| l == want), "{want} in {listing}");
    }
    assert!(listing.lines().any(|l| l.ends_with("/layer.tar")), "{listing}");
    d.ok(&["rmi", "busybox:1", "busybox:latest"]);
    assert_eq!(store_files(&d), (0, 0));

    let loaded = cli_with_input(&d, &["load"], &archive);
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    let mut lines: Vec<String> = stdout(&loaded).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["Loaded image: busybox:1", "Loaded image: busybox:latest"]);
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Id}} {{.Comment}}", "busybox:1"]).trim(),
        format!("{id} from a gzip")
    );

    // The same archive without Docker's files is an OCI image layout alone.
    let dir = ns.dir.join("oci");
    std::fs::create_dir_all(&dir).unwrap();
    let untar = Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&dir).status();
    assert!(untar.unwrap().success());
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    std::fs::remove_file(dir.join("repositories")).unwrap();
    let oci = ns.dir.join("oci.tar");
    let retar = Command::new("tar").arg("-cf").arg(&oci).arg("-C").arg(&dir).arg(".").status();
    assert!(retar.unwrap().success());
    d.ok(&["rmi", "-f", &id]);
    let loaded = d.ok(&["load", "-i", oci.to_str().unwrap()]);
    let mut lines: Vec<&str> = loaded.lines().collect();
    lines.sort();
    assert_eq!(lines, ["Loaded image: busybox:1", "Loaded image: busybox:latest"]);
    assert_eq!(d.ok(&["images", "-q", "--no-trunc"]).lines().next(), Some(id.as_str()));

    // The images are there after a restart.
    d.terminate();
    let d = ns.daemon(&[]);
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]).trim(), id);
    let pruned = d.ok(&["image", "prune", "-f"]);
    assert_eq!(pruned, "Total reclaimed space: 0B\n");
    d.ok(&["rmi", "busybox:1"]);
    let untagged = import(&d, &tar, "", &[]);
    let pruned = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.starts_with("Deleted Images:\n"), "{pruned}");
    for line in [
        "untagged: busybox:latest".to_string(),
        format!("deleted: {untagged}"),
        format!("deleted: {id}"),
    ] {
        assert!(pruned.lines().any(|l| l == line), "{line} in {pruned}");
    }
    assert!(pruned.contains("\n\nTotal reclaimed space: ") && pruned.ends_with("MB\n"), "{pruned}");
    assert_eq!(store_files(&d), (0, 0));
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let tar = rootfs_tar(false, &ns.dir, false);
    import(&d, &tar, "keep", &[]);
    let before = store_files(&d);
    let garbage = ns.dir.join("garbage");
    std::fs::write(&garbage, b"this is not a tar at all, not even close\n").unwrap();
    let truncated = ns.dir.join("truncated.tar");
    let bytes = std::fs::read(&tar).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for (args, file, want) in [
        (
            &["import", "-", "x"][..],
            &garbage,
            "Error response from daemon: Error processing tar file",
        ),
        (
            &["import", "-", "x"],
            &truncated,
            "Error response from daemon: Error processing tar file",
        ),
        (&["load"], &garbage, "Error response from daemon: Error processing tar file"),
        (
            &["load"],
            &tar,
            "Error response from daemon: invalid archive: neither a Docker image archive",
        ),
    ] {
        let out = cli_with_input(&d, args, file);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).starts_with(want), "{args:?}: {}", stderr(&out));
        assert_eq!(store_files(&d), before, "{args:?}");
    }
    let bad_change = d.cli(&["import", "--change", "RUN true", tar.to_str().unwrap()]);
    assert_eq!(
        stderr(&bad_change).trim(),
        "Error response from daemon: run is not a valid change command"
    );
    let missing = d.cli(&["import", "/nonexistent.tar"]);
    assert_eq!(stderr(&missing).trim(), "open /nonexistent.tar: no such file or directory");

    // An archive whose layer is not the one its config names.
    let archive = ns.dir.join("saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "keep"]);
    let dir = ns.dir.join("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    d.ok(&["rmi", "keep"]);
    let layer = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("layer.tar"))
        .find(|p| p.is_file() && !p.is_symlink())
        .unwrap();
    let other = rootfs_tar(false, &ns.dir.join("other"), false);
    let mut alien = std::fs::read(&other).unwrap();
    alien.extend_from_slice(&[0u8; 1024]);
    std::fs::write(&layer, &alien).unwrap();
    let tampered = ns.dir.join("tampered.tar");
    assert!(
        Command::new("tar")
            .arg("-cf")
            .arg(&tampered)
            .arg("-C")
            .arg(&dir)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let out = d.cli(&["load", "-i", tampered.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("invalid diffID for layer 0: expected \"sha256:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store_files(&d), (0, 0));
}

/// The docker CLI on this machine (Debian's 20.10 or the preinstalled newer one).
fn docker() -> &'static str {
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a docker CLI is needed (apt-get install docker.io, or the preinstalled client)")
}

fn docker_cli(host: &str, args: &[&str], input: Option<&Path>) -> Output {
    let mut cmd = Command::new(docker());
    cmd.env("DOCKER_HOST", host)
        .env_remove("DOCKER_API_VERSION")
        .env("DOCKER_CONFIG", std::env::temp_dir().join("cproxy-test-docker-config"))
        .args(args);
    if let Some(i) = input {
        cmd.stdin(Stdio::from(std::fs::File::open(i).unwrap()));
    }
    cmd.output().unwrap()
}

#[test]
fn the_docker_cli_reads_the_same_images() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let tar = rootfs_tar(false, &ns.dir, false);
    let id = import(&d, &tar, "busybox", &["-c", r#"CMD ["sh"]"#]);
    let ours = d.ok(&["images"]);
    let out = docker_cli(&d.host, &["images"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    // The columns (their widths follow CREATED, which may cross a second between the calls),
    // then repository, tag and ID.
    let header =
        |t: &str| t.lines().next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(header(&stdout(&out)), header(&ours));
    let first3 = |t: &str| -> Vec<String> {
        t.lines().nth(1).unwrap().split_whitespace().take(3).map(String::from).collect()
    };
    assert_eq!(first3(&stdout(&out)), first3(&ours));
    let out = docker_cli(
        &d.host,
        &["image", "inspect", "-f", "{{.Id}} {{.Config.Cmd}} {{.Size}}", "busybox"],
        None,
    );
    let size = d.ok(&["image", "inspect", "-f", "{{.Size}}", "busybox"]);
    assert_eq!(stdout(&out).trim(), format!("{id} [sh] {}", size.trim()));
    let out =
        docker_cli(&d.host, &["history", "--format", "{{.ID}} {{.Comment}}", "busybox"], None);
    assert_eq!(stdout(&out).trim(), format!("{} Imported from -", &id[7..19]));
    let out = docker_cli(&d.host, &["image", "inspect", "nosuch"], None);
    assert!(stderr(&out).contains("No such image: nosuch"), "{}", stderr(&out));

    // docker save from the daemon, loaded back by cproxy and by docker load.
    let archive = ns.dir.join("docker-saved.tar");
    let out = docker_cli(&d.host, &["save", "-o", archive.to_str().unwrap(), "busybox"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    d.ok(&["rmi", "busybox"]);
    let loaded = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: busybox:latest\n");
    d.ok(&["rmi", "busybox"]);
    let out = docker_cli(&d.host, &["load"], Some(&archive));
    assert_eq!((stdout(&out).trim(), stderr(&out).trim()), ("Loaded image: busybox:latest", ""));
    let out = docker_cli(&d.host, &["images", "--no-trunc", "--format", "{{.ID}}"], None);
    assert_eq!(stdout(&out).trim(), id);
    let out = docker_cli(&d.host, &["tag", "busybox", "me/bb:2"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = docker_cli(&d.host, &["rmi", "me/bb:2"], None);
    assert_eq!(stdout(&out), "Untagged: me/bb:2\n");
}

/// An archive `docker save tiny:multi tiny:base` wrote with dockerd 20.10: a one-layer
/// imported image and one built on it (`COPY`, `ENV`, `COPY`: three layers, one history step
/// without a layer).
const DOCKERD_ARCHIVE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dockerd-20.10-save.tar");

#[test]
fn an_archive_dockerd_saved_loads_with_dockerds_ids_sizes_history_and_removal() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let loaded = d.ok(&["load", "-i", DOCKERD_ARCHIVE]);
    assert_eq!(loaded, "Loaded image: tiny:multi\nLoaded image: tiny:base\n");
    // What dockerd says of the same images after loading the same archive.
    let inspect = d.ok(&["image", "inspect", "-f", "{{.Id}} {{.Size}}", "tiny:multi", "tiny:base"]);
    assert_eq!(
        inspect,
        "sha256:62635626b9f8840bb28d4240f69d01a8fa96d04a35c456967ed0d2a0c565890a 54\n\
         sha256:d99dffbc5b04d04d7069964479eea0897fca327ca1abd2859900d637c24f2f74 42\n"
    );
    let history = d.ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
        "tiny:multi",
    ]);
    let rows: Vec<Vec<String>> = d
        .ok(&["history", "tiny:multi"])
        .lines()
        .skip(1)
        .map(|l| cells(l).into_iter().map(String::from).collect())
        .collect();
    assert!(
        history.starts_with("62635626b9f8|/bin/sh -c #(nop) COPY file:435cdcb7ca5ba05f…|6B|\n"),
        "{history}"
    );
    assert_eq!(rows.len(), 4, "{history}");
    assert_eq!(rows[0][0], "62635626b9f8");
    assert_eq!(rows[0][2], "/bin/sh -c #(nop) COPY file:435cdcb7ca5ba05f…");
    assert_eq!(
        (rows[1][0].as_str(), rows[1][2].as_str(), rows[1][3].as_str()),
        ("<missing>", "/bin/sh -c #(nop)  ENV X=1", "0B")
    );
    assert_eq!(rows[2][3], "6B");
    assert_eq!((rows[3][2].as_str(), rows[3][3].as_str()), ("42B", "Imported from -"));
    assert_eq!(
        d.ok(&["rmi", "tiny:multi"]),
        "Untagged: tiny:multi\n\
         Deleted: sha256:62635626b9f8840bb28d4240f69d01a8fa96d04a35c456967ed0d2a0c565890a\n\
         Deleted: sha256:4b0d3c170eef35613066a655127544a16dc99af4c328a4b5091a542b56d625f8\n\
         Deleted: sha256:3d967a896ee6490c68bfa6e20ba282214e3073d49f8fef3356672d0d60e91395\n"
    );
    assert_eq!(
        d.ok(&["rmi", "tiny:base"]),
        "Untagged: tiny:base\n\
         Deleted: sha256:d99dffbc5b04d04d7069964479eea0897fca327ca1abd2859900d637c24f2f74\n\
         Deleted: sha256:796073835e64f2e242a9506647a6759679c79c5c5e92eadfe4d9cdcd3fc9de8d\n"
    );
    assert_eq!(store_files(&d), (0, 0));
}

/// Images are bigger than API bodies: `import` and `load` bodies are streamed into the store,
/// not read whole (the server streams bodies; only handlers that buffer theirs are capped).
#[test]
fn import_and_load_take_bodies_bigger_than_the_api_limit() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let dir = ns.dir.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> =
        (0..24u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.join("blob"), &data).unwrap();
    let tar = ns.dir.join("big.tar");
    let status = Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&dir).arg(".").status();
    assert!(status.unwrap().success());
    let id = import(&d, &tar, "big", &[]);
    let archive = ns.dir.join("big-saved.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "big"]);
    d.ok(&["rmi", "big"]);
    assert_eq!(d.ok(&["load", "-i", archive.to_str().unwrap()]), "Loaded image: big:latest\n");
    assert_eq!(
        d.ok(&["image", "inspect", "-f", "{{.Id}} {{.Size}}", "big"]).trim(),
        format!("{id} {}", 24 << 20)
    );
}

/// A chunked body whose last chunk comes late, as from `docker save | docker load`: the daemon
/// reads the body to its end before it answers. Answering at the tar's end marker, it closed
/// the connection under a client that still had the last chunk to write (a broken pipe, exit 1,
/// where the load had worked: one `docker save | docker load` in six here).
#[test]
fn load_and_import_read_the_body_to_its_end_before_answering() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let tar = rootfs_tar(false, &ns.dir, false);
    import(&d, &tar, "bb", &[]);
    let saved = ns.dir.join("bb-saved.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "bb"]);
    let socket = d.host.trim_start_matches("unix://").to_string();
    for (path, input) in
        [("/v1.41/images/load?quiet=1", &saved), ("/v1.41/images/create?fromSrc=-&repo=bb2", &tar)]
    {
        let body = std::fs::read(input).unwrap();
        let mut conn = UnixStream::connect(&socket).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).unwrap();
        for chunk in body.chunks(32 << 10) {
            conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
            conn.write_all(chunk).unwrap();
            conn.write_all(b"\r\n").unwrap();
        }
        // No answer while the body has not ended.
        conn.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
        let mut first = [0u8; 1];
        let early = conn.read(&mut first);
        assert!(early.is_err(), "{path}: answered before the body's end: {early:?}");
        conn.write_all(b"0\r\n\r\n").unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\r\n0\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "{path}: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
}
