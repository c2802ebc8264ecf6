//! Signed notes (c2sp.org/signed-note), transparency-log checkpoints
//! (c2sp.org/tlog-checkpoint) and Ed25519 witness cosignatures
//! (c2sp.org/tlog-cosignature, `cosignature/v1`).
//!
//! These are the formats the transparency-log ecosystem speaks: a log's
//! head published as a checkpoint note can be checked with standard tools
//! and cosigned by independent witnesses, whose signature lines are kept
//! and served alongside the log's own. Only Ed25519 is supported (signature
//! types `0x01` and `0x04`); other signature lines are kept and ignored.
//!
//! A note is its text (non-empty, every line ending in a newline, empty
//! lines allowed), a blank line, then one or more signature lines
//! `— <key name> base64(key id || signature)`. The text ends at the note's
//! last blank line, which signature lines cannot hold.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note accepted, in bytes.
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// The most signature lines accepted in a note (the spec asks verifiers to
/// bound them, and to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Starts every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("note of {0} bytes is larger than the 1 MiB limit")]
    TooLarge(usize),
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    #[error("invalid key name {0:?}: empty, or with a space, '+' or control character")]
    InvalidName(String),
    #[error("malformed verifier key: {0}")]
    MalformedVkey(String),
    #[error("unsupported signature type 0x{0:02x} (only Ed25519 0x01 and cosignature 0x04)")]
    UnsupportedKeyType(u8),
    #[error("verifier key {0}: the key id is not the one of its name and key")]
    KeyIdMismatch(String),
    #[error("ambiguous key {0}: two different verifiers have it")]
    AmbiguousKey(String),
    #[error("signature by unknown key {found} (expected {expected})")]
    UnknownKey { found: String, expected: String },
    #[error("invalid signature by key {0}")]
    BadSignature(String),
    #[error("note has no verified signature from a known key")]
    NoKnownSignature,
    #[error("note is not signed by {0}")]
    NotSignedBy(String),
    #[error("checkpoint origin {found:?} is not the log's key name {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("cosignature timestamp {0} is above 2^63-1")]
    TimestampOutOfRange(u64),
}

fn malformed(what: &str) -> NoteError {
    NoteError::Malformed(what.to_owned())
}

/// The signature types this module knows: each decides both the key id and
/// what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `0x01`: Ed25519 over the note text.
    Ed25519,
    /// `0x04`: timestamped Ed25519 checkpoint cosignature (`cosignature/v1`).
    Cosignature,
}

impl KeyType {
    pub const fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }
}

/// Checks a key name: non-empty, no '+', no Unicode spaces (the spec's
/// rules) and no control characters (a note cannot hold them).
pub fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c < ' ')
    {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// The key id: the first four bytes, big-endian, of
/// SHA-256(name || 0x0A || type || 32-byte public key).
pub fn key_id(name: &str, kind: KeyType, key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', kind.byte()])
        .chain_update(key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `name+keyid`, how keys are named in errors.
fn label(name: &str, key_id: u32) -> String {
    format!("{name}+{key_id:08x}")
}

/// A known key: its name, id, signature type and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub key_id: u32,
    pub kind: KeyType,
    pub key: VerifyingKey,
}

impl Verifier {
    pub fn new(name: &str, kind: KeyType, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_id = key_id(name, kind, &key);
        Ok(Verifier {
            name: name.to_owned(),
            key_id,
            kind,
            key,
        })
    }

    /// Parses a vkey `<name>+<hex key id>+<base64(type || public key)>`,
    /// checking that the key id is the one of that name and key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |what: &str| NoteError::MalformedVkey(what.to_owned());
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<key id>+<key>"));
        };
        check_name(name)?;
        if id.len() != 8 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the key id is not 8 lowercase hex digits"));
        }
        let bytes = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not standard base64"))?;
        let kind = match bytes.first() {
            Some(0x01) => KeyType::Ed25519,
            Some(0x04) => KeyType::Cosignature,
            Some(&other) => return Err(NoteError::UnsupportedKeyType(other)),
            None => return Err(bad("empty key")),
        };
        let key: [u8; 32] = bytes[1..]
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 point"))?;
        let verifier = Verifier::new(name, kind, key)?;
        if u32::from_str_radix(id, 16) != Ok(verifier.key_id) {
            return Err(NoteError::KeyIdMismatch(format!("{name}+{id}")));
        }
        Ok(verifier)
    }

    fn matches(&self, signature: &Signature) -> bool {
        self.name == signature.name && self.key_id == signature.key_id
    }

    /// Checks `signature` over `text` the way the key's type says.
    fn verify(&self, text: &str, signature: &[u8]) -> bool {
        let (message, signature) = match self.kind {
            KeyType::Ed25519 => (text.to_owned(), signature),
            KeyType::Cosignature => match cosignature_parts(signature) {
                Some((timestamp, signature)) => (cosigned_message(timestamp, text), signature),
                None => return false,
            },
        };
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|s| self.key.verify_strict(message.as_bytes(), &s).is_ok())
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = [&[self.kind.byte()], self.key.as_bytes().as_slice()].concat();
        write!(
            f,
            "{}+{}",
            label(&self.name, self.key_id),
            STANDARD.encode(key)
        )
    }
}

/// The vkey of `key` named `name` for signatures of type `kind`:
/// `<name>+<8 hex key id>+<base64(type || public key)>`.
pub fn vkey(name: &str, kind: KeyType, key: &VerifyingKey) -> Result<String, NoteError> {
    Ok(Verifier::new(name, kind, *key)?.to_string())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub key_id: u32,
    /// The bytes after the key id (for a cosignature, the timestamp and the
    /// Ed25519 signature).
    pub signature: Vec<u8>,
    /// The type of the known key that verified it; `None` for a signature
    /// by an unknown key, kept but not checked.
    pub verified_by: Option<KeyType>,
}

impl Signature {
    /// Parses `— <name> <base64(key id || signature)>\n`.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let (name, encoded) = line
            .strip_suffix('\n')
            .and_then(|line| line.strip_prefix(SIGNATURE_PREFIX))
            .and_then(|rest| rest.split_once(' '))
            .ok_or_else(|| malformed("a signature line is `— <name> <signature>` and a newline"))?;
        check_name(name)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| malformed("a signature is not standard base64"))?;
        if bytes.len() < 5 {
            return Err(malformed(
                "a signature is shorter than its key id and one byte",
            ));
        }
        Ok(Signature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            signature: bytes[4..].to_vec(),
            verified_by: None,
        })
    }

    /// The signature line, with its final newline.
    pub fn line(&self) -> String {
        let bytes = [&self.key_id.to_be_bytes(), self.signature.as_slice()].concat();
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(bytes)
        )
    }

    /// The timestamp of a verified cosignature.
    pub fn timestamp(&self) -> Option<u64> {
        match self.verified_by {
            Some(KeyType::Cosignature) => cosignature_parts(&self.signature).map(|(t, _)| t),
            _ => None,
        }
    }
}

fn signature_line(name: &str, key_id: u32, signature: &[u8]) -> String {
    let signature = signature.to_vec();
    Signature {
        name: name.to_owned(),
        key_id,
        signature,
        verified_by: None,
    }
    .line()
}

/// A note whose text is vouched for by at least one known key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The text, with its final newline but not the blank line.
    pub text: String,
    /// Every signature line, in the note's order, verified or not.
    pub signatures: Vec<Signature>,
}

impl Opened {
    pub fn verified(&self) -> impl Iterator<Item = &Signature> {
        self.signatures.iter().filter(|s| s.verified_by.is_some())
    }

    pub fn unverified(&self) -> impl Iterator<Item = &Signature> {
        self.signatures.iter().filter(|s| s.verified_by.is_none())
    }

    /// Whether `verifier`'s key verified a signature of the note.
    pub fn signed_by(&self, verifier: &Verifier) -> bool {
        self.verified()
            .any(|s| verifier.matches(s) && s.verified_by == Some(verifier.kind))
    }

    /// The note again, byte for byte.
    pub fn note(&self) -> String {
        let lines: String = self.signatures.iter().map(Signature::line).collect();
        format!("{}\n{lines}", self.text)
    }
}

/// The text rules: non-empty and ending in a newline, then the note rules.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(malformed("the text must be non-empty and end in a newline"));
    }
    check_characters(text)
}

/// The note rules: at most [`MAX_NOTE_SIZE`], no control characters but
/// newlines.
fn check_characters(note: &str) -> Result<(), NoteError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge(note.len()));
    }
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character other than newline"));
    }
    Ok(())
}

/// Splits a note into its text and signature lines, checking its format
/// but no signature.
fn split(note: &str) -> Result<(&str, Vec<Signature>), NoteError> {
    check_characters(note)?;
    let blank = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, lines) = (&note[..=blank], &note[blank + 2..]);
    if lines.is_empty() || !lines.ends_with('\n') {
        return Err(malformed(
            "no signature lines, or they do not end in a newline",
        ));
    }
    if lines.split_inclusive('\n').nth(MAX_SIGNATURES).is_some() {
        return Err(NoteError::TooManySignatures);
    }
    let signatures = lines.split_inclusive('\n').map(Signature::parse_line);
    Ok((text, signatures.collect::<Result<_, _>>()?))
}

/// Signs `text` with the Ed25519 key `key` named `name`, returning the
/// whole note (text, blank line, one signature line).
pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    check_text(text)?;
    let key_id = Verifier::new(name, KeyType::Ed25519, key.verifying_key())?.key_id;
    let signature = key.sign(text.as_bytes()).to_bytes();
    let note = format!("{text}\n{}", signature_line(name, key_id, &signature));
    check_characters(&note)?;
    Ok(note)
}

/// Opens a note: checks its format, verifies every signature whose name and
/// key id are those of a known verifier (any failure rejects the note),
/// keeps the others unverified, and fails unless a known key signed.
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<Opened, NoteError> {
    let (text, mut signatures) = split(note)?;
    for signature in &mut signatures {
        let mut known = verifiers.iter().filter(|v| v.matches(signature));
        let Some(verifier) = known.next() else {
            continue;
        };
        let key = label(&signature.name, signature.key_id);
        if known.any(|other| other != verifier) {
            return Err(NoteError::AmbiguousKey(key));
        }
        if !verifier.verify(text, &signature.signature) {
            return Err(NoteError::BadSignature(key));
        }
        signature.verified_by = Some(verifier.kind);
    }
    if !signatures.iter().any(|s| s.verified_by.is_some()) {
        return Err(NoteError::NoKnownSignature);
    }
    Ok(Opened {
        text: text.to_owned(),
        signatures,
    })
}

/// Appends signature `lines` (each ending in a newline) to `note`, skipping
/// those it already has. Nothing is verified here: append only lines
/// checked before (with [`verify_cosignature`], say).
pub fn append_signatures(note: &str, lines: &[&str]) -> Result<String, NoteError> {
    let (_, existing) = split(note)?;
    let mut known: Vec<String> = existing.iter().map(Signature::line).collect();
    let mut note = note.to_owned();
    for line in lines {
        let line = Signature::parse_line(line)?.line();
        if known.contains(&line) {
            continue;
        }
        if known.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        note.push_str(&line);
        known.push(line);
    }
    check_characters(&note)?;
    Ok(note)
}

/// A checkpoint: the note text naming a log's Merkle tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, also the name of its key.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root hash at `size`.
    pub root: [u8; 32],
    /// Optional opaque lines, each non-empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root hash, extension lines.
    pub fn body(&self) -> String {
        let root = STANDARD.encode(self.root);
        let mut body = format!("{}\n{}\n{root}\n", self.origin, self.size);
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = |what: &str| NoteError::MalformedCheckpoint(what.to_owned());
        check_text(body)?;
        let mut lines = body[..body.len() - 1].split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(bad("fewer than three lines (origin, size, root hash)"));
        };
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let digits = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
        if !digits || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("the tree size is not a decimal without leading zeros"));
        }
        let size = size
            .parse()
            .map_err(|_| bad("the tree size is above 2^64-1"))?;
        let root = STANDARD
            .decode(root)
            .map_err(|_| bad("the root hash is not standard base64"))?
            .try_into()
            .map_err(|_| bad("the root hash is not 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint as the log: a note signed by `key` with the
    /// origin as key name.
    pub fn sign(&self, key: &SigningKey) -> Result<String, NoteError> {
        let body = self.body();
        if Checkpoint::parse(&body)? != *self {
            return Err(NoteError::MalformedCheckpoint(
                "a line holds a newline".into(),
            ));
        }
        sign(&body, &self.origin, key)
    }

    /// Opens a checkpoint note signed by `log` (whose name must be the
    /// origin), verifying the cosignatures of the known `witnesses` too.
    pub fn open(
        note: &str,
        log: &Verifier,
        witnesses: &[Verifier],
    ) -> Result<(Self, Opened), NoteError> {
        let verifiers = [std::slice::from_ref(log), witnesses].concat();
        let opened = open(note, &verifiers)?;
        let checkpoint = Checkpoint::parse(&opened.text)?;
        if checkpoint.origin != log.name {
            let (expected, found) = (log.name.clone(), checkpoint.origin);
            return Err(NoteError::WrongOrigin { expected, found });
        }
        if !opened.signed_by(log) {
            return Err(NoteError::NotSignedBy(label(&log.name, log.key_id)));
        }
        Ok((checkpoint, opened))
    }
}

/// What a `cosignature/v1` signs: the header, the time line, the body.
fn cosigned_message(timestamp: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// Splits a timestamped signature into its timestamp (at most 2^63-1) and
/// its 64-byte Ed25519 signature.
fn cosignature_parts(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (timestamp, signature) = bytes.split_first_chunk::<8>()?;
    let timestamp = u64::from_be_bytes(*timestamp);
    (signature.len() == 64 && timestamp <= i64::MAX as u64).then_some((timestamp, signature))
}

/// Cosigns a checkpoint `body` as the witness `name` at `timestamp` (POSIX
/// seconds), returning the signature line to append to the note.
pub fn cosign(
    body: &str,
    name: &str,
    key: &SigningKey,
    timestamp: u64,
) -> Result<String, NoteError> {
    Checkpoint::parse(body)?;
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::TimestampOutOfRange(timestamp));
    }
    let key_id = Verifier::new(name, KeyType::Cosignature, key.verifying_key())?.key_id;
    let signature = key.sign(cosigned_message(timestamp, body).as_bytes());
    let bytes = [timestamp.to_be_bytes().as_slice(), &signature.to_bytes()].concat();
    Ok(signature_line(name, key_id, &bytes))
}

/// Verifies the cosignature `line` of the witness `name` with `key` over
/// the checkpoint `body`, returning its timestamp.
pub fn verify_cosignature(
    line: &str,
    body: &str,
    name: &str,
    key: &VerifyingKey,
) -> Result<u64, NoteError> {
    let verifier = Verifier::new(name, KeyType::Cosignature, *key)?;
    let signature = Signature::parse_line(line)?;
    let found = label(&signature.name, signature.key_id);
    if !verifier.matches(&signature) {
        let expected = label(name, verifier.key_id);
        return Err(NoteError::UnknownKey { found, expected });
    }
    let Some((timestamp, _)) = signature.signature.split_first_chunk::<8>() else {
        return Err(malformed(
            "a cosignature is an 8-byte time and a 64-byte signature",
        ));
    };
    let timestamp = u64::from_be_bytes(*timestamp);
    if timestamp > i64::MAX as u64 {
        return Err(NoteError::TimestampOutOfRange(timestamp));
    }
    if !verifier.verify(body, &signature.signature) {
        return Err(NoteError::BadSignature(found));
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    // From golang.org/x/mod/sumdb/note's tests: two vkeys, PeterNeumann's
    // signing key (0x01 || seed), a text and both keys' signatures of it.
    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const PETER_SEED: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    // From c2sp.org/tlog-checkpoint.
    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn peter_key() -> SigningKey {
        let bytes = STANDARD.decode(PETER_SEED).unwrap();
        SigningKey::from_bytes(&bytes[1..].try_into().unwrap())
    }

    fn peter() -> Vec<Verifier> {
        vec![Verifier::parse(PETER).unwrap()]
    }

    #[test]
    fn the_go_vectors_sign_and_open() {
        let key = peter_key();
        assert_eq!(peter()[0].key, key.verifying_key());
        assert_eq!(peter()[0].to_string(), PETER);
        assert_eq!(
            vkey("PeterNeumann", KeyType::Ed25519, &key.verifying_key()),
            Ok(PETER.into())
        );
        let note = sign(TEXT, "PeterNeumann", &key).unwrap();
        assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));

        let both = format!("{note}{ENOCH_SIG}");
        let opened = open(&both, &peter()).unwrap();
        assert_eq!(opened.text, TEXT);
        assert!(opened.signed_by(&peter()[0]));
        let unknown: Vec<_> = opened.unverified().map(|s| s.name.as_str()).collect();
        assert_eq!(unknown, ["EnochRoot"]);
        assert_eq!(opened.note(), both);
        let two = [peter(), vec![Verifier::parse(ENOCH).unwrap()]].concat();
        assert_eq!(open(&both, &two).unwrap().verified().count(), 2);
        assert_eq!(open(&both, &[]), Err(NoteError::NoKnownSignature));
    }

    #[test]
    fn the_spec_example_opens() {
        let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        assert!(open(note, &[Verifier::parse(vkey).unwrap()]).is_ok());
    }

    #[test]
    fn bad_vkeys_and_names_are_refused() {
        let key = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        for bad in [
            String::new(),
            "PeterNeumann+c74f20a3".into(),
            format!("PeterNeumann+c74f20a4+{key}"),
            format!("PeterNeumann+C74F20A3+{key}"),
            format!("Peter Neumann+c74f20a3+{key}"),
            format!("PeterNeumann+c74f20a3+{}", &key[..43]),
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==".into(),
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW".into(),
        ] {
            assert!(Verifier::parse(&bad).is_err(), "{bad:?}");
        }
        for name in ["", "a+b", "a b", "a\u{a0}b", "a\u{3000}b", "a\tb"] {
            assert_eq!(check_name(name), Err(NoteError::InvalidName(name.into())));
        }
    }

    #[test]
    fn a_changed_note_or_another_key_does_not_open() {
        let note = sign(TEXT, "PeterNeumann", &peter_key()).unwrap();
        let bad = Err(NoteError::BadSignature("PeterNeumann+c74f20a3".into()));
        assert_eq!(open(&note.replacen("think", "thinK", 1), &peter()), bad);
        assert_eq!(
            open(&note.replacen("x08go/ZJ", "x08go/ZK", 1), &peter()),
            bad
        );
        let other = SigningKey::from_bytes(&[9; 32]);
        let by_other = sign(TEXT, "PeterNeumann", &other).unwrap();
        assert_eq!(open(&by_other, &peter()), Err(NoteError::NoKnownSignature));
        let misnamed = sign(TEXT, "PeterNeuman", &peter_key()).unwrap();
        assert_eq!(open(&misnamed, &peter()), Err(NoteError::NoKnownSignature));
        for (text, name) in [
            ("no newline", "a"),
            ("", "a"),
            ("a\n", "a b"),
            ("a\tb\n", "a"),
        ] {
            assert!(sign(text, name, &other).is_err(), "{text:?} {name:?}");
        }
    }

    #[test]
    fn malformed_notes_are_refused() {
        let note = format!("{TEXT}\n{PETER_SIG}");
        for bad in [
            TEXT.to_owned(),
            format!("{TEXT}\n"),
            note.trim_end().to_owned(),
            format!("\u{1}{note}"),
            format!("{note}Unexpected line.\n"),
            note.replace("— PeterNeumann", "— Peter Neumann"),
            note.replace('—', "-"),
            format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1)),
            format!("{}\n{PETER_SIG}", "a\n".repeat(MAX_NOTE_SIZE / 2)),
        ] {
            assert!(open(&bad, &peter()).is_err(), "{bad:.80?}");
        }
        let blank_lines = sign("a\n\nb\n\n", "PeterNeumann", &peter_key()).unwrap();
        assert_eq!(open(&blank_lines, &peter()).unwrap().text, "a\n\nb\n\n");
    }

    #[test]
    fn a_checkpoint_body_round_trips_and_bad_ones_are_refused() {
        let checkpoint = Checkpoint::parse(BODY).unwrap();
        assert_eq!(
            (checkpoint.size, checkpoint.root[..2].to_vec()),
            (20852163, vec![0x0a, 0xc5])
        );
        assert_eq!(checkpoint.body(), BODY);
        let extended = format!("{BODY}ext one\n");
        assert_eq!(
            Checkpoint::parse(&extended).unwrap().extensions,
            ["ext one"]
        );
        assert_eq!(Checkpoint::parse(&extended).unwrap().body(), extended);
        let root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(
            Checkpoint::parse(&format!("log\n0\n{root}\n"))
                .unwrap()
                .size,
            0
        );
        for bad in [
            format!("log\n007\n{root}\n"),
            format!("log\n+7\n{root}\n"),
            format!("log\n18446744073709551616\n{root}\n"),
            format!("log\n7\n{}\n", root.trim_end_matches('=')),
            format!("log\n7\n{}\n", root.replace('+', "-")),
            "log\n7\nAAAA\n".into(),
            "log\n7\n".into(),
            format!("\n7\n{root}\n"),
            format!("log\n7\n{root}\n\n"),
            format!("log\n7\n{root}"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cosigned_checkpoint_opens_and_keeps_its_lines_in_order() {
        let (log_key, witness_key) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let (checkpoint, witness, wkey) = (
            Checkpoint::parse(BODY).unwrap(),
            "w.example/1",
            witness_key.verifying_key(),
        );
        let origin = checkpoint.origin.as_str();
        let log = Verifier::new(origin, KeyType::Ed25519, log_key.verifying_key()).unwrap();
        let note = checkpoint.sign(&log_key).unwrap();

        let line = cosign(BODY, witness, &witness_key, 1679315147).unwrap();
        assert_eq!(
            verify_cosignature(&line, BODY, witness, &wkey),
            Ok(1679315147)
        );
        let moved = BODY.replace("20852163", "20852164");
        assert!(matches!(
            verify_cosignature(&line, &moved, witness, &wkey),
            Err(NoteError::BadSignature(_))
        ));
        assert!(matches!(
            verify_cosignature(&line, BODY, "w2", &wkey),
            Err(NoteError::UnknownKey { .. })
        ));
        let log_line = note.rsplit_once("\n\n").unwrap().1;
        assert!(verify_cosignature(log_line, BODY, origin, &log.key).is_err());
        assert_eq!(
            cosign(BODY, witness, &witness_key, 1 << 63),
            Err(NoteError::TimestampOutOfRange(1 << 63))
        );

        let cosigned = append_signatures(&note, &[&line, &line, ENOCH_SIG]).unwrap();
        assert_eq!(cosigned, format!("{note}{line}{ENOCH_SIG}"));
        let w = Verifier::parse(&vkey(witness, KeyType::Cosignature, &wkey).unwrap()).unwrap();
        let (parsed, opened) = Checkpoint::open(&cosigned, &log, std::slice::from_ref(&w)).unwrap();
        assert_eq!(parsed, checkpoint);
        assert!(opened.signed_by(&w));
        assert_eq!(opened.signatures[1].timestamp(), Some(1679315147));
        assert_eq!((opened.unverified().count(), opened.note()), (1, cosigned));

        let only_witness = format!("{BODY}\n{line}");
        let unsigned = Err(NoteError::NotSignedBy(label(origin, log.key_id)));
        assert_eq!(Checkpoint::open(&only_witness, &log, &[w]), unsigned);
        let elsewhere = Verifier::new("other.example/log", KeyType::Ed25519, log.key).unwrap();
        assert_eq!(
            Checkpoint::open(&note, &elsewhere, &[]),
            Err(NoteError::NoKnownSignature)
        );
        let renamed = sign(BODY, "other.example/log", &log_key).unwrap();
        assert!(matches!(
            Checkpoint::open(&renamed, &elsewhere, &[]),
            Err(NoteError::WrongOrigin { .. })
        ));
    }
}
