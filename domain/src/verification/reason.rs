//! Why a verification failed: a closed set of stable codes, the `reason` of
//! every outcome, event, webhook and HTTP answer. Clients match on them, so
//! a code is never renamed; new ones are added thoughtfully, and a test
//! reaches every one (`domain/tests/verification/reasons.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines [`Reason`], its `ALL` list and its codes from one list, so the
/// three cannot disagree.
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)+) => {
        /// The reason code of a failed step. Serialized as its `as_str()`.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub enum Reason {
            $($(#[$doc])* #[serde(rename = $code)] $variant,)+
        }

        impl Reason {
            /// Every reason, in step order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The code as clients see it, such as `nonce_replayed`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)+
                }
            }
        }
    };
}

reasons! {
    // DECODE
    /// Not an SD-JWT: no `~`, an empty part, a JWS that does not split or
    /// decode, or (at SIGNATURE) nesting deeper than the limit.
    Malformed => "malformed",
    /// Over the size or Disclosure limits.
    TooLarge => "too_large",
    DisclosureMalformed => "disclosure_malformed",
    KbMalformed => "kb_malformed",
    AlgNotAllowed => "alg_not_allowed",
    TypInvalid => "typ_invalid",
    CritUnsupported => "crit_unsupported",
    ClaimNotDisclosable => "claim_not_disclosable",
    SdAlgUnsupported => "sd_alg_unsupported",
    /// The record of the attempt did not fit the log; nothing of the
    /// presentation is kept.
    RecordTooLarge => "record_too_large",
    // FRESHNESS
    CredentialTimeInvalid => "credential_time_invalid",
    CredentialNotYetValid => "credential_not_yet_valid",
    CredentialIssuedInFuture => "credential_issued_in_future",
    CredentialExpired => "credential_expired",
    KbIatInvalid => "kb_iat_invalid",
    KbIatInFuture => "kb_iat_in_future",
    KbIatTooOld => "kb_iat_too_old",
    NonceMismatch => "nonce_mismatch",
    NonceReplayed => "nonce_replayed",
    // ISSUER_AUTH
    IssuerUnknown => "issuer_unknown",
    IssuerSuspended => "issuer_suspended",
    KeyUnknown => "key_unknown",
    KeyRetired => "key_retired",
    KeyRevoked => "key_revoked",
    VctNotAllowed => "vct_not_allowed",
    /// The credential pins its type metadata (`vct#integrity`) and the
    /// document at `vct` (or one it extends) could not be fetched or does
    /// not match.
    TypeMetadataInvalid => "type_metadata_invalid",
    /// The key had to be resolved from the issuer's documents (a DID
    /// document, issuer metadata) and could not be.
    IssuerKeysUnavailable => "issuer_keys_unavailable",
    /// The `x5c` chain ends at no root the operator registered.
    X5cUnknownRoot => "x5c_unknown_root",
    /// A certificate of the `x5c` chain was not valid at the credential's
    /// `iat` or now.
    X5cExpired => "x5c_expired",
    /// The leaf certificate does not name the issuer (`iss`).
    X5cSanMismatch => "x5c_san_mismatch",
    /// The `x5c` chain is malformed, does not validate, or its leaf may not
    /// sign or has a key of another kind.
    X5cInvalid => "x5c_invalid",
    // SIGNATURE
    AlgKeyMismatch => "alg_key_mismatch",
    SignatureInvalid => "signature_invalid",
    SdInvalid => "sd_invalid",
    DisclosureDuplicate => "disclosure_duplicate",
    DisclosureUnreferenced => "disclosure_unreferenced",
    DisclosureWrongKind => "disclosure_wrong_kind",
    DisclosureInvalidName => "disclosure_invalid_name",
    DisclosureClaimConflict => "disclosure_claim_conflict",
    // REVOCATION
    StatusInvalid => "status_invalid",
    StatusListUnknown => "status_list_unknown",
    StatusListIssuerMismatch => "status_list_issuer_mismatch",
    StatusListExpired => "status_list_expired",
    /// The list had to be fetched (never seen, or older than its `ttl`)
    /// and could not be, or what was fetched was refused.
    StatusListUnavailable => "status_list_unavailable",
    StatusIndexOutOfRange => "status_index_out_of_range",
    StatusRevoked => "status_revoked",
    StatusSuspended => "status_suspended",
    // HOLDER_BINDING
    KbMissing => "kb_missing",
    KbTypeInvalid => "kb_type_invalid",
    CnfMissing => "cnf_missing",
    CnfInvalid => "cnf_invalid",
    KbSignatureInvalid => "kb_signature_invalid",
    AudMismatch => "aud_mismatch",
    SdHashMismatch => "sd_hash_mismatch",
    // CLAIMS
    ClaimMissing => "claim_missing",
}

impl Reason {
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once_and_serializes_as_its_code() {
        let mut seen = std::collections::HashSet::new();
        for &reason in Reason::ALL {
            assert!(seen.insert(reason), "{reason} twice in ALL");
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::json!(reason.as_str())
            );
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::parse("no_such_reason"), None);
    }
}
