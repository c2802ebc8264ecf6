//! JSON Schemas of the events, generated from the Rust types (schemars):
//! what `GET /v1/schemas` serves and `docs/analysts.md` describes.
//!
//! Validated value types (ids, names, hashes, times) are strings in JSON;
//! their schemas say which kind of string.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::decider::EventSchema;
use crate::ids::Category;

macro_rules! string_schema {
    ($type:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $type {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(crate::log::Timestamp, "Timestamp", {
    "type": "string", "format": "date-time",
    "description": "UTC, RFC 3339 with six fractional digits and Z"
});
string_schema!(crate::log::EventHash, "EventHash", {
    "type": "string", "pattern": "^[0-9a-f]{64}$",
    "description": "SHA-256, 64 lowercase hex characters"
});
string_schema!(crate::verification_record::VerificationId, "VerificationId", {"type": "string", "format": "uuid"});
string_schema!(crate::lender::LenderId, "LenderId", {"type": "string", "format": "uuid"});
string_schema!(crate::auditor::AuditorId, "AuditorId", {"type": "string", "format": "uuid"});
string_schema!(crate::issuer::IssuerId, "IssuerId", {"type": "string", "format": "uuid"});
string_schema!(crate::values::KeyPrefix, "KeyPrefix", {
    "type": "string", "pattern": "^[0-9a-f]{16}$",
    "description": "the public prefix of an API key (never the key)"
});
string_schema!(crate::values::Name, "Name", {"type": "string", "minLength": 1, "maxLength": 800});
string_schema!(crate::values::ContactEmail, "ContactEmail", {"type": "string", "format": "email"});
string_schema!(crate::values::Audience, "Audience", {"type": "string"});
string_schema!(crate::values::WebhookUrl, "WebhookUrl", {"type": "string", "format": "uri"});
string_schema!(crate::issuer::Kid, "Kid", {"type": "string", "description": "a key id"});
string_schema!(crate::issuer::Vct, "Vct", {"type": "string", "description": "a credential type (vct)"});
string_schema!(crate::status_list::ListUri, "ListUri", {"type": "string", "format": "uri"});
string_schema!(crate::did::Did, "Did", {"type": "string", "pattern": "^did:"});
impl JsonSchema for crate::verification::Reason {
    fn schema_name() -> Cow<'static, str> {
        "Reason".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
        json_schema!({
            "type": "string",
            "enum": codes,
            "description": "why a step failed: a stable reason code"
        })
    }
}

string_schema!(crate::jose::Jwk, "Jwk", {
    "type": "object", "description": "a public JWK (RFC 7517); never a private key"
});

/// One event type as analysts see it: the stream category it is written
/// to, its type name, the schema version new events are written with (from
/// the type's [`EventSchema::SCHEMA_VERSION`]), and the JSON Schema of its
/// `data`.
#[derive(Debug, Clone)]
pub struct EventType {
    pub category: Category,
    pub name: String,
    pub schema_version: u32,
    pub data: Value,
}

/// Every variant of the event enum `E`, written to streams of `category`.
pub fn of<E: EventSchema + JsonSchema>(category: Category) -> Vec<EventType> {
    variants(&schemars::schema_for!(E))
        .into_iter()
        .map(|(name, data)| EventType {
            category,
            name,
            schema_version: E::SCHEMA_VERSION,
            data,
        })
        .collect()
}

/// The event types of the domain's aggregates. (`commands` adds the few it
/// defines itself.)
pub fn events() -> Vec<EventType> {
    use crate::{
        auditor, checkpoint, issuer, lender, operator, presentation_request, status_list,
        trust_anchor, verification_record, webhook_delivery,
    };
    [
        of::<lender::LenderEvent>(Category::Lender),
        of::<lender::ReservationEvent>(Category::Email),
        of::<auditor::AuditorEvent>(Category::Auditor),
        of::<operator::OperatorEvent>(Category::Operator),
        of::<issuer::IssuerEvent>(Category::Issuer),
        of::<status_list::StatusListEvent>(Category::StatusList),
        of::<trust_anchor::TrustAnchorEvent>(Category::Registry),
        of::<verification_record::VerificationEvent>(Category::Verification),
        of::<webhook_delivery::WebhookDeliveryEvent>(Category::Webhook),
        of::<checkpoint::CheckpointEvent>(Category::Log),
        of::<checkpoint::WitnessEvent>(Category::Log),
        of::<presentation_request::PresentationRequestEvent>(Category::PresentationRequest),
        of::<presentation_request::UnmatchedResponseEvent>(Category::Oid4vp),
    ]
    .concat()
}

/// The `(type, data schema)` of each variant of an event enum's schema
/// (`#[serde(tag = "type", content = "data")]`).
fn variants(schema: &Schema) -> Vec<(String, Value)> {
    let schema = schema.clone().to_value();
    // Each variant of the internally tagged enum is `{type, data}`.
    let variants = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let definitions = schema.get("$defs").cloned();
    let mut out = Vec::new();
    for variant in variants {
        let Some(name) = variant
            .pointer("/properties/type/const")
            .or_else(|| variant.pointer("/properties/type/enum/0"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let mut data = variant
            .pointer("/properties/data")
            .cloned()
            .unwrap_or(Value::Bool(true));
        if let (Some(object), Some(defs)) = (data.as_object_mut(), &definitions) {
            object.insert("$defs".into(), defs.clone());
        }
        out.push((name.to_owned(), data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_an_object_schema() {
        let all = events();
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        for expected in [
            "LenderRegistered",
            "ApiKeyRotated",
            "WebhookConfigured",
            "PresentationVerified",
            "PresentationRejected",
            "IssuerRegistered",
            "StatusListPublished",
            "StatusListFetched",
            "WebhookDelivered",
            "WebhookDeliveryFailed",
            "LogCheckpointSigned",
            "AuditorRegistered",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        for event in &all {
            assert!(
                event.data.get("properties").is_some() || event.data.get("$ref").is_some(),
                "{}/{}: {}",
                event.category,
                event.name,
                event.data
            );
            assert_eq!(event.schema_version, 1);
        }
        let rotated = &all.iter().find(|e| e.name == "ApiKeyRotated").unwrap().data;
        assert_eq!(
            rotated["properties"]["new_prefix"]["$ref"],
            "#/$defs/KeyPrefix"
        );
        assert!(rotated["$defs"]["KeyPrefix"]["pattern"].is_string());
    }
}
