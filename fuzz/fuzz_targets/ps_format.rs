//! Fuzzes `cproxy::supervisor::rules::ps_format`: the client's check of a `--format` template and
//! its output for a few containers, `table` (header row, tabwriter columns) included. None
//! may panic; a template the check accepts prints one line per container (and a header for
//! `table`) when neither it nor the fields hold a line break.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use cproxy::supervisor::api::types::ContainerSummary;
use cproxy::supervisor::rules::format::tabwrite;
use cproxy::supervisor::rules::ps_format::{check, effective_format, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let full: ContainerSummary = serde_json::from_str(
        r#"{"Id": "f5fb10552c73ae39a727e3e275a3b9648f9988ebf7729f85729b36794d7eef14",
            "Names": ["/db", "/web/db"], "Image": "sleep", "Command": "sleep 3600",
            "Created": 1795000000, "State": "running", "Status": "Up 5 seconds",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 5000, "PublicPort": 32768, "Type": "tcp"}],
            "Labels": {}, "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/mnt"}],
            "NetworkSettings": {"Networks": {"bridge": {}}}}"#,
    )
    .expect("a summary");
    let bare = ContainerSummary { id: "abc".into(), ..ContainerSummary::default() };
    let containers = [full, bare];
    let now = UNIX_EPOCH + Duration::from_secs(1_795_000_007);
    let checked = check(text);
    let format = effective_format(Some(text), data.first().is_some_and(|b| b & 1 == 1));
    let out = write(&format, &containers, data.len().is_multiple_of(2), now);
    let plain =
        !text.contains('\n') && !text.contains("\\n") && !text.contains("{{json") && text != "raw";
    if checked.is_ok() && plain {
        let rows = containers.len() + usize::from(format.starts_with("table"));
        assert_eq!(out.matches('\n').count(), rows, "{text:?} gave {out:?}");
    }
    // The tabwriter keeps every line and every cell's text.
    let tabbed = tabwrite(text, 10, 3);
    assert_eq!(tabbed.matches('\n').count(), text.matches('\n').count());
    assert_eq!(tabbed.replace(' ', "").len(), text.replace([' ', '\t'], "").len());
});
