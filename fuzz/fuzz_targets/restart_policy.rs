//! Fuzzes `cproxy::supervisor::rules::restart`: `--restart` values. None may panic; whatever parses
//! displays as text that parses back to the same policy, and survives the API's JSON form.

#![no_main]

use cproxy::supervisor::rules::restart::RestartPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RestartPolicy::parse(text) {
        Ok(policy) => {
            assert_eq!(RestartPolicy::parse(&policy.to_string()), Ok(policy), "{text:?}");
            let json = serde_json::to_string(&policy).expect("a policy serializes");
            let back: RestartPolicy = serde_json::from_str(&json).expect("and reads back");
            assert_eq!(back, policy);
        }
        Err(e) => {
            let _ = (e.to_string(), e.is_client_side());
        }
    }
});
