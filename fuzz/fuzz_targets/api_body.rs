//! Fuzzes the API's request bodies (`cproxy::supervisor::api::types`) as the daemon reads them:
//! any bytes are read without a panic, and a create body that reads is checked by the engine's
//! `plan` without a panic, each refusal a sentence (never empty). What reads serializes back to
//! a body that reads to the same value. The exec bodies and `/events`' times too.

#![no_main]

use cproxy::supervisor::api::types::{
    ContainerCreateRequest, ExecConfig, ExecStartConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use cproxy::supervisor::engine::create::{Known, plan};
use cproxy::supervisor::engine::store::Time;
use libfuzzer_sys::fuzz_target;

fn round_trips<T>(data: &[u8]) -> Option<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(data).ok()?;
    let again: T = serde_json::from_slice(&serde_json::to_vec(&value).unwrap()).unwrap();
    assert_eq!(again, value);
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = round_trips::<ContainerCreateRequest>(data) {
        let known = Known { containers: &[], networks: &[], image: None };
        match plan(Some("fuzzed"), req, &known, "a".repeat(64), Time::ZERO) {
            Ok(record) => assert_eq!(record.name, "fuzzed"),
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    round_trips::<NetworkCreateRequest>(data);
    round_trips::<NetworkConnectRequest>(data);
    round_trips::<NetworkDisconnectRequest>(data);
    round_trips::<ExecConfig>(data);
    round_trips::<ExecStartConfig>(data);
    // `/events`' and `logs`' times (the API's and the CLI's forms): a number or a refusal,
    // never a panic.
    if let Ok(text) = std::str::from_utf8(data) {
        use cproxy::supervisor::rules::timestamps;
        let _ = timestamps::parse_api(text);
        if let Ok(api) = timestamps::from_cli(text, 1_765_000_000_000_000_000, 3600) {
            assert!(timestamps::parse_api(&api).is_ok(), "{text:?} gave {api:?}");
        }
    }
});
