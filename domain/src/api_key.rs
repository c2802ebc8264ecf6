//! The public shape of an API key.
//!
//! A key reads `pl_<prefix>_<secret>`: the prefix is 16 lowercase hex
//! characters (64 random bits) used to look the key up, and is safe to show
//! and to record in events; the secret is 43 base64url characters (256 random
//! bits) and is only ever stored as an argon2id hash. Generating keys needs
//! the OS random source, so it lives in `commands`; this module only parses.

use std::fmt;

pub const KEY_MARKER: &str = "pl_";
pub const PREFIX_LEN: usize = 16;
pub const SECRET_LEN: usize = 43;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Proofline API key")]
pub struct MalformedKey;

/// A parsed key. `Debug` never shows the secret part.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    prefix: String,
    secret: String,
}

impl ApiKey {
    pub fn parse(text: &str) -> Result<Self, MalformedKey> {
        let rest = text.strip_prefix(KEY_MARKER).ok_or(MalformedKey)?;
        let (prefix, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let prefix_ok = prefix.len() == PREFIX_LEN
            && prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let secret_ok = secret.len() == SECRET_LEN
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok || !secret_ok {
            return Err(MalformedKey);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The public lookup part.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The whole key as the holder types it. Handle with care.
    pub fn expose(&self) -> String {
        format!("{KEY_MARKER}{}_{}", self.prefix, self.secret)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({KEY_MARKER}{}_…)", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "pl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-";

    #[test]
    fn parses_a_well_formed_key() {
        let key = ApiKey::parse(GOOD).unwrap();
        assert_eq!(key.prefix(), "0123456789abcdef");
        assert_eq!(key.expose(), GOOD);
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", ApiKey::parse(GOOD).unwrap());
        assert!(!shown.contains("AAAA"), "{shown}");
        assert!(shown.contains("0123456789abcdef"));
    }

    #[test]
    fn refuses_malformed_keys() {
        for bad in [
            "",
            "pl_",
            "xx_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pl_0123456789ABCDEF_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pl_0123456789abcde_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "pl_0123456789abcdef_AAAA",
            "pl_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pl_0123456789abcdef",
        ] {
            assert_eq!(ApiKey::parse(bad), Err(MalformedKey), "{bad:?}");
        }
    }
}
