//! A container's own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, rendered as Docker
//! lays them out (pure), and written under the container's directory atomically before the
//! container's init bind-mounts them.

use std::net::Ipv4Addr;

/// Docker's fixed lines: localhost, then the IPv6 names.
const BASE_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// The hosts file of a container at `ip` (none for `--network none`) named `hostname`: a
/// dotted hostname is listed with its first label too, as Docker does.
pub fn render_hosts(ip: Option<Ipv4Addr>, hostname: &str) -> String {
    let mut s = BASE_HOSTS.to_string();
    if let Some(ip) = ip {
        match hostname.split_once('.') {
            Some((short, _)) => s.push_str(&format!("{ip}\t{hostname} {short}\n")),
            None => s.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    s
}

/// The resolv.conf a container gets: the daemon's own, as Docker copies the host's (loopback
/// nameservers, which cannot work from another network namespace, left out).
pub fn render_resolv_conf(host: &str) -> String {
    let mut out = String::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver")
            && words.next().is_some_and(|ip| ip.starts_with("127.") || ip == "::1")
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The hosts file of a container on user-defined networks: its hostname on each of its
/// addresses, in the order of its networks (3f-user-networks.txt: no link lines there).
pub fn render_hosts_multi(ips: &[Ipv4Addr], hostname: &str) -> String {
    let mut s = BASE_HOSTS.to_string();
    for ip in ips {
        let own = render_hosts(Some(*ip), hostname);
        s.push_str(own.strip_prefix(BASE_HOSTS).unwrap_or(""));
    }
    s
}

/// The resolv.conf of a container on a user-defined network, as Docker 20.10 builds it
/// (libnetwork `sandbox_dns_unix.go`, `resolvconf.Build`): the host's `search` line, then
/// `nameserver 127.0.0.11` (the embedded DNS), then the host's options and `ndots:0` unless
/// the host sets ndots (3f-user-networks.txt).
pub fn render_internal_resolv_conf(host: &str) -> String {
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    if !options.iter().any(|o| o.starts_with("ndots:")) {
        options.push("ndots:0".into());
    }
    let mut out = String::new();
    if !search.is_empty() && search.join(" ").trim() != "." {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    out.push_str("nameserver 127.0.0.11\n");
    out.push_str(&format!("options {}\n", options.join(" ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_is_laid_out_as_docker() {
        let ip = Some(Ipv4Addr::new(172, 17, 0, 3));
        assert!(
            render_hosts(ip, "myhost").ends_with("ff02::2\tip6-allrouters\n172.17.0.3\tmyhost\n")
        );
        assert!(
            render_hosts(ip, "myhost.example.com")
                .ends_with("172.17.0.3\tmyhost.example.com myhost\n")
        );
        assert!(render_hosts(None, "x").ends_with("ip6-allrouters\n"));
    }

    #[test]
    fn user_network_files_are_dockers() {
        let ips = [Ipv4Addr::new(172, 17, 0, 2), Ipv4Addr::new(172, 18, 0, 4)];
        assert!(render_hosts_multi(&ips, "a1494cc901bf").ends_with(
            "ff02::2\tip6-allrouters\n172.17.0.2\ta1494cc901bf\n172.18.0.4\ta1494cc901bf\n"
        ));
        assert_eq!(
            render_internal_resolv_conf("nameserver 10.255.255.53\n"),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
        assert_eq!(
            render_internal_resolv_conf("search lan\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"),
            "search lan\nnameserver 127.0.0.11\noptions ndots:2 edns0\n"
        );
    }

    #[test]
    fn loopback_nameservers_are_dropped() {
        let conf = "nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch lan\n";
        assert_eq!(render_resolv_conf(conf), "nameserver 10.255.255.53\nsearch lan\n");
    }
}
