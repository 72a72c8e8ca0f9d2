//! Fuzzes `cproxy::supervisor::rules::logging`: a log driver and its `--log-opt`s as create
//! and start read them. The input is lines: the driver's name, then `KEY=VALUE` options. None
//! may panic; a driver the create takes is one of cproxy's three; what start takes keeps at
//! least one file, rotates only with a size, and compresses only with more than one file.
//! json-file's attributes (the options as labels and variables too, a `tag` template) come
//! back only from what was offered, and each record line is one line of valid JSON that reads
//! back to its text.

#![no_main]

use std::collections::BTreeMap;

use cproxy::supervisor::rules::logging::{self, Driver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines();
    let kind = lines.next().unwrap_or_default();
    let config: BTreeMap<String, String> = lines.map(logging::parse_opt).collect();
    let driver = match logging::check(kind, &config) {
        Ok(driver) => driver,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    assert!(matches!(driver, Driver::JsonFile | Driver::Local | Driver::None));
    assert_eq!(Driver::parse(driver.name()), Ok(driver));
    match logging::rotation(driver, &config) {
        Ok(None) => assert_eq!(driver, Driver::None),
        Ok(Some(r)) => {
            assert!(r.max_files >= 1);
            assert!(!r.compress || (r.max_files >= 2 && r.max_size.is_some()));
            if driver == Driver::Local {
                assert!(r.max_size.is_some());
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
    if let Some(tag) = config.get("tag") {
        let _ = logging::check_tag(tag);
    }
    let env: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Ok(attrs) = logging::attributes(&config, &config, &env, "") {
        assert!(attrs.iter().all(|(k, v)| config.get(k) == Some(v)));
        let encoded = logging::encode_attrs(&attrs);
        let line = logging::record_line(text, "stdout", &encoded, "t");
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let back: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(back["log"].as_str(), Some(text));
        let _ = logging::details(&attrs);
    }
    let (merged, opts) = logging::merge(kind, &config, "json-file", &config);
    assert!(!merged.is_empty());
    assert!(config.keys().all(|k| opts.contains_key(k)));
});
