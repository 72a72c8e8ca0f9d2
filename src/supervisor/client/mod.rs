//! The client side of the container and image commands: each command asks the daemon over its socket
//! (`transport`) with the API's types and prints the answer in Docker's formats and words;
//! this file runs a command, and holds the ones that only name containers (`stop`, `start`,
//! `restart`, `kill`, `wait`, `rm`, `logs`).

mod archive;
mod attach;
pub mod cli;
pub mod compose;
mod exec;
mod image;
mod network;
mod resources;
mod run;
mod show;
mod transport;
mod volume;

use std::io::Write;
use std::process::ExitCode;

use hyper::Method;

use crate::supervisor::api::stream::{Decoder, StreamKind};
use crate::supervisor::api::types::ContainerWaitResponse;
use crate::supervisor::client::cli::SupervisorCommand;
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail, q};
use crate::supervisor::rules::timestamps;

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
            SupervisorCommand::Run(a) => run::run_container(client, *a).await,
            SupervisorCommand::Create(a) => run::create(client, *a).await,
            SupervisorCommand::Pull(a) => image::pull(client, a).await,
            SupervisorCommand::Ps(a) => show::ps(client, a).await,
            SupervisorCommand::Port(a) => show::port(client, a).await,
            SupervisorCommand::Stop(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/stop{}", q(c), stop_query(a.time));
                async move { client.call(Method::POST, &uri, NO_BODY).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Start(a) => {
                let mut failed = Vec::new();
                for c in &a.containers {
                    let uri = format!("/containers/{}/start", q(c));
                    match client.call(Method::POST, &uri, NO_BODY).await {
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
            SupervisorCommand::Rm(a) => {
                each(&a.containers, |c| {
                    let uri = format!(
                        "/containers/{}?force={}&v={}",
                        q(c),
                        u8::from(a.force),
                        u8::from(a.volumes)
                    );
                    async move {
                        client.call(Method::DELETE, &uri, NO_BODY).await.map(|_| c.to_string())
                    }
                })
                .await
            }
            SupervisorCommand::Logs(a) => logs(client, &a).await,
            SupervisorCommand::Inspect(a) => show::inspect(client, a).await,
            SupervisorCommand::Diff(a) => {
                let uri = format!("/containers/{}/changes", q(&a.container));
                let list: Vec<crate::supervisor::engine::changes::Change> =
                    client.json(Method::GET, &uri, NO_BODY).await?;
                for c in list {
                    println!(
                        "{} {}",
                        ["C", "A", "D"].get(usize::from(c.kind)).unwrap_or(&"?"),
                        c.path
                    );
                }
                Ok(0)
            }
            SupervisorCommand::Restart(a) => {
                each(&a.containers, |c| {
                    let stop = format!("/containers/{}/stop{}", q(c), stop_query(a.time));
                    let start = format!("/containers/{}/start", q(c));
                    async move {
                        client.call(Method::POST, &stop, NO_BODY).await?;
                        client.call(Method::POST, &start, NO_BODY).await.map(|_| c.to_string())
                    }
                })
                .await
            }
            SupervisorCommand::Pause(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/pause", q(c));
                async move { client.call(Method::POST, &uri, NO_BODY).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Unpause(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/unpause", q(c));
                async move { client.call(Method::POST, &uri, NO_BODY).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Update(a) => resources::update(client, a).await,
            SupervisorCommand::Stats(a) => resources::stats(client, a).await,
            SupervisorCommand::Kill(a) => each(&a.containers, |c| {
                let uri = format!("/containers/{}/kill?signal={}", q(c), q(&a.signal));
                async move { client.call(Method::POST, &uri, NO_BODY).await.map(|_| c.to_string()) }
            })
            .await,
            SupervisorCommand::Wait(a) => {
                each(&a.containers, |c| {
                    let uri = format!("/containers/{}/wait", q(c));
                    async move {
                        let waited: ContainerWaitResponse =
                            client.json(Method::POST, &uri, NO_BODY).await?;
                        Ok(waited.status_code.to_string())
                    }
                })
                .await
            }
            SupervisorCommand::Exec(a) => exec::exec(client, a).await,
            SupervisorCommand::Cp(a) => archive::cp(client, a).await,
            SupervisorCommand::Export(a) => archive::export(client, a).await,
            SupervisorCommand::Commit(a) => image::commit(client, a).await,
            SupervisorCommand::Network(a) => network::network(client, a).await,
            SupervisorCommand::Volume(a) => volume::volume(client, a).await,
            SupervisorCommand::Images(a) => image::images(client, a).await,
            SupervisorCommand::Image(a) => image::image(client, a).await,
            SupervisorCommand::Import(a) => image::import(client, a).await,
            SupervisorCommand::Load(a) => image::load(client, a).await,
            SupervisorCommand::Save(a) => image::save(client, a).await,
            SupervisorCommand::Tag(a) => image::tag(client, a).await,
            SupervisorCommand::Rmi(a) => image::rmi(client, a).await,
            SupervisorCommand::History(a) => image::history(client, a).await,
            SupervisorCommand::Daemon(_)
            | SupervisorCommand::Init(_)
            | SupervisorCommand::NsExec(_) => Ok(0),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if is_run && !f.bare {
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

/// `logs`: as Docker's CLI, the container looked up first (a `-t` container's log is one
/// raw stream), the times read as the CLI reads them.
async fn logs(client: &Client, a: &cli::LogsArgs) -> Result<u8> {
    let info: serde_json::Value = client.inspect_container(&a.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = crate::supervisor::rules::format::now_nanos();
    let mut uri = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&details={}",
        q(&a.container),
        u8::from(a.follow),
        u8::from(a.timestamps),
        u8::from(a.details)
    );
    for (key, value) in [("since", &a.since), ("until", &a.until)] {
        if let Some(v) = value {
            let api = timestamps::from_cli(v, now, local_offset(now))
                .map_err(|e| fail(format!("invalid value for \"{key}\": {e}"), 1))?;
            uri.push_str(&format!("&{key}={}", q(&api)));
        }
    }
    if let Some(t) = a.tail.as_deref().filter(|t| *t != "all") {
        uri.push_str(&format!("&tail={}", q(t)));
    }
    stream_logs(client, &uri, tty).await.map(|_| 0)
}

/// The local zone's offset east of UTC at a time (nanoseconds since the epoch), in seconds:
/// a time the CLI is given without a zone is local, as Docker's CLI reads it.
fn local_offset(at: i64) -> i64 {
    let t: libc::time_t = at.div_euclid(1_000_000_000);
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r writes only into `tm`, which lives across the call; it returns
    // null (and writes nothing we read) on failure.
    let ok = unsafe { !libc::localtime_r(&t, tm.as_mut_ptr()).is_null() };
    // SAFETY: on success localtime_r filled `tm`.
    if ok { unsafe { tm.assume_init().tm_gmtoff } } else { 0 }
}

/// Copies a container's log stream to stdout and stderr: Docker's frames, or a terminal's
/// raw bytes (`tty`).
async fn stream_logs(client: &Client, uri: &str, tty: bool) -> Result<()> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let decoder = if tty { Decoder::raw() } else { Decoder::default() };
    client
        .stream_with(uri, decoder, |decoder| {
            while let Some((kind, data)) = decoder.next_frame() {
                let _ = match kind {
                    StreamKind::Stderr => err.write_all(&data),
                    StreamKind::Stdin | StreamKind::Stdout => out.write_all(&data),
                };
            }
            let _ = out.flush();
        })
        .await
}
