//! Fuzzes the text parsers of `cproxy::supervisor::image`: image references (Docker's
//! `ParseNormalizedNamed` and `ParseAnyReference`), `import --change` instructions and the
//! `reference` filter's patterns. None may panic; a reference that parses reads back the
//! same from its full and its familiar form.

#![no_main]

use cproxy::supervisor::api::types::ImageRunConfig;
use cproxy::supervisor::image::config::apply_changes;
use cproxy::supervisor::image::list::glob;
use cproxy::supervisor::image::reference::{AnyReference, Reference};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = AnyReference::parse(text);
    if let Ok(r) = Reference::parse_normalized(text) {
        assert_eq!(Reference::parse_normalized(&r.to_string()).as_ref(), Ok(&r), "{text:?}");
        let familiar = r.familiar_string();
        assert_eq!(Reference::parse_normalized(&familiar).as_ref(), Ok(&r), "{text:?}");
        let tagged = r.clone().with_default_tag();
        assert!(tagged.tag().is_some() || tagged.digest().is_some());
    }
    let mut config = ImageRunConfig::default();
    let _ = apply_changes(&mut config, &text.lines().map(str::to_string).collect::<Vec<_>>());
    if let Some((pattern, name)) = text.split_once('\n') {
        let _ = glob(pattern, name);
    }
});
