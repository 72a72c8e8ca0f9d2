//! `ps`, `port` and `inspect`: what the daemon says of containers, in Docker's formats.

use std::io::Write;

use hyper::Method;
use serde_json::Value;

use crate::supervisor::api::types::{ContainerInspect, ContainerSummary};
use crate::supervisor::client::cli::{InspectArgs, PortArgs, PsArgs};
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, fail, q};
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::ps_format;
use crate::supervisor::rules::template::render_template;

/// `ps`: the daemon filters (Docker's API), the client formats (Docker's formatter).
pub(super) async fn ps(client: &Client, a: PsArgs) -> Result<u8> {
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
    let list: Vec<ContainerSummary> = client.json(Method::GET, &uri, NO_BODY).await?;
    let format =
        ps_format::effective_format(a.format.as_deref().filter(|t| !t.is_empty()), a.quiet);
    let text = ps_format::write(&format, &list, !a.no_trunc, std::time::SystemTime::now());
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(0)
}

/// The published ports of a container, as (container port, proto, host ip, host port), in
/// Docker's order: by container port, protocol, IPv4 first.
fn port_lines(inspect: &ContainerInspect) -> Vec<(u16, String, String, String)> {
    let mut out = Vec::new();
    for (key, bindings) in &inspect.network_settings.ports {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(port) = port.parse::<u16>() else { continue };
        for b in bindings.iter().flatten() {
            out.push((port, proto.to_string(), b.host_ip.clone(), b.host_port.clone()));
        }
    }
    out.sort_by(|a, b| {
        (a.0, &a.1, a.2.contains(':'), &a.2).cmp(&(b.0, &b.1, b.2.contains(':'), &b.2))
    });
    out
}

/// `port`: every published port, or the bindings of one.
pub(super) async fn port(client: &Client, a: PortArgs) -> Result<u8> {
    let v: ContainerInspect = client
        .json(Method::GET, &format!("/containers/{}/json", q(&a.container)), NO_BODY)
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

/// `inspect` and `network inspect`: each object at `uri(name)` as the daemon gives it (a
/// template may name any field), through the `-f` template or all as an indented JSON list;
/// a failure printed in the words `error` gives it; exit 1 if any failed.
pub(super) async fn inspect_each(
    client: &Client,
    names: &[String],
    uri: impl Fn(&str) -> String,
    error: impl Fn(Failure) -> String,
    format: Option<&str>,
) -> Result<u8> {
    let mut objects = Vec::new();
    let mut failed = false;
    for name in names {
        match client.json::<_, Value>(Method::GET, &uri(name), NO_BODY).await {
            Ok(v) => objects.push(v),
            Err(f) => {
                eprintln!("{}", error(f));
                failed = true;
            }
        }
    }
    match format {
        Some(t) => objects.iter().for_each(|v| println!("{}", render_template(t, v))),
        None => println!("{}", serde_json::to_string_pretty(&objects).unwrap_or_default()),
    }
    Ok(u8::from(failed))
}

/// `inspect`: containers.
pub(super) async fn inspect(client: &Client, a: InspectArgs) -> Result<u8> {
    inspect_each(
        client,
        &a.containers,
        |name| format!("/containers/{}/json", q(name)),
        |f| {
            f.message
                .replace("Error response from daemon: No such container", "Error: No such object")
        },
        a.format.as_deref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::api::types::PortBinding;

    #[test]
    fn port_lines_put_ipv4_first() {
        let mut v = ContainerInspect::default();
        let binding = |ip: &str| PortBinding { host_ip: ip.into(), host_port: "32768".into() };
        v.network_settings
            .ports
            .insert("5000/tcp".into(), Some(vec![binding("::"), binding("0.0.0.0")]));
        v.network_settings.ports.insert("5001/tcp".into(), None);
        let l = port_lines(&v);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].2, "0.0.0.0");
        assert_eq!(l[1].2, "::");
    }
}
