//! `cproxy network create|ls|inspect|rm|connect|disconnect`, as Docker's client prints them.

use hyper::Method;

use crate::supervisor::api::types::{
    EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnectRequest, NetworkResource,
};
use crate::supervisor::client::cli::NetworkCommand;
use crate::supervisor::client::show::inspect_each;
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, q};
use crate::supervisor::rules::format;

/// The daemon's `network X not found` (404) as Docker's client prints it: `Error: No such
/// network: X` (the Go client's `wrapResponseError`).
fn no_such_network(f: Failure) -> Failure {
    let name = f
        .message
        .strip_prefix("Error response from daemon: network ")
        .and_then(|m| m.strip_suffix(" not found"))
        .filter(|_| f.status == 404);
    match name {
        Some(name) => Failure { message: format!("Error: No such network: {name}"), ..f },
        None => f,
    }
}

/// The request that creates network `name`: one IPAM config when a subnet or a gateway is
/// given (`network create`'s flags, a compose file's `ipam`).
pub(super) fn create_request(
    name: &str,
    driver: &str,
    subnet: Option<&str>,
    gateway: Option<&str>,
) -> NetworkCreateRequest {
    let mut config = Vec::new();
    if subnet.is_some() || gateway.is_some() {
        config.push(IpamConfig {
            subnet: subnet.unwrap_or_default().to_string(),
            gateway: gateway.unwrap_or_default().to_string(),
        });
    }
    NetworkCreateRequest {
        name: name.to_string(),
        driver: driver.to_string(),
        ipam: Ipam { config, ..Ipam::default() },
        // As the docker CLI sends it.
        check_duplicate: true,
        ..NetworkCreateRequest::default()
    }
}

/// `cproxy network …`.
pub(super) async fn network(client: &Client, cmd: NetworkCommand) -> Result<u8> {
    match cmd {
        NetworkCommand::Create(a) => {
            let body =
                create_request(&a.name, &a.driver, a.subnet.as_deref(), a.gateway.as_deref());
            let created: NetworkCreateResponse =
                client.json(Method::POST, "/networks/create", Some(&body)).await?;
            println!("{}", created.id);
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let list: Vec<NetworkResource> = client.json(Method::GET, "/networks", NO_BODY).await?;
            let mut sorted: Vec<(String, String, String)> =
                list.into_iter().map(|n| (n.name, n.id, n.driver)).collect();
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
            let uri = |name: &str| format!("/networks/{}", q(name));
            let error = |f| no_such_network(f).message;
            inspect_each(client, &a.containers, uri, error, a.format.as_deref()).await
        }
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.networks {
                match client.call(Method::DELETE, &format!("/networks/{}", q(name)), NO_BODY).await
                {
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
            let body = NetworkConnectRequest {
                container: a.container,
                endpoint_config: EndpointSettings {
                    aliases: Some(a.alias),
                    ..EndpointSettings::default()
                },
            };
            let uri = format!("/networks/{}/connect", q(&a.network));
            client.call(Method::POST, &uri, Some(&body)).await?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let body = NetworkDisconnectRequest { container: a.container, force: a.force };
            let uri = format!("/networks/{}/disconnect", q(&a.network));
            client.call(Method::POST, &uri, Some(&body)).await?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::Value;

    use super::*;
    use crate::supervisor::client::cli::{SupervisorCli, SupervisorCommand};

    fn body(argv: &[&str]) -> Value {
        let argv = ["cproxy", "network", "create"].iter().chain(argv);
        let SupervisorCommand::Network(NetworkCommand::Create(a)) =
            SupervisorCli::try_parse_from(argv).unwrap().command
        else {
            panic!("not network create")
        };
        let req = create_request(&a.name, &a.driver, a.subnet.as_deref(), a.gateway.as_deref());
        serde_json::to_value(req).unwrap()
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn network_create_sends_one_ipam_config_only_when_asked() {
        assert_eq!(
            body(&["n"]),
            json(
                r#"{"Name": "n", "Driver": "bridge", "CheckDuplicate": true, "Internal": false,
                    "Attachable": false, "EnableIPv6": false, "Options": null, "Labels": null,
                    "IPAM": {"Driver": "", "Options": null, "Config": []}}"#
            )
        );
        assert_eq!(
            body(&["--subnet", "10.89.0.0/24", "-d", "bridge", "n"])["IPAM"]["Config"],
            json(r#"[{"Subnet": "10.89.0.0/24", "Gateway": ""}]"#)
        );
        assert_eq!(
            body(&["--gateway", "10.89.0.1", "n"])["IPAM"]["Config"],
            json(r#"[{"Subnet": "", "Gateway": "10.89.0.1"}]"#)
        );
    }
}
