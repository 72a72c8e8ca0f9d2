//! Fuzzes `cproxy::supervisor::rules::links`: `--link` values, and the environment and hosts lines
//! made from whatever parses. None may panic; a parsed `NAME:ALIAS` displays as text that
//! parses back to the same link, and every variable is `NAME=VALUE` with its name once.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use cproxy::proxy::Proto;
use cproxy::supervisor::rules::links::{Link, LinkSource, hosts_lines, link_env};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let link = match Link::parse(text) {
        Ok(link) => link,
        Err(e) => {
            let _ = e.flag_message(text);
            return;
        }
    };
    if !link.name.starts_with('/') {
        assert_eq!(Link::parse(&link.to_string()).as_ref(), Ok(&link), "{text:?}");
    }
    // The bytes also pick the source's exposed ports, so runs and ranges get exercised.
    let exposed = data
        .chunks(3)
        .map(|c| {
            let port = u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            let proto = if c.get(2).is_some_and(|b| b & 1 == 1) { Proto::Udp } else { Proto::Tcp };
            (port, proto)
        })
        .collect();
    let source = LinkSource {
        // The source is a container the daemon found by that name: its name is a valid one.
        name: "db".into(),
        hostname: "d33c8f2555e3".into(),
        ip: IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2)),
        ipv6: Some("fd00::2".parse().unwrap()),
        exposed,
        env: text.split(',').map(str::to_string).collect(),
    };
    let env = link_env("web", &link, &source);
    let mut names: Vec<&str> =
        env.iter().map(|v| v.split_once('=').expect("NAME=VALUE").0).collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a name twice in {env:?}");
    let hosts = hosts_lines(&link, &source);
    assert_eq!(hosts.lines().count(), 2);
});
