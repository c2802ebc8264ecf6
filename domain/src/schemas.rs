//! JSON Schemas of the events, generated from the Rust types (schemars):
//! what `GET /v1/schemas` serves and `docs/analysts.md` describes.
//!
//! Validated value types (ids, names, hashes, times) are strings in JSON;
//! their schemas say which kind of string.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

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
string_schema!(crate::jose::Jwk, "Jwk", {
    "type": "object", "description": "a public JWK (RFC 7517); never a private key"
});

/// The schema of every event type, by stream category: `(category, type,
/// schema of its data)`.
pub fn events() -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::new();
    let mut add = |category: &'static str, schema: Schema| out.extend(variants(category, &schema));
    add("lender", schemars::schema_for!(crate::lender::LenderEvent));
    add(
        "email",
        schemars::schema_for!(crate::lender::ReservationEvent),
    );
    add(
        "auditor",
        schemars::schema_for!(crate::auditor::AuditorEvent),
    );
    add(
        "operator",
        schemars::schema_for!(crate::operator::OperatorEvent),
    );
    add("issuer", schemars::schema_for!(crate::issuer::IssuerEvent));
    add(
        "statuslist",
        schemars::schema_for!(crate::status_list::StatusListEvent),
    );
    add(
        "verification",
        schemars::schema_for!(crate::verification_record::VerificationEvent),
    );
    add(
        crate::webhook_delivery::CATEGORY,
        schemars::schema_for!(crate::webhook_delivery::WebhookDeliveryEvent),
    );
    add(
        "log",
        schemars::schema_for!(crate::checkpoint::CheckpointEvent),
    );
    out
}

/// The `(category, type, data schema)` of each variant of an event enum's
/// schema (`#[serde(tag = "type", content = "data")]`).
pub fn variants(category: &'static str, schema: &Schema) -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::new();
    {
        let schema = schema.clone().to_value();
        // Each variant of the internally tagged enum is `{type, data}`.
        let variants = schema
            .get("oneOf")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let definitions = schema.get("$defs").cloned();
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
            out.push((category, name.to_owned(), data));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_an_object_schema() {
        let all = events();
        let names: Vec<&str> = all.iter().map(|(_, name, _)| name.as_str()).collect();
        for expected in [
            "LenderRegistered",
            "ApiKeyRotated",
            "WebhookConfigured",
            "PresentationVerified",
            "PresentationRejected",
            "IssuerRegistered",
            "StatusListPublished",
            "WebhookDelivered",
            "WebhookDeliveryFailed",
            "LogCheckpointSigned",
            "AuditorRegistered",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        for (category, name, schema) in &all {
            assert!(
                schema.get("properties").is_some() || schema.get("$ref").is_some(),
                "{category}/{name}: {schema}"
            );
        }
        let rotated = &all.iter().find(|(_, n, _)| n == "ApiKeyRotated").unwrap().2;
        assert_eq!(
            rotated["properties"]["new_prefix"]["$ref"],
            "#/$defs/KeyPrefix"
        );
        assert!(rotated["$defs"]["KeyPrefix"]["pattern"].is_string());
    }
}
