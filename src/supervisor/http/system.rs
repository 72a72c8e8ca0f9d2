//! The system endpoints and API version negotiation, as dockerd answers them: `/_ping` (with
//! the `Api-Version` header Docker's clients negotiate from), `/version`, `/info`, and every
//! route served bare and under `/vX.Y` for each version from [`MIN_API_VERSION`] to
//! [`API_VERSION`]; a client asking for a newer or older one gets Docker's words.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::supervisor::api::types::{
    ComponentVersion, Platform, RuntimeInfo, SystemInfo, SystemVersion,
};
use crate::supervisor::engine::Daemon;
use crate::supervisor::engine::store::Status;
use crate::supervisor::rules::runtime::Runtime;

/// The Engine API version whose endpoints cproxy honours (Docker 20.10's).
pub const API_VERSION: (u32, u32) = (1, 41);
/// The oldest version a client may ask for (dockerd 20.10's minimum).
pub const MIN_API_VERSION: (u32, u32) = (1, 12);

fn text((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}

/// `routes` served bare and under `/v1.12` … `/v1.41`, and a fallback that answers a version
/// outside that span (or an unknown route) in Docker's words.
pub fn versioned(routes: Router) -> Router {
    let mut router = Router::new().merge(routes.clone());
    for minor in MIN_API_VERSION.1..=API_VERSION.1 {
        router = router.nest(&format!("/v{}.{minor}", API_VERSION.0), routes.clone());
    }
    router.fallback(unknown_route)
}

/// `/vX.Y/…` of a request, if its path starts so.
fn asked_version(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("/v")?;
    let (version, _) = rest.split_once('/').unwrap_or((rest, ""));
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn error(status: StatusCode, message: String) -> Response {
    super::error_response(status, &message)
}

/// The headers dockerd's middlewares put on every answer of a route: its version middleware's
/// `Server`, `Api-Version` and `Ostype` (also on a version it refuses), then the experimental
/// one's `Docker-Experimental` (only past the version check). An unknown route has none.
fn versioned_headers(response: &mut Response, experimental: bool) {
    let headers = response.headers_mut();
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("cproxy/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    if let Ok(version) = HeaderValue::from_str(&text(API_VERSION)) {
        headers.insert("api-version", version);
    }
    headers.insert("ostype", HeaderValue::from_static("linux"));
    if experimental {
        headers.insert("docker-experimental", HeaderValue::from_static("false"));
    }
}

/// The headers of every answer of a route that took the request: `Server`, `Api-Version`,
/// `Ostype` and `Docker-Experimental`, as dockerd sends them.
pub async fn route_headers(mut response: Response) -> Response {
    versioned_headers(&mut response, true);
    response
}

/// What a path no route takes gets: dockerd's version errors, else its 404.
async fn unknown_route(req: Request) -> Response {
    let mut refused = match asked_version(req.uri().path()) {
        Some(v) if v > API_VERSION => error(
            StatusCode::BAD_REQUEST,
            format!(
                "client version {} is too new. Maximum supported API version is {}",
                text(v),
                text(API_VERSION)
            ),
        ),
        Some(v) if v < MIN_API_VERSION => error(
            StatusCode::BAD_REQUEST,
            format!(
                "client version {} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                text(v),
                text(MIN_API_VERSION)
            ),
        ),
        _ => return error(StatusCode::NOT_FOUND, "page not found".into()),
    };
    versioned_headers(&mut refused, false);
    refused
}

/// `GET|HEAD /_ping`: `OK` (empty for HEAD) with the headers clients negotiate from.
pub async fn ping(method: Method) -> Response {
    let body = if method == Method::HEAD { "" } else { "OK" };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The running kernel's release.
fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Go's name for this architecture, as Docker's clients print it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `GET /version`.
pub async fn version() -> axum::Json<SystemVersion> {
    let details = [
        ("ApiVersion", text(API_VERSION)),
        ("MinAPIVersion", text(MIN_API_VERSION)),
        ("Os", "linux".into()),
        ("Arch", go_arch().into()),
        ("KernelVersion", kernel_release()),
    ];
    axum::Json(SystemVersion {
        platform: Platform { name: "cproxy".into() },
        components: vec![ComponentVersion {
            name: "Engine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            details: details.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }],
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: text(API_VERSION),
        min_api_version: text(MIN_API_VERSION),
        git_commit: String::new(),
        go_version: "n/a (Rust)".into(),
        os: "linux".into(),
        arch: go_arch().into(),
        kernel_version: kernel_release(),
    })
}

/// `PRETTY_NAME` of os-release, as `docker info` shows the host.
fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// `GET /info`.
pub async fn info(State(d): State<Arc<Daemon>>) -> axum::Json<SystemInfo> {
    let states: Vec<Status> = d.all().iter().map(|c| c.record().shown_status()).collect();
    let running = states.iter().filter(|s| s.is_running()).count();
    let paused = states.iter().filter(|s| **s == Status::Paused).count();
    let host = d.host_limits();
    let net = crate::supervisor::os::netlink::net_sysctls();
    axum::Json(SystemInfo {
        id: d.daemon_id(),
        containers: states.len(),
        containers_running: running,
        containers_paused: paused,
        containers_stopped: states.len() - running - paused,
        images: d.images.all().len(),
        driver: "overlay2".into(),
        memory_limit: host.memory,
        swap_limit: host.swap,
        kernel_memory: host.kernel_memory,
        kernel_memory_tcp: host.kernel_memory_tcp,
        cpu_cfs_period: host.cpu_cfs,
        cpu_cfs_quota: host.cpu_cfs,
        cpu_shares: host.cpu_shares,
        cpu_set: host.cpuset,
        pids_limit: host.pids,
        oom_kill_disable: host.oom_kill_disable,
        ipv4_forwarding: net.ipv4_forwarding,
        bridge_nf_iptables: net.bridge_nf_iptables,
        bridge_nf_ip6tables: net.bridge_nf_ip6tables,
        cgroup_version: host.cgroup_version.to_string(),
        logging_driver: d.default_log_config().kind.clone(),
        cgroup_driver: if d.has_cgroups() { "cgroupfs" } else { "none" }.into(),
        name: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        kernel_version: kernel_release(),
        operating_system: operating_system(),
        os_type: "linux".into(),
        architecture: std::env::consts::ARCH.into(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total: crate::supervisor::os::cgroups::mem_total(),
        docker_root_dir: d.data_root().display().to_string(),
        warnings: crate::supervisor::rules::resources::info_warnings(host, &net),
        runtimes: runtimes(),
        default_runtime: Runtime::default().name().into(),
    })
}

/// `Runtimes`: each runtime with the program that runs it (cproxy's own: this program, whose
/// shim and init make the container).
fn runtimes() -> std::collections::BTreeMap<String, RuntimeInfo> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    Runtime::ALL
        .into_iter()
        .map(|r| {
            let path = match r {
                Runtime::Own => exe.clone(),
            };
            (r.name().to_string(), RuntimeInfo { path })
        })
        .collect()
}

/// `GET /system/df`: the disk walked off the runtime's workers.
pub(super) async fn disk_usage(
    State(d): State<Arc<Daemon>>,
) -> Result<axum::Json<crate::supervisor::api::types::DiskUsage>, super::ApiError> {
    let usage = tokio::task::spawn_blocking(move || d.disk_usage())
        .await
        .map_err(crate::supervisor::engine::Error::internal)??;
    Ok(axum::Json(usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_versioned_path_names_its_version() {
        assert_eq!(asked_version("/v1.41/containers/json"), Some((1, 41)));
        assert_eq!(asked_version("/v1.5"), Some((1, 5)));
        assert_eq!(asked_version("/v2.0/x"), Some((2, 0)));
        assert_eq!(asked_version("/containers/json"), None);
        assert_eq!(asked_version("/vx.1/"), None);
        assert!((1, 5) < MIN_API_VERSION && (1, 42) > API_VERSION && (2, 0) > API_VERSION);
    }
}
