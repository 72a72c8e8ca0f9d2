//! Fuzzes `cproxy::supervisor::rules::detach`: `--detach-keys` values and the watch on a
//! terminal's input. The input is split at its first NUL: the keys, then the typed bytes, fed
//! in reads of 1 to 3 bytes. None may panic; keys that read are one byte per comma-separated
//! key, a refusal names the key it could not read; what the watch sends, with the keys if it
//! detached, is exactly what was typed up to there, in order (nothing lost, nothing added).

#![no_main]

use cproxy::supervisor::rules::detach::{self, Input, Watch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (spec, typed) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    let keys = match detach::parse(spec) {
        Ok(keys) => {
            let count = if spec.is_empty() { 2 } else { spec.split(',').count() };
            assert_eq!(keys.len(), count, "{spec:?}");
            keys
        }
        Err(e) => {
            assert!(e.starts_with("Unknown character: '"), "{e}");
            return;
        }
    };
    let mut watch = Watch::new(keys.clone());
    let mut sent = Vec::new();
    let mut at = 0;
    let mut step = 1;
    while at < typed.len() {
        let end = (at + step).min(typed.len());
        step = step % 3 + 1;
        match watch.feed(&typed[at..end]) {
            Input::Send(bytes) => sent.extend_from_slice(&bytes),
            Input::Detach(bytes) => {
                sent.extend_from_slice(&bytes);
                sent.extend_from_slice(&keys);
                // Whatever followed the keys in that read is not sent.
                assert!(typed[..end].starts_with(&sent), "{sent:?} of {typed:?}");
                assert!(sent.ends_with(&keys));
                return;
            }
        }
        // What is held back can only be a beginning of the keys.
        assert!(typed[..end].starts_with(&sent), "{sent:?} of {typed:?}");
        at = end;
    }
});
