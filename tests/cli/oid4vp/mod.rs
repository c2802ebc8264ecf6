//! OpenID4VP end to end: the service as a process, the CLI's wallet as a
//! process where it matters (and its library elsewhere), on the embedded
//! store and, with `service-tests`, on Postgres and NATS.

mod flows;
mod identities;
mod refusals;
mod world;

use std::path::{Path, PathBuf};
use std::process::Command;

use world::World;

use crate::support::proofline;

/// An embedded service with its data under `data`.
fn embedded(data: &Path) -> (Command, PathBuf) {
    (proofline(data), data.to_owned())
}

async fn embedded_world(dir: &Path, extra: &[(&str, &str)]) -> World {
    let (mut command, data) = embedded(&dir.join("data"));
    command.envs(extra.iter().copied());
    World::start(command, data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_wallet_flows_verify() {
    let dir = tempfile::tempdir().unwrap();
    flows::verified_flows(&embedded_world(dir.path(), &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_refused_responses_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    refusals::refusals(&embedded_world(dir.path(), &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_expired_requests_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    refusals::expiry(&embedded_world(dir.path(), &[]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_x509_and_redirect_uri_client_ids() {
    identities::x509_and_redirect_uri(embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_values_stay_out_of_the_log_and_lapse() {
    let dir = tempfile::tempdir().unwrap();
    let world = embedded_world(dir.path(), &[("PROOFLINE_OID4VP_RESULT_TTL_SECONDS", "3")]).await;
    identities::values_stay_out_of_the_log(&world, None).await;
}

#[cfg(feature = "service-tests")]
mod services {
    //! The same cases on Postgres, with NATS carrying the events to the
    //! projectors: one database and one NATS server per test.

    use super::*;

    struct Services {
        database: proofline_testkit::TestDatabase,
        nats: proofline_testkit::nats::NatsServer,
    }

    impl Services {
        async fn start() -> Self {
            Self {
                database: proofline_testkit::TestDatabase::create().await,
                nats: proofline_testkit::nats::NatsServer::start(),
            }
        }

        fn command(&self, data: &Path) -> (Command, PathBuf) {
            let mut command = proofline(data);
            command
                .env("DATABASE_URL", self.database.url())
                .env("PROOFLINE_LOG_ORIGIN", "test.example/proofline")
                .env("NATS_URL", self.nats.url());
            (command, data.to_owned())
        }

        async fn world(&self, dir: &Path, extra: &[(&str, &str)]) -> World {
            let (mut command, data) = self.command(&dir.join("data"));
            command.envs(extra.iter().copied());
            World::start(command, data).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_wallet_flows_verify() {
        let services = Services::start().await;
        let dir = tempfile::tempdir().unwrap();
        flows::verified_flows(&services.world(dir.path(), &[]).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_refused_responses_are_recorded() {
        let services = Services::start().await;
        let dir = tempfile::tempdir().unwrap();
        refusals::refusals(&services.world(dir.path(), &[]).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_expired_requests_are_gone() {
        let services = Services::start().await;
        let dir = tempfile::tempdir().unwrap();
        refusals::expiry(&services.world(dir.path(), &[]).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_x509_and_redirect_uri_client_ids() {
        let services = Services::start().await;
        identities::x509_and_redirect_uri(|data| services.command(data)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_values_stay_out_of_the_log_and_lapse() {
        let services = Services::start().await;
        let dir = tempfile::tempdir().unwrap();
        let world = services
            .world(dir.path(), &[("PROOFLINE_OID4VP_RESULT_TTL_SECONDS", "3")])
            .await;
        identities::values_stay_out_of_the_log(&world, Some(services.nats.url())).await;
    }
}
