//! Fuzzes `POST /commit`'s request as `cproxy::supervisor::image::commit` reads it: the query's
//! fields, the changes and the body. The input is split on NUL bytes: repo, tag, pause,
//! Content-Type (checked first, as the daemon does), a change per line, and the rest as the body. None may panic; a request read
//! gives a config (the changes applied and merged over a container's) or Docker's refusal, and
//! a reference, when it reads one, is a tagged name that reads back the same.

#![no_main]

use cproxy::supervisor::api::types::ImageRunConfig;
use cproxy::supervisor::image::commit::{CommitQuery, CommitRequest};
use cproxy::supervisor::image::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(6, |b| *b == 0);
    let mut text = || parts.next().and_then(|p| std::str::from_utf8(p).ok()).unwrap_or_default();
    let (repo, tag, pause, content_type, changes) = (text(), text(), text(), text(), text());
    let body = parts.next().unwrap_or_default();
    let q = CommitQuery {
        container: "c",
        repo,
        tag,
        author: "a",
        comment: "m",
        pause: (!pause.is_empty()).then_some(pause),
        changes: changes.lines().map(str::to_string).collect(),
    };
    // The daemon checks the type before the request (the `JsonBody` extractor).
    if !content_type.is_empty()
        && !cproxy::supervisor::http::go_json::is_json_media_type(content_type)
    {
        return;
    }
    let Ok(req) = CommitRequest::new(&q, body) else {
        return;
    };
    let container = ImageRunConfig {
        env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
        cmd: Some(vec!["sh".into()]),
        ..ImageRunConfig::default()
    };
    if let Ok(config) = req.config(&container) {
        // moby's merge always leaves the labels a map.
        assert!(config.labels.is_some());
        assert!(config.env.is_some_and(|e| e.iter().any(|v| v.starts_with("A=") || v == "A")));
    }
    if let Ok(Some(r)) = req.reference() {
        assert!(r.tag().is_some() && r.digest().is_none(), "{repo:?} {tag:?}");
        assert_eq!(Reference::parse_normalized(&r.to_string()).as_ref(), Ok(&r));
    }
});
