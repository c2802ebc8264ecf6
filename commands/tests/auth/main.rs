//! The authenticator against a real store: single flight that survives
//! cancelled callers, a bounded argon2 queue, a cache that never outlives an
//! invalidation, and a watch of the log that resumes where it stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proofline_commands::auth::{AuthError, Authenticator, watch_invalidations};
use proofline_commands::handler::CommandContext;
use proofline_commands::lenders::{self, NewKey, Registration};
use proofline_commands::migrate;
use proofline_commands::store::EventStore;
use proofline_commands::store::sqlite::{self, SqliteEventStore};
use proofline_domain::lender::{GracePeriod, LenderId};
use proofline_domain::log::{Metadata, Timestamp};
use proofline_domain::values::{ContactEmail, KeyPrefix, Name};

struct World {
    store: Arc<dyn EventStore>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let pool = sqlite::connect_pool(&path).await.unwrap();
    migrate::apply_sqlite(&pool).await.unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(pool, &path).await.unwrap());
    World { store, _dir: dir }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

impl World {
    /// A registered lender and its API key.
    async fn lender(&self) -> (LenderId, String) {
        let key = NewKey::generate().await.unwrap();
        let registration = Registration {
            name: Name::parse("name", "Acme").unwrap(),
            contact_email: ContactEmail::parse(&format!(
                "l-{}@acme.example",
                uuid::Uuid::now_v7().simple()
            ))
            .unwrap(),
            audiences: None,
        };
        let done = lenders::register(
            self.store.as_ref(),
            &CommandContext::now(Metadata::default()),
            &registration,
            &key,
            &lenders::no_seal,
        )
        .await
        .unwrap();
        (done.value.lender_id, key.api_key.expose().to_owned())
    }
}

/// The key with its secret part replaced: the right prefix, a wrong secret.
fn wrong_secret(key: &str, n: u32) -> String {
    // `pl_<16 hex>_<43 base64url>`; the secret may hold `_` itself.
    let (head, secret) = key.split_at(3 + 16 + 1);
    let mut forged: Vec<char> = secret.chars().collect();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == 'A' { 'B' } else { 'A' };
    let tail = format!("{n:06}");
    let start = last - tail.len();
    forged.splice(start..last, tail.chars());
    format!("{head}{}", forged.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_callers_leave_no_single_flight_gate_behind() {
    let world = world().await;
    let (_, key) = world.lender().await;
    let auth = Arc::new(Authenticator::new(world.store.clone()));
    let wrong = wrong_secret(&key, 1);
    for _ in 0..5 {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (auth, wrong) = (auth.clone(), wrong.clone());
                tokio::spawn(async move { auth.authenticate(&wrong, now()).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(3)).await;
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        assert_eq!(auth.gates_in_use(), 0, "a cancelled caller's gate leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_argon2_queue_is_bounded() {
    let world = world().await;
    let (_, key) = world.lender().await;
    let auth = Arc::new(Authenticator::new(world.store.clone()).with_max_queue(2));
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let (auth, wrong) = (auth.clone(), wrong_secret(&key, n));
            tokio::spawn(async move { auth.authenticate(&wrong, now()).await })
        })
        .collect();
    let mut busy = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(AuthError::Busy) => busy += 1,
            Err(AuthError::Invalid) => {}
            other => panic!("a wrong secret: {other:?}"),
        }
    }
    assert!(busy > 0, "24 at once behind a queue of 2");
    assert_eq!(
        auth.argon2_verifications(),
        24 - busy,
        "a caller told to come back cost no argon2"
    );
    // The queue drains: a right key checks out afterwards.
    assert!(auth.authenticate(&key, now()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_key_stays_known_past_its_time_to_live_until_invalidated() {
    let world = world().await;
    let (lender, key) = world.lender().await;
    let auth = Authenticator::new(world.store.clone()).with_ttl(Duration::ZERO);
    assert!(!auth.known(&key, now()));
    auth.authenticate(&key, now()).await.unwrap();
    assert!(auth.cached(&key, now()).is_none(), "past its time to live");
    assert!(auth.known(&key, now()), "but known as valid");
    assert!(!auth.known(&wrong_secret(&key, 2), now()));
    auth.invalidate_stream(&lender.stream_id());
    assert!(!auth.known(&key, now()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_watch_catches_up_with_what_happened_while_it_was_down() {
    let world = world().await;
    let (lender, key) = world.lender().await;
    let auth = Arc::new(Authenticator::new(world.store.clone()));
    auth.authenticate(&key, now()).await.unwrap();
    assert_eq!(auth.cached_keys(), 1);
    let watch = tokio::spawn(watch_invalidations(auth.clone(), world.store.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    watch.abort();
    let _ = watch.await;

    // Another instance rotates the key (grace 0) while this one's watch is
    // down.
    let new_key = NewKey::generate().await.unwrap();
    lenders::rotate_key(
        world.store.as_ref(),
        &CommandContext::now(Metadata::default()),
        lender,
        KeyPrefix::parse(key.split('_').nth(1).unwrap()).unwrap(),
        GracePeriod::seconds(0).unwrap(),
        &new_key,
        &lenders::no_seal,
    )
    .await
    .unwrap();
    assert_eq!(auth.cached_keys(), 1, "nobody told this instance yet");

    let watch = tokio::spawn(watch_invalidations(auth.clone(), world.store.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while auth.cached_keys() > 0 {
        assert!(
            Instant::now() < deadline,
            "the restarted watch never saw the rotation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.abort();
    assert!(matches!(
        auth.authenticate(&key, now()).await,
        Err(AuthError::Invalid)
    ));
}
