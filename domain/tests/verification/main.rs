//! The verifier, from outside: RFC 9901's own examples, a case for every
//! reason code, and properties over random and mutated input.

mod cases;
mod hardening;
mod properties;
mod reasons;
mod rfc;
mod rfc9901;
mod steps;
mod support;
