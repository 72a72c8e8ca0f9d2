//! `cproxy forward`: many bindings in one process, described in Docker's `-p` syntax, and a
//! control socket through which bindings are added and removed while traffic flows.
//!
//! Control protocol (one command per line on a unix stream socket; each reply is zero or more
//! lines, then `ok` or `error: <reason>`):
//!
//! ```text
//! add [IP] SPEC   publish SPEC to the container at IP (default: --to); prints "ID PUBLISHED"
//! remove ID       stop a binding: its port is freed at once, its connections drain
//! list            every binding as "ID PUBLISHED", where PUBLISHED is `docker port`'s line
//! ```

use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::cli::ForwardArgs;
use crate::compat::StatusPipe;
use crate::ports::PortAllocator;
use crate::proxy::{BindingId, BindingInfo, Proto, Proxy};
use crate::serve;
use crate::spec::{PortSpec, PublishedPort};

/// Longest control command accepted, so a misbehaving client cannot grow a line without bound.
const MAX_LINE: usize = 4096;

/// What publishing needs: where new bindings go and how free host ports are found.
struct Publisher {
    proxy: Proxy,
    allocator: PortAllocator,
    default_backend: IpAddr,
}

impl Publisher {
    /// Publishes every mapping of `spec` to `backend`, for each of `protos` on one host port,
    /// all or nothing.
    fn publish(
        &self,
        spec: &PortSpec,
        protos: &[Proto],
        backend: IpAddr,
    ) -> Result<Vec<BindingInfo>, String> {
        let mut added = Vec::new();
        for mapping in spec.mappings() {
            let to = SocketAddr::new(backend, mapping.container_port);
            let sockets = match self.allocator.bind_mapping_for(&mapping, protos) {
                Ok(sockets) => sockets,
                Err(e) => {
                    self.roll_back(&added);
                    return Err(e.to_string());
                }
            };
            for socket in sockets {
                match self.proxy.add_socket(socket.proto(), socket.into_fd(), to) {
                    Ok(info) => added.push(info),
                    Err(e) => {
                        self.roll_back(&added);
                        return Err(e.to_string());
                    }
                }
            }
        }
        Ok(added)
    }

    /// Removes bindings that were added for a spec that failed part-way; nothing used them yet.
    fn roll_back(&self, added: &[BindingInfo]) {
        for info in added {
            let proxy = self.proxy.clone();
            let id = info.id;
            tokio::spawn(async move { proxy.remove(id).await });
        }
    }
}

/// The specs of a command line with the protocols to publish each for. Specs that differ only
/// in protocol and leave the host port to the allocator (`-p 53/tcp -p 53/udp`,
/// `--expose 53/tcp --expose 53/udp -P`) become one, published for both, so the TCP and UDP
/// halves of a port get the same host port.
fn pair_halves(specs: &[PortSpec]) -> Vec<(PortSpec, Vec<Proto>)> {
    let mut groups: Vec<(PortSpec, Vec<Proto>)> = Vec::new();
    for spec in specs {
        let half_of = |(g, protos): &&mut (PortSpec, Vec<Proto>)| {
            spec.host_ports().is_none()
                && g.host_ports().is_none()
                && g.host_ip() == spec.host_ip()
                && g.container_ports() == spec.container_ports()
                && !protos.contains(&spec.proto())
        };
        match groups.iter_mut().find(half_of) {
            Some((_, protos)) => protos.push(spec.proto()),
            None => groups.push((*spec, vec![spec.proto()])),
        }
    }
    groups
}

/// A binding as `docker port` prints it.
pub fn published(info: &BindingInfo) -> PublishedPort {
    PublishedPort {
        container_port: info.binding.backend.port(),
        proto: info.binding.proto,
        host: info.local,
    }
}

/// Runs `cproxy forward`.
pub fn run(mut args: ForwardArgs, status: StatusPipe) -> ExitCode {
    // As `docker run -P`: exposed ports are published only when asked, on picked host ports.
    if args.publish_all {
        args.publish.append(&mut args.expose);
    }
    let control = match args.control.as_deref().map(ControlSocket::bind).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cproxy: {e}");
            status.fail(&e);
            return ExitCode::from(1);
        }
    };
    if args.publish.is_empty() && control.is_none() {
        let e = "nothing to forward: give -p SPEC or --expose PORT -P (and/or --control PATH to \
                 add bindings later)";
        eprintln!("cproxy: {e}");
        status.fail(e);
        return ExitCode::from(2);
    }
    let allocator = match args.port_range {
        Some(range) => PortAllocator::new(range),
        None => PortAllocator::from_kernel(),
    };
    let listener = control.as_ref().map(|c| c.listener.try_clone());
    let start = move |proxy: &Proxy| -> Result<Vec<BindingInfo>, String> {
        let publisher =
            Arc::new(Publisher { proxy: proxy.clone(), allocator, default_backend: args.to });
        let mut all = Vec::new();
        for (spec, protos) in pair_halves(&args.publish) {
            let added = publisher
                .publish(&spec, &protos, args.to)
                .inspect_err(|_| publisher.roll_back(&all))?;
            all.extend(added);
        }
        for info in &all {
            println!("{}", published(info));
        }
        if let Some(listener) = listener {
            let listener = listener
                .and_then(|l| {
                    l.set_nonblocking(true)?;
                    UnixListener::from_std(l)
                })
                .map_err(|e| format!("control socket: {e}"))?;
            tokio::spawn(serve_control(listener, publisher));
        }
        Ok(all)
    };
    let code = serve::run(&args.tuning, status, start);
    drop(control);
    code
}

/// The control socket's file, removed again when cproxy stops.
struct ControlSocket {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ControlSocket {
    fn bind(path: &Path) -> Result<ControlSocket, String> {
        // A socket file left by a cproxy that died is replaced; a live one is not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("control socket {} is in use by another cproxy", path.display()));
        }
        let _ = std::fs::remove_file(path);
        let listener = std::os::unix::net::UnixListener::bind(path)
            .map_err(|e| format!("cannot create control socket {}: {e}", path.display()))?;
        Ok(ControlSocket { path: path.to_path_buf(), listener })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_control(listener: UnixListener, publisher: Arc<Publisher>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let publisher = publisher.clone();
                tokio::spawn(async move {
                    if let Err(e) = control_session(stream, &publisher).await {
                        tracing::debug!(error = %e, "control session ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn control_session(stream: UnixStream, publisher: &Publisher) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut lines).take(MAX_LINE as u64 + 1).read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let reply = if n > MAX_LINE {
            return write.write_all(b"error: command too long\n").await;
        } else {
            execute(line.trim(), publisher).await
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Runs one control command; returns the whole reply, ending in `ok` or `error: …`.
async fn execute(command: &str, publisher: &Publisher) -> String {
    match run_command(command, publisher).await {
        Ok(lines) => lines.into_iter().map(|l| l + "\n").collect::<String>() + "ok\n",
        Err(e) => format!("error: {e}\n"),
    }
}

/// One line of the control protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// `add [IP] SPEC`: publish `spec` to `backend` (the `--to` address if `None`).
    Add { backend: Option<IpAddr>, spec: PortSpec },
    /// `remove ID`
    Remove(BindingId),
    /// `list`
    List,
}

const USAGE: &str = "commands are: add [IP] SPEC, remove ID, list";

impl std::str::FromStr for ControlCommand {
    type Err = String;

    fn from_str(line: &str) -> Result<ControlCommand, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let spec = |s: &str| PortSpec::parse(s).map_err(|e| e.to_string());
        match words.as_slice() {
            ["add", s] => Ok(ControlCommand::Add { backend: None, spec: spec(s)? }),
            ["add", ip, s] => {
                let ip = ip.parse().map_err(|_| format!("invalid IP address: {ip}"))?;
                Ok(ControlCommand::Add { backend: Some(ip), spec: spec(s)? })
            }
            ["remove", id] => id
                .parse::<u64>()
                .map(|id| ControlCommand::Remove(BindingId::from(id)))
                .map_err(|_| format!("invalid binding id: {id}")),
            ["list"] => Ok(ControlCommand::List),
            [] => Err(format!("empty command; {USAGE}")),
            [other, ..] => Err(format!("invalid command {other:?}; {USAGE}")),
        }
    }
}

impl std::fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlCommand::Add { backend: Some(ip), spec } => write!(f, "add {ip} {spec}"),
            ControlCommand::Add { backend: None, spec } => write!(f, "add {spec}"),
            ControlCommand::Remove(id) => write!(f, "remove {id}"),
            ControlCommand::List => f.write_str("list"),
        }
    }
}

async fn run_command(command: &str, publisher: &Publisher) -> Result<Vec<String>, String> {
    let line = |info: &BindingInfo| format!("{} {}", info.id, published(info));
    match command.parse::<ControlCommand>()? {
        ControlCommand::Add { backend, spec } => {
            let backend = backend.unwrap_or(publisher.default_backend);
            Ok(publisher.publish(&spec, &[spec.proto()], backend)?.iter().map(line).collect())
        }
        ControlCommand::Remove(id) => match publisher.proxy.remove(id).await {
            true => Ok(vec![]),
            false => Err(format!("no such binding: {id}")),
        },
        ControlCommand::List => Ok(publisher.proxy.list().iter().map(line).collect()),
    }
}

/// `cproxy ctl`: sends one command to a control socket and prints the reply. Exits 1 when the
/// reply is an error.
pub fn ctl(socket: &Path, command: &[String]) -> ExitCode {
    use std::io::{BufRead, Write};
    let result = (|| -> io::Result<bool> {
        let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
        writeln!(stream, "{}", command.join(" "))?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut ok = false;
        for line in io::BufReader::new(stream).lines() {
            let line = line?;
            match line.as_str() {
                "ok" => ok = true,
                l if l.starts_with("error: ") => eprintln!("cproxy: {}", &l[7..]),
                l => println!("{l}"),
            }
        }
        Ok(ok)
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::ConnectionRefused => {
            eprintln!(
                "cproxy: cannot reach {}: is `cproxy forward --control` running?",
                socket.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cproxy: {}: {e}", socket.display());
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ControlCommand, String> {
        line.parse()
    }

    #[test]
    fn tcp_and_udp_halves_with_allocated_host_ports_are_published_together() {
        let specs: Vec<PortSpec> = ["53/tcp", "8080:80", "53/udp", "127.0.0.1::53/udp", "53/tcp"]
            .iter()
            .map(|s| PortSpec::parse(s).unwrap())
            .collect();
        let groups: Vec<(String, Vec<Proto>)> =
            pair_halves(&specs).into_iter().map(|(s, p)| (s.to_string(), p)).collect();
        let want = [
            ("53/tcp", vec![Proto::Tcp, Proto::Udp]),
            // A fixed host port is the user's choice, and another IP another port.
            ("8080:80/tcp", vec![Proto::Tcp]),
            ("127.0.0.1::53/udp", vec![Proto::Udp]),
            // The same half twice is two ports, as in Docker.
            ("53/tcp", vec![Proto::Tcp]),
        ];
        let want: Vec<(String, Vec<Proto>)> =
            want.into_iter().map(|(s, p)| (s.to_string(), p)).collect();
        assert_eq!(groups, want);
    }

    #[test]
    fn commands_parse_and_display_back() {
        for line in ["add 127.0.0.1:8080:80/tcp", "add ::1 [::1]::80/udp", "remove 7", "list"] {
            let cmd = parse(line).unwrap();
            assert_eq!(parse(&cmd.to_string()).unwrap(), cmd, "{line}");
        }
        assert_eq!(parse("  list  "), Ok(ControlCommand::List));
    }

    #[test]
    fn bad_commands_are_explained() {
        assert_eq!(parse("remove x").unwrap_err(), "invalid binding id: x");
        assert_eq!(parse("add nope 80").unwrap_err(), "invalid IP address: nope");
        assert!(parse("add 80:99999").unwrap_err().starts_with("invalid containerPort"));
        assert!(parse("").unwrap_err().starts_with("empty command"));
        assert!(parse("list extra").unwrap_err().starts_with("invalid command"));
        assert!(parse("frob").unwrap_err().contains("add [IP] SPEC"));
    }
}
