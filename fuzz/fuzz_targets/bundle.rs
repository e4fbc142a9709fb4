//! Bundle parsing + verification on arbitrary bytes: must never panic, and (the production root
//! being what it is) must never verify garbage against the conformance artifact.
#![no_main]

use std::sync::LazyLock;

use custody::Limits;
use custody::evidence::parse_bundle;
use custody::trust::TrustRoot;
use custody::verify::{ArtifactInput, verify_bundle};
use libfuzzer_sys::fuzz_target;

static ROOT: LazyLock<TrustRoot> = LazyLock::new(|| TrustRoot::production().expect("embedded root"));

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(parsed) = parse_bundle(data, &limits) else { return };
    let now = jiff::Timestamp::from_second(1_800_000_000).expect("valid time");
    let _ = verify_bundle(&parsed, ArtifactInput::Bytes(b"fuzz"), &ROOT, None, now, &limits);
});
