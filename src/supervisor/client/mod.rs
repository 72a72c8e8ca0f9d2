//! The client side of the container commands: HTTP over the daemon's unix socket (hyper),
//! and Docker's output formats and error words.

pub mod cli;
pub mod compose;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::api::types::ContainerSummary;
use crate::supervisor::client::cli::{
    ExecArgs, InspectArgs, NetworkCommand, PortArgs, PsArgs, RunArgs, SupervisorCommand,
};
use crate::supervisor::rules::env::container_env;
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format;
use crate::supervisor::rules::links::{self, Link};
use crate::supervisor::rules::ps_format;
use crate::supervisor::rules::restart::{PolicyError, RestartPolicy};
use crate::supervisor::rules::template::render_template;

/// A failed call: what to print, and the exit code.
struct Failure {
    message: String,
    code: u8,
    /// `run` adds "See 'cproxy run --help'." (flag errors, and refusals at create).
    see_help: bool,
}

type Result<T> = std::result::Result<T, Failure>;

fn fail(message: impl Into<String>, code: u8) -> Failure {
    Failure { message: message.into(), code, see_help: code == 125 }
}

/// The daemon at the end of a socket.
struct Client {
    socket: PathBuf,
}

impl Client {
    /// Sends a request; a non-2xx answer becomes Docker's "Error response from daemon: …".
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| connect_error(&self.socket, uri, &e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("cannot talk to the daemon: {e}"), 1))?;
        tokio::spawn(conn);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "cproxy")
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(e.to_string(), 1))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(format!("cannot talk to the daemon: {e}"), 1))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{status}"));
        Err(fail(format!("Error response from daemon: {message}"), 1))
    }

    async fn json(&self, method: Method, uri: &str, body: Option<Value>) -> Result<Value> {
        let resp = self.call(method, uri, body).await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| fail(e.to_string(), 1))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("bad answer from the daemon: {e}"), 1))
    }
}

/// Docker's words for a socket that cannot be reached.
fn connect_error(socket: &Path, uri: &str, e: &std::io::Error) -> Failure {
    let s = socket.display();
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        fail(
            format!(
                "permission denied while trying to connect to the cproxy daemon socket at unix://{s}: \
                 {uri}: dial unix {s}: connect: permission denied"
            ),
            1,
        )
    } else {
        fail(
            format!(
                "Cannot connect to the cproxy daemon at unix://{s}. Is the cproxy daemon running?"
            ),
            1,
        )
    }
}

/// Percent-encodes a query value.
fn q(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs a client command.
pub fn run(host: Option<String>, cmd: SupervisorCommand) -> ExitCode {
    let host = host
        .or_else(|| std::env::var("CPROXY_HOST").ok())
        .unwrap_or_else(|| format!("unix://{}", crate::supervisor::DEFAULT_SOCKET));
    let socket = match crate::supervisor::socket_path(&host) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cproxy: {e}");
            return ExitCode::from(125);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cproxy: {e}");
            return ExitCode::from(1);
        }
    };
    let client = &Client { socket };
    let is_run = matches!(cmd, SupervisorCommand::Run(_));
    let result = rt.block_on(async {
        match cmd {
            SupervisorCommand::Run(a) => run_container(client, *a).await,
            SupervisorCommand::Ps(a) => ps(client, a).await,
            SupervisorCommand::Port(a) => port(client, a).await,
            SupervisorCommand::Stop(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/stop{}", q(c), stop_query(a.time));
                async move { client.call(Method::POST, &uri, None).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Start(a) => {
                let mut failed = Vec::new();
                for c in &a.containers {
                    let uri = format!("/containers/{}/start", q(c));
                    match client.call(Method::POST, &uri, None).await {
                        Ok(_) => println!("{c}"),
                        Err(e) => {
                            eprintln!("{}", e.message);
                            failed.push(c.as_str());
                        }
                    }
                }
                if failed.is_empty() {
                    Ok(0)
                } else {
                    Err(fail(
                        format!("Error: failed to start containers: {}", failed.join(", ")),
                        1,
                    ))
                }
            }
            SupervisorCommand::Rm(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}?force={}", q(c), u8::from(a.force));
                async move { client.call(Method::DELETE, &uri, None).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Logs(a) => {
                let tail = a
                    .tail
                    .as_deref()
                    .filter(|t| *t != "all")
                    .map(|t| format!("&tail={}", q(t)))
                    .unwrap_or_default();
                let uri = format!(
                    "/containers/{}/logs?stdout=1&stderr=1&follow={}{tail}",
                    q(&a.container),
                    u8::from(a.follow)
                );
                stream_logs(client, &uri).await.map(|_| 0)
            }
            SupervisorCommand::Inspect(a) => inspect(client, a).await,
            SupervisorCommand::Restart(a) => {
                each(&a.containers, |c| {
                    let stop = format!("/containers/{}/stop{}", q(c), stop_query(a.time));
                    let start = format!("/containers/{}/start", q(c));
                    async move {
                        client.call(Method::POST, &stop, None).await?;
                        client.call(Method::POST, &start, None).await.map(|_| c.to_string())
                    }
                })
                .await
            }
            SupervisorCommand::Kill(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/kill?signal={}", q(c), q(&a.signal));
                async move { client.call(Method::POST, &uri, None).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Wait(a) => {
                each(&a.containers, |c| {
                    let uri = format!("/containers/{}/wait", q(c));
                    async move {
                        client
                            .json(Method::POST, &uri, None)
                            .await
                            .map(|v| v["StatusCode"].to_string())
                    }
                })
                .await
            }
            SupervisorCommand::Exec(a) => exec(client, a).await,
            SupervisorCommand::Network(a) => network(client, a).await,
            SupervisorCommand::Daemon(_)
            | SupervisorCommand::Init(_)
            | SupervisorCommand::NsExec(_) => Ok(0),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if is_run {
                let msg = f.message.trim_end_matches('.');
                eprintln!("cproxy: {msg}.");
                if f.see_help {
                    eprintln!("See 'cproxy run --help'.");
                }
            } else {
                eprintln!("{}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Runs `f` for each container, printing the line it gives on success (the name, or `wait`'s
/// exit code) and the daemon's words on failure; exit 1 if any failed.
async fn each<'a, F, Fut>(names: &'a [String], f: F) -> Result<u8>
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = Result<String>>,
{
    let mut failed = false;
    for name in names {
        match f(name).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{}", e.message);
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// `stop`'s query: `?t=SECS` only when `-t` was given, so the daemon falls back to the
/// container's `--stop-timeout` otherwise (Docker's client sends none either).
fn stop_query(time: Option<u64>) -> String {
    time.map(|t| format!("?t={t}")).unwrap_or_default()
}

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
    Failure { message: f.message, code: 125, see_help: false }
}

async fn run_container(client: &Client, a: RunArgs) -> Result<u8> {
    let mut specs = Vec::new();
    for p in &a.publish {
        let spec = PortSpec::parse(p).map_err(|e| fail(capitalised(e), 125))?;
        specs.push(spec.to_string());
    }
    for e in &a.expose {
        parse_expose(e).map_err(|e| fail(e.to_string(), 125))?;
    }
    if a.network == "host" && !specs.is_empty() {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
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
    let body = json!({
        "Cmd": a.command,
        "Env": env,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "StopSignal": a.stop_signal.clone().unwrap_or_default(),
        "StopTimeout": a.stop_timeout,
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "ExposedPorts": a.expose,
        "HostConfig": {
            "NetworkMode": a.network,
            "PortSpecs": specs,
            "PublishAllPorts": a.publish_all,
            "AutoRemove": a.rm && a.detach,
            "Init": a.init,
            "Binds": a.volume,
            "ProxyProtocol": a.proxy_protocol.map(|v| v.to_string()).unwrap_or_default(),
            "RestartPolicy": restart_policy,
            "Links": a.link,
        },
        "NetworkingConfig": {
            "EndpointsConfig": if a.network_alias.is_empty() && a.ip.is_none() {
                json!({})
            } else {
                json!({ a.network.clone(): {
                    "Aliases": a.network_alias,
                    "IPAMConfig": {"IPv4Address": a.ip.clone().unwrap_or_default()},
                } })
            },
        },
    });
    let name = a.name.as_deref().map(|n| format!("?name={}", q(n))).unwrap_or_default();
    let created = client
        .json(Method::POST, &format!("/containers/create{name}"), Some(body))
        .await
        .map_err(|f| fail(f.message, 125))?;
    let id = created["Id"].as_str().unwrap_or_default().to_string();
    if a.detach {
        client
            .call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map_err(started)?;
        println!("{id}");
        return Ok(0);
    }
    // Foreground: the daemon does not remove it (the client does, after `wait`), and an exited
    // container stays exited, so `wait` after the log stream ends cannot miss the exit.
    let start = client.call(Method::POST, &format!("/containers/{id}/start"), None).await;
    if let Err(e) = start {
        if a.rm {
            let _ = client.call(Method::DELETE, &format!("/containers/{id}?force=1"), None).await;
        }
        return Err(started(e));
    }
    stream_logs(client, &format!("/containers/{id}/logs?stdout=1&stderr=1&follow=1")).await?;
    let waited = client.json(Method::POST, &format!("/containers/{id}/wait"), None).await?;
    let code = waited["StatusCode"].as_i64().unwrap_or(255);
    if a.rm {
        let _ = client.call(Method::DELETE, &format!("/containers/{id}?force=1"), None).await;
    }
    Ok(u8::try_from(code).unwrap_or(255))
}

/// `--restart` as Docker's client sends it: the client refuses what it checks itself (a bad
/// count, `--rm`), the daemon the rest, both in Docker's words.
fn restart_request(value: &str, rm: bool) -> Result<Value> {
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
    let count: i64 = count.parse().unwrap_or(0);
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
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

/// Copies Docker's multiplexed log stream to stdout and stderr.
async fn stream_logs(client: &Client, uri: &str) -> Result<()> {
    let resp = client.call(Method::GET, uri, None).await?;
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        while buf.len() >= 8 {
            let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                break;
            }
            let chunk = &buf[8..8 + len];
            let _ = if buf[0] == 2 { err.write_all(chunk) } else { out.write_all(chunk) };
            buf.drain(..8 + len);
        }
        let _ = out.flush();
    }
    Ok(())
}

/// `ps`: the daemon filters (Docker's API), the client formats (Docker's formatter).
async fn ps(client: &Client, a: PsArgs) -> Result<u8> {
    let mut filters = Filters::default();
    for f in &a.filter {
        filters.add_flag(f).map_err(|e| {
            fail(
                format!(
                    "invalid argument \"{f}\" for \"-f, --filter\" flag: {e}\nSee 'cproxy ps --help'."
                ),
                125,
            )
        })?;
    }
    if let Some(t) = a.format.as_deref().filter(|t| !t.is_empty()) {
        ps_format::check(t).map_err(|e| fail(e, 1))?;
    }
    let mut uri = format!("/containers/json?all={}", u8::from(a.all));
    // Docker's client: `-n` wins, `-l` is `-n 1`.
    match (a.last, a.latest) {
        (n, _) if n > 0 => uri.push_str(&format!("&limit={n}")),
        (-1, true) => uri.push_str("&limit=1"),
        _ => {}
    }
    if !filters.is_empty() {
        uri.push_str(&format!("&filters={}", q(&filters.to_json())));
    }
    let list = client.json(Method::GET, &uri, None).await?;
    let items: Vec<ContainerSummary> = serde_json::from_value(list)
        .map_err(|e| fail(format!("bad answer from the daemon: {e}"), 1))?;
    let format =
        ps_format::effective_format(a.format.as_deref().filter(|t| !t.is_empty()), a.quiet);
    let text = ps_format::write(&format, &items, !a.no_trunc, std::time::SystemTime::now());
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(0)
}

/// The published ports of an inspect object, as (container port/proto, host ip, host port),
/// in Docker's order: by container port, protocol, IPv4 first.
fn port_lines(inspect: &Value) -> Vec<(u16, String, String, String)> {
    let mut out = Vec::new();
    if let Some(map) = inspect["NetworkSettings"]["Ports"].as_object() {
        for (key, bindings) in map {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse::<u16>() else { continue };
            for b in bindings.as_array().into_iter().flatten() {
                out.push((
                    port,
                    proto.to_string(),
                    b["HostIp"].as_str().unwrap_or_default().to_string(),
                    b["HostPort"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out.sort_by(|a, b| {
        (a.0, &a.1, a.2.contains(':'), &a.2).cmp(&(b.0, &b.1, b.2.contains(':'), &b.2))
    });
    out
}

async fn port(client: &Client, a: PortArgs) -> Result<u8> {
    let v = client
        .json(Method::GET, &format!("/containers/{}/json", q(&a.container)), None)
        .await
        .map_err(|f| fail(f.message.replace("Error response from daemon: ", "Error: "), 1))?;
    let lines = port_lines(&v);
    match a.port {
        None => {
            for (port, proto, ip, hp) in lines {
                println!("{port}/{proto} -> {ip}:{hp}");
            }
            Ok(0)
        }
        Some(spec) => {
            let (p, proto) = spec.split_once('/').unwrap_or((&spec, "tcp"));
            let port: u16 = p.parse().map_err(|_| {
                fail(format!("strconv.ParseUint: parsing \"{p}\": invalid syntax"), 1)
            })?;
            let found: Vec<_> = lines.into_iter().filter(|l| l.0 == port && l.1 == proto).collect();
            if found.is_empty() {
                return Err(fail(
                    format!("Error: No public port '{port}/{proto}' published for {}", a.container),
                    1,
                ));
            }
            for (_, _, ip, hp) in found {
                println!("{ip}:{hp}");
            }
            Ok(0)
        }
    }
}

async fn inspect(client: &Client, a: InspectArgs) -> Result<u8> {
    let mut objects = Vec::new();
    let mut failed = false;
    for name in &a.containers {
        match client.json(Method::GET, &format!("/containers/{}/json", q(name)), None).await {
            Ok(v) => objects.push(v),
            Err(f) => {
                eprintln!(
                    "{}",
                    f.message.replace(
                        "Error response from daemon: No such container",
                        "Error: No such object"
                    )
                );
                failed = true;
            }
        }
    }
    match &a.format {
        Some(t) => {
            for v in &objects {
                println!("{}", render_template(t, v));
            }
        }
        None => {
            let text = serde_json::to_string_pretty(&objects).unwrap_or_default();
            println!("{text}");
        }
    }
    Ok(u8::from(failed))
}

/// `Error response from daemon: No such network: X` as Docker's client prints it.
fn no_such_network(f: Failure) -> Failure {
    let message =
        f.message.replace("Error response from daemon: No such network", "Error: No such network");
    Failure { message, ..f }
}

/// `cproxy network …`.
async fn network(client: &Client, cmd: NetworkCommand) -> Result<u8> {
    match cmd {
        NetworkCommand::Create(a) => {
            let mut config = json!({});
            if let Some(s) = &a.subnet {
                config["Subnet"] = json!(s);
            }
            if let Some(g) = &a.gateway {
                config["Gateway"] = json!(g);
            }
            let ipam = if a.subnet.is_some() || a.gateway.is_some() {
                json!({"Config": [config]})
            } else {
                json!({"Config": []})
            };
            let body = json!({"Name": a.name, "Driver": a.driver, "IPAM": ipam,
                              "CheckDuplicate": true});
            let v = client.json(Method::POST, "/networks/create", Some(body)).await?;
            println!("{}", v["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let list = client.json(Method::GET, "/networks", None).await?;
            let items = list.as_array().cloned().unwrap_or_default();
            let mut sorted: Vec<(String, String, String)> = items
                .iter()
                .map(|v| {
                    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                    (s("Name"), s("Id"), s("Driver"))
                })
                .collect();
            sorted.sort();
            let id = |id: &str| {
                if a.no_trunc { id.to_string() } else { id.chars().take(12).collect() }
            };
            if a.quiet {
                for (_, i, _) in &sorted {
                    println!("{}", id(i));
                }
                return Ok(0);
            }
            let mut rows =
                vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"].map(String::from).to_vec()];
            for (name, i, driver) in sorted {
                rows.push(vec![id(&i), name, driver, "local".into()]);
            }
            print!("{}", format::table(&rows));
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            let mut objects = Vec::new();
            let mut failed = false;
            for name in &a.containers {
                match client.json(Method::GET, &format!("/networks/{}", q(name)), None).await {
                    Ok(v) => objects.push(v),
                    Err(f) => {
                        eprintln!("{}", no_such_network(f).message);
                        failed = true;
                    }
                }
            }
            match &a.format {
                Some(t) => objects.iter().for_each(|v| println!("{}", render_template(t, v))),
                None => println!("{}", serde_json::to_string_pretty(&objects).unwrap_or_default()),
            }
            Ok(u8::from(failed))
        }
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.networks {
                match client.call(Method::DELETE, &format!("/networks/{}", q(name)), None).await {
                    Ok(_) => println!("{name}"),
                    Err(f) => {
                        eprintln!("{}", no_such_network(f).message);
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
        NetworkCommand::Connect(a) => {
            let body = json!({"Container": a.container,
                              "EndpointConfig": {"Aliases": a.alias}});
            let uri = format!("/networks/{}/connect", q(&a.network));
            client.call(Method::POST, &uri, Some(body)).await?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let body = json!({"Container": a.container, "Force": a.force});
            let uri = format!("/networks/{}/disconnect", q(&a.network));
            client.call(Method::POST, &uri, Some(body)).await?;
            Ok(0)
        }
    }
}

/// `exec`: enters the container's namespaces (as `nsenter` does; the client runs as root, as
/// the socket's permissions require) and runs the command there, its output straight to ours.
async fn exec(client: &Client, a: ExecArgs) -> Result<u8> {
    let v =
        client.json(Method::GET, &format!("/containers/{}/json", q(&a.container)), None).await?;
    let pid = v["State"]["Pid"].as_i64().unwrap_or(0);
    if v["State"]["Status"] != "running" || pid <= 0 {
        let id = v["Id"].as_str().unwrap_or_default();
        return Err(fail(format!("Error response from daemon: Container {id} is not running"), 1));
    }
    let mut namespaces = Vec::new();
    for ns in ["ipc", "uts", "net", "pid", "mnt"] {
        let f = std::fs::File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|e| {
            fail(format!("Error: cannot enter the container's {ns} namespace: {e}"), 126)
        })?;
        namespaces.push(f);
    }
    let exe = std::env::current_exe().map_err(|e| fail(e.to_string(), 126))?;
    let mut given = v["CproxyLinkEnv"].as_array().cloned().unwrap_or_default();
    given.extend(v["Config"]["Env"].as_array().cloned().unwrap_or_default());
    let given = given.iter().filter_map(|e| e.as_str().map(str::to_string));
    let hostname = v["Config"]["Hostname"].as_str().unwrap_or_default();
    let env = container_env(hostname, given.chain(a.env.iter().cloned()));
    let fds: Vec<i32> = namespaces.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let mut cmd = std::process::Command::new(exe);
    let cwd =
        v["Config"]["WorkingDir"].as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string();
    // The working directory is set inside: entering the mount namespace resets it to `/`.
    cmd.arg("__nsexec").arg("--workdir").arg(cwd).arg("--").args(&a.command).env_clear().envs(env);
    // The fds stay open in `namespaces` until the child has been spawned.
    let join = fds.into_iter().map(|fd| (fd, nix::sched::CloneFlags::empty())).collect();
    crate::sys::enter_namespaces_on_spawn(&mut cmd, join, nix::sched::CloneFlags::empty(), false);
    let status =
        cmd.status().map_err(|e| fail(format!("Error: cannot run in the container: {e}"), 126))?;
    drop(namespaces);
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(255);
    Ok(u8::try_from(code).unwrap_or(255))
}

/// The daemon's API as `cproxy compose` calls it: the same client, a failure as the message
/// the container commands would print.
pub(super) struct Api {
    client: Client,
}

impl Api {
    /// The daemon at `socket`.
    pub(super) fn new(socket: PathBuf) -> Api {
        Api { client: Client { socket } }
    }

    /// A request whose answer is JSON (`Null` when empty).
    pub(super) async fn json(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> std::result::Result<Value, String> {
        self.client.json(method, uri, body).await.map_err(|f| f.message)
    }

    /// A request whose answer is streamed (the logs).
    pub(super) async fn call(
        &self,
        method: Method,
        uri: &str,
    ) -> std::result::Result<Response<Incoming>, String> {
        self.client.call(method, uri, None).await.map_err(|f| f.message)
    }
}

/// Percent-encodes a query or path value.
pub(super) fn encode(s: &str) -> String {
    q(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lines_put_ipv4_first() {
        let v = json!({"NetworkSettings": {"Ports": {"5000/tcp": [
            {"HostIp": "::", "HostPort": "32768"}, {"HostIp": "0.0.0.0", "HostPort": "32768"}]}}});
        let l = port_lines(&v);
        assert_eq!(l[0].2, "0.0.0.0");
        assert_eq!(l[1].2, "::");
    }
}
