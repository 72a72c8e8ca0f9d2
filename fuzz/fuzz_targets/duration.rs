//! Fuzzes `cproxy::duration::parse`: it may refuse anything but never panic, and what it
//! accepts stays within Go's limit (an i64 of nanoseconds).

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match cproxy::duration::parse(text) {
        Ok(d) => assert!(d <= Duration::from_nanos(i64::MAX as u64), "{text:?} gave {d:?}"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
