//! Fuzzes `cproxy::supervisor::rules::archive`: the archive route's `path` (as dockerd splits
//! it), the docker CLI's copy decisions, and the `X-Docker-Container-Path-Stat` header the
//! client reads. None may panic; a resolved path is absolute and clean but for its kept
//! trailing `/` or `/.`; a stat written and read back is the same.

#![no_main]

use cproxy::supervisor::rules::archive::{self, CopyInfo, PathStat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let r = archive::resolve(text);
    assert!(r.abs.starts_with('/'), "{text:?} -> {r:?}");
    assert_eq!(format!("{}{}", r.dir, r.base), r.abs);
    let core = r.abs.trim_end_matches('/');
    let core = core.strip_suffix("/.").unwrap_or(core);
    let core = if core.is_empty() { "/" } else { core };
    assert_eq!(archive::clean(core), core, "{text:?}");
    let _ = archive::rebase_name(&r.abs);
    let (parent, rest) = text.split_once('\n').unwrap_or((text, ""));
    let src = CopyInfo {
        path: parent.into(),
        exists: true,
        is_dir: rest.len() % 2 == 0,
        ..Default::default()
    };
    let dst = CopyInfo {
        path: rest.into(),
        exists: rest.len() % 3 == 0,
        is_dir: false,
        ..Default::default()
    };
    let _ = archive::prepare_copy(&src, &dst);
    let _ = PathStat::from_header(text);
    let s = PathStat { name: text.into(), link_target: parent.into(), ..PathStat::default() };
    assert_eq!(PathStat::from_header(&s.header()), Some(s));
});
