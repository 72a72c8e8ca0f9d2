//! What the API shows of containers: `GET /containers/json` summaries (with Docker's STATUS
//! text and Ports list) and the `docker inspect` object.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::spec::{PortSpec, parse_expose};
use crate::supervisor::engine::store::Record;
use crate::supervisor::engine::{ApiError, Container, Daemon};
use crate::supervisor::os::netlink;
use crate::supervisor::rules::filters::{self as ps, Candidate, ListOptions};
use crate::supervisor::rules::format::{self, Port};

impl Daemon {
    /// `GET /containers/json`: newest first, running only unless `all` (or a limit, or a
    /// `status` filter), through Docker's filters (`crate::supervisor::rules::ps::select`).
    pub fn list(&self, opts: &ListOptions) -> Result<Vec<Value>, ApiError> {
        let now = SystemTime::now();
        let records: Vec<Record> = self.all().iter().map(|c| c.record()).collect();
        let newest_first: Vec<&Record> = records.iter().rev().collect();
        let candidates: Vec<Candidate> =
            newest_first.iter().map(|r| self.candidate(r, &records)).collect();
        let chosen = ps::select(opts, &candidates)
            .map_err(|e| ApiError { status: e.status, message: e.message })?;
        Ok(chosen
            .into_iter()
            .map(|i| {
                let (r, c) = (newest_first[i], &candidates[i]);
                let created = format::parse_rfc3339(&r.created).unwrap_or(now);
                json!({
                    "Id": r.id,
                    "Names": c.names.iter().map(|n| format!("/{n}")).collect::<Vec<_>>(),
                    "Image": r.path,
                    "Command": format::command_line(&r.path, &r.args),
                    "Created": created.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                    "Ports": api_ports(r),
                    "Labels": {},
                    "State": r.state.status,
                    "Status": status_text(r, now),
                    "HostConfig": {"NetworkMode": r.network_mode},
                    "NetworkSettings": {"Networks": self.networks_json(r)},
                    "Mounts": mounts(r),
                })
            })
            .collect())
    }

    /// A record as the list's filters see it.
    fn candidate(&self, r: &Record, records: &[Record]) -> Candidate {
        let networks = self.networks_json(r);
        let mut exposed = BTreeSet::new();
        for spec in r.expose.iter().filter_map(|e| parse_expose(e).ok()) {
            exposed.extend(spec.container_ports().ports().map(|p| format!("{p}/{}", spec.proto())));
        }
        let mut port_bindings = BTreeSet::new();
        for spec in r.publish.iter().filter_map(|p| PortSpec::parse(p).ok()) {
            port_bindings
                .extend(spec.container_ports().ports().map(|p| format!("{p}/{}", spec.proto())));
        }
        exposed.extend(port_bindings.iter().cloned());
        Candidate {
            id: r.id.clone(),
            names: crate::supervisor::engine::links::names_with_links(r, records)
                .into_iter()
                .map(|n| n.trim_start_matches('/').to_string())
                .collect(),
            state: r.state.status.clone(),
            exit_code: i64::from(r.state.exit_code),
            started: format::parse_rfc3339(&r.state.started_at)
                .is_some_and(|t| t > std::time::UNIX_EPOCH),
            image: r.path.clone(),
            networks: networks
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, n)| {
                    (name.clone(), n["NetworkID"].as_str().unwrap_or_default().to_string())
                })
                .collect(),
            port_bindings,
            exposed,
            mounts: r
                .binds
                .iter()
                .map(|b| {
                    let mut parts = b.split(':');
                    let src = parts.next().unwrap_or_default().to_string();
                    (src, parts.next().unwrap_or_default().to_string())
                })
                .collect(),
        }
    }

    /// `GET /containers/{id}/json`: Docker's inspect shape, the parts cproxy has.
    pub fn inspect(&self, c: &Arc<Container>) -> Value {
        let r = c.record();
        let dir = self.store.dir(&r.id);
        let running = r.state.status == "running";
        // Docker counts a restarting container as running too.
        let restarting = r.state.status == "restarting";
        let mut ports = serde_json::Map::new();
        if running {
            for e in &r.expose {
                if let Ok(spec) = parse_expose(e) {
                    for p in spec.container_ports().ports() {
                        ports.insert(format!("{p}/{}", spec.proto()), Value::Null);
                    }
                }
            }
            for p in &r.ports {
                let key = format!("{}/{}", p.container_port, p.proto);
                let entry = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
                match ports.get_mut(&key) {
                    Some(Value::Array(list)) => list.push(entry),
                    _ => {
                        ports.insert(key, Value::Array(vec![entry]));
                    }
                }
            }
        }
        let bridge = r.network_mode == "bridge" && running;
        let (ip, prefix, gateway, mac) = match r.ip.filter(|_| bridge) {
            Some(ip) => {
                let m = netlink::mac_for(ip);
                (
                    ip.to_string(),
                    self.bridge.ipam.subnet().prefix,
                    self.bridge.ipam.gateway().to_string(),
                    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
                )
            }
            None => (String::new(), 0, String::new(), String::new()),
        };
        let exposed: serde_json::Map<String, Value> = r
            .expose
            .iter()
            .filter_map(|e| parse_expose(e).ok())
            .flat_map(|s| {
                s.container_ports().ports().map(move |p| (format!("{p}/{}", s.proto()), json!({})))
            })
            .collect();
        json!({
            "Id": r.id,
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": r.state.status,
                "Running": running || restarting,
                "Paused": false,
                "Restarting": restarting,
                "OOMKilled": false,
                "Dead": false,
                "Pid": r.state.pid,
                "ExitCode": r.state.exit_code,
                "Error": r.state.error,
                "StartedAt": r.state.started_at,
                "FinishedAt": r.state.finished_at,
            },
            "Image": r.path,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": dir.join(format!("{}-json.log", r.id)),
            "Name": format!("/{}", r.name),
            // Not Docker's: the link variables `exec` gives, from the sources as they are now.
            "CproxyLinkEnv": self.link_env(&r),
            "RestartCount": r.restart_count,
            "HostConfig": {
                "NetworkMode": r.network_mode,
                "PortBindings": r.publish,
                "PublishAllPorts": r.publish_all,
                "AutoRemove": r.auto_remove,
                "Init": if r.init { json!(true) } else { Value::Null },
                "RestartPolicy": r.restart_policy,
                "Binds": r.binds,
                "ProxyProtocol": r.proxy_protocol.map(|v| v.to_string()).unwrap_or_default(),
                "Links": if r.links.is_empty() { Value::Null } else { json!(crate::supervisor::engine::links::host_config_links(&r)) },
            },
            "Config": {
                "Hostname": r.hostname,
                "WorkingDir": r.working_dir,
                "Env": r.env,
                "Cmd": std::iter::once(r.path.clone()).chain(r.args.iter().cloned()).collect::<Vec<_>>(),
                "Image": r.path,
                "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
                "StopSignal": if r.stop_signal.is_empty() { Value::Null } else { json!(r.stop_signal) },
                "StopTimeout": r.stop_timeout,
            },
            "NetworkSettings": {
                "Ports": ports,
                "IPAddress": ip,
                "IPPrefixLen": prefix,
                "Gateway": gateway,
                "MacAddress": mac,
                "Networks": self.networks_json(&r),
            },
        })
    }
}

/// The `Mounts` list of `GET /containers/json`: the bind mounts, as Docker lists them.
fn mounts(r: &Record) -> Vec<Value> {
    r.binds
        .iter()
        .map(|b| {
            let mut parts = b.splitn(3, ':');
            let source = parts.next().unwrap_or_default();
            let destination = parts.next().unwrap_or_default();
            let mode = parts.next().unwrap_or_default();
            json!({"Type": "bind", "Source": source, "Destination": destination, "Mode": mode,
                   "RW": !mode.split(',').any(|m| m == "ro"), "Propagation": "rprivate"})
        })
        .collect()
}

/// The `Ports` list of `GET /containers/json`.
fn api_ports(r: &Record) -> Vec<Port> {
    if r.state.status != "running" {
        return Vec::new();
    }
    let mut ports: Vec<Port> = r
        .ports
        .iter()
        .map(|p| Port {
            ip: p.host_ip.clone(),
            private_port: p.container_port,
            public_port: p.host_port,
            proto: p.proto.clone(),
        })
        .collect();
    for e in &r.expose {
        if let Ok(spec) = parse_expose(e) {
            for p in spec.container_ports().ports() {
                let proto = spec.proto().to_string();
                if !ports.iter().any(|x| x.private_port == p && x.proto == proto) {
                    ports.push(Port { ip: String::new(), private_port: p, public_port: 0, proto });
                }
            }
        }
    }
    ports
}

/// Docker's STATUS column: "Up 5 seconds", "Restarting (1) 2 seconds ago", "Exited (3) 2
/// minutes ago", "Created".
fn status_text(r: &Record, now: SystemTime) -> String {
    let since = |t: &str| {
        format::parse_rfc3339(t).and_then(|t| now.duration_since(t).ok()).unwrap_or_default()
    };
    match r.state.status.as_str() {
        "running" => format!("Up {}", format::human_duration(since(&r.state.started_at))),
        "restarting" => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            format::human_duration(since(&r.state.finished_at))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            format::human_duration(since(&r.state.finished_at))
        ),
        _ => "Created".into(),
    }
}
