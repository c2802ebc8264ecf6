//! The JSON Schema of every event the service writes: the domain's, and
//! the few this crate defines (service keys, the issuer catalog).

use proofline_domain::schemas;
use serde_json::Value;

/// `(stream category, event type, schema of its data)`, for every event.
pub fn events() -> Vec<(&'static str, String, Value)> {
    let mut all = schemas::events();
    all.extend(schemas::variants(
        "service",
        &schemars::schema_for!(crate::service_keys::ServiceKeyEvent),
    ));
    all.extend(schemas::variants(
        "registry",
        &schemars::schema_for!(crate::issuers::CatalogEvent),
    ));
    all
}
