//! Registry-controlled input: manifests, indexes and cosign layers (annotations + blob) turned
//! into bundles. Must never panic.
#![no_main]

use std::collections::BTreeMap;

use custody::Limits;
use custody::evidence::cosign::{ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_SIGNATURE, SIMPLE_SIGNING_MEDIA_TYPE, layer_to_bundle};
use custody::evidence::oci::parse_manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_manifest(data, None, 64);
    // Split the input into annotation values and a blob.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\u{1}');
    let mut annotations = BTreeMap::new();
    for key in [ANNOTATION_SIGNATURE, ANNOTATION_CERTIFICATE, ANNOTATION_BUNDLE] {
        if let Some(v) = parts.next() {
            annotations.insert(key.to_owned(), v.to_owned());
        }
    }
    let blob = parts.next().unwrap_or_default().as_bytes();
    let _ = layer_to_bundle(SIMPLE_SIGNING_MEDIA_TYPE, &annotations, blob, false, &Limits::default());
    let _ = layer_to_bundle(SIMPLE_SIGNING_MEDIA_TYPE, &annotations, blob, true, &Limits::default());
});
