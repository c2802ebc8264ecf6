//! An SD-JWT presentation as a wallet or lender sends it: parsing never
//! panics, and what it keeps for `sd_hash` is the text up to its last `~`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofline_domain::sd_jwt::Presentation;
use proofline_domain::verification::references;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(presentation) = Presentation::parse(text) {
        assert!(text.starts_with(&presentation.sd_hash_input));
        assert!(presentation.sd_hash_input.ends_with('~'));
    }
    let _ = references(text);
});
