//! The OpenAPI document, completed with what every route can answer.
//!
//! Handlers document their own answers; what the layers around them add is
//! documented here, once, for every operation, from one set of problem
//! responses in `components.responses`:
//!
//! - every operation may answer 503 (the request time limit, a store that
//!   does not answer) and 429 is added wherever an API key is checked (the
//!   per-key request rate and the failed-authentication budgets), with 401
//!   and 403;
//! - an operation with a body may answer 400 (not JSON), 413 (over the size
//!   limit), 415 (not `application/json`) and 422;
//! - one with query parameters or an `Idempotency-Key` may answer 422, one
//!   with path parameters 404.
//!
//! A handler names only the answers particular to it: `(status = 409,
//! description = "…")` gets the problem+json body here, and a bare
//! `(status = 422)` becomes the shared response of its status.
//!
//! Parameters are also made exact: a query or header parameter is never
//! JSON `null` (utoipa writes optional ones as nullable), and the
//! `Idempotency-Key` header says what the service accepts.

use serde_json::{Map, Value, json};

/// The problem responses operations refer to, by status.
const PROBLEMS: &[(&str, &str, &str)] = &[
    (
        "400",
        "Malformed",
        "the body is not JSON, or not of the expected shape",
    ),
    (
        "401",
        "Unauthorized",
        "no API key, or one that is not valid (BAD_CREDENTIALS)",
    ),
    (
        "403",
        "Forbidden",
        "the caller's role may not use this route (FORBIDDEN)",
    ),
    (
        "404",
        "NotFound",
        "no such resource, or not the caller's (NOT_FOUND)",
    ),
    (
        "409",
        "Conflict",
        "conflicts with the current state (CONFLICT)",
    ),
    (
        "413",
        "PayloadTooLarge",
        "the body is over the size limit (PAYLOAD_TOO_LARGE)",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "the body is not application/json",
    ),
    (
        "422",
        "ValidationFailed",
        "a parameter or member is not valid (VALIDATION_FAILED)",
    ),
    (
        "429",
        "RateLimited",
        "over the key's request rate or the failed-authentication budget; see Retry-After (RATE_LIMITED)",
    ),
    (
        "503",
        "Unavailable",
        "the request took longer than its time limit, or the service cannot do its work now; see Retry-After (UNAVAILABLE)",
    ),
];

fn reference(status: &str) -> Value {
    let name = PROBLEMS
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or("Unavailable", |(_, name, _)| name);
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// Completes `document` (the JSON of the collected OpenAPI document).
pub fn complete(document: &mut Value) {
    let responses = document
        .pointer_mut("/components")
        .and_then(Value::as_object_mut)
        .map(|c| c.entry("responses").or_insert_with(|| json!({})));
    if let Some(Value::Object(responses)) = responses {
        for (_, name, description) in PROBLEMS {
            responses.insert(
                (*name).to_owned(),
                json!({
                    "description": description,
                    "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "seconds to wait (429, 503)"}},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }),
            );
        }
    }
    // The wallet-facing endpoints answer OAuth errors (RFC 6749 §5.2).
    if let Some(Value::Object(schemas)) = document.pointer_mut("/components/schemas") {
        schemas.insert(
            "OAuthError".into(),
            json!({
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string", "description": "invalid_request, invalid_request_object, temporarily_unavailable, server_error"},
                    "error_description": {"type": "string"},
                },
            }),
        );
    }
    // What the schema derive cannot say: constraints on the items of lists.
    let items: &[(&str, Value)] = &[
        (
            "/components/schemas/RegisterLender/properties/audiences",
            json!({"uniqueItems": true, "items": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[!-~]+$"}}),
        ),
        (
            "/components/schemas/RegisterIssuer/properties/credential_types",
            json!({"items": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[!-~]+$"}}),
        ),
        (
            "/components/schemas/VerifyPresentation/properties/required_claims",
            json!({"items": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^.]+(\\.[^.]+)*$"}}),
        ),
    ];
    for (pointer, constraints) in items {
        if let (Some(Value::Object(property)), Value::Object(constraints)) =
            (document.pointer_mut(pointer), constraints)
        {
            for (name, value) in constraints {
                property.insert(name.clone(), value.clone());
            }
        }
    }
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Value::Object(operations) = item else {
            continue;
        };
        for (_, operation) in operations.iter_mut() {
            if let Value::Object(operation) = operation {
                complete_operation(path, operation);
            }
        }
    }
}

fn complete_operation(path: &str, operation: &mut Map<String, Value>) {
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.contains_key("requestBody");
    let mut parameters = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut in_query = false;
    let mut in_path = false;
    let mut idempotent = false;
    for parameter in &mut parameters {
        let place = parameter["in"].as_str().unwrap_or_default().to_owned();
        in_query |= place == "query";
        in_path |= place == "path";
        if place == "query" || place == "header" {
            not_null(&mut parameter["schema"]);
        }
        if parameter["name"] == "Idempotency-Key" {
            idempotent = true;
            parameter["schema"] = json!({
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": "^[!-~]+$",
            });
        }
    }
    if !parameters.is_empty() {
        operation.insert("parameters".into(), Value::Array(parameters));
    }
    let mut statuses: Vec<&str> = vec!["503"];
    // A wallet endpoint answers its own errors in OAuth JSON; only the
    // layers' answers (the time limit, the body limit) are problems.
    if path.starts_with("/oid4vp/") {
        if has_body {
            statuses.push("413");
        }
        if let Some(Value::Object(responses)) = operation.get_mut("responses") {
            for (status, response) in responses.iter_mut() {
                if status.parse::<u16>().is_ok_and(|code| code >= 400)
                    && let Value::Object(fields) = response
                {
                    fields.insert(
                        "content".into(),
                        json!({"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}),
                    );
                }
            }
            for status in statuses {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| reference(status));
            }
        }
        return;
    }
    if secured {
        statuses.extend(["401", "403", "429"]);
    }
    if has_body {
        statuses.extend(["400", "413", "415", "422"]);
    }
    if in_query || idempotent {
        statuses.push("422");
    }
    if in_path {
        statuses.push("404");
    }
    // Health and metrics are served outside the time limit's concerns too
    // (a store that does not answer makes readiness 503 already).
    if path == "/openapi.json" {
        statuses.retain(|s| *s != "503");
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    if let Value::Object(responses) = responses {
        for (status, response) in responses.iter_mut() {
            if status.parse::<u16>().is_ok_and(|code| code >= 400) {
                problem(status, response);
            }
        }
        for status in statuses {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| reference(status));
        }
    }
}

/// A handler's own problem answer: a bare status becomes the shared
/// response; one with a description gets the problem+json body.
fn problem(status: &str, response: &mut Value) {
    let Value::Object(fields) = response else {
        return;
    };
    if fields.contains_key("$ref") || fields.contains_key("content") {
        return;
    }
    let described = fields
        .get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| !d.is_empty());
    if described {
        fields.insert(
            "content".into(),
            json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}),
        );
    } else {
        *response = reference(status);
    }
}

/// Removes `null` from a parameter schema's types: a query or header value
/// is text, never JSON `null`.
fn not_null(schema: &mut Value) {
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema["type"] = only;
        }
    }
    if let Some(Value::Array(any)) = schema.get_mut("oneOf") {
        any.retain(|s| s.get("type") != Some(&json!("null")));
        if any.len() == 1 {
            let only = any.remove(0);
            *schema = only;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_what_the_layers_answer() {
        let mut document = json!({
            "paths": {
                "/v1/things/{id}": {"post": {
                    "security": [{"api_key": []}],
                    "requestBody": {},
                    "parameters": [
                        {"name": "id", "in": "path", "schema": {"type": "string"}},
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": ["string", "null"]}},
                        {"name": "limit", "in": "query", "schema": {"type": ["integer", "null"], "minimum": 1}},
                    ],
                    "responses": {"201": {"description": "made"}, "422": {"description": "own words"}, "409": {"description": ""}},
                }},
                "/health/live": {"get": {"responses": {"200": {"description": "up"}}}},
            },
            "components": {"schemas": {}},
        });
        complete(&mut document);
        let thing = &document["paths"]["/v1/things/{id}"]["post"];
        let statuses: Vec<&String> = thing["responses"].as_object().unwrap().keys().collect();
        for status in [
            "201", "400", "401", "403", "404", "413", "415", "422", "429", "503",
        ] {
            assert!(
                statuses.contains(&&status.to_owned()),
                "{status}: {statuses:?}"
            );
        }
        assert_eq!(
            thing["responses"]["422"]["description"], "own words",
            "an operation's own answer is kept"
        );
        assert_eq!(
            thing["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem",
            "and given the problem body"
        );
        assert_eq!(
            thing["responses"]["409"]["$ref"], "#/components/responses/Conflict",
            "a bare status is the shared response"
        );
        assert_eq!(thing["parameters"][2]["schema"]["type"], "integer");
        assert_eq!(thing["parameters"][1]["schema"]["maxLength"], 255);
        let live = &document["paths"]["/health/live"]["get"]["responses"];
        assert!(live.get("503").is_some() && live.get("429").is_none());
        assert!(document["components"]["responses"]["RateLimited"].is_object());
    }
}
