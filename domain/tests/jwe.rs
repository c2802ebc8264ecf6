//! Compact JWE with ECDH-ES on P-256 and AES-GCM: the RFCs' examples,
//! tokens made by another implementation, round trips, and every refusal.

use proofline_domain::jose::{b64url_decode, b64url_encode};
use proofline_domain::jwe::{
    ContentEncryption, JweError, MAX_COMPACT_LEN, concat_kdf, content_encrypt, decrypt, encrypt,
    encryption_jwk, peek_kid, public_key_from_jwk,
};
use serde_json::{Map, Value, json};

/// RFC 7518 Appendix C: Alice's ephemeral key and Bob's static key.
const ALICE_D: &str = "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo";
const ALICE_X: &str = "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0";
const ALICE_Y: &str = "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps";
const BOB_D: &str = "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw";
const BOB_X: &str = "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ";
const BOB_Y: &str = "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck";

fn secret(d: &str) -> p256::SecretKey {
    p256::SecretKey::from_slice(&b64url_decode(d).unwrap()).unwrap()
}

fn test_key(seed: u8) -> p256::SecretKey {
    p256::SecretKey::from_slice(&[seed; 32]).unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn header_of(compact: &str) -> Map<String, Value> {
    let header = compact.split('.').next().unwrap();
    serde_json::from_slice(&b64url_decode(header).unwrap()).unwrap()
}

/// The compact JWE with its protected header re-encoded after `change`
/// (everything else as it was, so the tag no longer covers the header).
fn with_header(compact: &str, change: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut header = header_of(compact);
    change(&mut header);
    let rest = compact.split_once('.').unwrap().1;
    format!(
        "{}.{rest}",
        b64url_encode(serde_json::to_vec(&header).unwrap())
    )
}

/// The compact JWE with part `index` (0..5) replaced.
fn with_part(compact: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = compact.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

fn sample(enc: ContentEncryption) -> String {
    let extra = object(json!({"kid": "verifier-enc-1", "typ": "oauth-authz-resp+jwt"}));
    encrypt(
        br#"{"vp_token":{"pid":["x"]},"state":"s1"}"#,
        &test_key(2).public_key(),
        enc,
        &test_key(3),
        [7; 12],
        &extra,
    )
}

#[test]
fn rfc7518_appendix_c_key_agreement() {
    let alice = secret(ALICE_D);
    let bob = secret(BOB_D);
    // The RFC's public keys are those of its private keys.
    let alice_jwk = json!({"kty": "EC", "crv": "P-256", "x": ALICE_X, "y": ALICE_Y});
    let bob_jwk = json!({"kty": "EC", "crv": "P-256", "x": BOB_X, "y": BOB_Y});
    assert_eq!(public_key_from_jwk(&alice_jwk).unwrap(), alice.public_key());
    assert_eq!(public_key_from_jwk(&bob_jwk).unwrap(), bob.public_key());

    // Z, the same from either side, and the RFC's derived key from it.
    let z = p256::ecdh::diffie_hellman(bob.to_nonzero_scalar(), alice.public_key().as_affine());
    let z_alice =
        p256::ecdh::diffie_hellman(alice.to_nonzero_scalar(), bob.public_key().as_affine());
    assert_eq!(z.raw_secret_bytes(), z_alice.raw_secret_bytes());
    assert_eq!(
        z.raw_secret_bytes().as_slice(),
        [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196
        ]
    );
    let derived = concat_kdf(
        z.raw_secret_bytes(),
        ContentEncryption::A128Gcm,
        b"Alice",
        b"Bob",
    );
    assert_eq!(b64url_encode(&derived), "VqqN6vgjbSBcIijNcacQGg");
    // Other party info, or another enc, derives another key.
    assert_ne!(
        concat_kdf(
            z.raw_secret_bytes(),
            ContentEncryption::A128Gcm,
            b"Bob",
            b"Alice"
        ),
        derived
    );
    let long = concat_kdf(
        z.raw_secret_bytes(),
        ContentEncryption::A256Gcm,
        b"Alice",
        b"Bob",
    );
    assert_eq!(long.len(), 32);
    assert_ne!(long[..16], derived[..]);

    // encrypt with Alice's ephemeral key: the RFC's header, and content
    // encrypted under the RFC's derived key.
    let extra = object(json!({"apu": "QWxpY2U", "apv": "Qm9i"}));
    let iv = [1; 12];
    let plaintext = b"Live long and prosper.";
    let compact = encrypt(
        plaintext,
        &bob.public_key(),
        ContentEncryption::A128Gcm,
        &alice,
        iv,
        &extra,
    );
    let header = header_of(&compact);
    assert_eq!(
        Value::Object(header),
        json!({
            "alg": "ECDH-ES",
            "enc": "A128GCM",
            "apu": "QWxpY2U",
            "apv": "Qm9i",
            "epk": {"kty": "EC", "crv": "P-256", "x": ALICE_X, "y": ALICE_Y},
        })
    );
    let parts: Vec<&str> = compact.split('.').collect();
    assert_eq!(parts[1], "", "no encrypted key with ECDH-ES");
    assert_eq!(parts[2], b64url_encode(iv));
    let (ciphertext, tag) = content_encrypt(
        ContentEncryption::A128Gcm,
        &derived,
        iv,
        parts[0].as_bytes(),
        plaintext,
    );
    assert_eq!(parts[3], b64url_encode(ciphertext));
    assert_eq!(parts[4], b64url_encode(tag));
    assert_eq!(decrypt(&compact, &bob).unwrap().1, plaintext);
}

#[test]
fn rfc7516_appendix_a1_content_encryption() {
    let cek = [
        177, 161, 244, 128, 84, 143, 225, 115, 63, 180, 3, 255, 107, 154, 212, 246, 138, 7, 110,
        91, 112, 46, 34, 105, 47, 130, 203, 46, 122, 234, 64, 252,
    ];
    let iv = [227, 197, 117, 252, 2, 219, 233, 68, 180, 225, 77, 219];
    let aad = b"eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ";
    let plaintext = b"The true sign of intelligence is not knowledge but imagination.";
    let (ciphertext, tag) = content_encrypt(ContentEncryption::A256Gcm, &cek, iv, aad, plaintext);
    assert_eq!(
        b64url_encode(ciphertext),
        "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A"
    );
    assert_eq!(b64url_encode(tag), "XFBoMYUZodetZdvTiFvSkQ");
    assert_eq!(b64url_encode(iv), "48V1_ALb6US04U3b");
}

/// Made by another implementation (Python joserfc 1.6.5) for Bob's key of
/// RFC 7518 Appendix C, with kid "bob", apu "Alice" and apv "Bob".
const JOSERFC_A128GCM: &str = "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTEyOEdDTSIsImtpZCI6ImJvYiIsImFwdSI6IlFXeHBZMlUiLCJhcHYiOiJRbTlpIiwiZXBrIjp7ImNydiI6IlAtMjU2IiwieCI6Imp2ZXhjal9heHJoZ3JrMW1aTEJWYzAzcThUSkpCVEJWMHJDYU9oOXJIT0EiLCJ5IjoiQUJTOXNqOHVXS1laTWtyWmdVOEtfMUViVlRnUEFJSi1ES010azMxTFl2TSIsImt0eSI6IkVDIn19..GVbRxjGVLA_WFZnh.hTHuRzXQGyFZDy8cqZ_COauYTUPI_naCp-4vuxMgQRjjy92HydL05BNnTAA.M9hAePCsSOLGt2MjQLe5BA";
const JOSERFC_A256GCM: &str = "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSIsImtpZCI6ImJvYiIsImFwdSI6IlFXeHBZMlUiLCJhcHYiOiJRbTlpIiwiZXBrIjp7ImNydiI6IlAtMjU2IiwieCI6InNHbDBJdFVubVFSQTFHdG15NFFmUVF5dHpKY09lRnhIWWxnRV9ZcThmbGsiLCJ5IjoiYkx6N0tUNThKM3ZfMHpYWnA2N0Fqc0VKT2w1NUtDd2gxTE43NGxzR0E1RSIsImt0eSI6IkVDIn19..sR_n1zvCLuIEihhu.tWBDrpOn54QOP-6drTOLi_jxsom-2IBq4LZ1RoRRMl2nqB2suqWOPU05EKM.w6vPEkKMsdZvSkQYyRgEsg";

#[test]
fn tokens_of_another_implementation_decrypt() {
    // They carry apu and apv: that they decrypt at all shows both went
    // into the KDF as that implementation put them.
    for (compact, enc) in [(JOSERFC_A128GCM, "A128GCM"), (JOSERFC_A256GCM, "A256GCM")] {
        assert_eq!(peek_kid(compact).unwrap().as_deref(), Some("bob"));
        let (header, plaintext) = decrypt(compact, &secret(BOB_D)).unwrap();
        assert_eq!(header["enc"], enc);
        assert_eq!(
            plaintext,
            br#"{"vp_token":{"pid":["eyJ..."]},"state":"s1"}"#
        );
        assert_eq!(
            decrypt(compact, &secret(ALICE_D)).unwrap_err(),
            JweError::Decrypt
        );
    }
}

#[test]
fn round_trips_for_each_content_encryption() {
    let recipient = test_key(2);
    for enc in ContentEncryption::ALL {
        let compact = sample(enc);
        assert_eq!(compact.split('.').count(), 5);
        assert_eq!(
            peek_kid(&compact).unwrap().as_deref(),
            Some("verifier-enc-1")
        );
        let (header, plaintext) = decrypt(&compact, &recipient).unwrap();
        assert_eq!(plaintext, br#"{"vp_token":{"pid":["x"]},"state":"s1"}"#);
        assert_eq!(header["alg"], "ECDH-ES");
        assert_eq!(header["enc"], enc.name());
        assert_eq!(header["typ"], "oauth-authz-resp+jwt");
        assert_eq!(
            public_key_from_jwk(&header["epk"]).unwrap(),
            test_key(3).public_key()
        );
        // An empty plaintext round trips too.
        let empty = encrypt(
            b"",
            &recipient.public_key(),
            enc,
            &test_key(4),
            [0; 12],
            &Map::new(),
        );
        assert_eq!(decrypt(&empty, &recipient).unwrap().1, b"");
        assert_eq!(peek_kid(&empty).unwrap(), None);
    }
}

#[test]
fn extra_header_cannot_override_alg_enc_or_epk() {
    let extra = object(json!({
        "alg": "dir",
        "enc": "A128CBC-HS256",
        "epk": {"kty": "EC", "crv": "P-256", "x": BOB_X, "y": BOB_Y},
    }));
    let compact = encrypt(
        b"x",
        &test_key(2).public_key(),
        ContentEncryption::A256Gcm,
        &test_key(3),
        [9; 12],
        &extra,
    );
    let header = header_of(&compact);
    assert_eq!(header["alg"], "ECDH-ES");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(
        public_key_from_jwk(&header["epk"]).unwrap(),
        test_key(3).public_key()
    );
    assert_eq!(decrypt(&compact, &test_key(2)).unwrap().1, b"x");
}

#[test]
fn apu_and_apv_change_the_key() {
    // AES-GCM's ciphertext depends on the key and IV only (the AAD goes into
    // the tag), so equal ciphertexts mean equal keys.
    let ciphertext = |extra: Value| {
        let compact = encrypt(
            b"same plaintext",
            &test_key(2).public_key(),
            ContentEncryption::A128Gcm,
            &test_key(3),
            [5; 12],
            &object(extra),
        );
        assert!(decrypt(&compact, &test_key(2)).is_ok());
        compact.split('.').nth(3).unwrap().to_owned()
    };
    let plain = ciphertext(json!({}));
    assert_eq!(ciphertext(json!({"kid": "k"})), plain);
    assert_ne!(ciphertext(json!({"apu": "QWxpY2U"})), plain);
    assert_ne!(ciphertext(json!({"apv": "Qm9i"})), plain);
    assert_ne!(
        ciphertext(json!({"apu": "QWxpY2U"})),
        ciphertext(json!({"apv": "QWxpY2U"}))
    );
}

#[test]
fn tampering_fails_with_one_opaque_error() {
    let recipient = test_key(2);
    for enc in ContentEncryption::ALL {
        let compact = sample(enc);
        let parts: Vec<&str> = compact.split('.').collect();
        let flip = |part: &str| {
            let mut bytes = b64url_decode(part).unwrap();
            bytes[0] ^= 1;
            b64url_encode(bytes)
        };
        let tampered = [
            with_part(&compact, 3, &flip(parts[3])),
            with_part(&compact, 4, &flip(parts[4])),
            with_part(&compact, 2, &flip(parts[2])),
            // A tag cut short, or grown.
            with_part(
                &compact,
                4,
                &b64url_encode(&b64url_decode(parts[4]).unwrap()[..12]),
            ),
            with_part(&compact, 4, &format!("{}AAAA", parts[4])),
            // The header changed where it matters not to the key: the AAD.
            with_header(&compact, |h| {
                h.insert("kid".into(), json!("another"));
            }),
            with_header(&compact, |h| {
                h.remove("typ");
            }),
            // Another ephemeral key.
            with_header(&compact, |h| {
                h.insert("epk".into(), encryption_jwk(&test_key(9).public_key(), "x"));
            }),
        ];
        for (i, bad) in tampered.iter().enumerate() {
            assert_eq!(
                decrypt(bad, &recipient).unwrap_err(),
                JweError::Decrypt,
                "{i}"
            );
        }
        assert_eq!(
            decrypt(&compact, &test_key(8)).unwrap_err(),
            JweError::Decrypt,
            "another recipient"
        );
    }
}

#[test]
fn only_ecdh_es_is_accepted() {
    let compact = sample(ContentEncryption::A256Gcm);
    for alg in [
        json!("RSA-OAEP"),
        json!("RSA-OAEP-256"),
        json!("dir"),
        json!("ECDH-ES+A128KW"),
        json!("ECDH-ES+A256KW"),
        json!("A256KW"),
        json!("none"),
        json!("ecdh-es"),
        json!(1),
    ] {
        let bad = with_header(&compact, |h| {
            h.insert("alg".into(), alg.clone());
        });
        assert!(
            matches!(decrypt(&bad, &test_key(2)), Err(JweError::Algorithm(_))),
            "{alg}"
        );
    }
    let missing = with_header(&compact, |h| {
        h.remove("alg");
    });
    assert_eq!(
        decrypt(&missing, &test_key(2)).unwrap_err(),
        JweError::Algorithm(String::new())
    );
    let rsa = with_header(&compact, |h| {
        h.insert("alg".into(), json!("RSA-OAEP"));
    });
    assert_eq!(
        decrypt(&rsa, &test_key(2)).unwrap_err(),
        JweError::Algorithm("RSA-OAEP".into())
    );
}

#[test]
fn only_aes_gcm_128_and_256_are_accepted() {
    let compact = sample(ContentEncryption::A128Gcm);
    for enc in ["A128CBC-HS256", "A256CBC-HS512", "A192GCM", "a128gcm", ""] {
        let bad = with_header(&compact, |h| {
            h.insert("enc".into(), json!(enc));
        });
        assert_eq!(
            decrypt(&bad, &test_key(2)).unwrap_err(),
            JweError::Encryption(enc.into())
        );
    }
    let missing = with_header(&compact, |h| {
        h.remove("enc");
    });
    assert!(matches!(
        decrypt(&missing, &test_key(2)),
        Err(JweError::Encryption(_))
    ));
    for enc in ContentEncryption::ALL {
        assert_eq!(ContentEncryption::parse(enc.name()), Some(enc));
    }
    assert_eq!(ContentEncryption::A128Gcm.name(), "A128GCM");
    assert_eq!(ContentEncryption::A256Gcm.name(), "A256GCM");
    assert_eq!(ContentEncryption::parse("A128CBC-HS256"), None);
}

#[test]
fn an_encrypted_key_is_refused() {
    let compact = sample(ContentEncryption::A128Gcm);
    let bad = with_part(&compact, 1, "AAAA");
    assert_eq!(
        decrypt(&bad, &test_key(2)).unwrap_err(),
        JweError::EncryptedKeyNotEmpty
    );
}

#[test]
fn the_ephemeral_key_must_be_a_public_p256_point() {
    let compact = sample(ContentEncryption::A128Gcm);
    let epk = header_of(&compact)["epk"].clone();
    let mut off_curve = epk.clone();
    off_curve["y"] = epk["x"].clone();
    let mut p384 = epk.clone();
    p384["crv"] = json!("P-384");
    let mut private = epk.clone();
    private["d"] = json!(b64url_encode([3u8; 32]));
    let mut short = epk.clone();
    short["x"] = json!("AAAA");
    for bad_epk in [
        off_curve,
        p384,
        private,
        short,
        json!({"kty": "OKP", "crv": "X25519", "x": epk["x"]}),
        json!({"kty": "EC", "crv": "P-256", "x": epk["x"]}),
        json!({"kty": "EC", "crv": "P-256", "x": [1], "y": epk["y"]}),
        json!("a string"),
    ] {
        let bad = with_header(&compact, |h| {
            h.insert("epk".into(), bad_epk.clone());
        });
        assert_eq!(
            decrypt(&bad, &test_key(2)).unwrap_err(),
            JweError::EphemeralKey,
            "{bad_epk}"
        );
    }
    let missing = with_header(&compact, |h| {
        h.remove("epk");
    });
    assert_eq!(
        decrypt(&missing, &test_key(2)).unwrap_err(),
        JweError::EphemeralKey
    );
}

#[test]
fn zip_crit_and_bad_party_info_are_refused() {
    let compact = sample(ContentEncryption::A128Gcm);
    let refused = |change: fn(&mut Map<String, Value>)| {
        decrypt(&with_header(&compact, change), &test_key(2)).unwrap_err()
    };
    assert_eq!(
        refused(|h| {
            h.insert("zip".into(), json!("DEF"));
        }),
        JweError::Compression
    );
    assert_eq!(
        refused(|h| {
            h.insert("crit".into(), json!(["exp"]));
            h.insert("exp".into(), json!(1));
        }),
        JweError::Critical
    );
    assert_eq!(
        refused(|h| {
            h.insert("apu".into(), json!("QWxpY2U="));
        }),
        JweError::Base64
    );
    assert_eq!(
        refused(|h| {
            h.insert("apv".into(), json!(42));
        }),
        JweError::Header
    );
}

#[test]
fn the_compact_form_is_checked() {
    let compact = sample(ContentEncryption::A128Gcm);
    let key = test_key(2);
    let parts: Vec<&str> = compact.split('.').collect();
    for bad in [
        String::new(),
        parts[..4].join("."),
        format!("{compact}."),
        format!("{compact}.AAAA"),
    ] {
        assert_eq!(decrypt(&bad, &key).unwrap_err(), JweError::Compact);
        assert_eq!(peek_kid(&bad).unwrap_err(), JweError::Compact);
    }
    let not_object = with_part(&compact, 0, &b64url_encode(b"[1]"));
    assert_eq!(decrypt(&not_object, &key).unwrap_err(), JweError::Header);
    assert_eq!(peek_kid(&not_object).unwrap_err(), JweError::Header);
    let not_json = with_part(&compact, 0, &b64url_encode(b"{\"alg\""));
    assert_eq!(peek_kid(&not_json).unwrap_err(), JweError::Header);
    let padded = with_part(&compact, 0, &format!("{}=", parts[0]));
    assert_eq!(peek_kid(&padded).unwrap_err(), JweError::Base64);
    assert_eq!(decrypt(&padded, &key).unwrap_err(), JweError::Base64);
    let bad_ciphertext = with_part(&compact, 3, "a+b/");
    assert_eq!(
        decrypt(&bad_ciphertext, &key).unwrap_err(),
        JweError::Base64
    );
    let short_iv = with_part(&compact, 2, &b64url_encode([0u8; 8]));
    assert_eq!(decrypt(&short_iv, &key).unwrap_err(), JweError::Iv);
    let kid_number = with_header(&compact, |h| {
        h.insert("kid".into(), json!(7));
    });
    assert_eq!(peek_kid(&kid_number).unwrap_err(), JweError::Header);
}

#[test]
fn more_than_a_mebibyte_is_refused() {
    let key = test_key(2);
    let big = encrypt(
        &vec![b'a'; MAX_COMPACT_LEN],
        &key.public_key(),
        ContentEncryption::A128Gcm,
        &test_key(3),
        [0; 12],
        &object(json!({"kid": "k"})),
    );
    assert!(big.len() > MAX_COMPACT_LEN);
    assert_eq!(decrypt(&big, &key).unwrap_err(), JweError::TooLarge);
    assert_eq!(peek_kid(&big).unwrap_err(), JweError::TooLarge);
    // Just under the bound decrypts.
    let fits = encrypt(
        &vec![b'a'; 700 * 1024],
        &key.public_key(),
        ContentEncryption::A128Gcm,
        &test_key(3),
        [0; 12],
        &Map::new(),
    );
    assert!(fits.len() <= MAX_COMPACT_LEN);
    assert_eq!(decrypt(&fits, &key).unwrap().1.len(), 700 * 1024);
}

#[test]
fn encryption_jwks_round_trip_and_others_are_refused() {
    let key = test_key(5).public_key();
    let jwk = encryption_jwk(&key, "enc-1");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "enc");
    assert_eq!(jwk["alg"], "ECDH-ES");
    assert_eq!(jwk["kid"], "enc-1");
    assert_eq!(b64url_decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(b64url_decode(jwk["y"].as_str().unwrap()).unwrap().len(), 32);
    assert_eq!(jwk.as_object().unwrap().len(), 7);
    assert_eq!(public_key_from_jwk(&jwk).unwrap(), key);

    let mut private = jwk.clone();
    private["d"] = json!(b64url_encode([5u8; 32]));
    assert!(matches!(
        public_key_from_jwk(&private),
        Err(JweError::Jwk(m)) if m.contains("private")
    ));
    let mut padded = jwk.clone();
    padded["x"] = json!(format!("{}=", jwk["x"].as_str().unwrap()));
    let mut off_curve = jwk.clone();
    off_curve["y"] = jwk["x"].clone();
    for bad in [
        padded,
        off_curve,
        json!({"kty": "EC", "crv": "P-384", "x": jwk["x"], "y": jwk["y"]}),
        json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "OKP", "crv": "X25519", "x": jwk["x"]}),
        json!({"crv": "P-256", "x": jwk["x"], "y": jwk["y"]}),
        json!([jwk]),
    ] {
        assert!(
            matches!(public_key_from_jwk(&bad), Err(JweError::Jwk(_))),
            "{bad}"
        );
    }
}
