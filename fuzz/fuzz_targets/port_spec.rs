//! Fuzzes the parsers of `cproxy::spec`: `-p` specs, `--expose` values, port ranges and
//! `docker port` lines.
//! None may panic, and whatever parses must display as text that parses back to the same value.

#![no_main]

use cproxy::spec::{PortRange, PortSpec, PublishedPort, parse_expose};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PortSpec::parse(text) {
        Ok(spec) => {
            let shown = spec.to_string();
            match PortSpec::parse(&shown) {
                Ok(again) => assert_eq!(again, spec, "{text:?} displays as {shown:?}"),
                Err(e) => panic!("{text:?} displays as {shown:?}, which does not parse: {e}"),
            }
            let mappings = spec.mappings();
            assert_eq!(mappings.len(), spec.container_ports().count() as usize);
            for mapping in &mappings {
                let _ = mapping.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match parse_expose(text) {
        // An exposed port is a container port alone: no host part, so -P picks the host port.
        Ok(spec) => assert_eq!(spec.to_string().split(':').count(), 1, "{text:?}"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(range) = text.parse::<PortRange>() {
        assert_eq!(range.to_string().parse::<PortRange>(), Ok(range), "{text:?}");
    }
    if let Ok(published) = text.parse::<PublishedPort>() {
        assert_eq!(published.to_string().parse::<PublishedPort>(), Ok(published), "{text:?}");
    }
});
