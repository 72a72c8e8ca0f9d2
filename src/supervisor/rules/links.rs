//! Legacy container links (`run --link NAME[:ALIAS]`) as Docker 20.10 makes them: the flag's
//! parsing, the environment variables the recipient gets, the `/etc/hosts` lines, the
//! `{{.HostConfig.Links}}` form and the errors, all pure functions over plain data.
//!
//! Where the behaviour comes from: the 3c-links.txt and 3b-errors.txt transcripts (dockerd
//! 20.10.24), and the 20.10 `daemon/links` package of moby for what the transcripts do not
//! exercise (ranges of two ports, mixed protocols, `HOME`/`PATH` left out). Two places where
//! the issue text and Docker differ, Docker followed:
//!
//! - the variable prefix is the alias upper-cased with `-` turned into `_` and nothing else:
//!   `--link my-cache.1` gives `MY_CACHE.1_PORT=…` (3c-links.txt), not `MY_CACHE_1_PORT`;
//! - the `_START`/`_END` group is written only for a run of three or more consecutive ports
//!   (moby's `nextContiguous` needs the run to reach past the next port), and the run ignores
//!   the protocol, so `6000/tcp 6001/udp 6002/tcp` is one run ending in `…_6000_TCP_END=tcp://…`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::proxy::Proto;

/// One `--link` value: the source container and the alias the recipient knows it by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// The source container's name (or ID), without a leading `/`.
    pub name: String,
    /// The alias: the name itself when none was given.
    pub alias: String,
}

impl Link {
    /// Parses `NAME`, `NAME:ALIAS`, or the stored `/NAME:/RECIPIENT/ALIAS` form of
    /// `HostConfig.Links`, as Docker's `opts.ParseLink` does.
    ///
    /// Unlike Docker, the alias must look like a container name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`):
    /// it is written into the recipient's `/etc/hosts` and variable names, where a space, a
    /// newline or a `=` would add lines or variables of the user's choosing.
    pub fn parse(value: &str) -> Result<Link, LinkError> {
        let link = Link::parse_unchecked(value)?;
        if !valid_alias(&link.alias) {
            return Err(LinkError::InvalidAlias { alias: link.alias });
        }
        Ok(link)
    }

    fn parse_unchecked(value: &str) -> Result<Link, LinkError> {
        if value.is_empty() {
            return Err(LinkError::Empty);
        }
        let mut parts = value.split(':');
        let (Some(name), alias, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(LinkError::BadFormat { value: value.to_string() });
        };
        let Some(alias) = alias else {
            return Ok(Link { name: value.to_string(), alias: value.to_string() });
        };
        // The stored form names the link by its full path; the alias is its last part.
        if let Some(stored) = name.strip_prefix('/') {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            return Ok(Link { name: stored.to_string(), alias: alias.to_string() });
        }
        Ok(Link { name: name.to_string(), alias: alias.to_string() })
    }

    /// The link's full name, `/RECIPIENT/ALIAS`: the value of `ALIAS_NAME` and the second half
    /// of its `HostConfig.Links` entry.
    pub fn full_name(&self, recipient: &str) -> String {
        format!("/{recipient}/{}", self.alias)
    }

    /// The `HostConfig.Links` entry Docker stores: `/db:/web/db`.
    pub fn host_config_entry(&self, recipient: &str) -> String {
        format!("/{}:{}", self.name, self.full_name(recipient))
    }
}

/// A container name's characters, one or more: what an alias may be.
fn valid_alias(alias: &str) -> bool {
    alias.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && alias.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `NAME:ALIAS`, the form [`Link::parse`] reads back.
impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.alias)
    }
}

/// `inspect -f '{{.HostConfig.Links}}'`: Go's rendering of a string slice, `[/db:/web/db
/// /cache:/web/cache]`, and `[]` for none.
pub fn format_host_config_links(entries: &[String]) -> String {
    format!("[{}]", entries.join(" "))
}

/// What the recipient learns about a link's source, read from the source's record when the
/// recipient starts (and again when the source restarts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSource {
    /// The source's name, without a leading `/`.
    pub name: String,
    /// The source's hostname (its short ID unless `-h` was given).
    pub hostname: String,
    /// The source's address on the default bridge.
    pub ip: IpAddr,
    /// The source's global IPv6 address on the bridge, if it has one (a second hosts line).
    pub ipv6: Option<Ipv6Addr>,
    /// The ports the source exposes (`--expose`, and the container side of `-p`).
    pub exposed: Vec<(u16, Proto)>,
    /// The environment the source was created with (`-e`, `--env-file`), `KEY=VALUE` each.
    pub env: Vec<String>,
}

/// The variable prefix of an alias: upper-cased, `-` turned into `_`, and nothing else
/// (`my-cache.1` gives `MY_CACHE.1`, as in 3c-links.txt).
pub fn env_prefix(alias: &str) -> String {
    alias.to_uppercase().replace('-', "_")
}

/// The variables a recipient named `recipient` gets for `link` to `source`, in the order
/// Docker's daemon writes them, each name once (Docker writes a few twice with the same value,
/// and the container's environment keeps one).
///
/// The groups: `ALIAS_PORT` for the lowest exposed port (TCP first on a tie); a
/// `_START`/`_PORT_START`/`_END`/`_PORT_END` group for each run of three or more consecutive
/// ports; `ALIAS_PORT_N_PROTO` with `_ADDR`, `_PORT` and `_PROTO` for every port;
/// `ALIAS_NAME=/recipient/alias`; `ALIAS_ENV_KEY=VALUE` for each of the source's variables but
/// `HOME` and `PATH` (and entries without `=`).
pub fn link_env(recipient: &str, link: &Link, source: &LinkSource) -> Vec<String> {
    let alias = env_prefix(&link.alias);
    let ip = source.ip;
    let mut ports = source.exposed.clone();
    // Lowest number first, TCP before UDP on the same number.
    ports.sort();
    ports.dedup();

    let mut env = Vec::with_capacity(ports.len() * 4 + 2 + source.env.len());
    let group = |port: u16, proto: Proto| {
        format!("{alias}_PORT_{port}_{}", proto.to_string().to_uppercase())
    };
    if let Some(&(port, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    let mut i = 0;
    while i < ports.len() {
        let j = run_end(&ports, i);
        if j > i + 1 {
            let (first, proto) = ports[i];
            let (last, last_proto) = ports[j];
            let start = group(first, proto);
            // The end group is named after the first port but the last port's protocol.
            let end = group(first, last_proto);
            env.push(format!("{start}_START={proto}://{ip}:{first}"));
            env.push(format!("{start}_ADDR={ip}"));
            env.push(format!("{start}_PROTO={proto}"));
            env.push(format!("{start}_PORT_START={first}"));
            env.push(format!("{end}_END={last_proto}://{ip}:{last}"));
            env.push(format!("{end}_PORT_END={last}"));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for &(port, proto) in &ports {
        let g = group(port, proto);
        env.push(format!("{g}={proto}://{ip}:{port}"));
        env.push(format!("{g}_ADDR={ip}"));
        env.push(format!("{g}_PORT={port}"));
        env.push(format!("{g}_PROTO={proto}"));
    }
    env.push(format!("{alias}_NAME={}", link.full_name(recipient)));
    for var in &source.env {
        let Some((key, value)) = var.split_once('=') else { continue };
        // Docker leaves these out: they come from the image, not from the source's author.
        if key == "HOME" || key == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{key}={value}"));
    }
    dedup_names(env)
}

/// Where the run of consecutive ports starting at `i` ends, as moby's `nextContiguous` sees
/// it: the protocol is ignored, and each step may repeat the previous number.
fn run_end(ports: &[(u16, Proto)], i: usize) -> usize {
    let start = usize::from(ports[i].0);
    for (k, &(port, _)) in ports.iter().enumerate().skip(i + 1) {
        // Port k may be at most k - i past the first one.
        if usize::from(port) > start + (k - i) {
            return k - 1;
        }
    }
    ports.len() - 1
}

/// Keeps the first variable of each name, with the last value given for it, as a process's
/// environment does when the same name is set twice.
fn dedup_names(env: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for var in env {
        let name = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
        match out.iter_mut().find(|v| v.split_once('=').is_some_and(|(k, _)| k == name)) {
            Some(existing) => *existing = var,
            None => out.push(var),
        }
    }
    out
}

/// The recipient's `/etc/hosts` lines for one link: `IP\tALIAS HOSTNAME`, with the source's
/// name added when the alias differs from it, and the same names on a second line for the
/// source's IPv6 address if it has one. Each line ends in `\n`.
///
/// They go after the `--add-host` lines and before the recipient's own line; two links to the
/// same source give two lines (3c-links.txt: `db d33c8f2555e3` then `db2 d33c8f2555e3 db`).
pub fn hosts_lines(link: &Link, source: &LinkSource) -> String {
    let mut names = format!("{} {}", link.alias, source.hostname);
    if link.alias != source.name {
        names.push(' ');
        names.push_str(&source.name);
    }
    let mut out = format!("{}\t{names}\n", source.ip);
    if let Some(v6) = source.ipv6 {
        out.push_str(&format!("{v6}\t{names}\n"));
    }
    out
}

/// A link that cannot be made; the text is Docker's (without the "docker: " and "." that the
/// client adds around it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// `--link ""`.
    Empty,
    /// More than one `:`.
    BadFormat {
        /// The value as given.
        value: String,
    },
    /// An alias that is not `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (cproxy's rule; Docker has none).
    InvalidAlias {
        /// The alias as given.
        alias: String,
    },
    /// The source does not exist (or the name is empty).
    NoSuchContainer {
        /// The source's name as given.
        name: String,
    },
    /// The source exists but does not run, when the recipient starts.
    NotRunning {
        /// The source's name, without a leading `/`.
        source: String,
        /// The link's full name, `/recipient/alias`.
        link: String,
    },
    /// `--link` with `--network host`, `none` or `container:NAME`.
    NetworkMode,
}

impl LinkError {
    /// True if Docker's client refuses the value itself, before asking the daemon: the CLI
    /// prints those without "Error response from daemon: ".
    pub fn is_client_side(&self) -> bool {
        matches!(
            self,
            LinkError::Empty
                | LinkError::BadFormat { .. }
                | LinkError::InvalidAlias { .. }
                | LinkError::NetworkMode
        )
    }

    /// The flag error as the client prints it for a bad value:
    /// `invalid argument "web:a:b" for "--link" flag: bad format for links: web:a:b`.
    pub fn flag_message(&self, value: &str) -> String {
        format!("invalid argument \"{value}\" for \"--link\" flag: {self}")
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Empty => f.write_str("empty string specified for links"),
            LinkError::BadFormat { value } => write!(f, "bad format for links: {value}"),
            LinkError::InvalidAlias { alias } => write!(
                f,
                "invalid alias for links: {alias:?}, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            ),
            LinkError::NoSuchContainer { name } if name.is_empty() => {
                f.write_str("could not get container for : invalid name or ID supplied: \"\"")
            }
            LinkError::NoSuchContainer { name } => {
                write!(f, "could not get container for {name}: No such container: {name}")
            }
            LinkError::NotRunning { source, link } => {
                write!(f, "Cannot link to a non running container: /{source} AS {link}")
            }
            LinkError::NetworkMode => {
                f.write_str("links are only supported for user-defined networks")
            }
        }
    }
}

impl std::error::Error for LinkError {}

/// Refuses links for a network mode that has no bridge to link on (`host`, `none`,
/// `container:NAME`), as Docker's client does; the default bridge and user-defined networks
/// pass (on the latter a link only adds a name for the embedded DNS, 3f-user-networks.txt).
pub fn check_network_mode(mode: &str, links: &[Link]) -> Result<(), LinkError> {
    let linkless = mode == "host" || mode == "none" || mode.starts_with("container:");
    if linkless && !links.is_empty() { Err(LinkError::NetworkMode) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn link(value: &str) -> Link {
        Link::parse(value).unwrap()
    }

    /// The 3c-links.txt source `db`: `-e PG_VERSION=9.3 -e FOO=bar --expose 5432
    /// --expose 5433/udp --expose 6000-6002` at 172.17.0.2, hostname d33c8f2555e3.
    fn db() -> LinkSource {
        LinkSource {
            name: "db".into(),
            hostname: "d33c8f2555e3".into(),
            ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2)),
            ipv6: None,
            exposed: vec![
                (6002, Proto::Tcp),
                (5433, Proto::Udp),
                (5432, Proto::Tcp),
                (6000, Proto::Tcp),
                (6001, Proto::Tcp),
            ],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "PG_VERSION=9.3".into(),
                "FOO=bar".into(),
            ],
        }
    }

    fn sorted(mut env: Vec<String>) -> Vec<String> {
        env.sort();
        env
    }

    /// `env | sort` in web for `--link db:db`, from 3c-links.txt, without the variables that
    /// are not the link's (HOME, HOSTNAME, PATH).
    const DB_ENV_SORTED: &str = "DB_ENV_FOO=bar
DB_ENV_PG_VERSION=9.3
DB_NAME=/web/db
DB_PORT=tcp://172.17.0.2:5432
DB_PORT_5432_TCP=tcp://172.17.0.2:5432
DB_PORT_5432_TCP_ADDR=172.17.0.2
DB_PORT_5432_TCP_PORT=5432
DB_PORT_5432_TCP_PROTO=tcp
DB_PORT_5433_UDP=udp://172.17.0.2:5433
DB_PORT_5433_UDP_ADDR=172.17.0.2
DB_PORT_5433_UDP_PORT=5433
DB_PORT_5433_UDP_PROTO=udp
DB_PORT_6000_TCP=tcp://172.17.0.2:6000
DB_PORT_6000_TCP_ADDR=172.17.0.2
DB_PORT_6000_TCP_END=tcp://172.17.0.2:6002
DB_PORT_6000_TCP_PORT=6000
DB_PORT_6000_TCP_PORT_END=6002
DB_PORT_6000_TCP_PORT_START=6000
DB_PORT_6000_TCP_PROTO=tcp
DB_PORT_6000_TCP_START=tcp://172.17.0.2:6000
DB_PORT_6001_TCP=tcp://172.17.0.2:6001
DB_PORT_6001_TCP_ADDR=172.17.0.2
DB_PORT_6001_TCP_PORT=6001
DB_PORT_6001_TCP_PROTO=tcp
DB_PORT_6002_TCP=tcp://172.17.0.2:6002
DB_PORT_6002_TCP_ADDR=172.17.0.2
DB_PORT_6002_TCP_PORT=6002
DB_PORT_6002_TCP_PROTO=tcp";

    #[test]
    fn link_env_is_exactly_dockers_for_the_tutorial_db() {
        let env = link_env("web", &link("db:db"), &db());
        assert_eq!(sorted(env).join("\n"), DB_ENV_SORTED);
    }

    #[test]
    fn a_link_without_alias_is_named_after_the_source() {
        assert_eq!(link("db"), Link { name: "db".into(), alias: "db".into() });
        assert_eq!(sorted(link_env("web", &link("db"), &db())).join("\n"), DB_ENV_SORTED);
    }

    #[test]
    fn link_env_comes_in_dockers_order_each_name_once() {
        let env = link_env("web", &link("db:db"), &db());
        let names: Vec<&str> = env.iter().map(|v| v.split_once('=').unwrap().0).collect();
        assert_eq!(
            &names[..9],
            [
                "DB_PORT",
                "DB_PORT_6000_TCP_START",
                "DB_PORT_6000_TCP_ADDR",
                "DB_PORT_6000_TCP_PROTO",
                "DB_PORT_6000_TCP_PORT_START",
                "DB_PORT_6000_TCP_END",
                "DB_PORT_6000_TCP_PORT_END",
                "DB_PORT_5432_TCP",
                "DB_PORT_5432_TCP_ADDR",
            ]
        );
        assert_eq!(names[names.len() - 3..], ["DB_NAME", "DB_ENV_PG_VERSION", "DB_ENV_FOO"]);
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn a_dashed_alias_becomes_an_underscored_prefix() {
        let env = sorted(link_env("web", &link("db:my-db"), &db()));
        assert_eq!(env[0], "MY_DB_ENV_FOO=bar");
        assert!(env.contains(&"MY_DB_NAME=/web/my-db".to_string()));
        assert!(env.contains(&"MY_DB_PORT_6000_TCP_END=tcp://172.17.0.2:6002".to_string()));
        assert_eq!(env.len(), DB_ENV_SORTED.lines().count());
    }

    #[test]
    fn a_dot_in_the_alias_stays_a_dot() {
        // 3c-links.txt: `--link my-cache.1` in a container named awesome_jepsen.
        let cache = LinkSource {
            name: "my-cache.1".into(),
            hostname: "6698bd529759".into(),
            ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 3)),
            ipv6: None,
            exposed: vec![(11211, Proto::Tcp)],
            env: vec!["X=1".into()],
        };
        let env = link_env("awesome_jepsen", &link("my-cache.1"), &cache);
        assert_eq!(
            sorted(env).join("\n"),
            "MY_CACHE.1_ENV_X=1
MY_CACHE.1_NAME=/awesome_jepsen/my-cache.1
MY_CACHE.1_PORT=tcp://172.17.0.3:11211
MY_CACHE.1_PORT_11211_TCP=tcp://172.17.0.3:11211
MY_CACHE.1_PORT_11211_TCP_ADDR=172.17.0.3
MY_CACHE.1_PORT_11211_TCP_PORT=11211
MY_CACHE.1_PORT_11211_TCP_PROTO=tcp"
        );
        assert_eq!(
            hosts_lines(&link("my-cache.1"), &cache),
            "172.17.0.3\tmy-cache.1 6698bd529759\n"
        );
    }

    #[test]
    fn a_source_without_ports_or_env_gives_only_its_name() {
        // 3c-links.txt: `--link bare:b` in silly_solomon.
        let bare = LinkSource {
            name: "bare".into(),
            hostname: "0ee0de7360b7".into(),
            ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 5)),
            ipv6: None,
            exposed: vec![],
            env: vec![],
        };
        assert_eq!(link_env("silly_solomon", &link("bare:b"), &bare), ["B_NAME=/silly_solomon/b"]);
    }

    #[test]
    fn published_ports_count_as_exposed_ones() {
        // 3c-links.txt: pubdb with `-p 127.0.0.1:15432:5432 -p 127.0.0.1::5433/udp`.
        let pubdb = LinkSource {
            name: "pubdb".into(),
            hostname: "8e91494dfaf4".into(),
            ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 4)),
            ipv6: None,
            exposed: vec![(5433, Proto::Udp), (5432, Proto::Tcp)],
            env: vec![],
        };
        assert_eq!(
            sorted(link_env("pedantic_noether", &link("pubdb:pdb"), &pubdb)).join("\n"),
            "PDB_NAME=/pedantic_noether/pdb
PDB_PORT=tcp://172.17.0.4:5432
PDB_PORT_5432_TCP=tcp://172.17.0.4:5432
PDB_PORT_5432_TCP_ADDR=172.17.0.4
PDB_PORT_5432_TCP_PORT=5432
PDB_PORT_5432_TCP_PROTO=tcp
PDB_PORT_5433_UDP=udp://172.17.0.4:5433
PDB_PORT_5433_UDP_ADDR=172.17.0.4
PDB_PORT_5433_UDP_PORT=5433
PDB_PORT_5433_UDP_PROTO=udp"
        );
    }

    #[test]
    fn the_default_port_is_the_lowest_with_tcp_first_on_a_tie() {
        let mut src = db();
        src.exposed = vec![(8080, Proto::Tcp), (53, Proto::Udp), (53, Proto::Tcp)];
        assert_eq!(link_env("web", &link("db"), &src)[0], "DB_PORT=tcp://172.17.0.2:53");
        src.exposed = vec![(8080, Proto::Tcp), (53, Proto::Udp)];
        assert_eq!(link_env("web", &link("db"), &src)[0], "DB_PORT=udp://172.17.0.2:53");
    }

    #[test]
    fn two_consecutive_ports_get_no_range_group() {
        let mut src = db();
        src.exposed = vec![(7000, Proto::Tcp), (7001, Proto::Tcp)];
        let env = link_env("web", &link("db"), &src);
        assert!(!env.iter().any(|v| v.contains("_START") || v.contains("_END")), "{env:?}");
    }

    #[test]
    fn a_run_ignores_the_protocol_as_dockers_does() {
        let mut src = db();
        src.exposed = vec![(6000, Proto::Tcp), (6001, Proto::Udp), (6002, Proto::Udp)];
        let env = link_env("web", &link("db"), &src);
        assert!(env.contains(&"DB_PORT_6000_TCP_START=tcp://172.17.0.2:6000".to_string()));
        assert!(env.contains(&"DB_PORT_6000_UDP_END=udp://172.17.0.2:6002".to_string()));
        assert!(env.contains(&"DB_PORT_6000_UDP_PORT_END=6002".to_string()));
    }

    #[test]
    fn home_path_and_bare_names_are_left_out_of_the_source_env() {
        let mut src = db();
        src.exposed.clear();
        src.env = vec!["HOME=/x".into(), "PATH=/bin".into(), "LONELY".into(), "A=b=c".into()];
        assert_eq!(link_env("web", &link("db"), &src), ["DB_NAME=/web/db", "DB_ENV_A=b=c"]);
    }

    #[test]
    fn hosts_lines_are_dockers() {
        // 3c-links.txt, one line per link, the name folded when the alias is the name.
        assert_eq!(hosts_lines(&link("db:db"), &db()), "172.17.0.2\tdb d33c8f2555e3\n");
        assert_eq!(hosts_lines(&link("db"), &db()), "172.17.0.2\tdb d33c8f2555e3\n");
        assert_eq!(hosts_lines(&link("db:my-db"), &db()), "172.17.0.2\tmy-db d33c8f2555e3 db\n");
        assert_eq!(hosts_lines(&link("db:db2"), &db()), "172.17.0.2\tdb2 d33c8f2555e3 db\n");
        let mut v6 = db();
        v6.ipv6 = Some("fd00::2".parse().unwrap());
        assert_eq!(
            hosts_lines(&link("db:x"), &v6),
            "172.17.0.2\tx d33c8f2555e3 db\nfd00::2\tx d33c8f2555e3 db\n"
        );
    }

    #[test]
    fn host_config_links_print_as_go_does() {
        // 3c-links.txt: web with `--link db:db --link cache:cache`; db with none.
        let entries: Vec<String> =
            ["db:db", "cache:cache"].iter().map(|v| link(v).host_config_entry("web")).collect();
        assert_eq!(format_host_config_links(&entries), "[/db:/web/db /cache:/web/cache]");
        assert_eq!(format_host_config_links(&[]), "[]");
    }

    #[test]
    fn the_stored_form_parses_back_to_the_link() {
        assert_eq!(link("/db:/web/db"), link("db:db"));
        assert_eq!(link("/db:/web/my-db"), link("db:my-db"));
        assert_eq!(link(&link("db:x").to_string()), link("db:x"));
    }

    #[test]
    fn bad_link_values_fail_in_dockers_words() {
        // 3b-errors.txt.
        let err = Link::parse("web:a:b").unwrap_err();
        assert_eq!(
            err.flag_message("web:a:b"),
            "invalid argument \"web:a:b\" for \"--link\" flag: bad format for links: web:a:b"
        );
        assert!(err.is_client_side());
        assert_eq!(Link::parse("").unwrap_err().to_string(), "empty string specified for links");
        // `--link :db` parses; the daemon then finds no container named "".
        assert_eq!(link(":db"), Link { name: String::new(), alias: "db".into() });
        assert_eq!(
            LinkError::NoSuchContainer { name: String::new() }.to_string(),
            "could not get container for : invalid name or ID supplied: \"\""
        );
        assert_eq!(
            LinkError::NoSuchContainer { name: "nosuchdb".into() }.to_string(),
            "could not get container for nosuchdb: No such container: nosuchdb"
        );
        let not_running = LinkError::NotRunning {
            source: "stoppeddb".into(),
            link: link("stoppeddb:db").full_name("bold_shamir"),
        };
        assert_eq!(
            not_running.to_string(),
            "Cannot link to a non running container: /stoppeddb AS /bold_shamir/db"
        );
        assert!(!not_running.is_client_side());
    }

    #[test]
    fn an_alias_that_could_write_into_hosts_or_env_is_refused() {
        // Found by the `link` fuzz target: a newline in the alias added a line to /etc/hosts.
        for value in ["db:a\nb", "db:a b", "db:a=b", "db:", "db:-x", "a\tb", "db:a/b"] {
            let err = Link::parse(value).unwrap_err();
            assert!(matches!(err, LinkError::InvalidAlias { .. }), "{value:?}: {err}");
            assert!(err.is_client_side());
        }
        assert_eq!(
            Link::parse("db:a b").unwrap_err().to_string(),
            "invalid alias for links: \"a b\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
        assert_eq!(link("db:b").alias, "b");
        assert_eq!(link("6698bd529759").alias, "6698bd529759");
    }

    #[test]
    fn links_need_a_bridge() {
        // 3b-errors.txt and 3d-hosts-netmodes.txt.
        let links = [link("web:db")];
        for mode in ["none", "host", "container:db"] {
            assert_eq!(
                check_network_mode(mode, &links).unwrap_err().to_string(),
                "links are only supported for user-defined networks"
            );
            assert_eq!(check_network_mode(mode, &[]), Ok(()));
        }
        for mode in ["", "default", "bridge", "my-bridge"] {
            assert_eq!(check_network_mode(mode, &links), Ok(()));
        }
    }
}
