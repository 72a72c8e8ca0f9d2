//! `cproxy volume create|ls|inspect|rm|prune`, as Docker's client prints them.

use std::collections::BTreeMap;
use std::io::Write;

use hyper::Method;
use serde_json::json;

use crate::supervisor::api::types::{Volume, VolumeCreateBody, VolumeList, VolumesPruneReport};
use crate::supervisor::client::cli::VolumeCommand;
use crate::supervisor::client::image::format_rows;
use crate::supervisor::client::transport::{Client, Failure, NO_BODY, Result, fail, q};
use crate::supervisor::rules::filters::Filters;
use crate::supervisor::rules::format::{human_size, table};
use crate::supervisor::rules::template::render_template;

/// A 404 as the docker CLI words it for a volume.
fn no_such_volume(f: Failure, name: &str) -> String {
    if f.status == 404 { format!("Error: No such volume: {name}") } else { f.message }
}

/// `KEY=VALUE` values (`KEY` alone: an empty value).
fn pairs(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| {
            let (k, v) = v.split_once('=').unwrap_or((v, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--filter` values as the API's `filters`, or Docker's flag error.
fn filters_of(values: &[String], command: &str) -> Result<String> {
    let mut filters = Filters::default();
    for f in values {
        filters.add_flag(f).map_err(|e| {
            fail(
                format!(
                    "invalid argument \"{f}\" for \"-f, --filter\" flag: {e}\nSee 'cproxy volume {command} --help'."
                ),
                125,
            )
        })?;
    }
    Ok(if filters.is_empty() {
        String::new()
    } else {
        format!("filters={}", q(&filters.to_json()))
    })
}

/// `cproxy volume …`.
pub(super) async fn volume(client: &Client, cmd: VolumeCommand) -> Result<u8> {
    match cmd {
        VolumeCommand::Create(a) => {
            if a.name_flag.is_some() && a.name.is_some() {
                return Err(fail(
                    "conflicting options: either specify --name or provide positional arg, not both",
                    1,
                ));
            }
            let body = VolumeCreateBody {
                name: a.name.or(a.name_flag).unwrap_or_default(),
                driver: a.driver,
                driver_opts: Some(pairs(&a.opt)),
                labels: Some(pairs(&a.label)),
            };
            let v: Volume = client.json(Method::POST, "/volumes/create", Some(&body)).await?;
            println!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let query = filters_of(&a.filter, "ls")?;
            let list: VolumeList =
                client.json(Method::GET, &format!("/volumes?{query}"), NO_BODY).await?;
            let mut volumes = list.volumes.unwrap_or_default();
            volumes.sort_by(|x, y| x.name.cmp(&y.name));
            let out = match a.format.as_deref().filter(|f| !f.is_empty() && !a.quiet) {
                Some(f) => {
                    let names = json!({"Name": "VOLUME NAME", "Driver": "DRIVER",
                        "Labels": "LABELS", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE"});
                    let rows = volumes.iter().map(|v| {
                        let labels: Vec<String> = v
                            .labels
                            .iter()
                            .flatten()
                            .map(|(k, val)| format!("{k}={val}"))
                            .collect();
                        json!({"Name": v.name, "Driver": v.driver, "Labels": labels.join(","),
                            "Mountpoint": v.mountpoint, "Scope": v.scope})
                    });
                    format_rows(f, &names, rows)
                }
                None if a.quiet => volumes.iter().map(|v| format!("{}\n", v.name)).collect(),
                None => {
                    let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
                    rows.extend(volumes.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
                    table(&rows)
                }
            };
            let _ = std::io::stdout().write_all(out.as_bytes());
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let mut found = Vec::new();
            let mut errors = Vec::new();
            for name in &a.containers {
                let uri = format!("/volumes/{}", q(name));
                match client.json::<_, serde_json::Value>(Method::GET, &uri, NO_BODY).await {
                    Ok(v) => found.push(v),
                    Err(f) => errors.push(no_such_volume(f, name)),
                }
            }
            match a.format.as_deref() {
                Some(t) => found.iter().for_each(|v| println!("{}", render_template(t, v))),
                None => println!("{}", serde_json::to_string_pretty(&found).unwrap_or_default()),
            }
            for e in &errors {
                eprintln!("{e}");
            }
            Ok(u8::from(!errors.is_empty()))
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.volumes {
                let uri = format!("/volumes/{}?force={}", q(name), u8::from(a.force));
                match client.call(Method::DELETE, &uri, NO_BODY).await {
                    Ok(_) => println!("{name}"),
                    Err(f) => {
                        eprintln!("{}", no_such_volume(f, name));
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
        VolumeCommand::Prune(a) => {
            let query = filters_of(&a.filter, "prune")?;
            if !a.force {
                print!(
                    "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
                );
                let _ = std::io::stdout().flush();
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
                    println!("Total reclaimed space: 0B");
                    return Ok(0);
                }
            }
            let report: VolumesPruneReport =
                client.json(Method::POST, &format!("/volumes/prune?{query}"), NO_BODY).await?;
            if let Some(names) = report.volumes_deleted.filter(|n| !n.is_empty()) {
                println!("Deleted Volumes:");
                for n in names {
                    println!("{n}");
                }
                println!();
            }
            println!("Total reclaimed space: {}", human_size(report.space_reclaimed as f64, 4));
            Ok(0)
        }
    }
}
