//! Fuzzes `cproxy::settings::parse_bytes`: any text is read without a panic, refused with a line
//! and column that are in the file and a reason on one line, or accepted; what it accepts
//! resolves for any binding and applies to the command line's tuning without a panic.

#![no_main]

use clap::Parser;
use cproxy::cli::Cli;
use cproxy::proxy::Proto;
use cproxy::settings::{Target, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_bytes(data) {
        Ok(settings) => {
            let tuning = Cli::try_parse_from(["cproxy"]).expect("no flags").docker_proxy.tuning;
            for (proto, port) in [(Proto::Tcp, 80), (Proto::Udp, 53), (Proto::Tcp, -1)] {
                let target = Target {
                    proto,
                    host_ip: "0.0.0.0".parse().unwrap(),
                    host_port: Some(port),
                    container_ip: "172.17.0.2".parse().unwrap(),
                    container_port: Some(port),
                };
                let mut tuning = tuning.clone();
                settings.resolve(&target).apply(proto, &mut tuning, &|_| false);
                let config = tuning.config();
                assert!(proto == Proto::Tcp || config.proxy_protocol.is_none());
                let transparent = settings.resolve(&target).source_ip_transparent;
                assert_eq!(config.transparent, transparent.unwrap_or(false));
                assert!(!config.connect_timeout.is_zero() && !config.udp_idle_timeout.is_zero());
            }
        }
        Err(e) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!((1..=lines).contains(&e.line) && e.column >= 1, "{e:?}");
            assert!(!e.reason.is_empty() && !e.reason.contains('\n'), "{e:?}");
        }
    }
});
