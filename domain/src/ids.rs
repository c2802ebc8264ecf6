//! Validated identifiers.
//!
//! Stream ids end up in SQL rows, NATS subjects and URLs, so they are
//! restricted to a small ASCII alphabet: a lowercase category, optionally
//! followed by `-` and an instance part (usually a UUID).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;
/// Longest event type name accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("stream id must be 1 to {MAX_STREAM_ID_LEN} bytes")]
    StreamIdLength,
    #[error("stream id must start with a lowercase category ([a-z][a-z0-9]*)")]
    StreamIdCategory,
    #[error("stream id may only contain [A-Za-z0-9._:-] after its category")]
    StreamIdCharacter,
    #[error(
        "event type must be 1 to {MAX_EVENT_TYPE_LEN} ASCII letters or digits, starting with a letter"
    )]
    EventType,
}

/// The kinds of stream Proofline writes: the category of their stream ids
/// (the part before the first `-`), which is also the NATS subject token of
/// their events. A `match` on it is exhaustive, so a new kind of stream
/// cannot be forgotten where every kind must be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `lender-<uuid>`: a lender and its keys.
    Lender,
    /// `email-<sha256>`: a contact email's reservation.
    Email,
    /// `auditor-<uuid>`.
    Auditor,
    /// `operator`: the one operator.
    Operator,
    /// `issuer-<uuid>`: an issuer of the trust registry.
    Issuer,
    /// `registry-issuers`: the catalog of issuers.
    Registry,
    /// `statuslist-<uuid>`: a Token Status List.
    StatusList,
    /// `verification-<uuid>`: one verification.
    Verification,
    /// `webhook-<event id>`: the delivery of one event to a lender.
    Webhook,
    /// `log-checkpoints`: signed checkpoints of the log.
    Log,
    /// `service-keys`: the service's signing keys.
    Service,
    /// `presentationrequest-<uuid>`: one OpenID4VP flow.
    PresentationRequest,
    /// `oid4vp-unmatched`: wallet responses no request could be found for.
    Oid4vp,
}

impl Category {
    pub const ALL: [Category; 13] = [
        Category::Lender,
        Category::Email,
        Category::Auditor,
        Category::Operator,
        Category::Issuer,
        Category::Registry,
        Category::StatusList,
        Category::Verification,
        Category::Webhook,
        Category::Log,
        Category::Service,
        Category::PresentationRequest,
        Category::Oid4vp,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Lender => "lender",
            Category::Email => "email",
            Category::Auditor => "auditor",
            Category::Operator => "operator",
            Category::Issuer => "issuer",
            Category::Registry => "registry",
            Category::StatusList => "statuslist",
            Category::Verification => "verification",
            Category::Webhook => "webhook",
            Category::Log => "log",
            Category::Service => "service",
            Category::PresentationRequest => "presentationrequest",
            Category::Oid4vp => "oid4vp",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of one stream of events, such as `lender-<uuid>`.
///
/// The category (the part before the first `-`) names the aggregate kind and
/// becomes a NATS subject token, so it is lowercase alphanumeric only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if value.is_empty() || value.len() > MAX_STREAM_ID_LEN {
            return Err(IdError::StreamIdLength);
        }
        let (category, rest) = match value.split_once('-') {
            Some((category, rest)) => (category, Some(rest)),
            None => (value.as_str(), None),
        };
        let mut chars = category.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !starts_with_letter || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            return Err(IdError::StreamIdCategory);
        }
        if let Some(rest) = rest {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
            if rest.is_empty() || !rest.chars().all(allowed) {
                return Err(IdError::StreamIdCharacter);
            }
        }
        Ok(Self(value))
    }

    /// A stream id made of a category and an instance, `<category>-<instance>`.
    pub fn new(category: &str, instance: impl fmt::Display) -> Result<Self, IdError> {
        Self::parse(format!("{category}-{instance}"))
    }

    /// The stream `<category>-<uuid>` of one aggregate.
    pub fn of(category: Category, id: uuid::Uuid) -> Self {
        Self::new(category.as_str(), id).expect("a category and a UUID make a valid stream id")
    }

    /// The one stream of a category with a fixed instance, such as
    /// `log-checkpoints`, or none (`operator`).
    pub fn singleton(category: Category, instance: Option<&str>) -> Self {
        let text = match instance {
            Some(instance) => format!("{category}-{instance}"),
            None => category.as_str().to_owned(),
        };
        Self::parse(text).expect("a valid constant stream id")
    }

    /// The UUID of a `<category>-<uuid>` stream of `category`.
    pub fn uuid_of(&self, category: Category) -> Option<uuid::Uuid> {
        let (found, rest) = self.0.split_once('-')?;
        if found != category.as_str() {
            return None;
        }
        rest.parse().ok()
    }

    /// The kind of stream, if it is one Proofline writes.
    pub fn kind(&self) -> Option<Category> {
        Category::parse(self.category())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate kind: everything before the first `-`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(self.0.as_str(), |(c, _)| c)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

/// Checks an event type name such as `LenderRegistered`: it becomes the last
/// token of a NATS subject, so only ASCII letters and digits are allowed.
pub fn validate_event_type(name: &str) -> Result<(), IdError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_EVENT_TYPE_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(IdError::EventType) }
}

/// A UUIDv8 derived from `parts`: the first 16 bytes of the SHA-256 of
/// the parts joined by 0x00. Ids derived from what makes something unique
/// (a lender and a nonce, a request's state) turn a second use into a
/// store conflict, with no index to keep.
pub fn derived_uuid(parts: &[&[u8]]) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_category_and_instance() {
        let id = StreamId::parse("lender-0193b2d4-5b7e-7c3a-9f00-1234567890ab").unwrap();
        assert_eq!(id.category(), "lender");
        let single = StreamId::parse("operator").unwrap();
        assert_eq!(single.category(), "operator");
        let made = StreamId::new("verification", "abc:def").unwrap();
        assert_eq!(made.as_str(), "verification-abc:def");
    }

    #[test]
    fn refuses_bad_stream_ids() {
        assert_eq!(StreamId::parse(""), Err(IdError::StreamIdLength));
        assert_eq!(
            StreamId::parse("x".repeat(201)),
            Err(IdError::StreamIdLength)
        );
        assert_eq!(StreamId::parse("Lender-1"), Err(IdError::StreamIdCategory));
        assert_eq!(StreamId::parse("1lender"), Err(IdError::StreamIdCategory));
        assert_eq!(StreamId::parse("-x"), Err(IdError::StreamIdCategory));
        assert_eq!(StreamId::parse("lender-"), Err(IdError::StreamIdCharacter));
        assert_eq!(
            StreamId::parse("lender-a b"),
            Err(IdError::StreamIdCharacter)
        );
        assert_eq!(
            StreamId::parse("lender-a.>"),
            Err(IdError::StreamIdCharacter)
        );
        assert_eq!(StreamId::parse("lender-é"), Err(IdError::StreamIdCharacter));
    }

    #[test]
    fn event_type_names() {
        assert!(validate_event_type("PresentationVerified").is_ok());
        assert!(validate_event_type("V2Thing").is_ok());
        assert_eq!(validate_event_type(""), Err(IdError::EventType));
        assert_eq!(validate_event_type("9Lives"), Err(IdError::EventType));
        assert_eq!(validate_event_type("a.b"), Err(IdError::EventType));
        assert_eq!(
            validate_event_type(&"A".repeat(101)),
            Err(IdError::EventType)
        );
    }
}
