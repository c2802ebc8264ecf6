//! DIDs and JWKs from issuers and wallets: parsing never panics, a did:key
//! yields its key or a refusal, and a JWK read back from what it writes is
//! the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofline_domain::did::{Did, decode_ed25519_multibase};
use proofline_domain::jose::Jwk;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(did) = Did::parse(text) {
            assert_eq!(did.as_str(), text);
            if did.is_did_key() {
                let _ = did.key_of_did_key();
            }
        }
        let _ = decode_ed25519_multibase(text);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok((jwk, key)) = Jwk::from_json(&value)
    {
        assert_eq!(key.to_jwk(), jwk);
        let again = serde_json::to_value(&jwk).expect("a JWK serializes");
        let (jwk_again, _) = Jwk::from_json(&again).expect("a written JWK reads back");
        assert_eq!(jwk_again, jwk);
    }
});
