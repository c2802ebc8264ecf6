//! `docs/log-format.md` is enough to check the chain: this test recomputes
//! every hash with its own canonical form (a JCS writer of a few lines,
//! written from the description, not the production helper) and SHA-256,
//! and finds the hashes the domain's code wrote.

use proofline_domain::ids::StreamId;
use proofline_domain::log::{Envelope, EventHash, Metadata, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const DOC: &str = include_str!("../../docs/log-format.md");

/// RFC 8785 as the document states it: members sorted by UTF-16 code units,
/// no whitespace, the escapes JSON requires, integers as written.
fn jcs(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            assert!(n.is_i64() || n.is_u64(), "envelopes hold integers only");
            out.push_str(&n.to_string());
        }
        Value::String(s) => quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                jcs(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut names: Vec<&String> = members.keys().collect();
            names.sort_by_key(|name| name.encode_utf16().collect::<Vec<u16>>());
            out.push('{');
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote(name, out);
                out.push(':');
                jcs(&members[name], out);
            }
            out.push('}');
        }
    }
}

fn quote(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The document's rule: SHA-256 of the 64 hex characters of `prev_hash`
/// followed by the JCS of the envelope without `hash`, as lowercase hex.
fn documented_hash(envelope: &Value) -> String {
    let mut without = envelope.clone();
    without.as_object_mut().unwrap().remove("hash");
    let mut canonical = String::new();
    jcs(&without, &mut canonical);
    let mut digest = Sha256::new();
    digest.update(envelope["prev_hash"].as_str().unwrap().as_bytes());
    digest.update(canonical.as_bytes());
    digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn chain(datas: Vec<Value>) -> Vec<Envelope> {
    let mut prev = EventHash::GENESIS;
    let mut out = Vec::new();
    for (i, data) in datas.into_iter().enumerate() {
        let envelope = Envelope {
            position: i as u64 + 1,
            event_id: Uuid::from_u128(0x0193_b2d4_5b7e_7c3a_9f00_0000_0000_0000 + i as u128),
            stream_id: StreamId::new("lender", Uuid::from_u128(7)).unwrap(),
            stream_version: i as u64 + 1,
            event_type: "Noted".into(),
            schema_version: 1,
            data,
            metadata: Metadata {
                actor: Some("operator:ü".into()),
                ..Metadata::default()
            },
            recorded_at: Timestamp::parse("2026-11-23T09:15:02.123456Z").unwrap(),
            prev_hash: prev,
            hash: EventHash::GENESIS,
        }
        .seal();
        prev = envelope.hash;
        out.push(envelope);
    }
    out
}

#[test]
fn the_documented_rule_recomputes_every_hash_of_a_chain() {
    assert!(
        DOC.contains(
            r#"hash(e) = lowercase_hex( SHA-256( ascii(e.prev_hash) || JCS(e without "hash") ) )"#
        ),
        "the rule this test implements is the one the document states"
    );
    // Names whose UTF-8 and UTF-16 orders differ, escapes, astral
    // characters, nesting, big integers.
    let envelopes = chain(vec![
        json!({"key_prefix": "26e20e5777b15052"}),
        json!({"\u{ff61}": 1, "😀": 2, "é": 3, "a": 4, "B": 5}),
        json!({"text": "quote \" backslash \\ slash / tab \t nl \n ctl \u{1}\u{1f} del \u{7f} é 😀 </script>"}),
        json!({"nested": {"z": [3, 2, {"y": null, "x": true}], "a": false}, "n": 9007199254740991_u64, "neg": -42}),
    ]);
    let mut prev = "0".repeat(64);
    for envelope in &envelopes {
        let as_exported = serde_json::to_value(envelope).unwrap();
        assert_eq!(as_exported["prev_hash"], prev.as_str(), "linked");
        let recomputed = documented_hash(&as_exported);
        assert_eq!(
            as_exported["hash"],
            recomputed.as_str(),
            "position {}",
            envelope.position
        );
        prev = recomputed;
    }

    // And a change anywhere shows.
    let mut changed = serde_json::to_value(&envelopes[2]).unwrap();
    changed["data"]["text"] = "quote".into();
    assert_ne!(changed["hash"], documented_hash(&changed).as_str());
}

#[test]
fn the_documented_example_hashes_as_stated() {
    // The example's canonical line, taken from the document itself.
    let line = DOC
        .lines()
        .find(|l| l.starts_with(r#"{"data":{"key_prefix""#))
        .expect("the example's canonical form");
    let example: Value = serde_json::from_str(line).unwrap();
    let mut canonical = String::new();
    jcs(&example, &mut canonical);
    assert_eq!(canonical, line, "the example is already canonical");
    let envelope: Envelope = serde_json::from_value({
        let mut with_hash = example.clone();
        with_hash["hash"] = "0".repeat(64).into();
        with_hash
    })
    .unwrap();
    let mut with_hash = example;
    with_hash["hash"] = envelope.compute_hash().to_hex().into();
    assert_eq!(with_hash["hash"], documented_hash(&with_hash).as_str());
}
