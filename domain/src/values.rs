//! Validated values shared by the aggregates. Each parses once, at the edge,
//! and is then known to be valid; fields are private and there are no setters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decider::{Rejection, RejectionKind};
use crate::ids::{Category, StreamId};

/// A value that failed validation, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl Rejection for InvalidValue {
    fn kind(&self) -> RejectionKind {
        RejectionKind::Invalid
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidValue {
    InvalidValue {
        field,
        message: message.into(),
    }
}

/// A display name (of a lender, an auditor): 1 to 200 characters after
/// trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(field: &'static str, text: &str) -> Result<Self, InvalidValue> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(invalid(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(invalid(field, "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("name", &value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> Self {
        value.0
    }
}

/// A contact email, normalized (trimmed, lowercased) so that uniqueness
/// means what people expect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContactEmail(String);

impl ContactEmail {
    pub const MAX_LEN: usize = 254;

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let normalized = text.trim().to_lowercase();
        if normalized.is_empty() || normalized.len() > Self::MAX_LEN {
            return Err(invalid(
                "contact_email",
                format!("must be 1 to {} bytes", Self::MAX_LEN),
            ));
        }
        let parsed = email_address::EmailAddress::from_str(&normalized)
            .map_err(|e| invalid("contact_email", format!("is not an email address ({e})")))?;
        // A display form ("Name <a@b>") parses too; only the bare address is
        // accepted, and the domain must have a dot.
        if parsed.email() != normalized || !parsed.domain().contains('.') {
            return Err(invalid(
                "contact_email",
                "is not a plain email address like name@example.com",
            ));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stream that reserves this address for one lender: its id is a
    /// digest of the normalized address, so the uniqueness check is the
    /// store's own `no_stream` append.
    pub fn reservation_stream(&self) -> StreamId {
        let digest = Sha256::digest(self.0.as_bytes());
        StreamId::new(Category::Email.as_str(), hex::encode(digest))
            .expect("hex makes a valid stream id")
    }
}

impl TryFrom<String> for ContactEmail {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContactEmail> for String {
    fn from(value: ContactEmail) -> Self {
        value.0
    }
}

/// The audience a key-binding JWT must name: 1 to 512 visible ASCII
/// characters (a URL, a DID, a client id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Audience(String);

impl Audience {
    pub const MAX_LEN: usize = 512;

    /// Exactly as given: an audience is compared byte for byte with the
    /// Key Binding JWT's `aud`, so nothing is trimmed.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid(
                "audience",
                format!("must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("audience", "must be visible ASCII without spaces"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Audience {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Audience> for String {
    fn from(value: Audience) -> Self {
        value.0
    }
}

/// A lender's audiences: 1 to [`Audiences::MAX`] distinct audiences, the
/// first being the default a verification uses when it names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audiences(Vec<Audience>);

impl Audiences {
    pub const MAX: usize = 16;

    pub fn new(audiences: Vec<Audience>) -> Result<Self, InvalidValue> {
        if audiences.is_empty() || audiences.len() > Self::MAX {
            return Err(invalid(
                "audiences",
                format!("a lender has 1 to {} audiences", Self::MAX),
            ));
        }
        for (i, audience) in audiences.iter().enumerate() {
            if audiences[..i].contains(audience) {
                return Err(invalid(
                    "audiences",
                    format!("{} is listed twice", audience.as_str()),
                ));
            }
        }
        Ok(Self(audiences))
    }

    pub fn single(audience: Audience) -> Self {
        Self(vec![audience])
    }

    /// The default audience.
    pub fn first(&self) -> &Audience {
        &self.0[0]
    }

    /// The audience named `text`, if it is one of these.
    pub fn find(&self, text: &str) -> Option<&Audience> {
        self.0.iter().find(|a| a.as_str() == text)
    }

    pub fn as_slice(&self) -> &[Audience] {
        &self.0
    }
}

/// Where a lender's webhooks go: an absolute `https` (or `http`) URL with a
/// host, no credentials and no fragment, at most 2048 characters. Whether
/// its host may be reached (SSRF rules, allowed networks) is decided where
/// names resolve, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid(
                "url",
                format!("must be 1 to {} characters", Self::MAX_LEN),
            ));
        }
        let parsed =
            url::Url::parse(text).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(invalid(
                "url",
                "must be https (or http to an allowed network)",
            ));
        }
        if parsed.host().is_none() {
            return Err(invalid("url", "must name a host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("url", "must not carry credentials"));
        }
        if parsed.fragment().is_some() {
            return Err(invalid("url", "must not have a fragment"));
        }
        Ok(Self(parsed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https:")
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WebhookUrl> for String {
    fn from(value: WebhookUrl) -> Self {
        value.0
    }
}

/// The public prefix of an API key (16 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let ok = text.len() == crate::api_key::PREFIX_LEN
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(invalid("key_prefix", "is 16 lowercase hex characters"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyPrefix {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<KeyPrefix> for String {
    fn from(value: KeyPrefix) -> Self {
        value.0
    }
}

impl From<&crate::api_key::ApiKey> for KeyPrefix {
    fn from(key: &crate::api_key::ApiKey) -> Self {
        Self(key.prefix().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            Name::parse("name", "  Acme Lending ").unwrap().as_str(),
            "Acme Lending"
        );
        assert_eq!(Name::parse("name", " ").unwrap_err().field, "name");
        assert!(Name::parse("name", &"é".repeat(200)).is_ok());
        assert!(Name::parse("name", &"é".repeat(201)).is_err());
        assert!(Name::parse("name", &"x".repeat(10_000)).is_err());
        assert!(Name::parse("name", "a\u{0}b").is_err());
    }

    #[test]
    fn emails_are_normalized_and_plain() {
        let email = ContactEmail::parse("  Risk@Acme.Example ").unwrap();
        assert_eq!(email.as_str(), "risk@acme.example");
        assert_eq!(
            email.reservation_stream(),
            ContactEmail::parse("RISK@acme.example")
                .unwrap()
                .reservation_stream()
        );
        for bad in [
            "",
            "not-an-email",
            "a@b",
            "Risk <risk@acme.example>",
            "a@@b.c",
            "@acme.example",
        ] {
            assert!(ContactEmail::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ContactEmail::parse(&format!("{}@acme.example", "a".repeat(250))).is_err());
    }

    #[test]
    fn audiences_are_visible_ascii() {
        assert!(Audience::parse("https://lender.example/verifier").is_ok());
        assert!(Audience::parse("did:web:lender.example").is_ok());
        assert!(Audience::parse("with space").is_err());
        assert!(
            Audience::parse(" padded").is_err(),
            "compared as given, never trimmed"
        );
        assert!(Audience::parse("").is_err());
        assert!(Audience::parse(&"a".repeat(513)).is_err());
    }

    #[test]
    fn key_prefixes_are_16_hex() {
        assert!(KeyPrefix::parse("0123456789abcdef").is_ok());
        assert!(KeyPrefix::parse("0123456789ABCDEF").is_err());
        assert!(KeyPrefix::parse("0123").is_err());
    }
}
