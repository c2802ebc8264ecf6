//! RFC 8785 (JCS), the text every event hash covers: canonicalizing is
//! idempotent, and the canonical text is JSON that denotes the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofline_domain::log::canonical_json;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(canonical) = canonical_json(&value) else {
        return; // a number JCS cannot write (not finite): refused, not panicked
    };
    let reread: serde_json::Value =
        serde_json::from_str(&canonical).expect("canonical text is JSON");
    assert_eq!(canonical_json(&reread).expect("still canonical"), canonical);
    assert!(!canonical.contains('\n'));
});
