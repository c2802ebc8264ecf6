//! `docs/log-format.md`'s example of the Merkle tree ("Example: a log of
//! seven events") is what the code computes: this test reads every value
//! from the page's own text (its fenced blocks `tree-example-…`) and
//! recomputes it from the envelopes and the key seed the page gives: the
//! chain, the leaf and node hashes, both proofs (made by the production
//! code and also checked by its verifiers) and the signed checkpoint note,
//! byte for byte. Nothing expected is a constant here, so a digit changed
//! in the page fails the test.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use proofline_domain::log::{ChainVerifier, Envelope, EventHash};
use proofline_domain::merkle::tree::Tree;
use proofline_domain::merkle::{
    self, Hash, Span, consistency_spans, inclusion_spans, leaf_hash, verify_consistency,
    verify_inclusion,
};
use proofline_domain::note::{self, Checkpoint, KeyType, Verifier};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DOC: &str = include_str!("../../docs/log-format.md");

/// The lines of the page's one fenced block opened by ```` ```<info> ````.
fn block(info: &str) -> Vec<&'static str> {
    let fence = format!("```{info}");
    assert_eq!(
        DOC.lines().filter(|l| *l == fence).count(),
        1,
        "the page has one {fence} block"
    );
    let mut lines = DOC.lines().skip_while(|l| *l != fence).skip(1);
    let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
    assert!(!body.is_empty(), "{fence} is not empty");
    body
}

/// The page's prose with every run of whitespace as one space, so that a
/// sentence can be found whatever its line breaks.
fn prose() -> String {
    DOC.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn from_hex(text: &str) -> Hash {
    let mut out = [0; 32];
    hex::decode_to_slice(text, &mut out).unwrap_or_else(|e| panic!("{text}: {e}"));
    out
}

fn from_b64(text: &str) -> Hash {
    STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .try_into()
        .unwrap_or_else(|_| panic!("{text}: not 32 bytes"))
}

fn b64(hash: &Hash) -> String {
    STANDARD.encode(hash)
}

/// The page's seven envelopes, each one line of canonical JSON.
fn envelopes() -> Vec<(&'static str, Envelope)> {
    block("json tree-example-envelopes")
        .into_iter()
        .map(|line| {
            let envelope = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            (line, envelope)
        })
        .collect()
}

/// The leaf hashes of the page's envelopes, computed by the production code.
fn leaves() -> Vec<Hash> {
    envelopes()
        .iter()
        .map(|(_, e)| leaf_hash(&e.leaf_bytes()))
        .collect()
}

/// Rows of a whitespace-separated table block, its header (the first row)
/// left out.
fn rows(info: &str) -> Vec<Vec<&'static str>> {
    let lines = block(info);
    lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// `D[a:b]` as a span.
fn span_of(name: &str) -> Span {
    let inner = name
        .strip_prefix("D[")
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{name} is not D[a:b]"));
    let (a, b) = inner.split_once(':').unwrap();
    a.parse().unwrap()..b.parse().unwrap()
}

/// How the page names a proof's hashes: "leaf 5 (`D[5:6]`), leaf 6
/// (`D[6:7]`) and `D[0:4]`".
fn names(spans: &[Span]) -> String {
    let named: Vec<String> = spans
        .iter()
        .map(|s| {
            if s.end - s.start == 1 {
                format!("leaf {} (`D[{}:{}]`)", s.start, s.start, s.end)
            } else {
                format!("`D[{}:{}]`", s.start, s.end)
            }
        })
        .collect();
    let (last, rest) = named.split_last().unwrap();
    format!("{} and {last}", rest.join(", "))
}

#[test]
fn the_page_states_the_rules_this_test_applies() {
    let text = prose();
    for rule in [
        "leaf_hash(e) = SHA-256( 0x00 || JCS(e) )",
        "MTH(D[a:b]) = SHA-256( 0x01 || MTH(D[a:a+k]) || MTH(D[a+k:b]) )",
        "SHA-256( name || 0x0A || 0x01 || public key )",
        "<name>+<key id as 8 lowercase hex digits>+<base64(0x01 || public key)>",
    ] {
        assert!(text.contains(rule), "the page states {rule}");
    }
}

#[test]
fn the_example_envelopes_chain_and_each_line_is_its_leaf_data() {
    let envelopes = envelopes();
    assert_eq!(envelopes.len(), 7, "a log of seven events");
    let mut chain = ChainVerifier::new();
    let mut prev = EventHash::GENESIS;
    for (i, (line, envelope)) in envelopes.iter().enumerate() {
        assert_eq!(envelope.position, i as u64 + 1);
        assert_eq!(envelope.prev_hash, prev, "position {}", envelope.position);
        assert_eq!(
            envelope.hash,
            envelope.compute_hash(),
            "position {}",
            envelope.position
        );
        chain.check(envelope).unwrap();
        // The line is the canonical form of the whole envelope, byte for
        // byte: the leaf data.
        assert_eq!(
            String::from_utf8(envelope.leaf_bytes()).unwrap(),
            *line,
            "position {}",
            envelope.position
        );
        prev = envelope.hash;
    }

    // What the page says of their lengths and of the entry bundle.
    let length = envelopes[0].0.len();
    assert!(envelopes.iter().all(|(line, _)| line.len() == length));
    let text = prose();
    assert!(text.contains(&format!("line is {length} bytes")));
    assert!(text.contains(&format!(
        "each entry starts with the length `{:02x} {:02x}`",
        length >> 8,
        length & 0xff
    )));
    assert!(text.contains(&format!("`/tlog/tile/entries/000.p/{}`", envelopes.len())));
}

#[test]
fn the_listed_leaf_and_node_hashes_are_the_tree_of_the_envelopes() {
    let envelopes = envelopes();
    let leaves = leaves();
    let listed = rows("text tree-example-leaves");
    assert_eq!(listed.len(), leaves.len(), "one row per leaf");
    for (i, row) in listed.iter().enumerate() {
        let [index, position, hex, base64] = row[..] else {
            panic!("a row is index, position, hex, base64: {row:?}");
        };
        assert_eq!(index.parse::<usize>().unwrap(), i);
        assert_eq!(position.parse::<u64>().unwrap(), envelopes[i].1.position);
        // SHA-256(0x00 || line), as the page says, and the production code.
        let documented: Hash = Sha256::new()
            .chain_update([0x00])
            .chain_update(envelopes[i].0.as_bytes())
            .finalize()
            .into();
        assert_eq!(documented, leaves[i], "leaf {i}");
        assert_eq!(from_hex(hex), leaves[i], "leaf {i} (hex)");
        assert_eq!(from_b64(base64), leaves[i], "leaf {i} (base64)");
    }
    let tile = format!(
        "`/tlog/tile/0/000.p/{}` ({} bytes)",
        leaves.len(),
        leaves.len() * 32
    );
    assert!(prose().contains(&tile), "the page names {tile}");

    let mut tree = Tree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    let mut named = Vec::new();
    for row in rows("text tree-example-nodes") {
        let [name, hex, base64] = row[..] else {
            panic!("a row is name, hex, base64: {row:?}");
        };
        let span = span_of(name);
        let (a, b) = (span.start as usize, span.end as usize);
        let hash = merkle::root(&leaves[a..b]);
        assert_eq!(from_hex(hex), hash, "{name} (hex)");
        assert_eq!(from_b64(base64), hash, "{name} (base64)");
        if a == 0 {
            assert_eq!(tree.root_at(span.end), Some(hash), "{name}, stored levels");
        }
        named.push(name);
    }
    for root in ["D[0:3]", "D[0:7]"] {
        assert!(named.contains(&root), "the page lists the root {root}");
    }
    assert_eq!(tree.root(), merkle::root(&leaves));
}

#[test]
fn the_listed_inclusion_proof_is_the_trees_and_holds() {
    let leaves = leaves();
    let listed: Value =
        serde_json::from_str(&block("json tree-example-inclusion").join("\n")).unwrap();
    let position = listed["position"].as_u64().unwrap();
    let size = listed["tree_size"].as_u64().unwrap();
    let index = position - 1;
    let prefix = &leaves[..size as usize];
    let proof = merkle::inclusion_proof(index as usize, prefix).unwrap();
    let mut tree = Tree::new();
    prefix.iter().for_each(|leaf| {
        tree.push(*leaf);
    });
    assert_eq!(tree.inclusion_proof(index, size).as_ref(), Some(&proof));
    let expected = json!({
        "position": position,
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": b64(&leaves[index as usize]),
        "hashes": proof.iter().map(b64).collect::<Vec<_>>(),
    });
    assert_eq!(listed, expected);

    // The listed hashes lead from the listed leaf to the root.
    let hashes: Vec<Hash> = listed["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| from_b64(h.as_str().unwrap()))
        .collect();
    let leaf = from_b64(listed["leaf_hash"].as_str().unwrap());
    let root = merkle::root(prefix);
    assert_eq!(verify_inclusion(index, size, &leaf, &hashes, &root), Ok(()));
    let mut changed = hashes.clone();
    changed[1][0] ^= 1;
    assert!(verify_inclusion(index, size, &leaf, &changed, &root).is_err());
    assert!(verify_inclusion(index + 1, size, &leaf, &hashes, &root).is_err());

    let said = format!(
        "The hashes are {}.",
        names(&inclusion_spans(index, size).unwrap())
    );
    assert!(prose().contains(&said), "the page says: {said}");
}

#[test]
fn the_listed_consistency_proof_is_the_trees_and_holds() {
    let leaves = leaves();
    let listed: Value =
        serde_json::from_str(&block("json tree-example-consistency").join("\n")).unwrap();
    let from = listed["from"].as_u64().unwrap();
    let to = listed["to"].as_u64().unwrap();
    let prefix = &leaves[..to as usize];
    let proof = merkle::consistency_proof(from as usize, prefix).unwrap();
    let mut tree = Tree::new();
    prefix.iter().for_each(|leaf| {
        tree.push(*leaf);
    });
    assert_eq!(tree.consistency_proof(from, to).as_ref(), Some(&proof));
    let expected = json!({
        "from": from,
        "to": to,
        "hashes": proof.iter().map(b64).collect::<Vec<_>>(),
    });
    assert_eq!(listed, expected);

    let hashes: Vec<Hash> = listed["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| from_b64(h.as_str().unwrap()))
        .collect();
    let old_root = merkle::root(&leaves[..from as usize]);
    let new_root = merkle::root(prefix);
    assert_eq!(
        verify_consistency(from, to, &old_root, &new_root, &hashes),
        Ok(())
    );
    let mut changed = hashes.clone();
    changed[2][31] ^= 1;
    assert!(verify_consistency(from, to, &old_root, &new_root, &changed).is_err());
    assert!(verify_consistency(from + 1, to, &old_root, &new_root, &hashes).is_err());

    let said = format!(
        "The hashes are {}.",
        names(&consistency_spans(from, to).unwrap())
    );
    assert!(prose().contains(&said), "the page says: {said}");
}

#[test]
fn the_listed_note_is_the_tree_signed_with_the_listed_test_key() {
    let envelopes = envelopes();
    let leaves = leaves();
    let listed: Vec<(&str, &str)> = block("text tree-example-key")
        .into_iter()
        .map(|l| {
            let (name, value) = l.split_once("  ").unwrap();
            (name, value.trim())
        })
        .collect();
    let get = |name: &str| {
        listed
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("the key block lists {name}"))
            .1
    };
    let key = SigningKey::from_bytes(&from_hex(get("seed")));
    let public = key.verifying_key();
    let origin = get("origin");
    assert_eq!(get("public_key"), URL_SAFE_NO_PAD.encode(public.as_bytes()));
    let key_id = note::key_id(origin, KeyType::Ed25519, &public);
    assert_eq!(get("key id"), format!("{key_id:08x}"));
    assert_eq!(
        get("note_vkey"),
        note::vkey(origin, KeyType::Ed25519, &public).unwrap()
    );

    // The note of the whole example's tree, signed again: the same bytes.
    let listed_note: String = block("text tree-example-note")
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let checkpoint = Checkpoint {
        origin: origin.to_owned(),
        size: envelopes.len() as u64,
        root: merkle::root(&leaves),
        extensions: Vec::new(),
    };
    assert_eq!(checkpoint.sign(&key).unwrap(), listed_note);

    // And it opens with the listed verifier key alone.
    let verifier = Verifier::parse(get("note_vkey")).unwrap();
    let (opened, _) = Checkpoint::open(&listed_note, &verifier, &[]).unwrap();
    assert_eq!(opened, checkpoint);
    let other = Checkpoint {
        size: checkpoint.size - 1,
        root: merkle::root(&leaves[..leaves.len() - 1]),
        ..checkpoint.clone()
    };
    let forged = listed_note.replacen(&checkpoint.body(), &other.body(), 1);
    assert!(Checkpoint::open(&forged, &verifier, &[]).is_err());

    // What the page says of it.
    let text = prose();
    let id = key_id.to_be_bytes().map(|b| format!("{b:02x}")).join(" ");
    assert!(
        text.contains(&format!("Its signature decodes to `{id}` (the key id)")),
        "the page names the key id bytes {id}"
    );
    let last = envelopes.last().unwrap().1.hash.to_hex();
    let event = format!(
        "this checkpoint would be event {}: a `LogCheckpointSigned` with `position` {}, `hash` `{}…{}`",
        envelopes.len() + 1,
        checkpoint.size,
        &last[..8],
        &last[56..]
    );
    assert!(text.contains(&event), "the page says: {event}");
}
