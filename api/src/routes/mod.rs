//! The routes of the HTTP contract, grouped by resource.

pub mod auditors;
pub mod issuers;
pub mod lenders;
pub mod log;
pub mod verifications;
pub mod webhooks;
