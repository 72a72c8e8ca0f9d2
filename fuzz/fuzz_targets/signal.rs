//! Fuzzes `cproxy::supervisor::rules::signal`: `kill -s` values. None may panic; a parsed signal is a
//! positive number, and a refusal is Docker's `Invalid signal: …` naming the input.

#![no_main]

use cproxy::supervisor::rules::signal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match signal::parse(text) {
        Ok(n) => assert!(n > 0, "{text:?} -> {n}"),
        Err(e) => assert_eq!(e, format!("Invalid signal: {text}")),
    }
});
