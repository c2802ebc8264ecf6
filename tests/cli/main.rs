//! The `proofline` binary, run as a user runs it: a real process, real
//! files, real sockets. Postgres cases run with `--features service-tests`.

mod support;

mod bench;
#[cfg(feature = "service-tests")]
mod chaos;
#[cfg(feature = "service-tests")]
mod cluster;
mod demo;
mod fetched;
mod log;
#[cfg(feature = "service-tests")]
mod observability;
mod oid4vp;
#[cfg(feature = "service-tests")]
mod postgres_tls;
#[cfg(feature = "service-tests")]
mod read_replica;
mod roles;
mod serve;
#[cfg(feature = "service-tests")]
mod shared_limits;
mod tlog;
mod witness;
