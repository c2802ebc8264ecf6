//! The operator principal.
//!
//! There is one operator. Its key is created on first start; the event names
//! the key by its public prefix only, the argon2id hash goes to the secrets
//! table in the same transaction.

use serde::{Deserialize, Serialize};

use crate::ids::StreamId;

/// The operator's stream id.
pub fn stream_id() -> StreamId {
    StreamId::parse("operator").expect("a valid constant")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyIssued {
    pub key_prefix: String,
}

impl OperatorKeyIssued {
    pub const TYPE: &'static str = "OperatorKeyIssued";
    pub const SCHEMA_VERSION: u32 = 1;
}
