//! `cproxy compose [-f FILE] [-p NAME] up [-d] | down | ps`: a compose file's services run as
//! containers of the daemon, through the same API the container commands use.
//!
//! Each service becomes one container named `PROJECT_SERVICE_1`, as Compose v1 names them (the
//! project is the file's directory name, or `-p`), so `down` and `ps` find a project's
//! containers by name. What the file says is checked by [`crate::supervisor::rules::compose::parse`] before
//! anything is created; the daemon refuses in `run`'s words what only it can check.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hyper::Method;
use tokio::signal::unix::{SignalKind, signal};

use crate::spec::PortSpec;
use crate::supervisor::api::stream::StreamKind;
use crate::supervisor::api::types::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerInspect, ContainerStatus,
    ContainerSummary, Empty, EndpointSettings, NetworkConnectRequest, NetworkCreateResponse,
    NetworkResource, PortSet, RestartPolicySpec,
};
use crate::supervisor::client::network;
use crate::supervisor::client::transport::{Api, NO_BODY, q};
use crate::supervisor::rules::compose::{Project, Service};
use crate::supervisor::rules::format;
use crate::supervisor::rules::restart::RestartPolicy;

/// The files looked for when `-f` is not given, in Compose's order.
const DEFAULT_FILES: &[&str] =
    &["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// Define and run multi-container applications: a Compose file's services, ports, links and
/// networks.
#[derive(Debug, Parser)]
#[command(name = "cproxy compose", disable_version_flag = true)]
struct ComposeCli {
    /// Daemon socket to connect to (default unix:///run/cproxy/cproxy.sock, or $CPROXY_HOST)
    #[arg(short = 'H', long = "host", global = true, value_name = "unix://PATH")]
    host: Option<String>,
    /// Specify an alternate compose file (default: compose.yaml, compose.yml,
    /// docker-compose.yml or docker-compose.yaml in the current directory)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Specify an alternate project name (default: directory name, or $COMPOSE_PROJECT_NAME)
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    project_name: Option<String>,
    /// The command.
    #[command(subcommand)]
    command: ComposeCommand,
}

/// One compose command.
#[derive(Debug, Subcommand)]
enum ComposeCommand {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers
    Down(DownArgs),
    /// List containers
    Ps(ComposePsArgs),
}

/// `compose up`.
#[derive(Debug, Args)]
struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short = 'd', long = "detach")]
    detach: bool,
}

/// `compose down`.
#[derive(Debug, Args)]
struct DownArgs {
    /// Specify a shutdown timeout in seconds (default: each service's stop_grace_period, else 10)
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
}

/// `compose ps`.
#[derive(Debug, Args)]
struct ComposePsArgs {
    /// Only display IDs
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Runs `cproxy [-H HOST] compose ...`; `at` is the index of `compose` in `args`.
pub fn dispatch(args: &[OsString], at: usize) -> ExitCode {
    // `cproxy -H X compose up` parses as `cproxy compose -H X up`.
    let mut argv: Vec<OsString> = vec!["cproxy compose".into()];
    argv.extend(args.iter().take(at).skip(1).cloned());
    argv.extend(args.iter().skip(at + 1).cloned());
    let cli = match ComposeCli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("ERROR: {message}");
            ExitCode::from(1)
        }
    }
}

/// The file, read: the project's name and services, and the daemon to run them on.
struct Loaded {
    /// The project's name, the prefix of its containers' names.
    name: String,
    /// What the file says.
    project: Project,
    /// The daemon's API.
    api: Api,
    /// The daemon's socket, for log streams that need an API client of their own.
    socket: PathBuf,
}

impl Loaded {
    /// The container a service runs as: `PROJECT_SERVICE_1`.
    fn container(&self, service: &str) -> String {
        container_name(&self.name, service)
    }
}

/// Compose v1's container name for a project's service.
fn container_name(project: &str, service: &str) -> String {
    format!("{project}_{service}_1")
}

/// Compose v1's project name: lower case, only `a-z0-9_-` kept.
fn normalise_project_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn run(cli: ComposeCli) -> Result<u8, String> {
    let file = match cli.file {
        Some(f) => f,
        None => DEFAULT_FILES.iter().map(PathBuf::from).find(|f| f.exists()).ok_or_else(|| {
            "Can't find a suitable configuration file in this directory. Are you in the right \
             directory?\n\n        Supported filenames: compose.yaml, compose.yml, \
             docker-compose.yml, docker-compose.yaml"
                .to_string()
        })?,
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("Couldn't read the compose file {}: {e}", file.display()))?;
    let absolute = std::fs::canonicalize(&file)
        .map_err(|e| format!("Couldn't read the compose file {}: {e}", file.display()))?;
    let project_dir = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    let project = crate::supervisor::rules::compose::parse(&text, &project_dir)
        .map_err(|e| format!("The Compose file '{}' is invalid because:\n{e}", file.display()))?;
    for w in &project.warnings {
        eprintln!("WARNING: {w}");
    }
    let name = cli
        .project_name
        .or_else(|| std::env::var("COMPOSE_PROJECT_NAME").ok())
        .unwrap_or_else(|| {
            project_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        });
    let name = normalise_project_name(&name);
    if name.is_empty() {
        return Err("The project name must contain at least one letter or digit; give one \
                    with -p NAME."
            .into());
    }
    let host = cli
        .host
        .or_else(|| std::env::var("CPROXY_HOST").ok())
        .unwrap_or_else(|| format!("unix://{}", crate::supervisor::DEFAULT_SOCKET));
    let socket = crate::supervisor::socket_path(&host)?;
    let loaded = Loaded { name, project, api: Api::new(socket.clone()), socket };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the client's runtime: {e}"))?;
    rt.block_on(async {
        match cli.command {
            ComposeCommand::Up(a) => up(&loaded, a).await,
            ComposeCommand::Down(a) => down(&loaded, a).await,
            ComposeCommand::Ps(a) => ps(&loaded, a).await,
        }
    })
}

impl Loaded {
    /// The daemon's name of a network the file declares: `PROJECT_NAME` as Compose names
    /// them, or the name itself for an `external` one.
    fn network(&self, key: &str) -> String {
        match self.project.networks.iter().find(|n| n.name == key) {
            Some(n) if n.external => key.to_string(),
            _ => format!("{}_{key}", self.name),
        }
    }
}

/// Creates the file's networks that do not exist yet (Compose v1's words), and checks that
/// the external ones do.
async fn create_networks(p: &Loaded) -> Result<(), String> {
    for n in &p.project.networks {
        let name = p.network(&n.name);
        let uri = format!("/networks/{}", q(&name));
        if p.api.json::<_, NetworkResource>(Method::GET, &uri, NO_BODY).await.is_ok() {
            continue;
        }
        if n.external {
            return Err(format!(
                "Network {name} declared as external, but could not be found. Please create \
                 the network manually using `docker network create {name}` and try again."
            ));
        }
        eprintln!("Creating network \"{name}\" with the default driver");
        let body =
            network::create_request(&name, "bridge", n.subnet.as_deref(), n.gateway.as_deref());
        let _: NetworkCreateResponse =
            p.api.json(Method::POST, "/networks/create", Some(&body)).await?;
    }
    Ok(())
}

/// Removes the file's networks (not the external ones) at `down`, as Compose v1 words it.
async fn remove_networks(p: &Loaded) -> bool {
    let mut failed = false;
    for n in p.project.networks.iter().filter(|n| !n.external) {
        let name = p.network(&n.name);
        let uri = format!("/networks/{}", q(&name));
        if p.api.json::<_, NetworkResource>(Method::GET, &uri, NO_BODY).await.is_err() {
            continue;
        }
        eprintln!("Removing network {name}");
        if let Err(e) = p.api.call(Method::DELETE, &uri, NO_BODY).await {
            eprintln!("ERROR: {e}");
            failed = true;
        }
    }
    failed
}

/// A service's endpoint on a network: its aliases, its name first, as Compose adds it, then
/// the file's.
fn service_endpoint(s: &Service, extra: &[String]) -> EndpointSettings {
    let mut aliases = vec![s.name.clone()];
    aliases.extend(extra.iter().filter(|a| **a != s.name).cloned());
    EndpointSettings { aliases: Some(aliases), ..EndpointSettings::default() }
}

/// Connects a created container to its service's networks after the first (which it was
/// created on).
async fn connect_networks(p: &Loaded, s: &Service, container: &str) -> Result<(), String> {
    for n in s.networks.iter().skip(1) {
        let body = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: service_endpoint(s, &n.aliases),
        };
        let uri = format!("/networks/{}/connect", q(&p.network(&n.name)));
        p.api.call(Method::POST, &uri, Some(&body)).await?;
    }
    Ok(())
}

/// The project's containers that exist, by name.
async fn existing(p: &Loaded) -> Result<HashMap<String, ContainerSummary>, String> {
    let list: Vec<ContainerSummary> =
        p.api.json(Method::GET, "/containers/json?all=1", NO_BODY).await?;
    let mut found = HashMap::new();
    for c in &list {
        for n in &c.names {
            let n = n.trim_start_matches('/');
            if p.project.services.iter().any(|s| p.container(&s.name) == n) {
                found.insert(n.to_string(), c.clone());
            }
        }
    }
    Ok(found)
}

/// The create request for a service: what `cproxy run` would send for the matching flags.
fn create_request(p: &Loaded, s: &Service) -> Result<ContainerCreateRequest, String> {
    if s.command.is_empty() {
        return Err(format!(
            "Service {} has no command: cproxy runs host commands, so each service needs one",
            s.name
        ));
    }
    let mut req = ContainerCreateRequest::default();
    let host = &mut req.host_config;
    for port in &s.ports {
        let spec = PortSpec::parse(port).map_err(|e| format!("service {}: {e}", s.name))?;
        host.port_specs.push(spec.to_string());
    }
    host.network_mode = match s.network_mode.as_deref() {
        None => match s.networks.first() {
            Some(n) => {
                let name = p.network(&n.name);
                let endpoint = service_endpoint(s, &n.aliases);
                req.networking_config.endpoints_config.insert(name.clone(), endpoint);
                name
            }
            None => "bridge".to_string(),
        },
        Some(m) => match m.strip_prefix("service:") {
            Some(other) => format!("container:{}", p.container(other)),
            None => m.to_string(),
        },
    };
    host.binds = Some(
        s.volumes
            .iter()
            .map(|b| {
                let ro = if b.read_only { ":ro" } else { "" };
                format!("{}:{}{ro}", b.source.display(), b.target)
            })
            .collect(),
    )
    .filter(|b: &Vec<String>| !b.is_empty());
    let links: Vec<String> =
        s.links.iter().map(|l| format!("{}:{}", p.container(&l.name), l.alias)).collect();
    host.links = Some(links).filter(|l| !l.is_empty());
    host.init = s.init.then_some(true);
    // As `run` sends them: Docker's client always sends `OomKillDisable`.
    host.resources.oom_kill_disable = Some(false);
    if s.restart != RestartPolicy::No {
        host.restart_policy = RestartPolicySpec::from(s.restart);
    }
    if s.image.is_empty() {
        host.rootfs = "/".into();
    }
    let config = &mut req.config;
    config.image = s.image.clone();
    config.cmd = s.command.clone();
    // A bare KEY takes its value from where compose runs, as `-e KEY` does (dropped if unset).
    config.env = Some(
        s.environment
            .iter()
            .filter_map(|kv| {
                if kv.contains('=') {
                    Some(kv.clone())
                } else {
                    std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
                }
            })
            .collect(),
    );
    let exposed: PortSet = s.expose.iter().map(|e| (e.clone(), Empty {})).collect();
    config.exposed_ports = Some(exposed).filter(|e| !e.is_empty());
    config.stop_signal = s.stop_signal.clone();
    req.host_config.source_ip_transparent = s.source_ip_transparent;
    config.stop_timeout = s.stop_grace_period.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    req.host_config.log_config = s.logging.clone();
    // The service's limits over what `run` sends without flags (`OomKillDisable: false`).
    let defaults = std::mem::take(&mut req.host_config.resources);
    req.host_config.resources = s.resources.clone();
    let r = &mut req.host_config.resources;
    r.oom_kill_disable = r.oom_kill_disable.or(defaults.oom_kill_disable);
    Ok(req)
}

/// Warns when the daemon dropped what the service asked for and it does not apply yet
/// (`restart`, `links`): it took the create body but its inspect object does not show them.
async fn warn_unsupported(p: &Loaded, s: &Service, container: &str) {
    if s.restart == RestartPolicy::No && s.links.is_empty() {
        return;
    }
    let uri = format!("/containers/{}/json", q(container));
    let Ok(v) = p.api.json::<_, ContainerInspect>(Method::GET, &uri, NO_BODY).await else {
        return;
    };
    if s.restart != RestartPolicy::No && v.host_config.restart_policy.name != s.restart.name() {
        eprintln!(
            "WARNING: this cproxy daemon does not apply restart policies; {container} runs \
             without restart: {}",
            s.restart
        );
    }
    let links_shown = v.host_config.links.is_some_and(|l| !l.is_empty());
    if !s.links.is_empty() && !links_shown {
        eprintln!(
            "WARNING: this cproxy daemon does not support links; {container} runs without them"
        );
    }
}

async fn up(p: &Loaded, a: UpArgs) -> Result<u8, String> {
    create_networks(p).await?;
    let found = existing(p).await?;
    let mut names = Vec::new();
    for s in &p.project.services {
        let container = p.container(&s.name);
        names.push(container.clone());
        let result = match found.get(&container) {
            Some(c) if c.state == ContainerStatus::Running => {
                eprintln!("{container} is up-to-date");
                continue;
            }
            Some(_) => {
                eprint!("Starting {container} ... ");
                start(p, &container).await
            }
            None => {
                eprint!("Creating {container} ... ");
                match create_request(p, s) {
                    Ok(body) => {
                        let uri = format!("/containers/create?name={}", q(&container));
                        let created: Result<ContainerCreateResponse, String> =
                            p.api.json(Method::POST, &uri, Some(&body)).await;
                        match created {
                            Ok(_) => match connect_networks(p, s, &container).await {
                                Ok(()) => start(p, &container).await,
                                Err(e) => Err(e),
                            },
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {
                eprintln!("done");
                warn_unsupported(p, s, &container).await;
            }
            Err(e) => {
                eprintln!("error");
                let e = e.trim_start_matches("Error response from daemon: ");
                eprintln!("\nERROR: for {}  {e}", s.name);
                return Err("Encountered errors while bringing up the project.".into());
            }
        }
    }
    if a.detach {
        return Ok(0);
    }
    attach(p, &names).await
}

async fn start(p: &Loaded, container: &str) -> Result<(), String> {
    let uri = format!("/containers/{}/start", q(container));
    p.api.call(Method::POST, &uri, NO_BODY).await
}

/// `up` in the foreground: every container's output, each line after its name, until SIGINT
/// or SIGTERM (then the services are stopped) or until every container has exited.
async fn attach(p: &Loaded, names: &[String]) -> Result<u8, String> {
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
    eprintln!("Attaching to {}", names.join(", "));
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let mut followers = tokio::task::JoinSet::new();
    for name in names {
        let api = Api::new(p.socket.clone());
        let prefix = format!("{name:<width$} | ");
        let uri = format!("/containers/{}/logs?stdout=1&stderr=1&follow=1", q(name));
        followers.spawn(async move { follow(&api, &uri, &prefix).await });
    }
    let all_exited = async { while followers.join_next().await.is_some() {} };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        () = all_exited => return Ok(0),
    }
    // A second signal is not a "force": each stop is bounded by the service's
    // stop_grace_period (the container's stop timeout, else 10 s) anyway.
    eprintln!("Gracefully stopping...");
    for name in names.iter().rev() {
        eprint!("Stopping {name} ... ");
        let uri = format!("/containers/{}/stop", q(name));
        match p.api.call(Method::POST, &uri, NO_BODY).await {
            Ok(()) => eprintln!("done"),
            Err(e) => eprintln!("error\n{e}"),
        }
    }
    Ok(0)
}

/// Copies one container's log stream to stdout and stderr, each line after `prefix`.
async fn follow(api: &Api, uri: &str, prefix: &str) {
    let _ = api
        .stream(uri, |decoder| {
            for (kind, line) in decoder.lines() {
                let line = String::from_utf8_lossy(&line);
                let text = format!("{prefix}{line}\n");
                let _ = match kind {
                    StreamKind::Stderr => std::io::stderr().write_all(text.as_bytes()),
                    StreamKind::Stdin | StreamKind::Stdout => {
                        std::io::stdout().write_all(text.as_bytes())
                    }
                };
            }
            let _ = std::io::stdout().flush();
        })
        .await;
}

async fn down(p: &Loaded, a: DownArgs) -> Result<u8, String> {
    let found = existing(p).await?;
    let present: Vec<(String, &ContainerSummary)> = p
        .project
        .services
        .iter()
        .rev()
        .filter_map(|s| {
            let name = p.container(&s.name);
            found.get(&name).map(|c| (name, c))
        })
        .collect();
    let mut failed = false;
    for (name, c) in &present {
        if c.state == ContainerStatus::Running {
            eprint!("Stopping {name} ... ");
            let t = a.timeout.map(|t| format!("?t={t}")).unwrap_or_default();
            let uri = format!("/containers/{}/stop{t}", q(name));
            match p.api.call(Method::POST, &uri, NO_BODY).await {
                Ok(()) => eprintln!("done"),
                Err(e) => {
                    eprintln!("error\n{e}");
                    failed = true;
                }
            }
        }
    }
    for (name, _) in &present {
        eprint!("Removing {name} ... ");
        let uri = format!("/containers/{}?force=1", q(name));
        match p.api.call(Method::DELETE, &uri, NO_BODY).await {
            Ok(()) => eprintln!("done"),
            Err(e) => {
                eprintln!("error\n{e}");
                failed = true;
            }
        }
    }
    failed |= remove_networks(p).await;
    Ok(u8::from(failed))
}

/// Compose v1's STATE column: `Up`, `Exit N`, or the daemon's status.
fn state_column(c: &ContainerSummary) -> String {
    let status = c.status.as_str();
    match c.state {
        ContainerStatus::Running => "Up".into(),
        ContainerStatus::Exited => {
            let code =
                status.strip_prefix("Exited (").and_then(|s| s.split(')').next()).unwrap_or("?");
            format!("Exit {code}")
        }
        _ => status.to_string(),
    }
}

async fn ps(p: &Loaded, a: ComposePsArgs) -> Result<u8, String> {
    let found = existing(p).await?;
    let mut names: Vec<&String> = found.keys().collect();
    names.sort();
    if a.quiet {
        for n in names {
            println!("{}", found[n].id);
        }
        return Ok(0);
    }
    let mut rows = vec![["Name", "Command", "State", "Ports"].map(String::from).to_vec()];
    for n in names {
        let c = &found[n];
        rows.push(vec![
            n.clone(),
            c.command.clone(),
            state_column(c),
            format::displayable_ports(&c.ports),
        ]);
    }
    let table = format::table(&rows);
    let width = table.lines().map(str::len).max().unwrap_or(0);
    let mut lines = table.lines();
    if let Some(header) = lines.next() {
        println!("{header}");
        println!("{}", "-".repeat(width));
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_lower_case_letters_digits_dashes_and_underscores() {
        assert_eq!(normalise_project_name("My App.v2"), "myappv2");
        assert_eq!(normalise_project_name("examples"), "examples");
        assert_eq!(container_name("examples", "web"), "examples_web_1");
    }

    /// The project `tutorial` of `text`, its relative paths from `/srv/app`.
    fn loaded(text: &str) -> Loaded {
        let project =
            crate::supervisor::rules::compose::parse(text, Path::new("/srv/app")).unwrap();
        let socket = PathBuf::from("/nonexistent.sock");
        Loaded { name: "tutorial".into(), project, api: Api::new(socket.clone()), socket }
    }

    /// What the daemon gets to create `service`, as JSON.
    fn body(p: &Loaded, service: &str) -> serde_json::Value {
        let s = p.project.services.iter().find(|s| s.name == service).unwrap();
        serde_json::to_value(create_request(p, s).unwrap()).unwrap()
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_service_becomes_the_create_request_run_would_send() {
        let p = loaded(
            "services:
  db:
    command: python3 -m http.server 5432
    expose: ['5432', 6000-6001/udp]
    environment: {PG_VERSION: '9.3'}
    restart: on-failure:3
    stop_signal: SIGINT
    stop_grace_period: 3s
  web:
    command: [python3, -m, http.server, '5000']
    links: [db:database]
    ports: ['127.0.0.1:8080:5000']
    volumes: ['./data:/data:ro']
    init: true
",
        );
        assert_eq!(
            body(&p, "db"),
            json(
                r#"{"Hostname": "", "Env": ["PG_VERSION=9.3"],
                    "Cmd": ["python3", "-m", "http.server", "5432"], "Entrypoint": null,
                    "Image": "", "User": "", "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "WorkingDir": "", "Volumes": null, "Labels": null,
                    "ExposedPorts": {"5432": {}, "6000-6001/udp": {}},
                    "StopSignal": "SIGINT", "StopTimeout": 3,
                    "HostConfig": {"NetworkMode": "bridge", "PortBindings": {},
                        "PublishAllPorts": false, "AutoRemove": false, "Binds": null,
                        "ProxyProtocol": "",
                        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                        "Links": null, "Init": null, "CapAdd": null, "CapDrop": null,
                        "Privileged": false, "SecurityOpt": null, "Mounts": null, "Tmpfs": null,
                        "VolumesFrom": null, "ShmSize": 0, "Ulimits": null,
                        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
                        "BlkioWeight": 0, "BlkioWeightDevice": null, "BlkioDeviceReadBps": null,
                        "BlkioDeviceWriteBps": null, "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
                        "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
                        "CpusetMems": "", "KernelMemory": 0, "MemoryReservation": 0,
                        "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
                        "PidsLimit": null, "ReadonlyRootfs": false,
                        "Rootfs": "/"},
                    "NetworkingConfig": {"EndpointsConfig": {}}}"#
            )
        );
        assert_eq!(
            body(&p, "web"),
            json(
                r#"{"Hostname": "", "Env": [], "Cmd": ["python3", "-m", "http.server", "5000"],
                    "Entrypoint": null, "Image": "", "User": "", "AttachStdin": false, "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "WorkingDir": "", "Volumes": null, "Labels": null,
                    "ExposedPorts": null,
                    "StopSignal": null, "StopTimeout": null,
                    "HostConfig": {"NetworkMode": "bridge", "PortBindings": {},
                        "PortSpecs": ["127.0.0.1:8080:5000/tcp"],
                        "PublishAllPorts": false, "AutoRemove": false,
                        "Binds": ["/srv/app/data:/data:ro"], "ProxyProtocol": "",
                        "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                        "Links": ["tutorial_db_1:database"], "Init": true, "CapAdd": null, "CapDrop": null,
                        "Privileged": false, "SecurityOpt": null, "Mounts": null, "Tmpfs": null,
                        "VolumesFrom": null, "ShmSize": 0, "Ulimits": null,
                        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
                        "BlkioWeight": 0, "BlkioWeightDevice": null, "BlkioDeviceReadBps": null,
                        "BlkioDeviceWriteBps": null, "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
                        "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
                        "CpusetMems": "", "KernelMemory": 0, "MemoryReservation": 0,
                        "MemorySwap": 0, "MemorySwappiness": null, "OomKillDisable": false,
                        "PidsLimit": null, "ReadonlyRootfs": false,
                        "Rootfs": "/"},
                    "NetworkingConfig": {"EndpointsConfig": {}}}"#
            )
        );
    }

    #[test]
    fn a_service_on_networks_is_created_on_the_first_with_its_name_as_an_alias() {
        let p = loaded(
            "services:
  api:
    command: sleep 1
    networks:
      front: {aliases: [backend, api]}
      back:
  side:
    command: sleep 1
    network_mode: service:api
networks:
  front:
  back:
    external: true
",
        );
        let api = body(&p, "api");
        assert_eq!(api["HostConfig"]["NetworkMode"], "tutorial_front");
        let endpoints = &api["NetworkingConfig"]["EndpointsConfig"];
        assert_eq!(endpoints.as_object().unwrap().len(), 1);
        assert_eq!(endpoints["tutorial_front"]["Aliases"], json(r#"["api", "backend"]"#));
        assert_eq!(endpoints["tutorial_front"]["IPAMConfig"], serde_json::Value::Null);
        assert_eq!(p.network("back"), "back");
        assert_eq!(body(&p, "side")["HostConfig"]["NetworkMode"], "container:tutorial_api_1");
    }

    #[test]
    fn the_state_column_is_compose_v1s() {
        let summary = |state: &str, status: &str| ContainerSummary {
            state: serde_json::from_value(state.into()).unwrap(),
            status: status.into(),
            ..ContainerSummary::default()
        };
        assert_eq!(state_column(&summary("running", "Up 2 seconds")), "Up");
        assert_eq!(state_column(&summary("exited", "Exited (137) 1 second ago")), "Exit 137");
        assert_eq!(state_column(&summary("created", "Created")), "Created");
    }
}
