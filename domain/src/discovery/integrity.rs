//! Subresource Integrity (W3C SRI), as SD-JWT VC type metadata uses it
//! for `vct#integrity`: a fetched document is checked against the digests
//! its referrer committed to.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Longest integrity metadata (`vct#integrity`) accepted.
pub const MAX_INTEGRITY_LEN: usize = 4096;

/// The hash functions of Subresource Integrity, weakest first, so that
/// the strongest present is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IntegrityAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl IntegrityAlgorithm {
    /// ASCII case-insensitively, as SRI names them; `None` for an
    /// algorithm that is not supported, which SRI ignores.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            IntegrityAlgorithm::Sha256 => "sha256",
            IntegrityAlgorithm::Sha384 => "sha384",
            IntegrityAlgorithm::Sha512 => "sha512",
        }
    }

    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            IntegrityAlgorithm::Sha256 => Sha256::digest(bytes).to_vec(),
            IntegrityAlgorithm::Sha384 => Sha384::digest(bytes).to_vec(),
            IntegrityAlgorithm::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

impl fmt::Display for IntegrityAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrityError {
    #[error("the integrity metadata is longer than {MAX_INTEGRITY_LEN} characters")]
    TooLong,
    #[error("the integrity metadata names no supported algorithm (sha256, sha384, sha512)")]
    NoSupportedAlgorithm,
    #[error("the document's {0} digest is none of those the integrity metadata lists")]
    Mismatch(IntegrityAlgorithm),
}

/// Standard base64, padded or not: SRI digests are written padded, but
/// unpadded ones are common enough not to fail on.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks `bytes` against integrity metadata (W3C SRI): whitespace-separated
/// `<alg>-<base64 digest>[?options]`. Only the strongest supported
/// algorithm present counts (a weaker digest cannot stand in for it), and
/// any one of its digests matching passes. A malformed digest of that
/// algorithm matches nothing.
pub fn check_integrity(integrity: &str, bytes: &[u8]) -> Result<(), IntegrityError> {
    if integrity.len() > MAX_INTEGRITY_LEN {
        return Err(IntegrityError::TooLong);
    }
    let digests: Vec<(IntegrityAlgorithm, &str)> = integrity
        .split_ascii_whitespace()
        .filter_map(|token| {
            let expression = token.split_once('?').map_or(token, |(e, _)| e);
            let (alg, digest) = expression.split_once('-')?;
            Some((IntegrityAlgorithm::parse(alg)?, digest))
        })
        .collect();
    let strongest = digests
        .iter()
        .map(|(alg, _)| *alg)
        .max()
        .ok_or(IntegrityError::NoSupportedAlgorithm)?;
    let actual = strongest.digest(bytes);
    let matched = digests
        .iter()
        .filter(|(alg, _)| *alg == strongest)
        .any(|(_, digest)| BASE64_ANY_PADDING.decode(digest).is_ok_and(|d| d == actual));
    if matched {
        Ok(())
    } else {
        Err(IntegrityError::Mismatch(strongest))
    }
}

/// The SHA-256 integrity metadata of `bytes`, `sha256-<base64>`.
pub fn integrity_of(bytes: &[u8]) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(IntegrityAlgorithm::Sha256.digest(bytes))
    )
}
