//! Proofline's HTTP surface.
//!
//! `api` is the only crate that knows HTTP: it authenticates callers, turns
//! requests into commands and queries, and every failure into one RFC 9457
//! problem+json answer.
//!
//! # Layout
//!
//! - [`error`]: [`ApiError`], the closed set of problem `code`s and their
//!   HTTP statuses; every error of the crates below is mapped here.
//! - [`state`]: what handlers share, and the HTTP settings.
//! - [`caller`]: the authenticated caller (API key, roles, client address
//!   behind trusted proxies, request id).
//! - [`limits`]: failed-authentication and per-key rate limits;
//!   [`shared_limits`]: the same budgets in Postgres, one for every API
//!   instance on it.
//! - [`tails`]: how many live tails of the log may be open, per key and in
//!   all.
//! - [`idempotency`]: `Idempotency-Key` on POSTs.
//! - [`extract`], [`json`]: request bodies and path parameters, with
//!   400/404/413/415/422 problems for what is wrong with them.
//! - [`middleware`]: request id, security headers, time limit, metrics.
//! - [`metrics`]: `/metrics` in the Prometheus format.
//! - [`health`]: `/health/live` and `/health/ready`.
//! - [`console`]: the web console's embedded files at `/console/`.
//! - [`routes`]: the contract's routes by resource.
//! - [`server`]: the router, its OpenAPI document, and `serve`;
//!   [`openapi`]: the answers every route can give, added to the document
//!   once.

pub mod caller;
pub mod console;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod shared_limits;
pub mod state;
pub mod tails;

pub use error::{ApiError, ErrorCode};
pub use server::{openapi, ops_router, router, serve, spawn_background};
pub use state::{ApiSettings, AppState, DEFAULT_LOG_ORIGIN, Probe};
