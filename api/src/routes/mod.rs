//! The routes of the HTTP contract, grouped by resource.

pub mod api_keys;
pub mod auditors;
pub mod events;
pub mod issuers;
pub mod lenders;
pub mod log;
pub mod oid4vp;
pub mod paging;
pub mod presentation_requests;
pub mod status_lists;
pub mod tlog;
pub mod trust_anchors;
pub mod verifications;
pub mod webhooks;
