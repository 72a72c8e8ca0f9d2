//! Fuzzes the mount parsers (`cproxy::supervisor::rules::mounts`): a `-v` value, a `--mount`
//! value, a `--tmpfs` value, a `--volumes-from` value, a volume's name, a size. None panics;
//! each refusal is a sentence; what `--mount` reads is checked as the daemon checks it, and a
//! destination that is accepted is absolute, clean and not `/`.

#![no_main]

use cproxy::supervisor::rules::mounts;
use libfuzzer_sys::fuzz_target;

fn accepted_destination(dst: &str) {
    assert!(dst.starts_with('/') && dst != "/", "{dst:?}");
    assert!(!dst.split('/').any(|p| p == ".." || p == "."), "{dst:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mounts::parse_bind(text) {
        Ok(spec) => accepted_destination(&spec.destination),
        Err(e) => assert!(!e.is_empty()),
    }
    match mounts::parse_mount_flag(text) {
        Ok(m) => match mounts::from_api(&m) {
            Ok(spec) => accepted_destination(&spec.destination),
            Err(e) => assert!(!e.is_empty()),
        },
        Err(e) => assert!(!e.is_empty()),
    }
    let (dst, opts) = text.split_once(':').unwrap_or((text, ""));
    if mounts::tmpfs(dst, opts).is_ok() {
        let _ = mounts::tmpfs_flags(opts);
    }
    let _ = mounts::parse_volumes_from(text);
    if mounts::check_volume_name(text).is_ok() {
        assert!(!text.contains('/') && text != "." && text != "..");
    }
    let _ = mounts::ram_in_bytes(text);
});
