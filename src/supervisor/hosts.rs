//! A container's own `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, rendered as Docker
//! lays them out (pure), and written under the container's directory atomically before the
//! container's init bind-mounts them.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use super::state::write_atomic;

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

/// Writes `hosts`, `hostname` and `resolv.conf` into `dir`.
pub fn write_files(dir: &Path, ip: Option<Ipv4Addr>, hostname: &str) -> io::Result<()> {
    write_atomic(&dir.join("hosts"), render_hosts(ip, hostname).as_bytes())?;
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(&dir.join("resolv.conf"), render_resolv_conf(&host).as_bytes())
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
    fn loopback_nameservers_are_dropped() {
        let conf = "nameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch lan\n";
        assert_eq!(render_resolv_conf(conf), "nameserver 10.255.255.53\nsearch lan\n");
    }
}
