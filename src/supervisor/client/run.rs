//! `cproxy run`: the flags checked as Docker's client checks them, turned into the create
//! request, then the container started, detached or followed to its exit (its logs, or with
//! `-i`/`-t` a hijacked `attach` that carries stdin too).

use std::path::Path;

use hyper::Method;

use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::api::types::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerWaitResponse, Empty,
    EndpointIpamConfig, EndpointSettings, PortSet, RestartPolicySpec,
};
use crate::supervisor::client::attach::{self, Streams};
use crate::supervisor::client::cli::RunArgs;
use crate::supervisor::client::image::pull_image;
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, fail, q, read_json};
use crate::supervisor::image::reference::Reference;
use crate::supervisor::rules::links::{self, Link};
use crate::supervisor::rules::mounts;
use crate::supervisor::rules::resources::{self, Throttle};
use crate::supervisor::rules::restart::{PolicyError, RestartPolicy};

/// Capitalises a spec error as the 20.10 client prints it (`Invalid containerPort: x`).
fn capitalised(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => s,
    }
}

/// A failed start during `run`: exit 125, no usage hint (as docker).
fn started(f: Failure) -> Failure {
    let code = crate::supervisor::rules::exit_codes::start_failure(&f.message).unwrap_or(125);
    Failure { code, see_help: false, ..f }
}

/// `-p` in canonical form, each checked, and `--expose` checked.
fn port_specs(a: &RunArgs) -> Result<Vec<String>> {
    let mut specs = Vec::new();
    for p in &a.publish {
        let spec = PortSpec::parse(p).map_err(|e| fail(capitalised(e), 125))?;
        specs.push(spec.to_string());
    }
    for e in &a.expose {
        parse_expose(e).map_err(|e| fail(e.to_string(), 125))?;
    }
    Ok(specs)
}

/// The create request for `run`'s flags (`specs` from [`port_specs`]), refusing in Docker's
/// words what the client checks itself.
fn create_request(a: &RunArgs, specs: Vec<String>) -> Result<ContainerCreateRequest> {
    let restart_policy = restart_request(&a.restart, a.rm)?;
    let mut links = Vec::new();
    for value in &a.link {
        match Link::parse(value) {
            Ok(l) => links.push(l),
            Err(e) => return Err(fail(e.flag_message(value), 125)),
        }
    }
    links::check_network_mode(&a.network, &links).map_err(|e| fail(e.to_string(), 125))?;
    let mut env = Vec::new();
    for file in &a.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(a.env.iter().cloned());
    for kv in &env {
        if kv.is_empty() || kv.starts_with('=') {
            return Err(fail(format!("invalid environment variable: {kv}"), 125));
        }
    }
    let mut req = ContainerCreateRequest::default();
    let config = &mut req.config;
    match &a.rootfs {
        Some(root) => {
            config.cmd = a.command.clone();
            req.host_config.rootfs = root.clone();
        }
        None => {
            config.image = a.command.first().cloned().unwrap_or_default();
            config.cmd = a.command.get(1..).unwrap_or_default().to_vec();
        }
    }
    let config = &mut req.config;
    // `--entrypoint ""` resets the image's: Docker sends `[""]`.
    config.entrypoint = a.entrypoint.clone().map(|e| vec![e]);
    config.user = a.user.clone().unwrap_or_default();
    // In the foreground the client reads stdout and stderr, as Docker's does.
    config.attach_stdout = !a.detach;
    config.attach_stderr = !a.detach;
    // `-i` keeps stdin open; attached in the foreground, and closed at the client's end.
    config.open_stdin = a.interactive;
    config.attach_stdin = a.interactive && !a.detach;
    config.stdin_once = a.interactive && !a.detach;
    config.tty = a.tty;
    config.env = Some(env);
    config.working_dir = a.workdir.clone().unwrap_or_default();
    config.stop_signal = a.stop_signal.clone();
    config.stop_timeout = a.stop_timeout;
    config.hostname = a.hostname.clone().unwrap_or_default();
    let exposed: PortSet = a.expose.iter().map(|e| (e.clone(), Empty {})).collect();
    config.exposed_ports = Some(exposed).filter(|e| !e.is_empty());
    let host = &mut req.host_config;
    host.network_mode = a.network.clone();
    host.port_specs = specs;
    host.publish_all_ports = a.publish_all;
    // As Docker's CLI: the daemon removes it when it exits, also after a detach.
    host.auto_remove = a.rm;
    host.init = a.init.then_some(true);
    // As the docker CLI: a value with a source is a bind (or names a volume); a bare path
    // is an anonymous volume, in `Config.Volumes`.
    let (binds, anonymous): (Vec<String>, Vec<String>) =
        a.volume.iter().cloned().partition(|v| mounts::is_bind_value(v));
    host.binds = Some(binds).filter(|b| !b.is_empty());
    let flag_error = |value: &str, flag: &str, why: String| {
        fail(format!("invalid argument \"{value}\" for \"{flag}\" flag: {why}"), 125)
    };
    let mut api_mounts = Vec::new();
    for m in &a.mount {
        api_mounts.push(mounts::parse_mount_flag(m).map_err(|e| flag_error(m, "--mount", e))?);
    }
    host.mounts = Some(api_mounts).filter(|m| !m.is_empty());
    let tmpfs: std::collections::BTreeMap<String, String> = a
        .tmpfs
        .iter()
        .map(|t| {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            (dst.to_string(), opts.to_string())
        })
        .collect();
    host.tmpfs = Some(tmpfs).filter(|t| !t.is_empty());
    host.volumes_from = Some(a.volumes_from.clone()).filter(|v| !v.is_empty());
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        ulimits.push(mounts::parse_ulimit(u).map_err(|e| flag_error(u, "--ulimit", e))?);
    }
    host.ulimits = Some(ulimits).filter(|u| !u.is_empty());
    if let Some(size) = &a.shm_size {
        host.shm_size =
            mounts::ram_in_bytes(size).map_err(|e| flag_error(size, "--shm-size", e))?;
    }
    host.resources = super::resources::limits(&a.resources)?;
    host.resources.cgroup_parent = a.cgroup_parent.clone().unwrap_or_default();
    let log_opts: std::collections::BTreeMap<String, String> =
        a.log_opt.iter().map(|o| crate::supervisor::rules::logging::parse_opt(o)).collect();
    if a.log_driver.as_deref() == Some("none") && !log_opts.is_empty() {
        return Err(fail("invalid logging opts for driver none", 125));
    }
    host.log_config = Some(crate::supervisor::api::types::LogConfig {
        kind: a.log_driver.clone().unwrap_or_default(),
        config: log_opts,
    });
    // docker/cli sends each list, empty when the flag is not given.
    let mut weights = Vec::new();
    for v in &a.blkio_weight_device {
        weights.push(
            resources::parse_weight_device(v)
                .map_err(|e| flag_error(v, "--blkio-weight-device", e))?,
        );
    }
    host.resources.blkio_weight_device = Some(weights);
    for (kind, values) in [
        (Throttle::ReadBps, &a.device_read_bps),
        (Throttle::WriteBps, &a.device_write_bps),
        (Throttle::ReadIops, &a.device_read_iops),
        (Throttle::WriteIops, &a.device_write_iops),
    ] {
        let mut list = Vec::new();
        for v in values {
            list.push(
                resources::parse_throttle(kind, v).map_err(|e| flag_error(v, kind.flag(), e))?,
            );
        }
        *host.resources.throttle_list_mut(kind) = Some(list);
    }
    let swappiness = match &a.memory_swappiness {
        Some(v) => resources::go_int(v).map_err(|e| flag_error(v, "--memory-swappiness", e))?,
        None => -1,
    };
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(fail(
            format!("invalid value: {swappiness}. Valid memory swappiness range is 0-100"),
            125,
        ));
    }
    host.resources.memory_swappiness = Some(swappiness).filter(|s| *s != -1);
    host.resources.oom_kill_disable = Some(a.oom_kill_disable);
    if a.oom_kill_disable && host.resources.memory == 0 {
        eprintln!(
            "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous."
        );
    }
    let anonymous: PortSet = anonymous.into_iter().map(|v| (v, Empty {})).collect();
    req.config.volumes = Some(anonymous).filter(|v| !v.is_empty());
    host.proxy_protocol = a.proxy_protocol.map(|v| v.to_string()).unwrap_or_default();
    host.source_ip_transparent = a.source_ip_transparent;
    host.restart_policy = restart_policy;
    host.links = Some(a.link.clone()).filter(|l| !l.is_empty());
    host.cap_add = Some(a.cap_add.clone()).filter(|c| !c.is_empty());
    host.cap_drop = Some(a.cap_drop.clone()).filter(|c| !c.is_empty());
    host.privileged = a.privileged;
    host.security_opt = security_opts(&a.security_opt)?;
    host.readonly_rootfs = a.read_only;
    host.runtime = a.runtime.clone().unwrap_or_default();
    if !a.network_alias.is_empty() || a.ip.is_some() {
        let endpoint = EndpointSettings {
            aliases: Some(a.network_alias.clone()),
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: a.ip.clone().unwrap_or_default(),
            }),
            ..EndpointSettings::default()
        };
        req.networking_config.endpoints_config.insert(a.network.clone(), endpoint);
    }
    Ok(req)
}

/// `--security-opt` values as Docker's client sends them: a bare word other than
/// `no-new-privileges` is refused here, and `seccomp=FILE` sends the file's profile.
fn security_opts(values: &[String]) -> Result<Option<Vec<String>>> {
    let mut out = Vec::new();
    for v in values {
        if !v.contains(['=', ':']) && v != "no-new-privileges" {
            return Err(fail(format!("Invalid --security-opt: {v:?}"), 125));
        }
        match v.strip_prefix("seccomp=").or_else(|| v.strip_prefix("seccomp:")) {
            Some(file) if file != "unconfined" => {
                let json = std::fs::read_to_string(file).map_err(|e| {
                    let e = crate::supervisor::client::transport::go_error(&e);
                    fail(format!("opening seccomp profile ({file}) failed: open {file}: {e}"), 125)
                })?;
                out.push(format!("seccomp={json}"));
            }
            _ => out.push(v.clone()),
        }
    }
    Ok(Some(out).filter(|o| !o.is_empty()))
}

/// Creates the container `run`'s or `create`'s flags describe; its ID.
async fn create_container(client: &Client, a: &RunArgs, code: u8) -> Result<String> {
    let specs = port_specs(a)?;
    if a.network == "host" && !specs.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    let body = create_request(a, specs)?;
    let name = a.name.as_deref().map(|n| format!("?name={}", q(n))).unwrap_or_default();
    let uri = format!("/containers/create{name}");
    let image = (a.rootfs.is_none()).then(|| body.config.image.clone());
    if let Some(image) = image.as_deref().filter(|_| a.pull == "always") {
        pull_image(client, image, &mut std::io::stderr())
            .await
            .map_err(|f| fail(f.message, code))?;
    }
    let created: ContainerCreateResponse = match client.json(Method::POST, &uri, Some(&body)).await
    {
        // Docker's client: an image not found locally is pulled (its progress on stderr),
        // then the create is tried again.
        Err(f) if f.status == 404 && f.message.contains("No such image") && a.pull == "missing" => {
            let Some(image) = image else { return Err(fail(f.message, code)) };
            let shown = Reference::parse_normalized(&image)
                .map(|r| r.with_default_tag().familiar_string())
                .unwrap_or_else(|_| image.clone());
            eprintln!("Unable to find image '{shown}' locally");
            pull_image(client, &image, &mut std::io::stderr())
                .await
                .map_err(|f| fail(f.message, code))?;
            client.json(Method::POST, &uri, Some(&body)).await
        }
        other => other,
    }
    .map_err(|f| fail(f.message, code))?;
    for w in &created.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(created.id)
}

/// `create`: makes the container, not started, and prints its ID.
pub(super) async fn create(client: &Client, a: RunArgs) -> Result<u8> {
    println!("{}", create_container(client, &a, 1).await?);
    Ok(0)
}

/// `run`: creates the container, starts it, and either prints its ID (`-d`) or streams its
/// output until it exits and exits with its code.
pub(super) async fn run_container(client: &Client, a: RunArgs) -> Result<u8> {
    let streams = Streams {
        stdin: a.interactive,
        tty: a.tty,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
    };
    if !a.detach {
        streams.check()?;
    }
    let id = create_container(client, &a, 125).await?;
    if a.detach {
        client
            .call(Method::POST, &format!("/containers/{id}/start"), NO_BODY)
            .await
            .map_err(started)?;
        println!("{id}");
        return Ok(0);
    }
    // Foreground, as Docker's CLI: the wait is asked for before the start (the daemon answers
    // its head at once), for the next exit, or with `--rm` for the removal the daemon makes
    // after it; its body, read once the output ended, has the exit code. A container that
    // cannot be attached or started is removed here.
    let remove = || async {
        if a.rm {
            let uri = format!("/containers/{id}?force=1&v=1");
            let _ = client.call(Method::DELETE, &uri, NO_BODY).await;
        }
    };
    // Attached before the start, as Docker's CLI, so no output is missed (and none is lost
    // to a removal that follows a quick exit).
    let stdin = u8::from(a.interactive);
    let uri = format!("/containers/{id}/attach?stream=1&stdin={stdin}&stdout=1&stderr=1");
    let conn = match client.hijack(&uri, NO_BODY).await {
        Ok(conn) => conn,
        Err(e) => {
            remove().await;
            return Err(e);
        }
    };
    let condition = if a.rm { "removed" } else { "next-exit" };
    let uri = format!("/containers/{id}/wait?condition={condition}");
    let waiting = match client.call(Method::POST, &uri, NO_BODY).await {
        Ok(waiting) => waiting,
        Err(e) => {
            remove().await;
            return Err(e);
        }
    };
    let start = client.call(Method::POST, &format!("/containers/{id}/start"), NO_BODY).await;
    if let Err(e) = start {
        remove().await;
        return Err(started(e));
    }
    {
        let _raw = streams.raw_terminal();
        let sizes =
            a.tty.then(|| attach::follow_terminal_size(client, format!("/containers/{id}/resize")));
        let ended = attach::carry(conn, &streams).await;
        if let Some(sizes) = sizes.flatten() {
            sizes.abort();
        }
        if ended == attach::Ended::Detached {
            return Ok(0);
        }
    }
    let waited: ContainerWaitResponse = read_json(waiting).await?;
    Ok(u8::try_from(waited.status_code).unwrap_or(255))
}

/// `--restart` as Docker's client sends it: the client refuses what it checks itself (a bad
/// count, `--rm`), the daemon the rest, both in Docker's words.
fn restart_request(value: &str, rm: bool) -> Result<RestartPolicySpec> {
    let policy = RestartPolicy::parse(value);
    if let Err(e) = &policy
        && e.is_client_side()
    {
        return Err(fail(e.to_string(), 125));
    }
    if rm && value != "no" && !value.is_empty() {
        return Err(fail(PolicyError::ConflictsWithRm.to_string(), 125));
    }
    let (name, count) = value.split_once(':').unwrap_or((value, "0"));
    Ok(RestartPolicySpec {
        name: name.to_string(),
        maximum_retry_count: count.parse().unwrap_or(0),
    })
}

/// `--env-file`: `KEY=VALUE` lines, `#` comments and blank lines skipped, a bare `KEY` taking
/// the value it has here (dropped if unset), as docker reads it.
fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let os = e.to_string();
        let os = os.split(" (os error").next().unwrap_or(&os).to_lowercase();
        fail(format!("open {}: {os}", path.display()), 125)
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('=') {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(line) {
            out.push(format!("{line}={v}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;

    use super::*;
    use crate::supervisor::client::cli::{SupervisorCli, SupervisorCommand};

    /// `cproxy run ARGS` parsed.
    fn args(argv: &[&str]) -> RunArgs {
        let argv = ["cproxy", "run"].iter().chain(argv);
        match SupervisorCli::try_parse_from(argv).unwrap().command {
            SupervisorCommand::Run(a) => *a,
            other => panic!("not run: {other:?}"),
        }
    }

    /// What the daemon gets for `cproxy run ARGS`, as JSON.
    fn body(argv: &str) -> Value {
        let a = args(&argv.split_whitespace().collect::<Vec<_>>());
        let specs = port_specs(&a).unwrap_or_else(|f| panic!("{}", f.message));
        let req = create_request(&a, specs).unwrap_or_else(|f| panic!("{}", f.message));
        serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap()
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_bare_run_sends_the_command_and_defaults() {
        assert_eq!(
            body("busybox sleep 10"),
            json(
                r#"{"Hostname": "", "Env": [], "Cmd": ["sleep", "10"], "Entrypoint": null,
                    "Image": "busybox", "User": "", "AttachStdin": false, "AttachStdout": true, "AttachStderr": true, "Tty": false, "OpenStdin": false, "StdinOnce": false, "WorkingDir": "", "Volumes": null, "Labels": null, "ExposedPorts": null, "StopSignal": null, "StopTimeout": null,
                    "HostConfig": {"NetworkMode": "bridge", "PortBindings": {},
                        "PublishAllPorts": false, "AutoRemove": false, "Binds": null,
                        "ProxyProtocol": "", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                        "Links": null, "Init": null, "CapAdd": null, "CapDrop": null,
                        "LogConfig": {"Type": "", "Config": {}},
                        "Privileged": false, "SecurityOpt": null, "Mounts": null, "Tmpfs": null,
                        "VolumesFrom": null, "ShmSize": 0, "Ulimits": null,
                        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
                        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
                        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
                        "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
                        "CpusetMems": "", "KernelMemory": 0, "MemoryReservation": 0,
                        "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
                        "PidsLimit": null, "ReadonlyRootfs": false},
                    "NetworkingConfig": {"EndpointsConfig": {}}}"#
            )
        );
    }

    #[test]
    fn rootfs_makes_the_first_argument_the_command() {
        let got = body(
            "--rootfs / --entrypoint /bin/sh -u app:staff --cap-add NET_ADMIN \
                        --cap-drop chown --privileged --read-only --security-opt no-new-privileges \
                        -- -c true",
        );
        assert_eq!(got["Image"], json(r#""""#));
        assert_eq!(got["Cmd"], json(r#"["-c", "true"]"#));
        assert_eq!(got["Entrypoint"], json(r#"["/bin/sh"]"#));
        assert_eq!(got["User"], json(r#""app:staff""#));
        let hc = &got["HostConfig"];
        assert_eq!(hc["Rootfs"], json(r#""/""#));
        assert_eq!(hc["CapAdd"], json(r#"["NET_ADMIN"]"#));
        assert_eq!(hc["CapDrop"], json(r#"["chown"]"#));
        assert_eq!(hc["Privileged"], json("true"));
        assert_eq!(hc["ReadonlyRootfs"], json("true"));
        assert_eq!(hc["SecurityOpt"], json(r#"["no-new-privileges"]"#));
    }

    #[test]
    fn security_opts_are_checked_and_profiles_read_as_dockers_client_does() {
        let refused = |v: &str| security_opts(&[v.to_string()]).unwrap_err().message;
        assert_eq!(refused("foo"), "Invalid --security-opt: \"foo\"");
        assert_eq!(
            refused("seccomp=/nonexistent.json"),
            "opening seccomp profile (/nonexistent.json) failed: open /nonexistent.json: no \
             such file or directory"
        );
        let file = std::env::temp_dir().join(format!("cproxy-profile-{}", std::process::id()));
        std::fs::write(&file, "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}").unwrap();
        let sent = security_opts(&[format!("seccomp={}", file.display())]).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(sent, Some(vec!["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".to_string()]));
        assert_eq!(
            security_opts(&["seccomp=unconfined".into()]).unwrap().unwrap()[0],
            "seccomp=unconfined"
        );
    }

    #[test]
    fn run_flags_become_the_create_request() {
        let mut got = body(
            "-d --rm -p 127.0.0.1:8080:80 -p 7000-7001:7000-7001/udp -P --expose 5000 \
             --expose 7000-7002/udp -e A=1 -h box -w /srv -v /tmp:/mnt:ro --proxy-protocol v2 \
             --init --stop-signal SIGINT --stop-timeout 3 --link db:d --network my-net \
             --network-alias api --ip 10.89.0.5 img prog --flag",
        );
        let endpoint = got["NetworkingConfig"]["EndpointsConfig"]["my-net"].take();
        let want = json(
            r#"{"Hostname": "box", "Env": ["A=1"], "Cmd": ["prog", "--flag"], "Entrypoint": null,
                "Image": "img", "User": "", "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "WorkingDir": "/srv", "Volumes": null, "Labels": null, "ExposedPorts": {"5000": {}, "7000-7002/udp": {}},
                "StopSignal": "SIGINT", "StopTimeout": 3,
                "HostConfig": {"NetworkMode": "my-net", "PortBindings": {},
                    "PortSpecs": ["127.0.0.1:8080:80/tcp", "7000-7001:7000-7001/udp"],
                    "PublishAllPorts": true, "AutoRemove": true, "Binds": ["/tmp:/mnt:ro"],
                    "ProxyProtocol": "v2", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                    "Links": ["db:d"], "Init": true, "CapAdd": null, "CapDrop": null,
                    "LogConfig": {"Type": "", "Config": {}},
                    "Privileged": false, "SecurityOpt": null, "Mounts": null, "Tmpfs": null,
                        "VolumesFrom": null, "ShmSize": 0, "Ulimits": null,
                        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
                        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
                        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
                        "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
                        "CpusetMems": "", "KernelMemory": 0, "MemoryReservation": 0,
                        "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
                        "PidsLimit": null, "ReadonlyRootfs": false},
                "NetworkingConfig": {"EndpointsConfig": {"my-net": null}}}"#,
        );
        assert_eq!(got, want);
        // The endpoint: the alias and the address; the rest is what inspect shows, left empty.
        assert_eq!(endpoint["Aliases"], json(r#"["api"]"#));
        assert_eq!(endpoint["IPAMConfig"], json(r#"{"IPv4Address": "10.89.0.5"}"#));
        let sent: EndpointSettings = serde_json::from_value(endpoint).unwrap();
        assert_eq!(
            sent,
            EndpointSettings {
                aliases: Some(vec!["api".into()]),
                ipam_config: Some(EndpointIpamConfig { ipv4_address: "10.89.0.5".into() }),
                ..EndpointSettings::default()
            }
        );
    }

    #[test]
    fn an_alias_alone_still_sends_the_address_field_empty() {
        let got = body("--network n --network-alias a true");
        let endpoint = &got["NetworkingConfig"]["EndpointsConfig"]["n"];
        assert_eq!(endpoint["Aliases"], json(r#"["a"]"#));
        assert_eq!(endpoint["IPAMConfig"], json(r#"{"IPv4Address": ""}"#));
    }

    #[test]
    fn restart_policies_are_sent_as_given_or_refused_in_dockers_words() {
        let policy = |argv: &str| body(argv)["HostConfig"]["RestartPolicy"].clone();
        assert_eq!(
            policy("--restart on-failure:3 true"),
            json(r#"{"Name": "on-failure", "MaximumRetryCount": 3}"#)
        );
        // The daemon refuses a count on `always`, in its words.
        assert_eq!(
            policy("--restart always:2 true"),
            json(r#"{"Name": "always", "MaximumRetryCount": 2}"#)
        );
        let refused = |argv: &[&str]| {
            let a = args(argv);
            create_request(&a, Vec::new()).err().map(|f| (f.message, f.code))
        };
        assert_eq!(
            refused(&["--rm", "--restart", "always", "true"]),
            Some((PolicyError::ConflictsWithRm.to_string(), 125))
        );
        assert!(refused(&["--restart", "on-failure:x", "true"]).is_some());
    }

    #[test]
    fn bad_flags_are_refused_before_asking() {
        let refused = |argv: &[&str]| {
            let a = args(argv);
            port_specs(&a).and_then(|s| create_request(&a, s)).err().map(|f| (f.message, f.code))
        };
        assert_eq!(refused(&["-e", "=x", "true"]).unwrap().0, "invalid environment variable: =x");
        assert_eq!(refused(&["--network", "host", "--link", "db", "true"]).unwrap().1, 125);
        assert_eq!(refused(&["--expose", "x", "true"]).unwrap().1, 125);
        assert!(refused(&["-p", "x", "true"]).unwrap().0.starts_with("Invalid"));
    }
}
