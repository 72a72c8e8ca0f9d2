//! Fuzzes the resource limits' rules (`cproxy::supervisor::rules::resources`): `--cpus`, a
//! size, `--memory-swap`, a cpuset list, Go's integers, and a `HostConfig`'s resource fields
//! as JSON checked against a host, the device flags (`--device-read-bps`, …). None panics; each refusal is a sentence; what is accepted
//! is within Docker's bounds, and `--cpus` becomes a quota no larger than its CPUs' time.

#![no_main]

use cproxy::supervisor::rules::resources::{self, HostLimits, Resources};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match resources::parse_cpus(text) {
        Ok(_) => {}
        Err(e) => assert!(!e.is_empty()),
    }
    let _ = resources::parse_memory_swap(text);
    if let Ok(list) = resources::parse_list(text) {
        assert!(list.len() <= 8192);
    }
    let _ = resources::go_int(text);
    let _ = resources::go_u16(text);
    for kind in resources::Throttle::ALL {
        if let Ok(t) = resources::parse_throttle(kind, text) {
            assert!(t.path.starts_with("/dev/"));
        }
    }
    if let Ok(w) = resources::parse_weight_device(text) {
        assert!(w.weight == 0 || (10..=1000).contains(&w.weight));
    }
    let Ok(r) = serde_json::from_str::<Resources>(text) else {
        return;
    };
    let host = HostLimits {
        memory: true,
        swap: data.len().is_multiple_of(2),
        swappiness: true,
        oom_kill_disable: true,
        pids: !data.len().is_multiple_of(3),
        cpu_shares: true,
        cpu_cfs: true,
        cpuset: true,
        blkio_weight: data.len().is_multiple_of(5),
        blkio_weight_device: data.len().is_multiple_of(7),
        blkio_throttle: [data.len().is_multiple_of(11); 4],
        kernel_memory: true,
        kernel_memory_tcp: true,
        cgroup_version: 1 + u8::from(data.len().is_multiple_of(13)),
        cpus: 1 + data.len() % 8,
        cpu_list: "0-7".into(),
        mem_list: "0".into(),
    };
    for update in [false, true] {
        match resources::check(&r, &host, update) {
            Ok(c) => {
                let k = c.resources;
                assert!(k.memory == 0 || k.memory >= resources::MIN_MEMORY);
                assert!(k.nano_cpus >= 0 && k.nano_cpus <= host.cpus as i64 * 1_000_000_000);
                let (period, quota) = k.cfs();
                if k.nano_cpus > 0 {
                    assert_eq!(period, resources::DEFAULT_CPU_PERIOD);
                    assert!(quota <= host.cpus as i64 * period);
                }
                assert!(k.pids_limit.is_none_or(|n| n > 0));
                let _ = resources::info_warnings(&host, &Default::default());
                if let Err(e) = resources::merge(&r, &k) {
                    assert!(!e.is_empty());
                }
                let _ = resources::with_defaults(k);
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
});
