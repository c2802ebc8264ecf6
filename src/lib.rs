//! The `proofline` binary: configuration and the CLI that wires the crates.
//!
//! # Layout
//!
//! - [`config`]: the one typed `Config`, read from the environment.
//! - [`cli`]: the command line (clap).
//! - [`app`]: opening the store (embedded or Postgres) with migrations.
//! - [`serve`]: `proofline serve`, with key bootstrap and graceful shutdown.
//! - [`bench`]: `proofline bench`, benchmarks that print figures.
//! - [`keygen`]: `proofline keygen`.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod keygen;
pub mod serve;
