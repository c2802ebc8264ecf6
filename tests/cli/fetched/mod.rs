//! Fetched trust end to end: the service as a process fetching from an
//! issuer's HTTPS server run by the test (its CA made here), on the
//! embedded store and, with `service-tests`, on Postgres and NATS. The
//! cases end by replaying every verification they made from the log.

mod keys;
mod lists;
mod replay;
mod types;
mod world;
mod x5c;

use std::path::Path;

use world::World;

use crate::support::proofline;

async fn embedded(dir: &Path, extra: &[(&str, &str)]) -> World {
    let data = dir.join("data");
    World::start(proofline(&data), data, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_lists_are_fetched_refreshed_and_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(dir.path(), &[]).await;
    lists::fetched_then_revoked_then_unavailable(&world).await;
    replay::replay_all(&world).await;
    replay::refusals(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_refused_lists_are_not_appended() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(dir.path(), &[]).await;
    lists::refused_lists(&world).await;
    lists::expired_at_the_source(&world).await;
    lists::one_fetch_for_many(&world).await;
    replay::replay_all(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_refused_addresses_are_not_reached() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(dir.path(), &[("PROOFLINE_FETCH_ALLOWED_NETWORKS", "")]).await;
    lists::refused_address(&world).await;
    replay::replay_all(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_stale_lists_are_used_within_the_grace_only() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(
        dir.path(),
        &[("PROOFLINE_STATUS_LIST_STALE_GRACE_SECONDS", "600")],
    )
    .await;
    lists::stale_within_grace(&world).await;
    replay::replay_all(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_issuer_keys_are_discovered() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(dir.path(), &[]).await;
    keys::did_web(&world).await;
    keys::issuer_metadata(&world).await;
    replay::replay_all(&world).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_x5c_issuers_chain_to_registered_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded(dir.path(), &[]).await;
    x5c::x5c_issuers(&world).await;
    types::pinned_type_metadata(&world).await;
    replay::replay_all(&world).await;
}

#[cfg(feature = "service-tests")]
mod services {
    //! The same cases on Postgres, with NATS carrying the events: one
    //! database and one NATS server per test.

    use super::*;

    async fn postgres(
        dir: &Path,
        database: &proofline_testkit::TestDatabase,
        nats: &proofline_testkit::nats::NatsServer,
        extra: &[(&str, &str)],
    ) -> World {
        let data = dir.join("data");
        let mut command = proofline(&data);
        command
            .env("DATABASE_URL", database.url())
            .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
            .env("NATS_URL", nats.url());
        World::start(command, data, extra).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_lists_are_fetched_refreshed_and_fail_closed() {
        let database = proofline_testkit::TestDatabase::create().await;
        let nats = proofline_testkit::nats::NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let world = postgres(dir.path(), &database, &nats, &[]).await;
        lists::fetched_then_revoked_then_unavailable(&world).await;
        replay::replay_all(&world).await;
        replay::refusals(&world).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refused_lists_are_not_appended() {
        let database = proofline_testkit::TestDatabase::create().await;
        let nats = proofline_testkit::nats::NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let world = postgres(dir.path(), &database, &nats, &[]).await;
        lists::refused_lists(&world).await;
        lists::expired_at_the_source(&world).await;
        lists::one_fetch_for_many(&world).await;
        replay::replay_all(&world).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_issuer_keys_are_discovered() {
        let database = proofline_testkit::TestDatabase::create().await;
        let nats = proofline_testkit::nats::NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let world = postgres(dir.path(), &database, &nats, &[]).await;
        keys::did_web(&world).await;
        keys::issuer_metadata(&world).await;
        replay::replay_all(&world).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_x5c_issuers_chain_to_registered_anchors() {
        let database = proofline_testkit::TestDatabase::create().await;
        let nats = proofline_testkit::nats::NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let world = postgres(dir.path(), &database, &nats, &[]).await;
        x5c::x5c_issuers(&world).await;
        types::pinned_type_metadata(&world).await;
        replay::replay_all(&world).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refused_addresses_are_not_reached() {
        let database = proofline_testkit::TestDatabase::create().await;
        let nats = proofline_testkit::nats::NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let world = postgres(
            dir.path(),
            &database,
            &nats,
            &[("PROOFLINE_FETCH_ALLOWED_NETWORKS", "")],
        )
        .await;
        lists::refused_address(&world).await;
        replay::replay_all(&world).await;
    }
}
