//! Publishing a container's ports: every `-p` spec (and `-P` with `--expose`) bound through the
//! port allocator and handed to the daemon's forwarder, all or nothing, with Docker's words
//! when a host port cannot be had.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ports::AllocError;
use crate::proxy::{BindingId, BindingOptions, Proto, ProxyError};
use crate::spec::{PortSpec, pair_halves, parse_expose};
use crate::supervisor::engine::store::{Published, Record};
use crate::supervisor::engine::{Daemon, Error};
use crate::supervisor::rules::names;

impl Daemon {
    /// Binds every published port of `record` to `ip`, all or nothing: a failure returns once
    /// the ports bound before it are free again.
    pub(super) async fn publish(
        &self,
        record: &Record,
        ip: Ipv4Addr,
    ) -> Result<Vec<(BindingId, Published)>, Error> {
        let mut specs: Vec<PortSpec> =
            record.publish.iter().filter_map(|s| PortSpec::parse(s).ok()).collect();
        if record.publish_all {
            specs.extend(record.expose.iter().filter_map(|s| parse_expose(s).ok()));
        }
        let mut done: Vec<(BindingId, Published)> = Vec::new();
        let result = self.publish_into(record, ip, &specs, &mut done);
        if let Err(e) = result {
            self.proxy.remove_all(done.into_iter().map(|(id, _)| id)).await;
            return Err(e);
        }
        Ok(done)
    }

    /// Binds `specs` for `record`, adding each binding to `done` as it is made.
    fn publish_into(
        &self,
        record: &Record,
        ip: Ipv4Addr,
        specs: &[PortSpec],
        done: &mut Vec<(BindingId, Published)>,
    ) -> Result<(), Error> {
        for (spec, protos) in pair_halves(specs) {
            for mapping in spec.mappings() {
                let to = SocketAddr::new(IpAddr::V4(ip), mapping.container_port);
                let sockets = match self.allocator.bind_mapping_for(&mapping, &protos) {
                    Ok(s) => s,
                    Err(e) => return Err(self.port_error(record, e)),
                };
                for socket in sockets {
                    let local = socket.local_addr();
                    let proto = socket.proto();
                    let options = BindingOptions {
                        proxy_protocol: (proto == Proto::Tcp).then_some(record.proxy_protocol),
                        transparent: Some(record.source_ip_transparent),
                    };
                    match self.proxy.add_socket_with(proto, socket.into_fd(), to, options) {
                        Ok(info) => done.push((
                            info.id,
                            Published {
                                container_port: mapping.container_port,
                                proto: info.binding.proto.to_string(),
                                host_ip: local.ip().to_string(),
                                host_port: local.port(),
                            },
                        )),
                        Err(e) => return Err(Error::internal(e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// [`port_error`] with what this daemon's containers publish now.
    fn port_error(&self, record: &Record, e: AllocError) -> Error {
        let held: Vec<Published> = self.all().iter().flat_map(|c| c.record().ports).collect();
        let endpoint = names::new_id().unwrap_or_default();
        port_error(&record.name, &endpoint, &held, e)
    }
}

/// Docker's words for a host port that container `name` cannot have: "port is already
/// allocated" when a container of this daemon holds it (among `held`), the userland proxy's
/// bind error when something else does.
pub fn port_error(name: &str, endpoint: &str, held: &[Published], e: AllocError) -> Error {
    let detail = match &e {
        AllocError::Bind(
            ProxyError::AddrInUse { proto, addr } | ProxyError::PortAllocated { proto, addr },
        ) => {
            let ours = held.iter().any(|p| {
                p.host_port == addr.port()
                    && p.proto == proto.to_string()
                    && p.host_ip == addr.ip().to_string()
            });
            if ours {
                ProxyError::PortAllocated { proto: *proto, addr: *addr }.to_string()
            } else {
                let in_use = ProxyError::AddrInUse { proto: *proto, addr: *addr };
                format!("Error starting userland proxy: {in_use}")
            }
        }
        _ => e.to_string(),
    };
    Error::internal(format!(
        "driver failed programming external connectivity on endpoint {name} ({endpoint}): {detail}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_a_container_holds_is_allocated_and_one_held_elsewhere_is_a_bind_error() {
        let addr: SocketAddr = "127.0.0.1:5100".parse().unwrap();
        let held = [Published {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: "127.0.0.1".into(),
            host_port: 5100,
        }];
        let taken = || AllocError::Bind(ProxyError::AddrInUse { proto: Proto::Tcp, addr });
        assert_eq!(
            port_error("web", "e1", &held, taken()).message,
            "driver failed programming external connectivity on endpoint web (e1): Bind for 127.0.0.1:5100 failed: port is already allocated"
        );
        assert_eq!(
            port_error("web", "e1", &[], taken()).message,
            "driver failed programming external connectivity on endpoint web (e1): Error starting userland proxy: listen tcp4 127.0.0.1:5100: bind: address already in use"
        );
        let udp = AllocError::Bind(ProxyError::AddrInUse { proto: Proto::Udp, addr });
        assert!(port_error("web", "e1", &held, udp).message.contains("userland proxy"));
    }
}
