//! The `proofline` binary: configuration and the CLI that wires the crates.
//!
//! # Layout
//!
//! - [`config`]: the one typed `Config`, read from the environment.
//! - [`cli`]: the command line (clap).
//! - [`app`]: opening the store (embedded or Postgres) with migrations.
//! - [`serve`]: `proofline serve`, with key bootstrap and graceful shutdown.
//! - [`bus`]: NATS JetStream when configured, else the store, for the roles.
//! - [`bench`]: `proofline bench`, benchmarks that print figures.
//! - [`keygen`]: `proofline keygen`.
//! - [`logfile`]: `proofline log export` and `log verify`: the log as JSON
//!   Lines, and its offline check.
//! - [`evidence`]: `proofline log verify-evidence` and `log consistency`:
//!   one verification, or the log's growth, proven with a few hashes.
//! - [`rebuild`]: `proofline rebuild`, read models replayed and swapped in.
//! - [`demo`]: `proofline demo`, a presentation to verify against a running
//!   server.
//! - [`wallet`]: an issuer and a holder for the demo and the benchmarks.

pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod demo;
pub mod evidence;
pub mod https;
pub mod keygen;
pub mod logfile;
pub mod logging;
pub mod oid4vp_wallet;
pub mod qr;
pub mod rebuild;
pub mod replay;
pub mod serve;
pub mod wallet;
