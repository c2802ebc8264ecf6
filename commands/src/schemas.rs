//! The JSON Schema of every event the service writes: the domain's, and
//! the few this crate defines (service keys, the issuer catalog).

use proofline_domain::ids::Category;
use proofline_domain::schemas::{self, EventType};

/// Every event type the service writes, with its schema.
pub fn events() -> Vec<EventType> {
    let mut all = schemas::events();
    all.extend(schemas::of::<crate::service_keys::ServiceKeyEvent>(
        Category::Service,
    ));
    all.extend(schemas::of::<crate::issuers::CatalogEvent>(
        Category::Registry,
    ));
    all
}
