//! `cproxy exec`: enters a running container's namespaces itself (the client runs as root, as
//! the socket's permissions require; [`exec::prepare`] is the daemon's exec API's too) and
//! runs a command there with the container's environment, its output straight to ours.

use hyper::Method;

use crate::supervisor::api::types::{ContainerInspect, ExecConfig};
use crate::supervisor::client::cli::ExecArgs;
use crate::supervisor::client::transport::{Client, NO_BODY, Result, fail, q};
use crate::supervisor::os::exec;

/// `exec`: runs `a.command` in the container and exits with its code.
pub(super) async fn exec(client: &Client, a: ExecArgs) -> Result<u8> {
    let uri = format!("/containers/{}/json", q(&a.container));
    let v: ContainerInspect = client.json(Method::GET, &uri, NO_BODY).await?;
    if v.state.paused {
        return Err(fail(
            format!(
                "Error response from daemon: Container {} is paused, unpause the container before exec",
                a.container
            ),
            1,
        ));
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
