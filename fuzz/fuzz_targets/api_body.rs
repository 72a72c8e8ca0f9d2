//! Fuzzes the API's request bodies (`cproxy::supervisor::api::types`) as the daemon reads them
//! (`go_json::decode`, refusals in Go's words): any bytes are read without a panic, and a create
//! body that reads is checked by the engine's `plan` without a panic, each refusal a sentence
//! (never empty). What reads serializes back to a body that reads to the same value. A create body is planned twice: alone, and beside a
//! container `web` and a user-defined network `front` (what compose's bodies name: links
//! given for the network, aliases, labels). The exec bodies, `/events`' times and the
//! `Content-Type` check too.

#![no_main]

use cproxy::supervisor::api::types::{
    ContainerCreateRequest, ExecConfig, ExecStartConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use cproxy::supervisor::engine::create::{Known, plan};
use cproxy::supervisor::engine::ipam::Subnet;
use cproxy::supervisor::engine::store::{Record, Time};
use cproxy::supervisor::http::go_json::{self, Reader};
use cproxy::supervisor::rules::networks::Network;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fn round_trips<T>(data: &[u8]) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    // As the daemon reads it: Go's decoder's first value, or a refusal in Go's words.
    let read = go_json::decode::<T>(data, "types.Fuzzed", Reader::ReadJson);
    if let Err(refused) = &read {
        assert!(!refused.message.is_empty());
    }
    let value: T = serde_json::from_slice(data).ok()?;
    let canonical = serde_json::to_vec(&value).unwrap();
    // serde would also take an array as a struct's fields in order; Go, and so the daemon, not.
    // The daemon matches keys in any case (as Go does) where serde matches them exactly, so
    // the two readings agree on a body written as it serializes (each key in its own case).
    if data.trim_ascii_start().starts_with(b"{") {
        let read = go_json::decode::<T>(&canonical, "types.Fuzzed", Reader::ReadJson);
        assert_eq!(read.as_ref().ok(), Some(&value), "a body in its own case reads the same");
    }
    let again: T = serde_json::from_slice(&canonical).unwrap();
    assert_eq!(again, value);
    Some(value)
}

/// A container `web` on the default bridge and a network `front` for creates to name.
fn neighbours() -> (Record, Network) {
    let front = Network {
        id: "f".repeat(64),
        name: "front".into(),
        subnet: Subnet { network: Ipv4Addr::new(10, 9, 0, 0), prefix: 16 },
        gateway: Ipv4Addr::new(10, 9, 0, 1),
        user_subnet: false,
        created: String::new(),
        labels: Default::default(),
        attachable: false,
        options: Default::default(),
    };
    let mut req = ContainerCreateRequest::default();
    req.config.cmd = vec!["httpd".into()];
    let none = Known { containers: &[], networks: &[], image: None };
    let web = plan(Some("web"), req, &none, "b".repeat(64), Time::ZERO).unwrap();
    (web, front)
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = round_trips::<ContainerCreateRequest>(data) {
        let known = Known { containers: &[], networks: &[], image: None };
        match plan(Some("fuzzed"), req.clone(), &known, "a".repeat(64), Time::ZERO) {
            Ok(record) => assert_eq!(record.name, "fuzzed"),
            Err(e) => assert!(!e.message.is_empty()),
        }
        let (web, front) = neighbours();
        let known = Known {
            containers: std::slice::from_ref(&web),
            networks: std::slice::from_ref(&front),
            image: None,
        };
        match plan(Some("fuzzed"), req, &known, "c".repeat(64), Time::ZERO) {
            // Links on a user-defined network are the endpoint's, never `HostConfig`'s.
            Ok(record) => assert!(record.networks.is_empty() || record.links.is_empty()),
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    round_trips::<NetworkCreateRequest>(data);
    round_trips::<NetworkConnectRequest>(data);
    round_trips::<NetworkDisconnectRequest>(data);
    round_trips::<ExecConfig>(data);
    round_trips::<ExecStartConfig>(data);
    // `/events`' and `logs`' times (the API's and the CLI's forms): a number or a refusal,
    // never a panic. A `Content-Type` taken as JSON names `application/json`.
    if let Ok(text) = std::str::from_utf8(data) {
        if go_json::is_json_media_type(text) {
            let media = text.split(';').next().unwrap_or_default();
            assert!(media.trim().eq_ignore_ascii_case("application/json"), "{text:?}");
        }
        use cproxy::supervisor::rules::timestamps;
        let _ = timestamps::parse_api(text);
        if let Ok(api) = timestamps::from_cli(text, 1_765_000_000_000_000_000, 3600) {
            assert!(timestamps::parse_api(&api).is_ok(), "{text:?} gave {api:?}");
        }
    }
});
