//! Fuzzes `cproxy::supervisor::rules::filters`: `--filter` flags as the client reads them, the
//! `filters` query as the daemon reads it, and the daemon's selection over a fixed set of
//! containers. None may panic; what the client sends reads back the same; a selection lists
//! each container at most once, newest first, and never more than a limit.

#![no_main]

use std::collections::BTreeSet;

use cproxy::supervisor::rules::filters::{Candidate, Filters, ListOptions, select};
use libfuzzer_sys::fuzz_target;

/// Running, exited, restarting and never started, on the default bridge, one port each.
fn candidates() -> Vec<Candidate> {
    let states = [
        ("web", "running", 0),
        ("db", "exited", 3),
        ("flappy", "restarting", 1),
        ("fresh", "created", 0),
    ];
    states
        .iter()
        .zip(["aaa111", "aab222", "bbb333", "ccc444"])
        .map(|(&(name, state, exit_code), id)| Candidate {
            id: id.to_string(),
            names: vec![name.to_string(), format!("web/{name}")],
            state: state.to_string(),
            exit_code,
            started: state != "created",
            image: "sleep".to_string(),
            networks: vec![("bridge".to_string(), "b0a2cf04aa74".to_string())],
            port_bindings: BTreeSet::from(["80/tcp".to_string()]),
            exposed: BTreeSet::from(["80/tcp".to_string(), "53/udp".to_string()]),
            mounts: vec![("/srv".to_string(), "/mnt".to_string())],
            labels: [("com.docker.compose.project", "p"), ("tier", name)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cs = candidates();
    // The client's side: each line a --filter value.
    let mut flags = Filters::default();
    for line in text.lines() {
        let _ = flags.add_flag(line);
    }
    assert_eq!(Filters::from_json(&flags.to_json()).as_ref(), Ok(&flags), "{text:?}");
    // The daemon's side: the text as the query's JSON, or else the flags.
    let filters = Filters::from_json(text).unwrap_or(flags);
    let limit = usize::from(data.first().copied().unwrap_or(0) % 3);
    for all in [false, true] {
        let opts = ListOptions { all, limit, filters: filters.clone(), size: false };
        if let Ok(chosen) = select(&opts, &cs) {
            assert!(chosen.windows(2).all(|w| w[0] < w[1]), "{chosen:?}");
            assert!(chosen.iter().all(|i| *i < cs.len()));
            assert!(limit == 0 || chosen.len() <= limit);
        }
    }
});
