//! `cproxy exec`: enters a running container's namespaces itself (the client runs as root, as
//! the socket's permissions require; [`exec::prepare`] is the daemon's exec API's too) and
//! runs a command there with the container's environment, its output straight to ours. With
//! `-i` or `-t` it goes through the daemon's exec API as Docker's CLI does (create, a hijacked
//! start that carries stdin, the exit code from the exec's inspect).

use hyper::Method;

use crate::supervisor::api::types::{
    ContainerInspect, ExecConfig, ExecInspect, ExecStartConfig, IdResponse,
};
use crate::supervisor::client::attach::{self, Streams};
use crate::supervisor::client::cli::ExecArgs;
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail};
use crate::supervisor::os::exec;

/// `exec`: runs `a.command` in the container and exits with its code.
pub(super) async fn exec(client: &Client, a: ExecArgs) -> Result<u8> {
    let v: ContainerInspect = client.inspect_container(&a.container).await?;
    if v.state.paused {
        return Err(fail(
            format!(
                "Error response from daemon: Container {} is paused, unpause the container before exec",
                a.container
            ),
            1,
        ));
    }
    if a.interactive || a.tty {
        return exec_attached(client, &v.id, a).await;
    }
    let req = ExecConfig {
        user: a.user.clone().unwrap_or_default(),
        privileged: a.privileged,
        env: a.env.clone(),
        cmd: a.command.clone(),
        ..ExecConfig::default()
    };
    let mut prepared = exec::prepare(&v, &req).map_err(|exec::Refused(why)| {
        let code = if why.ends_with("is not running") { 1 } else { 126 };
        fail(format!("Error response from daemon: {why}"), code)
    })?;
    let status = prepared
        .command
        .status()
        .map_err(|e| fail(format!("Error: cannot run in the container: {e}"), 126))?;
    drop(prepared);
    let code = crate::supervisor::rules::exit_codes::of_status(Ok(status));
    Ok(u8::try_from(code).unwrap_or(255))
}

/// `exec -i`/`-t` through the daemon, as Docker's CLI: the exec created with the streams
/// asked for, started on a hijacked connection that carries them, and its exit code read
/// from its inspect once the output ended.
async fn exec_attached(client: &Client, container: &str, a: ExecArgs) -> Result<u8> {
    let streams = Streams {
        stdin: a.interactive,
        tty: a.tty,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
    };
    streams.check()?;
    let req = ExecConfig {
        user: a.user.unwrap_or_default(),
        privileged: a.privileged,
        tty: a.tty,
        attach_stdin: a.interactive,
        attach_stdout: true,
        attach_stderr: true,
        env: a.env,
        cmd: a.command,
        detach_keys: a.detach_keys.unwrap_or_default(),
        ..ExecConfig::default()
    };
    let uri = format!("/containers/{container}/exec");
    let created: IdResponse = client.json(Method::POST, &uri, Some(&req)).await?;
    let start = ExecStartConfig { detach: false, tty: a.tty };
    let conn = client.hijack(&format!("/exec/{}/start", created.id), Some(&start)).await?;
    {
        let _raw = streams.raw_terminal();
        let resize = format!("/exec/{}/resize", created.id);
        let sizes = a.tty.then(|| attach::follow_terminal_size(client, resize));
        let ended = attach::carry(conn, &streams).await;
        if let Some(sizes) = sizes.flatten() {
            sizes.abort();
        }
        if ended == attach::Ended::Detached {
            return Ok(0);
        }
    }
    let uri = format!("/exec/{}/json", created.id);
    let done: ExecInspect = client.json(Method::GET, &uri, NO_BODY).await?;
    Ok(u8::try_from(done.exit_code.unwrap_or(0)).unwrap_or(255))
}
