//! Fuzzes what `cproxy load` and `cproxy import` read: the bytes as an image archive (a tar
//! holding Docker's `manifest.json` or an OCI layout), as a layer (plain, gzip or zstd tar),
//! and as an image config. None may panic; an archive is refused in words or stored, and the
//! store is emptied again after each input.

#![no_main]

use std::sync::OnceLock;

use cproxy::supervisor::image::archive::load;
use cproxy::supervisor::image::config::ImageConfig;
use cproxy::supervisor::image::layer::read_layer;
use cproxy::supervisor::image::store::{ImageStore, Users};
use libfuzzer_sys::fuzz_target;

fn store() -> &'static ImageStore {
    static STORE: OnceLock<ImageStore> = OnceLock::new();
    STORE.get_or_init(|| {
        // One directory, emptied when a run starts (the store forgets what it cannot read).
        let dir = std::env::temp_dir().join("cproxy-fuzz-images");
        let _ = std::fs::remove_dir_all(&dir);
        ImageStore::open(&dir, &Users::default()).expect("a store in the temporary directory")
    })
}

fuzz_target!(|data: &[u8]| {
    let s = store();
    if let Ok(lines) = load(s, data) {
        assert!(!lines.is_empty());
        s.prune(true, &Users::default()).expect("prune");
    }
    if let Ok(info) = read_layer(data, None) {
        assert!(info.diff_id.starts_with("sha256:") && info.digest.starts_with("sha256:"));
    }
    if let Ok(c) = ImageConfig::parse(data) {
        assert_eq!(ImageConfig::parse(&c.to_bytes()).as_ref(), Ok(&c));
    }
});
