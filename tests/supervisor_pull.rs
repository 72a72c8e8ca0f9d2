//! `pull` from a real registry, as root: each test makes a network namespace, runs Debian's
//! `docker-registry` on 127.0.0.1 inside it (filesystem storage in the test's directory),
//! pushes images made here from busybox-static with `skopeo copy`, and has a `cproxy daemon`
//! in the same namespace pull and run them. Nothing leaves the namespace: the registry is
//! its loopback (insecure by default, as dockerd treats 127.0.0.0/8).

mod supervisor_support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use supervisor_support::{Daemon, Netns, eventually, rootfs_tar};

const REGISTRY: &str = "127.0.0.1:5000";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `docker-registry serve` in the test's namespace; killed by its PID on drop (the
/// namespace's drop kills whatever is left in it too).
struct Registry {
    child: Child,
    /// Its storage root.
    storage: PathBuf,
}

impl Registry {
    fn start(ns: &Netns) -> Registry {
        let storage = ns.dir.join("registry");
        let config = ns.dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {REGISTRY}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "docker-registry", "serve"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is needed (apt-get install docker-registry)");
        // Ready once its /v2/ answers.
        eventually(30, || ns.run(|| http_status(REGISTRY, "/v2/")).filter(|s| *s == 200).map(drop));
        Registry { child, storage }
    }

    /// The file the registry keeps blob `sha256:<hex>` in.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of `GET path` on `addr` (from inside the namespace), if it answered.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    reply.split(' ').nth(1)?.parse().ok()
}

/// `skopeo copy ARGS` inside the namespace (plain HTTP to the registry); asserts success.
fn skopeo(ns: &Netns, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name, "skopeo", "copy", "--quiet", "--dest-tls-verify=false"])
        .args(args)
        .output()
        .expect("skopeo is needed (apt-get install skopeo)");
    assert!(out.status.success(), "skopeo copy {args:?}: {}", stderr(&out));
}

/// An image made here (busybox-static, `CMD` echoing `says`), saved as Docker's archive;
/// removed from the daemon again.
fn archive(d: &Daemon, ns: &Netns, name: &str, says: &str) -> PathBuf {
    let dir = ns.dir.join(format!("src-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = rootfs_tar(false, &dir, false);
    let cmd = format!(r#"CMD ["echo", "{says}"]"#);
    d.ok(&["import", "--change", &cmd, tar.to_str().unwrap(), name]);
    let out = dir.join("image.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), name]);
    d.ok(&["rmi", name]);
    out
}

/// Blobs and staged files in the daemon's store.
fn store_files(d: &Daemon) -> (usize, usize) {
    let count = |p: PathBuf| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    (count(d.data_root.join("image/blobs/sha256")), count(d.data_root.join("image/tmp")))
}

/// The `Digest: ` a pull printed.
fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

#[test]
fn pull_prints_dockers_progress_and_the_image_runs() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let reg = Registry::start(&ns);
    let image = archive(&d, &ns, "bb", "hello from the registry");
    let src = format!("docker-archive:{}", image.display());
    skopeo(&ns, &[&src, &format!("docker://{REGISTRY}/bb:latest")]);
    assert_eq!(store_files(&d), (0, 0));

    let out = d.cli(&["pull", &format!("{REGISTRY}/bb")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "latest: Pulling from bb", "{text}");
    let layer = lines[1].strip_suffix(": Pulling fs layer").unwrap_or_else(|| panic!("{text}"));
    assert_eq!(layer.len(), 12, "{text}");
    assert_eq!(
        &lines[2..5],
        [
            format!("{layer}: Verifying Checksum"),
            format!("{layer}: Download complete"),
            format!("{layer}: Pull complete"),
        ],
        "{text}"
    );
    let digest = digest_line(&text);
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{text}");
    assert_eq!(lines[6], format!("Status: Downloaded newer image for {REGISTRY}/bb:latest"));
    assert_eq!(lines[7], format!("{REGISTRY}/bb:latest"));
    assert_eq!(lines.len(), 8, "{text}");
    // The layer and the config are stored, nothing is left staged.
    assert_eq!(store_files(&d), (2, 0));
    let repo_digests =
        d.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", "127.0.0.1:5000/bb"]);
    assert_eq!(repo_digests.trim(), format!(r#"["{REGISTRY}/bb@{digest}"]"#));

    assert_eq!(d.ok(&["run", "--rm", &format!("{REGISTRY}/bb")]), "hello from the registry\n");

    // Again: up to date, no layer fetched.
    let again = d.ok(&["pull", &format!("{REGISTRY}/bb:latest")]);
    assert_eq!(
        again,
        format!(
            "latest: Pulling from bb\nDigest: {digest}\nStatus: Image is up to date for \
             {REGISTRY}/bb:latest\n{REGISTRY}/bb:latest\n"
        )
    );
    // Each pull logged as dockerd 20.10 logs it: by its reference, `name` the repository
    // (tests/fixtures/docker-20.10-image-events/events.txt).
    let until =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap()).as_secs() + 1;
    let format = "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}";
    let args = ["events", "--since", "0", "--until", &until.to_string(), "--format", format];
    let (code, events, err) = d.docker(&[&args[..], &["--filter", "event=pull"]].concat(), None);
    assert_eq!(code, 0, "{err}");
    let pulled = format!("pull {REGISTRY}/bb:latest {{\"name\":\"{REGISTRY}/bb\"}}\n");
    assert_eq!(events, pulled.repeat(2));
    // By digest, quietly: the reference alone.
    let by_digest = format!("{REGISTRY}/bb@{digest}");
    assert_eq!(d.ok(&["pull", "-q", &by_digest]), format!("{by_digest}\n"));
    assert_eq!(d.ok(&["run", "--rm", &by_digest]), "hello from the registry\n");

    // `run` of an image not stored: Docker's words on stderr, the pull, then the run.
    d.ok(&["rmi", &format!("{REGISTRY}/bb")]);
    assert_eq!(store_files(&d).0, 0, "rmi of the last tag removes the digest reference too");
    let out = d.cli(&["run", "--rm", &format!("{REGISTRY}/bb")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from the registry\n");
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "Unable to find image '{REGISTRY}/bb:latest' locally\nlatest: Pulling from bb\n"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("Status: Downloaded newer image for {REGISTRY}/bb:latest\n")));
    drop(reg);
}

#[test]
fn zstd_layers_and_multi_arch_indexes_are_pulled() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let reg = Registry::start(&ns);
    let right = archive(&d, &ns, "right", "this platform");
    let wrong = archive(&d, &ns, "wrong", "another platform");

    // zstd: an OCI manifest whose layer is zstd-compressed.
    let src = format!("docker-archive:{}", right.display());
    skopeo(
        &ns,
        &[
            "--format",
            "oci",
            "--dest-compress-format",
            "zstd",
            &src,
            &format!("docker://{REGISTRY}/z:1"),
        ],
    );
    let link = reg.storage.join("docker/registry/v2/repositories/z/_manifests/tags/1/current/link");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(reg.blob_file(&std::fs::read_to_string(link).unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    let out = d.ok(&["pull", &format!("{REGISTRY}/z:1")]);
    assert!(out.contains("1: Pulling from z\n"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", &format!("{REGISTRY}/z:1")]), "this platform\n");

    // An OCI index with another platform first: this machine's entry is the one pulled.
    let layout = ns.dir.join("layout");
    let l = layout.display();
    skopeo(&ns, &[&format!("docker-archive:{}", right.display()), &format!("oci:{l}:right")]);
    skopeo(&ns, &[&format!("docker-archive:{}", wrong.display()), &format!("oci:{l}:wrong")]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = |tag: &str| {
        let m = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap();
        (m["digest"].as_str().unwrap().to_string(), m["size"].as_u64().unwrap())
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if arch == "s390x" { "ppc64le" } else { "s390x" };
    let (rd, rs) = entry("right");
    let (wd, ws) = entry("wrong");
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": wd, "size": ws,
             "platform": {"architecture": other, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": rd, "size": rs,
             "platform": {"architecture": arch, "os": "linux"}},
        ],
    });
    let bytes = serde_json::to_vec(&list).unwrap();
    let hex = sha256_hex(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                       "digest": format!("sha256:{hex}"), "size": bytes.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "multi"}}],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    skopeo(
        &ns,
        &["--all", &format!("oci:{l}:multi"), &format!("docker://{REGISTRY}/multi:latest")],
    );
    // What skopeo pushed as the tag (it may re-serialize the index): an index, whose digest
    // the pull prints.
    let tag_link = reg
        .storage
        .join("docker/registry/v2/repositories/multi/_manifests/tags/latest/current/link");
    let pushed = std::fs::read_to_string(tag_link).unwrap();
    let pushed_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_file(&pushed)).unwrap()).unwrap();
    assert_eq!(pushed_index["manifests"].as_array().map(Vec::len), Some(2), "{pushed_index}");
    let out = d.ok(&["pull", &format!("{REGISTRY}/multi")]);
    assert_eq!(digest_line(&out), pushed, "the index's digest is printed");
    assert_eq!(d.ok(&["run", "--rm", &format!("{REGISTRY}/multi")]), "this platform\n");
}

/// The sha256 of `data` in hex, by sha256sum.
fn sha256_hex(data: &[u8]) -> String {
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn unknown_names_a_down_registry_and_corrupt_blobs_fail_in_dockers_words() {
    let ns = Netns::new();
    let d = ns.daemon(&[]);
    let reg = Registry::start(&ns);

    let out = d.cli(&["pull", &format!("{REGISTRY}/nosuch")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "Error response from daemon: manifest for {REGISTRY}/nosuch:latest not found: \
             manifest unknown: manifest unknown\n"
        )
    );
    let out = d.cli(&["run", "--rm", &format!("{REGISTRY}/nosuch:v1")]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        format!(
            "Unable to find image '{REGISTRY}/nosuch:v1' locally\ncproxy: Error response from \
             daemon: manifest for {REGISTRY}/nosuch:v1 not found: manifest unknown: manifest \
             unknown.\nSee 'cproxy run --help'.\n"
        )
    );
    let out = d.cli(&["run", "--pull", "never", "--rm", &format!("{REGISTRY}/nosuch")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(!stderr(&out).contains("Unable to find"), "{}", stderr(&out));

    // Nothing listens on 5999.
    let out = d.cli(&["pull", "127.0.0.1:5999/bb"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error response from daemon: Get \"http://127.0.0.1:5999/v2/\": dial tcp \
         127.0.0.1:5999: connect: connection refused\n"
    );

    // A layer whose bytes the registry's storage no longer matches: refused, nothing kept.
    let image = archive(&d, &ns, "bb", "never runs");
    skopeo(
        &ns,
        &[&format!("docker-archive:{}", image.display()), &format!("docker://{REGISTRY}/bad:1")],
    );
    let manifest_path = reg.storage.join("docker/registry/v2/repositories/bad/_layers/sha256");
    let layers: Vec<String> = std::fs::read_dir(&manifest_path)
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    // The repository's blobs are its layer and its config; the config is small JSON.
    let layer = layers
        .iter()
        .find(|l| std::fs::metadata(reg.blob_file(l)).unwrap().len() > 4096)
        .expect("a layer blob")
        .clone();
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let out = d.cli(&["pull", &format!("{REGISTRY}/bad:1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stderr(&out), format!("filesystem layer verification failed for digest {layer}\n"));
    assert!(stdout(&out).starts_with("1: Pulling from bad\n"), "{}", stdout(&out));
    assert_eq!(store_files(&d), (0, 0), "a failed pull leaves no blob and nothing staged");
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.cli(&["run", "--rm", &format!("{REGISTRY}/bad:1")]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).ends_with(&format!(
            "cproxy: filesystem layer verification failed for digest {layer}.\nSee 'cproxy run \
             --help'.\n"
        )),
        "{}",
        stderr(&out)
    );
}
