//! Projectors against real databases: the read models' SQLite file (and,
//! with `--features service-tests`, PostgreSQL), fed from a real store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proofline_commands::migrate;
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_commands::store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use proofline_domain::decider::EventSchema;
use proofline_domain::ids::StreamId;
use proofline_domain::lender::LenderId;
use proofline_domain::log::{Envelope, Timestamp};
use proofline_domain::verification::{Outcome, Reason, Step};
use proofline_domain::verification_record::{Asked, VerificationId, VerificationRecord};
use proofline_projections::db::{Kind, ReadDb};
use proofline_projections::models::{DailyStats, Lenders, Projection, Verifications};
use proofline_projections::read_side::{ReadSide, Subscribe, store_subscriptions};
use proofline_projections::subscription::{Subscription, SubscriptionError};
use serde_json::json;
use uuid::Uuid;

struct World {
    store: Arc<dyn EventStore>,
    read: ReadDb,
    _dir: tempfile::TempDir,
    #[cfg(feature = "service-tests")]
    _database: Option<proofline_testkit::TestDatabase>,
}

async fn sqlite_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let pool = sqlite::connect_pool(&path).await.unwrap();
    migrate::apply_sqlite(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
    let read = ReadDb::sqlite(&dir.path().join("read.sqlite"))
        .await
        .unwrap();
    World {
        store,
        read,
        _dir: dir,
        #[cfg(feature = "service-tests")]
        _database: None,
    }
}

#[cfg(feature = "service-tests")]
async fn postgres_world() -> World {
    use proofline_commands::store::postgres::{self, PgEventStore, PgStoreOptions};
    let database = proofline_testkit::TestDatabase::create().await;
    let url = secrecy::SecretString::from(database.url().to_owned());
    let pool = postgres::connect_pool(&url, &PgStoreOptions::default())
        .await
        .unwrap();
    migrate::apply_postgres(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::open(pool).await.unwrap());
    let read = ReadDb::postgres(database.url(), 4).await.unwrap();
    World {
        store,
        read,
        _dir: tempfile::tempdir().unwrap(),
        _database: Some(database),
    }
}

/// Appends `count` verifications (every third rejected at REVOCATION) and,
/// between them, events of another category the read models ignore.
async fn append_verifications(store: &dyn EventStore, count: usize) {
    let lender = LenderId::from_uuid(Uuid::from_u128(7));
    for i in 0..count {
        let nonce = Uuid::now_v7().to_string();
        let verified = !i.is_multiple_of(3);
        let outcome = Outcome {
            failed_step: (!verified).then_some(Step::Revocation),
            reason: (!verified).then_some(Reason::StatusRevoked),
            steps: Vec::new(),
            issuer: Some("did:example:issuer".into()),
            kid: None,
            vct: Some("https://credentials.example/identity".into()),
            status: None,
            key: None,
            claims: None,
            disclosed_paths: vec!["given_name".into()],
        };
        let asked = Asked {
            lender_id: lender,
            presentation: "p~",
            nonce: &nonce,
            audience: "urn:aud",
            required_claims: Vec::new(),
            require_holder_binding: true,
            at: Timestamp::from_datetime(chrono::Utc::now()),
        };
        let id = VerificationId::for_nonce(lender, &nonce);
        let event = VerificationRecord::new(id, &asked, &outcome)
            .into_event()
            .encode();
        store
            .append(AppendRequest::new(
                id.stream_id(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    event.event_type,
                    event.schema_version,
                    event.data,
                )],
            ))
            .await
            .unwrap();
        if i.is_multiple_of(10) {
            store
                .append(AppendRequest::new(
                    StreamId::new("other", Uuid::now_v7()).unwrap(),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new("SomethingElse", 1, json!({"i": i}))],
                ))
                .await
                .unwrap();
        }
    }
}

fn projections() -> Vec<Arc<dyn Projection>> {
    vec![Arc::new(Verifications), Arc::new(DailyStats)]
}

async fn head(store: &dyn EventStore) -> u64 {
    store.head().await.unwrap().map_or(0, |h| h.position)
}

/// Waits until every projector of `side` has applied `position`.
async fn caught_up(side: &ReadSide, position: u64) {
    for (name, watch) in &side.positions {
        let mut watch = watch.clone();
        tokio::time::timeout(Duration::from_secs(60), watch.wait_for(|p| *p >= position))
            .await
            .unwrap_or_else(|_| panic!("{name} did not reach {position}"))
            .unwrap();
    }
}

async fn count(read: &ReadDb, sql: &str) -> i64 {
    read.fetch(sql, &[], &[Kind::Int]).await.unwrap()[0][0]
        .as_int()
        .unwrap_or_default()
}

async fn assert_exactly_once(world: &World, verifications: i64) {
    assert_eq!(
        count(&world.read, "SELECT COUNT(*) FROM verifications").await,
        verifications
    );
    assert_eq!(
        count(
            &world.read,
            "SELECT COUNT(DISTINCT verification_id) FROM verifications"
        )
        .await,
        verifications
    );
    assert_eq!(
        count(
            &world.read,
            "SELECT CAST(SUM(count) AS BIGINT) FROM daily_stats"
        )
        .await,
        verifications
    );
    assert_eq!(
        count(
            &world.read,
            "SELECT CAST(SUM(count) AS BIGINT) FROM daily_stats WHERE failed_step = 'REVOCATION'"
        )
        .await,
        (verifications + 2) / 3
    );
}

async fn killed_mid_stream_then_restarted(world: World) {
    // Enough events that the projector is still busy when it is killed
    // after the 100th, even on a loaded machine (with 300, a gate running
    // four tests at a time once saw it reach the end first).
    append_verifications(world.store.as_ref(), 2_000).await;
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        store_subscriptions(world.store.clone()),
        projections(),
    )
    .await
    .unwrap();
    // Kill it somewhere in the middle.
    let mut first = side.positions[0].1.clone();
    first.wait_for(|p| *p >= 100).await.unwrap();
    side.abort();
    let reached = world.read.checkpoint("verifications").await.unwrap();
    let end = head(world.store.as_ref()).await;
    assert!(
        reached >= 100 && reached < end,
        "killed at {reached} of {end}"
    );

    // More events while it is down, then a restart from the checkpoints.
    append_verifications(world.store.as_ref(), 200).await;
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        store_subscriptions(world.store.clone()),
        projections(),
    )
    .await
    .unwrap();
    caught_up(&side, head(world.store.as_ref()).await).await;
    side.stop().await;
    assert_exactly_once(&world, 2_200).await;
}

/// A subscription that loses every seventh event and repeats every fifth.
struct Lossy {
    inner: Box<dyn Subscription>,
    seen: u64,
    repeat: Option<Envelope>,
}

#[async_trait]
impl Subscription for Lossy {
    async fn next(&mut self) -> Result<Envelope, SubscriptionError> {
        if let Some(repeat) = self.repeat.take() {
            return Ok(repeat);
        }
        loop {
            let envelope = self.inner.next().await?;
            self.seen += 1;
            if self.seen.is_multiple_of(7) {
                continue;
            }
            if self.seen.is_multiple_of(5) {
                self.repeat = Some(envelope.clone());
            }
            return Ok(envelope);
        }
    }

    async fn ack(&mut self, position: u64) -> Result<(), SubscriptionError> {
        self.inner.ack(position).await
    }
}

async fn gaps_and_repeats_are_repaired(world: World) {
    append_verifications(world.store.as_ref(), 120).await;
    let inner = store_subscriptions(world.store.clone());
    let lossy: Subscribe = Arc::new(move |name, after, interest| {
        let inner = inner.clone();
        Box::pin(async move {
            Box::new(Lossy {
                inner: inner(name, after, interest).await,
                seen: 0,
                repeat: None,
            }) as Box<dyn Subscription>
        })
    });
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        lossy,
        projections(),
    )
    .await
    .unwrap();
    caught_up(&side, head(world.store.as_ref()).await).await;
    side.stop().await;
    assert_exactly_once(&world, 120).await;
}

/// A subscription that went quiet (as a JetStream message handed to a
/// consumer process that just died): the projector reads the log's tail
/// from the store itself.
async fn a_quiet_subscription_is_caught_up_from_the_store(world: World) {
    append_verifications(world.store.as_ref(), 30).await;
    let inner = store_subscriptions(world.store.clone());
    let silent: Subscribe = Arc::new(move |name, _, interest| {
        let inner = inner.clone();
        // Starts far past the log's end: it never delivers anything.
        Box::pin(async move { inner(name, u64::MAX / 2, interest).await })
    });
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        silent,
        projections(),
    )
    .await
    .unwrap();
    caught_up(&side, head(world.store.as_ref()).await).await;
    append_verifications(world.store.as_ref(), 10).await;
    caught_up(&side, head(world.store.as_ref()).await).await;
    side.stop().await;
    assert_exactly_once(&world, 40).await;
}

/// A model none of whose events are in the log (lenders, here) moves its
/// checkpoint without a transaction per batch, and still stores it soon:
/// a `min_position` wait on it ends.
async fn a_model_that_reads_none_of_the_events_stores_its_checkpoint(world: World) {
    append_verifications(world.store.as_ref(), 25).await;
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        store_subscriptions(world.store.clone()),
        vec![Arc::new(Lenders) as Arc<dyn Projection>],
    )
    .await
    .unwrap();
    let head = head(world.store.as_ref()).await;
    let stored = proofline_projections::queries::wait_for(
        &world.read,
        "lenders",
        head,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(stored, Ok(()), "the stored checkpoint reached the head");
    side.stop().await;
    assert_eq!(world.read.checkpoint("lenders").await.unwrap(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_model_that_reads_none_of_the_events_stores_its_checkpoint() {
    a_model_that_reads_none_of_the_events_stores_its_checkpoint(sqlite_world().await).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_model_that_reads_none_of_the_events_stores_its_checkpoint() {
    a_model_that_reads_none_of_the_events_stores_its_checkpoint(postgres_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_quiet_subscription_is_caught_up_from_the_store() {
    a_quiet_subscription_is_caught_up_from_the_store(sqlite_world().await).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_quiet_subscription_is_caught_up_from_the_store() {
    a_quiet_subscription_is_caught_up_from_the_store(postgres_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_projector_killed_mid_stream_then_restarted_leaves_rows_exactly_once() {
    killed_mid_stream_then_restarted(sqlite_world().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gaps_and_repeats_of_a_subscription_are_repaired() {
    gaps_and_repeats_are_repaired(sqlite_world().await).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_projector_killed_mid_stream_then_restarted_leaves_rows_exactly_once() {
    killed_mid_stream_then_restarted(postgres_world().await).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gaps_and_repeats_of_a_subscription_are_repaired() {
    gaps_and_repeats_are_repaired(postgres_world().await).await;
}

fn scratch_of(world: &World) -> proofline_projections::rebuild::Scratch {
    use proofline_projections::rebuild::Scratch;
    match &world.read {
        ReadDb::Sqlite(_) => Scratch::Sqlite {
            path: world._dir.path().join("rebuild.sqlite"),
        },
        #[cfg(feature = "service-tests")]
        ReadDb::Postgres(_) => Scratch::Postgres {
            url: world._database.as_ref().unwrap().url().to_owned(),
        },
        #[cfg(not(feature = "service-tests"))]
        ReadDb::Postgres(_) => unreachable!("Postgres worlds need service-tests"),
    }
}

async fn rebuilding_twice_gives_identical_rows_while_projectors_run(world: World) {
    use proofline_projections::rebuild::{checksum, rebuild};
    append_verifications(world.store.as_ref(), 300).await;
    let side = ReadSide::start_these(
        world.read.clone(),
        world.store.clone(),
        store_subscriptions(world.store.clone()),
        projections(),
    )
    .await
    .unwrap();
    caught_up(&side, head(world.store.as_ref()).await).await;
    let scratch = scratch_of(&world);
    for projection in projections() {
        let (live, _) = checksum(&world.read, projection.as_ref()).await.unwrap();
        let first = rebuild(
            &world.read,
            &scratch,
            world.store.clone(),
            projection.as_ref(),
            &|_, _| {},
        )
        .await
        .unwrap();
        let second = rebuild(
            &world.read,
            &scratch,
            world.store.clone(),
            projection.as_ref(),
            &|_, _| {},
        )
        .await
        .unwrap();
        assert_eq!(first.checksum, second.checksum, "{}", first.name);
        assert_eq!(first.checksum, live, "{}: rebuilt = projected", first.name);
        assert_eq!(
            checksum(&world.read, projection.as_ref()).await.unwrap().0,
            live,
            "{}: the swapped-in table",
            first.name
        );
    }
    // The running projectors go on from the swapped-in tables: new events
    // land exactly once.
    append_verifications(world.store.as_ref(), 60).await;
    caught_up(&side, head(world.store.as_ref()).await).await;
    side.stop().await;
    assert_exactly_once(&world, 360).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rebuilding_twice_gives_identical_rows_while_projectors_run() {
    rebuilding_twice_gives_identical_rows_while_projectors_run(sqlite_world().await).await;
}

#[cfg(feature = "service-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rebuilding_twice_gives_identical_rows_while_projectors_run() {
    rebuilding_twice_gives_identical_rows_while_projectors_run(postgres_world().await).await;
}
