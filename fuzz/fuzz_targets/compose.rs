//! Fuzzes `cproxy::supervisor::rules::compose::parse`: any text is read without a panic, and what it
//! accepts holds together: every port, expose value and link is one its flag accepts, every
//! service starts after what it depends on, and every error names a line in the file.

#![no_main]

use std::path::Path;

use cproxy::spec::{PortSpec, parse_expose};
use cproxy::supervisor::rules::compose::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text, Path::new("/srv/app")) {
        Ok(project) => {
            for (i, service) in project.services.iter().enumerate() {
                for port in &service.ports {
                    assert!(PortSpec::parse(port).is_ok(), "{port:?}");
                }
                for expose in &service.expose {
                    assert!(parse_expose(expose).is_ok(), "{expose:?}");
                }
                for dep in &service.depends_on {
                    let j = project.services.iter().position(|s| &s.name == dep);
                    assert!(j.is_some_and(|j| j < i), "{} starts before {dep}", service.name);
                }
                for mount in &service.volumes {
                    assert!(mount.source.is_absolute() && mount.target.starts_with('/'));
                }
            }
            for warning in &project.warnings {
                let _ = warning.to_string();
            }
        }
        Err(e) => {
            assert!(e.line >= 1, "{e:?}");
            let _ = e.to_string();
        }
    }
});
