//! The aggregates from outside, given/when/then: every command of each
//! decider accepted and refused with its exact error, and the rules that
//! come with them (values, status list tokens, the webhook retry schedule).

mod auditor;
mod issuer;
mod lender;
mod operator;
mod presentation_request;
mod status_list;
mod support;
mod webhook_delivery;
