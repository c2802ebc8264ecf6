//! Proofline's HTTP surface.
//!
//! `api` is the only crate that knows HTTP: it turns requests into commands
//! and queries, and every failure into one RFC 9457 problem+json answer.
//!
//! # Layout
//!
//! - [`error`]: [`ApiError`], the closed set of problem `code`s and their
//!   HTTP statuses, mapped in this one place.
//! - [`health`]: `/health/live` and `/health/ready`.
//! - [`server`]: the router, its middleware, and `serve` with graceful
//!   shutdown.

pub mod error;
pub mod health;
pub mod server;

pub use error::{ApiError, ErrorCode};
pub use server::{AppState, router, serve};
